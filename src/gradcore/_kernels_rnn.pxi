# Recurrent kernels: RNN, LSTM, GRU forward and BPTT (csrc/rnn.c, lstm.c, gru.c).
# Contract: docs/architecture.md, "Recurrent networks". Every argument is
# validated before the C call; the C call runs with the GIL released and
# polls for Ctrl-C (KeyboardInterrupt), see _rec_interrupt below.
#
# Each wrapper is written once for both dtypes: the C entry points are
# declared in _kernels.pxd with untyped (void *) array arguments, which C
# converts to the float * / double * of the real prototypes, so the dtype
# only picks the f32 or f64 symbol at the call. Validation is a
# fast cdef pass (_RecCall: dtype, shape, flags, pointer-range overlap of
# every output with every other argument); the first fault goes to the slow
# path (_rec_fault), which raises the reference's message.

from cpython.exc cimport PyErr_Occurred
from cpython.ref cimport PyObject

RNN_NONLINEARITIES = _contract.RNN_NONLINEARITIES
# the slow path's checks and messages (shared with the NumPy reference)
_RefRecArgs = _contract.RecurrentArgs


# ---------------------------------------------------------------- Ctrl-C
# The kernels poll gc_interrupt_poll() every few ms of work. In the main
# thread (where Python runs signal handlers) the check takes the GIL for a
# moment and runs PyErr_CheckSignals: a pending SIGINT raises
# KeyboardInterrupt there, the error stays set, the kernel returns
# GC_ERR_INTERRUPTED and the wrapper re-raises it. Other threads answer 0 at
# once (they never wait for the GIL).
import threading as _threading
cdef pthread_t _main_thread = <pthread_t>_threading.main_thread().ident


cdef int _rec_interrupt() noexcept nogil:
    if not pthread_equal(pthread_self(), _main_thread):
        return 0
    with gil:
        return 1 if PyErr_CheckSignals() != 0 else 0


gc_interrupt_set(_rec_interrupt)


cdef int _rec_status(int st, str what) except -1:
    if st == GC_ERR_INTERRUPTED:
        if PyErr_Occurred():
            return -1          # the KeyboardInterrupt (or the handler's exception) propagates
        raise KeyboardInterrupt(f"{what}: interrupted")
    return check_status(st, what)


# ---------------------------------------------------------------- validation
cdef enum:
    _REC_MAX = 24

cdef struct _RecCall:
    int typenum          # NPY_FLOAT32 / NPY_FLOAT64, from x
    int64_t T, B, I, H
    int n                # arrays checked so far: their byte ranges, output flags,
    char *lo[_REC_MAX]   # and (borrowed, alive for the call) objects and names
    char *hi[_REC_MAX]   # for the slow path's message
    bint out[_REC_MAX]
    PyObject *obj[_REC_MAX]
    PyObject *name[_REC_MAX]


cdef int _rec_start(_RecCall *c, object x, object w_hh, int G) except -1:
    """Fix the call's dtype and sizes from x (T, B, I) and w_hh (G*H, H)."""
    c.n = 0
    if not float_array_ok(x, False) or cnp.PyArray_NDIM(<cnp.ndarray>x) != 3 \
            or not float_array_ok(w_hh, False) or cnp.PyArray_NDIM(<cnp.ndarray>w_hh) != 2:
        _RefRecArgs(x, w_hh, G)                       # raises the message
        raise ValueError("x/w_hh: invalid")           # not reached
    cdef cnp.npy_intp *dx = cnp.PyArray_DIMS(<cnp.ndarray>x)
    cdef cnp.npy_intp *dw = cnp.PyArray_DIMS(<cnp.ndarray>w_hh)
    if dx[0] < 1 or dx[1] < 1 or dx[2] < 1 or dw[1] < 1 or dw[0] != G * dw[1]:
        _RefRecArgs(x, w_hh, G)
        raise ValueError("x/w_hh: invalid")
    c.typenum = cnp.PyArray_TYPE(<cnp.ndarray>x)
    c.T, c.B, c.I, c.H = dx[0], dx[1], dx[2], dw[1]
    return 0


cdef object _rec_fault(_RecCall *c, object a, str name, tuple shape, bint writable,
                       bint optional):
    """The slow path: the reference's checks (and message) for argument
    ``a``, after replaying the arrays checked before it (for overlaps)."""
    ref = _RefRecArgs.__new__(_RefRecArgs)
    ref.dtype = np.dtype(np.float32 if c.typenum == cnp.NPY_FLOAT32 else np.float64)
    ref.T, ref.B, ref.I, ref.H = c.T, c.B, c.I, c.H
    ref.outputs, ref.inputs = [], []
    cdef int k
    for k in range(c.n):
        ref._overlap(<object>c.obj[k], <object>c.name[k], c.out[k])
    if shape is None:
        ref.norms(a, name)
    else:
        ref.arr(a, name, shape, writable, optional)
    raise ValueError(f"{name}: invalid argument")     # not reached: the reference raised


