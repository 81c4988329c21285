"""Indexing: x[...] and x[...] = v, gather/scatter family, masked ops, nonzero, take.

Integers, slices, None and Ellipsis are applied first as views (PyTorch treats ints as basic
indexing); remaining integer/boolean tensors become one `index` primitive."""
import numpy as np

from compiler.ir.registry import REGISTRY, norm_dim
from runtime import dtypes as dt
from ._dispatch import apply, rename, STATE, wrap
from .tensor import Tensor

P = REGISTRY


def _as_index_tensor(i):
    from .creation import tensor
    if isinstance(i, Tensor):
        return i
    return tensor(i)


def _expand_index(x, idx):
    if not isinstance(idx, tuple):
        idx = (idx,)
    # count dims consumed (bool masks consume their ndim)
    consumed = 0
    for i in idx:
        if i is None or i is Ellipsis:
            continue
        if isinstance(i, Tensor) and i._dtype is dt.bool_:
            consumed += i.ndim
        elif isinstance(i, (list, np.ndarray)) and np.asarray(i).dtype == np.bool_:
            consumed += np.asarray(i).ndim
        else:
            consumed += 1
    if consumed > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim} (got {consumed} "
                         f"indices for shape {list(x.shape)})")
    if sum(1 for i in idx if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    out = []
    for i in idx:
        if i is Ellipsis:
            out.extend([slice(None)] * (x.ndim - consumed))
        else:
            out.append(i)
    if Ellipsis not in idx:
        out.extend([slice(None)] * (x.ndim - consumed))
    return out


def getitem(x, idx):
    from .ops_shape import reshape
    items = _expand_index(x, idx)
    # pass 1: basic indexing as views; collect advanced indices with their result dims
    r = x
    dim = 0
    adv = []          # (dim in r, index tensor)
    new_shape_ops = []
    for i in items:
        if i is None:
            shp = r._data.shape
            r = apply(P["reshape"], r, shape=shp[:dim] + (1,) + shp[dim:])
            dim += 1
        elif isinstance(i, slice):
            size = r._data.shape[dim]
            start, stop, step = i.start, i.stop, i.step
            if step is not None and step <= 0:
                raise ValueError("step must be greater than zero")
            if isinstance(start, Tensor):
                start = int(start)
            if isinstance(stop, Tensor):
                stop = int(stop)
            if not (start in (None, 0) and stop is None and step in (None, 1)):
                s0, s1, st = slice(start, stop, step).indices(size)
                r = apply(P["slice"], r, dim=dim, start=s0, stop=max(s1, s0), step=st)
            dim += 1
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool) or \
                (isinstance(i, Tensor) and i.ndim == 0 and i._dtype.category == 1):
            i = int(i)
            size = r._data.shape[dim]
            if i < -size or i >= size:
                raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {size}")
            i %= size
            s = apply(P["slice"], r, dim=dim, start=i, stop=i + 1, step=1)
            shp = s._data.shape
            r = apply(P["reshape"], s, shape=shp[:dim] + shp[dim + 1:])
        else:
            t = _as_index_tensor(i)
            if t._dtype is dt.bool_ or (isinstance(i, bool)):
                if isinstance(i, bool):
                    t = _as_index_tensor([i])
                    shp = r._data.shape
                    r = apply(P["reshape"], r, shape=shp[:dim] + (1,) + shp[dim:])
                # mask over t.ndim dims -> integer tensors (a data-dependent shape)
                for k in range(t.ndim):
                    if t._data.shape[k] != r._data.shape[dim + k]:
                        raise IndexError(f"The shape of the mask {list(t.shape)} at index {k} does "
                                         f"not match the shape of the indexed tensor "
                                         f"{list(r.shape)} at index {dim + k}")
                nz = np.nonzero(t._data)
                for k, a in enumerate(nz):
                    adv.append((dim + k, wrap(a.astype(np.int64), dt.int64)))
                dim += t.ndim
            else:
                if t._dtype.category != 1:
                    raise IndexError("tensors used as indices must be long, int, byte or bool "
                                     f"tensors (got {t._dtype})")
                adv.append((dim, t))
                dim += 1
    if not adv:
        if r is x:    # x[...] or x[:] is still a new view object
            r = apply(P["reshape"], x, shape=x._data.shape)
        return r
    pos = tuple(d for d, _ in adv)
    return apply(P["index"], r, *[t for _, t in adv], pos=pos)


