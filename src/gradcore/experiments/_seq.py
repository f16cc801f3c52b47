"""Recurrent models for the training experiments: a recurrent cell with a
Dense head on the last step (or on every step).

The cell is :class:`gradcore.nn.RNN` / ``LSTM`` / ``GRU``. When this build has
no ``gradcore.nn.RNN``, the Elman RNN falls back to :class:`NumpyRNN`, a
plain NumPy implementation of the same interface (PyTorch weight names,
time-major, ``timestep_grad_norms``) so the experiments still run.
"""

from __future__ import annotations

import math

import numpy as np

from .._contract import check_nonlinearity
from ..nn import Dense, Module
from ..nn.arena import as_float_dtype
from ._build import activation_grad, seeds

_NONLIN = {  # forward; the derivative is activation_grad (one definition for everything)
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "identity": lambda z: z,
}


def orthogonal(rng, n: int) -> np.ndarray:
    a = rng.standard_normal((n, n))
    q, r = np.linalg.qr(a)
    return q * np.sign(np.diag(r))


class NumpyRNN(Module):
    """Elman RNN h_t = act(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh) in plain
    NumPy, time-major (T, B, I); ``forward(x, h0=None) -> (out, h_T)``,
    ``backward(d_out) -> dx``, ``timestep_grad_norms`` = ||dL/dh_t|| per step."""

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", dtype="float32", seed=None):
        check_nonlinearity(nonlinearity, "nonlinearity", "NumpyRNN")
        self.input_size, self.hidden_size, self.nonlinearity = int(input_size), int(hidden_size), nonlinearity
        self.dtype = as_float_dtype(dtype, "NumpyRNN dtype")
        rng = np.random.default_rng(seed)
        k = 1.0 / math.sqrt(hidden_size)
        self._declare("weight_ih", rng.uniform(-k, k, (hidden_size, input_size)).astype(self.dtype))
        self._declare("weight_hh", rng.uniform(-k, k, (hidden_size, hidden_size)).astype(self.dtype))
        self._declare("bias_ih", np.zeros(hidden_size, self.dtype))
        self._declare("bias_hh", np.zeros(hidden_size, self.dtype))
        self._cache = None
        self.timestep_grad_norms = None
        self.first_nonfinite_step = None
        self._finalize()

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, {self.nonlinearity}"

    def forward(self, x, h0=None):
        if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{self._label()}: expected x of shape (T, B, {self.input_size}), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        T, B, _ = x.shape
        f = _NONLIN[self.nonlinearity]
        p = self.p
        h = np.zeros((B, self.hidden_size), self.dtype) if h0 is None else np.asarray(h0, self.dtype).reshape(B, -1)
        pre = x.reshape(T * B, -1) @ p["weight_ih"].T + (p["bias_ih"] + p["bias_hh"])
        pre = pre.reshape(T, B, -1)
        out = np.empty((T, B, self.hidden_size), self.dtype)
        for t in range(T):
            h = f(pre[t] + h @ p["weight_hh"].T)
            out[t] = h
        self._cache = (x, h0 if h0 is None else np.asarray(h0, self.dtype).reshape(B, -1), out)
        return out, out[-1].copy()

    def backward(self, d_out, d_hT=None, truncate=None):
        if self._cache is None:
            raise RuntimeError(f"{self._label()}: backward called before forward")
        x, h0, out = self._cache
        T, B, _ = x.shape
        p, g = self.p, self.g
        dz = np.empty_like(out)
        dh = np.zeros((B, self.hidden_size), self.dtype) if d_hT is None else np.asarray(d_hT, self.dtype).copy()
        norms = np.empty(T)
        for t in range(T - 1, -1, -1):
            dh = dh + d_out[t]
            norms[t] = float(np.linalg.norm(dh.astype(np.float64)))
            dz[t] = activation_grad(self.nonlinearity, out[t], dh)
            dh = dz[t] @ p["weight_hh"]
        self.timestep_grad_norms = norms
        bad = np.flatnonzero(~np.isfinite(norms))
        self.first_nonfinite_step = int(bad[-1]) if bad.size else None
        hprev = np.concatenate([np.zeros((1, B, self.hidden_size), self.dtype) if h0 is None else h0[None],
                                out[:-1]], axis=0)
        dzf = dz.reshape(T * B, -1)
        g["weight_ih"] += dzf.T @ x.reshape(T * B, -1)
        g["weight_hh"] += dzf.T @ hprev.reshape(T * B, -1)
        s = dzf.sum(axis=0)
        g["bias_ih"] += s
        g["bias_hh"] += s
        return (dzf @ p["weight_ih"]).reshape(T, B, -1)


def rnn_available() -> bool:
    from .. import nn

    return hasattr(nn, "RNN")


def make_rnn(cell: str, input_size: int, hidden: int, nonlinearity: str, dtype, seed,
             spectral_radius=None):
    """A recurrent cell (gradcore.nn or the NumPy fallback for "rnn"); with
    ``spectral_radius`` the recurrent weight blocks are set to r * Q."""
    from .. import nn

    s = seeds(seed, 2)
    if cell == "rnn":
        cls = getattr(nn, "RNN", None)
        if cls is None:
            m = NumpyRNN(input_size, hidden, nonlinearity, dtype, s[0])
        else:
            m = cls(input_size, hidden, nonlinearity=nonlinearity, dtype=dtype, seed=s[0])
    else:
        name = {"lstm": "LSTM", "gru": "GRU"}.get(cell)
        if name is None:
            raise ValueError(f"cell: expected one of rnn, lstm, gru, got {cell!r}")
        cls = getattr(nn, name, None)
        if cls is None:
            raise ImportError(f"gradcore.nn.{name} is not available in this build")
        m = cls(input_size, hidden, dtype=dtype, seed=s[0])
    if spectral_radius is not None:
        rng = np.random.default_rng(s[1])
        w = m.p["weight_hh"]
        for k in range(w.shape[0] // hidden):
            w[k * hidden:(k + 1) * hidden] = spectral_radius * orthogonal(rng, hidden)
    return m


class SequenceModel(Module):
    """A recurrent cell followed by a Dense head, on the last step
    (``forward(x) -> (B, out)``) or on every step (``-> (T*B, out)``, rows
    time-major)."""

    def __init__(self, cell: Module, head: Dense, every_step: bool = False):
        self.every_step = bool(every_step)
        self.dtype = cell.dtype
        self.add_module("rnn", cell)
        self.add_module("head", head)
        self._shape = None
        self._finalize()

    def forward(self, x):
        out, _ = self._children["rnn"].forward(x)
        self._shape = out.shape
        head = self._children["head"]
        if self.every_step:
            T, B, H = out.shape
            return head.forward(np.ascontiguousarray(out).reshape(T * B, H))
        return head.forward(np.ascontiguousarray(out[-1]))

    def backward(self, dy):
        if self._shape is None:
            raise RuntimeError("SequenceModel: backward called before forward")
        dh = self._children["head"].backward(dy)
        if self.every_step:
            d_out = np.ascontiguousarray(dh).reshape(self._shape)
        else:
            d_out = np.zeros(self._shape, dtype=self.dtype)
            d_out[-1] = dh
        return self._children["rnn"].backward(d_out)
