# Dense-network kernels: activations, dense, layernorm, batchnorm, losses
# (csrc/activation.c, dense.c, layernorm.c, batchnorm.c, loss.c).
# Same names, signatures and error messages as gradcore.reference.

from gradcore._contract import ACTIVATIONS, check_range as _check_range, check_labels as _check_labels


cdef double _num(object v, str name, double lo, double hi, bint lo_open=False,
                 bint hi_open=False) except? -1.0:
    """A finite number in [lo, hi] (open ends where asked; hi = inf: no upper
    bound). Python floats/ints take a fast path; anything else, and every
    failure, goes through the contract check for the message."""
    cdef double d
    cdef object t = type(v)
    if t is float or t is int:
        d = v
        if (d - d == 0.0 and (d > lo if lo_open else d >= lo)
                and (hi == float("inf") or (d < hi if hi_open else d <= hi))):
            return d
    kw = {"lo": lo, "lo_open": lo_open}
    if hi != float("inf"):
        kw.update(hi=hi, hi_open=hi_open)
    return _check_range(v, name, **kw)


cdef int _act_code(object act) except -1:
    if act == "identity":
        return 0
    if act == "relu":
        return 1
    if act == "leaky_relu":
        return 2
    if act == "tanh":
        return 3
    if act == "sigmoid":
        return 4
    return _contract.activation_code(act)


cdef double _slope(object slope) except? -1.0:
    cdef double s
    if type(slope) is float:
        s = <double>slope
        if s >= 0.0 and s != float("inf"):
            return s
    return _contract.check_slope(slope)


cdef int _first(object a, str name, int ndim) except -1:
    """Validate the array that fixes the dtype of the call; return its type number."""
    cdef cnp.ndarray arr
    if float_array_ok(a, False):
        arr = <cnp.ndarray>a
        if (cnp.PyArray_IS_C_CONTIGUOUS(arr) and (ndim < 0 or cnp.PyArray_NDIM(arr) == ndim)
                and cnp.PyArray_SIZE(arr) > 0):
            return cnp.PyArray_TYPE(arr)
    _contract.check_array(a, name, ndim=None if ndim < 0 else ndim)
    raise KernelError(f"{name}: refused by the binding but accepted by the contract")


cdef inline Py_ssize_t _dim(object a, int k):
    """Size of axis k of an already validated array."""
    return cnp.PyArray_DIMS(<cnp.ndarray>a)[k]


cdef str _dtname(int t):
    return "float32" if t == cnp.NPY_FLOAT32 else "float64"


cdef void *_chk(object a, str name, int t, int ndim, Py_ssize_t d0, Py_ssize_t d1,
                bint writable, bint allow_none) except? NULL:
    """Validate one more array of a call: dtype t, C-contiguous, shape
    (d0,) / (d0, d1) (ndim 0: any shape, checked by `_same`), writeable when
    it is an output. Returns its data pointer (NULL for an allowed None).
    Cheap checks here; a refusal is explained by ``_contract.check_array``."""
    cdef cnp.ndarray arr
    cdef cnp.npy_intp *dims
    cdef int nd
    if a is None:
        if allow_none:
            return NULL
    elif float_array_ok(a, writable):
        arr = <cnp.ndarray>a
        dims = cnp.PyArray_DIMS(arr)
        nd = cnp.PyArray_NDIM(arr)
        if (cnp.PyArray_TYPE(arr) == t and cnp.PyArray_IS_C_CONTIGUOUS(arr)
                and (ndim <= 0 or (ndim == 1 and nd == 1 and dims[0] == d0)
                     or (ndim == 2 and nd == 2 and dims[0] == d0 and dims[1] == d1))):
            return cnp.PyArray_DATA(arr)
    shape = (d0,) if ndim == 1 else (d0, d1) if ndim == 2 else None
    _contract.check_array(a, name, dtype=_dtname(t), shape=shape, writable=writable, nonempty=False)
    raise KernelError(f"{name}: refused by the binding but accepted by the contract")


