"""Layout primitives: views (reshape, permute, expand, slice, flip, diagonal) and the data
movement their gradients need (slice_scatter, diagonal_scatter, cat, full, arange).
On the CPU, views are NumPy views, so they share memory like PyTorch views do."""
import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register, norm_dim
from .vjp_util import sum_to


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


# reshape -----------------------------------------------------------------------------------

_INFERRED = {}     # (sizes of plain ints, numel) -> shape, for valid requests (view/reshape)


def infer_shape(op, shape, numel, src_shape=None):
    shape = tuple(shape)
    for s in shape:
        if type(s) is not int:      # (2.0 and True hash as 2 and 1: only plain ints memoised)
            return _infer_shape(op, shape, numel, src_shape)
    key = (shape, numel)
    r = _INFERRED.get(key)
    if r is None:
        r = _infer_shape(op, shape, numel, src_shape)
        if len(_INFERRED) < 4096:
            _INFERRED[key] = r
    return r


def _infer_shape(op, shape, numel, src_shape):
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred (shape {list(shape)})")
    for s in shape:
        if not isinstance(s, (int, np.integer)) or (s < 0 and s != -1):
            raise RuntimeError(f"{op}: invalid shape dimension {s} in {list(shape)}")
    if neg:
        rest = _numel(s for s in shape if s != -1)
        if rest == 0 and numel == 0:
            raise RuntimeError(f"{op}: cannot reshape tensor of 0 elements into shape "
                               f"{list(shape)} because the unspecified dimension size -1 can be "
                               f"any value and is ambiguous")
        if rest == 0 or numel % rest:
            raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}"
                               + (f" (input shape {list(src_shape)})" if src_shape is not None else ""))
        shape = tuple(numel // rest if s == -1 else int(s) for s in shape)
    elif _numel(shape) != numel:
        raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}"
                           + (f" (input shape {list(src_shape)})" if src_shape is not None else ""))
    return tuple(int(s) for s in shape)


def _reshape_meta(x, shape):
    return AVal(infer_shape("reshape", shape, _numel(x.shape), x.shape), x.dtype)


def _reshape_np(out, x, shape):
    v = x.view()
    try:
        v.shape = out.shape           # succeeds exactly when the strides allow a view
        return v
    except AttributeError:
        # a copy must not keep a .base (dispatch reads .base as "shares memory with input")
        c = x.copy()
        c.shape = out.shape
        return c


register(Prim("reshape", "view", _reshape_meta, _reshape_np,
              lambda b, g, x, out=None, shape=None: (b.reshape(g, shape=x.shape),),
              saves=(), grad_name="ViewBackward0"))


# permute -----------------------------------------------------------------------------------

def _permute_meta(x, dims):
    n = len(x.shape)
    if len(dims) != n:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not "
                           f"match the length of the desired ordering of dimensions i.e. input.dim() "
                           f"= {n} is not equal to len(dims) = {len(dims)}")
    nd = tuple(norm_dim("permute", d, n) for d in dims)
    if len(set(nd)) != n:
        raise RuntimeError(f"permute(): duplicate dims are not allowed. (dims {list(dims)})")
    return AVal(tuple(x.shape[d] for d in nd), x.dtype)


def _vjp_permute(b, g, x, out=None, dims=None):
    n = len(dims)
    inv = [0] * n
    for i, d in enumerate(dims):
        inv[d % n] = i
    return (b.permute(g, dims=tuple(inv)),)


register(Prim("permute", "view", _permute_meta,
              lambda out, x, dims: np.transpose(x, dims), _vjp_permute, saves=()))


# expand ------------------------------------------------------------------------------------

