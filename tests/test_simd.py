"""Every SIMD path (baseline, AVX2+FMA, AVX-512) gives bit-identical results,
and GRADCORE_SIMD=baseline forces the baseline path at import."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import gradcore
from gradcore import _kernels as K

pytestmark = pytest.mark.kernel

needs_avx2 = pytest.mark.skipif(not K.cpu_has_avx2(), reason="this CPU has no AVX2+FMA: only one path to run")

SIZES = [0, 1, 7, 15, 16, 17, 100, 4095, 4096, 4097, 20000]
ORDS = [2.0, 1.0, math.inf, 3.0, 0.5]


def make(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3)).astype(dtype) for n in SIZES]


@pytest.fixture
def restore_simd():
    level = K.simd_level()
    yield
    K.set_simd(level)


LEVELS = [0] + ([1] if K.cpu_has_avx2() else []) + ([2] if K.cpu_has_avx512() else [])


def run_paths(fn):
    """(fn() on the baseline path, [fn() on each vector path])."""
    out = []
    for level in LEVELS:
        K.set_simd(level)
        out.append(fn())
    return out[0], out[1:]


def test_set_simd_switches_and_refuses_bad_levels(restore_simd):
    K.set_simd(0)
    assert K.simd_name() == "baseline" and gradcore.info()["simd"] == "baseline"
    assert K.simd_level() == 0
    with pytest.raises(ValueError, match="SIMD level"):
        K.set_simd(3)
    with pytest.raises(ValueError, match="SIMD level"):
        K.set_simd(-1)
    if K.cpu_has_avx2():
        K.set_simd(1)
        assert K.simd_name() == "avx2+fma" and K.simd_level() == 1
    if K.cpu_has_avx512():
        K.set_simd(2)
        assert K.simd_name() == "avx512" and K.simd_level() == 2
    else:
        with pytest.raises(ValueError, match="SIMD level"):
            K.set_simd(2)
    assert K.cpu_has_avx2() or not K.cpu_has_avx512()


@needs_avx2
@pytest.mark.parametrize("ord", ORDS)
def test_norm_identical(restore_simd, dtype, ord):
    arrays = make(dtype)
    arrays[4][3] = np.nan
    for bufs in (arrays, arrays[5:], [np.full(50, 1e200)] if dtype == np.float64 else arrays[:3]):
        base, vec = run_paths(lambda: K.BufferList(bufs).norm(ord, True))
        lean0, lean_vec = run_paths(lambda: K.BufferList(bufs).norm(ord, False, False))
        assert repr(lean0[0]) == repr(base[0])
        for avx, lean1 in zip(vec, lean_vec):
            assert repr(base[0]) == repr(avx[0])
            assert base[1].tobytes() == avx[1].tobytes()
            assert base[2:] == avx[2:]
            assert repr(lean0) == repr(lean1)


@needs_avx2
def test_scale_and_clamp_identical(restore_simd, dtype):
    def scaled():
        a = make(dtype, seed=2)
        K.BufferList(a, writable=True).scale_(0.3)
        return b"".join(x.tobytes() for x in a)

    def clamped():
        a = make(dtype, seed=3)
        n = K.BufferList(a, writable=True).clamp_(0.7)
        return n, b"".join(x.tobytes() for x in a)

    s0, s_vec = run_paths(scaled)
    assert all(s1 == s0 for s1 in s_vec)
    c0, c_vec = run_paths(clamped)
    assert all(c1 == c0 for c1 in c_vec)


@needs_avx2
def test_api_identical(restore_simd):
    def run():
        a = make(np.float32, seed=4) + make(np.float64, seed=5)
        st = gradcore.grad_stats(a)
        n = gradcore.clip_grad_norm_(a, 1.0)
        return repr((st.norm, st.max_abs, n)), st.per_array.tobytes(), b"".join(x.tobytes() for x in a)

    r0, r_vec = run_paths(run)
    assert all(r1 == r0 for r1 in r_vec)


SNIPPET = r"""
import json, math, numpy as np, gradcore
rng = np.random.default_rng(7)
a = [rng.standard_normal(n).astype(dt) for n in (5, 4097, 333) for dt in (np.float32, np.float64)]
out = {"simd": gradcore.info()["simd"],
       "norms": [repr(gradcore.global_norm(a, o)) for o in (2.0, 1.0, math.inf, 3.0)]}
gradcore.clip_grad_norm_(a, 1.0)
out["clipped"] = [x.tobytes().hex() for x in a]
print(json.dumps(out))
"""


def test_env_forces_baseline_in_a_fresh_process():
    env = dict(os.environ, GRADCORE_SIMD="baseline")
    proc = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert child["simd"] == "baseline"
    # same numbers as this process (on whichever path it runs)
    ns = {}
    exec(SNIPPET.replace("print(json.dumps(out))", ""), ns)
    assert child["norms"] == ns["out"]["norms"]
    assert child["clipped"] == ns["out"]["clipped"]


def test_env_caps_the_level_at_avx2_in_a_fresh_process():
    env = dict(os.environ, GRADCORE_SIMD="avx2")
    code = "import gradcore._kernels as K; print(K.simd_level(), K.simd_name())"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    level, name = proc.stdout.split()
    assert (int(level), name) == ((1, "avx2+fma") if K.cpu_has_avx2() else (0, "baseline"))
