"""nn.utils.parametrizations: spectral_norm and weight_norm as parametrizations."""
from ...autograd.grad_mode import no_grad
from ... import ops_math as M, ops_shape as S, ops_linalg as L
from ..modules.module import Module
from . import parametrize
from .spectral_norm import _reshape_weight, _power_iteration, _init_uv

__all__ = ["spectral_norm", "weight_norm"]


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError("Dimension out of range (expected to be in range of "
                             f"[-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            wm = _reshape_weight(weight.detach(), self.dim)
            u, v = _init_uv(wm, eps)
            self.register_buffer("_u", u)
            self.register_buffer("_v", v)
            _power_iteration(wm, self._u, self._v, 15, eps)

    def forward(self, weight):
        if weight.ndim == 1:
            return M.div(weight, M.clamp_min(M.norm(weight), self.eps))
        wm = _reshape_weight(weight, self.dim)
        if self.training:
            _power_iteration(wm.detach(), self._u, self._v, self.n_power_iterations, self.eps)
        u, v = self._u.clone(), self._v.clone()
        sigma = L.dot(u, L.mv(wm, v))
        return M.div(weight, sigma)

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    weight = getattr(module, name, None)
    if weight is None or name not in module._parameters and name not in module._buffers:
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(module, name,
                                         _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


def _norm_except_dim(v, dim):
    if dim == -1:
        return M.norm(v)
    dims = [d for d in range(v.ndim) if d != dim]
    return M.norm(v, 2, dims, keepdim=True)


class _WeightNorm(Module):
    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return M.mul(weight_v, M.div(weight_g, _norm_except_dim(weight_v, self.dim)))

    def right_inverse(self, weight):
        with no_grad():
            g = _norm_except_dim(weight, self.dim)
        return g, weight


def weight_norm(module, name="weight", dim=0):
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


S  # noqa: B018
