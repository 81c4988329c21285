"""Convolution layers and functionals against direct-loop NumPy float64 references."""
import itertools
import math

import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from framework.autograd import gradcheck
from conftest import assert_close, to_np


# ---- NumPy references (direct loops, float64) ---------------------------------------------------

def ref_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, *S), w (Cout, C/groups, *K), padding: int/tuple per dim or list of (lo, hi)."""
    nd = x.ndim - 2
    st = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    dl = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    if isinstance(padding, int):
        pads = [(padding, padding)] * nd
    elif isinstance(padding[0], tuple):
        pads = list(padding)
    else:
        pads = [(p, p) for p in padding]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    N, C = x.shape[:2]
    Cout, Cg = w.shape[:2]
    K = w.shape[2:]
    outs = [(xp.shape[2 + i] - dl[i] * (K[i] - 1) - 1) // st[i] + 1 for i in range(nd)]
    y = np.zeros((N, Cout) + tuple(outs))
    og = Cout // groups
    for n in range(N):
        for co in range(Cout):
            g = co // og
            for o in itertools.product(*[range(k) for k in outs]):
                acc = 0.0
                for ci in range(Cg):
                    for kk in itertools.product(*[range(k) for k in K]):
                        pos = tuple(o[i] * st[i] + kk[i] * dl[i] for i in range(nd))
                        acc += xp[(n, g * Cg + ci) + pos] * w[(co, ci) + kk]
                y[(n, co) + o] = acc + (0 if b is None else b[co])
    return y


def ref_conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Scatter form: every input element adds w * x into the (uncropped) output."""
    nd = x.ndim - 2
    tup = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    st, p, op, dl = tup(stride), tup(padding), tup(output_padding), tup(dilation)
    N, Cin = x.shape[:2]
    cg = w.shape[1]
    K = w.shape[2:]
    ins = x.shape[2:]
    full = [(ins[i] - 1) * st[i] + dl[i] * (K[i] - 1) + 1 + op[i] for i in range(nd)]
    y = np.zeros((N, cg * groups) + tuple(full))
    ig = Cin // groups
    for n in range(N):
        for ci in range(Cin):
            g = ci // ig
            for i in itertools.product(*[range(s) for s in ins]):
                for co in range(cg):
                    for kk in itertools.product(*[range(k) for k in K]):
                        pos = tuple(i[d] * st[d] + kk[d] * dl[d] for d in range(nd))
                        y[(n, g * cg + co) + pos] += x[(n, ci) + i] * w[(ci, co) + kk]
    crop = tuple(slice(p[d], full[d] - p[d]) for d in range(nd))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + b.reshape((-1,) + (1,) * nd)
    return y


def T(a, rg=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=rg)


@pytest.fixture
def r():
    return np.random.default_rng(1)


