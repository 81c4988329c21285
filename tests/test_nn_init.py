"""nn.init: formulas, bounds, statistics, errors."""
import math

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.nn import init
from conftest import assert_close, to_np


def test_fan_and_gain():
    assert init._calculate_fan_in_and_fan_out(torch.randn(2, 3, 4, 5)) == (60, 40)
    assert init._calculate_fan_in_and_fan_out(torch.randn(7, 3)) == (3, 7)
    with pytest.raises(ValueError):
        init._calculate_fan_in_and_fan_out(torch.randn(3))
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("conv2d") == 1 and init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError):
        init.calculate_gain("swish")
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", "x")


def test_fills_return_tensor_and_keep_identity():
    w = nn.Parameter(torch.empty(3, 4))
    for f, args, val in ((init.constant_, (2.5,), 2.5), (init.ones_, (), 1.0),
                         (init.zeros_, (), 0.0)):
        r = f(w, *args)
        assert r is w and (to_np(w) == val).all()
        assert w.requires_grad and w.grad_fn is None
    assert init.eye_(torch.empty(2, 3)).tolist() == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError):
        init.eye_(torch.empty(2, 2, 2))
    d = init.dirac_(torch.empty(2, 2, 3))
    np.testing.assert_array_equal(to_np(d), [[[0, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]]])
    x = torch.randn(1, 2, 5)
    from framework.nn import functional as F
    if hasattr(F, "conv1d"):
        assert_close(F.conv1d(x, d, padding=1), to_np(x))   # dirac conv is the identity
    with pytest.raises(ValueError):
        init.dirac_(torch.empty(2, 2))


def test_random_inits_statistics():
    torch.manual_seed(0)
    t = torch.empty(400, 300)
    init.uniform_(t, -0.5, 2.0)
    a = to_np(t)
    assert a.min() >= -0.5 and a.max() <= 2.0 and abs(a.mean() - 0.75) < 0.01
    init.normal_(t, 1.0, 0.5)
    assert abs(to_np(t).mean() - 1.0) < 0.01 and abs(to_np(t).std() - 0.5) < 0.01
    init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * math.sqrt(6 / 700)
    assert np.abs(to_np(t)).max() <= bound and np.abs(to_np(t)).max() > 0.99 * bound
    init.xavier_normal_(t)
    assert abs(to_np(t).std() - math.sqrt(2 / 700)) < 0.002
    init.kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert np.abs(to_np(t)).max() <= bound and np.abs(to_np(t)).max() > 0.99 * bound
    init.kaiming_normal_(t, mode="fan_out")
    assert abs(to_np(t).std() - math.sqrt(2 / (1 + 0.01 ** 2)) / math.sqrt(400)) < 0.002
    with pytest.raises(ValueError):
        init.kaiming_normal_(t, mode="fan_avg")
    init.trunc_normal_(t, mean=0.5, std=1.0, a=-1.0, b=1.0)
    a = to_np(t)
    assert a.min() >= -1.0 and a.max() <= 1.0 and a.mean() > 0.05   # skewed towards the mean


def test_orthogonal_and_sparse():
    torch.manual_seed(0)
    q = init.orthogonal_(torch.empty(3, 5), gain=2.0)
    assert_close(torch.tensor(to_np(q) @ to_np(q).T), 4 * np.eye(3), atol=1e-5)
    q2 = init.orthogonal_(torch.empty(6, 2, 2))
    m = to_np(q2).reshape(6, 4)
    assert_close(torch.tensor(m.T @ m), np.eye(4), atol=1e-5)
    s = init.sparse_(torch.empty(10, 4), sparsity=0.3)
    zeros_per_col = (to_np(s) == 0).sum(0)
    assert (zeros_per_col == 3).all()
    with pytest.raises(ValueError):
        init.sparse_(torch.empty(3), 0.5)


def test_seed_reproducible_and_default_layer_init():
    torch.manual_seed(5)
    a = to_np(nn.Linear(4, 3).weight).copy()
    torch.manual_seed(5)
    b = to_np(nn.Linear(4, 3).weight)
    np.testing.assert_array_equal(a, b)
    e = nn.Embedding(1000, 8)
    assert abs(to_np(e.weight).std() - 1.0) < 0.05       # N(0, 1)
    p = nn.PReLU(4)
    assert to_np(p.weight).tolist() == [0.25] * 4


def test_against_torch_formulas():
    real = pytest.importorskip("torch")
    for nl, prm in (("leaky_relu", 0.3), ("tanh", None), ("relu", None)):
        assert init.calculate_gain(nl, prm) == real.nn.init.calculate_gain(nl, prm)


def test_init_on_integer_tensor_and_messages():
    t = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(NotImplementedError, match="normal_kernel_cpu"):
        init.normal_(t)
    with pytest.raises(NotImplementedError, match="check_uniform_bounds"):
        init.uniform_(t)
    with pytest.raises(ValueError, match=r"please use one of \['fan_in', 'fan_out'\]"):
        init.kaiming_uniform_(torch.empty(3, 4), mode="bad")
    with pytest.warns(FutureWarning, match="`nn.init.normal` is now deprecated in favor of "
                                           "`nn.init.normal_`"):
        init.normal(torch.empty(2))
    # seeded values are PyTorch's cpu stream (a device draws from its own generator)
    torch.manual_seed(0)
    p = nn.Parameter(torch.zeros(2, 3, device="cpu"))
    assert init.normal_(p) is p and p.requires_grad
    assert_close(p, [[1.5410, -0.2934, -2.1788], [0.5684, -1.0845, -1.3986]], atol=1e-4)
