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
    with pytest.raises(ValueError, match="layer sequence"):
        m.load_torch(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2)))
    with pytest.raises(ValueError, match="Dropout"):
        m.load_torch(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2)))
    sd = t.state_dict()
    with pytest.raises(ValueError, match="shape"):
        m.load_torch_state_dict({**sd, "2.weight": torch.zeros(2, 7)})
    with pytest.raises(KeyError, match="modules with state"):
        m.load_torch_state_dict({k: v for k, v in sd.items() if not k.startswith("2.")})
    with pytest.raises(KeyError, match="unexpected key"):
        m.load_torch_state_dict({**sd, "running_mean": torch.zeros(2)})
    with pytest.raises(NotImplementedError, match="Residual"):
        torch_state.torch_state_dict(nn.Sequential(nn.Residual(nn.Dense(3, 3))))
    np.testing.assert_array_equal(m.arena.data, before)
    m.load_torch_state_dict(sd)
    np.testing.assert_array_equal(m.parameters()["1.weight"], sd["2.weight"].numpy())


def _torch_norm_mlp(norm, sizes, **kw):
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            if norm == "layer":
                mods.append(torch.nn.LayerNorm(sizes[i + 1], **kw))
            else:
                mods.append(torch.nn.BatchNorm1d(sizes[i + 1], **kw))
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods).double()


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_normalized_mlp_both_ways_matches_torch(norm):
    sizes = [3, 8, 6, 2]
    rng = np.random.default_rng(3)
    t = _torch_norm_mlp(norm, sizes)
    with torch.no_grad():                   # non-trivial gamma / beta, and running stats to carry over
        for p in t.parameters():
            p.add_(torch.from_numpy(rng.standard_normal(tuple(p.shape))))
        t.train()
        for _ in range(3):
            t(torch.from_numpy(rng.standard_normal((7, 3))))
    m = nn.MLP(sizes, norm=norm, dtype="float64", seed=0)
    m.load_torch(t)
    sd = m.torch_state_dict()
    assert sorted(sd) == sorted(t.state_dict())
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(sd[k], v.numpy())
    x = rng.standard_normal((5, 3))
    for mode in ("train", "eval"):
        getattr(t, mode)()
        getattr(m, mode)()
        np.testing.assert_allclose(m.forward(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-12,
                                   atol=1e-12)
    if norm == "batch":                     # the running stats moved alike in the train pass above
        np.testing.assert_allclose(m.torch_state_dict()["1.running_var"], t.state_dict()["1.running_var"],
                                   rtol=1e-12)
        assert int(m.torch_state_dict()["1.num_batches_tracked"]) == 4
    back = _torch_norm_mlp(norm, sizes)
    back.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in m.torch_state_dict().items()})
    back.eval()
    np.testing.assert_allclose(back(torch.from_numpy(x)).detach().numpy(), m.forward(x), rtol=1e-12,
                               atol=1e-12)


def test_normalization_settings_and_stateless_norms():
    m = nn.MLP([3, 8, 2], norm="batch", dtype="float64", seed=0)
    before = m.arena.data.copy()
    with pytest.raises(ValueError, match="layer sequence"):
        m.load_torch(_torch_norm_mlp("batch", [3, 8, 2], momentum=0.2))
    with pytest.raises(ValueError, match="layer sequence"):
        m.load_torch(_torch_norm_mlp("batch", [3, 8, 2], eps=1e-3))
    sd = _torch_norm_mlp("batch", [3, 8, 2]).state_dict()
    with pytest.raises(TypeError, match="integers"):
        m.load_torch_state_dict({**sd, "1.num_batches_tracked": torch.tensor(2.0)})
    with pytest.raises(KeyError, match="missing"):
        m.load_torch_state_dict({k: v for k, v in sd.items() if k != "1.running_var"})
    np.testing.assert_array_equal(m.arena.data, before)
    # a LayerNorm without parameters has no state on either side: the Linear layers still line up
    seq = nn.Sequential(nn.Dense(3, 4, dtype="float64"), nn.LayerNorm(4, elementwise_affine=False, dtype="float64"),
                        nn.Dense(4, 2, dtype="float64"))
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4, elementwise_affine=False),
                            torch.nn.Linear(4, 2)).double()
    torch_state.load_torch(seq, t)
    assert sorted(torch_state.torch_state_dict(seq)) == sorted(t.state_dict()) == ["0.bias", "0.weight",
                                                                                    "2.bias", "2.weight"]
    x = np.random.default_rng(4).standard_normal((3, 3))
    np.testing.assert_allclose(seq.forward(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_mlp_docstring_example_runs():
    from gradcore.nn import mlp

    assert doctest.testmod(mlp).failed == 0
