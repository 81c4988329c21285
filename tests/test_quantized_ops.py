"""Ops PyTorch's QuantizedCPU backend runs on quantized tensors (max/min, mean, sort, topk,
sigmoid/tanh/hardsigmoid, clamp, *_like, interpolate, quantized_max_pool, quantized_batch_norm)
against NumPy references on the integer representation and hand-derived values."""
import numpy as np
import pytest

import framework as torch
from framework.nn import functional as F

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")


def _q(a, scale=0.05, zp=10, dtype=None):
    return torch.quantize_per_tensor(torch.tensor(np.asarray(a, np.float32)), scale, zp,
                                     dtype or torch.quint8)


def _rand_q(shape, seed=0, scale=0.05, zp=10, dtype=None):
    rng = np.random.default_rng(seed)
    return _q(rng.standard_normal(shape), scale, zp, dtype)


def _ir(t):
    return t.int_repr().numpy()


def _same_params(r, q):
    assert r.is_quantized and r.dtype is q.dtype
    assert r.q_scale() == q.q_scale() and r.q_zero_point() == q.q_zero_point()


def _per_channel():
    x = torch.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 10)
    return torch.quantize_per_channel(x, torch.tensor([0.1, 0.05, 0.02]),
                                      torch.tensor([0, 3, 5]), 1, torch.quint8)


@pytest.mark.parametrize("dtype,zp", [("quint8", 10), ("qint8", -3), ("qint32", 7)])
def test_max_min_all_forms(dtype, zp):
    q = _rand_q((3, 4, 5), seed=1, zp=zp, dtype=getattr(torch, dtype))
    a = _ir(q)
    for fn, npf, arg in ((torch.max, np.max, np.argmax), (torch.min, np.min, np.argmin)):
        r = fn(q)
        _same_params(r, q)
        assert r.shape == () and _ir(r) == npf(a)
        for dim in (0, 1, -1):
            for keepdim in (False, True):
                v, i = fn(q, dim, keepdim)
                _same_params(v, q)
                np.testing.assert_array_equal(_ir(v), npf(a, dim, keepdims=keepdim))
                np.testing.assert_array_equal(i.numpy(), arg(a, dim, keepdims=keepdim))
                assert i.dtype is torch.int64
    v, i = q.max(dim=1)         # the method form
    np.testing.assert_array_equal(_ir(v), a.max(1))


def test_max_min_refusals():
    q = _rand_q((2, 3))
    for fn, name in ((torch.max, "Max"), (torch.min, "Min")):
        with pytest.raises(RuntimeError, match=f"{name} operator for quantized tensors only "
                                               "works for per tensor"):
            fn(_per_channel())
    with pytest.raises(IndexError, match=r"max\(\): Expected reduction dim 0 to have non-zero"):
        torch.max(q[:, :0])
    for f in (lambda: torch.max(q, q), lambda: torch.amax(q, 1), lambda: torch.argmax(q)):
        with pytest.raises(NotImplementedError, match="QuantizedCPU"):
            f()


def test_mean_innermost_is_integer_average_rounded_half_even():
    # innermost dims of a contiguous tensor: sum of the raw integers / count, half to even
    q = _q(np.array([[-0.5, -0.5, -0.25, -0.45], [-0.45, -0.5, -0.5, -0.5]]))    # ints 0 0 5 1
    np.testing.assert_array_equal(_ir(q), [[0, 0, 5, 1], [1, 0, 0, 0]])
    r = q.mean(-1)
    _same_params(r, q)
    np.testing.assert_array_equal(_ir(r), [2, 0])      # 6/4 = 1.5 -> 2, 1/4 -> 0
    np.testing.assert_array_equal(_ir(q.mean(-1, keepdim=True)), [[2], [0]])
    assert _ir(q.mean()) == 1                          # 7/8 -> 1
    q3 = _rand_q((2, 3, 4), seed=2, zp=-3, dtype=torch.qint8)
    a = _ir(q3).astype(np.float64)
    np.testing.assert_array_equal(_ir(torch.mean(q3, (1, 2))), np.rint(a.sum((1, 2)) / 12))


def test_mean_other_dims_quantize_the_float_mean():
    # a power-of-two scale keeps the float mean exact: round(mean / scale) + zp
    rng = np.random.default_rng(3)
    ints = rng.integers(0, 256, (4, 3)).astype(np.float64)
    q = _q((ints - 100) / 16, 1 / 16, 100)
    r = q.mean(0)
    _same_params(r, q)
    m = (ints - 100).mean(0)
    np.testing.assert_array_equal(_ir(r), np.clip(np.rint(m) + 100, 0, 255))
    with pytest.raises(RuntimeError, match="ScalarType Float is not supported in new_qtensor"):
        q.mean(dtype=torch.float32)
    with pytest.raises(RuntimeError, match="kPerTensorAffine"):
        _per_channel().mean()


