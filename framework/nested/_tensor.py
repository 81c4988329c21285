"""NestedTensor: a batch of tensors of different sizes kept in one values buffer.

jagged   `_values` with `_offsets` (B + 1, int64), optional `_lengths`, and `_ragged_idx`, the
         nested dim that is ragged: nested dim d > 0 is values' dim d - 1, the ragged one
         holding the components one after another (PyTorch's layout). Shape (B, j1, D).
strided  `_values` is a flat buffer and `_sizes` each component's shape (any dims ragged).
Components are views of `_values` made with ordinary Kiln ops (narrow, view, movedim), and
results are packed back with cat, so autograd through nested ops needs no rule of its own.
"""
from runtime import dtypes as dt
from ..tensor import Tensor, _shape
from ._storage import STORAGE, NestedInt, no_sizes


def _S():
    from .. import ops_shape
    return ops_shape


def _int_list(t):
    return [int(v) for v in t._data.reshape(-1)]


class NestedTensor(Tensor):
    _values = None
    _offsets = None
    _lengths = None
    _ragged_idx = 1
    _sizes = None       # strided: the components' shapes
    _j = None           # jagged: the NestedInt of the ragged dim (shared by same-offset results)

    # ---- metadata -------------------------------------------------------------------------------
    is_nested = True

    @property
    def _jagged(self):
        return self._sizes is None

    @property
    def layout(self):
        from .. import jagged, strided
        return jagged if self._jagged else strided

    @property
    def shape(self):
        if not self._jagged:
            raise no_sizes()
        dims = [len(self._offsets._data) - 1] + list(self._values.shape)
        dims[self._ragged_idx] = self._j
        return _shape(dims)

    def size(self, dim=None):
        if dim is None or self._jagged:
            return self.shape if dim is None else self.shape[self._norm(dim, "size")]
        d = self._norm(dim, "size")
        if d == 0:
            return len(self._sizes)
        vals = {s[d - 1] for s in self._sizes}
        if len(vals) != 1:
            raise RuntimeError(f"Given dimension {dim} is irregular and does not have a size.")
        return vals.pop()

    def _norm(self, dim, op):
        from compiler.ir.registry import norm_dim
        return norm_dim(op, dim, self.dim())

    def dim(self):
        if self._jagged:
            return self._values._data.ndim + 1
        return 1 + (len(self._sizes[0]) if self._sizes else 0)

    ndimension = dim

    @property
    def ndim(self):
        return self.dim()

    def numel(self):
        return sum(c._data.size for c in self.unbind()) if self._lengths is not None else \
            self._values._data.size

    nelement = numel

    def __len__(self):
        if not self._jagged:
            raise no_sizes()
        return len(self._offsets._data) - 1

    def values(self):
        return self._values

    def offsets(self):
        if not self._jagged:
            raise AttributeError("'Tensor' object has no attribute 'offsets'")
        return self._offsets

    def lengths(self):
        if not self._jagged:
            raise AttributeError("'Tensor' object has no attribute 'lengths'")
        return self._lengths

    def is_contiguous(self, memory_format=None):
        return self._lengths is None and self._values.is_contiguous() if self._jagged else True

    def stride(self, dim=None):
        raise RuntimeError("Internal error: NestedTensorImpl doesn't support strides. Please "
                           "file an issue.")

    def tolist(self):
        if self._jagged:
            raise RuntimeError(".tolist() is not supported for tensor subclasses, got "
                               "NestedTensor")
        return self.stride()

    def numpy(self, *, force=False):
        if self._jagged:
            raise RuntimeError(".numpy() is not supported for tensor subclasses.")
        raise no_sizes()

    def __array__(self, dtype=None, copy=None):
        self.numpy()

    # ---- autograd: the values buffer carries it -------------------------------------------------
    @property
    def requires_grad(self):
        return self._values.requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        self._values.requires_grad_(requires_grad)
        return self

    @property
    def is_leaf(self):
        return self._values.is_leaf

    @property
    def grad_fn(self):
        return self._values.grad_fn

    @property
    def _node(self):
        return self._values._node

    @property
    def grad(self):
        g = self._values._grad
        return None if g is None else _like(self, g)

    @grad.setter
    def grad(self, g):
        self._values.grad = None if g is None else g._values

    def retain_grad(self):
        self._values.retain_grad()

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if gradient is None:
            if not self.requires_grad:
                raise RuntimeError("element 0 of tensors does not require grad and does not have "
                                   "a grad_fn")
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        self._values.backward(gradient._values, retain_graph, create_graph, inputs)

    def _on_values(self, f):
        """f(values) with self's structure (the *_like functions)."""
        return _like(self, f(self._values))

    def detach(self):
        return _like(self, self._values.detach())

    @property
    def data(self):
        return self.detach()

    # ---- components ---------------------------------------------------------------------------
    def unbind(self, dim=0):
        if self._norm(dim, "unbind") != 0:
            raise RuntimeError("unbind(): only supported for NestedTensor on dim=0")
        S = _S()
        v = self._values
        if not self._jagged:
            out, start = [], 0
            for s in self._sizes:
                n = 1
                for k in s:
                    n *= k
                out.append(S.reshape(S.narrow(v, 0, start, n), s))
                start += n
            return tuple(out)
        off = _int_list(self._offsets)
        lens = _int_list(self._lengths) if self._lengths is not None else \
            [off[i + 1] - off[i] for i in range(len(off) - 1)]
        r = self._ragged_idx
        out = []
        for i, n in enumerate(lens):
            out.append(S.narrow(v, r - 1, off[i], n))
        return tuple(out)

    def __iter__(self):
        return iter(self.unbind())

    def __getitem__(self, k):
        from . import _ops
        return _ops.getitem(self, k)

    def __repr__(self, *, tensor_contents=None):
        return _repr(self)

    def __reduce_ex__(self, proto):
        raise NotImplementedError("Kiln cannot pickle nested tensors yet")


