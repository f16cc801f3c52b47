# Recurrent kernels: RNN, LSTM, GRU forward and BPTT (csrc/rnn.c, lstm.c, gru.c).
# Contract: docs/architecture.md, "Recurrent networks". Every argument is
# validated before the C call; the C call runs with the GIL released.

cdef extern from "gradcore.h" nogil:
    int gc_rnn_forward_f32(float *out, const float *x, const float *h0, const float *w_ih,
                           const float *w_hh, const float *b_ih, const float *b_hh, int64_t T,
                           int64_t B, int64_t In, int64_t H, int act, int stop_on_nonfinite,
                           int64_t *first_nonfinite)
    int gc_rnn_forward_f64(double *out, const double *x, const double *h0, const double *w_ih,
                           const double *w_hh, const double *b_ih, const double *b_hh, int64_t T,
                           int64_t B, int64_t In, int64_t H, int act, int stop_on_nonfinite,
                           int64_t *first_nonfinite)
    int gc_rnn_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                            float *db_hh, float *dz, double *step_norms, const float *d_out,
                            const float *d_hT, const float *x, const float *h0, const float *out,
                            const float *w_ih, const float *w_hh, int64_t T, int64_t B, int64_t In,
                            int64_t H, int act, int64_t truncate, int stop_on_nonfinite,
                            int64_t *first_nonfinite)
    int gc_rnn_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh, double *db_ih,
                            double *db_hh, double *dz, double *step_norms, const double *d_out,
                            const double *d_hT, const double *x, const double *h0, const double *out,
                            const double *w_ih, const double *w_hh, int64_t T, int64_t B, int64_t In,
                            int64_t H, int act, int64_t truncate, int stop_on_nonfinite,
                            int64_t *first_nonfinite)
    int gc_lstm_forward_f32(float *out, float *cs, float *gates, const float *x, const float *h0,
                            const float *c0, const float *w_ih, const float *w_hh, const float *b_ih,
                            const float *b_hh, int64_t T, int64_t B, int64_t In, int64_t H,
                            int stop_on_nonfinite, int64_t *first_nonfinite)
    int gc_lstm_forward_f64(double *out, double *cs, double *gates, const double *x,
                            const double *h0, const double *c0, const double *w_ih,
                            const double *w_hh, const double *b_ih, const double *b_hh, int64_t T,
                            int64_t B, int64_t In, int64_t H, int stop_on_nonfinite,
                            int64_t *first_nonfinite)
    int gc_lstm_backward_f32(float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                             float *db_ih, float *db_hh, double *step_norms, double *cell_norms, const float *d_out,
                             const float *d_hT, const float *d_cT, const float *x, const float *h0,
                             const float *c0, const float *out, const float *cs, float *gates,
                             const float *w_ih, const float *w_hh, int64_t T, int64_t B, int64_t In,
                             int64_t H, int64_t truncate, int stop_on_nonfinite,
                             int64_t *first_nonfinite)
    int gc_lstm_backward_f64(double *dx, double *dh0, double *dc0, double *dw_ih, double *dw_hh,
                             double *db_ih, double *db_hh, double *step_norms, double *cell_norms, const double *d_out,
                             const double *d_hT, const double *d_cT, const double *x,
                             const double *h0, const double *c0, const double *out,
                             const double *cs, double *gates, const double *w_ih,
                             const double *w_hh, int64_t T, int64_t B, int64_t In, int64_t H,
                             int64_t truncate, int stop_on_nonfinite, int64_t *first_nonfinite)
    int gc_gru_forward_f32(float *out, float *gates, const float *x, const float *h0,
                           const float *w_ih, const float *w_hh, const float *b_ih,
                           const float *b_hh, int64_t T, int64_t B, int64_t In, int64_t H,
                           int stop_on_nonfinite, int64_t *first_nonfinite)
    int gc_gru_forward_f64(double *out, double *gates, const double *x, const double *h0,
                           const double *w_ih, const double *w_hh, const double *b_ih,
                           const double *b_hh, int64_t T, int64_t B, int64_t In, int64_t H,
                           int stop_on_nonfinite, int64_t *first_nonfinite)
    int gc_gru_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                            float *db_hh, double *step_norms, const float *d_out, const float *d_hT,
                            const float *x, const float *h0, const float *out, float *gates,
                            const float *w_ih, const float *w_hh, int64_t T, int64_t B, int64_t In,
                            int64_t H, int64_t truncate, int stop_on_nonfinite,
                            int64_t *first_nonfinite)
    int gc_gru_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh, double *db_ih,
                            double *db_hh, double *step_norms, const double *d_out,
                            const double *d_hT, const double *x, const double *h0,
                            const double *out, double *gates, const double *w_ih,
                            const double *w_hh, int64_t T, int64_t B, int64_t In, int64_t H,
                            int64_t truncate, int stop_on_nonfinite, int64_t *first_nonfinite)
    void gc_rec_act_f32(float *y, const float *x, int64_t n, int which)
    void gc_rec_act_f64(double *y, const double *x, int64_t n, int which)


