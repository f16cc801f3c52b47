# Norms and in-place clipping over many buffers (csrc/gradnorm.c, csrc/clip.c).

from libc.stdlib cimport qsort
from libc.stdint cimport intptr_t
from gradcore._contract import resolve_aliases as _resolve_aliases

ctypedef struct _span_t:
    intptr_t lo
    intptr_t hi


cdef int _cmp_span(const void *a, const void *b) noexcept nogil:
    cdef intptr_t x = (<const _span_t *>a).lo, y = (<const _span_t *>b).lo
    return -1 if x < y else (1 if x > y else 0)


cdef bint _spans_overlap(list arrays) except -1:
    """Whether the byte ranges of any two non-empty arrays overlap (one sort;
    the exact analysis is ``_contract.resolve_aliases``, run only then)."""
    cdef Py_ssize_t n = len(arrays), m = 0, i, k
    if n < 2:
        return False
    cdef _span_t *sp = <_span_t *>malloc(sizeof(_span_t) * n)
    if sp == NULL:
        raise MemoryError()
    cdef cnp.ndarray arr
    cdef intptr_t lo, hi, s, end
    cdef bint found = False
    try:
        for i in range(n):
            arr = <cnp.ndarray>arrays[i]
            if cnp.PyArray_SIZE(arr) == 0:
                continue
            lo = hi = <intptr_t>cnp.PyArray_DATA(arr)
            for k in range(cnp.PyArray_NDIM(arr)):
                s = cnp.PyArray_STRIDE(arr, k) * (cnp.PyArray_DIM(arr, k) - 1)
                if s < 0:
                    lo += s
                else:
                    hi += s
            sp[m].lo = lo
            sp[m].hi = hi + cnp.PyArray_ITEMSIZE(arr)
            m += 1
        qsort(sp, m, sizeof(_span_t), _cmp_span)
        end = sp[0].hi if m else 0
        for i in range(1, m):
            if sp[i].lo < end:
                found = True
                break
            if sp[i].hi > end:
                end = sp[i].hi
    finally:
        free(sp)
    return found