# ---- forward values -----------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(),
    dict(stride=2),
    dict(stride=(2, 1), padding=(1, 2)),
    dict(dilation=(2, 1), padding=1),
    dict(groups=2),
    dict(groups=4, stride=(1, 2), dilation=2, padding=(2, 0)),
])
def test_conv2d_matches_loop_reference(r, kw):
    groups = kw.get("groups", 1)
    x = r.standard_normal((2, 4, 7, 6))
    w = r.standard_normal((4, 4 // groups, 3, 2))
    b = r.standard_normal(4)
    y = F.conv2d(T(x), T(w), T(b), **kw)
    assert_close(y, ref_conv(x, w, b, **kw), rtol=1e-10, atol=1e-10)
    assert y.grad_fn is None


def test_conv1d_conv3d_and_unbatched(r):
    x = r.standard_normal((2, 3, 9))
    w = r.standard_normal((5, 3, 4))
    assert_close(F.conv1d(T(x), T(w), stride=2, dilation=2, padding=1),
                 ref_conv(x, w, stride=2, dilation=2, padding=1), atol=1e-10)
    # unbatched (C, L) input gives (Cout, L')
    y = F.conv1d(T(x[0]), T(w))
    assert y.shape == (5, 6)
    assert_close(y, ref_conv(x[:1], w)[0], atol=1e-10)
    x3 = r.standard_normal((1, 2, 4, 5, 3))
    w3 = r.standard_normal((3, 2, 2, 3, 2))
    b3 = r.standard_normal(3)
    assert_close(F.conv3d(T(x3), T(w3), T(b3), padding=(1, 0, 1), stride=(1, 2, 1)),
                 ref_conv(x3, w3, b3, padding=(1, 0, 1), stride=(1, 2, 1)), atol=1e-10)


def test_hand_computed_conv():
    # 1x1x3x3 input of 1..9, 2x2 kernel of ones: every output is the sum of a 2x2 block
    x = torch.arange(1., 10.).reshape(1, 1, 3, 3)
    y = F.conv2d(x, torch.ones(1, 1, 2, 2))
    assert y.tolist() == [[[[12., 16.], [24., 28.]]]]
    assert y.dtype == torch.float32


def test_padding_same_and_valid(r):
    x = r.standard_normal((1, 2, 6, 7))
    w = r.standard_normal((3, 2, 4, 3))
    # 'same' pads d*(k-1) in total, the extra element on the right/bottom
    y = F.conv2d(T(x), T(w), padding="same", dilation=(1, 2))
    assert y.shape == (1, 3, 6, 7)
    assert_close(y, ref_conv(x, w, padding=[(1, 2), (2, 2)], dilation=(1, 2)), atol=1e-10)
    assert_close(F.conv2d(T(x), T(w), padding="valid"), ref_conv(x, w), atol=1e-10)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_padding_modes(r, mode):
    m = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode).double()
    x = r.standard_normal((2, 2, 5, 6))
    npmode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (2, 2)], mode=npmode)
    ref = ref_conv(xp, to_np(m.weight), to_np(m.bias))
    assert_close(m(T(x)), ref, atol=1e-10)


def test_conv_transpose_matches_scatter_reference(r):
    x = r.standard_normal((2, 4, 3, 4))
    w = r.standard_normal((4, 3, 3, 2))
    b = r.standard_normal(6)
    for kw in [dict(), dict(stride=2, padding=1, output_padding=1),
               dict(stride=(1, 3), padding=(0, 1), output_padding=(0, 2), groups=2, dilation=(2, 1))]:
        g = kw.get("groups", 1)
        bb = b[:3 * g]
        y = F.conv_transpose2d(T(x), T(w), T(bb), **kw)
        assert_close(y, ref_conv_transpose(x, w, bb, **kw), atol=1e-10)
    x1 = r.standard_normal((1, 2, 5))
    w1 = r.standard_normal((2, 3, 3))
    assert_close(F.conv_transpose1d(T(x1), T(w1), stride=3, output_padding=2, padding=1),
                 ref_conv_transpose(x1, w1, stride=3, output_padding=2, padding=1), atol=1e-10)


def test_conv_transpose_is_adjoint_of_conv(r):
    # <conv(x, w), y> == <x, conv_transpose(y, w)>
    x = r.standard_normal((2, 3, 7, 8))
    w = r.standard_normal((4, 3, 3, 3))
    y = r.standard_normal((2, 4, 4, 4))
    lhs = np.sum(to_np(F.conv2d(T(x), T(w), stride=2, padding=1)) * y)
    rhs = np.sum(x * to_np(F.conv_transpose2d(T(y), T(w), stride=2, padding=1, output_padding=(0, 1))))
    assert abs(lhs - rhs) < 1e-9


def test_unfold_fold(r):
    x = r.standard_normal((2, 3, 5, 6))
    cols = F.unfold(T(x), (2, 3), padding=1, stride=(2, 1))
    # column l holds the (2x3) patch of every channel, channel-major
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    oh, ow = 3, 6
    ref = np.stack([xp[:, :, i * 2:i * 2 + 2, j:j + 3].reshape(2, -1)
                    for i in range(oh) for j in range(ow)], axis=2)
    assert_close(cols, ref)
    # fold of unfold counts how many patches cover each pixel
    ones = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    cnt = F.fold(F.unfold(ones, 2), (4, 4), 2)
    assert_close(cnt, np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]],
                               float).reshape(1, 1, 4, 4))
    assert nn.Unfold(2)(ones).shape == (1, 4, 9)


# ---- gradients ----------------------------------------------------------------------------------

def test_gradcheck_conv2d_input_weight_bias(r):
    x = T(r.standard_normal((2, 4, 5, 4)), True)
    w = T(r.standard_normal((4, 2, 3, 2)), True)
    b = T(r.standard_normal(4), True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2),
                                              groups=2), (x, w, b))