@pytest.mark.parametrize("dtype,zp", [("quint8", 10), ("qint8", -3)])
def test_sort_topk_argsort(dtype, zp):
    q = _rand_q((3, 6), seed=4, zp=zp, dtype=getattr(torch, dtype))
    a = _ir(q)
    v, i = torch.sort(q, dim=1, stable=True)
    _same_params(v, q)
    np.testing.assert_array_equal(_ir(v), np.sort(a, 1))
    np.testing.assert_array_equal(i.numpy(), np.argsort(a, 1, kind="stable"))
    np.testing.assert_array_equal(torch.argsort(q, dim=1, stable=True).numpy(),
                                  np.argsort(a, 1, kind="stable"))
    np.testing.assert_array_equal(_ir(torch.msort(q)), np.sort(a, 0))
    v, i = torch.topk(q, 2, dim=1)
    _same_params(v, q)
    np.testing.assert_array_equal(_ir(v), -np.sort(-a.astype(int), 1)[:, :2])
    np.testing.assert_array_equal(np.take_along_axis(a, i.numpy(), 1), _ir(v))
    v, _ = torch.topk(q, 2, dim=0, largest=False)
    np.testing.assert_array_equal(_ir(v), np.sort(a, 0)[:2])
    with pytest.raises(RuntimeError, match="Top-K is only supported on per-tensor quantization"):
        torch.topk(_per_channel(), 2)
    with pytest.raises(RuntimeError, match="kPerTensorAffine"):
        torch.sort(_per_channel())


def _fixed_ref(y, scale, zp, lo, hi):
    return np.clip(np.rint(y / scale) + zp, lo, hi)


@pytest.mark.parametrize("dtype,lo,hi", [("quint8", 0, 255), ("qint8", -128, 127)])
def test_sigmoid_tanh_hardsigmoid_fixed_qparams(dtype, lo, hi):
    d = getattr(torch, dtype)
    q = _rand_q((200,), seed=5, scale=0.03, zp=-3 if dtype == "qint8" else 100, dtype=d)
    x = q.dequantize().numpy().astype(np.float64)
    zs = -128 if dtype == "qint8" else 0
    zt = 0 if dtype == "qint8" else 128
    cases = ((torch.sigmoid(q), 1 / (1 + np.exp(-x)), 1 / 256, zs),
             (F.sigmoid(q), 1 / (1 + np.exp(-x)), 1 / 256, zs),
             (torch.tanh(q), np.tanh(x), 2 / 256, zt),
             (F.hardsigmoid(q), np.clip(x + 3, 0, 6) / 6, 1 / 256, zs))
    for r, y, scale, zp in cases:
        assert r.dtype is d and r.q_scale() == scale and r.q_zero_point() == zp
        ref = _fixed_ref(y, scale, zp, lo, hi)
        far = np.abs(y / scale - np.floor(y / scale) - 0.5) > 1e-4     # (no float32 ties)
        np.testing.assert_array_equal(_ir(r)[far], ref[far])
    # hand values: sigmoid(0) = 0.5 -> 128 / 256; tanh(0) = 0
    z = _q([0.0], 0.05, 10, d) if dtype == "quint8" else _q([0.0], 0.05, -3, d)
    assert _ir(torch.sigmoid(z))[0] == 128 + zs and _ir(torch.tanh(z))[0] == zt
    with pytest.raises(RuntimeError, match="kPerTensorAffine"):
        torch.sigmoid(_per_channel())


def test_hardsigmoid_inplace_takes_the_result_parameters():
    q = _rand_q((5,), seed=6)
    r = F.hardsigmoid(q, inplace=True)
    assert r is q and q.q_scale() == 1 / 256 and q.q_zero_point() == 0


def test_clamp_quantizes_the_bounds():
    q = _rand_q((4, 5), seed=7, scale=0.03, zp=-3, dtype=torch.qint8)
    a = _ir(q)
    lo, hi = np.rint(-0.5 / 0.03) - 3, np.rint(0.7 / 0.03) - 3      # -20, 20
    r = torch.clamp(q, -0.5, 0.7)
    _same_params(r, q)
    np.testing.assert_array_equal(_ir(r), np.clip(a, lo, hi))
    np.testing.assert_array_equal(_ir(q.clamp(min=-0.5)), np.maximum(a, lo))
    np.testing.assert_array_equal(_ir(torch.clip(q, max=0.7)), np.minimum(a, hi))
    np.testing.assert_array_equal(_ir(torch.clamp(q, 0.5, -0.5)), np.full(a.shape, -20))
    before = a.copy()
    for f in (lambda: torch.clamp_min(q, 0.2), lambda: q.clamp_(0.0, 1),
              lambda: torch.clamp(q, torch.tensor(0.1))):
        with pytest.raises(RuntimeError, match="promoteTypes with quantized numbers is not "
                                               "handled yet.*QInt8 Float"):
            f()
    # integer bounds pass promotion and find no quantized kernel
    for f, op in ((lambda: torch.clamp_min(q, 1), "clamp_min"), (lambda: q.clamp_(0, 1), "clamp"),
                  (lambda: q.clamp_(min=1), "clamp")):
        with pytest.raises(NotImplementedError, match=f"aten::{op}.out"):
            f()
    np.testing.assert_array_equal(_ir(q), before)       # (nothing written)


