"""torch.sparse: sparse COO tensors (layout torch.sparse_coo), cpu only.

A sparse tensor is a SparseTensor: a Tensor whose `_ix` (int64, sparse_dim x nnz) and `_vals`
(nnz x dense dims) are ordinary Kiln tensors without history, `_coal` says whether the indices
are sorted and unique, and `_data` is a framework._sparse_storage.NoStrided, so a dense op that
meets a sparse tensor raises PyTorch's NotImplementedError instead of computing on it.
Autograd goes through custom Functions renamed to PyTorch's grad_fn names: gradients of a
sparse tensor are sparse (its coalesced pattern), gradients of dense inputs are dense.
Supported: construction and conversion (sparse_coo_tensor, to_sparse, to_dense, coalesce),
indices/values, +, -, * and / by scalars, elementwise * by a same-shape dense tensor, sparse
+ sparse, dense + sparse, mm/matmul with a dense matrix, transpose of the sparse dims, sum,
softmax/log_softmax (no autograd), the sparse gradient of embedding(sparse=True), and the
gradient accumulation and optimizer updates (SGD, Adagrad, SparseAdam) that read it.
"""
import numpy as np

from runtime import dtypes as dt
from runtime.device import cpu, canonical
from ._sparse_storage import NoStrided, SparseLayoutError, unsupported  # noqa: F401
from .tensor import Tensor
from ._dispatch import STATE, wrap, rename
from .autograd.function import Function

__all__ = ["mm", "sum", "addmm", "softmax", "log_softmax", "check_sparse_tensor_invariants",
           "sampled_addmm"]


# ---- index arithmetic (NumPy, cpu) -----------------------------------------------------------

def _check_bounds(ix, sizes):
    if ix.size == 0:
        return
    lo, hi = ix.min(axis=1), ix.max(axis=1)
    for d, n in enumerate(sizes):
        if lo[d] < 0:
            raise RuntimeError(f"found negative index {int(lo[d])} for dim {d}")
        if hi[d] >= n:
            raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is {n} "
                               f"but found index {int(hi[d])}")


def _lin(ix, sizes):
    """Row-major position of each column of ix in the sparse dims `sizes` (range-checked: an
    out-of-range index made with check_invariants off fails here, never reads out of bounds)."""
    _check_bounds(ix, sizes)
    if ix.shape[1] == 0 or not sizes:
        return np.zeros(ix.shape[1], np.int64)
    return np.ravel_multi_index(tuple(ix), sizes).astype(np.int64, copy=False)


def _unlin(lin, sizes):
    if not sizes:
        return np.zeros((0, lin.shape[0]), np.int64)
    return np.array(np.unravel_index(lin, sizes), dtype=np.int64).reshape(len(sizes), -1)


def _sum_rows(v, inv, n):
    out = np.zeros((n,) + v.shape[1:], v.dtype)
    np.add.at(out, inv, v)
    return out


def _coalesce_arrays(ix, v, sizes):
    lin = _lin(ix, sizes)
    uniq, inv = np.unique(lin, return_inverse=True)
    return _unlin(uniq, sizes), _sum_rows(v, inv.reshape(-1), uniq.shape[0])


def _flat(a, sd):
    """Dense array a viewed as (prod(sparse sizes), *dense sizes)."""
    return a.reshape((int(np.prod(a.shape[:sd], dtype=np.int64)),) + a.shape[sd:])


def _dense_array(s):
    ix, v = s._ix._data, s._vals._data
    sd = ix.shape[0]
    out = np.zeros(s.shape, v.dtype)
    np.add.at(_flat(out, sd), _lin(ix, s.shape[:sd]), v)
    return out


def _dense_of(g):
    return _dense_array(g) if isinstance(g, SparseTensor) else np.asarray(g._data)


def _pattern(s):
    """The coalesced indices of s (what its gradient's indices are, as in PyTorch)."""
    ix = s._ix._data
    if s._coal:
        return ix
    sd = ix.shape[0]
    return _unlin(np.unique(_lin(ix, s.shape[:sd])), s.shape[:sd])


def _mask(G, ix, shape, dtype, coalesced=True):
    """Sparse tensor with indices ix and the values of dense array G there."""
    sd = ix.shape[0]
    vals = _flat(G, sd)[_lin(ix, shape[:sd])]
    return _make(ix, wrap(np.ascontiguousarray(vals, dtype.np), dtype), shape, coalesced)


# ---- the tensor ---------------------------------------------------------------------------------

def _make(ix, vals, shape, coalesced):
    """A SparseTensor over int64 index array ix and values tensor vals (no history)."""
    t = SparseTensor.__new__(SparseTensor)
    t._data = NoStrided(shape)
    t._dtype = vals._dtype
    t._ix = wrap(ix, dt.int64)
    t._vals = vals
    t._coal = bool(coalesced)
    if STATE.inference:
        t._inf = True
    return t


def _cpu_only(*ts, what="sparse COO tensors"):
    for t in ts:
        if isinstance(t, Tensor) and t._device is not cpu:
            raise NotImplementedError(f"{what} are supported on the cpu only in Kiln (got a "
                                      f"tensor on '{t._device}')")


def _run(fn, name, *args):
    out = fn.apply(*args)
    return rename(out, name) if out._node is not None else out


def _need_sparse(t, op):
    if not isinstance(t, SparseTensor):
        raise RuntimeError(f"{op} expected sparse coordinate tensor layout but got Strided")


