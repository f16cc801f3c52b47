import numpy as np

import gradcore


def test_textbook_clip():
    g = np.array([16.0, 12.0, -8.0])
    norm = gradcore.clip_grad_norm_(g, max_norm=5.0)
    assert abs(norm - 21.5407) < 1e-4
    np.testing.assert_allclose(g, [3.7139, 2.7854, -1.8570], atol=1e-4)


def test_info_reports_simd_and_blas():
    d = gradcore.info()
    assert d["simd"] in ("avx512", "avx2+fma", "baseline")
    assert "blas" in d and d["version"] == gradcore.__version__
