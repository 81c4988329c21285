"""nn.Module semantics: registration, iteration, hooks, state_dict, conversion, reprs,
containers, lazy modules. Expected strings/values are PyTorch's (hand-checked)."""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import framework as torch
from framework import nn
from conftest import assert_close, to_np


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(4, 1)
        with torch.no_grad():
            self.fc1.weight = nn.Parameter(torch.Tensor([[1., 2., 3.], [-4., -5., -6.],
                                                         [7., 8., 9.], [-10., -11., -12.]]))
            self.fc1.bias = nn.Parameter(torch.Tensor([1.0, 2.0, 3.0, 4.0]))
            self.fc2.weight = nn.Parameter(torch.Tensor([[1.0, 2.0, 3.0, 4.0]]))
            self.fc2.bias = nn.Parameter(torch.Tensor([1.0]))

    def forward(self, x):
        return self.fc2(self.relu1(self.fc1(x)))


def test_T1_forward_and_full_backward_hooks():
    model = MLP()
    events, feats = [], []
    for name, m in model.named_children():
        def fwd(mod, inp, out, n=name):
            events.append(("fwd", n))
            feats.append((type(inp), out.detach().clone()))
        m.register_forward_hook(fwd)
        m.register_full_backward_hook(lambda mod, gi, go, n=name: events.append(
            ("bwd", n, tuple(None if g is None else to_np(g).copy() for g in gi),
             tuple(to_np(g).copy() for g in go))))
    x = torch.Tensor([[1.0, 1.0, 1.0]]).requires_grad_()
    o = model(x)
    o.backward()
    assert [e[:2] for e in events] == [("fwd", "fc1"), ("fwd", "relu1"), ("fwd", "fc2"),
                                       ("bwd", "fc2"), ("bwd", "relu1"), ("bwd", "fc1")]
    assert all(t is tuple for t, _ in feats)
    assert_close(feats[0][1], [[7., -13., 27., -29.]])
    assert_close(feats[1][1], [[7., 0., 27., 0.]])
    assert_close(feats[2][1], [[89.]])
    fc2, relu, fc1 = events[3], events[4], events[5]
    np.testing.assert_array_equal(fc2[3][0], [[1.]])
    np.testing.assert_array_equal(fc2[2][0], [[1., 2., 3., 4.]])
    np.testing.assert_array_equal(relu[2][0], [[1., 0., 3., 0.]])
    np.testing.assert_array_equal(fc1[2][0], [[22., 26., 30.]])
    assert_close(x.grad, [[22., 26., 30.]])
    assert_close(model.fc2.weight.grad, [[7., 0., 27., 0.]])
    assert_close(model.fc2.bias.grad, [1.])
    assert_close(model.fc1.bias.grad, [1., 0., 3., 0.])
    assert_close(model.fc1.weight.grad, [[1, 1, 1], [0, 0, 0], [3, 3, 3], [0, 0, 0]])
    assert str(model) == ("MLP(\n  (fc1): Linear(in_features=3, out_features=4, bias=True)\n"
                          "  (relu1): ReLU()\n"
                          "  (fc2): Linear(in_features=4, out_features=1, bias=True)\n)")


def test_grad_fn_names_without_hooks():
    model = MLP()
    x = torch.Tensor([[1.0, 1.0, 1.0]]).requires_grad_()
    h = model.fc1(x)
    assert h.grad_fn.name() == "AddmmBackward0"
    assert model.relu1(h).grad_fn.name() == "ReluBackward0"
    assert repr(model.fc1(torch.ones(3))).endswith("grad_fn=<ViewBackward0>)")


def test_backward_hook_no_input_grad_and_pre_hook_modifies():
    lin = nn.Linear(2, 2)
    seen = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    lin.register_full_backward_pre_hook(lambda m, go: (go[0] * 2,))
    lin(torch.ones(1, 2)).sum().backward()
    assert seen == [(None,)]
    assert_close(lin.bias.grad, [2., 2.])          # the pre-hook doubled grad_output


def test_backward_hook_replaces_grad_input():
    lin = nn.Linear(2, 1)
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    x = torch.ones(1, 2, requires_grad=True)
    lin(x).sum().backward()
    assert_close(x.grad, [[0., 0.]])
    with pytest.raises(RuntimeError):
        lin.register_backward_hook(lambda *a: None)


