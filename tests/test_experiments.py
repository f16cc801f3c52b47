import json
import math

import numpy as np
import pytest

import gradcore
from gradcore import experiments as ex
from gradcore.experiments import theory


# ------------------------------------------------------------------ chain
def test_chain_textbook_w2_and_w05():
    r = ex.chain(2.0, 5)
    assert r.output == 32.0
    np.testing.assert_array_equal(r.preact_grads, [16, 8, 4, 2, 1])
    np.testing.assert_array_equal(r.weight_grads, [16, 16, 16, 16, 16])
    r = ex.chain(0.5, 5)
    np.testing.assert_allclose(r.preact_grads, [0.0625, 0.125, 0.25, 0.5, 1.0])
    assert ex.chain(2.0, 20).preact_grads[0] == 2.0 ** 19


def test_chain_dense_layers_agree_with_scalar_maths():
    for w, act, x in ((2.0, "identity", 1.0), (1.5, "tanh", 0.3), (1.0, "sigmoid", 0.0), (0.7, "relu", 1.0)):
        d = ex.chain(w, 6, x, act, engine="dense")
        s = ex.chain(w, 6, x, act, engine="scalar")
        assert d.engine == "dense" and d.max_abs_diff < 1e-12
        np.testing.assert_allclose(d.preact_grads, s.preact_grads, rtol=1e-12)
        np.testing.assert_allclose(d.weight_grads, s.weight_grads, rtol=1e-12)


def test_chain_2_5_over_20_layers_and_sigmoid_factor():
    r = ex.chain(2.5, 20)
    assert r.output == pytest.approx(2.5 ** 20, rel=1e-12)  # 9.095e7
    assert r.preact_grads[0] == pytest.approx(2.5 ** 19, rel=1e-12)
    s = ex.chain(1.0, 5, x=0.0, activation="sigmoid")
    assert s.factors[0] == pytest.approx(0.25)  # z = 0: sigmoid' = 1/4
    assert np.all(s.factors <= 0.25 + 1e-15)
    np.testing.assert_allclose(s.preact_grads[:-1] / s.preact_grads[1:], s.factors[:-1])
    w = ex.chain(3.0, 3, x=0.0, activation="sigmoid", bias=0.0)
    assert w.factors[0] == pytest.approx(0.75)  # w * 0.25 at z = 0


def test_chain_table_text_and_bad_input():
    t = ex.chain_table()
    text = t.table()
    assert "[16, 8, 4, 2, 1]" in text and "[0.0625, 0.125, 0.25, 0.5, 1]" in text
    header, rows = t.rows()
    assert len(rows) == 3 * 5 + 5 + 20
    with pytest.raises(ValueError, match="n_layers"):
        ex.chain(2.0, 0)
    with pytest.raises(ValueError, match="activation"):
        ex.chain(2.0, 3, activation="swish")


# ------------------------------------------------------------------ theory
def test_relu_chi1_is_half_sigma_w2_for_any_q():
    for q in (1e-3, 0.5, 1.0, 3.0, 50.0, 1e8):
        assert theory.chi1(2.0, "relu", q) == pytest.approx(1.0, abs=1e-12)
        assert theory.chi1(1.0, "relu", q) == pytest.approx(0.5, abs=1e-12)
    assert theory.mean_field(2.0, 0.0, "relu").regime == "critical"
    assert theory.mean_field(1.0, 0.0, "relu").regime == "vanishing"


def test_gaussian_expectation_against_closed_forms_and_monte_carlo():
    for q in (0.3, 1.0, 2.0, 7.0, 400.0):
        assert theory.gaussian_expectation(lambda z: z * z, q) == pytest.approx(q, rel=1e-10)
        assert theory.gaussian_expectation(lambda z: np.maximum(z, 0) ** 2, q) == pytest.approx(q / 2, rel=1e-10)
    # tanh'^2 at large q: -> (4/3) / sqrt(2 pi q) (the spike Gauss-Hermite alone misses)
    q = 1e4
    e = theory.gaussian_expectation(lambda z: (1 - np.tanh(z) ** 2) ** 2, q)
    assert e == pytest.approx((4 / 3) / math.sqrt(2 * math.pi * q), rel=1e-3)
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for q in (0.5, 1.5, 9.0):
        mc = float(np.mean((1 - np.tanh(math.sqrt(q) * z) ** 2) ** 2))
        assert theory.gaussian_expectation(lambda v: (1 - np.tanh(v) ** 2) ** 2, q) == pytest.approx(mc, rel=5e-3)


