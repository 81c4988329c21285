"""Quantized tensors, fake quantization and quantize_dynamic against NumPy references and
hand-derived values (PyTorch's rounding: half to even, clamped to the dtype's range)."""
import copy
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")


def _np_quant(x, scale, zp, lo, hi):
    """NumPy reference in float64 (exact here: scales are powers of two). The zero point is
    added before rounding: 0.5 + (-3) rounds half to even to -2."""
    return np.clip(np.rint(np.asarray(x, np.float64) / scale + zp), lo, hi)


@pytest.mark.parametrize("dtype,lo,hi,npdt,zp", [("qint8", -128, 127, np.int8, -3),
                                                  ("quint8", 0, 255, np.uint8, 100),
                                                  ("qint32", -2 ** 31, 2 ** 31 - 1, np.int32, 7)])
def test_quantize_per_tensor_matches_numpy(dtype, lo, hi, npdt, zp):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(500) * 20).astype(np.float32)
    x[:4] = [0.0625, 0.1875, -0.0625, 1e6]      # ties at scale 0.125 (half to even) and a clamp
    q = torch.quantize_per_tensor(torch.from_numpy(x), 0.125, zp, getattr(torch, dtype))
    ref = _np_quant(x, 0.125, zp, lo, hi)
    ir = q.int_repr()
    assert ir.dtype == torch.from_numpy(np.zeros(1, npdt)).dtype
    np.testing.assert_array_equal(ir.numpy(), ref)
    np.testing.assert_array_equal(q.dequantize().numpy(), (ref - zp) * 0.125)
    assert q.q_scale() == 0.125 and q.q_zero_point() == zp
    assert q.qscheme() is torch.per_tensor_affine and q.is_quantized
    assert q.dtype is getattr(torch, dtype) and not torch.from_numpy(x).is_quantized


def test_quantize_hand_values_and_forms():
    x = torch.tensor([-1.0, 0.05, 0.15, 0.25, 1.3, 20.0])
    # x / 0.1 in float32: -10, 0.5 (-> 0, even), 1.5 (-> 2), 2.5 (-> 2), 13, 200 (-> 127)
    q = torch.quantize_per_tensor(x, 0.1, 0, torch.qint8)
    assert q.int_repr().tolist() == [-10, 0, 2, 2, 13, 127]
    qt = torch.quantize_per_tensor(x, torch.tensor(0.1), torch.tensor(0), torch.qint8)
    assert qt.int_repr().tolist() == [-10, 0, 2, 2, 13, 127]
    assert qt.q_scale() == float(np.float32(0.1))       # a float32 tensor's value
    a, b = torch.quantize_per_tensor([torch.tensor([1., 2.]), torch.tensor([3.])],
                                     torch.tensor([0.5, 0.25]), torch.tensor([0, 1]),
                                     torch.quint8)
    assert a.int_repr().tolist() == [2, 4] and b.int_repr().tolist() == [13]
    assert [t.tolist() for t in torch.dequantize([a, b])] == [[1.0, 2.0], [3.0]]
    assert torch.dequantize(x) is x and x.dequantize() is x


def test_quantize_per_channel():
    x = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    scales, zps = np.array([0.5, 0.25, 1.0], np.float32), np.array([0, 3, -2])
    q = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales),
                                   torch.from_numpy(zps), 0, torch.qint8)
    ref = _np_quant(x, scales[:, None], zps[:, None], -128, 127)
    np.testing.assert_array_equal(q.int_repr().numpy(), ref)
    np.testing.assert_array_equal(q.dequantize().numpy(),
                                  (ref - zps[:, None]) * scales[:, None])
    assert q.q_per_channel_scales().dtype == torch.float64
    np.testing.assert_array_equal(q.q_per_channel_scales().numpy(), scales)
    assert q.q_per_channel_zero_points().tolist() == [0, 3, -2]
    assert q.q_per_channel_axis() == 0 and q.qscheme() is torch.per_channel_affine
    # a channel of it: that channel's parameters, per tensor
    r = q[1]
    assert r.qscheme() is torch.per_tensor_affine and (r.q_scale(), r.q_zero_point()) == (0.25, 3)
    np.testing.assert_array_equal(r.int_repr().numpy(), ref[1])
    c = q.clone()
    np.testing.assert_array_equal(c.int_repr().numpy(), ref)
    # float zero points: the float-qparams scheme, zero point added before rounding
    qf = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales),
                                    torch.tensor([0.5, 1.0, 2.0]), 0, torch.quint8)
    assert qf.qscheme() is torch.per_channel_affine_float_qparams
    np.testing.assert_array_equal(
        qf.int_repr().numpy(),
        np.clip(np.rint(x / scales[:, None] + np.array([0.5, 1, 2])[:, None]), 0, 255))