def test_like_constructors():
    q = _rand_q((2, 3), seed=8)
    o = torch.ones_like(q)
    _same_params(o, q)
    np.testing.assert_array_equal(_ir(o), np.full((2, 3), 30))      # 1 / 0.05 + 10
    np.testing.assert_array_equal(_ir(torch.full_like(q, 0.3)), np.full((2, 3), 16))
    e = torch.empty_like(q)
    _same_params(e, q)
    assert e.shape == (2, 3)
    with pytest.raises(NotImplementedError, match="aten::zero_"):
        torch.zeros_like(q)
    with pytest.raises(RuntimeError, match="Specified: float Input tensor's dtype: c10::quint8"):
        torch.empty_like(q, dtype=torch.float32)
    pc = _per_channel()
    ep = torch.empty_like(pc)
    assert ep.qscheme() is torch.per_channel_affine and ep.q_per_channel_axis() == 1


def test_accessor_functions():
    q = _rand_q((2, 3), seed=9, scale=0.25, zp=4)
    assert torch.q_scale(q) == 0.25 and torch.q_zero_point(q) == 4
    np.testing.assert_array_equal(torch.int_repr(q).numpy(), _ir(q))
    pc = _per_channel()
    np.testing.assert_allclose(torch.q_per_channel_scales(pc).numpy(),
                               np.float32([0.1, 0.05, 0.02]))
    np.testing.assert_array_equal(torch.q_per_channel_zero_points(pc).numpy(), [0, 3, 5])
    assert torch.q_per_channel_axis(pc) == 1
    with pytest.raises(NotImplementedError, match="aten::q_scale.*'CPU' backend"):
        torch.q_scale(torch.ones(2))
    with pytest.raises(RuntimeError, match="kPerChannelAffine"):
        torch.q_per_channel_axis(q)


def test_quantized_max_pool():
    q = _rand_q((2, 3, 4, 6), seed=10)
    a = _ir(q)
    r = torch.quantized_max_pool2d(q, [2, 2])
    _same_params(r, q)
    np.testing.assert_array_equal(_ir(r), a.reshape(2, 3, 2, 2, 3, 2).max((3, 5)))
    r1 = torch.quantized_max_pool1d(q[0], [3], [3])
    np.testing.assert_array_equal(_ir(r1), a[0].reshape(3, 4, 2, 3).max(3))
    with pytest.raises(NotImplementedError, match="aten::quantized_max_pool2d.*'CPU'"):
        torch.quantized_max_pool2d(torch.ones(1, 1, 2, 2), [2, 2])


def test_quantized_batch_norm():
    rng = np.random.default_rng(11)
    q = _rand_q((2, 3, 4), seed=11)
    w, b = rng.random(3) + 0.5, rng.standard_normal(3)
    m, v = rng.standard_normal(3), rng.random(3) + 0.1
    T = lambda a: torch.tensor(np.float32(a))        # noqa: E731
    r = torch.quantized_batch_norm(q, T(w), T(b), T(m), T(v), 1e-5, 0.07, 60)
    assert r.q_scale() == 0.07 and r.q_zero_point() == 60 and r.dtype is torch.quint8
    x = q.dequantize().numpy().astype(np.float64)
    sh = (1, 3, 1)
    y = (x - m.reshape(sh)) / np.sqrt(v.reshape(sh) + 1e-5) * w.reshape(sh) + b.reshape(sh)
    t = y / 0.07 + 60
    far = np.abs(t - np.floor(t) - 0.5) > 1e-3
    np.testing.assert_array_equal(_ir(r)[far], np.clip(np.rint(t), 0, 255)[far])
    with pytest.raises(RuntimeError, match="Weight must be provided"):
        torch.quantized_batch_norm(q, None, T(b), T(m), T(v), 1e-5, 0.07, 60)
    with pytest.raises(RuntimeError, match="Expect weight size to match C"):
        torch.quantized_batch_norm(q, T(w[:2]), T(b), T(m), T(v), 1e-5, 0.07, 60)
    with pytest.raises(NotImplementedError, match="aten::quantized_batch_norm.*'CPU'"):
        torch.quantized_batch_norm(q.dequantize(), T(w), T(b), T(m), T(v), 1e-5, 0.07, 60)


