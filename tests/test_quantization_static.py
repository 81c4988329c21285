"""Eager-mode static quantization (prepare / convert, QAT) against NumPy references that write
the integer arithmetic out: exact int accumulation of (x - x_zp) * (w - w_zp), then fbgemm's
float32 requantization round((acc + bias / (xs * ws)) * (xs * ws / out_scale)) + out_zp."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.ao.quantization as tq
import framework.ao.nn.quantized as nnq
import framework.ao.nn.intrinsic as nni
import framework.ao.nn.intrinsic.quantized as nniq
import framework.ao.nn.intrinsic.qat as nniqat

pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor"),
              pytest.mark.filterwarnings("ignore:Please use quant_min")]
f32 = np.float32


def _q(a, scale, zp, lo=0, hi=255):
    """fbgemm's quantization: one rounding of a * (1 / scale) + zp (float64 holds it exactly)."""
    inv = f32(1) / f32(scale)
    return np.clip(np.rint((np.asarray(a, np.float64) * np.float64(inv) + zp).astype(f32)),
                   lo, hi).astype(np.int64)


def _requant(acc, xs, ws, bias, scale, zp, relu):
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    atws = (f32(xs) * ws.astype(f32)).astype(f32)
    r = acc.astype(f32)
    if bias is not None:
        r = (r + (bias.astype(f32) / atws).astype(f32).reshape(shape)).astype(f32)
    r = np.rint((r * (atws / f32(scale)).astype(f32).reshape(shape)).astype(f32)) + zp
    return np.clip(r, zp if relu else 0, 255).astype(np.int64)


