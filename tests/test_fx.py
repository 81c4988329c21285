"""framework.fx: symbolic tracing to a Graph, GraphModule code generation, graph editing,
Interpreter / Transformer / ShapeProp / replace_pattern, and the conv-bn fuser tutorial.

The expected `gm.code` and `print(gm.graph)` strings below are what torch 2.13's torch.fx
prints for the same modules (copied from its output: they are the spec)."""
import copy
import io
import operator
import time
from contextlib import redirect_stdout

import numpy as np
import pytest

import framework as torch
from framework import nn, fx
import framework.nn.functional as F
from framework.nn.functional import gelu as imported_gelu
from framework.fx.passes.shape_prop import ShapeProp
from framework.nn.utils.fusion import fuse_conv_bn_eval


def _np(t):
    return t.detach().numpy().astype(np.float64)


class MLP(nn.Module):
    def __init__(s):
        super().__init__()
        s.fc1 = nn.Linear(4, 8)
        s.fc2 = nn.Linear(8, 3)
        s.scale = nn.Parameter(torch.ones(3))
        s.register_buffer("shift", torch.zeros(3))

    def forward(s, x, bias=None):
        h = torch.relu(s.fc1(x))
        n = x.shape[0]
        y = s.fc2(h).view(n, -1) * s.scale - s.shift
        return y.sum(dim=1, keepdim=True) + x.size(1), y[:, 0:2]


class CNN(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv = nn.Conv2d(1, 2, 3)
        s.bn = nn.BatchNorm2d(2)
        s.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 4))

    def forward(s, x):
        return s.head(torch.relu(s.bn(s.conv(x))))


def fn(x, y):
    return torch.add(x, y) * x[0] + (1 - y) / 2 ** x, -x, x @ y, x.t()


def h(x, flag):
    if flag:
        return x + 1
    return x - 1


MLP_CODE = "\n".join([
    '',
    '',
    '',
    'def forward(self, x, bias = None):',
    '    fc1 = self.fc1(x)',
    '    relu = torch.relu(fc1);  fc1 = None',
    '    getattr_1 = x.shape',
    '    getitem = getattr_1[0];  getattr_1 = None',
    '    fc2 = self.fc2(relu);  relu = None',
    '    view = fc2.view(getitem, -1);  fc2 = getitem = None',
    '    scale = self.scale',
    '    mul = view * scale;  view = scale = None',
    '    shift = self.shift',
    '    sub = mul - shift;  mul = shift = None',
    '    sum_1 = sub.sum(dim = 1, keepdim = True)',
    '    size = x.size(1);  x = None',
    '    add = sum_1 + size;  sum_1 = size = None',
    '    getitem_1 = sub[(slice(None, None, None), slice(0, 2, None))];  sub = None',
    '    return (add, getitem_1)',
    '    '])

MLP_GRAPH = "\n".join([
    'graph():',
    '    %x : [num_users=3] = placeholder[target=x]',
    '    %bias : [num_users=0] = placeholder[target=bias](default=None)',
    '    %fc1 : [num_users=1] = call_module[target=fc1](args = (%x,), kwargs = {})',
    '    %relu : [num_users=1] = call_function[target=torch.relu](args = (%fc1,), kwargs = {})',
    '    %getattr_1 : [num_users=1] = call_function[target=builtins.getattr](args = (%x, shape), kwargs = {})',
    '    %getitem : [num_users=1] = call_function[target=operator.getitem](args = (%getattr_1, 0), kwargs = {})',
    '    %fc2 : [num_users=1] = call_module[target=fc2](args = (%relu,), kwargs = {})',
    '    %view : [num_users=1] = call_method[target=view](args = (%fc2, %getitem, -1), kwargs = {})',
    '    %scale : [num_users=1] = get_attr[target=scale]',
    '    %mul : [num_users=1] = call_function[target=operator.mul](args = (%view, %scale), kwargs = {})',
    '    %shift : [num_users=1] = get_attr[target=shift]',
    '    %sub : [num_users=2] = call_function[target=operator.sub](args = (%mul, %shift), kwargs = {})',
    '    %sum_1 : [num_users=1] = call_method[target=sum](args = (%sub,), kwargs = {dim: 1, keepdim: True})',
    '    %size : [num_users=1] = call_method[target=size](args = (%x, 1), kwargs = {})',
    '    %add : [num_users=1] = call_function[target=operator.add](args = (%sum_1, %size), kwargs = {})',
    '    %getitem_1 : [num_users=1] = call_function[target=operator.getitem](args = (%sub, (slice(None, None, None), slice(0, 2, None))), kwargs = {})',
    '    return (add, getitem_1)'])

MLP_NODES = [
    ('placeholder', 'x', 'x'),
    ('placeholder', 'bias', 'bias'),
    ('call_module', 'fc1', 'fc1'),
    ('call_function', 'relu', 'relu'),
    ('call_function', 'getattr_1', 'getattr'),
    ('call_function', 'getitem', 'getitem'),
    ('call_module', 'fc2', 'fc2'),
    ('call_method', 'view', 'view'),
    ('get_attr', 'scale', 'scale'),
    ('call_function', 'mul', 'mul'),
    ('get_attr', 'shift', 'shift'),
    ('call_function', 'sub', 'sub'),
    ('call_method', 'sum_1', 'sum'),
    ('call_method', 'size', 'size'),
    ('call_function', 'add', 'add'),
    ('call_function', 'getitem_1', 'getitem'),
    ('output', 'output', 'output')]

CNN_CODE = "\n".join([
    '',
    '',
    '',
    'def forward(self, x):',
    '    conv = self.conv(x);  x = None',
    '    bn = self.bn(conv);  conv = None',
    '    relu = torch.relu(bn);  bn = None',
    '    head_0 = getattr(self.head, "0")(relu);  relu = None',
    '    head_1 = getattr(self.head, "1")(head_0);  head_0 = None',
    '    return head_1',
    '    '])

