"""From measurements to ranked causes.

Every cause gets a *severity* in orders of magnitude of gradient growth (or
shrinkage) it accounts for, turned into a score by
:func:`~gradcore.doctor.diagnosis.score_of`:

- ``input_scale``: ``2 log10(rms(x) / 3)`` above 3 (a homogeneous net's
  weight gradient scales as the input squared), ``-1 - log10 rms`` below
  0.1, or ``log10(std ratio) - 2`` when features differ more than 100x;
- ``init_gain``: the growth over the Dense layers predicted by mean-field
  chi_1 (measured sigma_w^2 and q per layer) *and* seen in the measured
  gains: ``min(|predicted|, |measured|)`` when both go the same way;
- ``depth_without_normalization`` (8+ Dense layers, no normalization or
  skip): ``max(|measured - predicted|, |measured| / 2)`` -- the drift
  theory does not explain, or half of any drift a deep plain stack shows;
- ``recurrent_weight``: ``|log10|`` of the fitted growth of ||dL/dh_t||
  over T, when it grows with spectral radius > 1 (or shrinks with < 0.9);
- ``learning_rate``: ``log10(update ratio / 0.01)`` or ``log10(loss
  after / loss before)`` of one trial step, whichever is larger, less the
  inflation already attributed to input scale and init gain;
- ``saturation``: 4 x the largest fraction of saturated tanh/sigmoid outputs,
  2 x the largest fraction of dead ReLU units;
- ``no_clipping`` (no clipping configured): 0.9 x the largest exploding
  severity above, or ``log10(max / median)`` of the monitor's norms.
"""

from __future__ import annotations

import math
from typing import List

from .diagnosis import THRESHOLD, Cause, score_of
from .inputs import input_severity
from .layers import INIT_NAMES, critical_sigma_w2, depth_gains


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a != 0 and (a >= 1e4 or a < 1e-3):
        return f"{v:.2e}"
    return f"{v:.3g}"