cdef void *_same(object a, str name, object ref, int t, bint writable, bint allow_none) except? NULL:
    """Like _chk for an array that must have exactly the shape of `ref`."""
    cdef void *p = _chk(a, name, t, 0, 0, 0, writable, allow_none)
    if a is None:
        return p
    cdef cnp.ndarray aa = <cnp.ndarray>a, ra = <cnp.ndarray>ref
    cdef int nd = cnp.PyArray_NDIM(ra), k
    cdef bint ok = cnp.PyArray_NDIM(aa) == nd
    if ok:
        for k in range(nd):
            if cnp.PyArray_DIMS(aa)[k] != cnp.PyArray_DIMS(ra)[k]:
                ok = False
    if not ok:
        raise ValueError(f"{name}: expected shape {ref.shape}, got {a.shape}")
    return p


def activation_forward(y, x, act, slope=0.01):
    """y = act(x) element-wise (y may be x). act in ACTIVATIONS."""
    cdef int code = _act_code(act)
    cdef double s = _slope(slope)
    cdef int t = _first(x, "x", -1)
    cdef void *py = _same(y, "y", x, t, True, False)
    check_disjoint(y, "y", x, "x", True)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_activation_forward_f32(<float *>py, <const float *>px, n, code, s)
        else:
            st = gc_activation_forward_f64(<double *>py, <const double *>px, n, code, s)
    check_status(st, "activation_forward")


def activation_backward(dx, dy, y, act, slope=0.01):
    """dx = dy * act'(y), the derivative taken from the output y (dx may be dy)."""
    cdef int code = _act_code(act)
    cdef double s = _slope(slope)
    cdef int t = _first(dy, "dy", -1)
    cdef void *pyy = _same(y, "y", dy, t, False, False)
    cdef void *pdx = _same(dx, "dx", dy, t, True, False)
    check_disjoint(dx, "dx", dy, "dy", True)
    check_disjoint(dx, "dx", y, "y", True)
    cdef void *pdy = cnp.PyArray_DATA(<cnp.ndarray>dy)
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>dy)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_activation_backward_f32(<float *>pdx, <const float *>pdy, <const float *>pyy,
                                            n, code, s)
        else:
            st = gc_activation_backward_f64(<double *>pdx, <const double *>pdy,
                                            <const double *>pyy, n, code, s)
    check_status(st, "activation_backward")


cdef Py_ssize_t _w_rows(object w, object x, int t) except -1:
    """Validate w (O, I) against x (B, I); return O."""
    _chk(w, "w", t, -1, 0, 0, False, False)
    cdef cnp.ndarray wa = <cnp.ndarray>w
    cdef Py_ssize_t I = cnp.PyArray_DIMS(<cnp.ndarray>x)[1]
    if cnp.PyArray_NDIM(wa) != 2:
        raise ValueError(f"w: expected a 2-D array, got shape {w.shape}")
    if cnp.PyArray_DIMS(wa)[1] != I:
        raise ValueError(f"w: expected shape (O, {I}) to match x {x.shape}, got {w.shape}")
    if cnp.PyArray_DIMS(wa)[0] == 0:
        raise ValueError(f"w: expected a non-empty array, got shape {w.shape}")
    return cnp.PyArray_DIMS(wa)[0]


def dense_forward(y, x, w, b, act, slope):
    """x (B, I), w (O, I), b (O,) or None: y (B, O) := act(x w^T + b).
    One GEMM, then bias + activation fused in one pass over y."""
    cdef int code = _act_code(act)
    cdef double s = _slope(slope)
    cdef int t = _first(x, "x", 2)
    cdef Py_ssize_t B = _dim(x, 0), I = _dim(x, 1)
    cdef Py_ssize_t O = _w_rows(w, x, t)
    cdef void *pb = _chk(b, "b", t, 1, O, 0, False, True)
    cdef void *py = _chk(y, "y", t, 2, B, O, True, False)
    check_disjoint(y, "y", x, "x")
    check_disjoint(y, "y", w, "w")
    check_disjoint(y, "y", b, "b")
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void *pw = cnp.PyArray_DATA(<cnp.ndarray>w)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_dense_forward_f32(<float *>py, <const float *>px, <const float *>pw,
                                      <const float *>pb, B, I, O, code, s)
        else:
            st = gc_dense_forward_f64(<double *>py, <const double *>px, <const double *>pw,
                                      <const double *>pb, B, I, O, code, s)
    check_status(st, "dense_forward")