def _expand_meta(x, shape):
    shape = tuple(shape)
    if len(shape) < len(x.shape):
        raise RuntimeError(f"expand: the number of sizes provided ({len(shape)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({len(x.shape)})")
    lead = len(shape) - len(x.shape)
    out = list(shape[:lead])
    for i, s in enumerate(x.shape):
        t = shape[lead + i]
        if t == -1:
            t = s
        elif s != 1 and s != t:
            raise RuntimeError(f"expand: The expanded size of the tensor ({t}) must match the existing "
                               f"size ({s}) at non-singleton dimension {lead + i}.  Target sizes: "
                               f"{list(shape)}.  Tensor sizes: {list(x.shape)}")
        out.append(t)
    if any(s == -1 for s in out[:lead]):
        raise RuntimeError(f"expand: The expanded size of the tensor (-1) isn't allowed in a "
                           f"leading, non-existing dimension {out.index(-1)} (sizes "
                           f"{list(shape)})")
    bad = next((s for s in out if s < 0), None)
    if bad is not None:
        raise RuntimeError(f"expand: invalid size {bad} in the target sizes {list(shape)} (tensor "
                           f"sizes {list(x.shape)})")
    return AVal(tuple(out), x.dtype)


register(Prim("expand", "view", _expand_meta,
              lambda out, x, shape: np.broadcast_to(x, out.shape),
              lambda b, g, x, out=None, shape=None: (sum_to(b, g, x.shape),),
              saves=()))


# slice (one dim, positive step) --------------------------------------------------------------

def slice_len(size, start, stop, step):
    return len(range(*slice(start, stop, step).indices(size)))


def _slice_meta(x, dim, start, stop, step):
    d = norm_dim("slice", dim, len(x.shape))
    if step <= 0:
        raise ValueError(f"slice: step must be greater than zero (got {step})")
    shape = list(x.shape)
    shape[d] = slice_len(shape[d], start, stop, step)
    return AVal(tuple(shape), x.dtype)


def _slice_np(out, x, dim, start, stop, step):
    if dim == 0 and x.ndim:         # (the common case, without building an index tuple)
        return x[start:stop:step]
    idx = [slice(None)] * x.ndim
    idx[dim] = slice(start, stop, step)
    return x[tuple(idx)]


def _vjp_slice(b, g, x, out=None, dim=0, start=None, stop=None, step=1):
    z = b.full(shape=x.shape, value=0, dtype=g.dtype)
    return (b.slice_scatter(z, g, dim=dim, start=start, stop=stop, step=step),)


register(Prim("slice", "view", _slice_meta, _slice_np, _vjp_slice, saves=()))


def _slice_scatter_meta(base, src, dim, start, stop, step):
    want = _slice_meta(base, dim, start, stop, step).shape
    if tuple(src.shape) != want:
        raise RuntimeError(f"slice_scatter: expected src to have a size equal to the slice of self. "
                           f"src size = {list(src.shape)}, slice size = {list(want)}")
    return AVal(base.shape, base.dtype)


def _slice_scatter_np(out, base, src, dim, start, stop, step):
    r = base.copy()
    idx = [slice(None)] * r.ndim
    idx[dim] = slice(start, stop, step)
    r[tuple(idx)] = src
    return r


def _vjp_slice_scatter(b, g, base, src, out=None, dim=0, start=None, stop=None, step=1):
    gz = b.slice_scatter(g, b.full(shape=src.shape, value=0, dtype=g.dtype),
                         dim=dim, start=start, stop=stop, step=step)
    return (gz, b.slice(g, dim=dim, start=start, stop=stop, step=step))


register(Prim("slice_scatter", "scatter", _slice_scatter_meta, _slice_scatter_np,
              _vjp_slice_scatter, saves=()))


# select (one index of one dim, the dim dropped: x[i], x[:, i], unbind) -----------------------
# One view op instead of slice + reshape (half the eager dispatch). The compiler's passes
# rewrite it as that pair (passes/views.py), so fusion and codegen never see it.

def _select_meta(x, dim, index):
    n = len(x.shape)
    if n == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = norm_dim("select", dim, n)
    size = x.shape[d]
    if index < -size or index >= size:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(x.shape)} at dimension {d}")
    return AVal(x.shape[:d] + x.shape[d + 1:], x.dtype)


def _select_np(out, x, dim, index):
    # (the Ellipsis keeps a 0-d result an array view, not a NumPy scalar)
    if dim == 0:
        return x[index, ...]
    return x[(slice(None),) * (dim % x.ndim) + (index, Ellipsis)]


