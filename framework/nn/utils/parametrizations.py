"""nn.utils.parametrizations: orthogonal, spectral_norm and weight_norm as parametrizations."""
from enum import auto, Enum

from runtime.dtypes import finfo
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from ... import ops_math as M, ops_shape as S, ops_linalg as L
from ... import creation as C
from ..modules.module import Module
from . import parametrize
from .spectral_norm import _reshape_weight, _power_iteration, _init_uv

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


# ---- orthogonal (PyTorch's algorithm: trivialization base, matrix_exp / cayley / householder) ---

def _is_orthogonal(Q):
    n, k = Q.shape[-2], Q.shape[-1]
    Id = C.eye(k, dtype=Q.dtype, device=Q.device)
    eps = 10.0 * n * finfo(Q.dtype).eps        # a reasonable eps, but not too large
    return M.allclose(L.matmul(Q.mH, Q), Id, atol=eps)


def _make_orthogonal(A):
    """The Q of A = QR (A tall, maybe complex) with diag(R) real and non-negative."""
    X, tau = L.geqrf(A)
    Q = L.linalg.householder_product(X, tau)
    # diag(X) is diag(R): normalise by its signs
    return M.mul(Q, S.unsqueeze(S.diagonal(X, 0, -2, -1).sgn(), -2))


class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


class _Orthogonal(Module):
    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        # complex reflectors cannot be parametrized by their lower triangle alone (PyTorch's
        # note [Householder complex])
        if weight.is_complex() and orthogonal_map == _OrthMaps.householder:
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        # X is tall here
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            # n k - k (k - 1) / 2 parameters: the lower triangle, embedded in a square matrix
            X = S.tril(X)
            if n != k:
                z = S.expand(C.zeros(n, n - k, dtype=X.dtype, device=X.device),
                             tuple(X.shape[:-2]) + (n, n - k))
                X = S.cat([X, z], dim=-1)
            A = M.sub(X, X.mH)                  # skew-symmetric (skew-Hermitian)
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = L.matrix_exp(A)
            else:                               # the Cayley retraction (I + A/2)(I - A/2)^-1
                Id = C.eye(n, dtype=A.dtype, device=A.device)
                Q = L.linalg.solve(M.add(Id, A, alpha=-0.5), M.add(Id, A, alpha=0.5))
            if n != k:
                Q = Q[..., :k]
        else:
            # real here: reflectors below the diagonal, the diagonal's signs (+-1) applied as
            # constants (no gradient reaches or updates them)
            A = S.tril(X, -1)
            tau = M.div(2.0, M.add(1.0, M.sum(M.mul(A, A), -2)))
            Q = L.linalg.householder_product(A, tau)
            Q = M.mul(Q, S.unsqueeze(S.diagonal(X, 0, -2, -1).int(), -2))
        if hasattr(self, "base"):
            Q = L.matmul(self.base, Q)
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q):
        with no_grad():
            return self._right_inverse(Q)

    def _right_inverse(self, Q):
        if Q.shape != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {Q.shape}.")
        Q_init = Q
        n, k = Q.shape[-2], Q.shape[-1]
        transpose = n < k
        if transpose:
            Q = Q.mT
            n, k = k, n
        if not hasattr(self, "base"):
            if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                # (PyTorch's note [right_inverse expm cayley]: no closed-form inverse)
                raise NotImplementedError("It is not possible to assign to the matrix exponential "
                                          "or the Cayley parametrizations when "
                                          "use_trivialization=False.")
            # householder: the QR's reflectors, with diag(R) > 0 (+-1 on the diagonal, and the
            # sign flipped where LAPACK skipped a reflection: tau == 0)
            A, tau = L.geqrf(Q)
            d = S.diagonal(A, 0, -2, -1).sign()
            d = M.where(M.eq(tau, 0.0), M.neg(d), d)
            A = S.diagonal_scatter(A, d, 0, -2, -1)
            return A.mT if transpose else A
        if n == k:
            Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
        else:
            # complete Q to an n x n orthogonal matrix
            N = C.randn(*(tuple(Q.shape[:-2]) + (n, n - k)), dtype=Q.dtype, device=Q.device)
            Q = _make_orthogonal(S.cat([Q, N], dim=-1))
        self.base = Q
        # -Id (not 0): householder(zeros) would not be eye(m, n), and X's diagonal holds signs
        return M.neg(S.expand(C.eye(Q_init.shape[-2], Q_init.shape[-1], dtype=Q_init.dtype,
                                    device=Q_init.device), tuple(Q_init.shape))).contiguous()


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError("Expected a matrix or batch of matrices. "
                         f"Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] or \
            weight.is_complex() else "householder"
    orth_enum = getattr(_OrthMaps, orthogonal_map, None)
    if orth_enum is None:
        raise ValueError('orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


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
            _power_iteration(wm, self._u, self._v, 15, eps, u_first=True)

    def forward(self, weight):
        if weight.ndim == 1:
            return M.div(weight, M.clamp_min(M.norm(weight), self.eps))
        wm = _reshape_weight(weight, self.dim)
        if self.training:
            _power_iteration(wm.detach(), self._u, self._v, self.n_power_iterations, self.eps,
                             u_first=True)
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

    def _weight_norm_compat_hook(state_dict, prefix, local_metadata, strict, missing_keys,
                                 unexpected_keys, error_msgs):
        # a state_dict saved with the hook-based weight_norm (name_g, name_v) loads too
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            original0 = state_dict.pop(g_key)
            original1 = state_dict.pop(v_key)
            state_dict[f"{prefix}parametrizations.{name}.original0"] = original0
            state_dict[f"{prefix}parametrizations.{name}.original1"] = original1

    module._register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


S  # noqa: B018
