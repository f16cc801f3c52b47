"""Saxe, McClelland & Ganguli (2014): exact learning dynamics of deep linear
networks.

1. The 1-D chain: D scalar weights a_1..a_D (a linear net with D + 1 layers)
   learning y = s x with E[x^2] = 1, L = E[(s x - u x)^2] / 2, u = prod a_i.
   Gradient flow from the balanced start a_i = u0^(1/D) obeys
   tau du/dt = D u^(2 - 2/D) (s - u), so the learning time from u0 to uf is
   t / tau = (1/D) int_{u0}^{uf} du / (u^(2 - 2/D) (s - u)); for D = 2 (the
   paper's 3-layer net) u(t) = s e^{2st/tau} / (e^{2st/tau} - 1 + s/u0).
   Gradient descent with step eta is this flow with tau = 1/eta.
2. Orthogonal vs scaled Gaussian N(0, 1/N) initialization across depths: a
   product of orthogonal matrices keeps every singular value at 1, so with the
   best learning rate per depth the learning time stays finite as the depth
   grows, while the scaled Gaussian product's spectrum spreads and learning
   slows down or fails.

Measured with ``gradcore.nn.Dense`` chains (no bias, identity) trained by
``gradcore.optim.SGD`` (full batch), float64.
"""

from __future__ import annotations

import math

import numpy as np

from ..claims import claim

NAME = "saxe2014"
TITLE = "exact learning dynamics of deep linear networks"
CITATION = ("Saxe, McClelland & Ganguli (2014), Exact solutions to the nonlinear dynamics of learning in "
            "deep linear neural networks, ICLR")
SETUP = ("1-D linear chains of D = 2, 4, 8 weights trained by gradient descent against the exact learning-time "
         "solution, and deep linear nets (width N, N/2 outputs) with orthogonal vs scaled Gaussian init across depths, "
         "time to reach 1% of the initial loss at the best learning rate of a small grid.")

BUDGETS = {
    "quick": dict(seeds=3, chain_depths=(2, 4, 8), eta=0.002, width=16, depths=(2, 8, 32), lr_grid=(0.1, 0.2, 0.4),
                  max_steps=1500, criterion=0.01, orthogonal_init="orthogonal", gaussian_init="gaussian"),
    "full": dict(seeds=10, chain_depths=(2, 3, 4, 6, 8, 16), eta=0.001, width=32, depths=(1, 2, 4, 8, 16, 32, 64),
                 lr_grid=(0.05, 0.1, 0.2, 0.4), max_steps=5000, criterion=0.01, orthogonal_init="orthogonal",
                 gaussian_init="gaussian"),
    "tiny": dict(seeds=2, chain_depths=(2, 4), eta=0.004, width=8, depths=(2, 8, 16), lr_grid=(0.2, 0.4),
                 max_steps=400, criterion=0.01, orthogonal_init="orthogonal", gaussian_init="gaussian"),
}
SECONDS = {"quick": 20, "full": 600, "tiny": 4}


def chain_time(s, u0, uf, D):
    """Exact learning time t / tau of the balanced 1-D chain from u0 to uf."""
    if D == 2:
        return math.log(uf * (s - u0) / (u0 * (s - uf))) / (2.0 * s)
    from scipy.integrate import quad

    val, _ = quad(lambda u: 1.0 / (u ** (2.0 - 2.0 / D) * (s - u)), u0, uf, limit=200)
    return val / D


def chain_curve_d2(s, u0, t):
    """u(t) of the D = 2 chain (t in units of tau)."""
    e = np.exp(2.0 * s * np.asarray(t, dtype=float))
    return s * e / (e - 1.0 + s / u0)


def units(params, seeds):
    out = []
    for sd in seeds:
        out.append(dict(kind="chain", seed=sd, chain_depths=tuple(params["chain_depths"]), eta=params["eta"]))
        for arm, key in (("orthogonal", "orthogonal_init"), ("gaussian", "gaussian_init")):
            for D in params["depths"]:
                out.append(dict(kind="deep", seed=sd, arm=arm, init=params[key], depth=D, width=params["width"],
                                lr_grid=tuple(params["lr_grid"]), max_steps=params["max_steps"],
                                criterion=params["criterion"]))
    return out


