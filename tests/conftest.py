"""Shared test helpers. Tests compare against NumPy in float64 or hand-derived values."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framework as torch  # noqa: E402

# KILN_TEST_DEVICE=interpret: the eager suites run with the interpret device as the default
# device (torch.set_default_device), so every factory call in a test makes device tensors.
# tests/test_interpret_suite.py starts such a run in a child process (TRITON_INTERPRET=1, torch
# blocked); tests/_interp_suite.py lists what it deselects there, and why.
TEST_DEVICE = os.environ.get("KILN_TEST_DEVICE") or None
if TEST_DEVICE:
    from _interp import block_torch   # each xdist worker too: the path must stay torch-free
    block_torch()
    torch.set_default_device(TEST_DEVICE)
    # (compile()'s default backend follows the tensors' device: 'interpret' here)

try:   # CI (CI=true): the same hypothesis examples every run, so a red run is reproducible
    from hypothesis import settings as _hsettings
    _hsettings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    if os.environ.get("CI"):
        _hsettings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass


def to_np(t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()._data if t.device.type != "cpu" else t._data
    return np.asarray(t)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, check_dtype=None):
    """actual: Kiln tensor; expected: array-like (float64 reference)."""
    a = to_np(actual)
    e = to_np(expected)     # (np.asarray refuses a tensor that requires grad, as in PyTorch)
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


def pytest_collection_modifyitems(config, items):
    """The interpret run (test_interpret_suite.py: a child process on two workers of its own)
    goes last: under pytest-xdist it then has the cores to itself, instead of holding up the
    tests queued behind it on one worker while competing with the other."""
    last = [i for i in items if i.nodeid.startswith("tests/test_interpret_suite.py::test_eager")]
    if last:
        items[:] = [i for i in items if i not in last] + last
