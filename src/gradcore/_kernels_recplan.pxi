# Recurrent pass plans (private, C backend only): one layer and direction's
# forward / BPTT kernel calls with the arrays the layer owns bound once per
# (T, B): parameters, their gradients, the sequence buffers. A call hands
# over only the per-call arrays (x, states, d_out, dx) and goes through the
# public wrappers of _kernels_rnn.pxi, so every argument meets the same
# checks (and messages) as a direct call on every call; what the plan saves
# is the Python around it (argument marshalling, the cell dispatch, the
# records written straight into the layer's __dict__). The fast backward
# (run_backward) writes dh0 / dc0 / the step norms into the plan's scratch
# and records a _PendingRecord for each: the layer's record attributes
# (gradcore.nn._recurrent_records) copy it out into a new array when it is
# first read (the _Record descriptor below), so a record nobody reads
# costs no allocation. Two scratch sets alternate, so a pass that fails
# midway never touches the set the layer's records point at.
#
# Contract: _RecurrentPlan(G, bufs, w_ih, w_hh, b_ih, b_hh, dw_ih, dw_hh,
# db_ih, db_hh, act) with G = 1 (Elman RNN, act its nonlinearity), 4 (LSTM)
# or 3 (GRU) and bufs the driver's sequence buffers ("out", and "dz" /
# "cs", "gates" / "gates"). forward(x, h0, c0, stop) returns the kernel's
# first non-finite step; backward(dx, d_out, d_hT, d_cT, x, h0, c0,
# truncate, stop) returns (first, dh0, step_norms, dc0, cell_norms), dc0 /
# cell_norms None except for LSTM. gradcore.nn._recurrent is the caller.

from cpython.pythread cimport PyThread_get_thread_ident
from cpython.contextvars cimport get_value as _ctx_get
from cpython.long cimport PyLong_AsUnsignedLong
from cpython.object cimport PyObject_GenericGetDict
from cpython.dict cimport PyDict_GetItemWithError

import sys as _sys
_this_module = _sys.modules[__name__]
cdef object _bk_override = None    # gradcore.backend's override ContextVar and default
cdef dict _bk_state = None         # (read when the first plan is made)


cdef bint _c_backend_active():
    """gradcore.backend.kernels() is this module (what the Python caller
    would read; False also when the default is not loaded yet)."""
    o = _ctx_get(_bk_override)
    if o is not None:
        return (<tuple>o)[1] is _this_module
    return _bk_state["module"] is _this_module


cdef object _guard_admits(g):
    """The thread guard's common case for the calling thread: nobody inside
    the tree and the last forward ran in this thread; returns the guard's
    ``fwd`` (this thread's ident, to mark the tree busy with), else None
    (the guarded Python pass then decides)."""
    fwd = g.fwd
    if g.busy != 0 or type(fwd) is not int or fwd == 0:
        return None
    if PyLong_AsUnsignedLong(fwd) != PyThread_get_thread_ident():
        return None
    return fwd


cdef inline bint _holds(dict d, str key, object value) except -1:
    """d[key] is value (False when key is missing)."""
    return PyDict_GetItemWithError(d, key) is <PyObject *>value


cdef inline int _put(dict d, str key, object value) except -1:
    """d[key] = value, skipped when d holds that object already (the
    records a pass rewrites are mostly unchanged: None stays None)."""
    if PyDict_GetItemWithError(d, key) is not <PyObject *>value:
        d[key] = value
    return 0


cdef inline bint _plain(cnp.ndarray a):
    """C-contiguous, aligned and in native byte order: what the kernels take
    as it is (the driver converts or refuses anything else)."""
    return cnp.PyArray_ISCARRAY_RO(a) and cnp.PyArray_ISNOTSWAPPED(a)


cdef class _PendingRecord:
    """A record of a plan's last fast backward (dh0, dc0 or step norms) still
    in the plan's scratch; ``copy()`` returns it as a new array (what the
    layer's attribute then holds). Copies and pickles get the array."""
    cdef readonly object scratch
    _gc_pending = True

    def __cinit__(self, scratch):
        self.scratch = scratch

    def copy(self):
        return cnp.PyArray_NewCopy(<cnp.ndarray>self.scratch, cnp.NPY_CORDER)

    def __reduce__(self):
        return (np.array, (self.scratch,))     # np.array copies (once)


cdef class _Record:
    """Data descriptor of one backward record of a recurrent layer
    (gradcore.nn._recurrent_records): the value in the instance __dict__; a
    _PendingRecord is copied out into a new array on its first read and
    stored there. An unset record is a missing attribute."""
    cdef readonly str name

    def __cinit__(self, str name):
        self.name = name

    def __get__(self, obj, cls):
        if obj is None:
            return self
        cdef dict d = PyObject_GenericGetDict(obj, NULL)
        cdef PyObject *p = PyDict_GetItemWithError(d, self.name)
        if p is NULL:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")
        v = <object>p
        if type(v) is _PendingRecord:
            v = (<_PendingRecord>v).copy()
            d[self.name] = v
        return v

    def __set__(self, obj, value):
        cdef dict d = PyObject_GenericGetDict(obj, NULL)
        d[self.name] = value

    def __delete__(self, obj):
        cdef dict d = PyObject_GenericGetDict(obj, NULL)
        if PyDict_GetItemWithError(d, self.name) is NULL:
            raise AttributeError(self.name)
        del d[self.name]

    def __reduce__(self):
        return (_Record, (self.name,))


