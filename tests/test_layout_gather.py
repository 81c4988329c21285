"""Copies of strided layout views done as gathers: numpy_gen emits a reshape that must copy a
chain of layout views (pooling windows, im2col) as np.take with a static index
(numpy_gen.layout_index), and fold_windows of side-by-side windows (pooling backward) is a
permutation (compiler/ops/conv.py). Both only move elements, so results equal the reference
interpreter / a loop reference bit for bit, non-finite values and signed zeros included."""
import itertools

import numpy as np
import pytest

from compiler.backend import compile_graph
from compiler.codegen import numpy_gen
from compiler.ir.graph import Graph
from compiler.ir.registry import REGISTRY, AVal
from runtime import dtypes as dt


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "kiln"))


def _special(rng, shape, npd):
    x = (rng.standard_normal(shape) * 3).astype(npd)
    flat = x.reshape(-1)
    for k, v in enumerate([np.nan, np.inf, -np.inf, 0.0, -0.0]):
        flat[k::13] = v
    return x


def _bits(a):
    a = np.asarray(a)
    return a.view({4: np.int32, 8: np.int64}[a.dtype.itemsize]) if a.dtype.kind == "f" else a


def _chains():
    """(input shape, build(graph, x) -> value, expect np.take) cases."""
    def pool(g, x):
        w = g.call("windows", x, kernel=(2, 2), stride=(2, 2), dilation=(1, 1))
        return g.call("reshape", w, shape=tuple(w.shape[:4]) + (4,))

    def im2col(g, x):
        w = g.call("windows", x, kernel=(3, 3), stride=(1, 1), dilation=(1, 1))
        p = g.call("permute", w, dims=(0, 1, 4, 5, 2, 3))
        return g.call("reshape", p, shape=(x.shape[0], 1, x.shape[1] * 9, 16))

    def sliced_flipped(g, x):
        s = g.call("slice", x, dim=3, start=1, stop=9, step=2)          # (4, 8, 10, 4)
        f = g.call("flip", s, dims=(2,))
        p = g.call("permute", f, dims=(0, 3, 1, 2))
        return g.call("reshape", p, shape=(4 * 4, 80))

    def expanded(g, x):
        e = g.call("expand", x, shape=(6, 256, 2))
        p = g.call("permute", e, dims=(1, 2, 0))
        return g.call("reshape", p, shape=(256 * 12,))

    def contiguous(g, x):           # a reshape that is a view: left as x.reshape
        return g.call("reshape", x, shape=(x.shape[0], 256))

    return [((32, 16, 8, 8), pool, True), ((32, 16, 6, 6), im2col, True),
            ((4, 8, 10, 10), sliced_flipped, True), ((1, 256, 1), expanded, True),
            ((8, 16, 16), contiguous, False)]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("d", [dt.float32, dt.float64, dt.int32])
def test_reshape_copy_as_take_equals_reference(case, d):
    shape, build, takes = _chains()[case]
    g = Graph("t")
    x = g.add_input("x", shape, d)
    y = build(g, x)
    z = g.call("add", y, 1)             # a consumer, so the reshape is not only an output
    g.set_outputs([y, z])
    prog, _ = compile_graph(g)
    assert ("np.take(" in prog.source) == takes
    rng = np.random.default_rng(case)
    for _ in range(2):
        a = _special(rng, shape, d.np) if np.dtype(d.np).kind == "f" else \
            rng.integers(-9, 9, shape).astype(d.np)
        with np.errstate(all="ignore"):
            ref = g.run(a)
            got = prog.run([a], g.float_consts())
            # a non-contiguous source array: the static index reads the same elements
            got_t = prog.run([np.asfortranarray(a)], g.float_consts())
        for r, o, ot in zip(ref, got, got_t):
            assert r.shape == o.shape and r.dtype == o.dtype
            np.testing.assert_array_equal(_bits(r), _bits(o))
            np.testing.assert_array_equal(_bits(r), _bits(ot))


def test_layout_index_matches_the_chain():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 9, 7))
    chain = (("windows", (3, 5, 3, 2, 3, 3), (("dilation", (1, 2)), ("kernel", (3, 3)),
                                                ("stride", (3, 2)))),
             ("permute", (3, 3, 3, 5, 3, 2), (("dims", (0, 4, 5, 1, 2, 3)),)))
    idx = numpy_gen.layout_index(x.shape, chain, (9, 3 * 5 * 6))
    v = x
    for op, oshape, attrs in chain:
        v = REGISTRY[op].numpy(AVal(oshape, dt.float64), v, **dict(attrs))
    np.testing.assert_array_equal(np.take(x, idx), v.reshape(9, 90))
    assert not idx.flags.writeable


def _fold_loop(c, size, kernel, stride, dilation):
    """Reference col2im: every window element added into zeros, one at a time."""
    n = len(kernel)
    lead = c.shape[:c.ndim - 2 * n]
    counts = c.shape[c.ndim - 2 * n:c.ndim - n]
    r = np.zeros(lead + tuple(size), c.dtype)
    for li in itertools.product(*[range(s) for s in lead]):
        for o in itertools.product(*[range(s) for s in counts]):
            for k in itertools.product(*[range(s) for s in kernel]):
                pos = tuple(oi * s + ki * d for oi, ki, s, d in zip(o, k, stride, dilation))
                r[li + pos] += c[li + o + k]
    return r


@pytest.mark.parametrize("npd", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("geom", [((2, 2), (2, 2), (1, 1), (8, 8)),
                                  ((2, 3), (2, 3), (1, 1), (6, 9)),
                                  ((2, 2), (3, 3), (1, 2), (6, 6)),      # dilated, side by side
                                  ((3,), (3,), (1,), (12,)),
                                  ((2, 2), (2, 2), (1, 1), (9, 9)),      # last row/col uncovered
                                  ((2, 2), (1, 1), (1, 1), (5, 5))])     # overlapping
def test_fold_windows_permutation_equals_loop(npd, geom):
    kernel, stride, dilation, size = geom
    n = len(kernel)
    counts = tuple((s - d * (k - 1) - 1) // st + 1
                   for s, k, st, d in zip(size, kernel, stride, dilation))
    shape = (3, 2) + counts + kernel
    rng = np.random.default_rng(1)
    if np.dtype(npd).kind == "f":
        c = _special(rng, shape, npd)
    else:
        c = rng.integers(-50, 50, shape).astype(npd)
    fold = REGISTRY["fold_windows"].numpy
    out = AVal((3, 2) + size, dt.from_numpy(np.dtype(npd)) if hasattr(dt, "from_numpy")
               else {np.float32: dt.float32, np.float64: dt.float64, np.int64: dt.int64}[npd])
    ref = _fold_loop(c, size, kernel, stride, dilation)
    for arr in (c, np.ascontiguousarray(c.transpose(tuple(range(2 + n)) + tuple(
            range(2 + 2 * n - 1, 1 + n, -1)))).transpose(tuple(range(2 + n)) + tuple(
            range(2 + 2 * n - 1, 1 + n, -1)))):        # kernel dims in reversed memory order
        with np.errstate(all="ignore"):
            got = fold(out, arr, size=size, kernel=kernel, stride=stride, dilation=dilation)
        assert got.shape == ref.shape and got.dtype == ref.dtype
        if stride == (1, 1):        # overlapping windows: real sums, in another order
            np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6, equal_nan=True)
            continue
        np.testing.assert_array_equal(_bits(ref), _bits(got))
        if np.dtype(npd).kind == "f":       # -0.0 folded into zeros is +0.0, as 0 + x
            assert not np.signbit(got[got == 0]).any()
