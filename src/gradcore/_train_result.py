"""What one :func:`gradcore.train` call returns (:class:`TrainResult`) and
the copies its ``diagnosis`` is computed from."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .monitor import GradMonitor


@dataclass
class TrainResult:
    """What happened in one :func:`train` call.

    ``losses`` / ``grad_norms`` (pre-clip) / ``clip_coefs``: one entry per
    step of this call that completed (``loss_steps``: their global step
    numbers; the run's step count starts at ``first_step`` and is
    ``global_step`` after the call). ``stopped`` is True when training
    stopped on a non-finite value; then ``stop_step``, ``stop_reason``
    (``"nonfinite_loss"``, ``"nonfinite_gradient"`` or
    ``"nonfinite_weights"``), ``stop_parameter``, ``stop_index`` (flat index
    into that parameter), ``stop_kind`` ("NaN" or "Inf") say where, and
    ``restored_step`` is the step whose resulting state was restored (-1:
    the state this call started from). ``interrupted``: Ctrl-C ended the
    call (after the last complete step, which was saved). ``rollbacks``:
    one dict per rollback (step, reason, restored_step, lr after it).
    ``eval_steps`` / ``eval_losses``: held-out losses of this call.
    ``resumed_from``: the step the checkpoint continued from (None: not
    resumed). ``optimizer``: the optimizer used (a second call reuses it).
    """

    steps: int
    losses: np.ndarray
    grad_norms: np.ndarray
    clip_coefs: np.ndarray
    stopped: bool = False
    stop_step: Optional[int] = None
    stop_reason: Optional[str] = None
    stop_parameter: Optional[str] = None
    stop_index: Optional[int] = None
    stop_kind: Optional[str] = None
    restored_step: Optional[int] = None
    seconds: float = 0.0
    monitor: Optional[GradMonitor] = field(default=None, repr=False)
    interrupted: bool = False
    first_step: int = 0
    global_step: int = 0
    loss_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rollbacks: List[Dict[str, Any]] = field(default_factory=list)
    eval_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    eval_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    checkpoint: Optional[str] = None
    resumed_from: Optional[int] = None
    optimizer: Any = field(default=None, repr=False)
    _doctor: Optional[dict] = field(default=None, repr=False)

    @property
    def diagnosis(self):
        """:func:`gradcore.diagnose` of the run when its monitor flagged an
        explosion (the weights and batch of the first one) or it stopped on a
        non-finite value (the weights and batch of the last step whose loss
        was within 10x the first loss: where the run was still calm); None
        otherwise. Computed on first access from copies taken then."""
        d = self._doctor
        if d is None:
            return None
        if "result" not in d:
            from .doctor import diagnose

            d["result"] = diagnose(d["model"], d["x"], d["y"], loss=d["loss"], optimizer=d["optimizer"],
                                   lr=d["lr"], monitor=self.monitor, clipping=d["clipping"])
        return d["result"]

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1]) if len(self.losses) else math.nan

    @property
    def message(self) -> str:
        rb = f", {len(self.rollbacks)} rollbacks" if self.rollbacks else ""
        if not self.stopped:
            tail = " (interrupted)" if self.interrupted else ""
            return f"trained {self.steps} steps{rb}, final loss {self.final_loss:.6g}{tail}"
        where = ""
        if self.stop_parameter is not None:
            where = f" in {self.stop_parameter}" + (f" at flat index {self.stop_index}"
                                                    if self.stop_index is not None else "")
        what = {"nonfinite_loss": "loss", "nonfinite_gradient": "gradient",
                "nonfinite_weights": "weights after the update"}.get(str(self.stop_reason), self.stop_reason)
        restored = ("the initial weights" if self.restored_step == -1 else
                    f"the weights after step {self.restored_step}")
        return (f"stopped at step {self.stop_step}: {self.stop_kind} {what}{where}; restored {restored} "
                f"({self.steps} steps completed{rb})")

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        """Summary without the per-step arrays.

        >>> import numpy as np
        >>> TrainResult(2, np.array([1.0, 0.5]), np.ones(2), np.ones(2))
        TrainResult(steps=2, final_loss=0.5, stopped=False, seconds=0.000)
        """
        extra = ""
        if self.stopped:
            extra += (f", stop_step={self.stop_step}, stop_reason={self.stop_reason!r}, "
                      f"stop_parameter={self.stop_parameter!r}, stop_kind={self.stop_kind!r}, "
                      f"restored_step={self.restored_step}")
        if self.interrupted:
            extra += ", interrupted=True"
        if self.rollbacks:
            extra += f", rollbacks={len(self.rollbacks)}"
        if self.resumed_from is not None:
            extra += f", resumed_from={self.resumed_from}"
        return (f"TrainResult(steps={self.steps}, final_loss={self.final_loss:.6g}, "
                f"stopped={self.stopped}{extra}, seconds={self.seconds:.3f})")


def _doctor_context(model, opt, x, y, loss, clip_norm, weights=None) -> dict:
    """Copies of what :attr:`TrainResult.diagnosis` needs, taken now
    (``weights``: a flat arena buffer to put in the model's copy)."""
    from .optim import Optimizer

    if isinstance(opt, Optimizer) and opt.model is model:
        m, o = copy.deepcopy((model, opt))
        lr = None
    else:
        m, o, lr = copy.deepcopy(model), None, getattr(opt, "lr", None)
    if weights is not None:
        m.arena.data[...] = weights
    return {"model": m, "optimizer": o, "lr": lr, "x": np.array(x, copy=True), "y": np.array(y, copy=True),
            "loss": loss, "clipping": clip_norm}
