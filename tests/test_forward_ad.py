"""torch.autograd.forward_ad: tangents against central finite differences (float64) and
torch.func.jvp, level handling, errors, in-place and view semantics, custom Function jvp."""
import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
import framework.autograd.forward_ad as fwAD
from framework import nn
from framework.func import jvp, functional_call

RNG = np.random.default_rng(0)


def T(*shape):
    return torch.tensor(RNG.standard_normal(shape))


def _fd(f, xs, ts, eps=1e-6):
    """Central finite difference of f along the tangents ts, in float64."""
    hi = f(*[torch.tensor(x.numpy() + eps * t.numpy()) for x, t in zip(xs, ts)])
    lo = f(*[torch.tensor(x.numpy() - eps * t.numpy()) for x, t in zip(xs, ts)])
    return (hi.numpy() - lo.numpy()) / (2 * eps)


def _fw(f, xs, ts):
    with fwAD.dual_level():
        out = f(*[fwAD.make_dual(x, t) for x, t in zip(xs, ts)])
        p, tan = fwAD.unpack_dual(out)
        assert tan is not None
        return p, tan


CASES = {
    "exp": (lambda x: x.exp(), [(3, 4)]),
    "tanh_sin": (lambda x: torch.tanh(x) * torch.sin(x), [(5,)]),
    "log_sqrt": (lambda x: torch.log(x * x + 1) + torch.sqrt(x * x + 2), [(2, 3)]),
    "sigmoid_pow": (lambda x: torch.sigmoid(x) ** 3, [(4,)]),
    "add_bcast": (lambda a, b: a + b, [(3, 4), (4,)]),
    "mul_bcast": (lambda a, b: a * b, [(2, 1, 4), (3, 1)]),
    "div_sub": (lambda a, b: (a - b) / (b * b + 1), [(3, 4), (1, 4)]),
    "maximum": (lambda a, b: torch.maximum(a, b), [(6,), (6,)]),
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 5)]),
    "bmm": (lambda a, b: torch.matmul(a, b), [(2, 3, 4), (4, 2)]),
    "sum_dim": (lambda x: x.sum(dim=1), [(3, 4, 2)]),
    "mean_dims": (lambda x: x.mean(dim=(0, 2), keepdim=True), [(3, 4, 2)]),
    "softmax": (lambda x: torch.softmax(x, dim=-1), [(3, 5)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=0), [(4, 3)]),
    "reshape_t": (lambda x: x.reshape(4, 3).t() * 2, [(3, 4)]),
    "transpose_view": (lambda x: x.transpose(0, 1).sin(), [(2, 3)]),
    "index_slice": (lambda x: x[1:, ::2] * x[:-1, 1::2], [(3, 4)]),
    "index_tensor": (lambda x: x[torch.tensor([0, 2, 2])].exp(), [(3, 2)]),
    "where": (lambda a, b: torch.where(a > 0, a * b, b.exp()), [(3, 4), (3, 4)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(2, 3), (4, 3), (4,)]),
    "relu": (lambda x: F.relu(x) * x, [(10,)]),
    "conv2d": (lambda x, w: F.conv2d(x, w, padding=1), [(1, 2, 5, 5), (3, 2, 3, 3)]),
    "layer_norm": (lambda x: F.layer_norm(x, (4,)), [(3, 4)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tangent_matches_fd_and_func_jvp(name):
    f, shapes = CASES[name]
    xs = [T(*s) for s in shapes]
    ts = [T(*s) for s in shapes]
    p, tan = _fw(f, xs, ts)
    np.testing.assert_allclose(p.numpy(), f(*xs).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tan.numpy(), _fd(f, xs, ts), rtol=1e-6, atol=1e-7)
    _, ref = jvp(f, tuple(xs), tuple(ts))
    np.testing.assert_allclose(tan.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)


def test_cross_entropy_tangent():
    y = torch.tensor([1, 0, 3])
    x, t = T(3, 4), T(3, 4)
    f = lambda z: F.cross_entropy(z, y)   # noqa: E731
    _, tan = _fw(f, [x], [t])
    assert tan.shape == ()
    np.testing.assert_allclose(tan.numpy(), _fd(f, [x], [t]), rtol=1e-6, atol=1e-8)
    # hand-derived: d/dx mean(-log softmax(x)[y]) . t = mean_i <softmax(x_i) - onehot(y_i), t_i>
    xn = x.numpy()
    sm = np.exp(xn - xn.max(1, keepdims=True))
    sm /= sm.sum(1, keepdims=True)
    sm[np.arange(3), y.numpy()] -= 1
    np.testing.assert_allclose(tan.item(), (sm * t.numpy()).sum() / 3, rtol=1e-12)


def test_complex_tangents_hand_derived():
    z = torch.tensor(np.array([1 + 2j, -0.5 + 0.3j]))
    t = torch.tensor(np.array([0.3 - 1j, 2 + 0.5j]))
    zn, tn = z.numpy(), t.numpy()
    with fwAD.dual_level():
        d = fwAD.make_dual(z, t)
        np.testing.assert_allclose(fwAD.unpack_dual(d.exp()).tangent.numpy(), np.exp(zn) * tn)
        np.testing.assert_allclose(fwAD.unpack_dual(d * d).tangent.numpy(), 2 * zn * tn)
        # non-holomorphic: d|z| = Re(conj(z) t) / |z|, d(z conj z) = 2 Re(conj(z) t)
        np.testing.assert_allclose(fwAD.unpack_dual(d.abs()).tangent.numpy(),
                                   (np.conj(zn) * tn).real / np.abs(zn))
        np.testing.assert_allclose(fwAD.unpack_dual(d * d.conj()).tangent.numpy(),
                                   2 * (np.conj(zn) * tn).real, atol=1e-15)


def test_mlp_dual_parameters_via_functional_call():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    x = T(4, 3)
    params = {k: v.detach() for k, v in model.named_parameters()}
    tangents = {k: T(*v.shape) for k, v in params.items()}
    names = list(params)

    def f(*ps):
        return functional_call(model, dict(zip(names, ps)), (x,))

    xs = [params[k] for k in names]
    ts = [tangents[k] for k in names]
    with fwAD.dual_level():
        duals = {k: fwAD.make_dual(params[k], tangents[k]) for k in names}
        out = functional_call(model, duals, (x,))
        tan = fwAD.unpack_dual(out).tangent
    np.testing.assert_allclose(tan.numpy(), _fd(f, xs, ts), rtol=1e-6, atol=1e-8)
    _, ref = jvp(f, tuple(xs), tuple(ts))
    np.testing.assert_allclose(tan.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)


def test_unpack_dual_outside_and_after_level():
    x, t = T(3), T(3)
    p, tan = fwAD.unpack_dual(x)
    assert p is x and tan is None
    with fwAD.dual_level() as lvl:
        assert lvl == 0
        d = fwAD.make_dual(x, t)
        u = fwAD.unpack_dual(d)
        assert isinstance(u, fwAD.UnpackedDualTensor)
        assert u.tangent is t                           # kept as it is
        np.testing.assert_array_equal(u.primal.numpy(), x.numpy())
        assert fwAD.unpack_dual(u.primal).tangent is None
        assert fwAD.unpack_dual(x).tangent is None      # the original is not dual
        out = d * 3
        assert fwAD.unpack_dual(out).tangent is not None
    # leaving the level drops the tangents of everything made inside it
    assert fwAD.unpack_dual(out).tangent is None
    assert fwAD.unpack_dual(d).tangent is None
    np.testing.assert_allclose(out.numpy(), 3 * x.numpy())
    assert torch._dispatch.FWAD is None


def test_make_dual_errors_leave_data_unchanged():
    x, t = T(3), T(3)
    x0, t0 = x.numpy().copy(), t.numpy().copy()
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(x, t)
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match=r"different size .* \[3\] .* \[4\]"):
            fwAD.make_dual(x, T(4))
        with pytest.raises(ValueError, match="Expected tangent to be floating point"):
            fwAD.make_dual(x, torch.ones(3, dtype=torch.int64))
        with pytest.raises(ValueError, match="Expected primal to be floating point"):
            fwAD.make_dual(torch.ones(3, dtype=torch.int64), t)
        d = fwAD.make_dual(x, t)
        with pytest.raises(RuntimeError, match="already has a forward gradient"):
            fwAD.make_dual(d, t)
        with pytest.raises(RuntimeError, match="Nested forward mode AD is not supported"):
            fwAD.enter_dual_level()
    with pytest.raises(RuntimeError, match="Dual level must be a positive number"):
        fwAD.exit_dual_level()
    np.testing.assert_array_equal(x.numpy(), x0)
    np.testing.assert_array_equal(t.numpy(), t0)


def test_inplace_on_dual_updates_tangent_and_views():
    x, t = T(4), T(4)
    tn = t.numpy().copy()
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        y = d * 2
        v = y[1:]
        y.add_(d)                        # y = 3 d
        np.testing.assert_allclose(fwAD.unpack_dual(y).tangent.numpy(), 3 * tn)
        np.testing.assert_allclose(fwAD.unpack_dual(v).tangent.numpy(), 3 * tn[1:])
        y.mul_(y)                        # y = 9 d^2: tangent 18 d t
        xn = x.numpy()
        np.testing.assert_allclose(fwAD.unpack_dual(y).tangent.numpy(), 18 * xn * tn)
        z = torch.zeros(4, dtype=torch.float64)
        z.add_(d)                        # a non-dual tensor becomes dual
        np.testing.assert_allclose(fwAD.unpack_dual(z).tangent.numpy(), tn)
        w = x.clone()
        w.clamp_(min=0.0)                # a composite in-place op on a non-dual: stays non-dual
        assert fwAD.unpack_dual(w).tangent is None
        c = d.clone()
        c.clamp_(min=0.0)                # ... and on a dual: the tangent follows
        np.testing.assert_allclose(fwAD.unpack_dual(c).tangent.numpy(), np.where(xn > 0, tn, 0))


def test_copy_fill_setitem_on_dual():
    x, t = T(4), T(4)
    tn = t.numpy().copy()
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        y = torch.zeros(4, dtype=torch.float64)
        y.copy_(d * 3)
        np.testing.assert_allclose(fwAD.unpack_dual(y).tangent.numpy(), 3 * tn)
        y.fill_(2.0)                     # a constant: zero tangent, value written
        np.testing.assert_array_equal(fwAD.unpack_dual(y).tangent.numpy(), np.zeros(4))
        np.testing.assert_array_equal(y.numpy(), np.full(4, 2.0))
        y = d.clone()
        y[0] = 1.0
        y[2:] = d[:2] * 2
        np.testing.assert_allclose(fwAD.unpack_dual(y).tangent.numpy(),
                                   [0.0, tn[1], 2 * tn[0], 2 * tn[1]])
        np.testing.assert_allclose(y.numpy(), [1.0, x.numpy()[1], *(2 * x.numpy()[:2])])
        # a dual value written into a view of a tensor that is not dual: the base becomes dual
        # with a zero tangent elsewhere (PyTorch's rule), and later views of it see the tangent
        xn = x.numpy()
        for write, val, tan in (
                (lambda z: z[1:].add_(d[1:]), xn[1:], tn[1:]),
                (lambda z: z[1:].copy_(d[1:]), xn[1:], tn[1:]),
                (lambda z: z[1:].clamp_(max=d[1:]), np.minimum(0, xn[1:]),
                 np.where(xn[1:] < 0, tn[1:], 0.0))):
            z = torch.zeros(4, dtype=torch.float64)
            write(z)
            np.testing.assert_allclose(z.numpy(), [0.0, *val])
            np.testing.assert_allclose(fwAD.unpack_dual(z).tangent.numpy(), [0.0, *tan])
            np.testing.assert_allclose(fwAD.unpack_dual(z[2:]).tangent.numpy(), tan[1:])
        zt = torch.zeros(3, 2, dtype=torch.float64)
        zt.t()[1].copy_(d[:3])                  # a non-contiguous view of the base
        np.testing.assert_allclose(fwAD.unpack_dual(zt).tangent.numpy(),
                                   np.stack([np.zeros(3), tn[:3]], 1))
        zd = torch.zeros(4, dtype=torch.float64, device="interpret")
        with pytest.raises(RuntimeError, match=r"into a view \(shape \[3\]\) of a interpret"):
            zd[1:].copy_(d[1:].to("interpret"))
        assert fwAD.unpack_dual(zd).tangent is None
        np.testing.assert_array_equal(zd.cpu().numpy(), np.zeros(4))    # nothing written


def test_view_tangent_is_view_and_detach_drops_it():
    x, t = T(2, 3), T(2, 3)
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        v = d.t()
        np.testing.assert_array_equal(fwAD.unpack_dual(v).tangent.numpy(), t.numpy().T)
        assert fwAD.unpack_dual(d.detach()).tangent is None
        assert fwAD.unpack_dual(d > 0).tangent is None      # boolean output: no tangent
        assert fwAD.unpack_dual(d.argmax()).tangent is None
        with torch.no_grad():                               # forward AD ignores grad mode
            np.testing.assert_allclose(fwAD.unpack_dual(d.exp()).tangent.numpy(),
                                       np.exp(x.numpy()) * t.numpy())


def test_tangent_differentiable_by_reverse_mode():
    x = T(3).requires_grad_()
    t = T(3).requires_grad_()
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        out = (d.sin() * d).sum()
        tan = fwAD.unpack_dual(out).tangent
        gx, gt = torch.autograd.grad(tan, [x, t], retain_graph=True)  # (shares primal nodes)
        # primal's reverse graph is intact too
        (gp,) = torch.autograd.grad(out, [x])
    X, Tn = x.detach().numpy(), t.detach().numpy()
    np.testing.assert_allclose(gx.numpy(), (2 * np.cos(X) - X * np.sin(X)) * Tn, rtol=1e-12)
    np.testing.assert_allclose(gt.numpy(), np.cos(X) * X + np.sin(X), rtol=1e-12)
    np.testing.assert_allclose(gp.numpy(), np.cos(X) * X + np.sin(X), rtol=1e-12)


def test_custom_function_jvp_and_missing_jvp():
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_forward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            raise AssertionError("not used")

        @staticmethod
        def jvp(ctx, tx):
            (x,) = ctx.saved_tensors
            return 3 * x * x * tx

    class NoJvp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x, t = T(4), T(4)
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        tan = fwAD.unpack_dual(Cube.apply(d).sin()).tangent
        xn = x.numpy()
        np.testing.assert_allclose(tan.numpy(), np.cos(xn ** 3) * 3 * xn ** 2 * t.numpy(),
                                   rtol=1e-12)
        with pytest.raises(NotImplementedError, match="must implement the jvp function"):
            NoJvp.apply(d)
        # a non-dual input needs no jvp
        np.testing.assert_allclose(NoJvp.apply(x).numpy(), 2 * xn)


def test_no_level_no_hook():
    assert torch._dispatch.FWAD is None
    with fwAD.dual_level():
        assert torch._dispatch.FWAD is not None
    assert torch._dispatch.FWAD is None
    with pytest.raises(RuntimeError):
        with fwAD.dual_level():
            raise RuntimeError("boom")
    assert torch._dispatch.FWAD is None                     # an error leaves the level too


def test_dual_tensor_repr_shows_tangent():
    # PyTorch's printing: a tangent= suffix after grad_fn; a 0-d tangent formats as a number
    with fwAD.dual_level():
        x = fwAD.make_dual(torch.tensor([1., 2.]), torch.tensor([3., 4.]))
        assert repr(x) == "tensor([1., 2.], tangent=tensor([3., 4.]))"
        assert str(x * 2) == "tensor([2., 4.], tangent=tensor([6., 8.]))"
        y = torch.tensor([1., 2.], requires_grad=True)
        z = fwAD.make_dual(y, torch.ones(2))
        assert str(z) == "tensor([1., 2.], grad_fn=<ViewBackward0>, tangent=tensor([1., 1.]))"
        s = fwAD.make_dual(torch.tensor(1.), torch.tensor(2.))
        assert str(s) == "tensor(1., tangent=2.0)"
        w = fwAD.make_dual(torch.zeros(12), torch.ones(12))     # past 80 columns: a new line
        assert str(w) == ("tensor([0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.],\n"
                          "       tangent=tensor([1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.]))")
    assert str(x) == "tensor([1., 2.])"         # the level's end drops the tangent


def test_device_copy_carries_tangent_and_grad():
    # .to(device) is differentiable in both modes: the copy keeps the tangent (copied too) and
    # its grad_fn is PyTorch's ToCopyBackward0, sending the gradient back to the cpu
    p = torch.tensor([1., 2., 3.], dtype=torch.float64, requires_grad=True)
    with fwAD.dual_level():
        d = fwAD.make_dual(p, torch.tensor([4., 5., 6.], dtype=torch.float64))
        e = d.to("interpret")
        assert e.grad_fn.name() == "ToCopyBackward0"
        tan = fwAD.unpack_dual(e).tangent
        assert tan.device.type == "interpret"
        np.testing.assert_array_equal(tan.cpu().numpy(), [4., 5., 6.])
        back = (e * e).cpu()
        np.testing.assert_allclose(fwAD.unpack_dual(back).tangent.detach().numpy(), [8., 20., 36.])
        back.sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [2., 4., 6.])