def test_quantize_per_tensor_dynamic():
    x = np.array([-1.0, 0.05, 0.15, 0.25, 1.3, 20.0], np.float32)
    q = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), torch.quint8, False)
    scale = (20.0 - np.float64(np.float32(-1.0))) / 255
    zp = int(np.rint(0 - (-1.0) / scale))       # the zero-point candidate from the minimum
    assert q.q_scale() == pytest.approx(scale, rel=1e-12) and q.q_zero_point() == zp == 12
    q = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), torch.qint8, True)
    scale = 21.0 / 127        # reduce_range: [-64, 63]
    assert q.q_scale() == pytest.approx(scale, rel=1e-7)
    assert q.q_zero_point() == int(np.rint(63 - 20.0 / scale)) == -58


def test_printing():
    x = torch.tensor([-1.0, 0.05, 0.15, 0.25, 1.3, 20.0])
    q = torch.quantize_per_tensor(x, 0.1, 0, torch.qint8)
    assert repr(q) == (
        "tensor([-1.0000,  0.0000,  0.2000,  0.2000,  1.3000, 12.7000], size=(6,),\n"
        "       dtype=torch.qint8, quantization_scheme=torch.per_tensor_affine, scale=0.1,\n"
        "       zero_point=0)")
    q2 = torch.quantize_per_tensor(torch.tensor(1.5), 0.5, 1, torch.qint8)
    assert repr(q2) == ("tensor(1.5000, size=(), dtype=torch.qint8,\n"
                        "       quantization_scheme=torch.per_tensor_affine, scale=0.5, "
                        "zero_point=1)")
    qc = torch.quantize_per_channel(torch.arange(6.).reshape(2, 3), torch.tensor([0.5, 0.25]),
                                    torch.tensor([0, 1]), 0, torch.qint8)
    assert repr(qc) == (
        "tensor([[0., 1., 2.],\n"
        "        [3., 4., 5.]], size=(2, 3), dtype=torch.qint8,\n"
        "       quantization_scheme=torch.per_channel_affine,\n"
        "       scale=tensor([0.5000, 0.2500], dtype=torch.float64),\n"
        "       zero_point=tensor([0, 1]), axis=0)")
    assert repr(torch.per_channel_symmetric) == "torch.per_channel_symmetric"
    assert repr(torch.quint4x2) == "torch.quint4x2" and torch.qint32.itemsize == 4


def test_shape_ops_keep_parameters():
    x = np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1
    q = torch.quantize_per_tensor(torch.from_numpy(x), 0.5, 2, torch.quint8)
    ref = _np_quant(x, 0.5, 2, 0, 255)
    for t, r in ((q[0], ref[0]), (q[:, 1:], ref[:, 1:]), (q.reshape(3, 2), ref.reshape(3, 2)),
                 (q.t(), ref.T), (q.t().contiguous(), ref.T), (q.flatten(), ref.reshape(-1)),
                 (q.unsqueeze(0), ref[None]), (q.clone(), ref), (q.flip(0), ref[::-1]),
                 (q[torch.tensor([1, 0])], ref[[1, 0]]), (q.select(1, 2), ref[:, 2])):
        assert t.is_quantized and (t.q_scale(), t.q_zero_point()) == (0.5, 2)
        np.testing.assert_array_equal(t.int_repr().numpy(), r)
    # relu: the zero point is quantized 0
    np.testing.assert_array_equal(torch.relu(q).int_repr().numpy(), np.maximum(ref, 2))
    # cat requantizes into the first tensor's parameters
    q2 = torch.quantize_per_tensor(torch.tensor([[3.0, -0.75, 10.0]]), 0.25, 0, torch.quint8)
    c = torch.cat([q, q2])
    # (-0.75 was clamped to 0.0 by q2's quint8 range: 0 / 0.5 + 2)
    np.testing.assert_array_equal(c.int_repr().numpy()[2], [8, 2, 22])
    assert q[1, 2].item() == float(x[1, 2])
    assert (q == q).all().item() and (q < 0).tolist() == [[True, True, False], [False, False,
                                                                                 False]]