def test_interpolate_nearest_and_bilinear():
    q = _rand_q((1, 2, 3, 4), seed=12, zp=-3, dtype=torch.qint8)
    a = _ir(q)
    r = F.interpolate(q, scale_factor=2)
    _same_params(r, q)
    np.testing.assert_array_equal(_ir(r), a.repeat(2, 2).repeat(2, 3))
    # scale_factor 1.3 on 3 rows keeps 3 rows but picks floor(i / 1.3): 0, 0, 1 (when
    # another dim changes; with none changed the input is copied)
    r = _ir(F.interpolate(q, scale_factor=(1.3, 0.5)))[0, 0]
    np.testing.assert_array_equal(r, a[0, 0][[0, 0, 1]][:, [0, 2]])
    np.testing.assert_array_equal(_ir(F.interpolate(q, scale_factor=(1.3, 1.0))), a)
    # bilinear 2x2 -> 3x3 with align_corners: midpoints and the centre, half to even
    q2 = _q(np.array([[0, 10], [20, 31]]).reshape(1, 1, 2, 2) * 0.05 - 0.5, 0.05, 10)
    np.testing.assert_array_equal(_ir(q2)[0, 0], [[0, 10], [20, 31]])
    r = F.interpolate(q2, size=(3, 3), mode="bilinear", align_corners=True)
    _same_params(r, q2)
    np.testing.assert_array_equal(_ir(r)[0, 0], [[0, 5, 10], [10, 15, 20], [20, 26, 31]])
    with pytest.raises(NotImplementedError, match="aten::upsample_nearest1d.out"):
        F.interpolate(q[0], size=5)
    with pytest.raises(NotImplementedError, match="aten::upsample_bicubic2d.out"):
        F.interpolate(q, size=(5, 5), mode="bicubic")
    pc = torch.quantize_per_channel(torch.ones(1, 2, 2, 2), torch.tensor([0.1, 0.2]),
                                    torch.tensor([0, 1]), 1, torch.quint8)
    with pytest.raises(RuntimeError, match="kPerTensorAffine"):
        F.interpolate(pc, scale_factor=2, mode="bilinear")


def test_vector_and_tail_requantization():
    # PyTorch's kernels requantize whole vector steps (64 8-bit lanes) as rint(y / s) + zp and
    # the tail as rint(zp + y / s): 1.5 / 0.04 = 37.5 gives 38 + 111 in the vector part but
    # rint(148.5) = 148 in the tail
    m = torch.ao.nn.quantized.LeakyReLU(0.04, 111, 0.11)
    for n, first, last in ((1, 148, 148), (64, 149, 149), (65, 149, 148)):
        r = _ir(m(_q(np.full(n, 1.5), 0.05, 110)))
        assert (r[0], r[-1]) == (first, last)
    # over 32768 elements at::parallel_for gives each of 2 threads a chunk of 16400: two tails
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        r = _ir(m(_q(np.full(32800, 1.5), 0.05, 110)))
    finally:
        torch.set_num_threads(old)
    np.testing.assert_array_equal(np.nonzero(r == 148)[0],
                                  np.r_[16384:16400, 32784:32800])


@pytest.mark.parametrize("dtype,zp", [("quint8", 60), ("qint8", -5)])
def test_quantized_activation_modules(dtype, zp):
    nnq = torch.ao.nn.quantized
    d = getattr(torch, dtype)
    q = _rand_q((2, 50), seed=13, scale=0.04, zp=zp, dtype=d)
    x = q.dequantize().numpy().astype(np.float64)
    lo, hi = (0, 255) if dtype == "quint8" else (-128, 127)
    cases = ((nnq.LeakyReLU(0.03, zp + 1, 0.2), np.where(x > 0, x, 0.2 * x), 0.03, zp + 1),
             (nnq.ELU(0.025, zp - 2, 0.7), np.where(x > 0, x, 0.7 * np.expm1(x)), 0.025, zp - 2),
             (nnq.Sigmoid(1 / 200, zp), 1 / (1 + np.exp(-x)), 1 / 200, zp),
             (nnq.Softmax(1, 1 / 256, lo), np.exp(x) / np.exp(x).sum(1, keepdims=True), 1 / 256,
              lo))
    for m, y, scale, z in cases:
        r = m(q)
        assert r.dtype is d and r.q_scale() == pytest.approx(scale, rel=1e-7)
        assert r.q_zero_point() == z
        t = y / scale
        far = np.abs(t - np.floor(t) - 0.5) > 1e-3
        np.testing.assert_array_equal(_ir(r)[far], np.clip(np.rint(t) + z, lo, hi)[far])
    assert repr(nnq.LeakyReLU(0.1, 3, 0.2)) == "QuantizedLeakyReLU(negative_slope=0.2)"
    assert repr(nnq.ELU(0.1, 3, 0.7)) == "QuantizedELU(alpha=0.7)"
    assert repr(nnq.Softmax(1, 0.1, 3)) == "QuantizedSoftmax(dim=1)"
    sd = nnq.LeakyReLU(0.25, 3).state_dict()
    assert list(sd) == ["scale", "zero_point"] and sd["scale"].item() == 0.25
    with pytest.raises(NotImplementedError, match="quantized::leaky_relu.*'CPU' backend"):
        nnq.LeakyReLU(0.1, 3)(torch.ones(2))


