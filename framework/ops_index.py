"""Indexing: x[...] and x[...] = v, gather/scatter family, masked ops, nonzero, take.

Integers, slices, None and Ellipsis are applied first as views (PyTorch treats ints as basic
indexing); remaining integer/boolean tensors become one `index` primitive."""
import builtins
import warnings

import numpy as np

from compiler.ir.registry import REGISTRY, norm_dim
from compiler.ops.indexing import index_bounds
from runtime import dtypes as dt
from runtime.device import cpu
from ._dispatch import apply, rename, STATE, values, wrap, wrap_like, saved_extra
from . import _dispatch
from .tensor import Tensor
from .ops_math import write_out, store     # (here, not in each op: an import per call costs ~3 us)

P = REGISTRY


_BAD_INDEX = ("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
              "valid indices")


def _batched(a):
    """A per-sample value under vmap: a 0-d index there is an index tensor, not a Python int."""
    from .func._batched import BatchedArray
    return type(a) is BatchedArray


def _canon_item(i):
    """One user index item -> int, slice, None, Ellipsis, bool, or an integer/bool ndarray."""
    if i is None or i is Ellipsis or isinstance(i, slice):
        return i
    if isinstance(i, (bool, np.bool_)):
        return bool(i)
    if isinstance(i, (int, np.integer)):
        return int(i)
    if isinstance(i, Tensor):
        a = i._data
        if (i._dtype.category != 1 and i._dtype is not dt.bool_) or \
                (i._dtype.barebones and a.ndim):          # (a 0-d one is an int)
            raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors "
                             f"(got {i._dtype})")
        if i._dtype is dt.bool_ or i._dtype is dt.uint8 or (a.ndim == 0 and
                                                            not _batched(a)):
            # a mask's positions and a 0-d index are values Python reads: under compile() the
            # trace is specialised to them (values() records it), never replayed with others
            a = values(i)
            if i._dtype is dt.bool_ or i._dtype is dt.uint8:   # uint8 indices are masks, like torch
                if i._dtype is dt.uint8:
                    _warn_uint8_index()
                return bool(a) if a.ndim == 0 else a.astype(np.bool_, copy=False)
            return int(a)
        return a        # an index tensor: its buffer (int32 ones are cast by a traced op)
    if isinstance(i, (list, tuple, np.ndarray)):
        a = np.asarray(i)
        if a.size == 0 and a.dtype.kind == "f":
            a = a.astype(np.int64)            # x[[]] selects nothing, like torch
        if a.dtype.kind == "b":
            return a
        if a.dtype.kind not in "iu":
            raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors "
                             f"(got {a.dtype})")
        return a.astype(np.int64, copy=False)
    if isinstance(i, float):
        raise IndexError(f"{_BAD_INDEX} (got float)")
    raise TypeError(f"{_BAD_INDEX} (got {type(i).__name__})")


def _plan(shape, idx, defer_bounds=False):
    """Translate a torch index into steps on a progressively indexed result.

    Returns (steps, adv): steps are ("unsq", d) | ("slice", d, start, stop, step) |
    ("select", d, i) applied in order (all views; ints are basic indexing like torch), and
    adv is a list of (d, int64 array) advanced indices on the result of the steps.
    defer_bounds: return (steps, adv, err) instead of raising err, the IndexError of an
    out-of-range index tensor value (setitem checks the value's dtype and shape first)."""
    if isinstance(idx, list) and len(idx) < 32 and builtins.any(
            isinstance(i, (list, tuple, Tensor, slice, np.ndarray)) or i is None or i is Ellipsis
            for i in idx):
        idx = tuple(idx)       # torch (like old NumPy) reads such a list as a tuple of indices
    items = [_canon_item(i) for i in (idx if isinstance(idx, tuple) else (idx,))]
    consumed = 0
    for i in items:
        if isinstance(i, np.ndarray) and i.dtype == np.bool_:
            consumed += i.ndim
        elif not (i is None or i is Ellipsis or isinstance(i, bool)):
            consumed += 1
    nd = len(shape)
    if nd == 0 and isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                         "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
    if nd == 0 and isinstance(idx, slice):
        raise IndexError("slice() cannot be applied to a 0-dim tensor.")
    if consumed > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd} (got {consumed} indices "
                         f"for shape {list(shape)})")
    # (several Ellipsis items are allowed, as in torch: each one skips the unnamed dims)
    steps, adv = [], []
    cur = list(shape)          # shape of the result so far
    d = 0                      # next dim of the result to index
    # advanced-index errors are raised after every basic item is read (torch's order: a bad
    # slice step first), and an out-of-range index value only when the result has elements
    mask_err, bounds = None, []
    for i in items:
        if i is Ellipsis:
            d += nd - consumed
        elif isinstance(i, slice) and d >= len(cur) and i.start is None and i.stop is None \
                and i.step in (None, 1):
            d += 1                 # a whole-dim slice is a no-op torch never checks
        elif d > len(cur) or (d == len(cur) and not (i is None or isinstance(i, bool))):
            raise IndexError(f"too many indices for tensor of dimension {nd} (index {d} of a "
                             f"result of shape {list(cur)}; tensor shape {list(shape)})")
        elif i is None:
            steps.append(("unsq", d))
            cur.insert(d, 1)
            d += 1
        elif isinstance(i, bool):
            steps.append(("unsq", d))
            cur.insert(d, 1)
            adv.append((d, np.zeros(1 if i else 0, np.int64)))
            d += 1
        elif isinstance(i, int):
            size = cur[d]
            if i < -size or i >= size:
                raise IndexError(f"index {i} is out of bounds for dimension {d} with size {size} "
                                 f"(tensor shape {list(shape)})")
            steps.append(("select", d, i % size, i))
            del cur[d]
        elif isinstance(i, slice):
            st = 1 if i.step is None else int(i.step)
            if st == 0:
                raise ValueError("slice step cannot be zero")     # (Python's slice message)
            if st < 0:
                raise ValueError(f"step must be greater than zero (got {st})")
            start = None if i.start is None else int(i.start)
            stop = None if i.stop is None else int(i.stop)
            s0, s1, st = slice(start, stop, st).indices(cur[d])
            s1 = builtins.max(s0, s1)
            if (s0, s1, st) != (0, cur[d], 1):
                steps.append(("slice", d, s0, s1, st, start, stop))
                cur[d] = len(range(s0, s1, st))
            d += 1
        elif i.dtype == np.bool_:
            k = i.ndim
            for j in range(k):
                if mask_err is None and (d + j >= len(cur) or i.shape[j] != cur[d + j]):
                    mask_err = IndexError(
                        f"The shape of the mask {list(i.shape)} at index {j} does not match the "
                        f"shape of the indexed tensor {list(cur)} at index {d + j}")
            if mask_err is not None:
                d += k
                continue
            for j, a in enumerate(np.nonzero(i)):
                adv.append((d + j, a.astype(np.int64)))
            d += k
        else:
            bounds.append((d, i, cur[d]))
            adv.append((d, i))
            d += 1
    if mask_err is not None:
        raise mask_err
    if adv:
        try:       # (one index: its own shape; NumPy's broadcast_shapes costs microseconds)
            b = adv[0][1].shape if len(adv) == 1 else \
                np.broadcast_shapes(*(a.shape for _, a in adv))
        except ValueError:
            raise IndexError("shape mismatch: indexing tensors could not be broadcast together "
                             "with shapes " + ", ".join(str(list(a.shape)) for _, a in adv)
                             + f" (tensor shape {list(shape)})") from None
        rest = [s for k, s in enumerate(cur) if k not in {p for p, _ in adv}]
        # (but with index positions, one into a dim of size 0 is refused even then, and
        # before anything else: torch finds it while it reads the indices)
        nonempty = 0 not in b and 0 not in rest
        for dd, i, size in sorted(bounds, key=lambda e: e[2] != 0):
            if STATE.tracer is not None and type(i) is not np.ndarray and nonempty:
                continue    # traced index values: the index node checks them when it runs
            if i.size and (nonempty or (size == 0 and 0 not in b)):
                lo, hi = index_bounds(i)
                if hi >= size or lo < -size:
                    bad = hi if hi >= size else lo
                    err = IndexError(f"index {bad} is out of bounds for dimension {dd} with size "
                                     f"{size} (tensor shape {list(shape)})")
                    if defer_bounds and size:
                        return steps, adv, err
                    raise err
        if not nonempty:
            # nothing is read: in-range stand-ins of the same broadcast shape, so no kernel
            # (a device one checks every index value) sees an unread out-of-range value
            adv = [(dd, np.zeros(b if 0 in b else a.shape, np.int64)) for dd, a in adv]
    return (steps, adv, None) if defer_bounds else (steps, adv)