CNN_GRAPH = "\n".join([
    'graph():',
    '    %x : [num_users=1] = placeholder[target=x]',
    '    %conv : [num_users=1] = call_module[target=conv](args = (%x,), kwargs = {})',
    '    %bn : [num_users=1] = call_module[target=bn](args = (%conv,), kwargs = {})',
    '    %relu : [num_users=1] = call_function[target=torch.relu](args = (%bn,), kwargs = {})',
    '    %head_0 : [num_users=1] = call_module[target=head.0](args = (%relu,), kwargs = {})',
    '    %head_1 : [num_users=1] = call_module[target=head.1](args = (%head_0,), kwargs = {})',
    '    return head_1'])

CNN_NODES = [
    ('placeholder', 'x', 'x'),
    ('call_module', 'conv', 'conv'),
    ('call_module', 'bn', 'bn'),
    ('call_function', 'relu', 'relu'),
    ('call_module', 'head_0', 'head.0'),
    ('call_module', 'head_1', 'head.1'),
    ('output', 'output', 'output')]

FN_CODE = "\n".join([
    '',
    '',
    '',
    'def forward(self, x, y):',
    '    add = torch.add(x, y)',
    '    getitem = x[0]',
    '    mul = add * getitem;  add = getitem = None',
    '    sub = 1 - y',
    '    pow_1 = 2 ** x',
    '    truediv = sub / pow_1;  sub = pow_1 = None',
    '    add_1 = mul + truediv;  mul = truediv = None',
    '    neg = -x',
    '    matmul = x @ y;  y = None',
    '    t = x.t();  x = None',
    '    return (add_1, neg, matmul, t)',
    '    '])

FN_GRAPH = "\n".join([
    'graph():',
    '    %x : [num_users=6] = placeholder[target=x]',
    '    %y : [num_users=3] = placeholder[target=y]',
    '    %add : [num_users=1] = call_function[target=torch.add](args = (%x, %y), kwargs = {})',
    '    %getitem : [num_users=1] = call_function[target=operator.getitem](args = (%x, 0), kwargs = {})',
    '    %mul : [num_users=1] = call_function[target=operator.mul](args = (%add, %getitem), kwargs = {})',
    '    %sub : [num_users=1] = call_function[target=operator.sub](args = (1, %y), kwargs = {})',
    '    %pow_1 : [num_users=1] = call_function[target=operator.pow](args = (2, %x), kwargs = {})',
    '    %truediv : [num_users=1] = call_function[target=operator.truediv](args = (%sub, %pow_1), kwargs = {})',
    '    %add_1 : [num_users=1] = call_function[target=operator.add](args = (%mul, %truediv), kwargs = {})',
    '    %neg : [num_users=1] = call_function[target=operator.neg](args = (%x,), kwargs = {})',
    '    %matmul : [num_users=1] = call_function[target=operator.matmul](args = (%x, %y), kwargs = {})',
    '    %t : [num_users=1] = call_method[target=t](args = (%x,), kwargs = {})',
    '    return (add_1, neg, matmul, t)'])

FN_NODES = [
    ('placeholder', 'x', 'x'),
    ('placeholder', 'y', 'y'),
    ('call_function', 'add', 'add'),
    ('call_function', 'getitem', 'getitem'),
    ('call_function', 'mul', 'mul'),
    ('call_function', 'sub', 'sub'),
    ('call_function', 'pow_1', 'pow'),
    ('call_function', 'truediv', 'truediv'),
    ('call_function', 'add_1', 'add'),
    ('call_function', 'neg', 'neg'),
    ('call_function', 'matmul', 'matmul'),
    ('call_method', 't', 't'),
    ('output', 'output', 'output')]

H_CODE = "\n".join([
    '',
    '',
    '',
    'def forward(self, x, flag_1):',
    '    eq = flag_1 == True;  flag_1 = None',
    "    _assert = torch._assert(eq, 'flag has been specialized to have value True but got another value');  eq = _assert = None",
    '    add = x + 1;  x = None',
    '    return add',
    '    '])

H_GRAPH = "\n".join([
    'graph():',
    '    %x : [num_users=1] = placeholder[target=x]',
    '    %flag_1 : [num_users=1] = placeholder[target=flag_1]',
    '    %eq : [num_users=1] = call_function[target=operator.eq](args = (%flag_1, True), kwargs = {})',
    '    %_assert : [num_users=0] = call_function[target=torch._assert](args = (%eq, flag has been specialized to have value True but got another value), kwargs = {})',
    '    %add : [num_users=1] = call_function[target=operator.add](args = (%x, 1), kwargs = {})',
    '    return add'])

H_NODES = [
    ('placeholder', 'x', 'x'),
    ('placeholder', 'flag_1', 'flag_1'),
    ('call_function', 'eq', 'eq'),
    ('call_function', '_assert', '_assert'),
    ('call_function', 'add', 'add'),
    ('output', 'output', 'output')]

CNN_READABLE = "\n".join([
    'class CNN(torch.nn.Module):',
    '    def forward(self, x):',
    '        # No stacktrace found for following nodes',
    '        conv = self.conv(x);  x = None',
    '        bn = self.bn(conv);  conv = None',
    '        relu = torch.relu(bn);  bn = None',
    '        head_0 = getattr(self.head, "0")(relu);  relu = None',
    '        head_1 = getattr(self.head, "1")(head_0);  head_0 = None',
    '        return head_1',
    ''])

CNN_STR = "\n".join([
    'CNN(',
    '  (conv): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))',
    '  (bn): BatchNorm2d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)',
    '  (head): Module(',
    '    (0): Flatten(start_dim=1, end_dim=-1)',
    '    (1): Linear(in_features=8, out_features=4, bias=True)',
    '  )',
    ')',
    '',
    '',
    '',
    'def forward(self, x):',
    '    conv = self.conv(x);  x = None',
    '    bn = self.bn(conv);  conv = None',
    '    relu = torch.relu(bn);  bn = None',
    '    head_0 = getattr(self.head, "0")(relu);  relu = None',
    '    head_1 = getattr(self.head, "1")(head_0);  head_0 = None',
    '    return head_1',
    '    ',
    '# To see more debug info, please use `graph_module.print_readable()`'])


