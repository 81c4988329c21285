"""torch-level aliases of nn.functional ops, max_unpool, lp_pool3d, fractional max pooling
(seeded samples vs torch-printed values), gumbel_softmax, Lazy modules, fuse_*_bn and
skip_init: values vs NumPy / torch-printed, gradients, errors, compile() == eager."""
import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.autograd import gradcheck

F = nn.functional


def _np(t):
    return t.detach().numpy()


def test_torch_level_aliases_signatures():
    x = torch.randn(2, 3, 5, 5)
    w = torch.randn(4, 3, 3, 3)
    np.testing.assert_allclose(_np(torch.conv2d(x, w, None, 1, 1)), _np(F.conv2d(x, w, padding=1)))
    assert torch.dropout(x, 0.5, False) is x                      # (input, p, train)
    assert torch.dropout(x, 0.0, True) is x
    y = torch.ones(1000)
    torch.dropout_(y, 0.5, True)
    assert set(np.unique(_np(y)).tolist()) <= {0.0, 2.0} and 300 < _np(y).sum() / 2 < 700
    f = torch.feature_dropout(torch.ones(4, 50, 3), 0.5, True)    # whole channels
    per = _np(f).reshape(200, 3)
    assert np.all(per.min(1) == per.max(1))
    ln = torch.layer_norm(x, (5,), None, None, 1e-5, True)
    np.testing.assert_allclose(_np(ln), _np(F.layer_norm(x, (5,))), rtol=1e-6)
    bn = torch.batch_norm(torch.arange(8.).reshape(2, 4), torch.ones(4) * 2, torch.zeros(4),
                          torch.zeros(4), torch.ones(4), True, 0.1, 1e-5, False)
    np.testing.assert_allclose(_np(bn).ravel(), [-2, -2, -2, -2, 2, 2, 2, 2], atol=1e-5)
    g = torch.group_norm(x, 3, None, None, 1e-5, True)
    np.testing.assert_allclose(_np(g), _np(F.group_norm(x, 3)), rtol=1e-6)
    e = torch.embedding(torch.arange(6.).reshape(3, 2), torch.tensor([2, 0]))   # (weight, idx)
    assert e.tolist() == [[4, 5], [0, 1]]
    out, o2b, size, mx = torch.embedding_bag(torch.arange(12.).reshape(6, 2),
                                             torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0, 2]),
                                             False, 2)
    assert out.tolist() == [[2, 3], [8, 9]] and o2b.tolist() == [0, 0, 1, 1, 1]
    assert size.tolist() == [2, 3] and mx.tolist() == [[1, 1], [4, 4]]
    assert abs(torch.kl_div(torch.tensor([-1., -2.]), torch.tensor([0.3, 0.7]), 2).item()
               - 1.0891356468200684) < 1e-6                        # reduction as an int (sum)
    v, i = torch.max_pool1d_with_indices(torch.tensor([[1., 3, 2, 5]]), 2)
    assert v.tolist() == [[3, 5]] and i.tolist() == [[1, 3]]
    assert torch.max_pool2d(x, 2, []).shape == (2, 3, 2, 2)
    assert torch.adaptive_max_pool1d(torch.randn(1, 2, 6), 3)[1].shape == (1, 2, 3)
    assert torch.constant_pad_nd(torch.ones(2), (1, 2), 7.).tolist() == [7, 1, 1, 7, 7]
    assert torch.threshold(torch.tensor([1., 3]), 2, 0).tolist() == [0, 3]
    r = torch.tensor([-1., 1])
    torch.celu_(r)
    assert abs(r[0].item() - (np.exp(-1) - 1)) < 1e-6
    np.testing.assert_allclose(_np(torch.native_channel_shuffle(torch.arange(4.).reshape(1, 4, 1),
                                                                2)).ravel(), [0, 2, 1, 3])
    loss = torch.margin_ranking_loss(torch.tensor([1., 2]), torch.tensor([2., 1]),
                                     torch.tensor([1., 1]), 0.0, 0)
    assert loss.tolist() == [1, 0]
    p = torch.poisson_nll_loss(torch.tensor([0.5]), torch.tensor([1.]), True, False, 1e-8, 1)
    assert abs(p.item() - (np.exp(0.5) - 0.5)) < 1e-6
    with pytest.raises(RuntimeError, match="not a valid value for reduction"):
        torch.hinge_embedding_loss(torch.ones(2), torch.ones(2), 1.0, 5)
    for n in ("conv1d", "conv_transpose3d", "alpha_dropout_", "instance_norm", "pixel_shuffle",
              "avg_pool1d", "prelu", "selu_", "rrelu_", "hardshrink", "bilinear", "pdist",
              "cosine_similarity", "pairwise_distance", "ctc_loss", "cosine_embedding_loss",
              "triplet_margin_loss", "binary_cross_entropy_with_logits", "rms_norm"):
        assert callable(getattr(torch, n)), n


