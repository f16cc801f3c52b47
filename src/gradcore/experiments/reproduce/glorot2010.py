"""Glorot & Bengio (2010): "standard" vs normalized initialization of a
5-layer tanh network.

The paper's net: 5 hidden tanh layers of 1000 units, biases 0, weights from
the "standard" U[-1/sqrt(n), 1/sqrt(n)] (n = fan-in: n Var(W) = 1/3) or the
normalized U[-sqrt(6)/sqrt(n_j + n_{j+1}), +...] (n Var(W) = 1 for square
layers). Its measurements at initialization: the mean singular value of the
layer Jacobians J = dz^{i+1}/dz^i (about 0.5 standard, 0.8 normalized), and
the variance of the back-propagated gradient dC/ds per layer, which the
linear-regime analysis multiplies by n Var(W) per layer going down (1/3
standard, 1 normalized).

Here: the same net built from ``gradcore.nn.Dense`` (float64), inputs
U[0, 1] (pixel-like; the paper used Shapeset-3x2 images), a 10-way softmax
head with random labels for the cost, gradients from the layers' backward.
"""

from __future__ import annotations

import math

import numpy as np

from .._common import label_axes
from ..claims import claim

NAME = "glorot2010"
TITLE = "standard vs normalized initialization in a 5-layer tanh net"
CITATION = ("Glorot & Bengio (2010), Understanding the difficulty of training deep feedforward neural "
            "networks, AISTATS")
SETUP = ("5 tanh layers of 1000 units at initialization, 'standard' U[-1/sqrt(n), 1/sqrt(n)] vs normalized "
         "U[-sqrt(6/(n_in + n_out)), +]: mean singular value of each layer Jacobian and the variance of the "
         "back-propagated gradient per layer.")

BUDGETS = {
    "quick": dict(seeds=3, layers=5, width=1000, batch=64, jacobian_samples=2, standard_init="standard",
                  normalized_init="normalized"),
    "full": dict(seeds=10, layers=5, width=1000, batch=256, jacobian_samples=8, standard_init="standard",
                 normalized_init="normalized"),
    "tiny": dict(seeds=2, layers=5, width=300, batch=32, jacobian_samples=1, standard_init="standard",
                 normalized_init="normalized"),
}
SECONDS = {"quick": 20, "full": 240, "tiny": 3}
INITS = ("standard", "normalized")
PAPER_SV = {"standard": 0.5, "normalized": 0.8}


def _bound(kind, n_in, n_out):
    if kind == "standard":
        return 1.0 / math.sqrt(n_in)
    if kind == "normalized":
        return math.sqrt(6.0 / (n_in + n_out))
    raise ValueError(f"init: expected 'standard' or 'normalized', got {kind!r}")


def units(params, seeds):
    out = []
    for s in seeds:
        for arm, key in (("standard", "standard_init"), ("normalized", "normalized_init")):
            out.append(dict(seed=s, arm=arm, init=params[key], layers=params["layers"], width=params["width"],
                            batch=params["batch"], jacobian_samples=params["jacobian_samples"]))
    return out


def run_unit(seed, arm, init, layers, width, batch, jacobian_samples):
    from ... import init as ginit
    from ... import losses
    from ...nn import Dense
    from .._build import activation_grad

    rng = np.random.default_rng([seed, 2010])
    a = _bound(init, width, width)
    net = [Dense(width, width, activation="tanh", bias=True, init=ginit.uniform(-a, a), bias_init=0.0,
                 dtype="float64", seed=int(rng.integers(2**31))) for _ in range(layers)]
    c = 1.0 / math.sqrt(width)
    head = Dense(width, 10, bias=True, init=ginit.uniform(-c, c), bias_init=0.0, dtype="float64",
                 seed=int(rng.integers(2**31)))
    x = rng.uniform(0.0, 1.0, (batch, width))
    ys = []
    h = x
    for layer in net:
        h = np.array(layer.forward(h), copy=True)
        ys.append(h)
    labels = rng.integers(0, 10, batch)
    _, dlogits = losses.softmax_cross_entropy(head.forward(ys[-1]), labels)
    g = np.array(head.backward(dlogits), copy=True)
    var = np.empty(layers)
    for l in range(layers - 1, -1, -1):
        ds = activation_grad("tanh", ys[l], g)
        var[l] = float(np.var(ds))
        g = np.array(net[l].backward(g), copy=True)
    # J_i = dz^{i+1}/dz^i = diag(1 - z_{i+1}^2) W_{i+1}, i = 1..layers-1
    sv = np.empty((layers - 1, jacobian_samples))
    for i in range(layers - 1):
        W = net[i + 1].p["weight"]
        for k in range(jacobian_samples):
            J = (1.0 - ys[i + 1][k] ** 2)[:, None] * W
            sv[i, k] = float(np.mean(np.linalg.svd(J, compute_uv=False)))
    n_var_w = [float(width * np.var(layer.p["weight"])) for layer in net]
    return dict(seed=seed, arm=arm, init=init, grad_var=var.tolist(), mean_sv=sv.mean(axis=1).tolist(),
                n_var_w=n_var_w)


