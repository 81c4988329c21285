"""SGD with momentum, dampening, Nesterov, weight decay and maximize (PyTorch's algorithm)."""
from .optimizer import Optimizer, _check, _check_lr, _check_fused, _hp, _add_scaled_
from . import _numpy_update


class SGD(Optimizer):
    _sparse_grads = True

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        _check_lr(lr)
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))
        _check_fused(fused, foreach, differentiable)

    def _state_for(self, p, group):
        # without momentum SGD keeps no state: PyTorch leaves self.state empty then
        return self.state[p] if group["momentum"] != 0 else {}

    def _update(self, p, grad, state, group):
        if grad.is_sparse:
            return self._update_sparse(p, grad, state, group)
        if _numpy_update.sgd_eligible(p, grad, state, group):
            return _numpy_update.sgd(p, grad, state, group)     # the same ops, in place
        wd, mom = group["weight_decay"], group["momentum"]
        if wd != 0:
            grad = grad.add(p, alpha=wd)
        if mom != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone().detach()
            else:
                buf.mul_(mom).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=mom) if group["nesterov"] else buf
        _add_scaled_(p, grad, -_hp(group, "lr"))   # lr: run-time under compile (schedules)

    def _update_sparse(self, p, grad, state, group):
        """PyTorch's algorithm with a sparse gradient: weight decay refuses it (sparse + dense),
        the momentum buffer is a sparse tensor, the parameter takes a scatter-add."""
        wd, mom = group["weight_decay"], group["momentum"]
        if wd != 0:
            grad = grad.add(p, alpha=wd)        # (raises PyTorch's add(sparse, dense) error)
        if mom != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone().detach()
            else:
                # coalesced, so the buffer stays as large as the rows it has seen
                buf = state["momentum_buffer"] = \
                    buf.mul(mom).add(grad, alpha=1 - group["dampening"]).coalesce()
            grad = grad.add(buf, alpha=mom) if group["nesterov"] else buf
        p.add_(grad, alpha=-group["lr"])
