"""The clipping study: arms, seeds, held-out scoring and claims computed from the runs."""

import math

import numpy as np
import pytest

import gradcore
from gradcore import experiments as ex
from gradcore.experiments.clipping import DEFAULT_ARMS, ClipArm, clipping_study

SMALL = dict(task="adding", T=10, steps=40, hidden=16, eval_size=64)


def test_unclipped_diverges_clipped_stays_finite_in_every_seed():
    r = clipping_study(**dict(SMALL, T=30), seeds=2)
    assert r.seeds == [0, 1] and r.labels == ["no clipping", "clip norm 1"]
    assert len(r.runs) == 4
    for free, clipped in zip(r.of("no clipping"), r.of("clip norm 1")):
        assert free.seed == clipped.seed
        assert free.diverged_step is not None
        assert clipped.diverged_step is None and np.all(np.isfinite(clipped.losses))
        assert np.nanmax(free.grad_norms) > 100 * np.nanmedian(clipped.grad_norms)
        # the monitor attached to each run saw the explosion coming
        assert free.extra["first_event_step"]["explosion"] <= free.diverged_step
        assert "nonfinite" not in clipped.extra["first_event_step"]
        assert math.isfinite(clipped.heldout)
    assert r.baseline == pytest.approx(1 / 6)
    fails, trains = r.claims
    assert fails["holds"] and "diverged at step" in fails["measured"]
    # 40 steps cannot learn the task: the claim says so instead of passing
    assert not trains["holds"] and r.verdict == "partial"
    assert "too few" in r.table()
    for held in (c.heldout for c in r.of("clip norm 1")):
        assert f"{held:.4g}" in trains["measured"]


def test_same_seed_same_run_and_seed_list():
    a = clipping_study(**SMALL, seeds=[5])
    b = clipping_study(**SMALL, seeds=1, seed=5)
    assert a.seeds == b.seeds == [5]
    np.testing.assert_array_equal(a["clip norm 1"].losses, b["clip norm 1"].losses)
    c = clipping_study(**SMALL, seeds=[6])
    assert not np.array_equal(a["clip norm 1"].losses, c["clip norm 1"].losses)


def test_heldout_is_the_loss_on_fresh_data():
    from gradcore.experiments._trainruns import heldout_loss
    from gradcore.losses import mse

    model = gradcore.nn.MLP([3, 4, 1], dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((50, 3))
    y = np.random.default_rng(1).standard_normal((50, 1))
    want, _ = mse(model.forward(x), y)
    assert heldout_loss(model, x, y, "mse", chunk=7) == pytest.approx(want, rel=1e-12)


def test_planted_wrong_setting_fails_its_claim():
    # an arm that is expected to train but does not clip: it diverges like
    # the unclipped run, and its claim must say so
    arms = [ClipArm("no clipping"), ClipArm("clip norm 1 (planted: off)", expect="trains")]
    r = clipping_study(**SMALL, seeds=2, arms=arms)
    fails, planted = r.claims
    assert fails["holds"] and not planted["holds"]
    assert "diverged at step" in planted["measured"]
    # clipping planted into the arm expected to fail: no divergence, no hold
    r2 = clipping_study(**SMALL, seeds=1, arms=[ClipArm("no clipping (planted: clip 0.01)", clip_norm=0.01,
                                                        expect="fails")])
    assert r2["no clipping (planted: clip 0.01)"].diverged_step is None


def test_a_clipper_arm_is_one_entry():
    calls = []

    def halve_to(limit):
        def make(model):
            def transform(grad):
                calls.append(1)
                return gradcore.clip_grad_norm_(grad, limit)
            return transform
        return make

    arms = DEFAULT_ARMS + (ClipArm("custom clip 0.5", clipper=halve_to(0.5)),)
    r = clipping_study(**SMALL, seeds=1, arms=arms)
    assert len(calls) == SMALL["steps"]
    custom = r["custom clip 0.5"]
    assert custom.diverged_step is None and np.all(np.isfinite(custom.grad_norms))
    assert np.nanmax(custom.grad_norms) > 0.5  # the pre-clip norms were recorded
    assert [c["claim"].split(":")[0] for c in r.claims] == ["no clipping", "clip norm 1", "custom clip 0.5"]


def test_clip_norms_still_build_arms_and_bad_arms_are_refused():
    r = clipping_study(**SMALL, seeds=1, clip_norms=(None, 1.0, 10.0))
    assert r.labels == ["no clipping", "clip norm 1", "clip norm 10"]
    with pytest.raises(ValueError, match="either arms or clip_norms"):
        clipping_study(**SMALL, arms=DEFAULT_ARMS, clip_norms=(1.0,))
    with pytest.raises(ValueError, match="names must differ"):
        clipping_study(**SMALL, arms=[ClipArm("a"), ClipArm("a")])
    with pytest.raises(ValueError, match="expect"):
        clipping_study(**SMALL, arms=[ClipArm("a", expect="maybe")])
    with pytest.raises(ValueError, match="seeds"):
        clipping_study(**SMALL, seeds=0)


def test_plot_draws_thresholds(tmp_path):
    pytest.importorskip("matplotlib")
    r = clipping_study(**SMALL, seeds=2, clip_norms=(None, 1.0, 5.0))
    fig = r._figure()
    ax2 = fig.axes[1]
    labels = ax2.get_legend_handles_labels()[1]
    assert "clip norm 1: threshold 1" in labels and "clip norm 5: threshold 5" in labels
    assert "Clipping study" in fig.axes[0].get_title() and "Clipping study" in ax2.get_title()
    r.plot(tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_json_has_claims_verdict_and_seeds(tmp_path):
    import json

    r = clipping_study(**SMALL, seeds=2)
    r.to_json(tmp_path / "c.json")
    d = json.loads((tmp_path / "c.json").read_text())
    assert d["verdict"] == r.verdict and d["seeds"] == [0, 1] and len(d["claims"]) == 2


@pytest.mark.slow
def test_default_clipping_study_reproduces():
    r = ex.clipping_study()
    assert r.verdict == "reproduced", r.table()
    base = r.baseline
    assert all(c.heldout < 0.5 * base for c in r.of("clip norm 1"))
