"""float16/bfloat16 ops compute in float32 and round once, as PyTorch's cpu kernels ("opmath"):
hand-derived values where rounding an intermediate (or a Python number) first gives another
answer, and float64 NumPy references rounded once for the composite ops."""
import math

import ml_dtypes
import numpy as np
import pytest

import framework as torch
from conftest import to_np

F = torch.nn.functional
HALF = [(torch.bfloat16, ml_dtypes.bfloat16), (torch.float16, np.float16)]
E = {torch.bfloat16: 2.0 ** -7, torch.float16: 2.0 ** -10}     # spacing of values in [1, 2)


def vals(t):
    return to_np(t.float()).tolist()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_python_number_is_rounded_to_half_except_for_mul_div(dtype):
    e = E[dtype]
    x = torch.tensor([1.0], dtype=dtype)
    s = e / 2 * (1 + e / 4)     # float32: just past the midpoint; as the half dtype: e / 2
    # add/sub convert the number to the tensor's dtype first: 1 + e/2 is a tie, to even (1)
    assert vals(x + s) == [1.0] and vals(torch.add(x, s)) == [1.0]
    assert vals(x.clone().add_(s)) == [1.0]
    # (1 + 2e) - e/2 is a tie, to even (1 + 2e); minus the float32 number: below it (1 + e)
    assert vals(torch.tensor([1.0 + 2 * e], dtype=dtype) - s) == [1.0 + 2 * e]
    # mul/div read it as float32: 1 * (1 + s) is past the midpoint, so up
    assert vals(x * (1 + s)) == [1.0 + e]
    if dtype is torch.bfloat16:     # (float16's margin is one float32 step: not for div)
        assert vals(x / (1 / (1 + s))) == [1.0 + e]
    # a comparison sees the rounded number too: 1 + s is 1 + e as the half dtype
    assert vals(torch.tensor([1.0 + e], dtype=dtype) == 1 + s) == [1.0]
    assert vals(torch.compile(lambda t: (t + s, t * (1 + s), t == 1 + s))(x)[0]) == [1.0]
    assert vals(torch.compile(lambda t: t * (1 + s))(x)) == [1.0 + e]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_add_alpha_rounds_once_with_half_alpha(dtype):
    e = E[dtype]
    x = torch.tensor([1.0], dtype=dtype)
    s = e / 2 * (1 + e / 4)
    a = torch.tensor([1.0 + e], dtype=dtype)
    b = torch.tensor([e / 2], dtype=dtype)
    # e/2 + (1 + e)(1 + e) = 1 + 2e + e/2 + e^2: past the midpoint -> 1 + 3e (rounding the
    # product first, 1 + 2e, leaves a tie, to even: 1 + 2e)
    assert vals(torch.add(b, a, alpha=1 + e)) == [1.0 + 3 * e]
    assert vals(torch.sub(b, a, alpha=-1 - e)) == [1.0 + 3 * e]
    # alpha itself is taken in the half dtype: e/2 (1 + e/4) -> e/2, and 1 + e/2 is a tie (to 1)
    assert vals(torch.add(x, x, alpha=s)) == [1.0]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_addcmul_conv_bias_round_once(dtype):
    e = E[dtype]
    a = torch.tensor([1.0 + e], dtype=dtype)
    b = torch.tensor([e / 2], dtype=dtype)
    # (1 + e)^2 + e/2 = 1 + 2e + e/2 + e^2: just past the midpoint of [1 + 2e, 1 + 3e] -> 1 + 3e;
    # rounding the product first (1 + 2e) leaves a tie, to even (1 + 2e)
    assert vals(a * a + b) == [1.0 + 2 * e]
    assert vals(torch.addcmul(b, a, a)) == [1.0 + 3 * e]
    w = a.reshape(1, 1, 1, 1)
    assert vals(F.conv2d(w, w, b)) == [[[[1.0 + 3 * e]]]]
    assert vals(F.conv_transpose2d(w, w, b)) == [[[[1.0 + 3 * e]]]]
    assert vals(F.conv2d(w, w) + b) == [[[[1.0 + 2 * e]]]]
    ar, br = a.clone().requires_grad_(), b.clone().requires_grad_()
    r = torch.addcmul(br, ar, ar)
    assert type(r.grad_fn).__name__ == "AddcmulBackward0"
    r.backward(torch.ones(1, dtype=dtype))
    # d/da = 2a = 2 + 2e, exact; the gradients keep the half dtype
    assert ar.grad.dtype is dtype and vals(ar.grad) == [2 + 2 * e] and vals(br.grad) == [1.0]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cumsum_accumulates_in_float32(dtype):
    e = E[dtype]
    x = torch.tensor([1.0, e / 2, e / 2], dtype=dtype)
    # float32 sums 1, 1 + e/2, 1 + e, each rounded once: 1, 1 (tie to even), 1 + e; a half
    # accumulator would stay at 1
    assert vals(torch.cumsum(x, 0)) == [1.0, 1.0, 1.0 + e]
    assert vals(torch.compile(lambda t: t.cumsum(0))(x)) == [1.0, 1.0, 1.0 + e]


