"""Mean-field fixed point to its tolerance; depth profiles with biases, input variance and non-square layers."""

import math
import warnings

import numpy as np
import pytest

from gradcore.experiments import depth_profile, theory


def test_fixed_point_converges_near_the_critical_line():
    # sigma_b^2 = 0 just above sigma_w^2 = 1: the map contracts at a rate ~0.999
    fp = theory.fixed_point(1.001, 0.0, "tanh", info=True)
    assert fp.converged and fp.rel_error <= 1e-12
    assert theory.chi1(1.001, "tanh", fp.q) == pytest.approx(1.0000003, abs=1e-6)
    assert theory.mean_field(1.001, 0.0, "tanh").chi_1 == pytest.approx(1.0000003, abs=1e-6)
    # it is a fixed point to the tolerance
    assert abs(theory.variance_map(fp.q, 1.001, 0.0, "tanh") - fp.q) <= 1e-12 * fp.q


@pytest.mark.parametrize("sw, sb, act", [(1.5, 0.05, "tanh"), (1.76, 0.05, "tanh"), (3.0, 0.3, "tanh"),
                                         (1.0, 0.5, "relu"), (1.0000001, 0.0, "tanh")])
def test_fixed_point_to_relative_tolerance(sw, sb, act):
    fp = theory.fixed_point(sw, sb, act, info=True)
    assert fp.converged and 0 < fp.q < math.inf
    assert abs(theory.variance_map(fp.q, sw, sb, act) - fp.q) <= 1e-12 * fp.q


def test_fixed_point_limits_and_not_converging_says_so():
    assert theory.fixed_point(0.8, 0.0, "tanh") == 0.0
    assert theory.fixed_point(1.0, 0.0, "tanh") == 0.0
    assert theory.fixed_point(2.5, 0.0, "relu") == math.inf
    assert theory.fixed_point(3.0, 0.0, "identity") == math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theory.fixed_point(1.001, 0.0, "tanh")  # converges: no warning
    # a tolerance below what double precision can certify is reported, not faked
    with pytest.warns(theory.FixedPointWarning, match="did not converge"):
        fp = theory.fixed_point(1.001, 0.0, "tanh", tol=1e-17, info=True)
    assert not fp.converged and fp.q == pytest.approx(0.00050020813, rel=1e-8)
    with pytest.raises(ValueError, match="max_iter"):
        theory.fixed_point(1.5, 0.05, "tanh", max_iter=0)


def test_depth_profile_biases_input_variance_and_widths():
    p = depth_profile(6, 64, "tanh", "xavier", batch=256, seed=3, bias_var=0.3, input_var=4.0,
                      widths=[32, 128, 64, 96, 64, 48, 16])
    assert [w.shape for w in p.weights] == [(128, 32), (64, 128), (96, 64), (64, 96), (48, 64), (16, 48)]
    assert p.params["bias_var"] == 0.3 and p.params["input_var"] == 4.0
    assert "sigma_b^2 0.3" in p.title
    assert len(p.activation_norms) == 6 and np.all(np.isfinite(p.preact_grad_norms))
    # the theory sees the bias and the input variance: q_1 = sigma_w^2 * 4 + 0.3
    assert p.q[0] == pytest.approx(p.sigma_w2[0] * 4.0 + 0.3, rel=0.05)
    # measured activation norms follow the mean-field prediction (sampling error at these sizes)
    np.testing.assert_allclose(p.activation_norms, p.predicted_activation_norms, rtol=0.15)
    assert p.mean_field.sigma_b2 == 0.3
    # the bias changes the forward pass: same seed without bias differs
    q = depth_profile(6, 64, "tanh", "xavier", batch=256, seed=3, input_var=4.0,
                      widths=[32, 128, 64, 96, 64, 48, 16])
    assert not np.allclose(p.activation_norms, q.activation_norms)
    assert q.q[0] == pytest.approx(q.sigma_w2[0] * 4.0, rel=0.05)


def test_depth_profile_order_chaos_at_the_critical_line():
    # Schoenholz et al. 2017: tanh, sigma_b^2 = 0.05, critical sigma_w^2 ~ 1.76
    lo = theory.mean_field(1.5, 0.05, "tanh").chi_1
    hi = theory.mean_field(2.1, 0.05, "tanh").chi_1
    crit = theory.mean_field(1.76, 0.05, "tanh").chi_1
    assert lo < 1 < hi and crit == pytest.approx(1.0, abs=2e-3)


def test_depth_profile_bad_arguments():
    with pytest.raises(ValueError, match="bias_var"):
        depth_profile(3, 8, bias_var=-1.0)
    with pytest.raises(ValueError, match="input_var"):
        depth_profile(3, 8, input_var=0.0)
    with pytest.raises(ValueError, match="widths"):
        depth_profile(3, 8, widths=[8, 8])
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        depth_profile(3, 8, widths=[8, 0, 8, 8])


def test_docstring_examples_run():
    import doctest

    from gradcore import tasks
    from gradcore.experiments import clipping, depth

    for mod in (theory, depth, tasks, clipping):
        assert doctest.testmod(mod).failed == 0, mod.__name__
