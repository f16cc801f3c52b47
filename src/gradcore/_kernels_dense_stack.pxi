# Dense-stack kernels: a chain of dense layers in one call over a flat
# parameter buffer (csrc/dense.c, gc_dense_stack_*). Same names, signatures
# and error messages as gradcore.reference.dense. Uses the cheap checks of
# _kernels_dense.pxi (_slope, _first, _chk, _dim), included before this file.

cdef const int64_t *_stack_layout(object layout, Py_ssize_t n, int64_t *dims) except NULL:
    """Validate a dense-stack layout for n parameters (the checks of
    ``_contract.check_dense_stack``, which explains a refusal); dims := {L,
    I_0, O_last, sum of O, the largest I or O}. Returns the rows."""
    cdef cnp.ndarray la
    cdef const int64_t *r
    cdef Py_ssize_t L = 0, l
    cdef int64_t I, O, wo, bo, prev = 0, mx = 0, so = 0
    cdef bint ok = cnp.PyArray_Check(layout)
    if ok:
        la = <cnp.ndarray>layout
        ok = (cnp.PyArray_TYPE(la) == cnp.NPY_INT64 and cnp.PyArray_ISNOTSWAPPED(la)
              and cnp.PyArray_ISALIGNED(la) and cnp.PyArray_IS_C_CONTIGUOUS(la)
              and cnp.PyArray_NDIM(la) == 2 and cnp.PyArray_DIMS(la)[1] == GC_STACK_COLS)
    if ok:
        L = cnp.PyArray_DIMS(la)[0]
        r = <const int64_t *>cnp.PyArray_DATA(la)
        ok = L >= 1
        for l in range(L):
            I, O, wo, bo = r[l * GC_STACK_COLS], r[l * GC_STACK_COLS + 1], r[l * GC_STACK_COLS + 2], r[l * GC_STACK_COLS + 3]
            if (I < 1 or O < 1 or (l > 0 and I != prev) or r[l * GC_STACK_COLS + 4] < 0
                    or r[l * GC_STACK_COLS + 4] >= GC_ACT_COUNT or O > n or I > n // O
                    or wo < 0 or wo > n - O * I or bo < -1 or (bo >= 0 and bo > n - O)):
                ok = False
                break
            prev = O
            so += O
            mx = max(mx, I, O)
    if not ok:
        _contract.check_dense_stack(layout, n)
        raise KernelError("layout: refused by the binding but accepted by the contract")
    dims[0], dims[1], dims[2], dims[3], dims[4] = L, r[0], prev, so, mx
    return r


cdef const int64_t *_stack_inputs(object x, object theta, object layout, int t, int64_t *d) except NULL:
    """The checks both stack passes start with: theta 1-D of x's dtype, the
    layout (dims into d, see _stack_layout), x (B, I of the first layer)."""
    _chk(theta, "theta", t, 0, 0, 0, False, False)
    if cnp.PyArray_NDIM(<cnp.ndarray>theta) != 1:
        raise ValueError(f"theta: expected a 1-D array, got shape {theta.shape}")
    cdef const int64_t *lay = _stack_layout(layout, cnp.PyArray_SIZE(<cnp.ndarray>theta), d)
    if _dim(x, 1) != d[1]:
        raise ValueError(f"x: expected shape (B, {d[1]}) (I of the first layer), got {x.shape}")
    return lay


def dense_stack_forward(ys, x, theta, layout, slope):
    """A chain of dense layers in one call: layer l (row l of ``layout``:
    I, O, weight offset, bias offset or -1, activation code) computes
    y_l (B, O) = act(y_{l-1} w^T + b) from theta[w_off:].reshape(O, I) and
    theta[b_off:b_off + O]; y_{-1} = x (B, I_0). ys (B * sum of O,) := the
    outputs back to back. Bit-identical to one ``dense_forward`` per layer."""
    cdef double s = _slope(slope)
    cdef int t = _first(x, "x", 2)
    cdef int64_t d[5]
    cdef const int64_t *lay = _stack_inputs(x, theta, layout, t, d)
    cdef void *pt = cnp.PyArray_DATA(<cnp.ndarray>theta)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>theta)
    cdef Py_ssize_t B = _dim(x, 0)
    cdef void *py = _chk(ys, "ys", t, 1, B * d[3], 0, True, False)
    check_disjoint(ys, "ys", x, "x")
    check_disjoint(ys, "ys", theta, "theta")
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_dense_stack_forward_f32(<float *>py, <const float *>px, <const float *>pt, n,
                                            lay, d[0], B, s)
        else:
            st = gc_dense_stack_forward_f64(<double *>py, <const double *>px, <const double *>pt, n,
                                            lay, d[0], B, s)
    check_status(st, "dense_stack_forward")


