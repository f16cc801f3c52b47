"""Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (2017): deep information
propagation in random tanh networks.

For z_l = W_l tanh(z_{l-1}) + b_l, W ~ N(0, sigma_w^2 / N), b ~ N(0, sigma_b^2):
the pre-activation variance converges to q*, the squared gradient norm is
multiplied per layer by chi_1 = sigma_w^2 E[tanh'(sqrt(q*) z)^2], and the
correlation c_l of two inputs converges to its fixed point c* as
|c_l - c*| ~ exp(-l / xi_c) with xi_c = -1 / ln chi_c,
chi_c = sigma_w^2 E[tanh'(u_1) tanh'(u_2)] at c* (= chi_1 where c* = 1, the
ordered phase). The order-to-chaos line chi_1 = 1 passes sigma_w^2 = 1.76 at
sigma_b^2 = 0.05, where xi_c diverges.

Theory from :mod:`gradcore.experiments.theory` (q*, chi_1) plus the
correlation map (2-D Gauss-Hermite quadrature, here); the measurements from
random nets of ``gradcore.nn.Dense`` tanh layers with Gaussian biases
(float64): per-layer ratios of ||dL/dz_l||^2 from the layers' backward, and
correlations of pairs of inputs pushed through the same weights.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..claims import claim

NAME = "schoenholz2017"
TITLE = "order, chaos and depth scales of random tanh networks"
CITATION = ("Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (2017), Deep information propagation, ICLR")
SETUP = ("Random tanh nets with sigma_b^2 = 0.05: the critical sigma_w^2 (chi_1 = 1), chi_1 from theory against "
         "the measured per-layer ratio of squared gradient norms, and the correlation depth scale xi_c measured "
         "from pairs of inputs against -1/ln chi_c.")

BUDGETS = {
    "quick": dict(seeds=3, sigma_b2=0.05, sigma_w2=(1.0, 1.3, 1.76, 2.5, 4.0), xi_sigma_w2=(1.0, 1.3, 2.5, 4.0),
                  width=1000, depth=40, batch=32, pairs=64),
    "full": dict(seeds=10, sigma_b2=0.05, sigma_w2=(1.0, 1.3, 1.5, 1.76, 2.0, 2.5, 3.0, 4.0),
                 xi_sigma_w2=(1.0, 1.3, 1.5, 2.5, 3.0, 4.0), width=2000, depth=60, batch=64, pairs=64),
    "tiny": dict(seeds=2, sigma_b2=0.05, sigma_w2=(1.0, 1.76, 4.0), xi_sigma_w2=(1.0, 2.5), width=300, depth=24,
                 batch=16, pairs=16),
}
SECONDS = {"quick": 90, "full": 900, "tiny": 4}
PAPER_CRITICAL = 1.76
BURN_IN = 5          # layers before q_l has reached q* (the ratios are taken after it)


# ------------------------------------------------------------ theory (c map)
def _grid(n=80):
    x, w = np.polynomial.hermite.hermgauss(n)
    z = math.sqrt(2.0) * x
    w = w / math.sqrt(math.pi)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    return z1, z2, np.outer(w, w)


def _pair(c, q, g):
    z1, z2, _ = g
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(max(1.0 - c * c, 0.0)) * z2)
    return u1, u2


def correlation_map(c, sigma_w2, sigma_b2, q, g=None):
    """c_{l+1} from c_l at variance q (tanh)."""
    g = g or _grid()
    u1, u2 = _pair(c, q, g)
    return (sigma_w2 * float(np.sum(g[2] * np.tanh(u1) * np.tanh(u2))) + sigma_b2) / q


def chi_c(c, sigma_w2, q, g=None):
    g = g or _grid()
    u1, u2 = _pair(c, q, g)
    return sigma_w2 * float(np.sum(g[2] * (1 - np.tanh(u1) ** 2) * (1 - np.tanh(u2) ** 2)))


@lru_cache(maxsize=64)
def theory_point(sigma_w2, sigma_b2):
    """q*, chi_1, c*, chi_c and xi_c = -1/ln chi_c for tanh (the c map is
    iterated to 1e-13 or 3000 steps: near the critical line it converges
    arbitrarily slowly, and there c* is 1 to within the tolerance anyway)."""
    from ..theory import mean_field

    mf = mean_field(sigma_w2, sigma_b2, "tanh")
    q = mf.q_star
    if not (q > 1e-12 and math.isfinite(q)):
        # the variance dies out (or blows up): no correlation map to iterate
        xi = -1.0 / math.log(mf.chi_1) if 0 < mf.chi_1 < 1 else math.inf
        return dict(q_star=q, chi_1=mf.chi_1, c_star=1.0, chi_c=mf.chi_1, xi_c=xi)
    g = _grid()
    c = 0.5
    for _ in range(3000):
        nc = correlation_map(c, sigma_w2, sigma_b2, q, g)
        if abs(nc - c) < 1e-13:
            c = nc
            break
        c = nc
    c = min(c, 1.0)
    xc = chi_c(c, sigma_w2, q, g) if c < 1.0 - 1e-9 else mf.chi_1
    xi = -1.0 / math.log(xc) if 0 < xc < 1 else math.inf
    return dict(q_star=q, chi_1=mf.chi_1, c_star=c, chi_c=xc, xi_c=xi)


def critical_sigma_w2(sigma_b2, lo=1.0, hi=3.0):
    """sigma_w^2 where chi_1 = 1 (tanh), by Brent's method."""
    from scipy.optimize import brentq

    from ..theory import mean_field

    return float(brentq(lambda s: mean_field(s, sigma_b2, "tanh").chi_1 - 1.0, lo, hi, xtol=1e-12))