cdef int _dense_backward_disjoint(dx, dw, db, dy, x, w, y, dz) except -1:
    """Outputs dx, dw, db, dz overlap no other argument (dz may be dy exactly)."""
    check_disjoint(dz, "dz", dy, "dy", True)
    for a, an in ((x, "x"), (w, "w"), (y, "y")):
        check_disjoint(dz, "dz", a, an)
    for o, on in ((dw, "dw"), (db, "db"), (dx, "dx")):
        for a, an in ((dy, "dy"), (x, "x"), (w, "w"), (y, "y"), (dz, "dz")):
            check_disjoint(o, on, a, an)
    check_disjoint(dw, "dw", db, "db")
    check_disjoint(dw, "dw", dx, "dx")
    check_disjoint(db, "db", dx, "dx")
    return 0


def dense_backward(dx, dw, db, dy, x, w, y, act, slope, dz):
    """dz (B, O) := dy * act'(y) (dz may be dy); dw += dz^T x; db += sum_B dz
    (None: no bias); dx := dz w (None: skip)."""
    cdef int code = _act_code(act)
    cdef double s = _slope(slope)
    cdef int t = _first(x, "x", 2)
    cdef Py_ssize_t B = _dim(x, 0), I = _dim(x, 1)
    cdef Py_ssize_t O = _w_rows(w, x, t)
    cdef void *pdy = _chk(dy, "dy", t, 2, B, O, False, False)
    cdef void *pyy = _chk(y, "y", t, 2, B, O, False, False)
    cdef void *pdz = _chk(dz, "dz", t, 2, B, O, True, False)
    cdef void *pdw = _chk(dw, "dw", t, 2, O, I, True, False)
    cdef void *pdb = _chk(db, "db", t, 1, O, 0, True, True)
    cdef void *pdx = _chk(dx, "dx", t, 2, B, I, True, True)
    _dense_backward_disjoint(dx, dw, db, dy, x, w, y, dz)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void *pw = cnp.PyArray_DATA(<cnp.ndarray>w)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_dense_backward_f32(<float *>pdx, <float *>pdw, <float *>pdb, <float *>pdz,
                                       <const float *>pdy, <const float *>px, <const float *>pw,
                                       <const float *>pyy, B, I, O, code, s)
        else:
            st = gc_dense_backward_f64(<double *>pdx, <double *>pdw, <double *>pdb,
                                       <double *>pdz, <const double *>pdy, <const double *>px,
                                       <const double *>pw, <const double *>pyy, B, I, O, code, s)
    check_status(st, "dense_backward")



def layernorm_forward(y, mean, rstd, x, gamma, beta, eps):
    """x (B, D): mean, rstd (B,) := row mean and 1/sqrt(var + eps);
    y := (x - mean) * rstd * gamma + beta (gamma/beta None: 1 / 0)."""
    cdef double e = _num(eps, "eps", 0.0, float("inf"))
    cdef int t = _first(x, "x", 2)
    cdef Py_ssize_t B = _dim(x, 0), D = _dim(x, 1)
    cdef void *pg = _chk(gamma, "gamma", t, 1, D, 0, False, True)
    cdef void *pb = _chk(beta, "beta", t, 1, D, 0, False, True)
    cdef void *py = _chk(y, "y", t, 2, B, D, True, False)
    cdef void *pm = _chk(mean, "mean", t, 1, B, 0, True, False)
    cdef void *pr = _chk(rstd, "rstd", t, 1, B, 0, True, False)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_layernorm_forward_f32(<float *>py, <float *>pm, <float *>pr, <const float *>px,
                                          <const float *>pg, <const float *>pb, B, D, e)
        else:
            st = gc_layernorm_forward_f64(<double *>py, <double *>pm, <double *>pr,
                                          <const double *>px, <const double *>pg,
                                          <const double *>pb, B, D, e)
    check_status(st, "layernorm_forward")