def _conv_acc(xi, wi, stride, pad, groups):
    """Integer 2-d convolution by explicit loops over the output positions."""
    xi = np.pad(xi, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    n, c, h, w = xi.shape
    o, cg, kh, kw = wi.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    og = o // groups
    acc = np.zeros((n, o, oh, ow), np.result_type(xi, wi))
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                patch = xi[:, g * cg:(g + 1) * cg, i * stride:i * stride + kh,
                           j * stride:j * stride + kw]
                acc[:, oc, i, j] = (patch * wi[oc]).reshape(n, -1).sum(1)
    return acc


def _per_channel_weight(rng, shape):
    w = rng.standard_normal(shape).astype(f32)
    s = (np.abs(w).reshape(shape[0], -1).max(1) / 127).astype(np.float64)
    wq = torch.quantize_per_channel(torch.tensor(w), torch.tensor(s),
                                    torch.zeros(shape[0], dtype=torch.int64), 0, torch.qint8)
    wi = np.clip(np.rint(w.astype(f32) * (f32(1) / s.astype(f32)).reshape(
        (-1,) + (1,) * (len(shape) - 1))), -128, 127).astype(np.int64)
    return wq, wi, s


@pytest.mark.parametrize("relu,stride,pad,groups", [(False, 1, 0, 1), (True, 2, 1, 2)])
def test_quantized_conv2d_integer_reference(relu, stride, pad, groups):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 4, 7, 7)) * 2).astype(f32)
    xq = torch.quantize_per_tensor(torch.tensor(x), 0.05, 60, torch.quint8)
    xi = _q(x, 0.05, 60, 0, 255)
    np.testing.assert_array_equal(xq.int_repr().numpy(), xi)
    wq, wi, ws = _per_channel_weight(rng, (6, 4 // groups, 3, 3))
    np.testing.assert_array_equal(wq.int_repr().numpy(), wi)
    b = rng.standard_normal(6).astype(f32)
    m = (nniq.ConvReLU2d if relu else nnq.Conv2d)(4, 6, 3, stride=stride, padding=pad,
                                                   groups=groups)
    m.set_weight_bias(wq, torch.tensor(b))
    m.scale, m.zero_point = 0.11, 70
    y = m(xq)
    ref = _requant(_conv_acc(xi - 60, wi, stride, pad, groups), 0.05, ws, b, 0.11, 70, relu)
    np.testing.assert_array_equal(y.int_repr().numpy(), ref)
    assert y.q_scale() == 0.11 and y.q_zero_point() == 70 and y.dtype is torch.quint8
    name = "QuantizedConvReLU2d" if relu else "QuantizedConv2d"
    extra = "" if pad == 0 else f", padding=({pad}, {pad}), groups={groups}"
    assert repr(m) == (f"{name}(4, 6, kernel_size=(3, 3), stride=({stride}, {stride}), "
                       f"scale=0.11, zero_point=70{extra})")


def test_quantized_linear_integer_reference():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((5, 9)) * 3).astype(f32)
    xq = torch.quantize_per_tensor(torch.tensor(x), 0.04, 64, torch.quint8)
    xi = _q(x, 0.04, 64)
    w = rng.standard_normal((4, 9)).astype(f32)
    ws = float(np.float32(np.abs(w).max() / 127))
    wq = torch.quantize_per_tensor(torch.tensor(w), ws, 0, torch.qint8)
    wi = np.clip(np.rint(w * (f32(1) / f32(ws))), -128, 127).astype(np.int64)
    b = rng.standard_normal(4).astype(f32)
    for cls, relu in ((nnq.Linear, False), (nniq.LinearReLU, True)):
        m = cls(9, 4)
        m.set_weight_bias(wq, torch.tensor(b))
        m.scale, m.zero_point = 0.09, 50
        ref = _requant((xi - 64) @ wi.T, 0.04, np.full(4, ws), b, 0.09, 50, relu)
        np.testing.assert_array_equal(m(xq).int_repr().numpy(), ref)
    assert repr(m) == ("QuantizedLinearReLU(in_features=9, out_features=4, scale=0.09, "
                       "zero_point=50, qscheme=torch.per_tensor_affine)")
    assert list(m.state_dict()) == ["scale", "zero_point", "_packed_params.dtype",
                                    "_packed_params._packed_params"]


def test_quantized_linear_int16_pair_saturation():
    # fbgemm's AVX2 kernel sums raw u8 * s8 products in pairs with int16 saturation:
    # 255 * 127 + 255 * 127 = 64770 becomes 32767; the third product (odd k) stands alone
    xq = torch.quantize_per_tensor(torch.tensor([[255.0, 255.0, 255.0]]), 1.0, 0, torch.quint8)
    wq = torch.quantize_per_tensor(torch.tensor([[127.0, 127.0, 127.0]]), 1.0, 0, torch.qint8)
    m = nnq.Linear(3, 1)
    m.set_weight_bias(wq, None)
    m.scale, m.zero_point = 1000.0, 0
    assert m(xq).int_repr().item() == round((32767 + 255 * 127) / 1000)     # 65, not 97
    # the raw integers (255, 255, 100) saturate, the zero point is taken off afterwards
    xq = torch.quantize_per_tensor(torch.tensor([[155.0, 155.0, 0.0]]), 1.0, 100, torch.quint8)
    assert m(xq).int_repr().item() == round((32767 + 100 * 127 - 100 * 3 * 127) / 1000)  # 7


def test_quantized_embedding_float_qparams():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 5)).astype(f32)
    m = nn.Sequential(nn.Embedding(6, 5))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(w))
    m[0].qconfig = tq.float_qparams_weight_only_qconfig
    q = tq.convert(tq.prepare(m))
    assert repr(q[0]) == ("QuantizedEmbedding(num_embeddings=6, embedding_dim=5, "
                          "dtype=torch.quint8, qscheme=torch.per_channel_affine_float_qparams)")
    assert list(q.state_dict()) == ["0._packed_params.dtype", "0._packed_params._packed_weight"]
    # per row: scale (max - min) / 255, float zero point -min / scale, added before rounding
    mn, mx = w.min(1), w.max(1)
    s = ((mx - mn) / f32(255)).astype(f32)
    z = (-mn / s).astype(f32)
    qi = np.clip(np.rint(w * (f32(1) / s)[:, None] + z[:, None]), 0, 255)
    idx = np.array([[5, 0], [2, 2]])
    # embedding_byte: q * scale + (-zero_point * scale) with one rounding
    ref = (qi[idx] * s[idx][..., None].astype(np.float64)
           + (-z * s).astype(f32)[idx][..., None]).astype(f32)
    np.testing.assert_array_equal(q[0](torch.tensor(idx)).numpy(), ref)
    with pytest.raises(AssertionError, match="only supported with float_qparams"):
        bad = nn.Sequential(nn.Embedding(3, 2))
        bad.qconfig = tq.default_qconfig
        tq.convert(tq.prepare(bad))