def rank(m: dict, lr_known: bool) -> List[Cause]:
    causes = []
    sev = {}
    inp = m["input"]
    layers = m["layers"]
    struct = m["structure"]

    # ---- input scale
    s_in = input_severity(inp)
    if s_in > 0:
        ev = (f"feature range {_fmt(inp['min'])}..{_fmt(inp['max'])}, rms {_fmt(inp['rms'])}"
              f" (the init assumes ~1)")
        if "first_layer_preact_std" in inp:
            ev += (f"; first-layer pre-activation std {_fmt(inp['first_layer_preact_std'])} "
                   f"(expected {_fmt(inp['first_layer_expected_std'])} for unit-scale inputs)")
        if inp["std_ratio"] > 100:
            ev += f"; feature stds differ {_fmt(inp['std_ratio'])}x"
        fix = (f"scale the inputs: min-max to [0, 1] (gradcore.data.MinMaxScaler; divide by "
               f"{_fmt(max(abs(inp['min']), abs(inp['max'])))} here) or standardize "
               f"(gradcore.data.Standardizer) to zero mean and unit std")
        sev["input_scale"] = s_in
        causes.append(Cause("input_scale", score_of(s_in), ev, fix))

    # ---- init gain and depth
    gm, gt, n = depth_gains(layers)
    m["depth_gain"] = {"log10_measured": gm, "log10_predicted": gt, "layers": n}
    hidden = [r for r in layers if math.isfinite(r["chi1"])]
    if n >= 2 and hidden:
        same = (gm > 0) == (gt > 0)
        s_init = min(abs(gm), abs(gt)) if same else 0.0
        acts = [r["activation"] for r in hidden]
        act = max(set(acts), key=acts.count)
        sw2 = [r["sigma_w2"] for r in hidden if r["activation"] == act]
        chis = [r["chi1"] for r in hidden if r["activation"] == act]
        sb2 = max(r["sigma_b2"] for r in hidden)
        crit = critical_sigma_w2(act, sb2)
        sw = sum(sw2) / len(sw2)
        chi = sum(chis) / len(chis)
        direction = "grows" if gm > 0 else "shrinks"
        ev = (f"{act} layers with sigma_w^2 = {_fmt(sw)}: mean-field chi_1 = {_fmt(chi)} per layer; "
              f"the gradient at layer 1 is {_fmt(10 ** gm)}x that at layer {n} (measured; theory "
              f"{_fmt(10 ** gt)}x)")
        fix = (f"initialize with {INIT_NAMES.get(act, 'the critical sigma_w^2')}: multiply the weights by "
               f"{_fmt(math.sqrt(crit / sw))} (sigma_w^2 {_fmt(sw)} -> {_fmt(crit)}, chi_1 -> 1)")
        if s_init > 0:
            sev["init_gain"] = s_init
            causes.append(Cause("init_gain", score_of(s_init), ev, fix))
        plain = not struct["normalization"] and not struct["skip_connections"]
        if plain and struct["dense_layers"] >= 8:
            s_depth = max(abs(gm - gt), abs(gm) / 2.0)
            if s_depth > 0:
                sev["depth_without_normalization"] = s_depth
                causes.append(Cause(
                    "depth_without_normalization", score_of(s_depth),
                    f"{struct['dense_layers']} Dense layers, no normalization or skip connection; the gradient "
                    f"at layer 1 is {_fmt(10 ** gm)}x that at layer {n} (theory explains {_fmt(10 ** gt)}x)",
                    "add LayerNorm after each hidden Dense (nn.MLP(..., norm='layer')) or residual connections "
                    "(nn.MLP(..., residual=True)), or use fewer layers"))

    # ---- recurrent weight
    for r in m["recurrent"]:
        g = r.get("growth") or {}
        lg = g.get("log10_over_T", math.nan)
        rho = r["spectral_radius"]
        if not (math.isfinite(lg) and math.isfinite(rho)):
            if r.get("first_nonfinite_step") is not None and math.isfinite(rho) and rho > 1:
                s = 3.0
            else:
                continue
        elif lg > 0 and rho > 1.0:
            s = lg
        elif lg < 0 and rho < 0.9 and r["kind"] == "RNN":
            s = -lg
        else:
            continue
        ev = (f"{r['module']}: W_hh spectral radius {_fmt(rho)}, largest singular value "
              f"{_fmt(r['max_singular_value'])}")
        if math.isfinite(lg):
            ev += (f"; ||dL/dh_t|| {'grows' if lg > 0 else 'shrinks'} {_fmt(g['per_step'])}x per step, "
                   f"{_fmt(10 ** abs(lg))}x over {g['T']} steps")
        if r.get("first_nonfinite_step") is not None:
            ev += f"; first non-finite state/gradient at step {r['first_nonfinite_step']}"
        fix = (f"rescale W_hh to spectral radius 1.0 (multiply it by {_fmt(1.0 / rho)}; "
               f"recurrent_init=nn.scaled('orthogonal', spectral_radius=1.0)), or use an LSTM/GRU")
        key = "recurrent_weight"
        if s > sev.get(key, 0):
            causes = [c for c in causes if c.name != key]
            sev[key] = s
            causes.append(Cause(key, score_of(s), ev, fix))

    # ---- saturation
    sat = m["saturation"]
    s_sat = 0.0
    parts = []
    if sat["max_saturation"] is not None and sat["max_saturation"][0] > 0:
        f, u = sat["max_saturation"]
        s_sat = max(s_sat, 4.0 * f)
        parts.append(f"{100 * f:.1f}% of layer {u}'s outputs within 0.01 of the rails")
    if sat["max_dead"] is not None and sat["max_dead"][0] > 0:
        f, u = sat["max_dead"]
        s_sat = max(s_sat, 2.0 * f)
        parts.append(f"{100 * f:.1f}% of layer {u}'s ReLU units are zero on the whole batch")
    if s_sat > 0:
        sev["saturation"] = s_sat
        causes.append(Cause("saturation", score_of(s_sat), "; ".join(parts),
                            "reduce the pre-activation scale (smaller init gain or scaled inputs), add "
                            "normalization before the activation, or use leaky_relu for dead units"))

    # ---- learning rate
    opt = m["optimizer"]
    if lr_known and opt.get("update_ratio") is not None and math.isfinite(opt.get("update_ratio", math.nan)):
        r = opt["update_ratio"]
        s_ratio = math.log10(r / 0.01) if r > 0 else 0.0
        lb, la = opt["loss_before"], opt["loss_after"]
        if not math.isfinite(la):
            s_loss = 6.0
        elif lb > 0 and la > lb:
            s_loss = math.log10(la / lb)
        else:
            s_loss = 0.0
        cf = opt.get("counterfactual")
        upstream = 0.0
        if cf and math.isfinite(cf.get("update_ratio", math.nan)):
            # judged on the copy with the upstream fixes applied
            rc = cf["update_ratio"]
            s_ratio = math.log10(rc / 0.01) if rc > 0 else 0.0
            cb, ca = cf["loss_before"], cf["loss_after"]
            s_loss = 6.0 if not math.isfinite(ca) else (math.log10(ca / cb) if cb > 0 and ca > cb else 0.0)
            r = rc
        s_lr = max(s_ratio, s_loss) - upstream
        if s_lr > 0:
            target = opt["lr"] * 1e-3 / r if r > 0 else opt["lr"] / 10
            ev = (f"{opt['optimizer']} lr {_fmt(opt['lr'])}: one step changes the weights by "
                  f"{_fmt(opt['update_ratio'])} of their norm "
                  f"(largest {_fmt(opt['max_update_ratio'])} in {opt['max_update_parameter']}); loss "
                  f"{_fmt(lb)} -> {_fmt(la)} after that step")
            if cf:
                ev += (f"; with the {', '.join(cf['fixes'])} fixes applied: ratio {_fmt(cf['update_ratio'])}, "
                       f"loss {_fmt(cf['loss_before'])} -> {_fmt(cf['loss_after'])}")
            fix = (f"lower the learning rate to about {_fmt(target)} (update/weight ratio ~1e-3), or warm it up "
                   f"from there")
            sev["learning_rate"] = s_lr
            causes.append(Cause("learning_rate", score_of(s_lr), ev, fix))
    bad_state = [k for k, ok in opt.get("state_finite", {}).items() if not ok]
    if bad_state:
        causes.append(Cause("learning_rate", 1.0, f"optimizer state {bad_state} holds NaN/Inf",
                            "reset the optimizer state and lower the learning rate"))

    # ---- clipping
    if struct["clipping"] is None:
        explode = [v for k, v in sev.items() if k in ("input_scale", "init_gain", "recurrent_weight",
                                                        "learning_rate", "depth_without_normalization")]
        exploding = [v for k, v in sev.items() if k != "saturation"] and (gm > 0 or any(
            (r.get("growth") or {}).get("log10_over_T", 0) > 0 for r in m["recurrent"]) or "learning_rate" in sev
            or "input_scale" in sev)
        s_clip = 0.9 * max(explode) if (explode and exploding) else 0.0
        mon = m.get("monitor") or {}
        ev = "no clipping configured"
        fix = "clip the global gradient norm: gradcore.AutoClip(percentile=10), or clip_norm at the typical norm"
        if mon.get("median"):
            spike = math.log10(mon["max"] / mon["median"]) if mon["max"] > 0 else 0.0
            # a spike the monitor saw has a cause of its own: clipping stays second to it
            s_clip = s_clip if s_clip > 0 else max(0.0, spike - 0.5)
            calm = "" if mon["steps"] == mon["all_steps"] else f" ({mon['steps']} before the first flagged event)"
            ev += (f"; over {mon['all_steps']} steps the gradient norm ranged {_fmt(mon['min'])}..{_fmt(mon['max'])} "
                   f"(median {_fmt(mon['median'])}{calm})")
            if mon["steps"] >= 10:
                fix = (f"clip the global norm at {_fmt(mon['p90'])}, the 90th percentile of the norms seen{calm} "
                       f"(or gradcore.AutoClip(percentile=10))")
            else:
                fix = (f"clip the global norm at {_fmt(mon['median'])}, the median of the {mon['steps']} norms{calm}"
                       f" (or gradcore.AutoClip(percentile=10))")
        elif s_clip > 0:
            infl = max([v for k, v in sev.items() if k in ("input_scale", "init_gain", "recurrent_weight")
                        and score_of(v) >= THRESHOLD] or [0.0])
            ev += f"; the gradient norm here is {_fmt(m['grad_norm'])}"
            if infl > 0:
                fix = (f"clip the global gradient norm at about {_fmt(m['grad_norm'] / 10 ** infl)} (the norm "
                       f"here without the {_fmt(10 ** infl)}x growth measured above), or use "
                       f"gradcore.AutoClip(percentile=10)")
            else:
                fix = (f"clip the global gradient norm at about {_fmt(m['grad_norm'])} (the norm here), or use "
                       f"gradcore.AutoClip(percentile=10); clipping bounds the step, the learning rate sets it")
        if s_clip > 0:
            causes.append(Cause("no_clipping", score_of(s_clip), ev, fix))
    causes = [c for c in causes if c.score >= 0.01]
    causes.sort(key=lambda c: -c.score)
    return causes