class SparseTensor(Tensor):
    _ix = None
    _vals = None
    _coal = False

    # ---- metadata ---------------------------------------------------------------------------
    @property
    def layout(self):
        from . import sparse_coo
        return sparse_coo

    @property
    def is_sparse(self):
        return True

    def sparse_dim(self):
        return self._ix._data.shape[0]

    def dense_dim(self):
        return self._vals._data.ndim - 1

    def _nnz(self):
        return self._ix._data.shape[1]

    def is_coalesced(self):
        return self._coal

    def _indices(self):
        return self._ix.detach()

    def _values(self):
        return self._vals.detach()

    def indices(self):
        if not self._coal:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call "
                               ".coalesce() first")
        return self._ix.detach()

    def values(self):
        if not self._coal:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call "
                               ".coalesce() first")
        return _run(_Values, "ValuesBackward0", self)

    def type(self, dtype=None):
        if dtype is None:
            return f"torch.sparse.{dt.tname(self._dtype)}Tensor"
        return self.to(dtype)

    def is_contiguous(self, memory_format=None):
        return False

    def stride(self, dim=None):
        # PyTorch 2.x reports zero strides for a sparse COO tensor (it has no strided storage)
        st = (0,) * len(self.shape)
        if dim is None:
            return st
        from compiler.ir.registry import norm_dim
        return st[norm_dim("stride", dim, len(self.shape))]

    def data_ptr(self):
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")

    def untyped_storage(self):
        raise NotImplementedError("Cannot access storage of SparseTensorImpl")

    storage = untyped_storage

    def __repr__(self, *, tensor_contents=None):
        return _repr(self)

    # ---- conversion ---------------------------------------------------------------------------
    def numpy(self, *, force=False):
        raise TypeError("can't convert Sparse layout tensor to numpy. Use Tensor.to_dense() "
                        "first.")

    def __array__(self, dtype=None, copy=None):
        self.numpy()

    def tolist(self):
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted "
                               "to Scalar")
        return self.to_dense().item()

    def to_dense(self, dtype=None, *, masked_grad=None):
        r = _run(_ToDense, "ToDenseBackward0", self)
        return r if dtype is None or dtype is r._dtype else r.to(dtype)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        if _compressed_layout(layout):
            from .sparse_compressed import to_compressed
            return to_compressed(self, layout, blocksize, dense_dim)
        _check_layout(layout)
        if sparse_dim is not None and sparse_dim != self.sparse_dim():
            raise NotImplementedError(f"to_sparse: changing the sparse_dim of a sparse tensor "
                                      f"({self.sparse_dim()} to {sparse_dim}) is not supported "
                                      f"by Kiln; go through to_dense()")
        return self

    def coalesce(self):
        if self._coal:
            return self
        return _run(_Coalesce, "CoalesceBackward0", self)

    def detach(self):
        t = _make(self._ix._data, self._vals.detach(), self.shape, self._coal)
        return t

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, other):
        _need_sparse(other, "data assignment")
        self._data, self._dtype = NoStrided(other.shape), other._dtype
        self._ix, self._vals, self._coal = other._ix, other._vals.detach(), other._coal

    def clone(self, *, memory_format=None):
        return _run(_Clone, "CloneBackward0", self)

    def to(self, *args, **kwargs):
        from .tensor import _to_args
        dtype, device, copy, _ = _to_args(args, kwargs)
        if device is not None and canonical(device) is not cpu:
            raise NotImplementedError(f"sparse COO tensors are supported on the cpu only in "
                                      f"Kiln (asked to move one to '{device}')")
        if dtype is not None and dtype is not self._dtype:
            return _run(_ToDtype, "ToCopyBackward0", self, dtype)
        return self.clone() if copy else self

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        return self.to("cuda" if device is None else device)

    def __reduce_ex__(self, proto):
        return (_rebuild, (np.array(self._ix._data), np.array(self._vals._data),
                           self._dtype.name, tuple(self.shape), self._coal, self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        if self._node is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol at the moment.  If you were "
                               "attempting to deepcopy a module, this may be because of a "
                               "torch.nn.utils.weight_norm usage, see https://github.com/pytorch/"
                               "pytorch/pull/103001")
        t = _make(self._ix._data.copy(), wrap(self._vals._data.copy(), self._dtype), self.shape,
                  self._coal)
        t._rg = self._rg
        if self._grad is not None:
            import copy
            t._grad = copy.deepcopy(self._grad, memo)
        memo[id(self)] = t
        return t

    # ---- shape ops -----------------------------------------------------------------------------
    def view(self, *shape):
        raise unsupported("view")

    def reshape(self, *shape):
        raise RuntimeError("reshape is not implemented for sparse tensors")

    def transpose(self, dim0, dim1):
        from compiler.ir.registry import norm_dim
        n = self.ndim
        d0, d1 = norm_dim("transpose", dim0, n), norm_dim("transpose", dim1, n)
        sd = self.sparse_dim()
        if d0 >= sd or d1 >= sd:
            raise RuntimeError(f"sparse transpose: transposed dimensions must be sparse Got "
                               f"sparse_dim: {sd}, d0: {d0}, d1: {d1}")
        return _run(_Transpose, "TransposeBackward0", self, d0, d1)

    swapaxes = swapdims = transpose

    def t(self):
        sd, dd = self.sparse_dim(), self.dense_dim()
        if sd > 2 or dd != 0:
            raise RuntimeError(f"t() expects a tensor with <= 2 sparse and 0 dense dimensions, "
                               f"but got {sd} sparse and {dd} dense dimensions")
        if self.ndim < 2:
            return _run(_Clone, "TBackward0", self)
        return _run(_Transpose, "TBackward0", self, 0, 1)

    @property
    def T(self):
        return self.t()

    # ---- arithmetic ----------------------------------------------------------------------------
    def add(self, other, *, alpha=1):
        if isinstance(other, SparseTensor):
            return _add_sparse(self, other, alpha)
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) "
                           "instead.")

    def sub(self, other, *, alpha=1):
        return self.add(other, alpha=-alpha)

    subtract = sub

    def __add__(self, other):
        return self.add(other)

    def __sub__(self, other):
        return self.sub(other)

    def __radd__(self, other):
        return _dense_plus(other, self, 1)

    def __rsub__(self, other):
        return _dense_plus(other, self, -1)

    def add_(self, other, *, alpha=1):
        if not isinstance(other, SparseTensor):
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) "
                               "instead.")
        r = _add_sparse(self, other, alpha)
        return self._set_(r, "add_")

    def sub_(self, other, *, alpha=1):
        return self.add_(other, alpha=-alpha)

    __iadd__ = add_
    __isub__ = sub_

    def mul(self, other):
        return _mul(self, other)

    multiply = mul

    def __mul__(self, other):
        return _mul(self, other)

    __rmul__ = __mul__

    def div(self, other):
        if isinstance(other, Tensor) and other.ndim != 0:
            raise unsupported("div")
        return _run(_Scale, "DivBackward0", self, _scalar(other), True)

    divide = true_divide = div

    def __truediv__(self, other):
        return self.div(other)

    def neg(self):
        return _run(_Scale, "NegBackward0", self, -1, False)

    negative = neg

    def __neg__(self):
        return self.neg()

    def __pos__(self):
        return self

    def mul_(self, other):
        return self._set_(self.mul(other), "mul_")

    def div_(self, other):
        return self._set_(self.div(other), "div_")

    def zero_(self):
        sd = self.sparse_dim()
        empty = np.zeros((0,) + self._vals._data.shape[1:], self._vals._data.dtype)
        return self._set_(_make(np.zeros((sd, 0), np.int64), wrap(empty, self._dtype),
                                self.shape, True), "zero_")

    def _set_(self, r, name):
        """self takes r's indices and values (in-place sparse ops replace both arrays)."""
        if STATE.grad_enabled and (self.requires_grad or r.requires_grad):
            raise NotImplementedError(f"{name} on a sparse tensor that requires grad is not "
                                      "supported by Kiln; use the out-of-place form")
        self._ix, self._vals, self._coal, self._dtype = r._ix, r._vals, r._coal, r._dtype
        self._bump()
        return self

    def sum(self, dim=None, keepdim=False, dtype=None):
        return _sum(self, dim, dtype, keepdim, False)

    # ---- products ------------------------------------------------------------------------------
    def mm(self, mat2):
        return _mm(self, mat2, False)

    def matmul(self, other):
        return _matmul(self, other)

    def __matmul__(self, other):
        if not isinstance(other, Tensor):
            return NotImplemented
        return _matmul(self, other)

    def __rmatmul__(self, other):
        if not isinstance(other, Tensor):
            return NotImplemented
        return _matmul(other, self)


def _rebuild(ix, vals, dtype_name, shape, coalesced, requires_grad):
    t = _make(ix, wrap(vals, dt._dtype_by_name(dtype_name)), shape, coalesced)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _compressed_layout(layout):
    return getattr(layout, "name", "") in ("sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc")


def _is_compressed(*ts):
    return any(getattr(t, "_compressed", False) for t in ts)


def _check_layout(layout):
    from . import sparse_coo
    if layout is not None and layout is not sparse_coo:
        raise NotImplementedError(f"to_sparse: Kiln supports layout=torch.sparse_coo only (got "
                                  f"{layout})")


def _scalar(x):
    if isinstance(x, Tensor):
        if x.ndim != 0 or isinstance(x, SparseTensor):
            raise unsupported("mul")
        if x.requires_grad and STATE.grad_enabled:
            raise NotImplementedError("Kiln: the gradient of a sparse tensor times a 0-d tensor "
                                      "with respect to that tensor is not supported")
        return x.item()
    if not isinstance(x, (bool, int, float)):
        raise TypeError(f"unsupported operand for a sparse tensor: {type(x).__name__}")
    return x


# ---- construction ---------------------------------------------------------------------------

class check_sparse_tensor_invariants:
    """Turns the index checks of sparse_coo_tensor on by default (a context manager, or the
    enable()/disable()/is_enabled() switch), as torch.sparse.check_sparse_tensor_invariants."""
    _enabled = False

    def __init__(self, enable=True):
        self.state = enable
        self.saved = None

    @staticmethod
    def is_enabled():
        return check_sparse_tensor_invariants._enabled

    @staticmethod
    def enable():
        check_sparse_tensor_invariants._enabled = True

    @staticmethod
    def disable():
        check_sparse_tensor_invariants._enabled = False

    def __enter__(self):
        self.saved = check_sparse_tensor_invariants._enabled
        check_sparse_tensor_invariants._enabled = self.state
        return self

    def __exit__(self, *exc):
        check_sparse_tensor_invariants._enabled = self.saved


