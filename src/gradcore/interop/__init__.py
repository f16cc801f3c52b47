"""Bridges to other frameworks. Each submodule imports its framework lazily,
so ``import gradcore`` never needs them:

- :mod:`gradcore.interop.torch`: ``clip_grad_norm_`` for PyTorch CPU
  parameters, working in place on the gradients' memory (zero-copy).
"""