def _np_index(x, idx):
    """Translate a torch index into a NumPy one for direct writes (no autograd involved)."""
    items = _expand_index(x, idx)
    out = []
    for i in items:
        if isinstance(i, Tensor):
            if i.ndim == 0 and i._dtype.category == 1:
                out.append(int(i))
            else:
                out.append(i._data)
        elif isinstance(i, list):
            out.append(np.asarray(i))
        else:
            out.append(i)
    # torch treats ints as basic indexing: emulate by converting ints next to advanced ones
    return tuple(out)


def setitem(x, idx, value):
    from .ops_math import as_tensor_arg, check_inplace_leaf
    v = as_tensor_arg(value)
    if isinstance(v, Tensor) and v._dtype.category > x._dtype.category and x._dtype.category < 2:
        pass   # torch silently casts on __setitem__
    needs = STATE.grad_enabled and (x.requires_grad or (isinstance(v, Tensor) and v.requires_grad))
    if not needs:
        npi = _np_index(x, idx)
        try:
            target_shape = x._data[npi].shape
            src = v._data if isinstance(v, Tensor) else v
            if isinstance(v, Tensor):
                b = np.broadcast_shapes(target_shape, src.shape)
                if b != target_shape:
                    raise ValueError
            x._data[npi] = src
        except ValueError:
            raise RuntimeError(f"setitem: shape mismatch: value tensor of shape "
                               f"{list(v.shape) if isinstance(v, Tensor) else []} cannot be broadcast "
                               f"to indexing result of shape {list(target_shape)}") from None
        except IndexError as e:
            raise IndexError(f"setitem: {e} (tensor shape {list(x.shape)})") from None
        x._bump()
        return
    check_inplace_leaf(x)
    # functional form: positions of the indexed elements in x, flattened, then index_put
    pos_arr = np.arange(x._data.size).reshape(x._data.shape)[_np_index(x, idx)]
    flat_idx = wrap(np.asarray(pos_arr, np.int64).reshape(np.shape(pos_arr)), dt.int64)
    flat = apply(P["reshape"], x._snapshot(), shape=(x._data.size,))
    if isinstance(v, Tensor) and v._dtype is not x._dtype:
        v = apply(P["cast"], v, dtype=x._dtype)
    newflat = apply(P["index_put"], flat, v, flat_idx, pos=(0,), accumulate=False)
    r = apply(P["reshape"], newflat, shape=x._data.shape)
    np.copyto(x._data, r._data, casting="unsafe")
    x._node, x._oi = r._node, r._oi
    rename(x, "CopySlices")
    x._bump()


def _snapshot(self):
    old = wrap(self._data.copy(), self._dtype)
    old._node, old._oi, old._rg = self._node, self._oi, self._rg and self._node is None
    return old


Tensor._snapshot = _snapshot


def index_select(input, dim, index, *, out=None):
    from .ops_math import write_out
    d = norm_dim("index_select", dim, input.ndim)
    if index.ndim > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector (got shape "
                         f"{list(index.shape)})")
    if input.ndim == 0:
        return input.clone()
    idx = index if index.ndim == 1 else index.reshape(1)
    return write_out(rename(apply(P["index"], input, idx, pos=(d,)), "IndexSelectBackward0"), out)


def masked_fill(input, mask, value):
    from .ops_math import as_tensor_arg
    if mask._dtype is not dt.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{mask._dtype}")
    v = as_tensor_arg(value)
    if isinstance(v, Tensor) and v.ndim:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor "
                           f"with {v.ndim} dimension(s).")
    r = apply(P["where"], mask, v, input)
    if r._dtype is not input._dtype:
        r = apply(P["cast"], r, dtype=input._dtype)
    if r.shape != input.shape:
        raise RuntimeError(f"masked_fill: mask of shape {list(mask.shape)} can't be broadcast to "
                           f"input of shape {list(input.shape)}")
    return rename(r, "MaskedFillBackward0")


