"""Sparse compressed tensors: layouts sparse_csr, sparse_csc, sparse_bsr, sparse_bsc (cpu only).

A CompressedTensor holds `_cidx` (compressed indices: batch dims + (n + 1,)), `_pidx` (plain
indices: batch dims + (nnz,)) -- int64 or int32 NumPy arrays -- and `_vals` (a Kiln tensor of
batch dims + (nnz,) + block dims + dense dims, without history); `_lay` names the layout. As
for COO (framework.sparse), `_data` is a NoStridedCompressed: dense kernels refuse it. Row
layouts (csr, bsr) compress rows, column layouts (csc, bsc) columns. Every op works on the
(batch, block row, block col) coordinates of the entries in NumPy; ops on values alone (unary
functions, scaling, dtype casts, t()) run the dense op on values() and rebuild the tensor, so
autograd reaches the values through ValuesBackward0 / SparseCompressedTensorBackward0.
"""
import warnings

import numpy as np

from runtime import dtypes as dt
from runtime.device import cpu, canonical
from ._sparse_storage import NoStridedCompressed
from .tensor import Tensor
from ._dispatch import STATE, wrap, rename
from .autograd.function import Function

# layout name -> (compressed indices, plain indices, compresses rows, blocked, PyTorch's tag)
_LAY = {"sparse_csr": ("crow_indices", "col_indices", True, False, "SparseCsr"),
        "sparse_csc": ("ccol_indices", "row_indices", False, False, "SparseCsc"),
        "sparse_bsr": ("crow_indices", "col_indices", True, True, "SparseBsr"),
        "sparse_bsc": ("ccol_indices", "row_indices", False, True, "SparseBsc")}


def _layout_obj(name):
    import framework
    return getattr(framework, name)


def _lname(layout):
    n = getattr(layout, "name", None)
    return n if n in _LAY else None


def _tag(t):
    if isinstance(t, CompressedTensor):
        return _LAY[t._lay][4]
    return "Sparse" if getattr(t, "is_sparse", False) else "Strided"


def is_compressed(t):
    return isinstance(t, CompressedTensor)


def _run(fn, name, *args):
    out = fn.apply(*args)
    return rename(out, name) if out._node is not None else out


# ---- the tensor ---------------------------------------------------------------------------------

_warned = []


def _make(cidx, pidx, vals, shape, lay):
    if not _warned:         # (PyTorch's SparseCsrTensorImpl warns once per process)
        _warned.append(True)
        warnings.warn("Sparse CSR tensor support is in beta state. If you miss a functionality "
                      "in the sparse tensor support, please submit a feature request to "
                      "https://github.com/pytorch/pytorch/issues.", UserWarning, stacklevel=3)
    t = CompressedTensor.__new__(CompressedTensor)
    t._data = NoStridedCompressed(shape)
    t._dtype = vals._dtype
    t._cidx, t._pidx, t._vals, t._lay = cidx, pidx, vals, lay
    if STATE.inference:
        t._inf = True
    return t


class CompressedTensor(Tensor):
    _cidx = _pidx = _vals = None
    _lay = "sparse_csr"
    _compressed = True

    # ---- metadata ----------------------------------------------------------------------------
    @property
    def layout(self):
        return _layout_obj(self._lay)

    @property
    def is_sparse(self):
        return False

    @property
    def is_sparse_csr(self):
        return self._lay == "sparse_csr"

    def _nb(self):
        return self._cidx.ndim - 1

    def _block(self):
        if not _LAY[self._lay][3]:
            return (1, 1)
        nb = self._nb()
        return tuple(self._vals.shape[nb + 1:nb + 3])

    def sparse_dim(self):
        return 2

    def dense_dim(self):
        return self._vals.ndim - self._nb() - 1 - (2 if _LAY[self._lay][3] else 0)

    def _nnz(self):
        return self._pidx.shape[-1]

    def _idx(self, which, name):
        cname, pname, row = _LAY[self._lay][:3]
        if which == 0 and name != cname or which == 1 and name != pname:
            kind = "row" if name in ("crow_indices", "col_indices") else "column"
            raise RuntimeError(f"{name} expected sparse {kind} compressed tensor layout but got "
                               f"{_LAY[self._lay][4]}")
        a = self._cidx if which == 0 else self._pidx
        return wrap(a, dt.int32 if a.dtype == np.int32 else dt.int64)

    def _idx_names(self):
        return _LAY[self._lay][:2]

    def crow_indices(self):
        return self._idx(0, "crow_indices")

    def ccol_indices(self):
        return self._idx(0, "ccol_indices")

    def col_indices(self):
        return self._idx(1, "col_indices")

    def row_indices(self):
        return self._idx(1, "row_indices")

    def values(self):
        return _run(_Values, "ValuesBackward0", self)

    def indices(self):
        raise RuntimeError(f"indices expected sparse coordinate tensor layout but got "
                           f"{_tag(self)}")

    def is_coalesced(self):
        raise RuntimeError(f"is_coalesced expected sparse coordinate tensor layout but got "
                           f"{_tag(self)}")

    def coalesce(self):
        raise RuntimeError(f"coalesce expected sparse coordinate tensor layout but got "
                           f"{_tag(self)}")

    def type(self, dtype=None):
        if dtype is None:
            raise RuntimeError(f"Unimplemented backend {_tag(self)}CPU")
        return self.to(dtype)

    def stride(self, dim=None):
        raise RuntimeError("Sparse CSR tensors do not have strides")

    def is_contiguous(self, memory_format=None):
        raise RuntimeError("Sparse CSR tensors do not have is_contiguous")

    def data_ptr(self):
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")

    def untyped_storage(self):
        raise NotImplementedError("Cannot access storage of SparseCsrTensorImpl")

    storage = untyped_storage

    def numpy(self, *, force=False):
        raise TypeError(f"can't convert {_tag(self)} layout tensor to numpy. Use "
                        f"Tensor.to_dense() first.")

    def __array__(self, dtype=None, copy=None):
        self.numpy()

    def tolist(self):
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")

    def __repr__(self, *, tensor_contents=None):
        return _repr(self)

    # ---- conversion -------------------------------------------------------------------------
    def to_dense(self, dtype=None, *, masked_grad=None):
        if dtype is not None:
            raise RuntimeError(f"dtype argument is not supported by "
                               f"{self._lay}_to_dense")
        return _run(_ToDense, "ToDenseBackward0", self)

    def to_sparse_coo(self):
        return self.to_sparse()

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        if _lname(layout):
            return to_compressed(self, layout, blocksize, dense_dim)
        if sparse_dim is not None and sparse_dim != 2:
            raise RuntimeError(f"sparse_compressed_to_sparse: conversion from {_tag(self)} to "
                               f"Sparse with sparse_dim argument !=2 is not supported")
        return _run(_ToCoo, "ToSparseBackward1", self)

    def detach(self):
        return _make(self._cidx, self._pidx, self._vals.detach(), self.shape, self._lay)

    @property
    def data(self):
        return self.detach()

    def clone(self, *, memory_format=None):
        return _on_values(self, lambda v: v.clone())

    def to(self, *args, **kwargs):
        from .tensor import _to_args
        dtype, device, copy, _ = _to_args(args, kwargs)
        if device is not None and canonical(device) is not cpu:
            raise NotImplementedError(f"sparse compressed tensors are supported on the cpu "
                                      f"only in Kiln (asked to move one to '{device}')")
        if dtype is not None and dtype is not self._dtype:
            return _on_values(self, lambda v: v.to(dtype))
        return self.clone() if copy else self

    def float(self):
        return self.to(dt.float32)

    def double(self):
        return self.to(dt.float64)

    def __reduce_ex__(self, proto):
        return (_rebuild, (np.array(self._cidx), np.array(self._pidx),
                           np.array(self._vals._data), self._dtype.name, tuple(self.shape),
                           self._lay, self.requires_grad))

    def __deepcopy__(self, memo):
        t = _rebuild(*self.__reduce_ex__(2)[1])
        memo[id(self)] = t
        return t

    # ---- shape ----------------------------------------------------------------------------------
    def t(self):
        if self.ndim != 2 or self.dense_dim():
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self.ndim}D")
        return _transpose(self, "TBackward0")

    def transpose(self, dim0, dim1):
        from compiler.ir.registry import norm_dim
        n, nb = self.ndim, self._nb()
        d = sorted((norm_dim("transpose", dim0, n), norm_dim("transpose", dim1, n)))
        if d != [nb, nb + 1]:
            raise NotImplementedError(f"transpose({dim0}, {dim1}) of a {_tag(self)} tensor: "
                                      f"Kiln transposes the two sparse dims only")
        return _transpose(self, "TransposeBackward0")

    swapaxes = swapdims = transpose

    # ---- arithmetic ---------------------------------------------------------------------------
    def add(self, other, *, alpha=1):
        return add(self, other, alpha)

    def __add__(self, other):
        return add(self, other, 1)

    def __radd__(self, other):
        return add(other, self, 1)

    def sub(self, other, *, alpha=1):
        raise RuntimeError(f"unsupported tensor layout: {_tag(self)}")

    __sub__ = __rsub__ = subtract = sub

    def mul(self, other):
        return _mul(self, other)

    multiply = __mul__ = __rmul__ = mul

    def div(self, other):
        raise RuntimeError(f"unsupported tensor layout: {_tag(self)}")

    __truediv__ = divide = div

    def __neg__(self):
        return self.neg()

    def __pos__(self):
        return self

    def sum(self, dim=None, keepdim=False, dtype=None):
        return _sum(self, dim, keepdim, dtype)

    # ---- products -----------------------------------------------------------------------------
    def mm(self, mat2):
        return _mm(self, mat2, "MmBackward0")

    def matmul(self, other):
        return matmul(self, other)

    def mv(self, vec):
        return matmul(self, vec)

    def __matmul__(self, other):
        if not isinstance(other, Tensor):
            return NotImplemented
        return matmul(self, other)

    def __rmatmul__(self, other):
        if not isinstance(other, Tensor):
            return NotImplemented
        return matmul(other, self)


