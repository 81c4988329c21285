"""nn.functional: linear layers, activations, dropout, embedding, distances and every loss.

Each function is a decomposition into primitives (through the torch-named ops); `rename` gives
the result PyTorch's grad_fn name. In-place forms compute out of place and write back with
history (_tensor_methods._assign), so a failed op leaves its input unchanged.
"""
import math
import warnings

import numpy as np

from compiler.ir.registry import REGISTRY, norm_dim
from runtime import dtypes as dt
from .._dispatch import apply, rename, wrap
from ..tensor import Tensor
from .. import ops_math as M, ops_shape as S, ops_linalg as L, ops_index as I
from .. import creation as C

P = REGISTRY

__all__ = [
    "linear", "bilinear", "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "rrelu",
    "rrelu_", "elu", "elu_", "selu", "selu_", "celu", "celu_", "gelu", "silu", "mish", "sigmoid",
    "tanh", "hardtanh", "hardtanh_", "hardsigmoid", "hardswish", "softplus", "softsign", "softmax",
    "log_softmax", "softmin", "threshold", "threshold_", "glu", "logsigmoid", "tanhshrink",
    "softshrink", "hardshrink", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "embedding", "one_hot", "normalize", "cosine_similarity",
    "pairwise_distance", "pdist",
]


def _assign(t, r, name):
    from .._tensor_methods import _assign as a
    return a(t, r, name)


def _maybe_inplace(input, r, inplace, name):
    return _assign(input, r, name) if inplace else r


def _check_tensor(x, op, arg="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument '{arg}' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


# ---- linear ------------------------------------------------------------------------------------

def linear(input, weight, bias=None):
    """y = x W^T + b. 2-D input goes through addmm (grad_fn AddmmBackward0, like PyTorch); other
    ranks are flattened to 2-D and viewed back (ViewBackward0)."""
    _check_tensor(input, "linear")
    if input.ndim == 0:
        raise RuntimeError("linear: input must have at least 1 dimension (got a 0-d tensor)")
    if weight.ndim != 2 and not (weight.ndim == 1):
        raise RuntimeError(f"linear: weight must be 2-D, got shape {list(weight.shape)}")
    in_f = input.shape[-1]
    if in_f != weight.shape[-1]:
        lead = int(np.prod(input.shape[:-1])) if input.ndim > 1 else 1
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({lead}x{in_f} and "
                           f"{weight.shape[-1]}x{weight.shape[0] if weight.ndim == 2 else 1})")
    if input.dtype is not weight.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{input.dtype.name.capitalize()} and {weight.dtype.name.capitalize()}")
    if weight.ndim == 1:
        r = L.matmul(input, weight)
        return r if bias is None else M.add(r, bias)
    wt = S.t(weight)
    if input.ndim == 2:
        if bias is None:
            return rename(apply(P["matmul"], input, wt), "MmBackward0")
        return L.addmm(bias, input, wt)
    x2 = S.reshape(input, (-1, in_f))
    y = apply(P["matmul"], x2, wt) if bias is None else L.addmm(bias, x2, wt)
    return S.reshape(y, tuple(input.shape[:-1]) + (weight.shape[0],))


def bilinear(input1, input2, weight, bias=None):
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear(): input batch dimensions do not match: got "
                           f"{list(input1.shape[:-1])} and {list(input2.shape[:-1])}")
    if input1.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got "
                           f"{input1.shape[-1]} but expected {weight.shape[1]}")
    if input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got "
                           f"{input2.shape[-1]} but expected {weight.shape[2]}")
    lead = tuple(input1.shape[:-1])
    a = S.reshape(input1, (-1, input1.shape[-1]))
    b = S.reshape(input2, (-1, input2.shape[-1]))
    y = L.einsum("ni,oij,nj->no", a, weight, b)
    if bias is not None:
        y = M.add(y, bias)
    return S.reshape(y, lead + (weight.shape[0],))


# ---- activations -------------------------------------------------------------------------------

def relu(input, inplace=False):
    return _maybe_inplace(input, M.relu(input), inplace, "relu")


def relu_(input):
    return relu(input, inplace=True)


def threshold(input, threshold, value, inplace=False):
    r = rename(M.where(M.gt(input, threshold), input, value), "ThresholdBackward0")
    return _maybe_inplace(input, r, inplace, "threshold")


