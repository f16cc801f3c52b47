# Unit-wise (row) L2 norms of many arrays in one C call per dtype (csrc/unitnorm.c).

def unit_norms(list arrays, object units=None, str name="arrays"):
    """L2 norm of each unit of each array: ``units[i]`` rows of
    ``arrays[i].size // units[i]`` elements (C order; default ``shape[0]``
    for 2-D and higher, 1 otherwise). Returns a list of float64 arrays of
    shape ``(units[i],)``. One C call per dtype, GIL released."""
    cdef Py_ssize_t n = len(arrays), i, k
    if units is None:
        units = [a.shape[0] if isinstance(a, np.ndarray) and a.ndim >= 2 else 1 for a in arrays]
    elif len(units) != n:
        raise ValueError(f"units: expected {n} entries (one per array), got {len(units)}")
    cdef list kept = []
    cdef list counts = []
    cdef cnp.ndarray arr
    cdef object a
    cdef int64_t u, total = 0
    for i in range(n):
        a = arrays[i]
        if not float_array_ok(a, False):
            check_float_array(a, item_label(name, None, i), False)
        arr = <cnp.ndarray>a
        if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
            arr = np.ascontiguousarray(arr)
        uu = units[i]
        if isinstance(uu, bool) or not isinstance(uu, (int, np.integer)) or uu < 1 \
                or cnp.PyArray_SIZE(arr) % uu != 0:
            raise ValueError(f"units[{i}]: expected an integer >= 1 dividing {name}[{i}].size "
                             f"({cnp.PyArray_SIZE(arr)}), got {uu!r}")
        kept.append(arr)
        counts.append(int(uu))
        total += int(uu)
    out = np.empty(total, np.float64)
    cdef double[::1] ov = out
    cdef const void **p = <const void **>malloc(sizeof(void *) * (n + 1))
    cdef int64_t *lens = <int64_t *>malloc(sizeof(int64_t) * (n + 1))
    cdef int64_t *us = <int64_t *>malloc(sizeof(int64_t) * (n + 1))
    cdef int64_t *offs = <int64_t *>malloc(sizeof(int64_t) * (n + 1))
    cdef double *tmp = <double *>malloc(sizeof(double) * (total + 1))
    if p == NULL or lens == NULL or us == NULL or offs == NULL or tmp == NULL:
        free(p); free(lens); free(us); free(offs); free(tmp)
        raise MemoryError()
    cdef int64_t pos = 0, o
    cdef int status = GC_OK, dt
    cdef Py_ssize_t m
    try:
        for i in range(n):
            offs[i] = pos
            pos += counts[i]
        for dt in range(2):
            m = 0
            for i in range(n):
                arr = <cnp.ndarray>kept[i]
                if (cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32) == (dt == 0):
                    p[m] = cnp.PyArray_DATA(arr)
                    lens[m] = cnp.PyArray_SIZE(arr)
                    us[m] = counts[i]
                    m += 1
            if m == 0:
                continue
            with nogil:
                if dt == 0:
                    status = gc_unit_norms_f32(<const float *const *>p, lens, us, m, tmp)
                else:
                    status = gc_unit_norms_f64(<const double *const *>p, lens, us, m, tmp)
            check_status(status, "unit_norms")
            o = 0
            for i in range(n):
                arr = <cnp.ndarray>kept[i]
                if (cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32) == (dt == 0):
                    for k in range(counts[i]):
                        ov[offs[i] + k] = tmp[o + k]
                    o += counts[i]
    finally:
        free(p); free(lens); free(us); free(offs); free(tmp)
    return [out[offs_i:offs_i + c] for offs_i, c in zip(np.cumsum([0] + counts[:-1]).tolist(), counts)]
