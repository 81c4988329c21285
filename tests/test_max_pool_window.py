"""Max pooling through the window_max / plane_scatter primitives: values, return_indices and
gradients against a loop reference of PyTorch's scan (ties, NaN, -inf, padding, ceil_mode,
dilation, 1-3 spatial dims, integer dtypes), compiled == eager bit for bit, and PyTorch itself
when installed. Also: a bool attention mask stays a graph input under compile."""
import itertools
import math

import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from framework.autograd import gradcheck


def out_size(n, k, s, p, d, ceil):
    num = n + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def ref_pool(x, k, s, p, d, ceil, g=None):
    """PyTorch's CPU kernel as loops: start at the first in-bounds element with -inf, take an
    element when it is greater than the best or NaN. Returns (values, flat indices, grad)."""
    nd = len(k)
    sp = x.shape[2:]
    outs = [out_size(n, kk, ss, pp, dd, ceil) for n, kk, ss, pp, dd in zip(sp, k, s, p, d)]
    y = np.zeros(x.shape[:2] + tuple(outs), x.dtype)
    idx = np.zeros(x.shape[:2] + tuple(outs), np.int64)
    gx = np.zeros(x.shape, np.float64)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*[range(e) for e in outs]):
            best, bi = None, None
            for kk in itertools.product(*[range(e) for e in k]):
                pos = tuple(o[i] * s[i] - p[i] + kk[i] * d[i] for i in range(nd))
                if not all(0 <= pos[i] < sp[i] for i in range(nd)):
                    continue
                v = x[(n, c) + pos]
                if best is None:
                    best, bi = v, pos
                    if x.dtype.kind == "f" and not np.isnan(v):
                        continue
                if best is not None and (v > best or (x.dtype.kind == "f" and np.isnan(v))):
                    best, bi = v, pos
            y[(n, c) + o] = best
            idx[(n, c) + o] = np.ravel_multi_index(bi, sp)
            if g is not None:
                gx[(n, c) + bi] += g[(n, c) + o]
    return y, idx, gx


def _pool(nd):
    return (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1]


