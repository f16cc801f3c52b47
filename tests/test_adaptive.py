"""Adaptive clipping: the unit-norm kernel against the NumPy reference (both
dtypes, both SIMD paths bit for bit), unit-wise AGC against a NumPy oracle
of optax's ``adaptive_grad_clip`` on the transposed (in, out) arrays (and
optax itself when installed), AutoClip's percentile rule, and both as
options of ``Optimizer.step`` / ``train``."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcore
from gradcore import _kernels as K
from gradcore import reference as R
from gradcore.adaptive import unit_counts

pytestmark = pytest.mark.kernel

SHAPES = [(3, 4), (1, 7), (7, 1), (5,), (), (2, 3, 4), (33, 17), (16, 16), (0, 3), (4, 0)]


def rand(shape, dtype, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return np.asarray(rng.standard_normal(shape) * scale).astype(dtype)


# ---- kernel ------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unit_norms_match_reference(shape, dtype):
    a = rand(shape, dtype, 1, 3.0)
    units = [max(1, shape[0]) if len(shape) >= 2 and shape[0] > 0 else 1]
    if len(shape) >= 2 and shape[0] == 0:
        units = [1]
    c = K.unit_norms([a], units)[0]
    r = R.unit_norms([a], units)[0]
    assert c.dtype == np.float64 and c.shape == (units[0],)
    np.testing.assert_allclose(c, r, rtol=1e-13 if dtype == np.float64 else 1e-12, atol=0)


def test_unit_norms_many_arrays_mixed_dtypes_one_call():
    arrays = [rand((5, 9), np.float32, 2), rand((4, 3), np.float64, 3), rand((6,), np.float32, 4),
              rand((2, 2, 3), np.float64, 5)]
    c = K.unit_norms(arrays)
    r = R.unit_norms(arrays)
    assert [x.shape for x in c] == [(5,), (4,), (1,), (2,)]
    for x, y in zip(c, r):
        np.testing.assert_allclose(x, y, rtol=1e-13)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(0, 70), seed=st.integers(0, 10**6),
       f64=st.booleans(), scale=st.floats(-20, 20))
def test_unit_norms_property(rows, cols, seed, f64, scale):
    dt = np.float64 if f64 else np.float32
    a = rand((rows, cols), dt, seed, 10.0 ** scale)
    c = K.unit_norms([a])[0]
    exact = np.sqrt((a.astype(np.float64) ** 2).sum(axis=1))
    np.testing.assert_allclose(c, exact, rtol=1e-13)


def test_unit_norms_both_simd_paths_bit_identical():
    if not K.cpu_has_avx2():
        pytest.skip("this CPU has no AVX2+FMA: only one path to run")
    level = K.simd_level()
    arrays = [rand((17, 1001), np.float32, 7, 10.0), rand((9, 4097), np.float64, 8, 1e-3),
              rand((3, 15), np.float32, 9), rand((2, 16), np.float64, 10)]
    try:
        out = []
        for lv in [0, 1] + ([2] if K.cpu_has_avx512() else []):
            K.set_simd(lv)
            out.append(K.unit_norms(arrays))
    finally:
        K.set_simd(level)
    for other in out[1:]:
        for a, b in zip(out[0], other):
            assert a.tobytes() == b.tobytes()


def test_unit_norms_float64_overflow_underflow_safe():
    big = np.array([[1e200, 1e200, -1e200], [1e-200, -1e-200, 0.0], [0.0, 0.0, 0.0]])
    n = K.unit_norms([big])[0]
    assert n[0] == pytest.approx(math.sqrt(3) * 1e200, rel=1e-14)
    assert n[1] == pytest.approx(math.sqrt(2) * 1e-200, rel=1e-14)
    assert n[2] == 0.0
    f = np.array([[3e38, 3e38]], np.float32)  # float32 squares accumulate in float64
    assert K.unit_norms([f])[0][0] == pytest.approx(math.sqrt(2) * float(np.float32(3e38)), rel=1e-7)


def test_unit_norms_nonfinite(dtype):
    a = np.array([[1.0, np.nan, np.inf], [np.inf, 1.0, 2.0], [3.0, 4.0, 0.0]], dtype)
    for mod in (K, R):
        n = mod.unit_norms([a])[0]
        assert math.isnan(n[0]) and n[1] == math.inf and n[2] == 5.0


@pytest.mark.parametrize("mod", [K, R], ids=["c", "numpy"])
def test_unit_norms_bad_input(mod):
    with pytest.raises(TypeError, match=r"arrays\[1\].*float32 or float64"):
        mod.unit_norms([np.ones(3), np.ones(3, np.int64)])
    with pytest.raises(TypeError, match=r"arrays\[0\]"):
        mod.unit_norms([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"units\[0\].*dividing"):
        mod.unit_norms([np.ones((3, 4))], [5])
    with pytest.raises(ValueError, match=r"units\[0\]"):
        mod.unit_norms([np.ones((3, 4))], [0])
    with pytest.raises(ValueError, match="units: expected 1 entries"):
        mod.unit_norms([np.ones((3, 4))], [1, 2])
    # non-contiguous input is read through a copy
    a = np.arange(24.0).reshape(4, 6)[:, ::2]
    np.testing.assert_allclose(mod.unit_norms([a])[0], np.linalg.norm(a, axis=1))


# ---- AGC vs optax's maths ------------------------------------------------------


def optax_unitwise_norm(x):
    """optax.transforms._clipping.unitwise_norm with axis=None, in NumPy."""
    if np.squeeze(x).ndim <= 1:
        sq = np.sum(x * x, keepdims=True)
    elif x.ndim in (2, 3):
        sq = np.sum(x * x, axis=0, keepdims=True)
    elif x.ndim == 4:
        sq = np.sum(x * x, axis=(0, 1, 2), keepdims=True)
    else:
        raise ValueError(x.shape)
    return np.broadcast_to(np.sqrt(sq), x.shape)


def optax_agc(grads, params, clipping, eps=1e-3):
    """optax.adaptive_grad_clip(clipping, eps).update(grads, state, params), in NumPy."""
    out = []
    for g, p in zip(grads, params):
        g_norm, p_norm = optax_unitwise_norm(g), optax_unitwise_norm(p)
        max_norm = clipping * np.maximum(p_norm, eps)
        clipped = g * (max_norm / np.maximum(g_norm, 1e-6))
        out.append(np.where(g_norm < max_norm, g, clipped))
    return out


def to_optax(a):
    """gradcore (out, in) -> optax (in, out); vectors unchanged."""
    return a.T.copy() if a.ndim == 2 else a.copy()


AGC_SHAPES = [(8, 5), (1, 6), (6, 1), (6,), (1,), (32, 32), (3, 2)]


@pytest.mark.parametrize("clipping", [0.01, 0.1, 1.0])
def test_adaptive_clip_matches_optax_oracle(clipping, dtype, backend):
    rng = np.random.default_rng(11)
    params = [(rng.standard_normal(s) * rng.uniform(0.01, 2)).astype(dtype) for s in AGC_SHAPES]
    params[3][...] = 0.0  # zero-initialised bias: eps decides its threshold
    grads = [(rng.standard_normal(s) * 10.0 ** rng.uniform(-4, 0)).astype(dtype) for s in AGC_SHAPES]
    want = optax_agc([to_optax(g).astype(np.float64) for g in grads],
                     [to_optax(p).astype(np.float64) for p in params], clipping)
    before = [g.copy() for g in grads]
    n = gradcore.adaptive_clip_(params, grads, clipping=clipping)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    changed = 0
    for g, b, w in zip(grads, before, want):
        np.testing.assert_allclose(to_optax(g), w, rtol=rtol, atol=0)
        changed += int(np.any(g != b))
    assert changed > 0 and n > 0  # the setting does clip something


def test_adaptive_clip_against_optax_when_installed():
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    rng = np.random.default_rng(3)
    params = [rng.standard_normal(s) for s in AGC_SHAPES]
    grads = [rng.standard_normal(s) * 0.05 for s in AGC_SHAPES]
    tx = optax.adaptive_grad_clip(0.02)
    jp = [jnp.asarray(to_optax(p), jnp.float32) for p in params]
    jg = [jnp.asarray(to_optax(g), jnp.float32) for g in grads]
    upd, _ = tx.update(jg, tx.init(jp), jp)
    g32 = [g.astype(np.float32) for g in grads]
    gradcore.adaptive_clip_([p.astype(np.float32) for p in params], g32, clipping=0.02)
    for mine, theirs in zip(g32, upd):
        np.testing.assert_allclose(to_optax(mine), np.asarray(theirs), rtol=2e-6, atol=1e-9)


def test_unit_counts_follow_optax_squeeze_rule():
    assert unit_counts([(4, 3), (1, 5), (5, 1), (7,), (), (1, 1), (2, 3, 4)]) == [4, 1, 1, 1, 1, 1, 2]


def test_adaptive_clip_dict_and_bad_input(dtype):
    p = {"w": np.ones((2, 3), dtype), "b": np.zeros(2, dtype)}
    g = {"w": np.full((2, 3), 5.0, dtype), "b": np.full(2, 1e-9, dtype)}
    gradcore.adaptive_clip_(p, g, clipping=0.1)
    np.testing.assert_allclose(np.linalg.norm(g["w"], axis=1), 0.1 * math.sqrt(3), rtol=1e-6)
    assert g["b"][0] == dtype(1e-9)  # below 0.1 * eps: untouched
    snap = {k: v.copy() for k, v in g.items()}
    with pytest.raises(ValueError, match="clipping"):
        gradcore.adaptive_clip_(p, g, clipping=0.0)
    with pytest.raises(ValueError, match="eps"):
        gradcore.adaptive_clip_(p, g, eps=-1.0)
    with pytest.raises(ValueError, match=r"grads\['w'\]: shape"):
        gradcore.adaptive_clip_(p, {"w": np.ones((3, 2), dtype), "b": g["b"]})
    with pytest.raises(ValueError, match=r"grads\['w'\].*read-only"):
        ro = g["w"].copy()
        ro.flags.writeable = False
        gradcore.adaptive_clip_(p, {"w": ro, "b": g["b"]})
    with pytest.raises(ValueError, match="keys"):
        gradcore.adaptive_clip_(p, {"x": g["w"], "b": g["b"]})
    with pytest.raises(TypeError, match="dtype"):
        gradcore.adaptive_clip_({"w": p["w"].astype(np.float16)}, {"w": g["w"]})
    for k in g:
        assert np.array_equal(g[k], snap[k])


def test_adaptive_clip_nan_unit_stays_nan():
    p = np.ones((2, 2))
    g = np.array([[np.nan, 1.0], [1e-4, 0.0]])
    gradcore.adaptive_clip_(p, g, clipping=0.01)
    assert math.isnan(g[0, 0]) and g[1, 0] == 1e-4


# ---- AutoClip --------------------------------------------------------------------


def test_autoclip_percentile_of_history():
    ac = gradcore.AutoClip(percentile=10)
    norms = [5.0, 1.0, 9.0, 3.0, 7.0]
    thr = [ac.observe(n) for n in norms]
    for i, t in enumerate(thr):
        assert t == pytest.approx(np.percentile(norms[:i + 1], 10))
    assert ac.observe(float("nan")) == thr[-1]  # non-finite norms are not recorded
    ac2 = gradcore.AutoClip(percentile=50, history=2)
    assert [ac2.observe(n) for n in (10.0, 2.0, 4.0)] == [10.0, 6.0, 3.0]


def test_autoclip_bad_arguments():
    for bad in (0, -1, 101, float("nan")):
        with pytest.raises(ValueError, match="percentile"):
            gradcore.AutoClip(percentile=bad)
    with pytest.raises(TypeError, match="percentile"):
        gradcore.AutoClip(percentile="ten")
    with pytest.raises(ValueError, match="history"):
        gradcore.AutoClip(history=0)


def test_autoclip_state_roundtrip():
    ac = gradcore.AutoClip(25, history=4)
    for n in (1.0, 2.0, 3.0):
        ac.observe(n)
    ac2 = gradcore.AutoClip()
    ac2.load_state_dict(ac.state_dict())
    assert ac2.percentile == 25 and ac2.history == 4 and ac2.threshold() == ac.threshold()


def _mlp(seed=0):
    return gradcore.nn.MLP([4, 8, 2], dtype="float64", seed=seed)


def test_optimizer_step_with_autoclip_uses_percentile():
    m = _mlp()
    opt = gradcore.optim.SGD(m, lr=0.1)
    ac = gradcore.AutoClip(percentile=50)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 2))
    seen = []
    for scale in (1.0, 10.0, 100.0):
        m.zero_grad()
        pred = m.forward(x * scale)
        _, d = gradcore.losses.mse(pred, y)
        m.backward(d)
        w0 = m.arena.data.copy()
        g = m.arena.grad.copy()
        norm = opt.step(clip_norm=ac)
        seen.append(norm)
        thr = float(np.percentile(seen, 50))
        assert opt.last_clip_norm == pytest.approx(thr)
        coef = min(1.0, thr / (norm + 1e-6))
        np.testing.assert_allclose(m.arena.data, w0 - 0.1 * coef * g, rtol=1e-12, atol=1e-15)


def test_optimizer_step_with_agc_equals_manual_clip():
    m1, m2 = _mlp(1), _mlp(1)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 4)) * 50, rng.standard_normal((16, 2))
    for m in (m1, m2):
        m.zero_grad()
        _, d = gradcore.losses.mse(m.forward(x), y)
        m.backward(d)
    o1, o2 = gradcore.optim.SGD(m1, lr=0.1), gradcore.optim.SGD(m2, lr=0.1)
    o1.step(agc=0.01)
    assert gradcore.adaptive_clip_(m2.parameters(), m2.gradients(), 0.01) > 0
    o2.step()
    np.testing.assert_array_equal(m1.arena.data, m2.arena.data)


def test_train_accepts_autoclip_and_agc():
    rng = np.random.default_rng(4)
    batches = [(rng.standard_normal((8, 4)) * 30, rng.standard_normal((8, 2))) for _ in range(6)]
    ac = gradcore.AutoClip(10)
    r = gradcore.train(_mlp(2), batches, optimizer="sgd", lr=0.01, clip_norm=ac, progress=False)
    assert r.steps == 6 and len(ac.norms) == 6
    np.testing.assert_allclose(r.clip_coefs, np.minimum(1, [np.percentile(ac.norms[:i + 1], 10) /
                                                           (n + 1e-6) for i, n in enumerate(r.grad_norms)]))
    r2 = gradcore.train(_mlp(2), batches, optimizer="sgd", lr=0.01, agc=0.01, progress=False)
    assert r2.steps == 6 and np.all(np.isfinite(r2.losses))
    with pytest.raises(ValueError, match="agc"):
        gradcore.train(_mlp(2), batches, agc=-1.0, progress=False)


def test_doctest_examples_run():
    import doctest

    import gradcore.adaptive as A

    assert doctest.testmod(A).failed == 0


def test_clipping_study_adaptive_arms():
    from gradcore.experiments.clipping import ADAPTIVE_ARMS, DEFAULT_ARMS, agc_arm, autoclip_arm, clipping_study

    assert [a.name for a in ADAPTIVE_ARMS] == ["autoclip p10", "agc 0.01"]
    r = clipping_study(T=10, steps=30, hidden=8, seeds=1, eval_size=32, arms=DEFAULT_ARMS + ADAPTIVE_ARMS)
    assert r.labels == ["no clipping", "clip norm 1", "autoclip p10", "agc 0.01"]
    assert len(r.claims) == 4
    for label in ("autoclip p10", "agc 0.01"):
        assert not r[label].diverged  # both keep the net finite where no clipping explodes
    # the transforms: AutoClip clips at its percentile, AGC unit-wise, each returning the pre-clip norm
    m = gradcore.nn.MLP([3, 4, 2], dtype="float64", seed=0)
    m.arena.grad[...] = np.linspace(1, 2, m.arena.size)
    pre = float(np.linalg.norm(m.arena.grad))
    t = autoclip_arm(50).clipper(m)
    assert t(m.arena.grad) == pytest.approx(pre)
    g0 = m.arena.grad.copy()
    t2 = agc_arm(0.01).clipper(m)
    assert t2(m.arena.grad) == pytest.approx(float(np.linalg.norm(g0)))
    want = {k: g0[a:b].reshape(m.gradients()[k].shape).copy() for k, (a, b) in m.arena.offsets.items()}
    gradcore.adaptive_clip_(m.parameters(), want, 0.01)
    for k, v in m.gradients().items():
        np.testing.assert_array_equal(v, want[k])
    with pytest.raises(ValueError, match="percentile"):
        autoclip_arm(0)