def test_gradcheck_conv1d_3d_same_and_padding_mode(r):
    x = T(r.standard_normal((1, 2, 6)), True)
    w = T(r.standard_normal((2, 2, 4)), True)
    assert gradcheck(lambda x, w: F.conv1d(x, w, padding="same"), (x, w))
    x3 = T(r.standard_normal((1, 1, 3, 3, 3)), True)
    w3 = T(r.standard_normal((2, 1, 2, 2, 2)), True)
    assert gradcheck(lambda x, w: F.conv3d(x, w, padding=1, stride=2), (x3, w3))
    m = nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect").double()
    xi = T(r.standard_normal((1, 1, 4, 4)), True)
    assert gradcheck(lambda x, w, b: m._conv_forward(x, w, b), (xi, T(to_np(m.weight), True),
                                                              T(to_np(m.bias), True)))


def test_gradcheck_conv_transpose(r):
    x = T(r.standard_normal((1, 4, 3, 2)), True)
    w = T(r.standard_normal((4, 1, 3, 2)), True)
    b = T(r.standard_normal(2), True)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                        output_padding=1, groups=2), (x, w, b))


def test_double_backward_through_conv(r):
    # the windows/fold primitives are each other's VJP, so gradients are differentiable too
    x = T(r.standard_normal((1, 1, 4, 4)), True)
    w = T(r.standard_normal((1, 1, 2, 2)), True)
    assert torch.autograd.gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2), (x, w))


def test_conv_backward_values(r):
    x = r.standard_normal((2, 3, 6, 6))
    w = r.standard_normal((4, 3, 3, 3))
    tx, tw = T(x, True), T(w, True)
    F.conv2d(tx, tw, padding=1).sum().backward()
    # d sum / d w[o, c, i, j] = sum of the input patch shifted by (i, j)
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    gw = np.stack([np.stack([np.array([[xp[:, c, i:i + 6, j:j + 6].sum() for j in range(3)]
                                       for i in range(3)]) for c in range(3)])] * 4)
    assert_close(tw.grad, gw, atol=1e-10)
    gx = np.zeros_like(xp)
    for i in range(3):
        for j in range(3):
            gx[:, :, i:i + 6, j:j + 6] += w[:, :, i, j].sum(0)[None, :, None, None]
    assert_close(tx.grad, gx[:, :, 1:-1, 1:-1], atol=1e-10)


# ---- modules: init, repr, errors ----------------------------------------------------------------

def test_conv_module_shapes_init_and_repr():
    torch.manual_seed(0)
    m = nn.Conv2d(1, 20, 5)
    assert repr(m) == "Conv2d(1, 20, kernel_size=(5, 5), stride=(1, 1))"
    assert m.weight.shape == (20, 1, 5, 5) and m.bias.shape == (20,)
    bound = 1 / math.sqrt(25)
    assert np.abs(to_np(m.weight)).max() <= bound and np.abs(to_np(m.bias)).max() <= bound
    assert to_np(m.weight).std() > bound / 4      # really initialised, not zeros
    assert m(torch.randn(3, 1, 28, 28)).shape == (3, 20, 24, 24)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert repr(nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2)) == \
        "Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))"
    assert repr(nn.Conv1d(3, 4, 3, padding="same", padding_mode="reflect", dilation=2,
                          bias=False)) == ("Conv1d(3, 4, kernel_size=(3,), stride=(1,), "
                                           "padding=same, dilation=(2,), bias=False, "
                                           "padding_mode=reflect)")
    assert repr(nn.Conv2d(4, 4, 3, padding=(1, 2), groups=2)) == \
        "Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 2), groups=2)"
    assert repr(nn.Conv3d(2, 2, 1)) == "Conv3d(2, 2, kernel_size=(1, 1, 1), stride=(1, 1, 1))"
    assert repr(nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1, padding=1, dilation=2,
                                   bias=False)) == \
        ("ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
         "dilation=(2, 2), output_padding=(1, 1), bias=False)")
    t = nn.ConvTranspose2d(6, 4, 3, groups=2)
    assert t.weight.shape == (6, 2, 3, 3)
    # seed 5.3: Conv2d(1, 16, (5, 5), stride=(1, 1), padding='same') keeps 28x28
    s = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=(5, 5), stride=(1, 1), padding="same")
    assert s(torch.randn(1, 1, 28, 28)).shape == (1, 16, 28, 28)