def _single_mask(idx):
    """dt.bool_ / dt.uint8 when the only advanced item of a setitem index is a mask of at least
    one dim (a bool/uint8 tensor or a list of bools), else None."""
    if isinstance(idx, list) and len(idx) < 32 and builtins.any(
            isinstance(i, (list, tuple, Tensor, slice, np.ndarray)) or i is None or i is Ellipsis
            for i in idx):
        idx = tuple(idx)
    kind, n = None, 0
    for i in (idx if isinstance(idx, tuple) else (idx,)):
        if isinstance(i, Tensor):
            if i._dtype in (dt.bool_, dt.uint8) and i.ndim:
                kind = i._dtype
            elif i.ndim == 0 and i._dtype is not dt.bool_:
                continue                        # a 0-d integer tensor is an int
        elif isinstance(i, (list, tuple, np.ndarray)):
            a = np.asarray(i)
            if a.dtype == np.bool_ and a.ndim:
                kind = dt.bool_
        elif not isinstance(i, (bool, np.bool_)):
            continue                            # int, slice, None, Ellipsis
        n += 1
    return kind if n == 1 else None


_I64MAX = (1 << 63) - 1


def _np_basic(a, steps):
    """Apply the view steps of a plan to an ndarray (results share memory with a)."""
    for st in steps:
        d = st[1]
        if st[0] == "unsq":
            a = np.expand_dims(a, d)
        elif st[0] == "select":
            a = a[(slice(None),) * d + (st[2], Ellipsis)]    # the Ellipsis keeps a 0-d view
        else:
            a = a[(slice(None),) * d + (slice(st[2], st[3], st[4]),)]
    return a


def _np_adv(a, adv):
    t = [slice(None)] * a.ndim
    for d, arr in adv:
        t[d] = arr
    return tuple(t)


_ALL = slice(None)


def getitem(x, idx):
    if type(idx) is slice and x._data.ndim and (idx.step is None or type(idx.step) is int):
        # x[a:b:c] on the first dim, the most common index: skip the general planner
        step = 1 if idx.step is None else idx.step
        if step > 0 and (idx.start is None or type(idx.start) is int) and \
                (idx.stop is None or type(idx.stop) is int):
            a, b, c = idx.indices(x._data.shape[0])
            r = apply(P["slice"], x, dim=0, start=a, stop=max(a, b), step=c)
            if r._node is not None and (idx.start != a or idx.stop != r._node.attrs["stop"]):
                # grad_fn._saved_start/_end as written (torch: None is 0 / INT64_MAX)
                saved_extra(r, start=0 if idx.start is None else idx.start,
                            end=_I64MAX if idx.stop is None else idx.stop)
            return r
    if type(idx) is int and x._data.ndim and -x._data.shape[0] <= idx < x._data.shape[0]:
        # x[i] in range: _plan's select step, without the planner (out of range: its error)
        r = apply(P["select"], x, dim=0, index=idx % x._data.shape[0])
        if idx < 0 and r._node is not None:     # (grad_fn._saved_index as written)
            saved_extra(r, index=idx)
        return r
    if type(idx) is tuple and len(idx) <= x._data.ndim:
        # x[:, i], x[:, :, i, :]: full slices and one int in range are one select
        k = -1
        for j, e in enumerate(idx):
            if type(e) is int and k < 0:
                k = j
            elif type(e) is not slice or e != _ALL:
                k = -2
                break
        if k >= 0 and -x._data.shape[k] <= idx[k] < x._data.shape[k]:
            r = apply(P["select"], x, dim=k, index=idx[k] % x._data.shape[k])
            if idx[k] < 0 and r._node is not None:     # (grad_fn._saved_index as written)
                saved_extra(r, index=idx[k])
            return r
    if type(idx) is Tensor and idx._dtype is dt.int64 and x._device is cpu:
        # x[long tensor] reading elements, indices in range: _plan's one advanced index at
        # dim 0, without the planner (anything else, errors included: the planner)
        a, shp = idx._data, x._data.shape
        if type(a) is np.ndarray and a.ndim and shp and a.size and 0 not in shp[1:]:
            lo, hi = index_bounds(a)
            if -shp[0] <= lo and hi < shp[0]:
                return apply(P["index"], x, wrap(a, dt.int64), pos=(0,))
    steps, adv = _plan(x._data.shape, idx)
    r = x
    for st in steps:
        d = st[1]
        shp = r._data.shape
        if st[0] == "unsq":     # grad_fn names as PyTorch's (UnsqueezeBackward0, ...)
            r = rename(apply(P["reshape"], r, shape=shp[:d] + (1,) + shp[d:]),
                       "UnsqueezeBackward0")
        elif st[0] == "select":
            r = apply(P["select"], r, dim=d, index=st[2])
            if st[3] < 0 and r._node is not None:    # (grad_fn._saved_index as written)
                saved_extra(r, index=st[3])
        else:
            r = apply(P["slice"], r, dim=d, start=st[2], stop=st[3], step=st[4])
            if r._node is not None and (st[5] != st[2] or st[6] != st[3]):
                # grad_fn._saved_start/_end as written (torch: None is 0 / INT64_MAX)
                saved_extra(r, start=0 if st[5] is None else st[5],
                            end=_I64MAX if st[6] is None else st[6])
    if not adv:
        if r is x:    # x[...] or x[:] is still a new view object
            r = rename(apply(P["reshape"], x, shape=x._data.shape), "AliasBackward0")
        return r
    idxs = [_long(a) for _, a in adv]
    # index lists, arrays and cpu index tensors go to the indexed tensor's device
    if r._device is not cpu and STATE.tracer is None:
        idxs = [i if i._device is r._device else i.to(r._device) for i in idxs]
    return apply(P["index"], r, *idxs, pos=tuple(d for d, _ in adv))


