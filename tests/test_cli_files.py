"""The command line and the report writer on file-system trouble: one clear
line and exit code 2, and sections written as they complete."""

import json

import pytest

from gradcore import cli
from gradcore.experiments import chain_table
from gradcore.experiments.report import ReportWriter


def test_demo_out_is_a_file_fails_before_running(tmp_path, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(cli, "demo_plan", lambda quick, seed=0: ran.append(1) or [])
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    code = cli.main(["demo", "--quick", "--out", str(f)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not ran
    assert len(err) == 1 and err[0].startswith("gradcore demo: error:") and str(f) in err[0]


def test_demo_late_failure_keeps_finished_sections(tmp_path, monkeypatch, capsys):
    res = chain_table()

    def boom():
        raise ValueError("the third experiment failed")

    plan = [("a", "first", lambda: res), ("b", "second", lambda: res), ("c", "third", boom)]
    monkeypatch.setattr(cli, "demo_plan", lambda quick, seed=0: plan)
    out = tmp_path / "rep"
    code = cli.main(["demo", "--quick", "--no-plots", "--out", str(out)])
    assert code == 2 and "the third experiment failed" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["experiments"]) == ["a", "b"]
    assert (out / "a.csv").exists() and (out / "b.txt").exists()
    html = (out / "index.html").read_text()
    assert 'id="a"' in html and 'id="b"' in html


def test_report_writer_rewrites_index_per_section(tmp_path):
    w = ReportWriter(tmp_path / "r", plots=False)
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["experiments"] == {}
    w.add("one", chain_table())
    assert list(json.loads((tmp_path / "r" / "summary.json").read_text())["experiments"]) == ["one"]
    assert "one.csv" in w.report.files and w.report.files[-1] == "index.html"


def test_sweep_out_is_a_file_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text('experiment = "bptt_profile"\nbackend = "sequential"\n[params]\nT = 20\nhidden = 4\n'
                   '[grid]\nspectral_radius = [0.9, 1.1]\n')
    f = tmp_path / "file"
    f.write_text("x")
    code = cli.main(["sweep", str(cfg), "--out", str(f)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("gradcore sweep: error:")