def test_max_unpool_roundtrip_and_errors():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    v, i = F.max_pool2d(x, 2, return_indices=True)
    u = F.max_unpool2d(v, i, 2)
    ref = np.zeros((2, 3, 36))
    np.put_along_axis(ref, _np(i).reshape(2, 3, 9), _np(v).reshape(2, 3, 9), axis=2)
    np.testing.assert_array_equal(_np(u), ref.reshape(2, 3, 6, 6))
    m = nn.MaxUnpool2d(2)
    assert repr(m) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert m(v, i, output_size=(2, 3, 7, 7)).shape == (2, 3, 7, 7)
    v1, i1 = F.max_pool1d(torch.tensor([[[1., 5, 2, 0]]]), 2, return_indices=True)
    assert nn.MaxUnpool1d(2)(v1, i1).tolist() == [[[0, 5, 2, 0]]]
    v3, i3 = F.max_pool3d(torch.randn(1, 1, 4, 4, 4), 2, return_indices=True)
    assert F.max_unpool3d(v3, i3, 2).shape == (1, 1, 4, 4, 4)
    vv = v.clone().requires_grad_()
    assert gradcheck(lambda t: F.max_unpool2d(t, i, 2), (vv,))
    with pytest.raises(RuntimeError, match="int64"):
        F.max_unpool2d(v, i.int(), 2)
    with pytest.raises(ValueError, match="invalid output_size"):
        F.max_unpool2d(v, i, 2, output_size=(12, 12))
    with pytest.raises(RuntimeError, match="invalid max index"):
        F.max_unpool2d(v, i * 10, 2)


def test_lp_pool3d():
    x = torch.rand(2, 3, 4, 4, 4, dtype=torch.float64)
    a = _np(x).reshape(2, 3, 2, 2, 2, 2, 2, 2)
    ref = np.sqrt((a ** 2).sum(axis=(3, 5, 7)))
    np.testing.assert_allclose(_np(F.lp_pool3d(x, 2, 2)), ref, rtol=1e-12)
    np.testing.assert_allclose(_np(nn.LPPool3d(2, 2)(x)), ref, rtol=1e-12)
    assert repr(nn.LPPool3d(2, 2)) == "LPPool3d(norm_type=2, kernel_size=2, stride=None, " \
                                      "ceil_mode=False)"
    xg = x.clone().requires_grad_()
    assert gradcheck(lambda t: F.lp_pool3d(t, 2, 2), (xg,))


def test_fractional_max_pool_seeded_vs_torch_printed():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 6)
    r = F.fractional_max_pool2d(x, 2, output_size=3)
    np.testing.assert_allclose(_np(r).ravel(), [
        -0.31601276993751526, 0.32227492332458496, 0.8487103581428528, 1.237657904624939,
        1.1167771816253662, 1.85300612449646, 0.946298360824585, 0.18347793817520142,
        1.586334228515625, 0.4396958351135254, 2.3022053241729736, 0.7924439907073975,
        0.8728312253952026, 2.0819554328918457, 2.3803675174713135, 0.018486667424440384,
        0.18540798127651215, 0.6381815671920776], rtol=1e-6)
    torch.manual_seed(1)
    m = nn.FractionalMaxPool3d(2, output_ratio=0.5, return_indices=True)
    _, idx = m(torch.arange(2 * 4 * 4 * 4.).reshape(1, 2, 4, 4, 4).sin())
    assert idx.flatten().tolist() == [20, 2, 8, 14, 33, 39, 45, 58, 0, 19, 13, 26, 32, 38, 57, 63]
    s = torch.rand(1, 2, 2, dtype=torch.float64)
    xg = torch.randn(1, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: F.fractional_max_pool2d(t, 3, output_size=(3, 4),
                                                       _random_samples=s), (xg,))
    with pytest.raises(ValueError, match="output_size or an output_ratio"):
        F.fractional_max_pool2d(x, 2)
    with pytest.raises(ValueError):
        nn.FractionalMaxPool2d(2)


def test_gumbel_softmax():
    torch.manual_seed(3)
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    y = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(_np(y.sum(-1)), np.ones(4), rtol=1e-12)
    h = F.gumbel_softmax(logits, hard=True, dim=-1)
    assert np.all(np.sort(_np(h), -1) == [0, 0, 0, 0, 1])
    (h * torch.arange(5.)).sum().backward()              # straight-through: soft gradient
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    torch.manual_seed(0)
    counts = _np(F.gumbel_softmax(torch.tensor([[0., np.log(3.)]]).expand(4000, 2),
                                  hard=True)).sum(0)
    assert 0.70 < counts[1] / 4000 < 0.80                # P(class 1) = 3/4


