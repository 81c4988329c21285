"""Ops on nested tensors, each one delegated to Kiln's ordinary ops on the values buffer (when
the op acts on regular dims) or on the components (else), so autograd comes from those ops.

`apply_prim` is what framework._dispatch.apply calls when a primitive met a nested operand
(on its error path); the composite ops whose front-end reads shapes (softmax, linear, matmul,
bmm, mean, scaled_dot_product_attention) call the functions below from their own error path.
"""
import builtins

import numpy as np

from runtime import dtypes as dt
from compiler.ir.registry import REGISTRY as P
from ..tensor import Tensor
from .._dispatch import apply, wrap, rename
from ._storage import unsupported, no_sizes
from ._tensor import NestedTensor, jagged, pack, _like, _int_list


def _S():
    from .. import ops_shape
    return ops_shape


def owns(args):
    for a in args:
        if isinstance(a, NestedTensor):
            return True
    return False


def _tshape(t):
    """A shape as PyTorch's nested error messages print it."""
    if isinstance(t, NestedTensor):
        return "(" + ", ".join(str(s) for s in t.shape) + ")"
    return repr(t.shape)


def _no_sizes():
    return RuntimeError(str(no_sizes()))


def _vdim(t, d):
    """The values dim of t's nested dim d > 0."""
    return d - 1


def _batch_rows(t):
    """The component index of each row of t's values (rows outside every component: 0)."""
    off = _int_list(t._offsets)
    total = t._values.shape[t._ragged_idx - 1]
    ids = np.searchsorted(np.asarray(off[1:], np.int64), np.arange(total), side="right")
    return wrap(np.minimum(ids, len(off) - 2).astype(np.int64), dt.int64)


# ---- primitives ------------------------------------------------------------------------------

def apply_prim(p, args, attrs):
    if p.kind == "pointwise":
        return _pointwise(p, args, attrs)
    x = args[0]
    if p.kind == "reduction" and "dims" in attrs and isinstance(x, NestedTensor):
        D = _dims(x, attrs.get("dims"))
        if not x._jagged or 0 in D and x._ragged_idx not in D or \
                x._ragged_idx in D and D - {0, x._ragged_idx} and len(D) < x.dim():
            raise unsupported(p.name)     # (the front-end, if it knows the op, says why)
        return reduce(p.name, x, attrs.get("dims"), attrs.get("keepdim", False),
                      lambda v, dims, keepdim: apply(p, v, **dict(attrs, dims=dims,
                                                                  keepdim=keepdim)))
    if p.name == "matmul":
        return matmul(*args, strict=False)
    if p.name == "permute" and isinstance(x, NestedTensor):
        return permute(x, attrs["dims"])
    if p.name == "cat":
        return cat(args, attrs["dim"])
    if p.name == "expand" and isinstance(x, NestedTensor) and x._jagged:
        return expand(x, attrs["shape"])
    if p.name == "select" and isinstance(x, NestedTensor):
        return select(x, attrs["dim"], attrs["index"])
    if p.name in ("clone", "copy", "contiguous") and len(args) == 1:
        return _like(x, apply(p, x._values, **attrs))
    raise unsupported(p.name)


def _pointwise(p, args, attrs):
    nts = [a for a in args if isinstance(a, NestedTensor)]
    first = nts[0]
    if p.name == "where" and not first._jagged and not isinstance(args[2], NestedTensor):
        raise RuntimeError("other must be nested")
    name = f"{p.name}.Tensor"
    new = []
    if first._jagged:
        for a in args:
            if isinstance(a, NestedTensor):
                if not a._jagged:
                    raise _no_sizes()
                if a._j is not first._j or a._ragged_idx != first._ragged_idx:
                    raise RuntimeError(f"cannot call binary pointwise function {name} with "
                                       f"inputs of shapes {_tshape(args[0])} and "
                                       f"{_tshape(args[1])}")
                new.append(a._values)
            elif isinstance(a, Tensor):
                new.append(_dense_for(first, a, name, args))
            else:
                new.append(a)
        return _like(first, apply(p, *new, **attrs))
    for i, a in enumerate(args):
        if isinstance(a, NestedTensor):
            if a._jagged:
                raise _no_sizes()
            if a._sizes != first._sizes:
                raise RuntimeError(f"{p.name} does not support broadcasting when given a "
                                   f"NestedTensor")
            new.append(a._values)
        elif isinstance(a, Tensor) and a.ndim > 0:
            who = ("a nested self and non-nested other" if isinstance(args[0], NestedTensor)
                   else "a non-nested self and nested other")
            raise RuntimeError(f"Expected both self and other to be nested, but got {who}")
        else:
            new.append(a)
    return _like(first, apply(p, *new, **attrs))


