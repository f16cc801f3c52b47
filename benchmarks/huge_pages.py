"""The fused MLP of the mlp group (``mlp-D50-W64-B16``, float32) on its
arena's weights and gradients as laid out now (``nn.arena``: one block on
transparent huge pages) against copies of the same values in plain NumPy
memory (4 KiB pages), the same two kernel calls, warm (right after itself)
and after a 20 ms busy loop; conditions interleaved, medians and minima.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        taskset -c 0 python benchmarks/huge_pages.py [--rounds 300]
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from after_idle import _busy, _mlp, start


def main():
    args = start(__doc__, 300)
    import gradcore._kernels as K

    model, x, dy = _mlp(50)
    model.forward(x)
    model.backward(dy)
    lay, slope = model._stack_layout, model._slope

    def plain(a):
        """a copy of a in NumPy's memory (below its own 4 MiB advice), 64-byte
        aligned like the arena, so that only the page size differs"""
        buf = np.zeros(a.size + 64 // a.itemsize, a.dtype)
        start = (-buf.ctypes.data % 64) // a.itemsize
        out = buf[start:start + a.size]
        out[:] = a
        return out

    plain_theta, plain_grad = plain(model._theta), plain(model._grad)
    B = x.shape[0]
    cases = {}
    for name, theta, grad in [("huge pages (the arena)", model._theta, model._grad),
                              ("plain pages (copies)", plain_theta, plain_grad)]:
        ys = np.empty(B * int(lay[:, 1].sum()), np.float32)
        work = np.empty(2 * B * int(lay[:, :2].max()), np.float32)
        cases[name] = (theta, grad, ys, work)

    def step(name):
        theta, grad, ys, work = cases[name]
        K.dense_stack_forward(ys, x, theta, lay, slope)
        K.dense_stack_backward(None, grad, work, dy, x, theta, ys, lay, slope)

    times = {(name, when): [] for name in cases for when in ("warm", "after a 20 ms busy loop")}
    for _ in range(args.rounds):
        for name in cases:
            step(name)
            t0 = time.perf_counter()
            step(name)
            times[name, "warm"].append(time.perf_counter() - t0)
            _busy(0.02)
            t0 = time.perf_counter()
            step(name)
            times[name, "after a 20 ms busy loop"].append(time.perf_counter() - t0)
    print(f"mlp-D50-W64-B16 kernel calls (forward + backward), {args.rounds} rounds")
    for (name, when), ts in times.items():
        print(f"  {name:24s} {when:24s} median {statistics.median(ts) * 1e3:.3f} ms  min {min(ts) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
