"""Indexing primitives: advanced indexing (index / index_put), gather and scatter.

`index(x, *idx, pos)`: x indexed by integer tensors idx placed at dims `pos` (other dims are
whole); NumPy's and PyTorch's advanced-indexing layout rules agree, so x[tuple] is the lowering.
Index values are checked in the lowering (they are data) and raise IndexError naming the op.
"""
import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register, norm_dim, broadcast_shapes, is_scalar
from .vjp_util import sum_to
from ..codegen.triton_pointwise import contiguous_strides


def _check_index_dtype(op, i):
    if i.dtype.category != 1:
        raise IndexError(f"{op}: tensors used as indices must be long, int, byte or bool tensors "
                         f"(got {i.dtype})")


_INDEX_SHAPES = {}     # (x shape, index shapes, pos) -> index_shape's answer


def index_shape(xshape, idx_shapes, pos):
    key = (tuple(xshape), tuple(idx_shapes), tuple(pos))
    try:
        r = _INDEX_SHAPES.get(key)
    except TypeError:        # (a shape given as a list)
        return _index_shape(*key)
    if r is None:
        r = _index_shape(*key)
        if len(_INDEX_SHAPES) < 4096:
            _INDEX_SHAPES[key] = r
    return r


def _index_shape(xshape, idx_shapes, pos):
    if len(idx_shapes) > 1:
        try:
            b = broadcast_shapes("index", *idx_shapes)
        except RuntimeError:      # PyTorch's class for index tensors that do not broadcast
            raise IndexError("shape mismatch: indexing tensors could not be broadcast together "
                             "with shapes " + ", ".join(str(list(s)) for s in idx_shapes)) from None
    else:
        b = tuple(idx_shapes[0])
    adjacent = list(pos) == list(range(pos[0], pos[0] + len(pos)))
    rest = [s for i, s in enumerate(xshape) if i not in pos]
    if adjacent:
        before = [s for i, s in enumerate(xshape) if i < pos[0]]
        after = [s for i, s in enumerate(xshape) if i > pos[-1]]
        return tuple(before) + b + tuple(after)
    return b + tuple(rest)


def _index_meta(x, *idx, pos, check=None):
    for i in idx:
        _check_index_dtype("index", i)
    if len(pos) != len(idx) or (pos and max(pos) >= len(x.shape)):
        raise IndexError(f"index: too many indices for tensor of dimension {len(x.shape)}")
    return AVal(index_shape(x.shape, [i.shape for i in idx], pos), x.dtype)


def index_bounds(i):
    """(min, max) of a non-empty index array. A small host array is read through Python:
    NumPy's reductions cost microseconds a call, more than x[idx] itself."""
    if type(i) is np.ndarray and i.size <= 64:
        v = i.ravel().tolist()
        return min(v), max(v)
    return i.min(), i.max()


def index_range_error(op, lo, hi, dim, size, wraps, check=None, shape=None):
    """The error an index whose values span [lo, hi] raises against a dim of `size`, or None.
    wraps: index / index_put (negative values count from the end: IndexError, as PyTorch's
    advanced indexing); else gather / scatter (RuntimeError; negative values are out of range).
    The NumPy lowerings raise it; eager device kernels, which cannot raise, check the index
    buffer's min and max with it before launching (compiler/codegen/triton_eager.py).
    check: (op name, error class name, the op's dim) of index_select / index_add /
    index_copy, whose index values must lie in [0, size) (the index / index_put node's `check`
    attribute): a compiled program's replay raises what the eager op raised at trace time.
    shape: the indexed tensor's shape, named in a `check` error when known."""
    if check is not None:
        if hi >= size or lo < 0:
            bad = hi if hi >= size else lo
            cls = IndexError if check[1] == "IndexError" else RuntimeError
            return cls(f"{check[0]}(): index {bad} is out of bounds for dimension {check[2]} "
                       f"with size {size}"
                       + (f" (input shape {list(shape)})" if shape is not None else ""))
        return None
    if wraps:
        if hi >= size or lo < -size:
            bad = hi if hi >= size else lo
            return IndexError(f"{op}: index {bad} is out of bounds for dimension {dim} with "
                              f"size {size}")
    elif hi >= size or lo < 0:
        bad = hi if hi >= size else lo
        return RuntimeError(f"{op}(): index {bad} is out of bounds for dimension {dim} with "
                            f"size {size}")
    return None


