"""PyTorch state-dict mapping for gradcore layers (NumPy only: torch itself
is never imported; tensors are accepted wherever they convert with
``.detach().cpu().numpy()``).

Recurrent layers exchange torch.nn.RNN / LSTM / GRU names (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``). A single-bias RNN/LSTM
(``bias="single"``) exports its bias as ``bias_ih_l0`` with a zero
``bias_hh_l0`` and loads torch's two biases as their sum. Every entry is
checked (names, shapes, float dtype) before anything is written.

>>> import numpy as np
>>> from gradcore import nn
>>> sd = recurrent_torch_state_dict(nn.GRU(3, 4, seed=0))
>>> sorted(sd)
['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']
"""

from __future__ import annotations

import numpy as np

__all__ = ["recurrent_torch_state_dict", "load_recurrent_torch_state_dict", "as_numpy"]

_TORCH = (("weight_ih", "weight_ih_l0"), ("weight_hh", "weight_hh_l0"),
          ("bias_ih", "bias_ih_l0"), ("bias_hh", "bias_hh_l0"))


def as_numpy(v) -> np.ndarray:
    """A torch tensor (any device) or array-like as a NumPy array."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def recurrent_torch_state_dict(layer) -> dict:
    """torch names -> copies of a recurrent layer's parameters."""
    sd = {tk: layer.p[k].copy() for k, tk in _TORCH if k in layer.p}
    if layer.bias == "single":
        sd["bias_hh_l0"] = np.zeros_like(layer.p["bias_ih"])
    return sd


def load_recurrent_torch_state_dict(layer, state_dict) -> None:
    """Copy a single-layer, unidirectional torch recurrent state dict into ``layer``."""
    who = layer._label()
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"{who}.load_torch_state_dict: expected a dict, got {type(state_dict).__name__}")
    wanted = {tk: k for k, tk in _TORCH if k in layer.p}
    if layer.bias == "single":          # torch's two biases load as their sum
        wanted["bias_hh_l0"] = "bias_hh"
    extra = [k for k in state_dict if k not in wanted]
    missing = [k for k in wanted if k not in state_dict]
    if extra or missing:
        raise KeyError(f"{who}.load_torch_state_dict: expected exactly the keys {list(wanted)} "
                       f"(single layer, unidirectional, bias={layer.bias}); missing {missing}, "
                       f"unexpected {extra}")
    staged = {}
    for tk, k in wanted.items():
        v = as_numpy(state_dict[tk])
        want = layer.p["bias_ih" if k == "bias_hh" and layer.bias == "single" else k].shape
        if v.shape != want:
            raise ValueError(f"{who}.load_torch_state_dict: {tk!r} has shape {v.shape}, "
                             f"expected {want}")
        if not np.issubdtype(v.dtype, np.floating):
            raise TypeError(f"{who}.load_torch_state_dict: {tk!r} has dtype {v.dtype}, expected floats")
        staged[k] = v
    if layer.bias == "single":
        staged["bias_ih"] = staged["bias_ih"].astype(np.float64) + staged.pop("bias_hh")
    for k, v in staged.items():
        layer.p[k][...] = v.astype(layer.dtype)
