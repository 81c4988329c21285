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


def _selection(order, dims, n, size, stride, dilation, dtype):
    """0/1 matrix S (rows: the 2n trailing [O.., K..] positions of fold's input, enumerated in
    the axis order `order`; columns: the flattened output plane) with S[row, pos] = 1 where
    that window element lands."""
    key = (order, dims, size, stride, dilation, dtype)
    S = _SEL.get(key)
    if S is None:
        grids = np.indices([dims[a] for a in order]).reshape(len(order), -1)
        coord = [None] * len(order)
        for g, a in zip(grids, order):
            coord[a] = g
        flat = 0
        for i in range(n):
            flat = flat * size[i] + coord[i] * stride[i] + coord[n + i] * dilation[i]
        S = np.zeros((grids.shape[1], int(np.prod(size))), dtype)
        S[np.arange(grids.shape[1]), flat] = 1
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
    grids = np.indices([dims[a] for a in order]).reshape(len(order), -1)
    coord = [None] * len(order)
    for g, a in zip(grids, order):
        coord[a] = g
    flat = 0
    for i in range(n):
        flat = flat * size[i] + coord[i] * stride[i] + coord[n + i] * dilation[i]
    plane = int(np.prod(size))
    P = None
    if grids.shape[1] == plane:
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