def _dense_for(nt, d, name, args):
    """Dense operand d of a pointwise op with jagged nt, as an operand of nt's values: trailing
    regular dims broadcast as they are; a (B, ..., 1 at the ragged dim, ...) tensor is
    repeated per row of its component."""
    n, r = nt.dim(), nt._ragged_idx
    if d.ndim <= n - 1 - r:
        return d
    if d.ndim == n and d.shape[0] == len(nt) and d.shape[r] == 1:
        S = _S()
        from ..ops_index import index_select
        rows = index_select(S.squeeze(d, r), 0, _batch_rows(nt))
        return rows if r == 1 else S.movedim(rows, 0, r - 1)
    raise RuntimeError(f"cannot call binary pointwise function {name} with inputs of shapes "
                       f"{args[0].shape!r} and {args[1].shape!r}")


# ---- reductions ------------------------------------------------------------------------------

def _dims(x, dims):
    from compiler.ir.registry import norm_dim
    n = x.dim()
    if dims is None:
        return set(range(n))
    if isinstance(dims, int):
        dims = (dims,)
    return {norm_dim("sum", d, n) for d in dims}


def reduce(name, x, dims, keepdim, f):
    """Reduction `f(values, dims, keepdim)` of nested x over nested dims `dims`."""
    D = _dims(x, dims)
    n = x.dim()
    if not x._jagged:
        if dims is None:
            raise unsupported(name)
        if name != "sum":
            raise unsupported(name if name != "mean" else "mean.dim")
        if D != {n - 1}:
            raise RuntimeError(f"NestedTensor can only be reduced across the last dimension for "
                               f"now got dimension {min(D - {n - 1})} instead.")
        if not keepdim:
            raise RuntimeError("NestedTensor always requires keepdim=True for now.")
        return pack([f(c, (n - 2,), True) for c in x.unbind()], jagged_layout=False)
    r = x._ragged_idx
    S = _S()
    if D == set(range(n)):
        v = x._values if x._lengths is None else S.cat(list(x.unbind()), r - 1)
        out = f(v, None, False)
        return S.reshape(out, (1,) * n) if keepdim else out
    if 0 in D and r not in D:
        raise RuntimeError(f"{name}(): reducing along the batch dimension but not the ragged "
                           f"dimension is not supported for nested tensors")
    if r in D and D - {0, r}:
        raise RuntimeError(f"{name}(): reducing along a ragged and non-batch dimension is not "
                           f"supported for nested tensors")
    if D == {r}:
        return S.stack([f(c, (r - 1,), keepdim) for c in x.unbind()], 0)
    if D == {0, r}:
        v = x._values if x._lengths is None else S.cat(list(x.unbind()), r - 1)
        out = f(v, (r - 1,), False)
        return S.reshape(out, (1, 1) + tuple(out.shape)) if keepdim else out
    vd = tuple(sorted(_vdim(x, d) for d in D))
    out = f(x._values, vd, keepdim)
    nr = r if keepdim else r - builtins.sum(1 for d in D if d < r)
    return jagged(out, x._offsets, x._lengths, nr, x._j)


def mean(x, dim=None, keepdim=False, dtype=None):
    from .. import ops_math as M
    return reduce("mean", x, dim, keepdim,
                  lambda v, dims, kd: M.mean(v, dims, kd, dtype=dtype))


def sum(x, dim=None, keepdim=False, dtype=None):
    from .. import ops_math as M
    return reduce("sum", x, dim, keepdim, lambda v, dims, kd: M.sum(v, dims, kd, dtype=dtype))


# ---- softmax ---------------------------------------------------------------------------------