def layernorm_backward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma):
    """dgamma += sum_B dy * xhat, dbeta += sum_B dy (None: skip);
    dx := rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma (None: skip)."""
    cdef int t = _first(x, "x", 2)
    cdef Py_ssize_t B = _dim(x, 0), D = _dim(x, 1)
    cdef void *pg = _chk(gamma, "gamma", t, 1, D, 0, False, True)
    cdef void *pdy = _chk(dy, "dy", t, 2, B, D, False, False)
    cdef void *pm = _chk(mean, "mean", t, 1, B, 0, False, False)
    cdef void *pr = _chk(rstd, "rstd", t, 1, B, 0, False, False)
    cdef void *pdg = _chk(dgamma, "dgamma", t, 1, D, 0, True, True)
    cdef void *pdb = _chk(dbeta, "dbeta", t, 1, D, 0, True, True)
    cdef void *pdx = _chk(dx, "dx", t, 2, B, D, True, True)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_layernorm_backward_f32(<float *>pdx, <float *>pdg, <float *>pdb,
                                           <const float *>pdy, <const float *>px,
                                           <const float *>pm, <const float *>pr,
                                           <const float *>pg, B, D)
        else:
            st = gc_layernorm_backward_f64(<double *>pdx, <double *>pdg, <double *>pdb,
                                           <const double *>pdy, <const double *>px,
                                           <const double *>pm, <const double *>pr,
                                           <const double *>pg, B, D)
    check_status(st, "layernorm_backward")


def batchnorm_forward(y, x, gamma, beta, running_mean, running_var, save_mean, save_rstd,
                      training, momentum, eps):
    """x (B, D). training: batch statistics, running stats (may be None)
    updated like PyTorch (unbiased variance); eval: running statistics.
    save_mean/save_rstd (D,) := the mean and 1/sqrt(var + eps) used."""
    cdef double mom = _num(momentum, "momentum", 0.0, 1.0)
    cdef double e = _num(eps, "eps", 0.0, float("inf"))
    cdef bint tr = bool(training)
    cdef int t = _first(x, "x", 2)
    cdef Py_ssize_t B = _dim(x, 0), D = _dim(x, 1)
    cdef void *pg = _chk(gamma, "gamma", t, 1, D, 0, False, True)
    cdef void *pb = _chk(beta, "beta", t, 1, D, 0, False, True)
    cdef void *prm = _chk(running_mean, "running_mean", t, 1, D, 0, True, tr)
    cdef void *prv = _chk(running_var, "running_var", t, 1, D, 0, True, tr)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean, running_var: give both or neither")
    cdef void *psm = _chk(save_mean, "save_mean", t, 1, D, 0, True, False)
    cdef void *psr = _chk(save_rstd, "save_rstd", t, 1, D, 0, True, False)
    cdef void *py = _chk(y, "y", t, 2, B, D, True, False)
    if tr and B < 2:
        raise ValueError(f"x: batch statistics in training need more than 1 value per channel, got shape {x.shape}")
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_batchnorm_forward_f32(<float *>py, <const float *>px, <const float *>pg,
                                          <const float *>pb, <float *>prm, <float *>prv,
                                          <float *>psm, <float *>psr, B, D, tr, mom, e)
        else:
            st = gc_batchnorm_forward_f64(<double *>py, <const double *>px, <const double *>pg,
                                          <const double *>pb, <double *>prm, <double *>prv,
                                          <double *>psm, <double *>psr, B, D, tr, mom, e)
    check_status(st, "batchnorm_forward")