def _long(a):
    """An index array as an int64 tensor: int32/16/8 ones (an index tensor's own buffer) are
    cast by a recorded op, so a compiled function reads each call's indices, not a copy made
    while tracing."""
    if a.dtype == np.int64:
        return wrap(a, dt.int64)
    return apply(P["cast"], wrap(a, dt.from_numpy(a.dtype)), dtype=dt.int64)


def c_layout(r):
    """r (a fresh result) laid out row-major, as torch allocates the results of index_select,
    take, masked_fill, repeat_interleave whatever the input's layout (eager cpu buffers; NumPy
    would follow a permuted input's order)."""
    d = r._data
    if type(d) is np.ndarray and d.ndim > 1 and d.size and not d.flags.c_contiguous:
        r._data = np.asarray(d, order="C")
    return r


def like_layout(r, input):
    """r (a fresh result of input's shape) in input's dim order, as torch's index_fill /
    index_put / put, a clone of input (preserve_format) written in place: a dense input's
    strides, a sliced one's order, row-major for an expanded one."""
    d = r._data
    if type(d) is np.ndarray and d.ndim > 1 and d.size and not input.is_contiguous() and \
            d.shape == input._data.shape:
        x = input._data
        if builtins.any(s == 0 and n > 1 for s, n in zip(x.strides, x.shape)):
            return c_layout(r)
        o = np.empty_like(x, dtype=d.dtype)          # (order "K": x's dim order, dense)
        o[...] = d
        r._data = o
    return r


def setitem(x, idx, value):
    """x[idx] = value: value broadcasts to the indexed shape and is cast to x's dtype. Index
    and shape errors are raised before anything is written."""
    from .ops_math import as_tensor_arg, check_inplace_leaf, check_writable
    check_writable(x, "setitem")
    if x._dtype.category == 4:      # quantized (framework/ao/_qtensor.py)
        from .ao._qtensor import setitem_q
        return setitem_q(x, idx, value)
    for i in (idx if isinstance(idx, tuple) else (idx,)):
        if isinstance(i, Tensor):
            values(i)   # the written positions are computed from the index values in NumPy
    v = as_tensor_arg(value)
    if not isinstance(v, (Tensor, bool, int, float, complex)):
        raise TypeError(f"can't assign a {type(value).__name__} to a Tensor")
    if not isinstance(v, Tensor) and (x._dtype.category == 1 or (
            x._dtype.category == 2 and isinstance(v, complex))):
        # PyTorch's checked conversion into an integer dtype (uint16: -1 is 65535), and of a
        # complex value into a real floating dtype (RuntimeError, not NumPy's TypeError)
        from .creation import int_fill
        v = int_fill(v, x._dtype)
    if idx is False:      # torch: x[False] = v writes nothing (whatever v's shape)
        return
    steps, adv, bad_index = _plan(x._data.shape, idx, defer_bounds=True)
    tr = STATE.tracer
    from .func.vmap import batched_level
    # under vmap (x or the value batched) the write is computed functionally, then written
    # into x's real tensor (func.vmap.write_back), as in-place ops are there
    vm = batched_level(x) is not None or (isinstance(v, Tensor) and batched_level(v) is not None)
    data = x._data if tr is None and not vm else \
        np.broadcast_to(np.empty((), x._data.dtype), x._data.shape)
    view = _np_basic(data, steps)
    t = _np_adv(view, adv) if adv else None
    if adv:
        from compiler.ops.indexing import index_shape
        target = index_shape(view.shape, [a.shape for _, a in adv], [d for d, _ in adv])
    else:
        target = view.shape
    mask = _single_mask(idx) if adv and idx is not True else None
    fill = mask is not None and (not isinstance(v, Tensor) or (v._data.size == 1 and
                                                               v._device is cpu))
    if fill:
        # torch writes a one-element value through a lone mask with masked_fill_ (which
        # casts the value, and refuses a uint8 mask)
        if mask is dt.uint8:
            raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype "
                               "unsigned char (setitem with a uint8 mask and a one-element value)")
    elif adv and idx is not True and isinstance(v, Tensor) and v._dtype is not x._dtype:
        # an advanced index writes with index_put_, which (unlike copy_) does not cast
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{dt.tname(x._dtype)} for the destination and {dt.tname(v._dtype)} "
                           f"for the source (setitem on shape {list(x.shape)})")
    if adv and idx is not True:
        dt.refuse_barebones("masked_fill" if fill else "index_put", x._dtype)
    if isinstance(v, Tensor):
        vs = v._data.shape
        while len(vs) > len(target) and vs[0] == 1:    # torch drops leading 1s of the value
            vs = vs[1:]
        try:
            ok = np.broadcast_shapes(target, vs) == tuple(target)
        except ValueError:
            ok = False
        if not ok:
            raise RuntimeError(f"setitem: shape mismatch: value tensor of shape {list(v.shape)} "
                               f"cannot be broadcast to indexing result of shape {list(target)} "
                               f"(tensor shape {list(x.shape)})")
        if vs != v._data.shape:
            v = apply(P["reshape"], v, shape=vs)
    if bad_index is not None:
        raise bad_index
    empty = adv and 0 in target    # nothing is written (an out-of-range index is not read)
    needs = STATE.grad_enabled and (x.requires_grad or (isinstance(v, Tensor) and v.requires_grad))
    # forward AD: a dual x or value takes the functional path, so x takes the result's tangent
    fw = _dispatch.FWAD is not None and (x._fwt is not None or isinstance(v, Tensor) and
                                         v._fwt is not None)
    if not needs and not fw and tr is None and not vm:
        src = v._data if isinstance(v, Tensor) else v
        if x._dtype.round is not None:      # (the value as complex32 / float8 holds it)
            src = x._dtype.round(np.array(src, x._dtype.np))
        if empty:
            pass
        elif adv:
            view[t] = src
        else:
            view[...] = src
        x._bump()
        return
    if needs:
        if steps and x._node is None and x._rg:     # (torch writes through the view x[basic])
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in "
                               "an in-place operation.")
        check_inplace_leaf(x)
    # functional form: flat positions of the indexed elements, then one index_put on x's copy
    pos = _np_basic(np.arange(x._data.size, dtype=np.int64).reshape(x._data.shape), steps)
    pos = np.empty(target, np.int64) if empty else np.asarray(pos[t] if adv else pos, order="C")
    if vm:
        from .func.vmap import snapshot
        base = snapshot(x)
    else:
        base = x._snapshot() if tr is None else tr.snapshot(x)
    if fw:
        base._fwt = x._fwt
    flat = apply(P["reshape"], base, shape=(x._data.size,))
    if isinstance(v, Tensor) and v._dtype is not x._dtype:
        v = apply(P["cast"], v, dtype=x._dtype)
    pidx = wrap(pos, dt.int64)
    if tr is None and x._device is not cpu:
        pidx = pidx.to(x._device)
    newflat = apply(P["index_put"], flat, v, pidx, pos=(0,), accumulate=False)
    r = apply(P["reshape"], newflat, shape=x._data.shape)
    if vm:
        from .func.vmap import write_back
        write_back(x, r)
        return
    if tr is not None:
        tr.assign(x, r)
        if needs:
            rename(x, "CopySlices")
        return
    if fw:
        from .autograd.forward_ad import assign
        assign(x, r)
    store(x, r._data)
    if needs:
        x._node, x._oi = r._node, r._oi
        rename(x, "CopySlices")
        from .ops_math import propagate_view_write
        propagate_view_write(x)
    x._bump()


