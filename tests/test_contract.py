"""The contract module: one spelling of each choice, one message per fault,
whichever backend (C binding or NumPy reference) reports it."""

import numpy as np
import pytest

from gradcore import _contract as C
from gradcore import _kernels as K
from gradcore import reference as R


def test_names_are_the_kernels_codes():
    assert K.ACTIVATIONS == R.ACTIVATIONS == C.ACTIVATIONS
    assert K.RNN_NONLINEARITIES == R.RNN_NONLINEARITIES == C.RNN_NONLINEARITIES
    assert [C.activation_code(a) for a in C.ACTIVATIONS] == [0, 1, 2, 3, 4]
    assert C.cell_shapes("gru", 3, 5) == {"w_ih": (15, 3), "w_hh": (15, 5), "b_ih": (15,), "b_hh": (15,)}


@pytest.mark.parametrize("check, args, exc, msg", [
    (C.check_activation, ("swish",), ValueError, "act: unknown activation 'swish'; valid activations: identity"),
    (C.check_nonlinearity, ("sigmoid", "act", "RNN"), ValueError, "RNN: act: unknown nonlinearity 'sigmoid'"),
    (C.check_cell, ("elman",), ValueError, "cell: unknown cell 'elman'; valid cells: rnn, lstm, gru"),
    (C.check_truncate, (0,), ValueError, r"truncate: expected None \(full BPTT\) or an int >= 1, got 0"),
    (C.check_truncate, (2.0,), TypeError, "truncate: expected None"),
    (C.check_truncate, (True,), TypeError, "truncate: expected None"),
    (C.check_positive_int, (0, "width", "MLP"), ValueError, "MLP: width: expected an integer >= 1, got 0"),
    (C.check_positive_int, (1.5, "width"), TypeError, "width: expected an integer >= 1, got 1.5"),
    (C.check_range, (float("nan"), "eps", 0.0), ValueError, "eps: expected a finite number >= 0.0, got nan"),
    (C.check_range, ("1", "eps", 0.0), TypeError, r"eps: expected a finite number >= 0.0, got '1' \(str\)"),
    (C.check_range, (1.0, "beta", 0.0, 1.0, False, True), ValueError, "expected a finite number >= 0.0 and < 1.0"),
    (C.check_dtype, ("int8",), TypeError, "dtype: expected 'float32' or 'float64', got int8"),
])
def test_check_messages(check, args, exc, msg):
    with pytest.raises(exc, match=msg):
        check(*args)


def test_checks_return_normalized_values():
    assert C.check_truncate(np.int64(3)) == 3 and type(C.check_truncate(np.int64(3))) is int
    assert C.check_positive_int(np.int32(4), "n") == 4
    assert C.check_dtype("float32") == np.float32
    assert C.check_range(1, "x", lo=0) == 1.0


def _message(fn, *args, **kw):
    with pytest.raises((TypeError, ValueError)) as e:
        fn(*args, **kw)
    return type(e.value), str(e.value)


def _dense_args(dt):
    x = np.ones((2, 3), dt)
    return np.zeros((2, 4), dt), x, np.ones((4, 3), dt), np.zeros(4, dt)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("fault", ["act", "slope", "dtype", "shape", "readonly", "strided", "notarray"])
def test_dense_faults_same_message_in_both_backends(fault, dt):
    y, x, w, b = _dense_args(dt)
    act, slope = "relu", 0.01
    if fault == "act":
        act = "swish"
    elif fault == "slope":
        slope = -1.0
    elif fault == "dtype":
        w = w.astype(np.float32 if dt == np.float64 else np.float64)
    elif fault == "shape":
        b = np.zeros(5, dt)
    elif fault == "readonly":
        y.setflags(write=False)
    elif fault == "strided":
        y = np.zeros((2, 8), dt)[:, ::2]
    elif fault == "notarray":
        w = w.tolist()
    assert _message(K.dense_forward, y, x, w, b, act, slope) == _message(R.dense_forward, y, x, w, b, act, slope)


def _rnn_args(dt, T=3, B=2, I=4, H=5):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(dt)
    return dict(out=np.zeros((T, B, H), dt), x=x, h0=None, w_ih=np.ones((H, I), dt), w_hh=np.ones((H, H), dt),
                b_ih=None, b_hh=None, act="tanh")


@pytest.mark.parametrize("fault", ["act", "overlap", "dtype", "x3d"])
def test_recurrent_faults_same_message_in_both_backends(fault):
    kw = _rnn_args(np.float64)
    if fault == "act":
        kw["act"] = "sigmoid"
    elif fault == "overlap":
        kw["out"] = np.zeros((3, 2, 5))
        kw["h0"] = kw["out"][0]
    elif fault == "dtype":
        kw["w_ih"] = kw["w_ih"].astype(np.float32)
    elif fault == "x3d":
        kw["x"] = kw["x"][0]
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    assert _message(K.rnn_forward, **kw) == _message(R.rnn_forward, **kw)
    for k, v in kw.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, before[k])


def test_truncate_same_message_in_binding_reference_and_layer():
    from gradcore import nn
    T, B, I, H = 3, 2, 4, 5
    rnn = nn.RNN(I, H, dtype="float64", seed=0)
    x = np.ones((T, B, I))
    rnn.forward(x)
    with pytest.raises(ValueError) as e:
        rnn.backward(np.ones((T, B, H)), truncate=0)
    assert str(e.value).endswith("truncate: expected None (full BPTT) or an int >= 1, got 0")


def test_overlap_uses_pointer_ranges():
    buf = np.zeros(10)
    assert C.overlaps(buf[:5], buf[4:])
    assert not C.overlaps(buf[:5], buf[5:])
    assert not C.overlaps(buf[:0], buf)
    with pytest.raises(ValueError, match="b: argument overlaps output a"):
        C.check_no_overlap([(buf[:5], "a")], [(buf[3:6], "b")])
    C.check_no_overlap([(buf[:5], "a")], [(buf[5:], "b"), (None, "c")])