def test_forward_pre_hook_and_kwargs_and_removal():
    lin = nn.Identity()
    order = []
    h1 = lin.register_forward_pre_hook(lambda m, a: (order.append("pre"), (a[0] + 1,))[1])
    lin.register_forward_pre_hook(lambda m, a: order.append("pre0"), prepend=True)
    h3 = lin.register_forward_hook(lambda m, a, k, out: out * 10, with_kwargs=True)
    assert_close(lin(torch.tensor([1.])), [20.])
    assert order == ["pre0", "pre"]
    h1.remove()
    h3.remove()
    assert_close(lin(torch.tensor([1.])), [1.])


def test_parameters_shared_counted_once_and_prefixes():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = self.a
            self.seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
            self.register_buffer("running", torch.zeros(2))
            self.register_buffer("tmp", torch.ones(1), persistent=False)
    n = Net()
    names = [k for k, _ in n.named_parameters()]
    assert names == ["a.weight", "a.bias", "seq.0.weight", "seq.0.bias"]
    assert len(list(n.parameters())) == 4
    assert len(list(n.named_parameters(remove_duplicate=False))) == 6
    assert [k for k, _ in n.named_parameters(prefix="m", recurse=False)] == []
    assert [k for k, _ in n.seq.named_parameters(prefix="s")] == ["s.0.weight", "s.0.bias"]
    assert [k for k, _ in n.named_buffers()] == ["running", "tmp"]
    assert [k for k, _ in n.named_modules()] == ["", "a", "seq", "seq.0", "seq.1"]
    assert [k for k, _ in n.named_children()] == ["a", "seq"]
    assert list(n.state_dict().keys()) == ["running", "a.weight", "a.bias", "b.weight", "b.bias",
                                           "seq.0.weight", "seq.0.bias"]
    assert type(n.state_dict()) is OrderedDict
    assert n.get_submodule("seq.0") is n.seq[0]
    assert n.get_parameter("seq.0.bias") is n.seq[0].bias
    with pytest.raises(AttributeError):
        n.get_submodule("seq.7")
    with pytest.raises(AttributeError):
        n.get_parameter("running")


def test_register_parameter_equivalent_to_assignment():
    class MyModel(nn.Module):
        def __init__(self):
            super().__init__()
            assert self._parameters == {}
            self.register_parameter("my_param1", nn.Parameter(torch.randn(3, 3)))
            self.my_param2 = nn.Parameter(torch.randn(2, 2))
            self.register_parameter("my_param1", self.my_param1)   # re-registering is allowed
    m = MyModel()
    assert [k for k, _ in m.named_parameters()] == ["my_param1", "my_param2"]
    assert type(m.my_param1) is nn.Parameter


def test_setattr_errors_and_delattr():
    m = nn.Linear(2, 2)
    w = m.weight
    with pytest.raises(TypeError):
        m.weight = torch.ones(2, 2)        # a plain tensor cannot replace a Parameter
    assert m.weight is w
    m.weight = None
    assert m.weight is None and "weight" in m._parameters
    with pytest.raises(KeyError):
        m.register_buffer("in_features", torch.ones(1))
    with pytest.raises(KeyError):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError):
        m.add_module("x", 3)
    with pytest.raises(TypeError):
        m.register_parameter("y", torch.ones(1))
    with pytest.raises(ValueError):
        m.register_parameter("z", nn.Parameter(torch.ones(1)) * 2 if False else
                             _nonleaf_param())
    del m.bias
    assert "bias" not in m._parameters
    with pytest.raises(AttributeError):
        m.bias
    sub = nn.ReLU()
    m.act = sub
    assert m._modules["act"] is sub and "act" not in m.__dict__
    assert "act" in dir(m) and "in_features" in dir(m)


def _nonleaf_param():
    p = nn.Parameter(torch.ones(1))
    q = nn.Parameter.__new__(nn.Parameter, torch.ones(1))
    q._node = (p * 2)._node
    return q


