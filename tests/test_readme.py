"""The README's Python examples run and show what their text says."""

import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _run(code, capsys):
    ns = {"__name__": "__readme__"}
    exec(compile(code, str(README), "exec"), ns)  # noqa: S102 - the README's own examples
    return ns, capsys.readouterr().out


def test_readme_python_blocks_run_in_order(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files (a checkpoint) where they run
    # the blocks build on each other (the torch blocks share an import), as a reader would run them
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    ns = {"__name__": "__readme__"}
    ran = 0
    for code in _blocks():
        if ("torch" in code and not have_torch) or "bptt_profile" in code:
            continue  # the lab block is run (once) with its numbers checked below
        exec(compile(code, str(README), "exec"), ns)  # noqa: S102
        ran += 1
    assert ran >= 4


def test_readme_recurrent_block_shows_explosion(capsys):
    code = next(b for b in _blocks() if "spectral_radius=1.05" in b)
    ns, out = _run(code, capsys)
    g = ns["g"]
    assert np.all(g > 0) and np.all(np.diff(g) < 0)  # grows back in time: explodes, no underflow
    assert g[0] / g[-1] == pytest.approx(1.05 ** 199, rel=1e-9)
    assert "16469" in out


def test_readme_lab_block_shows_clipping_learning(capsys):
    code = next(b for b in _blocks() if "bptt_profile" in b)
    ns, out = _run(code, capsys)
    result, tasks = ns["result"], ns["tasks"]
    assert not result.stopped
    assert result.losses[-100:].mean() < 0.5 * tasks.adding_baseline().loss  # clearly below the baseline
    assert "2.70" in out  # 1.01^100
