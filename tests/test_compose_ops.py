"""meshgrid, cartesian_prod, block_diag, rot90, diff, Tensor.unfold and torch.special
(framework/ops_compose.py): hand-derived values, gradients by finite differences, and a
cross-check against PyTorch when it is installed."""
import numpy as np
import pytest

import framework as torch
from conftest import to_np


def test_values():
    a, b = torch.meshgrid(torch.arange(3), torch.arange(2), indexing="ij")
    assert a.tolist() == [[0, 0], [1, 1], [2, 2]] and b.tolist() == [[0, 1], [0, 1], [0, 1]]
    a, b = torch.meshgrid(torch.arange(3), torch.arange(2), indexing="xy")
    assert a.tolist() == [[0, 1, 2], [0, 1, 2]] and b.tolist() == [[0, 0, 0], [1, 1, 1]]
    assert torch.cartesian_prod(torch.tensor([1, 2]), torch.tensor([3, 4])).tolist() == \
        [[1, 3], [1, 4], [2, 3], [2, 4]]
    assert torch.block_diag(torch.ones(1, 2), torch.tensor([[5.0], [6.0]])).tolist() == \
        [[1, 1, 0], [0, 0, 5], [0, 0, 6]]
    m = torch.tensor([[1, 2], [3, 4]])
    assert torch.rot90(m).tolist() == [[2, 4], [1, 3]]
    assert torch.rot90(m, 2).tolist() == [[4, 3], [2, 1]]
    assert m.rot90(-1).tolist() == [[3, 1], [4, 2]]
    assert torch.diff(torch.tensor([1, 4, 9, 16])).tolist() == [3, 5, 7]
    assert torch.tensor([1, 4, 9, 16]).diff(n=2).tolist() == [2, 2]
    assert torch.diff(torch.tensor([True, False, False])).tolist() == [True, False]
    assert torch.arange(6).unfold(0, 2, 2).tolist() == [[0, 1], [2, 3], [4, 5]]
    assert torch.arange(5).unfold(0, 3, 1).tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert torch.special.expit(torch.tensor([0.0])).tolist() == [0.5]
    np.testing.assert_allclose(to_np(torch.special.entr(torch.tensor([0.5, 0.0]))),
                               [0.5 * np.log(2), 0.0], rtol=1e-6)


def test_errors():
    with pytest.raises(RuntimeError, match="indexing must be one of"):   # (torch's class)
        torch.meshgrid(torch.arange(2), indexing="yx")
    with pytest.raises(RuntimeError, match="expected rotation dims to be different"):
        torch.rot90(torch.ones(2, 2), 1, (0, 0))
    with pytest.raises(RuntimeError, match="maximum size for tensor at dimension 0 is 3 but "
                                           "size is 4"):
        torch.arange(3).unfold(0, 4, 1)
    with pytest.raises(RuntimeError, match="step is 0 but must be > 0"):
        torch.arange(3).unfold(0, 1, 0)


def test_gradients():
    from framework.autograd import gradcheck
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: torch.rot90(t, 1) * 2, (x,))
    assert gradcheck(lambda t: t.unfold(1, 2, 1) ** 2, (x,))
    assert gradcheck(lambda t: torch.diff(t, n=2, dim=1), (x,))
    assert gradcheck(lambda t: torch.block_diag(t, t[:1] * 3), (x,))


_CASES = {
    "meshgrid xy 3": lambda L: L.stack(L.meshgrid(L.arange(2), L.arange(3), L.arange(2),
                                                  indexing="xy")),
    "cartesian 3": lambda L: L.cartesian_prod(L.arange(2), L.arange(3), L.arange(2)),
    "block_diag": lambda L: L.block_diag(L.ones(2, 2), L.tensor([5, 6]).float(), L.tensor(7.),
                                         L.arange(6.).reshape(3, 2)),
    "rot90 3d": lambda L: L.rot90(L.arange(24.).reshape(2, 3, 4), 3, (2, 0)),
    "diff append": lambda L: L.diff(L.arange(12.).reshape(3, 4) ** 2, dim=0,
                                    append=L.ones(2, 4)),
    "unfold 3d": lambda L: L.arange(60.).reshape(3, 4, 5).unfold(2, 2, 3),
    "special": lambda L: L.stack([L.special.erfc(L.arange(5.) / 4),
                                  L.special.logit(L.arange(1., 6.) / 6),
                                  L.special.xlogy(L.arange(5.), L.arange(1., 6.))]),
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_against_pytorch(name):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    want, got = _CASES[name](real), _CASES[name](torch)
    assert tuple(got.shape) == tuple(want.shape) and str(got.dtype) == str(want.dtype)
    np.testing.assert_allclose(to_np(got), want.numpy(), rtol=1e-6, atol=1e-7)
