"""torch.ao.quantization's default observers / fake-quants / QConfigs, QConfigMapping, the
module mappings, fuser methods and observer state dicts, against hand-derived values."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.ao.quantization as tq
import framework.ao.nn.quantized as nnq
import framework.ao.nn.intrinsic as nni
import framework.ao.nn.quantized.dynamic as nnqd

pytestmark = [pytest.mark.filterwarnings("ignore:Please use quant_min"),
              pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")]
f32 = np.float32


def _fq_ref(x, scale, zp, lo, hi):
    """fake quantization in float32: (clamp(round(x / scale) + zp) - zp) * scale."""
    x = np.asarray(x, f32)
    q = np.clip(np.rint(x * (f32(1) / f32(scale))) + zp, lo, hi)
    return ((q - zp) * f32(scale)).astype(f32)


X = np.array([[-1.5, -0.9921875, -0.25, 0.0], [0.1, 0.5, 0.99609375, 2.0]], f32)


@pytest.mark.parametrize("name,scale,zp", [
    ("default_fixed_qparams_range_0to1_fake_quant", 1 / 256, 0),
    ("default_fixed_qparams_range_neg1to1_fake_quant", 2 / 256, 128)])
def test_fixed_qparams_fake_quant_values_and_ste_grad(name, scale, zp):
    m = getattr(tq, name)()
    x = torch.tensor(X, requires_grad=True)
    y = m(x)
    np.testing.assert_array_equal(y.detach().numpy(), _fq_ref(X, scale, zp, 0, 255))
    s, z = m.calculate_qparams()
    assert s.tolist() == [scale] and z.tolist() == [zp] and z.dtype == torch.int32
    y.sum().backward()
    # straight-through inside the representable range, zero outside it
    q = np.rint(X / scale) + zp
    np.testing.assert_array_equal(x.grad.numpy(), ((q >= 0) & (q <= 255)).astype(f32))
    assert m.scale.tolist() == [scale]      # observing does not move the fixed parameters


def test_fixed_qparams_observer_and_errors():
    o = tq.FixedQParamsObserver(scale=0.5, zero_point=3, quant_min=-8, quant_max=7)
    x = torch.tensor([1.0, 2.0])
    assert o(x) is x
    s, z = o.calculate_qparams()
    assert s.tolist() == [0.5] and z.tolist() == [3] and (o.quant_min, o.quant_max) == (-8, 7)
    with pytest.raises(NotImplementedError, match="FixedQParamsObserver doesn't support dynamic"):
        tq.FixedQParamsObserver(0.1, 0, is_dynamic=True)
    with pytest.raises(AssertionError, match="observer must be a FixedQParamsObserver"):
        tq.FixedQParamsFakeQuantize(tq.MinMaxObserver)


def test_recording_noop_reuse_input_observers():
    r = tq.default_debug_observer()
    a, b = torch.tensor([1.0, -2.0]), torch.tensor([3.0])
    assert r(a) is a and r(b) is b
    vals = r.get_tensor_value()
    assert [v.tolist() for v in vals] == [[1.0, -2.0], [3.0]] and vals[0] is not a
    assert r.dtype == torch.quint8
    assert tq.NoopObserver().dtype == torch.float16
    assert tq.default_reuse_input_observer().dtype == torch.quint8
    for cls in (tq.RecordingObserver, tq.NoopObserver, tq.ReuseInputObserver):
        with pytest.raises(Exception, match=f"should not be called for {cls.__name__}"):
            cls().calculate_qparams()


def test_range_neg_127_to_127_observers():
    x = np.array([[-0.5, 0.25], [1.27, -2.54]], f32)
    o = tq.weight_observer_range_neg_127_to_127()
    o(torch.tensor(x))
    s, z = o.calculate_qparams()
    # symmetric: max(|min|, |max|) / ((127 - -127) / 2)
    assert s.tolist() == [float(f32(f32(2.54) / f32(127)))] and z.tolist() == [0]
    pc = tq.per_channel_weight_observer_range_neg_127_to_127()
    pc(torch.tensor(x))
    s, z = pc.calculate_qparams()
    np.testing.assert_array_equal(s.numpy(), [f32(0.5) / f32(127), f32(2.54) / f32(127)])
    tiny = tq.weight_observer_range_neg_127_to_127()
    tiny(torch.tensor([1e-6, -1e-6]))
    assert tiny.calculate_qparams()[0].tolist() == [2 ** -12]       # the eps floor


def test_float_qparams_4bit_observer():
    o = tq.default_float_qparams_observer_4bit()
    assert (o.quant_min, o.quant_max, o.dtype) == (0, 15, torch.quint4x2)
    x = np.array([[0.0, 1.5, 3.0], [-1.0, 0.0, 2.0]], f32)
    o(torch.tensor(x))
    s, z = o.calculate_qparams()
    np.testing.assert_allclose(s.numpy(), [3.0 / 15, 3.0 / 15], rtol=1e-7)
    np.testing.assert_allclose(z.numpy(), [0.0, 1.0 / (3.0 / 15)], rtol=1e-6)


def test_dynamic_fake_quant_is_memoryless():
    fq = tq.default_dynamic_fake_quant()
    assert fq.is_dynamic and fq.activation_post_process.averaging_constant == 1
    fq(torch.tensor([-4.0, 4.0]))
    y = fq(torch.tensor([0.0, 2.55, 1.0]))       # averaging constant 1: this batch's range only
    s, z = fq.scale.item(), fq.zero_point.item()
    assert z == 0 and s == pytest.approx(2.55 / 255, rel=1e-6)
    np.testing.assert_allclose(y.numpy(), _fq_ref([0.0, 2.55, 1.0], s, 0, 0, 255), atol=0)
    with pytest.raises(NotImplementedError, match="averaging constant of 0.01"):
        tq.MovingAverageMinMaxObserver(is_dynamic=True)


def test_histogram_fake_quant_outputs_lie_on_its_grid():
    fq = tq.default_histogram_fake_quant()
    assert (fq.quant_min, fq.quant_max) == (0, 127)          # reduce_range halves 0..255
    x = torch.tensor(np.linspace(-1, 3, 50, dtype=f32))
    y = fq(x).numpy()
    s, z = fq.scale.item(), fq.zero_point.item()
    q = y / s + z
    np.testing.assert_allclose(q, np.rint(q), atol=1e-3)
    assert q.min() >= -1e-3 and q.max() <= 127 + 1e-3


def test_embedding_fake_quant_float_qparams():
    fq = tq.default_embedding_fake_quant()
    assert fq.zero_point.dtype == torch.float32 and fq.ch_axis == 0
    w = np.array([[0.0, 1.0, 2.55], [-1.0, 0.0, 1.55]], f32)
    fq(torch.tensor(w))
    np.testing.assert_allclose(fq.scale.numpy(), [2.55 / 255, 2.55 / 255], rtol=1e-6)
    np.testing.assert_allclose(fq.zero_point.numpy(), [0.0, 100.0], rtol=1e-5)


def test_qconfig_reprs_match_pytorch():
    assert repr(tq.default_debug_qconfig) == (
        "QConfig(activation=<class 'torch.ao.quantization.observer.RecordingObserver'>, "
        "weight=functools.partial(<class 'torch.ao.quantization.observer.MinMaxObserver'>, "
        "dtype=torch.qint8, qscheme=torch.per_tensor_symmetric){})")
    assert repr(tq.default_weight_only_qconfig).startswith(
        "QConfig(activation=<class 'torch.nn.modules.linear.Identity'>, weight=functools."
        "partial(<class 'torch.ao.quantization.fake_quantize.FakeQuantize'>, observer=<class "
        "'torch.ao.quantization.observer.MovingAverageMinMaxObserver'>, quant_min=-128")
    assert repr(tq.fused_wt_fake_quant_range_neg_127_to_127) == (
        "functools.partial(<class 'torch.ao.quantization.fake_quantize."
        "FusedMovingAvgObsFakeQuantize'>, observer=<class 'torch.ao.quantization.observer."
        "MovingAverageMinMaxObserver'>, quant_min=-127, quant_max=127, dtype=torch.qint8, "
        "qscheme=torch.per_tensor_symmetric, eps=0.000244140625){}")
    assert repr(tq.default_embedding_qat_qconfig).startswith(
        "QConfig(activation=functools.partial(<class 'torch.ao.quantization.observer."
        "NoopObserver'>, dtype=torch.float32){}, ")
    with pytest.raises(ValueError, match="QConfig received observer instance"):
        tq.QConfig(activation=tq.MinMaxObserver(), weight=tq.MinMaxObserver)


def test_qconfig_equals():
    same = tq.QConfig(activation=tq.MinMaxObserver.with_args(quant_min=0, quant_max=127),
                      weight=tq.default_weight_observer)
    assert tq.qconfig_equals(tq.default_qconfig, same)
    assert tq.default_qconfig != same           # (partials have no ==)
    assert not tq.qconfig_equals(tq.default_qconfig, tq.default_per_channel_qconfig)
    qat = tq.QConfig(activation=tq.FakeQuantize.with_args(
        observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
        qscheme=torch.per_tensor_affine, reduce_range=True), weight=tq.default_weight_fake_quant)
    assert tq.qconfig_equals(tq.default_qat_qconfig, qat)
    assert tq.qconfig_equals(None, None) and not tq.qconfig_equals(None, tq.default_qconfig)
    assert tq.qconfig_equals(tq.default_reuse_input_qconfig,
                             tq.QConfig(tq.ReuseInputObserver, tq.NoopObserver))


def test_qconfig_mapping_setters_and_dict_round_trip():
    m = (tq.QConfigMapping().set_global(tq.default_qconfig)
         .set_object_type(nn.Linear, tq.default_qat_qconfig)
         .set_module_name_regex("b.*", None).set_module_name_regex("a.*", tq.default_qconfig)
         .set_module_name_regex("b.*", tq.default_qconfig)
         .set_module_name("x.y", None)
         .set_module_name_object_type_order("c", nn.Linear, 1, tq.default_qconfig))
    assert list(m.module_name_regex_qconfigs) == ["b.*", "a.*"]     # re-set keeps its place
    d = m.to_dict()
    assert d[""] is tq.default_qconfig and d["object_type"] == [(nn.Linear,
                                                                tq.default_qat_qconfig)]
    assert d["module_name_object_type_order"] == [("c", nn.Linear, 1, tq.default_qconfig)]
    m2 = tq.QConfigMapping.from_dict(d)
    assert m2.to_dict() == d and repr(m2) == repr(m)
    assert repr(tq.QConfigMapping()) == (
        "QConfigMapping (\n global_qconfig\n  None\n object_type_qconfigs\n  OrderedDict()\n"
        " module_name_regex_qconfigs\n  OrderedDict()\n module_name_qconfigs\n  OrderedDict()\n"
        " module_name_object_type_order_qconfigs\n  OrderedDict()\n)")


def test_default_qconfig_mappings():
    m = tq.get_default_qconfig_mapping("x86")
    assert tq.qconfig_equals(m.global_qconfig, tq.get_default_qconfig("x86"))
    sig = m.object_type_qconfigs[nn.Sigmoid]
    assert sig.activation is tq.default_fixed_qparams_range_0to1_observer
    assert m.object_type_qconfigs[torch.tanh].activation is \
        tq.default_fixed_qparams_range_neg1to1_observer
    assert m.object_type_qconfigs["reshape"] is tq.default_reuse_input_qconfig
    # x86 / fbgemm: ConvTranspose weights per tensor; qnnpack keeps the global qconfig
    assert m.object_type_qconfigs[nn.ConvTranspose2d].weight is tq.default_weight_observer
    q = tq.get_default_qconfig_mapping("qnnpack")
    assert q.object_type_qconfigs[nn.ConvTranspose2d] is q.global_qconfig
    qat = tq.get_default_qat_qconfig_mapping()
    fq = qat.object_type_qconfigs[nn.Tanh].activation()
    assert isinstance(fq, tq.FixedQParamsFakeQuantize) and fq.zero_point.tolist() == [128]
    assert qat.object_type_qconfigs[nn.Tanh].weight is tq.default_weight_fake_quant
    with pytest.raises(AssertionError, match="backend: foo not supported"):
        tq.get_default_qconfig_mapping("foo")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        d = tq.get_default_qconfig_dict()
    assert tq.qconfig_equals(d[""], m.global_qconfig) and w[0].category is FutureWarning


def test_quant_type_and_mappings():
    assert [(t.name, int(t)) for t in tq.QuantType] == [
        ("DYNAMIC", 0), ("STATIC", 1), ("QAT", 2), ("WEIGHT_ONLY", 3)]
    assert tq.get_static_quant_module_class(nn.Conv2d) is nnq.Conv2d
    assert tq.get_static_quant_module_class(nni.LinearReLU) is \
        tq.DEFAULT_STATIC_QUANT_MODULE_MAPPINGS[nni.LinearReLU]
    assert tq.get_dynamic_quant_module_class(nn.GRU) is nnqd.GRU
    assert tq.get_static_quant_module_class(nn.Tanh, {nn.Tanh: nn.Identity}) is nn.Identity
    with pytest.raises(AssertionError, match="Floating point module class <class 'torch.nn."
                       "modules.activation.Tanh'> does not have a corresponding quantized module"):
        tq.get_static_quant_module_class(nn.Tanh)
    with pytest.raises(AssertionError, match="does not have a corresponding quantized module"):
        tq.get_dynamic_quant_module_class(nn.Conv2d)
    static = tq.get_default_static_quant_module_mappings()
    static[nn.Tanh] = nn.Identity           # a copy: the table itself is unchanged
    assert nn.Tanh not in tq.DEFAULT_STATIC_QUANT_MODULE_MAPPINGS
    assert tq.get_default_qat_module_mappings()[nn.Linear] is \
        tq.DEFAULT_QAT_MODULE_MAPPINGS[nn.Linear]
    assert tq.DEFAULT_MODULE_TO_ACT_POST_PROCESS[nn.Tanh] is \
        tq.default_fixed_qparams_range_neg1to1_fake_quant
    assert tq.no_observer_set() == set()


def _bn(n, seed):
    rng = np.random.default_rng(seed)
    bn = nn.BatchNorm2d(n)
    bn.running_mean.copy_(torch.tensor(rng.uniform(-1, 1, n).astype(f32)))
    bn.running_var.copy_(torch.tensor(rng.uniform(0.5, 2, n).astype(f32)))
    bn.weight.data.copy_(torch.tensor(rng.uniform(0.5, 1.5, n).astype(f32)))
    bn.bias.data.copy_(torch.tensor(rng.uniform(-1, 1, n).astype(f32)))
    return bn.eval()


def test_fuse_convtranspose_bn_folds_into_output_channels():
    torch.manual_seed(0)
    ct, bn = nn.ConvTranspose2d(3, 4, 2).eval(), _bn(4, 1)
    f = tq.fuse_convtranspose_bn(False, ct, bn)
    g = bn.weight.detach().numpy().astype(np.float64) / np.sqrt(
        bn.running_var.numpy().astype(np.float64) + bn.eps)
    w = ct.weight.detach().numpy() * g.reshape(1, -1, 1, 1)      # out channels on dim 1
    b = (ct.bias.detach().numpy() - bn.running_mean.numpy()) * g + bn.bias.detach().numpy()
    np.testing.assert_allclose(f.weight.detach().numpy(), w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(f.bias.detach().numpy(), b, rtol=1e-6, atol=1e-6)
    assert tq.get_fuser_method((nn.ConvTranspose2d, nn.BatchNorm2d)) is tq.fuse_convtranspose_bn
    with pytest.raises(Exception, match="ConvTranspose\\+BatchNorm not yet supported in QAT"):
        tq.fuse_convtranspose_bn(True, ct, bn)
    with pytest.raises(AssertionError, match="must be in the same mode"):
        tq.fuse_convtranspose_bn(False, ct.train(), bn)


def test_fuse_conv_bn_linear_bn_functions():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(2, 4, 1).eval(), _bn(4, 2)
    f = tq.fuse_conv_bn(False, conv, bn)
    g = bn.weight.detach().numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
    np.testing.assert_allclose(f.weight.detach().numpy(),
                               conv.weight.detach().numpy() * g.reshape(-1, 1, 1, 1), rtol=1e-6)
    r = tq.fuse_conv_bn_relu(False, conv, bn, nn.ReLU().eval())
    assert isinstance(r, nni.ConvReLU2d) and isinstance(r[1], nn.ReLU)
    lb = tq.fuse_linear_bn(True, nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert isinstance(lb, nni.LinearBn1d)
    with pytest.raises(AssertionError, match="Output features of Linear must match"):
        tq.fuse_linear_bn(True, nn.Linear(3, 4), nn.BatchNorm1d(5))
    with pytest.raises(AssertionError, match="Only support fusing BatchNorm2d with affine"):
        tq.fuse_conv_bn(True, nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4, affine=False))
    with pytest.raises(AssertionError, match=r"did not find fuser method for: \(<class "
                       r"'torch.nn.modules.linear.Linear'>,\)"):
        tq.get_fuser_method((nn.Linear,))


def test_add_quant_dequant_and_default_eval_fn():
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    m[0].qconfig = tq.default_qconfig
    out = tq.add_quant_dequant(m)
    assert out is m and isinstance(m[0], tq.QuantWrapper) and isinstance(m[1], nn.ReLU)
    leaf = nn.Linear(2, 2)
    leaf.qconfig = tq.default_qconfig
    w = tq.add_quant_dequant(leaf)
    assert isinstance(w, tq.QuantWrapper) and w.module is leaf
    seen = []

    class Rec(nn.Module):
        def forward(self, x):
            seen.append(x.sum().item())
    tq.default_eval_fn(Rec(), [(torch.ones(2), 0), (torch.ones(3), 1)])
    assert seen == [2.0, 3.0]


class _Holder(nn.Module):
    def __init__(self, obs):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.activation_post_process = obs


def test_observer_state_dict_round_trip():
    a = _Holder(tq.PerChannelMinMaxObserver())
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]], f32)
    a.activation_post_process(torch.tensor(x))
    sd = tq.get_observer_state_dict(a)
    assert list(sd) == ["activation_post_process.eps", "activation_post_process.min_val",
                        "activation_post_process.max_val"]        # no lin.* entries
    b = _Holder(tq.PerChannelMinMaxObserver())      # empty running range: resized on load
    tq.load_observer_state_dict(b, sd)
    np.testing.assert_array_equal(b.activation_post_process.min_val.numpy(), [-2.0, -1.0])
    np.testing.assert_array_equal(b.activation_post_process.max_val.numpy(), [1.0, 3.0])
    c = _Holder(tq.MinMaxObserver())
    tq.load_observer_state_dict(c, {})      # (not strict: nothing to load, nothing changes)
    assert c.activation_post_process.min_val.item() == float("inf")


def test_per_channel_fake_quant_state_dict_loads_into_fresh_module():
    fq = tq.default_per_channel_weight_fake_quant()
    fq(torch.tensor(np.array([[1.27, -0.5], [0.1, 2.54], [-0.3, 0.2]], f32)))
    fresh = tq.default_per_channel_weight_fake_quant()
    fresh.load_state_dict(fq.state_dict())
    np.testing.assert_array_equal(fresh.scale.numpy(), fq.scale.numpy())
    np.testing.assert_allclose(fresh.scale.numpy(), [1.27 / 127.5, 2.54 / 127.5, 0.3 / 127.5],
                               rtol=1e-6)
    assert fresh.zero_point.tolist() == [0, 0, 0]


def test_prepare_qat_gives_fixed_range_modules_their_fake_quant():
    m = nn.Sequential(nn.Sigmoid(), nn.Tanh())
    m.qconfig = tq.get_default_qat_qconfig("x86")
    p = tq.prepare_qat(m.train())
    assert isinstance(p[0].activation_post_process, tq.FixedQParamsFakeQuantize)
    assert p[1].activation_post_process.zero_point.tolist() == [128]
    x = np.array([-3.0, -0.4, 0.0, 0.3, 5.0], f32)
    s = _fq_ref(1 / (1 + np.exp(-x.astype(np.float64))), 1 / 256, 0, 0, 255)
    want = _fq_ref(np.tanh(s.astype(np.float64)), 2 / 256, 128, 0, 255)
    np.testing.assert_allclose(p(torch.tensor(x)).numpy(), want, atol=1e-6)
    e = nn.Sequential(nn.Sigmoid())
    e.qconfig = tq.default_qconfig
    # eval mode: no fixed-range fake quant
    assert not hasattr(tq.prepare(e.eval())[0], "activation_post_process")


def test_quantize_dynamic_embedding_weight_only():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Embedding(5, 4))
    q = tq.quantize_dynamic(m, {nn.Embedding: tq.float_qparams_weight_only_qconfig})
    assert isinstance(q[0], nnq.Embedding)
    assert tq.get_dynamic_quant_module_class(nn.Embedding) is nnq.Embedding
    w = m[0].weight.detach().numpy()
    scale = (w.max(1) - w.min(1)) / 255        # per row, float zero points
    out = q(torch.tensor([1, 3])).numpy()
    assert np.all(np.abs(out - w[[1, 3]]) <= scale[[1, 3], None] / 2 + 1e-6)