def analyze(params, seeds, results):
    L = params["layers"]
    data = {"layers": L, "width": params["width"]}
    for arm in INITS:
        rs = [r for r in results if r["arm"] == arm]
        var = np.array([r["grad_var"] for r in rs])
        sv = np.array([r["mean_sv"] for r in rs])
        # per-layer factor of the back-propagated variance, layer 1 vs layer L
        factor = (var[:, 0] / var[:, -1]) ** (1.0 / (L - 1))
        data[arm] = dict(init=rs[0]["init"], grad_var=var.mean(axis=0), grad_var_rel=(var / var[:, -1:]).mean(axis=0),
                         mean_sv=sv.mean(axis=0), sv_all=float(sv.mean()), sv_seeds=sv.mean(axis=1),
                         factor=factor, n_var_w=float(np.mean([r["n_var_w"] for r in rs])))
    st, no = data["standard"], data["normalized"]
    claims = [
        claim("standard init: the layer Jacobians' mean singular value is about 0.5 (within 0.1)",
              "0.5", f"{st['sv_all']:.3f} (seeds {', '.join(f'{v:.3f}' for v in st['sv_seeds'])})",
              bool(np.all(np.abs(st["sv_seeds"] - 0.5) <= 0.1))),
        claim("normalized init: the layer Jacobians' mean singular value is about 0.8 (within 0.1)",
              "0.8", f"{no['sv_all']:.3f} (seeds {', '.join(f'{v:.3f}' for v in no['sv_seeds'])})",
              bool(np.all(np.abs(no["sv_seeds"] - 0.8) <= 0.1))),
        claim("standard init: the back-propagated gradient variance shrinks by about n Var(W) = 1/3 per "
              "layer toward the input (within 30%)",
              f"1/3 per layer: layer 1 / layer {L} = {(1 / 3) ** (L - 1):.4f}",
              f"{np.mean(st['factor']):.3f} per layer: {np.mean(st['grad_var_rel'][0]):.4f}",
              bool(np.all(np.abs(st["factor"] - 1 / 3) <= 0.3 / 3))),
        claim("normalized init keeps the back-propagated gradient variance within a factor 2 per layer "
              "(and much closer to constant than standard)",
              f"n Var(W) = 1 per layer (linear regime)",
              f"{np.mean(no['factor']):.3f} per layer: layer 1 / layer {L} = {np.mean(no['grad_var_rel'][0]):.3f}",
              bool(np.all((no["factor"] >= 0.5) & (no["factor"] <= 2.0)) and
                   np.min(no["factor"]) > np.max(st["factor"]))),
    ]
    notes = []
    if params["standard_init"] != "standard" or params["normalized_init"] != "normalized":
        notes.append(f"arms run with standard arm = {params['standard_init']!r}, normalized arm = "
                     f"{params['normalized_init']!r} (not the paper's)")
    notes.append("at initialization, inputs U[0, 1] (the paper: Shapeset-3x2 images); the paper's "
                 "histograms during training are not reproduced")
    return claims, data, notes


def rows(data):
    L = data["layers"]
    header = ["layer", "standard Var(dC/ds)/top", "normalized Var(dC/ds)/top", "theory standard (1/3)^(L-l)",
              "standard mean sv J", "normalized mean sv J"]
    out = []
    for l in range(L):
        sv_s = data["standard"]["mean_sv"][l - 1] if l >= 1 else None
        sv_n = data["normalized"]["mean_sv"][l - 1] if l >= 1 else None
        out.append([l + 1, data["standard"]["grad_var_rel"][l], data["normalized"]["grad_var_rel"][l],
                    (1 / 3) ** (L - 1 - l), sv_s, sv_n])
    return header, out


def draw(data, new_figure):
    fig, (ax1, ax2) = new_figure(ncols=2)
    L = data["layers"]
    layers = np.arange(1, L + 1)
    for arm, m in (("standard", "o"), ("normalized", "s")):
        ax1.semilogy(layers, data[arm]["grad_var_rel"], m + "-", label=f"{arm} (measured)")
    ax1.semilogy(layers, (1 / 3) ** (L - layers), "k--", label="theory standard: (1/3)^(L-l)")
    ax1.semilogy(layers, np.ones(L), "k:", label="theory normalized: 1")
    ax1.set_xticks(layers)
    label_axes(ax1, "layer (1 = nearest the input)", "Var(dC/ds_l) / Var(dC/ds_L)",
               "glorot2010: back-propagated gradient variance", legend=True, integer=False)
    j = np.arange(1, L)
    for arm, m in (("standard", "o"), ("normalized", "s")):
        ax2.plot(j, data[arm]["mean_sv"], m + "-", label=f"{arm} (measured)")
        ax2.axhline(PAPER_SV[arm], ls="--", color=ax2.lines[-1].get_color(), label=f"paper {arm}: {PAPER_SV[arm]}")
    ax2.set_xticks(j)
    ax2.set_ylim(0, 1.1)
    label_axes(ax2, "Jacobian dz_(i+1)/dz_i, i", "mean singular value", "glorot2010: layer Jacobians", legend=True,
               integer=False)
    return fig
