"""Pure-NumPy reference implementations of every gradcore kernel.

Written the obvious way: this is the oracle in tests and the baseline in
benchmarks, and ``gradcore.set_backend("numpy")`` runs the Python API on it.
Names and signatures match ``gradcore._kernels``.
"""

from .gradnorm import BufferList, combine_norms

# Dense networks: activations, dense, layernorm, batchnorm, losses, optimizers.
from .._contract import ACTIVATIONS
from .activation import activation_backward, activation_forward
from .batchnorm import batchnorm_backward, batchnorm_forward
from .dense import dense_backward, dense_forward, dense_stack_backward, dense_stack_forward
from .layernorm import layernorm_backward, layernorm_forward
from .loss import bce_with_logits_loss, mse_loss, softmax_cross_entropy_loss
from .optim import adam_step, sgd_step

# Recurrent networks: RNN, LSTM, GRU forward and BPTT.
from .rnn import RNN_NONLINEARITIES, recurrent_activation, rnn_backward, rnn_forward
from .lstm import lstm_backward, lstm_forward
from .gru import gru_backward, gru_forward

__all__ = ["BufferList", "combine_norms"]
__all__ += [
    "ACTIVATIONS",
    "activation_forward",
    "activation_backward",
    "dense_forward",
    "dense_backward",
    "dense_stack_forward",
    "dense_stack_backward",
    "layernorm_forward",
    "layernorm_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "mse_loss",
    "bce_with_logits_loss",
    "softmax_cross_entropy_loss",
    "sgd_step",
    "adam_step",
]
__all__ += ["RNN_NONLINEARITIES", "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
            "gru_forward", "gru_backward", "recurrent_activation"]

# Unit-wise (row) norms for adaptive gradient clipping.
from .unitnorm import unit_norms  # noqa: E402

__all__ += ["unit_norms"]