def _np_tuple(op, x, idx, pos, check=None):
    t = [slice(None)] * x.ndim
    for p, i in zip(pos, idx):
        if i.size:
            e = index_range_error(op, *index_bounds(i), p, x.shape[p], True, check, x.shape)
            if e is not None:
                raise e
        t[p] = i
    return tuple(t)


def _empty_result(x, idx, pos):
    """The indexed result has no elements: PyTorch reads no index value then, so out-of-range
    ones raise nothing (x[2:1, [0, 5]] on 3 rows is an empty tensor); an index into a dim of
    size 0 is refused even then, unless the index tensors broadcast to no positions."""
    if len(idx) == 1 and x.size and idx[0].size:    # (one index, nothing empty: the usual)
        return False
    if 0 not in index_shape(x.shape, [i.shape for i in idx], pos):
        return False
    for p, i in zip(pos, idx):
        if x.shape[p] == 0 and 0 not in np.broadcast_shapes(*(j.shape for j in idx)):
            raise index_range_error("index", i.min(), i.max(), p, 0, True)
    return True


def _index_np(out, x, *idx, pos, check=None):
    if _empty_result(x, idx, pos):
        return np.empty(index_shape(x.shape, [i.shape for i in idx], pos), x.dtype)
    r = np.asarray(x[_np_tuple("index", x, idx, pos, check)])
    # NumPy's advanced indexing hands back its own dim order (x[:, [0, 1]] of a matrix is
    # column-major); torch's result has the layout its TensorIterator picks from the input's
    # and the indices' strides (contiguous for a contiguous input)
    if x.flags.c_contiguous and (idx[0].flags.c_contiguous if len(idx) == 1 else
                                 all(i.flags.c_contiguous for i in idx)):
        # row-major (_index_layout's answer there, without its cost), size-1 dims included
        if not r.flags.c_contiguous or (1 in r.shape and r.strides != _c_strides(r.shape,
                                                                                 r.itemsize)):
            o = np.empty(r.shape, r.dtype)
            np.copyto(o, r)
            return o
        return r
    st = _index_layout(x, idx, pos, r.shape)
    if r.strides != st:
        o = np.lib.stride_tricks.as_strided(np.empty(r.size, r.dtype), r.shape, st)
        o[...] = r
        return o
    return r


def _c_strides(shape, itemsize):
    """Row-major byte strides (the element strides every codegen path uses, times itemsize)."""
    return tuple(s * itemsize for s in contiguous_strides(shape))


def _index_layout(x, idx, pos, shape):
    """The byte strides of torch's x[idx] (advanced indices idx at dims pos) for the result
    shape: the index kernel is a TensorIterator over x restrided to the result (stride 0 on
    the indexed dims, which move to the front when they are not adjacent) and the broadcast
    indices, so the output follows their dim order (TensorIterator::reorder_dimensions)."""
    isz = x.itemsize
    if len(shape) < 2 or 0 in shape:
        return _c_strides(shape, isz)
    nb = len(shape) - (x.ndim - len(pos))           # dims of the broadcast indices
    adjacent = list(pos) == list(range(pos[0], pos[0] + len(pos)))
    rest = [k for k in range(x.ndim) if k not in pos]
    before = [k for k in rest if k < pos[0]] if adjacent else []
    after = [k for k in rest if k not in before]
    xs = tuple(x.strides[k] for k in before) + (0,) * nb + tuple(x.strides[k] for k in after)
    ops = [xs]
    for i in idx:                                   # each index broadcast to the result
        lead = nb - i.ndim
        bs = tuple(0 if i.shape[k] == 1 and shape[len(before) + lead + k] != 1 else i.strides[k]
                   for k in range(i.ndim))
        ops.append((0,) * (len(before) + lead) + bs + (0,) * len(after))
    # TensorIterator's fast path: every operand of the result's shape and contiguous
    same = not before and not after and all(i.shape == tuple(shape) for i in idx)
    if same and all(_torch_contig(shape, op, sz) for op, sz in
                    zip(ops, [isz] + [i.itemsize for i in idx])):
        return _c_strides(shape, isz)
    return iter_strides(shape, ops, isz)


