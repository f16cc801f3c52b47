"""He, Zhang, Ren & Sun (2015): initialization of very deep ReLU nets.

With weights N(0, sigma^2 / n) a ReLU layer multiplies the squared norm of
the back-propagated gradient by sigma^2 / 2: Xavier (sigma^2 = 1) halves it
per layer, so over a 30-layer net ||dL/dz_1|| / ||dL/dz_30|| = 2^-14.5 =
4.3e-5; He (sigma^2 = 2) keeps it at 1. The paper's 30-layer model with Xavier
"completely stalls" while He's init converges (its Fig. 3).

Here: the gradient ratio from :func:`gradcore.experiments.depth_profile`
(30 ReLU layers), and training a 30-layer ReLU MLP (``gradcore.nn.MLP``, 29
hidden layers, SGD with momentum 0.9) on a 10-class Gaussian-mixture task
(the paper: ImageNet conv nets), loss measured on held-out data.
"""

from __future__ import annotations

import math

import numpy as np

from ..claims import claim

NAME = "he2015"
TITLE = "Xavier vs He initialization in a 30-layer ReLU net"
CITATION = ("He, Zhang, Ren & Sun (2015), Delving deep into rectifiers: surpassing human-level performance on "
            "ImageNet classification, ICCV")
SETUP = ("30 ReLU layers: the layer-1 / layer-30 gradient ratio under Xavier (N(0, 1/n)) and He (N(0, 2/n)) "
         "against 2^-14.5 and 1, and a 30-layer ReLU MLP trained with SGD + momentum from each init on a "
         "10-class task, loss on held-out data.")

BUDGETS = {
    "quick": dict(seeds=3, depth=30, width=64, profile_width=256, steps=1000, stall_steps=500, lr=0.002,
                  momentum=0.9, batch=64, eval_every=50, xavier_init="xavier", he_init="he"),
    "full": dict(seeds=10, depth=30, width=128, profile_width=512, steps=5000, stall_steps=500, lr=0.002,
                 momentum=0.9, batch=64, eval_every=50, xavier_init="xavier", he_init="he"),
    "tiny": dict(seeds=2, depth=30, width=32, profile_width=64, steps=600, stall_steps=300, lr=0.002,
                 momentum=0.9, batch=32, eval_every=50, xavier_init="xavier", he_init="he"),
}
SECONDS = {"quick": 30, "full": 1200, "tiny": 5}
N_IN, N_CLASSES = 32, 10


def units(params, seeds):
    keys = ("depth", "width", "profile_width", "steps", "lr", "momentum", "batch", "eval_every")
    return [dict(seed=s, arm=arm, init=params[f"{arm}_init"], **{k: params[k] for k in keys})
            for s in seeds for arm in ("xavier", "he")]


def _data(rng, n, centers):
    y = rng.integers(0, N_CLASSES, n)
    x = centers[y] + rng.standard_normal((n, N_IN))
    return x.astype(np.float32), y


def run_unit(seed, arm, init, depth, width, profile_width, steps, lr, momentum, batch, eval_every):
    from ... import losses, optim
    from ...nn import MLP
    from .._build import resolve_init
    from ..depth import depth_profile

    prof = depth_profile(depth, profile_width, "relu", init, batch=64, seed=seed)
    rng = np.random.default_rng([seed, 2015])
    centers = rng.standard_normal((N_CLASSES, N_IN))
    xtr, ytr = _data(rng, 4096, centers)
    xte, yte = _data(rng, 2048, centers)
    model = MLP([N_IN] + [width] * (depth - 1) + [N_CLASSES], activation="relu", init=resolve_init(init),
                seed=int(rng.integers(2**31)))
    opt = optim.SGD(model, lr=lr, momentum=momentum)
    curve = []
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            if k % eval_every == 0 or k == steps:
                lt, _ = losses.softmax_cross_entropy(model.forward(xte), yte)
                curve.append((k, float(lt)))
                if not math.isfinite(lt):
                    break
            if k == steps:
                break
            idx = rng.integers(0, len(xtr), batch)
            model.zero_grad()
            _, d = losses.softmax_cross_entropy(model.forward(xtr[idx]), ytr[idx])
            model.backward(d)
            opt.step()
    return dict(seed=seed, arm=arm, init=init, ratio=prof.ratio, predicted_ratio=prof.predicted_ratio,
                sigma_w2=float(np.mean(prof.sigma_w2)), curve=curve)


def _loss_at(curve, step):
    best = [l for k, l in curve if k <= step]
    return best[-1] if best else math.nan


