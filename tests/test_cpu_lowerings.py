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
