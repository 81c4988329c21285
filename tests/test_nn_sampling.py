"""affine_grid and grid_sample (framework/nn/_functional_sampling.py): identities derived by
hand, gradients by finite differences, and PyTorch's values and gradients when installed."""
import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from conftest import to_np


def test_identity_transform_reproduces_the_input():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    theta = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]] * 2)
    for ac in (False, True):
        grid = F.affine_grid(theta, (2, 3, 4, 5), align_corners=ac)
        assert tuple(grid.shape) == (2, 4, 5, 2)
        if ac:
            np.testing.assert_allclose(to_np(grid[0, 0, :, 0]), [-1, -0.5, 0, 0.5, 1], atol=1e-6)
        else:                                # pixel centres: (2j + 1) / W - 1
            np.testing.assert_allclose(to_np(grid[0, 0, :, 0]), [-0.8, -0.4, 0, 0.4, 0.8],
                                       atol=1e-6)
        for mode in ("bilinear", "nearest"):
            out = F.grid_sample(x, grid, mode=mode, align_corners=ac)
            np.testing.assert_allclose(to_np(out), to_np(x), atol=1e-4)


def test_padding_modes_and_shift():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    far = torch.tensor([[[[3.0, 0.0]]]])                # far right of the image, middle row
    assert F.grid_sample(x, far, align_corners=True).item() == 0.0          # zeros
    assert F.grid_sample(x, far, padding_mode="border", align_corners=True).item() == 3.0
    mid = torch.tensor([[[[0.0, 0.0]]]])                # the centre: the mean of four pixels
    assert F.grid_sample(x, mid, align_corners=True).item() == 2.5


def test_gradients():
    from framework.autograd import gradcheck
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    g = torch.tensor(rng.random((1, 2, 3, 2)) * 1.6 - 0.8, requires_grad=True)
    assert gradcheck(lambda a, b: F.grid_sample(a, b, align_corners=False), (x, g))
    theta = torch.tensor(rng.standard_normal((1, 2, 3)), requires_grad=True)
    assert gradcheck(lambda t: F.affine_grid(t, (1, 1, 3, 4), align_corners=False), (theta,))


def test_errors():
    with pytest.raises(ValueError, match="expected padding_mode"):
        F.grid_sample(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 1, 2), padding_mode="wrap")
    with pytest.raises(RuntimeError, match="grid_sampler\\(\\): expected 4D or 5D input"):
        F.grid_sample(torch.ones(1, 2, 2), torch.zeros(1, 1, 1, 2))
    with pytest.raises(ValueError, match="Expected a batch of 2D affine matrices"):
        F.affine_grid(torch.ones(1, 3, 3), (1, 1, 2, 2))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_against_pytorch(mode, padding_mode, align_corners):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    g = (rng.random((2, 4, 7, 2)) * 2.6 - 1.3).astype(np.float32)
    w = np.linspace(0, 1, 2 * 3 * 4 * 7, dtype=np.float32).reshape(2, 3, 4, 7)
    res = []
    for lib in (real, torch):
        xi, gi = lib.tensor(x, requires_grad=True), lib.tensor(g, requires_grad=True)
        out = lib.nn.functional.grid_sample(xi, gi, mode=mode, padding_mode=padding_mode,
                                            align_corners=align_corners)
        (out * lib.tensor(w)).sum().backward()
        gg = gi.grad.detach().cpu().numpy() if gi.grad is not None else np.zeros_like(g)
        res.append((out.detach().cpu().numpy(), xi.grad.detach().cpu().numpy(), gg))
    for want, got in zip(*res):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
