"""torch.export: export -> ExportedProgram (aten graph, signature, printing), .module() against
NumPy references, Dim / dynamic_shapes, bad inputs, save/load."""
import io

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.export import export, Dim


class LinRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.fc(x))


class WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.register_buffer("scale", torch.tensor([[[2.0]], [[0.5]], [[-1.0]]]))

    def forward(self, x):
        y = self.conv(x) * self.scale
        return torch.flatten(y, 1).sum(dim=1) + 1.0, y.view(y.size(0), -1)


def _np_linrelu(m, x):
    w, b = m.fc.weight.detach().numpy().astype(np.float64), m.fc.bias.detach().numpy()
    return np.maximum(x.astype(np.float64) @ w.T + b, 0)


def _np_conv(x, w, b):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(h):
        for j in range(wd):
            out[:, :, i, j] = np.einsum("nckl,ockl->no", xp[:, :, i:i + 3, j:j + 3], w)
    return out + b[None, :, None, None]


def test_linear_relu_program_and_module():
    torch.manual_seed(0)
    m = LinRelu()
    ep = export(m, (torch.randn(2, 3),))
    s = str(ep)
    assert s.startswith("ExportedProgram:\n    class GraphModule(torch.nn.Module):\n"
                        '        def forward(self, p_fc_weight: "f32[4, 3]", p_fc_bias: "f32[4]",'
                        ' x: "f32[2, 3]"):\n')
    assert ('linear: "f32[2, 4]" = torch.ops.aten.linear.default(x, p_fc_weight, p_fc_bias);  '
            "x = p_fc_weight = p_fc_bias = None") in s
    assert 'relu: "f32[2, 4]" = torch.ops.aten.relu.default(linear);  linear = None' in s
    assert s.endswith("Graph signature: \n    # inputs\n    p_fc_weight: PARAMETER target="
                      "'fc.weight'\n    p_fc_bias: PARAMETER target='fc.bias'\n    x: USER_INPUT"
                      "\n    \n    # outputs\n    relu: USER_OUTPUT\n    \n"
                      "Range constraints: {}\n")
    sig = ep.graph_signature
    assert sig.parameters == ("fc.weight", "fc.bias")
    assert sig.buffers == () and sig.user_inputs == ("x",) and sig.user_outputs == ("relu",)
    assert [sp.kind.name for sp in sig.input_specs] == ["PARAMETER", "PARAMETER", "USER_INPUT"]
    assert [n for n, _ in ep.named_parameters()] == ["fc.weight", "fc.bias"]
    assert set(ep.state_dict) == {"fc.weight", "fc.bias"}
    assert [str(n.target) for n in ep.graph.nodes if n.op == "call_function"] == \
        ["aten.linear.default", "aten.relu.default"]
    mod = ep.module()
    x = np.random.RandomState(1).randn(2, 3).astype(np.float32)
    got = mod(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, _np_linrelu(m, x), rtol=1e-5, atol=1e-6)
    assert "torch.ops.aten.linear.default" in mod.print_readable(print_output=False)
    assert [n.op for n in mod.graph.nodes][:3] == ["get_attr", "get_attr", "placeholder"]
    # the program's own GraphModule takes parameters first
    out = ep.graph_module(m.fc.weight, m.fc.bias, torch.from_numpy(x))
    np.testing.assert_allclose(out[0].detach().numpy(), _np_linrelu(m, x), rtol=1e-5,
                               atol=1e-6)
    dec = ep.run_decompositions()
    assert [str(n.target) for n in dec.graph.nodes if n.op == "call_function"] == \
        ["aten.permute.default", "aten.addmm.default", "aten.relu.default"]
    assert dec.graph_signature.user_outputs == ("relu",)
    np.testing.assert_allclose(dec.module()(torch.from_numpy(x)).detach().numpy(),
                               _np_linrelu(m, x), rtol=1e-5, atol=1e-6)


def test_call_directly_and_static_shape_guard():
    ep = export(LinRelu(), (torch.randn(2, 3),))
    with pytest.raises(RuntimeError, match=r"exported_program.module\(\)"):
        ep(torch.randn(2, 3))
    mod = ep.module()
    with pytest.raises(AssertionError, match=r"Guard failed: x.size\(\)\[0\] == 2"):
        mod(torch.randn(3, 3))
    with pytest.raises(AssertionError, match=r"Guard failed: x.size\(\)\[1\] == 3"):
        mod(torch.randn(2, 5))
    with pytest.raises(ValueError, match="torch.nn.Module"):
        export(lambda x: x, (torch.randn(2),))