def softmax(x, dim, dtype=None, log=False):
    from .. import ops_math as M
    from compiler.ir.registry import norm_dim
    f = M.log_softmax if log else M.softmax
    name = "log_softmax" if log else "softmax"
    d = norm_dim(name, dim, x.dim())
    if not x._jagged:
        if log:
            raise unsupported("_log_softmax")
        if d == 0:
            raise RuntimeError("Cannot apply softmax across nested dimension 0")
        return pack([f(c, d - 1, dtype) for c in x.unbind()], jagged_layout=False)
    if d == 0:
        raise RuntimeError(f"{name}(): not supported when reducing across the batch dimension "
                           f"for NestedTensor")
    r = x._ragged_idx
    if d == r:
        if log:
            raise RuntimeError("log_softmax(): not supported when reducing along the ragged "
                               "dimension for NestedTensor")
        return pack([f(c, d - 1, dtype) for c in x.unbind()], like=x, ragged_idx=r)
    return _like(x, f(x._values, _vdim(x, d), dtype))


# ---- matmul, linear, attention ---------------------------------------------------------------

def matmul(a, b, op="matmul", strict=True):
    na, nb = isinstance(a, NestedTensor), isinstance(b, NestedTensor)
    if na and not a._jagged or nb and not b._jagged:
        if not (na and nb):
            if not strict:
                raise unsupported("matmul")
            if op == "bmm":
                raise RuntimeError("batch2 must be a 3D tensor" if na else
                                   "batch1 must be a 3D tensor")
            who = "a nested self and non-nested other" if na else \
                "a non-nested self and nested other"
            raise RuntimeError(f"Expected both to be nested, but got {who}")
        if a._jagged or b._jagged:
            raise _no_sizes()
        ca, cb = a.unbind(), b.unbind()
        if len(ca) != len(cb):
            raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                               f"[{len(ca)}, *] but got: [{len(cb)}, *].")
        from ..ops_linalg import matmul as mm
        return pack([mm(x, y) for x, y in zip(ca, cb)], jagged_layout=False)
    if na and not nb and b.ndim == 2 and a._ragged_idx < a.dim() - 1:
        return _like(a, apply(P["matmul"], a._values, b))
    if na and nb and a._j is b._j and a._ragged_idx == b._ragged_idx < a.dim() - 2 and \
            a.dim() == b.dim():
        return _like(a, apply(P["matmul"], a._values, b._values))
    if not strict:      # (from a primitive: the front-end that called it says why)
        raise unsupported("matmul")
    raise RuntimeError(f"matmul(): not supported between inputs of shapes {_tshape(a)} and "
                       f"{b.shape!r}")


def linear(x, weight, bias=None):
    from ..nn import functional as F
    if not x._jagged:
        return pack([F.linear(c, weight, bias) for c in x.unbind()], jagged_layout=False)
    if x._ragged_idx == x.dim() - 1:
        raise RuntimeError(f"linear(): not supported for NestedTensor with a ragged last "
                           f"dimension (input of shape {_tshape(x)})")
    return _like(x, F.linear(x._values, weight, bias))


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    from ..nn import functional as F
    # (PyTorch's math backend also wants each input contiguous once transposed back)
    ok = all(isinstance(t, NestedTensor) and t._jagged and t.dim() == 4 and t._ragged_idx == 2
             and t.transpose(1, 2).is_contiguous() for t in (q, k, v)) and \
        attn_mask is None and not is_causal
    if not ok:
        raise RuntimeError("No viable backend for scaled_dot_product_attention was found.")
    outs = [F.scaled_dot_product_attention(a, b, c, dropout_p=dropout_p, scale=scale,
                                           enable_gqa=enable_gqa)
            for a, b, c in zip(q.unbind(), k.unbind(), v.unbind())]
    # (PyTorch's result is the (B, j, H, D) buffer transposed, as the tutorial's inputs are)
    return transpose(pack([o.transpose(0, 1) for o in outs], like=q), 1, 2)


# ---- shape ops -------------------------------------------------------------------------------

def permute(x, perm):
    n = x.dim()
    perm = [int(d) % n for d in perm]
    if perm[0] != 0:
        if x._jagged:
            raise ValueError("Transpose is not supported on the batch dimension for jagged NT")
        raise RuntimeError("Nested tensor dimension 0 cannot be transposed")
    if not x._jagged:
        return pack([c.permute([d - 1 for d in perm[1:]]) for c in x.unbind()],
                    jagged_layout=False)
    vperm = [d - 1 for d in perm[1:]]
    v = x._values if vperm == sorted(vperm) else x._values.permute(vperm)
    return jagged(v, x._offsets, x._lengths, perm.index(x._ragged_idx), x._j)


