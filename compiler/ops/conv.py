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
    n = len(kernel)
    axes = tuple(range(x.ndim - n, x.ndim))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    v = np.lib.stride_tricks.sliding_window_view(x, eff, axis=axes)
    lead = (slice(None),) * (x.ndim - n)
    v = v[lead + tuple(slice(None, None, s) for s in stride)
          + tuple(slice(None, None, d) for d in dilation)]
    return v[lead + tuple(slice(0, o) for o in out.shape[x.ndim - n:x.ndim])]


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


def _fold_np(out, c, size, kernel, stride, dilation):
    n = len(kernel)
    r = np.zeros(out.shape, out.dtype.np)
    lead = (slice(None),) * (c.ndim - 2 * n)
    counts = c.shape[c.ndim - 2 * n:c.ndim - n]
    # one strided add per kernel offset: prod(kernel) vectorised adds, no scatter
    for kk in itertools.product(*[range(k) for k in kernel]):
        dst = tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                    for k, d, s, o in zip(kk, dilation, stride, counts))
        r[lead + dst] += c[lead + (slice(None),) * n + kk]
    return r


def _vjp_fold(b, g, c, out=None, size=None, kernel=None, stride=None, dilation=None):
    return (b.windows(g, kernel=kernel, stride=stride, dilation=dilation),)


register(Prim("fold_windows", "scatter", _fold_meta, _fold_np, _vjp_fold, saves=(),
              grad_name="Col2ImBackward0",
              doc="adjoint of windows: sums each window element back into place (col2im)"))
