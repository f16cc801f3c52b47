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
from . import tasks

__all__ = [
    "__version__",
    "ConcurrentUseError",
    "AutoClip",
    "adaptive_clip_",
    "GradStats",
    "GradMonitor",
    "TrainResult",
    "train",
    "tasks",
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

# The gradient doctor.
from .doctor import Cause, Diagnosis, diagnose  # noqa: E402

__all__ += ["diagnose", "Diagnosis", "Cause"]