def _nodes(gm):
    return [(n.op, n.name, n.target if isinstance(n.target, str) else n.target.__name__)
            for n in gm.graph.nodes]


# --- tracing: code, graph printing, node listing, values ---------------------------------
def test_mlp_trace_matches_torch_code_and_numpy():
    torch.manual_seed(0)
    m = MLP()
    with torch.no_grad():
        m.scale.copy_(torch.tensor([1.5, -2.0, 0.5]))
        m.shift.copy_(torch.tensor([0.25, 0.0, -1.0]))
    gm = fx.symbolic_trace(m)
    assert gm.code == MLP_CODE
    assert str(gm.graph) == MLP_GRAPH
    assert _nodes(gm) == MLP_NODES
    assert isinstance(gm, fx.GraphModule) and type(gm).__name__ == "MLP"
    x = torch.randn(5, 4)
    s, head = gm(x)
    xn = _np(x)
    hid = np.maximum(xn @ _np(m.fc1.weight).T + _np(m.fc1.bias), 0)
    y = (hid @ _np(m.fc2.weight).T + _np(m.fc2.bias)) * _np(m.scale) - _np(m.shift)
    np.testing.assert_allclose(_np(s), y.sum(1, keepdims=True) + 4, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(head), y[:, :2], rtol=1e-5, atol=1e-5)
    # the GraphModule holds the parameters and buffer it reads, under the same names
    assert sorted(gm.state_dict()) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight",
                                      "scale", "shift"]
    assert gm.scale is m.scale and gm.fc1 is m.fc1
    assert [n.target for n in gm.graph.find_nodes(op="get_attr")] == ["scale", "shift"]
    assert [n.name for n in gm.graph.find_nodes(op="call_function", target=operator.getitem)] \
        == ["getitem", "getitem_1"]


def test_cnn_code_print_readable_and_str():
    torch.manual_seed(1)
    m = CNN().eval()
    gm = fx.symbolic_trace(m)
    assert gm.code == CNN_CODE
    assert str(gm.graph) == CNN_GRAPH
    assert _nodes(gm) == CNN_NODES
    assert gm.print_readable(print_output=False) == CNN_READABLE
    assert str(gm) == CNN_STR
    buf = io.StringIO()
    with redirect_stdout(buf):
        gm.print_readable()
    assert buf.getvalue() == CNN_READABLE + "\n"
    x = torch.randn(2, 1, 4, 4)
    assert torch.equal(gm(x), m(x))
    # standard layers stay call_module; Sequential is traced through (head.0, head.1)
    assert [n.target for n in gm.graph.find_nodes(op="call_module")] == \
        ["conv", "bn", "head.0", "head.1"]


def test_function_trace_operators_and_numpy():
    gm = fx.symbolic_trace(fn)
    assert gm.code == FN_CODE
    assert str(gm.graph) == FN_GRAPH
    assert _nodes(gm) == FN_NODES
    x = torch.tensor([[0.5, -1.0], [2.0, 0.25]])
    y = torch.tensor([[1.0, 3.0], [-2.0, 0.5]])
    a, b, c, d = gm(x, y)
    xn, yn = _np(x), _np(y)
    np.testing.assert_allclose(_np(a), (xn + yn) * xn[0] + (1 - yn) / 2 ** xn, rtol=1e-6)
    np.testing.assert_allclose(_np(b), -xn)
    np.testing.assert_allclose(_np(c), xn @ yn, rtol=1e-6)
    np.testing.assert_allclose(_np(d), xn.T)
    # the recorded targets are Kiln's own function objects
    assert gm.graph.find_nodes(op="call_function", target=torch.add)[0].name == "add"


def test_concrete_args_specialise():
    gm = fx.symbolic_trace(h, concrete_args={"flag": True})
    assert gm.code == H_CODE
    assert str(gm.graph) == H_GRAPH
    assert _nodes(gm) == H_NODES
    x = torch.tensor([1.0, -2.0])
    np.testing.assert_allclose(_np(gm(x, True)), [2.0, -1.0])
    with pytest.raises(AssertionError, match="flag has been specialized to have value True"):
        gm(x, False)
    gm2 = fx.symbolic_trace(h, concrete_args={"flag": False})
    np.testing.assert_allclose(_np(gm2(x, False)), [0.0, -3.0])


def test_kwargs_varargs_and_defaults():
    def k(x, *args, scale=2, **kw):
        return x * scale
    gm = fx.symbolic_trace(k)
    assert [(n.op, n.name, n.target, n.args) for n in gm.graph.nodes][:4] == [
        ("placeholder", "x", "x", ()), ("placeholder", "scale", "scale", (2,)),
        ("placeholder", "_args", "*args", ()), ("placeholder", "_kw", "**kw", ())]
    assert "def forward(self, x, scale = 2, *args, **kw):" in gm.code
    np.testing.assert_allclose(_np(gm(torch.tensor([1.5, -1.0]))), [3.0, -2.0])
    np.testing.assert_allclose(_np(gm(torch.tensor([1.5]), 3)), [4.5])


def test_method_calls_getitem_shape_unpack_and_kwargs():
    def f(x):
        b, n = x.shape                  # unpacking a Proxy of known length
        y = x.reshape(n, b).transpose(0, 1).contiguous()
        z = F.softmax(y, dim=-1) + torch.special.expit(y) - torch.linalg.norm(y, dim=1,
                                                                             keepdim=True)
        return z[1:, ::2], x.size(0) * 3, torch.fft.fft(x).real
    gm = fx.symbolic_trace(f)
    ops = _nodes(gm)
    assert ops[1:4] == [("call_function", "getattr_1", "getattr"),
                        ("call_function", "getitem", "getitem"),
                        ("call_function", "getitem_1", "getitem")]
    softmax = gm.graph.find_nodes(op="call_function", target=F.softmax)[0]
    assert softmax.kwargs == {"dim": -1}
    norm = gm.graph.find_nodes(op="call_function", target=torch.linalg.norm)[0]
    assert norm.kwargs == {"dim": 1, "keepdim": True}
    assert "torch.linalg.norm(" in gm.code and "torch.fft.fft(" in gm.code
    x = torch.randn(3, 4)
    for a, b in zip(gm(x), f(x)):
        if isinstance(a, int):
            assert a == b == 9
        else:
            assert torch.equal(a, b)


