"""PyTorch-interop workloads: full training steps, float32, one thread.

``{kind}-...``: one full step -- forward, MSE loss on a linear head over the
top layer's final state (``h_n[-1]``; bidirectional ``cat(h_n[-2],
h_n[-1])``), backward, global-norm clipping (1.0), optimizer step -- on one
fixed batch of the adding problem (``gradcore.tasks.adding_batch``, I = 2).
Implementations, all with the same initial weights, float32:

- ``gradcore``: ``gradcore.interop.torch.RNN/LSTM/GRU`` + ``torch.nn.Linear``,
  torch loss, ``gradcore.interop.torch.clip_grad_norm_`` (the drop-in for
  torch's: the same norm and coefficient ``min(1, 1.0 / (norm + 1e-6))``,
  one fused C pass over the gradients' own memory, no write when the
  coefficient is 1; tested against torch's in tests/test_interop_torch*.py),
  torch optimizer: what a gradcore user writes, everything else torch's;
- ``torch``: the same with ``torch.nn.RNN/LSTM/GRU`` and
  ``torch.nn.utils.clip_grad_norm_``: pure torch;
- ``native``: gradcore's own layers (``nn.Sequential(LastStep(LSTM), Dense)``
  -- ``LastStep`` reads the same final state --, ``losses.mse``,
  ``optim.Adam/SGD.step(clip_norm=1.0)``). Its ratio to ``gradcore`` is the
  torch wrapper's overhead *plus* the difference between torch's loss and
  optimizer (and the torch-tensor clipping call) and gradcore's fused ones
  (``native`` 0.95x = the torch step costs 5% more).

``stepnorms-lstm-...``: the LSTM step of the first workload where the user
also wants ||dL/dh_t|| for every t: gradcore gives them with every backward
(``timestep_grad_norms``); torch needs ``nn.LSTMCell`` unrolled in Python with
``retain_grad()`` on every h_t (``torch-cell``).

``layer-{kind}-...``: the recurrent layer alone, forward + backward with
the loss on h_T, ``gradcore`` (the torch module, zeroing its gradients) vs
``native`` (``gradcore.nn`` layer): the wrapper's own overhead, without the
rest of a torch training step.

Every workload is timed in its steady state (``STEADY_CALLS``): a training
step runs after the previous step of itself, and so does each call here;
the first call of each block, after another library's step, is reported
apart (``cold_median_ms`` in the JSON).

Measured ratios, with the command and the machine's state, are in
docs/performance.md ("PyTorch interop"); read ratios from one interleaved
run (``gradcore bench`` interleaves the implementations), not milliseconds.
"""

from __future__ import annotations

import numpy as np

GROUP = "torch"
#: the cheapest workload: the test suite runs it once per implementation
SMOKE = "layer-rnn-T100-B20-H128"
#: calls in a row per implementation and round, the first untimed (see _common.time_interleaved)
STEADY_CALLS = 3

# (name, kind, T, B, H, num_layers, bidirectional, optimizer)
SPECS = [
    ("lstm-adding-T200-B32-H128-adam", "lstm", 200, 32, 128, 1, False, "adam"),
    ("rnn-adding-T100-B20-H128-sgd", "rnn", 100, 20, 128, 1, False, "sgd"),
    ("gru-adding-T500-B16-H64-adam", "gru", 500, 16, 64, 1, False, "adam"),
    ("lstm2bi-adding-T200-B32-H128-adam", "lstm", 200, 32, 128, 2, True, "adam"),
]
STEPNORMS = "stepnorms-lstm-T200-B32-H128-adam"
LAYERS = [("layer-lstm-T200-B32-H128", "lstm", 200, 32, 128), ("layer-rnn-T100-B20-H128", "rnn", 100, 20, 128),
          ("layer-gru-T500-B16-H64", "gru", 500, 16, 64)]

TARGETS = [
    ("lstm-adding-T200-B32-H128-adam", "torch", 1.6),
    ("rnn-adding-T100-B20-H128-sgd", "torch", 3.0),
    ("gru-adding-T500-B16-H64-adam", "torch", 6.0),
    ("lstm2bi-adding-T200-B32-H128-adam", "torch", 1.5),
    ("lstm-adding-T200-B32-H128-adam", "native", 0.91),
    ("rnn-adding-T100-B20-H128-sgd", "native", 0.91),
    ("gru-adding-T500-B16-H64-adam", "native", 0.91),
    ("lstm2bi-adding-T200-B32-H128-adam", "native", 0.91),
    (STEPNORMS, "torch-cell", 2.5),
] + [(name, "native", 0.91) for name, *_ in LAYERS]


def _batch(T, B):
    from gradcore import tasks

    x, y = tasks.adding_batch(np.random.default_rng(0), T, B)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)


def _last(out, h, bi):
    """What the head reads: the top layer's final state (torch's ``h_n[-1]``,
    bidirectional ``cat(h_n[-2], h_n[-1])``), the same as ``nn.LastStep``."""
    import torch

    h = h[0] if isinstance(h, tuple) else h
    return torch.cat((h[-2], h[-1]), 1) if bi else h[-1]


