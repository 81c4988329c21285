"""Sliding-window primitives: the two data movements convolution and pooling are built from.

  windows(x, kernel, stride, dilation)        x[..., S1..Sn] -> x[..., O1..On, K1..Kn]
      out[..., o, k] = x[..., o*stride + k*dilation]   (a view: index arithmetic only)
  fold_windows(c, size, kernel, stride, dilation)   c[..., O1..On, K1..Kn] -> [..., *size]
      the adjoint: each window element is added back where it was read from (col2im)

Each is the other's VJP, so convolution (windows + matmul), transposed convolution
(matmul + fold_windows), max/avg pooling (windows + argmax/gather or sum) and F.unfold/F.fold
are decompositions whose gradients need nothing else. The trailing n dims are spatial;
padding is done before (by cat/flip/expand), so these two stay small.
"""
import itertools

import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register


def window_count(op, size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def _check(op, kernel, stride, dilation):
    if not (len(kernel) == len(stride) == len(dilation)):
        raise RuntimeError(f"{op}: kernel {list(kernel)}, stride {list(stride)} and dilation "
                           f"{list(dilation)} must have the same length")
    for name, v in (("kernel size", kernel), ("stride", stride), ("dilation", dilation)):
        if any(int(e) <= 0 for e in v):
            raise RuntimeError(f"{op}: {name} should be greater than zero, but got {list(v)}")


def _windows_meta(x, kernel, stride, dilation):
    _check("windows", kernel, stride, dilation)
    n = len(kernel)
    if len(x.shape) < n:
        raise RuntimeError(f"windows: input of shape {list(x.shape)} has fewer than {n} dims")
    sp = x.shape[len(x.shape) - n:]
    outs = tuple(window_count("windows", s, k, st, d)
                 for s, k, st, d in zip(sp, kernel, stride, dilation))
    if any(o < 1 for o in outs):
        raise RuntimeError(f"windows: Kernel size {list(kernel)} with dilation {list(dilation)} "
                           f"can't be greater than the input size {list(sp)} (input shape "
                           f"{list(x.shape)})")
    return AVal(tuple(x.shape[:len(x.shape) - n]) + outs + tuple(kernel), x.dtype)


def _windows_np(out, x, kernel, stride, dilation):
    # the strided view itself (what sliding_window_view + slicing builds, without its Python
    # overhead): window positions step by stride, kernel offsets by dilation
    n = len(kernel)
    lead = x.ndim - n
    st = x.strides
    shape = tuple(out.shape)
    strides = st[:lead] + tuple(a * s for a, s in zip(st[lead:], stride)) + \
        tuple(a * d for a, d in zip(st[lead:], dilation))
    if x.flags.c_contiguous and x.size:
        v = np.ndarray(shape, x.dtype, x, 0, strides)       # .base is x: shares memory
        v.flags.writeable = False
        return v
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)


def _vjp_windows(b, g, x, out=None, kernel=None, stride=None, dilation=None):
    n = len(kernel)
    size = tuple(x.shape[len(x.shape) - n:])
    return (b.fold_windows(g, size=size, kernel=kernel, stride=stride, dilation=dilation),)


register(Prim("windows", "view", _windows_meta, _windows_np, _vjp_windows, saves=(),
              grad_name="Im2ColBackward0",
              doc="sliding windows over the trailing len(kernel) dims (a strided view)"))


def _fold_meta(c, size, kernel, stride, dilation):
    _check("fold_windows", kernel, stride, dilation)
    n = len(kernel)
    if len(c.shape) < 2 * n or tuple(c.shape[len(c.shape) - n:]) != tuple(kernel):
        raise RuntimeError(f"fold_windows: expected input [..., O1..O{n}, {', '.join(map(str, kernel))}]"
                           f", got shape {list(c.shape)}")
    want = tuple(window_count("fold", s, k, st, d) for s, k, st, d in zip(size, kernel, stride, dilation))
    have = tuple(c.shape[len(c.shape) - 2 * n:len(c.shape) - n])
    if want != have:
        raise RuntimeError(f"fold_windows: output size {list(size)} with kernel {list(kernel)}, "
                           f"stride {list(stride)} and dilation {list(dilation)} gives "
                           f"{list(want)} windows, but the input holds {list(have)} "
                           f"(input shape {list(c.shape)})")
    return AVal(tuple(c.shape[:len(c.shape) - 2 * n]) + tuple(size), c.dtype)