cdef void *_rec_arr(_RecCall *c, object a, str name, int nd, int64_t d0, int64_t d1, int64_t d2,
                    bint writable, bint optional) except? NULL:
    """One array of the call: the call's dtype (float64 when nd == -1: a
    norms buffer of shape (T,)), shape (d0[, d1[, d2]]), C-contiguous,
    writeable for outputs, and no output overlapping another argument.
    Returns its data pointer (NULL for an allowed None)."""
    if a is None:
        if optional:
            return NULL
    cdef cnp.ndarray arr
    cdef cnp.npy_intp *dims
    cdef bint ok = a is not None and cnp.PyArray_Check(a)
    cdef int k, want_nd = 1 if nd < 0 else nd
    cdef char *lo
    cdef char *hi
    if ok:
        arr = <cnp.ndarray>a
        ok = (cnp.PyArray_TYPE(arr) == (cnp.NPY_FLOAT64 if nd < 0 else c.typenum)
              and cnp.PyArray_NDIM(arr) == want_nd and cnp.PyArray_IS_C_CONTIGUOUS(arr)
              and cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_ISALIGNED(arr)
              and (not writable or cnp.PyArray_ISWRITEABLE(arr)))
    if ok:
        dims = cnp.PyArray_DIMS(arr)
        ok = dims[0] == d0 and (want_nd < 2 or dims[1] == d1) and (want_nd < 3 or dims[2] == d2)
    if ok:
        lo = <char *>cnp.PyArray_DATA(arr)
        hi = lo + cnp.PyArray_NBYTES(arr)
        for k in range(c.n):
            if (writable or c.out[k]) and lo < c.hi[k] and c.lo[k] < hi:
                ok = False
                break
    if not ok:
        shape = None
        if nd >= 1:
            shape = (d0, d1, d2)[:nd]
        _rec_fault(c, a, name, shape, writable or nd < 0, optional)
    if c.n == _REC_MAX:
        raise ValueError("too many arrays in one recurrent call")
    c.lo[c.n], c.hi[c.n], c.out[c.n] = lo, hi, writable
    c.obj[c.n], c.name[c.n] = <PyObject *>a, <PyObject *>name
    c.n += 1
    return lo


cdef int _rec_inputs(_RecCall *c, int G, object x, object w_ih, object w_hh, object h0,
                     void **px, void **pwhh, void **pwih, void **ph0) except -1:
    """The arrays every call of a G-gate cell takes, in the kernels' order:
    x (T, B, I), w_hh (G*H, H), w_ih (G*H, I), h0 (B, H) or None."""
    px[0] = _rec_arr(c, x, "x", 3, c.T, c.B, c.I, False, False)
    pwhh[0] = _rec_arr(c, w_hh, "w_hh", 2, G * c.H, c.H, 0, False, False)
    pwih[0] = _rec_arr(c, w_ih, "w_ih", 2, G * c.H, c.I, 0, False, False)
    ph0[0] = _rec_arr(c, h0, "h0", 2, c.B, c.H, 0, False, True)
    return 0


cdef int _rec_param_grads(_RecCall *c, int G, object dw_ih, object dw_hh, object db_ih,
                          object db_hh, void **pdwih, void **pdwhh, void **pdbih,
                          void **pdbhh) except -1:
    """The parameter-gradient outputs of a G-gate backward (db_* may be None)."""
    pdwih[0] = _rec_arr(c, dw_ih, "dw_ih", 2, G * c.H, c.I, 0, True, False)
    pdwhh[0] = _rec_arr(c, dw_hh, "dw_hh", 2, G * c.H, c.H, 0, True, False)
    pdbih[0] = _rec_arr(c, db_ih, "db_ih", 1, G * c.H, 0, 0, True, True)
    pdbhh[0] = _rec_arr(c, db_hh, "db_hh", 1, G * c.H, 0, 0, True, True)
    return 0


cdef int64_t _rec_truncate(object truncate) except -1:
    if truncate is None:
        return 0
    if type(truncate) is int and 1 <= truncate <= 2**62:
        return truncate
    return _contract.check_truncate(truncate)      # clamps a huge window to 2**62 (full BPTT)