RNN_NONLINEARITIES = _contract.RNN_NONLINEARITIES

# Argument checks of one recurrent call (dtype from x, sizes, no output
# overlapping another argument): one implementation, shared with the reference.
_RecArgs = _contract.RecurrentArgs


cdef inline void *_rp(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef int64_t _rec_truncate(object truncate) except -1:
    if truncate is None:
        return 0
    if type(truncate) is int and truncate >= 1:
        return truncate
    return _contract.check_truncate(truncate)


cdef int _rec_act(object act) except -1:
    if act == "identity":
        return 0
    if act == "relu":
        return 1
    if act == "tanh":
        return 2
    return _contract.nonlinearity_code(act, "act")


def rnn_forward(out, x, h0, w_ih, w_hh, b_ih, b_hh, act, bint stop_on_nonfinite=False):
    """Elman RNN forward over the whole sequence; returns the first step whose
    state is non-finite (-1 if none). See docs/architecture.md."""
    a = _RecArgs(x, w_hh, 1)
    cdef int64_t T = a.T, B = a.B, I = a.In, H = a.H
    cdef int iact = _rec_act(act)
    a.arr(x, "x", (T, B, I))
    a.arr(w_hh, "w_hh", (H, H))
    a.arr(w_ih, "w_ih", (H, I))
    a.arr(h0, "h0", (B, H), optional=True)
    a.arr(b_ih, "b_ih", (H,), optional=True)
    a.arr(b_hh, "b_hh", (H,), optional=True)
    a.arr(out, "out", (T, B, H), writable=True)
    cdef void *p_out = _rp(out)
    cdef void *p_x = _rp(x)
    cdef void *p_h0 = _rp(h0)
    cdef void *p_wih = _rp(w_ih)
    cdef void *p_whh = _rp(w_hh)
    cdef void *p_bih = _rp(b_ih)
    cdef void *p_bhh = _rp(b_hh)
    cdef bint f32 = a.dtype == np.float32
    cdef int st
    cdef int64_t first = -1
    with nogil:
        if f32:
            st = gc_rnn_forward_f32(<float *>p_out, <const float *>p_x, <const float *>p_h0,
                                    <const float *>p_wih, <const float *>p_whh, <const float *>p_bih,
                                    <const float *>p_bhh, T, B, I, H, iact, stop_on_nonfinite, &first)
        else:
            st = gc_rnn_forward_f64(<double *>p_out, <const double *>p_x, <const double *>p_h0,
                                    <const double *>p_wih, <const double *>p_whh,
                                    <const double *>p_bih, <const double *>p_bhh, T, B, I, H, iact,
                                    stop_on_nonfinite, &first)
    check_status(st, "rnn_forward")
    return first


def rnn_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dz, step_norms, d_out, d_hT, x, h0, out,
                 w_ih, w_hh, act, truncate=None, bint stop_on_nonfinite=False):
    """Elman RNN BPTT over the whole sequence; returns the first step (in
    backward order) whose gradient is non-finite (-1 if none)."""
    a = _RecArgs(x, w_hh, 1)
    cdef int64_t T = a.T, B = a.B, I = a.In, H = a.H
    cdef int iact = _rec_act(act)
    cdef int64_t k = _rec_truncate(truncate)
    a.arr(x, "x", (T, B, I))
    a.arr(w_hh, "w_hh", (H, H))
    a.arr(w_ih, "w_ih", (H, I))
    a.arr(h0, "h0", (B, H), optional=True)
    a.arr(out, "out", (T, B, H))
    a.arr(d_out, "d_out", (T, B, H), optional=True)
    a.arr(d_hT, "d_hT", (B, H), optional=True)
    a.arr(dx, "dx", (T, B, I), writable=True, optional=True)
    a.arr(dh0, "dh0", (B, H), writable=True, optional=True)
    a.arr(dw_ih, "dw_ih", (H, I), writable=True)
    a.arr(dw_hh, "dw_hh", (H, H), writable=True)
    a.arr(db_ih, "db_ih", (H,), writable=True, optional=True)
    a.arr(db_hh, "db_hh", (H,), writable=True, optional=True)
    if dz is None:
        dz = np.empty((T, B, H), dtype=a.dtype)
    a.arr(dz, "dz", (T, B, H), writable=True)
    a.norms(step_norms, "step_norms")
    cdef void *p_dx = _rp(dx)
    cdef void *p_dh0 = _rp(dh0)
    cdef void *p_dwih = _rp(dw_ih)
    cdef void *p_dwhh = _rp(dw_hh)
    cdef void *p_dbih = _rp(db_ih)
    cdef void *p_dbhh = _rp(db_hh)
    cdef void *p_dz = _rp(dz)
    cdef double *p_norms = <double *>_rp(step_norms)
    cdef void *p_dout = _rp(d_out)
    cdef void *p_dhT = _rp(d_hT)
    cdef void *p_x = _rp(x)
    cdef void *p_h0 = _rp(h0)
    cdef void *p_out = _rp(out)
    cdef void *p_wih = _rp(w_ih)
    cdef void *p_whh = _rp(w_hh)
    cdef bint f32 = a.dtype == np.float32
    cdef int st
    cdef int64_t first = -1
    with nogil:
        if f32:
            st = gc_rnn_backward_f32(<float *>p_dx, <float *>p_dh0, <float *>p_dwih, <float *>p_dwhh,
                                     <float *>p_dbih, <float *>p_dbhh, <float *>p_dz, p_norms,
                                     <const float *>p_dout, <const float *>p_dhT, <const float *>p_x,
                                     <const float *>p_h0, <const float *>p_out, <const float *>p_wih,
                                     <const float *>p_whh, T, B, I, H, iact, k, stop_on_nonfinite,
                                     &first)
        else:
            st = gc_rnn_backward_f64(<double *>p_dx, <double *>p_dh0, <double *>p_dwih,
                                     <double *>p_dwhh, <double *>p_dbih, <double *>p_dbhh,
                                     <double *>p_dz, p_norms, <const double *>p_dout,
                                     <const double *>p_dhT, <const double *>p_x,
                                     <const double *>p_h0, <const double *>p_out,
                                     <const double *>p_wih, <const double *>p_whh, T, B, I, H, iact,
                                     k, stop_on_nonfinite, &first)
    check_status(st, "rnn_backward")
    return first