def masked_select(input, mask):
    from .ops_shape import broadcast_tensors
    x, m = broadcast_tensors(input, mask)
    return getitem(x, m)


def gather(input, dim, index, *, sparse_grad=False, out=None):
    from .ops_math import write_out
    return write_out(apply(P["gather"], input, index, dim=norm_dim("gather", dim, max(input.ndim, 1))),
                     out)


def take_along_dim(input, indices, dim=None):
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    from .ops_shape import broadcast_shapes
    return gather(input, dim, indices)


def _scatter_src(src, value):
    from .ops_math import as_tensor_arg
    if src is None and value is None:
        raise TypeError("scatter() missing required argument 'src' or 'value'")
    s = src if src is not None else value
    s = as_tensor_arg(s)
    return s


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    s = _scatter_src(src, value)
    if isinstance(s, Tensor) and s._dtype is not input._dtype:
        s = apply(P["cast"], s, dtype=input._dtype)
    return apply(P["scatter"], input, index, s, dim=norm_dim("scatter", dim, max(input.ndim, 1)),
                 reduce=reduce)


def scatter_add(input, dim, index, src):
    return scatter(input, dim, index, src, reduce="add")


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    if not include_self:
        raise NotImplementedError("scatter_reduce: include_self=False is not supported yet")
    if reduce == "mean":
        from .ops_math import div
        from .creation import ones_like
        s = scatter(input, dim, index, src, reduce="sum")
        c = scatter(ones_like(input), dim, index, ones_like(src), reduce="sum")
        return div(s, c)
    return scatter(input, dim, index, src, reduce=reduce)


def index_add(input, dim, index, source, *, alpha=1):
    d = norm_dim("index_add", dim, input.ndim)
    src = source if alpha == 1 else apply(P["mul"], source, alpha)
    if src._dtype is not input._dtype:
        src = apply(P["cast"], src, dtype=input._dtype)
    return apply(P["index_put"], input, src, index, pos=(d,), accumulate=True) if d == 0 else \
        _index_put_dim(input, src, index, d, True)


def _index_put_dim(input, src, index, d, accumulate):
    from .ops_shape import movedim
    xm = movedim(input, d, 0)
    sm = movedim(src, d, 0)
    r = apply(P["index_put"], xm, sm, index, pos=(0,), accumulate=accumulate)
    return movedim(r, 0, d)


def index_copy(input, dim, index, source):
    d = norm_dim("index_copy", dim, input.ndim)
    return _index_put_dim(input, source, index, d, False)


def index_fill(input, dim, index, value):
    d = norm_dim("index_fill", dim, input.ndim)
    from .ops_shape import movedim
    xm = movedim(input, d, 0)
    r = apply(P["index_put"], xm, value, index, pos=(0,), accumulate=False)
    return movedim(r, 0, d)


def take(input, index):
    from .ops_shape import reshape
    return apply(P["index"], reshape(input, (-1,)), index, pos=(0,))


def nonzero(input, *, as_tuple=False):
    from .ops_math import _t
    input = _t(input)
    r = apply(P["nonzero"], input)
    if as_tuple:
        if input.ndim == 0:
            return (wrap(np.zeros(int(bool(input._data)), np.int64), dt.int64),)
        return tuple(wrap(np.ascontiguousarray(r._data[:, k]), dt.int64) for k in range(input.ndim))
    return r


def argwhere(input):
    return nonzero(input)


def put_(input, index, source, accumulate=False):
    from .ops_shape import reshape
    flat = reshape(input, (-1,))
    r = apply(P["index_put"], flat, reshape(source, (-1,)), reshape(index, (-1,)), pos=(0,),
              accumulate=accumulate)
    np.copyto(input._data, r._data.reshape(input._data.shape))
    input._bump()
    return input
