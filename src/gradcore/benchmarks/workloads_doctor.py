"""The gradient doctor's cost, float32, one thread.

- ``diagnose-mlp-D20-W256-B64``: ``gradcore.diagnose`` of a 20-layer ReLU
  MLP (256 wide, He init) on one batch with a learning rate, against one
  plain forward + backward of the same model and batch (``fwd+bwd``).
- ``diagnose-lstm-T500-B32-H128``: the same for an LSTM (input 32, hidden
  128) with a Dense head on the last step over T = 500 steps.

What diagnose runs: a deep copy of model and optimizer, one forward/backward
walked layer by layer, the Dense pre-activations again in float64, one
trial update and a forward (plus, when an upstream cause is found, the same
on a second copy with its fix applied: not the case here -- the doctor
reports nothing for the LSTM and only learning_rate for the MLP, where one
SGD step at lr 1e-3 takes the loss from 2.6 to 80). ``summary`` prints diagnose / fwd+bwd: "a few passes" means a small
multiple, not a target.
"""

from __future__ import annotations

import numpy as np

GROUP = "doctor"
#: the cheapest workload: the test suite runs it once per implementation
SMOKE = "diagnose-mlp-D20-W256-B64"


def _mlp_case():
    import gradcore
    from gradcore import nn

    rng = np.random.default_rng(0)
    m = nn.MLP([256] + [256] * 19 + [1], init="he_normal", seed=0)
    x = rng.standard_normal((64, 256)).astype(np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    return m, x, y, gradcore


def _lstm_case():
    import gradcore
    from gradcore import nn

    rng = np.random.default_rng(0)
    m = nn.Sequential(nn.LastStep(nn.LSTM(32, 128, seed=0)), nn.Dense(128, 1, seed=1))
    x = rng.standard_normal((500, 32, 32)).astype(np.float32)
    y = rng.standard_normal((32, 1)).astype(np.float32)
    return m, x, y, gradcore


def _cases(build):
    m, x, y, gradcore = build()

    def fwd_bwd():
        m.zero_grad()
        _, d = gradcore.losses.mse(m.forward(x), y)
        m.backward(d)

    def doc():
        gradcore.diagnose(m, x, y, lr=1e-3)

    return {"gradcore": doc, "fwd+bwd": fwd_bwd}


def workloads(only=None):
    out = {}
    for name, build in (("diagnose-mlp-D20-W256-B64", _mlp_case), ("diagnose-lstm-T500-B32-H128", _lstm_case)):
        if only and not any(s in name for s in only):
            continue
        out[name] = _cases(build)
    return out


def summary(results):
    lines = []
    for w, r in results.items():
        if "gradcore" in r and "fwd+bwd" in r:
            lines.append(f"{w}: diagnose {r['gradcore']['median_ms']:.1f} ms = "
                         f"{r['gradcore']['median_ms'] / r['fwd+bwd']['median_ms']:.2f} x one forward+backward "
                         f"({r['fwd+bwd']['median_ms']:.1f} ms)")
    return lines
