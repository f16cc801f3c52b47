"""PyTorch state-dict mapping for gradcore layers (NumPy only: torch itself is
imported only by :func:`load_torch`, which reads a torch module; tensors are
accepted wherever they convert with ``.detach().cpu().numpy()``).

- Recurrent layers exchange torch.nn.RNN / LSTM / GRU names
  (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``,
  ``_reverse`` for the backward direction); a one-layer, one-direction
  layer's ``weight_ih`` ... map to the ``_l0`` names. Cells use torch's
  cell names ``weight_ih`` ... unchanged. A single-bias RNN/LSTM
  (``bias="single"``) exports its bias as ``bias_ih*`` with a zero
  ``bias_hh*`` and loads torch's two biases as their sum.
- ``Dense`` is a ``torch.nn.Linear`` (``weight``, ``bias``); an ``MLP`` (also
  with ``norm="layer"`` / ``"batch"``) or a ``Sequential`` of ``Dense`` /
  ``Activation`` / ``LayerNorm`` / ``BatchNorm1d`` layers is a torch
  ``Sequential`` of the same modules: keys ``"0.weight"``, ``"0.bias"``,
  ``"1.running_mean"``, ``"2.weight"`` ... (each Dense with a fused
  activation takes two indices, Linear and the activation; a BatchNorm1d
  brings its buffers ``running_mean``, ``running_var`` and
  ``num_batches_tracked``). Loading a bare state dict matches the i-th torch
  module with state (in index order) to the i-th such gradcore layer.

Every entry is checked (names, shapes, float dtype) before anything is
written; values are converted to the layer's dtype. A state dict carries no
configuration beyond the shapes: a ``batch_first`` torch model's weights fit a
time-major layer, and an RNN's nonlinearity or an MLP's activations are not
in it. :func:`load_torch` reads a torch *module* instead and refuses one
whose configuration differs.

>>> import numpy as np
>>> from gradcore import nn
>>> sorted(torch_state_dict(nn.GRU(3, 4, seed=0)))
['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']
>>> sorted(torch_state_dict(nn.MLP([3, 8, 2], seed=0)))
['0.bias', '0.weight', '2.bias', '2.weight']
"""

from __future__ import annotations

import numpy as np

__all__ = ["torch_state_dict", "load_torch_state_dict", "load_torch", "entries", "local_name", "as_numpy",
           "recurrent_torch_state_dict", "load_recurrent_torch_state_dict"]

_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_TORCH_ACT = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "LeakyReLU": "leaky_relu"}
_ACT_MODULE = {v: k for k, v in _TORCH_ACT.items()}


