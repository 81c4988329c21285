"""BatchNorm / InstanceNorm / LayerNorm / GroupNorm against NumPy float64 references, with
running statistics in train and eval mode."""
import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from framework.autograd import gradcheck
from conftest import assert_close, to_np


def T(a, rg=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=rg)


@pytest.fixture
def r():
    return np.random.default_rng(3)


def ref_norm(x, axes, eps):
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def test_batchnorm2d_train_then_eval(r):
    bn = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.copy_(T([1.0, 2.0, 0.5]))
        bn.bias.copy_(T([0.0, -1.0, 3.0]))
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = r.standard_normal((4, 3, 5, 2)) * 2 + step
        y = bn(T(x))
        ref = ref_norm(x, (0, 2, 3), 1e-5) * np.array([1, 2, .5]).reshape(1, 3, 1, 1) + \
            np.array([0, -1, 3.]).reshape(1, 3, 1, 1)
        assert_close(y, ref, atol=1e-12)
        n = 4 * 5 * 2
        rm = 0.9 * rm + 0.1 * x.mean(axis=(0, 2, 3))
        rv = 0.9 * rv + 0.1 * x.var(axis=(0, 2, 3)) * n / (n - 1)   # unbiased
        assert_close(bn.running_mean, rm, atol=1e-12)
        assert_close(bn.running_var, rv, atol=1e-12)
        assert int(bn.num_batches_tracked) == step + 1
    bn.eval()
    x = r.standard_normal((2, 3, 4, 4))
    ref = (x - rm.reshape(1, 3, 1, 1)) / np.sqrt(rv.reshape(1, 3, 1, 1) + 1e-5) * \
        np.array([1, 2, .5]).reshape(1, 3, 1, 1) + np.array([0, -1, 3.]).reshape(1, 3, 1, 1)
    assert_close(bn(T(x)), ref, atol=1e-12)
    assert int(bn.num_batches_tracked) == 3          # eval does not count
    assert_close(bn.running_mean, rm, atol=1e-12)     # and does not update


def test_batchnorm_momentum_none_is_cumulative_average(r):
    bn = nn.BatchNorm1d(2, momentum=None).double()
    xs = [r.standard_normal((5, 2)) + i for i in range(4)]
    for x in xs:
        bn(T(x))
    assert_close(bn.running_mean, np.mean([x.mean(0) for x in xs], axis=0), atol=1e-12)
    assert_close(bn.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0), atol=1e-12)


def test_batchnorm_without_running_stats_and_affine(r):
    bn = nn.BatchNorm1d(3, affine=False, track_running_stats=False).double()
    assert bn.weight is None and bn.running_mean is None
    bn.eval()   # no running stats: eval still uses the batch statistics
    x = r.standard_normal((6, 3, 4))
    assert_close(bn(T(x)), ref_norm(x, (0, 2), 1e-5), atol=1e-12)
    assert [n for n, _ in nn.BatchNorm2d(4).named_buffers()] == \
        ["running_mean", "running_var", "num_batches_tracked"]
    sd = nn.BatchNorm2d(4).state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].dtype == torch.int64


def test_batchnorm_reprs_and_errors():
    assert repr(nn.BatchNorm2d(64)) == \
        "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    assert repr(nn.BatchNorm1d(3, momentum=None, affine=False)) == \
        "BatchNorm1d(3, eps=1e-05, momentum=None, affine=False, bias=False, " \
        "track_running_stats=True)"       # (PyTorch 2.13 prints bias: whether there is one)
    assert repr(nn.BatchNorm3d(2, bias=False)) == \
        "BatchNorm3d(2, eps=1e-05, momentum=0.1, affine=True, bias=False, track_running_stats=True)"
    assert repr(nn.GroupNorm(2, 4, affine=False)) == \
        "GroupNorm(2, 4, eps=1e-05, affine=False, bias=False)"
    bn = nn.BatchNorm2d(3)
    before = to_np(bn.running_mean).copy()
    with pytest.raises(ValueError, match="expected 4D input \\(got 3D input\\)"):
        bn(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="expected 2D or 3D input \\(got 4D input\\)"):
        nn.BatchNorm1d(3)(torch.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        nn.BatchNorm1d(3)(torch.randn(1, 3))
    with pytest.raises(RuntimeError, match="running_mean should contain 4 elements not 3"):
        F.batch_norm(torch.randn(2, 4), torch.zeros(3), torch.ones(3), training=True)
    with pytest.raises(RuntimeError):
        bn(torch.randn(2, 5, 4, 4))
    np.testing.assert_array_equal(to_np(bn.running_mean), before)
    assert int(bn.num_batches_tracked) == 0
    # the functional form has no rank check of its own: 1-D input has no dim 1 (IndexError)
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.batch_norm(torch.randn(3), torch.zeros(3), torch.ones(3))
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.batch_norm(torch.randn(3), None, None, training=True)
    with pytest.raises(RuntimeError, match="must be defined in evaluation mode"):
        F.batch_norm(torch.randn(3), None, None, training=False)


def test_batchnorm_gradcheck(r):
    x = T(r.standard_normal((4, 3, 2)), True)
    w = T(r.standard_normal(3), True)
    b = T(r.standard_normal(3), True)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    rm, rv = T(r.standard_normal(3)), T(r.random(3) + 0.5)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), (x, w, b))


