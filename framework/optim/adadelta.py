"""Adadelta (rho, eps, weight decay, maximize): PyTorch's algorithm."""
from .optimizer import Optimizer, _check, _check_lr, _addcmul_, _step_tensor


class Adadelta(Optimizer):
    _capturable_xla = False

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        _check_lr(lr)
        _check(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, capturable=capturable, foreach=foreach,
                                      differentiable=differentiable))

    def _update(self, p, grad, state, group):
        from ..creation import zeros_like
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["square_avg"] = zeros_like(p)
            state["acc_delta"] = zeros_like(p)
        rho, eps = group["rho"], group["eps"]
        state["step"].add_(1)
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        sq = _addcmul_(state["square_avg"].mul_(rho), grad, grad, 1 - rho)
        std = sq.add(eps).sqrt_()
        delta = state["acc_delta"].add(eps).sqrt_()
        delta.div_(std).mul_(grad)
        _addcmul_(state["acc_delta"].mul_(rho), delta, delta, 1 - rho)
        p.add_(delta, alpha=-group["lr"])
