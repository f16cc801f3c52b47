"""Bengio, Simard & Frasconi (1994): a recurrent weight raised to the power T.

Through T steps of h_t = w h_{t-1} + x_t the gradient dL/dh_0 is w^T dL/dh_T:
1.01^100 = 2.7048 (explodes), 0.99^100 = 0.3660 (vanishes). With H hidden
units and W_hh = rho Q (Q orthogonal) every direction scales by rho^T; a tanh
only shrinks it (tanh' <= 1). The paper's point: a tanh unit that stores a bit
robustly (w > 1, two attracting states +-h*, h* = tanh(w h*)) has a
contracting derivative |w (1 - h*^2)| < 1 at its attractor, so the gradient
through the stored bit vanishes exponentially although w > 1.

Measured through ``gradcore.nn.RNN`` (float64, BPTT kernel, ``dh0`` and
``timestep_grad_norms``), per seed (random inputs, loss direction and Q).
"""

from __future__ import annotations

import math

import numpy as np

from ..claims import claim

NAME = "bengio1994"
TITLE = "gradients through a recurrent weight: w^T and rho^T"
CITATION = ("Bengio, Simard & Frasconi (1994), Learning long-term dependencies with gradient descent is "
            "difficult, IEEE Trans. Neural Networks 5(2)")
SETUP = ("A scalar linear RNN with w = 1.01 and 0.99 over T = 100 steps, a 32-unit linear RNN with "
         "W_hh = rho Q over the same T, its tanh version, and a latching tanh unit (w = 1.5) whose "
         "gradient through the stored state is measured by BPTT.")

BUDGETS = {
    "quick": dict(seeds=5, T=100, w_grow=1.01, w_decay=0.99, hidden=32, radii=(0.9, 1.0, 1.1), w_latch=1.5,
                  batch=4),
    "full": dict(seeds=10, T=100, w_grow=1.01, w_decay=0.99, hidden=128, radii=(0.8, 0.9, 0.99, 1.0, 1.01, 1.1, 1.2),
                 w_latch=1.5, batch=16),
    "tiny": dict(seeds=2, T=100, w_grow=1.01, w_decay=0.99, hidden=8, radii=(0.9, 1.1), w_latch=1.5, batch=2),
}
SECONDS = {"quick": 5, "full": 20, "tiny": 2}


def units(params, seeds):
    return [dict(params, seed=s) for s in seeds]


def _scalar_growth(w, T, seed, nonlinearity="identity", h0=None):
    """dL/dh_0 / dL/dh_T of a 1-unit RNN with weight w (from the BPTT kernel)."""
    from ...nn import RNN

    rng = np.random.default_rng(seed)
    rnn = RNN(1, 1, nonlinearity=nonlinearity, bias=False, dtype="float64", seed=seed)
    rnn.p["weight_hh"][...] = w
    rnn.p["weight_ih"][...] = 1.0
    x = (0.01 if nonlinearity == "tanh" else 1.0) * rng.standard_normal((T, 1, 1))
    h0a = None if h0 is None else np.full((1, 1), h0)
    out, _ = rnn.forward(x, h0=h0a)
    g = float(rng.uniform(0.5, 2.0))
    rnn.backward(None, d_hT=np.full((1, 1), g))
    return float(rnn.dh0[0, 0]) / g, out[:, 0, 0].copy()


def _latch_point(w):
    """The positive fixed point h* = tanh(w h*) (w > 1), by Newton's method."""
    h = 1.0
    for _ in range(100):
        f = h - math.tanh(w * h)
        df = 1.0 - w * (1.0 - math.tanh(w * h) ** 2)
        h -= f / df
    return h


def run_unit(seed, T, w_grow, w_decay, hidden, radii, w_latch, batch):
    from ..bptt import bptt_profile

    grow, _ = _scalar_growth(w_grow, T, seed)
    decay, _ = _scalar_growth(w_decay, T, seed + 1000)
    hs = _latch_point(w_latch)
    latch, states = _scalar_growth(w_latch, T, seed + 2000, "tanh", h0=hs)
    lin, tanh = {}, {}
    for r in radii:
        lin[r] = bptt_profile("rnn", T, hidden, r, "identity", batch=batch, seed=seed).growth
        tanh[r] = bptt_profile("rnn", T, hidden, r, "tanh", batch=batch, seed=seed).growth
    return dict(seed=seed, grow=grow, decay=decay, latch=latch, latch_min_state=float(np.min(states)),
                linear={str(r): v for r, v in lin.items()}, tanh={str(r): v for r, v in tanh.items()})


