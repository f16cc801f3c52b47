"""Per-layer backward gain against mean-field theory, and saturation.

For a Dense unit l, the measured gain is ``||dL/dx_l|| / ||dL/dy_l||`` (the
backward signal through the layer and its activation). Mean-field theory
(``gradcore.experiments.theory``) predicts its square: ``chi_1 = sigma_w^2
E[phi'(sqrt(q_l) z)^2]`` with ``sigma_w^2 = fan_in * mean(W^2)`` measured
from the weights and ``q_l`` the measured mean square of the layer's
pre-activation. The product over the layers is the gradient growth from the
output down to the input; critical initialization makes it 1.
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from ..experiments import theory

THEORY_ACTS = set(theory.ACTIVATIONS)
INIT_NAMES = {"relu": "He (sigma_w^2 = 2)", "leaky_relu": "He (sigma_w^2 = 2 / (1 + slope^2))",
              "tanh": "Xavier/LeCun (sigma_w^2 = 1)", "identity": "LeCun (sigma_w^2 = 1)",
              "sigmoid": "sigma_w^2 at chi_1 = 1"}


def _act_of(units, i):
    """A Dense unit's effective activation: its own, or a following bare Activation."""
    u = units[i]
    if u.activation == "identity" and i + 1 < len(units) and units[i + 1].kind == "activation":
        return units[i + 1].activation, i + 1
    return u.activation, i


def critical_sigma_w2(activation: str, sigma_b2: float = 0.0) -> float:
    """sigma_w^2 with chi_1 = 1 at the fixed point q* (relu: 2; tanh, identity: 1 with no bias)."""
    if activation == "relu":
        return 2.0
    if activation == "identity" or (activation == "tanh" and sigma_b2 == 0.0):
        return 1.0  # (tanh: q* -> 0 at the critical point, where tanh'(0)^2 = 1)
    if activation == "leaky_relu":
        return 2.0 / (1.0 + theory.LEAKY_SLOPE ** 2)
    s = 1.0
    with np.errstate(over="ignore"):
        return _critical(activation, sigma_b2, s)


def _critical(activation, sigma_b2, s):
    for _ in range(40):
        q = theory.fixed_point(s, sigma_b2, activation)
        q = q if math.isfinite(q) and q > 0 else 1e-6
        c = theory.chi1(s, activation, q)
        if not (c > 0):
            break
        s_new = s / c
        if abs(s_new - s) < 1e-9 * s:
            break
        s = 0.5 * (s + s_new)
    return s


def measure_layers(units) -> List[dict]:
    """One record per Dense unit: sizes, sigma_w^2, q, chi_1 (theory), the
    measured gain and the saturation of its (effective) activation."""
    out = []
    for i, u in enumerate(units):
        if u.kind != "dense":
            continue
        act, j = _act_of(units, i)
        grad_in = units[i].grad_in
        grad_out = units[j].grad_out
        gain = grad_in / grad_out if (grad_out > 0 and math.isfinite(grad_in)) else math.nan
        chi = math.nan
        if act in THEORY_ACTS and math.isfinite(u.q) and math.isfinite(u.sigma_w2):
            # the theory module's leaky slope is fixed; other slopes are not compared
            if act != "leaky_relu" or abs(u.slope - theory.LEAKY_SLOPE) < 1e-12:
                with np.errstate(over="ignore"):
                    chi = theory.chi1(u.sigma_w2, act, max(u.q, 0.0))
        sat = units[j].saturation if units[j].saturation is not None else u.saturation
        dead = units[j].dead if units[j].dead is not None else u.dead
        out.append({"unit": u.name, "module": u.module._label(), "activation": act,
                    "fan_in": u.fan_in, "sigma_w2": u.sigma_w2, "sigma_b2": u.sigma_b2, "q": u.q,
                    "chi1": chi, "predicted_gain": math.sqrt(chi) if chi >= 0 else math.nan,
                    "gain": gain, "grad_out": grad_out, "grad_in": grad_in,
                    "saturation": sat, "dead": dead})
    return out


def depth_gains(layers: List[dict]):
    """(log10 measured growth, log10 predicted growth, Dense layers spanned):
    the gradient at the first Dense layer's output against the last's, i.e.
    the gains of layers 2..L (the first layer's own input gradient is not
    part of any layer's gradient)."""
    gm = gt = 0.0
    n = 0
    for rec in layers[1:]:
        g, c = rec["gain"], rec["chi1"]
        if not (math.isfinite(g) and g > 0):
            continue
        gm += math.log10(g)
        gt += 0.5 * math.log10(c) if (math.isfinite(c) and c > 0) else math.log10(g)
        n += 1
    return gm, gt, n + 1 if n else 0


def saturation_summary(layers: List[dict]) -> dict:
    sat = [(r["saturation"], r["unit"]) for r in layers if r["saturation"] is not None]
    dead = [(r["dead"], r["unit"]) for r in layers if r["dead"] is not None]
    return {"max_saturation": max(sat) if sat else None, "max_dead": max(dead) if dead else None,
            "mean_saturation": (sum(s for s, _ in sat) / len(sat)) if sat else None}