def test_tensor_constant_attribute_and_nested_params():
    class Sub(nn.Module):
        def __init__(s):
            super().__init__()
            s.w = nn.Parameter(torch.eye(3) * 2)
            s.register_buffer("rm", torch.tensor([1.0, 2.0, 3.0]))

        def forward(s, x):
            return torch.matmul(x, s.w) + s.rm

    class M(nn.Module):
        def __init__(s):
            super().__init__()
            s.sub = Sub()
            s.c = torch.tensor([1.0, 0.0, -1.0])

        def forward(s, x):
            return s.sub(x) * s.c + torch.tensor([5.0, 5.0, 5.0])

    gm = fx.symbolic_trace(M())
    assert [(n.op, n.name, n.target) for n in gm.graph.nodes if n.op == "get_attr"] == [
        ("get_attr", "sub_w", "sub.w"), ("get_attr", "sub_rm", "sub.rm"),
        ("get_attr", "c", "c"), ("get_attr", "_tensor_constant0", "_tensor_constant0")]
    x = torch.tensor([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(_np(gm(x)), [[(2 + 1) * 1 + 5, 5.0, (6 + 3) * -1 + 5]])


def test_custom_tracer_leaf_module():
    class Block(nn.Module):
        def forward(s, x):
            return x * 2

    class M(nn.Module):
        def __init__(s):
            super().__init__()
            s.block = Block()

        def forward(s, x):
            return s.block(x) + 1

    class LeafTracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, Block) or super().is_leaf_module(m, qualname)

    m = M()
    assert [n.op for n in fx.symbolic_trace(m).graph.nodes] == \
        ["placeholder", "call_function", "call_function", "output"]
    g = LeafTracer().trace(m)
    assert [(n.op, n.target) for n in g.nodes][1] == ("call_module", "block")
    gm = fx.GraphModule(m, g)
    np.testing.assert_allclose(_np(gm(torch.tensor([1.0, -3.0]))), [3.0, -5.0])


_wrapped_calls = []


def wrapped_helper(a, b):
    _wrapped_calls.append(1)
    return a * 10 + b


fx.wrap("wrapped_helper")


def test_wrap_records_call_function():
    def f(x):
        return wrapped_helper(x, x) - 1
    _wrapped_calls.clear()
    gm = fx.symbolic_trace(f)
    assert _wrapped_calls == []          # not run while tracing: recorded as one node
    node = [n for n in gm.graph.nodes if n.op == "call_function"][0]
    assert node.target is wrapped_helper and node.name == "wrapped_helper"
    np.testing.assert_allclose(_np(gm(torch.tensor([1.0, 2.0]))), [10.0, 21.0])
    assert wrapped_helper is globals()["wrapped_helper"]    # unpatched afterwards


# --- errors and restoring patched functions ----------------------------------------------
def test_control_flow_iteration_and_len_raise():
    def cf(x):
        if x.sum() > 0:
            return x
        return -x

    def loop(x):
        return [a for a in x]

    def ln(x):
        return len(x)
    with pytest.raises(fx.TraceError, match="symbolically traced variables cannot be used as "
                                            "inputs to control flow"):
        fx.symbolic_trace(cf)
    with pytest.raises(fx.TraceError, match="Proxy object cannot be iterated"):
        fx.symbolic_trace(loop)
    with pytest.raises(RuntimeError, match="'len' is not supported in symbolic tracing"):
        fx.symbolic_trace(ln)


def test_functions_reached_through_globals_and_closures_are_recorded():
    from framework import tanh as closure_tanh

    class M(nn.Module):
        def forward(s, x):
            return closure_tanh(imported_gelu(x))
    gm = fx.symbolic_trace(M())
    assert [(n.op, n.target) for n in gm.graph.nodes][1:3] == [
        ("call_function", F.gelu), ("call_function", torch.tanh)]
    assert "torch.tanh(torch.nn.functional.gelu(" not in gm.code      # one node per line
    assert "gelu = torch.nn.functional.gelu(x)" in gm.code
    x = torch.tensor([-1.0, 0.5, 2.0])
    assert torch.equal(gm(x), torch.tanh(F.gelu(x)))
    assert imported_gelu is F.gelu and M.forward.__closure__[0].cell_contents is torch.tanh


def test_patches_restored_after_failed_trace():
    from framework import relu as imported_relu
    orig = (torch.relu, F.relu, torch.linalg.norm, torch.special.expit, torch.fft.fft,
            nn.Module.__call__, nn.Module.__getattr__)
    linalg_own = set(vars(torch.linalg))

    class Bad(nn.Module):
        def forward(s, x):
            y = imported_relu(F.relu(torch.relu(x)))
            if torch.linalg.norm(y) > 1:
                return y
            return -y
    with pytest.raises(fx.TraceError):
        fx.symbolic_trace(Bad())
    assert torch.relu is orig[0] and F.relu is orig[1] and torch.linalg.norm is orig[2]
    assert torch.special.expit is orig[3] and torch.fft.fft is orig[4]
    assert nn.Module.__call__ is orig[5] and nn.Module.__getattr__ is orig[6]
    assert imported_relu is orig[0]
    assert set(vars(torch.linalg)) == linalg_own       # no instance attribute left behind
    # and eager calls work normally afterwards
    np.testing.assert_allclose(_np(torch.relu(torch.tensor([-1.0, 2.0]))), [0.0, 2.0])


def test_erase_node_with_users_raises_and_leaves_graph():
    gm = fx.symbolic_trace(fn)
    add = gm.graph.find_nodes(op="call_function", target=torch.add)[0]
    before = str(gm.graph)
    with pytest.raises(RuntimeError, match="Tried to erase Node add but it still had 1 users"):
        gm.graph.erase_node(add)
    assert str(gm.graph) == before
    assert len(gm.graph.nodes) == 13


# --- graph editing --------------------------------------------------------------------
def _fa(x, y):
    return torch.add(x, y) + torch.add(y, 1)


def test_inserting_after_links_and_dce():
    gm = fx.symbolic_trace(_fa)
    g = gm.graph
    add = list(g.nodes)[2]
    with g.inserting_after(add):
        neg = g.call_function(torch.neg, (add,))
    assert str(g) == "\n".join([
        'graph():',
        '    %x : [num_users=1] = placeholder[target=x]',
        '    %y : [num_users=2] = placeholder[target=y]',
        '    %add : [num_users=2] = call_function[target=torch.add](args = (%x, %y), kwargs = {})',
        '    %neg : [num_users=0] = call_function[target=torch.neg](args = (%add,), kwargs = {})',
        '    %add_1 : [num_users=1] = call_function[target=torch.add](args = (%y, 1), kwargs = {})',
        '    %add_2 : [num_users=1] = call_function[target=operator.add]'
        '(args = (%add, %add_1), kwargs = {})',
        '    return add_2'])
    assert [(n.name, n.prev.name, n.next.name) for n in g.nodes] == [
        ("x", "", "y"), ("y", "x", "add"), ("add", "y", "neg"), ("neg", "add", "add_1"),
        ("add_1", "neg", "add_2"), ("add_2", "add_1", "output"), ("output", "add_2", "")]
    assert neg.all_input_nodes == [add] and list(add.users) == [list(g.nodes)[5], neg]
    assert g.eliminate_dead_code() is True
    assert [n.name for n in g.nodes] == ["x", "y", "add", "add_1", "add_2", "output"]
    assert g.eliminate_dead_code() is False


def test_replace_all_uses_update_arg_prepend_and_recompile():
    gm = fx.symbolic_trace(_fa)
    g = gm.graph
    x_, y_, add, add_1, add_2, out = list(g.nodes)
    with g.inserting_before(add_2):
        mul = g.call_function(torch.mul, (x_, y_))
    assert add.replace_all_uses_with(mul) == [add_2]
    g.erase_node(add)
    assert add_2.args == (mul, add_1)
    add_1.update_arg(1, 10)
    add_2.replace_input_with(add_1, y_)     # add_1 now unused
    g.erase_node(add_1)
    gm.recompile()
    assert gm.code == "\n".join([
        "", "", "", "def forward(self, x, y):",
        "    mul = torch.mul(x, y);  x = None",
        "    add_2 = mul + y;  mul = y = None",
        "    return add_2",
        "    "])
    np.testing.assert_allclose(_np(gm(torch.tensor([2.0]), torch.tensor([3.0]))), [9.0])
    # moving a node: prepend puts it before, and the linked list follows
    x_.append(y_)
    assert [n.name for n in g.nodes] == ["x", "y", "mul", "add_2", "output"]
    mul.prepend(y_)
    assert [n.name for n in g.nodes] == ["x", "y", "mul", "add_2", "output"]
    assert add_2.format_node() == \
        "%add_2 : [num_users=1] = call_function[target=operator.add](args = (%mul, %y), " \
        "kwargs = {})"
    # the graph setter recompiles
    g2 = copy.deepcopy(g)
    gm.graph = g2
    assert gm.graph is g2 and g2.owning_module is gm
    np.testing.assert_allclose(_np(gm(torch.tensor([2.0]), torch.tensor([3.0]))), [9.0])


def test_node_copy_graph_copy_and_lint():
    gm = fx.symbolic_trace(_fa)
    g = fx.Graph()
    a = g.placeholder("a")
    b = g.placeholder("b")
    out = g.graph_copy(gm.graph, {list(gm.graph.nodes)[0]: a, list(gm.graph.nodes)[1]: b})
    g.output(out)
    g.lint()
    new = fx.GraphModule(nn.Module(), g)
    np.testing.assert_allclose(_np(new(torch.tensor([1.0]), torch.tensor([2.0]))), [6.0])
    assert [n.name for n in g.nodes] == ["a", "b", "add", "add_1", "add_2", "output"]
    # a node used before its definition is found by lint
    bad = fx.Graph()
    p = bad.placeholder("p")
    n1 = bad.call_function(torch.neg, (p,))
    n2 = bad.call_function(torch.exp, (n1,))
    bad.output(n2)
    n2.append(n1)          # move neg after exp, which uses it
    with pytest.raises(RuntimeError, match="was used before it has been defined"):
        bad.lint()
    # node_copy remaps arguments
    g3 = fx.Graph()
    q = g3.placeholder("q")
    c = g3.node_copy(n2, lambda n: q)
    assert c.args == (q,) and c.target is torch.exp and c.name == "exp"


def test_print_tabular():
    gm = fx.symbolic_trace(_fa)
    buf = io.StringIO()
    with redirect_stdout(buf):
        gm.graph.print_tabular()
    # tabulate's layout (torch's print_tabular): columns two spaces apart, each at least its
    # header + 2 wide; str(torch.add) is "<function add at 0x...>", its width sets the column
    fa = str(torch.add)
    w = max(len(fa), len("<built-in function add>"))
    assert buf.getvalue() == "\n".join([
        "opcode         name    " + "target".ljust(w) + "  args          kwargs",
        "-------------  ------  " + "-" * w + "  ------------  --------",
        "placeholder    x       " + "x".ljust(w) + "  ()            {}",
        "placeholder    y       " + "y".ljust(w) + "  ()            {}",
        "call_function  add     " + fa.ljust(w) + "  (x, y)        {}",
        "call_function  add_1   " + fa.ljust(w) + "  (y, 1)        {}",
        "call_function  add_2   " + "<built-in function add>".ljust(w) + "  (add, add_1)  {}",
        "output         output  " + "output".ljust(w) + "  (add_2,)      {}",
    ]) + "\n"


# --- GraphModule: state_dict, to(), compile, deepcopy ------------------------------------
def test_graph_module_state_dict_to_compile_deepcopy():
    torch.manual_seed(3)
    m = MLP()
    gm = fx.symbolic_trace(m)
    x = torch.randn(6, 4)
    ref = m(x)
    comp = torch.compile(gm)
    for a, b in zip(comp(x), ref):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-5, atol=1e-6)
    sd = gm.state_dict()
    m2 = MLP()
    m2.load_state_dict(sd)
    for a, b in zip(m2(x), ref):
        assert torch.equal(a, b)
    dc = copy.deepcopy(gm)
    assert dc.code == gm.code and dc.fc1 is not gm.fc1
    with torch.no_grad():
        dc.scale.mul_(2)
    assert torch.equal(gm.scale, m.scale)
    g64 = fx.symbolic_trace(MLP()).to(torch.float64)
    assert g64(x.double())[0].dtype == torch.float64