def test_convert_swaps_leaky_relu_and_elu():
    aq = torch.ao.quantization
    nn = torch.nn
    torch.manual_seed(0)
    m = nn.Sequential(aq.QuantStub(), nn.LeakyReLU(0.2), nn.ELU(0.7), nn.Sigmoid(),
                      aq.DeQuantStub()).eval()
    m.qconfig = aq.default_qconfig      # (MinMaxObserver onto [0, 127])
    p = aq.prepare(m)
    x = torch.tensor(np.linspace(-3, 3, 40, dtype=np.float32).reshape(4, 10))
    p(x)
    q = aq.convert(p)
    nnq = torch.ao.nn.quantized
    assert type(q[1]) is nnq.LeakyReLU and type(q[2]) is nnq.ELU and type(q[3]) is nn.Sigmoid
    # the observed ranges: leaky relu of [-3, 3] is [-0.6, 3]; elu's output is its own
    s1, z1 = q[1].scale.item(), q[1].zero_point.item()
    assert s1 == pytest.approx(3.6 / 127, rel=1e-6) and z1 == round(0.6 / (3.6 / 127))
    y = q(x)      # sigmoid of a quantized tensor: fixed output parameters 1/256, 0
    assert np.all(np.abs(y.numpy() - 1 / (1 + np.exp(-np.where(x.numpy() > 0, x.numpy(),
                  0.7 * np.expm1(0.2 * x.numpy()))))) < 0.03)


def _requant(acc, xs, ws, os_, zp):
    """fbgemm's float32 epilogue (no bias): rint(acc * (x_scale * w_scale / out_scale)) + zp."""
    f = np.float32
    m = f(f(f(xs) * f(ws)) / f(os_))
    return np.clip(np.rint((acc.astype(f) * m).astype(f)) + zp, 0, 255)


def _np_conv_transpose2d(a, w, stride, padding, output_padding):
    """Integer transposed convolution by scatter-adding each input pixel's weighted kernel."""
    n, c, h, wd = a.shape
    _, o, kh, kw = w.shape
    oh = (h - 1) * stride - 2 * padding + kh + output_padding
    ow = (wd - 1) * stride - 2 * padding + kw + output_padding
    full = np.zeros((n, o, (h - 1) * stride + kh + output_padding,
                     (wd - 1) * stride + kw + output_padding), np.int64)
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.einsum(
                "nc,cokl->nokl", a[:, :, i, j], w)
    return full[:, :, padding:padding + oh, padding:padding + ow]


def test_conv_transpose2d_matches_integer_reference():
    rng = np.random.default_rng(14)
    nnq = torch.ao.nn.quantized
    m = nnq.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)
    wi = rng.integers(-60, 61, (4, 3, 3, 3))
    w = torch.quantize_per_tensor(torch.tensor(np.float32(wi * 0.01)), 0.01, 0, torch.qint8)
    np.testing.assert_array_equal(_ir(w), wi)
    m.set_weight_bias(w, None)
    m.scale, m.zero_point = 0.02, 70
    xi = rng.integers(0, 128, (2, 4, 3, 4))          # (7-bit: no int16 pair saturation)
    x = _q((xi - 10) * 0.05, 0.05, 10)
    np.testing.assert_array_equal(_ir(x), xi)
    r = m(x)
    assert r.shape == (2, 3, 6, 8) and r.q_scale() == 0.02 and r.q_zero_point() == 70
    acc = _np_conv_transpose2d(xi - 10, wi, 2, 1, 1)
    np.testing.assert_array_equal(_ir(r), _requant(acc, 0.05, 0.01, 0.02, 70))
    assert repr(m) == ("QuantizedConvTranspose2d(4, 3, kernel_size=(3, 3), stride=(2, 2), "
                       "scale=0.02, zero_point=70, padding=(1, 1), output_padding=(1, 1), "
                       "bias=False)")
    assert m.weight().shape == (4, 3, 3, 3)
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for '
                                         'ConvTranspose2d'):
        nnq.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    pc = torch.quantize_per_channel(torch.ones(4, 3, 3, 3), torch.full((4,), 0.01),
                                    torch.zeros(4, dtype=torch.int64), 0, torch.qint8)
    with pytest.raises(RuntimeError, match="Per Channel Quantization is currently disabled for "
                                           "transposed conv"):
        m.set_weight_bias(pc, None)
    np.testing.assert_array_equal(_ir(m.weight()), wi)      # (unchanged)