def sparse_coo_tensor(indices=None, values=None, size=None, *, dtype=None, device=None,
                      pin_memory=False, requires_grad=False, check_invariants=None,
                      is_coalesced=None):
    """A sparse COO tensor (torch.sparse_coo_tensor): indices (sparse_dim x nnz, any real dtype,
    stored as int64), values (nnz x dense sizes). size=None infers the sparse sizes from the
    largest indices. check_invariants=True (or check_sparse_tensor_invariants) checks the
    indices' range here; otherwise the first op that reads them does."""
    from .creation import tensor as _tensor
    if device is not None and canonical(device) is not cpu:
        raise NotImplementedError(f"sparse COO tensors are supported on the cpu only in Kiln "
                                  f"(got device='{device}')")
    if values is None and (size is not None or isinstance(indices, (tuple, list))):
        # PyTorch's sparse_coo_tensor(size) overload: an empty tensor of that size
        size = tuple(indices if size is None else size)
        return sparse_coo_tensor(np.zeros((len(size), 0), np.int64),
                                 np.zeros((0,), (dtype or dt.default.value).np), size,
                                 device=device, requires_grad=requires_grad)
    if indices is None or values is None:
        raise TypeError("sparse_coo_tensor() missing required arguments 'indices' and 'values' "
                        "(or a size)")
    if not isinstance(indices, Tensor):
        indices = _tensor(indices)
    if not isinstance(values, Tensor):
        values = _tensor(values, dtype=dtype)
    if isinstance(indices, SparseTensor) or isinstance(values, SparseTensor):
        raise TypeError("sparse_coo_tensor(): indices and values must be strided tensors")
    _cpu_only(indices, values)
    if dtype is not None and values._dtype is not dtype:
        values = values.to(dtype)
    ix = np.asarray(indices._data)
    if ix.ndim != 2:
        raise RuntimeError(f"indices must be sparse_dim x nnz, but got: {list(ix.shape)}")
    if indices._dtype.is_complex or indices._dtype is dt.bool_:
        raise RuntimeError(f"indices must be an int64 tensor (got {indices._dtype})")
    ix = ix.astype(np.int64, copy=False)
    if values.ndim == 0:
        raise RuntimeError("values must have at least one dimension (nnz first), got a 0-d "
                           "tensor")
    nnz, sd = ix.shape[1], ix.shape[0]
    if values.shape[0] != nnz:
        raise RuntimeError(f"indices and values must have same nnz, but got nnz from indices: "
                           f"{nnz}, nnz from values: {values.shape[0]}")
    dense = tuple(values.shape[1:])
    if size is None:
        sizes = tuple(int(m) + 1 for m in ix.max(axis=1)) if nnz else (0,) * sd
        if nnz and ix.min() < 0:
            _check_bounds(ix, sizes)
        size = sizes + dense
    else:
        from .tensor import Size
        size = tuple(Size(size))
        if len(size) != sd + len(dense):
            raise RuntimeError(f"'len(size) == sparse_dim + dense_dim' is not satisfied: "
                               f"len(size) = {len(size)}, sparse_dim = {sd}, dense_dim = "
                               f"{len(dense)}")
        if size[sd:] != dense:
            raise RuntimeError(f"values has incorrect size, expected {[nnz] + list(size[sd:])}, "
                               f"got {list(values.shape)}")
        if any(s < 0 for s in size):
            raise RuntimeError(f"sparse_coo_tensor: negative size {list(size)}")
    check = check_sparse_tensor_invariants._enabled if check_invariants is None \
        else check_invariants
    if check:
        _check_bounds(ix, size[:sd])
    coal = nnz < 2 if is_coalesced is None else bool(is_coalesced)
    out = _run(_FromValues, "SparseCooTensorWithDimsAndTensorsBackward0", values, ix,
               tuple(size), coal)
    if requires_grad and out._node is None:
        out.requires_grad_(True)
    return out


def _to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
    """Tensor.to_sparse: the nonzero entries (rows of the last ndim - sparse_dim dims that hold
    a nonzero) of a dense tensor, coalesced."""
    if _compressed_layout(layout):
        from .sparse_compressed import to_compressed
        return to_compressed(self, layout, blocksize, dense_dim)
    _check_layout(layout)
    _cpu_only(self, what="sparse COO tensors")
    n = self.ndim
    sd = n if sparse_dim is None else sparse_dim
    if not 0 <= sd <= n:
        raise RuntimeError(f"dense_to_sparse: sparse_dim argument must be in [0,{n}] range, "
                           f"but {sd} is given")
    if sd == 0 and n > 0:
        raise RuntimeError("dense_to_sparse: sparse_dim argument must be in >0 when "
                           "self.dim()>0")
    return _run(_FromDense, "ToSparseBackward1" if sparse_dim is None else "ToSparseBackward0",
                self, sd)


def _dense_to_dense(self, dtype=None, *, masked_grad=None):
    return self if dtype is None or dtype is self._dtype else self.to(dtype)


def _sparse_mask(self, mask):
    """Tensor.sparse_mask(sparse): the values of self at mask's indices (as given: an
    uncoalesced mask keeps its duplicates and its flag, as in PyTorch)."""
    _need_sparse(mask, "sparse_mask")
    if tuple(self.shape) != tuple(mask.shape):
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size "
                           f"{list(self.shape)} but mask has size {list(mask.shape)}")
    return _run(_MaskFn, "SparseMaskBackward0", self, mask)


Tensor.to_sparse = _to_sparse
Tensor.to_sparse_coo = lambda self: _to_sparse(self)
Tensor.to_dense = _dense_to_dense
Tensor.sparse_mask = _sparse_mask
SparseTensor.sparse_mask = _sparse_mask


# ---- autograd Functions -------------------------------------------------------------------------

class _FromValues(Function):
    @staticmethod
    def forward(ctx, values, ix, size, coal):
        ctx.ix, ctx.size = ix, size
        return _make(ix, values.detach(), size, coal)

    @staticmethod
    def backward(ctx, g):
        sd = ctx.ix.shape[0]
        G = _dense_of(g)
        return wrap(np.ascontiguousarray(_flat(G, sd)[_lin(ctx.ix, ctx.size[:sd])]),
                    g._dtype), None, None, None


class _FromDense(Function):
    @staticmethod
    def forward(ctx, x, sd):
        a = np.asarray(x._data)
        if a.ndim == 0:
            keep = np.array([a != 0]).reshape(-1)
            ix = np.zeros((0, int(keep.sum())), np.int64)
            vals = a.reshape(1)[keep]
        else:
            nz = a != 0
            rows = nz.reshape(a.shape[:sd] + (-1,)).any(axis=-1) if sd < a.ndim else nz
            ix = np.array(np.nonzero(rows), dtype=np.int64).reshape(sd, -1)
            vals = a[tuple(ix)]
        return _make(ix, wrap(np.ascontiguousarray(vals), x._dtype), tuple(a.shape), True)

    @staticmethod
    def backward(ctx, g):
        return wrap(_dense_of(g), g._dtype), None


class _ToDense(Function):
    @staticmethod
    def forward(ctx, s):
        ctx.s = s.detach()
        return wrap(_dense_array(s), s._dtype)

    @staticmethod
    def backward(ctx, g):
        s = ctx.s
        # PyTorch's gradient has s's coalesced pattern but is not flagged coalesced (as
        # mul's, mm's and sum(dim)'s below)
        return _mask(np.asarray(g._data), _pattern(s), s.shape, g._dtype, False)


class _Values(Function):
    @staticmethod
    def forward(ctx, s):
        ctx.s = s.detach()
        return wrap(s._vals._data, s._dtype)

    @staticmethod
    def backward(ctx, g):
        s = ctx.s
        return _make(s._ix._data, wrap(np.asarray(g._data), g._dtype), s.shape, s._coal)


class _MaskFn(Function):
    @staticmethod
    def forward(ctx, x, mask):
        ctx.mask = mask.detach()
        return _mask(_dense_of(x), mask._ix._data, mask.shape, x._dtype, mask._coal)

    @staticmethod
    def backward(ctx, g):
        # each (possibly repeated) mask index reads self once, so its gradient adds once per entry
        m = ctx.mask
        return wrap(_dense_array(_mask(_dense_of(g), m._ix._data, m.shape, g._dtype)),
                    g._dtype), None


class _Coalesce(Function):
    @staticmethod
    def forward(ctx, s):
        sd = s.sparse_dim()
        ix, v = _coalesce_arrays(s._ix._data, s._vals._data, s.shape[:sd])
        return _make(ix, wrap(v, s._dtype), s.shape, True)

    @staticmethod
    def backward(ctx, g):
        return g


class _Clone(Function):
    @staticmethod
    def forward(ctx, s):
        return _make(s._ix._data.copy(), wrap(s._vals._data.copy(), s._dtype), s.shape, s._coal)

    @staticmethod
    def backward(ctx, g):
        return g


