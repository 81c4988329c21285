"""Eager Adam/AdamW and SGD on CPU arrays as in-place NumPy ufunc calls.

A per-parameter update rule (adam.py: Adam._update, sgd.py: SGD._update) is a chain of tensor
ops, each of which
runs its primitive's NumPy lowering into a fresh array and copies an in-place result back into
the tensor: for a large parameter two extra passes and a fresh allocation per op. This path
runs the same ufuncs, in the same order, on the same dtypes, writing in place with `out=`, so
its results are bit-identical to that chain (tests/test_optim_numpy_update.py checks it). It
is taken only where that holds: eagerly (not under compile(), whose traced graph must see the
ops), on plain CPU float32/float64 arrays, with Python-number hyperparameters, without Adam's
amsgrad, and outside vmap; every other case keeps the tensor ops. Version counters move as
the tensor ops move them; the rarer out-of-place steps (L2 weight decay, Nesterov) stay
tensor ops.
"""
import math

import numpy as np

from runtime import dtypes as dt

_FLOATS = (dt.float32, dt.float64)


def _plain(t, d, shape):
    """Is t a CPU tensor of dtype d and `shape` over a plain writable NumPy array, not a view
    of another tensor?"""
    a = t._data
    return type(a) is np.ndarray and t._dtype is d and a.shape == shape and \
        t._base is None and a.flags.writeable and not t.is_inference()


def _common(p, grad, group, keys):
    """The parameter and gradient part of eligibility: (dtype, shape) or None."""
    from .._dispatch import STATE
    from .. import _dispatch
    if STATE.tracer is not None or _dispatch.VMAP is not None or STATE.grad_enabled:
        return None
    d, shape = p._dtype, p._data.shape if type(p._data) is np.ndarray else None
    if d not in _FLOATS or shape is None or p._device.type != "cpu" or \
            any(type(group[k]) not in (float, int) for k in keys):
        return None
    g = grad._data
    if type(g) is not np.ndarray or grad._dtype is not d or g.shape != shape or \
            not _plain(p, d, shape):
        return None
    return d, shape


def eligible(p, grad, state, group):
    """Adam/AdamW (state already initialised)."""
    if group["amsgrad"] or any(type(b) not in (float, int) for b in group["betas"]):
        return False
    ds = _common(p, grad, group, ("lr", "eps", "weight_decay"))
    if ds is None:
        return False
    st = state["step"]
    return (_plain(state["exp_avg"], *ds) and _plain(state["exp_avg_sq"], *ds) and
            type(st._data) is np.ndarray and st._dtype in _FLOATS and
            st._data.shape == () and st._base is None)


def sgd_eligible(p, grad, state, group):
    ds = _common(p, grad, group, ("lr", "momentum", "dampening", "weight_decay"))
    if ds is None:
        return False
    buf = state.get("momentum_buffer")
    return buf is None or _plain(buf, *ds)


def sgd(p, grad, state, group):
    """SGD._update's arithmetic for an eligible parameter (see the module docstring)."""
    wd, mom = group["weight_decay"], group["momentum"]
    if wd != 0:
        grad = grad.add(p, alpha=wd)                            # (out of place: the op itself)
    if mom != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = grad.clone().detach()
        else:
            B = buf._data
            np.multiply(B, mom, out=B)                          # buf.mul_(momentum)
            buf._bump()
            a = 1 - group["dampening"]                          # .add_(grad, alpha=a)
            np.add(B, np.multiply(grad._data, a) if a != 1 else grad._data, out=B)
            buf._bump()
        grad = grad.add(buf, alpha=mom) if group["nesterov"] else buf
    P, alpha = p._data, -group["lr"]                            # p.add_(grad, alpha=-lr)
    np.add(P, np.multiply(grad._data, alpha) if alpha != 1 else grad._data, out=P)
    p._bump()


def adam(p, grad, state, group):
    """Adam._update's arithmetic for an eligible parameter (see the module docstring): the
    comments name the tensor op each line reproduces. A large C-contiguous parameter runs in
    chunks on several threads (compiler/codegen/parallel.py, as compiled programs do): every
    element still sees the same ops."""
    from compiler.codegen import parallel
    lr, (beta1, beta2) = group["lr"], group["betas"]
    eps, wd = group["eps"], group["weight_decay"]
    step_t, m_t, v_t = state["step"], state["exp_avg"], state["exp_avg_sq"]
    s = step_t._data
    np.add(s, 1, out=s)                                         # step_t.add_(1)
    decay = wd != 0 and group.get("decoupled_weight_decay", False)
    if wd != 0 and not decay:
        grad = grad.add(p, alpha=wd)                            # (out of place: the op itself)
    step = float(s)                                             # step_t.item()
    bc2_sqrt = math.sqrt(1 - beta2 ** step)
    step_size = lr / (1 - beta1 ** step)
    w, value = 1 - beta1, 1 - beta2

    def ops(P, M, V, G):
        if decay:
            np.multiply(P, 1 - lr * wd, out=P)                  # p.mul_(1 - lr * wd)
        t = np.subtract(G, M)                                   # end - t
        if w < 0.5:
            np.multiply(t, w, out=t)                            # .mul_(w)
            np.add(M, t, out=M)                                 # t.add_(...)
        else:
            np.multiply(t, 1.0 - w, out=t)
            np.subtract(G, t, out=M)                            # t.copy_(end - ...)
        np.multiply(V, beta2, out=V)                            # exp_avg_sq.mul_(beta2)
        np.multiply(G, G, out=t)                                # a * b
        if value != 1:
            np.multiply(t, value, out=t)                        # .mul_(value)
        np.add(V, t, out=V)                                     # exp_avg_sq.add_(...)
        denom = np.sqrt(V)                                      # exp_avg_sq.sqrt()
        np.true_divide(denom, bc2_sqrt, out=denom)              # .div_(bc2_sqrt)
        np.add(denom, eps, out=denom)                           # .add_(eps)
        if -step_size != 1:
            np.multiply(M, -step_size, out=t)                   # a * value
            np.true_divide(t, denom, out=t)                     # .div_(b)
        else:
            np.true_divide(M, denom, out=t)                     # a / b
        np.add(P, t, out=P)                                     # p.add_(...)
    arrs = (p._data, m_t._data, v_t._data, grad._data)
    if all(a.flags.c_contiguous for a in arrs):
        flat = [a.reshape(-1) for a in arrs]
        parallel.run(lambda lo, hi: ops(*(a[lo:hi] for a in flat)), flat[0].size)
    else:
        ops(*arrs)
    for t in (step_t, p) if decay else (step_t,):              # the in-place ops' counts
        t._bump()
    m_t._bump()
    v_t._bump()
    v_t._bump()
    p._bump()
