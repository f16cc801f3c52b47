"""How close a torch module around gradcore's kernels can get to gradcore's
native layers and steps: the floor under the ``torch`` group's ``vs native``
ratios (``gradcore.benchmarks.workloads_torch``).

- ``layer``: each ``layer-*`` workload (forward, ``h.sum().backward()``)
  with ``gradcore.interop.torch``'s module, with a minimal
  ``torch.autograd.Function`` calling the same kernels (no checks, no pool,
  no record, one preallocated scratch set: the torch machinery alone around
  the kernels) and with the native layer.
- ``step``: each full training step with the recurrent module replaced by a
  stub Function that runs no kernel (it returns preallocated outputs and
  fresh zero weight gradients), i.e. torch's ``Linear`` head, MSE loss,
  autograd engine, clipping and optimizer alone, next to the native step
  minus its recurrent layer (native step - native layer's forward and
  backward from the final-state gradient). ``best ratio`` = native step /
  (native layer + stub step): the ``vs native`` ratio of a wrapper whose
  layer costs exactly the native layer's time. The stub runs without the
  kernels' cache eviction, so this bound is optimistic.

Timed like ``gradcore bench`` (``time_interleaved``, steady state: 3 calls in
a row, the last 2 timed), one thread:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        taskset -c 1 python benchmarks/torch_floor.py [--only rnn] [--budget 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import gradcore.interop.torch as gt
from gradcore import nn
from gradcore.benchmarks import workloads_torch as W
from gradcore.benchmarks._common import time_interleaved
from gradcore.interop.torch import _kernels as K

MODES = {"rnn": "RNN_TANH", "lstm": "LSTM", "gru": "GRU"}
TORCH = {"rnn": gt.RNN, "lstm": gt.LSTM, "gru": gt.GRU}


def minimal_layer(kind, T, B, H, tx):
    """The layer case on a bare Function: the kernels and nothing else."""
    m = TORCH[kind](2, H)
    params = list(m.parameters())
    w = [p.detach().numpy() for p in params]
    mode = MODES[kind]
    scratch: dict = {}

    def take(shape):  # one buffer per shape, reused (what a pool gives in steady state)
        if shape not in scratch:
            scratch[shape] = np.empty(shape, np.float32)
        return scratch[shape]

    class Minimal(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *ws):
            xa = x.numpy()
            out = np.empty((T, B, H), np.float32)
            ctx.xa, ctx.out = xa, out
            ctx.cache = K.forward(mode, take, out, xa, None, None, *w)
            ctx.set_materialize_grads(False)
            outs = [torch.from_numpy(out), torch.from_numpy(out[-1:].copy())]
            if mode == "LSTM":
                outs.append(torch.from_numpy(K.last_cell(mode, ctx.cache)[None].copy()))
            return tuple(outs)

        @staticmethod
        def backward(ctx, d_out, d_hn, d_cn=None):
            g = [np.zeros(a.shape, np.float32) for a in w]
            dh = None if d_hn is None else np.ascontiguousarray(d_hn.numpy()[0])
            dc = None if d_cn is None else np.ascontiguousarray(d_cn.numpy()[0])
            K.backward(mode, take, ctx.cache, ctx.xa, None, None, ctx.out, w[0], w[1], None, dh, dc,
                       None, None, None, *g, np.empty(T), np.empty(T) if mode == "LSTM" else None)
            return (None, *[torch.from_numpy(a) for a in g])

    def run():
        for p in params:
            p.grad = None
        _, h = Minimal.apply(tx, *params)[:2]
        h.sum().backward()
    return run


def stub_step(kind, T, B, H, L, bi, optimizer, x, y):
    """The training step with a recurrent stub that runs no kernel."""
    D = 2 if bi else 1
    shapes = [tuple(p.shape) for p in TORCH[kind](2, H, num_layers=L, bidirectional=bi).parameters()]
    out, h_n = torch.zeros(T, B, D * H), torch.zeros(L * D, B, H)

    class Stub(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *ws):
            ctx.set_materialize_grads(False)
            return out, h_n

        @staticmethod
        def backward(ctx, *grads):
            return (None, *[torch.from_numpy(np.zeros(s, np.float32)) for s in shapes])

    class Rec(torch.nn.Module):
        bidirectional = bi

        def __init__(self):
            super().__init__()
            self.ws = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(s)) for s in shapes])

        def forward(self, tx):
            o, h = Stub.apply(tx, *self.ws)
            return (o, (h, h)) if kind == "lstm" else (o, h)

    return W._torch_step(Rec(), torch.nn.Linear(D * H, 1), x, y, optimizer, gt.clip_grad_norm_)


def native_layer(kind, H, L, bi, x):
    """The native layer alone, as its step runs it (the head's gradient at the final state)."""
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    rec = cls(2, H, num_layers=L, bidirectional=bi, seed=0)
    last = nn.LastStep(rec)
    d = np.ones((x.shape[1], (2 if bi else 1) * H), np.float32)

    def run():
        rec.zero_grad()
        last.forward(x)
        last.backward(d)
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", help="run only workloads whose name contains this")
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timed rounds per workload")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    want = (lambda name: not args.only or any(s in name for s in args.only))
    print("layer: module / minimal Function / native, ms (ratio native / each)")
    for name, kind, T, B, H in W.LAYERS:
        if not want(name):
            continue
        cases = W._layer_cases(kind, T, B, H)
        x, _ = W._batch(T, B)
        cases = {"module": cases["gradcore"], "minimal": minimal_layer(kind, T, B, H, torch.from_numpy(x)),
                 "native": cases["native"]}
        med = {k: v[0] * 1e3 for k, v in time_interleaved(cases, args.budget, calls=W.STEADY_CALLS).items()}
        print(f"  {name}: " + " | ".join(f"{k} {v:.3f} ({med['native'] / v:.3f})" for k, v in med.items()))
    print("step: torch's rest (stub step) vs native's rest (native step - native layer), ms")
    for name, kind, T, B, H, L, bi, optimizer in W.SPECS:
        if not want(name):
            continue
        x, y = W._batch(T, B)
        cases = {"native": W._native_step(kind, T, B, H, x, y, optimizer, L, bi),
                 "native layer": native_layer(kind, H, L, bi, x),
                 "stub step": stub_step(kind, T, B, H, L, bi, optimizer, x, y)}
        med = {k: v[0] * 1e3 for k, v in time_interleaved(cases, args.budget, calls=W.STEADY_CALLS).items()}
        rest = med["native"] - med["native layer"]
        best = med["native"] / (med["native layer"] + med["stub step"])
        print(f"  {name}: native {med['native']:.3f}, native layer {med['native layer']:.3f}, native rest "
              f"{rest:.3f}, torch rest {med['stub step']:.3f}: best ratio {best:.3f}")


if __name__ == "__main__":
    main()