def test_refused_ops_raise_pytorchs_errors():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    q = torch.quantize_per_tensor(x, 0.5, 0, torch.qint8)
    before = q.int_repr().numpy().copy()
    with pytest.raises(RuntimeError, match="empty_strided not supported on quantized"):
        q + 1
    with pytest.raises(RuntimeError, match="offending types: QInt8 Float"):
        q * 2.0
    with pytest.raises(RuntimeError, match="offending types: Float QInt8"):
        x + q
    with pytest.raises(NotImplementedError, match="'aten::add.out' with arguments from the "
                                                  "'QuantizedCPU' backend"):
        q + q
    for f, op in ((lambda: q.exp(), "exp.out"), (lambda: q.sum(), "sum.IntList_out"),
                  (lambda: q @ q, "mm.out")):
        with pytest.raises(NotImplementedError, match=f"aten::{op}"):
            f()
    with pytest.raises(RuntimeError, match="Creation of quantized tensor requires quantized"):
        q.float()
    with pytest.raises(TypeError, match="Got unsupported ScalarType QInt8"):
        q.numpy()
    with pytest.raises(NotImplementedError, match="'aten::int_repr' with arguments from the "
                                                  "'CPU' backend"):
        x.int_repr()
    with pytest.raises(RuntimeError, match="kPerTensorAffine"):
        torch.quantize_per_channel(x, torch.tensor([1., 1.]), torch.tensor([0, 0]), 0,
                                   torch.qint8).q_scale()
    with pytest.raises(RuntimeError, match="kPerChannelAffine"):
        q.q_per_channel_scales()
    with pytest.raises(RuntimeError, match="Quantize only works on Float Tensor, got Long"):
        torch.quantize_per_tensor(torch.tensor([1, 2]), 0.1, 0, torch.qint8)
    with pytest.raises(RuntimeError, match="ScalarType Char is not supported in new_qtensor"):
        torch.quantize_per_tensor(x, 0.1, 0, torch.int8)
    with pytest.raises(RuntimeError, match="zero_point 300 is above upper bound"):
        torch.quantize_per_tensor(x, 0.1, 300, torch.qint8)
    with pytest.raises(RuntimeError, match="length of scales must equal to channel, expected 2"):
        torch.quantize_per_channel(x, torch.tensor([1., 1., 1.]), torch.tensor([0, 0, 0]), 0,
                                   torch.qint8)
    with pytest.raises(TypeError, match="argument 'scales' \\(position 2\\) must be Tensor"):
        torch.quantize_per_channel(x, [1., 1.], [0, 0], 0, torch.qint8)
    np.testing.assert_array_equal(q.int_repr().numpy(), before)


def test_creation_warns_deprecation_once():
    from framework.ao import _qtensor
    _qtensor._warned.clear()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8)
        torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8)
    assert [str(m.message)[:40] for m in w] == ["torch.quantize_per_tensor, torch.quantiz"]


def _np_fake(x, scale, zp, lo, hi):
    r = np.rint(x / scale) + zp
    return (np.clip(r, lo, hi) - zp) * scale, ((r >= lo) & (r <= hi)).astype(x.dtype)