# the unary functions PyTorch computes on a compressed tensor's values (f(0) == 0)
_UNARY = ("abs", "neg", "negative", "sin", "sinh", "tan", "tanh", "asin", "asinh", "atan",
          "atanh", "sqrt", "relu", "sgn", "sign", "signbit", "ceil", "floor", "round", "trunc",
          "frac", "expm1", "log1p", "deg2rad", "rad2deg", "erf", "erfinv", "isnan", "isinf",
          "isposinf", "isneginf", "conj", "angle", "positive")


def _unary_method(name):
    def f(self):
        return _on_values(self, lambda v: getattr(v, name)())
    f.__name__ = name
    return f


for _n in _UNARY:
    setattr(CompressedTensor, _n, _unary_method(_n))


def _rebuild(cidx, pidx, vals, dtype_name, shape, lay, requires_grad):
    t = _make(cidx, pidx, wrap(vals, dt._dtype_by_name(dtype_name)), shape, lay)
    if requires_grad:
        t.requires_grad_(True)
    return t


# ---- coordinates --------------------------------------------------------------------------------

def _geometry(shape, nb, block, dd):
    """(batch shape, rows, cols, dense shape) of a compressed tensor's size, sizes in blocks."""
    bshape = tuple(shape[:nb])
    R, C = shape[nb], shape[nb + 1]
    return bshape, R // block[0], C // block[1], tuple(shape[nb + 2:nb + 2 + dd])


def _coords(s):
    """(batch, block row, block col, values as (entries, *block, *dense)) of s's entries, in
    storage order, batches flattened."""
    _check_arrays(s._cidx, s._pidx, s._vals, s.shape, s._lay, full=True)
    nb = s._nb()
    n1 = s._cidx.shape[-1]
    ci = s._cidx.reshape(-1, n1).astype(np.int64)
    pi = s._pidx.reshape(ci.shape[0], -1).astype(np.int64)
    B, nnz = pi.shape
    comp = np.repeat(np.tile(np.arange(n1 - 1), B), np.diff(ci, axis=1).reshape(-1))
    b = np.repeat(np.arange(B), nnz)
    v = np.asarray(s._vals._data)
    v = v.reshape((B * nnz,) + v.shape[nb + 1:])
    if not _LAY[s._lay][3]:
        v = v.reshape((B * nnz, 1, 1) + v.shape[1:])
    r, c = (comp, pi.reshape(-1)) if _LAY[s._lay][2] else (pi.reshape(-1), comp)
    return b, r, c, v