def _snapshot(self):
    old = wrap(self._data.copy(), self._dtype)
    old._node, old._oi, old._rg = self._node, self._oi, self._rg and self._node is None
    return old


Tensor._snapshot = _snapshot


# PyTorch's kernels of the index_* ops (none handles the barebones unsigned dtypes)
_INDEX_KERNEL = {"index_select": "index_select", "index_add": "index_add_",
                 "index_copy": "index_copy_cpu", "index_fill": "index_fill_cpu",
                 "index_reduce": "index_func_"}


def _is_sym(t):
    from ._compile.lazy import is_sym
    return is_sym(t)


# the ops whose index / index_put node carries `check` (values in [0, size), tested at run time)
_NODE_CHECKED = ("index_select", "index_add", "index_copy")


def _check_dim_index(op, input, d, index, bounds_error=IndexError):
    """index_select / index_add / index_copy / index_fill / index_reduce: a 0-d or 1-d index
    whose values lie in [0, size) of dim d, as torch checks them (before anything is computed
    or written): the index's dims first (IndexError), then its dtype (RuntimeError; int32 or
    int64, index_copy int64 only); index_fill checks the dtype first (IndexError, int64 only),
    then the dims (RuntimeError), and alone takes negative values (counted from the end)."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}(): index must be a Tensor, got {type(index).__name__}")
    fill = op == "index_fill"
    if fill and index._dtype is not dt.int64:
        raise IndexError(f"index_fill_(): Expected dtype int64 for index (got {index.dtype})")
    if index.ndim > 1:
        raise (RuntimeError if fill else IndexError)(
            f"{op}(): Index is supposed to be a vector/scalar (got shape {list(index.shape)})")
    if index._dtype not in ((dt.int64,) if op == "index_copy" else (dt.int64, dt.int32)):
        raise RuntimeError(f"{op}(): Expected dtype {'int64' if op == 'index_copy' else 'int32 or int64'} "
                           f"for index (got {index.dtype})")
    dt.refuse_barebones(_INDEX_KERNEL[op], input._dtype)
    size = input._data.shape[d] if input.ndim else 1
    lo = -size if fill else 0
    a = index._data
    if op in _NODE_CHECKED and STATE.tracer is not None and type(a) is not np.ndarray \
            and _is_sym(index):
        # a traced index (x.unfold's, i[:, 0]): the op's index node checks [0, size) when the
        # program runs (its `check` attribute), so reading the values here would only break
        # the graph (an error under fullgraph=True)
        from .ops_shape import reshape
        return index if index.ndim == 1 else reshape(index, (1,))
    if a.size and not (op == "index_select" and STATE.tracer is None and input.ndim and
                       input._data.size):
        # (eager index_select of a non-empty input: its index node checks [0, size) itself)
        vmin, vmax = index_bounds(a)
        if vmax >= size or vmin < lo:
            bad = vmax if vmax >= size else vmin
            raise bounds_error(f"{op}(): index {bad} is out of bounds for dimension {d} with "
                               f"size {size} (input shape {list(input.shape)})")
    return index if index.ndim == 1 else wrap(a.reshape(1), index._dtype)


def index_select(input, dim, index, *, out=None):
    d = norm_dim("index_select", dim, input.ndim)
    # torch (2.13) reports a bad index as a RuntimeError from its dim-1 kernel and for an
    # empty input of ndim > 1; otherwise as an IndexError
    err = RuntimeError if input.ndim > 1 and (d == 1 or input._data.size == 0) else IndexError
    idx = _check_dim_index("index_select", input, d, index, err)
    if input.ndim == 0:
        if idx._data.size != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got "
                               f"{idx._data.size} value(s)")
        return write_out(input.clone(), out)
    # (check: a compiled replay reads no Python, so the index node itself checks [0, size))
    return write_out(rename(c_layout(apply(P["index"], input, idx, pos=(d,),
                                           check=("index_select", err.__name__, d))),
                            "IndexSelectBackward0"), out)


def masked_fill(input, mask, value):
    from .ops_math import as_tensor_arg
    if mask._dtype is not dt.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{dt.CPP_NAME[mask._dtype.name]}")
    v = as_tensor_arg(value)
    if isinstance(v, Tensor) and v.ndim:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor "
                           f"with {v.ndim} dimension(s).")
    dt.refuse_barebones("masked_fill", input._dtype)
    if not isinstance(v, Tensor):       # torch's checked conversion (uint8: -1 is 255)
        from .creation import int_fill
        v = int_fill(v, input._dtype)
    r = apply(P["where"], mask, v, input)
    if r._dtype is not input._dtype:
        r = apply(P["cast"], r, dtype=input._dtype)
    # out of place, torch broadcasts input and mask together (x[0].masked_fill(m3d, v) is 3-d);
    # masked_fill_ refuses a result larger than self where it writes back
    return rename(c_layout(r), "MaskedFillBackward0")


def masked_select(input, mask):
    from .ops_shape import broadcast_tensors
    if mask._dtype is not dt.bool_:
        raise RuntimeError(f"masked_select: expected BoolTensor for mask (got {mask.dtype})")
    dt.refuse_barebones("masked_select", input._dtype)
    x, m = broadcast_tensors(input, mask)
    return getitem(x, m)


def gather(input, dim, index, *, sparse_grad=False, out=None):
    from .ops_math import write_out
    dt.refuse_barebones("scatter_gather_tensor_cpu", input._dtype)
    return write_out(apply(P["gather"], input, index, dim=norm_dim("gather", dim, max(input.ndim, 1))),
                     out)


def take_along_dim(input, indices, dim=None):
    from .ops_shape import reshape, expand
    from compiler.ir.registry import broadcast_shapes
    if isinstance(indices, Tensor) and indices._dtype is not dt.int64:
        raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be Long but got "
                           f"{dt.tname(indices._dtype)} (indices shape {list(indices.shape)})")
    if dim is None:
        return gather(reshape(input, (-1,)), 0, reshape(indices, (-1,)))
    if input.ndim != indices.ndim:
        raise RuntimeError(f"take_along_dim(): input and indices should have the same number of "
                           f"dimensions, but got {input.ndim} dimensions for input, and "
                           f"{indices.ndim} dimensions for indices")
    d = norm_dim("take_along_dim", dim, input.ndim)
    # all dims but d broadcast between input and indices
    rest = broadcast_shapes("take_along_dim", tuple(1 if k == d else s for k, s in
                                                    enumerate(input.shape)),
                            tuple(1 if k == d else s for k, s in enumerate(indices.shape)))
    x = expand(input, tuple(input.shape[k] if k == d else s for k, s in enumerate(rest)))
    i = expand(indices, tuple(indices.shape[k] if k == d else s for k, s in enumerate(rest)))
    if input.shape[d]:
        # torch (2.13) takes every index along dim modulo the dim's size (-1 is the last,
        # size + 1 the second); without dim, an out-of-range one raises (gather's error)
        from .ops_math import remainder
        i = remainder(i, input.shape[d])
    return gather(x, d, i)


def _scatter_src(src, value):
    from .ops_math import as_tensor_arg
    if src is None and value is None:
        raise TypeError("scatter() missing required argument 'src' or 'value'")
    s = src if src is not None else value
    s = as_tensor_arg(s)
    return s


_WARNED_SCATTER_REDUCE = False


def _warn_uint8_index():
    warnings.warn("indexing with dtype torch.uint8 is now deprecated, please use a dtype "
                  "torch.bool instead.", UserWarning, stacklevel=3)


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    global _WARNED_SCATTER_REDUCE
    if reduce is not None and isinstance(src, Tensor) and not _WARNED_SCATTER_REDUCE:
        from ._misc_api import user_stacklevel
        _WARNED_SCATTER_REDUCE = True       # (torch's TORCH_WARN_ONCE)
        warnings.warn("The reduce argument of torch.scatter with Tensor src is deprecated and "
                      "will be removed in a future PyTorch release. Use torch.scatter_reduce "
                      "instead for more reduction options.", UserWarning,
                      stacklevel=user_stacklevel())
    return _scatter(input, dim, index, src, value=value, reduce=reduce)


def _scatter(input, dim, index, src=None, *, value=None, reduce=None):
    s = _scatter_src(src, value)
    dt.refuse_barebones("scatter_gather_tensor_cpu" if isinstance(s, Tensor) else
                        "scatter_gather_scalar_cpu", input._dtype)
    # torch never promotes a tensor src (scatter, scatter_add, scatter_reduce); a Python
    # number is converted to input's dtype
    if src is not None and isinstance(s, Tensor) and s._dtype is not input._dtype:
        raise RuntimeError(f"scatter(): Expected self.dtype to be equal to src.dtype (got self "
                           f"{dt.tname(input._dtype)} {list(input.shape)} and src "
                           f"{dt.tname(s._dtype)} {list(s.shape)})")
    if isinstance(s, Tensor) and s._dtype is not input._dtype:
        s = apply(P["cast"], s, dtype=input._dtype)
    scalar = not isinstance(s, Tensor)
    if scalar:                          # torch's checked conversion (uint8: -1 is 255)
        from .creation import int_fill
        s = int_fill(s, input._dtype)
    r = apply(P["scatter"], input, index, s, dim=norm_dim("scatter", dim, max(input.ndim, 1)),
              reduce=reduce)
    # (torch's scatter.value overload)
    return rename(r, "ScatterBackward1") if scalar and reduce is None else r


def scatter_add(input, dim, index, src):
    return _scatter(input, dim, index, src, reduce="add")


_REDUCE_IDENTITY = {"sum": 0, "mean": 0, "prod": 1, "amax": float("-inf"), "amin": float("inf")}


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    # torch also takes "max"/"min" (its reduce-name parser maps them to amax/amin)
    reduce = {"max": "amax", "min": "amin"}.get(reduce, reduce)
    if reduce not in _REDUCE_IDENTITY:
        raise RuntimeError(f"scatter_reduce(): reduce argument must be one of sum, prod, mean, "
                           f"amax, amin (got {reduce!r})")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce(): src must be a Tensor, got {type(src).__name__}")
    if reduce == "mean" and input._dtype is dt.bool_:      # torch has no bool mean kernel
        raise NotImplementedError('"scatter_gather_tensor_cpu_reduce_mean" not implemented for '
                                  "'Bool'")
    dt.refuse_barebones("scatter_reduce_exclude_input_init" if not include_self else
                        f"scatter_gather_tensor_cpu_reduce_{reduce}" if reduce in
                        ("mean", "amax", "amin") else "scatter_gather_tensor_cpu", input._dtype)
    x = input
    if not include_self:
        # targets start from the reduction's identity, so only src values reach them
        ident = _REDUCE_IDENTITY[reduce]
        if input._dtype.category < 2 and ident in (float("-inf"), float("inf")):
            info = np.iinfo(input._dtype.np) if input._dtype is not dt.bool_ else None
            ident = (info.min if ident < 0 else info.max) if info else (ident > 0)
        x = scatter(input, dim, index, ident)
    if reduce == "mean":
        from .ops_math import div, clamp_min
        from .creation import ones_like, zeros_like
        s = _scatter(x, dim, index, src, reduce="sum")
        c = _scatter(ones_like(input) if include_self else zeros_like(input), dim, index,
                    ones_like(src), reduce="sum")
        c = clamp_min(c, 1)     # untouched targets keep their value
        return div(s, c, rounding_mode="floor" if input._dtype.category < 2 else None)
    if reduce != "sum" and STATE.grad_enabled and (input.requires_grad or src.requires_grad) \
            and isinstance(index, Tensor) and input._dtype.is_floating_point:
        # prod / amax / amin: the scatter primitive has no gradient for them; torch's (out/x
        # for prod, split evenly among the elements equal to the max/min) on src's part that
        # the index names (the rest of a larger src gets none)
        d = norm_dim("scatter_reduce", dim, builtins.max(input.ndim, 1))
        if tuple(src.shape) != tuple(index.shape) and src.ndim == index.ndim:
            src = src[tuple(slice(0, n) for n in index.shape)]
        return rename(_reduce_with_grad(input, d, index, src, reduce, include_self),
                      "ScatterReduceBackward0")
    return _scatter(x, dim, index, src, reduce=reduce)


def _check_source(op, input, d, index, source):
    n = index._data.size
    want = tuple(n if k == d else s for k, s in enumerate(input._data.shape))
    have = tuple(source._data.shape)
    if input.ndim == 0 and have in ((), (1,)) and n == 1:
        return
    if have != want:
        raise RuntimeError(f"{op}(): source of shape {list(have)} does not match input of shape "
                           f"{list(input.shape)} with {n} indices along dim {d} (expected "
                           f"{list(want)})")


def index_add(input, dim, index, source, *, alpha=1):
    d = norm_dim("index_add", dim, input.ndim)
    # (torch's int64, alpha=1 path for ndim > 1 along the first or last dim reports a bad
    # index as a RuntimeError; the middle dims and every other case give IndexError)
    fast = index._dtype is dt.int64 and alpha == 1 and input.ndim > 1 and \
        d in (0, input.ndim - 1) if isinstance(index, Tensor) else False
    err = RuntimeError if fast else IndexError
    index = _check_dim_index("index_add", input, d, index, err)
    _check_source("index_add", input, d, index, source)
    if source._dtype is not input._dtype:       # torch never promotes source here
        raise RuntimeError(f"index_add_(): self ({dt.tname(input._dtype)}) and source "
                           f"({dt.tname(source._dtype)}) must have the same scalar type")
    src = source if alpha == 1 else apply(P["mul"], source, alpha)
    if src._dtype is not input._dtype:
        src = apply(P["cast"], src, dtype=input._dtype)
    check = ("index_add", err.__name__, d)
    return rename(apply(P["index_put"], input, src, index, pos=(d,), accumulate=True,
                        check=check) if d == 0 else
                  _index_put_dim(input, src, index, d, True, check), "IndexAddBackward0")


def _index_put_dim(input, src, index, d, accumulate, check=None):
    from .ops_shape import movedim
    xm = movedim(input, d, 0)
    sm = movedim(src, d, 0)
    r = apply(P["index_put"], xm, sm, index, pos=(0,), accumulate=accumulate, check=check)
    # torch's result is a fresh contiguous tensor, not a permuted view
    return _fresh(movedim(r, 0, d))


def _fresh(r):
    from .ops_shape import contiguous
    return contiguous(r)


def index_copy(input, dim, index, source):
    d = norm_dim("index_copy", dim, input.ndim)
    index = _check_dim_index("index_copy", input, d, index)
    if input.ndim and source.ndim and (source.ndim != input.ndim or
                                       source.shape[d] != index._data.size):
        # torch reports these two as IndexError (a slice-shape mismatch as RuntimeError)
        raise IndexError(f"index_copy_(): source of shape {list(source.shape)} must have the "
                         f"dimensionality of self {list(input.shape)} and "
                         f"{index._data.size} elements along dim {d}")
    _check_source("index_copy", input, d, index, source)
    if source._dtype is not input._dtype:
        raise RuntimeError(f"index_copy_(): self and source expected to have the same dtype, but "
                           f"got (self) {input.dtype} and (source) {source.dtype}")
    return rename(_index_put_dim(input, source, index, d, False, ("index_copy", "IndexError", d)),
                  "IndexCopyBackward0")


def index_fill(input, dim, index, value):
    from .creation import int_fill
    d = norm_dim("index_fill", dim, input.ndim)
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"index_fill_(): only supports a 0-dimensional value tensor, but got "
                               f"tensor with {value.ndim} dimension(s).")
        value = value.item()
    # torch converts the value first (checked: uint8 takes -1 as 255, refuses 256 or -1.5)
    value = int_fill(value, input._dtype)
    index = _check_dim_index("index_fill", input, d, index)
    from .ops_shape import movedim
    xm = movedim(input, d, 0)
    r = apply(P["index_put"], xm, value, index, pos=(0,), accumulate=False)
    return rename(like_layout(_fresh(movedim(r, 0, d)), input), "IndexFillBackward0")


def _check_flat_index(op, input, index):
    if not isinstance(index, Tensor) or index._dtype is not dt.int64:
        raise RuntimeError(f"{op}(): Expected a long tensor for index, but got "
                           f"{getattr(index, 'dtype', type(index).__name__)}")
    n = input._data.size
    a = index._data
    if a.size and (a.max() >= n or a.min() < -n):
        bad = a.max() if a.max() >= n else a.min()
        raise IndexError(f"{op}(): out of range: tried to access index {bad} on a tensor of {n} "
                         f"elements (shape {list(input.shape)})")


def take(input, index):
    from .ops_shape import reshape
    _check_flat_index("take", input, index)
    dt.refuse_barebones("take_cpu", input._dtype)
    return rename(c_layout(apply(P["index"], reshape(input, (-1,)), index, pos=(0,))),
                  "TakeBackward0")


def nonzero(input, *, as_tuple=False):
    from .ops_math import _t
    input = _t(input)
    dt.refuse_barebones("nonzero_count_cpu", input._dtype)
    r = apply(P["nonzero"], input)
    if as_tuple:
        from ._dispatch import wrap_like
        from .ops_shape import contiguous, select
        if input.ndim == 0:          # [0] when it is nonzero, else empty, on its device
            return (wrap_like(np.zeros(r._data.shape[0], np.int64), dt.int64, input),)
        return tuple(contiguous(select(r, 1, k)) for k in range(input.ndim))
    return r


def argwhere(input):
    from .func.batching import allow_dynamic
    with allow_dynamic():
        return nonzero(input)


def index_put(input, indices, values, accumulate=False):
    """torch.index_put: a copy of input with values (broadcast to the indexed shape) written at
    input[indices] (a tuple of index tensors for the leading dims; a bool mask stands for its
    nonzero positions), or added there with accumulate (duplicate indices all add)."""
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put(): argument 'indices' (position 2) must be tuple of Tensors, "
                        f"not {type(indices).__name__}")
    if not isinstance(values, Tensor):
        raise TypeError(f"index_put(): argument 'values' must be Tensor, not "
                        f"{type(values).__name__}")
    if values._dtype is not input._dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{dt.tname(input._dtype)} for the destination and "
                           f"{dt.tname(values._dtype)} for the source.")
    dt.refuse_barebones("index_put", input._dtype)
    idxs, pos, d = [], [], 0
    for k, i in enumerate(indices):
        if not isinstance(i, Tensor):
            raise TypeError(f"expected Tensor as element {k} in argument 1, but got "
                            f"{type(i).__name__}")
        if i._dtype is dt.bool_ or i._dtype is dt.uint8:      # a mask: its nonzero positions
            if i._dtype is dt.uint8:
                _warn_uint8_index()
            for k, a in enumerate(nonzero(i, as_tuple=True)):
                idxs.append(a if a._device is input._device else a.to(input._device))
                pos.append(d + k)
            d += builtins.max(i.ndim, 1)
            continue
        if i._dtype.category != 1:
            raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors "
                             f"(got {i._dtype})")
        idxs.append(i)
        pos.append(d)
        d += 1
    if d > input.ndim:
        raise IndexError(f"too many indices for tensor of dimension {input.ndim} (got {d})")
    if not idxs:                     # every dim whole: values broadcast over input
        from .ops_shape import expand
        if accumulate:
            return apply(P["add"], input, expand(values, input.shape))
        return apply(P["copy"], expand(values, input.shape))
    return like_layout(apply(P["index_put"], input, values, *idxs, pos=tuple(pos),
                             accumulate=bool(accumulate)), input)


def put(input, index, source, accumulate=False):
    """out[flat index[i]] = source[i] (or += with accumulate) on a copy of input."""
    _check_flat_index("put", input, index)
    dt.refuse_barebones("take_put_cpu", input._dtype)
    return _put(input, index, source, accumulate)


def _put(input, index, source, accumulate):
    from .ops_shape import reshape
    if source._data.size != index._data.size:
        raise IndexError(f"put(): Expected source and index to have the same number of elements, "
                           f"but got source.numel() = {source._data.size}, index.numel() = "
                           f"{index._data.size}")
    src = source if source._dtype is input._dtype else apply(P["cast"], source, dtype=input._dtype)
    flat = reshape(input, (-1,))
    r = apply(P["index_put"], flat, reshape(src, (-1,)), reshape(index, (-1,)), pos=(0,),
              accumulate=accumulate)
    r = reshape(r, input._data.shape)
    if not input.is_contiguous():       # (a fresh copy to lay out: r is a view of the flat one)
        r = like_layout(apply(P["copy"], r), input)
    return rename(r, "PutBackward0")


def put_(input, index, source, accumulate=False):
    from .ops_math import copy_
    return copy_(input, put(input, index, source, accumulate))


def masked_scatter(input, mask, source):
    """A copy of input (broadcast with mask) whose positions where mask is True take source's
    leading elements in row-major order."""
    from .ops_shape import broadcast_tensors, reshape, select
    from ._device_ops import host
    if not isinstance(mask, Tensor) or mask._dtype is not dt.bool_:
        got = dt.tname(mask._dtype) if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype "
                           f"{got}")
    if not isinstance(source, Tensor):
        raise TypeError(f"masked_scatter(): argument 'source' must be Tensor, not "
                        f"{type(source).__name__}")
    if source._dtype is not input._dtype:
        raise RuntimeError(f"masked_scatter_: expected self and source to have same dtypes but got "
                           f"{dt.tname(input._dtype)} and {dt.tname(source._dtype)}")
    dt.refuse_barebones("masked_scatter", input._dtype)
    x, m = broadcast_tensors(input, mask)
    shape = tuple(x.shape)
    mf = reshape(m, (-1,))
    k = int(host(values(mf)).sum())
    if source._data.size < k:
        raise RuntimeError("masked_scatter: Number of elements of source < number of ones in mask")
    xf = reshape(x, (-1,))
    if k == 0:
        return rename(apply(P["copy"], reshape(xf, shape)), "MaskedScatterBackward0")
    idx = select(nonzero(mf), 1, 0)
    src = apply(P["slice"], reshape(source, (-1,)), dim=0, start=0, stop=k, step=1)
    r = apply(P["index_put"], xf, src, idx, pos=(0,), accumulate=False)
    return rename(reshape(r, shape), "MaskedScatterBackward0")


def masked_scatter_(input, mask, source):
    from .ops_math import copy_
    r = masked_scatter(input, mask, source)
    if tuple(r.shape) != tuple(input.shape):
        raise RuntimeError(f"masked_scatter_: mask of shape {list(mask.shape)} can't be broadcast "
                           f"to the shape of self {list(input.shape)}")
    return copy_(input, r)


_WARNED_INDEX_REDUCE = False


def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """Reduce (prod, mean, amax, amin) source's slices along dim into input's slices named by
    index (include_self: input's values take part)."""
    from .ops_shape import reshape, expand
    global _WARNED_INDEX_REDUCE
    if not _WARNED_INDEX_REDUCE:
        _WARNED_INDEX_REDUCE = True         # (torch's TORCH_WARN_ONCE)
        warnings.warn("index_reduce() is in beta and the API may change at any time.",
                      UserWarning, stacklevel=2)
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin "
                           f"but got {reduce}.")
    d = norm_dim("index_reduce", dim, builtins.max(input.ndim, 1))
    idx = _check_dim_index("index_reduce", input, d, index)
    _check_source("index_reduce", input, d, idx, source)
    if source._dtype is not input._dtype:
        raise RuntimeError(f"index_reduce_(): self ({dt.tname(input._dtype)}) and source "
                           f"({dt.tname(source._dtype)}) must have the same scalar type")
    if input.ndim == 0:
        r = index_reduce(reshape(input, (1,)), 0, idx, reshape(source, (-1,)), reduce,
                         include_self=include_self)
        return reshape(r, ())
    n = idx._data.size
    sh = [1] * input.ndim
    sh[d] = n
    full_idx = expand(reshape(idx.long() if idx._dtype is not dt.int64 else idx, tuple(sh)),
                      tuple(source.shape))
    if reduce == "mean":
        return rename(scatter_reduce(input, d, full_idx, source, reduce,
                                     include_self=include_self), "IndexReduceBackward0")
    return rename(_reduce_with_grad(input, d, full_idx, source, reduce, include_self),
                  "IndexReduceBackward0")


