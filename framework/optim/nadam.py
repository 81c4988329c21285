"""NAdam (Nesterov Adam with momentum_decay; optional decoupled weight decay): PyTorch's
algorithm, including the running mu_product kept in state."""
from ..tensor import Tensor
from .optimizer import (Optimizer, _check, _lerp_, _addcmul_, _addcdiv_, _step_tensor,
                        _step_value, _scalar, _scalar_dtype)
from .adam import _check_adam


class NAdam(Optimizer):
    _capturable_names = ("params, mu_products and state_steps",
                         "params, mu_products, and state_steps")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        _check_adam(lr, eps, betas, weight_decay)
        _check(momentum_decay >= 0.0, f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable))

    def _update(self, p, grad, state, group):
        from ..creation import zeros_like, tensor
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["mu_product"] = tensor(1.0, dtype=_scalar_dtype())
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], \
            group["weight_decay"]
        md = group["momentum_decay"]
        step_t = state["step"]
        step_t.add_(1)
        # the step count and the momentum products: Python floats eagerly, float64 0-d
        # tensors under compile() (no .item(): the traced step stays one graph); _scalar
        # rounds them to the parameter's dtype where the eager float meets a tensor
        step = _step_value(step_t)
        bias_correction2 = 1 - beta2 ** step
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(_scalar(1 - lr * wd, p))
            else:
                grad = grad.add(p, alpha=wd)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * md)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * md)))
        mp = state["mu_product"].mul_(_scalar(mu, state["mu_product"]))
        mu_product = mp.double() if isinstance(step, Tensor) else mp.item()
        _lerp_(state["exp_avg"], grad, 1 - beta1)
        _addcmul_(state["exp_avg_sq"].mul_(beta2), grad, grad, 1 - beta2)
        denom = state["exp_avg_sq"].div(_scalar(bias_correction2, p)).sqrt().add_(eps)
        mu_product_next = mu_product * mu_next
        _addcdiv_(p, grad, denom, _scalar(-lr * (1.0 - mu) / (1.0 - mu_product), p))
        _addcdiv_(p, state["exp_avg"], denom,
                  _scalar(-lr * mu_next / (1.0 - mu_product_next), p))