def lstm_forward(out, cs, gates, x, h0, c0, w_ih, w_hh, b_ih, b_hh, bint stop_on_nonfinite=False):
    """LSTM forward over the whole sequence (gates i, f, g, o); returns the
    first step whose h or c is non-finite (-1 if none)."""
    a = _RecArgs(x, w_hh, 4)
    cdef int64_t T = a.T, B = a.B, I = a.In, H = a.H
    a.arr(x, "x", (T, B, I))
    a.arr(w_hh, "w_hh", (4 * H, H))
    a.arr(w_ih, "w_ih", (4 * H, I))
    a.arr(h0, "h0", (B, H), optional=True)
    a.arr(c0, "c0", (B, H), optional=True)
    a.arr(b_ih, "b_ih", (4 * H,), optional=True)
    a.arr(b_hh, "b_hh", (4 * H,), optional=True)
    a.arr(out, "out", (T, B, H), writable=True)
    a.arr(cs, "cs", (T, B, H), writable=True)
    a.arr(gates, "gates", (T, B, 4 * H), writable=True)
    cdef void *p_out = _rp(out)
    cdef void *p_cs = _rp(cs)
    cdef void *p_g = _rp(gates)
    cdef void *p_x = _rp(x)
    cdef void *p_h0 = _rp(h0)
    cdef void *p_c0 = _rp(c0)
    cdef void *p_wih = _rp(w_ih)
    cdef void *p_whh = _rp(w_hh)
    cdef void *p_bih = _rp(b_ih)
    cdef void *p_bhh = _rp(b_hh)
    cdef bint f32 = a.dtype == np.float32
    cdef int st
    cdef int64_t first = -1
    with nogil:
        if f32:
            st = gc_lstm_forward_f32(<float *>p_out, <float *>p_cs, <float *>p_g, <const float *>p_x,
                                     <const float *>p_h0, <const float *>p_c0, <const float *>p_wih,
                                     <const float *>p_whh, <const float *>p_bih,
                                     <const float *>p_bhh, T, B, I, H, stop_on_nonfinite, &first)
        else:
            st = gc_lstm_forward_f64(<double *>p_out, <double *>p_cs, <double *>p_g,
                                     <const double *>p_x, <const double *>p_h0, <const double *>p_c0,
                                     <const double *>p_wih, <const double *>p_whh,
                                     <const double *>p_bih, <const double *>p_bhh, T, B, I, H,
                                     stop_on_nonfinite, &first)
    check_status(st, "lstm_forward")
    return first