def test_conv_transpose_saturates_pairs_as_fbgemm():
    # two channels of one tap form one vpmaddubsw pair: 255 * 127 * 2 = 64770 saturates to
    # 32767 before the int32 sum (fbgemm's AVX2 kernel)
    nnq = torch.ao.nn.quantized
    m = nnq.ConvTranspose1d(2, 1, 1)
    m.set_weight_bias(torch.quantize_per_tensor(torch.ones(2, 1, 1) * 127, 1.0, 0, torch.qint8),
                      None)
    m.scale, m.zero_point = 256.0, 0
    r = m(_q(np.full((1, 2, 3), 255.0), 1.0, 0))
    np.testing.assert_array_equal(_ir(r), np.full((1, 1, 3), 128))     # 32767 / 256, not 253


def test_conv_reflect_padding():
    rng = np.random.default_rng(15)
    nnq = torch.ao.nn.quantized
    m = nnq.Conv2d(2, 2, 3, padding=(1, 2), padding_mode="reflect")
    wi = rng.integers(-60, 61, (2, 2, 3, 3))
    m.set_weight_bias(torch.quantize_per_tensor(torch.tensor(np.float32(wi * 0.01)), 0.01, 0,
                                                torch.qint8), None)
    m.scale, m.zero_point = 0.03, 70
    xi = rng.integers(0, 128, (1, 2, 4, 5))
    r = m(_q((xi - 64) * 0.05, 0.05, 64))
    a = np.pad(xi - 64, [(0, 0), (0, 0), (1, 1), (2, 2)], mode="reflect")
    acc = np.zeros((1, 2, 4, 7), np.int64)
    for i in range(3):
        for j in range(3):
            acc += np.einsum("nchw,oc->nohw", a[:, :, i:i + 4, j:j + 7], wi[:, :, i, j])
    np.testing.assert_array_equal(_ir(r), _requant(acc, 0.05, 0.01, 0.03, 70))
    for pm in ("replicate", "circular"):
        with pytest.raises(ValueError, match=f"'padding_mode' {pm} is not supported by "
                                             "quantized convolution"):
            nnq.Conv2d(2, 2, 3, padding_mode=pm)
    with pytest.raises(AssertionError, match="Conv3d does not support reflection padding"):
        nnq.Conv3d(2, 2, 3, padding_mode="reflect")


def test_convert_conv_transpose_and_per_channel_refusal():
    aq = torch.ao.quantization
    nn = torch.nn
    torch.manual_seed(0)
    m = nn.Sequential(aq.QuantStub(), nn.ConvTranspose2d(3, 4, 3, stride=2), aq.DeQuantStub())
    m.eval().qconfig = aq.default_qconfig
    p = aq.prepare(m)
    p(torch.randn(2, 3, 4, 4))
    q = aq.convert(p)
    assert type(q[1]) is torch.ao.nn.quantized.ConvTranspose2d
    w = q[1].weight()
    assert w.qscheme() is torch.per_tensor_affine and w.shape == (3, 4, 3, 3)
    fw = m[1].weight.detach().numpy()
    np.testing.assert_allclose(w.dequantize().numpy(), fw, atol=w.q_scale() / 2 + 1e-7)
    x = torch.randn(1, 3, 4, 4)
    ref = torch.nn.functional.conv_transpose2d(x, m[1].weight, m[1].bias, stride=2)
    assert np.abs(q(x).numpy() - ref.detach().numpy()).max() < 0.1
    m1 = nn.Sequential(nn.ConvTranspose1d(2, 2, 2)).eval()
    m1.qconfig = aq.get_default_qconfig("x86")
    with pytest.raises(AssertionError, match="Per channel weight observer is not supported yet "
                                             "for ConvTranspose"):
        aq.prepare(m1)