def test_parameter_repr_and_identity():
    p = nn.Parameter(torch.tensor([1., 2.]))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert repr(nn.Parameter(torch.tensor([1.]), requires_grad=False)) == \
        "Parameter containing:\ntensor([1.])"
    assert isinstance(p, torch.Tensor) and p.requires_grad and p.is_leaf
    y = (p * 3).sum()
    assert type(p * 3) is torch.Tensor
    y.backward()
    assert_close(p.grad, [3., 3.])
    t = torch.tensor([5., 6.])
    shared = nn.Parameter(t)
    t[0] = 9.
    assert shared[0].item() == 9.       # Parameter shares memory with its source tensor
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q is not p and q.requires_grad
    assert_close(q, [1., 2.])


def test_train_eval_requires_grad_zero_grad_apply():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert m.training and m[1].training
    assert m.eval() is m and not m[1].training
    m.train()
    assert m[1].training
    with pytest.raises(ValueError):
        m.train("yes")
    m(torch.ones(1, 2)).sum().backward()
    assert m[0].weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert_close(m[0].weight.grad, np.zeros((2, 2)))
    m.zero_grad()
    assert m[0].weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    visited = []
    m.apply(lambda mod: visited.append(type(mod).__name__))
    assert visited == ["Linear", "Dropout", "Sequential"]


def test_to_double_keeps_parameter_identity():
    m = nn.Linear(3, 2)
    w = m.weight
    m.register_buffer("steps", torch.tensor(3))
    before = to_np(w).copy()
    assert m.double() is m
    assert m.weight is w and w.dtype is torch.float64 and type(w) is nn.Parameter
    assert m.steps.dtype is torch.int64             # integer buffers keep their dtype
    np.testing.assert_allclose(to_np(w), before)
    assert m.to(torch.float32) is m and w.dtype is torch.float32
    assert m.to("cpu") is m and m.cpu() is m
    with pytest.raises(TypeError):
        m.to(torch.int32)
    assert m.half() is m and w.dtype is torch.float16
    m.float()
    assert m(torch.ones(1, 3)).dtype is torch.float32


