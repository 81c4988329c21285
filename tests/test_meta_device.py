"""The 'meta' device: tensors with shape, dtype and strides but no data. Each op's meta result
is checked against the same op on cpu tensors (the reference computed here)."""
import math

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.nn import functional as F


def _same_layout(r, m):
    assert m.device.type == "meta" and m.is_meta
    assert tuple(m.shape) == tuple(r.shape)
    assert m.dtype == r.dtype
    assert m.stride() == r.stride()


_a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7 - 0.5
_b = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)

# (name, fn of (x, w, i) -> tensor or tuple); x (3, 4) float32, w (4, 5), i int64 (3,)
OPS = [
    ("add", lambda x, w, i: x + 1.5), ("mul_bcast", lambda x, w, i: x * x[0]),
    ("t_add", lambda x, w, i: x.t() + w[:, :3]), ("t_exp", lambda x, w, i: x.t().exp()),
    ("cmp", lambda x, w, i: x > 0), ("where", lambda x, w, i: torch.where(x > 0, x, -x)),
    ("cast", lambda x, w, i: x.to(torch.float16)), ("int_div", lambda x, w, i: i // 2),
    ("sum0", lambda x, w, i: x.sum(0)), ("mean_keep", lambda x, w, i: x.mean(1, keepdim=True)),
    ("amax", lambda x, w, i: x.amax(-1)), ("argmax", lambda x, w, i: x.argmax(1)),
    ("max_dim", lambda x, w, i: x.max(1)), ("matmul", lambda x, w, i: x @ w),
    ("bmm", lambda x, w, i: torch.bmm(x.expand(2, 3, 4), w.expand(2, 4, 5))),
    ("softmax", lambda x, w, i: F.softmax(x, -1)), ("gelu", lambda x, w, i: F.gelu(x)),
    ("layer_norm", lambda x, w, i: F.layer_norm(x, (4,))),
    ("t", lambda x, w, i: x.t()), ("slice", lambda x, w, i: x[1:, ::2]),
    ("expand", lambda x, w, i: x.expand(2, 3, 4)), ("reshape", lambda x, w, i: x.reshape(2, 6)),
    ("t_reshape", lambda x, w, i: x.t().reshape(12)), ("permute", lambda x, w, i: x[None].permute(2, 0, 1)),
    ("contiguous", lambda x, w, i: x.t().contiguous()), ("unsqueeze", lambda x, w, i: x.unsqueeze(1)),
    ("cat", lambda x, w, i: torch.cat([x, x], 1)), ("stack", lambda x, w, i: torch.stack([x, x])),
    ("index_select", lambda x, w, i: x.index_select(1, i)), ("gather", lambda x, w, i: x[:, i]),
    ("sort", lambda x, w, i: x.sort(1)), ("cumsum", lambda x, w, i: x.cumsum(0)),
    ("pad", lambda x, w, i: F.pad(x, (1, 2))), ("zeros_like", lambda x, w, i: torch.zeros_like(x.t())),
    ("empty_like", lambda x, w, i: torch.empty_like(x.t())),
    ("conv2d", lambda x, w, i: F.conv2d(x.reshape(1, 1, 3, 4), x[:2, :2].reshape(1, 1, 2, 2))),
]


@pytest.mark.parametrize("name,fn", OPS, ids=[o[0] for o in OPS])
def test_meta_op_layout_matches_cpu(name, fn):
    cx, cw = torch.tensor(_a), torch.tensor(_b)
    ci = torch.tensor([2, 0, 3])
    ref = fn(cx, cw, ci)
    res = fn(cx.to("meta"), cw.to("meta"), ci.to("meta"))
    if isinstance(ref, tuple):
        assert len(res) == len(ref)
        for r, m in zip(ref, res):
            _same_layout(r, m)
    else:
        _same_layout(ref, res)


def test_factories_and_default_device():
    m = torch.empty(3, 4, device="meta")
    assert m.device == torch.device("meta") and m.device.type == "meta"
    assert repr(torch.device("meta")) == "device(type='meta')"
    assert (m.shape, m.stride(), m.dtype) == ((3, 4), (4, 1), torch.float32)
    assert repr(m) == "tensor(..., device='meta', size=(3, 4))"
    assert repr(torch.zeros(2, dtype=torch.int64, device="meta")) == \
        "tensor(..., device='meta', size=(2,), dtype=torch.int64)"
    for t in (torch.ones(2, 3, device="meta"), torch.randn(2, 3, device="meta"),
              torch.full((2, 3), 7.0, device="meta"), torch.arange(6, device="meta").reshape(2, 3),
              torch.tensor([[1.0, 2, 3], [4, 5, 6]], device="meta")):
        assert t.is_meta and tuple(t.shape) == (2, 3)
    with torch.device("meta"):
        assert torch.ones(2).is_meta and nn.Linear(2, 3).weight.is_meta
    assert not torch.ones(2).is_meta
    torch.set_default_device("meta")
    try:
        assert torch.zeros(2).is_meta
    finally:
        torch.set_default_device(None)
    assert torch.zeros(2).device.type == "cpu"
    # a cpu tensor moved to meta keeps its layout; moving it again is the same tensor
    c = torch.tensor(_a).t()
    mc = c.to("meta")
    assert mc.stride() == c.stride() == (1, 4) and mc.to("meta") is mc


def test_no_data_errors():
    m = torch.empty(3, 4, device="meta")
    msg = "Cannot copy out of meta tensor; no data!"
    for f in (lambda: m.to("cpu"), lambda: m.cpu(), lambda: m.tolist(),
              lambda: torch.ones(3, 4).copy_(m)):
        with pytest.raises(NotImplementedError, match=msg):
            f()
    with pytest.raises(TypeError, match="can't convert meta device type tensor to numpy"):
        m.numpy()
    with pytest.raises(RuntimeError, match="a Tensor with 12 elements cannot be converted"):
        m.item()
    for f in (lambda: m.sum().item(), lambda: bool(m.sum() > 0), lambda: float(m.sum())):
        with pytest.raises(RuntimeError, match=r"Tensor.item\(\) cannot be called on meta tensors"):
            f()
    with pytest.raises(NotImplementedError, match="nonzero"):
        m.nonzero()
    # copying into a meta tensor writes nothing and is no error
    assert m.copy_(torch.ones(3, 4)) is m and m.is_meta


def test_mixed_devices():
    m = torch.empty(3, 4, device="meta")
    # a 0-d cpu tensor goes along as a scalar, on either side
    assert (m + torch.tensor(2.0)).is_meta and (torch.tensor(2.0) + m).is_meta
    with pytest.raises(RuntimeError, match="Tensor on device cpu is not on the expected device meta!"):
        m + torch.ones(3, 4)
    with pytest.raises(RuntimeError, match="Tensor on device meta is not on the expected device cpu!"):
        torch.ones(3, 4) + m


def test_autograd_on_meta():
    x = torch.randn(3, 4, device="meta", requires_grad=True)
    w = torch.ones(3, 5, device="meta")
    y = (x.t() @ w).relu().sum()
    assert type(y.grad_fn).__name__ == "SumBackward0"
    assert repr(y) == "tensor(..., device='meta', size=(), grad_fn=<SumBackward0>)"
    y.backward()
    assert x.grad.is_meta and tuple(x.grad.shape) == (3, 4) and x.grad.dtype == torch.float32


def test_module_on_meta_to_empty_and_load():
    lin = nn.Linear(4, 3, device="meta")
    assert isinstance(lin.weight, nn.Parameter) and lin.weight.is_meta and lin.bias.is_meta
    assert repr(lin.weight).endswith("tensor(..., device='meta', size=(3, 4), requires_grad=True)")
    out = lin(torch.empty(2, 4, device="meta"))
    assert out.is_meta and tuple(out.shape) == (2, 3)
    with pytest.raises(NotImplementedError, match="Please use torch.nn.Module.to_empty"):
        lin.to("cpu")
    ref = nn.Linear(4, 3)
    sd = ref.state_dict()
    with pytest.warns(UserWarning, match="to a meta parameter in the current model, which is "
                      "a no-op"):
        lin.load_state_dict(sd)        # copy_ into meta: stays meta
    assert lin.weight.is_meta
    lin.load_state_dict(sd, assign=True)
    assert lin.weight.device.type == "cpu"
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    want = x.astype(np.float64) @ sd["weight"].numpy().T.astype(np.float64) + sd["bias"].numpy()
    np.testing.assert_allclose(lin(torch.tensor(x)).detach().numpy(), want, rtol=1e-5, atol=1e-6)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 8)
            self.n = nn.LayerNorm(8)
            self.register_buffer("z", torch.zeros(3))

        def forward(self, x):
            return self.n(self.a(x))

    with torch.device("meta"):
        net = Net()
    assert all(v.is_meta for v in net.state_dict().values())
    assert tuple(net(torch.empty(2, 4, device="meta")).shape) == (2, 8)
    p = net.a.weight
    assert net.to_empty(device="cpu") is net
    assert net.a.weight is p and p.device.type == "cpu" and p.shape == (8, 4)
    assert all(v.device.type == "cpu" for v in net.state_dict().values())
    # a module that takes device= builds its parameters on meta, initialisation does nothing
    conv = nn.Conv2d(3, 8, 3, device="meta")
    assert conv.weight.is_meta and tuple(conv(torch.empty(2, 3, 10, 10, device="meta")).shape) == \
        (2, 8, 8, 8)
    emb = nn.Embedding(10, 4, device="meta")
    assert tuple(emb(torch.zeros(2, 3, dtype=torch.long, device="meta")).shape) == (2, 3, 4)
    lstm = nn.LSTM(4, 8, device="meta")        # its zero initial state is made on meta too
    out, (h, c) = lstm(torch.empty(5, 3, 4, device="meta"))
    assert out.is_meta and tuple(out.shape) == (5, 3, 8) and tuple(c.shape) == (1, 3, 8)
    assert torch.rand(2, 3, device="meta").bernoulli().is_meta
    big = nn.Linear(4096, 4096, device="meta")        # no 64 MiB of values made or drawn
    assert big.weight.is_meta and big.weight.nbytes == 4096 * 4096 * 4
    assert math.prod(big.to_empty(device="cpu").weight.shape) == 4096 * 4096


def test_inplace_optimizer_and_layouts_on_meta():
    lin = nn.Linear(6, 5, device="meta")
    ref = nn.Linear(6, 5)
    opt = torch.optim.AdamW(lin.parameters())
    for _ in range(2):              # the second backward accumulates into .grad
        lin(torch.empty(4, 6, device="meta")).sum().backward()
        ref(torch.zeros(4, 6)).sum().backward()
        for p, q in ((lin.weight, ref.weight), (lin.bias, ref.bias)):
            _same_layout(q.grad, p.grad)
        opt.step()
        opt.zero_grad()
    assert lin.weight.is_meta and lin.weight.grad is None
    x = torch.empty(3, 4, device="meta", requires_grad=True).clone()
    assert x.mul_(2).is_meta and type(x.grad_fn).__name__ == "MulBackward0"
    cl = torch.channels_last
    c = torch.empty(2, 3, 4, 5, device="meta").to(memory_format=cl)
    r = torch.zeros(2, 3, 4, 5).to(memory_format=cl)
    _same_layout(r, c)
    _same_layout(r + 1, c + 1)
    _same_layout(r.contiguous(), c.contiguous())