def iter_strides(shape, ops, isz):
    """TensorIterator::reorder_dimensions: byte strides of a dense result of `shape` whose dims
    are in the order the operands' strides `ops` (each at the result's shape, 0 on broadcast
    dims) give: for each pair of dims the first operand with non-zero strides there decides
    (equal strides: the smaller dim goes inside), ties keep the row-major order."""
    n = len(shape)

    def swap(d0, d1):      # 1: d0 goes after (is slower than) d1, -1: before, 0: no opinion
        for op in ops:
            s0, s1 = op[d0], op[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 != s1:
                return -1 if s0 < s1 else 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(n - 1, -1, -1))               # fastest dim first
    for i in range(1, n):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    if perm == list(range(n - 1, -1, -1)):
        return _c_strides(shape, isz)
    st, acc = [0] * n, isz
    for d in perm:
        st[d] = acc
        acc *= shape[d]
    return tuple(st)


def _torch_contig(shape, strides, isz):
    acc = isz
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1:
            if s != acc:
                return False
            acc *= n
    return True


def _vjp_index(b, g, x, *idx, out=None, pos=None, check=None):
    z = b.full(shape=x.shape, value=0, dtype=g.dtype)
    return (b.index_put(z, g, *idx, pos=pos, accumulate=True),) + (None,) * len(idx)


register(Prim("index", "gather", _index_meta, _index_np, _vjp_index, saves=tuple(range(1, 64)),
              grad_name="IndexBackward0"))


def _index_put_meta(x, v, *idx, pos, accumulate=False, check=None):
    for i in idx:
        _check_index_dtype("index_put", i)
    if not is_scalar(v):
        target = index_shape(x.shape, [i.shape for i in idx], pos)
        try:
            broadcast_shapes("index_put", target, tuple(v.shape))
        except RuntimeError:
            raise RuntimeError(f"index_put: shape mismatch: value tensor of shape {list(v.shape)} "
                               f"cannot be broadcast to indexing result of shape {list(target)}") from None
        if broadcast_shapes("index_put", target, tuple(v.shape)) != tuple(target):
            raise RuntimeError(f"index_put: shape mismatch: value tensor of shape {list(v.shape)} "
                               f"cannot be broadcast to indexing result of shape {list(target)}")
    return AVal(x.shape, x.dtype)


def _index_put_np(out, x, v, *idx, pos, accumulate=False, check=None):
    r = x.copy()
    if _empty_result(x, idx, pos):
        return r
    t = _np_tuple("index_put", x, idx, pos, check)
    if type(v) is np.ndarray and v.dtype != r.dtype:
        v = v.astype(r.dtype)
    if accumulate:
        np.add.at(r, t, v)
    else:
        r[t] = v
    return r


def _vjp_index_put(b, g, x, v, *idx, out=None, pos=None, accumulate=False, check=None):
    gx = g if accumulate else b.index_put(g, 0.0, *idx, pos=pos, accumulate=False)
    gv = None
    if not is_scalar(v):
        gv = sum_to(b, b.index(g, *idx, pos=pos), v.shape)
    return (gx, gv) + (None,) * len(idx)


register(Prim("index_put", "scatter", _index_put_meta, _index_put_np, _vjp_index_put,
              saves=tuple(range(2, 64)), grad_name="IndexPutBackward0"))


# gather / scatter ------------------------------------------------------------------------------