def _reduce_with_grad(input, d, idx, source, reduce, include_self):
    """scatter_reduce prod/amax/amin whose gradient is torch's: the product of the other
    factors for prod, split evenly among the elements equal to the max/min. The value is the
    scatter's; the gradient comes from a zero-valued term linear in input and source with
    those coefficients."""
    from ._dispatch import STATE
    from .autograd.grad_mode import no_grad
    from .creation import zeros_like, ones_like
    from . import ops_math as M
    with no_grad():
        out = scatter_reduce(input.detach(), d, idx, source.detach(), reduce,
                             include_self=include_self)
    if not (STATE.grad_enabled and (input.requires_grad or source.requires_grad)) or \
            not input._dtype.is_floating_point:
        return out
    with no_grad():
        # torch's formulas (scatter_reduce_backward): prod treats a zero factor exactly (the
        # product of the others); amax/amin split among the self and src elements equal to
        # the result, self counted even without include_self (whose own share is then 0)
        xv, sv = input.detach(), source.detach()
        og = gather(out, d, idx)
        touched = M.ne(scatter(zeros_like(xv), d, idx, 1.0), 0)
        if reduce == "prod":
            ms_self = M.where(M.eq(xv, 0), ones_like(xv), xv)
            cx = M.div(scatter_reduce(ms_self, d, idx, sv, "prod", include_self=include_self),
                       ms_self)
            zs = M.eq(sv, 0)
            nz = gather(_scatter(zeros_like(xv), d, idx, zs.to(xv.dtype), reduce="add"), d, idx)
            single = M.logical_and(zs, M.eq(nz, 1))
            alone = scatter_reduce(xv, d, idx, M.where(single, ones_like(sv), sv), "prod",
                                   include_self=include_self)
            cs = M.where(single, gather(alone, d, idx),
                         M.div(og, M.where(zs, ones_like(sv), sv)))
        else:
            mx = M.eq(xv, out).to(xv.dtype)
            ms = M.eq(sv, og).to(xv.dtype)
            cnt = _scatter(mx, d, idx, ms, reduce="add")
            cx = M.div(mx, cnt)
            cs = M.div(ms, gather(cnt, d, idx))
        if not include_self:
            cx = M.where(touched, zeros_like(cx), cx)
    # zero-valued terms whose gradient is the coefficient's; input - input.detach() keeps
    # input itself out of the saved tensors, so an in-place scatter_reduce_ into it can
    # still be differentiated
    # (only for the operands that need a gradient: an inf in a constant one, as the -inf of a
    # max's starting values, would make inf - inf = nan of the value)
    if input.requires_grad:
        out = M.add(out, M.mul(M.sub(input, input.detach()), cx))
    if source.requires_grad:
        ds = M.sub(source, source.detach())
        out = M.add(out, _scatter(zeros_like(out), d, idx, M.mul(ds, cs), reduce="add"))
    return out