def test_quantized_ops_on_int_repr():
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((2, 3, 6, 6)) * 2).astype(f32)
    b = (rng.standard_normal((2, 3, 6, 6)) * 2).astype(f32)
    qa = torch.quantize_per_tensor(torch.tensor(a), 0.03, 70, torch.quint8)
    qb = torch.quantize_per_tensor(torch.tensor(b), 0.05, 100, torch.quint8)
    ia, ib = qa.int_repr().numpy().astype(np.int64), qb.int_repr().numpy().astype(np.int64)
    F = nn.functional
    mp = F.max_pool2d(qa, 2)
    np.testing.assert_array_equal(mp.int_repr().numpy(), ia.reshape(2, 3, 3, 2, 3, 2).max((3, 5)))
    assert mp.q_scale() == 0.03 and mp.q_zero_point() == 70
    ap = F.adaptive_avg_pool2d(qa, 1)
    np.testing.assert_array_equal(ap.int_repr().numpy()[..., 0, 0], np.rint(ia.mean((2, 3))))
    # padding counts as the zero point (a real 0)
    av = F.avg_pool2d(qa, 2, 2, 1)
    padded = np.pad(ia - 70, [(0, 0), (0, 0), (1, 1), (1, 1)])
    ref = np.rint(padded.reshape(2, 3, 4, 2, 4, 2).mean((3, 5))) + 70
    np.testing.assert_array_equal(av.int_repr().numpy(), ref)
    fa, fb = (ia - 70) * f32(0.03), (ib - 100) * f32(0.05)
    fa, fb = fa.astype(f32), fb.astype(f32)
    qf = nnq.QFunctional()
    qf.scale, qf.zero_point = 0.07, 80
    np.testing.assert_array_equal(qf.add(qa, qb).int_repr().numpy(), _q(fa + fb, 0.07, 80))
    np.testing.assert_array_equal(qf.add_relu(qa, qb).int_repr().numpy(),
                                  _q(np.maximum(fa + fb, 0), 0.07, 80))
    prod = (ia - 70) * (ib - 100)
    m = f32(f32(f32(0.03) * f32(0.05)) / f32(0.07))
    np.testing.assert_array_equal(qf.mul(qa, qb).int_repr().numpy(),
                                  np.clip(np.rint((prod.astype(f32) * m).astype(f32)) + 80, 0, 255))
    np.testing.assert_array_equal(qf.cat([qa, qb], 1).int_repr().numpy(),
                                  _q(np.concatenate([fa, fb], 1), 0.07, 80))
    six = _q(np.float32(6.0), 0.03, 70)
    np.testing.assert_array_equal(nnq.ReLU6()(qa).int_repr().numpy(), np.clip(ia, 70, six))
    with pytest.raises(RuntimeError, match="FloatFunctional is not intended"):
        nnq.FloatFunctional()(torch.ones(2))


