"""Experiment 3: backpropagation through time.

``bptt_profile`` runs a recurrent cell over ``T + 1`` steps whose hidden
states are labelled ``h_0 .. h_T``, puts the loss on the last one
(``L = <h_T, u>`` with a fixed unit vector ``u``) and records
``norms[t] = ||dL/dh_t||`` for ``t = 0..T``. The recurrent weight is set
exactly to ``spectral_radius * Q`` with ``Q`` a random orthogonal matrix
(for LSTM/GRU: every gate's H x H block), so with the identity nonlinearity
every singular value of ``dh_T/dh_0`` is ``rho^T`` and the profile grows by
exactly ``rho^T``: 1.01^100 = 2.7048, 0.99^100 = 0.3660. With tanh the same
number is an upper bound (tanh' <= 1).

``engine="cell"`` uses :class:`gradcore.nn.RNN` / ``LSTM`` / ``GRU`` and their
``timestep_grad_norms``; ``engine="numpy"`` (Elman RNN only) computes the
same profile with explicit step-by-step NumPy maths (the cross-check);
``"auto"`` prefers the cell and falls back to NumPy for the RNN when
gradcore.nn.RNN is not available.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence

import numpy as np

from ._build import activation_grad, seeds
from ._common import MARKERS, ExperimentResult, ProfileSweep, label_axes, new_figure, text_table
from ._spec import DTYPE, SEED, Arg, Command

__all__ = ["bptt_profile", "bptt_sweep", "BPTTProfile", "BPTTSweep", "CELLS", "NONLINEARITIES"]

from .._contract import CELLS, RNN_NONLINEARITIES as NONLINEARITIES, check_cell, check_nonlinearity

ENGINES = ("auto", "cell", "numpy")


def _orthogonal(rng, n: int) -> np.ndarray:
    a = rng.standard_normal((n, n))
    q, r = np.linalg.qr(a)
    return q * np.sign(np.diag(r))


def _numpy_rnn(x, w_ih, w_hh, b, nonlinearity, u):
    """Elman RNN forward and BPTT in plain NumPy: returns ||dL/dh_t|| for
    every step (h_t for t = 0..T are the T + 1 outputs)."""
    steps = x.shape[0]
    H = w_hh.shape[0]
    h = np.zeros((x.shape[1], H))
    hs = []
    for t in range(steps):
        z = x[t] @ w_ih.T + h @ w_hh.T + b
        h = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "identity": lambda v: v}[nonlinearity](z)
        hs.append(h)
    norms = np.empty(steps)
    g = np.broadcast_to(u, hs[-1].shape).copy()
    for t in range(steps - 1, -1, -1):
        norms[t] = np.linalg.norm(g)
        g = activation_grad(nonlinearity, hs[t], g) @ w_hh
    return norms


def _cell_class(cell: str):
    from .. import nn

    name = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell]
    cls = getattr(nn, name, None)
    if cls is None:
        raise ImportError(f"gradcore.nn.{name} is not available in this build")
    return cls


def make_cell(cell: str, input_size: int, hidden: int, nonlinearity: str, spectral_radius: float,
              seed, dtype="float64"):
    """A gradcore recurrent cell whose recurrent weights are exactly
    ``spectral_radius * Q`` (orthogonal Q per gate block), biases zero."""
    cls = _cell_class(cell)
    s = seeds(seed, 2)
    if cell == "rnn":
        m = cls(input_size, hidden, nonlinearity=nonlinearity, dtype=dtype, seed=s[0])
    else:
        m = cls(input_size, hidden, dtype=dtype, seed=s[0])
    rng = np.random.default_rng(s[1])
    w_hh = m.p["weight_hh"]
    gates = w_hh.shape[0] // hidden
    for g in range(gates):
        w_hh[g * hidden:(g + 1) * hidden] = spectral_radius * _orthogonal(rng, hidden)
    for name in ("bias_ih", "bias_hh"):
        if name in m.p:
            m.p[name][...] = 0.0
    return m


class BPTTProfile(ExperimentResult):
    """``norms[t] = ||dL/dh_t||`` for t = 0..T (loss on h_T), ``growth`` =
    norms[0] / norms[T], and ``theory`` = spectral_radius^T (exact for the
    identity RNN, an upper bound for tanh)."""

    name = "bptt"

    def __init__(self, params, norms, engine):
        self.params = params
        self.cell = params["cell"]
        self.T = params["T"]
        self.spectral_radius = params["spectral_radius"]
        self.nonlinearity = params["nonlinearity"]
        self.norms = norms
        self.engine = engine
        # exact for the identity RNN, an upper bound for tanh/relu (|phi'| <= 1);
        # no closed form for the gated cells
        self.theory = float(self.spectral_radius) ** self.T if self.cell == "rnn" else math.nan
        self.title = (f"BPTT: {self.cell} ({self.nonlinearity}), spectral radius {self.spectral_radius:g}, "
                      f"T = {self.T}: ||dL/dh_0|| / ||dL/dh_T|| = {self.growth:.6g}")

    @property
    def growth(self) -> float:
        return float(self.norms[0] / self.norms[-1])

    @property
    def first_nonfinite_step(self):
        bad = np.flatnonzero(~np.isfinite(self.norms))
        return int(bad[-1]) if bad.size else None

    def _theory_at(self, t):
        if self.cell != "rnn":
            return math.nan
        return self.norms[-1] * self.spectral_radius ** (self.T - t)

    def rows(self):
        return ["t", "||dL/dh_t||", "theory rho^(T-t)"], [
            [t, self.norms[t], self._theory_at(t)] for t in range(self.T + 1)]

    def table(self) -> str:
        idx = sorted(set(np.linspace(0, self.T, min(self.T + 1, 11)).round().astype(int).tolist()))
        rows = [[t, self.norms[t], self._theory_at(t)] for t in idx]
        return text_table(["t", "||dL/dh_t||", "theory"], rows, self.title)

    def metrics(self) -> Dict[str, Any]:
        return {"growth": self.growth, "theory": self.theory,
                "log_growth_per_step": math.log(self.growth) / self.T if self.growth > 0 else math.nan}

    def caption(self) -> str:
        head = (f"Norm of the gradient of the last-step loss with respect to each hidden state h_t of a "
                f"{self.cell} whose recurrent weight blocks have spectral radius {self.spectral_radius:g}")
        if self.cell == "rnn":
            return head + (": each step back in time multiplies it by at most the spectral radius "
                           "(exactly, with the identity nonlinearity; dashed: rho^(T-t)).")
        return head + ": the gates scale it further, step by step."

    def _figure(self):
        fig, (ax,) = new_figure()
        t = np.arange(self.T + 1)
        ax.semilogy(t, self.norms, label="||dL/dh_t||")
        if self.cell == "rnn":
            ax.semilogy(t, self.norms[-1] * self.spectral_radius ** (self.T - t), "k--", label="rho^(T-t)")
        ax.set_xlabel("time step t")
        ax.set_ylabel("gradient norm")
        ax.set_title(self.title.split(":")[0])
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
        return fig


def bptt_profile(cell: str = "rnn", T: int = 100, hidden: int = 32, spectral_radius: float = 1.01,
                 nonlinearity: str = "identity", batch: int = 1, input_size: int = 4, seed: int = 0,
                 dtype: str = "float64", engine: str = "auto") -> BPTTProfile:
    """Record ``||dL/dh_t||`` for t = 0..T with the loss on the last step (see
    the module docstring)."""
    check_cell(cell)
    check_nonlinearity(nonlinearity)
    for name, v in (("T", T), ("hidden", hidden), ("batch", batch), ("input_size", input_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    r = float(spectral_radius)
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"spectral_radius: expected a finite number >= 0, got {spectral_radius!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine: expected 'auto', 'cell' or 'numpy', got {engine!r}")
    T, hidden, batch, input_size = int(T), int(hidden), int(batch), int(input_size)
    s = seeds(seed, 3)
    rng = np.random.default_rng(s[0])
    x = rng.standard_normal((T + 1, batch, input_size))
    u = rng.standard_normal(hidden)
    u /= np.linalg.norm(u) * math.sqrt(batch)
    params = dict(cell=cell, T=T, hidden=hidden, spectral_radius=r, nonlinearity=nonlinearity, batch=batch,
                  input_size=input_size, seed=seed, dtype=str(np.dtype(dtype)))
    use_cell = engine == "cell"
    if engine == "auto":
        try:
            _cell_class(cell)
            use_cell = True
        except ImportError:
            if cell != "rnn":
                raise
    with np.errstate(all="ignore"):
        if use_cell:
            m = make_cell(cell, input_size, hidden, nonlinearity, r, s[1], dtype)
            dt = np.dtype(dtype)
            out, _ = m.forward(x.astype(dt))
            d_out = np.zeros(out.shape, dtype=dt)
            d_out[-1] = u.astype(dt)
            m.zero_grad()
            m.backward(d_out)
            norms = np.asarray(m.timestep_grad_norms, dtype=np.float64).copy()
            return BPTTProfile(params, norms, "cell")
        if cell != "rnn":
            raise ValueError(f"engine='numpy' supports cell='rnn' only, got {cell!r}")
        srng = np.random.default_rng(s[1])
        w_ih = srng.standard_normal((hidden, input_size)) / math.sqrt(input_size)
        w_hh = r * _orthogonal(srng, hidden)
        norms = _numpy_rnn(x, w_ih, w_hh, np.zeros(hidden), nonlinearity, u)
    return BPTTProfile(params, norms, "numpy")


class BPTTSweep(ProfileSweep):
    """``bptt_profile`` over spectral radii x lengths: ``profiles`` and a
    table of the growth ||dL/dh_0|| / ||dL/dh_T|| against rho^T."""

    name = "bptt"
    title_format = ("BPTT gradient growth ||dL/dh_0|| / ||dL/dh_T||: {cell} ({nonlinearity}), by spectral radius "
                    "and length")

    def rows(self):
        header = ["spectral_radius", "T", "t", "||dL/dh_t||"]
        rows = []
        for p in self.profiles:
            rows.extend([p.spectral_radius, p.T, t, p.norms[t]] for t in range(p.T + 1))
        return header, rows

    def table(self) -> str:
        rows = [[p.spectral_radius, p.T, p.growth, p.theory] for p in self.profiles]
        return text_table(["radius", "T", "growth", "rho^T"], rows, self.title)

    def metrics(self) -> Dict[str, Any]:
        return {f"growth_r{p.spectral_radius:g}_T{p.T}": p.growth for p in self.profiles}

    def caption(self) -> str:
        return ("Gradient norm with respect to each hidden state, loss on the last step, for several "
                "spectral radii of the recurrent weight at the longest length: below 1 the gradient "
                "vanishes geometrically back in time, above 1 it explodes.")

    def _figure(self):
        fig, (ax,) = new_figure(width=6.0)
        Tmax = max(p.T for p in self.profiles)
        theory_drawn = False
        for i, p in enumerate(pp for pp in self.profiles if pp.T == Tmax):
            t = np.arange(p.T + 1)
            with np.errstate(all="ignore"):
                ax.semilogy(t, p.norms / p.norms[-1], marker=MARKERS[i % 8], markevery=max(1, Tmax // 10),
                            ms=4, label=f"rho = {p.spectral_radius:g}")
                if p.cell == "rnn" and p.nonlinearity == "identity":
                    ax.semilogy(t, float(p.spectral_radius) ** (p.T - t), color="k", ls=":", lw=0.8,
                                label=None if theory_drawn else "theory rho^(T-t) (dotted)")
                    theory_drawn = True
        label_axes(ax, "time step t (loss at T)", "||dL/dh_t|| / ||dL/dh_T||",
                   f"BPTT profiles: gradient through time, T = {Tmax}", legend=True)
        return fig


def bptt_sweep(cell: str = "rnn", radii: Sequence[float] = (0.9, 0.99, 1.0, 1.01, 1.1),
               lengths: Sequence[int] = (50, 100, 200), hidden: int = 32, nonlinearity: str = "identity",
               batch: int = 1, seed: int = 0, dtype: str = "float64", engine: str = "auto",
               input_size: int = 4) -> BPTTSweep:
    """``bptt_profile`` for every (radius, length)."""
    profiles = [bptt_profile(cell, T, hidden, r, nonlinearity, batch, input_size, seed, dtype, engine)
                for r in radii for T in lengths]
    params = dict(cell=cell, radii=list(radii), lengths=list(lengths), hidden=hidden,
                  nonlinearity=nonlinearity, batch=batch, input_size=input_size, seed=seed, dtype=dtype)
    return BPTTSweep(profiles, params)


#: ``gradcore bptt``
CLI = Command(bptt_sweep, (
    Arg("cell", "recurrent cell", choices=CELLS),
    Arg("lengths", "sequence length(s)", "count", flag="T"),
    Arg("radii", "spectral radius (radii) of the recurrent weight", "nonneg", flag="radius"),
    Arg("hidden", "hidden size", "count"),
    Arg("nonlinearity", "RNN nonlinearity", choices=NONLINEARITIES),
    Arg("batch", "batch size", "count"),
    Arg("input_size", "input features per step", "count"),
    Arg("engine", "gradcore.nn cell or explicit NumPy maths (rnn only)", choices=ENGINES),
    SEED, DTYPE,
), report="bptt")