_FOLD_MATMUL_MAX = 256          # output plane size up to which fold_windows is one matmul
_SEL = {}


def _window_targets(order, dims, n, size, stride, dilation):
    """For each of fold's 2n trailing [O.., K..] positions, enumerated in the axis order
    `order`: the flat position in the output plane it lands on."""
    grids = np.indices([dims[a] for a in order]).reshape(len(order), -1)
    coord = [None] * len(order)
    for g, a in zip(grids, order):
        coord[a] = g
    flat = np.zeros(grids.shape[1], np.intp)
    for i in range(n):
        flat = flat * size[i] + coord[i] * stride[i] + coord[n + i] * dilation[i]
    return flat


def _selection(order, dims, n, size, stride, dilation, dtype):
    """0/1 matrix S (rows: the 2n trailing [O.., K..] positions of fold's input, enumerated in
    the axis order `order`; columns: the flattened output plane) with S[row, pos] = 1 where
    that window element lands."""
    key = (order, dims, size, stride, dilation, dtype)
    S = _SEL.get(key)
    if S is None:
        flat = _window_targets(order, dims, n, size, stride, dilation)
        S = np.zeros((flat.size, int(np.prod(size))), dtype)
        S[np.arange(flat.size), flat] = 1
        S.setflags(write=False)
        if len(_SEL) > 64:
            _SEL.clear()
        _SEL[key] = S
    return S


_PERM = {}


def _fold_permutation(order, dims, n, size, stride, dilation):
    """For windows that never overlap and cover the whole output plane (pooling with
    kernel == stride): fold_windows only moves elements. Returns P with
    out_plane.flat[j] = c_rows[P[j]] (c's trailing 2n dims enumerated in axis order `order`),
    or None when some position is read twice or never."""
    key = (order, dims, size, stride, dilation)
    if key in _PERM:
        return _PERM[key]
    flat = _window_targets(order, dims, n, size, stride, dilation)
    plane = int(np.prod(size))
    P = None
    if flat.size == plane:
        P = np.full(plane, -1, np.intp)
        P[flat] = np.arange(plane, dtype=np.intp)
        if (P < 0).any():
            P = None
        else:
            P.setflags(write=False)
    if len(_PERM) > 64:
        _PERM.clear()
    _PERM[key] = P
    return P