def _vjp_select(b, g, x, out=None, dim=0, index=0):
    d = dim % len(x.shape)
    i = index % x.shape[d]
    z = b.full(shape=x.shape, value=0, dtype=g.dtype)
    g1 = b.reshape(g, shape=x.shape[:d] + (1,) + x.shape[d + 1:])
    return (b.slice_scatter(z, g1, dim=d, start=i, stop=i + 1, step=1),)


register(Prim("select", "view", _select_meta, _select_np, _vjp_select, saves=(),
              grad_name="SelectBackward0"))


# flip ----------------------------------------------------------------------------------------

def _flip_meta(x, dims):
    nd = [norm_dim("flip", d, len(x.shape)) for d in dims]
    if len(set(nd)) != len(nd):
        raise RuntimeError(f"flip: dim {nd[0] if nd.count(nd[0]) > 1 else sorted(nd)} appears "
                           f"multiple times in the list of dims {list(dims)}")
    return AVal(x.shape, x.dtype)


# torch.flip copies (no negative strides in PyTorch), so the lowering copies too: writes to
# the result must not reach the input. The copy keeps the input's dim order (torch's
# TensorIterator output), contiguous for an expanded input.
def _flip_np(out, x, dims):
    order = "C" if any(s == 0 and n > 1 for s, n in zip(x.strides, x.shape)) else "K"
    return np.flip(x, dims).copy(order=order) if x.ndim else x.copy()


register(Prim("flip", "view", _flip_meta, _flip_np,
              lambda b, g, x, out=None, dims=None: (b.flip(g, dims=dims),), saves=()))


# diagonal ------------------------------------------------------------------------------------