# --- the conv/batch-norm fuser tutorial -------------------------------------------------
def _parent_name(target):
    *parent, name = target.rsplit(".", 1)
    return parent[0] if parent else "", name


def _replace_node_module(node, modules, new_module):
    parent_name, name = _parent_name(node.target)
    modules[node.target] = new_module
    setattr(modules[parent_name], name, new_module)


def fuse(model):
    """PyTorch's '(beta) Building a Convolution/Batch Norm fuser in FX', unchanged."""
    model = copy.deepcopy(model)
    fx_model = fx.symbolic_trace(model)
    modules = dict(fx_model.named_modules())
    for node in fx_model.graph.nodes:
        if node.op != "call_module":
            continue
        if type(modules[node.target]) is nn.BatchNorm2d and \
                type(modules[node.args[0].target]) is nn.Conv2d:
            if len(node.args[0].users) > 1:
                continue
            conv = modules[node.args[0].target]
            bn = modules[node.target]
            fused_conv = fuse_conv_bn_eval(conv, bn)
            _replace_node_module(node.args[0], modules, fused_conv)
            node.replace_all_uses_with(node.args[0])
            fx_model.graph.erase_node(node)
    fx_model.graph.lint()
    fx_model.delete_all_unused_submodules()
    fx_model.recompile()
    return fx_model


