"""Dense / MLP / Sequential state dicts exchanged with torch Linear stacks."""

import doctest

import numpy as np
import pytest

from gradcore import nn
from gradcore.interop import torch_state

torch = pytest.importorskip("torch")


def _torch_mlp(acts, sizes, bias=True):
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1], bias=bias))
        if i < len(sizes) - 2 and acts[i] is not None:
            mods.append(acts[i]())
    return torch.nn.Sequential(*mods).double()


@pytest.mark.parametrize("activation,tact", [("relu", torch.nn.ReLU), ("tanh", torch.nn.Tanh),
                                             ("sigmoid", torch.nn.Sigmoid)])
def test_mlp_both_ways_matches_torch(activation, tact):
    sizes = [3, 8, 6, 2]
    t = _torch_mlp([tact, tact], sizes)
    m = nn.MLP(sizes, activation=activation, dtype="float64", seed=0)
    sd = m.torch_state_dict()
    assert sorted(sd) == sorted(t.state_dict())          # "0.weight", "2.weight", "4.weight" ...
    t.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    x = np.random.default_rng(1).standard_normal((5, 3))
    np.testing.assert_allclose(m.forward(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    other = nn.MLP(sizes, activation=activation, dtype="float64", seed=5).load_torch(t)
    np.testing.assert_array_equal(other.forward(x), m.forward(x))
    third = nn.MLP(sizes, activation=activation, dtype="float64", seed=6)
    third.load_torch_state_dict(t.state_dict())
    np.testing.assert_array_equal(third.forward(x), m.forward(x))


def test_dense_and_sequential_with_activation_layers():
    d = nn.Dense(3, 4, dtype="float64", seed=0)
    lin = torch.nn.Linear(3, 4).double()
    torch_state.load_torch(d, lin)
    np.testing.assert_array_equal(d.p["weight"], lin.weight.detach().numpy())
    assert sorted(torch_state.torch_state_dict(d)) == ["bias", "weight"]
    seq = nn.Sequential(nn.Dense(3, 4, dtype="float64"), nn.Activation("leaky_relu", 0.2, "float64"),
                        nn.Dense(4, 2, bias=False, dtype="float64"))
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LeakyReLU(0.2),
                            torch.nn.Linear(4, 2, bias=False)).double()
    torch_state.load_torch(seq, t)
    x = np.random.default_rng(2).standard_normal((3, 3))
    np.testing.assert_allclose(seq.forward(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)
    assert sorted(torch_state.torch_state_dict(seq)) == ["0.bias", "0.weight", "2.weight"]
    with pytest.raises(ValueError, match="layer sequence"):
        torch_state.load_torch(seq, torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LeakyReLU(0.1),
                                                        torch.nn.Linear(4, 2, bias=False)))


def test_mismatches_raise_and_change_nothing():
    m = nn.MLP([3, 8, 2], seed=0)
    before = m.arena.data.copy()
    t = _torch_mlp([torch.nn.ReLU], [3, 8, 2]).float()
    with pytest.raises(ValueError, match="layer sequence"):
        nn.MLP([3, 8, 2], activation="tanh").load_torch(t)
    with pytest.raises(ValueError, match="layer sequence"):
        m.load_torch(_torch_mlp([torch.nn.ReLU], [3, 7, 2]))
    with pytest.raises(ValueError, match="LayerNorm"):
        m.load_torch(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2)))
    sd = t.state_dict()
    with pytest.raises(ValueError, match="shape"):
        m.load_torch_state_dict({**sd, "2.weight": torch.zeros(2, 7)})
    with pytest.raises(KeyError, match="Linear layers"):
        m.load_torch_state_dict({k: v for k, v in sd.items() if not k.startswith("2.")})
    with pytest.raises(KeyError, match="unexpected key"):
        m.load_torch_state_dict({**sd, "running_mean": torch.zeros(2)})
    with pytest.raises(NotImplementedError, match="LayerNorm"):
        nn.MLP([3, 8, 2], norm="layer").torch_state_dict()
    np.testing.assert_array_equal(m.arena.data, before)
    m.load_torch_state_dict(sd)
    np.testing.assert_array_equal(m.parameters()["1.weight"], sd["2.weight"].numpy())


def test_mlp_docstring_example_runs():
    from gradcore.nn import mlp

    assert doctest.testmod(mlp).failed == 0