def as_numpy(v) -> np.ndarray:
    """A torch tensor (any device) or array-like as a NumPy array."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


# ----------------------------------------------------------------- entries
def entries(layer):
    """torch name -> (local name or None, local name whose shape it has) for a
    recurrent layer or cell; None marks the zero ``bias_hh`` of a single bias."""
    cellish = not hasattr(layer, "num_layers")
    single = cellish or layer._single
    out = {}
    for k in range(1 if cellish else layer.num_layers):
        for d in range(1 if cellish else layer.num_directions):
            tsfx = "" if cellish else f"_l{k}" + ("_reverse" if d else "")
            lsfx = "" if single else tsfx
            for n in _NAMES:
                if n + lsfx in layer.p:
                    out[n + tsfx] = (n + lsfx, n + lsfx)
                elif n == "bias_hh" and layer.bias == "single":
                    out[n + tsfx] = (None, "bias_ih" + lsfx)
    return out


def local_name(layer, name):
    """The parameter of ``layer`` a torch name (or, for one layer and
    direction, gradcore's short name) refers to, or None."""
    e = entries(layer).get(name)
    if e is not None:
        return e[0]
    return name if name in layer.p else None


def _plan(model):
    """[(torch prefix, gradcore prefix, layer)] for the layers with state of a
    Dense / MLP / Sequential of Dense, Activation, LayerNorm and BatchNorm1d
    layers (torch prefix: the index in a torch Sequential)."""
    from ..nn.layers import Activation, Dense
    from ..nn.normalization import BatchNorm1d, LayerNorm

    if isinstance(model, Dense):
        return [("", "", model)]
    plan, i = [], 0
    for name, child in model.children():
        if isinstance(child, Dense):
            plan.append((f"{i}.", f"{name}.", child))
            i += 1 if child.activation == "identity" else 2
        elif isinstance(child, (LayerNorm, BatchNorm1d)):
            if _state(child):
                plan.append((f"{i}.", f"{name}.", child))
            i += 1
        elif isinstance(child, Activation):
            i += 0 if child.activation == "identity" else 1
        else:
            raise NotImplementedError(f"{model._label()}: torch state dicts cover Dense, Activation, "
                                      f"LayerNorm and BatchNorm1d layers; child {name!r} is "
                                      f"{type(child).__name__}")
    return plan


def _state(layer):
    """A layer's parameters then buffers, by local name (torch's order)."""
    return {**{n: layer.p[n] for n in layer._param_names}, **layer._buffers}


def _kind(model):
    if hasattr(model, "_cell"):
        return "recurrent"
    from ..nn.layers import Dense, Sequential

    if isinstance(model, (Dense, Sequential)):
        return "dense"
    raise TypeError(f"torch state dicts: expected a gradcore recurrent layer or cell, Dense, MLP or "
                    f"Sequential, got {type(model).__name__}")


# ------------------------------------------------------------------ export
def torch_state_dict(model) -> dict:
    """torch names -> copies of ``model``'s parameters (see the module docstring)."""
    if _kind(model) == "recurrent":
        return {tk: (model.p[src].copy() if local is not None else np.zeros_like(model.p[src]))
                for tk, (local, src) in entries(model).items()}
    sd = {}
    for pre, _, layer in _plan(model):
        for n, v in _state(layer).items():
            sd[pre + n] = v.copy()
    return sd


# -------------------------------------------------------------------- load
def load_torch_state_dict(model, state_dict) -> None:
    """Copy a torch state dict of the same configuration into ``model``;
    every entry is checked before anything is written."""
    who = f"{model._label()}.load_torch_state_dict"
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"{who}: expected a dict, got {type(state_dict).__name__}")
    if _kind(model) == "recurrent":
        wanted = {tk: src for tk, (_, src) in entries(model).items()}
        targets = {tk: local for tk, (local, _) in entries(model).items()}
        what = _config(model)
    else:
        wanted, targets = _dense_keys(model, state_dict, who)
        what = "torch modules with state in order"
    extra = [k for k in state_dict if k not in wanted]
    missing = [k for k in wanted if k not in state_dict]
    if extra or missing:
        raise KeyError(f"{who}: expected exactly the keys {list(wanted)} ({what}); missing {missing}, "
                       f"unexpected {extra}")
    from ..nn._module_state import state_targets

    live = state_targets(model)
    staged = {}
    for tk, src in wanted.items():
        v = as_numpy(state_dict[tk])
        dst = live[src]
        if v.shape != dst.shape:
            raise ValueError(f"{who}: {tk!r} has shape {v.shape}, expected {dst.shape}")
        kind = np.floating if np.issubdtype(dst.dtype, np.floating) else np.integer
        if not np.issubdtype(v.dtype, kind):
            raise TypeError(f"{who}: {tk!r} has dtype {v.dtype}, expected "
                            f"{'floats' if kind is np.floating else 'integers'}")
        staged[tk] = v
    for tk, local in targets.items():
        if local is None:                      # torch's bias_hh of a single-bias layer: summed
            continue
        v = staged[tk]
        if local.startswith("bias_ih") and model.bias == "single":
            v = v.astype(np.float64) + staged[tk.replace("bias_ih", "bias_hh")]
        live[local][...] = v.astype(live[local].dtype)


def _config(m):
    if not hasattr(m, "num_layers"):
        return f"a cell, bias={m.bias}"
    if m._single:
        return f"single layer, unidirectional, bias={m.bias}"
    return f"num_layers={m.num_layers}, bidirectional={m.bidirectional}, bias={m.bias}"


_LEAVES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _dense_keys(model, state_dict, who):
    """Match a torch Sequential's modules with state (in index order) to the
    layers with state of ``model``: (torch key -> dotted name, same)."""
    plan = _plan(model)
    if plan and plan[0][0] == "":            # a Dense: a torch Linear
        keys = {n: n for n in plan[0][2].p}
        return keys, keys
    groups = {}
    for k in state_dict:
        pre, _, leaf = str(k).rpartition(".")
        if not pre.isdigit() or leaf not in _LEAVES:
            raise KeyError(f"{who}: unexpected key {k!r} (expected '<index>.<name>' of a torch Sequential "
                           f"of Linear / LayerNorm / BatchNorm1d layers, name one of {list(_LEAVES)})")
        groups.setdefault(int(pre), []).append(leaf)
    if len(groups) != len(plan):
        raise KeyError(f"{who}: the state dict has {len(groups)} modules with state {sorted(groups)}, this "
                       f"model {len(plan)} layers with state "
                       f"({', '.join(type(layer).__name__ for *_, layer in plan)})")
    wanted = {}
    for idx, (_, pre, layer) in zip(sorted(groups), plan):
        for n in _state(layer):
            wanted[f"{idx}.{n}"] = pre + n
    return wanted, wanted