class _ToDtype(Function):
    @staticmethod
    def forward(ctx, s, dtype):
        ctx.dtype = s._dtype
        return _make(s._ix._data, s._vals.to(dtype), s.shape, s._coal)

    @staticmethod
    def backward(ctx, g):
        return _cast(g, ctx.dtype), None


def _cast(g, dtype):
    if isinstance(g, SparseTensor):
        return _make(g._ix._data, g._vals.to(dtype), g.shape, g._coal)
    return g.to(dtype)


def _transpose_arrays(s, d0, d1):
    ix = s._ix._data.copy()
    ix[[d0, d1]] = ix[[d1, d0]]
    shape = list(s.shape)
    shape[d0], shape[d1] = shape[d1], shape[d0]
    return _make(ix, s._vals.detach(), tuple(shape), False if s._nnz() > 1 else s._coal)


class _Transpose(Function):
    @staticmethod
    def forward(ctx, s, d0, d1):
        ctx.dims = (d0, d1)
        return _transpose_arrays(s, d0, d1)

    @staticmethod
    def backward(ctx, g):
        d0, d1 = ctx.dims
        if isinstance(g, SparseTensor):
            return _transpose_arrays(g, d0, d1), None, None
        return g.transpose(d0, d1), None, None


def _scale_values(s, c, divide):
    v = s._vals._data
    r = v / c if divide else v * c
    if r.dtype != v.dtype:
        r = r.astype(_result_dtype(s._dtype, c).np)
    return _make(s._ix._data, wrap(r, _result_dtype(s._dtype, c)), s.shape, s._coal)


def _result_dtype(d, c):
    from compiler.ir.registry import promote
    return promote(wrap(np.zeros((), d.np), d), c)


class _Scale(Function):
    @staticmethod
    def forward(ctx, s, c, divide):
        ctx.c, ctx.divide = c, divide
        return _scale_values(s, c, divide)

    @staticmethod
    def backward(ctx, g):
        if isinstance(g, SparseTensor):
            return _scale_values(g, ctx.c, ctx.divide), None, None
        return (g / ctx.c if ctx.divide else g * ctx.c), None, None


class _MulDense(Function):
    """sparse * dense (broadcast to the sparse size): a sparse result with s's pattern."""
    @staticmethod
    def forward(ctx, s, d):
        ctx.s, ctx.d = s.detach(), d.detach()
        sd = s.sparse_dim()
        w = _flat(np.broadcast_to(d._data, s.shape), sd)[_lin(s._ix._data, s.shape[:sd])]
        from compiler.ir.registry import promote
        rd = promote(s, d)
        return _make(s._ix._data, wrap((s._vals._data * w).astype(rd.np, copy=False), rd),
                     s.shape, s._coal)

    @staticmethod
    def backward(ctx, g):
        s, d = ctx.s, ctx.d
        G = _dense_of(g) * np.broadcast_to(d._data, s.shape)
        return _mask(G, _pattern(s), s.shape, s._dtype, False), None


class _AddSparse(Function):
    @staticmethod
    def forward(ctx, a, b, alpha):
        ctx.alpha = alpha
        return _cat_sum(a, b, alpha)

    @staticmethod
    def backward(ctx, g):
        gb = g if ctx.alpha == 1 else (_scale_values(g, ctx.alpha, False)
                                       if isinstance(g, SparseTensor) else g * ctx.alpha)
        return g, gb, None


class _DensePlus(Function):
    """dense + alpha * sparse -> dense."""
    @staticmethod
    def forward(ctx, d, s, alpha):
        ctx.alpha = alpha
        return wrap(_dense_plus_array(d, s, alpha), _promote(d, s))

    @staticmethod
    def backward(ctx, g):
        # (the sparse operand's gradient is dense, as PyTorch's)
        return g, (g if ctx.alpha == 1 else g * ctx.alpha), None


class _SpMM(Function):
    """sparse @ dense. The sparse operand's gradient is sparse with its pattern (masked, as
    torch.sparse.mm) or dense (torch.mm, @)."""
    @staticmethod
    def forward(ctx, s, d, masked):
        ctx.s, ctx.d, ctx.masked = s.detach(), d.detach(), masked
        return wrap(_spmm_array(s, np.asarray(d._data)), s._dtype)

    @staticmethod
    def backward(ctx, g):
        s, d = ctx.s, ctx.d
        G, Dm = np.asarray(g._data), np.asarray(d._data)
        gs = gd = None
        if ctx.needs_input_grad[0]:
            if ctx.masked:
                ix = _pattern(s)
                vals = np.einsum("nk,nk->n", G[ix[0]], Dm[ix[1]])
                gs = _make(ix, wrap(vals.astype(s._dtype.np, copy=False), s._dtype), s.shape,
                           False)
            else:
                gs = wrap(G @ Dm.T, s._dtype)
        if ctx.needs_input_grad[1]:
            gd = wrap(_spmm_array(_transpose_arrays(s, 0, 1), G), d._dtype)
        return gs, gd, None


class _DenseSpMM(Function):
    """dense @ sparse -> dense; both gradients dense (as torch.mm)."""
    @staticmethod
    def forward(ctx, d, s):
        ctx.s, ctx.d = s.detach(), d.detach()
        st = _transpose_arrays(s, 0, 1)
        return wrap(np.ascontiguousarray(_spmm_array(st, np.asarray(d._data).T).T), s._dtype)

    @staticmethod
    def backward(ctx, g):
        s, d = ctx.s, ctx.d
        G = np.asarray(g._data)
        gd = gs = None
        if ctx.needs_input_grad[0]:
            gd = wrap(np.ascontiguousarray(_spmm_array(s, G.T).T), d._dtype)
        if ctx.needs_input_grad[1]:
            gs = wrap(np.asarray(d._data).T @ G, s._dtype)
        return gd, gs


class _Sum(Function):
    """The gradient is sparse with s's pattern (torch.sparse.sum) or dense (Tensor.sum)."""
    @staticmethod
    def forward(ctx, s, dims, keepdim, dtype, masked):
        ctx.s, ctx.dims, ctx.keepdim, ctx.masked = s.detach(), dims, keepdim, masked
        return _sum_impl(s, dims, keepdim, dtype)

    @staticmethod
    def backward(ctx, g):
        s, dims = ctx.s, ctx.dims
        G = _dense_of(g)
        if not ctx.keepdim and dims is not None:
            for d in dims:
                G = np.expand_dims(G, d)
        G = np.broadcast_to(G, s.shape)
        gs = _mask(G, _pattern(s), s.shape, s._dtype, dims is None) if ctx.masked else \
            wrap(np.ascontiguousarray(G, s._dtype.np), s._dtype)
        return gs, None, None, None, None


class _Embedding(Function):
    """embedding(sparse=True) of a leaf weight: the gradient is a sparse COO tensor over the
    looked-up rows (uncoalesced, one entry per index, padding_idx entries dropped)."""
    @staticmethod
    def forward(ctx, weight, idx, padding_idx, scale):
        ctx.idx, ctx.pad, ctx.scale = idx, padding_idx, scale
        ctx.shape, ctx.dtype = tuple(weight.shape), weight._dtype
        return wrap(np.asarray(weight._data)[idx], weight._dtype)

    @staticmethod
    def backward(ctx, g):
        if ctx.scale:
            raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with "
                               "sparse gradients")
        ix = ctx.idx.reshape(-1).astype(np.int64)
        vals = np.asarray(g._data).reshape(-1, ctx.shape[1])
        if ctx.pad is not None:
            keep = ix != ctx.pad
            ix, vals = ix[keep], vals[keep]
        vals = np.array(vals, ctx.dtype.np)      # (a copy: the gradient owns its values)
        return _make(ix.reshape(1, -1), wrap(vals, ctx.dtype), ctx.shape, False), \
            None, None, None


def embedding(weight, idx, padding_idx, scale_grad_by_freq):
    """F.embedding(..., sparse=True) on a leaf weight that requires grad (idx: the checked
    NumPy index array)."""
    return _run(_Embedding, "EmbeddingBackward0", weight, idx, padding_idx, scale_grad_by_freq)


# ---- op implementations ---------------------------------------------------------------------

def _promote(a, b):
    from compiler.ir.registry import promote
    return promote(a, b)