def _suffix(t):
    if t._values._node is not None:
        return f"grad_fn=<{t._values._node._name}>"
    return "requires_grad=True" if t._values._rg else None


def _repr(t):
    if t._jagged:
        parts = [f"size={tuple(t.shape)}", f"offsets={t._offsets!r}"]
        node = t._values._node
        if node is not None:
            parts.append(f"grad_fn={node!r}")
        elif t._values._rg:
            parts.append("requires_grad=True")
        parts.append(f"contiguous={t.is_contiguous()}")
        return f"NestedTensor({', '.join(parts)})"
    rows = []
    for c in t.unbind():
        c = c.detach()
        if t.requires_grad:
            c._rg = True     # (PyTorch prints its components as requiring grad)
        rows.append("\n".join("  " + ln for ln in repr(c).split("\n")))
    suf = _suffix(t)
    body = ",\n".join(rows) if rows else ""
    return "nested_tensor([\n" + body + "\n]" + (f", {suf})" if suf else ")")


# ---- construction -----------------------------------------------------------------------------

def jagged(values, offsets, lengths=None, ragged_idx=1, j=None):
    t = NestedTensor.__new__(NestedTensor)
    t._data = STORAGE
    t._dtype = values._dtype
    t._device = values._device
    t._values, t._offsets, t._lengths, t._ragged_idx = values, offsets, lengths, ragged_idx
    t._j = j if j is not None else NestedInt()
    return t


def strided(buf, sizes):
    t = NestedTensor.__new__(NestedTensor)
    t._data = STORAGE
    t._dtype = buf._dtype
    t._device = buf._device
    t._values, t._sizes = buf, [tuple(int(k) for k in s) for s in sizes]
    return t


def _like(t, values, ragged_idx=None):
    """A nested tensor of t's structure over new values (same offsets, same ragged size)."""
    if t._jagged:
        return jagged(values, t._offsets, t._lengths,
                      t._ragged_idx if ragged_idx is None else ragged_idx, t._j)
    return strided(values, t._sizes)


def pack(comps, like=None, ragged_idx=1, jagged_layout=True):
    """Components (with history) packed into a new nested tensor: jagged when jagged_layout
    (ragged in component dim ragged_idx - 1), strided else. like: a jagged tensor whose
    offsets and ragged size the result keeps when the lengths agree."""
    S = _S()
    if not jagged_layout:
        from ..ops_shape import cat
        if not comps:
            from ..creation import zeros
            return strided(zeros(0), [])
        return strided(cat([S.reshape(c, (-1,)) for c in comps]), [c.shape for c in comps])
    r = ragged_idx
    values = S.cat(comps, r - 1)
    lens = [c._data.shape[r - 1] for c in comps]
    if like is not None and like._jagged and like._lengths is None:
        off = _int_list(like._offsets)
        if lens == [off[i + 1] - off[i] for i in range(len(off) - 1)]:
            return jagged(values, like._offsets, None, r, like._j)
    from .._dispatch import wrap
    import numpy as np
    off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return jagged(values, wrap(off, dt.int64), None, r)



