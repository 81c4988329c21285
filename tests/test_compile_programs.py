"""compile() on tutorial-style programs: pieces that broke, crashed or replayed wrong values
(a GNN's x[index] and zeros().index_add_, a custom autograd.Function or checkpoint() inside a
compiled module). Tiny sizes, a few steps each."""
import numpy as np
import pytest

import framework as torch
from framework import nn, optim
import framework.nn.functional as F
from framework.utils.checkpoint import checkpoint


def test_indexing_with_a_long_tensor_is_traced_without_a_graph_break():
    x = torch.randn(5, 3, dtype=torch.float64)
    idx = torch.tensor([4, 0, 0, -1, 2])

    @torch.compile(fullgraph=True)
    def f(x, idx):
        return x[idx] * 2 + x[idx, 1:].sum()

    xn = x.numpy()
    want = xn[idx.numpy()] * 2 + xn[idx.numpy(), 1:].sum()
    np.testing.assert_allclose(f(x, idx).numpy(), want, rtol=1e-12)
    idx2 = torch.tensor([1, 1, 3, 0, 0])          # new values, same program
    np.testing.assert_allclose(f(x, idx2).numpy(),
                               xn[idx2.numpy()] * 2 + xn[idx2.numpy(), 1:].sum(), rtol=1e-12)
    assert f.stats["compiles"] == 1 and not f.stats["graph_breaks"]
    with pytest.raises(IndexError, match="out of bounds for dimension 0 with size 5"):
        f(x, torch.tensor([0, 5]))


def _gnn(seed=0):
    torch.manual_seed(seed)
    lin = nn.Linear(3, 4).double()
    return lin, optim.Adam(lin.parameters(), lr=0.05)


def _gnn_step(lin, opt):
    def step(x, src, dst):
        opt.zero_grad()
        m = F.relu(lin(x[src]))
        agg = torch.zeros(5, 4, dtype=x.dtype).index_add_(0, dst, m)
        deg = torch.zeros(5, dtype=x.dtype).scatter_add_(0, dst, torch.ones(6, dtype=x.dtype))
        loss = (agg / deg.clamp(min=1).unsqueeze(1)).pow(2).sum()
        loss.backward()
        opt.step()
        return loss
    return step


def test_replayed_step_that_writes_a_fresh_zeros_tensor_in_place_equals_eager():
    # the replay starts each call from zeros again (not from the traced call's result) and
    # writes nowhere else (the write-back once went into a parameter's gradient)
    x = torch.randn(5, 3, dtype=torch.float64)
    src, dst = torch.tensor([1, 2, 3, 4, 0, 0]), torch.tensor([0, 2, 2, 4, 1, 0])
    lin_e, opt_e = _gnn()
    lin_c, opt_c = _gnn()
    eager, comp = _gnn_step(lin_e, opt_e), torch.compile(_gnn_step(lin_c, opt_c))
    # first loss by hand in NumPy
    w, b = lin_e.weight.detach().numpy(), lin_e.bias.detach().numpy()
    m = np.maximum(x.numpy()[src.numpy()] @ w.T + b, 0)
    agg = np.zeros((5, 4))
    np.add.at(agg, dst.numpy(), m)
    deg = np.maximum(np.bincount(dst.numpy(), minlength=5), 1)
    want0 = ((agg / deg[:, None]) ** 2).sum()
    for i in range(5):
        le, lc = eager(x, src, dst), comp(x, src, dst)
        if i == 0:
            np.testing.assert_allclose(le.item(), want0, rtol=1e-12)
        np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-12, err_msg=f"step {i}")
        for pe, pc in zip(lin_e.parameters(), lin_c.parameters()):
            np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-12)
            np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-12)
    assert comp.stats["replays"] >= 2 and not comp.stats["graph_breaks"]


class _Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        s = torch.sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * (s + x * s * (1 - s))


class _Net(nn.Module):
    def __init__(self, use_ckpt):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)
        self.use_ckpt = use_ckpt

    def forward(self, x):
        if self.use_ckpt:
            h = checkpoint(lambda t: torch.tanh(self.fc1(t)), x, use_reentrant=False)
        else:
            h = _Swish.apply(self.fc1(x))
        return self.fc2(h)


@pytest.mark.parametrize("use_ckpt", [False, True], ids=["custom_function", "checkpoint"])
def test_compiled_module_with_eager_backward_node_gives_eager_gradients(use_ckpt):
    # the region's backward stays eager through such a node, so what the traced nodes saved
    # (fc2's input) must be computed by the region, not left symbolic
    torch.manual_seed(0)
    m = _Net(use_ckpt).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    w1, b1 = m.fc1.weight.detach().numpy(), m.fc1.bias.detach().numpy()
    w2 = m.fc2.weight.detach().numpy()
    z = x.numpy() @ w1.T + b1
    if use_ckpt:
        h, dh = np.tanh(z), 1 - np.tanh(z) ** 2
    else:
        s = 1 / (1 + np.exp(-z))
        h, dh = z * s, s + z * s * (1 - s)
    gz = np.ones((5, 2)) @ w2 * dh
    cm = torch.compile(m)
    for _ in range(3):
        m.zero_grad()
        out = cm(x)
        np.testing.assert_allclose(out.detach().numpy(), h @ w2.T + m.fc2.bias.detach().numpy(),
                                   rtol=1e-12)
        out.sum().backward()
        np.testing.assert_allclose(m.fc2.weight.grad.numpy(), np.ones((2, 5)) @ h, rtol=1e-12)
        np.testing.assert_allclose(m.fc1.weight.grad.numpy(), gz.T @ x.numpy(), rtol=1e-12)
        np.testing.assert_allclose(m.fc1.bias.grad.numpy(), gz.sum(0), rtol=1e-12)