def _data(r, shape, kind):
    if kind == "normal":
        return r.standard_normal(shape)
    a = r.integers(-2, 2, size=shape).astype(np.float64)      # many ties
    if kind == "special":
        a.reshape(-1)[r.choice(a.size, a.size // 5, replace=False)] = np.nan
        a.reshape(-1)[r.choice(a.size, a.size // 5, replace=False)] = -np.inf
    if kind == "neginf":
        a[:] = -np.inf
    return a


CASES = [
    ((2,), (2,), (0,), (1,), False, (2, 3, 9)),
    ((3,), (2,), (1,), (2,), True, (2, 2, 10)),
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (2, 3, 8, 8)),
    ((2, 2), (2, 2), (1, 1), (1, 1), True, (2, 2, 7, 5)),
    ((3, 3), (2, 2), (1, 1), (1, 1), True, (2, 2, 8, 7)),
    ((3, 2), (2, 1), (1, 0), (1, 2), True, (1, 2, 8, 7)),
    ((2, 3), (3, 2), (1, 1), (2, 1), False, (2, 1, 8, 7)),
    ((3, 3), (1, 1), (1, 1), (1, 1), False, (1, 2, 5, 6)),
    ((2, 2, 2), (2, 2, 2), (0, 1, 0), (1, 1, 1), True, (1, 2, 5, 4, 5)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("kind", ["normal", "ties", "special", "neginf"])
def test_values_indices_grad_match_loop_reference(case, kind):
    k, s, p, d, ceil, shape = CASES[case]
    r = np.random.default_rng(case)
    x = _data(r, shape, kind)
    xt = torch.tensor(x, requires_grad=True)
    y, idx = _pool(len(k))(xt, k, s, p, d, ceil_mode=ceil, return_indices=True)
    g = r.standard_normal(tuple(y.shape))
    (y * torch.tensor(g)).sum().backward()
    ry, ridx, rg = ref_pool(x, k, s, p, d, ceil, g)
    np.testing.assert_array_equal(y.detach().numpy(), ry)       # NaN == NaN here
    np.testing.assert_array_equal(idx.numpy(), ridx)
    assert idx.dtype == torch.int64
    np.testing.assert_allclose(xt.grad.numpy(), rg, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.uint8])
def test_dtypes(dtype):
    r = np.random.default_rng(1)
    x = (r.integers(0, 5, size=(2, 3, 6, 6))).astype(dtype)
    if dtype is np.int64:
        x[0, 0] = np.iinfo(np.int64).min
    y, idx = F.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    ry, ridx, _ = ref_pool(x, (3, 3), (2, 2), (1, 1), (1, 1), False)
    assert y.dtype == torch.from_numpy(x).dtype
    np.testing.assert_array_equal(y.numpy(), ry)
    np.testing.assert_array_equal(idx.numpy(), ridx)


def test_unbatched_and_module():
    r = np.random.default_rng(2)
    x = r.standard_normal((3, 6, 6))
    y, idx = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    ry, ridx, _ = ref_pool(x[None], (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(y.numpy(), ry[0])
    np.testing.assert_array_equal(idx.numpy(), ridx[0])


def test_gradcheck_overlapping_and_disjoint():
    r = np.random.default_rng(3)
    for k, s, p in (((2, 2), (2, 2), (0, 0)), ((3, 3), (1, 2), (1, 1))):
        x = torch.tensor(r.standard_normal((1, 2, 5, 6)), requires_grad=True)
        assert gradcheck(lambda t: F.max_pool2d(t, k, s, p), (x,))


def test_compiled_matches_eager_bitwise():
    r = np.random.default_rng(4)
    x0 = r.standard_normal((4, 3, 8, 8)).astype(np.float32)
    x0[0, 0, :2, :2] = 0.0                          # a window of ties
    x0[1, 1, 2, 3] = np.nan
    x0[2, 2, 4:6, 4:6] = -np.inf

    def f(x, g, pad):
        y, i = F.max_pool2d(x, 2, 2, pad, return_indices=True)
        a = F.max_pool2d(x, 3, 1, 1)
        ((y * g).sum() + (a * a).sum()).backward()
        return y, i, a
    for pad in (0, 1):
        g0 = r.standard_normal((4, 3, 4 + pad, 4 + pad)).astype(np.float32)
        g0[0, 0, 0, 0] = -0.0
        res = []
        for fn in (lambda x, g: f(x, g, pad), torch.compile(lambda x, g: f(x, g, pad))):
            x = torch.tensor(x0.copy(), requires_grad=True)
            y, i, a = fn(x, torch.tensor(g0))
            res.append([y.detach().numpy(), i.numpy(), a.detach().numpy(), x.grad.numpy()])
        for e, c in zip(*res):
            assert e.dtype == c.dtype and e.shape == c.shape
            np.testing.assert_array_equal(e.view(np.uint8), c.view(np.uint8))


def test_against_torch_when_installed():
    real = pytest.importorskip("torch")
    r = np.random.default_rng(5)
    for k, s, p, d, ceil, shape in CASES:
        for kind in ("normal", "ties", "special"):
            x = _data(r, shape, kind)
            g = None
            out = []
            for mod in (torch, real):
                xt = mod.tensor(x, requires_grad=True)
                fn = getattr(mod.nn.functional, f"max_pool{len(k)}d")
                y, i = fn(xt, k, s, p, d, ceil_mode=ceil, return_indices=True)
                if g is None:
                    g = r.standard_normal(tuple(y.shape))
                (y * mod.tensor(g)).sum().backward()
                out.append((y.detach().numpy(), i.numpy(), xt.grad.numpy()))
            (a, ai, ag), (b, bi, bg) = out
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ai, bi)
            np.testing.assert_allclose(ag, bg, rtol=1e-12, atol=0)


def test_bool_attention_mask_is_a_graph_input_under_compile():
    r = np.random.default_rng(6)
    E, H, L = 8, 2, 4
    mha = torch.nn.MultiheadAttention(E, H)
    q = torch.tensor(r.standard_normal((L, 1, E)).astype(np.float32))

    def f(q, mask):
        return mha(q, q, q, attn_mask=mask, need_weights=False)[0]
    cf = torch.compile(f)
    m1 = torch.tensor(np.triu(np.ones((L, L), bool), 1))
    m2 = torch.tensor(np.tril(np.ones((L, L), bool), -1))
    for m in (m1, m2, m1):
        np.testing.assert_array_equal(cf(q, m).detach().numpy(), f(q, m).detach().numpy())
    assert not np.allclose(f(q, m1).detach().numpy(), f(q, m2).detach().numpy())
    assert cf.stats["compiles"] == 1