def _bind_methods():
    from . import _ops

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list))
                            else dims)

    def reshape(self, *shape):
        return _ops.reshape(self, shape)

    def view(self, *shape):
        return _ops.reshape(self, shape, "view")

    def unflatten(self, dim, sizes):
        return _ops.unflatten(self, dim, sizes)

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def chunk(self, chunks, dim=0):
        return _ops.split(self, chunks, dim, "chunk")

    def split(self, split_size, dim=0):
        return _ops.split(self, split_size, dim)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def softmax(self, dim, dtype=None):
        return _ops.softmax(self, dim, dtype)

    def log_softmax(self, dim, dtype=None):
        return _ops.softmax(self, dim, dtype, log=True)

    def sum(self, dim=None, keepdim=False, *, dtype=None):
        return _ops.sum(self, dim, keepdim, dtype)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        return _ops.mean(self, dim, keepdim, dtype)

    def clone(self, *, memory_format=None):
        return _like(self, self._values.clone())

    def contiguous(self, memory_format=None):
        if self.is_contiguous():
            return self
        return pack(self.unbind(), like=self, ragged_idx=self._ragged_idx)

    def to(self, *args, **kwargs):
        from ..tensor import _to_args
        dtype, device, copy, _ = _to_args(args, kwargs)
        v = self._values.to(dtype=dtype, device=device, copy=copy)
        return self if v is self._values else _like(self, v)

    def expand(self, *sizes):
        return _ops.expand(self, sizes[0] if len(sizes) == 1 and
                           isinstance(sizes[0], (tuple, list)) else sizes)

    def squeeze(self, dim=None, *more):
        if dim is None or more or isinstance(dim, (tuple, list)):
            from ._storage import unsupported
            raise unsupported("squeeze")
        return _ops.squeeze(self, dim)

    def narrow(self, dim, start, length):
        return _ops.narrow(self, dim, start, length)

    def to_padded_tensor(self, padding, output_size=None):
        return _ops.to_padded_tensor(self, padding, output_size)

    def matmul(self, other):
        return _ops.matmul(self, other)

    def bmm(self, other):
        return _ops.matmul(self, other, "bmm")

    def fill_(self, value):
        self._values.fill_(value)
        return self

    def zero_(self):
        self._values.zero_()
        return self

    def copy_(self, src, non_blocking=False):
        from ._ops import _tshape
        if isinstance(src, NestedTensor) and src._jagged == self._jagged and \
                tuple(src._values.shape) == tuple(self._values.shape) and \
                [c.shape for c in src.unbind()] == [c.shape for c in self.unbind()]:
            self._values.copy_(src._values)
            return self
        raise RuntimeError(f"copy_(): expected compatible input and src shapes, but got: "
                           f"{_tshape(self)} and {_tshape(src)}")

    for f in (transpose, permute, reshape, view, unflatten, unsqueeze, chunk, split, flatten,
              softmax, log_softmax, sum, mean, clone, contiguous, to, to_padded_tensor, matmul,
              bmm, narrow, squeeze, expand, fill_, zero_, copy_):
        setattr(NestedTensor, f.__name__, f)

    def in_place(name):
        # (the out-of-place op's result written into the values buffer: dense copy_ keeps
        # autograd's and the version counter's rules)
        def f(self, *args, **kwargs):
            r = getattr(self, name)(*args, **kwargs)
            if r.dtype is not self.dtype and r.dtype.is_floating_point and \
                    not self.dtype.is_floating_point:
                raise RuntimeError(f"result type {r.dtype} can't be cast to the desired output "
                                   f"type {self.dtype}")
            self._values.copy_(r._values)
            return self
        f.__name__ = name + "_"
        return f

    for n in ("add", "sub", "mul", "div", "masked_fill", "clamp", "clamp_min", "clamp_max",
              "pow", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "reciprocal", "square", "sin",
              "cos", "relu", "sigmoid", "tanh", "floor", "ceil", "round", "trunc", "sign"):
        setattr(NestedTensor, n + "_", in_place(n))
    NestedTensor.swapaxes = NestedTensor.swapdims = transpose
    NestedTensor.__matmul__ = matmul


_bind_methods()
