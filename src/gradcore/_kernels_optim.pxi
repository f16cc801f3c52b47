# Fused optimizer updates over flat buffers (csrc/optim.c).
# Same names, signatures and error messages as gradcore.reference.

cdef int _flat_param(object param) except -1:
    cdef int t = _first(param, "param", 1)
    _chk(param, "param", t, 1, _dim(param, 0), 0, True, False)
    return t


def sgd_step(param, grad, velocity, lr, momentum, nesterov, weight_decay, grad_scale):
    """One SGD step over flat 1-D buffers (PyTorch formulas, one pass):
    g = grad * grad_scale + weight_decay * param; with momentum:
    velocity = momentum * velocity + g, g = g + momentum * velocity (Nesterov)
    or velocity; param -= lr * g. velocity may be None when momentum == 0."""
    cdef double c_lr = _num(lr, "lr", 0.0, float("inf"), True)
    cdef double c_mom = _num(momentum, "momentum", 0.0, float("inf"))
    cdef double c_wd = _num(weight_decay, "weight_decay", 0.0, float("inf"))
    cdef double c_s = _num(grad_scale, "grad_scale", 0.0, float("inf"))
    cdef bint nest = bool(nesterov)
    if nest and c_mom == 0.0:
        raise ValueError("nesterov: Nesterov momentum needs momentum > 0")
    if c_mom != 0.0 and velocity is None:
        raise TypeError("velocity: expected an array when momentum != 0, got None")
    cdef int t = _flat_param(param)
    cdef Py_ssize_t n = _dim(param, 0)
    cdef void *pg = _chk(grad, "grad", t, 1, n, 0, False, False)
    cdef void *pv = _chk(velocity, "velocity", t, 1, n, 0, True, True)
    if c_mom == 0.0:
        pv = NULL  # a velocity buffer given with momentum 0 is not used
    cdef void *pp = cnp.PyArray_DATA(<cnp.ndarray>param)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_sgd_step_f32(<float *>pp, <const float *>pg, <float *>pv, n, c_lr, c_mom,
                                 nest, c_wd, c_s)
        else:
            st = gc_sgd_step_f64(<double *>pp, <const double *>pg, <double *>pv, n, c_lr, c_mom,
                                 nest, c_wd, c_s)
    check_status(st, "sgd_step")


def adam_step(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled, grad_scale):
    """One Adam (decoupled=False, L2 added to the gradient) or AdamW
    (decoupled=True) step over flat 1-D buffers, PyTorch formulas, one pass;
    step is 1-based; the gradient is read as grad * grad_scale."""
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step: expected an integer >= 1 (1-based step count), got {step!r}")
    cdef double c_lr = _num(lr, "lr", 0.0, float("inf"), True)
    cdef double b1 = _num(beta1, "beta1", 0.0, 1.0, False, True)
    cdef double b2 = _num(beta2, "beta2", 0.0, 1.0, False, True)
    cdef double c_eps = _num(eps, "eps", 0.0, float("inf"))
    cdef double c_wd = _num(weight_decay, "weight_decay", 0.0, float("inf"))
    cdef double c_s = _num(grad_scale, "grad_scale", 0.0, float("inf"))
    cdef int t = _flat_param(param)
    cdef Py_ssize_t n = _dim(param, 0)
    cdef void *pg = _chk(grad, "grad", t, 1, n, 0, False, False)
    cdef void *pm = _chk(m, "m", t, 1, n, 0, True, False)
    cdef void *pv = _chk(v, "v", t, 1, n, 0, True, False)
    cdef void *pp = cnp.PyArray_DATA(<cnp.ndarray>param)
    cdef int64_t c_step = step
    cdef int dec = bool(decoupled)
    cdef int st
    with nogil:
        if t == cnp.NPY_FLOAT32:
            st = gc_adam_step_f32(<float *>pp, <const float *>pg, <float *>pm, <float *>pv, n,
                                  c_step, c_lr, b1, b2, c_eps, c_wd, dec, c_s)
        else:
            st = gc_adam_step_f64(<double *>pp, <const double *>pg, <double *>pm, <double *>pv,
                                  n, c_step, c_lr, b1, b2, c_eps, c_wd, dec, c_s)
    check_status(st, "adam_step")
