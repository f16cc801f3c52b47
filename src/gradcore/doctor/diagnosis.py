"""The result types: :class:`Cause` and :class:`Diagnosis`."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import List, Optional

#: the fixed vocabulary of causes
CAUSES = ("input_scale", "init_gain", "recurrent_weight", "learning_rate",
          "depth_without_normalization", "saturation", "no_clipping")

#: causes with a score at or above this are reported (score 0.5 = one order
#: of magnitude of gradient growth or shrinkage attributable to the cause)
THRESHOLD = 0.5


def score_of(severity: float) -> float:
    """Orders of magnitude -> score in [0, 1): ``s / (1 + s)`` (1 order: 0.5)."""
    if not math.isfinite(severity):
        return 1.0 if severity > 0 else 0.0
    s = max(0.0, severity)
    return s / (1.0 + s)


@dataclass(frozen=True)
class Cause:
    """A ranked explanation: ``name`` from :data:`CAUSES`, ``score`` in [0, 1]
    (see :func:`score_of`), ``evidence`` (the measured numbers) and ``fix``
    (what to change, quantitatively)."""

    name: str
    score: float
    evidence: str
    fix: str

    def __str__(self):
        return f"{self.name} (score {self.score:.2f}): {self.evidence}\n    fix: {self.fix}"


@dataclass
class Diagnosis:
    """What :func:`gradcore.diagnose` found. ``causes``: every cause with a
    score above 0, best first; ``reported``: those at or above ``threshold``;
    ``measurements``: the numbers behind them (input, layers, recurrent,
    optimizer, nonfinite, structure); ``passes``: forward/backward passes run."""

    causes: List[Cause]
    measurements: dict
    loss: float
    grad_norm: float
    threshold: float = THRESHOLD
    passes: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def reported(self) -> List[Cause]:
        return [c for c in self.causes if c.score >= self.threshold]

    @property
    def top(self) -> Optional[Cause]:
        r = self.reported
        return r[0] if r else None

    @property
    def healthy(self) -> bool:
        return not self.reported

    def report(self) -> str:
        lines = [f"gradient doctor: loss {self.loss:.4g}, gradient norm {self.grad_norm:.4g}"]
        nf = self.measurements.get("nonfinite") or {}
        if nf.get("first"):
            lines.append(f"first non-finite value: {nf['first']}")
        if self.healthy:
            lines.append(f"no cause above the reporting threshold ({self.threshold:.2f})")
        for i, c in enumerate(self.reported, 1):
            lines.append(f"{i}. {c.name} (score {c.score:.2f})")
            lines.append(f"   evidence: {c.evidence}")
            lines.append(f"   fix: {c.fix}")
        below = [c for c in self.causes if c.score < self.threshold]
        if below:
            lines.append("below threshold: " + ", ".join(f"{c.name} {c.score:.2f}" for c in below))
        return "\n".join(lines)

    def __str__(self):
        return self.report()

    def to_dict(self) -> dict:
        return {"causes": [asdict(c) for c in self.causes], "reported": [c.name for c in self.reported],
                "threshold": self.threshold, "loss": self.loss, "grad_norm": self.grad_norm,
                "passes": self.passes, "seconds": self.seconds, "measurements": self.measurements}

    def to_json(self, indent: Optional[int] = 2) -> str:
        def clean(o):
            if isinstance(o, float):
                return o if math.isfinite(o) else str(o)
            if isinstance(o, dict):
                return {str(k): clean(v) for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [clean(v) for v in o]
            if hasattr(o, "item"):
                return clean(o.item())
            return o
        return json.dumps(clean(self.to_dict()), indent=indent)
