"""Recurrent kernels (csrc/rnn.c, lstm.c, gru.c) through the binding, against
the step-by-step NumPy reference and central finite differences."""

import numpy as np
import pytest

import gradcore.reference as R
from gradcore import _kernels as C
from rnn_helpers import (GATES, backward, forward, grads_case, make_case, numgrad, surrogate_loss,
                         window_starts)

pytestmark = pytest.mark.kernel

KINDS = ["rnn", "lstm", "gru"]
IMPLS = [pytest.param(C, id="c"), pytest.param(R, id="numpy")]
VARIANTS = {
    "bias-h0-every-step": dict(bias=True, h0=True, d_out=True, truncate=None),
    "nobias-noh0": dict(bias=False, h0=False, d_out=True, truncate=None),
    "last-step-only": dict(bias=True, h0=True, d_out=False, truncate=None),
    "truncate2": dict(bias=True, h0=True, d_out=True, truncate=2),
    "truncate3-last-step": dict(bias=False, h0=True, d_out=False, truncate=3),
}


def _outs(kind, f, b):
    keys = ["dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh", "norms"] + (["dc0", "cnorms"] if kind == "lstm" else [])
    fk = ["out"] + (["cs"] if kind == "lstm" else [])
    return {**{k: f[k] for k in fk}, **{k: b[k] for k in keys if b[k] is not None}}


# ------------------------------------------------------------ finite differences
@pytest.mark.parametrize("K", IMPLS)
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("kind", KINDS)
def test_backward_matches_finite_differences(K, kind, variant):
    v = VARIANTS[variant]
    T, B, I, H = 7, 2, 3, 4
    act = "tanh"
    c = make_case(kind, T, B, I, H, bias=v["bias"], h0=v["h0"], seed=3)
    g = grads_case(T, B, H, d_out=v["d_out"], kind=kind)
    k = v["truncate"]
    starts = window_starts(K, kind, c, act, k)
    f = forward(K, kind, c, act)
    b = backward(K, kind, c, f, g, act, truncate=k)

    def loss():
        return surrogate_loss(K, kind, c, g, act, k, starts)

    names = [("x", "dx"), ("w_ih", "dw_ih"), ("w_hh", "dw_hh")]
    if v["bias"]:
        names += [("b_ih", "db_ih"), ("b_hh", "db_hh")]
    if v["h0"]:
        names += [("h0", "dh0")] + ([("c0", "dc0")] if kind == "lstm" else [])
    for p, d in names:
        np.testing.assert_allclose(b[d], numgrad(loss, c[p]), rtol=1e-6, atol=1e-8, err_msg=f"{kind} {p}")
    if k:
        # truncation really cuts: the full-BPTT gradient differs
        f2 = forward(K, kind, c, act)
        full = backward(K, kind, c, f2, g, act, truncate=None)
        assert not np.allclose(full["dw_hh"], b["dw_hh"])


@pytest.mark.parametrize("act", ["identity", "relu", "tanh"])
def test_rnn_nonlinearities_finite_differences(act):
    T, B, I, H = 6, 2, 3, 5
    c = make_case("rnn", T, B, I, H, seed=5, scale=1.0)
    g = grads_case(T, B, H)
    f = forward(C, "rnn", c, act)
    if act == "relu":
        assert (f["out"] == 0).any() and (f["out"] > 0).any()
    b = backward(C, "rnn", c, f, g, act)

    def loss():
        return surrogate_loss(C, "rnn", c, g, act, None, {})

    for p, d in [("x", "dx"), ("w_ih", "dw_ih"), ("w_hh", "dw_hh"), ("b_hh", "db_hh"), ("h0", "dh0")]:
        np.testing.assert_allclose(b[d], numgrad(loss, c[p]), rtol=1e-6, atol=1e-8, err_msg=p)


