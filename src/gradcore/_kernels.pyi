"""The kernel-level API: the contract both backends meet.

``gradcore._kernels`` (the C kernels through Cython) and ``gradcore.reference``
(pure NumPy) define every name below with these signatures (parameter names,
order and defaults); ``tests/test_kernels_stub.py`` checks both against this
file. The names after "C backend only" exist in ``_kernels`` alone.

Arrays: float32 or float64 ``np.ndarray``, C-contiguous, native byte order;
one call takes one dtype (that of its first input). Outputs are written in
place and may not overlap an input unless the docstring says so; an argument
typed ``... | None`` may be None. Bad input raises ``TypeError`` /
``ValueError`` naming the argument (messages from ``gradcore._contract``)
before anything is written.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

_A = np.ndarray          # a float32/float64 array as above
_Labels = np.ndarray     # int64 (B,) class indices

ACTIVATIONS: Tuple[str, ...]
RNN_NONLINEARITIES: Tuple[str, ...]

# ------------------------------------------------------- norms and clipping
class BufferList:
    arrays: List[np.ndarray]
    keys: Optional[Sequence[Any]]
    writable: bool
    duplicates: Dict[int, int]
    def __init__(self, arrays: List[np.ndarray], name: str = "arrays",
                 keys: Optional[Sequence[Any]] = None, writable: bool = False) -> None: ...
    def __len__(self) -> int: ...
    def norm(self, ord: float = 2.0, per_array: bool = True, stats: bool = True
             ) -> Tuple[float, Optional[np.ndarray], Optional[float], int, int,
                        Optional[Tuple[int, int]]]: ...
    def scale_(self, factor: float) -> None: ...
    def clamp_(self, c: float) -> int: ...

def combine_norms(a: float, b: float, ord: float) -> float: ...
def unit_norms(arrays: List[np.ndarray], units: Optional[Sequence[int]] = None,
               name: str = "arrays") -> List[np.ndarray]: ...

# --------------------------------------------------------- dense networks
def activation_forward(y: _A, x: _A, act: str, slope: float = 0.01) -> None: ...
def activation_backward(dx: _A, dy: _A, y: _A, act: str, slope: float = 0.01) -> None: ...
def dense_forward(y: _A, x: _A, w: _A, b: Optional[_A], act: str, slope: float) -> None: ...
def dense_backward(dx: Optional[_A], dw: _A, db: Optional[_A], dy: _A, x: _A, w: _A, y: _A,
                   act: str, slope: float, dz: _A) -> None: ...
def layernorm_forward(y: _A, mean: _A, rstd: _A, x: _A, gamma: Optional[_A],
                      beta: Optional[_A], eps: float) -> None: ...
def layernorm_backward(dx: Optional[_A], dgamma: Optional[_A], dbeta: Optional[_A], dy: _A,
                       x: _A, mean: _A, rstd: _A, gamma: Optional[_A]) -> None: ...
def batchnorm_forward(y: _A, x: _A, gamma: Optional[_A], beta: Optional[_A],
                      running_mean: Optional[_A], running_var: Optional[_A], save_mean: _A,
                      save_rstd: _A, training: bool, momentum: float, eps: float) -> None: ...
def batchnorm_backward(dx: Optional[_A], dgamma: Optional[_A], dbeta: Optional[_A], dy: _A,
                       x: _A, save_mean: _A, save_rstd: _A, gamma: Optional[_A],
                       training: bool) -> None: ...
def mse_loss(pred: _A, target: _A, dpred: Optional[_A]) -> float: ...
def bce_with_logits_loss(logits: _A, target: _A, dlogits: Optional[_A]) -> float: ...
def softmax_cross_entropy_loss(logits: _A, labels: _Labels, dlogits: Optional[_A]) -> float: ...
def sgd_step(param: _A, grad: _A, velocity: Optional[_A], lr: float, momentum: float,
             nesterov: bool, weight_decay: float, grad_scale: float) -> None: ...
def adam_step(param: _A, grad: _A, m: _A, v: _A, step: int, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float, decoupled: bool,
              grad_scale: float) -> None: ...

# ----------------------------------------------------- recurrent networks
# x (T, B, I), states (B, H), sequences (T, B, H); weights (G*H, I), (G*H, H),
# biases (G*H,) with G = 1 (RNN), 4 (LSTM), 3 (GRU). Each returns the first
# non-finite step (-1 if none); step_norms / cell_norms are float64 (T,).
def rnn_forward(out: _A, x: _A, h0: Optional[_A], w_ih: _A, w_hh: _A, b_ih: Optional[_A],
                b_hh: Optional[_A], act: str, stop_on_nonfinite: bool = False) -> int: ...
def rnn_backward(dx: Optional[_A], dh0: Optional[_A], dw_ih: _A, dw_hh: _A,
                 db_ih: Optional[_A], db_hh: Optional[_A], dz: Optional[_A],
                 step_norms: Optional[np.ndarray], d_out: Optional[_A], d_hT: Optional[_A],
                 x: _A, h0: Optional[_A], out: _A, w_ih: _A, w_hh: _A, act: str,
                 truncate: Optional[int] = None, stop_on_nonfinite: bool = False) -> int: ...
def lstm_forward(out: _A, cs: _A, gates: _A, x: _A, h0: Optional[_A], c0: Optional[_A],
                 w_ih: _A, w_hh: _A, b_ih: Optional[_A], b_hh: Optional[_A],
                 stop_on_nonfinite: bool = False) -> int: ...
def lstm_backward(dx: Optional[_A], dh0: Optional[_A], dc0: Optional[_A], dw_ih: _A, dw_hh: _A,
                  db_ih: Optional[_A], db_hh: Optional[_A], step_norms: Optional[np.ndarray],
                  d_out: Optional[_A], d_hT: Optional[_A], d_cT: Optional[_A], x: _A,
                  h0: Optional[_A], c0: Optional[_A], out: _A, cs: _A, gates: _A, w_ih: _A,
                  w_hh: _A, truncate: Optional[int] = None, stop_on_nonfinite: bool = False,
                  cell_norms: Optional[np.ndarray] = None) -> int: ...
def gru_forward(out: _A, gates: _A, x: _A, h0: Optional[_A], w_ih: _A, w_hh: _A,
                b_ih: Optional[_A], b_hh: Optional[_A], stop_on_nonfinite: bool = False) -> int: ...
def gru_backward(dx: Optional[_A], dh0: Optional[_A], dw_ih: _A, dw_hh: _A,
                 db_ih: Optional[_A], db_hh: Optional[_A], step_norms: Optional[np.ndarray],
                 d_out: Optional[_A], d_hT: Optional[_A], x: _A, h0: Optional[_A], out: _A,
                 gates: _A, w_ih: _A, w_hh: _A, truncate: Optional[int] = None,
                 stop_on_nonfinite: bool = False) -> int: ...
def recurrent_activation(y: _A, x: _A, which: str) -> None: ...

# ------------------------------------------------------ C backend only
class KernelError(RuntimeError): ...

def simd_name() -> str: ...
def cpu_has_avx2() -> bool: ...
def set_simd(level: int) -> None: ...