def test_quantized_prelu_integer_kernel():
    nnq = torch.ao.nn.quantized
    m = nnq.PReLU(0.03, 50, 2)
    w = torch.quantize_per_tensor(torch.tensor([0.25, 0.125]), 1 / 64, 0, torch.quint8)
    np.testing.assert_array_equal(_ir(w), [16, 8])
    m.set_weight(w)
    xi = np.array([[[90, 100, 130], [60, 120, 100]]])     # zero point 100
    r = m(_q((xi - 100) * 0.04, 0.04, 100))
    assert r.q_scale() == 0.03 and r.q_zero_point() == 50 and repr(m) == "QuantizedPReLU()"
    # acc = pos * q(1.0) + neg * w with q(1.0) = 64; times 0.04 / 64 / 0.03, rounded
    one = 64
    acc = np.maximum(xi - 100, 0) * one + np.minimum(xi - 100, 0) * np.array([16, 8])[:, None]
    f = np.float32
    mult = f(f(f(0.04) * f(1 / 64)) * (f(1) / f(0.03)))
    np.testing.assert_array_equal(_ir(r), np.clip(np.rint((acc.astype(f) * mult).astype(f)) + 50,
                                                  0, 255))
    np.testing.assert_array_equal(_ir(r)[0, 0], [47, 50, 90])     # -0.1, 0, 1.2 in 0.03 steps
    with pytest.raises(RuntimeError, match="prelu: Type promoting not supported. Got Float and "
                                           "QUInt8"):
        m(_q(0.5))


def test_convert_prelu_quantizes_its_weight_to_quint8():
    aq = torch.ao.quantization
    nn = torch.nn
    m = nn.Sequential(aq.QuantStub(), nn.PReLU(3, 0.2), aq.DeQuantStub()).eval()
    m.qconfig = aq.default_qconfig
    p = aq.prepare(m)
    p(torch.tensor(np.linspace(-2, 2, 24, dtype=np.float32).reshape(2, 3, 4)))
    with pytest.warns(UserWarning, match="PReLU's weight observer should have dtype quint8"):
        q = aq.convert(p)
    assert type(q[1]) is torch.ao.nn.quantized.PReLU
    w = q[1].weight
    # the qint8 observer's symmetric range [-0.2, 0.2]: scale 0.4 / 255, zero point 0
    assert w.dtype is torch.quint8 and w.q_zero_point() == 0
    assert w.q_scale() == pytest.approx(0.4 / 255, rel=1e-6)
    np.testing.assert_array_equal(_ir(w), [128, 128, 128])      # rint(0.2 / (0.4 / 255))


def test_batch_norm3d_module_and_convert():
    aq = torch.ao.quantization
    nn = torch.nn
    m = nn.Sequential(aq.QuantStub(), nn.BatchNorm3d(2), aq.DeQuantStub())
    m[1].running_mean.copy_(torch.tensor([0.5, -1.0]))
    m[1].running_var.copy_(torch.tensor([4.0, 0.25]))
    m.eval().qconfig = aq.default_qconfig
    p = aq.prepare(m)
    x = torch.tensor(np.linspace(-2, 2, 32, dtype=np.float32).reshape(1, 2, 2, 2, 4))
    p(x)
    q = aq.convert(p)
    bn = q[1]
    assert type(bn) is torch.ao.nn.quantized.BatchNorm3d
    assert repr(bn).startswith("QuantizedBatchNorm3d(2, eps=1e-05")
    xq = q[0](x)
    r = bn(xq)
    xd = xq.dequantize().numpy().astype(np.float64)
    y = (xd - np.array([0.5, -1.0]).reshape(1, 2, 1, 1, 1)) / np.sqrt(
        np.array([4.0, 0.25]).reshape(1, 2, 1, 1, 1) + 1e-5)
    t = y / bn.scale.item() + bn.zero_point.item()
    far = np.abs(t - np.floor(t) - 0.5) > 1e-3
    np.testing.assert_array_equal(_ir(r)[far], np.clip(np.rint(t), 0, 255)[far])
    with pytest.raises(RuntimeError, match="Expecting the input tensor of rank 5"):
        bn(xq[0])


def test_group_and_instance_norm_modules():
    nnq = torch.ao.nn.quantized
    P = torch.nn.Parameter
    rng = np.random.default_rng(16)
    q = _rand_q((2, 4, 3, 5), seed=16, scale=0.04, zp=100)
    x = q.dequantize().numpy().astype(np.float64)
    w, b = rng.random(4) + 0.5, rng.standard_normal(4)
    g = nnq.GroupNorm(2, 4, P(torch.tensor(np.float32(w))), P(torch.tensor(np.float32(b))),
                      0.03, 90)
    xg = x.reshape(2, 2, -1)
    yg = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5)).reshape(
        x.shape) * np.float32(w).reshape(1, 4, 1, 1) + np.float32(b).reshape(1, 4, 1, 1)
    i2 = nnq.InstanceNorm2d(4, None, None, 0.02, 128)
    xi = x.reshape(2, 4, -1)
    yi = ((xi - xi.mean(-1, keepdims=True)) / np.sqrt(xi.var(-1, keepdims=True) + 1e-5)).reshape(
        x.shape)
    for m, y, s, z in ((g, yg, 0.03, 90), (i2, yi, 0.02, 128)):
        r = m(q)
        assert r.q_scale() == float(np.float32(s)) and r.q_zero_point() == z
        t = y / s + z
        far = np.abs(t - np.floor(t) - 0.5) > 1e-3
        np.testing.assert_array_equal(_ir(r)[far], np.clip(np.rint(t), 0, 255)[far])
    assert repr(g) == "QuantizedGroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    assert repr(i2) == ("QuantizedInstanceNorm2d(4, eps=1e-05, momentum=0.1, affine=False, "
                        "bias=False, track_running_stats=False)")
    assert list(g.state_dict()) == ["weight", "bias", "scale", "zero_point"]
    with pytest.raises(NotImplementedError, match="quantized::group_norm.*'CPU' backend"):
        g(q.dequantize())


