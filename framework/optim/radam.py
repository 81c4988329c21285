"""RAdam (rectified Adam; optional decoupled weight decay): PyTorch's algorithm, falling back
to an un-adapted step while the variance estimate is not yet tractable (rho_t <= 5)."""
from ..tensor import Tensor
from .optimizer import (Optimizer, _lerp_, _addcmul_, _step_tensor, _step_value, _hp,
                        _hp_guard, _scalar, _sqrt)
from .adam import _check_adam


class RAdam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_adam(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      differentiable=differentiable))

    def _update(self, p, grad, state, group):
        from ..creation import zeros_like
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        # lr and betas: run-time values under compile() (schedulers change them per step)
        lr, (beta1, beta2) = _hp(group, "lr"), _hp(group, "betas")
        eps, wd = group["eps"], group["weight_decay"]
        step_t = state["step"]
        step_t.add_(1)
        # the step count: a Python float eagerly, a float64 0-d tensor under compile() (no
        # .item(): the traced step stays one graph); _scalar rounds what meets a tensor to
        # its dtype, as the eager Python float is
        step = _step_value(step_t)
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(_scalar(1 - lr * wd, p))
            else:
                grad = grad.add(p, alpha=wd)
        exp_avg = _lerp_(state["exp_avg"], grad, 1 - beta1,
                         _hp_guard(lambda: 1 - group["betas"][0] < 0.5))
        exp_avg_sq = _addcmul_(state["exp_avg_sq"].mul_(_scalar(beta2, p)), grad, grad,
                               _scalar(1 - beta2, p))
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        corrected = exp_avg / _scalar(bias_correction1, p)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2

        def rect():
            return _sqrt((rho_t - 4) * (rho_t - 2) * rho_inf /
                         ((rho_inf - 4) * (rho_inf - 2) * rho_t))

        def adaptive_lr():
            return _scalar(_sqrt(bias_correction2), p) / exp_avg_sq.sqrt().add_(eps)
        plain = corrected * _scalar(lr, p)
        if isinstance(step, Tensor):
            # traced: both updates, the rectified one taken once rho_t > 5 (a where, not a
            # branch on a value: the replayed step switches by itself); before that its NaN
            # (the square root of a negative) is not taken. Each is computed as eagerly.
            from ..ops_math import where
            p.add_(where(rho_t > 5.0, plain * adaptive_lr() * _scalar(rect(), p), plain),
                   alpha=-1.0)
        elif rho_t > 5.0:
            p.add_(plain * adaptive_lr() * rect(), alpha=-1.0)
        else:
            p.add_(plain, alpha=-1.0)