def test_lazy_modules_materialise_on_first_forward():
    torch.manual_seed(0)
    for lazy, eager, shape in [(nn.LazyConv1d(4, 3), nn.Conv1d, (2, 3, 8)),
                               (nn.LazyConv2d(4, 3), nn.Conv2d, (2, 3, 6, 6)),
                               (nn.LazyConv3d(4, 2), nn.Conv3d, (1, 3, 4, 4, 4)),
                               (nn.LazyConvTranspose1d(4, 3), nn.ConvTranspose1d, (2, 6, 5)),
                               (nn.LazyConvTranspose2d(4, 3), nn.ConvTranspose2d, (2, 6, 5, 5)),
                               (nn.LazyConvTranspose3d(4, 2), nn.ConvTranspose3d, (1, 6, 3, 3, 3))]:
        assert isinstance(lazy.weight, nn.UninitializedParameter)
        x = torch.randn(*shape)
        y = lazy(x)
        assert type(lazy) is eager and lazy.in_channels == shape[1]
        np.testing.assert_allclose(_np(y), _np(lazy(x)), rtol=1e-6)
    c = nn.LazyConv2d(8, 3)
    c(torch.randn(3, 5, 5))                          # unbatched: channels from dim 0
    assert c.weight.shape == (8, 3, 3, 3)
    for lazy, eager, shape in [(nn.LazyBatchNorm1d(), nn.BatchNorm1d, (4, 3)),
                               (nn.LazyBatchNorm2d(), nn.BatchNorm2d, (2, 3, 4, 4)),
                               (nn.LazyBatchNorm3d(), nn.BatchNorm3d, (2, 3, 2, 2, 2)),
                               (nn.LazyInstanceNorm1d(), nn.InstanceNorm1d, (3, 6)),
                               (nn.LazyInstanceNorm2d(), nn.InstanceNorm2d, (2, 3, 4, 4)),
                               (nn.LazyInstanceNorm3d(), nn.InstanceNorm3d, (2, 3, 2, 2, 2))]:
        assert isinstance(lazy.running_mean, nn.UninitializedBuffer)
        x = torch.randn(*shape)
        lazy(x)
        assert type(lazy) is eager and lazy.num_features == 3
        assert lazy.weight.shape == (3,) and lazy.running_mean.shape == (3,)
    b = nn.LazyBatchNorm2d()
    b(torch.ones(2, 3, 2, 2) * 5)
    np.testing.assert_allclose(_np(b.running_mean), [0.5] * 3, rtol=1e-6)
    assert b.num_batches_tracked.item() == 1
    with pytest.raises(RuntimeError, match="shape of an uninitialized"):
        nn.LazyConv2d(4, 3).weight.shape


def test_fuse_bn_and_skip_init():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3).eval()
    bn = nn.BatchNorm2d(4).eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2)
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
    x = torch.randn(2, 3, 5, 5)
    fused = nn.utils.fuse_conv_bn_eval(conv, bn)
    np.testing.assert_allclose(_np(fused(x)), _np(bn(conv(x))), rtol=1e-4, atol=1e-5)
    assert isinstance(fused.weight, nn.Parameter) and fused is not conv
    ct = nn.ConvTranspose2d(3, 4, 3).eval()
    fused_t = nn.utils.fuse_conv_bn_eval(ct, bn, transpose=True)
    np.testing.assert_allclose(_np(fused_t(x)), _np(bn(ct(x))), rtol=1e-4, atol=1e-5)
    lin = nn.Linear(3, 4).eval()
    bn1 = nn.BatchNorm1d(4).eval()
    bn1.running_mean.normal_()
    xl = torch.randn(5, 3)
    np.testing.assert_allclose(_np(nn.utils.fuse_linear_bn_eval(lin, bn1)(xl)), _np(bn1(lin(xl))),
                               rtol=1e-5, atol=1e-6)
    w, b = nn.utils.fuse_linear_bn_weights(lin.weight, None, bn1.running_mean, bn1.running_var,
                                           1e-5, bn1.weight, bn1.bias)
    assert w.shape == (4, 3) and b.shape == (4,)
    with pytest.raises(AssertionError, match="eval"):
        nn.utils.fuse_conv_bn_eval(nn.Conv2d(3, 4, 3), bn)
    m = nn.utils.skip_init(nn.Linear, 3, 4)
    assert m.weight.shape == (4, 3) and m.bias.shape == (4,)
    assert nn.init.kaiming_uniform_.__name__ == "kaiming_uniform_"      # restored afterwards

    class NoDevice(nn.Module):
        def __init__(self):
            super().__init__()
    with pytest.raises(RuntimeError, match="device"):
        nn.utils.skip_init(NoDevice)


def test_compile_matches_eager():
    def f(x, w):
        v, i = F.max_pool2d(torch.conv2d(x, w, None, 1, 1), 2, return_indices=True)
        return F.max_unpool2d(v, i, 2).relu() + torch.layer_norm(x[:, :1], (6,), None, None, 1e-5,
                                                                  True)
    x, w = torch.randn(2, 3, 6, 6), torch.randn(4, 3, 3, 3)
    np.testing.assert_allclose(_np(torch.compile(f)(x, w)), _np(f(x, w)), rtol=1e-5, atol=1e-6)
