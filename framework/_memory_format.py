"""Memory formats: torch.contiguous_format, preserve_format, channels_last, channels_last_3d.

A memory format names the order of a tensor's dimensions in memory. Values never depend on it;
stride(), is_contiguous(memory_format=...) and the layout of the copies that contiguous(), to(),
clone(), empty() and the *_like factories make do, as in PyTorch. channels_last keeps a 4-d
NCHW tensor's channels innermost (NHWC in memory), channels_last_3d a 5-d NCDHW tensor's.
"""
import numpy as np


class memory_format:  # noqa: N801  (torch.memory_format)
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"

    def __reduce__(self):           # pickles as the module attribute, one object per format
        return self.name


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")

# per channels-last format: its rank and the dims from innermost to outermost in memory
_ORDER = {channels_last: (4, (1, 3, 2, 0)), channels_last_3d: (5, (1, 4, 3, 2, 0))}


def is_channels_last(fmt):
    return fmt in _ORDER


def check_rank(op, ndim, fmt):
    """PyTorch's error for a channels-last format on a tensor of another rank (its message names
    no op, whichever op it comes from)."""
    rank = _ORDER[fmt][0]
    if ndim != rank:
        raise RuntimeError(f"required rank {rank} tensor to use {fmt.name} format")


def check(op, fmt):
    if fmt is not None and not isinstance(fmt, memory_format):
        raise TypeError(f"{op}(): argument 'memory_format' must be torch.memory_format, not "
                        f"{type(fmt).__name__}")


def follows(shape, strides, fmt):
    """Do element `strides` lay out `shape` in channels-last format fmt? (c10's
    is_channels_last_contiguous: size-1 dims may have any stride.)"""
    rank, order = _ORDER[fmt]
    if len(shape) != rank:
        return False
    expect = 1
    for d in order:
        if shape[d] != 1:
            if strides[d] != expect:
                return False
            expect *= shape[d]
    return True


def laid_out(a, fmt):
    """A new NumPy array holding a's values in channels-last format fmt."""
    return in_order(a, tuple(reversed(_ORDER[fmt][1])))    # (0, 2, 3, 1) for channels_last


def in_order(a, outer_first):
    """A new dense NumPy array holding a's values with its dims in memory order outer_first."""
    buf = np.empty(tuple(a.shape[d] for d in outer_first), a.dtype)
    out = buf.transpose(tuple(np.argsort(outer_first)))
    out[...] = a
    return out



def suggest(shape, strides):
    """PyTorch's suggest_memory_format from a tensor's shape and element strides: channels_last
    (4-d) or channels_last_3d (5-d) when the strides order the dims as that format does (c10's
    is_channels_last_strides_2d/3d, so a slice of such a layout counts), else contiguous_format.
    Convolution, pooling, interpolation and the like make their results in this format."""
    n = len(shape)
    if n != 4 and n != 5:
        return contiguous_format
    fmt = channels_last if n == 4 else channels_last_3d
    if strides[1] == 0:
        return contiguous_format
    lo = 0
    for d in _ORDER[fmt][1]:
        # ambiguous layouts (size-1 dims with equal strides) stay contiguous, as in c10
        if shape[d] == 0 or strides[d] < lo or (d == 0 and lo == strides[1]):
            return contiguous_format
        lo = strides[d] * shape[d] if shape[d] > 1 else strides[d]
    return fmt


