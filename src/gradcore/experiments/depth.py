"""Experiment 2: gradient and activation norms through the depth of a deep net.

``depth_profile`` builds ``depth`` Dense layers (``width`` wide, or the
sizes in ``widths``; biases drawn from N(0, ``bias_var``), none when it is
0), all with the same activation and initializer, feeds a Gaussian batch of
variance ``input_var``, takes
``L = sum(output * dy)`` with Gaussian ``dy`` and records, per layer ``l``
(1 = nearest the input): ``||dL/dz_l||`` (pre-activations), ``||dL/dW_l||``,
and the forward activation norm ``||a_l||``. The mean-field prediction is
overlaid (see :mod:`gradcore.experiments.theory`): the squared pre-activation
gradient norm is multiplied by ``chi_l = sigma_w^2 E[phi'(z_l)^2]`` per layer
backward, with ``sigma_w^2 = fan_in * mean(W^2)`` measured from the drawn
weights. For ReLU this is ``sigma_w^2 / 2``: He (sigma_w^2 = 2) keeps the
norm, Xavier (sigma_w^2 = 1) halves its square per layer (30 layers:
2^-14.5 at layer 1) while the weight-gradient norms stay nearly flat, because
the forward activations shrink by the same factor (Glorot & Bengio 2010).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence

import numpy as np

from ._build import activation_grad, init_label, layers_of, resolve_init, seeds
from .._contract import ACTIVATIONS
from ._common import ExperimentResult, ProfileSweep, label_axes, new_figure, text_table
from ._spec import DTYPE, SEED, Arg, Command
from .theory import gaussian_expectation, layer_predictions, mean_field, phi

__all__ = ["depth_profile", "depth_sweep", "DepthProfile", "DepthSweep", "DEFAULT_INITS"]

DEFAULT_INITS = ("normal(1.0)", "xavier", "he", "lecun", "orthogonal")


class DepthProfile(ExperimentResult):
    """Per-layer norms of one deep net (arrays of length ``depth``, layer 1
    first): ``preact_grad_norms``, ``weight_grad_norms``, ``activation_norms``,
    the theory ``predicted_preact_grad_norms`` and ``predicted_activation_norms``,
    per-layer ``sigma_w2`` and ``chi`` (backward factor of the squared norm),
    the fixed-point summary ``mean_field`` (q*, chi_1) and the drawn
    ``weights``."""

    name = "depth"

    def __init__(self, params, dz, dw, act, sigma_w2, q, chi, pred_dz, pred_act, mf):
        self.params = params
        self.depth = params["depth"]
        self.activation = params["activation"]
        self.init = params["init"]
        self.preact_grad_norms = dz
        self.weight_grad_norms = dw
        self.activation_norms = act
        self.sigma_w2 = sigma_w2
        self.q = q
        self.chi = chi
        self.predicted_preact_grad_norms = pred_dz
        self.predicted_activation_norms = pred_act
        self.mean_field = mf
        bv = params.get("bias_var", 0.0)
        size = (f"{self.depth} x {params['width']}" if "widths" not in params or
                len(set(params["widths"])) == 1 else f"{self.depth} ({'-'.join(map(str, params['widths']))})")
        self.title = (f"Depth profile: {size} {self.activation} layers, init {self.init}"
                      + (f", sigma_b^2 {bv:g}" if bv else ""))
        self.weights = []

    @property
    def ratio(self) -> float:
        """``||dL/dz_1|| / ||dL/dz_depth||`` (layer 1 over the last layer)."""
        return float(self.preact_grad_norms[0] / self.preact_grad_norms[-1])

    @property
    def predicted_ratio(self) -> float:
        return float(self.predicted_preact_grad_norms[0] / self.predicted_preact_grad_norms[-1])

    def rows(self):
        header = ["layer", "||dL/dz||", "theory ||dL/dz||", "||dL/dW||", "||a||", "theory ||a||",
                  "sigma_w^2", "chi"]
        rows = [[l + 1, self.preact_grad_norms[l], self.predicted_preact_grad_norms[l],
                 self.weight_grad_norms[l], self.activation_norms[l], self.predicted_activation_norms[l],
                 self.sigma_w2[l], self.chi[l]] for l in range(self.depth)]
        return header, rows

    def metrics(self) -> Dict[str, Any]:
        dw = self.weight_grad_norms
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = float(np.max(dw) / np.min(dw)) if np.all(np.isfinite(dw)) else math.nan
        return {"ratio": self.ratio, "predicted_ratio": self.predicted_ratio,
                "log2_ratio": math.log2(self.ratio) if self.ratio > 0 and math.isfinite(self.ratio) else math.nan,
                "weight_grad_spread": spread, "chi_1": self.mean_field.chi_1, "q_star": self.mean_field.q_star,
                "sigma_w2": float(np.mean(self.sigma_w2))}

    def caption(self) -> str:
        return (f"Per-layer gradient norms with respect to the pre-activations (solid) and the weights, "
                f"and forward activation norms, for {self.depth} {self.activation} layers with {self.init} "
                f"init; dashed lines are the mean-field prediction (chi_1 = {self.mean_field.chi_1:.3g} "
                f"per layer on the squared norm).")

    def _draw(self, ax, label_prefix=""):
        layers = np.arange(1, self.depth + 1)
        ax.semilogy(layers, self.preact_grad_norms, "o-", ms=3, label=f"{label_prefix}||dL/dz||")
        ax.semilogy(layers, self.predicted_preact_grad_norms, "--", color=ax.lines[-1].get_color())
        return ax.lines[-1].get_color()

    def _figure(self):
        fig, (ax1, ax2) = new_figure(ncols=2)
        layers = np.arange(1, self.depth + 1)
        ax1.semilogy(layers, self.preact_grad_norms, "o-", ms=3, label="||dL/dz_l||")
        ax1.semilogy(layers, self.predicted_preact_grad_norms, "k--", label="mean-field theory")
        ax1.semilogy(layers, self.weight_grad_norms, "s-", ms=3, label="||dL/dW_l||")
        label_axes(ax1, "layer", "gradient norm", f"Depth profile: {self.activation}, {self.init}: gradients",
                   legend=True)
        ax2.semilogy(layers, self.activation_norms, "o-", ms=3, label="||a_l||")
        ax2.semilogy(layers, self.predicted_activation_norms, "k--", label="mean-field theory")
        label_axes(ax2, "layer", "activation norm", "Depth profile: forward activations", legend=True)
        return fig


def _check_pos_int(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    return int(v)


def depth_profile(depth: int = 30, width: int = 512, activation: str = "relu", init="he", batch: int = 64,
                  seed: int = 0, dtype: str = "float64", bias_var: float = 0.0, input_var: float = 1.0,
                  widths=None) -> DepthProfile:
    """Measure the per-layer norms of a ``depth``-layer, ``width``-wide net
    (see the module docstring) and the mean-field prediction.

    ``bias_var``: sigma_b^2, every layer's bias drawn from N(0, bias_var)
    (0: no bias); ``input_var``: the variance of the Gaussian input batch;
    ``widths``: ``depth + 1`` layer sizes, input first (non-square layers;
    default ``width`` everywhere). The theory uses sigma_w^2 = fan_in x
    mean(W^2) measured per layer and the nominal sigma_b^2.

    >>> p = depth_profile(4, 16, "tanh", "xavier", bias_var=0.05, input_var=2.0, widths=[8, 32, 16, 16, 4])
    >>> [w.shape for w in p.weights][:2], p.params["bias_var"]
    ([(32, 8), (16, 32)], 0.05)
    """
    from ..nn import Dense, Sequential

    depth = _check_pos_int(depth, "depth")
    width = _check_pos_int(width, "width")
    batch = _check_pos_int(batch, "batch")
    for name, v in (("bias_var", bias_var), ("input_var", input_var)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) \
                or v < 0 or (name == "input_var" and v == 0):
            raise ValueError(f"{name}: expected a finite number {'>' if name == 'input_var' else '>='} 0, got {v!r}")
    bias_var, input_var = float(bias_var), float(input_var)
    if widths is None:
        widths = [width] * (depth + 1)
    else:
        if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__"):
            raise TypeError(f"widths: expected a list of depth + 1 = {depth + 1} layer sizes, got {widths!r}")
        widths = [_check_pos_int(w, f"widths[{i}]") for i, w in enumerate(widths)]
        if len(widths) != depth + 1:
            raise ValueError(f"widths: expected depth + 1 = {depth + 1} sizes (input first), got {len(widths)}")
    init_fn = resolve_init(init)
    s = seeds(seed, depth + 3)
    net = Sequential(*[Dense(widths[l], widths[l + 1], activation=activation, bias=bias_var > 0, init=init_fn,
                             dtype=dtype, seed=s[l]) for l in range(depth)])
    layers = layers_of(net)
    if bias_var > 0:
        brng = np.random.default_rng(s[-2])
        for layer in layers:
            b = layer.p["bias"]
            b[...] = brng.normal(0.0, math.sqrt(bias_var), b.shape)
    rng = np.random.default_rng(s[-1])
    dt = np.dtype(dtype)
    x = (math.sqrt(input_var) * rng.standard_normal((batch, widths[0]))).astype(dt)
    dy = rng.standard_normal((batch, widths[-1])).astype(dt)

    from .. import grad_stats

    weights = [layer.p["weight"] for layer in layers]
    sigma_w2 = np.array([w.shape[1] * float(np.mean(np.square(w, dtype=np.float64))) for w in weights])

    net.zero_grad()
    ys = []
    h = x
    with np.errstate(all="ignore"):
        for layer in layers:
            h = layer.forward(h)
            ys.append(np.array(h, copy=True))
        g = dy
        dz_norms = np.empty(depth)
        for l in range(depth - 1, -1, -1):
            dz = activation_grad(activation, ys[l], g)
            dz_norms[l] = float(np.linalg.norm(dz.astype(np.float64).ravel()))
            g = np.array(layers[l].backward(g), copy=True)
    stats = grad_stats(net.gradients())
    dw_norms = np.asarray(stats.per_array, dtype=np.float64)
    act_norms = np.array([float(np.linalg.norm(y.astype(np.float64).ravel())) for y in ys])

    q_first = sigma_w2[0] * float(np.mean(np.square(x, dtype=np.float64))) + bias_var
    q, chi = layer_predictions(sigma_w2, bias_var, activation, q_first)
    f = phi(activation)
    pred_act = np.sqrt([batch * widths[l + 1] * gaussian_expectation(lambda t: f(t) ** 2, ql)
                        for l, ql in enumerate(q)])
    pred_dz = np.empty(depth)
    pred_dz[-1] = dz_norms[-1]
    for l in range(depth - 2, -1, -1):
        pred_dz[l] = pred_dz[l + 1] * math.sqrt(chi[l])
    mf = mean_field(float(np.mean(sigma_w2)), bias_var, activation, q0=q_first)
    params = dict(depth=depth, width=width, activation=activation, init=init_label(init), batch=batch,
                  seed=seed, dtype=str(dt), bias_var=bias_var, input_var=input_var, widths=list(widths))
    prof = DepthProfile(params, dz_norms, dw_norms, act_norms, sigma_w2, q, chi, pred_dz, pred_act, mf)
    prof.weights = weights
    return prof


class DepthSweep(ProfileSweep):
    """``depth_profile`` over initializers x activations: ``profiles`` (list),
    and a summary table of the layer-1 / last-layer gradient ratio against
    the mean-field prediction."""

    name = "depth"
    title_format = "Gradient ratio layer 1 / layer {depth} in a {depth} x {width} net, by activation and init"

    def rows(self):
        header = ["activation", "init", "layer", "||dL/dz||", "theory ||dL/dz||", "||dL/dW||", "||a||",
                  "theory ||a||", "sigma_w^2", "chi"]
        rows = []
        for p in self.profiles:
            _, prow = p.rows()
            rows.extend([p.activation, p.init] + r for r in prow)
        return header, rows

    def table(self) -> str:
        header = ["activation", "init", "sigma_w^2", "chi_1", "regime", "dz ratio 1/L", "theory",
                  "log2 ratio", "dW max/min"]
        rows = []
        for p in self.profiles:
            m = p.metrics()
            rows.append([p.activation, p.init, m["sigma_w2"], m["chi_1"], p.mean_field.regime, m["ratio"],
                         m["predicted_ratio"], m["log2_ratio"], m["weight_grad_spread"]])
        return text_table(header, rows, self.title)

    def metrics(self) -> Dict[str, Any]:
        out = {}
        for p in self.profiles:
            key = f"{p.activation}_{p.init}"
            out[f"{key}_ratio"] = p.ratio
            out[f"{key}_predicted_ratio"] = p.predicted_ratio
        return out

    def caption(self) -> str:
        return ("Norm of the gradient with respect to each layer's pre-activations (markers) and the "
                "mean-field prediction (dashed), one panel per activation, one line per initializer: "
                "lines that fall toward layer 1 vanish, lines that rise explode, flat lines are critical "
                "(He for ReLU).")

    def _figure(self):
        acts = list(dict.fromkeys(p.activation for p in self.profiles))
        fig, axes = new_figure(ncols=len(acts), width=5.5)
        markers = ("o", "s", "^", "D", "v", "P", "X", "*")
        for ax, act in zip(axes, acts):
            first = True
            for i, p in enumerate(pp for pp in self.profiles if pp.activation == act):
                layers = np.arange(1, p.depth + 1)
                ref = p.preact_grad_norms[-1]
                with np.errstate(all="ignore"):
                    ax.semilogy(layers, p.preact_grad_norms / ref, marker=markers[i % 8], ls="-", ms=3.5,
                                markevery=(i % 3, 3), label=p.init)
                    ax.semilogy(layers, p.predicted_preact_grad_norms / ref, "--", color=ax.lines[-1].get_color(),
                                lw=1, label="mean-field theory (dashed)" if first else None)
                first = False
            ax.set_xlabel("layer (1 = nearest the input)")
            ax.set_ylabel("||dL/dz_l|| / ||dL/dz_L||")
            ax.set_title(f"Depth sweep: {act}, gradient per layer relative to the last", fontsize=9)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.legend(fontsize=8)
        return fig


def depth_sweep(depth: int = 30, width: int = 512, inits: Sequence = DEFAULT_INITS,
                activations: Sequence[str] = ("relu", "tanh"), batch: int = 64, seed: int = 0,
                dtype: str = "float64") -> DepthSweep:
    """``depth_profile`` for every (activation, init) pair, same seed."""
    profiles = [depth_profile(depth, width, act, init, batch, seed, dtype) for act in activations for init in inits]
    params = dict(depth=depth, width=width, inits=[init_label(i) for i in inits], activations=list(activations),
                  batch=batch, seed=seed, dtype=dtype)
    return DepthSweep(profiles, params)


#: ``gradcore depth``
CLI = Command(depth_sweep, (
    Arg("depth", "number of layers", "count"),
    Arg("width", "layer width", "count"),
    Arg("activations", "activation(s)", flag="activation", choices=ACTIVATIONS),
    Arg("inits", "initializer(s): a gradcore.init name or call, e.g. he, xavier_uniform, 'normal(1.0)'",
        flag="init"),
    Arg("batch", "batch size", "count"),
    SEED, DTYPE,
), report="depth")