def _cat_sum(a, b, alpha):
    """a + alpha * b of two sparse tensors: the entries of both (uncoalesced), or the coalesced
    sum when both are coalesced (as PyTorch)."""
    if tuple(a.shape) != tuple(b.shape):
        raise RuntimeError(f"add: expected sizes of 'self' and 'other' to match, but "
                           f"{list(a.shape)} != {list(b.shape)}")
    if a.sparse_dim() != b.sparse_dim():
        raise NotImplementedError(f"add: sparse tensors with different sparse_dim "
                                  f"({a.sparse_dim()} and {b.sparse_dim()}) are not supported")
    d = _promote(a, b)
    va, vb = a._vals._data.astype(d.np, copy=False), b._vals._data.astype(d.np, copy=False)
    if alpha != 1:
        vb = vb * np.asarray(alpha, d.np)
    if a._nnz() and np.array_equal(a._ix._data, b._ix._data):
        # equal index tensors: PyTorch adds the values entry by entry (no concatenation)
        return _make(a._ix._data, wrap(va + vb, d), a.shape, a._coal and b._coal)
    ix = np.concatenate([a._ix._data, b._ix._data], axis=1)
    v = np.concatenate([va, vb], axis=0)
    if a._coal and b._coal and a._nnz() and b._nnz():
        ix, v = _coalesce_arrays(ix, v, a.shape[:a.sparse_dim()])
        return _make(ix, wrap(v, d), a.shape, True)
    return _make(ix, wrap(v, d), a.shape, a._coal and b._coal and not (a._nnz() and b._nnz()))


def _add_sparse(a, b, alpha):
    _scalar(alpha)
    return _run(_AddSparse, "AddBackward0" if alpha >= 0 else "SubBackward0", a, b, alpha)


def _dense_plus_array(d, s, alpha):
    r = np.array(d._data, _promote(d, s).np)
    v = s._vals._data
    if alpha != 1:
        v = v * np.asarray(alpha, r.dtype)
    sd = s.sparse_dim()
    flat = _flat(r, sd)
    np.add.at(flat, _lin(s._ix._data, s.shape[:sd]), v.astype(r.dtype, copy=False))
    return r


def _check_dense_plus(d, s):
    if not isinstance(d, Tensor):
        d_shape = []
    else:
        d_shape = list(d.shape)
    if d_shape != list(s.shape):
        raise RuntimeError(f"add: expected 'self' and 'other' to have same size, but self has "
                           f"size {d_shape} while other has size {list(s.shape)} (FYI: "
                           f"dense-sparse addition does not currently support broadcasting)")
    _cpu_only(d)


def _dense_plus(d, s, alpha):
    """dense + alpha * sparse -> dense (torch.add(dense, sparse, alpha=...))."""
    if isinstance(d, SparseTensor):
        return _add_sparse(d, s, alpha)
    _check_dense_plus(d, s)
    if not isinstance(d, Tensor):
        from .creation import tensor as _tensor
        d = _tensor(d)
    return _run(_DensePlus, "AddBackward0" if alpha >= 0 else "SubBackward0", d, s, alpha)


def add(input, other, alpha=1):
    """torch.add / Tensor.add with a sparse operand (framework.ops_math.add hands over here)."""
    if _is_compressed(input, other):
        from . import sparse_compressed
        return sparse_compressed.add(input, other, alpha)
    if isinstance(input, SparseTensor):
        return input.add(other, alpha=alpha)
    return _dense_plus(input, other, alpha)


def add_(self, other, alpha=1):
    """dense.add_(sparse, alpha=...): in place; scatter-adds the (possibly repeated) entries."""
    if not isinstance(other, SparseTensor):
        raise unsupported("add_")
    if isinstance(self, SparseTensor):
        return self.add_(other, alpha=alpha)
    _check_dense_plus(self, other)
    from .ops_math import _cast_ok
    d = _promote(self, other)
    if not _cast_ok(d, self._dtype):
        raise RuntimeError(f"result type {dt.tname(d)} can't be cast to the desired output type "
                           f"{dt.tname(self._dtype)} (add_ on a tensor of shape "
                           f"{list(self.shape)})")
    if STATE.grad_enabled and (self.requires_grad or other.requires_grad) or \
            STATE.tracer is not None:
        from ._tensor_methods import _assign
        return _assign(self, _dense_plus(self, other, alpha), "add")
    from .ops_math import check_writable
    check_writable(self, "add_")
    a = self._data
    sd = other.sparse_dim()
    v = other._vals._data
    if alpha != 1:
        v = v * np.asarray(alpha, v.dtype)
    lin = _lin(other._ix._data, other.shape[:sd])
    flat = _flat(a, sd)
    np.add.at(flat, lin, v.astype(a.dtype, copy=False))
    if not a.flags.c_contiguous:                # (reshape of a strided view copied)
        a[...] = flat.reshape(a.shape)
    self._bump()
    return self


def _mul(s, other):
    if isinstance(other, SparseTensor):
        return _mul_sparse(s, other)
    if isinstance(other, Tensor) and other.ndim != 0:
        try:
            ok = np.broadcast_shapes(tuple(other.shape), tuple(s.shape)) == tuple(s.shape)
        except ValueError:
            ok = False
        if not ok:
            raise RuntimeError(f"mul: a dense tensor of size {list(other.shape)} does not "
                               f"broadcast to the sparse tensor's size {list(s.shape)}")
        _cpu_only(other)
        if other.requires_grad and STATE.grad_enabled:
            raise NotImplementedError("Kiln: the gradient of sparse * dense with respect to the "
                                      "dense tensor is not supported")
        return _run(_MulDense, "MulBackward0", s, other)
    return _run(_Scale, "MulBackward0", s, _scalar(other), False)


def _mul_sparse(a, b):
    if tuple(a.shape) != tuple(b.shape):
        raise RuntimeError(f"mul: expected sizes of 'self' and 'other' to match, but "
                           f"{list(a.shape)} != {list(b.shape)}")
    if STATE.grad_enabled and (a.requires_grad or b.requires_grad):
        raise NotImplementedError("Kiln: the gradient of sparse * sparse is not supported")
    ca, cb = a.coalesce(), b.coalesce()
    sd = a.sparse_dim()
    sizes = a.shape[:sd]
    la, lb = _lin(ca._ix._data, sizes), _lin(cb._ix._data, sizes)
    common, ia, ib = np.intersect1d(la, lb, assume_unique=True, return_indices=True)
    d = _promote(a, b)
    v = ca._vals._data[ia].astype(d.np) * cb._vals._data[ib].astype(d.np)
    return _make(_unlin(common, sizes), wrap(v, d), a.shape, True)


def _spmm_array(s, D):
    ix, v = s._ix._data, s._vals._data
    out = np.zeros((s.shape[0], D.shape[1]), np.result_type(v.dtype, D.dtype))
    _check_bounds(ix, s.shape[:2])
    np.add.at(out, ix[0], v[:, None] * D[ix[1]])
    return out


def _check_mm(s, d):
    if isinstance(d, SparseTensor):
        return
    if s.sparse_dim() != 2 or s.dense_dim() != 0:
        raise RuntimeError(f"mm: a sparse matrix needs 2 sparse dims and no dense dims, got "
                           f"{s.sparse_dim()} sparse and {s.dense_dim()} dense (size "
                           f"{list(s.shape)})")
    if d.ndim != 2:
        raise IndexError(f"Dimension out of range (expected to be in range of [-{max(d.ndim, 1)}, "
                         f"{max(d.ndim, 1) - 1}], but got 1)")
    if d.shape[0] != s.shape[1]:
        raise RuntimeError(f"addmm: Argument #3 (dense): Expected dim 0 size {s.shape[1]}, got "
                           f"{d.shape[0]}")
    if d._dtype is not s._dtype:
        raise RuntimeError(f"expected scalar type {dt.tname(s._dtype)} but found "
                           f"{dt.tname(d._dtype)}")
    _cpu_only(d)


def mm(mat1, mat2):
    """torch.sparse.mm: sparse @ dense -> dense (gradients: dense for mat2, sparse with mat1's
    pattern for mat1); sparse @ sparse -> sparse; dense @ sparse -> dense."""
    return _mm(mat1, mat2, True)


