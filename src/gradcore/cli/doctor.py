"""``gradcore doctor CHECKPOINT``: why a saved model's gradient explodes or
vanishes, on a batch from a task or an ``.npz`` (:mod:`gradcore.doctor`)."""

from __future__ import annotations

import os

from ._args import Cmd, UsageError, positive, positive_int

HELP = "why does the gradient explode or vanish? diagnose a checkpoint from gradcore.save on a batch"


def add(p) -> None:
    from ..tasks import TASKS

    p.add_argument("checkpoint", help="a checkpoint written by gradcore.save (with model_spec metadata, or --model)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--task", choices=sorted(TASKS), help="draw the batch from a gradcore.tasks task")
    src.add_argument("--data", metavar="FILE.npz", help="an .npz with arrays x and y")
    p.add_argument("--T", type=positive_int, default=100, help="sequence length (--task)")
    p.add_argument("--batch", type=positive_int, default=32, help="batch size (--task)")
    p.add_argument("--seed", type=int, default=0, help="task seed (--task)")
    p.add_argument("--model", metavar="JSON", help="model spec (gradcore.doctor.model_spec) when the checkpoint has none")
    p.add_argument("--loss", default=None, help="loss (default: the task's, else mse)")
    p.add_argument("--lr", type=positive, default=None, help="learning rate to judge (default: the saved optimizer's)")
    p.add_argument("--clip-norm", type=positive, default=None, help="the clip norm in use, if any")
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")


def _batch(args, dtype):
    """(x, y, loss) from ``--task`` or ``--data``."""
    import numpy as np

    if args.task is not None:
        from ..tasks import get_task

        spec = get_task(args.task)
        x, y = next(spec.make(args.T, args.batch, args.seed, dtype))
        return x, (y.reshape(-1) if spec.every_step else y), args.loss or spec.loss
    try:
        with np.load(args.data, allow_pickle=False) as z:
            if "x" not in z.files or "y" not in z.files:
                raise UsageError(f"--data {args.data}: expected arrays 'x' and 'y', found {sorted(z.files)}")
            x, y = z["x"], z["y"]
    except (OSError, ValueError) as exc:
        raise UsageError(f"--data {args.data}: cannot read it ({exc})") from None
    x = np.ascontiguousarray(x, dtype=dtype)
    y = np.ascontiguousarray(y, dtype=dtype) if np.issubdtype(y.dtype, np.floating) else y
    return x, y, args.loss or "mse"


def run(args) -> int:
    import numpy as np

    from .. import doctor

    if not os.path.exists(args.checkpoint):
        raise UsageError(f"checkpoint {args.checkpoint!r} does not exist")
    model, opt, meta = doctor.from_checkpoint(args.checkpoint, args.model)
    x, y, loss = _batch(args, np.dtype(model.dtype))
    d = doctor.diagnose(model, x, y, loss=loss, lr=args.lr, optimizer=opt, clipping=args.clip_norm)
    print(d.to_json() if args.json else d.report())
    return 0


COMMANDS = {"doctor": Cmd(HELP, add, run)}