def test_buffer_conv_and_shape_reads():
    torch.manual_seed(0)
    m = WithBuffer()
    ep = export(m, (torch.randn(2, 2, 4, 4),))
    sig = ep.graph_signature
    assert sig.buffers == ("scale",)
    assert sig.inputs_to_buffers == {"b_scale": "scale"}
    s = str(ep)
    assert ("torch.ops.aten.conv2d.default(x, p_conv_weight, p_conv_bias, [1, 1], [1, 1])"
            in s)
    assert 'sum_1: "f32[2]" = torch.ops.aten.sum.dim_IntList(flatten, [1])' in s
    assert "torch.ops.aten.view.default(mul, [2, -1])" in s      # y.size(0) specialized
    assert "b_scale: BUFFER target='scale' persistent=True" in s
    x = np.random.RandomState(2).randn(2, 2, 4, 4).astype(np.float32)
    a, v = ep.module()(torch.from_numpy(x))
    ref = _np_conv(x.astype(np.float64), m.conv.weight.detach().numpy().astype(np.float64),
                   m.conv.bias.detach().numpy().astype(np.float64))
    ref = ref * np.array([2.0, 0.5, -1.0])[None, :, None, None]
    np.testing.assert_allclose(v.detach().numpy(), ref.reshape(2, -1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a.detach().numpy(), ref.reshape(2, -1).sum(1) + 1.0, rtol=1e-4,
                               atol=1e-4)
    assert m.scale.shape == (3, 1, 1) and not hasattr(m, "_tensor_constant0")
    dec = ep.run_decompositions()
    assert ("torch.ops.aten.convolution.default(x, p_conv_weight, p_conv_bias, [1, 1], [1, 1], "
            "[1, 1], False, [0, 0], 1)") in str(dec)
    a2, v2 = dec.module()(torch.from_numpy(x))
    np.testing.assert_allclose(v2.detach().numpy(), ref.reshape(2, -1), rtol=1e-4, atol=1e-5)


def test_dynamic_batch_dim():
    torch.manual_seed(0)
    m = LinRelu()
    batch = Dim("batch", min=1, max=64)
    assert repr(batch) == "Dim('batch', min=1, max=64)"
    assert repr(Dim("b")) == "Dim('b', min=0)"
    ep = export(m, (torch.randn(4, 3),), dynamic_shapes={"x": {0: batch}})
    s = str(ep)
    assert 'x: "f32[s0, 3]"' in s and 'relu: "f32[s0, 4]"' in s
    assert "Range constraints: {s0: VR[1, 64]}" in s
    mod = ep.module()
    x = np.random.RandomState(3).randn(7, 3).astype(np.float32)
    np.testing.assert_allclose(mod(torch.from_numpy(x)).detach().numpy(), _np_linrelu(m, x),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(AssertionError, match=r"Guard failed: x.size\(\)\[0\] <= 64"):
        mod(torch.randn(65, 3))
    with pytest.raises(AssertionError, match=r"Guard failed: x.size\(\)\[1\] == 3"):
        mod(torch.randn(5, 4))
    # shape reads stay symbolic: view(x.size(0), -1) works at another batch size
    ep2 = export(WithBuffer(), (torch.randn(2, 2, 4, 4),),
                 dynamic_shapes=({0: Dim.AUTO},))
    assert "torch.ops.aten.view.default(mul, [sym_size_int, -1])" in str(ep2)
    a, v = ep2.module()(torch.randn(5, 2, 4, 4))
    assert a.shape == (5,) and v.shape == (5, 48)


def test_dynamic_shapes_errors():
    class Specialized(nn.Module):
        def forward(self, x):
            return x + torch.ones(4, 3)
    with pytest.raises(RuntimeError, match=r"Constraints violated \(batch\)"):
        export(Specialized(), (torch.randn(4, 3),), dynamic_shapes={"x": {0: Dim("batch")}})
    with pytest.raises(RuntimeError, match="top-level keys must be the arg names"):
        export(LinRelu(), (torch.randn(4, 3),), dynamic_shapes={"z": {0: Dim("b")}})
    with pytest.raises(RuntimeError, match=r"4 not in range \[2, 3\]"):
        export(LinRelu(), (torch.randn(4, 3),), dynamic_shapes=({0: Dim("b", min=2, max=3)},))
    with pytest.raises(IndexError, match="Dimension out of range"):
        export(LinRelu(), (torch.randn(4, 3),), dynamic_shapes=({5: Dim("b")},))
    with pytest.raises(AssertionError, match="inconsistent"):
        Dim("b", min=5, max=2)


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    m = WithBuffer()
    ep = export(m, (torch.randn(2, 2, 4, 4),), dynamic_shapes=({0: Dim("batch", max=8)},))
    path = tmp_path / "m.pt2"
    torch.export.save(ep, path)
    ep2 = torch.export.load(path)
    assert str(ep2) == str(ep)
    assert ep2.graph_signature.buffers == ("scale",)
    x = torch.randn(3, 2, 4, 4)
    for a, b in zip(ep.module()(x), ep2.module()(x)):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    with pytest.raises(AssertionError, match=r"<= 8"):
        ep2.module()(torch.randn(9, 2, 4, 4))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    assert str(torch.export.load(buf)) == str(ep)
    with pytest.raises(TypeError, match="ExportedProgram"):
        torch.export.save(m, io.BytesIO())


def test_inplace_buffer_comparisons_structured_outputs():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", torch.zeros(()))
            self.w = torch.tensor([1.0, -2.0, 3.0])           # plain attribute: a constant

        def forward(self, x, y=None):
            self.count.add_(1)
            if x.shape[0] > 1:                                 # specialized at export
                x = x * 2
            return {"a": x + self.w + self.count, "b": [x > 0, x[:, 1:]]}
    m = M()
    xe = torch.randn(2, 3)
    ep = export(m, (xe,))
    assert m.count.item() == 0                       # export ran on copies
    sig = ep.graph_signature
    assert sig.buffers == ("count",) and sig.lifted_tensor_constants == ("w",)
    s = str(ep)
    assert "torch.ops.aten.add_.Tensor(b_count, 1)" in s
    assert "torch.ops.aten.gt.Scalar(mul, 0)" in s
    assert "torch.ops.aten.slice.Tensor(mul, 1, 1)" in s
    mod = ep.module()
    x = np.random.RandomState(4).randn(2, 3).astype(np.float32)
    out = mod(torch.from_numpy(x))
    ref = 2 * x.astype(np.float64) + np.array([1.0, -2.0, 3.0]) + 1.0
    np.testing.assert_allclose(out["a"].numpy(), ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out["b"][0].numpy(), 2 * x > 0)
    np.testing.assert_allclose(out["b"][1].numpy(), 2 * x[:, 1:], rtol=1e-6)
    assert mod.count.item() == 1 and ep.state_dict["count"].item() == 1
    with pytest.raises(ValueError, match="kwarg keyword mismatch"):
        mod(torch.from_numpy(x), y=torch.zeros(1))
    with pytest.raises(ValueError, match="same number and type of args"):
        mod(torch.from_numpy(x), torch.zeros(1))


def test_inplace_relu_and_batchnorm_eval():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(3)
            self.pool = nn.MaxPool2d(2, 2)

        def forward(self, x):
            return nn.functional.relu(self.bn(x), inplace=True), self.pool(x.view(1, 1, 2, 3))
    m = Net().eval()
    with torch.no_grad():
        m.bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        m.bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    ep = export(m, (torch.randn(2, 3),))
    s = str(ep)
    assert ("torch.ops.aten.batch_norm.default(x, p_bn_weight, p_bn_bias, b_bn_running_mean, "
            "b_bn_running_var, False, 0.1, 1e-05, False)") in s
    assert "torch.ops.aten.relu_.default(batch_norm)" in s
    assert "torch.ops.aten.max_pool2d.default(view, [2, 2], [2, 2])" in s
    x = np.random.RandomState(5).randn(2, 3).astype(np.float32)
    a, b = ep.module()(torch.from_numpy(x))
    ref = (x - np.array([0.5, -1.0, 2.0])) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-5)
    np.testing.assert_allclose(a.detach().numpy(), np.maximum(ref, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.numpy().ravel(), [x.reshape(2, 3)[:, :2].max()], rtol=1e-6)


def test_auto_dim_falls_back_to_static_and_input_name():
    class Fixed(nn.Module):
        def forward(self, input):
            return input + torch.ones(4, 3)
    ep = export(Fixed(), (torch.randn(4, 3),), dynamic_shapes=({0: Dim.AUTO},))
    assert ep.range_constraints == {}
    s = str(ep)
    assert 'def forward(self, c_tensor_constant0: "f32[4, 3]", input: "f32[4, 3]"):' in s
    assert "    input: USER_INPUT\n" in s
    x = np.random.RandomState(6).randn(4, 3).astype(np.float32)
    np.testing.assert_allclose(ep.module()(torch.from_numpy(x)).numpy(), x + 1.0, rtol=1e-6)
    with pytest.raises(AssertionError, match=r"input.size\(\)\[0\] == 4"):
        ep.module()(torch.randn(5, 3))


def test_symbolic_shape_annotations():
    class M(nn.Module):
        def forward(self, x):
            return x.flatten(), torch.cat([x, x], 0), x[1:]
    ep = export(M(), (torch.randn(3, 4),), dynamic_shapes=({0: Dim("a"), 1: Dim("b")},))
    s = str(ep)
    assert 'x: "f32[s0, s1]"' in s and 'flatten: "f32[s0*s1]"' in s
    assert 'cat: "f32[2*s0, s1]"' in s and 'slice_1: "f32[s0 - 1, s1]"' in s
    x = np.random.RandomState(7).randn(5, 2).astype(np.float32)
    f, c, sl = ep.module()(torch.from_numpy(x))
    np.testing.assert_array_equal(f.numpy(), x.ravel())
    np.testing.assert_array_equal(c.numpy(), np.concatenate([x, x]))
    np.testing.assert_array_equal(sl.numpy(), x[1:])