def batchnorm_backward(dx, dgamma, dbeta, dy, x, save_mean, save_rstd, gamma, training):
    """dgamma += sum_B dy * xhat, dbeta += sum_B dy (None: skip); dx :=
    gamma * rstd * (dy - mean_B(dy) - xhat * mean_B(dy * xhat)) in training,
    gamma * rstd * dy in eval (None: skip)."""
    cdef bint tr = bool(training)
    cdef int t = _first(x, "x", 2)
    cdef Py_ssize_t B = _dim(x, 0), D = _dim(x, 1)
    cdef void *pdy = _chk(dy, "dy", t, 2, B, D, False, False)
    cdef void *psm = _chk(save_mean, "save_mean", t, 1, D, 0, False, False)
    cdef void *psr = _chk(save_rstd, "save_rstd", t, 1, D, 0, False, False)
    cdef void *pg = _chk(gamma, "gamma", t, 1, D, 0, False, True)
    cdef void *pdg = _chk(dgamma, "dgamma", t, 1, D, 0, True, True)
    cdef void *pdb = _chk(dbeta, "dbeta", t, 1, D, 0, True, True)
    cdef void *pdx = _chk(dx, "dx", t, 2, B, D, True, True)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_batchnorm_backward_f32(<float *>pdx, <float *>pdg, <float *>pdb,
                                           <const float *>pdy, <const float *>px,
                                           <const float *>psm, <const float *>psr,
                                           <const float *>pg, B, D, tr)
        else:
            st = gc_batchnorm_backward_f64(<double *>pdx, <double *>pdg, <double *>pdb,
                                           <const double *>pdy, <const double *>px,
                                           <const double *>psm, <const double *>psr,
                                           <const double *>pg, B, D, tr)
    check_status(st, "batchnorm_backward")


def mse_loss(pred, target, dpred):
    """mean((pred - target)^2); dpred := 2 (pred - target) / N (None: skip)."""
    cdef int t = _first(pred, "pred", -1)
    cdef void *pt = _same(target, "target", pred, t, False, False)
    cdef void *pd = _same(dpred, "dpred", pred, t, True, True)
    cdef void *pp = cnp.PyArray_DATA(<cnp.ndarray>pred)
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>pred)
    cdef double loss = 0.0
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_mse_loss_f32(<const float *>pp, <const float *>pt, <float *>pd, n, &loss)
        else:
            st = gc_mse_loss_f64(<const double *>pp, <const double *>pt, <double *>pd, n, &loss)
    check_status(st, "mse_loss")
    return loss


def bce_with_logits_loss(logits, target, dlogits):
    """mean(max(z, 0) - z t + log1p(exp(-|z|))); dlogits := (sigmoid(z) - t) / N."""
    cdef int t = _first(logits, "logits", -1)
    cdef void *pt = _same(target, "target", logits, t, False, False)
    cdef void *pd = _same(dlogits, "dlogits", logits, t, True, True)
    cdef void *pz = cnp.PyArray_DATA(<cnp.ndarray>logits)
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>logits)
    cdef double loss = 0.0
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_bce_with_logits_loss_f32(<const float *>pz, <const float *>pt, <float *>pd,
                                             n, &loss)
        else:
            st = gc_bce_with_logits_loss_f64(<const double *>pz, <const double *>pt,
                                             <double *>pd, n, &loss)
    check_status(st, "bce_with_logits_loss")
    return loss


def softmax_cross_entropy_loss(logits, labels, dlogits):
    """logits (B, C), labels int64 (B,) in [0, C): mean over B of
    logsumexp(z) - z[label]; dlogits := (softmax(z) - onehot) / B."""
    cdef int t = _first(logits, "logits", 2)
    cdef Py_ssize_t B = _dim(logits, 0), C = _dim(logits, 1)
    _check_labels(labels, "labels", B, C)
    cdef void *pd = _chk(dlogits, "dlogits", t, 2, B, C, True, True)
    cdef void *pz = cnp.PyArray_DATA(<cnp.ndarray>logits)
    cdef const int64_t *pl = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
    cdef double loss = 0.0
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_softmax_cross_entropy_loss_f32(<const float *>pz, pl, <float *>pd, B, C, &loss)
        else:
            st = gc_softmax_cross_entropy_loss_f64(<const double *>pz, pl, <double *>pd, B, C,
                                                   &loss)
    check_status(st, "softmax_cross_entropy_loss")
    return loss