def test_fake_quantize_per_tensor_values_and_straight_through_grad():
    x = np.array([-3.0, -0.3, 0.0, 0.1, 0.55, 1.2, 4.0], np.float64)
    t = torch.tensor(x, requires_grad=True)
    y = torch.fake_quantize_per_tensor_affine(t, 0.25, 2, 0, 10)
    ref, mask = _np_fake(x, 0.25, 2, 0, 10)
    np.testing.assert_array_equal(y.detach().numpy(), ref)
    assert type(y.grad_fn).__name__ == "FakeQuantizePerTensorAffineCachemaskBackward0"
    g = np.arange(1.0, 8.0)
    y.backward(torch.tensor(g))
    np.testing.assert_array_equal(t.grad.numpy(), g * mask)
    # the straight-through gradient is the derivative of the clamp it rounds: finite
    # differences of (clamp(x / s + zp, lo, hi) - zp) * s
    h = 1e-6
    surrogate = lambda v: (np.clip(v / 0.25 + 2, 0, 10) - 2) * 0.25  # noqa: E731
    fd = (surrogate(x + h) - surrogate(x - h)) / (2 * h)
    np.testing.assert_allclose(t.grad.numpy() / g, fd, atol=1e-6)
    yt = torch.fake_quantize_per_tensor_affine(t, torch.tensor(0.25), torch.tensor(2), 0, 10)
    assert type(yt.grad_fn).__name__ == "FakeQuantizePerTensorAffineCachemaskTensorQparamsBackward0"
    # gradcheck where the clamp is flat on both sides (outside the range): zero both ways,
    # and through the mask-weighted graph the backward builds (double backward)
    assert torch.autograd.gradcheck(
        lambda v: torch.fake_quantize_per_tensor_affine(v, 0.25, 2, 0, 10),
        (torch.tensor([-3.0, 5.0], dtype=torch.float64, requires_grad=True),))
    with pytest.raises(RuntimeError, match="`quant_min` should be less than or"):
        torch.fake_quantize_per_tensor_affine(t, 0.25, 2, 5, 3)
    with pytest.raises(RuntimeError, match="`zero_point` must be between"):
        torch.fake_quantize_per_tensor_affine(t, 0.25, 20, 0, 10)


def test_fake_quantize_per_channel():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    t = torch.tensor(x, requires_grad=True)
    y = torch.fake_quantize_per_channel_affine(t, torch.tensor([0.5, 2.0]),
                                               torch.tensor([0, 1], dtype=torch.int32), 0, 0, 3)
    ref, mask = _np_fake(x, np.array([[0.5], [2.0]]), np.array([[0], [1]]), 0, 3)
    np.testing.assert_array_equal(y.detach().numpy(), ref)
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), mask)
    assert type(y.grad_fn).__name__ == "FakeQuantizePerChannelAffineCachemaskBackward0"
    with pytest.raises(RuntimeError, match="Zero-point must be Int32, Float or Half, found Long"):
        torch.fake_quantize_per_channel_affine(t, torch.tensor([0.5, 2.0]), torch.tensor([0, 1]),
                                               0, 0, 3)