def _diag_meta(x, offset=0, dim1=0, dim2=1):
    n = len(x.shape)
    d1, d2 = norm_dim("diagonal", dim1, n), norm_dim("diagonal", dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    a, c = x.shape[d1], x.shape[d2]
    ln = max(0, min(a, c - offset) if offset >= 0 else min(a + offset, c))
    shape = tuple(s for i, s in enumerate(x.shape) if i not in (d1, d2)) + (ln,)
    return AVal(shape, x.dtype)


def _diag_np(out, x, offset=0, dim1=0, dim2=1):
    v = np.diagonal(x, offset, dim1, dim2)
    if x.flags.writeable:
        # np.diagonal is read-only; torch's diagonal is a writable view (x.diagonal().fill_(0))
        v.setflags(write=True)
    return v


def _vjp_diag(b, g, x, out=None, offset=0, dim1=0, dim2=1):
    z = b.full(shape=x.shape, value=0, dtype=g.dtype)
    return (b.diagonal_scatter(z, g, offset=offset, dim1=dim1, dim2=dim2),)


register(Prim("diagonal", "view", _diag_meta, _diag_np, _vjp_diag, saves=()))


def _diag_scatter_meta(base, src, offset=0, dim1=0, dim2=1):
    want = _diag_meta(base, offset, dim1, dim2).shape
    if tuple(src.shape) != want:
        raise RuntimeError(f"diagonal_scatter: expected src to have a size equal to the diagonal of "
                           f"self. src size = {list(src.shape)}, diagonal size = {list(want)}")
    return AVal(base.shape, base.dtype)


def _diag_scatter_np(out, base, src, offset=0, dim1=0, dim2=1):
    r = base.copy()
    v = np.diagonal(r, offset, dim1, dim2)
    v.setflags(write=True)
    v[...] = src
    return r


def _vjp_diag_scatter(b, g, base, src, out=None, offset=0, dim1=0, dim2=1):
    gz = b.diagonal_scatter(g, b.full(shape=src.shape, value=0, dtype=g.dtype),
                            offset=offset, dim1=dim1, dim2=dim2)
    return (gz, b.diagonal(g, offset=offset, dim1=dim1, dim2=dim2))


register(Prim("diagonal_scatter", "scatter", _diag_scatter_meta, _diag_scatter_np,
              _vjp_diag_scatter, saves=()))


# cat ---------------------------------------------------------------------------------------------

def _cat_meta(*xs, dim=0):
    if not xs:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    ref = next((x for x in xs if not (len(x.shape) == 1 and x.shape[0] == 0)), xs[0])
    n = len(ref.shape)
    i = next((i for i, x in enumerate(xs) if not x.shape), None)
    if i is not None:
        raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated")
    d = norm_dim("cat", dim, n)
    total = 0
    dtype = None
    for i, x in enumerate(xs):
        if len(x.shape) == 1 and x.shape[0] == 0 and n != 1:
            # legacy: empty 1-D tensors are skipped for shapes but still promote the dtype
            dtype = x.dtype if dtype is None else dt.promote_types(dtype, x.dtype)
            continue
        if len(x.shape) != n:
            raise RuntimeError(f"cat: Tensors must have same number of dimensions: got {n} and "
                               f"{len(x.shape)} (shapes {[list(y.shape) for y in xs]})")
        for k in range(n):
            if k != d and x.shape[k] != ref.shape[k]:
                raise RuntimeError(f"cat: Sizes of tensors must match except in dimension {d}. "
                                   f"Expected size {ref.shape[k]} but got size {x.shape[k]} for "
                                   f"tensor number {i} in the list.")
        total += x.shape[d]
        dtype = x.dtype if dtype is None else dt.promote_types(dtype, x.dtype)
    shape = list(ref.shape)
    shape[d] = total
    return AVal(tuple(shape), dtype)


def _cat_np(out, *xs, dim=0):
    npd = out.dtype.np
    xs = [x if x.dtype == npd else x.astype(npd) for x in xs
          if not (x.ndim == 1 and x.shape[0] == 0 and out.ndim != 1)]
    # (torch's cat result is contiguous whatever the inputs' layouts; NumPy follows the inputs')
    return np.asarray(np.concatenate(xs, axis=dim % out.ndim), order="C")


def _vjp_cat(b, g, *xs, out=None, dim=0):
    d = dim % len(g.shape)
    res, pos = [], 0
    for x in xs:
        if len(x.shape) == 1 and x.shape[0] == 0 and len(g.shape) != 1:
            # a skipped empty input: torch still hands it an (empty) gradient
            res.append(b.full(shape=(0,), value=0, dtype=x.dtype) if x.dtype.is_floating_point or
                       x.dtype.is_complex else None)
            continue
        n = x.shape[d]
        gi = b.slice(g, dim=d, start=pos, stop=pos + n, step=1)
        if gi.dtype is not x.dtype and x.dtype.is_floating_point:
            gi = b.cast(gi, dtype=x.dtype)
        res.append(gi)
        pos += n
    return tuple(res)


register(Prim("cat", "concat", _cat_meta, _cat_np, _vjp_cat, saves=()))


# creation (used by gradients and by traced graphs) -------------------------------------------

def _full_meta(shape, value, dtype):
    return AVal(tuple(shape), dtype)


register(Prim("full", "creation", _full_meta,
              lambda out, shape, value, dtype: np.full(out.shape, value, dtype=out.dtype.np),
              differentiable=False))


def _arange_meta(start, end, step, dtype):
    n = max(0, -(-(end - start) // step)) if isinstance(step, int) and isinstance(start, int) and \
        isinstance(end, int) else max(0, int(np.ceil((end - start) / step)))
    return AVal((n,), dtype)


register(Prim("arange", "creation", _arange_meta,
              lambda out, start, end, step, dtype: np.arange(start, end, step).astype(out.dtype.np)[
                  :out.shape[0]],
              differentiable=False))


# complex views -----------------------------------------------------------------------------
# A complex tensor's memory read as reals: torch's real/imag/view_as_real are views, so the
# lowerings return NumPy views over the complex array (writes through them change it).

def _real_dtype(d):
    return d.to_real()


# complex32's storage is complex64 (runtime.dtypes): its parts, pairs and the complex32 of
# float16 pairs are copies, not views (framework.ops_shape writes the parts' writes back)
def _part(x, part, out):
    r = x.real if part == "real" else x.imag
    return r.astype(np.float16) if out.dtype is dt.float16 else r


def _part_meta(name):
    def meta(x):
        if not x.dtype.is_complex:
            raise RuntimeError(f"{name} is not implemented for tensors with non-complex dtypes.")
        return AVal(x.shape, _real_dtype(x.dtype))
    return meta


def _writable(v, x):
    if not x.flags.writeable:
        v.setflags(write=False)
    return v


register(Prim("real", "view", _part_meta("real"), lambda out, x: _part(x, "real", out),
              lambda b, g, x, out=None: (b.cast(g, dtype=x.dtype),), saves=(),
              grad_name="RealBackward0"))
register(Prim("imag", "view", _part_meta("imag"), lambda out, x: _part(x, "imag", out),
              lambda b, g, x, out=None: (b.mul(b.cast(g, dtype=x.dtype), 1j),), saves=(),
              grad_name="ImagBackward0"))


def _view_as_real_meta(x):
    if not x.dtype.is_complex:
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return AVal(tuple(x.shape) + (2,), _real_dtype(x.dtype))


def _view_as_real_np(out, x):
    if out.dtype is dt.float16:
        return dt.chalf_pairs(x)
    r = x.real                       # same strides, real itemsize; the imaginary part follows
    return _writable(np.lib.stride_tricks.as_strided(
        r, x.shape + (2,), r.strides + (r.itemsize,)), x)


def _view_as_complex_meta(x):
    if x.dtype not in (dt.float32, dt.float64, dt.float16):
        raise RuntimeError(f"view_as_complex is only supported for half, float and double "
                           f"tensors, but got a tensor of scalar type: {dt.tname(x.dtype)}")
    if not x.shape or x.shape[-1] != 2:
        raise RuntimeError(f"Tensor must have a last dimension of size 2 (got shape "
                           f"{list(x.shape)})")
    return AVal(tuple(x.shape[:-1]), x.dtype.to_complex())


def _view_as_complex_np(out, x):
    if out.dtype is dt.complex32:
        return dt.chalf_from_pairs(x)
    npd = out.dtype.np
    isz = x.itemsize
    if x.strides[-1] == isz and all(s % (2 * isz) == 0 for s in x.strides[:-1]) and \
            x.__array_interface__["data"][0] % npd.alignment == 0:
        try:
            return x.view(npd)[..., 0]
        except ValueError:
            pass
    # (gradients and traced graphs may hand over other layouts: then a copy, as reshape does)
    c = np.ascontiguousarray(x).view(npd)[..., 0].copy()
    return c


register(Prim("view_as_real", "view", _view_as_real_meta, _view_as_real_np,
              lambda b, g, x, out=None: (b.view_as_complex(g),), saves=(),
              grad_name="ViewAsRealBackward0"))
register(Prim("view_as_complex", "view", _view_as_complex_meta, _view_as_complex_np,
              lambda b, g, x, out=None: (b.view_as_real(g),), saves=(),
              grad_name="ViewAsComplexBackward0"))


# as_strided ----------------------------------------------------------------------------------
# as_strided(x, size, stride, offset): the elements at x_flat0 + offset + sum(i_k * stride_k) of
# the memory x lives in (torch's view over the storage). `offset` counts elements from x's
# first element (the framework turns torch's absolute storage_offset into it); strides are
# element strides of that memory. Eagerly the lowering is a NumPy view over the array that
# owns x's memory, so writes through it reach x; in a gradient or a compiled graph, x is the
# contiguous value itself.

def _as_strided_check(op, size, stride, offset):
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"{op}: mismatch in length of strides and shape (size {list(size)}, "
                           f"stride {list(stride)})")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"{op}: Negative strides are not supported at the moment, got "
                           f"strides: {list(stride)}")
    if any(s < 0 for s in size):
        raise RuntimeError(f"{op}: Trying to create tensor with negative dimension: {list(size)}")
    return size, stride


def as_strided_extent(size, stride, offset):
    """Elements of storage the view needs: offset + 1 + sum((size-1)*stride) (offset if empty)."""
    if any(s == 0 for s in size):
        return offset
    return offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))


