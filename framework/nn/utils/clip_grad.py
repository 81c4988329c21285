"""Gradient clipping (in place on .grad, no autograd), PyTorch's formulas."""
import numpy as np

from ...tensor import Tensor

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


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    # tensor ops, as PyTorch's, so compile() traces it (no graph break, no value read)
    from ...ops_linalg import linalg
    from ...ops_shape import stack
    from ...autograd.grad_mode import no_grad
    ts = [t for t in _params(tensors) if t is not None]
    norm_type = float(norm_type)
    if not ts:
        from ...creation import tensor
        return tensor(0.0)
    for t in ts:
        _array(t, "linalg_vector_norm")
    with no_grad():
        norms = [linalg.vector_norm(t, norm_type) for t in ts]
        dev = norms[0].device
        total = linalg.vector_norm(stack([n.to(dev) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(total.isfinite()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped. To disable this error and "
                           "scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    from ...autograd.grad_mode import no_grad
    grads = [p.grad for p in _params(parameters) if p.grad is not None]
    if not grads:
        return
    with no_grad():
        coef = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.to(g.device))


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