def test_tanh_fixed_point_is_a_fixed_point():
    mf = theory.mean_field(1.5, 0.05, "tanh")
    assert 0 < mf.q_star < 10
    assert theory.variance_map(mf.q_star, 1.5, 0.05, "tanh") == pytest.approx(mf.q_star, rel=1e-8)
    assert mf.chi_1 == pytest.approx(theory.chi1(1.5, "tanh", mf.q_star))
    # small sigma_w: q* -> 0 and chi_1 -> sigma_w^2 (tanh'(0) = 1)
    assert theory.mean_field(0.8, 0.0, "tanh").chi_1 == pytest.approx(0.8, rel=1e-3)
    with pytest.raises(ValueError, match="even"):
        theory.gaussian_expectation(np.cos, 1.0, n=7)


# ------------------------------------------------------------------ depth
@pytest.fixture(scope="module")
def relu30():
    return {init: ex.depth_profile(30, 512, "relu", init, batch=32, seed=1) for init in ("he", "xavier")}


def test_depth_he_keeps_ratio_within_2x(relu30):
    he = relu30["he"]
    assert 0.5 < he.ratio < 2.0
    assert he.mean_field.chi_1 == pytest.approx(1.0, abs=0.01)


def test_depth_xavier_shrinks_by_2_to_the_14_5(relu30):
    xa = relu30["xavier"]
    assert math.log2(xa.ratio) == pytest.approx(-14.5, abs=1.0)
    # the theory predicts the same (its square halves per layer)
    assert math.log2(xa.predicted_ratio) == pytest.approx(-14.5, abs=0.3)
    np.testing.assert_allclose(xa.chi[:-1], 0.5, atol=0.02)
    # while the weight-gradient norms stay nearly flat
    dw = xa.weight_grad_norms
    assert dw.max() / dw.min() < 2.0
    # and the forward activations shrink by about the same factor
    a = xa.activation_norms
    assert math.log2(a[-1] / a[0]) == pytest.approx(-14.5, abs=1.0)


def test_depth_profile_theory_tracks_measurement_and_sweep_table():
    sw = ex.depth_sweep(12, 128, ("xavier", "he", "normal(1.0)"), ("relu", "tanh"), batch=16, seed=0)
    assert len(sw.profiles) == 6
    for p in sw.profiles:
        assert abs(math.log(p.ratio / p.predicted_ratio)) < math.log(2.0), (p.activation, p.init)
    text = sw.table()
    assert "normal(1.0)" in text and "exploding" in text and "vanishing" in text
    d = sw.to_dict()
    assert d["experiment"] == "depth" and len(d["rows"]) == 6 * 12


def test_depth_profile_bad_input():
    with pytest.raises(ValueError, match="depth"):
        ex.depth_profile(0, 8)
    with pytest.raises(ValueError, match="init"):
        ex.depth_profile(3, 8, init="bogus")


# ------------------------------------------------------------------- bptt
@pytest.mark.parametrize("engine", ["numpy", "auto"])
def test_bptt_identity_radius_1_01_over_100_steps(engine):
    p = ex.bptt_profile("rnn", T=100, hidden=32, spectral_radius=1.01, nonlinearity="identity", engine=engine)
    assert len(p.norms) == 101
    assert p.growth == pytest.approx(2.7048, abs=5e-5)
    assert p.growth == pytest.approx(1.01 ** 100, rel=1e-10)
    q = ex.bptt_profile("rnn", T=100, spectral_radius=0.99, nonlinearity="identity", engine=engine)
    assert q.growth == pytest.approx(0.366032, abs=1e-6)
    np.testing.assert_allclose(p.norms / p.norms[-1], 1.01 ** (100 - np.arange(101)), rtol=1e-10)