def test_observers_hand_values():
    # moving average: first batch sets min/max, then m + 0.01 * (batch_m - m) in float32
    o = tq.MovingAverageMinMaxObserver()
    o(torch.tensor([-1.0, 2.0]))
    o(torch.tensor([-3.0, 6.0]))
    assert o.min_val.item() == float(f32(-1) + f32(f32(0.01) * f32(-2)))
    assert o.max_val.item() == float(f32(2) + f32(f32(0.01) * f32(4)))
    # reduce_range halves the quint8 range (also a custom one)
    assert tq.MinMaxObserver(reduce_range=True).quant_max == 127
    assert tq.MinMaxObserver(quant_min=0, quant_max=255, reduce_range=True).quant_max == 127
    # histogram with all mass at both ends: the search's first candidate (the top bin cut,
    # max = min + 2047 * (4 / 2048)) has a finite error, so it is taken; the next one is worse
    h = tq.HistogramObserver(reduce_range=True)
    h(torch.tensor([-1.0] * 50 + [3.0] * 50))
    s, z = h.calculate_qparams()
    assert s.item() == float(f32(f32(2.998046875 + 1.0) / f32(127))) and z.item() == 32
    assert h.histogram.numpy()[0] == 50 and h.histogram.numpy()[-1] == 50
    assert h.histogram.sum().item() == 100
    # one far outlier among 2000 values in [0, 1]: the search trims the range below max
    vals = np.concatenate([np.linspace(0, 1, 2000, dtype=f32), [f32(100)]])
    h = tq.HistogramObserver()
    h(torch.tensor(vals))
    s, z = h.calculate_qparams()
    assert z.item() == 0 and 1.0 / 255 < s.item() < float(f32(100) / f32(255))
    # histograms re-bin as the range grows: counts are kept
    h(torch.tensor(np.linspace(-50, 300, 1000, dtype=f32)))
    assert h.histogram.sum().item() == 3001
    assert h.min_val.item() == -50 and h.max_val.item() == 300


def test_fused_fake_quant_symmetric_per_channel():
    fq = tq.default_fused_per_channel_wt_fake_quant()
    w = torch.tensor([[-2.0, 1.0], [0.5, 3.0]])
    out = fq(w)
    # ChooseQuantizationParams: a channel spanning 0 keeps sparsity, max(|min| / 128,
    # max / 127) with zero point 0; an all-positive one maps [0, max] onto -128..127
    np.testing.assert_array_equal(fq.scale.numpy(), [f32(2.0 / 128), f32(3.0 / 255)])
    np.testing.assert_array_equal(fq.zero_point.numpy(), [0, -128])
    s = fq.scale.numpy().reshape(-1, 1)
    z = np.array([[0], [-128]])
    ref = ((np.clip(np.rint(w.numpy() * (f32(1) / s)) + z, -128, 127) - z) * s).astype(f32)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=0, atol=1e-7)


def _cnn():
    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = tq.QuantStub()
            self.conv = nn.Conv2d(1, 3, 3)
            self.bn = nn.BatchNorm2d(3)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(3 * 3 * 3, 4)
            self.dequant = tq.DeQuantStub()

        def forward(self, x):
            x = self.pool(self.relu(self.bn(self.conv(self.quant(x)))))
            return self.dequant(self.fc(torch.flatten(x, 1)))
    return CNN()


