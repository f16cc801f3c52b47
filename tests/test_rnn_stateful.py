"""Stateful sequences: the state a forward returns is the next forward's h0
(it lives in the layer's buffers and is copied before they are reused), and
chaining the calls equals one call over the concatenated sequence."""

import numpy as np
import pytest

from rnn_helpers import make_module

KINDS = ["rnn", "lstm", "gru"]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_chained_on_returned_state_equals_one_call(backend, kind):
    rng = np.random.default_rng(0)
    m = make_module(kind, 3, 5, seed=1)
    x = rng.standard_normal((12, 2, 3))
    full, _ = m.forward(x)
    full = full.copy()
    out1, h = m.forward(x[:5])
    out1 = out1.copy()
    out2, h2 = m.forward(x[5:], h0=h)          # h is a view of the layer's own buffers
    np.testing.assert_allclose(np.concatenate([out1, out2]), full, rtol=1e-12, atol=1e-14)
    out3, _ = m.forward(x[5:], h0=h2)          # same shape: the buffers are reused in place
    assert out3.shape == (7, 2, 5)


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_bptt_across_calls(backend, kind):
    """Backward of the second chunk stops at its h0; its dh0 fed to the first
    chunk's backward as d_hT gives full BPTT over both chunks."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 2, 3))
    d_out = rng.standard_normal((10, 2, 5))
    ref = make_module(kind, 3, 5, seed=3)
    ref.forward(x)
    ref.backward(d_out)
    a, b = make_module(kind, 3, 5, seed=3), make_module(kind, 3, 5, seed=3)
    _, h = a.forward(x[:4])
    b.forward(x[4:], h0=h)
    b.backward(d_out[4:])
    d_hT = (b.dh0, b.dc0) if kind == "lstm" else b.dh0
    a.backward(d_out[:4], d_hT=d_hT)
    np.testing.assert_allclose(a.arena.grad + b.arena.grad, ref.arena.grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([a.timestep_grad_norms, b.timestep_grad_norms]),
                               ref.timestep_grad_norms, rtol=1e-10)