def _mm(mat1, mat2, masked):
    """masked: torch.sparse.mm (a sparse gradient for a sparse mat1), else torch.mm / @."""
    if _is_compressed(mat1, mat2):
        from . import sparse_compressed
        return sparse_compressed._mm(mat1, mat2, "SparseAddmmBackward0" if masked else
                                     "MmBackward0")
    s1, s2 = isinstance(mat1, SparseTensor), isinstance(mat2, SparseTensor)
    if s1 and s2:
        if mat1.ndim != 2 or mat2.ndim != 2 or mat1.shape[1] != mat2.shape[0]:
            raise RuntimeError(f"mm: sparse matrices of sizes {list(mat1.shape)} and "
                               f"{list(mat2.shape)} cannot be multiplied")
        if STATE.grad_enabled and (mat1.requires_grad or mat2.requires_grad):
            raise NotImplementedError("Kiln: the gradient of sparse @ sparse is not supported")
        return _to_sparse(wrap(_spmm_array(mat1, _dense_array(mat2)), mat1._dtype))
    if s1:
        _check_mm(mat1, mat2)
        return _run(_SpMM, "SparseAddmmBackward0" if masked else "MmBackward0", mat1, mat2,
                    masked)
    if s2:
        if mat1.ndim != 2:
            raise RuntimeError(f"mm: self must be a matrix (got shapes {list(mat1.shape)} and "
                               f"{list(mat2.shape)})")
        if mat2.ndim != 2 or mat1.shape[1] != mat2.shape[0]:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x"
                               f"{mat1.shape[1]} and {mat2.shape[0]}x{mat2.shape[1]})")
        _check_mm(mat2.t(), mat1.t())
        return _run(_DenseSpMM, "MmBackward0", mat1, mat2)
    from .ops_linalg import mm as dense_mm
    return dense_mm(mat1, mat2)


def _matmul(a, b):
    if _is_compressed(a, b):
        from . import sparse_compressed
        return sparse_compressed.matmul(a, b)
    if isinstance(a, SparseTensor) and not isinstance(b, SparseTensor) and b.ndim == 1:
        if a.ndim != 2 or a.shape[1] != b.shape[0]:
            raise RuntimeError(f"matmul: size mismatch, got input ({list(a.shape)}), vec "
                               f"({b.shape[0]})")
        return _mm(a, b.unsqueeze(1), False).squeeze(1)
    if not isinstance(a, SparseTensor) and a.ndim == 1:
        return _mm(a.unsqueeze(0), b, False).squeeze(0)
    return _mm(a, b, False)


def addmm(input, mat1, mat2, *, beta=1.0, alpha=1.0):
    """torch.sparse.addmm: beta * input + alpha * (mat1 @ mat2), mat1 sparse."""
    if _is_compressed(mat1, mat2):
        from . import sparse_compressed
        return sparse_compressed.addmm(input, mat1, mat2, beta=beta, alpha=alpha,
                                       name="SparseAddmmBackward0")
    r = mm(mat1, mat2)
    if alpha != 1:
        r = r * alpha
    r = r + (input if beta == 1 else input * beta)
    return rename(r, "SparseAddmmBackward0") if r._node is not None else r


def _sum_impl(s, dims, keepdim, dtype):
    sd = s.sparse_dim()
    v = s._vals._data
    if dtype is not None:
        v = v.astype(dtype.np)
    d = dtype or (dt.int64 if s._dtype.category < 2 else s._dtype)
    if d is dt.int64 and v.dtype != np.int64:
        v = v.astype(np.int64)
    if dims is None:
        return wrap(np.asarray(v.sum(dtype=v.dtype)), d)
    sparse_red = [x for x in dims if x < sd]
    dense_red = tuple(x - sd + 1 for x in dims if x >= sd)
    if dense_red:
        v = v.sum(axis=dense_red, keepdims=keepdim, dtype=v.dtype)
    kept = [x for x in range(sd) if x not in sparse_red]
    if not kept and not keepdim:        # every sparse dim summed: a dense result
        return wrap(np.asarray(v.sum(axis=0, dtype=v.dtype)), d)
    ix = s._ix._data
    sizes = tuple(s.shape[x] for x in kept)
    nix, nv = _coalesce_arrays(ix[kept], v, sizes)
    shape = [s.shape[x] for x in range(s.ndim) if x not in dims or keepdim]
    if keepdim:
        shape = [1 if x in dims else s.shape[x] for x in range(s.ndim)]
        full = np.zeros((sd, nix.shape[1]), np.int64)
        full[kept] = nix
        nix = full
    return _make(nix, wrap(nv, d), tuple(shape), True)


def sampled_addmm(input, mat1, mat2, *, beta=1.0, alpha=1.0, out=None):
    """torch.sparse.sampled_addmm (framework.sparse_compressed)."""
    from .sparse_compressed import sampled_addmm as f
    return f(input, mat1, mat2, beta=beta, alpha=alpha, out=out)


def sum(input, dim=None, dtype=None, *, keepdim=False):
    """torch.sparse.sum: all of input (a dense 0-d tensor), or over dim(s): a sparse tensor
    of the remaining dims (dense when no sparse dim remains)."""
    _need_sparse(input, "coalesce")
    return _sum(input, dim, dtype, keepdim, True)


def _sum(input, dim, dtype, keepdim, masked):
    dims = None
    if dim is not None:
        from compiler.ir.registry import norm_dim
        dims = tuple(sorted({norm_dim("sum", x, input.ndim)
                             for x in ((dim,) if isinstance(dim, int) else dim)}))
    name = "SumBackward0" if dims is None else "SparseSumBackward0" if masked else "SumBackward1"
    return _run(_Sum, name, input, dims, keepdim, dtype, masked)


def _softmax(input, dim, dtype, log):
    _need_sparse(input, "softmax")
    if STATE.grad_enabled and input.requires_grad:
        raise NotImplementedError("Kiln: the gradient of torch.sparse.softmax is not supported")
    from compiler.ir.registry import norm_dim
    d = norm_dim("softmax", dim, input.ndim)
    s = input.coalesce()
    sd = s.sparse_dim()
    v = s._vals._data.astype(dtype.np) if dtype is not None else s._vals._data
    if d >= sd:                         # a dense dim: softmax of each value row
        ax = d - sd + 1
        m = v.max(axis=ax, keepdims=True)
        e = np.exp(v - m)
        z = e.sum(axis=ax, keepdims=True)
        r = (v - m) - np.log(z) if log else e / z
    else:                               # a sparse dim: over the entries of each line
        ix = s._ix._data
        others = [x for x in range(sd) if x != d]
        sizes = tuple(s.shape[x] for x in others)
        grp = _lin(ix[others], sizes) if others else np.zeros(ix.shape[1], np.int64)
        _, g = np.unique(grp, return_inverse=True)
        g = g.reshape(-1)
        n = g.max() + 1 if g.size else 0
        m = np.full((n,) + v.shape[1:], -np.inf, v.dtype)
        np.maximum.at(m, g, v)
        e = np.exp(v - m[g])
        z = _sum_rows(e, g, n)
        r = (v - m[g]) - np.log(z[g]) if log else e / z[g]
    return _make(s._ix._data, wrap(np.ascontiguousarray(r, v.dtype), dtype or s._dtype),
                 s.shape, True)


def softmax(input, dim, *, dtype=None):
    """torch.sparse.softmax: unspecified entries count as -inf (no autograd in Kiln)."""
    return _softmax(input, dim, dtype, False)


def log_softmax(input, dim, *, dtype=None):
    return _softmax(input, dim, dtype, True)


# ---- printing --------------------------------------------------------------------------------

def _repr(s):
    from ._printing import tensor_str
    indent = len("tensor(")
    ix, v = s._ix._data, s._vals._data
    ip, vp = "indices=tensor(", "values=tensor("
    istr = tensor_str(ix, dt.int64, indent + len(ip))
    if ix.size == 0:
        istr += ", size=" + str(tuple(ix.shape))
    vstr = tensor_str(v, s._dtype, indent + len(vp))
    if v.size == 0:
        vstr += ", size=" + str(tuple(v.shape))
    body = ip + istr + "),\n" + " " * indent + vp + vstr + ")"
    dflt = dt.get_default_dtype()
    suffixes = ["size=" + str(tuple(s.shape)), "nnz=" + str(s._nnz())]
    if s._dtype not in (dflt, dt.int64, dt.bool_,
                        dt.complex128 if dflt is dt.float64 else dt.complex64):
        suffixes.append("dtype=" + repr(s._dtype))
    suffixes.append("layout=torch.sparse_coo")
    if s._node is not None:
        suffixes.append(f"grad_fn=<{s._node._name}>")
    elif s._rg:
        suffixes.append("requires_grad=True")
    from ._printing import _add_suffixes
    return _add_suffixes("tensor(" + body, suffixes, indent, force_newline=True)


