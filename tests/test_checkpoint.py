"""gradcore.save / gradcore.load: one pickle-free .npz, atomic, validated."""

import os

import numpy as np
import pytest

import gradcore
from gradcore import checkpoint, losses, nn, optim


def _model(seed=0, dtype="float32"):
    return nn.MLP([3, 6, 2], activation="tanh", norm="batch", dtype=dtype, seed=seed)


def _steps(model, opt, n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.normal(size=(8, 3)).astype(model.arena.dtype)
        y = rng.normal(size=(8, 2)).astype(model.arena.dtype)
        model.zero_grad()
        L, d = losses.mse(model.forward(x), y)
        model.backward(d)
        opt.step()
        out.append(L)
    return out


def test_save_load_round_trip_bit_exact(tmp_path):
    m = _model()
    opt = optim.Adam(m, lr=0.01)
    _steps(m, opt, 3)
    path = tmp_path / "ck.npz"
    gradcore.save(path, m, opt, epoch=3, note="hello", curve=np.arange(4.0), nested={"a": [1, 2.5]})
    with np.load(path, allow_pickle=False) as z:       # plain data, no pickle
        files = set(z.files)
        assert int(z["__version__"]) == checkpoint.FORMAT_VERSION
    assert "model/1.running_var" in files and "optimizer/m" in files
    m2, opt2 = _model(seed=3), None
    opt2 = optim.Adam(m2)
    meta = gradcore.load(path, m2, opt2)
    assert meta["epoch"] == 3 and meta["note"] == "hello" and meta["nested"] == {"a": [1, 2.5]}
    assert np.array_equal(meta["curve"], np.arange(4.0))
    for k, v in m.state_dict().items():
        assert np.array_equal(m2.state_dict()[k], v)
    assert _steps(m2, opt2, 4, seed=1) == _steps(m, opt, 4, seed=1)


def test_load_mismatch_is_clear_and_changes_nothing(tmp_path):
    m = _model()
    opt = optim.Adam(m)
    path = tmp_path / "ck.npz"
    gradcore.save(path, m, opt)
    wrong = nn.MLP([3, 7, 2], activation="tanh", norm="batch", seed=0)
    with pytest.raises(ValueError, match="'0.weight' has shape"):
        gradcore.load(path, wrong)
    with pytest.raises(TypeError, match="dtype"):
        gradcore.load(path, _model(dtype="float64"))
    with pytest.raises(KeyError, match="unexpected keys"):
        gradcore.load(path, nn.MLP([3, 6, 2], seed=0))
    other = _model(seed=4)
    before = other.state_dict()
    sgd = optim.SGD(other, lr=0.1)
    with pytest.raises(ValueError, match="'Adam' optimizer"):
        gradcore.load(path, other, sgd)
    for k, v in before.items():                          # the model was put back
        assert np.array_equal(other.state_dict()[k], v)
    gradcore.save(path, m)
    with pytest.raises(KeyError, match="no optimizer state"):
        gradcore.load(path, other, optim.Adam(other))


def test_not_a_checkpoint_and_newer_version(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(gradcore.CheckpointError, match="not a gradcore checkpoint"):
        gradcore.load(p, _model())
    m = _model()
    entries = checkpoint._entries(m, None, {})
    entries["__version__"] = np.asarray(checkpoint.FORMAT_VERSION + 1)
    checkpoint.write_arrays(p, entries)
    with pytest.raises(gradcore.CheckpointError, match="newer format"):
        gradcore.load(p, m)
    with pytest.raises(TypeError, match="metadata 'obj'"):
        gradcore.save(p, m, obj=object())


def test_truncated_checkpoint_is_refused_and_previous_intact(tmp_path):
    m = _model()
    opt = optim.Adam(m)
    _steps(m, opt, 2)
    path = tmp_path / "ck.npz"
    gradcore.save(path, m, opt, step=2)
    good = path.read_bytes()
    for pct in range(0, 100, 10):
        cut = tmp_path / f"cut{pct}.npz"
        cut.write_bytes(good[:len(good) * pct // 100])
        target = _model(seed=7)
        before = target.state_dict()
        with pytest.raises(gradcore.CheckpointError, match="not a complete checkpoint"):
            gradcore.load(cut, target, optim.Adam(target))
        for k, v in before.items():
            assert np.array_equal(target.state_dict()[k], v)
    # a write that dies half-way leaves the previous checkpoint as it was
    real = np.savez

    def dying(fh, **entries):
        fh.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    _steps(m, opt, 1)
    np.savez = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            gradcore.save(path, m, opt, step=3)
    finally:
        np.savez = real
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == sorted([f"cut{p}.npz" for p in range(0, 100, 10)] + ["ck.npz"])
    assert gradcore.load(path, _model(seed=1))["step"] == 2