def test_static_ptq_flow_integer_reference():
    rng = np.random.default_rng(4)
    m = _cnn()
    with torch.no_grad():
        m.bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
        m.bn.running_var.copy_(torch.tensor([0.5, 1.5, 2.0]))
    m.eval()
    m.qconfig = tq.default_qconfig      # MinMax (0..127) activations, symmetric qint8 weights
    m = tq.fuse_modules(m, [["conv", "bn", "relu"]])
    assert isinstance(m.conv, nni.ConvReLU2d) and isinstance(m.bn, nn.Identity)
    p = tq.prepare(m)
    assert repr(p.quant) == ("QuantStub(\n  (activation_post_process): "
                             "MinMaxObserver(min_val=inf, max_val=-inf)\n)")
    calib = [(rng.standard_normal((3, 1, 8, 8)) * 2).astype(f32) for _ in range(2)]
    for c in calib:
        p(torch.tensor(c))
    wconv = p.conv[0].weight.detach().numpy()
    bconv = p.conv[0].bias.detach().numpy()
    wfc, bfc = p.fc.weight.detach().numpy(), p.fc.bias.detach().numpy()
    conv_max = p.conv.activation_post_process.max_val.item()
    fc_min = p.fc.activation_post_process.min_val.item()
    fc_max = p.fc.activation_post_process.max_val.item()
    q = tq.convert(p)
    assert list(q.state_dict()) == [
        "quant.scale", "quant.zero_point", "conv.weight", "conv.bias", "conv.scale",
        "conv.zero_point", "fc.scale", "fc.zero_point", "fc._packed_params.dtype",
        "fc._packed_params._packed_params"]
    assert isinstance(q.conv, nniq.ConvReLU2d) and isinstance(q.fc, nnq.Linear)
    assert not hasattr(q.conv, "qconfig")
    # the reference: MinMax qparams over [min(x, 0), max(x, 0)] onto 0..127
    xmin = min(float(min(c.min() for c in calib)), 0.0)
    xmax = max(float(max(c.max() for c in calib)), 0.0)
    xs = f32(f32(xmax - xmin) / f32(127))
    xz = int(np.clip(0 - np.rint(f32(xmin) / xs), 0, 127))
    assert q.quant.scale.item() == xs and q.quant.zero_point.item() == xz
    cs = f32(f32(conv_max) / f32(127))
    fs = f32(f32(fc_max - min(fc_min, 0)) / f32(127))
    fz = int(np.clip(0 - np.rint(f32(min(fc_min, 0)) / fs), 0, 127))
    assert repr(q.conv) == (f"QuantizedConvReLU2d(1, 3, kernel_size=(3, 3), stride=(1, 1), "
                            f"scale={float(cs)}, zero_point=0)")
    assert repr(q.fc) == (f"QuantizedLinear(in_features=27, out_features=4, scale={float(fs)}, "
                          f"zero_point={fz}, qscheme=torch.per_tensor_affine)")

    def wquant(w):      # per-tensor symmetric qint8
        s = f32(max(f32(np.abs(w).max()) / f32(127.5), np.finfo(f32).eps))
        return np.clip(np.rint(w * (f32(1) / s)), -128, 127).astype(np.int64), s
    x = (rng.standard_normal((2, 1, 8, 8)) * 2).astype(f32)
    xi = _q(x, xs, xz)
    wi, ws = wquant(wconv)
    a1 = _requant(_conv_acc(xi - xz, wi, 1, 0, 1), xs, np.full(3, ws), bconv, cs, 0, True)
    a2 = a1.reshape(2, 3, 3, 2, 3, 2).max((3, 5)).reshape(2, -1)
    wi2, ws2 = wquant(wfc)
    a3 = _requant(a2 @ wi2.T, cs, np.full(4, ws2), bfc, fs, fz, False)
    out = q(torch.tensor(x))
    np.testing.assert_array_equal(out.numpy(), ((a3 - fz) * fs).astype(f32))


def test_quantize_function_and_x86_qconfig_repr():
    m = nn.Sequential(tq.QuantStub(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3),
                      tq.DeQuantStub()).eval()
    m.qconfig = tq.get_default_qconfig("x86")
    assert repr(m.qconfig).startswith(
        "QConfig(activation=functools.partial(<class 'torch.ao.quantization.observer."
        "HistogramObserver'>, reduce_range=True){}, weight=functools.partial(<class "
        "'torch.ao.quantization.observer.PerChannelMinMaxObserver'>, dtype=torch.qint8, "
        "qscheme=torch.per_channel_symmetric){})")
    m = tq.fuse_modules(m, [["1", "2"]])
    data = [torch.tensor(np.linspace(-2, 2, 24, dtype=f32).reshape(4, 6))]
    q = tq.quantize(m, lambda mod, d: [mod(t) for t in d], [data])
    assert isinstance(q[1], nniq.LinearReLU) and isinstance(q[3], nnq.Linear)
    assert q[1].weight().qscheme() is torch.per_channel_affine
    assert repr(q[4]) == "DeQuantize()" and repr(q[0]).startswith("Quantize(scale=tensor([")
    assert q(data[0]).shape == (4, 3)
    with pytest.raises(AssertionError, match="backend: foo not supported"):
        tq.get_default_qconfig("foo")


