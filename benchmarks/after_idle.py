"""What runs (or does not run) before a timed call changes its time: the
fused MLP of the mlp group (``mlp-D50-W64-B16``, float32) timed right after
itself, after the NumPy reference, after busy loops and sleeps of a few
milliseconds and after a 16 MB copy; then the forward alone of a 1- and a
50-layer MLP, warm and after a 20 ms busy loop. Conditions interleaved,
medians.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        taskset -c 0 python benchmarks/after_idle.py [--rounds 100]

The reason ``time_interleaved`` shuffles the order of every round (see
docs/performance.md, "How measurements are taken").
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _mlp(depth):
    from gradcore import nn

    model = nn.MLP([64] * (depth + 1), activation="relu", init="he_normal", dtype="float32", seed=0,
                   input_grad=False)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 64), dtype=np.float32)
    dy = rng.standard_normal((16, 64), dtype=np.float32)
    return model, x, dy


def start(doc, rounds):
    """The command line's ``--rounds`` (default ``rounds``), every thread
    pool pinned to 1."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=rounds)
    args = ap.parse_args()
    from gradcore.benchmarks._common import pin_threads

    pin_threads(1)
    return args


def main():
    args = start(__doc__, 100)
    import gradcore

    model, x, dy = _mlp(50)

    def step():
        model.forward(x)
        model.backward(dy)

    def reference():
        with gradcore.use_backend("numpy"):
            step()

    src = np.ones(4 << 20, np.float32)  # 16 MB
    dst = np.empty_like(src)
    before = {"itself": lambda: None, "the NumPy reference": reference, "a 1 ms busy loop": lambda: _busy(0.001),
              "a 20 ms busy loop": lambda: _busy(0.02), "a 50 ms sleep": lambda: time.sleep(0.05),
              "a 16 MB copy": lambda: np.copyto(dst, src)}
    times = {name: [] for name in before}
    step()
    for _ in range(args.rounds):
        for name, pre in before.items():
            pre()
            times[name].append(_timed(step))
    print("mlp-D50-W64-B16 forward + backward, ran just before:")
    for name, t in times.items():
        print(f"  {name:<22} {statistics.median(t) * 1e3:7.3f} ms")

    print("forward alone, warm / after a 20 ms busy loop:")
    for depth in (1, 50):
        m, xx, _ = _mlp(depth)
        warm, cold = [], []
        m.forward(xx)
        for _ in range(args.rounds):
            warm.append(_timed(lambda: m.forward(xx)))
            _busy(0.02)
            cold.append(_timed(lambda: m.forward(xx)))
        print(f"  {depth:2d} layers  {statistics.median(warm) * 1e6:7.1f} us / {statistics.median(cold) * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
