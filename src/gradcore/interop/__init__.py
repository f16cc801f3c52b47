"""Bridges to other frameworks. Each submodule imports its framework lazily,
so ``import gradcore`` never needs them:

- :mod:`gradcore.interop.torch`: drop-ins for ``torch.nn.utils``' gradient
  clipping and a gradient monitor for any ``torch.nn.Module``, working on
  the tensors' own memory.
- :mod:`gradcore.interop.torch_state`: PyTorch state-dict names for gradcore
  recurrent layers and cells, Dense and MLP (NumPy only; used by their
  ``torch_state_dict`` / ``load_torch_state_dict``); ``load_torch`` reads a
  torch module and checks its configuration first.
"""
