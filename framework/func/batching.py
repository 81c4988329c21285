"""Batching rules: primitive applied to inputs with a batch dim -> (output, output batch dim).

A rule gets the primitive, the logical (per-sample) arguments, their real values with `bdims`
(None: not batched at this level), the attrs, the batch size and the logical meta (output
shape/dtype per sample, already checked by the primitive's own meta rule, so errors name
per-sample shapes as in torch). It emits ordinary primitive calls on the real tensors (so
autograd records them as usual) and returns the real output(s) and where the batch dim is.
Rules are chosen by primitive name first, then by kind; a primitive without one (or a rule
that declines by returning None) runs once per sample and the results are stacked.
"""
import logging

from compiler.ir.registry import REGISTRY as P, norm_dim, norm_dims, broadcast_shapes
from .. import _dispatch
from ..tensor import Tensor
from . import _batched

log = logging.getLogger("framework.func")
FALLBACKS = {}          # primitive name -> times it ran per sample under vmap
apply = _dispatch.apply


# ---- helpers on real tensors ------------------------------------------------------------------

def moveto0(v, bd):
    if bd == 0:
        return v
    n = v.ndim
    return apply(P["permute"], v, dims=(bd,) + tuple(i for i in range(n) if i != bd))


def reshape(v, shape):
    shape = tuple(shape)
    if tuple(v.shape) == shape:
        return v
    return apply(P["reshape"], v, shape=shape)


def pad(v, R):
    """v (B, *s) with batch in front -> (B, 1, .., 1, *s) of rank R + 1."""
    r = v.ndim - 1
    if r >= R:
        return v
    s = tuple(v.shape)
    return reshape(v, s[:1] + (1,) * (R - r) + s[1:])


def front(v, bd, B):
    """v with its batch dim in front; an unbatched v is expanded to B copies (a view)."""
    if bd is not None:
        return moveto0(v, bd)
    s = tuple(v.shape)
    return apply(P["expand"], reshape(v, (1,) + s), shape=(B,) + s)


def _is_t(a):
    return isinstance(a, Tensor)


def _lrank(v, bd):
    return v.ndim - (bd is not None)


# ---- rules by kind ------------------------------------------------------------------------------

def pointwise(p, args, vals, bdims, attrs, B, meta):
    nb = sum(bd is not None for bd in bdims)
    if nb == 1 and sum(_is_t(v) for v in vals) == 1:
        # one tensor operand among scalars: elementwise, the batch dim stays where it is
        return apply(p, *vals, **attrs), next(bd for bd in bdims if bd is not None)
    R = len(meta.shape)
    new = []
    for v, bd in zip(vals, bdims):
        # unbatched operands broadcast from the right against (B, 1.., *s) unchanged
        new.append(v if bd is None else pad(moveto0(v, bd), R))
    return apply(p, *new, **attrs), 0


def reduction(p, args, vals, bdims, attrs, B, meta):
    v = moveto0(vals[0], bdims[0])
    r = v.ndim - 1
    a = dict(attrs)
    if "dims" not in a and p.name in ("argmax", "argmin"):
        dim = a.get("dim")
        if dim is None or r == 0:
            out = apply(p, reshape(v, (B, -1) if v.numel() else (B, 0)), dim=1, keepdim=False)
            return reshape(out, (B,) + tuple(meta.shape)), 0
        a["dim"] = norm_dim(p.name, dim, r) + 1
        return apply(p, v, **a), 0
    dims = a.get("dims")
    if r == 0:
        a["dims"] = ()
    elif dims is None:
        a["dims"] = tuple(range(1, r + 1))
    else:
        a["dims"] = tuple(d + 1 for d in norm_dims(p.name, dims, r))
    return apply(p, v, **a), 0


def scan(p, args, vals, bdims, attrs, B, meta):
    v, bd = vals[0], bdims[0]
    a = dict(attrs)
    if v.ndim == 1:             # a per-sample scalar: its scan is itself (in the result dtype)
        out = apply(p, reshape(v, (B, 1)), **dict(a, dim=1))
        return reshape(out, (B,)), 0
    d = norm_dim(p.name, a["dim"], v.ndim - 1)
    a["dim"] = d if d < bd else d + 1
    return apply(p, v, **a), bd


def _phys(d, bd):
    """Real position of logical dim d when the batch dim sits at bd."""
    return d if d < bd else d + 1


