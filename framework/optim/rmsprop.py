"""RMSprop (centered, momentum, weight decay, maximize): PyTorch's algorithm."""
from .optimizer import (Optimizer, _check, _check_lr, _lerp_, _addcmul_, _addcdiv_,
                        _step_tensor, _hp, _add_scaled_, _scalar)


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        _check_lr(lr)
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(alpha >= 0.0, f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps,
                                      centered=centered, weight_decay=weight_decay,
                                      capturable=capturable, foreach=foreach, maximize=maximize,
                                      differentiable=differentiable))

    def _update(self, p, grad, state, group):
        from ..creation import zeros_like
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["square_avg"] = zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = zeros_like(p)
        alpha, eps, wd, mom = group["alpha"], group["eps"], group["weight_decay"], \
            group["momentum"]
        state["step"].add_(1)
        if wd != 0:
            grad = grad.add(p, alpha=wd)
        sq = _addcmul_(state["square_avg"].mul_(alpha), grad, grad, 1 - alpha)
        if group["centered"]:
            ga = _lerp_(state["grad_avg"], grad, 1 - alpha)
            avg = sq.sub(ga * ga).sqrt_()
        else:
            avg = sq.sqrt()
        avg = avg.add_(eps)
        lr = _hp(group, "lr")          # a run-time value under compile() (LR schedules)
        if mom > 0:
            buf = _addcdiv_(state["momentum_buffer"].mul_(mom), grad, avg)
            _add_scaled_(p, buf, -lr)
        else:
            _addcdiv_(p, grad, avg, _scalar(-lr, p))
