"""The Elman backward's dz workspace: None (the kernel keeps one weight-gradient
chunk of step rows in its own scratch, reused chunk after chunk) and a given
(T, B, H) array give the same bits, and both match the NumPy reference, over
sequences of one, several and a partial last chunk, with truncation, and on
the paths that need every step's rows (stop_on_nonfinite, a dW_hh too large
to chunk)."""

import numpy as np
import pytest

import gradcore.reference as R
from gradcore import _kernels as C
from rnn_helpers import backward, forward, grads_case, make_case

pytestmark = pytest.mark.kernel

# B = 64, H = 128, I = 5: chunks of 7 steps (float32 and float64: the multiply-add floor)
SIZES = [(3, 64, 5, 128), (16, 64, 5, 128), (37, 64, 5, 128), (9, 3, 4, 16), (5, 4, 3, 512)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T{}-B{}-I{}-H{}".format(*s))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("truncate, stop", [(None, False), (5, False), (None, True)])
def test_dz_none_or_given_same_bits_and_reference(size, dtype, truncate, stop):
    T, B, I, H = size
    c = make_case("rnn", T, B, I, H, dtype=dtype, seed=3)
    g = grads_case(T, B, H, dtype=dtype, seed=4)
    f = forward(C, "rnn", c)
    own = backward(C, "rnn", c, f, g, truncate=truncate, stop=stop)
    dz = np.full((T, B, H), np.nan, dtype)
    given = backward(C, "rnn", c, f, g, truncate=truncate, stop=stop, dz=dz)
    for key in own:
        np.testing.assert_array_equal(own[key], given[key], err_msg=key)
    ref = backward(R, "rnn", c, forward(R, "rnn", c), g, truncate=truncate, stop=stop)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    assert own["first"] == ref["first"] == -1
    for key in ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh", "norms"):
        np.testing.assert_allclose(own[key], ref[key], err_msg=key, **tol)


@pytest.mark.parametrize("stop", [False, True])
def test_nonfinite_step_found_with_the_kernels_own_rows(stop):
    T, B, I, H = 37, 64, 5, 128
    c = make_case("rnn", T, B, I, H, dtype=np.float32, seed=5)
    g = grads_case(T, B, H, dtype=np.float32, seed=6)
    g["d_out"][20, 3, 7] = np.inf
    f = forward(C, "rnn", c)
    r = backward(C, "rnn", c, f, g, stop=stop)
    assert r["first"] == 20
    if stop:  # a stopped pass writes no gradient
        assert not r["dw_hh"].any() and not r["dx"].any()
        assert np.isnan(r["norms"][:20]).all()