def _as_strided_meta(x, size, stride, offset=0):
    size, stride = _as_strided_check("as_strided", size, stride, offset)
    return AVal(size, x.dtype)


def _memory_of(x):
    """(flat contiguous array that owns x's memory, element offset of x in it), or None."""
    root = x
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not root.flags.c_contiguous and root.size and all(s > 0 for s in root.strides):
        # a dense array in another dim order (a column-major result): its memory is the
        # storage, in memory order (ravel('K') is then a view)
        k = root.ravel(order="K")
        if np.may_share_memory(k, root):
            root = k
    if not root.flags.c_contiguous or root.dtype.itemsize != x.itemsize:
        try:
            root = root.view(x.dtype) if root.flags.c_contiguous else None
        except ValueError:
            root = None
        if root is None:
            return None
    flat = root.reshape(-1)
    if flat.dtype != x.dtype:
        flat = flat.view(x.dtype)
    d = x.__array_interface__["data"][0] - flat.__array_interface__["data"][0]
    if d % x.itemsize or x.size and d < 0:
        return None
    return flat, d // x.itemsize


def _as_strided_np(out, x, size, stride, offset=0):
    isz = x.itemsize
    need = as_strided_extent(size, stride, offset)
    mem = _memory_of(x)
    if mem is not None and mem[1] + offset >= 0 and mem[1] + need <= mem[0].shape[0]:
        flat, start = mem[0], mem[1] + offset
        v = np.lib.stride_tricks.as_strided(flat[start:], size, tuple(s * isz for s in stride))
        if not x.flags.writeable:
            v.setflags(write=False)
        return v
    # x's own elements (row-major): a copy when x is not one flat run of memory
    flat = np.ascontiguousarray(x).reshape(-1)
    if offset < 0 or need > flat.shape[0]:
        raise RuntimeError(f"as_strided: sizes {list(size)}, strides {list(stride)}, storage "
                           f"offset {offset} need {need} elements, the input has {flat.shape[0]}")
    return np.lib.stride_tricks.as_strided(flat[offset:], size, tuple(s * isz for s in stride)
                                           ).copy()