def _build(b, r, c, v, lay, bshape, nR, nC, shape, idx_dtype=np.int64):
    """The arrays of layout lay from entries (b, r, c, v with v as (entries, *block, *dense));
    entries are put in the layout's order (stable)."""
    row = _LAY[lay][2]
    comp, plain = (r, c) if row else (c, r)
    n = nR if row else nC
    B = int(np.prod(bshape, dtype=np.int64))
    order = np.lexsort((plain, comp, b))
    b, comp, plain, v = b[order], comp[order], plain[order], v[order]
    counts = np.bincount(b, minlength=B) if B else np.zeros(0, np.int64)
    if B and (counts != counts[0]).any():
        raise RuntimeError("Expect the same number of specified elements per batch.")
    nnz = int(counts[0]) if B else 0
    per = np.bincount(b * n + comp, minlength=B * n).reshape(B, n)
    cidx = np.concatenate([np.zeros((B, 1), np.int64), np.cumsum(per, axis=1)], axis=1)
    cidx = cidx.reshape(bshape + (n + 1,)).astype(idx_dtype)
    pidx = plain.reshape(bshape + (nnz,)).astype(idx_dtype)
    if not _LAY[lay][3]:
        v = v.reshape((v.shape[0],) + v.shape[3:])
    vals = np.ascontiguousarray(v.reshape(bshape + (nnz,) + v.shape[1:]))
    return cidx, pidx, vals


def _dense_array(s):
    b, r, c, v = _coords(s)
    nb, blk = s._nb(), s._block()
    bshape, nR, nC, dshape = _geometry(s.shape, nb, blk, s.dense_dim())
    B = int(np.prod(bshape, dtype=np.int64))
    out = np.zeros((B, nR, nC) + blk + dshape, v.dtype)
    np.add.at(out, (b, r, c), v)
    out = np.moveaxis(out, 3, 2)            # (B, nR, br, nC, bc, *dense)
    return np.ascontiguousarray(out.reshape(s.shape))