# -------------------------------------------------------- torch modules
def load_torch(model, module) -> None:
    """Check that the torch ``module`` has ``model``'s configuration, then
    load its state dict; a difference raises ValueError naming it."""
    who = f"{model._label()}.load_torch"
    if not hasattr(module, "state_dict") or not hasattr(module, "named_parameters"):
        raise TypeError(f"{who}: expected a torch.nn.Module, got {type(module).__name__}")
    if _kind(model) == "recurrent":
        _check_recurrent(model, module, who)
    else:
        _check_dense(model, module, who)
    load_torch_state_dict(model, module.state_dict())


def _differs(who, what, theirs, ours):
    if theirs != ours:
        raise ValueError(f"{who}: {what} differs: the torch module has {theirs!r}, this layer {ours!r}")


def _check_recurrent(m, t, who):
    name = type(m).__name__
    cellish = not hasattr(m, "num_layers")
    torch_names = [c.__name__ for c in type(t).__mro__]
    if name not in torch_names:
        raise ValueError(f"{who}: expected a torch.nn.{name}, got {type(t).__name__}")
    for what in ("input_size", "hidden_size"):
        _differs(who, what, getattr(t, what), getattr(m, what))
    _differs(who, "bias", bool(t.bias), bool(m.bias))
    if not cellish:
        for what in ("num_layers", "bidirectional", "batch_first"):
            _differs(who, what, getattr(t, what), getattr(m, what))
        if getattr(t, "proj_size", 0):
            raise ValueError(f"{who}: the torch module has proj_size={t.proj_size}; gradcore layers "
                             "have no projection")
    if hasattr(m, "nonlinearity"):
        _differs(who, "nonlinearity", t.nonlinearity, m.nonlinearity)


def _check_dense(m, t, who):
    from ..nn.layers import Dense

    if isinstance(m, Dense):    # a Linear; a fused activation is not part of it
        ours, mods = [_linear(m)], [t]
    else:
        ours, mods = _sequence(m), list(t.children())
    theirs = []
    for c in mods:
        cname = type(c).__name__
        if cname == "Linear":
            theirs.append(("Linear", c.in_features, c.out_features, c.bias is not None))
        elif cname in _TORCH_ACT:
            theirs.append((cname,) + ((float(c.negative_slope),) if cname == "LeakyReLU" else ()))
        elif cname == "LayerNorm":
            theirs.append((cname, tuple(c.normalized_shape), float(c.eps), c.weight is not None,
                           c.bias is not None))
        elif cname == "BatchNorm1d":
            theirs.append((cname, c.num_features, float(c.eps), c.momentum, c.affine, c.track_running_stats))
        elif cname != "Identity":
            raise ValueError(f"{who}: the torch module holds a {cname}; only Linear, LayerNorm, "
                             "BatchNorm1d and ReLU / Tanh / Sigmoid / LeakyReLU / Identity modules map "
                             "to gradcore layers")
    _differs(who, "the layer sequence (Linear: in, out, bias; activations)", theirs, ours)


def _linear(d):
    return ("Linear", d.in_features, d.out_features, "bias" in d.p)


def _sequence(m):
    """A Sequential of Dense / Activation / LayerNorm / BatchNorm1d as torch's
    module sequence."""
    from ..nn.layers import Dense
    from ..nn.normalization import BatchNorm1d, LayerNorm

    _plan(m)                        # refuses other layers
    seq = []
    for _, c in m.children():
        if isinstance(c, LayerNorm):
            seq.append(("LayerNorm", (c.features,), float(c.eps), "weight" in c.p, "bias" in c.p))
            continue
        if isinstance(c, BatchNorm1d):
            seq.append(("BatchNorm1d", c.features, float(c.eps), c.momentum, "weight" in c.p,
                        c.track_running_stats))
            continue
        if isinstance(c, Dense):
            seq.append(_linear(c))
        if c.activation != "identity":
            seq.append((_ACT_MODULE[c.activation],)
                       + ((float(c.slope),) if c.activation == "leaky_relu" else ()))
    return seq


# earlier names (one-layer recurrent layers)
recurrent_torch_state_dict = torch_state_dict
load_recurrent_torch_state_dict = load_torch_state_dict
