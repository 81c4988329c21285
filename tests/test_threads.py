"""torch.get_num_threads / set_num_threads: the count reaches NumPy's OpenBLAS and the chunking of
generated programs' element-wise runs; bad counts raise PyTorch's errors and change nothing."""
import os

import numpy as np
import pytest

import framework as torch
from compiler.codegen import parallel
from runtime import threads


@pytest.fixture
def restore():
    before = torch.get_num_threads(), parallel.threads
    yield
    torch.set_num_threads(before[0])
    parallel.set_threads(before[1])


def _blas_threads():
    """OpenBLAS's own thread count (its get_num_threads), or None without that entry point."""
    if threads._blas_setter() is None:
        return None
    import ctypes
    import glob
    here = os.path.dirname(np.__file__)
    for path in glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                     "openblas_get_num_threads"):
            g = getattr(lib, name, None)
            if g is not None:
                g.restype = ctypes.c_int
                return g()
    return None


def test_default_is_one_per_core():
    assert torch.get_num_threads() >= 1
    if threads._state["n"] is None:
        assert torch.get_num_threads() == (os.cpu_count() or 1)


def test_set_num_threads_reaches_blas_and_programs(restore):
    torch.set_num_threads(1)
    assert torch.get_num_threads() == 1 and parallel.threads == 1
    blas = _blas_threads()
    if blas is not None:
        assert blas == 1
    # a generated program with a large element-wise run (chunked when threads > 1) gives the
    # same values on one thread and on two
    f = torch.compile(lambda a, b: (a * 2 + b).exp().sum())
    a = torch.from_numpy(np.linspace(-1, 1, 1 << 18, dtype=np.float32))
    b = torch.from_numpy(np.linspace(0, 1, 1 << 18, dtype=np.float32))
    one = f(a, b).item()
    torch.set_num_threads(2)
    assert torch.get_num_threads() == 2 and parallel.threads == 2
    if blas is not None:
        assert _blas_threads() == 2
    assert f(a, b).item() == one
    ref = np.exp(a.numpy().astype(np.float64) * 2 + b.numpy()).sum()
    assert abs(one - ref) / ref < 1e-5


def test_bad_counts_raise_and_change_nothing(restore):
    before = torch.get_num_threads()
    for bad, msg in ((0, "positive integer"), (-2, "positive integer"),
                     (1.5, "expects an int, but got float"), (True, "expects an int, but got bool")):
        with pytest.raises(RuntimeError, match=msg):
            torch.set_num_threads(bad)
    assert torch.get_num_threads() == before