def _blocks_of(a, nb, blk, dd):
    """Dense array a (batch + (R, C) + dense) as (B, nR, nC, br, bc, *dense)."""
    bshape = a.shape[:nb]
    R, C = a.shape[nb], a.shape[nb + 1]
    dshape = a.shape[nb + 2:]
    B = int(np.prod(bshape, dtype=np.int64))
    x = a.reshape((B, R // blk[0], blk[0], C // blk[1], blk[1]) + dshape)
    return np.moveaxis(x, 2, 3)


def _gather(G, s):
    """The values of dense array G at s's entries, shaped as s's values."""
    b, r, c, _ = _coords(s)
    x = _blocks_of(G, s._nb(), s._block(), s.dense_dim())[b, r, c]
    return np.ascontiguousarray(x.reshape(s._vals.shape))


def _masked(G, s, dtype):
    return _make(s._cidx, s._pidx, wrap(_gather(np.asarray(G), s).astype(dtype.np, copy=False),
                                        dtype), s.shape, s._lay)


def _dense_of(g):
    if isinstance(g, CompressedTensor):
        return _dense_array(g)
    if getattr(g, "is_sparse", False):
        from .sparse import _dense_array as coo_dense
        return coo_dense(g)
    return np.asarray(g._data)


# ---- invariants ---------------------------------------------------------------------------------

def _check_arrays(ci, pi, vals, shape, lay, full):
    """PyTorch's _validate_sparse_compressed_tensor_args: the shape checks always, the index
    checks (full) with check_invariants."""
    cname, pname, row, blocked, tag = _LAY[lay]
    nb = ci.ndim - 1
    if ci.ndim < 1 or pi.ndim != ci.ndim:
        raise RuntimeError(f"{cname} and {pname} must have the same number of dimensions (at "
                           f"least 1), but got {ci.ndim} and {pi.ndim}")
    if ci.shape[:-1] != pi.shape[:-1]:
        raise RuntimeError(f"all batch dimensions of {cname} and {pname} must be the same, "
                           f"but got {list(ci.shape[:-1])} and {list(pi.shape[:-1])}")
    if len(shape) < nb + 2:
        raise RuntimeError(f"tensor dimensionality must be sum of batch, base, and dense "
                           f"dimensionalities (={nb} + 2 + ...) but got {len(shape)}")
    if vals.ndim < nb + 1 + (2 if blocked else 0) or tuple(vals.shape[:nb]) != tuple(shape[:nb]):
        raise RuntimeError(f"values has incorrect shape {list(vals.shape)} for a {tag} tensor "
                           f"of size {list(shape)} with {nb} batch dims")
    if vals.shape[nb] != pi.shape[-1]:
        raise RuntimeError(f"{pname} and values must have the same number of specified "
                           f"elements, but got {pi.shape[-1]} and {vals.shape[nb]}")
    blk = tuple(vals.shape[nb + 1:nb + 3]) if blocked else (1, 1)
    R, C = shape[nb], shape[nb + 1]
    if R % max(blk[0], 1) or C % max(blk[1], 1):
        raise RuntimeError(f"tensor shape[{nb}] (={R}) and shape[{nb + 1}] (={C}) must be "
                           f"divisible by blocksize {list(blk)}")
    dd = vals.ndim - nb - 1 - (2 if blocked else 0)
    if tuple(vals.shape[vals.ndim - dd:]) != tuple(shape[nb + 2:]) or len(shape) != nb + 2 + dd:
        raise RuntimeError(f"values has incorrect shape {list(vals.shape)} for a {tag} tensor "
                           f"of size {list(shape)}")
    if not full:        # (PyTorch checks the rest only with check_invariants)
        return
    n = (R // blk[0]) if row else (C // blk[1])
    m = (C // blk[1]) if row else (R // blk[0])
    if ci.shape[-1] != n + 1:
        what = "rows" if row else "columns"
        raise RuntimeError(f"{cname}.shape[-1] must be equal to the number of {what} + 1 "
                           f"(={n + 1}), but got {ci.shape[-1]}")
    if ci.dtype != pi.dtype:
        raise RuntimeError(f"{cname} and {pname} must have the same dtype")
    nnz = pi.shape[-1]
    c2 = ci.reshape(-1, ci.shape[-1])
    p2 = pi.reshape(c2.shape[0], -1)
    if c2.shape[0] == 0:
        return
    if (c2[:, 0] != 0).any():
        raise RuntimeError(f"`{cname}[..., 0] == 0` is not satisfied.")
    if (c2[:, -1] != nnz).any():
        raise RuntimeError(f"`{cname}[..., -1] == nnz` is not satisfied.")
    d = np.diff(c2, axis=1)
    if (d < 0).any() or (d > m).any():
        raise RuntimeError(f"`0 <= {cname}[..., 1:] - {cname}[..., :-1] <= "
                           f"{'ncols' if row else 'nrows'}` is not satisfied.")
    if ((p2 < 0) | (p2 >= m)).any():
        raise RuntimeError(f"`0 <= {pname} < {'ncols' if row else 'nrows'}` is not satisfied.")
    for k in range(c2.shape[0]):
        seg = np.repeat(np.arange(n), d[k])
        same = seg[1:] == seg[:-1]
        if (np.diff(p2[k])[same] <= 0).any():
            raise RuntimeError(f"`{pname}[..., {cname}[..., i - 1]:{cname}[..., i]] for all "
                               f"i = 1, ..., {'nrows' if row else 'ncols'} are sorted and "
                               f"distinct along the last dimension values` is not satisfied.")


def _index_array(x, name):
    a = np.asarray(x._data if isinstance(x, Tensor) else np.asarray(x))
    if a.dtype.kind not in "iu":
        raise RuntimeError(f"{name} must be an int32 or int64 tensor, but got "
                           f"{dt.tname(x._dtype) if isinstance(x, Tensor) else a.dtype}")
    return a if a.dtype in (np.int32, np.int64) else a.astype(np.int64)


# ---- construction -------------------------------------------------------------------------------

def sparse_compressed_tensor(compressed_indices, plain_indices, values, size=None, *,
                             dtype=None, layout=None, device=None, pin_memory=False,
                             requires_grad=False, check_invariants=None):
    """torch.sparse_compressed_tensor: the shape checks always, the index checks with
    check_invariants=True (or torch.sparse.check_sparse_tensor_invariants); size=None infers
    (nrows, ncols) from the indices as PyTorch."""
    from .creation import tensor as _tensor
    from .sparse import check_sparse_tensor_invariants
    lay = _lname(layout)
    if lay is None:
        raise RuntimeError(f"sparse_compressed_tensor expected sparse compressed tensor layout "
                           f"but got {'none' if layout is None else layout}")
    if device is not None and canonical(device) is not cpu:
        raise NotImplementedError(f"sparse compressed tensors are supported on the cpu only in "
                                  f"Kiln (got device='{device}')")
    cname, pname, row, blocked, tag = _LAY[lay]
    ci, pi = _index_array(compressed_indices, cname), _index_array(plain_indices, pname)
    check = check_sparse_tensor_invariants.is_enabled() if check_invariants is None \
        else check_invariants
    if ci.dtype != pi.dtype:        # (PyTorch keeps int32 indices only when both are)
        if check:
            names = {np.dtype(np.int32): "Int", np.dtype(np.int64): "Long"}
            raise RuntimeError(f"{cname} and {pname} must have the same dtype, bot got "
                               f"{names[ci.dtype]} and {names[pi.dtype]}, respectively")
        ci, pi = ci.astype(np.int64), pi.astype(np.int64)
    if not isinstance(values, Tensor):
        values = _tensor(values, dtype=dtype)
    if dtype is not None and values._dtype is not dtype:
        values = values.to(dtype)
    if values._device is not cpu:
        raise NotImplementedError("sparse compressed tensors are supported on the cpu only in "
                                  "Kiln")
    nb = ci.ndim - 1
    if size is None:
        blk = tuple(values.shape[nb + 1:nb + 3]) if blocked else (1, 1)
        n = ci.shape[-1] - 1 if ci.ndim else 0
        m = int(pi.max()) + 1 if pi.size else 0
        R, C = (n * blk[0], m * blk[1]) if row else (m * blk[0], n * blk[1])
        dd = tuple(values.shape[nb + 1 + (2 if blocked else 0):])
        size = tuple(ci.shape[:-1]) + (R, C) + dd
    else:
        from .tensor import Size
        size = tuple(Size(size))
    _check_arrays(ci, pi, values, size, lay, bool(check))
    out = _run(_FromValues, "SparseCompressedTensorBackward0", values, ci, pi, size, lay)
    if requires_grad and out._node is None:
        out.requires_grad_(True)
    return out


def _ctor(layout_name):
    def ctor(compressed_indices, plain_indices, values, size=None, *, dtype=None, device=None,
             pin_memory=False, requires_grad=False, check_invariants=None):
        return sparse_compressed_tensor(compressed_indices, plain_indices, values, size,
                                        dtype=dtype, layout=_layout_obj(layout_name),
                                        device=device, requires_grad=requires_grad,
                                        check_invariants=check_invariants)
    ctor.__name__ = layout_name + "_tensor"
    ctor.__doc__ = f"torch.{layout_name}_tensor (see sparse_compressed_tensor)."
    return ctor


sparse_csr_tensor = _ctor("sparse_csr")
sparse_csc_tensor = _ctor("sparse_csc")
sparse_bsr_tensor = _ctor("sparse_bsr")
sparse_bsc_tensor = _ctor("sparse_bsc")


# ---- conversions --------------------------------------------------------------------------------

def _blocksize(blocksize, lay, who):
    if not _LAY[lay][3]:
        if blocksize is not None:
            raise RuntimeError(f"{who}: blocksize must be None for {_LAY[lay][4]} layout")
        return (1, 1)
    if blocksize is None:
        raise RuntimeError(f"{who}: to_sparse_{lay[7:]} expects blocksize to be specified")
    bs = (blocksize, blocksize) if isinstance(blocksize, int) else tuple(blocksize)
    if len(bs) != 2:
        raise RuntimeError(f"{who}: blocksize needs to be a tuple of size 2, but got "
                           f"{len(bs)}")
    return bs


def _from_dense_arrays(a, lay, blk, dd):
    nb = a.ndim - 2 - dd
    R, C = a.shape[nb], a.shape[nb + 1]
    if R % blk[0] or C % blk[1]:
        raise RuntimeError(f"dense_to_sparse_{lay[7:]}: tensor sparse size ({R},{C}) must be "
                           f"divisible by given blocksize ({blk[0]},{blk[1]})")
    x = _blocks_of(a, nb, blk, dd)
    axes = tuple(range(3, x.ndim))
    nz = (x != 0).any(axis=axes) if axes else x != 0
    b, r, c = (np.asarray(i, np.int64) for i in np.nonzero(nz))
    return _build(b, r, c, x[b, r, c], lay, tuple(a.shape[:nb]), R // blk[0], C // blk[1],
                  a.shape)


def to_compressed(x, layout, blocksize=None, dense_dim=None):
    """Tensor.to_sparse_csr / csc / bsr / bsc and to_sparse(layout=...) from any layout."""
    lay = _lname(layout)
    who = f"to_sparse_{lay[7:]}"
    if isinstance(x, CompressedTensor):
        if dense_dim is not None:
            raise RuntimeError(f"{who}: conversion from {_tag(x)} to {_LAY[lay][4]} with "
                               f"dense_dim argument given is not supported")
        blk = _blocksize(blocksize, lay, who) if _LAY[lay][3] else None
        if x._lay == lay and (blk is None or blk == x._block()):
            return x
        if _LAY[x._lay][3] != _LAY[lay][3] and _LAY[x._lay][3]:
            raise RuntimeError(f"sparse_compressed_to_sparse_{lay[7:]}: expected SparseCsr or "
                               f"SparseCsc layout but got {_tag(x)}")
        if _LAY[x._lay][3] != _LAY[lay][3] and x._nb():
            raise RuntimeError(f"sparse_compressed_to_sparse_{lay[7:]}: conversion from "
                               f"{_tag(x)} to {_LAY[lay][4]} for batched inputs is not "
                               f"supported")
        name = f"ToSparse{lay[7:].capitalize()}Backward0"
        if _LAY[x._lay][3] == _LAY[lay][3]:       # csr <-> csc, bsr <-> bsc: reorder entries
            return _run(_Reorder, name, x, lay)
        return _run(_FromDense, name, x.to_dense(), lay, blk, x.dense_dim())
    if getattr(x, "is_sparse", False):            # COO: through its dense form
        if x.ndim == 2 and x.dense_dim() == 0 and lay in ("sparse_csr", "sparse_csc") and \
                dense_dim is None:      # (its coalesced entries, explicit zeros kept, as torch)
            return _coo_to_compressed(x, lay)
        x = x.to_dense()
    if x._device is not cpu:
        raise NotImplementedError("sparse compressed tensors are supported on the cpu only in "
                                  "Kiln")
    dd = 0 if dense_dim is None else int(dense_dim)
    if x.ndim < 2:
        raise RuntimeError(f"{who}: expected a tensor of at least 2 dimensions, got "
                           f"{x.ndim}")
    if not 0 <= dd <= x.ndim - 2:
        raise RuntimeError(f"dense_to_sparse_{lay[7:]}: dense_dim argument must be in "
                           f"[0,{x.ndim - 2}] range, but {dd} is given")
    blk = _blocksize(blocksize, lay, who)
    return _run(_FromDense, f"ToSparse{lay[7:].capitalize()}Backward0", x, lay, blk, dd)


def _coo_to_compressed(x, lay):
    """A 2-d COO matrix as CSR/CSC over its coalesced entries (values keep their history)."""
    from .ops_index import index_select
    xc = x.coalesce()
    ix = np.asarray(xc._indices()._data)
    v = xc.values()
    major, minor = (ix[0], ix[1]) if lay == "sparse_csr" else (ix[1], ix[0])
    n = x.shape[0 if lay == "sparse_csr" else 1]
    if lay == "sparse_csc":
        perm = np.lexsort((ix[0], ix[1]))
        major, minor = major[perm], minor[perm]
        v = index_select(v, 0, wrap(perm.astype(np.int64), dt.int64))
    comp = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=n))]).astype(np.int64)
    r = sparse_compressed_tensor(wrap(comp, dt.int64), wrap(minor.astype(np.int64), dt.int64), v,
                                 tuple(x.shape), layout=_layout_obj(lay))
    return rename(r, f"ToSparse{lay[7:].capitalize()}Backward0") if r._node is not None else r