def _vjp_as_strided(b, g, x, out=None, size=None, stride=None, offset=0):
    z = b.full(shape=x.shape, value=0, dtype=g.dtype)
    return (b.as_strided_scatter(z, g, size=size, stride=stride, offset=offset, accumulate=True),)


register(Prim("as_strided", "view", _as_strided_meta, _as_strided_np, _vjp_as_strided, saves=(),
              grad_name="AsStridedBackward0"))


def _as_strided_scatter_meta(base, src, size, stride, offset=0, accumulate=False):
    size, stride = _as_strided_check("as_strided_scatter", size, stride, offset)
    n = _numel(base.shape)
    need = as_strided_extent(size, stride, offset)
    if offset < 0 or need > n:
        raise RuntimeError(f"as_strided_scatter: sizes {list(size)}, strides {list(stride)}, storage "
                           f"offset {offset} requiring a storage size of {need} are out of bounds "
                           f"for storage of size {n}")
    if tuple(src.shape) != size:
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(size)}")
    return AVal(base.shape, base.dtype)


def _scatter_positions(size, stride, offset):
    pos = np.full(size, offset, dtype=np.intp)
    for d, (n, s) in enumerate(zip(size, stride)):
        sh = [1] * len(size)
        sh[d] = n
        pos = pos + (np.arange(n, dtype=np.intp) * s).reshape(sh)
    return pos.reshape(-1)


def _as_strided_scatter_np(out, base, src, size, stride, offset=0, accumulate=False):
    """A copy of base (as its row-major elements) with src written at the as_strided positions;
    accumulate adds instead (overlapping positions all add: the gradient of as_strided)."""
    r = np.array(base, dtype=out.dtype.np, order="C")
    flat = r.reshape(-1)
    pos = _scatter_positions(size, stride, offset)
    s = np.asarray(src, dtype=r.dtype).reshape(-1)
    if accumulate:
        np.add.at(flat, pos, s)
    else:
        flat[pos] = s            # (overlaps: the last write wins, as a sequential copy)
    return r


def _vjp_as_strided_scatter(b, g, base, src, out=None, size=None, stride=None, offset=0,
                            accumulate=False):
    gs = b.as_strided(g, size=size, stride=stride, offset=offset)
    if accumulate:
        return (g, gs)
    gz = b.as_strided_scatter(g, b.full(shape=src.shape, value=0, dtype=g.dtype), size=size,
                              stride=stride, offset=offset, accumulate=False)
    return (gz, gs)


register(Prim("as_strided_scatter", "scatter", _as_strided_scatter_meta, _as_strided_scatter_np,
              _vjp_as_strided_scatter, saves=(), grad_name="AsStridedScatterBackward0"))
