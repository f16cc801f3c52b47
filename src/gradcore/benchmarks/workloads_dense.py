"""Dense-network kernel workloads (float32, one thread).

- dense-B{B}-W{W}: one dense layer (W -> W, relu, bias) forward + backward
  (dz, dw +=, db +=, dx) at the per-layer sizes of the MLP workloads
  (D50-W64-B16, D20-W256-B64, D8-W2048-B256). Peers: the same three GEMMs
  alone through scipy.linalg.blas.sgemm ("gemm": the floor), the NumPy
  reference, torch autograd (F.linear + relu) and jax.jit(vjp).
- tanh-1M / sigmoid-1M: activation_forward over 2^20 float32 values vs
  np.tanh / scipy.special.expit, torch, jax.jit and a scalar libm loop
  ("libm-scalar", SCALAR_LIBM_C compiled on the fly when a C compiler is available).
- adam-16.8M: one Adam step with gradient clipping over 16.8M float32
  parameters (the clip workload's 66 arrays). gradcore: global norm of the
  flat gradient buffer + fused adam_step with the clip coefficient as
  grad_scale (two passes). torch: clip_grad_norm_ + Adam(foreach=True) over
  the 66 parameters. numpy: the reference norm + adam_step.

Contract: see _common.py (GROUP, workloads(), TARGETS); ratios from one
run: ``gradcore bench --group dense``.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import subprocess
import tempfile

import numpy as np

from ._common import optional

GROUP = "dense"
#: the cheapest workload: the test suite runs it once per implementation
SMOKE = "dense-B16-W64"

LAYERS = [(16, 64), (64, 256), (256, 2048)]  # (B, W)
ADAM_SHAPES = [(1024, 1024), (1024,), (256, 1024), (256,)] * 16 + [(4, 1024, 32), (32,)]
ACT_N = 1 << 20

TARGETS = [
    # the GEMM-bound layer: within 10% of the same GEMMs alone
    ("dense-B256-W2048", "gemm", 0.9),
    # the issue: Adam + clipping over 16.8M float32 parameters
    ("adam-16.8M", "torch", 2.0),
    # the issue: "libm tanhf in a scalar loop is ~10x too slow"
    ("tanh-1M", "libm-scalar", 10.0),
    # glibc's scalar expf is fast (~3.3 ns/value here), so the scalar sigmoid
    # loop is much closer than the tanhf one
    ("sigmoid-1M", "libm-scalar", 2.0),
]


# ------------------------------------------------------------------ dense layer

def _dense_cases(B, W, seed=0):
    import gradcore.reference as R
    from gradcore import _kernels as K
    from scipy.linalg.blas import sgemm

    rng = np.random.default_rng(seed)
    I = O = W
    x = rng.standard_normal((B, I), dtype=np.float32)
    w = (rng.standard_normal((O, I), dtype=np.float32) * np.float32(np.sqrt(2.0 / I)))
    b = np.zeros(O, np.float32)
    dy = rng.standard_normal((B, O), dtype=np.float32)
    y = np.empty((B, O), np.float32)
    dz = np.empty((B, O), np.float32)
    dx = np.empty((B, I), np.float32)
    dw = np.zeros((O, I), np.float32)
    db = np.zeros(O, np.float32)

    def run(mod):
        def f():
            mod.dense_forward(y, x, w, b, "relu", 0.0)
            mod.dense_backward(dx, dw, db, dy, x, w, y, "relu", 0.0, dz)
        return f

    # The same three GEMMs alone (column-major views of the row-major arrays,
    # outputs written in place): y^T = w x^T, dw^T += x^T dz, dx^T = w^T dz^T.
    yT, dwT, dxT = y.T, dw.T, dx.T

    def gemm():
        sgemm(1.0, w.T, x.T, trans_a=1, c=yT, beta=0.0, overwrite_c=1)
        sgemm(1.0, x.T, dy.T, trans_b=1, c=dwT, beta=1.0, overwrite_c=1)
        sgemm(1.0, w.T, dy.T, c=dxT, beta=0.0, overwrite_c=1)

    cases = {"gradcore": run(K), "gemm": gemm, "numpy": run(R)}

    torch = optional("torch")
    if torch is not None:
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        tw = torch.nn.Parameter(torch.from_numpy(w.copy()))
        tb = torch.nn.Parameter(torch.from_numpy(b.copy()))
        tdy = torch.from_numpy(dy)

        def torch_run():
            tx.grad = None
            out = torch.relu(torch.nn.functional.linear(tx, tw, tb))
            out.backward(tdy)

        cases["torch"] = torch_run

    jax = optional("jax")
    if jax is not None:
        import jax.numpy as jnp

        def fb(x_, w_, b_, dy_):
            out, vjp = jax.vjp(lambda a, c, d: jax.nn.relu(a @ c.T + d), x_, w_, b_)
            return out, vjp(dy_)

        jf = jax.jit(fb)
        jargs = [jnp.asarray(a) for a in (x, w, b, dy)]
        cases["jax"] = lambda: jax.block_until_ready(jf(*jargs))
    return cases


# ------------------------------------------------------------------ activations

_LIBM = {}

#: the scalar libm baselines: one tanhf / expf call per element (what a
#: straightforward C loop does), built on the fly; not part of the package
SCALAR_LIBM_C = r"""
#include <math.h>
#include <stdint.h>

