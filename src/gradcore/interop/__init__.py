"""Bridges to other frameworks. Each submodule imports its framework lazily,
so ``import gradcore`` never needs them:

- :mod:`gradcore.interop.torch`: drop-ins for ``torch.nn.utils``' gradient
  clipping and a gradient monitor for any ``torch.nn.Module``, working on
  the tensors' own memory.
"""