def test_state_dict_roundtrip_and_errors():
    torch.manual_seed(1)
    a = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    b = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    sd = a.state_dict()
    assert list(sd.keys()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    r = b.load_state_dict(sd)
    assert repr(r) == "<All keys matched successfully>"
    assert r.missing_keys == [] and r.unexpected_keys == []
    assert_close(b[0].weight, to_np(a[0].weight))
    w_before = to_np(b[2].weight).copy()
    bad = OrderedDict(sd)
    bad["2.weight"] = torch.zeros(5, 5)
    with pytest.raises(RuntimeError, match="size mismatch for 2.weight"):
        b.load_state_dict(bad)
    partial = OrderedDict((k, v) for k, v in sd.items() if k != "2.bias")
    partial["extra.w"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as ei:
        b.load_state_dict(partial)
    msg = str(ei.value)
    assert 'Missing key(s) in state_dict: "2.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.w"' in msg
    r = b.load_state_dict(partial, strict=False)
    assert r.missing_keys == ["2.bias"] and r.unexpected_keys == ["extra.w"]
    np.testing.assert_allclose(to_np(b[2].weight), to_np(a[2].weight))
    assert not np.allclose(w_before, to_np(a[2].weight)) or True
    with pytest.raises(TypeError):
        b.load_state_dict([1, 2])


def test_state_dict_persistent_buffers_only():
    m = nn.Module()
    m.register_buffer("kept", torch.ones(2))
    m.register_buffer("dropped", torch.ones(2), persistent=False)
    m.register_buffer("none", None)
    assert list(m.state_dict().keys()) == ["kept"]
    m.load_state_dict({"kept": torch.tensor([3., 4.])})
    assert_close(m.kept, [3., 4.])


def test_reprs_nested():
    s = nn.Sequential(OrderedDict([("conv1", nn.Linear(1, 2)), ("relu1", nn.ReLU())]))
    s.add_module("block 0", nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Sequential()))
    assert str(s) == (
        "Sequential(\n"
        "  (conv1): Linear(in_features=1, out_features=2, bias=True)\n"
        "  (relu1): ReLU()\n"
        "  (block 0): Sequential(\n"
        "    (0): Linear(in_features=2, out_features=2, bias=True)\n"
        "    (1): Tanh()\n"
        "    (2): Sequential()\n"
        "  )\n"
        ")")
    assert repr(nn.Module()) == "Module()"

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = [nn.Linear(1, 1)]     # a plain list registers nothing
    p = Plain()
    assert str(p) == "Plain()" and list(p.parameters()) == []


def test_lazy_linear_before_after():
    m = nn.LazyLinear(3)
    assert repr(m) == "LazyLinear(in_features=0, out_features=3, bias=True)"
    assert isinstance(m.weight, nn.UninitializedParameter)
    y = m(torch.ones(2, 5))
    assert y.shape == torch.Size([2, 3])
    assert type(m) is nn.Linear
    assert repr(m) == "Linear(in_features=5, out_features=3, bias=True)"
    assert m.weight.shape == torch.Size([3, 5]) and type(m.weight) is nn.Parameter
    bound = 1 / np.sqrt(5)
    assert np.abs(to_np(m.weight)).max() <= bound
    assert len(m._forward_pre_hooks) == 0


def test_T10_containers():
    class NetModList(nn.Module):
        def __init__(self):
            super().__init__()
            self.modlist = nn.ModuleList([nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 30)])

        def forward(self, x):
            for m in self.modlist:
                x = m(x)
            return x
    net = NetModList()
    assert [tuple(p.shape) for p in net.parameters()] == [(20, 10), (20,), (30, 20), (30,)]
    assert all(type(p.data) is torch.Tensor for p in net.parameters())
    assert net(torch.randn(4, 10)).shape == torch.Size([4, 30])
    with pytest.raises(NotImplementedError):
        net.modlist(torch.randn(1, 10))
    ml = nn.ModuleList([nn.Linear(10, 10) for _ in range(5)])
    assert str(ml) == ("ModuleList(\n  (0-4): 5 x Linear(in_features=10, out_features=10, "
                       "bias=True)\n)")
    assert str(nn.ModuleList()) == "ModuleList()"
    ml2 = nn.ModuleList([nn.ReLU(), nn.ReLU()])
    ml2.insert(1, nn.Tanh())
    ml2.extend([nn.Tanh()])
    ml2.append(nn.Sigmoid())
    assert [type(m).__name__ for m in ml2] == ["ReLU", "Tanh", "ReLU", "Tanh", "Sigmoid"]
    assert type(ml2[1:3]) is nn.ModuleList and len(ml2[1:3]) == 2
    assert type(ml2[-1]) is nn.Sigmoid
    with pytest.raises(IndexError):
        ml2[5]
    del ml2[0]
    assert list(ml2._modules.keys()) == ["0", "1", "2", "3"]


def test_sequential_ops():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(s) == 3 and type(s[-1]) is nn.Linear
    sl = s[1:]
    assert type(sl) is nn.Sequential and list(sl._modules.keys()) == ["1", "2"]
    s.append(nn.Sigmoid())
    s.insert(0, nn.Identity())
    assert [type(m).__name__ for m in s] == ["Identity", "Linear", "ReLU", "Linear", "Sigmoid"]
    del s[0]
    assert list(s._modules.keys()) == ["0", "1", "2", "3"]
    s.extend(nn.Sequential(nn.Tanh()))
    assert len(s) == 5
    y = s(torch.ones(4, 2))
    assert y.shape == torch.Size([4, 1]) and (to_np(y) >= -1).all() and (to_np(y) <= 1).all()
    with pytest.raises(IndexError):
        s[9]