# -------------------------------------------------------------- measurement
def units(params, seeds):
    grid = sorted(set(params["sigma_w2"]) | set(params["xi_sigma_w2"]))
    return [dict(seed=s, sigma_w2=sw, sigma_b2=params["sigma_b2"], width=params["width"], depth=params["depth"],
                 batch=params["batch"], pairs=params["pairs"]) for s in seeds for sw in grid]


def run_unit(seed, sigma_w2, sigma_b2, width, depth, batch, pairs):
    from ... import init as ginit
    from ...nn import Dense
    from .._build import activation_grad

    rng = np.random.default_rng([seed, 2017, int(round(sigma_w2 * 1000))])
    th = theory_point(sigma_w2, sigma_b2)
    N = width
    layers = [Dense(N, N, activation="tanh", bias=True, init=ginit.normal(math.sqrt(sigma_w2 / N)),
                    bias_init=ginit.normal(math.sqrt(sigma_b2)), dtype="float64", seed=int(rng.integers(2**31)))
              for _ in range(depth)]
    # inputs: pre-activations start at q* so the ratios measure the fixed point;
    # rows 0..batch-1 random, then `pairs` pairs with correlation 0.5 (ordered
    # phase: c rises to c* = 1) or 0 (chaotic: c rises to c* < 1)
    c0 = 0.0 if th["c_star"] < 0.999 else 0.5
    a = rng.standard_normal((pairs, N))
    b = c0 * a + math.sqrt(1 - c0 * c0) * rng.standard_normal((pairs, N))
    q_in = th["q_star"] if th["q_star"] > 1e-6 and math.isfinite(th["q_star"]) else 1.0
    x = math.sqrt(q_in) * np.concatenate([rng.standard_normal((batch, N)), a, b])
    h = np.tanh(x)          # z_1 = W_1 tanh(x) + b_1
    ys, zs = [], []
    for layer in layers:
        y = np.array(layer.forward(h), copy=True)
        ys.append(y)
        h = y
    # correlations of the pairs' pre-activations z_l = atanh(y_l)
    corr = np.empty(depth)
    for l, y in enumerate(ys):
        z = np.arctanh(np.clip(y[batch:], -1 + 1e-15, 1 - 1e-15))
        za, zb = z[:pairs], z[pairs:]
        corr[l] = float(np.mean(np.sum(za * zb, 1) / np.sqrt(np.sum(za * za, 1) * np.sum(zb * zb, 1))))
    dy = np.zeros_like(ys[-1])
    dy[:batch] = rng.standard_normal((batch, N))
    g = dy
    norms2 = np.empty(depth)
    for l in range(depth - 1, -1, -1):
        dz = activation_grad("tanh", ys[l], g)
        norms2[l] = float(np.sum(dz[:batch] ** 2))
        g = np.array(layers[l].backward(g), copy=True)
    # per-layer factor of the squared norm going down, after the burn-in
    ratios = norms2[BURN_IN:-1] / norms2[BURN_IN + 1:]
    factor = float(np.exp(np.mean(np.log(ratios))))
    q_meas = float(np.mean(np.arctanh(np.clip(ys[-1][:batch], -1 + 1e-15, 1 - 1e-15)) ** 2))
    return dict(seed=seed, sigma_w2=sigma_w2, theory=th, chi_measured=factor, norms2=norms2.tolist(),
                corr=corr.tolist(), c0=c0, q_measured=q_meas)


