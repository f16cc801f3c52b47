"""Pure-NumPy reference implementations of every gradcore kernel.

Written the obvious way: this is the oracle in tests and the baseline in
benchmarks, and ``gradcore.set_backend("numpy")`` runs the Python API on it.
Names and signatures match ``gradcore._kernels``.
"""

from .norm import BufferList, combine_norms
from .rnn import RNN_NONLINEARITIES, rnn_backward, rnn_forward
from .lstm import lstm_backward, lstm_forward
from .gru import gru_backward, gru_forward

__all__ = ["BufferList", "combine_norms"]
__all__ += ["RNN_NONLINEARITIES", "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
            "gru_forward", "gru_backward"]