def suggest_of(a):
    """suggest() of a cpu tensor's array; contiguous_format for device buffers and traced values,
    which lay_out leaves as they are anyway."""
    if type(a) is not np.ndarray or (a.ndim != 4 and a.ndim != 5):
        return contiguous_format
    isz = a.itemsize
    return suggest(a.shape, [s // isz for s in a.strides])


def common(arrays):
    """torch.cat's result format: the inputs' suggested format when they all agree, else
    contiguous_format."""
    fmt = None
    for a in arrays:
        f = suggest_of(a)
        if f is contiguous_format or (fmt is not None and f is not fmt):
            return contiguous_format
        fmt = f
    return fmt


def _strides(shape, fmt):
    """The element strides PyTorch gives a new tensor of `shape` in format fmt."""
    order = _ORDER[fmt][1] if fmt in _ORDER else range(len(shape) - 1, -1, -1)
    st, acc = [0] * len(shape), 1
    for d in order:
        st[d] = acc
        acc *= shape[d] if shape[d] > 1 else 1
    return st


def lay_out(t, fmt):
    """t, a fresh cpu result of an op, with its values laid out in memory format fmt and
    PyTorch's strides for it (a copy only when they differ). A result that viewed the op's own
    intermediate gets memory of its own. Device buffers (row-major by design), traced values and
    empty results keep their layout."""
    a = t._data
    meta = t._device.type == "meta"       # (strides only: no values to move)
    if type(a) is not np.ndarray and not meta or a.size == 0:
        return t
    if fmt is contiguous_format:
        if a.flags.c_contiguous and 1 not in a.shape:       # (the common case, one test)
            return t
    elif fmt not in _ORDER:
        raise ValueError(f"lay_out: {fmt} is not a layout")
    isz = a.itemsize
    if a.strides == tuple(s * isz for s in _strides(a.shape, fmt)):
        return t
    if meta:
        from runtime.meta import meta_empty
        t._data = meta_empty(a.shape, a.dtype, tuple(s * isz for s in _strides(a.shape, fmt)))
    else:
        t._data = laid_out(a, fmt) if fmt in _ORDER else np.array(a, order="C")
    if t._base is not None:
        t._base = None
        t._view_src = None
        t.__dict__.pop("_multi_view", None)
    return t


def stacked(fmt, ndim, dim):
    """torch.stack's memory order (outer first) for inputs all in channels-last format fmt: the
    inputs' order with the new dim just outside input dim `dim`; row-major past the last dim."""
    if dim >= ndim:
        return tuple(range(ndim + 1))
    order = []
    for d in reversed(_ORDER[fmt][1]):
        if d == dim:
            order.append(dim)
        order.append(d + (d >= dim))
    return tuple(order)


def _dense(shape, st):
    """c10's is_non_overlapping_and_dense for element strides st."""
    acc = 1
    for d in sorted((d for d in range(len(shape)) if shape[d] > 1), key=lambda d: st[d]):
        if st[d] != acc:
            return False
        acc *= shape[d]
    return True


def elementwise(arrays, r):
    """r, a cpu element-wise result NumPy made from operands `arrays` (the tensor arguments in
    order, some not row-major), laid out as PyTorch's TensorIterator lays out its output:
    operands all of r's shape and all contiguous, all channels_last(_3d) or all dense with the
    same strides give that layout; otherwise compute_strides + reorder_dimensions (broadcast
    dims count as stride 0, the first operand whose strides order a pair of dims decides)."""
    if len(r.shape) < 2 or r.size == 0:
        return r
    target = elementwise_strides(arrays, r.shape, r.itemsize)
    if r.strides == target:
        return r
    o = np.lib.stride_tricks.as_strided(np.empty(r.size, r.dtype), r.shape, target)
    o[...] = r
    return o


def elementwise_strides(arrays, shape, isz):
    """The byte strides of elementwise()'s result layout (also the meta device's)."""
    n = len(shape)
    sts = [tuple(s // a.itemsize for s in a.strides) for a in arrays]
    if all(a.shape == shape for a in arrays):
        # (operands all row-major never reach here: apply keeps NumPy's result for them)
        fmt = channels_last if n == 4 else channels_last_3d if n == 5 else None
        if fmt is not None and all(follows(shape, st, fmt) for st in sts):
            target = tuple(s * isz for s in _strides(shape, fmt))
        elif all(st == sts[0] for st in sts) and _dense(shape, sts[0]):
            target = tuple(s * isz for s in sts[0])
        else:
            target = None
    else:
        target = None
    if target is None:
        from compiler.ops.indexing import iter_strides
        ops = []
        for a, st in zip(arrays, sts):
            lead = n - a.ndim
            ops.append((0,) * lead + tuple(0 if a.shape[k] == 1 and shape[lead + k] != 1
                                           else st[k] for k in range(a.ndim)))
        target = iter_strides(shape, ops, isz)
    return target