def noise_floor(c_star, width, pairs):
    """Where |c_l - c*| drowns in the finite-width noise of the mean pair
    correlation, three times over: 12 (1 - c*^2) / sqrt(N pairs) (in the ordered phase, c* = 1,
    the noise shrinks with 1 - c_l and only rounding limits the fit)."""
    return max(12.0 * (1.0 - c_star ** 2) / math.sqrt(width * pairs), 1e-9)


def _xi_fit(corr, c_star, width, pairs):
    """Depth scale from the slope of ln|c_l - c*| over the layers (from layer
    2 on) where the distance is above the noise floor."""
    d = np.abs(np.asarray(corr) - c_star)
    floor = noise_floor(c_star, width, pairs)
    idx = [l for l in range(len(d)) if d[l] > floor]
    # the first contiguous run from layer 1
    run = []
    for l in range(len(d)):
        if l in idx:
            run.append(l)
        else:
            break
    if len(run) < 4:
        return math.nan, run
    l = np.asarray(run[1:], dtype=float)
    slope = np.polyfit(l, np.log(d[run[1:]]), 1)[0]
    return (-1.0 / slope if slope < 0 else math.inf), run


def _nanmean(v):
    v = np.asarray(v, dtype=float)
    return float(np.mean(v[np.isfinite(v)])) if np.any(np.isfinite(v)) else math.nan


def analyze(params, seeds, results):
    sb2 = params["sigma_b2"]
    crit = critical_sigma_w2(sb2)
    grid = list(params["sigma_w2"])
    xgrid = list(params["xi_sigma_w2"])
    chi_t, chi_m, xi_t, xi_m = {}, {}, {}, {}
    for sw in sorted(set(grid) | set(xgrid)):
        rs = [r for r in results if r["sigma_w2"] == sw]
        chi_t[sw] = rs[0]["theory"]["chi_1"]
        chi_m[sw] = np.array([r["chi_measured"] for r in rs])
        xi_t[sw] = rs[0]["theory"]["xi_c"]
        fits = [_xi_fit(r["corr"], r["theory"]["c_star"], params["width"], params["pairs"])[0] for r in rs]
        xi_m[sw] = np.array(fits)
    chi_err = max(float(np.max(np.abs(chi_m[sw] / chi_t[sw] - 1))) for sw in grid)
    xi_err = max(abs(float(np.median(xi_m[sw])) / xi_t[sw] - 1) if np.all(np.isfinite(xi_m[sw])) else math.inf
                 for sw in xgrid)
    near = min(grid, key=lambda s: abs(s - crit))
    claims = [
        claim(f"the order-to-chaos line chi_1 = 1 crosses sigma_w^2 = 1.76 at sigma_b^2 = {sb2:g}",
              f"{PAPER_CRITICAL}", f"{crit:.4f}", abs(crit - PAPER_CRITICAL) < 0.01 and sb2 == 0.05),
        claim("the squared gradient norm changes by chi_1 per layer (measured ratio within 5% of theory)",
              ", ".join(f"{sw:g}: {chi_t[sw]:.3f}" for sw in grid),
              ", ".join(f"{sw:g}: {np.mean(chi_m[sw]):.3f}" for sw in grid) + f" (max error {chi_err:.1%})",
              chi_err < 0.05),
        claim(f"at sigma_w^2 = {near:g} (critical) the gradient neither vanishes nor explodes (ratio within 3% of 1)",
              "chi_1 = 1", f"{np.mean(chi_m[near]):.4f}", bool(np.all(np.abs(chi_m[near] - 1) < 0.03))),
        claim("correlations converge to c* with depth scale xi_c = -1/ln chi_c (median over seeds within 25%)",
              ", ".join(f"{sw:g}: {xi_t[sw]:.2f}" for sw in xgrid),
              ", ".join(f"{sw:g}: {np.median(xi_m[sw]):.2f}" for sw in xgrid)
              + (f" (max error {xi_err:.0%})" if math.isfinite(xi_err) else " (a fit failed)"),
              xi_err < 0.25),
    ]
    notes = [f"width {params['width']}, depth {params['depth']}, inputs at q*; chi measured as the geometric mean "
             f"of ||dL/dz_l||^2 / ||dL/dz_(l+1)||^2 over layers {BURN_IN + 1}..{params['depth'] - 1}; xi_c fitted to "
             "ln|c_l - c*| over the layers above 3x the finite-width noise, 12 (1 - c*^2) / sqrt(N pairs)"]
    data = dict(sigma_b2=sb2, critical=crit, grid=grid, xgrid=xgrid,
                chi_theory={str(k): v for k, v in chi_t.items()},
                chi_measured={str(k): v.tolist() for k, v in chi_m.items()},
                xi_theory={str(k): v for k, v in xi_t.items()},
                xi_measured={str(k): v.tolist() for k, v in xi_m.items()},
                example={str(r["sigma_w2"]): dict(corr=r["corr"], c_star=r["theory"]["c_star"], norms2=r["norms2"])
                         for r in results if r["seed"] == seeds[0]}, width=params["width"])
    return claims, data, notes


