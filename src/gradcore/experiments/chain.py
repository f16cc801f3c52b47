"""Experiment 1: the textbook chain of 1x1 layers.

``n_layers`` stacked Dense(1, 1) layers with weight ``w``, bias 0, input
``x`` and ``dL/dy = 1``. Backpropagation multiplies the gradient by
``w * phi'(z_l)`` per layer, so the gradient at layer 1 is the product of
all later factors: w = 2 over 5 identity layers gives [16, 8, 4, 2, 1]
(first layer first), w = 0.5 gives [1/16, ..., 1], and 2.5 over 20 layers
gives 2.5^19 at layer 1 (2.5^20 = 9.09e7 is the output). A sigmoid's
derivative is at most 0.25, so a sigmoid chain shrinks the gradient by at
least ``w * 0.25`` per layer.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence

import numpy as np

from .._contract import ACTIVATIONS, real_arg
from ._common import MARKERS, ExperimentResult, label_axes, new_figure, text_table
from ._spec import Arg, Command
from .theory import dphi, phi

__all__ = ["chain", "chain_table", "ChainResult", "ChainTable"]

ENGINES = ("auto", "dense", "scalar")


def _scalar_chain(w: float, n_layers: int, x: float, activation: str, bias: float):
    """The chain in explicit scalar maths (the cross-check)."""
    f, d = phi(activation), dphi(activation)
    a = [float(x)]
    z = []
    for _ in range(n_layers):
        z.append(w * a[-1] + bias)
        a.append(float(f(np.float64(z[-1]))))
    delta = [0.0] * n_layers  # dL/dz_l
    g = 1.0  # dL/da_L
    for l in range(n_layers - 1, -1, -1):
        delta[l] = g * float(d(np.float64(z[l])))
        g = delta[l] * w
    dw = [delta[l] * a[l] for l in range(n_layers)]
    return np.array(a), np.array(z), np.array(delta), np.array(dw), g


def _dense_chain(w: float, n_layers: int, x: float, activation: str, bias: float):
    """The same chain through gradcore.nn.Dense layers (float64)."""
    from .. import init as ginit
    from ..nn import Dense, Sequential

    layers = [Dense(1, 1, activation=activation, init=ginit.constant(w), dtype="float64")
              for _ in range(n_layers)]
    net = Sequential(*layers)
    for l in range(n_layers):
        net.parameters()[f"{l}.bias"][...] = bias
    net.zero_grad()
    y = net.forward(np.array([[x]], dtype=np.float64))
    dx = net.backward(np.ones((1, 1)))
    grads = net.gradients()
    delta = np.array([grads[f"{l}.bias"][0] for l in range(n_layers)])
    dw = np.array([grads[f"{l}.weight"][0, 0] for l in range(n_layers)])
    return float(y[0, 0]), delta, dw, float(dx[0, 0])


class ChainResult(ExperimentResult):
    """Per layer (first layer first): pre-activation ``z``, output ``a``,
    ``preact_grads`` = dL/dz_l (equal to the bias gradients), ``weight_grads``
    = dL/dw_l = dL/dz_l * a_(l-1), and ``factors`` = w * phi'(z_l)."""

    name = "chain"

    def __init__(self, w, n_layers, x, activation, bias, a, z, delta, dw, dx, engine, max_diff):
        self.params = dict(w=w, n_layers=n_layers, x=x, activation=activation, bias=bias)
        self.w, self.n_layers, self.x, self.activation, self.bias = w, n_layers, x, activation, bias
        self.inputs = a[:-1]
        self.activations = a[1:]
        self.output = float(a[-1])
        self.z = z
        self.preact_grads = delta
        self.weight_grads = dw
        self.input_grad = dx
        self.factors = w * dphi(activation)(np.asarray(z, dtype=np.float64))
        self.engine = engine
        self.max_abs_diff = max_diff
        self.title = (f"Chain of {n_layers} 1x1 {activation} layers, w = {w:g}, x = {x:g}: "
                      f"output {self.output:.6g}, layer-1 gradient {delta[0]:.6g}")

    def rows(self):
        header = ["layer", "z", "a", "dL/dz", "dL/dw", "factor w*phi'(z)"]
        rows = [[l + 1, self.z[l], self.activations[l], self.preact_grads[l], self.weight_grads[l],
                 self.factors[l]] for l in range(self.n_layers)]
        return header, rows

    def metrics(self) -> Dict[str, Any]:
        return {"output": self.output, "grad_layer1": float(self.preact_grads[0]),
                "grad_last": float(self.preact_grads[-1]),
                "ratio_first_last": float(self.preact_grads[0] / self.preact_grads[-1])
                if self.preact_grads[-1] != 0 else math.inf}

    def caption(self) -> str:
        return (f"Gradient with respect to each layer's pre-activation in a chain of {self.n_layers} "
                f"1x1 {self.activation} layers with weight {self.w:g}: each layer multiplies it by "
                f"w*phi'(z), so it grows or shrinks geometrically toward layer 1.")

    def _figure(self):
        fig, (ax,) = new_figure()
        layers = np.arange(1, self.n_layers + 1)
        ax.semilogy(layers, np.abs(self.preact_grads), "o-", label="|dL/dz_l|")
        ax.semilogy(layers, np.abs(self.weight_grads) + 1e-300, "s--", label="|dL/dw_l|")
        ax.set_xlabel("layer")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("gradient magnitude")
        ax.set_title(f"1x1 chain: w={self.w:g}, {self.activation}")
        ax.legend()
        return fig


