"""Shared test helpers. Tests compare against NumPy in float64 or hand-derived values."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framework as torch  # noqa: E402

try:   # CI (CI=true): the same hypothesis examples every run, so a red run is reproducible
    from hypothesis import settings as _hsettings
    _hsettings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    if os.environ.get("CI"):
        _hsettings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass


def to_np(t):
    return np.asarray(t._data if isinstance(t, torch.Tensor) else t)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, check_dtype=None):
    """actual: Kiln tensor; expected: array-like (float64 reference)."""
    a = to_np(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    if check_dtype is not None:
        assert actual.dtype == check_dtype, f"dtype {actual.dtype} != {check_dtype}"
    np.testing.assert_allclose(a.astype(np.float64) if a.dtype != np.bool_ else a, e,
                               rtol=rtol, atol=atol)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