cdef class BufferList:
    """A validated list of float32/float64 arrays, grouped by dtype, with the
    pointer tables the C kernels take. Build it once, then call ``norm``,
    ``scale_`` and ``clamp_`` on it; each is one C call per dtype, GIL released.

    ``keys`` (optional) names the arrays in error messages and results.
    ``writable=True`` requires every array to be C-contiguous and writeable
    and is needed for ``scale_`` / ``clamp_``; otherwise non-contiguous arrays
    are read through a contiguous copy and the in-place methods refuse to run.

    Aliasing: an array given twice (or an identical view of the same memory)
    is counted once (``duplicates`` maps its index to the first occurrence;
    its ``per_array`` entry repeats that one); arrays sharing memory only in
    part raise ``ValueError`` (see ``gradcore._contract.resolve_aliases``).
    """
    cdef readonly list arrays
    cdef readonly object keys
    cdef readonly bint writable
    cdef readonly dict duplicates
    cdef readonly Py_ssize_t n
    cdef readonly int64_t size
    cdef Py_ssize_t n32, n64
    cdef void **p32
    cdef void **p64
    cdef int64_t *len32
    cdef int64_t *len64
    cdef Py_ssize_t *idx32
    cdef Py_ssize_t *idx64

    def __cinit__(self, list arrays, str name="arrays", object keys=None, bint writable=False):
        self.n = len(arrays)
        self.keys = keys
        self.writable = writable
        cdef Py_ssize_t i, n = self.n
        self.p32 = <void **>malloc(sizeof(void *) * (n + 1))
        self.p64 = <void **>malloc(sizeof(void *) * (n + 1))
        self.len32 = <int64_t *>malloc(sizeof(int64_t) * (n + 1))
        self.len64 = <int64_t *>malloc(sizeof(int64_t) * (n + 1))
        self.idx32 = <Py_ssize_t *>malloc(sizeof(Py_ssize_t) * (n + 1))
        self.idx64 = <Py_ssize_t *>malloc(sizeof(Py_ssize_t) * (n + 1))
        if (self.p32 == NULL or self.p64 == NULL or self.len32 == NULL or self.len64 == NULL
                or self.idx32 == NULL or self.idx64 == NULL):
            raise MemoryError()
        cdef list kept = []
        cdef cnp.ndarray arr
        cdef object a
        self.size = 0
        for i in range(n):
            a = arrays[i]
            if not float_array_ok(a, writable):  # the label is built only for the error
                check_float_array(a, item_label(name, keys, i), writable)
        self.duplicates = _resolve_aliases(arrays, name, keys) if _spans_overlap(arrays) else {}
        for i in range(n):
            a = arrays[i]
            arr = <cnp.ndarray>a
            if self.duplicates and i in self.duplicates:
                kept.append(arr)  # counted once, through its first occurrence
                continue
            if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
                arr = np.ascontiguousarray(arr)
            kept.append(arr)
            if cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32:
                self.p32[self.n32] = cnp.PyArray_DATA(arr)
                self.len32[self.n32] = cnp.PyArray_SIZE(arr)
                self.idx32[self.n32] = i
                self.n32 += 1
            else:
                self.p64[self.n64] = cnp.PyArray_DATA(arr)
                self.len64[self.n64] = cnp.PyArray_SIZE(arr)
                self.idx64[self.n64] = i
                self.n64 += 1
            self.size += cnp.PyArray_SIZE(arr)
        self.arrays = kept

    def __dealloc__(self):
        free(self.p32); free(self.p64); free(self.len32); free(self.len64)
        free(self.idx32); free(self.idx64)

    def __len__(self):
        return self.n

    def norm(self, double ord=2.0, bint per_array=True, bint stats=True):
        """Return ``(norm, per_array, max_abs, n_nan, n_inf, first)`` where
        ``per_array`` is a float64 array (or None) and ``first`` is ``None`` or
        ``(array_index, flat_index)`` of the first NaN/Inf. ``stats=False``
        skips max |x| (returned as None) when the norm does not need it."""
        if not (ord > 0.0):
            raise ValueError(f"ord must be > 0 (2, 1, inf or any finite p > 0), got {ord!r}")
        cdef gc_norm_result r32, r64
        cdef cnp.ndarray per = np.empty(self.n, dtype=np.float64) if per_array else None
        cdef double *per32 = NULL
        cdef double *per64 = NULL
        cdef int s32 = GC_OK, s64 = GC_OK
        cdef Py_ssize_t i
        cdef double[::1] perv
        per_buf32 = np.empty(self.n32, dtype=np.float64) if per_array else None
        per_buf64 = np.empty(self.n64, dtype=np.float64) if per_array else None
        cdef double[::1] v32
        cdef double[::1] v64
        if per_array and self.n32:
            v32 = per_buf32
            per32 = &v32[0]
        if per_array and self.n64:
            v64 = per_buf64
            per64 = &v64[0]
        cdef int flags = GC_NORM_MAX if stats else 0
        with nogil:
            s32 = gc_norm_ex_f32(<const float *const *>self.p32, self.len32, self.n32, ord, flags, per32, &r32)
            s64 = gc_norm_ex_f64(<const double *const *>self.p64, self.len64, self.n64, ord, flags, per64, &r64)
        check_status(s32, "norm (float32 arrays)")
        check_status(s64, "norm (float64 arrays)")
        if per_array:
            perv = per
            for i in range(self.n32):
                perv[self.idx32[i]] = v32[i]
            for i in range(self.n64):
                perv[self.idx64[i]] = v64[i]
            for j, i in self.duplicates.items():
                perv[j] = perv[i]
        total = combine_norms(r32.norm, r64.norm, ord) if self.n32 and self.n64 else (
            r32.norm if self.n32 else r64.norm if self.n64 else 0.0)
        first = None
        cdef Py_ssize_t f32 = self.idx32[r32.first_buf] if self.n32 and r32.first_buf >= 0 else -1
        cdef Py_ssize_t f64 = self.idx64[r64.first_buf] if self.n64 and r64.first_buf >= 0 else -1
        if f32 >= 0 and (f64 < 0 or f32 < f64):
            first = (f32, r32.first_idx)
        elif f64 >= 0:
            first = (f64, r64.first_idx)
        n_nan = (r32.n_nan if self.n32 else 0) + (r64.n_nan if self.n64 else 0)
        n_inf = (r32.n_inf if self.n32 else 0) + (r64.n_inf if self.n64 else 0)
        max_abs = max(r32.max_abs if self.n32 else 0.0, r64.max_abs if self.n64 else 0.0) if stats else None
        return total, per, max_abs, n_nan, n_inf, first

    def _check_writable(self, str what):
        if not self.writable:
            raise ValueError(f"BufferList.{what}: this list was built with writable=False (arrays may be "
                             "read-only or read through a contiguous copy); build it with writable=True "
                             "to modify the arrays in place")

    def scale_(self, double factor):
        """Multiply every element of every array by ``factor`` (finite) in
        place (each element once, even when an array was given twice)."""
        self._check_writable("scale_")
        if not (factor - factor == 0.0):
            raise ValueError(f"factor: expected a finite number, got {factor!r}")
        with nogil:
            gc_scale_f32(<float *const *>self.p32, self.len32, self.n32, factor)
            gc_scale_f64(<double *const *>self.p64, self.len64, self.n64, factor)

    def clamp_(self, double c):
        """Clamp every element to [-c, c] (c >= 0, not NaN) in place; return
        how many changed."""
        self._check_writable("clamp_")
        if not (c >= 0.0):
            raise ValueError(f"c: expected a number >= 0 (the clamp bound), got {c!r}")
        cdef int64_t a = 0, b = 0
        with nogil:
            a = gc_clamp_f32(<float *const *>self.p32, self.len32, self.n32, c)
            b = gc_clamp_f64(<double *const *>self.p64, self.len64, self.n64, c)
        return a + b


cpdef double combine_norms(double a, double b, double ord):
    """The ord-norm of the concatenation of two parts with norms a and b."""
    if a != a or b != b:
        return float("nan")
    if ord == float("inf"):
        return a if a > b else b
    if ord == 1.0:
        return a + b
    cdef double m = a if a > b else b
    if m == 0.0 or m == float("inf"):
        return m
    if ord == 2.0:
        return m * ((a / m) ** 2 + (b / m) ** 2) ** 0.5
    return m * ((a / m) ** ord + (b / m) ** ord) ** (1.0 / ord)