@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
def test_clip_grad_norm_in_a_compiled_step_has_no_graph_break(norm_type):
    torch.manual_seed(0)
    lin = nn.Linear(4, 3).double()
    opt = optim.SGD(lin.parameters(), lr=0.1)
    w0, b0 = lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy()
    x, y = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)

    @torch.compile(fullgraph=True)
    def step(x, y):
        opt.zero_grad()
        F.mse_loss(lin(x), y, reduction="sum").backward()
        total = nn.utils.clip_grad_norm_(lin.parameters(), 0.5, norm_type=norm_type)
        opt.step()
        return total

    total = step(x, y)
    r = x.numpy() @ w0.T + b0 - y.numpy()
    gw, gb = 2 * r.T @ x.numpy(), 2 * r.sum(0)
    if norm_type == 2.0:
        want = np.sqrt((gw ** 2).sum() + (gb ** 2).sum())
    else:
        want = max(np.abs(gw).max(), np.abs(gb).max())
    np.testing.assert_allclose(total.item(), want, rtol=1e-12)
    c = min(0.5 / (want + 1e-6), 1.0)
    np.testing.assert_allclose(lin.weight.grad.numpy(), gw * c, rtol=1e-12)
    np.testing.assert_allclose(lin.weight.detach().numpy(), w0 - 0.1 * gw * c, rtol=1e-12)
    assert not step.stats["graph_breaks"]


def test_item_scale_in_a_compiled_module_does_not_recompile_every_call():
    # the value read by .item() becomes a float constant of the next region; its backward
    # takes this call's constants instead of compiling a program per value (as torch's
    # unspecialized floats)
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)

        def forward(self, x):
            h = self.a(x)
            s = h.abs().max().item()
            return (h / (s + 1.0)).sum()

    torch.manual_seed(0)
    m = Net().double()
    cm = torch.compile(m)
    w, b = m.a.weight.detach().numpy(), m.a.bias.detach().numpy()
    for i in range(4):
        x = torch.randn(2, 4, dtype=torch.float64)
        m.zero_grad()
        out = cm(x)
        h = x.numpy() @ w.T + b
        c = np.abs(h).max() + 1.0
        np.testing.assert_allclose(out.item(), h.sum() / c, rtol=1e-12)
        out.backward()
        # the scale is a Python number: gradients flow through h only
        np.testing.assert_allclose(m.a.weight.grad.numpy(), np.ones((3, 2)) @ x.numpy() / c,
                                   rtol=1e-12)
        np.testing.assert_allclose(m.a.bias.grad.numpy(), np.full(3, 2 / c), rtol=1e-12)
    assert cm._compiled.stats["recompiles"] == []


def test_backward_through_an_earlier_region_is_traced_into_the_step():
    # forward breaks at .item(); the step's backward() reaches the first region's node: its
    # backward graph is recorded into the trace (one break, as the .item() alone), and the
    # gradients are eager's
    def build():
        torch.manual_seed(0)
        a, c = nn.Linear(4, 3).double(), nn.Linear(3, 2).double()
        opt = optim.SGD(list(a.parameters()) + list(c.parameters()), lr=0.1)

        def step(x):
            opt.zero_grad()
            h = a(x)
            u = torch.tanh(h)                 # a first-region output without a gradient
            s = h.abs().max().item()
            loss = c(h / (s + 1.0)).pow(2).sum() + u.sum() * 0
            loss.backward()
            opt.step()
            return loss
        return step, [*a.parameters(), *c.parameters()]
    eager, pe = build()
    step, pc = build()
    comp = torch.compile(step)
    w1, b1, w2, b2 = (p.detach().numpy().copy() for p in pe)
    x = torch.randn(2, 4, dtype=torch.float64)
    h = x.numpy() @ w1.T + b1
    sc = np.abs(h).max() + 1.0
    o = (h / sc) @ w2.T + b2
    gh = (2 * o) @ w2 / sc                   # loss gradient at h (the scale is a constant)
    for i in range(3):
        le, lc = eager(x), comp(x)
        if i == 0:
            np.testing.assert_allclose(le.item(), (o ** 2).sum(), rtol=1e-12)
            np.testing.assert_allclose(pc[0].grad.numpy(), gh.T @ x.numpy(), rtol=1e-12)
        np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-12)
        for p, q in zip(pe, pc):
            np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-12)
    assert len(comp.stats["graph_breaks"]) == 3 and all(
        "item()" in r for r, _ in comp.stats["graph_breaks"])