def dense_stack_backward(dx, grad, work, dy, x, theta, ys, layout, slope):
    """Backward of ``dense_stack_forward`` from dy (B, O_last): grad (theta's
    layout) += every layer's dw and db; dx (B, I_0) := the input gradient
    (None: skip); work (at least 2 * B * the largest I or O) is scratch."""
    cdef double s = _slope(slope)
    cdef int t = _first(x, "x", 2)
    cdef int64_t d[5]
    cdef const int64_t *lay = _stack_inputs(x, theta, layout, t, d)
    cdef void *pt = cnp.PyArray_DATA(<cnp.ndarray>theta)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>theta)
    cdef Py_ssize_t B = _dim(x, 0)
    cdef void *pys = _chk(ys, "ys", t, 1, B * d[3], 0, False, False)
    cdef void *pdy = _chk(dy, "dy", t, 2, B, d[2], False, False)
    cdef void *pg = _chk(grad, "grad", t, 1, n, 0, True, False)
    cdef void *pdx = _chk(dx, "dx", t, 2, B, d[1], True, True)
    cdef void *pw = _chk(work, "work", t, 0, 0, 0, True, False)
    if cnp.PyArray_NDIM(<cnp.ndarray>work) != 1:
        _contract.check_array(work, "work", dtype=_dtname(t), ndim=1, writable=True)
        raise KernelError("work: refused by the binding but accepted by the contract")
    if cnp.PyArray_SIZE(<cnp.ndarray>work) < 2 * B * d[4]:
        raise ValueError(f"work: expected a 1-D array of at least {2 * B * d[4]} values "
                         f"(2 * B * the largest layer size), got shape {work.shape}")
    for o, on in ((grad, "grad"), (dx, "dx"), (work, "work")):
        for a, an in ((dy, "dy"), (x, "x"), (theta, "theta"), (ys, "ys")):
            check_disjoint(o, on, a, an)
    check_disjoint(grad, "grad", dx, "dx")
    check_disjoint(grad, "grad", work, "work")
    check_disjoint(dx, "dx", work, "work")
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_dense_stack_backward_f32(<float *>pdx, <float *>pg, <float *>pw, <const float *>pdy,
                                             <const float *>px, <const float *>pt, <const float *>pys,
                                             n, lay, d[0], B, s)
        else:
            st = gc_dense_stack_backward_f64(<double *>pdx, <double *>pg, <double *>pw,
                                             <const double *>pdy, <const double *>px,
                                             <const double *>pt, <const double *>pys, n, lay, d[0],
                                             B, s)
    check_status(st, "dense_stack_backward")


def _dense_stack_check(layout, int64_t n, int64_t B, double slope=0.0):
    """The checks the C stack passes start with, for a layout (L, 5) int64, a
    parameter buffer of n values and B rows, without any array: raises what
    ``dense_stack_forward`` raises for a status the C side returns (e.g.
    KernelError for a size beyond the BLAS integer range), else None. Lets a
    test reach sizes it cannot allocate."""
    la = np.ascontiguousarray(layout, dtype=np.int64)
    if la.ndim != 2 or la.shape[1] != GC_STACK_COLS:
        raise ValueError(f"layout: expected shape (L, {GC_STACK_COLS}), got {la.shape}")
    cdef int st = gc_dense_stack_check_f64(<const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>la),
                                           cnp.PyArray_DIMS(<cnp.ndarray>la)[0], n, B, slope)
    check_status(st, "dense_stack_forward")