class _ConvBN(nn.Module):
    def __init__(s):
        super().__init__()
        s.layers = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        s.conv = nn.Conv2d(4, 2, 3)
        s.bn = nn.BatchNorm2d(2)

    def forward(s, x):
        return F.relu(s.bn(s.conv(s.layers(x))))


def test_conv_bn_fuser_tutorial():
    torch.manual_seed(4)
    model = _ConvBN()
    for bn in (model.layers[1], model.bn):
        with torch.no_grad():
            bn.running_mean.copy_(torch.randn(bn.num_features))
            bn.running_var.copy_(torch.rand(bn.num_features) + 0.5)
            bn.weight.copy_(torch.randn(bn.num_features))
            bn.bias.copy_(torch.randn(bn.num_features))
    model.eval()
    fused = fuse(model)
    assert [n.target for n in fused.graph.find_nodes(op="call_module")] == \
        ["layers.0", "layers.2", "conv"]
    assert not hasattr(fused, "bn") and not hasattr(fused.layers, "1")
    x = torch.randn(2, 3, 6, 6)
    np.testing.assert_allclose(_np(fused(x)), _np(model(x)), rtol=1e-4, atol=1e-5)
    assert "bn" not in fused.code


# --- Interpreter, Transformer, ShapeProp, replace_pattern ------------------------------
def test_interpreter_profiling_and_overrides():
    class Profiler(fx.Interpreter):
        def __init__(self, mod):
            super().__init__(mod)
            self.runtimes = {}

        def run_node(self, n):
            t0 = time.perf_counter()
            out = super().run_node(n)
            self.runtimes[n.name] = time.perf_counter() - t0
            return out
    torch.manual_seed(5)
    m = CNN().eval()
    gm = fx.symbolic_trace(m)
    x = torch.randn(2, 1, 4, 4)
    p = Profiler(gm)
    assert torch.equal(p.run(x), m(x))
    assert list(p.runtimes) == ["x", "conv", "bn", "relu", "head_0", "head_1", "output"]

    class NegRelu(fx.Interpreter):        # swap one function while interpreting
        def call_function(self, target, args, kwargs):
            if target is torch.relu:
                return torch.neg(*args, **kwargs)
            return super().call_function(target, args, kwargs)
    gf = fx.symbolic_trace(lambda x: torch.relu(x) * 2)
    np.testing.assert_allclose(_np(NegRelu(gf).run(torch.tensor([1.0, -2.0]))), [-2.0, 4.0])
    with pytest.raises(RuntimeError, match="Expected positional argument for parameter x"):
        fx.Interpreter(gf).run()


def test_transformer_swaps_add_for_mul():
    class AddToMul(fx.Transformer):
        def call_function(self, target, args, kwargs):
            if target is torch.add:
                target = torch.mul
            return super().call_function(target, args, kwargs)
    gm = fx.symbolic_trace(_fa)
    new = AddToMul(gm).transform()
    assert isinstance(new, fx.GraphModule) and new is not gm
    assert new.code == "\n".join([
        "", "", "", "def forward(self, x, y):",
        "    mul = torch.mul(x, y);  x = None",
        "    mul_1 = torch.mul(y, 1);  y = None",
        "    add = mul + mul_1;  mul = mul_1 = None",
        "    return add",
        "    "])
    x, y = torch.tensor([2.0, 3.0]), torch.tensor([4.0, -1.0])
    np.testing.assert_allclose(_np(new(x, y)), [2 * 4 + 4, 3 * -1 - 1])
    np.testing.assert_allclose(_np(gm(x, y)), [2 + 4 + 5, 3 - 1 + 0])   # original unchanged
    # a Transformer keeps submodules as call_module nodes
    torch.manual_seed(6)
    cnn = CNN().eval()
    t = fx.Transformer(fx.symbolic_trace(cnn)).transform()
    assert [n.target for n in t.graph.find_nodes(op="call_module")] == \
        ["conv", "bn", "head.0", "head.1"]
    xi = torch.randn(1, 1, 4, 4)
    assert torch.equal(t(xi), cnn(xi))