def _fold_np(out, c, size, kernel, stride, dilation):
    n = len(kernel)
    lead = c.ndim - 2 * n
    npd = out.dtype.np
    plane = 1
    for s in size:
        plane *= s
    if c.size and c.dtype == npd and npd.kind in "fciu" and all(
            s == (k - 1) * d + 1 for k, s, d in zip(kernel, stride, dilation)):
        # windows side by side (pooling with kernel == stride): each output position receives
        # exactly one window element, so the sum is a permutation of c: one take, no additions
        order = tuple(sorted(range(2 * n), key=lambda a: -c.strides[lead + a]))
        P = _fold_permutation(order, tuple(c.shape[lead:]), n, tuple(size), tuple(stride),
                              tuple(dilation))
        if P is not None:
            a = c.transpose(list(range(lead)) + [lead + k for k in order])
            rows = 1
            for d in c.shape[:lead]:
                rows *= d
            r = np.take(a.reshape(rows, -1), P, axis=1)
            if npd.kind in "fc":    # 0 + x, as the sum into zeros: -0.0 becomes +0.0
                np.add(r, 0.0, out=r)
            return r.reshape(out.shape)
    if npd in (np.float32, np.float64) and c.dtype == npd and plane <= _FOLD_MATMUL_MAX and c.size:
        # small planes: the per-offset strided adds below run NumPy loops over rows as short as
        # the window count; one matmul with a 0/1 selection matrix (in c's memory order, so the
        # operand is usually a view) sums the same terms. Zero weights turn inf into NaN, so a
        # NaN in the result means non-finite input: then the exact adds below decide.
        order = tuple(sorted(range(2 * n), key=lambda a: -c.strides[lead + a]))
        a = c.transpose(list(range(lead)) + [lead + k for k in order])
        rows = 1
        for d in c.shape[:lead]:
            rows *= d
        a = a.reshape(rows, -1)
        S = _selection(order, tuple(c.shape[lead:]), n, tuple(size), tuple(stride),
                       tuple(dilation), npd)
        # batches of rows small enough that OpenBLAS runs each product on one thread (it
        # threads above M*N*K = 4 * 65536): waking a second thread costs more than these small
        # products, and much more on a busy machine
        per = a.shape[1] * plane
        b = max(1, min(rows, (4 * 65536) // per))
        while rows % b:
            b -= 1
        r = np.matmul(a.reshape(rows // b, b, a.shape[1]), S).reshape(out.shape)
        if not np.isnan(r).any():
            return r
    r = np.zeros(out.shape, npd)
    lead_ix = (slice(None),) * lead
    counts = c.shape[lead:lead + n]
    # one strided add per kernel offset: prod(kernel) vectorised adds, no scatter
    for kk in itertools.product(*[range(k) for k in kernel]):
        dst = tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                    for k, d, s, o in zip(kk, dilation, stride, counts))
        r[lead_ix + dst] += c[lead_ix + (slice(None),) * n + kk]
    return r


def _vjp_fold(b, g, c, out=None, size=None, kernel=None, stride=None, dilation=None):
    return (b.windows(g, kernel=kernel, stride=stride, dilation=dilation),)


register(Prim("fold_windows", "scatter", _fold_meta, _fold_np, _vjp_fold, saves=(),
              grad_name="Col2ImBackward0",
              doc="adjoint of windows: sums each window element back into place (col2im)"))


# ---- max pooling -----------------------------------------------------------------------------
#
#   window_max(x, kernel, stride, dilation, padding) -> (values, indices)   [..., O1..On] each
#       the max of each window and, as PyTorch's return_indices, the flat index of the element
#       taken within the (unpadded) trailing n-dim plane. padding = ((lo, hi), ...) is implicit:
#       padded positions are never taken. PyTorch's scan (row-major within the window, starting
#       at the window's first valid element): an element is taken when it is greater than the
#       best so far or NaN, so the first maximal element wins, and a window holding NaN gives
#       NaN and the index of its last NaN.
#   plane_scatter(g, idx, size, unique) -> [..., *size]
#       the adjoint of reading the plane at idx: zeros with each g added at its flat index
#       (max pooling's backward); unique=True promises distinct indices within a plane
#       (windows that never overlap), so the adds are one assignment.
#
# Both are extern groups for the fuser; on the Triton backends each is a generated kernel
# (compiler/codegen/triton_group.py: _window_max, _plane_scatter), the NumPy lowering elsewhere.

def _check_padding(op, padding, n):
    if len(padding) != n or any(len(p) != 2 or int(p[0]) < 0 or int(p[1]) < 0 for p in padding):
        raise RuntimeError(f"{op}: padding must hold {n} non-negative (lo, hi) pairs, but got "
                           f"{list(padding)}")


def _window_max_meta(x, kernel, stride, dilation, padding):
    _check("window_max", kernel, stride, dilation)
    n = len(kernel)
    _check_padding("window_max", padding, n)
    if len(x.shape) < n:
        raise RuntimeError(f"window_max: input of shape {list(x.shape)} has fewer than {n} dims")
    if not (x.dtype.is_floating_point or x.dtype.category == 1):
        raise RuntimeError(f"window_max: \"max_pool\" not implemented for '{x.dtype.name}'")
    lead = tuple(x.shape[:len(x.shape) - n])
    sp = x.shape[len(x.shape) - n:]
    outs = tuple(window_count("window_max", s + p[0] + p[1], k, st, d)
                 for s, k, st, d, p in zip(sp, kernel, stride, dilation, padding))
    if any(o < 1 for o in outs) or any(s == 0 for s in sp):
        raise RuntimeError(f"window_max: Kernel size {list(kernel)} with dilation {list(dilation)} "
                           f"and padding {list(padding)} does not fit the input size {list(sp)} "
                           f"(input shape {list(x.shape)})")
    for s, k, st, d, p, o in zip(sp, kernel, stride, dilation, padding, outs):
        pos = np.arange(o)[:, None] * st - p[0] + np.arange(k)[None, :] * d
        if not ((pos >= 0) & (pos < s)).any(axis=1).all():
            raise RuntimeError(f"window_max: a window of input size {list(sp)} with padding "
                               f"{list(padding)} holds no input element")
    return AVal(lead + outs, x.dtype), AVal(lead + outs, dt.int64)


_WM = {}


def _window_plan(shape, lead, kernel, stride, dilation, padding, outs):
    """Static facts of a window_max on a (padded) array of `shape`, cached:
      gx     positions in the padded array (flattened) of every window element, window-major:
             (K, M) for K = prod(kernel) offsets in row-major order and M windows
      force  {k: bool (O1*..*On,)}: windows whose first in-bounds offset is k > 0 (left
             padding; the scan starts there)
      table  flat plane offset of each kernel offset k (sum of k_i * dilation_i * plane stride)
      base   flat plane index of each window's origin (o * stride - lo, may be negative)"""
    key = (shape, lead, kernel, stride, dilation, padding, outs)
    hit = _WM.get(key)
    if hit is not None:
        return hit
    n = len(kernel)
    sizes = tuple(s - a - b for s, (a, b) in zip(shape[lead:], padding))
    pstr = [1] * n
    for i in range(n - 2, -1, -1):
        pstr[i] = pstr[i + 1] * sizes[i + 1]
    ar = np.arange(int(np.prod(shape)), dtype=np.intp).reshape(shape)
    w = _windows_np(AVal(tuple(shape[:lead]) + outs + tuple(kernel), None), ar, kernel, stride,
                    dilation)
    K = int(np.prod(kernel))
    gx = np.ascontiguousarray(np.moveaxis(w, tuple(range(lead + n, lead + 2 * n)),
                                          tuple(range(n)))).reshape(K, -1)
    # first in-bounds offset of each window, per dim, then as a row-major kernel position
    fpos = np.zeros(outs, np.int64)
    base = np.zeros(outs, np.int64)
    for i in range(n):
        o = np.arange(outs[i])
        start = o * stride[i] - padding[i][0]
        fv = np.maximum(0, -(start // dilation[i]))              # ceil(-start / d), >= 0
        shp = [1] * n
        shp[i] = outs[i]
        fpos = fpos * kernel[i] + fv.reshape(shp)
        base = base + (start * pstr[i]).reshape(shp)
    force = {}
    for k in range(1, K):
        m = (fpos == k).reshape(-1)
        if m.any():
            m.setflags(write=False)
            force[k] = m
    kk = np.indices(kernel).reshape(n, -1)
    table = np.zeros(K, np.int64)
    for i in range(n):
        table += kk[i] * dilation[i] * pstr[i]
    for a_ in (gx, base, table):
        a_.setflags(write=False)
    if len(_WM) > 32:
        _WM.clear()
    hit = _WM[key] = (gx, force, table, base.reshape(-1))
    return hit


def _window_max_np(out, x, kernel, stride, dilation, padding):
    n = len(kernel)
    lead = x.ndim - n
    sizes = tuple(x.shape[lead:])
    outs = tuple(out[0].shape[lead:])
    padding = tuple((int(a), int(b)) for a, b in padding)
    if any(a or b for a, b in padding):
        # materialised padding with the lowest value: never greater than the best so far and
        # never NaN, so never taken (the scan starts at the first in-bounds offset)
        low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = np.full(x.shape[:lead] + tuple(s + a + b for s, (a, b) in zip(sizes, padding)),
                     low, x.dtype)
        xp[(slice(None),) * lead + tuple(slice(a, a + s) for s, (a, b) in zip(sizes, padding))] = x
    else:
        xp = x
    gx, force, table, base = _window_plan(tuple(xp.shape), lead, tuple(kernel), tuple(stride),
                                          tuple(dilation), padding, outs)
    # every window element, window-major: (K, M), so each scan step is a contiguous row
    W = np.take(xp.reshape(-1), gx)
    pos = _scan(W, force, nan=False)
    best = pos[1]
    if x.dtype.kind == "f" and np.isnan(best).any():
        pos = _scan(W, force, nan=True)
    pos, best = pos
    idx = np.take(table, pos).reshape(-1, base.size)
    np.add(idx, base, out=idx)
    return best.reshape(out[0].shape), idx.reshape(out[1].shape)


def _scan(W, force, nan):
    """PyTorch's max-pool scan over the K window offsets (rows of W, row-major window order),
    one whole-array step per offset: the running best is replaced where the offset's element
    is greater (or NaN), so the first maximum wins and NaN wins over everything later ones
    included. force[k]: windows whose scan starts at offset k (left padding before it).
    Returns (offset taken per window, value)."""
    K, M = W.shape
    pt = np.uint8 if K < 256 else np.int64
    best = W[0].copy()
    pos = np.zeros(M, pt)
    if K > 1:
        u = np.empty(M, bool)
        t = np.empty(M, pt)
    for k in range(1, K):
        A = W[k]
        np.greater(A, best, out=u)
        if nan:
            u |= np.isnan(A)
        f = force.get(k)
        if f is not None:
            u2 = u.reshape(-1, f.size)
            np.logical_or(u2, f, out=u2)
        if nan or f is not None:
            np.copyto(best, A, where=u)
        else:                               # no NaN: the running max is the value taken
            np.maximum(best, A, out=best)
        # offsets grow with k: pos becomes k where u, and stays below k elsewhere
        np.multiply(u, pt(k), out=t)
        np.maximum(pos, t, out=pos)
    return pos, best


def _vjp_window_max(b, g, x, out=None, kernel=None, stride=None, dilation=None, padding=None):
    gv = g[0] if isinstance(g, tuple) else g
    if gv is None:
        return (None,)
    n = len(kernel)
    size = tuple(x.shape[len(x.shape) - n:])
    idx = out[1]                    # the forward's indices (saved output)
    return (b.plane_scatter(gv, idx, size=size,
                            unique=windows_disjoint(size, kernel, stride, dilation, padding)),)


def windows_disjoint(size, kernel, stride, dilation, padding):
    """No input element lies in two windows (pooling with stride >= kernel, the usual case)."""
    for s, k, st, d, p in zip(size, kernel, stride, dilation, padding):
        o = window_count("", s + p[0] + p[1], k, st, d)
        pos = (np.arange(o)[:, None] * st + np.arange(k)[None, :] * d).reshape(-1)
        if np.unique(pos).size != pos.size:
            return False
    return True


register(Prim("window_max", "extern", _window_max_meta, _window_max_np, _vjp_window_max,
              nout=2, saves=(), saves_output=True, grad_name="MaxPool2DWithIndicesBackward0",
              doc="max of each sliding window and PyTorch's flat index of the element taken"))


def _plane_scatter_meta(g, idx, size, unique=False):
    n = len(size)
    if idx.dtype is not dt.int64 or tuple(idx.shape) != tuple(g.shape) or len(g.shape) < n:
        raise RuntimeError(f"plane_scatter: expected int64 indices of the values' shape with at "
                           f"least {n} dims, got values {list(g.shape)} ({g.dtype.name}) and "
                           f"indices {list(idx.shape)} ({idx.dtype.name})")
    return AVal(tuple(g.shape[:len(g.shape) - n]) + tuple(size), g.dtype)


_ROWS = {}


def _plane_scatter_np(out, g, idx, size, unique=False):
    n = len(size)
    lead = g.shape[:g.ndim - n]
    L = 1
    for e in lead:
        L *= e
    plane = 1
    for e in size:
        plane *= e
    npd = out.dtype.np
    r = np.zeros(out.shape, npd)
    if not r.size or not g.size:
        return r
    gi = idx.reshape(L, -1)
    if gi.size and (gi.min() < 0 or gi.max() >= plane):
        raise RuntimeError(f"plane_scatter: index out of range for a plane of {plane} elements")
    key = (L, plane)
    rows = _ROWS.get(key)
    if rows is None:
        rows = (np.arange(L, dtype=np.int64) * plane).reshape(L, 1)
        rows.setflags(write=False)
        if len(_ROWS) > 64:
            _ROWS.clear()
        _ROWS[key] = rows
    lin = np.add(gi, rows).reshape(-1)
    gv = g.reshape(-1).astype(npd, copy=False)
    rf = r.reshape(-1)
    if unique:
        if npd.kind in "fc":
            gv = np.add(gv, 0.0, dtype=npd)     # 0 + g, as the add into zeros: -0.0 -> +0.0
        rf[lin] = gv
    else:
        np.add.at(rf, lin, gv)                  # in output order, as PyTorch accumulates
    return r


def _vjp_plane_scatter(b, g, gv, idx, out=None, size=None, unique=False):
    n = len(size)
    lead = tuple(g.shape[:len(g.shape) - n])
    plane = 1
    for e in size:
        plane *= e
    flat = b.reshape(g, shape=lead + (plane,))
    ii = b.reshape(idx, shape=lead + (_numel(idx.shape[len(lead):]),))
    r = b.gather(flat, ii, dim=len(lead))
    return (b.reshape(r, shape=tuple(gv.shape)), None)


def _numel(shape):
    r = 1
    for e in shape:
        r *= e
    return r


register(Prim("plane_scatter", "scatter", _plane_scatter_meta, _plane_scatter_np,
              _vjp_plane_scatter, saves=(1,), grad_name="MaxPool2DWithIndicesBackwardBackward0",
              doc="zeros of the plane size with each value added at its flat index"))