def chain(w: float = 2.0, n_layers: int = 5, x: float = 1.0, activation: str = "identity",
          bias: float = 0.0, engine: str = "auto") -> ChainResult:
    """Run the 1x1 chain (see the module docstring).

    ``engine``: ``"dense"`` uses :class:`gradcore.nn.Dense` layers and checks
    them against explicit scalar maths; ``"scalar"`` uses only the scalar
    maths; ``"auto"`` uses Dense layers when gradcore.nn is available.

    >>> chain(2.0, 5).preact_grads.tolist()
    [16.0, 8.0, 4.0, 2.0, 1.0]
    """
    w = real_arg(w, "w")
    x = real_arg(x, "x")
    bias = real_arg(bias, "bias")
    if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)) or n_layers < 1:
        raise ValueError(f"n_layers: expected an integer >= 1, got {n_layers!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine: expected 'auto', 'dense' or 'scalar', got {engine!r}")
    n_layers = int(n_layers)
    a, z, delta, dw, dx = _scalar_chain(w, n_layers, x, activation, float(bias))
    used, diff = "scalar", 0.0
    if engine != "scalar":
        try:
            out, d_delta, d_dw, d_dx = _dense_chain(w, n_layers, x, activation, float(bias))
        except ImportError:
            if engine == "dense":
                raise
        else:
            with np.errstate(invalid="ignore"):
                diff = float(np.nanmax(np.abs(np.concatenate([[out - a[-1]], d_delta - delta, d_dw - dw]))
                                       / np.maximum(1.0, np.abs(np.concatenate([[a[-1]], delta, dw])))))
            delta, dw, dx, used = d_delta, d_dw, d_dx, "dense"
            a = a.copy()
            a[-1] = out
    return ChainResult(w, n_layers, x, activation, float(bias), a, z, delta, dw, dx, used, diff)


class ChainTable(ExperimentResult):
    """The textbook tables: several chains side by side."""

    name = "chain"
    title = "Chains of 1x1 layers: gradient with respect to each layer's pre-activation (layer 1 first)"

    def __init__(self, results: Sequence[ChainResult]):
        self.results = list(results)
        self.params = {"chains": [r.params for r in self.results]}

    def rows(self):
        header = ["activation", "w", "layers", "x", "output", "layer", "dL/dz", "dL/dw"]
        rows: List[List[Any]] = []
        for r in self.results:
            for l in range(r.n_layers):
                rows.append([r.activation, r.w, r.n_layers, r.x, r.output, l + 1,
                             r.preact_grads[l], r.weight_grads[l]])
        return header, rows

    def table(self) -> str:
        header = ["activation", "w", "layers", "output", "dL/dz by layer (1 first)", "per-layer factor"]
        rows = []
        for r in self.results:
            g = r.preact_grads
            if len(g) <= 6:
                gs = "[" + ", ".join(f"{v:.4g}" for v in g) + "]"
            else:
                gs = f"[{g[0]:.4g}, {g[1]:.4g}, ..., {g[-1]:.4g}]"
            f = r.factors
            fs = f"{f[0]:.4g}" if np.allclose(f, f[0]) else f"{f.min():.3g}..{f.max():.3g}"
            rows.append([r.activation, r.w, r.n_layers, r.output, gs, fs])
        return text_table(header, rows, self.title)

    def metrics(self) -> Dict[str, Any]:
        return {f"{r.activation}_w{r.w:g}_L{r.n_layers}_grad_layer1": float(r.preact_grads[0])
                for r in self.results}

    def caption(self) -> str:
        return ("Gradient magnitude per layer in chains of 1x1 layers: with w = 2 it doubles at every "
                "layer back toward the input, with w = 0.5 it halves, w = 1 keeps it, and a sigmoid "
                "chain shrinks it by at least w*0.25 per layer.")

    def _figure(self):
        fig, (ax,) = new_figure(width=6.0)
        for i, r in enumerate(self.results):
            ax.semilogy(np.arange(1, r.n_layers + 1), np.abs(r.preact_grads) + 1e-300, marker=MARKERS[i % 8],
                        ls="-", ms=6 - (i % 3), label=f"{r.activation}, w={r.w:g}")
        label_axes(ax, "layer (1 = nearest the input)", "|dL/dz_l|", "1x1 chains: gradient per layer", legend=True)
        return fig


def chain_table(ws: Sequence[float] = (0.5, 1.0, 2.0), n_layers: int = 5, x: float = 1.0,
                extra: bool = True, engine: str = "auto", activation: str = "identity",
                bias: float = 0.0) -> ChainTable:
    """The textbook tables: ``activation`` chains for each ``w`` in ``ws``
    over ``n_layers``; with ``extra`` also a sigmoid chain (w = 1, x = 0)
    and the 2.5 x 20-layer identity chain (output 2.5^20 = 9.09e7)."""
    results = [chain(w, n_layers, x, activation, bias, engine) for w in ws]
    if extra:
        results.append(chain(1.0, n_layers, 0.0, "sigmoid", engine=engine))
        results.append(chain(2.5, 20, 1.0, "identity", engine=engine))
    return ChainTable(results)


#: ``gradcore chain``
CLI = Command(chain_table, (
    Arg("ws", "weight(s)", "real", flag="w", metavar="W"),
    Arg("n_layers", "number of layers", "count", flag="layers"),
    Arg("x", "input value", "real"),
    Arg("activation", "activation", choices=ACTIVATIONS),
    Arg("bias", "bias of every layer", "real"),
    Arg("engine", "gradcore.nn.Dense layers (checked against scalar maths) or scalar maths only", choices=ENGINES),
), report="chain", fixed={"extra": False})