def test_layer_norm(r):
    x = r.standard_normal((2, 3, 4, 5))
    w, b = r.standard_normal((4, 5)), r.standard_normal((4, 5))
    y = F.layer_norm(T(x), (4, 5), T(w), T(b), eps=1e-3)
    assert_close(y, ref_norm(x, (2, 3), 1e-3) * w + b, atol=1e-12)
    ln = nn.LayerNorm(5)
    assert repr(ln) == "LayerNorm((5,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert to_np(ln.weight).tolist() == [1.0] * 5 and to_np(ln.bias).tolist() == [0.0] * 5
    assert repr(nn.LayerNorm([3, 4], elementwise_affine=False)) == \
        "LayerNorm((3, 4), eps=1e-05, elementwise_affine=False, bias=False)"
    nb = nn.LayerNorm(4, bias=False)
    assert nb.bias is None and [n for n, _ in nb.named_parameters()] == ["weight"]
    xt = T(r.standard_normal((3, 4)), True)
    wt, bt = T(r.standard_normal(4), True), T(r.standard_normal(4), True)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (4,), w, b), (xt, wt, bt))
    with pytest.raises(RuntimeError, match="expected input with shape \\[\\*, 4\\]"):
        F.layer_norm(torch.randn(2, 3), (4,))
    out = nn.LayerNorm(3)(torch.randn(2, 3, requires_grad=True))
    assert out.grad_fn.name() == "NativeLayerNormBackward0"


def test_group_norm(r):
    x = r.standard_normal((2, 6, 3, 2))
    w, b = r.standard_normal(6), r.standard_normal(6)
    y = F.group_norm(T(x), 3, T(w), T(b))
    ref = ref_norm(x.reshape(2, 3, -1), (2,), 1e-5).reshape(x.shape) * w.reshape(1, 6, 1, 1) + \
        b.reshape(1, 6, 1, 1)
    assert_close(y, ref, atol=1e-12)
    gn = nn.GroupNorm(2, 4)
    assert repr(gn) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    xt = T(r.standard_normal((2, 4, 3)), True)
    assert gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b),
                     (xt, T(r.standard_normal(4), True), T(r.standard_normal(4), True)))
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(torch.randn(2, 3, 4), 2)
    with pytest.raises(ValueError,
                       match=r"num_channels \(3\) must be divisible by num_groups \(2\)"):
        nn.GroupNorm(2, 3)


def test_instance_norm(r):
    x = r.standard_normal((3, 4, 5, 2))
    m = nn.InstanceNorm2d(4)
    assert repr(m) == \
        "InstanceNorm2d(4, eps=1e-05, momentum=0.1, affine=False, bias=False, " \
        "track_running_stats=False)"
    assert_close(m(T(x)), ref_norm(x, (2, 3), 1e-5), atol=1e-12)
    # unbatched (C, L)
    x1 = r.standard_normal((4, 6))
    assert_close(nn.InstanceNorm1d(4)(T(x1)), ref_norm(x1, (1,), 1e-5), atol=1e-12)
    # running statistics: batch average of per-instance stats, variance unbiased
    t = nn.InstanceNorm1d(2, track_running_stats=True, affine=True).double()
    xs = r.standard_normal((3, 2, 5))
    t(T(xs))
    assert_close(t.running_mean, 0.1 * xs.mean(2).mean(0), atol=1e-12)
    assert_close(t.running_var, 0.9 + 0.1 * xs.var(2, ddof=1).mean(0), atol=1e-12)
    t.eval()
    xe = r.standard_normal((1, 2, 5))
    rm, rv = to_np(t.running_mean), to_np(t.running_var)
    assert_close(t(T(xe)), (xe - rm.reshape(1, 2, 1)) / np.sqrt(rv.reshape(1, 2, 1) + 1e-5),
                 atol=1e-12)
    xt = T(r.standard_normal((2, 3, 4)), True)
    assert gradcheck(lambda x: F.instance_norm(x), (xt,))


def test_instance_norm_seed_behaviour():
    # seed 5.1: running stats start at 0 / 1; a 1x1 spatial input is rejected when training
    norm = nn.InstanceNorm2d(3, track_running_stats=True)
    assert norm.running_mean.tolist() == [0., 0., 0.]
    assert norm.running_var.tolist() == [1., 1., 1.]
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        norm(torch.randn(1, 3, 1, 1))
    with pytest.raises(ValueError, match="Expected more than 1 spatial element"):
        norm(torch.randn(8, 3, 1, 1))
    assert norm.running_mean.tolist() == [0., 0., 0.]
    norm.eval()
    out = norm(torch.zeros(8, 3, 1, 1))
    assert out.shape == (8, 3, 1, 1) and np.all(to_np(out) == 0)
    with pytest.raises(ValueError, match="expected 3D or 4D input"):
        norm(torch.randn(3, 4))


def test_against_torch(r):
    real = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm1d(3, momentum=0.3), real.nn.BatchNorm1d(3, momentum=0.3)
    for _ in range(3):
        x = r.standard_normal((5, 3, 4)).astype(np.float32)
        a, b = ours(torch.tensor(x)), theirs(real.tensor(x))
        assert_close(a, b.detach().numpy(), atol=1e-5)
    assert_close(ours.running_var, theirs.running_var.numpy(), atol=1e-6)
    ours.eval()
    theirs.eval()
    x = r.standard_normal((2, 3, 4)).astype(np.float32)
    assert_close(ours(torch.tensor(x)), theirs(real.tensor(x)).detach().numpy(), atol=1e-5)
