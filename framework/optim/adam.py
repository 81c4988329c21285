"""Adam (with amsgrad, L2 or decoupled weight decay, maximize): PyTorch's algorithm, bias
corrections with the step count starting at 1."""
from ..tensor import Tensor
from . import _numpy_update
from .optimizer import (Optimizer, _check, _check_lr, _check_fused, _lerp_, _addcmul_,
                        _addcdiv_, _step_tensor, _step_value, _sqrt, _scalar, _hp, _hp_guard,
                        _flat, _per_element, _write_back)


def _check_adam(lr, eps, betas, weight_decay):
    _check_lr(lr)
    _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
    _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
    _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
    _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    _sparse_error = "Adam does not support sparse gradients, please consider SparseAdam instead"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        if isinstance(lr, Tensor) and foreach and not capturable:
            raise ValueError("lr as a Tensor is not supported for capturable=False and "
                             "foreach=True")
        _check_adam(lr, eps, betas, weight_decay)
        if isinstance(betas[0], Tensor) != isinstance(betas[1], Tensor):
            raise ValueError("betas must be either both floats or both Tensors")
        for i, b in enumerate(betas[:2]):
            if isinstance(b, Tensor):
                if not capturable and foreach:
                    raise ValueError(f"betas[{i}] as a Tensor is not supported for "
                                     "capturable=False and foreach=True")
                if b.numel() != 1:
                    raise ValueError(f"Tensor betas[{i}] must be 1-element")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))
        _check_fused(fused, foreach, differentiable)

    @staticmethod
    def _init_state(p, state, group):
        from ..creation import zeros_like
        if len(state) == 0:
            state["step"] = _step_tensor(group.get("fused"))
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(p)

    def _update_foreach(self, ps, grads, states, group):
        """_update's arithmetic over the whole group at once (see Optimizer._use_foreach):
        parameters, gradients and moments flattened, per-parameter bias corrections as
        per-element values, results copied back."""
        for p, st in zip(ps, states):
            self._init_state(p, st, group)
        lr, (beta1, beta2) = _hp(group, "lr"), _hp(group, "betas")
        eps, wd = group["eps"], group["weight_decay"]
        steps = []
        for st in states:
            st["step"].add_(1)
            steps.append(_step_value(st["step"]))
        P, G = _flat(ps), _flat(grads)
        M, V = _flat([st["exp_avg"] for st in states]), _flat([st["exp_avg_sq"] for st in states])
        if wd != 0:
            if group.get("decoupled_weight_decay", False):
                P.mul_(_scalar(1 - lr * wd, P))
            else:
                G = G.add(P, alpha=wd)
        _lerp_(M, G, 1 - beta1, _hp_guard(lambda: 1 - group["betas"][0] < 0.5))
        _addcmul_(V.mul_(_scalar(beta2, P)), G, G, _scalar(1 - beta2, P))
        bc2 = _per_element([_scalar(_sqrt(1 - beta2 ** s), P) for s in steps], ps, P)
        size = _per_element([_scalar(lr / (1 - beta1 ** s), P) for s in steps], ps, P)
        if group["amsgrad"]:
            X = _flat([st["max_exp_avg_sq"] for st in states])
            X.copy_(X.maximum(V))
            denom = X.sqrt().div_(bc2).add_(eps)
            _write_back([st["max_exp_avg_sq"] for st in states], X)
        else:
            denom = V.sqrt().div_(bc2).add_(eps)
        _addcdiv_(P, M, denom, -size)
        _write_back(ps, P)
        _write_back([st["exp_avg"] for st in states], M)
        _write_back([st["exp_avg_sq"] for st in states], V)

    def _update(self, p, grad, state, group):
        self._init_state(p, state, group)
        if _numpy_update.eligible(p, grad, state, group):
            return _numpy_update.adam(p, grad, state, group)    # the same ops, in place
        # lr and betas: run-time values under compile() (schedulers change them per step)
        lr, (beta1, beta2) = _hp(group, "lr"), _hp(group, "betas")
        eps, wd = group["eps"], group["weight_decay"]
        step_t = state["step"]
        step_t.add_(1)
        if wd != 0:
            if group.get("decoupled_weight_decay", False):
                p.mul_(_scalar(1 - lr * wd, p))
            else:
                grad = grad.add(p, alpha=wd)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(exp_avg, grad, 1 - beta1, _hp_guard(lambda: 1 - group["betas"][0] < 0.5))
        _addcmul_(exp_avg_sq.mul_(_scalar(beta2, p)), grad, grad, _scalar(1 - beta2, p))
        step = _step_value(step_t)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = _scalar(_sqrt(1 - beta2 ** step), p)
        step_size = _scalar(lr / bias_correction1, p)
        if group["amsgrad"]:
            m = state["max_exp_avg_sq"]
            m.copy_(m.maximum(exp_avg_sq))
            denom = m.sqrt().div_(bias_correction2_sqrt).add_(eps)
        else:
            denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(eps)
        _addcdiv_(p, exp_avg, denom, -step_size)