def view(p, args, vals, bdims, attrs, B, meta):
    v, bd = vals[0], bdims[0]
    r = v.ndim - 1
    name = p.name
    if name == "reshape":
        return reshape(moveto0(v, bd), (B,) + tuple(meta.shape)), 0
    if name == "permute":
        dims = tuple(norm_dim("permute", d, r) + 1 for d in attrs["dims"])
        return apply(p, moveto0(v, bd), dims=(0,) + dims), 0
    if name == "expand":
        v = pad(moveto0(v, bd), len(meta.shape))
        return apply(p, v, shape=(B,) + tuple(meta.shape)), 0
    if name == "slice":
        d = norm_dim("slice", attrs["dim"], r)
        return apply(p, v, **dict(attrs, dim=_phys(d, bd))), bd
    if name == "select":       # (the selected dim goes: a batch dim after it moves down)
        d = norm_dim("select", attrs["dim"], r)
        return apply(p, v, **dict(attrs, dim=_phys(d, bd))), bd - 1 if d < bd else bd
    if name == "flip":
        return apply(p, v, dims=tuple(_phys(norm_dim("flip", d, r), bd)
                                      for d in attrs["dims"])), bd
    if name == "diagonal":
        a = dict(attrs)
        a["dim1"] = norm_dim("diagonal", a.get("dim1", 0), r) + 1
        a["dim2"] = norm_dim("diagonal", a.get("dim2", 1), r) + 1
        return apply(p, moveto0(v, bd), **a), 0
    if name in ("real", "imag", "view_as_real"):
        return apply(p, v, **attrs), bd        # elementwise views / a new last dim
    # view_as_complex, windows: act on trailing dims, leading dims are free
    return apply(p, moveto0(v, bd), **attrs), 0


def lead(p, args, vals, bdims, attrs, B, meta):
    """Ops over trailing dims that treat every leading dim as batch (linear algebra on
    matrices, sliding windows, diag_embed): batch in front, operands brought to one rank."""
    R = max(_lrank(v, bd) for v, bd in zip(vals, bdims) if _is_t(v))
    new = [pad(front(v, bd, B), R) if _is_t(v) else v for v, bd in zip(vals, bdims)]
    out = apply(p, *new, **attrs)
    return out, (0 if p.nout == 1 else (0,) * p.nout)


def matmul(p, args, vals, bdims, attrs, B, meta):
    # batch dim as a leading batch dim; an unbatched operand broadcasts against it
    R = max(_lrank(v, bd) for v, bd in zip(vals, bdims))
    new = [v if bd is None else pad(moveto0(v, bd), R) for v, bd in zip(vals, bdims)]
    return apply(p, *new, **attrs), 0


def concat(p, args, vals, bdims, attrs, B, meta):
    n = len(meta.shape)
    if any(_lrank(v, bd) != n for v, bd in zip(vals, bdims)):
        return None         # legacy empty 1-D operands: per sample
    d = norm_dim("cat", attrs.get("dim", 0), n)
    return apply(p, *[front(v, bd, B) for v, bd in zip(vals, bdims)], dim=d + 1), 0


def _dim_shift_all(name):
    """Every tensor operand in front (expanded if unbatched), `name` attr(s) shifted by one."""
    def rule(p, args, vals, bdims, attrs, B, meta):
        r = _lrank(vals[0], bdims[0])
        if r == 0:
            return None
        a = dict(attrs)
        for k in name:
            a[k] = norm_dim(p.name, a.get(k, 0 if k != "dim2" else 1), r) + 1
        return apply(p, *[front(v, bd, B) if _is_t(v) else v
                          for v, bd in zip(vals, bdims)], **a), 0
    return rule


def argsort(p, args, vals, bdims, attrs, B, meta):
    v, bd = vals[0], bdims[0]
    r = v.ndim - 1
    if r == 0:
        return None
    d = norm_dim("argsort", attrs.get("dim", -1), r)
    return apply(p, v, **dict(attrs, dim=_phys(d, bd))), bd


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def einsum(p, args, vals, bdims, attrs, B, meta):
    eq = attrs["equation"].replace(" ", "")
    if "->" not in eq:
        return None
    lhs, rhs = eq.split("->")
    z = next(c for c in _LETTERS if c not in eq)
    ins = lhs.split(",")
    new, subs = [], []
    for v, bd, s in zip(vals, bdims, ins):
        if bd is None:
            new.append(v)
            subs.append(s)
        else:
            new.append(moveto0(v, bd))
            subs.append(z + s)
    return apply(p, *new, equation=",".join(subs) + "->" + z + rhs), 0


# ---- advanced indexing ------------------------------------------------------------------------

def _index_setup(args, vals, bdims, pos, B):
    """x in front and an arange(B) index at dim 0 beside the (broadcast) user indices.
    Returns (x, indices, new pos, perm): the real result is (B, *logical result) permuted by
    perm (None: no permutation)."""
    x = front(vals[0], bdims[0], B)
    lidx = [tuple(a.shape) for a in args[1:]]
    bc = broadcast_shapes("index", *lidx) if lidx else ()
    m = len(bc)
    idx = []
    for v, bd in zip(vals[1:], bdims[1:]):
        idx.append(v if bd is None else pad(moveto0(v, bd), m))
    from ..creation import arange
    ar = arange(B, device=x.device)
    idx.insert(0, reshape(ar, (B,) + (1,) * m))
    pos = tuple(pos)
    adjacent = list(pos) == list(range(pos[0], pos[0] + len(pos)))
    perm = None
    if adjacent and pos[0] > 0:
        # real layout (B, *bc, *before, *after); logical (*before, *bc, *after)
        nbef = pos[0]
        rest = x.ndim - 1 - len(pos) - nbef
        perm = [0] + [1 + m + i for i in range(nbef)] + [1 + i for i in range(m)] + \
               [1 + m + nbef + i for i in range(rest)]
    return x, idx, (0,) + tuple(q + 1 for q in pos), perm