def transpose(x, dim0, dim1):
    from compiler.ir.registry import norm_dim
    n = x.dim()
    a, b = norm_dim("transpose", dim0, n), norm_dim("transpose", dim1, n)
    perm = list(range(n))
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, perm)


def reshape(x, shape, op="reshape"):
    shape = list(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else \
        list(shape)
    if not x._jagged:
        if shape[0] not in (-1, len(x._sizes)):
            raise RuntimeError(f"{op}: For now nested {op} cannot change or infer the implicit "
                               f"batch dimension")
        return pack([c.reshape(shape[1:]) for c in x.unbind()], jagged_layout=False)
    r = x._ragged_idx
    ok = (len(shape) > r and shape[0] in (-1, len(x)) and (shape[r] == -1 or shape[r] is x._j)
          and -1 not in shape[r + 1:] and -1 not in shape[1:r])
    if not ok:
        raise RuntimeError(f"view(): cannot view shape {_tshape(x)} as {shape}")
    v = x._values
    vs = list(shape[1:])
    vs[r - 1] = v.shape[r - 1]
    return jagged(v.reshape(vs) if op == "reshape" else v.view(vs), x._offsets, x._lengths, r,
                  x._j)


def split(x, size_or_sections, dim, op="split"):
    """split/chunk of a regular (non-batch, non-ragged) dim: pieces of x's structure (chunk of
    a jagged x's batch dim: pieces of whole components)."""
    from compiler.ir.registry import norm_dim
    if not x._jagged:
        d = norm_dim(op, dim, x.dim())
        if d == 0:
            raise RuntimeError(f"{op}(): not supported for NestedTensor on dim=0")
        parts = [getattr(c, op)(size_or_sections, d - 1) for c in x.unbind()]
        return tuple(pack(list(p), jagged_layout=False) for p in zip(*parts))
    name = "Chunk" if op == "chunk" else "Split" if isinstance(size_or_sections, int) else \
        "SplitWithSizes"
    _contig(x, {"Chunk": "chunk_default(self: jt, chunks: any, dim: any?)",
                "Split": "split_tensor(self: jt, split_size: any, dim: any?)",
                "SplitWithSizes": "split_with_sizes_default(self: jt, split_sizes: any, "
                                  "dim: any?)"}[name])
    d = _wrap(x, dim, "split_with_sizes" if name == "SplitWithSizes" else op,
              batch=op == "chunk")
    if d == 0:
        return split_batch(x, size_or_sections)
    return tuple(_like(x, rename(v, f"{name}BackwardAutogradNestedTensor0"))
                 for v in getattr(x._values, op)(size_or_sections, d - 1))


def squeeze(x, dim):
    if not x._jagged:
        raise unsupported("squeeze.dim")
    _contig(x, "squeeze_dim(self: jt, dim: any)")
    d = _wrap(x, dim, "squeeze")
    return _like(x, x._values.squeeze(d - 1))


def expand(x, size):
    """x's values expanded over regular dims (the batch and ragged sizes must stay)."""
    size, r = list(size), x._ragged_idx
    if len(size) != x.dim() or any(not (a == b or a == -1) for a, b in
                                   zip(size[:r + 1], x.shape[:r + 1])):
        raise RuntimeError(f"expand(): cannot expand shape {_tshape(x)} -> "
                           f"[{', '.join(str(a) for a in size)}]")
    return _like(x, x._values.expand([-1 if d == r else size[d] for d in range(1, x.dim())]))


def unsqueeze(x, dim):
    from compiler.ir.registry import norm_dim
    d = norm_dim("unsqueeze", dim, x.dim() + 1)
    if d == 0:
        raise RuntimeError("unsqueeze(): not supported for NestedTensor on dim=0")
    if not x._jagged:
        return pack([c.unsqueeze(d - 1) for c in x.unbind()], jagged_layout=False)
    r = x._ragged_idx
    return jagged(x._values.unsqueeze(d - 1), x._offsets, x._lengths, r + (d <= r), x._j)


def unflatten(x, dim, sizes):
    from compiler.ir.registry import norm_dim
    d = norm_dim("unflatten", dim, x.dim())
    if not x._jagged:
        return pack([c.unflatten(d - 1, sizes) for c in x.unbind()], jagged_layout=False)
    r = x._ragged_idx
    if d == r:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the "
                           f"size of dim {d} ({x._j}) in the input tensor")
    if d == 0:
        shape = list(x.shape)
        raise RuntimeError(f"view(): cannot view shape {_tshape(x)} as "
                           f"[{', '.join(str(s) for s in list(sizes) + shape[1:])}]")
    v = x._values.unflatten(_vdim(x, d), sizes)
    nr = r + (len(sizes) - 1 if d < r else 0)
    return jagged(v, x._offsets, x._lengths, nr, x._j)