def index_reduce_(input, dim, index, source, reduce, *, include_self=True):
    from .ops_math import copy_
    return copy_(input, index_reduce(input, dim, index, source, reduce,
                                     include_self=include_self))


def fill_diagonal_(input, fill_value, wrap=False):
    """Write fill_value on the main diagonal (every dim equal when ndim > 2; a tall matrix
    restarts the diagonal every cols+1 rows with wrap=True), in place."""
    from .creation import full
    if input.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    shp = input._data.shape
    if input.ndim > 2 and builtins.any(s != shp[0] for s in shp):
        raise RuntimeError("all dimensions of input must be of equal length")
    n = builtins.min(shp)
    step = 0
    acc = 1
    for s in reversed(shp):      # row-major strides, summed: the flat step along the diagonal
        step += acc
        acc *= s
    total = input._data.size
    if input.ndim == 2 and wrap and shp[0] > shp[1]:
        pos = np.arange(0, total, step, dtype=np.int64)
    else:
        pos = np.arange(n, dtype=np.int64) * step
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    from ._dispatch import wrap_like
    idx = wrap_like(pos, dt.int64, input)
    src = full((pos.shape[0],), fill_value, dtype=input._dtype, device=input.device)
    from .ops_math import copy_
    return copy_(input, _put(input, idx, src, False))     # (put's kernel check is not torch's here)


