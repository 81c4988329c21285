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
from .._dispatch import apply, wrap
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
    if p.name in ("clone", "copy", "contiguous") and len(args) == 1:
        return _like(x, apply(p, x._values, **attrs))
    raise unsupported(p.name)


def _pointwise(p, args, attrs):
    nts = [a for a in args if isinstance(a, NestedTensor)]
    first = nts[0]
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
    ok = all(isinstance(t, NestedTensor) and t._jagged and t.dim() == 4 and t._ragged_idx == 2
             for t in (q, k, v)) and attn_mask is None and not is_causal
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
    """split/chunk of a regular (non-batch, non-ragged) dim: pieces of x's structure."""
    from compiler.ir.registry import norm_dim
    d = norm_dim(op, dim, x.dim())
    if d == 0 or x._jagged and d == x._ragged_idx:
        raise RuntimeError(f"{op}(): not supported for NestedTensor on "
                           f"{'dim=0' if d == 0 else 'ragged dim'}")
    if not x._jagged:
        parts = [getattr(c, op)(size_or_sections, d - 1) for c in x.unbind()]
        return tuple(pack(list(p), jagged_layout=False) for p in zip(*parts))
    return tuple(_like(x, v) for v in getattr(x._values, op)(size_or_sections, d - 1))


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
