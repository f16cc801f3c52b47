# Shared binding machinery: BLAS table, SIMD switch, status codes, validation.

class KernelError(RuntimeError):
    """A C kernel reported a failure that validation should have prevented."""


cdef void *_blas_pointer(str name) except NULL:
    capsule = _cython_blas.__pyx_capi__[name]
    return PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))


cdef _install_blas():
    cdef gc_blas_table table
    table.sgemm = <gc_sgemm_t>_blas_pointer("sgemm")
    table.dgemm = <gc_dgemm_t>_blas_pointer("dgemm")
    table.sgemv = <gc_sgemv_t>_blas_pointer("sgemv")
    table.dgemv = <gc_dgemv_t>_blas_pointer("dgemv")
    if gc_blas_set(&table) != GC_OK:
        raise ImportError("gradcore: could not install the BLAS table from scipy.linalg.cython_blas")


_install_blas()
gc_simd_init()


def simd_name():
    """The SIMD path the kernels use now: ``"avx512"``, ``"avx2+fma"`` or ``"baseline"``."""
    return gc_simd_name().decode()


def simd_level():
    """The SIMD level the kernels use now: 0 baseline, 1 AVX2+FMA, 2 AVX-512."""
    return gc_simd_level()


def cpu_has_avx2():
    """Whether this CPU supports the AVX2+FMA path."""
    return bool(gc_simd_cpu_has_avx2())


def cpu_has_avx512():
    """Whether this CPU supports the AVX-512 path (F, VL, BW, DQ)."""
    return bool(gc_simd_cpu_has_avx512())


def set_simd(level):
    """Select the SIMD path: 0 = baseline, 1 = AVX2+FMA, 2 = AVX-512 (refused if the CPU lacks it)."""
    if gc_simd_set(int(level)) != GC_OK:
        raise ValueError(f"SIMD level {level!r} is not available on this CPU "
                         "(0 = baseline, 1 = avx2+fma, 2 = avx512)")


cdef int check_status(int status, str what) except -1:
    """Turn a C status code into a Python exception."""
    if status == GC_OK:
        return 0
    if status == GC_ERR_NOMEM:
        raise MemoryError(f"{what}: out of memory")
    if status == GC_ERR_BLAS:
        raise KernelError(f"{what}: BLAS unavailable or a size exceeds the 32-bit BLAS integer range")
    if status == GC_ERR_NONFINITE:
        raise FloatingPointError(f"{what}: non-finite value")
    raise KernelError(f"{what}: invalid argument (status {status})")


cdef inline bint is_float_array(object a):
    if not cnp.PyArray_Check(a):
        return False
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>a)
    return t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64


describe = _contract.describe


cdef str item_label(str name, object keys, Py_ssize_t i):
    if keys is not None:
        return f"{name}[{keys[i]!r}]"
    return f"{name}[{i}]"


cdef inline bint float_array_ok(object a, bint writable):
    """Fast check: a native, aligned float32/float64 ndarray (C-contiguous and
    writeable too when ``writable``). ``check_float_array`` says what is wrong."""
    if not cnp.PyArray_Check(a):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        return False
    if not cnp.PyArray_ISNOTSWAPPED(arr) or not cnp.PyArray_ISALIGNED(arr):
        return False
    if writable and not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISWRITEABLE(arr)):
        return False
    return True


cdef check_float_array(object a, str label, bint writable):
    """Raise a clear error unless ``a`` is a usable float32/float64 array
    (the message comes from ``_contract.check_float_array``)."""
    if not float_array_ok(a, writable):
        _contract.check_float_array(a, label, writable)


cdef int check_disjoint(object out, str oname, object other, str name, bint same_ok=False) except -1:
    """Raise unless output ``out`` and argument ``other`` (C-contiguous arrays
    or None) occupy disjoint memory; ``same_ok`` also allows exactly the same
    memory (an in-place element-wise pass). Two pointer comparisons."""
    if out is None or other is None:
        return 0
    cdef cnp.ndarray a = <cnp.ndarray>out, b = <cnp.ndarray>other
    cdef char *lo1 = <char *>cnp.PyArray_DATA(a)
    cdef char *lo2 = <char *>cnp.PyArray_DATA(b)
    cdef char *hi1 = lo1 + cnp.PyArray_NBYTES(a)
    cdef char *hi2 = lo2 + cnp.PyArray_NBYTES(b)
    if lo1 < hi2 and lo2 < hi1:
        if same_ok and lo1 == lo2 and hi1 == hi2:
            return 0
        raise ValueError(f"{oname}: output overlaps argument {name}"
                         + (" (only exactly the same array is allowed)" if same_ok else "")
                         + "; pass a separate output array")
    return 0
