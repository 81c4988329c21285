"""Eager execution on the 'interpret' device: every op on such tensors runs a generated Triton
kernel through Triton's interpreter (or a view / a counted host fallback), and must give what
the same op gives on cpu.

The cases run in one child process (this file with --worker), as in test_triton_pointwise.py:
TRITON_INTERPRET=1 and `import torch` blocked, so the path is proven torch-free. The child
prints one JSON line per case; the tests read them. Sizes are small: the interpreter is slow.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {}


def case(fn):
    CASES[fn.__name__[5:]] = fn
    return fn


# ----------------------------------------------------------------------------- worker cases
# Each case returns nothing and asserts; `T` is the framework module, `D` framework._device_ops.

def _same(T, f, *arrays, rtol=1e-6, atol=1e-7, dtypes=None):
    """f on cpu tensors vs f on interpret tensors made from the same arrays."""
    cpu = [T.tensor(a) for a in arrays]
    dev = [t.to("interpret") for t in cpu]
    want, got = f(*cpu), f(*dev)
    assert got.device.type == "interpret", got.device
    assert type(got._data).__name__ == "InterpretArray"
    assert got.dtype is want.dtype, (got.dtype, want.dtype)
    g, w = got.cpu().numpy(), want.numpy()
    assert g.shape == w.shape, (g.shape, w.shape)
    if w.dtype.kind in "fc":
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(g, w)
    return got


R = np.random.default_rng(7)
F32 = R.standard_normal((5, 7)).astype(np.float32)
ROW = R.standard_normal((7,)).astype(np.float32)
I64 = R.integers(-20, 20, (5, 7)).astype(np.int64)


@case
def case_pointwise_dtypes(T, D):
    n0 = sum(v for k, v in D.STATS.items() if k[0] == "kernel")
    _same(T, lambda x, y: x + y, F32, F32 * 2)
    _same(T, lambda x, y: x * y - x, F32.astype(np.float64), F32.astype(np.float64) + 1,
          rtol=1e-14)
    _same(T, lambda x, y: x + y * 3, I64, I64 // 3)
    _same(T, lambda x, y: x // y, I64, np.where(I64 == 0, 5, I64))
    _same(T, lambda x: (x.exp() + 1).log(), F32.astype(np.float16), rtol=2e-3, atol=2e-3)
    _same(T, lambda x: x.sigmoid() * 2.5, F32)
    _same(T, lambda x: (x * 3).to(T.int8) + 3, F32)
    _same(T, lambda x, y: (x > y) & (x < 1), F32, F32.T.copy().T)
    _same(T, lambda x, y: T.where(x > 0, x, y), F32, ROW)
    _same(T, lambda x: T.maximum(x, T.zeros_like(x)), F32)
    n1 = sum(v for k, v in D.STATS.items() if k[0] == "kernel")
    assert n1 - n0 >= 20, n1 - n0          # every one of those ran Triton kernels


@case
def case_double_to_half_rounds_through_float(T, D):
    # c10::Half is built from a float: -42.98437372777596 -> -42.984375 (f32) -> -43.0 (f16),
    # where rounding the double once gives -42.96875; eager kernels and compiled ones agree
    x = np.array([-42.98437372777596, 0.5], np.float64)
    want = np.array([-43.0, 0.5], np.float16)
    for f in (lambda a: a.half(), T.compile(lambda a: (a * 1).half(), backend="interpret")):
        got = f(T.tensor(x).to("interpret")).cpu().numpy()
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(T.tensor(x).half().numpy(), want)


@case
def case_bfloat16_kernels_round_and_multiply_values(T, D):
    # Triton's interpreter holds bfloat16 as uint16 bit patterns: its tl.dot multiplied those
    # integers ([256, 1] . [1, 1] gave 5.4e8) and its float32 -> bfloat16 cast truncated where
    # the GPU rounds to nearest even (a quarter to half of all results one unit off);
    # runtime.interpret patches both, so every bfloat16 kernel equals the cpu bit for bit
    b = lambda t: t.bfloat16()
    _same(T, lambda x, y: (b(x) @ b(y)).float(), np.array([[256., 1.]], np.float32),
          np.array([[1.], [1.]], np.float32), rtol=0, atol=0)
    x, y = R.standard_normal((6, 40)).astype(np.float32), R.standard_normal((40, 9)).astype(np.float32)
    _same(T, lambda x, y: (b(x) @ b(y)).float(), x, y, rtol=0, atol=0)
    _same(T, lambda x, y: (b(x) + b(y) * b(x)).float(), x[:, :9], y[:6], rtol=0, atol=0)
    _same(T, lambda x: b(x).exp().float(), x, rtol=0, atol=0)
    _same(T, lambda x: b(x).softmax(1).float(), x, rtol=0, atol=0)
    _same(T, lambda x: (b(x) * 1.001).float(), np.array([np.nan, np.inf, -0.0, 1.0], np.float32),
          rtol=0, atol=0)


@case
def case_relu_keeps_negative_zero(T, D):
    # torch.relu is clamp_min(x, 0): -0.0 stays -0.0, NaN propagates, x < 0 gives +0.0; the
    # gradient is 0 at x <= 0; eager kernels, compiled kernels and the cpu agree bit for bit
    x = np.array([-0.0, 0.0, -1.5, np.nan, 2.0], np.float32)
    want = np.array([-0.0, 0.0, 0.0, np.nan, 2.0], np.float32)
    for dev in ("cpu", "interpret"):
        for f in (T.relu, T.compile(lambda a: T.relu(a * 1), backend="numpy" if dev == "cpu"
                                    else "interpret")):
            got = f(T.tensor(x).to(dev)).cpu().numpy()
            np.testing.assert_array_equal(got, want)
            assert np.signbit(got).tolist() == np.signbit(want).tolist(), (dev, got)
        xg = T.tensor(x, requires_grad=True)
        T.relu(xg.to(dev)).sum().backward()
        np.testing.assert_array_equal(xg.grad.numpy(), [0, 0, 0, 1, 1])


@case
def case_broadcast_and_scalars(T, D):
    _same(T, lambda x, y: x - y, F32, ROW)                     # (5, 7) - (7,)
    _same(T, lambda x, y: x * y, F32[:, :1].copy(), ROW)       # (5, 1) * (7,)
    _same(T, lambda x: 2 ** x + 0.5, F32)
    _same(T, lambda x: x % 3 - 7, I64)
    _same(T, lambda x, y: x + y, np.float32(3.5) * np.ones((), np.float32), F32)   # 0-dim


@case
def case_compiled_scalar_results_stay_0d(T, D):
    # a group run by its NumPy lowering (prod has no kernel; a bfloat16 sum cannot run in the
    # interpreter) returns a 0-d result as 0-d (np.ascontiguousarray made it [1]); so does a
    # row pick of an input with its sum (now one kernel)
    x = R.standard_normal((4, 3)).astype(np.float32)
    i = np.array([[1], [0], [2], [2]])
    for f in (lambda x, i: x.prod(), lambda x, i: x.to(T.bfloat16).sum().float(),
              lambda x, i: T.gather(x, 1, i).sum(),
              lambda x, i: T.nn.functional.nll_loss(x, i[:, 0])):
        _same(T, T.compile(f), x, i, rtol=2e-2, atol=1e-2)


@case
def case_repeat_interleave_by_a_device_tensor(T, D):
    # the repeats are read on the host; the index it builds goes to the input's device
    _same(T, lambda x, r: T.repeat_interleave(x, r, dim=0), F32[:3], np.array([2, 0, 1]))
    _same(T, lambda r: T.repeat_interleave(r) * 1, np.array([1, 3, 0, 2]))


@case
def case_host_computed_ops_return_device_tensors(T, D):
    # ops computed on the host (NumPy) or with host-made index tensors: their results live
    # on the input's device (tril/triu/diag mixed devices and raised; the rest returned cpu)
    sq = F32[:4, :4].copy()
    _same(T, lambda x: T.tril(x) + T.triu(x, 1) * 2, sq)
    _same(T, lambda x: T.diag(x[0]) + T.diagflat(x[1, :2].reshape(1, 2)).sum(), sq)
    _same(T, lambda s, v: T.searchsorted(s, v), np.sort(ROW), F32)
    _same(T, lambda s, v: T.bucketize(v, s, right=True), np.sort(ROW), F32)
    _same(T, lambda x: T.erfinv(x.tanh()), F32, rtol=1e-5, atol=1e-6)
    _same(T, lambda x: T.stack(T.where(x > 0)), F32)
    _same(T, lambda x: T.nonzero(x[0, 0] > -9, as_tuple=True)[0], F32)
    _same(T, lambda x: T.quantile(x, 0.3, dim=1), F32)
    _same(T, lambda x: x[0, 0].sort().indices + x[0, 0].argmax(0, keepdim=True), F32)
    _same(T, lambda x: T.linalg.pinv(x) + T.linalg.matrix_rank(x), sq, rtol=1e-4, atol=1e-5)
    _same(T, lambda x: T.linalg.eigh(x + x.T).eigenvalues, sq, rtol=1e-5, atol=1e-5)


@case
def case_arange_kernel_and_compiled_view_writes(T, D):
    # arange on a device runs the arange kernel (start + i * step, float64 for float bounds);
    # compiled writes through views, whose positions come from an in-graph arange, run with
    # no host fallback
    n0 = D.STATS["kernel", "arange_0"]
    f0 = sum(v for k, v in D.STATS.items() if k[0] == "fallback")
    for args, kw in (((10,), {}), ((2, 11, 3), {}), ((0, 1, 0.1), {}),
                     ((-3, 3), {"dtype": T.float64}), ((1, 4), {"dtype": T.int32}),
                     ((1.5, 4.5, 0.5), {"dtype": T.float16})):
        want, got = T.arange(*args, **kw), T.arange(*args, device="interpret", **kw)
        assert got.device.type == "interpret" and got.dtype is want.dtype
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
    assert D.STATS["kernel", "arange_0"] - n0 == 6

    def scale_row(x):
        x[1].mul_(2)
        x.t()[0].add_(1)
        return x.sum()
    cf = T.compile(scale_row)
    a, b = T.tensor(F32[:4, :4]), T.tensor(F32[:4, :4]).to("interpret")
    for _ in range(3):
        np.testing.assert_allclose(cf(b).item(), scale_row(a).item(), rtol=1e-5)
    np.testing.assert_allclose(b.cpu().numpy(), a.numpy(), rtol=1e-6)
    assert [p.fallbacks for p in cf.programs()] == [{}]
    assert sum(v for k, v in D.STATS.items() if k[0] == "fallback") == f0


@case
def case_non_contiguous_views(T, D):
    big = R.standard_normal((8, 10)).astype(np.float32)
    _same(T, lambda x: x.t() * 2, big)                         # transposed strides
    _same(T, lambda x: x[1::2, ::3] + 1, big)                  # stepped slice
    _same(T, lambda x, y: x.expand(5, 7) * y, ROW, F32)        # stride-0 expand
    _same(T, lambda x: x.permute(1, 0).reshape(-1), big)       # unviewable reshape copies
    _same(T, lambda x: x.flip(0).exp(), big)
    x = T.tensor(big).to("interpret")
    v = x[2:5]
    assert v._base is x and v.storage_offset() == 20 and v.device.type == "interpret"
    v.mul_(0)                                                  # in place through the view
    h = x.cpu().numpy()
    assert np.all(h[2:5] == 0) and np.array_equal(h[5:], big[5:])


@case
def case_reductions_as_kernels(T, D):
    # reductions run the compiled path's generated reduction kernel for a one-node graph
    fb = sum(v for k, v in D.STATS.items() if k[0] == "fallback")
    _same(T, lambda x: x.sum(1), F32, rtol=1e-5)
    _same(T, lambda x: x.mean(), F32, rtol=1e-5)
    _same(T, lambda x: x.amax(0), F32)
    _same(T, lambda x: x.argmax(1), F32)
    _same(T, lambda x: x.softmax(-1), F32, rtol=1e-5)
    _same(T, lambda x: x.sum(0), I64)
    assert sum(v for k, v in D.STATS.items() if k[0] == "fallback") == fb
    assert D.STATS["kernel", "sum_0"] >= 3 and D.STATS["kernel", "argmax_0"] >= 1
    # NaN is the extreme, as in torch: amax/amin give NaN, argmax/argmin the first NaN
    a = R.standard_normal((4, 9)).astype(np.float32)
    a[0, 3] = a[0, 6] = np.nan
    a[1, 0] = np.inf
    a[1, 8] = np.nan
    a[2] = -np.inf
    for f in (lambda x: x.amax(1), lambda x: x.amin(1), lambda x: x.argmax(1),
              lambda x: x.argmin(1), lambda x: x.max(1).indices):
        want = f(T.tensor(a)).numpy()
        got = f(T.tensor(a).to("interpret")).cpu().numpy()
        assert np.array_equal(got, want, equal_nan=True), (got, want)


@case
def case_cat_as_a_kernel(T, D):
    # cat runs one generated kernel (each element loads from the input that holds it)
    fb = sum(v for k, v in D.STATS.items() if k[0] == "fallback")
    b = R.standard_normal((5, 3)).astype(np.float32)
    _same(T, lambda x, y: T.cat([x, y], 1), F32, b)
    _same(T, lambda x, y: T.cat([x.t(), y.t(), x.t()], -2), F32, b)          # strided inputs
    _same(T, lambda x, y: T.cat([x, y.double()], 1), F32, b)                 # promoted
    _same(T, lambda x: T.cat([x > 0, x < -1], 0), F32)                        # bool
    _same(T, lambda x: T.cat([x[0], T.zeros(0, device=x.device), x[1]]), F32)  # empty piece
    assert sum(v for k, v in D.STATS.items() if k[0] == "fallback") == fb
    assert D.STATS["kernel", "cat_0"] >= 5


@case
def case_adamw_takes_the_multi_tensor_path_on_a_device(T, D):
    # foreach=None: one flattened update per group on a device (PyTorch's default on GPUs);
    # the same arithmetic per element as the per-parameter loop, so the same values
    res = []
    xa = R.standard_normal((3, 6)).astype(np.float32)
    for foreach in (False, None):
        T.manual_seed(0)
        m = T.nn.Linear(6, 4).to("interpret")
        opt = T.optim.AdamW(m.parameters(), lr=0.1, foreach=foreach)
        x = T.tensor(xa).to("interpret")
        cats = D.STATS["kernel", "cat_0"]
        for _ in range(3):
            opt.zero_grad()
            (m(x) ** 2).mean().backward()
            opt.step()
        flat = D.STATS["kernel", "cat_0"] - cats
        assert (flat >= 3) if foreach is None else (flat == 0), (foreach, flat)
        res.append([p.detach().cpu().numpy() for p in m.parameters()])
    for a, b in zip(*res):
        assert np.array_equal(a, b), np.abs(a - b).max()


@case
def case_matmul_and_indexing(T, D):
    w = R.standard_normal((7, 3)).astype(np.float32)
    _same(T, lambda x, y: x @ y, F32, w, rtol=1e-5)
    idx = np.array([4, 0, 2, 2])
    _same(T, lambda x, i: x[i], F32, idx)
    _same(T, lambda x: x[x > 0.5], F32)
    _same(T, lambda x, i: x.gather(1, i), F32, np.array([[0], [6], [3], [1], [2]]))

    def put(x, i):
        x = x.clone()
        x[i] = -1.0
        return x
    _same(T, put, F32, idx)
    assert D.STATS["kernel", "matmul_0"] >= 1 and D.STATS["kernel", "index_0"] >= 1
    b = R.standard_normal((2, 3, 7)).astype(np.float32)
    _same(T, lambda x, y: x @ y, b, w, rtol=1e-5)                    # batched, broadcast
    _same(T, lambda x, y: x.T @ y.T, w, F32, rtol=1e-5)               # strided operands
    _same(T, lambda x, y: x[:1] @ y[:, :1], F32, w, rtol=1e-5)         # a 1 x 1 result
    _same(T, lambda x, y: x[0] @ y[:, 0], F32, w, rtol=1e-5)           # 1-D . 1-D -> 0-d


_INDEXING = ("index", "index_put", "gather", "scatter", "slice_scatter", "diagonal_scatter")


def _fallbacks(D):
    return {k[1]: v for k, v in D.STATS.items() if k[0] == "fallback" and k[1] in _INDEXING}


def _kernels(D, op):
    return sum(v for k, v in D.STATS.items() if k[0] == "kernel" and k[1].startswith(op + "_"))


@case
def case_advanced_indexing_kernels(T, D):
    # x[i0, i1, ...]: one generated kernel (indexed loads), every dtype, negative indices,
    # several index tensors broadcast together, adjacent (dims in place) or not (dims first)
    fb, n0 = _fallbacks(D), _kernels(D, "index")
    x3 = R.standard_normal((4, 5, 6)).astype(np.float32)
    a, b = np.array([[0], [-1], [2]]), np.array([1, -6, 5, 0])       # (3, 1) and (4,)
    for d in (np.float32, np.float64, np.float16, np.int64, np.int32, np.bool_):
        xd = x3 > 0 if d is np.bool_ else (x3 * 10).astype(d)
        got = _same(T, lambda x: x[T.tensor(a)], xd)
        assert got.shape == (3, 1, 5, 6)
    got = _same(T, lambda x, i, j: x[:, i, j], x3, a, b[:3] % 5)      # adjacent: (4, 3, 3)
    assert got.shape == (4, 3, 3)
    got = _same(T, lambda x, i, j: x[i, :, j], x3, a, b)              # non-adjacent: (3, 4, 5)
    assert got.shape == (3, 4, 5)
    got = _same(T, lambda x, i, j, k: x[i, j, k], x3, a, b % 5, np.array(-2))
    assert got.shape == (3, 4)
    _same(T, lambda x, i: x[..., i], x3, np.array([-1, 0, 3], np.int32))   # int32 indices
    _same(T, lambda x, i: x.t()[i], F32, np.array([6, -7, 3]))           # strided input
    _same(T, lambda x: x[[0, 2], 1:][:, [3, -1]], x3)
    _same(T, lambda x: T.index_select(x, 1, T.tensor([4, 0, 4]).to(x.device)), x3)
    _same(T, lambda x: T.take(x, T.tensor([[0, 119], [-1, 7]]).to(x.device)), x3)
    assert _fallbacks(D) == fb, (fb, _fallbacks(D))
    assert _kernels(D, "index") - n0 >= 15


@case
def case_index_put_kernels(T, D):
    # index_put: a copy of x, then one lane per indexed element storing its value, or with
    # accumulate adding it atomically (duplicate indices all add, as on the cpu)
    fb, n0 = _fallbacks(D), _kernels(D, "index_put")
    rows, cols = np.array([0, 2, 2, -1, 0, 2]), np.array([1, 3, 3, 0, 1, 3])
    for d in (np.float32, np.float64, np.float16, np.int64, np.int32):
        x, v = (F32 * 4).astype(d), (R.standard_normal(6) * 4).astype(d)
        got = _same(T, lambda x, i, j, v: T.index_put(x, (i, j), v, accumulate=True),
                    x, rows, cols, v, rtol=2e-3 if d is np.float16 else 1e-6)
        assert got.dtype.itemsize == np.dtype(d).itemsize
        w = x.astype(np.float64)
        np.add.at(w, (rows, cols), v.astype(np.float64))                 # duplicates add up
        np.testing.assert_allclose(got.cpu().numpy().astype(np.float64), w, rtol=2e-3)
    # bool accumulate is "or"
    _same(T, lambda x, i, v: T.index_put(x, (i,), v, accumulate=True), F32 > 1, rows,
          np.ones((6, 7), np.bool_) & (ROW > 0))
    # unique positions, values broadcast to the indexed shape, several index tensors
    x3 = R.standard_normal((4, 5, 6)).astype(np.float32)
    def put_12(x, i, j, v):           # the primitive at positions (1, 2): what x[:, i, j] = v means
        from framework._dispatch import apply, REGISTRY
        return apply(REGISTRY["index_put"], x, v, i, j, pos=(1, 2))
    _same(T, put_12, x3, np.array([[0], [-1]]), np.array([1, 3, 5]), np.float32([7.0, 8.0, 9.0]))
    _same(T, lambda x, i, v: x.index_put((i,), v), x3, np.array([3, -4]),
          R.standard_normal((5, 6)).astype(np.float32))
    _same(T, lambda x, i, v: T.index_put(x, (i,), v, accumulate=True), I64, rows, I64[0])
    # index_put_ in place, and index_add / index_fill (a scalar value) through the primitive

    def inplace(x, i, v):
        y = x.clone()
        y.index_put_((i,), v, accumulate=True)
        return y
    _same(T, inplace, F32, rows, np.ones(7, np.float32))
    _same(T, lambda x, i, s: x.index_add(0, i, s), F32, np.array([4, 4, 0]), F32[:3] * 1)
    _same(T, lambda x, i: x.index_fill(1, i, -2.5), F32, np.array([6, 0]))
    assert _fallbacks(D) == fb, (fb, _fallbacks(D))
    assert _kernels(D, "index_put") - n0 >= 12


@case
def case_scatter_kernels(T, D):
    # scatter / scatter_add / scatter_reduce: a copy of x, then stores or atomics
    fb, n0 = _fallbacks(D), _kernels(D, "scatter")
    x = R.standard_normal((4, 6)).astype(np.float32)
    dup = R.integers(0, 4, (5, 6))                     # many duplicate targets along dim 0
    src = R.standard_normal((5, 7)).astype(np.float32)   # src larger than index: rest unused
    for d in (np.float32, np.float64, np.int64, np.int32):
        _same(T, lambda x, i, s: T.scatter_add(x, 0, i, s), (x * 5).astype(d), dup,
              (src * 5).astype(d), rtol=1e-5)
    _same(T, lambda x, i, s: x.scatter_add(0, i, s), x.astype(np.float16), dup,
          src.astype(np.float16), rtol=5e-3, atol=5e-3)
    perm = np.stack([R.permutation(6)[:4] for _ in range(4)])   # unique targets per row
    _same(T, lambda x, i, s: x.scatter(1, i, s), x, perm, src[:4, :4].copy())
    _same(T, lambda x, i: x.scatter(1, i, 2.5), x, perm)                       # scalar src
    _same(T, lambda x, i: x.scatter(1, i, 7), I64[:4, :6].copy(), perm)
    _same(T, lambda x, i, s: x.scatter(1, i, s), x > 0, perm[:1], src[:1] > 0)  # bool
    xn = x.copy()
    xn[0, 0] = np.nan
    sn = src.copy()
    sn[1, 2] = np.nan
    for red in ("amax", "amin", "sum"):       # NaN propagates, as on the cpu
        for d in (np.float32, np.float64, np.int64):
            xs, ss = (xn, sn) if d is not np.int64 else ((x * 9).astype(d), (src * 9).astype(d))
            _same(T, lambda x, i, s: x.scatter_reduce(0, i, s, red), xs.astype(d), dup,
                  ss.astype(d), rtol=1e-5)
    _same(T, lambda x, i, s: x.scatter_reduce(0, i, s, "amax", include_self=False), x, dup, src)
    _same(T, lambda x, i, s: T.scatter_add(x, 0, i, s), x > 1, dup, src > 0)    # bool: or
    _same(T, lambda x, i, s: x.scatter_reduce(0, i, s, "amin"), x > -1, dup, src > -1)  # and
    assert _fallbacks(D) == fb, (fb, _fallbacks(D))
    assert _kernels(D, "scatter") - n0 >= 22
    # multiply/prod has no atomic: the named host fallback, same values
    _same(T, lambda x, i, s: x.scatter_reduce(0, i, s, "prod"), x, dup, src, rtol=1e-5)
    assert _fallbacks(D).get("scatter", 0) == fb.get("scatter", 0) + 1


@case
def case_slice_and_diagonal_scatter_kernels(T, D):
    # one elementwise kernel each: src inside the slice / on the diagonal, x elsewhere
    fb = _fallbacks(D)
    x3 = R.standard_normal((4, 7, 5)).astype(np.float32)
    for d in (np.float32, np.float64, np.int64, np.bool_):
        xd = x3 > 0 if d is np.bool_ else (x3 * 9).astype(d)
        _same(T, lambda x: T.slice_scatter(x, x[:, 1::3] * 0 + 1 if d is not np.bool_ else
                                           x[:, 1::3] == 0, dim=1, start=1, step=3), xd)
    _same(T, lambda x, s: T.slice_scatter(x, s, dim=-1, start=-4, end=-1, step=2), x3,
          R.standard_normal((4, 7, 2)).astype(np.float32))
    _same(T, lambda x, s: x.slice_scatter(s, dim=-3, start=3), x3, x3[:1] * 5)
    _same(T, lambda x, s: T.slice_scatter(x.transpose(0, 2), s, 0, 0, 5, 4), x3,
          R.standard_normal((2, 7, 4)).astype(np.float32))            # strided x
    for off, d1, d2 in ((0, 0, 1), (2, 1, 2), (-1, 2, 0), (-3, -1, -2)):
        want = np.diagonal(x3, off, d1, d2)
        _same(T, lambda x, s: T.diagonal_scatter(x, s, off, d1, d2), x3,
              R.standard_normal(want.shape).astype(np.float32))
    _same(T, lambda x: T.diag_embed(x, offset=1, dim1=0, dim2=2), F32)
    _same(T, lambda x: x.diagonal_scatter(x.diagonal() * -1), I64)
    assert _fallbacks(D) == fb, (fb, _fallbacks(D))
    assert _kernels(D, "slice_scatter") >= 7 and _kernels(D, "diagonal_scatter") >= 6


@case
def case_bad_indices_raise_the_cpu_error(T, D):
    # a kernel cannot raise: eager calls check the index buffer's min/max on the device first
    # and raise what the cpu raises, with nothing written
    def err(f, *args):
        try:
            f(*args)
        except (IndexError, RuntimeError) as e:
            return type(e), str(e)
        raise AssertionError("no error")
    x = T.tensor(F32)
    xi = x.to("interpret")
    cases = [(lambda x: x.gather(1, T.tensor([[0], [7], [1], [1], [1]]).to(x.device)), ()),
             (lambda x: x.gather(1, T.tensor([[0], [-1], [1], [1], [1]]).to(x.device)), ()),
             (lambda x: x.scatter_add_(0, T.tensor([[5, 0, 0, 0, 0, 0, 0]]).to(x.device),
                                       T.ones(1, 7).to(x.device)), ()),
             (lambda x: x.index_put_((T.tensor([1, -6]).to(x.device),), T.ones(7).to(x.device),
                                     accumulate=True), ()),
             (lambda x: x.index_put_((T.tensor([1]).to(x.device), T.tensor([7]).to(x.device)),
                                     T.ones(1).to(x.device)), ()),
             (lambda x: x.scatter_(1, T.tensor([[9]]).to(x.device), 1.5), ())]
    before = xi.cpu().numpy().copy()
    fb = _fallbacks(D)
    for f, _ in cases:
        want = err(f, x)
        got = err(f, xi)
        assert got == want, (got, want)
        assert np.array_equal(xi.cpu().numpy(), before)            # left unchanged
        assert np.array_equal(x.numpy(), F32)
    assert got[0] is RuntimeError and "out of bounds" in got[1]
    assert _fallbacks(D) == fb, (fb, _fallbacks(D))        # the kernels' checks raised


@case
def case_indexing_autograd(T, D):
    # gradients of indexing run the scatter kernels (and those of scatters the gathers)
    fb = _fallbacks(D)
    idx = np.array([[0, 4], [-1, 0], [2, 2]])
    src = R.standard_normal((3, 7)).astype(np.float32)
    grads = []
    for dev in ("cpu", "interpret"):
        x = T.tensor(F32).to(dev).requires_grad_()
        s = T.tensor(src).to(dev).requires_grad_()
        v = T.tensor(ROW[:2].copy()).to(dev).requires_grad_()
        i = T.tensor(idx).to(dev)
        g = T.tensor(R.integers(0, 5, (3, 7)) if dev == "cpu" else grads[0][-1]).to(dev)
        w = T.tensor(np.arange(7.0, dtype=np.float32)).to(dev)
        loss = (x[i] * 2).sum() + (x[i, 1:3] ** 2).sum() + x.gather(0, g).mul(w).sum()
        loss = loss + T.scatter_add(x, 0, g, s).pow(2).sum()
        loss = loss + T.index_put(x, (T.tensor([1, 3]).to(dev),), v.reshape(2, 1)).exp().sum()
        loss = loss + (x[:, 1::3] * 3).sum() + x.diagonal(1).sum()
        loss.backward()
        grads.append([t.grad.cpu().numpy() for t in (x, s, v)] + [g.cpu().numpy()])
        assert x.grad.device.type == dev
    for a, b in zip(grads[0][:3], grads[1][:3]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    assert _fallbacks(D) == fb, (fb, _fallbacks(D))
    for op in ("index_put", "gather", "scatter", "slice_scatter", "diagonal_scatter"):
        assert _kernels(D, op) >= 1, op


@case
def case_mlp_train_step(T, D):
    from framework import nn
    res = []
    for dev in ("cpu", "interpret"):
        T.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to(dev)
        opt = T.optim.Adam(m.parameters(), lr=0.01)
        x = T.randn(5, 6).to(dev)
        y = T.tensor([0, 2, 1, 1, 0]).to(dev)
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        grads = [p.grad for p in m.parameters()]
        assert all(g.device.type == dev for g in grads)
        opt.step()
        res.append((loss.item(), [g.cpu().numpy() for g in grads],
                    [p.detach().cpu().numpy() for p in m.parameters()]))
        assert all(p.device.type == dev for p in m.parameters())
    (l0, g0, p0), (l1, g1, p1) = res
    assert abs(l0 - l1) < 1e-6, (l0, l1)
    for a, b in zip(g0 + p0, g1 + p1):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert not np.allclose(p0[0], p1[0] * 0 + 1)     # the step changed the weights


@case
def case_autograd(T, D):
    x = T.tensor(F32, requires_grad=True)
    xi = T.tensor(F32).to("interpret").requires_grad_()
    for t in (x, xi):
        ((t * t).exp().sum(1) / 3).sum().backward()
    assert xi.grad.device.type == "interpret"
    np.testing.assert_allclose(xi.grad.cpu().numpy(), x.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), 2 * F32 * np.exp(F32 * F32) / 3, rtol=1e-5)
    # .to() is differentiable: the gradient goes back to the cpu leaf
    c = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (c.to("interpret") * 4).sum().backward()
    assert c.grad.device.type == "cpu" and c.grad.tolist() == [4.0, 4.0, 4.0]


@case
def case_round_trips_and_factories(T, D):
    c = T.tensor(I64)
    i = c.to("interpret")
    assert i.device == T.device("interpret") and str(i.device) == "interpret"
    assert i.to("interpret") is i and c.cpu() is c
    i[0, 0] = 99                                  # a device copy, not an alias
    assert c[0, 0].item() == I64[0, 0]
    back = i.cpu()
    assert back.device.type == "cpu" and type(back._data) is np.ndarray
    assert back.dtype is T.int64 and back[0, 0].item() == 99
    assert np.array_equal(back.numpy()[1:], I64[1:])
    z = T.zeros(2, 3, device="interpret", dtype=T.float16)
    assert z.device.type == "interpret" and z.dtype is T.float16 and z.sum().item() == 0
    assert T.ones_like(z).device.type == "interpret"           # *_like keeps the device
    a = T.arange(6, device="interpret")
    assert a.tolist() == [0, 1, 2, 3, 4, 5] and a.device.type == "interpret"
    assert repr(T.tensor([1.5, 2.0]).to("interpret")) == \
        "tensor([1.5000, 2.0000], device='interpret')"
    assert i.is_cuda and not c.is_cuda


@case
def case_default_device(T, D):
    """torch.set_default_device / get_default_device / `with torch.device(...)`."""
    assert T.get_default_device() == T.device("cpu") and T.get_default_device().type == "cpu"
    T.set_default_device("interpret")
    try:
        assert T.get_default_device().type == "interpret"
        for t in (T.zeros(2, 3), T.ones(2), T.tensor([1.0, 2.0]), T.arange(4), T.randn(3),
                  T.full((2,), 7), T.eye(2), T.linspace(0, 1, 3), T.empty(2),
                  T.tril_indices(3, 3), T.as_tensor(np.ones(2)), T.randint(0, 5, (3,))):
            assert t.device.type == "interpret", t
        c = T.zeros(2, device="cpu")                   # an explicit device still wins
        assert c.device.type == "cpu" and T.zeros_like(c).device.type == "cpu"
        a = np.arange(3.0)
        f = T.from_numpy(a)                            # from_numpy always shares cpu memory
        assert f.device.type == "cpu" and np.shares_memory(f.numpy(), a)
        assert T.as_tensor(a).device.type == "interpret"     # as in PyTorch: a copy
        x = T.tensor([[1.0, -2.0], [3.0, 4.0]])
        assert (x.relu() @ x).tolist() == [[1.0, -2.0], [15.0, 10.0]]
        with T.device("cpu"):                          # torch.device as a context manager
            assert T.get_default_device().type == "cpu" and T.ones(1).device.type == "cpu"
        assert T.get_default_device().type == "interpret"
    finally:
        T.set_default_device(None)
    assert T.get_default_device().type == "cpu" and T.ones(1).device.type == "cpu"
    with T.device("interpret"):
        assert T.ones(1).device.type == "interpret"
    assert T.ones(1).device.type == "cpu"
    os.environ.pop("KILN_DEVICE", None)
    try:
        T.set_default_device("cuda")
        raise AssertionError("an unavailable default device must raise at once")
    except RuntimeError as e:
        assert "KILN_DEVICE=interpret" in str(e)
    assert T.get_default_device().type == "cpu"


@case
def case_kiln_device_maps_cuda(T, D):
    os.environ.pop("KILN_DEVICE", None)
    assert T.cuda.is_available() is False and T.cuda.device_count() == 0
    try:
        T.zeros(2, device="cuda")
        raise AssertionError("cuda without a GPU must raise")
    except RuntimeError as e:
        assert "no CUDA GPU" in str(e) and "KILN_DEVICE=interpret" in str(e)
    os.environ["KILN_DEVICE"] = "interpret"
    try:
        assert T.cuda.is_available() and T.cuda.device_count() == 1
        assert T.cuda.current_device() == 0
        T.cuda.synchronize()
        dev = T.device("cuda" if T.cuda.is_available() else "cpu")
        x = T.randn(3, 4).to(dev)
        import gc
        gc.collect()
        before = T.cuda.memory_allocated()
        y = T.ones(3, 4, device="cuda")
        gc.collect()
        assert T.cuda.memory_allocated() - before == 48       # 12 float32 on the device
        assert x.device.type == "interpret" and y.device.type == "interpret"
        assert T.tensor([1.0]).cuda().device.type == "interpret"
        np.testing.assert_allclose((x + y).cpu().numpy(), x.cpu().numpy() + 1)
    finally:
        os.environ.pop("KILN_DEVICE", None)


@case
def case_errors(T, D):
    a, b = T.ones(3), T.ones(3).to("interpret")
    try:
        a + b
        raise AssertionError("mixing devices must raise")
    except RuntimeError as e:
        assert "Expected all tensors to be on the same device, but found at least two " \
               "devices, cpu and interpret!" in str(e), str(e)
    try:
        T.matmul(b.reshape(1, 3), T.ones(3, 1))
        raise AssertionError("mixing devices must raise")
    except RuntimeError as e:
        assert "interpret and cpu!" in str(e), str(e)
    assert (b + T.tensor(2.0)).tolist() == [3.0, 3.0, 3.0]     # 0-dim cpu tensors go along
    try:
        b.numpy()
        raise AssertionError
    except TypeError as e:
        assert "Tensor.cpu()" in str(e)
    try:
        b + T.ones(4).to("interpret")                           # meta errors still first
        raise AssertionError
    except RuntimeError as e:
        assert "must match the size" in str(e)


@case
def case_kernel_cache_and_logs(T, D):
    import io
    from compiler.codegen import triton_eager
    from framework._compile import log
    x = T.randn(4, 6).to("interpret")
    y = T.randn(6).to("interpret")
    _ = x * y
    n = len(triton_eager.cached_kernels())
    x2 = T.randn(9, 6).to("interpret")                          # other sizes, same structure
    r = x2 * y
    assert len(triton_eager.cached_kernels()) == n
    np.testing.assert_allclose(r.cpu().numpy(), x2.cpu().numpy() * y.cpu().numpy(), rtol=1e-6)
    old, sys.stderr = sys.stderr, io.StringIO()
    log.enable("kernels")
    try:
        x.sum()
        x + 1
        text = sys.stderr.getvalue()
    finally:
        log.disable("kernels")
        sys.stderr = old
    assert "sum -> Triton kernel sum_0" in text, text
    assert "add -> Triton kernel fused_add_0" in text, text


@case
def case_compile_default_backend_follows_the_device(T, D):
    # compile() without backend=: interpret tensors get the 'interpret' backend (outputs stay
    # on the device, backward works), cpu tensors the 'numpy' one; decided per trace
    m = T.nn.Linear(4, 2).to("interpret")
    cm = T.compile(m)
    x = T.randn(3, 4).to("interpret")
    y = cm(x)
    assert y.device.type == "interpret" and cm._compiled.backend == "interpret"
    y.sum().backward()
    assert m.weight.grad.device.type == "interpret"
    np.testing.assert_allclose(m.weight.grad.cpu().numpy(),
                               np.tile(x.cpu().numpy().sum(0), (2, 1)), rtol=1e-5)
    f = T.compile(lambda t: t * 2 + 1)
    assert f(T.ones(2)).device.type == "cpu" and f.backend == "numpy"
    r = f(T.ones(2).to("interpret"))
    assert r.device.type == "interpret" and f.backend == "interpret"
    w = T.ones(3).to("interpret")                  # a function reaching device state only
    g = T.compile(lambda: (w * 3).sum())
    assert g().device.type == "interpret" and g.backend == "interpret"


@case
def case_library_ops_run_on_the_device_arrays(T, D):
    # sorting, scans and linear algebra run their array-module lowering on the device's own
    # arrays (CuPy on a GPU; NumPy here), counted as "library", never a host fallback
    fb = {k: v for k, v in D.STATS.items() if k[0] == "fallback"}
    sq = (R.standard_normal((4, 4)) + 4 * np.eye(4)).astype(np.float64)
    _same(T, lambda x: T.argsort(x, 1, descending=True), F32)
    _same(T, lambda x: T.sort(x, 0).values, F32)
    _same(T, lambda x: T.topk(x, 3, 1).values, F32)
    _same(T, lambda x: T.cumsum(x, 1), F32, rtol=1e-5)
    _same(T, lambda x: T.cumprod(x, 0), F32, rtol=1e-5)
    _same(T, lambda a: T.linalg.inv(a), sq, rtol=1e-10, atol=1e-12)
    _same(T, lambda a: T.linalg.det(a), sq, rtol=1e-10)
    _same(T, lambda a, b: T.linalg.solve(a, b), sq, sq[:, :2].copy(), rtol=1e-10, atol=1e-12)
    _same(T, lambda a: T.linalg.cholesky(a @ a.mT), sq, rtol=1e-10, atol=1e-12)
    _same(T, lambda a: T.einsum("ij,jk->ik", a, a), sq, rtol=1e-12)
    q, r = T.linalg.qr(T.tensor(sq).to("interpret"))
    np.testing.assert_allclose((q @ r).cpu().numpy(), sq, rtol=1e-10, atol=1e-12)
    for op in ("argsort", "cumsum", "cumprod", "inv", "det", "solve", "cholesky", "einsum",
               "qr"):
        assert D.STATS["library", op] >= 1, op
    new = {k[1] for k, v in D.STATS.items() if k[0] == "fallback" and v != fb.get(k, 0)}
    assert not new & {"argsort", "cumsum", "cumprod", "inv", "det", "solve", "cholesky",
                      "einsum", "qr"}, new
    # a singular matrix: PyTorch's LinAlgError, as on the cpu
    try:
        T.linalg.inv(T.zeros(3, 3).to("interpret"))
    except T.linalg.LinAlgError as e:
        assert "singular" in str(e)
    else:
        raise AssertionError("inv of a singular matrix did not raise")


@case
def case_maximum_gradient_and_optimizer_state_follow_the_device(T, D):
    # maximum/minimum's gradient casts a mask (the dtype is an attribute, not an operand)
    x = T.tensor([1.0, 3.0, 2.0]).to("interpret").requires_grad_()
    y = T.tensor([2.0, 3.0, 1.0]).to("interpret")
    T.maximum(x, y).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [0.0, 0.5, 1.0])
    # a checkpoint loaded to the cpu resumes on the device: Adam's moments follow the
    # parameters (the step count stays where it was, as in PyTorch)
    w = T.nn.Parameter(T.ones(3))
    o = T.optim.Adam([w], lr=0.1)
    w.grad = T.ones(3)
    o.step()
    wd = T.nn.Parameter(w.detach().clone().to("interpret"))
    od = T.optim.Adam([wd], lr=0.1)
    od.load_state_dict(o.state_dict())
    st = od.state[wd]
    assert st["exp_avg"].device.type == "interpret" and st["step"].device.type == "cpu"
    wd.grad = T.ones(3).to("interpret")
    od.step()
    w.grad = T.ones(3)
    o.step()
    np.testing.assert_allclose(wd.detach().cpu().numpy(), w.detach().numpy(), rtol=1e-6)


@case
def case_class_targets_checked_by_a_kernel(T, D):
    # cross_entropy's targets: the range-check kernel and a 32-byte flag read, no host fallback
    from compiler.codegen import triton_checks
    logits = F32[:4, :5] * 1
    n0, r0 = D.STATS["kernel", "check_range_i64"], triton_checks.kernel().runs
    _same(T, lambda z, t: T.nn.functional.cross_entropy(z, t), logits,
          np.array([0, 4, 2, -100]), rtol=1e-5)
    x = T.tensor(logits).to("interpret").requires_grad_()
    bad = T.tensor(np.array([0, 5, 2, 1])).to("interpret")
    try:
        T.nn.functional.cross_entropy(x, bad)
    except IndexError as e:
        assert str(e) == "Target 5 is out of bounds.", e
    else:
        raise AssertionError("a target of 5 for 5 classes did not raise")
    assert x.grad is None
    assert D.STATS["kernel", "check_range_i64"] - n0 == 1     # (counted once it passed)
    assert triton_checks.kernel().runs - r0 == 2                   # the bad one ran it too
    assert D.STATS["fallback", "class_index"] == 0



@case
def case_compiled_intermediates_report_the_program_device(T, D):
    # while compile() traces, tensors the function makes say where the program runs: code that
    # builds a tensor on y.device, or moves one there, must not turn a device input into a
    # host copy baked into the graph (CTC lengths replayed stale values that way)
    seen = []

    def f(x, n):
        y = x.log_softmax(0)
        seen.append((y.device.type, y.is_cuda))
        return (y + T.zeros(3, device=y.device)) * n.to(y.device).to(y.dtype)
    cf = T.compile(f)
    x = T.tensor([0.5, -1.0, 2.0]).to("interpret")
    for k in (1, 2, 3, 4):
        n = T.tensor([k, k, k]).to("interpret")
        got = cf(x, n)
        assert got.device.type == "interpret", got.device
        want = np.log(np.exp([0.5, -1.0, 2.0]) / np.exp([0.5, -1.0, 2.0]).sum()) * k
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-6)
    assert seen and all(s == ("interpret", True) for s in seen), seen


@case
def case_compiled_in_place_writes_through_views(T, D):
    # y.t().add_ / y.view(-1).mul_ / y.unsqueeze(0).relu_ inside compile(): the write reaches
    # y through an index_put at arange positions made in the program (which the program's
    # index range checks must pass over: they check index tensors that are inputs)
    X = np.random.default_rng(0).uniform(-1, 2, (3, 4))
    C = np.arange(12.).reshape(3, 4)
    for view, op in ((lambda y: y.t(), lambda v: v.add_(1.0)),
                     (lambda y: y.view(-1), lambda v: v.mul_(2.0)),
                     (lambda y: y.unsqueeze(0), lambda v: v.relu_())):
        def f(x, c):
            y = x * 1.5
            op(view(y))
            return (y * y * c).sum()
        grads = []
        for fn in (f, T.compile(f)):
            for rep in (1, 2, 3):              # traces, then replays
                x = T.tensor(X * rep, device="interpret", requires_grad=True)
                fn(x, T.tensor(C, device="interpret")).backward()
                grads.append(x.grad.cpu().numpy())
        for a, b in zip(grads[:3], grads[3:]):
            np.testing.assert_allclose(b, a, rtol=1e-12)

@case
def case_pow_special_values_as_c_pow_and_torch_scalar_exponents(T, D):
    # tensor ** tensor is C pow: the sign of -0 and -inf under odd integer exponents
    # (pow(-0, -1) = -inf), +-inf exponents never NaN (pow(-1, inf) = 1, pow(-2, inf) = inf)
    v = np.array([-np.inf, -2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, np.inf, np.nan])
    e = np.array([-np.inf, -3.0, -2.0, -1.5, -1.0, -0.5, -0.0, 0.5, 1.0, 3.0, np.inf, np.nan])
    A, B = np.meshgrid(v, e)
    with np.errstate(all="ignore"):
        want = np.power(A, B)                    # array exponent: NumPy calls C pow
    for npd in (np.float32, np.float64):
        got = T.pow(T.tensor(A.astype(npd), device="interpret"),
                    T.tensor(B.astype(npd), device="interpret")).cpu().numpy()
        np.testing.assert_array_equal(got, want.astype(npd))
        assert (np.signbit(got) == np.signbit(want))[~np.isnan(want)].all()
    # a Python float exponent: PyTorch's x ** 0.5 is sqrt and x ** -0.5 rsqrt, on both devices
    x = np.array([-np.inf, -4.0, -0.0, 0.0, 4.0, np.inf, np.nan])
    with np.errstate(all="ignore"):
        for s, ref in ((0.5, np.sqrt(x)), (-0.5, 1.0 / np.sqrt(x))):
            for dev in ("cpu", "interpret"):
                got = (T.tensor(x, device=dev) ** s).cpu().numpy()
                np.testing.assert_array_equal(got, ref)
                assert (np.signbit(got) == np.signbit(ref))[~np.isnan(ref)].all(), (s, dev, got)


@case
def case_out_resize_stays_on_the_device_and_a_refused_cast_keeps_out(T, D):
    for dev in ("cpu", "interpret"):
        o = T.zeros(2, device=dev)
        r = T.mul(T.ones(3, 4, device=dev), 2, out=o)
        assert r is o and o.device.type == dev and tuple(o.shape) == (3, 4)
        assert type(o._data).__name__ == ("InterpretArray" if dev == "interpret" else "ndarray")
        np.testing.assert_array_equal(o.cpu().numpy(), np.full((3, 4), 2.0, np.float32))
        o = T.zeros(2, dtype=T.int64, device=dev)
        try:
            T.mul(T.ones(3, 4, dtype=T.float64, device=dev), 2.0, out=o)
            raise AssertionError("float result into an int64 out= was not refused")
        except RuntimeError as e:
            assert "can't be cast" in str(e)
        assert tuple(o.shape) == (2,)                # neither resized nor written
        np.testing.assert_array_equal(o.cpu().numpy(), np.zeros(2, np.int64))


@case
def case_one_hot_and_normal_of_device_tensors(T, D):
    F = T.nn.functional
    y = F.one_hot(T.tensor([0, 3, 1], device="interpret"), 5)
    assert y.device.type == "interpret" and y.dtype is T.int64
    np.testing.assert_array_equal(y.cpu().numpy(), np.eye(5, dtype=np.int64)[[0, 3, 1]])
    for dev in ("cpu", "interpret"):
        # the output takes mean's dtype (PyTorch fills it, then mul_(std).add_(mean))
        mean = T.zeros(2, 3, dtype=T.float16, device=dev)
        r = T.normal(mean, T.ones(3, dtype=T.float64, device=dev))
        assert r.dtype is T.float16 and tuple(r.shape) == (2, 3) and r.device.type == dev
        assert not r.requires_grad
        r = T.normal(T.zeros(3, device=dev), T.full((2, 3), 1e-3, dtype=T.float64, device=dev))
        assert r.dtype is T.float32 and tuple(r.shape) == (2, 3)
        assert np.abs(r.cpu().numpy()).max() < 0.1
        for args, kw in (((T.zeros(3, dtype=T.int64, device=dev), 1.0), {}),
                         ((0.0, 1.0, (3,)), {"dtype": T.int64, "device": dev})):
            try:
                T.normal(*args, **kw)
                raise AssertionError("normal with an int64 output was not refused")
            except NotImplementedError as e:
                assert "normal_kernel_cpu" in str(e) and "Long" in str(e)


def worker():
    import traceback
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import become_interpreter_worker
    become_interpreter_worker(ROOT)
    import framework as T
    from framework import _device_ops as D
    only = sys.argv[2:] or None
    for name, fn in CASES.items():
        if only and name not in only:
            continue
        rec = {"case": name}
        try:
            fn(T, D)
            rec["ok"] = True
        except BaseException as e:   # reported per case, so one failure shows the others
            rec.update(ok=False, msg=f"{type(e).__name__}: {e}\n{traceback.format_exc()}"[-3000:])
        print(json.dumps(rec), flush=True)
    print(json.dumps({"done": True, "torch_imported": "torch" in sys.modules,
                      "stats": {" ".join(k): v for k, v in D.STATS.items()}}), flush=True)


# ----------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def results(tmp_path_factory):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import run_worker
    recs = run_worker(__file__, ROOT, str(tmp_path_factory.mktemp("kiln_cache")))
    by = {r["case"]: r for r in recs[:-1]}
    by["__done__"] = recs[-1]
    return by


@pytest.mark.parametrize("name", list(CASES))
def test_interpret_device(results, name):
    r = results.get(name)
    assert r is not None, f"{name}: worker produced no result"
    assert r["ok"], r.get("msg")


def test_worker_never_imported_torch_and_ran_kernels(results):
    done = results["__done__"]
    assert done["torch_imported"] is False
    st = done["stats"]
    kernels = {k.split(" ", 1)[1] for k in st if k.startswith("kernel ")}
    assert {"fused_add_0", "fused_mul_0", "fused_where_0", "fused_exp_0"} <= kernels, kernels
    assert st.get("view permute", 0) > 0 and st.get("kernel matmul_0", 0) > 0


def test_cpu_only_processes_skip_the_device_check():
    """apply() pays for device support only once a tensor has lived off the cpu."""
    sys.path.insert(0, ROOT)
    code = ("import framework as T, framework._dispatch as d; T.ones(2) + 1; print(d.NONCPU)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    worker()


def test_interpret_device_without_triton_interpret_falls_back_for_library_kernels():
    """Kernels calling Triton's library (tl.sum, tl.max) need Triton imported in interpret mode.
    Asking for the interpret device before Triton is imported (or KILN_DEVICE=interpret) sets
    TRITON_INTERPRET, and they run as kernels; with Triton already imported the other way, the
    interpret device still gives right results through named host fallbacks."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "%s"
        "import framework as torch, framework.nn.functional as F\n"
        "from framework import _device_ops as D\n"
        "x = torch.arange(16.0).reshape(1, 1, 4, 4)\n"
        "xi = x.to('interpret')\n"
        "assert (xi.sum(3).cpu().numpy() == x.sum(3).numpy()).all()\n"
        "assert (F.max_pool2d(xi, 2).cpu().numpy() == F.max_pool2d(x, 2).numpy()).all()\n"
        "import numpy as np\n"       # pointwise kernels call no library function: kernels
        "s = (xi - 8).sigmoid()\n"
        "np.testing.assert_allclose(s.cpu().numpy(), (x - 8).sigmoid().numpy(), rtol=1e-6)\n"
        "assert D.STATS.get(('kernel', 'fused_sigmoid_0')), dict(D.STATS)\n"
        "print(sorted(k[0] + ':' + k[1] for k, v in D.STATS.items() if v and\n"
        "             ('sum' in k[1] or 'window_max' in k[1])))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "KILN_DEVICE")}

    def run(first, env):
        r = subprocess.run([sys.executable, "-c", code % (ROOT, first)], capture_output=True,
                           text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout

    late = run("import triton\n", env)           # Triton imported before the device is asked
    assert "fallback:sum" in late and "fallback:window_max" in late, late
    plain = run("", env)
    assert "kernel:sum_0" in plain and "fallback" not in plain, plain
    mapped = run("", dict(env, KILN_DEVICE="interpret"))
    assert "kernel:sum_0" in mapped and "fallback" not in mapped, mapped
