"""Adamax (infinity-norm Adam): PyTorch's algorithm."""
from .optimizer import (Optimizer, _check, _lerp_, _addcdiv_, _step_tensor, _step_value,
                        _scalar, _hp, _hp_guard)
from .adam import _check_adam


class Adamax(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check_adam(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _update(self, p, grad, state, group):
        from ..creation import zeros_like
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["exp_avg"] = zeros_like(p)
            state["exp_inf"] = zeros_like(p)
        (beta1, beta2), eps = _hp(group, "betas"), group["eps"]     # (run-time under compile)
        step_t = state["step"]
        step_t.add_(1)
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        _lerp_(state["exp_avg"], grad, 1 - beta1, _hp_guard(lambda: 1 - group["betas"][0] < 0.5))
        exp_inf = state["exp_inf"]
        exp_inf.copy_(exp_inf.mul_(_scalar(beta2, p)).maximum(grad.abs().add_(eps)))
        clr = _scalar(_hp(group, "lr") / (1 - beta1 ** _step_value(step_t)), p)
        _addcdiv_(p, state["exp_avg"], exp_inf, -clr)
