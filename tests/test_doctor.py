"""The gradient doctor: planted causes are ranked first, a healthy model has
no cause above the reporting threshold, and diagnose never writes the model
or the optimizer."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcore
from gradcore import init, nn
from gradcore.doctor import CAUSES, THRESHOLD


def chain(w, n):
    return nn.Sequential(*[nn.Dense(1, 1, "identity", init=init.constant(w), dtype="float64") for _ in range(n)])


def names(d):
    return [c.name for c in d.reported]


def assert_top(d, *wanted):
    assert d.reported, d.report()
    assert d.reported[0].name in wanted, d.report()
    for c in d.causes:
        assert c.name in CAUSES and 0.0 <= c.score <= 1.0
        assert c.evidence and c.fix


# ---- planted scenarios ----------------------------------------------------------


def test_chain_5_layers_weight_2_is_init_gain():
    d = gradcore.diagnose(chain(2.0, 5), np.ones((1, 1)), np.zeros((1, 1)))
    assert_top(d, "init_gain")
    assert "16x that at layer 5" in d.reported[0].evidence        # 2^4, as the chain experiment says
    assert "multiply the weights by 0.5" in d.reported[0].fix
    gains = [r["gain"] for r in d.measurements["layers"]]
    np.testing.assert_allclose(gains, 2.0, rtol=1e-12)
    np.testing.assert_allclose([r["chi1"] for r in d.measurements["layers"]], 4.0, rtol=1e-12)


def test_chain_20_layers_weight_2_5_is_init_gain():
    d = gradcore.diagnose(chain(2.5, 20), np.ones((1, 1)), np.zeros((1, 1)))
    assert_top(d, "init_gain")
    dg = d.measurements["depth_gain"]
    assert dg["log10_measured"] == pytest.approx(19 * math.log10(2.5), rel=1e-9)
    assert dg["log10_predicted"] == pytest.approx(19 * math.log10(2.5), rel=1e-9)
    assert "multiply the weights by 0.4" in d.reported[0].fix


def test_raw_pixels_with_he_init_is_input_scale():
    rng = np.random.default_rng(0)
    m = nn.MLP([64, 128, 128, 10], init="he_normal", seed=0)
    x = rng.integers(0, 256, (128, 64)).astype(np.float32)
    y = rng.standard_normal((128, 10)).astype(np.float32)
    for lr in (None, 0.01):
        d = gradcore.diagnose(m, x, y, lr=lr)
        assert_top(d, "input_scale")
        assert "0..255" in d.reported[0].evidence and "divide by 255" in d.reported[0].fix
    # the same network on the same pixels scaled to [0, 1]: input scale is no longer reported
    d = gradcore.diagnose(m, x / 255.0, y, lr=0.01)
    assert "input_scale" not in names(d)


def test_tanh_rnn_radius_1_5_on_adding_is_recurrent_weight():
    cell = nn.RNN(2, 64, nonlinearity="tanh", recurrent_init=nn.scaled("orthogonal", spectral_radius=1.5), seed=0)
    m = nn.Sequential(nn.LastStep(cell), nn.Dense(64, 1, seed=1))
    x, y = next(gradcore.tasks.adding(T=100, batch_size=32, seed=0))
    d = gradcore.diagnose(m, x, y, lr=0.01)
    assert_top(d, "recurrent_weight")
    rec = d.measurements["recurrent"][0]
    assert rec["spectral_radius"] == pytest.approx(1.5, rel=1e-5)
    assert rec["growth"]["per_step"] > 1.0 and rec["growth"]["T"] == 100
    assert "spectral radius 1.0" in d.reported[0].fix


def test_well_initialized_mlp_with_lr_10_is_learning_rate():
    rng = np.random.default_rng(1)
    m = nn.MLP([32, 64, 64, 1], seed=0)
    x = rng.standard_normal((128, 32)).astype(np.float32)
    y = rng.standard_normal((128, 1)).astype(np.float32)
    d = gradcore.diagnose(m, x, y, lr=10.0)
    assert_top(d, "learning_rate")
    opt = d.measurements["optimizer"]
    assert opt["lr"] == 10.0 and opt["update_ratio"] > 0.1
    # the same model at lr 1e-3: no learning-rate cause
    assert "learning_rate" not in names(gradcore.diagnose(m, x, y, lr=1e-3))
    # lr taken from the optimizer when not given
    o = gradcore.optim.SGD(m, lr=10.0)
    assert_top(gradcore.diagnose(m, x, y, optimizer=o), "learning_rate")


def test_deep_tanh_sigma_w2_2_5_no_normalization():
    rng = np.random.default_rng(2)
    m = nn.MLP([64] + [64] * 50 + [1], activation="tanh", init=init.normal(math.sqrt(2.5 / 64)), seed=0)
    x = rng.standard_normal((128, 64)).astype(np.float32)
    y = rng.standard_normal((128, 1)).astype(np.float32)
    d = gradcore.diagnose(m, x, y)
    assert_top(d, "init_gain", "depth_without_normalization")
    chis = [r["chi1"] for r in d.measurements["layers"][1:-1]]
    assert min(chis) > 1.0  # chaotic phase: every hidden layer amplifies


def test_healthy_models_have_no_cause_above_threshold():
    rng = np.random.default_rng(3)
    m = nn.MLP([32, 64, 64, 64, 1], init="he_normal", seed=0)
    x = rng.standard_normal((128, 32)).astype(np.float32)
    y = rng.standard_normal((128, 1)).astype(np.float32)
    d = gradcore.diagnose(m, x, y, lr=1e-3)
    assert d.healthy, d.report()
    assert "no cause above the reporting threshold" in d.report()
    cell = nn.RNN(2, 64, nonlinearity="tanh", recurrent_init=nn.scaled("orthogonal", spectral_radius=1.0), seed=0)
    r = nn.Sequential(nn.LastStep(cell), nn.Dense(64, 1, seed=1))
    xs, ys = next(gradcore.tasks.adding(T=100, batch_size=32, seed=0))
    d = gradcore.diagnose(r, xs, ys, lr=1e-3)
    assert d.healthy, d.report()


def test_monitor_history_sets_the_clip_advice():
    rng = np.random.default_rng(4)
    m = chain(1.5, 12)
    mon = gradcore.GradMonitor(m)
    batches = [(np.full((1, 1), v), np.zeros((1, 1))) for v in rng.uniform(0.1, 3, 12)]
    gradcore.train(m, batches, lr=1e-12, monitor=mon, progress=False)
    d = gradcore.diagnose(m, np.ones((1, 1)), np.zeros((1, 1)), monitor=mon)
    clip = [c for c in d.causes if c.name == "no_clipping"]
    assert clip and "90th percentile" in clip[0].fix
    p90 = np.percentile(mon.history["grad_norm"], 90)
    assert f"{p90:.3g}" in clip[0].fix
    d2 = gradcore.diagnose(m, np.ones((1, 1)), np.zeros((1, 1)), monitor=mon, clipping=1.0)
    assert "no_clipping" not in [c.name for c in d2.causes]


def test_first_nonfinite_is_located():
    m = nn.MLP([3, 4, 1], seed=0, dtype="float64")
    m.parameters()["1.weight"][0, 2] = np.nan
    d = gradcore.diagnose(m, np.ones((2, 3)), np.zeros((2, 1)))
    assert d.measurements["nonfinite"]["first"].startswith("parameter 1.weight at flat index 2")
    assert "first non-finite value" in d.report()


def test_report_and_json():
    d = gradcore.diagnose(chain(2.0, 5), np.ones((1, 1)), np.zeros((1, 1)), lr=0.01)
    j = json.loads(d.to_json())
    assert j["reported"] == [c.name for c in d.reported] and j["threshold"] == THRESHOLD
    assert j["causes"][0]["name"] == "init_gain" and set(j["causes"][0]) == {"name", "score", "evidence", "fix"}
    assert "layers" in j["measurements"]
    # one forward/backward, a trial step and a forward; the same on the copy with the init fixed
    assert j["passes"] == {"forward": 4, "backward": 2, "trial_update": 2}
    assert j["measurements"]["optimizer"]["counterfactual"]["fixes"] == ["init_gain"]
    assert d.report().splitlines()[1].startswith("1. init_gain")


def test_bad_arguments():
    m = chain(1.0, 2)
    with pytest.raises(ValueError, match="lr"):
        gradcore.diagnose(m, np.ones((1, 1)), np.zeros((1, 1)), lr=-1.0)
    with pytest.raises(ValueError, match="optimizer"):
        gradcore.diagnose(m, np.ones((1, 1)), np.zeros((1, 1)), optimizer=gradcore.optim.SGD(chain(1.0, 2), lr=0.1))
    with pytest.raises(TypeError, match="model"):
        gradcore.diagnose(object(), np.ones((1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="loss"):
        gradcore.diagnose(m, np.ones((1, 1)), np.zeros((1, 1)), loss="hinge")


# ---- diagnose never writes the model or the optimizer ------------------------------


def _snapshot(model, opt, held):
    return (model.arena.data.copy(), model.arena.grad.copy(), {k: v.copy() for k, v in model.buffers().items()},
            {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state_dict().items()},
            held.copy(), model.training)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, 4), width=st.integers(2, 12), act=st.sampled_from(["relu", "tanh", "sigmoid"]),
       norm=st.sampled_from([None, "layer", "batch"]), residual=st.booleans(), f64=st.booleans(),
       adam=st.booleans(), scale=st.floats(-2, 3), seed=st.integers(0, 1000))
def test_diagnose_never_changes_model_or_optimizer(depth, width, act, norm, residual, f64, adam, scale, seed):
    dt = "float64" if f64 else "float32"
    m = nn.MLP([5] + [width] * depth + [2], activation=act, norm=norm, residual=residual, dtype=dt, seed=seed)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((8, 5)) * 10.0 ** scale).astype(dt)
    y = rng.standard_normal((8, 2)).astype(dt)
    opt = gradcore.optim.Adam(m, lr=1e-2) if adam else gradcore.optim.SGD(m, lr=1e-2, momentum=0.9)
    for _ in range(2):  # optimizer state and BatchNorm running stats are not at their initial values
        m.zero_grad()
        _, dp = gradcore.losses.mse(m.forward(x), y)
        m.backward(dp)
        opt.step()
    m.zero_grad()
    held = m.forward(x)                     # an output buffer the caller holds
    _, dp = gradcore.losses.mse(held, y)
    m.backward(dp)                          # gradients the caller has not used yet
    before = _snapshot(m, opt, held)
    gradcore.diagnose(m, x * 3, y, optimizer=opt)
    after = _snapshot(m, opt, held)
    assert before[0].tobytes() == after[0].tobytes()
    assert before[1].tobytes() == after[1].tobytes()
    for k in before[2]:
        assert before[2][k].tobytes() == after[2][k].tobytes()
    for k, v in before[3].items():
        w = after[3][k]
        assert (v.tobytes() == w.tobytes()) if isinstance(v, np.ndarray) else v == w
    assert before[4].tobytes() == after[4].tobytes() and before[5] == after[5]
    # the forward cache is still the caller's: a second backward gives the same gradients again
    m.zero_grad()
    m.backward(dp)
    assert m.arena.grad.tobytes() == before[1].tobytes()


def test_doctests_and_critical_init():
    import doctest

    import gradcore.doctor as D
    from gradcore.doctor.layers import critical_sigma_w2
    from gradcore.experiments import theory

    assert doctest.testmod(D).failed == 0
    import gradcore.doctor.modelspec as MS

    assert doctest.testmod(MS).failed == 0
    assert critical_sigma_w2("relu") == 2.0
    assert critical_sigma_w2("tanh") == 1.0
    s = critical_sigma_w2("sigmoid")
    assert theory.mean_field(s, 0.0, "sigmoid").chi_1 == pytest.approx(1.0, rel=1e-4)
    s = critical_sigma_w2("tanh", 0.05)
    assert theory.mean_field(s, 0.05, "tanh").chi_1 == pytest.approx(1.0, rel=1e-4)


def test_train_result_diagnosis_on_stop_and_on_explosion():
    rng = np.random.default_rng(5)
    m = nn.MLP([32, 64, 64, 1], seed=0)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    r = gradcore.train(m, [(x, y)] * 50, lr=10.0, progress=False)
    assert r.stopped
    d = r.diagnosis
    assert d is r.diagnosis and d.top.name == "learning_rate", d.report()
    # an explosion flagged by the monitor (no stop: clipping keeps the weights finite)
    m2 = chain(1.0, 3)
    mon = gradcore.GradMonitor(m2, explode_factor=5.0, window=3)
    batches = [(np.ones((1, 1)), np.zeros((1, 1)))] * 4 + [(np.full((1, 1), 1e3), np.zeros((1, 1)))]
    r2 = gradcore.train(m2, batches, lr=1e-9, monitor=mon, progress=False)
    assert not r2.stopped and any(e.kind == "explosion" for e in mon.events)
    d2 = r2.diagnosis
    assert d2 is not None and d2.measurements["input"]["max"] == 1e3
    assert d2.top.name == "input_scale", d2.report()
    # a quiet run has none
    assert gradcore.train(chain(1.0, 2), [(np.ones((1, 1)), np.zeros((1, 1)))] * 3, lr=1e-3,
                          progress=False).diagnosis is None


def test_report_doctor_section_on_exploding_study_runs(tmp_path):
    from gradcore.doctor.section import doctor_rows, doctor_text
    from gradcore.experiments.report import write_report
    from gradcore.experiments.training import normalization_study

    r = normalization_study(128, 16, (16, 16), 20)
    rows = doctor_rows({"normalization": r})
    raw = [row for row in rows if row["setting"] == "raw 0-255"]
    assert raw and raw[0]["cause"] == "input_scale" and "divide by 255" in raw[0]["fix"]
    assert not [row for row in rows if row["setting"] == "min-max scaled"]  # it did not explode
    assert "input_scale" in doctor_text({"normalization": r})
    rep = write_report({"normalization": r}, tmp_path, plots=False)
    page = open(rep.index).read()
    assert 'id="doctor"' in page and "input_scale" in page
