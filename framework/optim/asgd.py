"""ASGD (averaged SGD): PyTorch's algorithm. The state keeps the decaying step size eta,
the averaging weight mu (1 until step t0, then 1 / (step - t0)) and the running average ax
of the parameter, all as PyTorch does (eta and mu are 0-d tensors of _scalar_dtype)."""
from ..tensor import Tensor
from .optimizer import (Optimizer, _check, _check_lr, _step_tensor, _step_value, _scalar,
                        _hp, _scalar_dtype)


class ASGD(Optimizer):
    _capturable_names = "params, mus, etas, and state_steps"

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        _check_lr(lr)
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _update(self, p, grad, state, group):
        from ..creation import zeros_like, tensor, ones_like
        from ..ops_math import where, maximum
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["eta"] = tensor(float(group["lr"]), dtype=_scalar_dtype())
            state["mu"] = tensor(1.0, dtype=_scalar_dtype())
            state["ax"] = zeros_like(p)
        lambd, alpha, t0, wd = group["lambd"], group["alpha"], group["t0"], \
            group["weight_decay"]
        lr = _hp(group, "lr")              # a run-time value under compile() (LR schedules)
        eta_t, mu_t, ax, step_t = state["eta"], state["mu"], state["ax"], state["step"]
        step_t.add_(1)
        if wd != 0:
            grad = grad.add(p, alpha=wd)
        # eta: PyTorch reads it with .item() (a float of the float32 value); traced, the same
        # value as a float64 tensor, so the decay factor rounds the same way
        eta = _step_value(eta_t)
        p.mul_(_scalar(1 - lambd * eta, p))
        if isinstance(eta, Tensor):
            p.sub_(grad * _scalar(eta, p))
        else:
            p.add_(grad, alpha=-eta)
        if isinstance(eta, Tensor):
            # PyTorch branches on mu == 1 (copy instead of averaging); a where keeps the
            # traced step one graph and switches by itself once step > t0
            ax.copy_(where(mu_t == 1, p, ax + (p - ax).mul_(mu_t)))
        elif mu_t.item() != 1:
            ax.add_(p.sub(ax).mul_(mu_t))
        else:
            ax.copy_(p)
        step = _step_value(step_t)
        eta_t.copy_(_as_tensor(lr / ((1 + lambd * lr * step) ** alpha)))
        if isinstance(step, Tensor):
            one = ones_like(step)
            mu_t.copy_(one / maximum(step - t0, one))
        else:
            mu_t.copy_(_as_tensor(1 / max(1, step - t0)))


def _as_tensor(x):
    from ..creation import tensor
    return x if isinstance(x, Tensor) else tensor(x)