# ------------------------------------------------------------ C == reference
SIZES = [
    pytest.param((6, 1, 3, 5), id="B1-small-path"),   # hand-vectorized recurrent product
    pytest.param((6, 1, 3, 40), id="B1-H40"),         # RNN small path, LSTM/GRU BLAS GEMV
    pytest.param((5, 1, 3, 32), id="B1-H32"),         # full-width small blocks, every cell
    pytest.param((4, 1, 3, 70), id="B1-gemv"),        # BLAS GEMV
    pytest.param((5, 3, 4, 6), id="gemm-small"),      # BLAS GEMM, tiny
    pytest.param((4, 2, 5, 70), id="gemm"),           # BLAS GEMM
    pytest.param((3, 70, 2, 8), id="large-B"),
    # above GC_REC_TILE_MNK multiply-adds, so gc_rec_gemm splits the product:
    # LSTM per-step product in column tiles with a ragged last tile and two K
    # chunks; weight gradients with rows outermost (K = T*B < M)
    pytest.param((5, 8, 7, 130), id="tiled-steps"),
    # long reductions (K = T*B >= M, K chunks outermost) and dx in row tiles
    pytest.param((40, 16, 9, 33), id="tiled-long-K"),
    # weight gradients in several chunks of steps, a ragged one at the end
    # (RNN 27 + 3 steps in float32, LSTM/GRU 6 steps per chunk)
    pytest.param((30, 40, 3, 120), id="grad-chunks"),
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("kind", KINDS)
def test_c_matches_reference(kind, variant, dtype, size):
    v = VARIANTS[variant]
    T, B, I, H = size
    c = make_case(kind, T, B, I, H, dtype=dtype, bias=v["bias"], h0=v["h0"], seed=7)
    g = grads_case(T, B, H, dtype=dtype, d_out=v["d_out"], kind=kind)
    res = []
    for K in (C, R):
        f = forward(K, kind, c, "tanh")
        b = backward(K, kind, c, f, g, "tanh", truncate=v["truncate"])
        assert f["first"] == -1 and b["first"] == -1
        res.append(_outs(kind, f, b))
    rtol, atol = (1e-12, 1e-12) if dtype == np.float64 else (2e-5, 2e-5)
    for key in res[0]:
        a, r = res[0][key], res[1][key]
        scale = max(1.0, float(np.max(np.abs(r))))
        np.testing.assert_allclose(a, r, rtol=rtol, atol=atol * scale, err_msg=key)


@pytest.mark.parametrize("act", ["identity", "relu"])
def test_rnn_other_nonlinearities_match_reference(act):
    c = make_case("rnn", 6, 3, 4, 5, seed=8)
    g = grads_case(6, 3, 5)
    res = []
    for K in (C, R):
        f = forward(K, "rnn", c, act)
        res.append(_outs("rnn", f, backward(K, "rnn", c, f, g, act, truncate=4)))
    for key in res[0]:
        np.testing.assert_allclose(res[0][key], res[1][key], rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_close_to_float64(kind):
    T, B, I, H = 20, 4, 5, 24
    c64 = make_case(kind, T, B, I, H, seed=9)
    c32 = {k: None if v is None else v.astype(np.float32) for k, v in c64.items()}
    g64 = grads_case(T, B, H, kind=kind)
    g32 = {k: None if v is None else v.astype(np.float32) for k, v in g64.items()}
    f64, f32 = forward(C, kind, c64), forward(C, kind, c32)
    b64, b32 = backward(C, kind, c64, f64, g64), backward(C, kind, c32, f32, g32)
    o64, o32 = _outs(kind, f64, b64), _outs(kind, f32, b32)
    for key in o64:
        scale = max(1.0, float(np.max(np.abs(o64[key]))))
        np.testing.assert_allclose(o32[key], o64[key], rtol=1e-4, atol=1e-4 * scale, err_msg=key)


def test_gradients_accumulate():
    c = make_case("lstm", 4, 2, 3, 5, seed=10)
    g = grads_case(4, 2, 5, kind="lstm")
    f = forward(C, "lstm", c)
    b1 = backward(C, "lstm", c, f, g)
    f = forward(C, "lstm", c)
    dw = np.full_like(c["w_hh"], 0.5)
    db = np.full_like(c["b_ih"], -1.0)
    C.lstm_backward(None, None, None, np.zeros_like(c["w_ih"]), dw, db, None, None, g["d_out"], g["d_hT"],
                    g["d_cT"], c["x"], c["h0"], c["c0"], f["out"], f["cs"], f["gates"], c["w_ih"],
                    c["w_hh"])
    np.testing.assert_allclose(dw, b1["dw_hh"] + 0.5, rtol=1e-12)
    np.testing.assert_allclose(db, b1["db_ih"] - 1.0, rtol=1e-12)


# ------------------------------------------------------------ step norms
def _torchless_rnn_step_norms(c, g):
    """||dL/dh_t|| for a tanh RNN, written out step by step."""
    x, w_ih, w_hh, b = c["x"], c["w_ih"], c["w_hh"], c["b_ih"] + c["b_hh"]
    T = x.shape[0]
    hs = []
    h = c["h0"]
    for t in range(T):
        h = np.tanh(x[t] @ w_ih.T + h @ w_hh.T + b)
        hs.append(h)
    norms = np.zeros(T)
    dh = g["d_hT"] + g["d_out"][T - 1]
    for t in range(T - 1, -1, -1):
        norms[t] = np.linalg.norm(dh)
        dz = dh * (1 - hs[t] ** 2)
        if t:
            dh = dz @ w_hh + g["d_out"][t - 1]
    return norms


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_step_norms_match_step_by_step(dtype):
    c = make_case("rnn", 30, 3, 4, 8, seed=11, scale=1.5)
    g = grads_case(30, 3, 8)
    expect = _torchless_rnn_step_norms(c, g)
    c = {k: None if v is None else v.astype(dtype) for k, v in c.items()}
    g = {k: None if v is None else v.astype(dtype) for k, v in g.items()}
    f = forward(C, "rnn", c)
    b = backward(C, "rnn", c, f, g)
    np.testing.assert_allclose(b["norms"], expect, rtol=1e-12 if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_step_norms_match_reference(kind):
    c = make_case(kind, 12, 3, 4, 6, seed=12)
    g = grads_case(12, 3, 6, kind=kind)
    n = []
    for K in (C, R):
        f = forward(K, kind, c)
        n.append(backward(K, kind, c, f, g, truncate=5)["norms"])
    np.testing.assert_allclose(n[0], n[1], rtol=1e-12)
    assert np.all(n[0] > 0)


# ------------------------------------------------------------ non-finite
@pytest.mark.parametrize("K", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_forward_reports_first_nonfinite_state(K, kind):
    c = make_case(kind, 8, 2, 3, 4, seed=13)
    c["x"][5, 1, 0] = np.nan
    f = forward(K, kind, c)
    assert f["first"] == 5
    assert np.isfinite(f["out"][:5]).all() and np.isnan(f["out"][5:]).any()
    f = forward(K, kind, c, stop=True)
    assert f["first"] == 5
    assert np.isfinite(f["out"][:5]).all()


@pytest.mark.parametrize("K", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_backward_reports_and_stops_at_first_nonfinite_gradient(K, kind):
    T, B, H = 9, 2, 4
    c = make_case(kind, T, B, 3, H, seed=14)
    g = grads_case(T, B, H, kind=kind)
    g["d_out"][6, 0, 2] = np.inf
    f = forward(K, kind, c)
    b = backward(K, kind, c, f, g)
    assert b["first"] == 6
    assert np.isfinite(b["norms"][7:]).all() and np.isinf(b["norms"][6])
    f = forward(K, kind, c)
    b = backward(K, kind, c, f, g, stop=True)
    assert b["first"] == 6
    assert np.isfinite(b["norms"][7:]).all() and not np.isfinite(b["norms"][6])
    assert np.isnan(b["norms"][:6]).all()
    if kind == "lstm":
        assert np.isfinite(b["cnorms"][7:]).all() and np.isnan(b["cnorms"][:6]).all()
    for key in ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"):
        assert not b[key].any(), f"{key} was written although the loop stopped"


def test_overflow_to_inf_is_reported():
    # identity RNN with w = 1e30: states overflow float32 after a few steps
    T, B, I, H = 6, 1, 1, 1
    x = np.ones((T, B, I), np.float32)
    w = np.array([[1e30]], np.float32)
    out = np.empty((T, B, H), np.float32)
    first = C.rnn_forward(out, x, None, np.ones((1, 1), np.float32), w, None, None, "identity")
    assert first == 2 and np.isinf(out[2, 0, 0])


# ------------------------------------------------------------ SIMD paths
@pytest.mark.skipif(not C.cpu_has_avx2(), reason="this CPU has no AVX2+FMA path to compare")
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", KINDS)
def test_simd_paths_identical(kind, dtype, size):
    T, B, I, H = size
    c = make_case(kind, T, B, I, H, dtype=dtype, seed=15)
    g = grads_case(T, B, H, dtype=dtype, kind=kind)
    res = []
    level = C.simd_level()
    try:
        for lv in [0, 1] + ([2] if C.cpu_has_avx512() else []):
            C.set_simd(lv)
            f = forward(C, kind, c)
            res.append(_outs(kind, f, backward(C, kind, c, f, g, truncate=3)))
    finally:
        C.set_simd(level)
    for other in res[1:]:
        for key in res[0]:
            np.testing.assert_array_equal(res[0][key], other[key], err_msg=key)


# ------------------------------------------------------------ element functions
@pytest.mark.parametrize("which", ["tanh", "sigmoid"])
def test_cell_activation_accuracy(which):
    x64 = np.concatenate([np.linspace(-30, 30, 200001), np.geomspace(1e-30, 1e-3, 2000),
                          -np.geomspace(1e-30, 1e-3, 2000), [0.0, -0.0, 88.0, -88.0, 89.0, -89.0, 1e4, -1e4]])
    x32 = x64.astype(np.float32)
    with np.errstate(over="ignore"):
        ref = np.tanh(x64) if which == "tanh" else 1.0 / (1.0 + np.exp(-x64))
        ref32 = np.tanh(x32.astype(np.float64)) if which == "tanh" else 1.0 / (1.0 + np.exp(-x32.astype(np.float64)))
    y32 = np.empty_like(x32)
    y64 = np.empty_like(x64)
    level = C.simd_level()
    for lv in [0] + ([1] if C.cpu_has_avx2() else []) + ([2] if C.cpu_has_avx512() else []):
        C.set_simd(lv)
        C.recurrent_activation(y32, x32, which)
        C.recurrent_activation(y64, x64, which)
        assert np.max(np.abs(y32.astype(np.float64) - ref32)) <= 1e-6
        assert np.max(np.abs(y64 - ref)) <= 1e-14
    C.set_simd(level)
    if which == "tanh":  # tiny arguments keep their relative accuracy (no 1 - e cancellation)
        small = np.geomspace(1e-30, 1e-3, 50).astype(np.float32)
        ys = np.empty_like(small)
        C.recurrent_activation(ys, small, which)
        np.testing.assert_allclose(ys, np.tanh(small.astype(np.float64)), rtol=3e-7)
    special = np.array([np.nan, np.inf, -np.inf], np.float32)
    ys = np.empty_like(special)
    C.recurrent_activation(ys, special, which)
    expect = [np.nan, 1.0, -1.0] if which == "tanh" else [np.nan, 1.0, 0.0]
    np.testing.assert_allclose(ys, np.array(expect, np.float32), rtol=0, atol=1e-37)


# ------------------------------------------------------------ bad input
def _good_rnn_args(dtype=np.float64):
    c = make_case("rnn", 4, 2, 3, 5, dtype=dtype, seed=16)
    out = np.zeros((4, 2, 5), dtype)
    return c, out


@pytest.mark.parametrize("K", IMPLS)
def test_bad_forward_arguments_raise_and_change_nothing(K):
    c, out = _good_rnn_args()
    cases = [
        (TypeError, dict(x=c["x"].astype(np.float32))),
        (ValueError, dict(x=c["x"][0])),
        (ValueError, dict(x=np.zeros((0, 2, 3)))),
        (ValueError, dict(w_ih=np.zeros((5, 4)))),
        (ValueError, dict(h0=np.zeros((3, 5)))),
        (TypeError, dict(h0=np.zeros((2, 5), np.float32))),
        (ValueError, dict(out=np.zeros((4, 2, 6)))),
        (ValueError, dict(out=np.zeros((4, 2, 10))[:, :, ::2])),
        (ValueError, dict(w_hh=np.zeros((5, 4)))),
        (ValueError, dict(act="sigmoid")),
    ]
    ro = out.copy()
    ro.flags.writeable = False
    cases.append((ValueError, dict(out=ro)))
    buf = np.zeros(64)
    buf[16:40] = c["x"].reshape(-1)
    cases.append((ValueError, dict(out=buf[:40].reshape(4, 2, 5), x=buf[16:40].reshape(4, 2, 3))))
    for exc, over in cases:
        args = dict(out=out, x=c["x"], h0=c["h0"], w_ih=c["w_ih"], w_hh=c["w_hh"], b_ih=c["b_ih"],
                    b_hh=c["b_hh"], act="tanh")
        args.update(over)
        snap = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
        with pytest.raises(exc):
            K.rnn_forward(**args)
        for k, v in snap.items():
            np.testing.assert_array_equal(args[k], v, err_msg=f"{k} changed ({over.keys()})")


@pytest.mark.parametrize("K", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_backward_arguments_raise_and_change_nothing(K, kind):
    T, B, I, H = 4, 2, 3, 5
    c = make_case(kind, T, B, I, H, seed=17)
    g = grads_case(T, B, H, kind=kind)
    f = forward(K, kind, c)
    gates_before = f.get("gates", np.zeros(1)).copy()
    for exc, mutate in [
        (ValueError, lambda g: g.update(d_out=np.zeros((T, B, H + 1)))),
        (ValueError, lambda g: g.update(d_hT=np.zeros((B + 1, H)))),
        (TypeError, lambda g: g.update(d_out=g["d_out"].astype(np.float32))),
    ]:
        gg = dict(g)
        mutate(gg)
        with pytest.raises(exc):
            backward(K, kind, c, f, gg)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="truncate"):
            backward(K, kind, c, f, g, truncate=bad)
    with pytest.raises(TypeError, match="truncate"):
        backward(K, kind, c, f, g, truncate=1.5)
    if "gates" in f:
        np.testing.assert_array_equal(f["gates"], gates_before)
    # the untouched cache still gives the right answer
    b = backward(K, kind, c, f, g)
    assert np.isfinite(b["dw_hh"]).all() and b["dw_hh"].any()


@pytest.mark.parametrize("K", IMPLS)
def test_norms_buffer_must_be_float64(K):
    c = make_case("gru", 3, 2, 3, 4, seed=18)
    f = forward(K, "gru", c)
    with pytest.raises(TypeError, match="step_norms"):
        K.gru_backward(None, None, np.zeros_like(c["w_ih"]), np.zeros_like(c["w_hh"]), None, None,
                       np.zeros(3, np.float32), None, np.ones((2, 4)), c["x"], c["h0"], f["out"], f["gates"],
                       c["w_ih"], c["w_hh"])


def test_gate_counts():
    assert GATES == {"rnn": 1, "lstm": 4, "gru": 3}
    with pytest.raises(ValueError, match="w_hh"):
        forward(C, "lstm", make_case("rnn", 3, 2, 3, 4))


@pytest.mark.parametrize("which", ["tanh", "sigmoid"])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-14)], ids=["f32", "f64"])
def test_cell_activation_c_matches_reference(which, dtype, tol):
    x = np.linspace(-20, 20, 4001).astype(dtype)
    yc, yr = np.empty_like(x), np.empty_like(x)
    C.recurrent_activation(yc, x, which)
    R.recurrent_activation(yr, x, which)
    assert np.max(np.abs(yc.astype(np.float64) - yr.astype(np.float64))) <= tol
    for K in (C, R):
        with pytest.raises(ValueError, match="which"):
            K.recurrent_activation(yc, x, "relu")
        with pytest.raises(ValueError, match="y"):
            K.recurrent_activation(yc[:5], x, which)


# ------------------------------------------------------------ overlaps
@pytest.mark.parametrize("K", IMPLS)
def test_outputs_overlapping_other_arguments_are_refused(K):
    c = make_case("lstm", 6, 2, 3, 4, seed=30)
    T, B, H = 6, 2, 4
    big = np.zeros((3, T, B, H))
    gates = np.zeros((T, B, 4 * H))
    before = c["w_ih"].copy()
    # out and cs share memory (partial overlap through a shifted view)
    flat = np.zeros(2 * T * B * H + 4)
    out = flat[: T * B * H].reshape(T, B, H)
    cs = flat[4: 4 + T * B * H].reshape(T, B, H)
    with pytest.raises(ValueError, match="cs: output overlaps argument out"):
        K.lstm_forward(out, cs, gates, c["x"], c["h0"], c["c0"], c["w_ih"], c["w_hh"], c["b_ih"],
                       c["b_hh"])
    # an input inside an output
    with pytest.raises(ValueError, match="overlap"):
        K.lstm_forward(big[0], big[1], gates, c["x"], big[1][0], None, c["w_ih"], c["w_hh"], None, None)
    np.testing.assert_array_equal(c["w_ih"], before)
    assert not flat.any() and not big.any() and not gates.any()
    # disjoint views of one buffer are fine
    assert K.lstm_forward(big[0], big[1], gates, c["x"], big[2][0], None, c["w_ih"], c["w_hh"],
                          None, None) == -1