# ---- nonzero_static, Tensor.where, and the cpu-only Python-callable maps (apply_, map_, map2_) ---

def nonzero_static(input, *, size, fill_value=-1):
    """nonzero() padded with fill_value (or truncated) to exactly `size` rows."""
    import operator as _op
    size = _op.index(size)
    if size < 0:
        raise RuntimeError("nonzero_static: 'size' must be an non-negative integer")
    from ._dispatch import wrap_like
    from .ops_math import _t
    input = _t(input)
    dt.refuse_barebones("nonzero_count_cpu", input._dtype)
    from .func.vmap import batched_level
    lv = batched_level(input)
    if lv is not None:
        # under vmap: per sample on the real tensor (a static shape, so the results stack)
        from .func import _batched
        real, bd = _batched.unwrap(input, lv)
        rows = [nonzero_static(real.select(bd, b), size=size, fill_value=fill_value)
                for b in range(real.shape[bd])]
        from .ops_shape import stack
        return _batched.make(stack(rows), 0, lv)
    idx = np.argwhere(np.asarray(input.numpy(force=True)) != 0).astype(np.int64)
    nd = input.ndim
    out = np.full((size, nd), int(fill_value), np.int64)
    k = min(size, idx.shape[0])
    out[:k] = idx[:k].reshape(k, nd)
    return wrap_like(out, dt.int64, input)


