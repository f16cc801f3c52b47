"""Recurrent layers: spectral radius and largest singular value of each
gate's (H, H) block of W_hh, and the measured per-step growth of
||dL/dh_t|| (a least-squares fit of log10 ||dL/dh_t|| against the number of
steps back from the last step), with the growth it implies over T steps."""

from __future__ import annotations

import math
from typing import List

import numpy as np


def _gate_blocks(w: np.ndarray, H: int):
    G = w.shape[0] // H
    return [w[k * H:(k + 1) * H] for k in range(G)]


def growth_fit(norms) -> dict:
    """Per-step growth of ``norms`` (||dL/dh_t||, t = 0..T-1) going back in time."""
    n = np.asarray(norms, np.float64)
    T = n.size
    steps_back = (T - 1) - np.arange(T)
    ok = np.isfinite(n) & (n > 0)
    if np.count_nonzero(ok) < 3:
        return {"per_step": math.nan, "over_T": math.nan, "T": int(T), "fitted": int(np.count_nonzero(ok))}
    slope = float(np.polyfit(steps_back[ok], np.log10(n[ok]), 1)[0])
    return {"per_step": 10.0 ** slope, "log10_over_T": slope * (T - 1), "over_T": 10.0 ** min(slope * (T - 1), 300.0),
            "T": int(T), "fitted": int(np.count_nonzero(ok)),
            "first": float(n[0]), "last": float(n[-1])}


def measure_recurrent(model) -> List[dict]:
    out = []
    for name, mod in model.named_modules():
        if "weight_hh" not in getattr(mod, "_param_names", ()):
            continue
        H = int(getattr(mod, "hidden_size", mod.p["weight_hh"].shape[1]))
        w = np.asarray(mod.p["weight_hh"], np.float64)
        with np.errstate(all="ignore"):
            blocks = _gate_blocks(w, H)
            if np.all(np.isfinite(w)):
                rho = [float(np.max(np.abs(np.linalg.eigvals(b)))) for b in blocks]
                sig = [float(np.linalg.norm(b, 2)) for b in blocks]
            else:
                rho = sig = [math.nan] * len(blocks)
        rec = {"name": name, "module": name or type(mod).__name__, "kind": type(mod).__name__, "hidden": H,
               "nonlinearity": getattr(mod, "nonlinearity", None),
               "spectral_radius": max(rho), "spectral_radius_per_gate": rho,
               "max_singular_value": max(sig), "first_nonfinite_step": getattr(mod, "first_nonfinite_step", None)}
        norms = getattr(mod, "timestep_grad_norms", None)
        if norms is not None:
            rec["growth"] = growth_fit(norms)
        out.append(rec)
    return out