def test_module_dict_parameter_list_dict():
    md = nn.ModuleDict({"x": nn.ReLU(), "a": nn.LeakyReLU(0.2, True)})
    assert list(md.keys()) == ["x", "a"] and "a" in md and len(md) == 2
    assert str(md) == ("ModuleDict(\n  (x): ReLU()\n  (a): LeakyReLU(negative_slope=0.2, "
                       "inplace=True)\n)")
    pl = nn.ParameterList([nn.Parameter(torch.ones(2, 3)), torch.zeros(3)])
    dev = f" ({pl[0].device})" if pl[0].is_cuda else ""     # PyTorch on a GPU appends it
    assert str(pl) == (f"ParameterList(\n    (0): Parameter containing: [torch.float32 of size "
                       f"2x3{dev}]\n    (1): Parameter containing: [torch.float32 of size 3{dev}]"
                       "\n)")
    assert all(type(p) is nn.Parameter for p in pl)
    assert len(list(pl.parameters())) == 2
    pd = nn.ParameterDict({"b": nn.Parameter(torch.ones(2)),
                           "a": torch.zeros(3, dtype=torch.float64)})
    assert list(pd.keys()) == ["a", "b"]      # a plain dict is taken in sorted order
    # on a GPU PyTorch names the cuda types and appends the device
    cu, dev = ("cuda.", f" ({pd['a'].device})") if pd["a"].is_cuda else ("", "")
    assert str(pd) == (f"ParameterDict(\n    (a): Parameter containing: [torch.{cu}DoubleTensor of "
                       f"size 3{dev}]\n    (b): Parameter containing: [torch.{cu}FloatTensor of "
                       f"size 2{dev}]\n)")
    with pytest.raises(RuntimeError):
        pl(1)


def test_custom_forward_missing():
    class NoFwd(nn.Module):
        pass
    with pytest.raises(NotImplementedError):
        NoFwd()(torch.ones(1))


def test_against_torch_reprs():
    real = pytest.importorskip("torch")
    assert str(real.nn.Sequential(real.nn.Linear(2, 3), real.nn.GELU("tanh"))) == \
        str(nn.Sequential(nn.Linear(2, 3), nn.GELU("tanh")))


def test_deepcopy_parameter_does_not_copy_grad():
    # torch's Parameter.__deepcopy__ copies data and requires_grad only
    m = nn.Linear(2, 2)
    m(torch.ones(1, 2)).sum().backward()
    c = copy.deepcopy(m)
    assert c.weight.grad is None and c.bias.grad is None
    assert m.weight.grad is not None
    assert torch.equal(c.weight, m.weight) and c.weight.requires_grad


def test_lazy_module_dtype_conversion_before_materialize():
    m = nn.LazyLinear(4).double()
    assert isinstance(m.weight, nn.parameter.UninitializedParameter)
    y = m(torch.ones(2, 3, dtype=torch.float64))
    assert y.dtype == torch.float64 and m.weight.dtype == torch.float64
    assert m.weight.shape == (4, 3) and type(m.weight) is nn.Parameter
    bn = nn.LazyBatchNorm1d().half().float()
    bn(torch.ones(4, 3))
    assert bn.running_mean.dtype == torch.float32
    assert bn.num_batches_tracked.dtype == torch.int64


def test_full_backward_hook_zeros_for_input_not_requiring_grad():
    class Mul(nn.Module):
        def forward(self, a, b):
            return a * b
    m = Mul()
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append(gi))
    a = torch.tensor([1., 2.], requires_grad=True)
    b = torch.tensor([3., 4.])
    m(a, b).sum().backward()
    gi, = seen
    assert gi[0].tolist() == [3., 4.]
    assert gi[1].tolist() == [0., 0.]      # zeros, not None, once any input needs grad
    assert b.grad is None and a.grad.tolist() == [3., 4.]


def test_global_module_forward_hooks():
    from framework.nn.modules.module import (register_module_forward_hook,
                                             register_module_forward_pre_hook)
    order = []
    m = nn.Identity()
    m.register_forward_hook(lambda mod, a, out: order.append(("local", out.tolist())))
    h = register_module_forward_hook(lambda mod, a, out: order.append("global") or out * 2)
    h2 = register_module_forward_pre_hook(lambda mod, a: (a[0] + 1,))
    try:
        assert m(torch.ones(1)).tolist() == [4.]
        assert order == ["global", ("local", [4.])]
    finally:
        h.remove()
        h2.remove()
    assert nn.Identity()(torch.ones(1)).tolist() == [1.]
    assert not hasattr(nn, "register_module_forward_hook")


def test_load_state_dict_post_hook_must_not_return():
    m = nn.Linear(2, 2)
    m.register_load_state_dict_post_hook(lambda mod, keys: keys)
    with pytest.raises(AssertionError, match="not expected to return new values"):
        m.load_state_dict(m.state_dict())
