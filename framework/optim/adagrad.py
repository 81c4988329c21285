"""Adagrad (lr_decay, initial_accumulator_value, weight decay, maximize): PyTorch's algorithm.
State is created in the constructor, as PyTorch does."""
from .optimizer import (Optimizer, _check, _check_lr, _check_fused, _addcmul_, _addcdiv_, _step_tensor,
                        _step_value, _scalar, _hp)


class Adagrad(Optimizer):
    _sparse_grads = True

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_lr(lr)
        _check(lr_decay >= 0.0, f"Invalid lr_decay value: {lr_decay}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(initial_accumulator_value >= 0.0,
               f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, fused=fused))
        _check_fused(fused, foreach, differentiable)
        from ..creation import full_like
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                st["step"] = _step_tensor(group.get("fused"))
                st["sum"] = full_like(p, group["initial_accumulator_value"])

    def _update(self, p, grad, state, group):
        if "sum" not in state:   # a group added later
            from ..creation import full_like
            state["step"] = _step_tensor(group.get("fused"))
            state["sum"] = full_like(p, group["initial_accumulator_value"])
        if group["weight_decay"] != 0 and grad.is_sparse:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")
        step_t = state["step"]
        step_t.add_(1)
        step = _step_value(step_t)
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        clr = _scalar(_hp(group, "lr") / (1 + (step - 1) * group["lr_decay"]), p)
        if grad.is_sparse:
            from ..sparse import adagrad_update
            return adagrad_update(p, grad, state["sum"], clr, group["eps"])
        s = _addcmul_(state["sum"], grad, grad, 1)
        std = s.sqrt().add_(group["eps"])
        _addcdiv_(p, grad, std, -clr)