def analyze(params, seeds, results):
    depth = params["depth"]
    base = math.log(N_CLASSES)
    stall = params["stall_steps"]
    theory = {"xavier": 2.0 ** (-(depth - 1) / 2), "he": 1.0}
    out = {}
    for arm in ("xavier", "he"):
        rs = [r for r in results if r["arm"] == arm]
        ratios = np.array([r["ratio"] for r in rs])
        final = np.array([r["curve"][-1][1] for r in rs])
        at_stall = np.array([_loss_at(r["curve"], stall) for r in rs])
        # first evaluation below 0.9 ln 10: the update where learning starts
        starts = []
        for r in rs:
            k = next((k for k, l in r["curve"] if l < 0.9 * base), None)
            starts.append(k)
        out[arm] = dict(init=rs[0]["init"], ratios=ratios, log2=np.log2(ratios), final=final, at_stall=at_stall,
                        starts=starts, curves=[r["curve"] for r in rs], sigma_w2=float(np.mean([r["sigma_w2"] for r in rs])))
    x, h = out["xavier"], out["he"]
    lx, lh = math.log2(theory["xavier"]), 0.0
    claims = [
        claim(f"Xavier: ||dL/dz_1|| / ||dL/dz_{depth}|| = 2^-{(depth - 1) / 2:g} (halved squared norm per layer; "
              "within 2^1.5)",
              f"{theory['xavier']:.3g} (2^{lx:.1f})",
              f"{np.exp(np.mean(np.log(x['ratios']))):.3g} (2^{np.mean(x['log2']):.1f})",
              bool(np.all(np.isfinite(x["log2"])) and np.all(np.abs(x["log2"] - lx) <= 1.5))),
        claim(f"He: the same ratio stays about 1 (within 2^1.5)",
              "1 (2^0)", f"{np.exp(np.mean(np.log(h['ratios']))):.3g} (2^{np.mean(h['log2']):.1f})",
              bool(np.all(np.isfinite(h["log2"])) and np.all(np.abs(h["log2"] - lh) <= 1.5))),
        claim(f"He trains the {depth}-layer net: held-out loss below half of ln 10 after {params['steps']} updates, "
              "every seed",
              "converges (Fig. 3)", ", ".join(f"{v:.3g}" for v in h["final"]),
              bool(np.all(h["final"] < 0.5 * base))),
        claim(f"Xavier stalls at the trivial loss ln 10 = {base:.4f} for the first {stall} updates while He learns",
              "Xavier completely stalls (Fig. 3)",
              f"Xavier {', '.join(f'{v:.4f}' for v in x['at_stall'])}; He {', '.join(f'{v:.3g}' for v in h['at_stall'])}",
              bool(np.all(np.abs(x["at_stall"] - base) < 0.02 * base) and np.all(h["at_stall"] < 0.9 * base))),
    ]
    notes = [f"the trained net is a {depth}-layer ReLU MLP of width {params['width']} on a 10-class Gaussian "
             f"mixture (the paper: ImageNet conv nets); SGD lr {params['lr']:g}, momentum {params['momentum']:g}, "
             f"batch {params['batch']}; the gradient ratio from depth_profile at width {params['profile_width']}"]
    late = [k for k in x["starts"] if k is not None]
    if late:
        notes.append(f"Xavier leaves the plateau later in {len(late)} of {len(seeds)} seeds (first held-out loss "
                     f"< 0.9 ln 10 at update {', '.join(map(str, late))}): here it stalls rather than never learns")
    if params["xavier_init"] != "xavier" or params["he_init"] != "he":
        notes.append(f"arms run with Xavier arm = {params['xavier_init']!r}, He arm = {params['he_init']!r} "
                     "(not the paper's)")
    data = dict(depth=depth, steps=params["steps"], stall=stall, theory=theory, base=base,
                arms={a: dict(init=v["init"], ratios=v["ratios"], final=v["final"], at_stall=v["at_stall"],
                              starts=v["starts"], curves=v["curves"]) for a, v in out.items()})
    return claims, data, notes


def rows(data):
    header = ["arm", "init", "seed", "dz ratio 1/L", "theory", f"loss at {data['stall']}", "final loss",
              "plateau left at"]
    out = []
    for arm, v in data["arms"].items():
        for i, (r, s, f, st) in enumerate(zip(v["ratios"], v["at_stall"], v["final"], v["starts"])):
            out.append([arm, v["init"], i, r, data["theory"][arm], s, f, st if st is not None else "-"])
    return header, out


def draw(data, new_figure):
    fig, (ax1, ax2) = new_figure(ncols=2)
    for arm, c in (("xavier", "C1"), ("he", "C0")):
        for i, curve in enumerate(data["arms"][arm]["curves"]):
            k, l = zip(*curve)
            ax1.plot(k, l, "-", color=c, lw=1, label=f"{arm} init" if i == 0 else None)
    ax1.axhline(data["base"], color="k", ls=":", label="trivial loss ln 10")
    ax1.set_xlabel("update")
    ax1.set_ylabel("held-out cross-entropy")
    ax1.set_title(f"he2015: training a {data['depth']}-layer ReLU net")
    ax1.legend(fontsize=8)
    names = list(data["arms"])
    x = np.arange(len(names))
    meas = [float(np.exp(np.mean(np.log(data["arms"][a]["ratios"])))) for a in names]
    ax2.bar(x - 0.2, meas, 0.4, label="measured", color="C0")
    ax2.bar(x + 0.2, [data["theory"][a] for a in names], 0.4, label="theory (sigma_w^2/2)^((L-1)/2)", color="C7")
    ax2.set_yscale("log")
    ax2.set_xticks(x)
    ax2.set_xticklabels(names)
    ax2.set_ylabel(f"||dL/dz_1|| / ||dL/dz_{data['depth']}||")
    ax2.set_title("he2015: gradient ratio across 30 layers")
    ax2.legend(fontsize=8)
    return fig
