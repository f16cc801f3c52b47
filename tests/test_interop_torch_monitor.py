"""gradcore.interop.torch.GradMonitor on torch modules."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # the machine may be shared: one thread keeps these tests fast

import gradcore.monitor  # noqa: E402
from gradcore.interop.torch import GradMonitor  # noqa: E402


def net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def step(model, scale=1.0, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else 0)
    model.zero_grad()
    (model(torch.randn(16, 5, generator=g)).pow(2).mean() * scale).backward()


def test_records_after_every_backward_and_matches_torch_norms():
    model = net()
    mon = GradMonitor(model)
    for s in range(4):
        step(model, seed=s)
    assert len(mon) == 4
    h = mon.history
    names = [n for n, _ in model.named_parameters()]
    assert mon.names == names
    for n, p in model.named_parameters():
        assert h[f"grad_norm/{n}"][-1] == pytest.approx(float(p.grad.double().norm()), rel=1e-6)
    total = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    assert h["grad_norm"][-1] == pytest.approx(float(total), rel=1e-6)
    with torch.no_grad():  # no backward: nothing recorded
        model(torch.randn(2, 5))
    model(torch.randn(2, 5))  # forward without backward
    assert len(mon) == 4
    mon.remove()
    step(model)
    assert len(mon) == 4
    df = mon.to_dataframe()
    assert list(df["step"]) == [0, 1, 2, 3] and "grad_norm/0.weight" in df.columns
    assert "4 steps" in mon.summary()


def test_one_pass_over_all_gradients(monkeypatch):
    model = torch.nn.Sequential(*[torch.nn.Linear(3, 3) for _ in range(150)])  # 300 parameters
    calls = []
    real = gradcore.monitor.grad_stats

    def counting(arrays, *a, **k):
        calls.append(len(arrays))
        return real(arrays, *a, **k)

    monkeypatch.setattr(gradcore.monitor, "grad_stats", counting)
    mon = GradMonitor(model)
    model(torch.randn(4, 3)).sum().backward()
    assert calls == [300]  # one call (one C pass per dtype) over every .grad
    assert len(mon.history["grad_norm/149.bias"]) == 1


def test_planted_nan_located_by_name_and_index():
    model = net()
    mon = GradMonitor(model, auto=False)
    step(model)
    model[2].weight.grad[1, 3] = float("nan")
    events = mon.after_backward(step=7, loss=0.5)
    assert len(events) == 1
    e = events[0]
    assert (e.step, e.kind, e.parameter, e.index) == (7, "nonfinite", "2.weight", 1 * 8 + 3)
    assert math.isnan(e.value) and "NaN" in e.detail
    step(model)
    model[0].bias.grad[5] = float("inf")
    e = mon.after_backward()[0]
    assert (e.parameter, e.index, e.value) == ("0.bias", 5, math.inf)


def test_explosion_and_vanishing_events():
    model = net()
    mon = GradMonitor(model, window=5, explode_factor=10.0, vanish_threshold=1e-9)
    for s in range(8):
        step(model, seed=s)
    step(model, scale=1e4, seed=8)
    kinds = [e.kind for e in mon.events]
    assert kinds == ["explosion"] and mon.events[0].step == 8
    step(model, scale=0.0, seed=9)
    vanishing = [e for e in mon.events if e.kind == "vanishing"]
    assert vanishing and vanishing[0].step == 9 and vanishing[0].parameter is None


def test_half_precision_and_unused_parameters():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"used": torch.nn.Linear(3, 2), "unused": torch.nn.Linear(3, 2)}).to(torch.bfloat16)
    frozen = torch.nn.Linear(3, 2)
    frozen.requires_grad_(False)
    model["frozen"] = frozen.to(torch.bfloat16)
    mon = GradMonitor(model, auto=False)
    assert "frozen.weight" not in mon.names
    model["used"](torch.randn(4, 3, dtype=torch.bfloat16)).float().sum().backward()
    mon.after_backward()
    h = mon.history
    assert h["grad_norm/used.weight"][0] == pytest.approx(float(model["used"].weight.grad.double().norm()), rel=1e-6)
    assert h["grad_norm/unused.weight"][0] == 0.0  # no gradient reached it


def test_bad_arguments():
    with pytest.raises(TypeError, match="module: expected a torch.nn.Module"):
        GradMonitor(object())
    with pytest.raises(TypeError, match="auto"):
        GradMonitor(net(), auto=1)
    with pytest.raises(ValueError, match="window"):
        GradMonitor(net(), window=1)
    assert np.isnan(GradMonitor(net(), auto=False).history["grad_norm"]).size == 0
