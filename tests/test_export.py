"""torch.export: export -> ExportedProgram (aten graph, signature, printing), .module() against
NumPy references, Dim / dynamic_shapes, bad inputs, save/load."""
import dataclasses
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


def test_lstm_gru_rnn_export_as_one_aten_call(tmp_path):
    from test_nn_rnn import np_lstm_dir, np_gru_dir, np_rnn_dir
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3)
    ep = export(lstm, (x,))
    s = str(ep)
    assert ('zeros: "f32[1, 2, 4]" = torch.ops.aten.zeros.default([1, 2, 4], dtype = '
            "torch.float32, device = device(type='cpu'), pin_memory = False)") in s
    assert ("lstm = torch.ops.aten.lstm.input(input_1, [zeros, zeros_1], [p_weight_ih_l0, "
            "p_weight_hh_l0, p_bias_ih_l0, p_bias_hh_l0], True, 1, 0.0, True, False, True)") in s
    assert 'getitem_2: "f32[1, 2, 4]" = lstm[2];  lstm = None' in s
    assert ep.graph_signature.user_outputs == ("getitem", "getitem_1", "getitem_2")
    w = [getattr(lstm, n).detach().numpy().astype(np.float64) for n in lstm._flat_weights_names]
    xn = x.numpy().astype(np.float64)
    ref_y, ref_h, ref_c = np_lstm_dir(xn.transpose(1, 0, 2), np.zeros((2, 4)), np.zeros((2, 4)),
                                      *w)
    y, (h, c) = ep.module()(x)                       # torch's (output, (h_n, c_n)) structure
    np.testing.assert_allclose(y.detach().numpy(), ref_y.transpose(1, 0, 2), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(h.detach().numpy()[0], ref_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.detach().numpy()[0], ref_c, rtol=1e-5, atol=1e-6)
    # inside a module, with the states given: no zeros; an unused getitem stays, as torch's
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 4, num_layers=2)

        def forward(self, x, h):
            y, h = self.rnn(x, h)
            return y.relu()
    m = M()
    x, h0 = torch.randn(5, 2, 3), torch.randn(2, 2, 4)
    ep = export(m, (x, h0))
    s = str(ep)
    assert "gru = torch.ops.aten.gru.input(x, h, [p_rnn_weight_ih_l0, " in s
    assert "p_rnn_bias_hh_l1], True, 2, 0.0, True, False, False)" in s
    assert "getitem_1: \"f32[2, 2, 4]\" = gru[1];  gru = getitem_1 = None" in s
    ws = [getattr(m.rnn, n).detach().numpy().astype(np.float64)
          for n in m.rnn._flat_weights_names]
    y0, _ = np_gru_dir(x.numpy().astype(np.float64), h0.numpy()[0].astype(np.float64), *ws[:4])
    y1, _ = np_gru_dir(y0, h0.numpy()[1].astype(np.float64), *ws[4:])
    np.testing.assert_allclose(ep.module()(x, h0).detach().numpy(), np.maximum(y1, 0),
                               rtol=1e-5, atol=1e-6)
    # unbatched, relu, no bias: unsqueeze / squeeze around the call; save / load keep it
    rnn = nn.RNN(3, 4, nonlinearity="relu", bias=False)
    x = torch.randn(5, 3)
    ep = export(rnn, (x,))
    assert "torch.ops.aten.rnn_relu.input(unsqueeze, zeros, [p_weight_ih_l0, p_weight_hh_l0], " \
        "False, 1, 0.0, True, False, False)" in str(ep)
    torch.export.save(ep, tmp_path / "rnn.pt2")
    y, hn = torch.export.load(tmp_path / "rnn.pt2").module()(x)
    wr = [getattr(rnn, n).detach().numpy().astype(np.float64) for n in ("weight_ih_l0",
                                                                        "weight_hh_l0")]
    ref_y, ref_h = np_rnn_dir(x.numpy().astype(np.float64)[:, None], np.zeros((1, 4)), *wr, 0, 0,
                              lambda v: np.maximum(v, 0))
    assert tuple(y.shape) == (5, 4) and tuple(hn.shape) == (1, 4)
    np.testing.assert_allclose(y.detach().numpy(), ref_y[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hn.detach().numpy(), ref_h, rtol=1e-5, atol=1e-6)
    # a dynamic batch: the zero states take it from sym_size
    gru = nn.GRU(3, 4)
    ep = export(gru, (torch.randn(5, 2, 3),), dynamic_shapes=({1: Dim("b")},))
    assert ('zeros: "f32[1, s0, 4]" = torch.ops.aten.zeros.default([1, sym_size_int, 4], '
            "dtype = torch.float32") in str(ep)
    x = torch.randn(5, 4, 3)
    y, hn = ep.module()(x)
    wg = [getattr(gru, n).detach().numpy().astype(np.float64) for n in gru._flat_weights_names]
    ref_y, ref_h = np_gru_dir(x.numpy().astype(np.float64), np.zeros((4, 4)), *wg)
    np.testing.assert_allclose(y.detach().numpy(), ref_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hn.detach().numpy()[0], ref_h, rtol=1e-5, atol=1e-6)
    # the module's own checks run at export
    with pytest.raises(RuntimeError, match=r"input.size\(-1\) must be equal to input_size"):
        export(nn.LSTM(3, 4), (torch.randn(5, 2, 2),))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
        export(M(), (torch.randn(5, 2, 3), torch.randn(1, 2, 4)))


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("n", torch.zeros(()))
        self.register_buffer("acc", torch.zeros(3))
        self.register_buffer("z", torch.ones(3))

    def forward(self, x, y):
        self.n += 1                       # a reassigned buffer: copy_ at the end
        self.acc.add_(x.sum(0))
        y.mul_(2)
        self.z.fill_(3.0)
        return x * self.n + self.z, y


def test_buffer_mutation_in_graph_and_module():
    m = Counter()
    ep = export(m, (torch.randn(2, 3), torch.randn(2, 3)))
    assert m.n.item() == 0 and m.acc.abs().sum().item() == 0      # export ran on copies
    s = str(ep)
    assert 'add_: "f32[]" = torch.ops.aten.add_.Tensor(b_n, 1)\n' in s
    assert "torch.ops.aten.add_.Tensor(b_acc, sum_1);  b_acc = sum_1 = add__1 = None" in s
    assert "mul: \"f32[2, 3]\" = torch.ops.aten.mul.Tensor(x, add_)" in s
    assert "add: \"f32[2, 3]\" = torch.ops.aten.add.Tensor(mul, fill_);  mul = fill_ = None" in s
    assert ('copy__default: "f32[]" = torch.ops.aten.copy_.default(b_n, add_);  b_n = add_ = '
            "copy__default = None\n            return (add, mul_)") in s
    assert ep.graph_signature.buffers_to_mutate == {}          # (torch 2.13: not functional)
    mod = ep.module()
    r = np.random.RandomState(8)
    x = r.randn(2, 3).astype(np.float32)
    y = r.randn(2, 3).astype(np.float32)
    yt = torch.from_numpy(y.copy())
    for k in (1, 2):
        out, y_out = mod(torch.from_numpy(x), yt)
        np.testing.assert_allclose(out.numpy(), x * k + 3.0, rtol=1e-6)
        np.testing.assert_allclose(mod.acc.numpy(), k * x.astype(np.float64).sum(0), rtol=1e-5)
        np.testing.assert_allclose(yt.numpy(), y * 2 ** k, rtol=1e-6)     # the input changed
    assert mod.n.item() == 2 and ep.state_dict["n"] is m.n and m.n.item() == 2


def test_run_decompositions_functionalizes_mutations():
    m = Counter()
    ep = export(m, (torch.randn(2, 3), torch.randn(2, 3))).run_decompositions()
    s = str(ep)
    assert 'add: "f32[]" = torch.ops.aten.add.Tensor(b_n, 1);  b_n = None' in s
    assert 'mul: "f32[2, 3]" = torch.ops.aten.mul.Tensor(y, 2);  y = None' in s
    assert ('full_like: "f32[3]" = torch.ops.aten.full_like.default(b_z, 3.0, pin_memory = '
            "False);  b_z = None") in s
    assert "return (add, add_1, full_like, mul, add_2, mul)" in s
    assert ("# outputs\n    add: BUFFER_MUTATION target='n'\n    add_1: BUFFER_MUTATION "
            "target='acc'\n    full_like: BUFFER_MUTATION target='z'\n    mul: "
            "USER_INPUT_MUTATION target='y'\n    add_2: USER_OUTPUT\n    mul: USER_OUTPUT") in s
    sig = ep.graph_signature
    assert sig.buffers_to_mutate == {"add": "n", "add_1": "acc", "full_like": "z"}
    assert sig.user_inputs_to_mutate == {"mul": "y"} and sig.user_outputs == ("add_2", "mul")
    assert "_" not in "".join(str(n.target).split(".")[1][-1] for n in ep.graph.nodes
                              if n.op == "call_function")          # no in-place op is left
    mod = ep.module()
    assert [n.name for n in mod.graph.nodes if n.op == "call_function"][-4:] == [
        "copy__default", "copy__default_1", "copy__default_2", "copy__default_3"]
    r = np.random.RandomState(9)
    x = r.randn(2, 3).astype(np.float32)
    y = r.randn(2, 3).astype(np.float32)
    yt = torch.from_numpy(y.copy())
    out, y_out = mod(torch.from_numpy(x), yt)
    np.testing.assert_allclose(out.numpy(), x + 3.0, rtol=1e-6)
    np.testing.assert_allclose(y_out.numpy(), 2 * y, rtol=1e-6)
    np.testing.assert_allclose(yt.numpy(), 2 * y, rtol=1e-6)
    np.testing.assert_allclose(mod.acc.numpy(), x.astype(np.float64).sum(0), rtol=1e-5)
    assert mod.n.item() == 1 and mod.z.numpy().tolist() == [3.0, 3.0, 3.0]
    buf = io.BytesIO()                     # the mutation outputs survive save / load
    torch.export.save(ep, buf)
    buf.seek(0)
    ep2 = torch.export.load(buf)
    assert ep2.graph_signature.buffers_to_mutate == sig.buffers_to_mutate
    mod2 = ep2.module()
    assert mod2.n.item() == 1               # (saved after one call: the state is shared)
    mod2(torch.from_numpy(x), torch.from_numpy(y.copy()))
    mod2(torch.from_numpy(x), torch.from_numpy(y.copy()))
    assert mod2.n.item() == 3


def test_batchnorm_training_export_and_decomposition():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    x = np.random.RandomState(10).randn(4, 3).astype(np.float32)
    ep = export(bn, (torch.from_numpy(x),))
    s = str(ep)
    assert ('add_: "i64[]" = torch.ops.aten.add_.Tensor(b_num_batches_tracked, 1);  '
            "b_num_batches_tracked = add_ = None") in s
    assert ("torch.ops.aten.batch_norm.default(input_1, p_weight, p_bias, b_running_mean, "
            "b_running_var, True, 0.1, 1e-05, False)") in s
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + 1e-5)
    rm, rv = 0.1 * x64.mean(0), 0.9 + 0.1 * x64.var(0, ddof=1)
    dec = ep.run_decompositions()
    s = str(dec)
    assert ("_native_batch_norm_legit_functional = torch.ops.aten._native_batch_norm_legit_"
            "functional.default(input_1, p_weight, p_bias, b_running_mean, b_running_var, "
            "True, 0.1, 1e-05)") in s
    assert "return (getitem_3, getitem_4, add, getitem)" in s
    assert dec.graph_signature.buffers_to_mutate == {
        "getitem_3": "running_mean", "getitem_4": "running_var", "add": "num_batches_tracked"}
    for prog in (ep, dec):
        mod = prog.module()
        out = mod(torch.from_numpy(x))
        np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(mod.running_mean.numpy(), rm, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(mod.running_var.numpy(), rv, rtol=1e-5)
        assert mod.num_batches_tracked.item() == 1
        with torch.no_grad():
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.num_batches_tracked.zero_()
    bn.eval()
    dec = export(bn, (torch.from_numpy(x),)).run_decompositions()
    assert ("getitem: \"f32[4, 3]\" = _native_batch_norm_legit_no_training[0];  "
            "_native_batch_norm_legit_no_training = None") in str(dec)
    assert dec.graph_signature.buffers_to_mutate == {}
    np.testing.assert_allclose(dec.module()(torch.from_numpy(x)).detach().numpy(),
                               x64 / np.sqrt(1 + 1e-5), rtol=1e-5, atol=1e-6)


def test_dims_shapes_collection_additional_inputs():
    from framework.export import dims, ShapesCollection, AdditionalInputs
    a, b = dims("a", "b", max=9)
    assert (repr(a), repr(b)) == ("Dim('a', min=0, max=9)", "Dim('b', min=0, max=9)")
    assert repr(dims("c", min=2)[0]) == "Dim('c')" and repr(Dim("d", min=3)) == "Dim('d', min=3)"

    class M(nn.Module):
        def forward(self, x, y=None):
            return x.sum(1) + y

    x, y = torch.randn(4, 3), torch.randn(4)
    sc = ShapesCollection()
    sc[x] = (Dim.AUTO, None)
    sc[y][0] = Dim("n")                      # __getitem__ gives the dict to fill
    assert len(sc) == 2
    assert sc.dynamic_shapes(M(), (x,), {"y": y}) == {"x": (Dim.AUTO, None), "y": sc[y]}
    with pytest.raises(AssertionError, match="non-tensor"):
        sc[3] = {0: Dim.AUTO}
    with pytest.raises(AssertionError, match="do not match"):
        sc[x] = (None, None)
    sc2 = ShapesCollection()
    sc2[torch.randn(3)] = {0: Dim.AUTO}
    with pytest.raises(ValueError, match="were not found in args"):
        sc2.dynamic_shapes(M(), (x,), {"y": y})
    n = Dim("n")
    sc3 = ShapesCollection()
    sc3[x], sc3[y] = {0: n}, {0: n}
    ep = export(M(), (x,), {"y": y}, dynamic_shapes=sc3)
    assert ep.range_constraints == {"s0": (0, float("inf"))} and 'y: "f32[s0]"' in str(ep)
    ai = AdditionalInputs()
    ai.add((torch.randn(7, 3),), {"y": torch.randn(7)})
    assert ai.dynamic_shapes(M(), (x,), {"y": y}) == {"x": (Dim.DYNAMIC, None),
                                                      "y": (Dim.DYNAMIC,)}

    class Two(nn.Module):
        def forward(self, x, y=None):
            return x.sum(1), y + 1
    ep = export(Two(), (x,), {"y": y}, dynamic_shapes=ai)
    assert 'x: "f32[s0, 3]", y: "f32[s1]"' in str(ep)
    assert ep.range_constraints == {"s0": (2, float("inf")), "s1": (2, float("inf"))}
    xn = np.random.RandomState(11).randn(7, 3).astype(np.float32)
    s_, y_ = ep.module()(torch.from_numpy(xn), y=torch.ones(5))
    np.testing.assert_allclose(s_.numpy(), xn.astype(np.float64).sum(1), rtol=1e-5)
    np.testing.assert_array_equal(y_.numpy(), np.full(5, 2.0))
    with pytest.raises(AssertionError, match="must be a tuple"):
        ai.add([x])
    with pytest.raises(AssertionError, match="must be None or a dict"):
        ai.add((x,), [y])
    for y0, y1, msg in [(y, 1.5, "Node type mismatch"), (2, 1.5, r"differing types.*\(2, 1.5\)"),
                        (1.5, 2.5, r"differing values.*\(1.5, 2.5\)")]:
        bad = AdditionalInputs()
        bad.add((torch.randn(5, 3),), {"y": y1})
        with pytest.raises(ValueError, match=msg):
            bad.dynamic_shapes(M(), (x,), {"y": y0})
    ints = AdditionalInputs()
    ints.add((torch.randn(5, 3),), {"y": 4})
    assert ints.dynamic_shapes(M(), (x,), {"y": 3}) == {"x": (Dim.DYNAMIC, None),
                                                        "y": Dim.DYNAMIC}


def test_module_call_graph_draft_export_and_decomp_table(tmp_path):
    from framework.export import (draft_export, default_decompositions, ModuleCallEntry,
                                  ModuleCallSignature, TensorArgument)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.sub = nn.Sequential(nn.SiLU())

        def forward(self, x, y):
            return {"a": self.sub(self.fc(x)), "b": (y + 1, 2)}
    m = M()
    x, y = torch.randn(4, 3), torch.randn(2)
    ep = export(m, (x,), {"y": y}, preserve_module_call_signature=("fc",))
    mcg = ep.module_call_graph
    assert [e.fqn for e in mcg] == ["", "fc", "sub", "sub.0"]
    root = mcg[0].signature
    assert isinstance(mcg[0], ModuleCallEntry) and isinstance(root, ModuleCallSignature)
    assert root.forward_arg_names == ["x", "y"] and root.inputs == [] == root.outputs
    assert str(root.in_spec) == ("TreeSpec(tuple, None, [TreeSpec(tuple, None, [*]),\n  "
                                 "TreeSpec(dict, ['y'], [*])])")
    assert str(root.out_spec) == ("TreeSpec(dict, ['a', 'b'], [*,\n  TreeSpec(tuple, None, "
                                  "[*,\n    *])])")
    fc = mcg[1].signature
    assert fc.inputs == [TensorArgument("x")] and fc.outputs == [TensorArgument("linear")]
    assert str(fc.out_spec) == "*" and fc.forward_arg_names is None
    assert mcg[2].signature is None
    torch.export.save(ep, tmp_path / "m.pt2")
    assert torch.export.load(tmp_path / "m.pt2").module_call_graph == mcg
    d = draft_export(m, (x,), {"y": y})
    assert str(d) == str(export(m, (x,), {"y": y}))
    assert d._report.successful() and d._report.failures == []
    assert "Congratulations: No issues are found during export" in str(d._report)
    with pytest.raises(NotImplementedError):
        d._report.apply_suggested_fixes()
    table = default_decompositions()
    lin, silu = torch.ops.aten.linear.default, torch.ops.aten.silu.default
    assert lin in table and silu in table and torch.ops.aten.relu.default not in table
    dec = ep.run_decompositions()
    assert [str(n.target) for n in dec.graph.nodes if n.op == "call_function"][:4] == [
        "aten.permute.default", "aten.addmm.default", "aten.sigmoid.default",
        "aten.mul.Tensor"]
    table.pop(lin)
    kept = ep.run_decompositions(table)
    assert [str(n.target) for n in kept.graph.nodes if n.op == "call_function"][:3] == [
        "aten.linear.default", "aten.sigmoid.default", "aten.mul.Tensor"]
    none = ep.run_decompositions({})
    assert [str(n.target) for n in none.graph.nodes if n.op == "call_function"][:2] == [
        "aten.linear.default", "aten.silu.default"]
    xn = np.random.RandomState(12).randn(4, 3).astype(np.float64)
    w, b = m.fc.weight.detach().numpy().astype(np.float64), m.fc.bias.detach().numpy()
    h = xn @ w.T + b
    for prog in (dec, kept, none):
        out = prog.module()(torch.from_numpy(xn.astype(np.float32)), y=y)
        np.testing.assert_allclose(out["a"].detach().numpy(), h / (1 + np.exp(-h)), rtol=1e-5,
                                   atol=1e-6)
    table[lin] = lambda *a: None
    with pytest.raises(NotImplementedError, match="custom decomposition"):
        ep.run_decompositions(table)


def test_run_decompositions_more_of_the_default_table():
    F = nn.functional

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln = nn.LayerNorm(3)
            self.fc = nn.Linear(3, 2)

        def forward(self, x, z):
            a = F.silu(self.fc(self.ln(x)))                 # 3-D linear: view, mm, view
            b = torch.matmul(x, x.t()) + x.transpose(0, 1).squeeze().sum()
            c = torch.stack([x, x], 1).reshape(3, -1)
            d = F.max_pool2d(z, 2).sum() + F.adaptive_avg_pool2d(z, 1).sum()
            return a, b, F.dropout(c, 0.5, training=False), F.gelu(d, approximate="tanh")
    torch.manual_seed(0)
    m = M()
    x, z = torch.randn(3, 3), torch.randn(1, 2, 4, 4)
    ep = export(m, (x, z))
    assert ("torch.ops.aten.layer_norm.default(x, [3], p_ln_weight, p_ln_bias, 1e-05, False)"
            in str(ep))
    dec = ep.run_decompositions()
    code = dec.graph_module.code
    for line in [
            "native_layer_norm = torch.ops.aten.native_layer_norm.default(x, [3], p_ln_weight, "
            "p_ln_bias, 1e-05);  p_ln_weight = p_ln_bias = None",
            "getitem = native_layer_norm[0];  native_layer_norm = None",
            "permute = torch.ops.aten.permute.default(p_fc_weight, [1, 0])",
            "addmm = torch.ops.aten.addmm.default(p_fc_bias, getitem, permute)",
            "sigmoid = torch.ops.aten.sigmoid.default(addmm)",
            "mul = torch.ops.aten.mul.Tensor(addmm, sigmoid)",
            "mm = torch.ops.aten.mm.default(x, permute_1)",
            "squeeze = torch.ops.aten.squeeze.dims(permute_2, [0, 1])",
            "sum_1 = torch.ops.aten.sum.dim_IntList(squeeze, [])",
            "cat = torch.ops.aten.cat.default([x, x], 1)",
            "view = torch.ops.aten.view.default(cat, [3, 2, 3])",
            "view_1 = torch.ops.aten.view.default(view, [3, -1])",
            "max_pool2d_with_indices = torch.ops.aten.max_pool2d_with_indices.default(z, [2, 2])",
            "getitem_3 = max_pool2d_with_indices[0];  max_pool2d_with_indices = None",
            "mean = torch.ops.aten.mean.dim(z, [-1, -2], True)",
            "clone = torch.ops.aten.clone.default(view_1)",
            "gelu = torch.ops.aten.gelu.default(add_1, approximate = 'tanh')"]:
        assert line in code, line
    # NumPy references for every output
    xn = np.random.RandomState(13).randn(3, 3)
    zn = np.random.RandomState(14).randn(1, 2, 4, 4)
    mu, var = xn.mean(1, keepdims=True), xn.var(1, keepdims=True)
    ln = (xn - mu) / np.sqrt(var + 1e-5) * m.ln.weight.detach().numpy() + \
        m.ln.bias.detach().numpy()
    h = ln @ m.fc.weight.detach().numpy().T.astype(np.float64) + m.fc.bias.detach().numpy()
    d = zn.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)).sum() + zn.mean(axis=(2, 3)).sum()
    gelu_t = 0.5 * d * (1 + np.tanh(np.sqrt(2 / np.pi) * (d + 0.044715 * d ** 3)))
    for prog in (ep, dec):
        a, b, c, g = prog.module()(torch.from_numpy(xn.astype(np.float32)),
                                   torch.from_numpy(zn.astype(np.float32)))
        np.testing.assert_allclose(a.detach().numpy(), h / (1 + np.exp(-h)), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(b.numpy(), xn @ xn.T + xn.sum(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(c.numpy(), np.stack([xn, xn], 1).reshape(3, -1), rtol=1e-6)
        np.testing.assert_allclose(g.numpy(), gelu_t, rtol=1e-5)


def test_zeros_factory_and_its_decomposition():
    class M(nn.Module):
        def forward(self, x):
            return x + torch.zeros(x.shape[0], 2), torch.zeros(x.size(1), dtype=torch.float64)
    ep = export(M(), (torch.randn(3, 2),))
    code = ep.graph_module.code
    assert ("zeros = torch.ops.aten.zeros.default([3, 2], device = device(type='cpu'), "
            "pin_memory = False)") in code
    assert ("zeros_1 = torch.ops.aten.zeros.default([2], dtype = torch.float64, device = "
            "device(type='cpu'), pin_memory = False)") in code
    dec = ep.run_decompositions()
    assert ("full_1 = torch.ops.aten.full.default([2], 0, dtype = torch.float64, layout = "
            "torch.strided, device = device(type='cpu'), pin_memory = False)") in \
        dec.graph_module.code
    x = np.random.RandomState(15).randn(3, 2).astype(np.float32)
    for prog in (ep, dec):
        a, z = prog.module()(torch.from_numpy(x))
        np.testing.assert_array_equal(a.numpy(), x)
        assert z.dtype == torch.float64 and z.numpy().tolist() == [0.0, 0.0]


@dataclasses.dataclass
class _DIn:
    a: torch.Tensor
    b: torch.Tensor


@dataclasses.dataclass
class _DOut:
    s: torch.Tensor
    d: torch.Tensor


torch.export.register_dataclass(_DIn, serialized_type_name="test_export._DIn")
torch.export.register_dataclass(_DOut, serialized_type_name="test_export._DOut")


def test_register_dataclass_inputs_and_outputs(tmp_path):
    class M(nn.Module):
        def forward(self, inp, k):
            return _DOut(inp.a + inp.b * k, inp.a - inp.b)
    r = np.random.RandomState(16)
    a, b, k = (r.randn(2).astype(np.float32) for _ in range(3))
    ex = _DIn(torch.from_numpy(a), torch.from_numpy(b))
    ep = export(M(), (ex, torch.from_numpy(k)))
    s = str(ep)
    assert 'def forward(self, inp_a: "f32[2]", inp_b: "f32[2]", k: "f32[2]"):' in s
    assert "mul: \"f32[2]\" = torch.ops.aten.mul.Tensor(inp_b, k);  k = None" in s
    assert ep.graph_signature.user_inputs == ("inp_a", "inp_b", "k")
    assert str(ep.module_call_graph[0].signature.in_spec) == (
        "TreeSpec(tuple, None, [TreeSpec(tuple, None, [TreeSpec(_DIn, [['a', 'b'], []], [*,\n"
        "      *]),\n    *]),\n  TreeSpec(dict, [], [])])")
    torch.export.save(ep, tmp_path / "d.pt2")
    for prog in (ep, ep.run_decompositions(), torch.export.load(tmp_path / "d.pt2")):
        out = prog.module()(ex, torch.ones(2))
        assert type(out) is _DOut
        np.testing.assert_allclose(out.s.numpy(), a + b, rtol=1e-6)
        np.testing.assert_allclose(out.d.numpy(), a - b, rtol=1e-6)
    with pytest.raises(ValueError, match="Trying to flatten user inputs with exported input tree"):
        ep.module()(_DOut(torch.ones(2), torch.ones(2)), torch.ones(2))
    with pytest.raises(AssertionError, match=r"Guard failed: inp_a.size\(\)\[0\] == 2"):
        ep.module()(_DIn(torch.ones(3), torch.ones(2)), torch.ones(2))


def test_draft_export_reports_a_specialized_dim():
    from framework.export import draft_export

    class M(nn.Module):
        def forward(self, x, y):
            return x + torch.ones(4), y * 2
    with pytest.raises(torch.export.UserError, match="specialized it to be a constant"):
        export(M(), (torch.randn(4), torch.randn(3)),
               dynamic_shapes=({0: Dim("n")}, [Dim("m")]))
    d = draft_export(M(), (torch.randn(4), torch.randn(3)),
                     dynamic_shapes=({0: Dim("n")}, [Dim("m")]))
    rep = d._report
    assert not rep.successful() and len(rep.failures) == 1
    f = rep.failures[0]
    assert str(f.failure_type) == "GUARD_ADDED" and f.data["expr"] == "Eq(s0, 4)"
    assert f.data["symbol_to_sources"] == {"s0": "L['x'].size()[0]"}
    assert f.data["new_dynamic_shapes"][0] == {0: Dim.AUTO}
    assert "WARNING: 1 issue(s) found during export" in str(rep) and "1. Guard Added." in str(rep)
    assert 'x: "f32[4]", y: "f32[s1]"' in str(d)            # x made static, y still dynamic
    a, b = d.module()(torch.ones(4), torch.full((6,), 3.0))
    assert a.numpy().tolist() == [2.0] * 4 and b.numpy().tolist() == [6.0] * 6
    with pytest.raises(AssertionError, match=r"x.size\(\)\[0\] == 4"):
        d.module()(torch.ones(5), torch.ones(2))