def test_bptt_tanh_never_exceeds_rho_to_the_t():
    p = ex.bptt_profile("rnn", T=60, spectral_radius=0.9, nonlinearity="tanh", batch=4)
    ratios = p.norms / p.norms[-1]
    assert np.all(ratios <= 0.9 ** (60 - np.arange(61)) * (1 + 1e-9))


def test_bptt_sweep_table_and_bad_input():
    sw = ex.bptt_sweep(radii=(0.9, 1.1), lengths=(10, 20), hidden=8)
    assert [p.T for p in sw.profiles] == [10, 20, 10, 20]
    for p in sw.profiles:
        assert p.growth == pytest.approx(p.theory, rel=1e-9)
    assert "rho^T" in sw.table()
    with pytest.raises(ValueError, match="cell"):
        ex.bptt_profile("transformer")
    with pytest.raises(ValueError, match="spectral_radius"):
        ex.bptt_profile(spectral_radius=float("nan"))


# -------------------------------------------------------------- training
# ---------------------------------------------------------------- results
def test_results_write_csv_json_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    r = ex.bptt_profile(T=20)
    r.to_csv(tmp_path / "b.csv")
    r.to_json(tmp_path / "b.json")
    r.plot(tmp_path / "b.png")
    lines = (tmp_path / "b.csv").read_text().splitlines()
    assert lines[0].startswith("t,") and len(lines) == 22
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["metrics"]["growth"] == pytest.approx(r.growth)
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_report_without_matplotlib_says_how_to_get_plots(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rep = ex.write_report([ex.chain_table(), ex.bptt_sweep(radii=(1.01,), lengths=(10,))], tmp_path)
    assert not rep.plots
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bptt.csv", "bptt.json", "bptt.txt", "chain.csv", "chain.json", "chain.txt", "index.html",
                     "summary.json"]
    html = (tmp_path / "index.html").read_text()
    assert 'pip install &quot;gradcore[plot]&quot;' in html
    with pytest.raises(ImportError, match=r"gradcore\[plot\]"):
        ex.chain(2.0, 3).plot(tmp_path / "x.png")


def test_blas_threads_limits_and_restores():
    import scipy.linalg  # noqa: F401 - load SciPy's OpenBLAS (gradcore's GEMMs)

    from gradcore.experiments._threads import blas_threads, current_blas_threads

    before = current_blas_threads()
    if not before:
        pytest.skip("no OpenBLAS found through /proc/self/maps on this platform")
    with blas_threads(1):
        assert current_blas_threads() == [1] * len(before)
    assert current_blas_threads() == before


def test_numpy_fallback_rnn_matches_gradcore_rnn():
    from gradcore import nn
    from gradcore.experiments._seq import NumpyRNN

    ref = NumpyRNN(3, 5, "tanh", "float64", seed=0)
    cell = nn.RNN(3, 5, nonlinearity="tanh", dtype="float64", seed=1)
    for k, v in ref.parameters().items():
        v[...] = np.random.default_rng(len(k)).standard_normal(v.shape) * 0.5
        cell.parameters()[k][...] = v
    x = np.random.default_rng(2).standard_normal((7, 2, 3))
    d_out = np.random.default_rng(3).standard_normal((7, 2, 5))
    for m in (ref, cell):
        m.zero_grad()
    out_r, h_r = ref.forward(x)
    out_c, h_c = cell.forward(x)
    np.testing.assert_allclose(out_r, out_c, rtol=1e-12, atol=1e-14)
    dx_r, dx_c = ref.backward(d_out), cell.backward(d_out)
    np.testing.assert_allclose(dx_r, dx_c, rtol=1e-10, atol=1e-13)
    for k in ref.gradients():
        np.testing.assert_allclose(ref.gradients()[k], cell.gradients()[k], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ref.timestep_grad_norms, cell.timestep_grad_norms, rtol=1e-10)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_cells_in_bptt_and_clipping(cell):
    p = ex.bptt_profile(cell, T=30, hidden=8, spectral_radius=1.0, nonlinearity="tanh")
    assert p.engine == "cell" and len(p.norms) == 31 and np.all(np.isfinite(p.norms))
    r = ex.clipping_study("temporal_order", T=20, steps=5, clip_norms=(1.0,), hidden=8, cell=cell)
    assert np.all(np.isfinite(r.runs[0].losses))