def lstm_backward(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, d_cT, x, h0,
                  c0, out, cs, gates, w_ih, w_hh, truncate=None, bint stop_on_nonfinite=False,
                  cell_norms=None):
    """LSTM BPTT over the whole sequence; consumes (overwrites) ``gates``.
    ``cell_norms`` (T,) float64 or None receives ||dL/dc_t||. Returns the
    first step (backward order) whose dh or dc is non-finite."""
    a = _RecArgs(x, w_hh, 4)
    cdef int64_t T = a.T, B = a.B, I = a.In, H = a.H
    cdef int64_t k = _rec_truncate(truncate)
    a.arr(x, "x", (T, B, I))
    a.arr(w_hh, "w_hh", (4 * H, H))
    a.arr(w_ih, "w_ih", (4 * H, I))
    a.arr(h0, "h0", (B, H), optional=True)
    a.arr(c0, "c0", (B, H), optional=True)
    a.arr(out, "out", (T, B, H))
    a.arr(cs, "cs", (T, B, H))
    a.arr(d_out, "d_out", (T, B, H), optional=True)
    a.arr(d_hT, "d_hT", (B, H), optional=True)
    a.arr(d_cT, "d_cT", (B, H), optional=True)
    a.arr(gates, "gates", (T, B, 4 * H), writable=True)
    a.arr(dx, "dx", (T, B, I), writable=True, optional=True)
    a.arr(dh0, "dh0", (B, H), writable=True, optional=True)
    a.arr(dc0, "dc0", (B, H), writable=True, optional=True)
    a.arr(dw_ih, "dw_ih", (4 * H, I), writable=True)
    a.arr(dw_hh, "dw_hh", (4 * H, H), writable=True)
    a.arr(db_ih, "db_ih", (4 * H,), writable=True, optional=True)
    a.arr(db_hh, "db_hh", (4 * H,), writable=True, optional=True)
    a.norms(step_norms, "step_norms")
    a.norms(cell_norms, "cell_norms")
    cdef double *p_cnorms = <double *>_rp(cell_norms)
    cdef void *p_dx = _rp(dx)
    cdef void *p_dh0 = _rp(dh0)
    cdef void *p_dc0 = _rp(dc0)
    cdef void *p_dwih = _rp(dw_ih)
    cdef void *p_dwhh = _rp(dw_hh)
    cdef void *p_dbih = _rp(db_ih)
    cdef void *p_dbhh = _rp(db_hh)
    cdef double *p_norms = <double *>_rp(step_norms)
    cdef void *p_dout = _rp(d_out)
    cdef void *p_dhT = _rp(d_hT)
    cdef void *p_dcT = _rp(d_cT)
    cdef void *p_x = _rp(x)
    cdef void *p_h0 = _rp(h0)
    cdef void *p_c0 = _rp(c0)
    cdef void *p_out = _rp(out)
    cdef void *p_cs = _rp(cs)
    cdef void *p_g = _rp(gates)
    cdef void *p_wih = _rp(w_ih)
    cdef void *p_whh = _rp(w_hh)
    cdef bint f32 = a.dtype == np.float32
    cdef int st
    cdef int64_t first = -1
    with nogil:
        if f32:
            st = gc_lstm_backward_f32(<float *>p_dx, <float *>p_dh0, <float *>p_dc0,
                                      <float *>p_dwih, <float *>p_dwhh, <float *>p_dbih,
                                      <float *>p_dbhh, p_norms, p_cnorms, <const float *>p_dout,
                                      <const float *>p_dhT, <const float *>p_dcT,
                                      <const float *>p_x, <const float *>p_h0, <const float *>p_c0,
                                      <const float *>p_out, <const float *>p_cs, <float *>p_g,
                                      <const float *>p_wih, <const float *>p_whh, T, B, I, H, k,
                                      stop_on_nonfinite, &first)
        else:
            st = gc_lstm_backward_f64(<double *>p_dx, <double *>p_dh0, <double *>p_dc0,
                                      <double *>p_dwih, <double *>p_dwhh, <double *>p_dbih,
                                      <double *>p_dbhh, p_norms, p_cnorms, <const double *>p_dout,
                                      <const double *>p_dhT, <const double *>p_dcT,
                                      <const double *>p_x, <const double *>p_h0,
                                      <const double *>p_c0, <const double *>p_out,
                                      <const double *>p_cs, <double *>p_g, <const double *>p_wih,
                                      <const double *>p_whh, T, B, I, H, k, stop_on_nonfinite,
                                      &first)
    check_status(st, "lstm_backward")
    return first