def test_qat_convbn_forward_and_frozen_bn():
    rng = np.random.default_rng(5)
    m = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3), nn.ReLU())
    m.train()
    m.qconfig = tq.get_default_qat_qconfig("x86")
    m = tq.fuse_modules_qat(m, [["0", "1", "2"]])
    assert isinstance(m[0], nni.ConvBnReLU2d)
    p = tq.prepare_qat(m)
    c = p[0]
    assert isinstance(c, nniqat.ConvBnReLU2d) and not c.freeze_bn
    w = c.weight.detach().numpy()
    x = rng.standard_normal((4, 2, 6, 6)).astype(f32)
    y = c.forward(torch.tensor(x))     # (without the output's fake-quant hook)
    # reference: weight * gamma / std fake-quantized per channel (symmetric, preserve
    # sparsity), the conv divided back by the factor, batch-stat BatchNorm, ReLU
    sf = (1.0 / np.sqrt(1.0 + 1e-5)) * c.bn.weight.detach().numpy()
    ws = w * sf.reshape(-1, 1, 1, 1)
    mn, mx = ws.reshape(3, -1).min(1), ws.reshape(3, -1).max(1)
    scale = np.maximum(np.abs(mn) / 128, np.abs(mx) / 127).astype(f32)
    wq = np.clip(np.rint(ws * (1 / scale).reshape(-1, 1, 1, 1)), -128, 127) * \
        scale.reshape(-1, 1, 1, 1)
    conv = _conv_acc(x.astype(np.float64), wq.astype(np.float64), 1, 0, 1) / \
        sf.reshape(1, -1, 1, 1)
    mu, var = conv.mean((0, 2, 3), keepdims=True), conv.var((0, 2, 3), keepdims=True)
    bnout = (conv - mu) / np.sqrt(var + 1e-5)
    ref = np.maximum(bnout * c.bn.weight.detach().numpy().reshape(1, -1, 1, 1), 0)
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-4, atol=1e-4)
    y.sum().backward()
    assert c.weight.grad is not None and c.bn.weight.grad is not None
    rm = c.bn.running_mean.numpy().copy()
    np.testing.assert_allclose(rm, 0.1 * mu.reshape(-1), rtol=1e-4, atol=1e-6)
    p.apply(nniqat.freeze_bn_stats)
    assert c.freeze_bn and not c.bn.training
    c(torch.tensor(x))
    np.testing.assert_array_equal(c.bn.running_mean.numpy(), rm)
    p.eval()
    q = tq.convert(p)
    assert isinstance(q[0], nniq.ConvReLU2d) and isinstance(q[1], nn.Identity)
    with pytest.raises(AssertionError, match="training mode"):
        tq.prepare_qat(nn.Linear(2, 2).eval())


def test_qat_linear_training_steps():
    rng = np.random.default_rng(6)
    m = nn.Sequential(tq.QuantStub(), nn.Linear(4, 3), tq.DeQuantStub()).train()
    m.qconfig = tq.get_default_qat_qconfig("x86")
    p = tq.prepare_qat(m)
    opt = torch.optim.SGD(p.parameters(), lr=0.1)
    w0 = p[1].weight.detach().numpy().copy()
    for _ in range(3):
        x = torch.tensor(rng.standard_normal((5, 4)).astype(f32))
        loss = p(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not np.array_equal(p[1].weight.detach().numpy(), w0)
    fq = p[1].activation_post_process
    assert type(fq).__name__ == "FusedMovingAvgObsFakeQuantize"
    app = fq.activation_post_process
    assert (app.quant_min, app.quant_max) == (0, 127)
    q = tq.convert(p.eval())
    assert repr(q[1]).startswith("QuantizedLinear(in_features=4, out_features=3, scale=")


def test_bad_inputs():
    m = nnq.Conv2d(2, 3, 3)
    with pytest.raises(NotImplementedError, match="quantized::conv2d.new"):
        m(torch.ones(1, 2, 5, 5))
    with pytest.raises(NotImplementedError, match="quantized::linear"):
        nnq.Linear(4, 3)(torch.ones(2, 4))
    xq = torch.quantize_per_tensor(torch.ones(2, 5), 0.1, 0, torch.quint8)
    with pytest.raises(RuntimeError, match="packB should be equal to K: 5"):
        nnq.Linear(4, 3)(xq)
    np.testing.assert_array_equal(xq.int_repr().numpy(), np.full((2, 5), 10))
    with pytest.raises(AssertionError, match="did not find fuser method"):
        tq.fuse_modules(nn.Sequential(nn.Linear(2, 2), nn.Conv2d(1, 1, 1)).eval(), ["0", "1"])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tq.prepare(nn.Sequential(nn.Linear(2, 2)))
    assert any("None of the submodule got qconfig" in str(x.message) for x in w)
