# Recurrent pass plans (private, C backend only): one layer and direction's
# forward / BPTT kernel calls with the arrays the layer owns bound once per
# (T, B): parameters, their gradients, the sequence buffers. A call hands
# over only the per-call arrays (x, states, d_out, dx) and goes through the
# public wrappers of _kernels_rnn.pxi, so every argument meets the same
# checks (and messages) as a direct call on every call; what the plan saves
# is the Python around it (argument marshalling, the cell dispatch, and the
# fresh dh0 / dc0 / step-norm arrays, allocated here in C).
#
# Contract: _RecurrentPlan(G, bufs, w_ih, w_hh, b_ih, b_hh, dw_ih, dw_hh,
# db_ih, db_hh, act) with G = 1 (Elman RNN, act its nonlinearity), 4 (LSTM)
# or 3 (GRU) and bufs the driver's sequence buffers ("out", and "dz" /
# "cs", "gates" / "gates"). forward(x, h0, c0, stop) returns the kernel's
# first non-finite step; backward(dx, d_out, d_hT, d_cT, x, h0, c0,
# truncate, stop) returns (first, dh0, step_norms, dc0, cell_norms), dc0 /
# cell_norms None except for LSTM. gradcore.nn._recurrent is the caller.

cdef class _RecurrentPlan:
    cdef int G
    cdef object w_ih, w_hh, b_ih, b_hh, dw_ih, dw_hh, db_ih, db_hh, act
    cdef object out, cs, gates, dz
    cdef cnp.npy_intp hdims[2]
    cdef cnp.npy_intp T
    cdef int typenum

    def __init__(self, int G, dict bufs, w_ih, w_hh, b_ih, b_hh, dw_ih, dw_hh, db_ih, db_hh, act):
        if G not in (1, 3, 4):
            raise ValueError(f"G: expected 1 (RNN), 3 (GRU) or 4 (LSTM), got {G}")
        out = bufs["out"]
        check_float_array(out, "out", True)
        check_float_array(w_hh, "w_hh", False)
        if out.ndim != 3 or w_hh.ndim != 2:
            raise ValueError("out / w_hh: expected (T, B, H) and (G*H, H) arrays")
        self.G = G
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = w_ih, w_hh, b_ih, b_hh
        self.dw_ih, self.dw_hh, self.db_ih, self.db_hh = dw_ih, dw_hh, db_ih, db_hh
        self.act = act
        self.out = out
        self.cs = bufs.get("cs")
        self.gates = bufs.get("gates")
        self.dz = bufs.get("dz")
        self.T, self.hdims[0], self.hdims[1] = out.shape
        self.typenum = cnp.PyArray_TYPE(<cnp.ndarray>out)

    def forward(self, x, h0, c0, bint stop):
        """The forward kernel on x (T, B, I) from h0 / c0 (None: zeros)."""
        if self.G == 1:
            return rnn_forward(self.out, x, h0, self.w_ih, self.w_hh, self.b_ih, self.b_hh,
                               self.act, stop)
        if self.G == 4:
            return lstm_forward(self.out, self.cs, self.gates, x, h0, c0, self.w_ih, self.w_hh,
                                self.b_ih, self.b_hh, stop)
        return gru_forward(self.out, self.gates, x, h0, self.w_ih, self.w_hh, self.b_ih,
                           self.b_hh, stop)

    def backward(self, dx, d_out, d_hT, d_cT, x, h0, c0, truncate, bint stop):
        """BPTT of the forward on x from h0 / c0 into dx and the bound
        gradients; dh0 / dc0 / the step norms are new arrays."""
        dh0 = cnp.PyArray_EMPTY(2, self.hdims, self.typenum, 0)
        norms = cnp.PyArray_EMPTY(1, &self.T, cnp.NPY_FLOAT64, 0)
        dc0 = cnorms = None
        if self.G == 1:
            first = rnn_backward(dx, dh0, self.dw_ih, self.dw_hh, self.db_ih, self.db_hh, self.dz,
                                 norms, d_out, d_hT, x, h0, self.out, self.w_ih, self.w_hh,
                                 self.act, truncate, stop)
        elif self.G == 4:
            dc0 = cnp.PyArray_EMPTY(2, self.hdims, self.typenum, 0)
            cnorms = cnp.PyArray_EMPTY(1, &self.T, cnp.NPY_FLOAT64, 0)
            first = lstm_backward(dx, dh0, dc0, self.dw_ih, self.dw_hh, self.db_ih, self.db_hh,
                                  norms, d_out, d_hT, d_cT, x, h0, c0, self.out, self.cs,
                                  self.gates, self.w_ih, self.w_hh, truncate, stop, cnorms)
        else:
            first = gru_backward(dx, dh0, self.dw_ih, self.dw_hh, self.db_ih, self.db_hh, norms,
                                 d_out, d_hT, x, h0, self.out, self.gates, self.w_ih, self.w_hh,
                                 truncate, stop)
        return first, dh0, norms, dc0, cnorms

    def __reduce__(self):
        raise TypeError("_RecurrentPlan: a plan is a per-call cache and is never pickled")
