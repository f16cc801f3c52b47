import math

import numpy as np
import pytest

import gradcore
from gradcore import losses, nn, optim
from gradcore.clip import clip_coefficient
from gradcore.monitor import Event, GradMonitor


def _model(seed=0, dtype="float64"):
    return nn.Sequential(nn.Dense(4, 8, activation="tanh", dtype=dtype, seed=seed),
                         nn.Dense(8, 2, dtype=dtype, seed=seed + 1))


def _backward(model, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 4))
    y = rng.standard_normal((5, 2))
    model.zero_grad()
    loss, d = losses.mse(model.forward(x), y)
    model.backward(d)
    return loss


def test_records_norms_weights_and_update_ratio():
    model = _model()
    opt = optim.SGD(model, lr=0.1)
    mon = GradMonitor(model)
    for step in range(3):
        loss = _backward(model, step)
        grads = {k: v.copy() for k, v in model.gradients().items()}
        before = {k: v.copy() for k, v in model.parameters().items()}
        assert mon.after_backward(step, loss) == []
        norm = opt.step(clip_norm=0.5)
        mon.after_step(clip_coefficient(norm, 0.5))
    h = mon.history
    assert list(h["step"]) == [0, 1, 2] and len(mon) == 3
    allg = np.concatenate([g.ravel() for g in grads.values()])
    assert h["grad_norm"][-1] == pytest.approx(np.linalg.norm(allg), rel=1e-12)
    for name, g in grads.items():
        assert h[f"grad_norm/{name}"][-1] == pytest.approx(np.linalg.norm(g), rel=1e-12)
        w = model.parameters()[name]
        assert h[f"weight_norm/{name}"][-1] == pytest.approx(np.linalg.norm(w), rel=1e-12)
        assert h[f"update_ratio/{name}"][-1] == pytest.approx(
            np.linalg.norm(w - before[name]) / np.linalg.norm(before[name]), rel=1e-9)
    assert h["clip_coef"][-1] == pytest.approx(min(1.0, 0.5 / (h["grad_norm"][-1] + 1e-6)))
    assert h["loss"][-1] == pytest.approx(loss)


@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "Inf")])
def test_locates_a_planted_nonfinite_gradient(bad, kind):
    model = _model()
    mon = GradMonitor(model)
    for step in range(4):
        _backward(model, step)
        if step == 2:
            model.gradients()["1.weight"].reshape(-1)[7] = bad
        events = mon.after_backward(step)
        mon.after_step(1.0)
        if step == 2:
            assert len(events) == 1
            e = events[0]
            assert (e.step, e.kind, e.parameter, e.index) == (2, "nonfinite", "1.weight", 7)
            assert kind in e.detail and kind in str(e)
        else:
            assert events == []
    h = mon.history
    assert not math.isfinite(h["grad_norm"][2])
    assert len(h["exploding"]) == 4 and not h["exploding"].any()


def _feed(mon, model, norms):
    g = model.arena.grad
    for step, n in enumerate(norms):
        g[...] = n / math.sqrt(g.size)
        mon.after_backward(step)
        mon.after_step(1.0)


def test_flags_explosion_once_when_it_starts():
    model = _model()
    mon = GradMonitor(model, explode_factor=10.0, window=5)
    _feed(mon, model, [1.0] * 8 + [50.0, 60.0] + [1.0] * 3 + [9.0])
    exp = [e for e in mon.events if e.kind == "explosion"]
    assert [e.step for e in exp] == [8]
    assert list(np.flatnonzero(mon.history["exploding"])) == [8, 9]
    assert "running median" in exp[0].detail


def test_flags_vanishing_global_and_per_parameter():
    model = _model()
    mon = GradMonitor(model, vanish_threshold=1e-6)
    _feed(mon, model, [1.0, 1e-9, 1e-9, 1.0])
    van = [e for e in mon.events if e.kind == "vanishing"]
    assert {e.step for e in van} == {1}
    assert {e.parameter for e in van} == {None, "0.weight", "0.bias", "1.weight", "1.bias"}