def _where_method(self, condition, other):
    """Tensor.where(condition, y): torch.where(condition, self, y)."""
    from .ops_math import where
    return where(condition, self, other)


def _python_map(self, others, fn, name):
    if self._device.type != "cpu":
        raise TypeError(f"{name} is only implemented on CPU tensors")
    if self.requires_grad:
        raise RuntimeError(f"Can't call {name}() on Variable that requires grad. Use "
                           f"var.detach().{name}() instead.")
    from .ops_math import check_writable
    check_writable(self, name)
    arrs = []
    for i, o in enumerate(others):
        if o._dtype is not self._dtype:
            which = "other" if len(others) == 1 else ("x", "y")[i]
            raise TypeError(f"{name}: expected {self.type()} for '{which}' (got {o.type()})")
        try:
            arrs.append(np.broadcast_to(o._data, self._data.shape))
        except ValueError:
            raise RuntimeError(f"expand({o.type()}{{{list(o.shape)}}}, size={list(self.shape)}): "
                               f"the number of sizes provided ({self.ndim}) must be greater or "
                               f"equal to the number of dimensions in the tensor ({o.ndim})") \
                from None
    # every result first (a failing callable leaves the tensor unchanged), then the write
    conv = bool if self._dtype is dt.bool_ else (
        float if self._dtype.is_floating_point else complex if self._dtype.is_complex else int)
    res = np.empty(self._data.shape, self._data.dtype)
    src = [self._data] + arrs
    for pos in np.ndindex(*self._data.shape):
        res[pos] = fn(*(conv(a[pos]) for a in src))
    self._data[...] = res
    self._bump()
    return self


def apply_(self, callable):
    return _python_map(self, (), callable, "apply_")


def map_(self, tensor, callable):
    return _python_map(self, (tensor,), callable, "map_")


def map2_(self, x, y, callable):
    return _python_map(self, (x, y), callable, "map2_")


_CHECK_TAIL = ("  (Could this error message be improved?  If so, please report an enhancement "
               "request to PyTorch.)")


def segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0,
                   unsafe=False, initial=None):
    """torch.segment_reduce: reduce consecutive runs of data along `axis` (lengths: the run
    lengths, shape data.shape[:axis] + (S,); offsets: their S + 1 boundaries). `initial` takes
    part in every segment (and is an empty one's value); mean divides by the run length.
    Computed as a scatter_reduce into S slots (plus one for elements no segment covers)."""
    axis = norm_dim("segment_reduce", axis, builtins.max(data.ndim, 1))
    if indices is not None:
        raise RuntimeError("segment_reduce(): indices based reduction is not supported yet.")
    if lengths is None and offsets is None:
        raise RuntimeError("segment_reduce(): Either lengths or offsets must be defined.")
    red = {"max": "amax", "min": "amin"}.get(reduce, reduce)
    if red not in _REDUCE_IDENTITY:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got "
                           f"{reduce}")
    seg, what = (offsets, "offsets") if offsets is not None else (lengths, "lengths")
    if data.ndim < seg.ndim:
        raise RuntimeError(f"Expected data.dim() >= {what}_value.dim() to be true, but got "
                           f"false." + _CHECK_TAIL)
    if axis != seg.ndim - 1:
        raise RuntimeError(f"segment_reduce(): Expected axis to be the last dimension of {what} "
                           f"but got {axis}.")
    sv = np.asarray(values(seg)).reshape(int(np.prod(seg.shape[:-1])), seg.shape[-1])
    if offsets is None and not unsafe:
        if not sv.size:
            raise RuntimeError("min(): Expected reduction dim to be specified for input.numel() "
                               "== 0. Specify the reduction dim with the 'dim' argument.")
        if sv.min() < 0:
            raise RuntimeError("lengths contains negative value!")
        if not (sv.sum(-1) == data.shape[axis]).all():
            raise RuntimeError("segment_reduce(): Expected all rows of lengths along axis to sum "
                               "to data.size(lengths.dim()-1) when !unsafe.")
    if seg._dtype not in (dt.int32, dt.int64):
        raise NotImplementedError(f'"_segment_reduce_{what}_cpu_kernel1" not implemented for '
                                  f"'{dt.tname(seg._dtype)}'")
    if not data._dtype.is_floating_point or data._dtype.category != 2:
        raise NotImplementedError(f"\"_segment_reduce_cpu\" not implemented for "
                                  f"'{dt.tname(data._dtype)}'")
    if offsets is not None:
        starts, lens = sv[:, 0], np.diff(sv, axis=-1)
        if (lens < 0).any():
            raise RuntimeError("Expected segment_length >= 0 to be true, but got false."
                               + _CHECK_TAIL)
    else:
        starts, lens = np.zeros(len(sv), np.int64), np.maximum(sv, 0)
    shp = tuple(data.shape)
    P, n, S = int(np.prod(shp[:axis])), shp[axis], lens.shape[-1]
    if sv.shape[0] != P:
        raise RuntimeError(f"segment_reduce(): {what} of shape {list(seg.shape)} does not match "
                           f"data of shape {list(shp)} before axis {axis}")
    ids = np.full((P, n), S, np.int64)                      # slot S: covered by no segment
    for p in range(P):
        run = np.repeat(np.arange(S), lens[p])
        lo = builtins.min(builtins.max(int(starts[p]), 0), n)
        ids[p, lo:lo + len(run)] = run[:n - lo]
    R = int(np.prod(shp[axis + 1:]))
    from .creation import full
    from . import ops_shape as Sh
    from . import ops_math as M
    x = Sh.reshape(data, (P, n, R))
    idx = Sh.expand(wrap_like(ids[:, :, None], dt.int64, data), (P, n, R))
    fill = _REDUCE_IDENTITY[red] if initial is None else initial
    base = full((P, S + 1, R), fill, dtype=data.dtype, device=data.device)
    r = scatter_reduce(base, 1, idx, x, "sum" if red == "mean" else red, include_self=True)
    r = r[:, :S]
    if red == "mean":
        cnt = lens if initial is None else np.maximum(lens, 1)   # (0 / 0: an empty one's nan)
        r = M.div(r, M.cast(wrap_like(cnt[:, :, None].astype(np.float64), dt.float64, data),
                            data._dtype))
    return rename(Sh.reshape(r, shp[:axis] + (S,) + shp[axis + 1:]), "SegmentReduceBackward0")