def test_conv_transpose_output_size_argument():
    m = nn.ConvTranspose2d(3, 4, 3, stride=2)
    x = torch.randn(1, 3, 5, 5)
    assert m(x).shape == (1, 4, 11, 11)
    assert m(x, output_size=[12, 12]).shape == (1, 4, 12, 12)
    with pytest.raises(ValueError):
        m(x, output_size=[14, 14])


def test_conv_module_matches_functional(r):
    m = nn.Conv2d(3, 2, (3, 2), stride=(1, 2), padding=1, dilation=(2, 1)).double()
    x = r.standard_normal((2, 3, 7, 7))
    assert_close(m(T(x)), ref_conv(x, to_np(m.weight), to_np(m.bias), stride=(1, 2), padding=1,
                                   dilation=(2, 1)), atol=1e-10)
    out = m(T(x))
    assert type(out.grad_fn).__name__ == "ConvolutionBackward0" or \
        out.grad_fn.name() == "ConvolutionBackward0"


def test_conv_bad_inputs():
    w = torch.randn(4, 3, 3, 3)
    x = torch.randn(1, 3, 8, 8)
    before = to_np(x).copy()
    with pytest.raises(RuntimeError, match="Expected 3D \\(unbatched\\) or 4D"):
        F.conv2d(torch.randn(2, 3), w)
    with pytest.raises(RuntimeError, match="to have 2 channels, but got 3 channels"):
        F.conv2d(x, torch.randn(4, 2, 3, 3))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input"):
        F.conv2d(torch.randn(1, 3, 4, 4), torch.randn(4, 3, 5, 5))
    with pytest.raises(RuntimeError, match="divisible by 2"):
        F.conv2d(torch.randn(1, 4, 8, 8), torch.randn(3, 2, 3, 3), groups=2)
    with pytest.raises(RuntimeError, match="strided"):
        F.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(RuntimeError, match="Invalid padding string"):
        F.conv2d(x, w, padding="foo")
    with pytest.raises(RuntimeError):
        F.conv2d(x.double(), w)                       # dtype mismatch
    with pytest.raises(RuntimeError, match="transposed=1"):
        F.conv_transpose2d(x, torch.randn(2, 4, 3, 3))
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        F.conv_transpose2d(x, torch.randn(3, 4, 3, 3), stride=2, output_padding=2)
    m = nn.Conv2d(3, 4, 3)
    with pytest.raises(RuntimeError):
        m(torch.randn(1, 5, 8, 8))
    with pytest.raises(RuntimeError):
        m(torch.randn(8, 8))
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 4, 3, padding="same", stride=2)
    with pytest.raises(ValueError, match="Invalid padding string"):
        nn.Conv2d(3, 4, 3, padding="foo")
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="bad")
    with pytest.raises(ValueError):
        nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect")
    np.testing.assert_array_equal(to_np(x), before)


def test_float32_stays_float32(r):
    m = nn.Conv2d(3, 8, 3, padding=1)
    y = m(torch.randn(2, 3, 8, 8))
    assert y.dtype == torch.float32 and y.is_contiguous()
    y.sum().backward()
    assert m.weight.grad.dtype == torch.float32 and m.weight.grad.shape == m.weight.shape


def test_against_torch(r):
    real = pytest.importorskip("torch")
    x = r.standard_normal((2, 4, 9, 8))
    w = r.standard_normal((6, 2, 3, 3))
    b = r.standard_normal(6)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    ours = F.conv2d(T(x), T(w), T(b), **kw)
    theirs = real.nn.functional.conv2d(real.tensor(x), real.tensor(w), real.tensor(b), **kw)
    assert_close(ours, theirs.numpy(), atol=1e-10)
    wt = r.standard_normal((4, 3, 3, 2))
    kw = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=(1, 1))
    ours = F.conv_transpose2d(T(x), T(wt), **kw)
    theirs = real.nn.functional.conv_transpose2d(real.tensor(x), real.tensor(wt), **kw)
    assert_close(ours, theirs.numpy(), atol=1e-10)