def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, inplace=True)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    # the gradient is zero at and beyond the limits, as in PyTorch's hardtanh_backward
    r = M.where(M.le(input, min_val), min_val, M.where(M.ge(input, max_val), max_val, input))
    if r.dtype is not input.dtype:
        r = M.cast(r, input.dtype)
    return _maybe_inplace(input, rename(r, "HardtanhBackward0"), inplace, "hardtanh")


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    r = rename(M.where(M.gt(input, 0), input, M.mul(input, negative_slope)), "LeakyReluBackward0")
    return _maybe_inplace(input, r, inplace, "leaky_relu")


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, inplace=True)


def prelu(input, weight):
    if weight.numel() != 1:
        c = input.shape[1] if input.ndim >= 2 else input.shape[0] if input.ndim == 1 else 1
        if weight.numel() != c:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {weight.numel()} and channel size = {c}.")
        if input.ndim >= 2:
            weight = S.reshape(weight, (c,) + (1,) * (input.ndim - 2))
    elif input.ndim > 0:
        weight = S.reshape(weight, ())
    r = M.where(M.gt(input, 0), input, M.mul(weight, input))
    return rename(r, "PreluKernelBackward0")


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    if not training:
        slope = (lower + upper) / 2
        r = M.where(M.ge(input, 0), input, M.mul(input, slope))
    else:
        noise = C.empty(tuple(input.shape), dtype=input.dtype)
        C.uniform_(noise, lower, upper)
        r = M.where(M.ge(input, 0), input, M.mul(input, noise))
    return _maybe_inplace(input, rename(r, "RreluWithNoiseBackward0"), inplace, "rrelu")


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, inplace=True)


def _elu(x, alpha, scale, input_scale):
    neg = M.mul(apply(P["expm1"], M.mul(_neg_part(x), input_scale)),
                alpha)
    r = M.where(M.gt(x, 0), x, neg)
    if scale != 1.0:
        r = M.mul(r, scale)
    return rename(r, "EluBackward0")


def _neg_part(x):
    # min(x, 0) without the tie-splitting gradient of minimum: the positive branch is masked
    # by the caller's where anyway; this keeps exp() finite for large positive x
    return M.where(M.gt(x, 0), 0.0, x)


def elu(input, alpha=1.0, inplace=False):
    return _maybe_inplace(input, _elu(input, alpha, 1.0, 1.0), inplace, "elu")


def elu_(input, alpha=1.0):
    return elu(input, alpha, inplace=True)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    return _maybe_inplace(input, _elu(input, _SELU_ALPHA, _SELU_SCALE, 1.0), inplace, "selu")


def selu_(input):
    return selu(input, inplace=True)


def celu(input, alpha=1.0, inplace=False):
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: celu: alpha must not be 0")
    return _maybe_inplace(input, _elu(input, alpha, 1.0, 1.0 / alpha), inplace, "celu")


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


def gelu(input, approximate="none"):
    if approximate == "none":
        r = M.mul(M.mul(input, 0.5), M.add(M.erf(M.mul(input, 1.0 / math.sqrt(2.0))), 1.0))
    elif approximate == "tanh":
        inner = M.mul(M.add(input, M.mul(M.pow(input, 3), 0.044715)), math.sqrt(2.0 / math.pi))
        r = M.mul(M.mul(input, 0.5), M.add(M.tanh(inner), 1.0))
    else:
        raise RuntimeError(f"approximate argument must be either none or tanh (got "
                           f"'{approximate}')")
    return rename(r, "GeluBackward0")


def silu(input, inplace=False):
    return _maybe_inplace(input, rename(M.mul(input, M.sigmoid(input)), "SiluBackward0"), inplace,
                          "silu")


def _softplus(x, beta=1.0, threshold=20.0):
    bx = M.mul(x, beta) if beta != 1 else x
    # clamp before exp so the unused branch stays finite (its gradient would be 0 * inf)
    soft = M.log1p(M.exp(M.where(M.gt(bx, threshold), 0.0, bx)))
    if beta != 1:
        soft = M.div(soft, beta)
    return M.where(M.gt(bx, threshold), x, soft)


def softplus(input, beta=1.0, threshold=20.0):
    return rename(_softplus(input, beta, threshold), "SoftplusBackward0")


def mish(input, inplace=False):
    r = rename(M.mul(input, M.tanh(_softplus(input))), "MishBackward0")
    return _maybe_inplace(input, r, inplace, "mish")