def _far_from_ties(ref64, nd):
    """Elements whose float64 value is not within float32 error of a half rounding boundary
    (where a correct float32 computation may round either way)."""
    r = ref64.astype(nd).astype(np.float64)
    up = np.nextafter(r.astype(nd), np.array(np.inf, nd)).astype(np.float64)
    dn = np.nextafter(r.astype(nd), np.array(-np.inf, nd)).astype(np.float64)
    gap = np.minimum(np.abs(ref64 - (r + up) / 2), np.abs(ref64 - (r + dn) / 2))
    return gap > 3e-5 * np.abs(ref64) + 1e-30


def _erf(x):
    return np.vectorize(math.erf)(x)


def _sp(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


ACTS = {
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    "silu": (F.silu, lambda x: x / (1 + np.exp(-x))),
    "softplus": (F.softplus, _sp),
    "mish": (F.mish, lambda x: x * np.tanh(_sp(x))),
    "elu": (F.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "selu": (F.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
    "hardswish": (F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "logsigmoid": (F.logsigmoid, lambda x: -_sp(-x)),
    "log_softmax0": (lambda t: F.log_softmax(t, 0),
                     lambda x: x - x.max(0) - np.log(np.exp(x - x.max(0)).sum(0))),
    "var": (lambda t: t.var(0), lambda x: x.var(0, ddof=1)),
    "std": (lambda t: t.std(0), lambda x: x.std(0, ddof=1)),
    "lerp": (lambda t: torch.lerp(t, t.flip(0), 0.3), lambda x: x + 0.3 * (x[::-1] - x)),
    "hypot": (lambda t: torch.hypot(t, t.flip(0)), lambda x: np.hypot(x, x[::-1])),
    "adaptive_avg": (lambda t: F.adaptive_avg_pool2d(t.reshape(1, 40, 4, 8), 1).reshape(40),
                     lambda x: x.mean(1)),
    "embedding_bag": (lambda t: F.embedding_bag(torch.arange(40).view(10, 4), t, mode="mean"),
                      lambda x: x.reshape(10, 4, 32).mean(1)),
    "conv2d_bias": (lambda t: F.conv2d(t[None, None], t[:3, :3][None, None], t[0, :1]),
                    lambda x: np.array([[[[(x[i:i + 3, j:j + 3] * x[:3, :3]).sum() + x[0, 0]
                                           for j in range(30)] for i in range(38)]]])),
    "rms_norm": (lambda t: F.rms_norm(t.T, (t.shape[0],), t[:, 0]),
                 lambda x: (x / np.sqrt((x * x).mean(0) + 2.0 ** -23) * x[:, :1]).T),
}


@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("dtype,nd", HALF, ids=["bfloat16", "float16"])
def test_composites_round_once(name, dtype, nd):
    fn, ref = ACTS[name]
    x = torch.tensor(np.random.default_rng(0).uniform(-3, 3, (40, 32)), dtype=dtype)
    x64 = to_np(x.double())
    want = ref(x64)
    r = fn(x)
    assert r.dtype is dtype
    ok = _far_from_ties(want, nd)
    got = to_np(r.double())
    np.testing.assert_array_equal(got[ok], want.astype(nd).astype(np.float64)[ok])
    assert ok.mean() > 0.6
    # rounding each step of the composite (its primitives in the half dtype) differs somewhere:
    # the comparison above could fail
    if name in ("gelu", "silu", "mish", "softplus", "logsigmoid"):
        steps = {"gelu": lambda t: t * 0.5 * (1 + torch.erf(t / math.sqrt(2))),
                 "silu": lambda t: t * torch.sigmoid(t),
                 "mish": lambda t: t * torch.tanh(F.softplus(t)),
                 "softplus": lambda t: torch.log1p(torch.exp(t)),
                 "logsigmoid": lambda t: -torch.log1p(torch.exp(-t))}[name]
        assert (to_np(steps(x).double()) != got).any()


@pytest.mark.parametrize("dtype,nd", HALF, ids=["bfloat16", "float16"])
def test_activation_grads_round_once_and_keep_names(dtype, nd):
    x = torch.tensor(np.linspace(-3, 3, 97), dtype=dtype).requires_grad_()
    x64 = to_np(x.detach().double())
    g = torch.full((97,), 1.0 + E[dtype], dtype=dtype)
    for fn, name, dref in ((F.gelu, "GeluBackward0", lambda v: 0.5 * (1 + _erf(v / math.sqrt(2))) +
                            v * np.exp(-v * v / 2) / math.sqrt(2 * math.pi)),
                           (F.silu, "SiluBackward0", lambda v: (1 + np.exp(-v) * (1 + v)) /
                            (1 + np.exp(-v)) ** 2)):
        y = fn(x)
        assert type(y.grad_fn).__name__ == name and y.dtype is dtype
        (gx,) = torch.autograd.grad(y, x, g)
        assert gx.dtype is dtype
        want = dref(x64) * (1.0 + E[dtype])
        ok = _far_from_ties(want, nd)
        np.testing.assert_array_equal(to_np(gx.double())[ok], want.astype(nd).astype(np.float64)[ok])


@pytest.mark.parametrize("dtype,nd", HALF, ids=["bfloat16", "float16"])
def test_log_softmax_lastdim_keeps_logsumexp_in_half(dtype, nd):
    # PyTorch's last-dim kernel: x - max - h(log(h(sum(exp(x - max))))) in float32, rounded
    x = torch.tensor(np.random.default_rng(1).standard_normal((16, 9)), dtype=dtype)
    x32 = to_np(x.float())
    z = x32 - x32.max(1, keepdims=True)
    s = np.exp(z.astype(np.float64)).sum(1, keepdims=True)
    ls = np.log(s.astype(nd).astype(np.float64)).astype(nd).astype(np.float64)
    want = z - ls
    ok = _far_from_ties(want, nd)
    got = to_np(F.log_softmax(x, -1).double())
    np.testing.assert_array_equal(got[ok], want.astype(nd).astype(np.float64)[ok])
    assert F.log_softmax(x.requires_grad_(), -1).grad_fn.name() == "LogSoftmaxBackward0"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_opmath_compiles_to_the_same_values(dtype):
    x = torch.tensor(np.random.default_rng(2).standard_normal((6, 7)) * 2, dtype=dtype)

    def f(t):
        return F.gelu(t) + 0.1, F.silu(t) * 0.3, torch.cumsum(t, 1), F.log_softmax(t, -1)
    for a, b in zip(f(x), torch.compile(f)(x)):
        assert a.dtype is b.dtype is dtype
        np.testing.assert_array_equal(to_np(a.float()), to_np(b.float()))
