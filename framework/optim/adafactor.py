"""Adafactor (Shazeer & Stern, 2018) as PyTorch 2.13's torch.optim.Adafactor: factored second
moments (a row and a column mean of g^2) for parameters of 2 or more dims, a full one for
vectors; relative step size min(lr, 1/sqrt(t)) times max(eps2, RMS(param)); updates clipped to
RMS d. foreach= is accepted (the per-parameter loop gives the same numbers)."""
import math

from .optimizer import Optimizer, _step_tensor


class Adafactor(Optimizer):
    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False):
        from ..tensor import Tensor
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize))

    _complex_as_real = False     # complex parameters are rejected by _update

    def _update(self, p, grad, state, group):
        from ..creation import zeros, zeros_like
        from runtime import dtypes as dt
        if p.dtype.is_complex:
            raise RuntimeError("Adafactor does not support complex parameters")
        if len(state) == 0:
            state["step"] = _step_tensor()
            if grad.dim() > 1:
                row = list(grad.shape)
                row[-1] = 1
                col = list(grad.shape)
                col[-2] = 1
                state["row_var"] = zeros(row, dtype=grad.dtype, device=grad.device)
                state["col_var"] = zeros(col, dtype=grad.dtype, device=grad.device)
            else:
                state["variance"] = zeros_like(grad)
        lr = group["lr"]
        lr = lr.item() if hasattr(lr, "item") else lr
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = dt.finfo(p.dtype).eps
        step_t = state["step"]
        step_t.add_(1)
        t = step_t.item()
        one_minus_beta2 = t ** group["beta2_decay"]
        rho = min(lr, 1 / (t ** 0.5))
        alpha = max(eps2, p.norm(2).item() / (p.numel() ** 0.5)) * rho
        if group["weight_decay"] != 0:
            p.mul_(1 - lr * group["weight_decay"])
        if grad.dim() > 1:
            row_var, col_var = state["row_var"], state["col_var"]
            row_mean = grad.norm(dim=-1, keepdim=True).square_().div_(grad.size(-1))
            row_var.lerp_(row_mean, one_minus_beta2)
            col_mean = grad.norm(dim=-2, keepdim=True).square_().div_(grad.size(-2))
            col_var.lerp_(col_mean, one_minus_beta2)
            var = row_var @ col_var
            var.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
        else:
            variance = state["variance"]
            variance.lerp_(grad * grad, one_minus_beta2)
            var = variance.clone()
        update = var.clamp_(min=eps1 * eps1).rsqrt_()
        update.mul_(grad)
        denom = max(1.0, update.norm(2).item() / (math.sqrt(update.numel()) * group["d"]))
        p.add_(update, alpha=-alpha / denom)