def _gs_check(op, x, index, dim, src=None):
    n = len(x.shape)
    d = norm_dim(op, dim, n)
    if index.dtype is not dt.int64 and index.dtype is not dt.int32:
        raise RuntimeError(f"{op}(): Expected dtype int32/int64 for index (got {index.dtype})")
    if len(index.shape) != n and not (n == 0 and len(index.shape) <= 1):
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as "
                           f"{'input' if op == 'gather' else 'self'} tensor (index shape "
                           f"{list(index.shape)}, input shape {list(x.shape)})")
    if op == "gather":
        for k in range(n):
            if k != d and index.shape[k] > x.shape[k]:
                raise RuntimeError(f"{op}(): Size does not match at dimension {k} expected index "
                                   f"{list(index.shape)} to be no larger than self "
                                   f"{list(x.shape)} apart from dimension {d}")
    else:
        has_src = src is not None and not is_scalar(src)
        if any((k != d and index.shape[k] > x.shape[k]) or
               (has_src and index.shape[k] > src.shape[k]) for k in range(n)):
            raise RuntimeError(f"{op}(): Expected index {list(index.shape)} to be no larger than "
                               f"self {list(x.shape)} apart from dimension {d}" +
                               (f" and to be no larger size than src {list(src.shape)}"
                                if has_src else ""))
    return d


