"""Experiments 4-6: training runs that explode, or not (several seeds each,
with claims and a verdict computed from the runs).

* :func:`clipping_study` (:mod:`.clipping`): the same RNN trained with and
  without gradient clipping, one declarative arm per way of clipping.
* :func:`normalization_study` (:mod:`.normalization`): a deep net plain vs
  LayerNorm vs BatchNorm vs residual, and raw 0-255 against min-max scaled
  inputs.
* :func:`initialization_study` (:mod:`.initialization`): Xavier vs He on a
  deep ReLU MLP.

Each returns a :class:`TrainingComparison` (:mod:`._trainruns`).
"""

from __future__ import annotations

from ._trainruns import DIVERGE_FACTOR, RunCurve, TrainingComparison, epochs
from .clipping import DEFAULT_ARMS, ClipArm, clipping_study
from .initialization import initialization_study
from .normalization import ARCHITECTURES, normalization_study

__all__ = ["clipping_study", "normalization_study", "initialization_study", "TrainingComparison", "RunCurve",
           "ClipArm", "DEFAULT_ARMS", "ARCHITECTURES", "DIVERGE_FACTOR", "epochs"]
