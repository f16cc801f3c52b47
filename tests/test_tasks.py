import math

import numpy as np
import pytest

from gradcore import tasks


def test_adding_le_structure_and_target():
    x, y = next(tasks.adding(T=20, batch_size=64, seed=3))
    assert x.shape == (20, 64, 2) and y.shape == (64, 1) and x.dtype == np.float32
    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=0) == 2)
    assert np.all(marks[:10].sum(axis=0) == 1) and np.all(marks[10:].sum(axis=0) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=0), rtol=1e-6)
    assert x[:, :, 0].min() >= 0.0 and x[:, :, 0].max() <= 1.0


def test_adding_hochreiter_structure_and_target():
    x, y = next(tasks.adding(T=30, batch_size=200, seed=1, variant="hochreiter", dtype=np.float64))
    marks = x[:, :, 1]
    ones = marks == 1.0
    assert np.all(ones.sum(axis=0) == 2)
    assert np.all(ones[:10].sum(axis=0) >= 1) and np.all(ones[15:].sum(axis=0) == 0)
    vals = (x[:, :, 0] * ones).sum(axis=0)
    np.testing.assert_allclose(y[:, 0], 0.5 + vals / 4.0)
    assert y.min() >= 0.0 and y.max() <= 1.0


@pytest.mark.parametrize("variant, const", [("le", 1.0), ("hochreiter", 0.5)])
def test_adding_baseline_matches_monte_carlo(variant, const):
    _, y = tasks.adding_batch(np.random.default_rng(0), 50, 100_000, variant, np.float64)
    mse = float(np.mean((y - const) ** 2))
    b = tasks.adding_baseline(variant)
    assert abs(mse - b.loss) < 0.02 * b.loss
    # and the constant is the best one: the mean of the targets
    assert abs(float(y.mean()) - const) < 0.01


def test_generators_are_seeded():
    a = list(tasks.temporal_order(T=40, batch_size=8, seed=5, n_batches=3))
    b = list(tasks.temporal_order(T=40, batch_size=8, seed=5, n_batches=3))
    c = list(tasks.temporal_order(T=40, batch_size=8, seed=6, n_batches=3))
    assert len(a) == 3
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])
    # consecutive batches differ
    assert not np.array_equal(a[0][0], a[1][0])


@pytest.mark.parametrize("bits", [2, 3])
def test_temporal_order_labels_spell_the_relevant_symbols(bits):
    T = 60
    x, y = tasks.temporal_order_batch(np.random.default_rng(2), T, 500, bits)
    assert x.shape == (T, 500, 6) and y.dtype == np.int64
    np.testing.assert_array_equal(x.sum(axis=2), 1.0)
    sym = x.argmax(axis=2)
    for b in range(500):
        rel = [s for s in sym[:, b] if s < 2]
        assert len(rel) == bits
        assert y[b] == int("".join(str(s) for s in rel), 2)
    counts = np.bincount(y, minlength=2 ** bits)
    assert counts.min() > 500 / 2 ** bits * 0.6  # all classes appear about equally often
    base = tasks.temporal_order_baseline(bits)
    assert base.loss == pytest.approx(math.log(2 ** bits)) and base.accuracy == 1.0 / 2 ** bits


@pytest.mark.parametrize("T", [10, 50, 100, 137])
def test_temporal_order_windows_are_the_papers(T):
    # Hochreiter & Schmidhuber 1997 (6a, 6b) and Pascanu et al. 2013, scaled to T
    assert tasks.temporal_order_windows(100, 2) == [(10, 20), (50, 60)]
    assert tasks.temporal_order_windows(100, 3) == [(10, 20), (33, 43), (66, 76)]
    fractions = {2: [(0.1, 0.2), (0.5, 0.6)], 3: [(0.1, 0.2), (0.33, 0.43), (0.66, 0.76)]}
    for bits, fr in fractions.items():
        wins = tasks.temporal_order_windows(T, bits)
        x, _ = tasks.temporal_order_batch(np.random.default_rng(T), T, 2000, bits)
        sym = x.argmax(axis=2)
        t, b = np.nonzero(sym < 2)
        order = np.lexsort((t, b))
        pos = t[order].reshape(2000, bits)  # the relevant positions of each sequence, in time order
        for k, ((lo, hi), (a, c)) in enumerate(zip(wins, fr)):
            assert lo == math.floor(a * T + 1e-9) and hi == max(math.floor(c * T + 1e-9), lo + 1)
            assert pos[:, k].min() >= lo and pos[:, k].max() < hi
            if hi - lo > 1:  # every step of the window is used
                assert set(pos[:, k]) == set(range(lo, hi))


def test_copy_task_structure_and_baseline():
    T, K, n = 15, 4, 5
    x, y = tasks.copy_batch(np.random.default_rng(0), T, 7, n, K)
    total = T + 2 * K
    assert x.shape == (total, 7, n + 2) and y.shape == (total, 7)
    sym = x.argmax(axis=2)
    np.testing.assert_array_equal(y[-K:], sym[:K])
    assert np.all(y[:-K] == 0)
    assert np.all(sym[K + T - 1] == n + 1)
    assert np.all(sym[K:K + T - 1] == 0) and np.all(sym[-K:] == 0)
    # the documented baseline is what that predictor scores
    p = np.zeros((total, n + 2))
    p[:-K, 0] = 1.0
    p[-K:, 1:n + 1] = 1.0 / n
    with np.errstate(divide="ignore"):
        ce = -np.log(p[np.arange(total)[:, None], y])
    assert np.mean(ce) == pytest.approx(tasks.copy_baseline(T, n, K).loss)


def test_registry_and_bad_input():
    assert set(tasks.TASKS) >= {"adding", "temporal_order", "temporal_order3", "copy"}
    spec = tasks.get_task("copy")
    x, y = next(spec.make(12, 3, 0, np.float32))
    assert x.shape[2] == spec.input_size and spec.every_step
    with pytest.raises(ValueError, match="valid tasks"):
        tasks.get_task("nope")
    with pytest.raises(ValueError, match="variant"):
        tasks.adding(T=10, variant="x")
    with pytest.raises(ValueError, match="T"):
        tasks.adding(T=1)
    with pytest.raises(TypeError, match="batch_size"):
        tasks.temporal_order(T=20, batch_size=2.5)
    with pytest.raises(ValueError, match="bits"):
        tasks.temporal_order(T=20, bits=4)