def sigmoid(input):
    return M.sigmoid(input)


def tanh(input):
    return M.tanh(input)


def hardsigmoid(input, inplace=False):
    r = M.where(M.le(input, -3.0), 0.0, M.where(M.ge(input, 3.0), 1.0,
                                                M.add(M.div(input, 6.0), 0.5)))
    if r.dtype is not input.dtype:
        r = M.cast(r, input.dtype)
    return _maybe_inplace(input, rename(r, "HardsigmoidBackward0"), inplace, "hardsigmoid")


def hardswish(input, inplace=False):
    r = M.where(M.le(input, -3.0), 0.0,
                M.where(M.ge(input, 3.0), input, M.div(M.mul(input, M.add(input, 3.0)), 6.0)))
    if r.dtype is not input.dtype:
        r = M.cast(r, input.dtype)
    return _maybe_inplace(input, rename(r, "HardswishBackward0"), inplace, "hardswish")


def softsign(input):
    return M.div(input, M.add(M.abs(input), 1))


def logsigmoid(input):
    return rename(M.neg(_softplus(M.neg(input))), "LogSigmoidBackward0")


def tanhshrink(input):
    return M.sub(input, M.tanh(input))


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    r = M.where(M.gt(input, lambd), M.sub(input, lambd),
                M.where(M.lt(input, -lambd), M.add(input, lambd), 0.0))
    return rename(M.cast(r, input.dtype) if r.dtype is not input.dtype else r,
                  "SoftshrinkBackward0")


def hardshrink(input, lambd=0.5):
    r = M.where(M.gt(M.abs(input), lambd), input, 0.0)
    return rename(M.cast(r, input.dtype) if r.dtype is not input.dtype else r,
                  "HardshrinkBackward0")


