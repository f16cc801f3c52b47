"""A small explicit forward/backward network library.

Every model owns one :class:`Arena` (one flat buffer for all parameters, one
for all gradients); layers follow the :class:`Module` protocol (see
``gradcore.nn.module``). The maths runs in the active backend's kernels
(``gradcore.backend.kernels()``), so ``gradcore.set_backend("numpy")`` runs the
same models on the pure-NumPy reference.
"""

from .arena import Arena
from .module import Module

__all__ = ["Arena", "Module"]
