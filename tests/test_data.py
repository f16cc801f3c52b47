import numpy as np
import pytest

from gradcore import data


def test_minmax_known_bounds_pixels():
    px = np.array([[0, 128, 255], [255, 0, 64]], np.uint8)
    y = data.minmax_scale(px, 0, 255)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, px / 255.0, rtol=1e-6)


def test_minmax_fitted_per_feature_and_range():
    x = np.array([[1.0, 10.0], [3.0, 30.0], [2.0, 20.0]])
    y = data.minmax_scale(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, [[0, 0], [1, 1], [0.5, 0.5]])
    s = data.MinMaxScaler(feature_range=(-1.0, 1.0)).fit(x)
    np.testing.assert_allclose(s.transform(np.array([[2.0, 40.0]])), [[0.0, 2.0]])
    np.testing.assert_allclose(s.inverse_transform(s.transform(x)), x)


def test_standardize_fit_transform():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(500, 4))
    y = data.standardize(x)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(0), 1, rtol=1e-12)
    s = data.Standardizer().fit(x[:250])
    z = s.transform(x[250:])
    np.testing.assert_allclose(z, (x[250:] - x[:250].mean(0)) / x[:250].std(0))
    np.testing.assert_allclose(s.inverse_transform(z), x[250:])
    assert data.standardize(x.astype(np.float32)).dtype == np.float32
    assert data.standardize(x, dtype="float32").dtype == np.float32


def test_constant_features_and_nan():
    x = np.array([[1.0, 2.0], [1.0, 4.0]])
    np.testing.assert_allclose(data.minmax_scale(x), [[0, 0], [0, 1]])
    np.testing.assert_allclose(data.standardize(x), [[0, -1], [0, 1]])
    x[0, 1] = np.nan
    assert np.isnan(data.standardize(x)[:, 1]).all()


def test_data_bad_input():
    with pytest.raises(RuntimeError, match="call fit"):
        data.Standardizer().transform(np.ones((2, 2)))
    with pytest.raises(ValueError, match="expected data with 2 feature axis"):
        data.Standardizer().fit(np.ones((3, 2))).transform(np.ones((3, 3)))
    with pytest.raises(ValueError, match="lo < hi"):
        data.minmax_scale(np.ones((2, 2)), 5, 5)
    with pytest.raises(ValueError, match="at least one sample"):
        data.standardize(np.ones((0, 3)))
    with pytest.raises(TypeError, match="numeric"):
        data.standardize(np.array([["a"]]))
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        data.standardize(np.ones((2, 2, 2)))
    with pytest.raises(TypeError, match="expected 'float32' or 'float64'"):
        data.standardize(np.ones((2, 2)), dtype="int32")
    with pytest.raises(ValueError, match="feature_range"):
        data.MinMaxScaler(feature_range=(1.0, 0.0))
