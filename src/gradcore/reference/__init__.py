"""Pure-NumPy reference implementations of every gradcore kernel.

Written the obvious way: this is the oracle in tests and the baseline in
benchmarks, and ``gradcore.set_backend("numpy")`` runs the Python API on it.
Names and signatures match ``gradcore._kernels``.
"""

from .norm import BufferList, combine_norms

__all__ = ["BufferList", "combine_norms"]
