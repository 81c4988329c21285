"""Gradient clipping (in place on .grad, no autograd), PyTorch's formulas."""
import math

import numpy as np

from ...tensor import Tensor
from ..._dispatch import wrap

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_"]


def _params(parameters):
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def _array(t, op):
    if t.is_sparse:         # as PyTorch 2.13, which has no sparse kernel for these
        from ..._sparse_storage import unsupported
        raise unsupported(op)
    return t._data


def _norm(a, norm_type):
    a = np.abs(a.astype(np.float64))
    if norm_type == math.inf:
        return a.max() if a.size else 0.0
    if norm_type == -math.inf:
        return a.min() if a.size else math.inf
    if norm_type == 0:
        return float((a != 0).sum())
    return (a ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    ts = [t for t in _params(tensors) if t is not None]
    norm_type = float(norm_type)
    if not ts:
        from ...creation import tensor
        return tensor(0.0)
    norms = np.array([_norm(_array(t, "linalg_vector_norm"), norm_type) for t in ts])
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped. To disable this error and "
                           "scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    d = ts[0].dtype
    return wrap(np.asarray(total, d.np), d)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    grads = [p.grad for p in _params(parameters) if p.grad is not None]
    if not grads:
        return
    coef = min(float(max_norm) / (float(total_norm) + 1e-6), 1.0)
    for g in grads:
        np.multiply(g._data, coef, out=g._data, casting="unsafe")
        g._bump()


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so their total norm is at most max_norm; returns the total
    norm measured before clipping."""
    params = _params(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    import warnings
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    clip_value = float(clip_value)
    for p in _params(parameters):
        if p.grad is not None:
            a = _array(p.grad, "clamp_min_")
            np.clip(a, -clip_value, clip_value, out=a)
            p.grad._bump()