def _transpose(s, name):
    other = {"sparse_csr": "sparse_csc", "sparse_csc": "sparse_csr",
             "sparse_bsr": "sparse_bsc", "sparse_bsc": "sparse_bsr"}[s._lay]
    nb = s._nb()
    shape = list(s.shape)
    shape[nb], shape[nb + 1] = shape[nb + 1], shape[nb]
    if _LAY[s._lay][3]:
        return _on_values(s, lambda v: v.transpose(nb + 1, nb + 2), name, tuple(shape), other)
    return _on_values(s, lambda v: v, name, tuple(shape), other)


def _on_values(s, f, name=None, shape=None, lay=None):
    """s's pattern with values f(s.values()) (f a dense Kiln op, so autograd reaches s)."""
    v = s.values()
    r = f(v)
    if r is v:
        r = v.view_as(v) if r.requires_grad else v
    out = sparse_compressed_tensor(s._cidx, s._pidx, r, s.shape if shape is None else shape,
                                   layout=_layout_obj(lay or s._lay), check_invariants=False)
    if out._node is not None:
        rename(out, name or (r._node._name if r._node is not None else
                             "SparseCompressedTensorBackward0"))
    return out


# ---- autograd Functions -------------------------------------------------------------------------

class _FromValues(Function):
    @staticmethod
    def forward(ctx, values, ci, pi, size, lay):
        out = _make(ci, pi, values.detach(), size, lay)
        ctx.s = out
        return out

    @staticmethod
    def backward(ctx, g):
        s = ctx.s
        if isinstance(g, CompressedTensor) and g._pidx is s._pidx and g._lay == s._lay:
            v = g._vals
        else:
            v = wrap(_gather(_dense_of(g), s), g._dtype)
        return v, None, None, None, None


class _Values(Function):
    @staticmethod
    def forward(ctx, s):
        ctx.s = s.detach()
        return wrap(s._vals._data, s._dtype)

    @staticmethod
    def backward(ctx, g):
        s = ctx.s
        return _make(s._cidx, s._pidx, wrap(np.asarray(g._data), g._dtype), s.shape, s._lay)


class _ToDense(Function):
    @staticmethod
    def forward(ctx, s):
        ctx.s = s.detach()
        return wrap(_dense_array(s), s._dtype)

    @staticmethod
    def backward(ctx, g):
        return _masked(g._data, ctx.s, g._dtype)


class _FromDense(Function):
    @staticmethod
    def forward(ctx, x, lay, blk, dd):
        ci, pi, v = _from_dense_arrays(np.asarray(x._data), lay, blk, dd)
        return _make(ci, pi, wrap(v, x._dtype), tuple(x.shape), lay)

    @staticmethod
    def backward(ctx, g):
        return wrap(_dense_of(g), g._dtype), None, None, None


class _Reorder(Function):
    """csr <-> csc, bsr <-> bsc: the same entries in the other order."""
    @staticmethod
    def forward(ctx, s, lay):
        b, r, c, v = _coords(s)
        bshape, nR, nC, _ = _geometry(s.shape, s._nb(), s._block(), s.dense_dim())
        ci, pi, vals = _build(b, r, c, v, lay, bshape, nR, nC, s.shape, s._cidx.dtype)
        ctx.s = s.detach()
        return _make(ci, pi, wrap(vals, s._dtype), s.shape, lay)

    @staticmethod
    def backward(ctx, g):
        return _masked(_dense_of(g), ctx.s, g._dtype), None