def test_shape_prop():
    torch.manual_seed(7)
    gm = fx.symbolic_trace(CNN().eval())
    ShapeProp(gm).propagate(torch.randn(2, 1, 4, 4))
    shapes = {n.name: (tuple(n.meta["tensor_meta"].shape), n.meta["tensor_meta"].dtype)
              for n in gm.graph.nodes}
    assert shapes == {"x": ((2, 1, 4, 4), torch.float32), "conv": ((2, 2, 2, 2), torch.float32),
                      "bn": ((2, 2, 2, 2), torch.float32), "relu": ((2, 2, 2, 2), torch.float32),
                      "head_0": ((2, 8), torch.float32), "head_1": ((2, 4), torch.float32),
                      "output": ((2, 4), torch.float32)}
    tm = gm.graph.find_nodes(op="call_module", target="conv")[0].meta["tensor_meta"]
    assert tm.stride == (8, 4, 2, 1) and tm.memory_format == torch.contiguous_format
    assert gm.graph.find_nodes(op="placeholder")[0].meta["type"] is torch.Tensor


def _rp_f(x, w1, w2):
    torch.cat([w1, w2])
    m1 = torch.cat([w1, w2]).sum()
    m2 = torch.cat([w1, w2]).sum()
    return x + torch.max(m1) + torch.max(m2)


def _rp_pattern(w1, w2):
    return torch.cat([w1, w2]).sum()


def _rp_replacement(w1, w2):
    return torch.stack([w1, w2])


def test_replace_pattern():
    gm = fx.symbolic_trace(_rp_f)
    matches = fx.replace_pattern(gm, _rp_pattern, _rp_replacement)
    assert len(matches) == 2
    assert [sorted((k.name, v.name) for k, v in m.nodes_map.items()) for m in matches] == [
        [("cat", "cat_1"), ("sum_1", "sum_1"), ("w1", "w1"), ("w2", "w2")],
        [("cat", "cat_2"), ("sum_1", "sum_2"), ("w1", "w1"), ("w2", "w2")]]
    assert gm.code == "\n".join([
        "", "", "", "def forward(self, x, w1, w2):",
        "    cat = torch.cat([w1, w2]);  cat = None",
        "    stack = torch.stack([w1, w2])",
        "    max_1 = torch.max(stack);  stack = None",
        "    add = x + max_1;  x = max_1 = None",
        "    stack_1 = torch.stack([w1, w2]);  w1 = w2 = None",
        "    max_2 = torch.max(stack_1);  stack_1 = None",
        "    add_1 = add + max_2;  add = max_2 = None",
        "    return add_1",
        "    "])
    x, w1, w2 = torch.tensor([1.0]), torch.tensor([2.0, -5.0]), torch.tensor([3.0, 4.0])
    np.testing.assert_allclose(_np(gm(x, w1, w2)), [1.0 + 4.0 + 4.0])

    def g(x, y):
        return torch.relu(torch.add(x, y)) * torch.relu(torch.add(y, 2))

    def pat(a, b):
        return torch.relu(torch.add(a, b))

    def rep(a, b):
        return torch.sigmoid(a - b)
    gm = fx.symbolic_trace(g)
    assert len(fx.subgraph_rewriter.replace_pattern(gm, pat, rep)) == 2
    xn, yn = np.arange(4.0), np.arange(4.0) * 2
    sig = lambda v: 1 / (1 + np.exp(-v))      # noqa: E731
    np.testing.assert_allclose(_np(gm(torch.tensor(xn, dtype=torch.float32),
                                      torch.tensor(yn, dtype=torch.float32))),
                               sig(xn - yn) * sig(yn - 2), rtol=1e-6)


def test_dead_code_keeps_random_draws_drops_pure_ops():
    def f(x):
        torch.neg(x)
        torch.rand_like(x)
        x.add_(1)                      # call_method: pure to DCE, as torch treats it
        return x + 1
    gm = fx.symbolic_trace(f)
    assert [n.name for n in gm.graph.nodes] == ["x", "neg", "rand_like", "add_", "add", "output"]
    assert gm.graph.eliminate_dead_code() is True
    assert [n.name for n in gm.graph.nodes] == ["x", "rand_like", "add", "output"]


def test_bad_inputs_raise_torch_errors():
    g = fx.Graph()
    x = g.placeholder("x")
    with pytest.raises(AssertionError, match="args must be a tuple"):
        g.call_function(torch.neg, [x])
    with pytest.raises(ValueError, match="but a Callable is expected"):
        g.create_node("call_function", "neg", (x,))
    with pytest.raises(ValueError, match="Unknown op"):
        g.create_node("call_thing", "neg", (x,))
    other = fx.Graph()
    y = other.placeholder("y")
    with pytest.raises(RuntimeError, match="from wrong graph"):
        g.erase_node(y)
    with pytest.raises(AssertionError, match="not in graph"):
        g.inserting_before(y)
    assert [n.name for n in g.nodes] == ["x"]            # nothing was added
    g.output(g.call_function(torch.neg, (x,)))
    with pytest.raises(RuntimeError, match="referenced target w but that target was not "
                                           "provided"):
        g2 = fx.Graph()
        g2.output(g2.get_attr("w"))
        fx.GraphModule({}, g2)
    gm = fx.GraphModule({}, g)
    with pytest.raises(AssertionError, match="Expected a Graph instance"):
        gm.graph = "not a graph"
    np.testing.assert_allclose(_np(gm(torch.tensor([2.0]))), [-2.0])   # still the old graph
    g3 = fx.Graph()
    g3.output(g3.get_attr("missing.w"))
    with pytest.raises(RuntimeError, match="Node referenced nonexistent target missing"):
        fx.Interpreter(nn.Module(), graph=g3).run()


def test_tracer_subclass_overrides_create_proxy_and_call_module():
    calls = []

    class TaggingTracer(fx.Tracer):
        def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None,
                         proxy_factory_fn=None):
            p = super().create_proxy(kind, target, args, kwargs, name, type_expr,
                                     proxy_factory_fn)
            p.node.meta["tag"] = kind
            return p

        def call_module(self, m, forward, args, kwargs):
            calls.append(self.path_of_module(m))
            return super().call_module(m, forward, args, kwargs)

    torch.manual_seed(8)
    m = CNN().eval()
    g = TaggingTracer().trace(m)
    assert calls == ["conv", "bn", "head", "head.0", "head.1"]
    assert [n.meta.get("tag") for n in g.nodes] == [
        "placeholder", "call_module", "call_module", "call_function", "call_module",
        "call_module", None]                  # the output node is made by create_node
    gm = fx.GraphModule(m, g)
    x = torch.randn(1, 1, 4, 4)
    assert torch.equal(gm(x), m(x))


