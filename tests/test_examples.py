"""The example sweep configs in examples/ run as documented."""

import json
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.name)
def test_example_sweep_runs(config, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "gradcore", "sweep", str(config), "--backend", "sequential", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "sweep.json").read_text())
    runs = result["runs"]
    assert runs, "the sweep wrote no runs"
    assert [r["error"] for r in runs] == [None] * len(runs)
    assert (out / "sweep.csv").read_text().count("\n") == len(runs) + 1


def test_examples_exist():
    assert EXAMPLES, "examples/*.toml missing"