# ---- gradients: accumulation, norms and optimizer updates -------------------------------------

def accumulate(old, new):
    """Two gradients of one tensor met in a backward pass (autograd's input buffer): new + old
    when old is sparse, else old + new -- sparse + sparse concatenates, a dense one makes the
    sum dense."""
    if isinstance(old, SparseTensor):
        return _cat_sum(new, old, 1) if isinstance(new, SparseTensor) else \
            wrap(_dense_plus_array(new, old, 1), _promote(new, old))
    return wrap(_dense_plus_array(old, new, 1), _promote(old, new))


def accumulate_grad(leaf, old, g, create_graph):
    """AccumulateGrad with a sparse gradient or .grad: the first becomes .grad; a dense .grad
    takes a sparse one in place; a sparse .grad and a sparse gradient concatenate (the .grad
    tensor is updated in place, as PyTorch's grad += new_grad); a dense gradient makes it
    dense."""
    if old is None:
        # a tensor of its own (a rule may hand one gradient object to several inputs); its
        # arrays are shared: sparse in-place ops replace arrays, they never write into them
        leaf._grad = g if create_graph else g.detach() if isinstance(g, SparseTensor) else \
            wrap(np.array(g._data), g._dtype)
    elif create_graph or old._node is not None:
        leaf._grad = _dense_plus(g, old, 1) if isinstance(old, SparseTensor) and \
            not isinstance(g, SparseTensor) else (old + g)
    elif isinstance(old, SparseTensor):
        if isinstance(g, SparseTensor):
            r = _cat_sum(old, g, 1)
            old._ix, old._vals, old._coal = r._ix, r._vals, r._coal
            old._bump()
        else:
            leaf._grad = wrap(_dense_plus_array(g, old, 1), g._dtype)
    elif type(old._data) is np.ndarray and old._data.flags.writeable:
        prev = STATE.grad_enabled
        STATE.grad_enabled = False
        try:
            add_(old, g)
        finally:
            STATE.grad_enabled = prev
    else:
        leaf._grad = wrap(_dense_plus_array(old, g, 1), old._dtype)


def _touched_rows(grad):
    """(sparse dims, row-major positions, values) of a gradient's coalesced entries, or None
    when it has none: the rows an optimizer's sparse branch updates."""
    grad = grad.coalesce()
    if grad._nnz() == 0:
        return None
    sd = grad.sparse_dim()
    return sd, _lin(grad._ix._data, grad.shape[:sd]), grad._vals._data


def sparse_adam_update(p, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, maximize):
    """One SparseAdam step of parameter p (PyTorch's _functional.sparse_adam, the same
    operations in the same order on the touched rows only)."""
    if maximize:
        grad = -grad
    touched = _touched_rows(grad)
    if touched is None:
        return
    sd, lin, gv = touched
    P, M, V = _flat(p._data, sd), _flat(exp_avg._data, sd), _flat(exp_avg_sq._data, sd)
    one = gv.dtype.type
    old_m = M[lin]
    upd_m = (gv - old_m) * one(1 - beta1)
    M[lin] += upd_m
    old_v = V[lin]
    upd_v = (gv ** 2 - old_v) * one(1 - beta2)
    V[lin] += upd_v
    numer = upd_m + old_m
    denom = np.sqrt(upd_v + old_v) + one(eps)
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    step_size = lr * np.sqrt(bc2) / bc1
    P[lin] += one(-step_size) * (numer / denom)
    for t in (p, exp_avg, exp_avg_sq):
        t._bump()


def adagrad_update(p, grad, state_sum, clr, eps):
    """Adagrad with a sparse gradient (PyTorch's sparse branch): coalesce, add the squared
    values into the state at those rows, step by values / (sqrt(state there) + eps)."""
    touched = _touched_rows(grad)
    if touched is None:
        return
    sd, lin, gv = touched
    S, P = _flat(state_sum._data, sd), _flat(p._data, sd)
    one = gv.dtype.type
    S[lin] += gv ** 2
    std = np.sqrt(S[lin]) + one(eps)
    P[lin] += (gv / std) * one(-clr)
    state_sum._bump()
    p._bump()


# ---- sspaddmm / smm / hspmm / spdiags and the *_copy accessors (no autograd, as torch's) ----

def _no_kernel(op, t):
    lay = str(t.layout).replace("torch.", "")
    backend = "CPU" if lay == "strided" else "SparseCPU" if lay == "sparse_coo" else "SparseCsrCPU"
    return NotImplementedError(f"Could not run 'aten::{op}' with arguments from the '{backend}' "
                               f"backend. This could be because the operator doesn't exist for "
                               f"this backend, or was omitted during the selective/custom "
                               f"build process (if using custom build).")


def _spmm_checks(op, mat1, mat2):
    if mat1.sparse_dim() != 2 or mat1.dense_dim() != 0:
        raise RuntimeError(f"{op}: Argument #2: scalar values expected, got "
                           f"{mat1.dense_dim()}D values" if mat1.dense_dim() else
                           f"{op}: Argument #2: matrices expected, got {mat1.ndim}D tensor")
    if isinstance(mat2, SparseTensor):
        raise RuntimeError(f"{op}: expected 'mat2' to have strided layout, got 'mat2' with layout "
                           f"Sparse")
    if str(mat2.layout) != "torch.strided":       # a compressed mat2: torch has no kernel
        raise _no_kernel(f"{op}.out" if op == "sspaddmm" else op, mat2)
    if mat2.ndim != 2:
        raise RuntimeError(f"{op}: Argument #3: matrices expected, got {mat2.ndim}D tensor")
    if mat2.shape[0] != mat1.shape[1]:
        raise RuntimeError(f"{op}: Argument #3: Expected dim 0 size {mat1.shape[1]}, got "
                           f"{mat2.shape[0]}")
    if mat2._dtype is not mat1._dtype:
        raise RuntimeError(f"expected scalar type {dt.tname(mat1._dtype)} but found "
                           f"{dt.tname(mat2._dtype)}")
    _cpu_only(mat2)


def _row_products(mat1, mat2):
    """(rows of mat1 holding an entry, sorted; those rows of mat1 @ mat2)."""
    ix, v = mat1._ix._data, mat1._vals._data
    rows, inv = np.unique(ix[0], return_inverse=True)
    out = np.zeros((len(rows), mat2.shape[1]), np.result_type(v.dtype, mat2._data.dtype))
    np.add.at(out, inv, v[:, None] * np.asarray(mat2._data)[ix[1]])
    return rows, out


def sspaddmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2) as an uncoalesced sparse tensor: input's entries,
    then every column of each row of mat1 that holds an entry."""
    if not isinstance(input, SparseTensor):
        raise RuntimeError("sspaddmm: expected 'self' to be a sparse COO tensor, got layout "
                           f"{input.layout}")
    _need_sparse(mat1, "sspaddmm")
    _spmm_checks("sspaddmm", mat1, mat2)
    M, N = mat1.shape[0], mat2.shape[1]
    for d, want in ((0, M), (1, N)):
        if input.ndim > d and input.shape[d] != want:
            raise RuntimeError(f"sspaddmm: Argument #1: Expected dim {d} size {want}, got "
                               f"{input.shape[d]}")
    rows, prod = _row_products(mat1, mat2)
    pix = np.stack([np.repeat(rows, N), np.tile(np.arange(N), len(rows))]).astype(np.int64)
    ix = np.concatenate([input._ix._data, pix], 1)
    vals = np.concatenate([beta * input._vals._data, alpha * prod.reshape(-1)]).astype(
        mat2._data.dtype)
    return _make(ix, wrap(vals, mat1._dtype), (M, N), False)     # (torch marks it uncoalesced)


def saddmm(input, mat1, mat2, *, beta=1, alpha=1):
    return sspaddmm(input, mat1, mat2, beta=beta, alpha=alpha)


def smm(input, mat2):
    """sparse @ dense -> sparse (each row of input that holds an entry, every column)."""
    if not isinstance(input, SparseTensor):
        raise RuntimeError("tensor.sspaddmm(...) can only be called on sparse tensors")
    _spmm_checks("sspaddmm", input, mat2)
    empty = _make(np.zeros((2, 0), np.int64), wrap(np.zeros(0, mat2._data.dtype), input._dtype),
                  (input.shape[0], mat2.shape[1]), True)
    return sspaddmm(empty, input, mat2)


def hspmm(mat1, mat2):
    """sparse @ dense -> a hybrid sparse tensor: one sparse dim (the rows of mat1 holding an
    entry) and each such row of the product as a dense value."""
    if not isinstance(mat1, SparseTensor):
        raise _no_kernel("hspmm", mat1)
    _spmm_checks("hspmm", mat1, mat2)
    rows, prod = _row_products(mat1, mat2)
    return _make(rows[None].astype(np.int64), wrap(prod.astype(mat2._data.dtype), mat1._dtype),
                 (mat1.shape[0], mat2.shape[1]), False)


def spdiags(diagonals, offsets, shape, layout=None):
    """torch.sparse.spdiags: diagonals[i, j] at (j - offsets[i], j), as scipy.sparse.spdiags."""
    from . import sparse_csr, sparse_csc, sparse_coo
    layout = sparse_coo if layout is None else layout
    if layout not in (sparse_coo, sparse_csr, sparse_csc):
        raise RuntimeError(f"Only output layouts (Sparse, SparseCsc, SparseCsr) are supported, "
                           f"got {_layout_name(layout)}")
    if offsets._dtype is not dt.int64:
        raise RuntimeError(f"Offset Tensor must have dtype Long but got "
                           f"{dt.tname(offsets._dtype)}")
    if offsets.ndim > 1:
        raise RuntimeError("Offsets must be scalar or vector")
    if diagonals.ndim not in (1, 2):
        raise RuntimeError("Diagonals must be vector or matrix")
    shape = tuple(shape)
    if len(shape) != 2:
        raise RuntimeError("Output shape must be 2d")
    _cpu_only(diagonals, offsets)
    offs = np.atleast_1d(np.asarray(offsets._data)).tolist()
    D = np.asarray(diagonals._data)
    D = D[None] if D.ndim == 1 else D
    if D.shape[0] != len(offs):
        raise RuntimeError(f"Number of diagonals ({D.shape[0]}) does not match the number of "
                           f"offsets ({len(offs)})")
    if len(set(offs)) != len(offs):
        raise RuntimeError("Offset tensor contains duplicate values")
    R, C = shape
    ixs, vals = [], []
    for k, o in enumerate(offs):
        lo = max(o, 0)
        n = min(R + o, C) - lo
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [2, {n}]")
        j = np.arange(lo, lo + n)
        j = j[j < D.shape[1]]
        ixs.append(np.stack([j - o, j]))
        vals.append(D[k, j])
    ix = np.concatenate(ixs, 1).astype(np.int64) if ixs else np.zeros((2, 0), np.int64)
    v = np.concatenate(vals) if vals else np.zeros(0, D.dtype)
    r = _make(ix, wrap(np.ascontiguousarray(v), diagonals._dtype), shape, False)
    return r if layout is sparse_coo else r.to_sparse(layout=layout)


def _layout_name(layout):
    s = str(layout).replace("torch.", "")
    return {"strided": "Strided", "sparse_csr": "SparseCsr", "sparse_csc": "SparseCsc",
            "sparse_bsr": "SparseBsr", "sparse_bsc": "SparseBsc"}.get(s, s)


def spsolve(input, other, *, left=True):
    """torch.sparse.spsolve needs cuDSS (CUDA) in torch 2.13: its cpu build raises this."""
    raise NotImplementedError(
        f"Could not run 'aten::_spsolve' with arguments from the "
        f"'{'SparseCPU' if isinstance(input, SparseTensor) else 'SparseCsrCPU'}' backend. This "
        f"could be because the operator doesn't exist for this backend, or was omitted during "
        f"the selective/custom build process (if using custom build).")


def _copy_of(op, getter):
    def f(input, *, out=None):
        from .ops_math import clone, write_out
        if isinstance(input, SparseTensor):      # (torch has no SparseCPU kernel for these)
            raise _no_kernel(op, input)
        r = clone(getter(input))
        if r._node is not None:
            rename(r, "ValuesBackward0_copy")
        return write_out(r, out)
    f.__name__ = f.__qualname__ = op
    return f


indices_copy = _copy_of("indices_copy", lambda t: t.indices())
values_copy = _copy_of("values_copy", lambda t: t.values())
crow_indices_copy = _copy_of("crow_indices_copy", lambda t: t.crow_indices())
col_indices_copy = _copy_of("col_indices_copy", lambda t: t.col_indices())
ccol_indices_copy = _copy_of("ccol_indices_copy", lambda t: t.ccol_indices())
row_indices_copy = _copy_of("row_indices_copy", lambda t: t.row_indices())

SparseTensor.smm = smm
SparseTensor.sspaddmm = sspaddmm
Tensor.smm = smm
Tensor.sspaddmm = sspaddmm


def as_sparse_gradcheck(gradcheck):
    """Wrap a gradcheck function so that func may take and return sparse tensors: each
    differentiable sparse input is checked through its values (every element made specified
    first unless masked=True), and sparse outputs that need a gradient are made dense."""
    def gradcheck_with_sparse_support(func, inputs, **kwargs):
        from . import strided, sparse_coo
        from .sparse_compressed import sparse_compressed_tensor
        masked = kwargs.pop("masked", False)
        inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
        flat, rebuild = [], []          # rebuild[i]: None (passed as is) or a recipe
        for x in inputs:
            if not (isinstance(x, Tensor) and x.requires_grad and x.layout is not strided):
                flat.append(x)
                rebuild.append(None)
                continue
            lay = x.layout
            if not masked:         # every element specified (the unspecified ones as zeros)
                x = _all_specified(x, lay)
            if lay is sparse_coo:
                meta = (lay, x.shape, x._indices(), None, x.is_coalesced())
                v = x._values()
            else:
                rowwise = str(lay) in ("torch.sparse_csr", "torch.sparse_bsr")
                meta = (lay, x.shape, x.crow_indices() if rowwise else x.ccol_indices(),
                        x.col_indices() if rowwise else x.row_indices(), None)
                v = x.values()
            flat.append(v.detach().requires_grad_(True))
            rebuild.append(meta)

        def restore(args):
            out = []
            for a, meta in zip(args, rebuild):
                if meta is not None:
                    lay, shape, ci, pi, coal = meta
                    a = sparse_coo_tensor(ci, a, shape, is_coalesced=coal) if pi is None else \
                        sparse_compressed_tensor(ci, pi, a, shape, layout=lay)
                out.append(a)
            return out

        def func_wrapper(*args):
            outs = func(*restore(args))
            seq = outs if isinstance(outs, (list, tuple)) else (outs,)
            seq = tuple(o.to_dense(masked_grad=masked) if isinstance(o, Tensor) and
                        o.requires_grad and o.layout is not strided else o for o in seq)
            return seq if isinstance(outs, (list, tuple)) else seq[0]

        return gradcheck(func_wrapper, tuple(flat), **kwargs)

    return gradcheck_with_sparse_support


def _all_specified(x, layout):
    """x (detached) with every element specified, in x's layout."""
    from . import sparse_coo
    from .creation import ones
    d = x.detach().to_dense()
    if layout is sparse_coo:
        return d.sparse_mask(ones(tuple(x.shape), dtype=dt.bool_).to_sparse(x.sparse_dim()))
    from .sparse_compressed import sparse_compressed_tensor
    name = str(layout).replace("torch.", "")
    if name not in ("sparse_csr", "sparse_csc") or x.ndim != 2:
        raise NotImplementedError(f"as_sparse_gradcheck: Kiln makes every element of a 2-d "
                                  f"CSR or CSC input specified, not of a {x.ndim}-d {name} one "
                                  f"(pass masked=True)")
    R, C = x.shape
    if name == "sparse_csc":
        R, C, d = C, R, d.t()
    comp = wrap(np.arange(R + 1, dtype=np.int64) * C, dt.int64)
    plain = wrap(np.tile(np.arange(C, dtype=np.int64), R), dt.int64)
    return sparse_compressed_tensor(comp, plain, d.reshape(-1), tuple(x.shape), layout=layout)