def gru_forward(out, gates, x, h0, w_ih, w_hh, b_ih, b_hh, bint stop_on_nonfinite=False):
    """GRU forward over the whole sequence (gates r, z, n); ``gates`` (T, B, 4H)
    receives r, z, n, hn. Returns the first non-finite step (-1 if none)."""
    a = _RecArgs(x, w_hh, 3)
    cdef int64_t T = a.T, B = a.B, I = a.In, H = a.H
    a.arr(x, "x", (T, B, I))
    a.arr(w_hh, "w_hh", (3 * H, H))
    a.arr(w_ih, "w_ih", (3 * H, I))
    a.arr(h0, "h0", (B, H), optional=True)
    a.arr(b_ih, "b_ih", (3 * H,), optional=True)
    a.arr(b_hh, "b_hh", (3 * H,), optional=True)
    a.arr(out, "out", (T, B, H), writable=True)
    a.arr(gates, "gates", (T, B, 4 * H), writable=True)
    cdef void *p_out = _rp(out)
    cdef void *p_g = _rp(gates)
    cdef void *p_x = _rp(x)
    cdef void *p_h0 = _rp(h0)
    cdef void *p_wih = _rp(w_ih)
    cdef void *p_whh = _rp(w_hh)
    cdef void *p_bih = _rp(b_ih)
    cdef void *p_bhh = _rp(b_hh)
    cdef bint f32 = a.dtype == np.float32
    cdef int st
    cdef int64_t first = -1
    with nogil:
        if f32:
            st = gc_gru_forward_f32(<float *>p_out, <float *>p_g, <const float *>p_x,
                                    <const float *>p_h0, <const float *>p_wih, <const float *>p_whh,
                                    <const float *>p_bih, <const float *>p_bhh, T, B, I, H,
                                    stop_on_nonfinite, &first)
        else:
            st = gc_gru_forward_f64(<double *>p_out, <double *>p_g, <const double *>p_x,
                                    <const double *>p_h0, <const double *>p_wih,
                                    <const double *>p_whh, <const double *>p_bih,
                                    <const double *>p_bhh, T, B, I, H, stop_on_nonfinite, &first)
    check_status(st, "gru_forward")
    return first


