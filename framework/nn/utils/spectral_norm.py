"""Spectral normalisation: W / sigma(W), sigma from power iteration (u, v buffers updated in
training). Both the hook-based nn.utils.spectral_norm and the parametrization form share
_sigma."""
import numpy as np

from ...autograd.grad_mode import no_grad
from ..._dispatch import wrap
from ... import ops_math as M, ops_shape as S, ops_linalg as L
from ..parameter import Parameter
from .. import _functional_basic as F

__all__ = ["spectral_norm", "remove_spectral_norm", "SpectralNorm", "SpectralNormStateDictHook"]


def _reshape_weight(weight, dim):
    if dim != 0:
        perm = [dim] + [d for d in range(weight.dim()) if d != dim]
        weight = S.permute(weight, *perm)
    return S.reshape(weight, (weight.shape[0], -1))


def _power_iteration(wm, u, v, n, eps, u_first=False):
    """Updates the u, v buffers in place (no autograd). nn.utils.spectral_norm updates v then u;
    the parametrizations version (u_first) updates u from v first, as PyTorch's do."""
    with no_grad():
        for _ in range(n):
            if u_first:
                u._data[...] = F.normalize(L.mv(wm, v), dim=0, eps=eps)._data
            v._data[...] = F.normalize(L.mv(S.t(wm), u), dim=0, eps=eps)._data
            if not u_first:
                u._data[...] = F.normalize(L.mv(wm, v), dim=0, eps=eps)._data
        u._bump()
        v._bump()


def _init_uv(weight_mat, eps):
    from ... import creation as C
    h, w = weight_mat.shape
    u = F.normalize(C.randn(h, dtype=weight_mat.dtype), dim=0, eps=eps)
    v = F.normalize(C.randn(w, dtype=weight_mat.dtype), dim=0, eps=eps)
    return u, v


class SpectralNorm:
    _version = 1

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        wm = _reshape_weight(weight, self.dim)
        if do_power_iteration:
            _power_iteration(wm.detach(), u, v, self.n_power_iterations, self.eps)
            u, v = u.clone(), v.clone()
        sigma = L.dot(u, L.mv(wm, v))
        return M.div(weight, sigma)

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter "
                                   f"{name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        with no_grad():
            wm = _reshape_weight(weight.detach(), dim)
            u, v = _init_uv(wm, eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        module._register_state_dict_hook(SpectralNormStateDictHook(fn))
        return fn

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))


class SpectralNormStateDictHook:
    """Records the format version in the state_dict's metadata (as torch's hook of this name:
    metadata["spectral_norm"]["<name>.version"] = 1)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, module, state_dict, prefix, local_metadata):
        meta = local_metadata.setdefault("spectral_norm", {})
        key = self.fn.name + ".version"
        if key in meta:
            raise RuntimeError(f"Unexpected key in metadata['spectral_norm']: {key}")
        meta[key] = self.fn._version


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    remove_reparam_hook(module, SpectralNorm, name, "spectral_norm")
    for k, hook in list(module._state_dict_hooks.items()):
        if isinstance(hook, SpectralNormStateDictHook) and hook.fn.name == name:
            del module._state_dict_hooks[k]
            break
    return module


def remove_reparam_hook(module, cls, name, label):
    """Undo a hook-based reparametrization (spectral_norm, weight_norm) of module.name."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, cls) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"{label} of '{name}' not found in {module}")


np  # noqa: B018
wrap  # noqa: B018