def _half_mse(pred, y):
    d = pred - y
    return 0.5 * float(np.sum(d * d)) / d.shape[0], d / d.shape[0]


def _run_chain(seed, chain_depths, eta):
    from ... import init as ginit
    from ... import optim
    from ...nn import Dense, Sequential

    rng = np.random.default_rng([seed, 2014])
    s = float(rng.uniform(1.0, 3.0))
    u0 = float(rng.uniform(0.005, 0.02))
    x = rng.standard_normal((64, 1))
    x /= math.sqrt(float(np.mean(x * x)))        # E[x^2] = 1 exactly over the batch
    y = s * x
    out = []
    for D in chain_depths:
        a = u0 ** (1.0 / D)
        net = Sequential(*[Dense(1, 1, bias=False, init=ginit.constant(a), dtype="float64") for _ in range(D)])
        opt = optim.SGD(net, lr=eta)
        P = net.parameters()
        ws = [P[f"{i}.weight"] for i in range(D)]
        uf = 0.9 * s
        horizon = 1.3 * chain_time(s, u0, uf, D) / eta
        us = [u0]
        for _ in range(int(horizon) + 1):
            net.zero_grad()
            _, d = _half_mse(net.forward(x), y)
            net.backward(d)
            opt.step()
            us.append(float(np.prod([w[0, 0] for w in ws])))
        us = np.asarray(us)
        times = {}
        for frac in (0.5, 0.9):
            target = frac * s
            k = int(np.argmax(us >= target))
            # linear interpolation between the steps around the crossing
            kf = (k - 1) + (target - us[k - 1]) / (us[k] - us[k - 1]) if k > 0 else 0.0
            times[str(frac)] = dict(measured=kf * eta, theory=chain_time(s, u0, target, D))
        curve_err = None
        if D == 2:
            t = np.arange(len(us)) * eta
            curve_err = float(np.max(np.abs(us - chain_curve_d2(s, u0, t))) / s)
        stride = max(1, len(us) // 200)
        out.append(dict(D=D, times=times, curve_err=curve_err, u=us[::stride].tolist(), stride=stride))
    return dict(kind="chain", seed=seed, s=s, u0=u0, eta=eta, chains=out)


def _orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _run_deep(seed, arm, init, depth, width, lr_grid, max_steps, criterion):
    from ... import init as ginit
    from ... import optim
    from ...nn import Dense, Sequential

    N = width
    rng = np.random.default_rng([seed, 14])
    # target A (N/2 x N) = U diag(s) V^T with singular values spread over
    # [0.5, 3]; a narrower output keeps the square product from having to
    # change the sign of its determinant (a saddle a square target can trap
    # it at)
    M = N // 2
    A = _orthogonal(rng, M) @ np.diag(np.linspace(0.5, 3.0, M)) @ _orthogonal(rng, N)[:M]
    x = math.sqrt(N) * np.eye(N)            # whitened inputs: E[x x^T] = I
    y = x @ A.T
    if init == "orthogonal":
        spec = ginit.orthogonal(1.0)
    elif init == "gaussian":
        spec = ginit.normal(1.0 / math.sqrt(N))
    else:
        raise ValueError(f"init: expected 'orthogonal' or 'gaussian', got {init!r}")
    wseed = int(rng.integers(2**31))
    best = None
    tried = []
    for lr0 in lr_grid:
        net = Sequential(*[Dense(N, M if l == depth - 1 else N, bias=False, init=spec, dtype="float64",
                                 seed=wseed + l) for l in range(depth)])
        P = net.parameters()
        W = np.eye(N)
        for l in range(depth):
            W = P[f"{l}.weight"] @ W      # (M, N) end to end
        sv = np.linalg.svd(W, compute_uv=False)
        opt = optim.SGD(net, lr=lr0 / depth)
        L0 = None
        steps = None
        with np.errstate(all="ignore"):
            for k in range(max_steps):
                net.zero_grad()
                L, d = _half_mse(net.forward(x), y)
                if L0 is None:
                    L0 = L
                if not math.isfinite(L) or L > 1e6 * L0:
                    break
                if L <= criterion * L0:
                    steps = k
                    break
                net.backward(d)
                opt.step()
        tried.append(dict(lr0=lr0, steps=steps))
        if steps is not None and (best is None or steps < best):
            best = steps
    return dict(kind="deep", seed=seed, arm=arm, init=init, depth=depth, steps=best, tried=tried,
                sv_max=float(sv.max()), sv_min=float(sv.min()))


def run_unit(kind, **kw):
    return _run_chain(**kw) if kind == "chain" else _run_deep(**kw)


def analyze(params, seeds, results):
    chains = [r for r in results if r["kind"] == "chain"]
    deep = [r for r in results if r["kind"] == "deep"]
    depths = list(params["depths"])
    max_steps = params["max_steps"]
    cds = list(params["chain_depths"])
    # 1-D chain
    rel = {D: [] for D in cds}
    curve = []
    for r in chains:
        for c in r["chains"]:
            for v in c["times"].values():
                rel[c["D"]].append(abs(v["measured"] - v["theory"]) / v["theory"])
            if c["curve_err"] is not None:
                curve.append(c["curve_err"])
    worst = {D: float(np.max(v)) for D, v in rel.items()}
    # deep nets: steps to criterion (None = not reached within max_steps)
    table = {}
    for arm in ("orthogonal", "gaussian"):
        for D in depths:
            st = [r["steps"] for r in deep if r["arm"] == arm and r["depth"] == D]
            table[(arm, D)] = st
    def med(arm, D):
        st = table[(arm, D)]
        if any(s is None for s in st):
            return math.inf
        return float(np.median(st))
    Dlo, Dmid, Dhi = depths[0], depths[len(depths) // 2] if len(depths) > 2 else depths[0], depths[-1]
    o_hi, o_mid, g_hi = med("orthogonal", Dhi), med("orthogonal", Dmid), med("gaussian", Dhi)
    o_fin = all(s is not None for D in depths for s in table[("orthogonal", D)])
    claims = []
    if 2 in cds and curve:
        claims.append(claim("the 3-layer chain (D = 2) follows u(t) = s e^{2st/tau} / (e^{2st/tau} - 1 + s/u0)",
                            "exact solution", f"max |u - u_theory| / s = {max(curve):.2e} over {len(curve)} seeds",
                            max(curve) < 0.01))
    deeper = [D for D in cds if D != 2]
    if deeper:
        claims.append(claim(f"deeper chains (D = {', '.join(map(str, deeper))}) take the learning time "
                            "(1/D) int du / (u^(2-2/D) (s - u)) to reach s/2 and 0.9 s",
                            "exact (gradient flow)",
                            "max rel. error " + ", ".join(f"D={D}: {worst[D]:.2e}" for D in deeper),
                            all(worst[D] < 0.02 for D in deeper)))
    ratio = o_hi / o_mid if math.isfinite(o_hi) and o_mid > 0 else math.inf
    claims.append(claim(f"orthogonal init: the learning time stays finite and nearly flat with depth "
                        f"(depth {Dhi} within 2x of depth {Dmid})",
                        "depth-independent (orthogonal)",
                        ", ".join(f"D={D}: {_fmt_steps(med('orthogonal', D), max_steps)}" for D in depths),
                        o_fin and ratio <= 2.0))
    claims.append(claim(f"scaled Gaussian init: learning slows down with depth (depth {Dhi} at least 5x slower "
                        "than orthogonal, or not reached)",
                        "grows with depth (Gaussian)",
                        ", ".join(f"D={D}: {_fmt_steps(med('gaussian', D), max_steps)}" for D in depths),
                        (not math.isfinite(g_hi)) or (math.isfinite(o_hi) and g_hi >= 5 * o_hi)))
    sv = {arm: {D: (float(np.mean([r["sv_min"] for r in deep if r["arm"] == arm and r["depth"] == D])),
                    float(np.mean([r["sv_max"] for r in deep if r["arm"] == arm and r["depth"] == D])))
                for D in depths} for arm in ("orthogonal", "gaussian")}
    data = dict(depths=depths, chain_depths=cds, max_steps=max_steps, width=params["width"],
                steps={f"{arm}:{D}": table[(arm, D)] for arm in ("orthogonal", "gaussian") for D in depths},
                median={f"{arm}:{D}": med(arm, D) for arm in ("orthogonal", "gaussian") for D in depths},
                sv=sv, chain_worst=worst, curve_err=curve,
                chain_example=chains[0] if chains else None,
                inits={"orthogonal": params["orthogonal_init"], "gaussian": params["gaussian_init"]})
    notes = [f"learning time = full-batch gradient-descent steps to 1% of the initial loss, best of learning rates "
             f"{', '.join(f'{lr:g}/D' for lr in params['lr_grid'])}, at most {max_steps} steps (the paper: "
             "MNIST; here a random N/2 x N linear target with singular values 0.5..3)"]
    if params["orthogonal_init"] != "orthogonal" or params["gaussian_init"] != "gaussian":
        notes.append(f"arms run with orthogonal arm = {params['orthogonal_init']!r}, Gaussian arm = "
                     f"{params['gaussian_init']!r} (not the paper's)")
    return claims, data, notes


def _fmt_steps(v, max_steps):
    return f">{max_steps}" if not math.isfinite(v) else f"{v:.0f}"


def rows(data):
    header = ["depth", "orthogonal steps", "Gaussian steps", "orthogonal sv min..max", "Gaussian sv min..max"]
    out = []
    for D in data["depths"]:
        o, g = data["sv"]["orthogonal"][D], data["sv"]["gaussian"][D]
        out.append([D, _fmt_steps(data["median"][f"orthogonal:{D}"], data["max_steps"]),
                    _fmt_steps(data["median"][f"gaussian:{D}"], data["max_steps"]),
                    f"{o[0]:.3g}..{o[1]:.3g}", f"{g[0]:.3g}..{g[1]:.3g}"])
    for D, w in data["chain_worst"].items():
        out.append([f"chain D={D}", f"learning time rel. error {w:.2e}", "", "", ""])
    return header, out


def draw(data, new_figure):
    fig, (ax1, ax2) = new_figure(ncols=2)
    ex = data["chain_example"]
    if ex is not None:
        s, u0, eta = ex["s"], ex["u0"], ex["eta"]
        for i, c in enumerate(ex["chains"]):
            t = np.arange(len(c["u"])) * c["stride"] * eta
            ax1.plot(t, c["u"], "o", ms=2, color=f"C{i}", label=f"D = {c['D']} measured")
            # theory curve by integrating the flow on a fine grid
            tt = np.linspace(0, t[-1], 400)
            uu = _flow_curve(s, u0, c["D"], tt)
            ax1.plot(tt, uu, "-", color=f"C{i}", lw=1, label=f"D = {c['D']} theory")
        ax1.axhline(s, color="k", ls=":", lw=1, label="target s")
        ax1.set_xlabel("t / tau (steps x learning rate)")
        ax1.set_ylabel("u = prod a_i")
        ax1.set_title(f"saxe2014: 1-D chains (s = {s:.2f}, u0 = {u0:.3g})")
        ax1.legend(fontsize=7)
    depths = data["depths"]
    ms = data["max_steps"]
    for arm, m in (("orthogonal", "o"), ("gaussian", "s")):
        v = [data["median"][f"{arm}:{D}"] for D in depths]
        y = [x if math.isfinite(x) else ms for x in v]
        ax2.plot(depths, y, m + "-", label=f"{arm} (at {ms} = not reached)")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xticks(depths)
    ax2.set_xticklabels([str(d) for d in depths])
    ax2.set_xlabel("depth (weight matrices)")
    ax2.set_ylabel("steps to 1% of the initial loss")
    ax2.set_title(f"saxe2014: learning time vs depth (width {data['width']})")
    ax2.legend(fontsize=8)
    return fig


def _flow_curve(s, u0, D, t):
    """u(t) of the balanced chain's gradient flow (RK4 on a fine grid)."""
    f = lambda u: D * u ** (2.0 - 2.0 / D) * (s - u)
    out = np.empty(len(t))
    u = u0
    out[0] = u
    for i in range(1, len(t)):
        h = t[i] - t[i - 1]
        for _ in range(10):
            hh = h / 10
            k1 = f(u); k2 = f(u + hh * k1 / 2); k3 = f(u + hh * k2 / 2); k4 = f(u + hh * k3)
            u += hh * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        out[i] = u
    return out