def test_convert_group_and_instance_norm():
    aq = torch.ao.quantization
    nn = torch.nn
    m = nn.Sequential(aq.QuantStub(), nn.GroupNorm(2, 4), nn.InstanceNorm1d(4, affine=True),
                      aq.DeQuantStub()).eval()
    m.qconfig = aq.default_qconfig
    p = aq.prepare(m)
    p(torch.tensor(np.linspace(-2, 2, 48, dtype=np.float32).reshape(2, 4, 6)))
    q = aq.convert(p)
    nnq = torch.ao.nn.quantized
    assert type(q[1]) is nnq.GroupNorm and type(q[2]) is nnq.InstanceNorm1d
    # PyTorch's from_float passes affine where momentum goes: the converted module says so
    assert q[2].momentum is True and q[2].affine is False and q[2].weight is not None


def test_quantized_embedding_bag_sums_rows():
    nnq = torch.ao.nn.quantized
    rng = np.random.default_rng(17)
    qi = rng.integers(0, 256, (6, 4))
    sc = np.float32([0.5, 0.25, 0.125, 1.0, 0.0625, 2.0])    # (powers of two: sums are exact)
    zp = np.float32([3, 100, 0, 7, 128, 1])
    w = torch.quantize_per_channel(torch.tensor(np.float32((qi - zp[:, None]) * sc[:, None])),
                                   torch.tensor(sc), torch.tensor(zp), 0, torch.quint8)
    np.testing.assert_array_equal(_ir(w), qi)
    m = nnq.EmbeddingBag(6, 4, mode="mean")      # (PyTorch's forward always sums)
    m.set_weight(w)
    rows = (qi - zp[:, None]) * sc[:, None]
    idx = torch.tensor([1, 2, 4, 0, 5, 5, 3])
    r = m(idx, torch.tensor([0, 3, 3, 6]))
    ref = np.stack([rows[[1, 2, 4]].sum(0), np.zeros(4), rows[[0, 5, 5]].sum(0), rows[[3]].sum(0)])
    np.testing.assert_array_equal(r.numpy(), ref)
    pw = np.float32([0.5, 2, 1, 0.25, 1, 4, 1])
    r = m(idx, torch.tensor([0, 3, 3, 6]), per_sample_weights=torch.tensor(pw))
    np.testing.assert_array_equal(r.numpy()[0], (rows[[1, 2, 4]] * pw[:3, None]).sum(0))
    r2 = m(torch.tensor([[1, 2], [4, 0]]))          # 2-d: one bag per row
    np.testing.assert_array_equal(r2.numpy(), np.stack([rows[[1, 2]].sum(0), rows[[4, 0]].sum(0)]))
    assert repr(m) == ("QuantizedEmbeddingBag(num_embeddings=6, embedding_dim=4, "
                       "dtype=torch.quint8, qscheme=torch.per_channel_affine_float_qparams)")
    with pytest.raises(RuntimeError, match="embedding_bag_byte expects offsets to be set for 1D"):
        m(idx)
    with pytest.raises(RuntimeError, match="input is 2D, then offsets has to be None"):
        m(torch.tensor([[1, 2]]), torch.tensor([0]))
    with pytest.raises(RuntimeError, match="Expect 32 or 64 bit indices, but found Float"):
        m(torch.tensor([1.0]), torch.tensor([0]))


def test_convert_embedding_bag():
    aq = torch.ao.quantization
    nn = torch.nn
    torch.manual_seed(0)
    m = nn.Sequential(nn.EmbeddingBag(10, 3, mode="sum", include_last_offset=True))
    m[0].qconfig = aq.float_qparams_weight_only_qconfig
    q = aq.convert(aq.prepare(m))
    assert type(q[0]) is torch.ao.nn.quantized.EmbeddingBag and q[0].include_last_offset
    idx, off = torch.tensor([1, 2, 7, 7]), torch.tensor([0, 1, 4])
    ref = m[0](idx, off).detach().numpy()
    w = q[0].weight()
    assert np.abs(q[0](idx, off).numpy() - ref).max() <= 3 * w.q_per_channel_scales().max()