def test_observers_qparams():
    from framework.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
    o = MinMaxObserver()
    o(torch.tensor([-1.0, 3.0]))
    s, z = o.calculate_qparams()
    # affine quint8: scale = (3 - (-1)) / 255, zero point = 0 - round(-1 / scale) = 64
    assert s.item() == pytest.approx(4 / 255, rel=1e-6) and z.tolist() == [64]
    assert repr(o) == "MinMaxObserver(min_val=-1.0, max_val=3.0)"
    o = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    o(torch.tensor([-1.0, 3.0]))
    s, z = o.calculate_qparams()
    assert s.item() == pytest.approx(3 / 127.5, rel=1e-6) and z.tolist() == [0]
    o = PerChannelMinMaxObserver(ch_axis=1, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    o(torch.tensor([[-1.0, 0.5], [2.0, -4.0]]))
    s, z = o.calculate_qparams()
    np.testing.assert_allclose(s.numpy(), np.array([2.0, 4.0]) / 127.5, rtol=1e-6)
    assert torch.quantization is torch.ao.quantization


def _np_dynamic_linear(x, w, b):
    """NumPy reimplementation of a dynamic quantized Linear (float64 reference)."""
    # symmetric per-tensor qint8 weight; w * (1 / scale) in float32, as PyTorch, decides the
    # tie at the extreme (-127.5 rounds to -128 only if it stays exactly -127.5)
    ws = np.float32(np.abs(w).max()) / np.float32(127.5)
    wq = np.clip(np.rint(w.astype(np.float32) * (np.float32(1) / ws)), -128, 127)
    lo, hi = min(x.min(), 0.0), max(x.max(), 0.0)
    xs = (hi - lo) / 127 or 0.1        # quint8 over [0, 127] (reduce_range); all zeros: 0.1
    cands = (0 - lo / xs, 127 - hi / xs)
    errs = (0 - abs(lo / xs), 127 - abs(hi / xs))
    xz = int(np.clip(np.rint(cands[0] if errs[0] < errs[1] else cands[1]), 0, 127))
    xq = np.clip(np.rint(x / xs + xz), 0, 255)
    out = (xq - xz) @ wq.T * xs * np.float32(ws)
    return out if b is None else out + b, wq


def test_quantize_dynamic_linear_matches_numpy():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4, bias=False))
    original = copy.deepcopy(model.state_dict())
    qm = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    assert repr(qm) == (
        "Sequential(\n"
        "  (0): DynamicQuantizedLinear(in_features=16, out_features=8, dtype=torch.qint8, "
        "qscheme=torch.per_tensor_affine)\n"
        "  (1): ReLU()\n"
        "  (2): DynamicQuantizedLinear(in_features=8, out_features=4, dtype=torch.qint8, "
        "qscheme=torch.per_tensor_affine)\n)")
    assert isinstance(model[0], nn.Linear)        # inplace=False: the model is unchanged
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), original[k].numpy())
    w0 = model[0].weight.detach().numpy().astype(np.float64)
    b0 = model[0].bias.detach().numpy().astype(np.float64)
    w2 = model[2].weight.detach().numpy().astype(np.float64)
    x = rng.standard_normal((5, 16)).astype(np.float32)
    h, wq0 = _np_dynamic_linear(x.astype(np.float64), w0, b0)
    np.testing.assert_array_equal(qm[0].weight().int_repr().numpy(), wq0)
    np.testing.assert_allclose(qm[0](torch.from_numpy(x)).numpy(), h, rtol=1e-5, atol=1e-5)
    h32 = qm[0](torch.from_numpy(x)).numpy()      # (what the second layer receives)
    ref, _ = _np_dynamic_linear(np.maximum(h32, 0).astype(np.float64), w2, None)
    out = qm(torch.from_numpy(x)).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    sd = qm.state_dict()
    assert list(sd) == ["0.scale", "0.zero_point", "0._packed_params.dtype",
                        "0._packed_params._packed_params", "2.scale", "2.zero_point",
                        "2._packed_params.dtype", "2._packed_params._packed_params"]
    assert sd["0._packed_params.dtype"] is torch.qint8
    assert sd["2._packed_params._packed_params"][1] is None
    # names select modules; the state dict loads into a fresh quantized model
    part = torch.ao.quantization.quantize_dynamic(model, {"2"})
    assert isinstance(part[0], nn.Linear) and type(part[2]).__name__ == "Linear" \
        and part[2]._get_name() == "DynamicQuantizedLinear"
    fresh = torch.ao.quantization.quantize_dynamic(
        nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4, bias=False)))
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(fresh(torch.from_numpy(x)).numpy(), out)


def test_quantize_dynamic_float16():
    model = nn.Sequential(nn.Linear(6, 3))
    qm = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.float16)
    assert repr(qm[0]) == ("DynamicQuantizedLinear(in_features=6, out_features=3, "
                           "dtype=torch.float16)")
    # (as PyTorch, only children are swapped: a bare Linear stays float)
    assert isinstance(torch.ao.quantization.quantize_dynamic(model[0]), nn.Linear)
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6)
    w16 = model[0].weight.detach().numpy().astype(np.float16).astype(np.float64)
    ref = x.astype(np.float64) @ w16.T + model[0].bias.detach().numpy()
    np.testing.assert_allclose(qm(torch.from_numpy(x)).numpy(), ref, rtol=1e-5, atol=1e-6)


def test_save_load_and_pickle_keep_parameters(tmp_path):
    import pickle
    x = torch.tensor([[1.0, -2.0, 0.75]])
    q = torch.quantize_per_tensor(x, 0.25, 3, torch.qint8)
    qc = torch.quantize_per_channel(x.t().contiguous(), torch.tensor([0.5, 0.25, 1.0]),
                                    torch.tensor([0, 1, 2]), 0, torch.quint8)
    torch.save({"q": q, "qc": qc}, tmp_path / "q.pt")
    for d in (torch.load(tmp_path / "q.pt"), pickle.loads(pickle.dumps({"q": q, "qc": qc}))):
        r, rc = d["q"], d["qc"]
        assert (r.dtype, r.q_scale(), r.q_zero_point()) == (torch.qint8, 0.25, 3)
        np.testing.assert_array_equal(r.int_repr().numpy(), [[7, -5, 6]])
        assert rc.qscheme() is torch.per_channel_affine and rc.q_per_channel_axis() == 0
        np.testing.assert_array_equal(rc.q_per_channel_zero_points().numpy(), [0, 1, 2])
        np.testing.assert_array_equal(rc.int_repr().numpy(), [[2], [0], [3]])


