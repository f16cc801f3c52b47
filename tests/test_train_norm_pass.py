"""``train()`` without a monitor runs one gradient-norm kernel pass per step:
its finiteness is the NaN/Inf check and the optimizer clips with it. Counted
at the backend: every ``BufferList.norm`` call over the gradient buffer."""

import numpy as np
import pytest

import gradcore
from gradcore import backend, nn, optim


class _CountingBackend:
    """The active backend, with ``BufferList.norm`` calls over memory of
    ``watched`` counted in ``calls``."""

    def __init__(self, inner, watched):
        self._inner, self.calls = inner, []
        counting = self

        class BufferList:
            def __init__(self, arrays, *args, **kwargs):
                self._bl = inner.BufferList(arrays, *args, **kwargs)
                vals = arrays.values() if isinstance(arrays, dict) else arrays
                vals = [vals] if isinstance(vals, np.ndarray) else vals
                self._grad = any(np.shares_memory(v, watched) for v in vals)

            def norm(self, *args, **kwargs):
                if self._grad:
                    counting.calls.append(args)
                return self._bl.norm(*args, **kwargs)

            def __getattr__(self, name):
                return getattr(self._bl, name)

        self.BufferList = BufferList

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((8, 4), np.float32), rng.standard_normal((8, 1), np.float32)) for _ in range(n)]


def _run(make_opt, clip_norm, monitor=False, steps=5):
    m = nn.MLP([4, 8, 1], seed=0)
    opt = make_opt(m)
    counting = _CountingBackend(backend.kernels(), m.arena.grad)
    token = backend._override.set((backend.get_backend(), counting))
    try:
        mon = gradcore.GradMonitor(m) if monitor else None
        r = gradcore.train(m, _data(steps), optimizer=opt, clip_norm=clip_norm, monitor=mon, progress=False)
    finally:
        backend._override.reset(token)
    return r, counting.calls, m


@pytest.mark.parametrize("make_opt", [lambda m: optim.SGD(m, lr=0.05), lambda m: optim.Adam(m, lr=1e-3)],
                         ids=["sgd", "adam"])
@pytest.mark.parametrize("clip_norm", [None, 0.5])
def test_one_gradient_norm_kernel_pass_per_step_without_monitor(make_opt, clip_norm):
    r, calls, _ = _run(make_opt, clip_norm)
    assert r.steps == 5 and len(calls) == 5, calls
    # the same norms and weights as a run whose optimizer takes its own norm (with a monitor)
    r_mon, calls_mon, _ = _run(make_opt, clip_norm, monitor=True)
    assert len(calls_mon) > 5  # the monitor's per-parameter pass comes on top: the counter sees it
    assert np.array_equal(r.grad_norms, r_mon.grad_norms)