cdef int _rec_act(object act) except -1:
    if act == "tanh":
        return 2
    if act == "relu":
        return 1
    if act == "identity":
        return 0
    return _contract.nonlinearity_code(act, "act")


# ---------------------------------------------------------------- wrappers
def rnn_forward(out, x, h0, w_ih, w_hh, b_ih, b_hh, act, bint stop_on_nonfinite=False):
    """Elman RNN forward over the whole sequence; returns the first step whose
    state is non-finite (-1 if none). See docs/architecture.md."""
    cdef _RecCall c
    _rec_start(&c, x, w_hh, 1)
    cdef int iact = _rec_act(act)
    cdef int64_t T = c.T, B = c.B, I = c.I, H = c.H
    cdef void *px, *pwhh, *pwih, *ph0
    _rec_inputs(&c, 1, x, w_ih, w_hh, h0, &px, &pwhh, &pwih, &ph0)
    cdef void *pbih = _rec_arr(&c, b_ih, "b_ih", 1, H, 0, 0, False, True)
    cdef void *pbhh = _rec_arr(&c, b_hh, "b_hh", 1, H, 0, 0, False, True)
    cdef void *pout = _rec_arr(&c, out, "out", 3, T, B, H, True, False)
    cdef rnn_forward_fn *fn = &gc_rnn_forward_f32 if c.typenum == cnp.NPY_FLOAT32 else &gc_rnn_forward_f64
    cdef int st
    cdef int64_t first = -1
    with nogil:
        st = fn(pout, px, ph0, pwih, pwhh, pbih, pbhh, T, B, I, H, iact, stop_on_nonfinite, &first)
    _rec_status(st, "rnn_forward")
    return first


def rnn_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dz, step_norms, d_out, d_hT, x, h0, out,
                 w_ih, w_hh, act, truncate=None, bint stop_on_nonfinite=False):
    """Elman RNN BPTT over the whole sequence; returns the first step (in
    backward order) whose gradient is non-finite (-1 if none). ``dz`` (T, B,
    H) is workspace for a pass that makes the weight gradients after the
    loop, or None; its contents afterwards are unspecified."""
    cdef _RecCall c
    _rec_start(&c, x, w_hh, 1)
    cdef int iact = _rec_act(act)
    cdef int64_t k = _rec_truncate(truncate)
    cdef int64_t T = c.T, B = c.B, I = c.I, H = c.H
    cdef void *px, *pwhh, *pwih, *ph0
    _rec_inputs(&c, 1, x, w_ih, w_hh, h0, &px, &pwhh, &pwih, &ph0)
    cdef void *pout = _rec_arr(&c, out, "out", 3, T, B, H, False, False)
    cdef void *pdout = _rec_arr(&c, d_out, "d_out", 3, T, B, H, False, True)
    cdef void *pdhT = _rec_arr(&c, d_hT, "d_hT", 2, B, H, 0, False, True)
    cdef void *pdx = _rec_arr(&c, dx, "dx", 3, T, B, I, True, True)
    cdef void *pdh0 = _rec_arr(&c, dh0, "dh0", 2, B, H, 0, True, True)
    cdef void *pdwih, *pdwhh, *pdbih, *pdbhh
    _rec_param_grads(&c, 1, dw_ih, dw_hh, db_ih, db_hh, &pdwih, &pdwhh, &pdbih, &pdbhh)
    cdef void *pdz = _rec_arr(&c, dz, "dz", 3, T, B, H, True, True)
    cdef double *pn = <double *>_rec_arr(&c, step_norms, "step_norms", -1, T, 0, 0, True, True)
    cdef rnn_backward_fn *fn = &gc_rnn_backward_f32 if c.typenum == cnp.NPY_FLOAT32 else &gc_rnn_backward_f64
    cdef int st
    cdef int64_t first = -1
    with nogil:
        st = fn(pdx, pdh0, pdwih, pdwhh, pdbih, pdbhh, pdz, pn, pdout, pdhT, px, ph0, pout, pwih,
                pwhh, T, B, I, H, iact, k, stop_on_nonfinite, &first)
    _rec_status(st, "rnn_backward")
    return first


