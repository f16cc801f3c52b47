"""The classic exploding/vanishing-gradient experiments, each returning a
result object with the numbers, ``.table()`` text, ``.plot(path)`` (needs
matplotlib) and ``.to_csv`` / ``.to_json``; plus ``sweep`` (a grid of runs
through joblib, locally or on a Dask cluster) and ``write_report``.

1. :func:`chain` / :func:`chain_table`: the textbook 1x1 chains.
2. :func:`depth_profile` / :func:`depth_sweep`: per-layer gradient norms of a
   deep net against mean-field theory (:mod:`.theory`).
3. :func:`bptt_profile` / :func:`bptt_sweep`: ||dL/dh_t|| through time.
4. :func:`clipping_study`, 5. :func:`normalization_study`,
6. :func:`initialization_study`: training runs that explode, or not.
7. :func:`reproduce`: the classic papers' own setups, with their claims
   beside the papers' numbers (:mod:`.reproduce`).
"""

from .bptt import BPTTProfile, BPTTSweep, bptt_profile, bptt_sweep
from .chain import ChainResult, ChainTable, chain, chain_table
from .depth import DepthProfile, DepthSweep, depth_profile, depth_sweep
from .report import Report, write_report
from .reproduce import Reproduction, reproduce, reproduce_all
from .sweep import Run, SweepResult, sweep
from .theory import MeanField, chi1, fixed_point, gaussian_expectation, mean_field, variance_map
from .training import RunCurve, TrainingComparison, clipping_study, initialization_study, normalization_study

__all__ = [
    "BPTTProfile", "BPTTSweep", "ChainResult", "ChainTable", "DepthProfile", "DepthSweep", "MeanField", "Report",
    "Run", "RunCurve", "SweepResult", "TrainingComparison", "bptt_profile", "bptt_sweep", "chain", "chain_table",
    "chi1", "clipping_study", "depth_profile", "depth_sweep", "fixed_point", "gaussian_expectation",
    "initialization_study", "mean_field", "normalization_study", "sweep", "variance_map", "write_report",
    "Reproduction", "reproduce", "reproduce_all",
]