def _inverse(perm):
    inv = [0] * len(perm)
    for i, q in enumerate(perm):
        inv[q] = i
    return tuple(inv)


def index(p, args, vals, bdims, attrs, B, meta):
    if not attrs["pos"]:
        return None
    x, idx, pos, perm = _index_setup(args, vals, bdims, attrs["pos"], B)
    out = apply(p, x, *idx, pos=pos)
    if perm is not None:
        out = apply(P["permute"], out, dims=_inverse(perm))
    return out, 0


def index_put(p, args, vals, bdims, attrs, B, meta):
    if not attrs["pos"]:
        return None
    x, idx, pos, perm = _index_setup((args[0],) + tuple(args[2:]), (vals[0],) + tuple(vals[2:]),
                                     (bdims[0],) + tuple(bdims[2:]), attrs["pos"], B)
    v, vb = vals[1], bdims[1]
    if _is_t(v):
        from compiler.ops.indexing import index_shape
        T = index_shape(tuple(args[0].shape), [tuple(a.shape) for a in args[2:]], attrs["pos"])
        if vb is None:
            v = apply(P["expand"], v, shape=(B,) + T)
        else:
            v = apply(P["expand"], pad(moveto0(v, vb), len(T)), shape=(B,) + T)
        if perm is not None:
            v = apply(P["permute"], v, dims=tuple(perm))
    return apply(p, x, v, *idx, pos=pos, accumulate=attrs.get("accumulate", False)), 0


# ---- fallback: once per sample, then stacked ---------------------------------------------------

def _select(v, bd, b):
    return apply(P["select"], v, dim=bd, index=b)


def _stack(outs):
    parts = [reshape(o, (1,) + tuple(o.shape)) for o in outs]
    return parts[0] if len(parts) == 1 else apply(P["cat"], *parts, dim=0)


def fallback(p, args, vals, bdims, attrs, B, meta):
    if p.name not in FALLBACKS:
        log.warning("vmap: no batching rule for primitive %r; running it once per sample",
                    p.name)
        FALLBACKS[p.name] = 0
    FALLBACKS[p.name] += 1
    results = []
    for b in range(B):
        sample = [v if bd is None else _select(v, bd, b) for v, bd in zip(vals, bdims)]
        results.append(apply(p, *sample, **attrs))
    if p.nout == 1:
        return _stack(results), 0
    return tuple(_stack(list(col)) for col in zip(*results)), (0,) * p.nout


BY_KIND = {"pointwise": pointwise, "reduction": reduction, "scan": scan, "view": view,
           "matmul": matmul, "concat": concat}
BY_NAME = {
    "windows": lead, "fold_windows": lead, "plane_scatter": lead, "diag_embed": lead,
    "window_max": lead, "inv": lead, "det": lead, "cholesky": lead, "qr": lead, "svd": lead,
    "eigh": lead, "eig": lead, "solve_triangular": lead,
    "gather": _dim_shift_all(("dim",)), "scatter": _dim_shift_all(("dim",)),
    "slice_scatter": _dim_shift_all(("dim",)),
    "diagonal_scatter": _dim_shift_all(("dim1", "dim2")),
    "index": index, "index_put": index_put, "argsort": argsort, "einsum": einsum,
}


def rule_for(p):
    return BY_NAME.get(p.name) or BY_KIND.get(p.kind)


# primitives whose output shape depends on the values: torch refuses them under vmap
DYNAMIC = {"nonzero": "aten::nonzero", "unique": "aten::_unique2"}
_ALLOW_DYNAMIC = [0]


class allow_dynamic:
    """torch.argwhere runs per sample under vmap (its fallback; the results must have one
    shape to be stacked) where torch.nonzero is refused: argwhere opens this around its
    nonzero."""

    def __enter__(self):
        _ALLOW_DYNAMIC[0] += 1

    def __exit__(self, *exc):
        _ALLOW_DYNAMIC[0] -= 1
        return False


def run(p, args, attrs, lvl):
    if p.name in DYNAMIC and not _ALLOW_DYNAMIC[0]:
        raise RuntimeError(f"vmap: We do not support batching operators that can output dynamic "
                           f"shape. Attempted to vmap over {DYNAMIC[p.name]}. Please file an "
                           f"issue at https://github.com/pytorch/pytorch/issues if you need this "
                           f"feature.")
    meta = p.meta(*args, **attrs)          # per-sample checks and output metadata
    vals, bdims = [], []
    B = None
    for a in args:
        v, bd = _batched.unwrap(a, lvl)
        vals.append(v)
        bdims.append(bd)
        if bd is not None and B is None:
            B = v.shape[bd]
    rule = rule_for(p)
    r = rule(p, args, vals, bdims, attrs, B, meta) if rule is not None else None
    if r is None:
        r = fallback(p, args, vals, bdims, attrs, B, meta)
    out, ob = r
    if p.nout == 1:
        return _batched.make(out, ob, lvl)
    return tuple(_batched.make(o, b, lvl) for o, b in zip(out, ob))