def test_flags_monotonic_weight_growth():
    model = _model()
    mon = GradMonitor(model, window=4, growth_factor=1.3)
    for step in range(8):
        model.arena.data *= 1.1
        _backward(model, step)
        mon.after_backward(step)
        mon.after_step(1.0)
    ev = [e for e in mon.events if e.kind == "weight_growth"]
    assert len(ev) == 1 and ev[0].step == 4
    mon2 = GradMonitor(_model(), window=4)
    for step in range(8):
        _backward(mon2.model, step)
        mon2.after_backward(step)
        mon2.after_step(1.0)
    assert not [e for e in mon2.events if e.kind == "weight_growth"]


def test_per_timestep_norms_of_recurrent_layers():
    cell = nn.RNN(3, 6, dtype="float64", seed=0)
    model = nn.Sequential(nn.LastStep(cell), nn.Dense(6, 1, dtype="float64", seed=1))
    mon = GradMonitor(model)
    x = np.random.default_rng(0).standard_normal((9, 2, 3))
    for step in range(2):
        model.zero_grad()
        _, d = losses.mse(model.forward(x), np.zeros((2, 1)))
        model.backward(d)
        mon.after_backward(step)
        mon.after_step(1.0)
    ts = mon.history["timestep_norms"]
    assert len(ts) == 1
    (name, arr), = ts.items()
    assert arr.shape == (2, 9)
    np.testing.assert_allclose(arr[-1], cell.timestep_grad_norms)
    assert "per-time-step" in mon.summary()


@pytest.mark.parametrize("radius, flagged", [(0.2, True), (1.0, False)])
def test_flags_gradient_vanishing_through_time(radius, flagged):
    # identity RNN with W_hh = radius * I: ||dL/dh_0|| / ||dL/dh_T-1|| = radius^(T-1)
    T = 12
    cell = nn.RNN(2, 4, nonlinearity="identity", recurrent_init=nn.scaled("identity", spectral_radius=radius),
                  dtype="float64", seed=0)
    model = nn.Sequential(nn.LastStep(cell), nn.Dense(4, 1, dtype="float64", seed=1))
    mon = GradMonitor(model, vanish_threshold=1e-6)
    x = np.random.default_rng(0).standard_normal((T, 3, 2))
    for step in range(3):
        model.zero_grad()
        _, d = losses.mse(model.forward(x), np.ones((3, 1)))
        model.backward(d)
        mon.after_backward(step)
        mon.after_step(1.0)
    events = [e for e in mon.events if e.kind == "vanishing_in_time"]
    if flagged:
        assert len(events) == 1 and events[0].step == 0  # reported once, when it starts
        assert events[0].parameter is not None
        assert events[0].value == pytest.approx(radius ** (T - 1), rel=1e-9)
    else:
        assert events == []


def test_summary_csv_and_dataframe(tmp_path):
    model = _model()
    mon = GradMonitor(model, window=5)
    _feed(mon, model, [1.0] * 6 + [100.0])
    text = mon.summary()
    assert "7 steps" in text and "explosion" in text
    path = mon.to_csv(tmp_path / "h.csv")
    lines = open(path).read().splitlines()
    assert len(lines) == 8 and lines[0].split(",")[:3] == ["step", "loss", "grad_norm"]
    assert "grad_norm/1.weight" in lines[0]
    pd = pytest.importorskip("pandas")
    df = mon.to_dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) == 7
    assert df["grad_norm"].iloc[-1] == pytest.approx(100.0)


def test_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        GradMonitor(object())
    with pytest.raises(ValueError, match="window"):
        GradMonitor(_model(), window=1)
    with pytest.raises(ValueError, match="explode_factor"):
        GradMonitor(_model(), explode_factor=float("nan"))
    with pytest.raises(RuntimeError, match="after_backward"):
        GradMonitor(_model()).after_step(1.0)
    assert isinstance(Event(0, "vanishing", None, None, 0.0, "x"), Event)
