"""A small explicit forward/backward network library.

Every model owns one :class:`Arena` (one flat buffer for all parameters, one
for all gradients); layers follow the :class:`Module` protocol (see
``gradcore.nn.module``). The maths runs in the active backend's kernels
(``gradcore.backend.kernels()``), so ``gradcore.set_backend("numpy")`` runs the
same models on the pure-NumPy reference.
"""

from .arena import Arena
from .layers import Activation, Dense, Residual, Sequential
from .mlp import MLP
from .module import Module
from .normalization import BatchNorm1d, LayerNorm

__all__ = ["Activation", "Arena", "BatchNorm1d", "Dense", "LayerNorm", "MLP", "Module", "Residual",
           "Sequential"]

# Recurrent layers (RNN, LSTM, GRU), their one-step cells and the adapters
# that put them in a Sequential.
from ..init import scaled  # noqa: E402
from .rnn import GRU, LSTM, RNN, NonFiniteStepError  # noqa: E402
from .rnn_cells import GRUCell, LSTMCell, RNNCell  # noqa: E402
from .seq import AllSteps, LastStep, TimeDistributed  # noqa: E402

__all__ += ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "LastStep", "AllSteps",
            "TimeDistributed", "NonFiniteStepError", "scaled"]