def _torch_step(rec, head, x, y, optimizer, clip=None):
    """One training step; ``clip`` is the global-norm clipping function
    (torch's ``clip_grad_norm_`` when None)."""
    import torch

    clip = torch.nn.utils.clip_grad_norm_ if clip is None else clip
    bi = rec.bidirectional
    params = list(rec.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3) if optimizer == "adam" else torch.optim.SGD(params, lr=1e-2, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        out, h = rec(tx)
        loss = torch.nn.functional.mse_loss(head(_last(out, h, bi)), ty)
        loss.backward()
        clip(params, 1.0)
        opt.step()

    return step


def _native_step(kind, T, B, H, x, y, optimizer, L=1, bi=False, like=None):
    """gradcore's own layers, loss and optimizer; ``like``: (torch recurrent
    module, torch head) whose weights it starts from."""
    from gradcore import losses, nn, optim
    from gradcore.interop.torch_state import load_torch_state_dict

    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    rec = cls(2, H, num_layers=L, bidirectional=bi, seed=0)
    dense = nn.Dense((2 if bi else 1) * H, 1, seed=1)
    if like is not None:
        load_torch_state_dict(rec, like[0].state_dict())
        load_torch_state_dict(dense, like[1].state_dict())
    model = nn.Sequential(nn.LastStep(rec), dense)
    opt = optim.Adam(model, lr=1e-3) if optimizer == "adam" else optim.SGD(model, lr=1e-2, momentum=0.9)

    def step():
        model.zero_grad()
        _, dpred = losses.mse(model.forward(x), y)
        model.backward(dpred)
        opt.step(clip_norm=1.0)

    return step


def _cell_step(rec, head, x, y):
    """torch's way to per-step norms: LSTMCell unrolled, retain_grad on every h_t."""
    import torch

    H = rec.hidden_size
    cell = torch.nn.LSTMCell(2, H)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in rec.state_dict().items()})
    params = list(cell.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    T, B = x.shape[:2]

    def step():
        opt.zero_grad()
        h = torch.zeros(B, H)
        c = torch.zeros(B, H)
        hs = []
        for t in range(T):
            h, c = cell(tx[t], (h, c))
            h.retain_grad()
            hs.append(h)
        loss = torch.nn.functional.mse_loss(head(h), ty)
        loss.backward()
        norms = [float(v.grad.norm()) for v in hs]  # noqa: F841 - what the user wanted
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def _gc_with_norms(step, rec):
    def run():
        step()
        norms = rec.timestep_grad_norms  # noqa: F841 - already computed by the backward
    return run


def _layer_cases(kind, T, B, H):
    import torch

    import gradcore.interop.torch as gt
    from gradcore import nn

    x, _ = _batch(T, B)
    tx = torch.from_numpy(x)
    m = {"rnn": gt.RNN, "lstm": gt.LSTM, "gru": gt.GRU}[kind](2, H)
    nat = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](2, H, seed=0)
    d = np.ones((B, H), np.float32)

    def wrapped():
        m.zero_grad()
        _, h = m(tx)
        (h[0] if isinstance(h, tuple) else h).sum().backward()

    def native():
        nat.zero_grad()
        nat.forward(x)
        nat.backward(None, d_hT=d)

    return {"gradcore": wrapped, "native": native}


def workloads(only=None):
    try:
        import torch
    except ImportError:
        return {}
    import gradcore.interop.torch as gt

    torch.set_num_threads(1)
    out = {}
    for name, kind, T, B, H, L, bi, optimizer in SPECS:
        if only and not any(s in name for s in only):
            continue
        x, y = _batch(T, B)
        ours_cls = {"rnn": gt.RNN, "lstm": gt.LSTM, "gru": gt.GRU}[kind]
        torch_cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        torch.manual_seed(0)
        ours = ours_cls(2, H, num_layers=L, bidirectional=bi)
        ref = torch_cls(2, H, num_layers=L, bidirectional=bi)
        ref.load_state_dict(ours.state_dict())
        D = 2 if bi else 1
        head1, head2 = torch.nn.Linear(D * H, 1), torch.nn.Linear(D * H, 1)
        head2.load_state_dict(head1.state_dict())
        impls = {"gradcore": _torch_step(ours, head1, x, y, optimizer, gt.clip_grad_norm_),
                 "torch": _torch_step(ref, head2, x, y, optimizer)}
        impls["native"] = _native_step(kind, T, B, H, x, y, optimizer, L, bi, like=(ref, head2))
        out[name] = impls
        if name.startswith("lstm-") and (not only or any(s in STEPNORMS for s in only)):
            head3, head4 = torch.nn.Linear(H, 1), torch.nn.Linear(H, 1)
            head4.load_state_dict(head3.state_dict())
            out[STEPNORMS] = {"gradcore": _gc_with_norms(_torch_step(ours, head3, x, y, optimizer, gt.clip_grad_norm_),
                                                         ours),
                              "torch-cell": _cell_step(ref, head4, x, y)}
    for name, kind, T, B, H in LAYERS:
        if not only or any(s in name for s in only):
            out[name] = _layer_cases(kind, T, B, H)
    return out
