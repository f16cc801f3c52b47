"""Explosion-lab workloads (issue: the explosion lab), float32, one thread.

- ``train-mlp-D8-W256-B64``: 10 steps of ``gradcore.train`` (MSE, SGD with
  momentum, ``clip_norm=1.0``) on an MLP 256 -> 8 x 256 (relu) -> 1, batches
  prepared beforehand. ``gradcore`` (C kernels), ``gradcore+monitor`` (the
  same with a :class:`GradMonitor` fed at every step: its overhead),
  ``numpy`` (the same on the reference backend), ``torch`` (the usual loop:
  zero_grad, forward, MSELoss, backward, ``clip_grad_norm_``, SGD step).
- ``train-rnn-T100-B32-H64``: the same for a tanh RNN (input 2, hidden 64)
  with a Dense head on the last step, 5 steps on adding-problem batches;
  torch: ``nn.RNN`` + ``nn.Linear``.
- ``depth-profile-30x512-B64``: one ``depth_profile(30, 512, "relu", "he",
  batch=64)`` (float64 forward + backward through 30 layers, per-layer
  norms, mean-field prediction) against the same on the NumPy backend.

Each case restores the initial weights first (untimed), so every repetition
runs the same steps.

Targets (the issue only fixes the demo's wall time, < 60 s, --quick < 15 s on
2 cores; these keep the training loop honest): a gradcore training step at
least 1.5x faster than torch's loop on both models. The monitor's cost is
printed, not targeted: about six passes over the arena per step (gradient
norms, weight norms, a copy and a difference for the update ratio), so it is
largest relative to the step on small, GEMM-light models (the MLP here: about
+35%) and small on the RNN.
"""

from __future__ import annotations

import numpy as np

GROUP = "lab"
#: the cheapest workload: the test suite runs it once per implementation
SMOKE = "train-mlp-D8-W256-B64"
BENCH_ROUNDS = 5  # pytest-benchmark rounds (every case restores the weights first)

TARGETS = [
    ("train-mlp-D8-W256-B64", "torch", 1.5),
    ("train-rnn-T100-B32-H64", "torch", 1.5),
]


def _torch():
    try:
        import torch
    except Exception:  # noqa: BLE001
        return None
    torch.set_num_threads(1)
    return torch


def _train_cases(build, batches, steps, torch_build=None):
    import gradcore
    from gradcore import optim
    from gradcore.monitor import GradMonitor

    cases = {}
    for impl, backend, monitored in (("gradcore", "c", False), ("gradcore+monitor", "c", True),
                                     ("numpy", "numpy", False)):
        with gradcore.use_backend(backend):
            model = build()
        start = model.arena.data.copy()
        opt = optim.SGD(model, lr=0.01, momentum=0.9)

        def setup(model=model, start=start, opt=opt):
            model.arena.data[...] = start
            opt.velocity[...] = 0

        def run(model=model, opt=opt, backend=backend, monitored=monitored):
            with gradcore.use_backend(backend):
                mon = GradMonitor(model) if monitored else None
                gradcore.train(model, batches, optimizer=opt, steps=steps, clip_norm=1.0, monitor=mon,
                               progress=False)

        cases[impl] = (setup, run)
    torch = _torch()
    if torch is not None and torch_build is not None:
        tmodel, forward = torch_build(torch)
        tstart = {k: v.clone() for k, v in tmodel.state_dict().items()}
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tb = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        loss_fn = torch.nn.MSELoss()

        def tsetup():
            tmodel.load_state_dict(tstart)
            topt.state.clear()

        def trun():
            for x, y in tb[:steps]:
                topt.zero_grad(set_to_none=True)
                loss = loss_fn(forward(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 1.0)
                topt.step()

        cases["torch"] = (tsetup, trun)
    return cases


def _mlp():
    from gradcore import nn

    rng = np.random.default_rng(0)
    W, D, B, steps = 256, 8, 64, 10
    batches = [(rng.standard_normal((B, W)).astype(np.float32), rng.standard_normal((B, 1)).astype(np.float32))
               for _ in range(steps)]

    def build():
        return nn.MLP([W] + [W] * D + [1], activation="relu", dtype="float32", seed=0)

    def torch_build(torch):
        layers = []
        for _ in range(D):
            layers += [torch.nn.Linear(W, W), torch.nn.ReLU()]
        m = torch.nn.Sequential(*layers, torch.nn.Linear(W, 1))
        return m, m

    return _train_cases(build, batches, steps, torch_build)


def _rnn():
    from gradcore import nn, tasks

    T, B, H, steps = 100, 32, 64, 5
    batches = list(tasks.adding(T=T, batch_size=B, seed=0, n_batches=steps))

    def build():
        return nn.Sequential(nn.LastStep(nn.RNN(2, H, dtype="float32", seed=0)),
                             nn.Dense(H, 1, dtype="float32", seed=1))

    def torch_build(torch):
        rnn = torch.nn.RNN(2, H)
        head = torch.nn.Linear(H, 1)
        m = torch.nn.ModuleList([rnn, head])

        def forward(x):
            out, _ = rnn(x)
            return head(out[-1])

        return m, forward

    return _train_cases(build, batches, steps, torch_build)


def _depth():
    import gradcore
    from gradcore.experiments import depth_profile

    cases = {}
    for impl, backend in (("gradcore", "c"), ("numpy", "numpy")):
        def run(backend=backend):
            with gradcore.use_backend(backend):
                depth_profile(30, 512, "relu", "he", batch=64)

        cases[impl] = run
    return cases


def workloads(only=None):
    """``only``: build just the workloads whose name contains one of these strings."""
    builders = {"train-mlp-D8-W256-B64": _mlp, "train-rnn-T100-B32-H64": _rnn, "depth-profile-30x512-B64": _depth}
    return {name: build() for name, build in builders.items() if not only or any(s in name for s in only)}
