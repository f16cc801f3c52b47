"""Normalization and initialization studies: seeds, held-out scoring, claims from the runs."""

import math
import subprocess
import sys

import numpy as np
import pytest

from gradcore import experiments as ex
from gradcore.experiments._trainruns import epochs
from gradcore.experiments.normalization import block_grad_norms

NORM_SMALL = dict(n_samples=256, features=16, hidden=(16,), steps=40, depth=10, width=12, arch_steps=30,
                  heldout=128)


def test_normalization_study_parts_seeds_and_claims():
    r = ex.normalization_study(**NORM_SMALL, seeds=2)
    assert r.seeds == [0, 1]
    assert r.labels == ["plain", "LayerNorm", "BatchNorm", "residual", "raw 0-255", "min-max scaled"]
    assert {x.group for x in r.runs} == {"architecture", "inputs"}
    assert len(r.runs) == 12
    for x in r.runs:
        assert x.extra["heldout_ratio"] == pytest.approx(x.heldout / x.extra["baseline"])
    # raw inputs explode in every seed; scaled ones stay finite
    assert all(x.diverged_step is not None for x in r.of("raw 0-255"))
    assert all(x.diverged_step is None for x in r.of("min-max scaled"))
    # the plain net's gradient at init falls through the depth (sigma_w^2 = 0.25: x0.5 per block)
    for prof in r.profiles["plain"]:
        assert len(prof) == 10 and prof[0] / prof[-1] < 0.02
    c = {x["claim"].split(":")[0]: x for x in r.claims}
    assert "plain 10-layer tanh net" in c and c["plain 10-layer tanh net"]["holds"]
    assert c["raw 0-255 inputs"]["holds"]
    ratios = [x.extra["first_last_ratio"] for x in r.of("plain")]
    for v in ratios:
        assert f"{v:.4g}" in c["plain 10-layer tanh net"]["measured"] or f"{v:.3e}" in c["plain 10-layer tanh net"]["measured"]
    assert r.verdict in ("reproduced", "partial", "not reproduced")
    assert "verdict:" in r.table() and "held-out loss" in r.table()


def test_normalization_planted_setting_fails_its_claim():
    # a "plain" net that is in fact LayerNorm: its gradient no longer vanishes
    r = ex.normalization_study(**NORM_SMALL, seeds=1, architectures=(("plain", {"norm": "layer"}),
                                                                     ("residual", {"residual": True})))
    vanish = r.claims[0]
    assert "vanishes" in vanish["claim"] and not vanish["holds"]


def test_block_grad_norms_match_a_manual_chain():
    from gradcore.nn import MLP

    m = MLP([3, 5, 5, 1], activation="tanh", dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((7, 3))
    dy = np.random.default_rng(1).standard_normal((7, 1))
    got = block_grad_norms(m, x, dy)
    # by hand: h1 = tanh(x W0^T + b0), h2 = tanh(h1 W1^T + b1), out = h2 W2^T + b2
    W = [m.parameters()[f"{i}.weight"] for i in range(3)]
    b = [m.parameters()[f"{i}.bias"] for i in range(3)]
    h1 = np.tanh(x @ W[0].T + b[0])
    h2 = np.tanh(h1 @ W[1].T + b[1])
    g2 = dy @ W[2]
    g1 = (g2 * (1 - h2 ** 2)) @ W[1]
    np.testing.assert_allclose(got, [np.linalg.norm(g1), np.linalg.norm(g2)], rtol=1e-12)
    assert all(np.all(g == 0) for g in m.gradients().values())


def test_initialization_study_seeds_heldout_and_claims():
    r = ex.initialization_study(depth=10, width=16, steps=30, seeds=2, heldout=64)
    assert r.labels == ["xavier", "he"] and r.seeds == [0, 1]
    he, xa = r.of("he"), r.of("xavier")
    for h, x in zip(he, xa):
        assert len(h.extra["block_grad_norms"]) == 10 and len(h.losses) == 30
        # He keeps the first/last gradient ratio nearer 1 than Xavier (relu)
        assert abs(math.log(h.extra["first_last_ratio"])) < abs(math.log(x.extra["first_last_ratio"]))
        assert math.isfinite(h.heldout)
    texts = [c["claim"] for c in r.claims]
    assert len(texts) == 4 and texts[0].startswith("He:") and texts[1].startswith("Xavier:")
    assert "too few" in r.table()
    # the theory column uses the measured sigma_w^2 (He: 2, Xavier: 1 for square layers)
    assert r.sigma_w2["he"] == pytest.approx(2.0, rel=0.1) and r.sigma_w2["xavier"] == pytest.approx(1.0, rel=0.1)


def test_initialization_planted_setting_fails_its_claim():
    # an initializer that calls itself "he" but draws Xavier weights: the He
    # claims are computed from the run, so they fail
    from gradcore.init import Initializer, xavier_normal

    xa = xavier_normal()
    fake_he = Initializer("he", lambda shp, rng: xa(shp, rng, "float64"))
    r = ex.initialization_study(depth=12, width=16, steps=20, seeds=1, heldout=64, inits=("xavier", fake_he))
    he_scale = r.claims[0]
    assert he_scale["claim"].startswith("He:") and not he_scale["holds"]
    real = ex.initialization_study(depth=12, width=16, steps=20, seeds=1, heldout=64)
    assert real.claims[0]["holds"] and real.claims[1]["holds"]


def test_initialization_fixed_training_set():
    r = ex.initialization_study(depth=4, width=8, steps=10, n_samples=64, seeds=1, heldout=32)
    assert len(r["he"].losses) == 10


@pytest.mark.parametrize("study, kw", [
    (ex.normalization_study, dict(n_samples=16, batch_size=64, features=8, hidden=(8,), steps=2, depth=2, width=4,
                                  arch_steps=2, seeds=1, heldout=8)),
    (ex.initialization_study, dict(depth=2, width=4, steps=2, n_samples=16, batch_size=64, seeds=1, heldout=8)),
])
def test_batch_larger_than_the_data_is_refused_not_a_hang(study, kw):
    with pytest.raises(ValueError, match="batch_size: 64 is larger"):
        study(**kw)


def test_epochs_refuses_a_batch_larger_than_the_data():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="batch_size: 6 is larger than the 5"):
        epochs(x, x, 6, np.random.default_rng(0))
    batches = epochs(x, x, 5, np.random.default_rng(0))
    assert next(batches)[0].shape == (5, 2)


def test_cli_normalize_with_a_batch_larger_than_the_samples_exits_2():
    proc = subprocess.run([sys.executable, "-m", "gradcore", "normalize", "--samples", "16", "--batch-size", "64"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "batch_size: 64 is larger" in proc.stderr


def test_plots_name_their_experiment(tmp_path):
    pytest.importorskip("matplotlib")
    n = ex.normalization_study(**NORM_SMALL, seeds=2)
    i = ex.initialization_study(depth=6, width=8, steps=20, seeds=2, heldout=32)
    for res, what in ((n, "Normalization study"), (i, "Initialization study")):
        fig = res._figure()
        for ax in fig.axes:
            assert ax.get_title().startswith(what), ax.get_title()
        res.plot(tmp_path / f"{res.name}.png")
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert any(lab.startswith("theory he") for lab in labels) and any(lab.startswith("theory xavier") for lab in labels)


@pytest.mark.slow
def test_default_studies_reproduce():
    for study in (ex.normalization_study, ex.initialization_study):
        r = study()
        assert r.verdict == "reproduced", r.table()