cdef class _RecurrentPlan:
    cdef int G
    cdef public bint fast      # run_forward / run_backward may serve the layer's own calls
    cdef public object returned   # what the layer's forward returns (views of out)
    cdef public object dx         # the layer's dx buffer for this shape (None: not made yet)
    cdef cnp.npy_intp I
    cdef object w_ih, w_hh, b_ih, b_hh, dw_ih, dw_hh, db_ih, db_hh, act
    cdef object out, cs, gates, dz
    cdef cnp.npy_intp hdims[2]
    cdef cnp.npy_intp T
    cdef int typenum
    cdef tuple scratch         # two sets (dh0, norms, dc0, cnorms) for run_backward
    cdef tuple marks           # their _PendingRecords, same layout
    cdef int cur               # the set the layer's records may point at

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
        self.I = w_ih.shape[1]
        self.typenum = cnp.PyArray_TYPE(<cnp.ndarray>out)
        self.fast = False
        self.returned = self.dx = None
        self.scratch = self.marks = None
        self.cur = 1
        global _bk_override, _bk_state
        if _bk_state is None:
            from gradcore import backend
            _bk_override, _bk_state = backend._override, backend._state

    def forward(self, x, h0, c0, bint stop):
        """The forward kernel on x (T, B, I) from h0 / c0 (None: zeros)."""
        return self._forward(x, h0, c0, stop)

    cdef object _forward(self, x, h0, c0, bint stop):
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
        if self.G == 4:
            dc0 = cnp.PyArray_EMPTY(2, self.hdims, self.typenum, 0)
            cnorms = cnp.PyArray_EMPTY(1, &self.T, cnp.NPY_FLOAT64, 0)
        first = self._backward(dx, dh0, norms, dc0, cnorms, d_out, d_hT, d_cT, x, h0, c0,
                               truncate, stop)
        return first, dh0, norms, dc0, cnorms

    cdef object _backward(self, dx, dh0, norms, dc0, cnorms, d_out, d_hT, d_cT, x, h0, c0,
                          truncate, bint stop):
        if self.G == 1:
            return rnn_backward(dx, dh0, self.dw_ih, self.dw_hh, self.db_ih, self.db_hh, self.dz,
                                norms, d_out, d_hT, x, h0, self.out, self.w_ih, self.w_hh,
                                self.act, truncate, stop)
        if self.G == 4:
            return lstm_backward(dx, dh0, dc0, self.dw_ih, self.dw_hh, self.db_ih, self.db_hh,
                                 norms, d_out, d_hT, d_cT, x, h0, c0, self.out, self.cs,
                                 self.gates, self.w_ih, self.w_hh, truncate, stop, cnorms)
        return gru_backward(dx, dh0, self.dw_ih, self.dw_hh, self.db_ih, self.db_hh, norms,
                            d_out, d_hT, x, h0, self.out, self.gates, self.w_ih, self.w_hh,
                            truncate, stop)

    cdef _make_scratch(self):
        sets, marks = [], []
        for _ in range(2):
            a = (cnp.PyArray_EMPTY(2, self.hdims, self.typenum, 0),
                 cnp.PyArray_EMPTY(1, &self.T, cnp.NPY_FLOAT64, 0), None, None)
            if self.G == 4:
                a = a[:2] + (cnp.PyArray_EMPTY(2, self.hdims, self.typenum, 0),
                             cnp.PyArray_EMPTY(1, &self.T, cnp.NPY_FLOAT64, 0))
            sets.append(a)
            marks.append(tuple(None if v is None else _PendingRecord(v) for v in a))
        self.scratch, self.marks = tuple(sets), tuple(marks)

    cdef bint _fits(self, a, cnp.npy_intp last):
        """a is an exact, C-contiguous, aligned, native-order ndarray of the
        plan's dtype and shape (T, B, last)."""
        if not cnp.PyArray_CheckExact(a):
            return False
        cdef cnp.ndarray arr = <cnp.ndarray>a
        if cnp.PyArray_TYPE(arr) != self.typenum or cnp.PyArray_NDIM(arr) != 3 or not _plain(arr):
            return False
        cdef cnp.npy_intp *d = cnp.PyArray_DIMS(arr)
        return d[0] == self.T and d[1] == self.hdims[0] and d[2] == last

    def run_forward(self, m, x, K, bint stop, bint guard):
        """m's forward on x with no initial state, or None (see above); ``K``:
        the backend the caller read (None: the plan reads the active one);
        ``guard``: make the thread guard's common check (no thread inside the
        tree, the last forward ran in this one) here, else leave the call to
        the guarded Python pass."""
        if not self.fast or not self._fits(x, self.I):
            return None
        if (K is not _this_module) if K is not None else not _c_backend_active():
            return None
        cdef dict d = PyObject_GenericGetDict(m, NULL)
        g = d.get("_gc_guard") if guard else None
        if g is None:
            return self._run_forward(m, d, x, stop)
        me = _guard_admits(g)
        if me is None:
            return None
        g.busy = me
        try:
            return self._run_forward(m, d, x, stop)
        finally:
            g.busy = 0

    cdef object _run_forward(self, m, dict d, x, bint stop):
        _put(d, "_layout", None)
        try:
            first = self._forward(x, None, None, stop)
        except (TypeError, ValueError):
            return None
        except KeyboardInterrupt:
            m._drop_cache()
            raise
        d["_x"] = x
        _put(d, "_h0", None)
        _put(d, "_c0", None)
        _put(d, "_cache_ok", True)
        _put(d, "first_nonfinite_grad_step", None)
        _put(d, "timestep_grad_norms", None)
        if self.G == 4:
            _put(d, "timestep_cell_grad_norms", None)
        if first < 0:
            _put(d, "first_nonfinite_state_step", None)
            _put(d, "first_nonfinite_step", None)
            _put(d, "first_nonfinite", None)
        else:
            m._forward_nonfinite(first, stop)
        return self.returned

    cdef bint _fits_state(self, a):
        """a is None or an exact, C-contiguous, aligned, native-order ndarray
        of the plan's dtype and shape (B, H)."""
        if a is None:
            return True
        if not cnp.PyArray_CheckExact(a):
            return False
        cdef cnp.ndarray arr = <cnp.ndarray>a
        if cnp.PyArray_TYPE(arr) != self.typenum or cnp.PyArray_NDIM(arr) != 2 or not _plain(arr):
            return False
        cdef cnp.npy_intp *d = cnp.PyArray_DIMS(arr)
        return d[0] == self.hdims[0] and d[1] == self.hdims[1]

    def run_backward(self, m, d_out, K, bint stop, bint guard, d_hT=None, d_cT=None):
        """m's backward from d_out (None or (T, B, H)) and the final-state
        gradients d_hT / d_cT (None or (B, H) arrays; d_cT for LSTM only),
        with no truncation, after a forward this plan ran, or None (see
        above); ``K`` and ``guard`` as for run_forward."""
        if not self.fast or not (d_out is None or self._fits(d_out, self.hdims[1])):
            return None
        if not self._fits_state(d_hT) or not (self._fits_state(d_cT) if self.G == 4 else d_cT is None):
            return None
        if (K is not _this_module) if K is not None else not _c_backend_active():
            return None
        cdef dict d = PyObject_GenericGetDict(m, NULL)
        g = d.get("_gc_guard") if guard else None
        if g is None:
            return self._run_backward(m, d, d_out, d_hT, d_cT, stop)
        me = _guard_admits(g)
        if me is None:
            return None
        g.busy = me
        try:
            return self._run_backward(m, d, d_out, d_hT, d_cT, stop)
        finally:
            g.busy = 0

    cdef object _run_backward(self, m, dict d, d_out, d_hT, d_cT, bint stop):
        dx = self.dx
        if dx is None or not _holds(d, "_cache_ok", True) or not _holds(d, "_layout", None):
            return None
        if self.scratch is None:
            self._make_scratch()
        cdef int k = 1 - self.cur        # never the set the records may point at
        dh0, norms, dc0, cnorms = <tuple>self.scratch[k]
        try:
            first = self._backward(dx, dh0, norms, dc0, cnorms, d_out, d_hT, d_cT, d["_x"],
                                   d["_h0"], d["_c0"], None, stop)
        except (TypeError, ValueError):
            return None
        except KeyboardInterrupt:
            m._interrupted_backward()
            raise
        self.cur = k
        if self.G != 1:
            d["_cache_ok"] = False          # LSTM / GRU backward consumed the gate cache
        if first < 0:
            marks = <tuple>self.marks[k]
            d["timestep_grad_norms"] = marks[1]
            d["dh0"] = marks[0]
            _put(d, "first_nonfinite_grad_step", None)
            _put(d, "first_nonfinite", None)
            if self.G == 4:
                d["dc0"] = marks[2]
                d["timestep_cell_grad_norms"] = marks[3]
        else:                               # rare: the records as new arrays now
            d["timestep_grad_norms"] = norms.copy()
            m._backward_nonfinite(first, stop, dh0.copy(), None if dc0 is None else dc0.copy(),
                                  None if cnorms is None else cnorms.copy())
        return dx

    def __reduce__(self):
        raise TypeError("_RecurrentPlan: a plan is a per-call cache and is never pickled")
