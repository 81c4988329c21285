"""NumPy lowerings with fast paths (flat-index gather/scatter, fold_windows): each is checked
against a plain reference written with NumPy's own indexing (float64 where it sums), over
contiguous and non-contiguous inputs and the shapes pooling/convolution produce."""
import itertools

import numpy as np
import pytest

from compiler.ir.registry import REGISTRY, AVal
from runtime import dtypes as dt


def _run(op, out_shape, out_dtype, *args, **attrs):
    return np.asarray(REGISTRY[op].numpy(AVal(tuple(out_shape), out_dtype), *args, **attrs))


def _ref_gather(x, idx, dim):
    out = np.empty(idx.shape, x.dtype)
    for pos in np.ndindex(*idx.shape):
        src = list(pos)
        src[dim] = idx[pos]
        out[pos] = x[tuple(src)]
    return out


def _ref_scatter(x, idx, src, dim, reduce):
    r = x.astype(np.float64)
    for pos in np.ndindex(*idx.shape):
        dst = list(pos)
        dst[dim] = idx[pos]
        v = src[pos] if isinstance(src, np.ndarray) else src
        if reduce is None:
            r[tuple(dst)] = v
        else:
            r[tuple(dst)] += v
    return r


@pytest.mark.parametrize("xshape,ishape,dim", [((3, 4, 5), (3, 4, 1), 2), ((3, 4, 5), (3, 2, 5), 1),
                                                ((6, 5), (4, 3), 0), ((2, 3, 4, 4, 4), (2, 3, 4, 4, 1), 4),
                                                ((7,), (3,), 0), ((3, 4, 5), (2, 4, 3), 2)])
@pytest.mark.parametrize("contig", [True, False])
@pytest.mark.parametrize("idt", [np.int64, np.int32])
def test_gather_matches_reference(xshape, ishape, dim, contig, idt):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(tuple(2 * s for s in xshape)).astype(np.float32)
    x = x[tuple(slice(None, None, 2) for _ in xshape)] if not contig else x[tuple(slice(0, s) for s in xshape)].copy()
    idx = rng.integers(0, xshape[dim], ishape).astype(idt)
    got = _run("gather", ishape, dt.float32, x, idx, dim=dim)
    np.testing.assert_array_equal(got, _ref_gather(x, idx, dim))


@pytest.mark.parametrize("xshape,ishape,dim", [((3, 4, 5), (3, 4, 1), 2), ((3, 4, 5), (3, 1, 5), 1),
                                                ((3, 4, 5), (2, 1, 3), 1), ((6, 5), (1, 3), 0),
                                                ((2, 3, 4, 4, 4), (2, 3, 4, 4, 1), 4),
                                                ((3, 4, 5), (3, 4, 3), 2)])   # duplicates: ufunc.at
@pytest.mark.parametrize("reduce", [None, "add"])
@pytest.mark.parametrize("scalar", [False, True])
def test_scatter_matches_reference(xshape, ishape, dim, reduce, scalar):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xshape).astype(np.float32)
    xt = np.asfortranarray(x)           # a non-C-contiguous base
    idx = rng.integers(0, xshape[dim], ishape)
    if reduce is None and ishape[dim] > 1:
        # unique targets per row, so plain assignment has one answer
        idx = np.argsort(rng.random(ishape[:dim] + (xshape[dim],) + ishape[dim + 1:]),
                         axis=dim)[tuple(slice(0, s) for s in ishape)]
    src = 1.5 if scalar else rng.standard_normal(tuple(s + 1 for s in ishape)).astype(np.float32)
    got = _run("scatter", xshape, dt.float32, xt, idx, src, dim=dim, reduce=reduce)
    s = src if scalar else src[tuple(slice(0, n) for n in ishape)]
    ref = _ref_scatter(x, idx, s, dim, reduce)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(xt, x)        # the input is not written


def test_gather_scatter_bad_index_raises():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(RuntimeError, match="out of bounds"):
        _run("gather", (2, 1), dt.float32, x, np.array([[3], [0]]), dim=1)
    with pytest.raises(RuntimeError, match="out of bounds"):
        _run("scatter", (2, 3), dt.float32, x, np.array([[-1], [0]]), 1.0, dim=1, reduce="add")