def flatten(x, start_dim=0, end_dim=-1):
    from compiler.ir.registry import norm_dim
    n = x.dim()
    s, e = norm_dim("flatten", start_dim, n), norm_dim("flatten", end_dim, n)
    if s == e:
        return x
    if not x._jagged:
        if s == 0:
            raise RuntimeError("flatten has no meaning for the batch dimension of a nested "
                               "tensor")
        return pack([c.flatten(s - 1, e - 1) for c in x.unbind()], jagged_layout=False)
    r = x._ragged_idx
    if s == 0:
        raise RuntimeError("flatten(): not supported for NestedTensor on dim=0")
    if s <= r <= e:
        raise RuntimeError("flatten(): not supported for NestedTensor on ragged dim")
    v = x._values.flatten(_vdim(x, s), _vdim(x, e))
    nr = r - (e - s if e < r else 0)
    return jagged(v, x._offsets, x._lengths, nr, x._j)


def to_padded_tensor(x, padding, output_size=None):
    from ..nn import functional as F
    if x._jagged and x._lengths is not None:
        raise RuntimeError("to_padded_tensor(): not supported for nested tensors with holes")
    comps = x.unbind()
    if x._jagged and comps:
        # (PyTorch's jagged kernel: output_size sets the ragged dim's length only, and cuts)
        r = x._ragged_idx - 1
        L = output_size[r + 1] if output_size is not None else max(c.shape[r] for c in comps)
        comps = [c.narrow(r, 0, L) if c.shape[r] > L else c for c in comps]
        output_size = [len(comps)] + list(comps[0].shape)
        output_size[r + 1] = L
    if output_size is not None:
        target = list(output_size)[1:]
    else:
        target = [max(c.shape[i] for c in comps) for i in range(comps[0].ndim)] if comps else []
    padded = []
    for c in comps:
        pads = []
        for i in reversed(range(c.ndim)):
            if target[i] < c.shape[i]:
                raise RuntimeError(f"Value in output_size is less than NestedTensor padded size. "
                                   f"Truncation is not supported. (output_size {list(output_size)}"
                                   f", component of shape {list(c.shape)})")
            pads += [0, target[i] - c.shape[i]]
        padded.append(F.pad(c, pads, value=padding) if any(pads) else c)
    from ..ops_shape import stack
    return stack(padded, 0)


# ---- cat, stack, slicing ---------------------------------------------------------------------

def _wrap(x, dim, op, batch=False):
    """torch's _wrap_jagged_dim: nested dim `dim` of jagged x, refusing the ragged dim (and the
    batch dim unless batch)."""
    from compiler.ir.registry import norm_dim
    d = norm_dim(op, dim, x.dim())
    if d == x._ragged_idx:
        raise RuntimeError(f"{op}(): not supported for NestedTensor on ragged dim")
    if d == 0 and not batch:
        raise RuntimeError(f"{op}(): not supported for NestedTensor on dim=0")
    return d


def _contig(x, op):
    """PyTorch's check of a "jt" operand: contiguous jagged, ragged in dim 1."""
    if x._lengths is not None or x._ragged_idx != 1:
        raise ValueError(f"NestedTensor {op}: expected self to be a contiguous jagged layout "
                         f"NestedTensor")