# ---- conv_tbc ---------------------------------------------------------------------------------

def _ref_tbc(x, w, b, pad):
    """out[t] = b + sum_k x[t - pad + k] @ w[k], direct loop in float64 (taps outside x are 0)."""
    T_, B, _ = x.shape
    K = w.shape[0]
    olen = T_ - K + 1 + 2 * pad
    out = np.tile(b, (olen, B, 1)).astype(np.float64)
    for t in range(olen):
        for k in range(K):
            s = t - pad + k
            if 0 <= s < T_:
                out[t] += x[s] @ w[k]
    return out


@pytest.mark.parametrize("shape,pad", [((5, 2, 3, 4, 2), 1), ((5, 2, 3, 4, 2), 0),
                                       ((6, 2, 3, 4, 3), -1), ((4, 3, 2, 2, 2), -1),
                                       ((3, 1, 2, 3, 1), 2), ((5, 0, 3, 4, 2), 1)])
def test_conv_tbc_matches_loop_reference(r, shape, pad):
    t_, b_, ci, co, k = shape
    x, w, b = r.standard_normal((t_, b_, ci)), r.standard_normal((k, ci, co)), r.standard_normal(co)
    y = torch.conv_tbc(T(x, True), T(w), T(b), pad)
    assert y.dtype == torch.float64 and y.grad_fn.name() == "ConvTbcBackward0"
    assert_close(y, _ref_tbc(x, w, b, pad), rtol=1e-12, atol=1e-12)
    assert_close(F.conv_tbc(T(x), T(w), T(b), pad=pad), _ref_tbc(x, w, b, pad), rtol=1e-12)


def test_conv_tbc_int_and_no_taps(r):
    x = np.arange(12).reshape(3, 2, 2)
    w = np.arange(8).reshape(2, 2, 2)
    y = torch.conv_tbc(torch.tensor(x, dtype=torch.int32), torch.tensor(w, dtype=torch.int32),
                       torch.tensor([1.5, -2.0]), 1)
    assert y.dtype == torch.int32               # bias is cast to the input's dtype
    np.testing.assert_array_equal(to_np(y), _ref_tbc(x, w, np.array([1, -2]), 1))
    # kernel width 0: every output row is the bias, the gradients are zeros
    xt, wt = T(r.standard_normal((3, 2, 2)), True), T(np.zeros((0, 2, 3)), True)
    y = torch.conv_tbc(xt, wt, T([1.0, 2.0, 3.0]), 1)
    assert y.shape == (6, 2, 3)
    assert_close(y, np.tile([1.0, 2.0, 3.0], (6, 2, 1)))
    y.sum().backward()
    assert_close(xt.grad, np.zeros((3, 2, 2)))


def test_gradcheck_conv_tbc(r):
    x = T(r.standard_normal((5, 2, 3)), True)
    w = T(r.standard_normal((3, 3, 2)), True)
    b = T(r.standard_normal(2), True)
    for pad in (0, 2, -1):
        assert gradcheck(lambda x, w, b: torch.conv_tbc(x, w, b, pad), (x, w, b))


def test_conv_tbc_errors():
    x, w, b = torch.ones(5, 2, 3), torch.ones(2, 3, 4), torch.ones(4)
    for args, cls, msg in [
            ((x[0], w, b), RuntimeError, "Input must have 3 dims: time, batch, in_channel"),
            ((x, w[0], b), RuntimeError, "Weight tensor must have 3 dims"),
            ((x, w, b[None]), RuntimeError, "Bias must be 1-D"),
            ((x, w[:, :2], b), RuntimeError, "Input dim 2 (input channels) is not == dim 1"),
            ((x, w, b[:3]), RuntimeError, "Bias size must equal dim 2 in the weight tensor"),
            ((x, w, b, -3), RuntimeError, "negative dimension -2: [-2, 2, 4]"),
            ((x.double(), w, b), RuntimeError, "same dtype, but got Double and Float"),
            ((x, w, b, 1.5), TypeError, "argument 'pad' (position 4) must be int, not float"),
            ((x.bool(), w.bool(), b.bool()), NotImplementedError, "not implemented for 'Bool'")]:
        with pytest.raises(cls) as e:
            torch.conv_tbc(*args)
        assert msg in str(e.value)