def _ref_fold(c, size, kernel, stride, dilation):
    n = len(kernel)
    lead = c.shape[:c.ndim - 2 * n]
    counts = c.shape[c.ndim - 2 * n:c.ndim - n]
    r = np.zeros(lead + tuple(size), np.float64)
    for o in itertools.product(*[range(k) for k in counts]):
        for k in itertools.product(*[range(k) for k in kernel]):
            pos = tuple(oi * s + ki * d for oi, ki, s, d in zip(o, k, stride, dilation))
            r[(Ellipsis,) + pos] += c[(Ellipsis,) + o + k]
    return r


_FOLDS = [((6, 6), (3, 3), (1, 1), (1, 1)),      # conv backward (col2im), overlapping
          ((8, 8), (2, 2), (2, 2), (1, 1)),      # max-pool backward, disjoint
          ((7, 9), (3, 2), (2, 3), (1, 2)),      # gaps and dilation
          ((10,), (3,), (1,), (2,)),             # 1-D
          ((5, 4, 6), (2, 2, 3), (1, 2, 1), (1, 1, 1)),
          ((40, 40), (3, 3), (1, 1), (1, 1))]    # a plane too big for the matmul path


def _fold_input(rng, size, kernel, stride, dilation, layout, dtype):
    from compiler.ops.conv import window_count
    counts = tuple(window_count("t", s, k, st, d) for s, k, st, d in zip(size, kernel, stride, dilation))
    n = len(kernel)
    if layout == "contiguous":
        return rng.standard_normal((3, 4) + counts + tuple(kernel)).astype(dtype)
    if layout == "kernel-major":          # what conv backward produces: [N, C, K.., O..] permuted
        c = rng.standard_normal((3, 4) + tuple(kernel) + counts).astype(dtype)
        return c.transpose((0, 1) + tuple(range(2 + n, 2 + 2 * n)) + tuple(range(2, 2 + n)))
    c = rng.standard_normal((3, 8) + counts + tuple(kernel)).astype(dtype)
    return c[:, ::2]                      # strided lead dims