class _ToCoo(Function):
    @staticmethod
    def forward(ctx, s):
        from .sparse import _make as coo_make
        b, r, c, v = _coords(s)
        nb, (br, bc) = s._nb(), s._block()
        bshape = tuple(s.shape[:nb])
        # every element of each block, block by block (PyTorch's order)
        i, j = np.meshgrid(np.arange(br), np.arange(bc), indexing="ij")
        rows = (r[:, None] * br + i.reshape(-1)).reshape(-1)
        cols = (c[:, None] * bc + j.reshape(-1)).reshape(-1)
        bidx = np.repeat(b, br * bc)
        vals = v.reshape((v.shape[0] * br * bc,) + v.shape[3:])
        bix = np.array(np.unravel_index(bidx, bshape), np.int64).reshape(nb, -1) if nb else \
            np.zeros((0, rows.shape[0]), np.int64)
        ix = np.concatenate([bix, rows[None], cols[None]]).astype(np.int64)
        lin = np.ravel_multi_index(tuple(ix), s.shape[:nb + 2]) if ix.shape[1] else ix[0]
        coal = bool((np.diff(lin) > 0).all())
        ctx.s = s.detach()
        return coo_make(ix, wrap(np.ascontiguousarray(vals), s._dtype), tuple(s.shape), coal)

    @staticmethod
    def backward(ctx, g):
        return _masked(_dense_of(g), ctx.s, g._dtype)


