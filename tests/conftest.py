import numpy as np
import pytest

import gradcore


@pytest.fixture(params=["c", "numpy"])
def backend(request):
    """Run a test on both backends."""
    with gradcore.use_backend(request.param):
        yield request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param