def rows(data):
    header = ["sigma_w^2", "chi_1 theory", "chi_1 measured", "regime", "xi_c theory", "xi_c measured"]
    out = []
    keys = sorted(set(map(float, data["grid"])) | set(map(float, data["xgrid"])))
    for sw in keys:
        k = str(sw) if str(sw) in data["chi_theory"] else str(int(sw)) if float(sw).is_integer() else str(sw)
        k = next(kk for kk in data["chi_theory"] if float(kk) == sw)
        ct = data["chi_theory"][k]
        regime = "critical" if abs(ct - 1) < 0.01 else ("chaotic" if ct > 1 else "ordered")
        xm = data["xi_measured"][k]
        out.append([sw, ct, float(np.mean(data["chi_measured"][k])), regime, data["xi_theory"][k],
                    float(np.nanmean(xm)) if sw in data["xgrid"] and np.any(np.isfinite(xm)) else "-"])
    return header, out


def draw(data, new_figure):
    fig, (ax1, ax2) = new_figure(ncols=2)
    from ..theory import mean_field

    s = np.linspace(0.8, 4.2, 60)
    ax1.plot(s, [mean_field(v, data["sigma_b2"], "tanh").chi_1 for v in s], "k-", label="chi_1 theory")
    ks = list(data["chi_measured"])
    ax1.plot([float(k) for k in ks], [np.mean(data["chi_measured"][k]) for k in ks], "o", label="measured ratio")
    ax1.axhline(1.0, color="grey", ls=":", lw=1)
    ax1.axvline(data["critical"], color="C3", ls="--", lw=1, label=f"critical {data['critical']:.3f}")
    ax1.set_xlabel("sigma_w^2")
    ax1.set_ylabel("||dL/dz_l||^2 / ||dL/dz_(l+1)||^2")
    ax1.set_title(f"schoenholz2017: chi_1 at sigma_b^2 = {data['sigma_b2']:g}")
    ax1.legend(fontsize=8)
    for i, k in enumerate(data["example"]):
        if float(k) not in [float(v) for v in data["xgrid"]]:
            continue
        ex = data["example"][k]
        d = np.abs(np.asarray(ex["corr"]) - ex["c_star"])
        l = np.arange(1, len(d) + 1)
        ax2.semilogy(l, np.maximum(d, 1e-12), "o", ms=3, color=f"C{i}", label=f"sigma_w^2 = {float(k):g}")
        xi = data["xi_theory"][k]
        if math.isfinite(xi):
            ax2.semilogy(l, d[1] * np.exp(-(l - 2) / xi), "-", lw=1, color=f"C{i}")
    ax2.set_xlabel("layer l")
    ax2.set_ylabel("|c_l - c*|")
    ax2.set_title("schoenholz2017: correlation depth scale (lines: exp(-l/xi_c))")
    ax2.legend(fontsize=7)
    return fig