@pytest.mark.parametrize("size,kernel,stride,dilation", _FOLDS)
@pytest.mark.parametrize("layout", ["contiguous", "kernel-major", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fold_windows_matches_reference(size, kernel, stride, dilation, layout, dtype):
    rng = np.random.default_rng(3)
    c = _fold_input(rng, size, kernel, stride, dilation, layout, dtype)
    d = dt.float32 if dtype == np.float32 else dt.float64
    got = _run("fold_windows", c.shape[:2] + tuple(size), d, c, size=size, kernel=kernel,
               stride=stride, dilation=dilation)
    assert got.dtype == dtype and got.shape == c.shape[:2] + tuple(size)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, _ref_fold(c.astype(np.float64), size, kernel, stride, dilation),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_fold_windows_non_finite_input_is_exact(bad):
    """The matmul path would turn one inf into NaN across its whole plane (inf * 0); the
    lowering notices the NaN and sums exactly instead."""
    rng = np.random.default_rng(4)
    c = rng.standard_normal((2, 3, 4, 4, 3, 3)).astype(np.float32)
    c[1, 2, 0, 1, 2, 2] = bad
    got = _run("fold_windows", (2, 3, 6, 6), dt.float32, c, size=(6, 6), kernel=(3, 3),
               stride=(1, 1), dilation=(1, 1))
    with np.errstate(invalid="ignore"):
        ref = _ref_fold(c.astype(np.float64), (6, 6), (3, 3), (1, 1), (1, 1))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert np.isnan(got).sum() == np.isnan(ref).sum() and np.isinf(got).sum() == np.isinf(ref).sum()


def test_fold_windows_integer_dtype():
    c = np.arange(2 * 3 * 3 * 2 * 2).reshape(2, 3, 3, 2, 2).astype(np.int64)
    got = _run("fold_windows", (2, 4, 4), dt.int64, c, size=(4, 4), kernel=(2, 2), stride=(1, 1),
               dilation=(1, 1))
    np.testing.assert_array_equal(got, _ref_fold(c, (4, 4), (2, 2), (1, 1), (1, 1)).astype(np.int64))


@pytest.mark.parametrize("contig", [True, False])
def test_windows_view_matches_sliding_window_view(contig):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 11, 12)).astype(np.float32)
    if not contig:
        x = x[:, :, 1:, ::2].transpose(0, 1, 3, 2)
    kernel, stride, dilation = (3, 2), (2, 1), (1, 2)
    from compiler.ops.conv import window_count
    outs = tuple(window_count("t", s, k, st, d) for s, k, st, d in zip(x.shape[2:], kernel, stride, dilation))
    v = _run("windows", x.shape[:2] + outs + kernel, dt.float32, x, kernel=kernel, stride=stride,
             dilation=dilation)
    ref = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, :, :, ::2]
    ref = ref[:, :, :outs[0], :outs[1]]
    np.testing.assert_array_equal(v, ref)
    assert np.shares_memory(v, x) and not v.flags.writeable


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim,keepdim", [(-1, True), (1, False), (0, True)])
def test_short_argmax_matches_numpy_with_ties_and_nan(op, dtype, dim, keepdim):
    """Short reduced dims (pooling windows) run as whole-array steps: first extreme wins on
    ties (-0.0 == 0.0 included), infinities count, and NaN input falls back to NumPy's rule."""
    rng = np.random.default_rng(6)
    x = rng.integers(-2, 3, (40, 4, 30)).astype(dtype)     # many ties
    x[0, :, 0] = [-0.0, 0.0, 0.0, -0.0]
    x[1, 2, :] = np.inf
    x[2, 1, :] = -np.inf
    f = getattr(np, op)
    for arr in (x, x.transpose(2, 0, 1), x.copy()):
        d = dim % arr.ndim
        shape = list(arr.shape)
        if keepdim:
            shape[d] = 1
        else:
            del shape[d]
        got = _run(op, shape, dt.int64, arr, dim=dim, keepdim=keepdim)
        np.testing.assert_array_equal(got, f(arr, axis=dim, keepdims=keepdim))
        assert got.dtype == np.int64
    y = x.copy()
    y[3, 2, 5] = np.nan
    got = _run(op, [40, 1, 30], dt.int64, y, dim=1, keepdim=True)
    np.testing.assert_array_equal(got, f(y, axis=1, keepdims=True))


def test_sum_over_axis0_and_inner_axes_reduces_axis0_first_in_eager_and_compiled():
    """BatchNorm's sum over (0, 2, 3): axis 0 first (whole-row adds), then the rest -- in the
    lowering and in generated code alike, so eager and compiled stay bit-identical."""
    import framework as torch
    from compiler.ops.reduction import axis0_first
    assert axis0_first((0, 2, 3), 4) and axis0_first((0, 2), 3)
    assert not axis0_first((0, 1), 3) and not axis0_first((1, 2), 4) and not axis0_first((0,), 2)
    rng = np.random.default_rng(3)
    for shape, dims in [((32, 16, 8, 8), (0, 2, 3)), ((5, 3, 7), (0, 2)), ((4, 6, 2, 3), (0, 3))]:
        a = rng.standard_normal(shape).astype(np.float32)
        a[0, 0] = np.inf if len(shape) == 3 else a[0, 0]
        x = torch.tensor(a)
        ref = a.astype(np.float64).sum(axis=dims, keepdims=True)
        for keep in (True, False):
            e = x.sum(dim=dims, keepdim=keep)
            f = torch.compile(lambda t, d=dims, k=keep: t.sum(dim=d, keepdim=k) * 1.5)
            got = f(x).numpy()
            np.testing.assert_array_equal(got, (e * 1.5).numpy())
            want = ref if keep else ref.reshape(e.shape)
            np.testing.assert_allclose(e.numpy(), want, rtol=1e-5, atol=1e-3)