def _softmax_dim(name, ndim):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return M.softmax(input, dim, dtype=dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    x = input if dtype is None else M.cast(input, dtype)
    return M.softmax(M.neg(x), dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return M.log_softmax(input, dim, dtype=dtype)


def glu(input, dim=-1):
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = norm_dim("glu", dim, input.ndim)
    n = input.shape[d]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    a = S.narrow(input, d, 0, n // 2)
    b = S.narrow(input, d, n // 2, n // 2)
    return rename(M.mul(a, M.sigmoid(b)), "GluBackward0")


# ---- dropout -----------------------------------------------------------------------------------

def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _bernoulli_mask(shape, keep, dtype):
    m = C.empty(tuple(shape), dtype=dtype)
    C.bernoulli_(m, keep)
    return m


def _dropout_impl(input, p, training, inplace, feature, alpha, name):
    _check_p(p)
    if not training or p == 0:
        return input
    if feature:
        noise_shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    else:
        noise_shape = tuple(input.shape)
    if p == 1:
        r = M.mul(input, C.zeros(noise_shape, dtype=input.dtype))
        return _maybe_inplace(input, r, inplace, name)
    noise = _bernoulli_mask(noise_shape, 1 - p, input.dtype)
    if alpha:
        a_ = 1.7580993408473766
        a = 1.0 / math.sqrt((a_ * a_ * p + 1) * (1 - p))
        b = M.add(M.mul(M.sub(noise, 1), a_ * a), a_ * a * p)
        r = M.add(M.mul(input, M.mul(noise, a)), b)
    else:
        r = rename(M.mul(input, M.div(noise, 1 - p)),
                   "NativeDropoutBackward0" if not feature else "MulBackward0")
    return _maybe_inplace(input, r, inplace, name)


def dropout(input, p=0.5, training=True, inplace=False):
    return _dropout_impl(input, p, training, inplace, False, False, "dropout")


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    return _dropout_impl(input, p, training, inplace, False, True, "alpha_dropout")


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    return _dropout_impl(input, p, training, inplace, True, True, "feature_alpha_dropout")


def _dropout_nd(input, p, training, inplace, n, name):
    _check_p(p)
    if input.ndim not in (n + 1, n + 2):
        raise RuntimeError(f"{name}: Expected {n + 1}D or {n + 2}D input, but received a "
                           f"{input.ndim}D input. Note that {name} exists to provide channel-wise "
                           f"dropout on inputs with {n} spatial dimensions, a channel dimension, "
                           "and an optional batch dimension (i.e. "
                           f"{n + 1}D or {n + 2}D inputs).")
    batched = input.ndim == n + 2
    x = input if batched else S.unsqueeze(input, 0)
    r = _dropout_impl(x, p, training, False, True, False, name)
    if not batched and r is not x:
        r = S.squeeze(r, 0)
    elif not batched:
        r = input
    return _maybe_inplace(input, r, inplace and r is not input, name)


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _dropout_nd(input, p, training, inplace, 1, "dropout1d")


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _dropout_nd(input, p, training, inplace, 2, "dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _dropout_nd(input, p, training, inplace, 3, "dropout3d")


# ---- embedding ---------------------------------------------------------------------------------

def _renorm_rows_(weight, idx, max_norm, norm_type):
    """Embedding's max_norm: rescale the looked-up rows in place (no autograd), like
    torch.embedding_renorm_."""
    rows = np.unique(idx)
    w = weight._data
    sub = w[rows].astype(np.float64)
    if norm_type == float("inf"):
        norms = np.abs(sub).max(axis=1)
    else:
        norms = (np.abs(sub) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    w[rows] = (sub * scale[:, None]).astype(w.dtype)
    weight._bump()


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    _check_tensor(input, "embedding")
    if input.dtype not in (dt.int64, dt.int32):
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following "
                           "scalar types: Long, Int; but got "
                           f"{input.type()} instead (while checking arguments for embedding)")
    if weight.ndim != 2:
        raise RuntimeError(f"'weight' must be 2-D (got shape {list(weight.shape)})")
    n = weight.shape[0]
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= n:
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -n:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = n + padding_idx
    idx = input._data
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"index out of range in self (embedding with {n} rows got index "
                         f"{int(idx.max()) if idx.max() >= n else int(idx.min())})")
    if max_norm is not None:
        _renorm_rows_(weight, idx, max_norm, norm_type)
    ii = wrap(idx.astype(np.int64), dt.int64)
    out = apply(P["index"], weight, ii, pos=(0,))
    if (padding_idx is not None or scale_grad_by_freq) and out.requires_grad:
        # gradient scaling that leaves values exact: out = w + (w - w.detach()) * s - ... with
        # (w - w.detach()) == 0 in value, so only the gradient is scaled by s
        s = np.ones(idx.shape, np.float64)
        if scale_grad_by_freq:
            uniq, inv, counts = np.unique(idx, return_inverse=True, return_counts=True)
            s = s / counts[inv.reshape(idx.shape)]
        if padding_idx is not None:
            s = np.where(idx == padding_idx, 0.0, s)
        sw = wrap(s.astype(weight.dtype.np)[..., None], weight.dtype)
        det = out.detach()
        out = M.add(det, M.mul(M.sub(out, det), sw))
    return rename(out, "EmbeddingBackward0")


def one_hot(tensor, num_classes=-1):
    if tensor.dtype is not dt.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    a = tensor._data
    if a.size and a.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if a.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(a.max()) + 1
    elif a.size and a.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return M.cast(M.eq(S.unsqueeze(tensor, -1), C.arange(num_classes)), dt.int64)


# ---- distances ---------------------------------------------------------------------------------

def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    denom = S.expand_as(M.clamp_min(M.norm(input, p, dim, keepdim=True), eps), input)
    return M.write_out(M.div(input, denom), out)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    try:
        shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    except ValueError:
        raise RuntimeError(f"cosine_similarity: the size of tensor a ({list(x1.shape)}) must match "
                           f"the size of tensor b ({list(x2.shape)})") from None
    a, b = S.broadcast_to(x1, shape), S.broadcast_to(x2, shape)
    d = norm_dim("cosine_similarity", dim, len(shape))
    na = M.clamp_min(M.norm(a, 2, d, keepdim=True), eps)
    nb = M.clamp_min(M.norm(b, 2, d, keepdim=True), eps)
    return M.sum(M.mul(M.div(a, na), M.div(b, nb)), d)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    diff = M.add(M.sub(x1, x2), eps)
    if diff.ndim == 0:
        return M.abs(diff) if not keepdim else diff
    return M.norm(diff, p, -1, keepdim=keepdim)


def pdist(input, p=2):
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    a = apply(P["index"], input, wrap(i.astype(np.int64), dt.int64), pos=(0,))
    b = apply(P["index"], input, wrap(j.astype(np.int64), dt.int64), pos=(0,))
    return M.norm(M.sub(a, b), p, -1)