void scalar_tanhf(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void scalar_sigmoidf(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
"""


def _scalar_libm():
    """ctypes handle to SCALAR_LIBM_C built with -O2 (no vectorization of
    libm calls is possible), or None without a C compiler."""
    if "lib" in _LIBM:
        return _LIBM["lib"]
    lib = None
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="gradcore_scalar_libm_"))
    src, out = tmp / "scalar_libm.c", tmp / "scalar_libm.so"
    src.write_text(SCALAR_LIBM_C)
    cc = os.environ.get("CC", "cc")
    try:
        subprocess.run([cc, "-O2", "-fno-math-errno", "-shared", "-fPIC", str(src), "-o", str(out), "-lm"],
                       check=True, capture_output=True)
        lib = ctypes.CDLL(str(out))  # stays mapped after the files are removed
        for fn in (lib.scalar_tanhf, lib.scalar_sigmoidf):
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            fn.restype = None
    except (OSError, subprocess.CalledProcessError):
        lib = None
    finally:
        for f in (src, out):
            f.unlink(missing_ok=True)
        tmp.rmdir()
    _LIBM["lib"] = lib
    return lib


def _act_cases(act):
    from scipy.special import expit

    from gradcore import _kernels as K

    rng = np.random.default_rng(1)
    x = (rng.standard_normal(ACT_N, dtype=np.float32) * 3).astype(np.float32)
    y = np.empty_like(x)
    cases = {"gradcore": lambda: K.activation_forward(y, x, act)}
    cases["numpy"] = (lambda: np.tanh(x, out=y)) if act == "tanh" else (lambda: expit(x, out=y))
    lib = _scalar_libm()
    if lib is not None:
        fn = lib.scalar_tanhf if act == "tanh" else lib.scalar_sigmoidf
        px, py = x.ctypes.data, y.ctypes.data
        cases["libm-scalar"] = lambda: fn(py, px, ACT_N)
    torch = optional("torch")
    if torch is not None:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tf = torch.tanh if act == "tanh" else torch.sigmoid
        cases["torch"] = lambda: tf(tx, out=ty)
    jax = optional("jax")
    if jax is not None:
        import jax.numpy as jnp

        jf = jax.jit(jnp.tanh if act == "tanh" else jax.nn.sigmoid)
        jx = jnp.asarray(x)
        cases["jax"] = lambda: jax.block_until_ready(jf(jx))
    return cases


# ------------------------------------------------------------------ Adam + clip

def _adam_cases(max_norm=1.0, lr=1e-3):
    import gradcore.reference as R
    from gradcore import _kernels as K

    rng = np.random.default_rng(2)
    sizes = [int(np.prod(s)) for s in ADAM_SHAPES]
    n = sum(sizes)
    param = rng.standard_normal(n, dtype=np.float32)
    grad = rng.standard_normal(n, dtype=np.float32)
    cases = {}

    def make(mod):
        p, m, v = param.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
        bl = mod.BufferList([grad])
        state = {"t": 0}

        def step():
            norm = bl.norm(2.0, False)[0]
            coef = min(1.0, max_norm / (norm + 1e-6))
            state["t"] += 1
            mod.adam_step(p, grad, m, v, state["t"], lr, 0.9, 0.999, 1e-8, 0.0, False, coef)

        return step

    cases["gradcore"] = make(K)
    cases["numpy"] = make(R)
    torch = optional("torch")
    if torch is not None:
        offs = np.cumsum([0] + sizes)
        tparams = []
        for k, s in enumerate(ADAM_SHAPES):
            tp = torch.nn.Parameter(torch.from_numpy(param[offs[k]:offs[k + 1]].reshape(s).copy()))
            tp.grad = torch.from_numpy(grad[offs[k]:offs[k + 1]].reshape(s).copy())
            tparams.append(tp)
        opt = torch.optim.Adam(tparams, lr=lr, foreach=True)
        pristine = [tp.grad.clone() for tp in tparams]

        def restore():  # clip_grad_norm_ scales the gradients in place
            with torch.no_grad():
                for tp, g in zip(tparams, pristine):
                    tp.grad.copy_(g)

        def torch_step():
            torch.nn.utils.clip_grad_norm_(tparams, max_norm, foreach=True)
            opt.step()

        cases["torch"] = (restore, torch_step)
    return cases


def workloads(only=None):
    """``only``: build just the workloads whose name contains one of these strings."""
    builders = {f"dense-B{B}-W{W}": (lambda B=B, W=W: _dense_cases(B, W)) for B, W in LAYERS}
    builders.update({"tanh-1M": lambda: _act_cases("tanh"), "sigmoid-1M": lambda: _act_cases("sigmoid"),
                     "adam-16.8M": _adam_cases})
    return {name: build() for name, build in builders.items() if not only or any(s in name for s in only)}
