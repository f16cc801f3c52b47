"""Input scale: per-feature range, mean and std of the batch against the
unit second moment every variance-preserving initializer assumes
(He/Xavier/LeCun set Var(W) = gain / fan_in for inputs with E[x^2] ~ 1)."""

from __future__ import annotations

import math

import numpy as np


def measure_inputs(x, first_unit=None) -> dict:
    """Statistics of ``x`` ((B, I) or time-major (T, B, I)) per feature (last axis)."""
    a = np.asarray(x, np.float64)
    feats = a.reshape(-1, a.shape[-1]) if a.ndim >= 2 else a.reshape(-1, 1)
    with np.errstate(all="ignore"):
        fin = np.isfinite(feats)
        f = np.where(fin, feats, np.nan)
        lo, hi = np.nanmin(f, axis=0), np.nanmax(f, axis=0)
        mean, std = np.nanmean(f, axis=0), np.nanstd(f, axis=0)
        rms = float(np.sqrt(np.nanmean(f * f)))
    out = {
        "shape": list(a.shape),
        "rms": rms,
        "min": float(np.nanmin(lo)), "max": float(np.nanmax(hi)),
        "feature_min": lo.tolist()[:64], "feature_max": hi.tolist()[:64],
        "feature_mean": mean.tolist()[:64], "feature_std": std.tolist()[:64],
        "std_ratio": float(np.nanmax(std) / np.nanmin(std[std > 0])) if np.any(std > 0) else 1.0,
        "nonfinite": int(np.size(fin) - np.count_nonzero(fin)),
    }
    if first_unit is not None and first_unit.kind == "dense":
        out["first_layer_preact_std"] = first_unit.z_std
        # what the init expects for unit-second-moment inputs
        out["first_layer_expected_std"] = math.sqrt(max(first_unit.sigma_w2 + first_unit.sigma_b2, 0.0))
    return out


def input_severity(m: dict) -> float:
    """Orders of magnitude of gradient inflation from the input scale: a
    homogeneous net's weight gradient grows as the input scale squared (the
    output and the loss gradient scale with it, and so does the input the
    first layer's gradient is taken against). A factor 3 either way is tolerated."""
    rms = m["rms"]
    sev = 0.0
    if math.isfinite(rms) and rms > 0:
        lg = math.log10(rms)
        if lg > math.log10(3.0):
            sev = 2.0 * (lg - math.log10(3.0))
        elif lg < -1.0:
            sev = -1.0 - lg
    if math.isfinite(m["std_ratio"]) and m["std_ratio"] > 100.0:
        sev = max(sev, math.log10(m["std_ratio"]) - 2.0)
    return sev
