"""gradcore demo --full adds the paper reproductions to the report; the full-size demo timing (slow)."""

import json
import os
import subprocess
import sys
import time

import pytest

from gradcore import cli
from gradcore import experiments as ex


def test_demo_full_runs_the_reproductions_into_the_report(tmp_path, monkeypatch, capsys):
    import importlib

    rp = importlib.import_module("gradcore.experiments.reproduce")  # the package (the name is also a function)
    real = rp.reproduce_all
    calls = []

    def tiny(budget="quick", seeds=None, n_jobs=None, progress=True, names=rp.PAPERS, on_done=None):
        calls.append(budget)
        return real("tiny", seeds=1, n_jobs=1, progress=False, names=("bengio1994",), on_done=on_done)

    monkeypatch.setattr(rp, "reproduce_all", tiny)
    monkeypatch.setattr(cli, "demo_plan", lambda quick, seed=0: [("chain", "1x1 chains", ex.chain_table)])
    assert cli.main(["demo", "--full", "--no-plots", "--out", str(tmp_path)]) == 0
    assert calls == ["quick"]
    out = capsys.readouterr().out
    assert "paper reproductions" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "bengio1994" in summary["experiments"]
    html = (tmp_path / "index.html").read_text()
    assert 'id="claims-table"' in html and 'href="#bengio1994"' in html


@pytest.mark.slow
@pytest.mark.parametrize("args, budget", [(["--quick"], 15.0), ([], 60.0)])
def test_demo_wall_time(tmp_path, args, budget, capsys):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gradcore", "demo", *args, "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    with capsys.disabled():
        print(f"\n[gradcore demo {' '.join(args)}: {wall:.1f} s wall; budget {budget:g} s on 2 idle cores]")
    assert proc.stdout.count("verdict: reproduced") == 3, proc.stdout  # the three training studies
