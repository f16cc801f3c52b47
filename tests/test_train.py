import math

import numpy as np
import pytest

import gradcore
from gradcore import nn, optim
from gradcore.monitor import GradMonitor


def _data(n_batches, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 1))
    out = []
    for _ in range(n_batches):
        x = rng.standard_normal((16, 4)).astype(dtype)
        out.append((x, (x @ w).astype(dtype)))
    return out


def _model(dtype="float64", seed=0):
    return nn.MLP([4, 16, 1], activation="tanh", init="xavier_normal", dtype=dtype, seed=seed)


def test_train_reduces_the_loss():
    model = _model()
    res = gradcore.train(model, _data(200), loss="mse", optimizer=optim.SGD(model, lr=0.1), progress=False)
    assert isinstance(res, gradcore.TrainResult)
    assert res.steps == 200 and not res.stopped
    assert res.losses[-10:].mean() < 0.1 * res.losses[:10].mean()
    assert len(res.grad_norms) == 200 and np.all(res.clip_coefs == 1.0)
    assert "trained 200 steps" in str(res)


def test_steps_limits_and_string_optimizers():
    model = _model()
    res = gradcore.train(model, iter(_data(50)), optimizer="adam", lr=1e-2, steps=7, progress=False)
    assert res.steps == 7


def test_same_as_a_hand_written_loop_with_clipping():
    data = _data(10)
    a, b = _model(), _model()
    res = gradcore.train(a, data, optimizer=optim.SGD(a, lr=0.05, momentum=0.9), clip_norm=0.3, progress=False)
    opt = optim.SGD(b, lr=0.05, momentum=0.9)
    norms = []
    for x, y in data:
        b.zero_grad()
        _, d = gradcore.losses.mse(b.forward(x), y)
        b.backward(d)
        norms.append(opt.step(clip_norm=0.3))
    np.testing.assert_array_equal(a.arena.data, b.arena.data)
    np.testing.assert_allclose(res.grad_norms, norms)
    assert np.all(res.clip_coefs[res.grad_norms > 0.3] < 1.0)


def test_clip_value_clamps_the_gradients():
    data = _data(3)
    a, b = _model(), _model()
    gradcore.train(a, data, optimizer=optim.SGD(a, lr=0.1), clip_value=1e-3, progress=False)
    opt = optim.SGD(b, lr=0.1)
    for x, y in data:
        b.zero_grad()
        _, d = gradcore.losses.mse(b.forward(x), y)
        b.backward(d)
        np.clip(b.arena.grad, -1e-3, 1e-3, out=b.arena.grad)
        opt.step()
    np.testing.assert_allclose(a.arena.data, b.arena.data, rtol=1e-12)


def test_planted_nan_gradient_stops_and_restores_the_last_finite_weights():
    data = _data(20)
    model = _model()
    calls = {"n": 0}
    orig = model.backward

    def backward(dy):
        dx = orig(dy)
        if calls["n"] == 5:
            model.gradients()["0.weight"].reshape(-1)[3] = np.nan
        calls["n"] += 1
        return dx

    model.backward = backward
    mon = GradMonitor(model)
    res = gradcore.train(model, data, optimizer=optim.SGD(model, lr=0.1), monitor=mon, progress=False)
    assert res.stopped and res.stop_step == 5
    assert (res.stop_reason, res.stop_parameter, res.stop_index, res.stop_kind) == \
        ("nonfinite_gradient", "0.weight", 3, "NaN")
    assert res.restored_step == 4 and res.steps == 5
    assert "step 5" in res.message and "0.weight" in res.message
    # the weights equal those of a clean run of the first 5 steps
    ref = _model()
    gradcore.train(ref, data[:5], optimizer=optim.SGD(ref, lr=0.1), progress=False)
    np.testing.assert_array_equal(model.arena.data, ref.arena.data)
    assert np.all(np.isfinite(model.arena.data))
    ev = [e for e in mon.events if e.kind == "nonfinite"]
    assert ev and (ev[0].step, ev[0].parameter, ev[0].index) == (5, "0.weight", 3)


def test_nonfinite_loss_and_corrupted_weights_are_rolled_back():
    data = _data(10)
    model = _model()

    def batches():
        for i, (x, y) in enumerate(data):
            if i == 3:
                model.parameters()["1.bias"][0] = np.inf  # corrupted between steps
            yield x, y

    mon = GradMonitor(model)
    res = gradcore.train(model, batches(), optimizer=optim.SGD(model, lr=0.1), monitor=mon, progress=False)
    assert res.stopped and res.stop_step == 3 and res.stop_reason == "nonfinite_loss"
    assert [(e.step, e.kind, e.detail) for e in mon.events] == [(3, "nonfinite", "loss is Inf")]
    assert len(mon) == 3 and len(mon.history["exploding"]) == 3
    assert (res.stop_parameter, res.stop_index, res.stop_kind) == ("1.bias", 0, "Inf")
    ref = _model()
    gradcore.train(ref, data[:3], optimizer=optim.SGD(ref, lr=0.1), progress=False)
    np.testing.assert_array_equal(model.arena.data, ref.arena.data)


def test_overflowing_update_is_caught_and_undone():
    model = nn.MLP([4, 16, 1], activation="identity", dtype="float32", seed=0)
    x = np.full((4, 4), 1e15, dtype=np.float32)
    y = np.zeros((4, 1), dtype=np.float32)
    start = model.arena.data.copy()
    res = gradcore.train(model, [(x, y)] * 3, optimizer=optim.SGD(model, lr=1e10), progress=False)
    assert res.stopped and res.stop_step == 0 and res.stop_reason == "nonfinite_weights"
    assert res.stop_kind == "Inf" and res.stop_parameter is not None
    assert res.restored_step == -1 and res.steps == 0
    np.testing.assert_array_equal(model.arena.data, start)


def test_without_stop_on_nonfinite_the_bad_step_is_skipped():
    data = _data(6)
    data[2] = (data[2][0], np.full_like(data[2][1], np.nan))
    model = _model()
    res = gradcore.train(model, data, optimizer=optim.SGD(model, lr=0.1), stop_on_nonfinite=False, progress=False)
    assert not res.stopped and res.steps == 5
    assert np.all(np.isfinite(model.arena.data))


def test_no_progress_bar_when_not_a_terminal(capsys):
    model = _model()
    gradcore.train(model, _data(5), optimizer=optim.SGD(model, lr=0.1), progress=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_bad_arguments_change_nothing():
    model = _model()
    before = model.arena.data.copy()
    with pytest.raises(ValueError, match="steps"):
        gradcore.train(model, _data(2), steps=0)
    with pytest.raises(ValueError, match="clip_norm"):
        gradcore.train(model, _data(2), clip_norm=-1.0)
    with pytest.raises(ValueError, match="loss"):
        gradcore.train(model, _data(2), loss="hinge")
    with pytest.raises(ValueError, match="optimizer"):
        gradcore.train(model, _data(2), optimizer="rmsprop")
    with pytest.raises(TypeError, match="pair"):
        gradcore.train(model, [np.zeros(3)], progress=False)
    with pytest.raises(ValueError, match="monitor"):
        gradcore.train(model, _data(2), monitor=GradMonitor(_model()))
    np.testing.assert_array_equal(model.arena.data, before)