def analyze(params, seeds, results):
    T = params["T"]
    wg, wd, wl = params["w_grow"], params["w_decay"], params["w_latch"]
    radii = list(params["radii"])
    grow = np.array([r["grow"] for r in results])
    decay = np.array([r["decay"] for r in results])
    latch = np.array([r["latch"] for r in results])
    lin = np.array([[r["linear"][str(x)] for x in radii] for r in results])
    th = np.array([[r["tanh"][str(x)] for x in radii] for r in results])
    theory_lin = np.array([x ** T for x in radii])
    hs = _latch_point(wl)
    factor = wl * (1.0 - hs * hs)

    def rel(a, b):
        return float(np.max(np.abs(a - b) / np.abs(b)))

    # the paper's numbers are 1.01^100 and 0.99^100: a run with another w or
    # T measures something else and the claim fails
    claims = [
        claim(f"the gradient through T = {T} steps of w = {wg:g} grows as w^T (explodes)",
              "1.01^100 = 2.7048",
              f"{np.mean(grow):.5g} (max rel. error {rel(grow, 1.01 ** 100):.1e} over {len(seeds)} seeds)",
              rel(grow, 1.01 ** 100) < 1e-9),
        claim(f"the gradient through T = {T} steps of w = {wd:g} shrinks as w^T (vanishes)",
              "0.99^100 = 0.3660",
              f"{np.mean(decay):.5g} (max rel. error {rel(decay, 0.99 ** 100):.1e})",
              rel(decay, 0.99 ** 100) < 1e-9),
        claim(f"{params['hidden']} linear units, W_hh = rho Q: ||dL/dh_0|| / ||dL/dh_{T}|| = rho^{T}",
              ", ".join(f"{x:g}: {x ** T:.4g}" for x in radii),
              ", ".join(f"{x:g}: {v:.4g}" for x, v in zip(radii, lin.mean(axis=0)))
              + f" (max rel. error {rel(lin, theory_lin[None, :]):.1e})",
              rel(lin, theory_lin[None, :]) < 1e-6),
        claim("with tanh the same ratio stays at or below rho^T (tanh' <= 1)",
              "<= rho^T",
              ", ".join(f"{x:g}: {v:.4g}" for x, v in zip(radii, th.mean(axis=0))),
              bool(np.all(th <= theory_lin[None, :] * (1 + 1e-9)))),
        claim(f"a tanh unit latching a bit (w = {wl:g} > 1) contracts the gradient by w(1 - h*^2) per step",
              f"{factor:.4f} per step (h* = {hs:.4f}): {factor ** T:.3e} over {T} steps",
              f"{np.exp(np.mean(np.log(np.abs(latch)) / T)):.4f} per step: {np.mean(np.abs(latch)):.3e}",
              bool(np.all(np.abs(np.log(np.abs(latch)) / T - math.log(factor)) < 0.02 * abs(math.log(factor)))
                   and factor < 1.0 < wl)),
    ]
    data = dict(T=T, radii=radii, w_grow=wg, w_decay=wd, w_latch=wl, grow=grow, decay=decay, latch=latch,
                linear=lin.mean(axis=0), tanh=th.mean(axis=0), theory=theory_lin, latch_factor=factor,
                latch_state=hs)
    notes = []
    return claims, data, notes


def rows(data):
    T = data["T"]
    header = ["setting", "measured ||dL/dh_0|| / ||dL/dh_T||", "theory"]
    rows = [[f"scalar w = {data['w_grow']:g}", float(np.mean(data["grow"])), data["w_grow"] ** T],
            [f"scalar w = {data['w_decay']:g}", float(np.mean(data["decay"])), data["w_decay"] ** T],
            [f"tanh latch w = {data['w_latch']:g}", float(np.mean(np.abs(data["latch"]))), data["latch_factor"] ** T]]
    for x, a, b, t in zip(data["radii"], data["linear"], data["tanh"], data["theory"]):
        rows.append([f"linear rho = {x:g}", a, t])
        rows.append([f"tanh rho = {x:g}", b, f"<= {t:.4g}"])
    return header, rows


def draw(data, new_figure):
    fig, (ax1, ax2) = new_figure(ncols=2)
    T = data["T"]
    t = np.arange(T + 1)
    for w, m in ((data["w_grow"], "o"), (data["w_decay"], "s")):
        ax1.semilogy(t, w ** (T - t), "-", label=f"w^(T-t), w = {w:g}")
    ax1.semilogy([0], [np.mean(data["grow"])], "o", color="C0", label="measured dL/dh_0 (w = %g)" % data["w_grow"])
    ax1.semilogy([0], [np.mean(data["decay"])], "s", color="C1", label="measured dL/dh_0 (w = %g)" % data["w_decay"])
    ax1.set_xlabel("time step t")
    ax1.set_ylabel("dL/dh_t relative to dL/dh_T")
    ax1.set_title(f"bengio1994: scalar recurrent weight, T = {T}")
    ax1.legend(fontsize=8)
    radii = np.asarray(data["radii"], dtype=float)
    ax2.semilogy(radii, data["theory"], "k--", label="rho^T (theory, linear)")
    ax2.semilogy(radii, data["linear"], "o", label="linear RNN, measured")
    ax2.semilogy(radii, data["tanh"], "^", label="tanh RNN, measured")
    ax2.set_xlabel("spectral radius rho")
    ax2.set_ylabel("||dL/dh_0|| / ||dL/dh_T||")
    ax2.set_title(f"bengio1994: hidden state, T = {T}")
    ax2.legend(fontsize=8)
    return fig
