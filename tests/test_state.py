"""Model and optimizer state: bit-exact state dicts, copies and pickles that
keep their parameters in their own arena and leave forward caches out."""

import copy
import pickle

import numpy as np
import pytest

from gradcore import losses, nn, optim


def _mlp(dtype="float32", seed=0):
    return nn.MLP([4, 8, 8, 2], activation="tanh", norm="batch", dtype=dtype, seed=seed)


def _data(n=6, B=16, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(B, 4)).astype(dtype), rng.normal(size=(B, 2)).astype(dtype)) for _ in range(n)]


def _train(model, opt, data, clip=None):
    out = []
    for x, y in data:
        model.zero_grad()
        L, d = losses.mse(model.forward(x), y)
        model.backward(d)
        opt.step(clip_norm=clip)
        out.append(float(L))
    return out


OPTIMIZERS = {
    "sgd": lambda m: optim.SGD(m, lr=0.05),
    "sgd_momentum": lambda m: optim.SGD(m, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda m: optim.Adam(m, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3),
    "adamw": lambda m: optim.AdamW(m, lr=0.01),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_optimizer_state_round_trip_is_bit_exact(kind, dtype):
    data = _data(8, dtype=dtype)
    ref = _mlp(dtype)
    ref_opt = OPTIMIZERS[kind](ref)
    ref_losses = _train(ref, ref_opt, data, clip=1.0)

    a = _mlp(dtype)
    a_opt = OPTIMIZERS[kind](a)
    _train(a, a_opt, data[:3], clip=1.0)
    msd, osd = a.state_dict(), a_opt.state_dict()
    # a fresh model and optimizer continue from the saved state
    b = _mlp(dtype, seed=5)
    b_opt = OPTIMIZERS[kind](b)
    b.load_state_dict(msd)
    b_opt.load_state_dict(osd)
    rest = _train(b, b_opt, data[3:], clip=1.0)
    assert rest == ref_losses[3:]
    assert np.array_equal(b.arena.data, ref.arena.data)
    for k, v in ref.state_dict().items():        # buffers too (BatchNorm running stats)
        assert np.array_equal(b.state_dict()[k], v), k
    assert b_opt.steps == ref_opt.steps
    for k, v in ref_opt.state_dict().items():
        assert np.array_equal(np.asarray(b_opt.state_dict()[k]), np.asarray(v)), k


def test_optimizer_state_dict_is_a_copy():
    m = _mlp()
    opt = optim.Adam(m)
    _train(m, opt, _data(2))
    sd = opt.state_dict()
    assert sd["t"] == 2 and sd["kind"] == "Adam"
    sd["m"][...] = 7
    assert not np.any(opt.m == 7)


def test_optimizer_state_accepts_checkpoint_scalars():
    """Values read back from an .npz are 0-d / 1-d arrays."""
    m = _mlp()
    opt = optim.Adam(m, lr=0.003, betas=(0.7, 0.9))
    _train(m, opt, _data(2))
    sd = {k: np.asarray(v) for k, v in opt.state_dict().items()}
    other = optim.Adam(m)
    other.load_state_dict(sd)
    assert other.lr == 0.003 and other.betas == (0.7, 0.9) and other.t == 2
    assert isinstance(other.t, int) and isinstance(other.decoupled, bool)


@pytest.mark.parametrize("edit, exc, msg", [
    (lambda sd: sd.update(kind="SGD"), ValueError, "'SGD' optimizer"),
    (lambda sd: sd.pop("m"), KeyError, "missing entries \\['m'\\]"),
    (lambda sd: sd.update(extra=1), KeyError, "unexpected entries \\['extra'\\]"),
    (lambda sd: sd.update(m=sd["m"][:-1]), ValueError, "'m' has shape"),
    (lambda sd: sd.update(v=sd["v"].astype(np.float64)), TypeError, "'v' has dtype float64"),
    (lambda sd: sd.update(t=-1), ValueError, "'t' must be an integer >= 0"),
    (lambda sd: sd.update(lr=float("nan")), ValueError, "lr"),
    (lambda sd: sd.update(betas=(0.9, 1.5)), ValueError, "beta2"),
])
def test_optimizer_load_state_dict_bad_input_changes_nothing(edit, exc, msg):
    m = _mlp()
    opt = optim.Adam(m, lr=0.01)
    _train(m, opt, _data(2))
    sd = opt.state_dict()
    for k in ("m", "v"):
        sd[k] = np.full_like(sd[k], 5.0)
    sd["t"] = 99
    edit(sd)
    before = opt.state_dict()
    with pytest.raises(exc, match=msg):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    for k, v in before.items():
        assert np.array_equal(np.asarray(after[k]), np.asarray(v)), k


def test_sgd_momentum_states_do_not_mix():
    m = _mlp()
    with pytest.raises(KeyError, match="velocity"):
        optim.SGD(m, lr=0.1).load_state_dict(optim.SGD(m, lr=0.1, momentum=0.9).state_dict())


def test_adamw_is_decoupled_adam():
    data = _data(4)
    a, b = _mlp(), _mlp()
    la = _train(a, optim.AdamW(a, lr=0.01, weight_decay=0.1), data)
    lb = _train(b, optim.Adam(b, lr=0.01, weight_decay=0.1, decoupled=True), data)
    assert la == lb and np.array_equal(a.arena.data, b.arena.data)


def test_module_state_dict_has_buffers_and_round_trips():
    m = _mlp()
    _train(m, optim.SGD(m, lr=0.1), _data(3))
    sd = m.state_dict()
    assert "1.running_mean" in sd and "1.num_batches_tracked" in sd
    assert int(sd["1.num_batches_tracked"]) == 3
    other = _mlp(seed=9)
    other.load_state_dict(sd)
    for k, v in sd.items():
        assert np.array_equal(other.state_dict()[k], v) and other.state_dict()[k].dtype == v.dtype


def _lstm_model(T_cache=None):
    m = nn.Sequential(nn.LastStep(nn.LSTM(3, 16, seed=0)), nn.Dense(16, 1, seed=1))
    if T_cache:
        m.forward(np.random.default_rng(0).normal(size=(T_cache, 4, 3)).astype(np.float32))
    return m


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_keep_parameters_in_their_own_arena(how):
    m = _lstm_model(T_cache=1000)
    c = copy.deepcopy(m) if how == "deepcopy" else pickle.loads(pickle.dumps(m))
    assert np.array_equal(c.arena.data, m.arena.data)
    for (name, p), g in zip(c.parameters().items(), c.gradients().values()):
        assert np.shares_memory(p, c.arena.data), name
        assert np.shares_memory(g, c.arena.grad), name
        assert not np.shares_memory(p, m.arena.data), name
    rnn = c._children["0"]._children["rnn"]
    assert np.shares_memory(rnn._w_hh, c.arena.data)       # views cached by _bind
    assert rnn._bufs is None and rnn._x is None               # no forward cache came along
    # the copy trains: the optimizer's updates reach its forward
    x = np.random.default_rng(1).normal(size=(20, 8, 3)).astype(np.float32)
    y = np.ones((8, 1), np.float32)
    opt = optim.Adam(c, lr=0.05)
    ls = []
    for _ in range(15):
        c.zero_grad()
        L, d = losses.mse(c.forward(x), y)
        c.backward(d)
        opt.step()
        ls.append(L)
    assert ls[-1] < 0.5 * ls[0]
    assert np.array_equal(m.arena.data, _lstm_model().arena.data)   # the original is untouched


def test_pickle_leaves_forward_caches_out():
    small = len(pickle.dumps(_lstm_model()))
    big = len(pickle.dumps(_lstm_model(T_cache=1000)))
    assert big < small + 256       # a few recorded scalars, no sequence arrays
    m = _lstm_model()
    assert big < 40 * m.num_parameters() * 4      # parameters + gradients + bookkeeping


def test_clear_cache_frees_and_backward_then_needs_forward():
    m = _lstm_model(T_cache=100)
    m.clear_cache()
    with pytest.raises(RuntimeError):
        m.backward(np.ones((4, 1), np.float32))


def test_optimizer_pickles_with_its_model():
    m = _mlp()
    opt = optim.SGD(m, lr=0.1, momentum=0.9)
    _train(m, opt, _data(2))
    m2, opt2 = pickle.loads(pickle.dumps((m, opt)))
    assert opt2.model is m2 and opt2.arena is m2.arena and opt2.param is m2.arena.data
    data = _data(3, seed=4)
    assert _train(m2, opt2, data) == _train(m, opt, data)
    assert np.array_equal(m.arena.data, m2.arena.data)


def train_copy(model, lr):
    """A sweep point: train the model it was sent (a pickled copy) and report."""
    x = np.random.default_rng(1).normal(size=(20, 8, 3)).astype(np.float32)
    y = np.ones((8, 1), np.float32)
    opt = optim.Adam(model, lr=lr)
    ls = []
    for _ in range(10):
        model.zero_grad()
        L, d = losses.mse(model.forward(x), y)
        model.backward(d)
        opt.step()
        ls.append(L)
    return {"first": ls[0], "last": ls[-1]}


def test_models_sent_to_loky_workers_train():
    pytest.importorskip("joblib")
    from gradcore.experiments import sweep

    m = _lstm_model(T_cache=200)
    res = sweep(train_copy, {"model": [m], "lr": [0.05, 0.02]}, n_jobs=2, backend="loky")
    ref = train_copy(copy.deepcopy(m), 0.05)
    assert not res.errors
    for run in res.runs:
        assert run.value["last"] < 0.5 * run.value["first"]
        assert run.value["first"] == ref["first"]     # every worker started from the same weights
    assert res.runs[0].value["last"] == ref["last"]
