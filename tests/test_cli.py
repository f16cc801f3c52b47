import json
import os
import subprocess
import sys
import time

import pytest

from gradcore.cli import build_parser, main

KEYS = ("chain", "depth", "bptt", "clipping", "normalization", "initialization")


def test_demo_quick_end_to_end_from_the_installed_package(tmp_path, capsys, record_property):
    out = tmp_path / "report"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gradcore", "demo", "--quick", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    try:
        import matplotlib  # noqa: F401
        exts = ("csv", "json", "txt", "png")
    except ImportError:
        exts = ("csv", "json", "txt")
    promised = {"index.html", "summary.json"} | {f"{k}.{e}" for k in KEYS for e in exts}
    assert promised <= {p.name for p in out.iterdir()}
    for name in promised:
        assert (out / name).stat().st_size > 0, name
    html = (out / "index.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    for k in KEYS:
        cap = summary["experiments"][k]["caption"]
        assert cap and cap.replace('"', "&quot;").replace("'", "&#x27;") in html
        if "png" in exts:
            assert f'src="{k}.png"' in html
    assert summary["quick"] is True
    assert "[16, 8, 4, 2, 1]" in proc.stdout and "report written to" in proc.stdout
    # reported, not asserted: the --quick budget is 15 s on 2 cores
    record_property("demo_quick_seconds", round(wall, 2))
    with capsys.disabled():
        print(f"\n[gradcore demo --quick wall time: {wall:.1f} s]")


def test_demo_without_matplotlib_says_how_to_get_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'no plots drawn: plots need matplotlib: pip install "gradcore[plot]"' in out
    names = {p.name for p in tmp_path.iterdir()}
    assert not any(n.endswith(".png") for n in names)
    assert {f"{k}.{e}" for k in KEYS for e in ("csv", "json", "txt")} | {"index.html", "summary.json"} <= names


@pytest.mark.parametrize("cmd", [None, "demo", "chain", "depth", "bptt", "clip", "normalize", "init", "sweep",
                                 "bench", "info"])
def test_help_everywhere(cmd, capsys):
    argv = ["--help"] if cmd is None else [cmd, "--help"]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: gradcore" in out
    if cmd == "sweep":
        assert "[grid]" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize("argv, msg", [
    (["depth", "--widht", "3"], "unrecognized arguments"),
    (["depth", "--width", "0"], "expected an integer >= 1"),
    (["chain", "--activation", "swish"], "invalid choice: 'swish'"),
    (["clip", "--clip-norms", "abc"], "expected a number"),
    (["bptt", "--radius", "nan"], "finite"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_flags_exit_2_with_a_clear_message(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


def test_bad_values_from_the_experiment_exit_2(capsys):
    assert main(["depth", "--depth", "2", "--width", "4", "--init", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "gradcore depth: error: init: unknown initializer 'bogus'" in err


def test_chain_bptt_and_report(tmp_path, capsys):
    assert main(["chain", "--w", "2", "--layers", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[16, 8, 4, 2, 1]" in out and (tmp_path / "index.html").exists() and (tmp_path / "chain.csv").exists()
    assert main(["bptt", "--T", "100", "--radius", "1.01", "--hidden", "8"]) == 0
    assert "2.705" in capsys.readouterr().out


def test_training_commands_small(capsys):
    assert main(["clip", "--T", "10", "--steps", "5", "--hidden", "8", "--clip-norms", "none", "1",
                 "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "no clipping" in out and "clip norm 1" in out and "verdict:" in out and "seeds [0, 1]" in out
    assert main(["normalize", "--samples", "64", "--features", "8", "--hidden", "8", "--steps", "5", "--depth", "3",
                 "--width", "4", "--arch-steps", "5", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "raw 0-255" in out and "LayerNorm" in out and "verdict:" in out
    assert main(["init", "--depth", "3", "--width", "8", "--steps", "5", "--samples", "64",
                 "--inits", "he", "normal(0.5)", "--seeds", "1"]) == 0
    assert "normal(0.5)" in capsys.readouterr().out
    assert main(["depth", "--depth", "4", "--width", "64", "--batch", "4", "--init", "he",
                 "--activation", "relu"]) == 0
    assert "critical" in capsys.readouterr().out


def _cfg(tmp_path, text):
    p = tmp_path / "sweep.toml"
    p.write_text(text)
    return str(p)


def test_sweep_config_runs_and_writes(tmp_path, capsys):
    cfg = _cfg(tmp_path, f'''
experiment = "bptt_profile"
backend = "sequential"
out = "{tmp_path / 'res'}"
[params]
T = 100
hidden = 8
[grid]
spectral_radius = [0.99, 1.01]
nonlinearity = ["identity"]
''')
    assert main(["sweep", cfg]) == 0
    out = capsys.readouterr().out
    assert "2 runs (0 failed)" in out and "2.705" in out
    lines = (tmp_path / "res" / "sweep.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("spectral_radius,nonlinearity,growth")


def test_sweep_with_a_failing_run_exits_1(tmp_path, capsys):
    cfg = _cfg(tmp_path, '''
experiment = "depth_profile"
backend = "threads"
n_jobs = 2
[params]
width = 8
batch = 2
[grid]
depth = [2, 0]
''')
    assert main(["sweep", cfg]) == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out and "depth: expected an integer >= 1" in captured.err


@pytest.mark.parametrize("text, msg", [
    ('experiment = "depth_profile"\nfoo = 1\n[grid]\ndepth = [2]\n', "unknown key 'foo'"),
    ('experiment = "nope"\n[grid]\ndepth = [2]\n', "experiment: unknown experiment 'nope'"),
    ('experiment = "depth_profile"\n[grid]\ndepht = [2]\n', "[grid].depht: depth_profile has no parameter"),
    ('experiment = "depth_profile"\n[grid]\ndepth = 2\n', "[grid].depth: expected a non-empty list"),
    ('experiment = "depth_profile"\n[params]\nwidht = 2\n[grid]\ndepth = [2]\n', "[params].widht"),
    ('experiment = "depth_profile"\n[params]\ndepth = 2\n[grid]\ndepth = [2]\n', "also set in [params]"),
    ('experiment = "depth_profile"\nn_jobs = 0\n[grid]\ndepth = [2]\n', "n_jobs"),
    ('experiment = "depth_profile"\nbackend = "mpi"\n[grid]\ndepth = [2]\n', "backend"),
    ('[grid]\ndepth = [2]\n', "missing key 'experiment'"),
    ('experiment = "depth_profile"\n', "missing table [grid]"),
    ('experiment = "depth_profile"\n[grid\n', "invalid TOML"),
])
def test_bad_sweep_configs_point_at_the_key(tmp_path, capsys, text, msg):
    assert main(["sweep", _cfg(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert msg in err and "sweep.toml" in err


def test_sweep_missing_file(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "none.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_info(capsys):
    assert main(["info"]) == 0
    assert "simd" in capsys.readouterr().out
