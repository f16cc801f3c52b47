"""Bridges to other frameworks. Each submodule imports its framework lazily,
so ``import gradcore`` never needs them:

- :mod:`gradcore.interop.torch`: ``clip_grad_norm_`` for PyTorch CPU
  parameters, working in place on the gradients' memory (zero-copy).
- :mod:`gradcore.interop.torch_state`: PyTorch state-dict names for gradcore
  layers (NumPy only; used by the layers' ``torch_state_dict`` /
  ``load_torch_state_dict``).
"""