def lstm_forward(out, cs, gates, x, h0, c0, w_ih, w_hh, b_ih, b_hh, bint stop_on_nonfinite=False):
    """LSTM forward over the whole sequence (gates i, f, g, o); returns the
    first step whose h or c is non-finite (-1 if none)."""
    cdef _RecCall c
    _rec_start(&c, x, w_hh, 4)
    cdef int64_t T = c.T, B = c.B, I = c.I, H = c.H
    cdef void *px, *pwhh, *pwih, *ph0
    _rec_inputs(&c, 4, x, w_ih, w_hh, h0, &px, &pwhh, &pwih, &ph0)
    cdef void *pc0 = _rec_arr(&c, c0, "c0", 2, B, H, 0, False, True)
    cdef void *pbih = _rec_arr(&c, b_ih, "b_ih", 1, 4 * H, 0, 0, False, True)
    cdef void *pbhh = _rec_arr(&c, b_hh, "b_hh", 1, 4 * H, 0, 0, False, True)
    cdef void *pout = _rec_arr(&c, out, "out", 3, T, B, H, True, False)
    cdef void *pcs = _rec_arr(&c, cs, "cs", 3, T, B, H, True, False)
    cdef void *pg = _rec_arr(&c, gates, "gates", 3, T, B, 4 * H, True, False)
    cdef lstm_forward_fn *fn = &gc_lstm_forward_f32 if c.typenum == cnp.NPY_FLOAT32 else &gc_lstm_forward_f64
    cdef int st
    cdef int64_t first = -1
    with nogil:
        st = fn(pout, pcs, pg, px, ph0, pc0, pwih, pwhh, pbih, pbhh, T, B, I, H, stop_on_nonfinite,
                &first)
    _rec_status(st, "lstm_forward")
    return first


def lstm_backward(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, d_cT, x, h0,
                  c0, out, cs, gates, w_ih, w_hh, truncate=None, bint stop_on_nonfinite=False,
                  cell_norms=None):
    """LSTM BPTT over the whole sequence; consumes (overwrites) ``gates``.
    ``cell_norms`` (T,) float64 or None receives ||dL/dc_t||. Returns the
    first step (backward order) whose dh or dc is non-finite."""
    cdef _RecCall c
    _rec_start(&c, x, w_hh, 4)
    cdef int64_t k = _rec_truncate(truncate)
    cdef int64_t T = c.T, B = c.B, I = c.I, H = c.H
    cdef void *px, *pwhh, *pwih, *ph0
    _rec_inputs(&c, 4, x, w_ih, w_hh, h0, &px, &pwhh, &pwih, &ph0)
    cdef void *pc0 = _rec_arr(&c, c0, "c0", 2, B, H, 0, False, True)
    cdef void *pout = _rec_arr(&c, out, "out", 3, T, B, H, False, False)
    cdef void *pcs = _rec_arr(&c, cs, "cs", 3, T, B, H, False, False)
    cdef void *pdout = _rec_arr(&c, d_out, "d_out", 3, T, B, H, False, True)
    cdef void *pdhT = _rec_arr(&c, d_hT, "d_hT", 2, B, H, 0, False, True)
    cdef void *pdcT = _rec_arr(&c, d_cT, "d_cT", 2, B, H, 0, False, True)
    cdef void *pg = _rec_arr(&c, gates, "gates", 3, T, B, 4 * H, True, False)
    cdef void *pdx = _rec_arr(&c, dx, "dx", 3, T, B, I, True, True)
    cdef void *pdh0 = _rec_arr(&c, dh0, "dh0", 2, B, H, 0, True, True)
    cdef void *pdc0 = _rec_arr(&c, dc0, "dc0", 2, B, H, 0, True, True)
    cdef void *pdwih, *pdwhh, *pdbih, *pdbhh
    _rec_param_grads(&c, 4, dw_ih, dw_hh, db_ih, db_hh, &pdwih, &pdwhh, &pdbih, &pdbhh)
    cdef double *pn = <double *>_rec_arr(&c, step_norms, "step_norms", -1, T, 0, 0, True, True)
    cdef double *pcn = <double *>_rec_arr(&c, cell_norms, "cell_norms", -1, T, 0, 0, True, True)
    cdef lstm_backward_fn *fn = &gc_lstm_backward_f32 if c.typenum == cnp.NPY_FLOAT32 else &gc_lstm_backward_f64
    cdef int st
    cdef int64_t first = -1
    with nogil:
        st = fn(pdx, pdh0, pdc0, pdwih, pdwhh, pdbih, pdbhh, pn, pcn, pdout, pdhT, pdcT, px, ph0,
                pc0, pout, pcs, pg, pwih, pwhh, T, B, I, H, k, stop_on_nonfinite, &first)
    _rec_status(st, "lstm_backward")
    return first


