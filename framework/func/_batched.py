"""Batched tensors: what a tensor is while vmap runs, and the dispatch hook that routes them.

A batched tensor is an ordinary Tensor whose `_data` is a BatchedArray: the per-sample
("logical") metadata outside, the real tensor (`value`, which holds the batch dim at `bdim`)
inside. Front-end code sees per-sample shapes (x.shape inside vmap is the unbatched shape, as in
torch) and every primitive reaches `_dispatch.apply`, where `hook` unwraps the innermost vmap
level, runs the primitive's batching rule on the real tensors and wraps the result again.
Nested vmap nests wrappers: a level-2 value may itself be batched at level 1.
Reading values (bool(), .item(), NumPy conversion) raises torch's vmap errors.
"""
from .. import _dispatch
from ..tensor import Tensor
from runtime.device import cpu

DATA_DEPENDENT = ("vmap: It looks like you're attempting to use a Tensor in some data-dependent "
                  "control flow. We don't support that yet, please file an issue at "
                  "https://github.com/pytorch/pytorch/issues .")
ITEM = ("vmap: It looks like you're calling .item() on a Tensor. We don't support vmap over "
        "calling .item() on a Tensor, please try to rewrite what you're doing with other "
        "operations. If error is occurring somewhere inside PyTorch internals, please file a "
        "bug report.")


class BatchedArray:
    """Stands in for the NumPy array of a batched tensor: metadata is the per-sample view."""
    __slots__ = ("value", "bdim", "level", "shape")

    def __init__(self, value, bdim, level):
        self.value = value          # Tensor with the batch dim (may be batched at lower levels)
        self.bdim = bdim
        self.level = level
        s = value.shape
        self.shape = tuple(s[:bdim]) + tuple(s[bdim + 1:])

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def dtype(self):
        return self.value._dtype.np

    @property
    def itemsize(self):
        return self.value._dtype.itemsize

    @property
    def strides(self):       # contiguous strides of the per-sample shape (metadata only)
        st, acc = [], self.value._dtype.itemsize
        for s in reversed(self.shape):
            st.append(acc)
            acc *= max(s, 1)
        return tuple(reversed(st))

    @property
    def base(self):
        return None

    def __len__(self):
        return self.shape[0]

    # values: not available per sample -----------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError(DATA_DEPENDENT)

    def __bool__(self):
        raise RuntimeError(DATA_DEPENDENT)

    def __getitem__(self, k):
        raise RuntimeError(DATA_DEPENDENT)

    def __setitem__(self, k, v):
        raise RuntimeError(DATA_DEPENDENT)

    def max(self):
        # front-end bounds checks of an index read its extremes: those of the whole batch
        return self.value._data.max()

    def min(self):
        return self.value._data.min()

    def reshape(self, *shape):
        # Tensor.item() and bool() both read through reshape(()): which one it was shows next
        return _Values()

    def __getattr__(self, name):
        raise RuntimeError(ITEM if name in ("item", "tolist") else DATA_DEPENDENT)

    def __repr__(self):
        return f"BatchedArray(level={self.level}, bdim={self.bdim}, shape={list(self.shape)})"


class _Values:
    """What reading a batched tensor's values returns: every use raises torch's vmap error."""

    def item(self):
        raise RuntimeError(ITEM)

    tolist = item

    def __bool__(self):
        raise RuntimeError(DATA_DEPENDENT)

    __int__ = __float__ = __index__ = __array__ = __bool__

    def __getattr__(self, name):
        raise RuntimeError(DATA_DEPENDENT)


def make(value, bdim, level):
    """A batched tensor (per-sample view) of `value`, whose dim `bdim` is the batch of `level`."""
    t = Tensor.__new__(Tensor)
    t._data = BatchedArray(value, bdim, level)
    t._dtype = value._dtype
    if value._device is not cpu:
        t._device = value._device
    return t


def wrap_special(arr, dtype):
    """_dispatch.wrap of a BatchedArray (a new tensor over the same values, as detach() makes:
    the batched tensor of the detached value) or of a vmap random draw; None otherwise."""
    if type(arr) is BatchedArray:
        v = arr.value.detach()
        if v._dtype is not dtype:
            v = v.to(dtype)
        return make(v, arr.bdim, arr.level)
    if getattr(type(arr), "vmap_levels", None) is not None:
        from .vmap import wrap_draw
        return wrap_draw(arr, dtype)
    return None


def info(t):
    """(BatchedArray, level) of a tensor, or (None, 0) for an unbatched one."""
    if isinstance(t, Tensor):
        d = t._data
        if type(d) is BatchedArray:
            return d, d.level
    return None, 0


def level_of(t):
    return info(t)[1]


def unwrap(t, level):
    """(value, bdim) of t at `level`; (t, None) when t is not batched at that level."""
    if isinstance(t, Tensor):
        d = t._data
        if type(d) is BatchedArray and d.level == level:
            return d.value, d.bdim
    return t, None


PASS = _dispatch._VMAP_PASS


def hook(p, args, attrs):
    """_dispatch.apply's vmap hook: PASS for unbatched arguments, else the batched result."""
    lvl = 0
    for a in args:
        if isinstance(a, Tensor):
            d = a._data
            if type(d) is BatchedArray and d.level > lvl:
                lvl = d.level
    if not lvl:
        return PASS
    from . import batching
    return batching.run(p, args, attrs, lvl)