def cat(tensors, dim=0):
    from .. import ops_shape as S
    first = next(t for t in tensors if isinstance(t, NestedTensor))
    if not first._jagged:
        if not all(isinstance(t, NestedTensor) for t in tensors):
            raise RuntimeError("Expected each tensor in given list to be nested.")
        if any(t._jagged for t in tensors):
            raise _no_sizes()
        from compiler.ir.registry import norm_dim
        d = norm_dim("cat", dim, first.dim())
        if d == 0:
            return pack([c for t in tensors for c in t.unbind()], jagged_layout=False)
        cs = [t.unbind() for t in tensors]
        if any(len(c) != len(cs[0]) or any(a.shape[:d - 1] != b.shape[:d - 1] or
                                            a.shape[d:] != b.shape[d:] for a, b in zip(c, cs[0]))
               for c in cs):
            raise RuntimeError("cat(): expected all nested tensors to have matching ragged "
                               "structures outside of the concatenated dim")
        return pack([S.cat(list(p), d - 1) for p in zip(*cs)], jagged_layout=False)
    # (PyTorch: dense operands expand to the first's values; then its values are cat along the
    # values dim, keeping the first's offsets)
    ts = [t if isinstance(t, NestedTensor) else t.expand_as(first._values) for t in tensors]
    d = _wrap(first, dim, "cat")
    if any(isinstance(t, NestedTensor) and not t._jagged for t in ts):
        raise _no_sizes()
    vals = [t._values if isinstance(t, NestedTensor) else t for t in ts]
    return _like(first, S.cat(vals, _vdim(first, d)))


def stack(tensors, dim=0):
    from .. import ops_shape as S
    from compiler.ir.registry import norm_dim
    first = next(t for t in tensors if isinstance(t, NestedTensor))
    if not first._jagged:
        raise unsupported("stack")
    r = first._ragged_idx
    for t in tensors:
        if not isinstance(t, NestedTensor):
            raise RuntimeError("stack(): expected all nested tensors inputs")
        if t.dim() != first.dim():
            raise RuntimeError("stack(): expected all nested tensors to have the same dim")
        if not t._jagged or t._ragged_idx != r or t._j is not first._j or len(t) != len(first):
            raise RuntimeError("stack(): expected all nested tensors to have the same nested "
                               "structure")
    d = norm_dim("stack", dim, first.dim() + 1)
    if d == r:
        raise RuntimeError("stack(): not supported for NestedTensor on ragged dim")
    if d == 0:
        raise RuntimeError("stack(): not supported for NestedTensor on dim=0")
    vals = [t._values for t in tensors]
    return jagged(S.stack(vals, d - 1), first._offsets, first._lengths, r + (d <= r), first._j)


def narrow(x, dim, start, length):
    from .. import ops_shape as S
    if not x._jagged:
        from compiler.ir.registry import norm_dim
        d = norm_dim("narrow", dim, x.dim())
        if d != 0:
            raise RuntimeError(f"narrow(): only dim=0 supported for nested tensors, but got: {d}")
        B = len(x._sizes)
        st = int(start) + (B if int(start) < 0 else 0)
        if st < 0 or st > B or length < 0 or st + length > B:
            raise RuntimeError(f"start ({int(start)}) + length ({length}) exceeds dimension size "
                               f"({B}).")
        return pack(list(x.unbind()[st:st + length]), jagged_layout=False)
    _contig(x, "narrow(self: jt, dim: any, start: any, length: any)")
    d = _wrap(x, dim, "narrow")
    return _like(x, S.narrow(x._values, _vdim(x, d), start, length))


def select(x, dim, index):
    from .. import ops_shape as S
    from compiler.ir.registry import norm_dim
    if isinstance(index, Tensor):
        index = int(index.item())
    if not x._jagged:
        d = norm_dim("select", dim, x.dim())
        if d == 0:
            return x.unbind()[index]
        return pack([S.select(c, d - 1, index) for c in x.unbind()], jagged_layout=False)
    d = _wrap(x, dim, "select", batch=True)
    if d == 0:
        return x.unbind()[index]
    if x._lengths is not None:
        raise ValueError("select(): not yet supported on dim != 0 for non-contiguous nested "
                         "tensor with holes")
    r = x._ragged_idx
    v = rename(S.select(x._values, _vdim(x, d), index), "SelectBackwardAutogradNestedTensor0")
    return jagged(v, x._offsets, x._lengths, r - (d < r), x._j)


