import doctest

import pytest

from gradcore.experiments import claims as C


def test_doctest_examples_run():
    assert doctest.testmod(C).failed == 0


def test_verdict_follows_the_claims():
    ok = C.claim("a", 1.0, 1.0, True)
    bad = C.claim("b", 1.0, 2.0, False)
    assert C.verdict([ok, ok]) == "reproduced"
    assert C.verdict([ok, bad]) == "partial"
    assert C.verdict([bad]) == "not reproduced"
    assert C.verdict([]) == "not reproduced"


def test_claim_formats_numbers_and_refuses_arrays():
    c = C.claim("growth", 2.70481382942, 2.7, True)
    assert c["paper"] == "2.705" and c["holds"] is True
    import numpy as np
    with pytest.raises(ValueError, match="holds"):
        C.claim("x", 1, 1, np.array([True, False]))
    with pytest.raises(ValueError, match="text"):
        C.claim("", 1, 1, True)
    assert "<td>yes</td>" in C.claims_html([c])