def gru_forward(out, gates, x, h0, w_ih, w_hh, b_ih, b_hh, bint stop_on_nonfinite=False):
    """GRU forward over the whole sequence (gates r, z, n); ``gates`` (T, B, 4H)
    receives r, z, n, hn. Returns the first non-finite step (-1 if none)."""
    cdef _RecCall c
    _rec_start(&c, x, w_hh, 3)
    cdef int64_t T = c.T, B = c.B, I = c.I, H = c.H
    cdef void *px, *pwhh, *pwih, *ph0
    _rec_inputs(&c, 3, x, w_ih, w_hh, h0, &px, &pwhh, &pwih, &ph0)
    cdef void *pbih = _rec_arr(&c, b_ih, "b_ih", 1, 3 * H, 0, 0, False, True)
    cdef void *pbhh = _rec_arr(&c, b_hh, "b_hh", 1, 3 * H, 0, 0, False, True)
    cdef void *pout = _rec_arr(&c, out, "out", 3, T, B, H, True, False)
    cdef void *pg = _rec_arr(&c, gates, "gates", 3, T, B, 4 * H, True, False)
    cdef gru_forward_fn *fn = &gc_gru_forward_f32 if c.typenum == cnp.NPY_FLOAT32 else &gc_gru_forward_f64
    cdef int st
    cdef int64_t first = -1
    with nogil:
        st = fn(pout, pg, px, ph0, pwih, pwhh, pbih, pbhh, T, B, I, H, stop_on_nonfinite, &first)
    _rec_status(st, "gru_forward")
    return first


def gru_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, x, h0, out, gates,
                 w_ih, w_hh, truncate=None, bint stop_on_nonfinite=False):
    """GRU BPTT over the whole sequence; consumes (overwrites) ``gates``.
    Returns the first step (backward order) whose dh is non-finite."""
    cdef _RecCall c
    _rec_start(&c, x, w_hh, 3)
    cdef int64_t k = _rec_truncate(truncate)
    cdef int64_t T = c.T, B = c.B, I = c.I, H = c.H
    cdef void *px, *pwhh, *pwih, *ph0
    _rec_inputs(&c, 3, x, w_ih, w_hh, h0, &px, &pwhh, &pwih, &ph0)
    cdef void *pout = _rec_arr(&c, out, "out", 3, T, B, H, False, False)
    cdef void *pdout = _rec_arr(&c, d_out, "d_out", 3, T, B, H, False, True)
    cdef void *pdhT = _rec_arr(&c, d_hT, "d_hT", 2, B, H, 0, False, True)
    cdef void *pg = _rec_arr(&c, gates, "gates", 3, T, B, 4 * H, True, False)
    cdef void *pdx = _rec_arr(&c, dx, "dx", 3, T, B, I, True, True)
    cdef void *pdh0 = _rec_arr(&c, dh0, "dh0", 2, B, H, 0, True, True)
    cdef void *pdwih, *pdwhh, *pdbih, *pdbhh
    _rec_param_grads(&c, 3, dw_ih, dw_hh, db_ih, db_hh, &pdwih, &pdwhh, &pdbih, &pdbhh)
    cdef double *pn = <double *>_rec_arr(&c, step_norms, "step_norms", -1, T, 0, 0, True, True)
    cdef gru_backward_fn *fn = &gc_gru_backward_f32 if c.typenum == cnp.NPY_FLOAT32 else &gc_gru_backward_f64
    cdef int st
    cdef int64_t first = -1
    with nogil:
        st = fn(pdx, pdh0, pdwih, pdwhh, pdbih, pdbhh, pn, pdout, pdhT, px, ph0, pout, pg, pwih,
                pwhh, T, B, I, H, k, stop_on_nonfinite, &first)
    _rec_status(st, "gru_backward")
    return first


def recurrent_activation(y, x, str which):
    """y = tanh(x) or sigmoid(x) with the element functions the fused cells use
    (for accuracy tests). x, y: same dtype, C-contiguous, same shape."""
    if which not in ("tanh", "sigmoid"):
        raise ValueError(f"which: expected 'tanh' or 'sigmoid', got {which!r}")
    check_float_array(x, "x", False)
    check_float_array(y, "y", True)
    if not x.flags.c_contiguous:
        raise ValueError(f"x: expected a C-contiguous array, got strides {x.strides}")
    if x.dtype != y.dtype or x.shape != y.shape:
        raise ValueError(f"y: expected dtype {x.dtype} and shape {x.shape}, got {y.dtype} {y.shape}")
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>y)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int64_t n = x.size
    cdef int w = 0 if which == "tanh" else 1
    cdef bint f32 = x.dtype == np.float32
    with nogil:
        if f32:
            gc_rec_act_f32(py, px, n, w)
        else:
            gc_rec_act_f64(py, px, n, w)