def _spmm_array(s, D, transpose=False):
    """s @ D (transpose: s^T @ D) for a 2-D compressed s and a 2-D array D."""
    b, r, c, v = _coords(s)
    br, bc = s._block()
    R, C = s.shape
    if transpose:
        r, c, br, bc, R, C = c, r, bc, br, C, R
        v = np.swapaxes(v, 1, 2)
    K = D.shape[1]
    out = np.zeros((R // br, br, K), np.result_type(v.dtype, D.dtype))
    Db = D.reshape(C // bc, bc, K)
    np.add.at(out, r, np.einsum("nij,njk->nik", v, Db[c]))
    return out.reshape(R, K)


class _SpMM(Function):
    @staticmethod
    def forward(ctx, s, d):
        ctx.s, ctx.d = s.detach(), d.detach()
        return wrap(_spmm_array(s, np.asarray(d._data)).astype(s._dtype.np, copy=False),
                    s._dtype)

    @staticmethod
    def backward(ctx, g):
        G = np.asarray(g._data)
        gs = gd = None
        if ctx.needs_input_grad[0]:         # dense, as PyTorch's mm gives for a sparse mat1
            gs = wrap(G @ np.asarray(ctx.d._data).T, g._dtype)
        if ctx.needs_input_grad[1]:
            gd = wrap(_spmm_array(ctx.s, G, transpose=True).astype(g._dtype.np, copy=False),
                      g._dtype)
        return gs, gd


class _Sampled(Function):
    @staticmethod
    def forward(ctx, s, m1, m2, beta, alpha):
        ctx.s, ctx.m1, ctx.m2, ctx.ab = s.detach(), m1.detach(), m2.detach(), (beta, alpha)
        P = np.asarray(m1._data) @ np.asarray(m2._data)
        v = beta * s._vals._data + alpha * _gather(P, s)
        return _make(s._cidx, s._pidx, wrap(v.astype(s._dtype.np, copy=False), s._dtype),
                     s.shape, s._lay)

    @staticmethod
    def backward(ctx, g):
        beta, alpha = ctx.ab
        s = ctx.s
        Gm = _dense_array(_masked(_dense_of(g), s, g._dtype))
        gs = _make(s._cidx, s._pidx, wrap(beta * _gather(Gm, s), g._dtype), s.shape, s._lay)
        g1 = wrap(alpha * Gm @ np.asarray(ctx.m2._data).T, g._dtype)
        g2 = wrap(alpha * np.asarray(ctx.m1._data).T @ Gm, g._dtype)
        return gs, g1, g2, None, None


class _AddC(Function):
    @staticmethod
    def forward(ctx, a, b, alpha):
        ctx.a, ctx.b, ctx.alpha = a.detach(), b.detach(), alpha
        ba, ra, ca, va = _coords(a)
        bb, rb, cb, vb = _coords(b)
        bshape, nR, nC, _ = _geometry(a.shape, a._nb(), a._block(), a.dense_dim())
        n = nR * nC
        lin = np.concatenate([ba * n + ra * nC + ca, bb * n + rb * nC + cb])
        uniq, inv = np.unique(lin, return_inverse=True)
        v = np.zeros((uniq.shape[0],) + va.shape[1:], va.dtype)
        np.add.at(v, inv[:len(ra)], va)
        np.add.at(v, inv[len(ra):], vb * np.asarray(alpha, vb.dtype))
        ci, pi, vals = _build(uniq // n, uniq % n // nC, uniq % nC, v, a._lay, bshape, nR, nC,
                              a.shape, a._cidx.dtype)
        return _make(ci, pi, wrap(vals, a._dtype), a.shape, a._lay)

    @staticmethod
    def backward(ctx, g):
        G = _dense_of(g)
        gb = _masked(G * ctx.alpha if ctx.alpha != 1 else G, ctx.b, g._dtype)
        return _masked(G, ctx.a, g._dtype), gb, None


# ---- math ---------------------------------------------------------------------------------------

def add(a, b, alpha=1):
    """add with a compressed operand: compressed + compressed (same layout) is compressed on
    the union of the patterns; with a dense tensor of the same size the sum is dense."""
    ca, cb = isinstance(a, CompressedTensor), isinstance(b, CompressedTensor)
    if ca and cb:
        if a._lay != b._lay:
            cname = _LAY[a._lay][0]
            kind = "row" if cname == "crow_indices" else "column"
            raise RuntimeError(f"{cname} expected sparse {kind} compressed tensor layout but "
                               f"got {_tag(b)}")
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"torch.add: Expected input tensors to have the same shape, but "
                               f"got tensor `self` with shape {list(a.shape)} and tensor "
                               f"`other` with shape {list(b.shape)}")
        if a._dtype is not b._dtype:
            raise RuntimeError(f"expected scalar type {dt.tname(b._dtype)} but found "
                               f"{dt.tname(a._dtype)}")
        if a._block() != b._block():
            raise RuntimeError(f"torch.add: the blocksizes {list(a._block())} and "
                               f"{list(b._block())} differ")
        return _run(_AddC, "AddBackward0", a, b, alpha)
    s, d = (a, b) if ca else (b, a)
    if not isinstance(d, Tensor) or tuple(d.shape) != tuple(s.shape):
        shp = list(d.shape) if isinstance(d, Tensor) else []
        raise RuntimeError(f"add: expected 'self' and 'other' to have same size, but self has "
                           f"size {shp} while other has size {list(s.shape)} (FYI: op2-sparse "
                           f"addition does not currently support broadcasting)")
    if getattr(d, "is_sparse", False):
        raise RuntimeError(f"add: {_tag(a)} + {_tag(b)} is not supported")
    sd = s.to_dense()
    if ca:
        return d * alpha + sd if alpha != 1 else sd + d
    return d + sd * alpha if alpha != 1 else d + sd


class _Gather(Function):
    """The entries of dense d at s's pattern, as s's values (for sparse * dense)."""
    @staticmethod
    def forward(ctx, d, s):
        ctx.s = s.detach()
        return wrap(_gather(np.asarray(d._data), s), d._dtype)

    @staticmethod
    def backward(ctx, g):
        s = ctx.s
        return wrap(_dense_array(_make(s._cidx, s._pidx, g, s.shape, s._lay)), g._dtype), None


def _mul_compressed(a, b):
    """CSR * CSR: the entries on both patterns (2-D, as PyTorch's cpu kernel)."""
    if a._lay != "sparse_csr" or b._lay != "sparse_csr":
        raise RuntimeError("Expected result Tensor to be of format CSR")
    if a.ndim != 2 or b.ndim != 2 or tuple(a.shape) != tuple(b.shape):
        raise RuntimeError(f"mul: CSR tensors of sizes {list(a.shape)} and {list(b.shape)} "
                           f"(2-D, equal sizes only)")
    if STATE.grad_enabled and (a.requires_grad or b.requires_grad):
        raise NotImplementedError("Kiln: the gradient of CSR * CSR is not supported")
    ba, ra, ca, va = _coords(a)
    bb, rb, cb, vb = _coords(b)
    nC = a.shape[1]
    common, ia, ib = np.intersect1d(ra * nC + ca, rb * nC + cb, assume_unique=True,
                                    return_indices=True)
    from compiler.ir.registry import promote
    d = promote(a, b)
    v = va[ia].astype(d.np) * vb[ib].astype(d.np)
    ci, pi, vals = _build(np.zeros_like(common), common // nC, common % nC, v, "sparse_csr",
                          (), a.shape[0], nC, a.shape, a._cidx.dtype)
    return _make(ci, pi, wrap(vals, d), a.shape, "sparse_csr")


def _mul(s, other):
    if isinstance(other, Tensor) and other.ndim != 0:
        if isinstance(other, CompressedTensor):
            return _mul_compressed(s, other)
        if getattr(other, "is_sparse", False):
            raise NotImplementedError(f"Kiln: mul of a {_tag(s)} and a sparse COO tensor is "
                                      f"not supported")
        if tuple(other.shape) != tuple(s.shape):
            raise RuntimeError(f"mul: a dense tensor of size {list(other.shape)} and a "
                               f"{_tag(s)} tensor of size {list(s.shape)} must have the same "
                               f"size")
        return _on_values(s, lambda v: v * _Gather.apply(other, s), "MulBackward0")
    if not isinstance(other, (bool, int, float, complex, Tensor)):
        return NotImplemented
    return _on_values(s, lambda v: v * other, "MulBackward0")


def _sum(s, dim, keepdim, dtype):
    if dim is None:
        v = s.values()
        r = v.sum(dtype=dtype) if dtype is not None else v.sum()
        return rename(r, "SumBackward0") if r._node is not None else r
    if not keepdim:
        raise RuntimeError("reduction operations on CSR tensors with keepdim=False is "
                           "unsupported")
    if s._lay != "sparse_csr":
        raise RuntimeError(f"Currently the only compressed sparse format supported for "
                           f"sum.dim_IntList is CSR, but got layout {_tag(s)}")
    if STATE.grad_enabled and s.requires_grad:
        raise NotImplementedError("Kiln: the gradient of sum(dim) of a CSR tensor is not "
                                  "supported")
    d = s.to_dense().sum(dim, keepdim=True, dtype=dtype)
    return to_compressed(d, s.layout)


def _check_mm(s, d, who="mm"):
    if s.ndim != 2 or s.dense_dim():
        raise NotImplementedError(f"Kiln: {who} of a {_tag(s)} tensor of size {list(s.shape)} "
                                  f"(batch or dense dims) is not supported")
    if d.ndim != 2:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[-{max(d.ndim, 1)}, {max(d.ndim, 1) - 1}], but got 1)")
    if d.shape[0] != s.shape[1]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({s.shape[0]}x"
                           f"{s.shape[1]} and {d.shape[0]}x{d.shape[1]})")
    if d._dtype is not s._dtype:
        raise RuntimeError(f"expected scalar type {dt.tname(s._dtype)} but found "
                           f"{dt.tname(d._dtype)}")
    if d._device is not cpu:
        raise NotImplementedError("sparse compressed tensors are supported on the cpu only in "
                                  "Kiln")


def _mm(a, b, name):
    ca, cb = isinstance(a, CompressedTensor), isinstance(b, CompressedTensor)
    if ca and cb:
        if STATE.grad_enabled and (a.requires_grad or b.requires_grad):
            raise NotImplementedError("Kiln: the gradient of sparse @ sparse is not supported")
        _check_mm(a, b.to_dense())
        return to_compressed(wrap(_spmm_array(a, _dense_array(b)), a._dtype), a.layout)
    if ca:
        if getattr(b, "is_sparse", False):
            raise RuntimeError(f"addmm: computation on CPU is not implemented for Strided + "
                               f"{_tag(a)} @ Sparse")
        _check_mm(a, b)
        return _run(_SpMM, name, a, b)
    if getattr(a, "is_sparse", False):
        raise RuntimeError(f"addmm: computation on CPU is not implemented for Sparse + "
                           f"Sparse @ {_tag(b)}")
    # dense @ compressed: (b^T @ a^T)^T
    if a.ndim != 2 or a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                           f"({'x'.join(map(str, a.shape))} and {b.shape[0]}x{b.shape[1]})")
    r = _mm(_transpose(b, "TBackward0"), a.t(), name).t()
    return rename(r, name) if r._node is not None else r


def matmul(a, b):
    if b.ndim == 1 and isinstance(a, CompressedTensor):
        if a.ndim != 2 or a.shape[1] != b.shape[0]:
            raise RuntimeError(f"size mismatch, got input ({a.shape[0]}x{a.shape[1]}), vec "
                               f"({b.shape[0]})")
        r = _mm(a, b.unsqueeze(1), "MmBackward0").squeeze(1)
        return rename(r, "MvBackward0") if r._node is not None else r
    if a.ndim == 1:
        return _mm(a.unsqueeze(0), b, "MmBackward0").squeeze(0)
    return _mm(a, b, "MmBackward0")