def gru_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, x, h0, out, gates,
                 w_ih, w_hh, truncate=None, bint stop_on_nonfinite=False):
    """GRU BPTT over the whole sequence; consumes (overwrites) ``gates``.
    Returns the first step (backward order) whose dh is non-finite."""
    a = _RecArgs(x, w_hh, 3)
    cdef int64_t T = a.T, B = a.B, I = a.In, H = a.H
    cdef int64_t k = _rec_truncate(truncate)
    a.arr(x, "x", (T, B, I))
    a.arr(w_hh, "w_hh", (3 * H, H))
    a.arr(w_ih, "w_ih", (3 * H, I))
    a.arr(h0, "h0", (B, H), optional=True)
    a.arr(out, "out", (T, B, H))
    a.arr(d_out, "d_out", (T, B, H), optional=True)
    a.arr(d_hT, "d_hT", (B, H), optional=True)
    a.arr(gates, "gates", (T, B, 4 * H), writable=True)
    a.arr(dx, "dx", (T, B, I), writable=True, optional=True)
    a.arr(dh0, "dh0", (B, H), writable=True, optional=True)
    a.arr(dw_ih, "dw_ih", (3 * H, I), writable=True)
    a.arr(dw_hh, "dw_hh", (3 * H, H), writable=True)
    a.arr(db_ih, "db_ih", (3 * H,), writable=True, optional=True)
    a.arr(db_hh, "db_hh", (3 * H,), writable=True, optional=True)
    a.norms(step_norms, "step_norms")
    cdef void *p_dx = _rp(dx)
    cdef void *p_dh0 = _rp(dh0)
    cdef void *p_dwih = _rp(dw_ih)
    cdef void *p_dwhh = _rp(dw_hh)
    cdef void *p_dbih = _rp(db_ih)
    cdef void *p_dbhh = _rp(db_hh)
    cdef double *p_norms = <double *>_rp(step_norms)
    cdef void *p_dout = _rp(d_out)
    cdef void *p_dhT = _rp(d_hT)
    cdef void *p_x = _rp(x)
    cdef void *p_h0 = _rp(h0)
    cdef void *p_out = _rp(out)
    cdef void *p_g = _rp(gates)
    cdef void *p_wih = _rp(w_ih)
    cdef void *p_whh = _rp(w_hh)
    cdef bint f32 = a.dtype == np.float32
    cdef int st
    cdef int64_t first = -1
    with nogil:
        if f32:
            st = gc_gru_backward_f32(<float *>p_dx, <float *>p_dh0, <float *>p_dwih, <float *>p_dwhh,
                                     <float *>p_dbih, <float *>p_dbhh, p_norms,
                                     <const float *>p_dout, <const float *>p_dhT, <const float *>p_x,
                                     <const float *>p_h0, <const float *>p_out, <float *>p_g,
                                     <const float *>p_wih, <const float *>p_whh, T, B, I, H, k,
                                     stop_on_nonfinite, &first)
        else:
            st = gc_gru_backward_f64(<double *>p_dx, <double *>p_dh0, <double *>p_dwih,
                                     <double *>p_dwhh, <double *>p_dbih, <double *>p_dbhh, p_norms,
                                     <const double *>p_dout, <const double *>p_dhT,
                                     <const double *>p_x, <const double *>p_h0,
                                     <const double *>p_out, <double *>p_g, <const double *>p_wih,
                                     <const double *>p_whh, T, B, I, H, k, stop_on_nonfinite,
                                     &first)
    check_status(st, "gru_backward")
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
    cdef void *py = _rp(y)
    cdef void *px = _rp(x)
    cdef int64_t n = x.size
    cdef int w = 0 if which == "tanh" else 1
    cdef bint f32 = x.dtype == np.float32
    with nogil:
        if f32:
            gc_rec_act_f32(<float *>py, <const float *>px, n, w)
        else:
            gc_rec_act_f64(<double *>py, <const double *>px, n, w)