def _tutorial_fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    # the tutorial's own weight folding (it does not import torch.nn.utils.fusion)
    if conv_b is None:
        conv_b = bn_rm.new_zeros(bn_rm.shape)
    bn_var_rsqrt = torch.rsqrt(bn_rv + bn_eps)
    conv_w = conv_w * (bn_w * bn_var_rsqrt).reshape([-1] + [1] * (len(conv_w.shape) - 1))
    conv_b = (conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b
    return torch.nn.Parameter(conv_w), torch.nn.Parameter(conv_b)


def _tutorial_fuse_conv_bn_eval(conv, bn):
    assert not (conv.training or bn.training), "Fusion only for eval!"
    fused_conv = copy.deepcopy(conv)
    fused_conv.weight, fused_conv.bias = _tutorial_fuse_conv_bn_weights(
        fused_conv.weight, fused_conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
        bn.bias)
    return fused_conv


def test_conv_bn_fuser_on_a_copied_graph():
    """torch.fx.experimental.optimization.fuse's form: edit a deep copy of the graph and build
    a new GraphModule from it; the traced module is left as it was."""
    torch.manual_seed(9)
    model = _ConvBN()
    model.conv.bias = None
    for bn in (model.layers[1], model.bn):
        with torch.no_grad():
            bn.running_mean.copy_(torch.randn(bn.num_features))
            bn.running_var.copy_(torch.rand(bn.num_features) + 0.5)
    model.eval()
    fx_model = fx.symbolic_trace(copy.deepcopy(model))
    modules = dict(fx_model.named_modules())
    new_graph = copy.deepcopy(fx_model.graph)
    for node in new_graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], nn.BatchNorm2d) and \
                node.args[0].op == "call_module" and \
                isinstance(modules[node.args[0].target], nn.Conv2d):
            fused = _tutorial_fuse_conv_bn_eval(modules[node.args[0].target],
                                                modules[node.target])
            _replace_node_module(node.args[0], modules, fused)
            node.replace_all_uses_with(node.args[0])
            new_graph.erase_node(node)
    fused_model = fx.GraphModule(fx_model, new_graph)
    assert [n.target for n in fused_model.graph.find_nodes(op="call_module")] == \
        ["layers.0", "layers.2", "conv"]
    assert len(fx_model.graph.find_nodes(op="call_module")) == 5     # the original graph
    x = torch.randn(2, 3, 5, 5)
    np.testing.assert_allclose(_np(fused_model(x)), _np(model(x)), rtol=1e-4, atol=1e-5)


def test_annotations_spelled_as_torch():
    def f(x: torch.Tensor, n: int = 2) -> torch.Tensor:
        return x * n
    gm = fx.symbolic_trace(f)
    assert gm.code == "\n".join([
        "", "", "", "def forward(self, x : torch.Tensor, n : int = 2) -> torch.Tensor:",
        "    mul = x * n;  x = n = None",
        "    return mul",
        "    "])
    assert str(gm.graph) == "\n".join([
        "graph():",
        "    %x : torch.Tensor [num_users=1] = placeholder[target=x]",
        "    %n : int [num_users=1] = placeholder[target=n](default=2)",
        "    %mul : [num_users=1] = call_function[target=operator.mul](args = (%x, %n), "
        "kwargs = {})",
        "    return mul"])
    np.testing.assert_allclose(_np(gm(torch.tensor([1.5]))), [3.0])


def test_user_torch_assert_on_a_proxy_is_recorded():
    # torch._assert(x.shape[0] > 1, msg) in a forward is a graph node (PyTorch dispatches it
    # through __torch_function__), not a control-flow TraceError; the module asserts when run
    def fn(x):
        torch._assert(x.shape[0] > 1, "too small")
        return x + 1
    gm = fx.symbolic_trace(fn)
    assert "_assert = torch._assert(gt, 'too small')" in gm.code
    assert [n.target for n in gm.graph.nodes if n.op == "call_function"][-2] is torch._assert
    assert gm(torch.ones(2)).tolist() == [2.0, 2.0]
    with pytest.raises(AssertionError, match="too small"):
        gm(torch.ones(1))
    assert not hasattr(torch._assert, "__fx_original__")       # restored after the trace


def test_graph_module_pickles_and_saves():
    # PyTorch's GraphModule pickles (reduce_graph_module): forward regenerated, parameters kept
    import pickle

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)
            self.register_buffer("b", torch.tensor([1.0, -1.0]))

        def forward(self, x):
            return torch.relu(self.lin(x)) + self.b

    m = M()
    gm = fx.symbolic_trace(m)
    x = torch.tensor([[1.0, 2.0, -3.0]])
    w, bias = m.lin.weight.detach().numpy().astype(np.float64), m.lin.bias.detach().numpy()
    want = np.maximum(x.numpy() @ w.T + bias, 0) + [1.0, -1.0]
    buf = io.BytesIO()
    torch.save(gm, buf)
    buf.seek(0)
    for g2 in (pickle.loads(pickle.dumps(gm)), torch.load(buf, weights_only=False)):
        assert type(g2).__name__ == "M" and g2.code == gm.code
        assert g2.graph.owning_module is g2
        np.testing.assert_allclose(g2(x).detach().numpy(), want, rtol=1e-6)
        assert g2.lin.weight is not m.lin.weight
        for n in g2.graph.nodes:           # still editable: relu -> neg, regenerated
            if n.target is torch.relu:
                n.target = torch.neg
        g2.recompile()
        np.testing.assert_allclose(g2(x).detach().numpy(),
                                   -(x.numpy() @ w.T + bias) + [1.0, -1.0], rtol=1e-6)
    assert gm.graph.owning_module is gm