def addmm(input, mat1, mat2, *, beta=1, alpha=1, name="AddmmBackward0"):
    """beta * input + alpha * (mat1 @ mat2) with a compressed mat1 or mat2 (dense result)."""
    r = _mm(mat1, mat2, "MmBackward0")
    if alpha != 1:
        r = r * alpha
    r = (input if beta == 1 else input * beta) + r
    return rename(r, name) if r._node is not None else r


def sampled_addmm(input, mat1, mat2, *, beta=1.0, alpha=1.0, out=None):
    """torch.sparse.sampled_addmm: beta * input + alpha * (mat1 @ mat2) at input's entries
    (a CSR result)."""
    if not isinstance(input, CompressedTensor) or input._lay != "sparse_csr":
        backend = _tag(input) + "CPU" if isinstance(input, CompressedTensor) else "CPU"
        raise NotImplementedError(f"Could not run 'aten::sparse_sampled_addmm' with arguments "
                                  f"from the '{backend}' backend.")
    if mat1.ndim != 2 or mat2.ndim != 2 or input.ndim != 2:
        raise NotImplementedError("Kiln: sampled_addmm of batched tensors is not supported")
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"sampled_addmm: mat1 and mat2 shapes cannot be multiplied "
                           f"({mat1.shape[0]}x{mat1.shape[1]} and {mat2.shape[0]}x"
                           f"{mat2.shape[1]})")
    if (mat1.shape[0], mat2.shape[1]) != tuple(input.shape):
        raise RuntimeError(f"sampled_addmm: Expected input size ({mat1.shape[0]}x"
                           f"{mat2.shape[1]}), got {input.shape[0]}x{input.shape[1]}")
    for m in (mat1, mat2):
        if m._dtype is not input._dtype:
            raise RuntimeError(f"sampled_addmm: Expected mat1 and mat2 to have the same dtype "
                               f"as input, but got {dt.tname(m._dtype)} and "
                               f"{dt.tname(input._dtype)}")
    r = _run(_Sampled, "SparseSampledAddmmBackward0", input, mat1, mat2, beta, alpha)
    if out is not None:
        raise NotImplementedError("Kiln: sampled_addmm(out=) is not supported")
    return r


# ---- printing -----------------------------------------------------------------------------------

def _repr(s):
    from ._printing import tensor_str, _add_suffixes
    indent = len("tensor(")
    cname, pname = _LAY[s._lay][:2]
    parts = []
    for name, a, d in ((cname, s._cidx, None), (pname, s._pidx, None),
                       ("values", s._vals._data, s._dtype)):
        d = d or (dt.int32 if a.dtype == np.int32 else dt.int64)
        pre = name + "=tensor("
        txt = tensor_str(a, d, indent + len(pre))
        if a.size == 0:
            txt += ", size=" + str(tuple(a.shape))
        parts.append(pre + txt + ")")
    body = (",\n" + " " * indent).join(parts)
    dflt = dt.get_default_dtype()
    suffixes = ["size=" + str(tuple(s.shape)), "nnz=" + str(s._nnz())]
    if s._dtype not in (dflt, dt.int64, dt.bool_,
                        dt.complex128 if dflt is dt.float64 else dt.complex64):
        suffixes.append("dtype=" + repr(s._dtype))
    suffixes.append("layout=" + repr(s.layout))
    if s._node is not None:
        suffixes.append(f"grad_fn=<{s._node._name}>")
    elif s._rg:
        suffixes.append("requires_grad=True")
    return _add_suffixes("tensor(" + body, suffixes, indent)


# ---- autograd engine hooks ----------------------------------------------------------------------

def accumulate(old, new):
    """Two gradients of one tensor met in a backward pass: a compressed sum when both are
    compressed with one pattern, else dense."""
    if isinstance(old, CompressedTensor) and isinstance(new, CompressedTensor) and \
            old._lay == new._lay:
        return add(old, new, 1)
    d = np.asarray(_dense_of(old)) + np.asarray(_dense_of(new))
    return wrap(d, old._dtype)


def accumulate_grad(leaf, old, g, create_graph):
    """AccumulateGrad with a compressed gradient or .grad (out of place)."""
    if old is None:
        leaf._grad = g if create_graph else g.detach()
    else:
        leaf._grad = accumulate(old, g if create_graph else g.detach())


# ---- plain (strided) tensors: PyTorch's answers and errors --------------------------------------

def _strided_sparse_dim(self):
    return 0


def _strided_dense_dim(self):
    return self.ndim


def _layout_error(name, kind):
    def f(self):
        raise RuntimeError(f"{name} expected {kind} tensor layout but got {_tag(self)}")
    f.__name__ = name
    return f


def _strided_nnz(self):
    raise NotImplementedError("Could not run 'aten::_nnz' with arguments from the 'CPU' "
                              "backend.")


def install():
    """Bind the compressed conversions and the sparse accessors of plain tensors."""
    from .sparse import SparseTensor
    for lay in _LAY:
        def conv(self, *args, _lay=lay, **kwargs):
            if _LAY[_lay][3]:
                blocksize = args[0] if args else kwargs.pop("blocksize", None)
                return to_compressed(self, _layout_obj(_lay), blocksize,
                                     kwargs.get("dense_dim"))
            return to_compressed(self, _layout_obj(_lay), None,
                                 args[0] if args else kwargs.get("dense_dim"))
        conv.__name__ = "to_" + lay
        setattr(Tensor, "to_" + lay, conv)
        setattr(SparseTensor, "to_" + lay, conv)
    Tensor.is_sparse_csr = property(lambda self: False)
    for name, fn in (("sparse_dim", _strided_sparse_dim), ("dense_dim", _strided_dense_dim),
                     ("_nnz", _strided_nnz),
                     ("indices", _layout_error("indices", "sparse coordinate")),
                     ("values", _layout_error("values", "sparse")),
                     ("coalesce", _layout_error("coalesce", "sparse coordinate")),
                     ("is_coalesced", _layout_error("is_coalesced", "sparse coordinate")),
                     ("crow_indices", _layout_error("crow_indices", "sparse row compressed")),
                     ("col_indices", _layout_error("col_indices", "sparse row compressed")),
                     ("ccol_indices", _layout_error("ccol_indices",
                                                    "sparse column compressed")),
                     ("row_indices", _layout_error("row_indices",
                                                   "sparse column compressed"))):
        if name not in Tensor.__dict__:
            setattr(Tensor, name, fn)