def slice(x, dim, start, stop, step=1):
    if not x._jagged:
        raise unsupported("slice.Tensor")
    _contig(x, "slice_tensor(self: jt, dim: any?, start: any?, end: any?, step: any?)")
    d = _wrap(x, dim, "slice")
    v = x._values
    return _like(x, v[(builtins.slice(None),) * _vdim(x, d) + (builtins.slice(start, stop, step),)])


def getitem(x, k):
    """x[k] as PyTorch's indexing runs it on a nested tensor: each index in turn as select,
    slice or unsqueeze on the nested tensor (the batch and ragged dims refuse the last two)."""
    if not isinstance(k, tuple):
        k = (k,)
    if any(isinstance(i, (Tensor, list, np.ndarray)) for i in k):
        raise NotImplementedError("aten.index.Tensor")
    if builtins.sum(i is Ellipsis for i in k) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_used = builtins.sum(1 for i in k if i is not None and i is not Ellipsis and
                          not isinstance(i, bool))
    if n_used > x.dim():
        raise IndexError(f"too many indices for tensor of dimension {x.dim()}")
    out, d = x, 0
    for i in k:
        if i is Ellipsis:
            d += x.dim() - n_used
        elif i is None or isinstance(i, bool):
            if i is False:
                raise NotImplementedError("aten.index.Tensor")
            out = out.unsqueeze(d)
            d += 1
        elif isinstance(i, builtins.slice):
            if isinstance(out, NestedTensor):
                out = slice(out, d, i.start, i.stop, 1 if i.step is None else i.step)
            else:
                out = out[(builtins.slice(None),) * d + (i,)]
            d += 1
        else:
            out = out.select(d, i)
    return out


def split_batch(x, chunks):
    """chunk along the batch dim of contiguous jagged x: PyTorch's pieces of whole components."""
    from .. import ops_shape as S
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    off = _int_list(x._offsets)
    lens = [off[i + 1] - off[i] for i in range(len(off) - 1)]
    step = -(-len(lens) // chunks)
    groups = [lens[i:i + step] for i in range(0, len(lens), step)]
    sizes = [builtins.sum(g) for g in groups]
    vs = S.split(x._values, sizes, x._ragged_idx - 1)
    return tuple(jagged(rename(v, "ChunkBackwardAutogradNestedTensor0"),
                        wrap(np.concatenate([[0], np.cumsum(g)]).astype(np.int64), dt.int64),
                        None, x._ragged_idx) for v, g in zip(vs, groups))


# ---- max/min/argmax/argmin, where, masked_fill -----------------------------------------------

def select_reduce(name, x, dim, keepdim, out=None):
    """max/min (values, indices) or argmax/argmin of jagged x over one dim (PyTorch's rules:
    a regular dim keeps the structure; the ragged dim gives a dense (B, ...) result)."""
    from .. import ops_math as M, ops_shape as S
    from compiler.ir.registry import norm_dim
    if out is not None:
        raise unsupported(name)
    f = getattr(M, name)
    if isinstance(dim, Tensor):      # max(nt, other): the pointwise maximum
        return f(x, dim)
    if not isinstance(x, NestedTensor) or not x._jagged:
        raise unsupported(name if name.startswith("arg") or dim is None else f"{name}.dim")
    r = x._ragged_idx
    if dim is None:
        o = f(x._values)
        return S.unsqueeze(o, r) if keepdim else o
    d = norm_dim(name, dim, x.dim())
    if d == r:
        if x._lengths is not None:
            raise RuntimeError(f"{name}(): reducing across the ragged dimension is not supported "
                               f"for non-contiguous nested tensors with holes")
        outs = [f(c, r - 1, keepdim) for c in x.unbind()]
        if name.startswith("arg"):
            return S.stack(outs, 0)
        return M._named(name)(S.stack([o[0] for o in outs], 0), S.stack([o[1] for o in outs], 0))
    if d == 0:
        raise RuntimeError(f"{name}(): reducing along the batch dimension but not the ragged "
                           f"dimension is not supported for nested tensors")
    nr = r - (d < r and not keepdim)
    o = f(x._values, d - 1, keepdim)
    if name.startswith("arg"):
        return jagged(o, x._offsets, x._lengths, nr, x._j)
    return M._named(name)(*(jagged(t, x._offsets, x._lengths, nr, x._j) for t in o))
