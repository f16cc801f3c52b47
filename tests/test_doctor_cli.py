"""``gradcore doctor CHECKPOINT``: a checkpoint from gradcore.save, a batch
from a task or an .npz, the report or JSON on stdout."""

import json

import numpy as np

import gradcore
from gradcore import cli, nn
from gradcore.doctor import model_spec
from gradcore.experiments._seq import SequenceModel, make_rnn


def _report(out):
    """The report (an editable install may print its rebuild line first)."""
    return out[out.index("gradient doctor"):]


def _pixels_checkpoint(tmp_path, with_spec=True):
    m = nn.MLP([16, 32, 32, 1], init="he_normal", seed=0)
    opt = gradcore.optim.SGD(m, lr=0.01, momentum=0.9)
    path = tmp_path / "mlp.npz"
    meta = {"model_spec": model_spec(m)} if with_spec else {}
    gradcore.save(path, m, opt, **meta)
    rng = np.random.default_rng(0)
    data = tmp_path / "batch.npz"
    np.savez(data, x=rng.integers(0, 256, (64, 16)).astype(np.float32),
             y=rng.standard_normal((64, 1)).astype(np.float32))
    return m, path, data


def test_doctor_on_checkpoint_and_npz(tmp_path, capsys):
    m, path, data = _pixels_checkpoint(tmp_path)
    assert cli.main(["doctor", str(path), "--data", str(data)]) == 0
    out = _report(capsys.readouterr().out)
    assert out.splitlines()[1].startswith("1. input_scale"), out
    assert cli.main(["doctor", str(path), "--data", str(data), "--json"]) == 0
    out = capsys.readouterr().out
    j = json.loads(out[out.index("{"):])
    assert j["reported"][0] == "input_scale"
    assert j["measurements"]["optimizer"]["optimizer"] == "SGD"  # the saved optimizer took the trial step
    assert j["measurements"]["optimizer"]["lr"] == 0.01


def test_doctor_on_recurrent_checkpoint_with_task(tmp_path, capsys):
    m = SequenceModel(make_rnn("rnn", 2, 32, "tanh", "float32", 0, 1.5), nn.Dense(32, 1, seed=1))
    path = tmp_path / "rnn.npz"
    gradcore.save(path, m, gradcore.optim.SGD(m, lr=0.01), model_spec=model_spec(m))
    assert cli.main(["doctor", str(path), "--task", "adding", "--T", "100"]) == 0
    out = _report(capsys.readouterr().out)
    assert out.splitlines()[1].startswith("1. recurrent_weight"), out
    assert "spectral radius 1.5" in out


def test_doctor_model_spec_on_the_command_line(tmp_path, capsys):
    m, path, data = _pixels_checkpoint(tmp_path, with_spec=False)
    assert cli.main(["doctor", str(path), "--data", str(data)]) == 2
    assert "does not say how to rebuild its model" in capsys.readouterr().err
    spec = json.dumps(model_spec(m))
    assert cli.main(["doctor", str(path), "--data", str(data), "--model", spec]) == 0
    assert "input_scale" in capsys.readouterr().out
    assert cli.main(["doctor", str(path), "--data", str(data), "--model", "{not json"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_doctor_bad_usage(tmp_path, capsys):
    m, path, data = _pixels_checkpoint(tmp_path)
    assert cli.main(["doctor", str(tmp_path / "nope.npz"), "--task", "adding"]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.ones(3))
    assert cli.main(["doctor", str(path), "--data", str(bad)]) == 2
    assert "expected arrays 'x' and 'y'" in capsys.readouterr().err
    assert cli.main(["doctor", str(path), "--task", "adding"]) == 2  # a 2-feature task for a 16-input MLP
    assert "expected" in capsys.readouterr().err
