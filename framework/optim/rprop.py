"""Rprop (resilient backpropagation): PyTorch's algorithm. Each element keeps its own step
size, grown by etaplus while the gradient keeps its sign and shrunk by etaminus when it flips
(that step then skips the update and forgets the gradient); only the gradient's sign moves
the parameter. lr is read once, to initialise the step sizes, as in PyTorch."""
from .optimizer import Optimizer, _check, _check_lr, _step_tensor


class Rprop(Optimizer):
    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_lr(lr)
        _check(0.0 < etas[0] < 1.0 < etas[1], f"Invalid eta values: {etas[0]}, {etas[1]}")
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _update(self, p, grad, state, group):
        from ..creation import zeros_like, full_like
        from ..ops_math import where
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["prev"] = zeros_like(p)
            state["step_size"] = full_like(grad, group["lr"])
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        state["step"].add_(1)
        sign = grad.mul(state["prev"]).sign()
        # PyTorch writes the factors into the sign tensor: they are rounded to its dtype; a
        # where (not a branch on values) keeps a compiled step one graph
        up, down = sign.gt(0), sign.lt(0)
        factor = where(up, full_like(sign, etaplus),
                       where(down, full_like(sign, etaminus), full_like(sign, 1.0)))
        step_size = state["step_size"]
        step_size.mul_(factor).clamp_(step_size_min, step_size_max)
        # a sign flip: no step now, and the next step sees a zero previous gradient
        grad = where(down, zeros_like(grad), grad)
        p.sub_(grad.sign().mul_(step_size))
        state["prev"].copy_(grad)
