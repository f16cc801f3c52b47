"""Input scaling for the "raw 0-255 pixels explode" experiments.

Scalers follow the fit/transform pattern: ``fit(x)`` learns per-feature
statistics (over axis 0 of a (N, D) array, in float64), ``transform(x)``
applies them and returns a new float array (``dtype``: the input's float
dtype, float32 for integer input such as uint8 pixels, or as given).
Constant features are mapped to the low end (MinMax) or to 0 (standardize)
instead of dividing by zero. NaN in the data propagates.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["MinMaxScaler", "Standardizer", "minmax_scale", "standardize"]


def _as_data(x, who: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception:  # noqa: BLE001
            raise TypeError(f"{who}: expected a numeric array, got {type(x).__name__}") from None
    if x.dtype.kind not in "iuf":
        raise TypeError(f"{who}: expected a numeric (integer or float) array, got dtype {x.dtype}")
    if x.ndim not in (1, 2):
        raise ValueError(f"{who}: expected a 1-D (N,) or 2-D (N, D) array, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{who}: expected at least one sample, got shape {x.shape}")
    return x


def _out_dtype(x: np.ndarray, dtype) -> np.dtype:
    if dtype is None:
        return x.dtype if x.dtype.kind == "f" and x.dtype.itemsize >= 4 else np.dtype(np.float32)
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dt}")
    return dt


class _Scaler:
    _fitted_attr = ""

    def _check_fitted(self, x, who):
        if getattr(self, self._fitted_attr) is None:
            raise RuntimeError(f"{who}: call fit(x) first")
        x = _as_data(x, who)
        feat = getattr(self, self._fitted_attr).shape
        if x.shape[1:] != feat:
            raise ValueError(f"{who}: expected data with {feat[0] if feat else 'no'} feature axis "
                             f"{feat}, got shape {x.shape}")
        return x

    def fit_transform(self, x):
        return self.fit(x).transform(x)


class MinMaxScaler(_Scaler):
    """Map [lo, hi] linearly onto ``feature_range`` (default [0, 1]).

    ``lo`` / ``hi``: known bounds (e.g. 0 and 255 for pixels; scalars apply to
    every feature); ``None`` learns the per-feature min / max in ``fit``.
    """

    _fitted_attr = "lo_"

    def __init__(self, lo=None, hi=None, feature_range=(0.0, 1.0), dtype=None):
        for name, v in (("lo", lo), ("hi", hi)):
            if v is not None and not (isinstance(v, numbers.Real) and math.isfinite(v)):
                raise ValueError(f"MinMaxScaler: {name} must be a finite number or None, got {v!r}")
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"MinMaxScaler: expected lo < hi, got lo={lo!r}, hi={hi!r}")
        ok = isinstance(feature_range, (tuple, list)) and len(feature_range) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in feature_range)
        if not ok:
            raise TypeError(f"MinMaxScaler: feature_range must be a pair of numbers (a, b) with a < b, "
                            f"got {feature_range!r}")
        a, b = feature_range
        if not (math.isfinite(a) and math.isfinite(b) and a < b):
            raise ValueError(f"MinMaxScaler: feature_range must be finite (a, b) with a < b, got {feature_range!r}")
        self.lo, self.hi, self.feature_range, self.dtype = lo, hi, (float(a), float(b)), dtype
        self.lo_ = self.hi_ = None

    def fit(self, x):
        x = _as_data(x, "MinMaxScaler.fit")
        xd = x.astype(np.float64, copy=False)
        feat = x.shape[1:]
        lo = np.full(feat, float(self.lo)) if self.lo is not None else xd.min(axis=0)
        hi = np.full(feat, float(self.hi)) if self.hi is not None else xd.max(axis=0)
        self.lo_, self.hi_ = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        return self

    def transform(self, x):
        x = self._check_fitted(x, "MinMaxScaler.transform")
        span = self.hi_ - self.lo_
        span = np.where(span > 0, span, 1.0)
        a, b = self.feature_range
        out = (x.astype(np.float64) - self.lo_) / span * (b - a) + a
        return out.astype(_out_dtype(x, self.dtype))

    def inverse_transform(self, y):
        y = self._check_fitted(y, "MinMaxScaler.inverse_transform")
        span = np.where(self.hi_ - self.lo_ > 0, self.hi_ - self.lo_, 1.0)
        a, b = self.feature_range
        return ((y.astype(np.float64) - a) / (b - a) * span + self.lo_).astype(_out_dtype(y, self.dtype))


class Standardizer(_Scaler):
    """Per-feature (x - mean) / std (population std); constant features -> 0."""

    _fitted_attr = "mean_"

    def __init__(self, dtype=None):
        self.dtype = dtype
        self.mean_ = self.std_ = None

    def fit(self, x):
        x = _as_data(x, "Standardizer.fit")
        xd = x.astype(np.float64, copy=False)
        self.mean_ = np.asarray(xd.mean(axis=0), np.float64)
        self.std_ = np.asarray(xd.std(axis=0), np.float64)
        return self

    def transform(self, x):
        x = self._check_fitted(x, "Standardizer.transform")
        std = np.where(self.std_ > 0, self.std_, 1.0)
        return ((x.astype(np.float64) - self.mean_) / std).astype(_out_dtype(x, self.dtype))

    def inverse_transform(self, y):
        y = self._check_fitted(y, "Standardizer.inverse_transform")
        std = np.where(self.std_ > 0, self.std_, 1.0)
        return (y.astype(np.float64) * std + self.mean_).astype(_out_dtype(y, self.dtype))


def minmax_scale(x, lo=None, hi=None, feature_range=(0.0, 1.0), dtype=None):
    """``MinMaxScaler(lo, hi, feature_range, dtype).fit_transform(x)``:
    ``minmax_scale(pixels, 0, 255)`` maps raw pixels to [0, 1]."""
    return MinMaxScaler(lo, hi, feature_range, dtype).fit_transform(x)


def standardize(x, dtype=None):
    """``Standardizer(dtype).fit_transform(x)``: zero mean, unit variance per feature."""
    return Standardizer(dtype).fit_transform(x)