def upstream_fixes(model, x, m: dict) -> dict:
    """The fixes of the causes that inflate the gradient before the learning
    rate sees it (input scale, init gain, recurrent weight), as numbers a
    copy of the model can be changed by (see ``optimizer.counterfactual``)."""
    import numpy as np

    fixes: dict = {}
    if input_severity(m["input"]) > 0.5:
        a = np.abs(np.asarray(x, np.float64)).reshape(-1, np.shape(x)[-1])
        mx = np.max(a, axis=0)
        fixes["input_scale"] = np.where(mx > 0, mx, 1.0)
    gm, gt, n = depth_gains(m["layers"])
    if n >= 2 and (gm > 0) == (gt > 0) and min(abs(gm), abs(gt)) > 0.5:
        mult: dict = {}
        for r in m["layers"]:
            if math.isfinite(r["chi1"]) and r["sigma_w2"] > 0:
                mult[r["unit"]] = math.sqrt(critical_sigma_w2(r["activation"], r["sigma_b2"]) / r["sigma_w2"])
        if mult:
            fixes["init_gain"] = mult
    rec: dict = {}
    for r in m["recurrent"]:
        lg = (r.get("growth") or {}).get("log10_over_T", math.nan)
        if math.isfinite(lg) and lg > 0.5 and r["spectral_radius"] > 1.0:
            rec[r["name"]] = 1.0 / r["spectral_radius"]
    if rec:
        fixes["recurrent_weight"] = rec
    return fixes