def test_writes_quantize_the_value():
    x = torch.tensor([[-1.0, 0.5, 2.0], [0.25, 1.25, 3.0]])
    q = torch.quantize_per_tensor(x, 0.25, 4, torch.quint8)
    f = q.clone().fill_(1.0)                         # 1.0 / 0.25 + 4 = 8
    assert f.int_repr().tolist() == [[8] * 3] * 2
    s = q.clone()
    s[0] = torch.tensor([0.5, -2.0, 100.0])         # 6, 4 - 8 -> clamp 0, 404 -> clamp 255
    assert s.int_repr().tolist() == [[6, 0, 255], [5, 9, 16]]
    c = q.clone().copy_(x * 2)
    np.testing.assert_array_equal(c.int_repr().numpy(),
                                  _np_quant(x.numpy() * 2, 0.25, 4, 0, 255))
    d = q.detach()
    assert d.is_quantized and d.q_zero_point() == 4 and bool(q[0, 0]) is True
    assert bool(torch.quantize_per_tensor(torch.tensor([0.0]), 0.1, 5, torch.quint8)) is False
    before = q.int_repr().numpy().copy()
    with pytest.raises(RuntimeError, match="Copying from quantized Tensor to non-quantized"):
        torch.empty(2, 3).copy_(q)
    with pytest.raises(RuntimeError, match="empty_strided not supported"):
        q.add_(1)
    with pytest.raises(NotImplementedError, match="aten::zero_"):
        q.zero_()
    with pytest.raises(RuntimeError, match="Quantized copy only works with contiguous"):
        q[:, 1] = torch.tensor([5.0, -5.0])
    np.testing.assert_array_equal(q.int_repr().numpy(), before)
    r = q.clone().relu_()
    np.testing.assert_array_equal(r.int_repr().numpy(), np.maximum(before, 4))


def _np_sigmoid(v):
    return 1 / (1 + np.exp(-v))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_quantize_dynamic_rnn_matches_numpy(kind):
    rng = np.random.default_rng(1)
    model = nn.Sequential(getattr(nn, kind)(3, 4, batch_first=True))
    qm = torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.GRU}, dtype=torch.qint8)
    assert repr(qm[0]) == f"DynamicQuantized{kind}(3, 4, batch_first=True)"
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out = qm[0](torch.from_numpy(x))
    y, hn = out[0].numpy(), (out[1][0] if kind == "LSTM" else out[1]).numpy()
    p = {n: v.detach().numpy().astype(np.float64) for n, v in model[0].named_parameters()}
    xs = x.transpose(1, 0, 2).astype(np.float64)          # (T, B, in)
    # the input projection of the whole sequence is quantized at once, the hidden state's
    # projection at every step
    xw = _np_dynamic_linear(xs.reshape(10, 3), p["weight_ih_l0"], p["bias_ih_l0"])[0]
    xw = xw.reshape(5, 2, -1)
    h, c, ys = np.zeros((2, 4)), np.zeros((2, 4)), []
    for t in range(5):
        hw = _np_dynamic_linear(h, p["weight_hh_l0"], p["bias_hh_l0"])[0]
        if kind == "LSTM":
            i, f, g, o = np.split(xw[t] + hw, 4, axis=1)
            c = _np_sigmoid(f) * c + _np_sigmoid(i) * np.tanh(g)
            h = _np_sigmoid(o) * np.tanh(c)
        else:
            ir, iz, in_ = np.split(xw[t], 3, axis=1)
            hr, hz, hn_ = np.split(hw, 3, axis=1)
            r, z = _np_sigmoid(ir + hr), _np_sigmoid(iz + hz)
            n = np.tanh(in_ + r * hn_)
            h = (1 - z) * n + z * h
        ys.append(h)
    np.testing.assert_allclose(y, np.stack(ys, 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hn, h[None], rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError, match="input must have 3 dimensions, got 2"):
        qm[0](torch.from_numpy(x[0]))
    assert list(qm.state_dict()) == ["0._all_weight_values.0.param"]