def _full_index(op, x, index, dim):
    _full_index_check(op, x, index, dim)
    grids = list(np.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


_BASE = {}      # (x shape, index shape, dim) -> flat offsets of every index position but dim's


def _flat_index(op, x, index, dim):
    """Positions in x.reshape(-1) (C order) that gather/scatter with `index` along `dim` read or
    write, as one int array of index's shape: the same elements _full_index selects, computed as
    base + index * stride, so a 1-D take / fancy assignment replaces N-D advanced indexing (many
    times cheaper for small rows, e.g. pooling windows)."""
    _full_index_check(op, x, index, dim)
    key = (x.shape, index.shape, dim)
    hit = _BASE.get(key)
    if hit is None:
        strides = [1] * x.ndim
        for k in range(x.ndim - 2, -1, -1):
            strides[k] = strides[k + 1] * x.shape[k + 1]
        base = np.zeros(index.shape, np.intp)
        for k, n in enumerate(index.shape):
            if k != dim and n > 1:
                shp = [1] * index.ndim
                shp[k] = n
                base += (np.arange(n, dtype=np.intp) * strides[k]).reshape(shp)
        base.setflags(write=False)
        if len(_BASE) > 256:
            _BASE.clear()
        hit = _BASE[key] = (base, strides[dim])
    base, stride = hit
    i = index.astype(np.intp, copy=False)
    if stride != 1:
        i = i * stride
    return np.add(i, base)


def _full_index_check(op, x, index, dim):
    if index.size:
        e = index_range_error(op, index.min(), index.max(), dim, x.shape[dim] if x.ndim else 1,
                              False)
        if e is not None:
            raise e


def _gather_meta(x, index, dim):
    _gs_check("gather", x, index, dim)
    return AVal(index.shape, x.dtype)


def _gather_np(out, x, index, dim):
    if x.ndim == 0:
        return x.reshape(index.shape).copy()
    return np.take(x.reshape(-1), _flat_index("gather", x, index, dim))


def _vjp_gather(b, g, x, index, out=None, dim=0):
    nd = len(x.shape)
    if nd and dim % nd == nd - 1 and tuple(index.shape[:-1]) == tuple(x.shape[:-1]):
        # along the last dim each row is a plane: one plane_scatter (zeros plus the adds, one
        # kernel on a GPU) instead of a full and a scatter (cross_entropy's backward)
        return (b.plane_scatter(g, index, size=(x.shape[-1],), unique=index.shape[-1] == 1),
                None)
    z = b.full(shape=x.shape, value=0, dtype=g.dtype)
    return (b.scatter(z, index, g, dim=dim, reduce="add"), None)


register(Prim("gather", "gather", _gather_meta, _gather_np, _vjp_gather, saves=(1,)))


def _scatter_meta(x, index, src, dim, reduce=None):
    _gs_check("scatter", x, index, dim, src)
    if reduce not in (None, "add", "multiply", "sum", "prod", "mean", "amax", "amin"):
        raise RuntimeError(f"scatter(): reduce argument must be either add or multiply (got {reduce!r})")
    return AVal(x.shape, x.dtype)


def _scatter_np(out, x, index, src, dim, reduce=None):
    r = x.copy()
    if x.ndim == 0:
        return r
    if type(src) is np.ndarray:
        src = src[tuple(slice(0, s) for s in index.shape)].astype(r.dtype, copy=False)
    if reduce in (None, "add", "sum") and index.shape[dim] == 1:
        # one index per row along dim: every target is distinct, so a 1-D fancy assignment
        # into the flat copy does what the N-D scatter (and ufunc.at) does
        lin = _flat_index("scatter", x, index, dim).reshape(-1)
        rf = r.reshape(-1)              # r is a fresh C-contiguous copy: a view
        v = src.reshape(-1) if type(src) is np.ndarray else src
        if reduce is None:
            rf[lin] = v
        else:
            rf[lin] += v
        return r
    t = _full_index("scatter", x, index, dim)
    if reduce is None:
        r[t] = src
    elif reduce in ("add", "sum"):
        np.add.at(r, t, src)
    elif reduce in ("multiply", "prod"):
        np.multiply.at(r, t, src)
    elif reduce == "amax":
        np.maximum.at(r, t, src)
    elif reduce == "amin":
        np.minimum.at(r, t, src)
    else:
        raise RuntimeError(f"scatter(): reduce={reduce!r} is not supported by this op")
    return r


def _vjp_scatter(b, g, x, index, src, out=None, dim=0, reduce=None):
    if reduce in ("add", "sum"):
        gx = g
    elif reduce is None:
        gx = b.scatter(g, index, 0.0, dim=dim)
    else:
        raise NotImplementedError(f"scatter: no gradient for reduce={reduce!r}")
    gs = None
    if not is_scalar(src):
        gs = b.gather(g, index, dim=dim)
        if tuple(gs.shape) != tuple(src.shape):   # src larger than index: rest gets 0
            gs = _pad_to(b, gs, src.shape)
    return (gx, None, gs)


def _pad_to(b, g, shape):
    for k, (have, want) in enumerate(zip(g.shape, shape)):
        if have != want:
            z = b.full(shape=tuple(g.shape[:k]) + (want,) + tuple(g.shape[k + 1:]), value=0,
                       dtype=g.dtype)
            g = b.slice_scatter(z, g, dim=k, start=0, stop=have, step=1)
    return g


register(Prim("scatter", "scatter", _scatter_meta, _scatter_np, _vjp_scatter, saves=(1,)))


# class_index(t, classes, ignore_index, one_hot=False) -> t: class targets of nll_loss /
# cross_entropy (or one_hot's class values), checked. On the host (eager on any device, and
# NumPy programs) a value outside [0, classes) other than ignore_index raises PyTorch's error
# (class_index_error) before anything reads it; in a compiled Triton kernel it is the
# identity, and the program checks its target inputs with a separate device kernel first
# (compiler/codegen/triton_checks.py; on 'cuda' reported at the next sync).
def class_index_error(bad, classes, one_hot=False):
    """The error for an out-of-range class value: for class targets `bad` is the first bad
    one; for one_hot the smallest (PyTorch checks min >= 0 before max < num_classes)."""
    if one_hot:
        if bad < 0:
            return RuntimeError(f"Class values must be non-negative. (one_hot: got class {bad})")
        return RuntimeError(f"Class values must be smaller than num_classes. (one_hot: got "
                            f"class {bad}, num_classes {classes})")
    return IndexError(f"Target {bad} is out of bounds.")


def _class_index_meta(t, classes, ignore_index, one_hot=False):
    if t.dtype is not dt.int64:
        raise RuntimeError(f"class_index: expected int64 class targets, got {t.dtype} "
                           f"(shape {list(t.shape)})")
    return AVal(tuple(t.shape), t.dtype)


def _class_index_np(out, t, classes, ignore_index, one_hot=False):
    # one reduction when every target is a class (negatives read as huge unsigned values); the
    # full test only when some is not (ignore_index, or an error to report)
    if t.size and t.view(np.uint64).max() >= classes:
        bad = (t != ignore_index) & ((t < 0) | (t >= classes))
        if bad.any():
            v = t[bad]
            raise class_index_error(int(v.min() if one_hot else v.reshape(-1)[0]), classes,
                                    one_hot)
    return t.copy()       # a value of its own: the memory planner treats the result as fresh


register(Prim("class_index", "pointwise", _class_index_meta, _class_index_np, triton="{0}",
              saves=(), differentiable=False,
              doc="class targets checked against [0, classes) (ignore_index exempt)"))
