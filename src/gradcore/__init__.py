"""gradcore: study and tame exploding gradients on the CPU.

Fused C kernels for gradient norms, clipping, dense and recurrent layers,
with a thin NumPy-facing API. See ``gradcore.info()`` for the build in use.
"""

__version__ = "0.1.0"

from .backend import get_backend, set_backend, use_backend
from .clip import (
    GradStats,
    clip_grad_norm_,
    clip_grad_value_,
    global_norm,
    grad_stats,
)
from .adaptive import AutoClip, adaptive_clip_
from .checkpoint import CheckpointError, load, save
from .errors import ConcurrentUseError, NonFiniteGradientError
from .info import info
from .monitor import GradMonitor
from .train import TrainResult, train

__all__ = [
    "__version__",
    "ConcurrentUseError",
    "AutoClip",
    "adaptive_clip_",
    "GradStats",
    "GradMonitor",
    "TrainResult",
    "train",
    "NonFiniteGradientError",
    "CheckpointError",
    "save",
    "load",
    "clip_grad_norm_",
    "clip_grad_value_",
    "get_backend",
    "global_norm",
    "grad_stats",
    "info",
    "set_backend",
    "use_backend",
]

# Dense networks: layers and the parameter arena, initializers, losses, optimizers, data scaling.
from . import data, init, losses, nn, optim  # noqa: E402

# Submodules loaded on first use (PEP 562): ``gradcore.experiments`` and the
# rest are attributes of the package without slowing ``import gradcore``.
# The gradient doctor's names (gradcore.diagnose ...) load it the same way.
_LAZY_SUBMODULES = ("cli", "doctor", "experiments", "interop", "reference", "tasks")
_LAZY_NAMES = {"diagnose": "doctor", "Diagnosis": "doctor", "Cause": "doctor"}
__all__ += ["data", "init", "losses", "nn", "optim", *_LAZY_SUBMODULES, *_LAZY_NAMES]


def __getattr__(name: str):
    import importlib

    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | set(_LAZY_NAMES))
