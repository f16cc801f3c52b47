"""Paper reproductions: each runs at a reduced size here (budget "tiny") with
claims computed from its own data, a planted wrong setting breaks the claim
it concerns, and the full quick budgets run under ``-m slow``."""

import json
import math

import numpy as np
import pytest

from gradcore.experiments import Reproduction, reproduce
from gradcore.experiments.claims import VERDICTS
from gradcore.experiments.reproduce import PAPERS, expected_seconds, paper_module


def _claim(r, text):
    found = [c for c in r.claims if text in c["claim"]]
    assert len(found) == 1, (text, [c["claim"] for c in r.claims])
    return found[0]


def _check_result(r, name):
    assert isinstance(r, Reproduction)
    assert r.name == name
    assert r.verdict in VERDICTS
    assert r.claims and all(set(c) == {"claim", "paper", "measured", "holds"} for c in r.claims)
    assert all(isinstance(c["holds"], bool) for c in r.claims)
    assert r.seeds and r.seconds > 0
    text = r.table()
    assert r.verdict in text and name in text
    for c in r.claims:
        assert c["claim"] in text


@pytest.fixture(scope="module")
def tiny():
    cache = {}

    def get(name, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = reproduce(name, budget="tiny", n_jobs=1, progress=False, **kw)
        return cache[key]

    return get


# ------------------------------------------------------------------ runner
def test_unknown_name_budget_setting_and_seeds():
    with pytest.raises(ValueError, match="unknown reproduction 'nope'"):
        reproduce("nope")
    with pytest.raises(ValueError, match="budget"):
        reproduce("bengio1994", budget="huge")
    with pytest.raises(ValueError, match="unknown setting 'bogus'"):
        reproduce("bengio1994", budget="tiny", bogus=1)
    with pytest.raises(ValueError, match="seeds"):
        reproduce("bengio1994", budget="tiny", seeds=0)
    with pytest.raises(ValueError, match="repeated"):
        reproduce("bengio1994", budget="tiny", seeds=[1, 1])
    with pytest.raises(ValueError, match="overridden"):
        reproduce("all", budget="tiny", T=5)


def test_every_paper_has_budgets_and_expected_times():
    for name in PAPERS:
        mod = paper_module(name)
        for b in ("quick", "full", "tiny"):
            assert b in mod.BUDGETS and mod.BUDGETS[b]["seeds"] >= 2
            assert expected_seconds(name, b) > 0
        # the quick budget fits 3 minutes on 2 cores by design
        assert expected_seconds(name, "quick") <= 180
    assert expected_seconds("all", "full") == sum(expected_seconds(n, "full") for n in PAPERS)


def test_seeds_parallel_match_sequential():
    a = reproduce("bengio1994", budget="tiny", seeds=[3, 4], n_jobs=1, progress=False)
    b = reproduce("bengio1994", budget="tiny", seeds=[3, 4], n_jobs=2, progress=False)
    assert a.seeds == b.seeds == [3, 4]
    assert [c["measured"] for c in a.claims] == [c["measured"] for c in b.claims]


def test_outputs(tiny, tmp_path):
    r = tiny("bengio1994")
    p = r.to_json(tmp_path / "r.json")
    d = json.load(open(p))
    assert d["verdict"] == r.verdict and d["claims"] == r.claims and d["seeds"] == r.seeds
    assert r.metrics()["claims"] == len(r.claims)
    pytest.importorskip("matplotlib")
    png = r.plot(tmp_path / "r.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------- bengio1994
def test_bengio1994(tiny):
    r = tiny("bengio1994")
    _check_result(r, "bengio1994")
    assert r.verdict == "reproduced"
    grow = _claim(r, "grows as w^T")
    assert grow["paper"] == "1.01^100 = 2.7048" and grow["measured"].startswith("2.7048")
    assert np.allclose(r.data["grow"], 1.01 ** 100, rtol=1e-12)
    assert np.allclose(r.data["decay"], 0.99 ** 100, rtol=1e-12)
    assert np.allclose(r.data["linear"], r.data["theory"], rtol=1e-9)


def test_bengio1994_planted_weight_breaks_claim(tiny):
    r = tiny("bengio1994", w_grow=1.02)
    assert not _claim(r, "grows as w^T")["holds"]
    assert _claim(r, "shrinks as w^T")["holds"]
    assert r.verdict == "partial"
    assert np.allclose(r.data["grow"], 1.02 ** 100, rtol=1e-12)


# ------------------------------------------------------------ full budgets
@pytest.mark.slow
@pytest.mark.parametrize("name", PAPERS)
def test_quick_budget(name):
    r = reproduce(name, budget="quick", progress=False)
    _check_result(r, name)
    print(r.table())


def test_cli_reproduce(tmp_path, capsys):
    from gradcore.cli import main

    assert main(["reproduce", "bengio1994", "--seeds", "2", "--n-jobs", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "quick budget): about" in out and "verdict: reproduced" in out
    assert (tmp_path / "bengio1994.json").exists() and (tmp_path / "index.html").exists()
    with pytest.raises(SystemExit):
        main(["reproduce", "nope"])
