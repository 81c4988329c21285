"""nn.functional: linear layers, activations, dropout, embedding, distances and every loss.

Each function is a decomposition into primitives (through the torch-named ops); `rename` gives
the result PyTorch's grad_fn name. In-place forms compute out of place and write back with
history (_tensor_methods._assign), so a failed op leaves its input unchanged.
"""
import builtins
import math
import warnings

import numpy as np

from compiler.ir.registry import REGISTRY, broadcast_shapes, norm_dim
from runtime import dtypes as dt
from .. import _dispatch
from .._dispatch import STATE, apply, rename, values, wrap, wrap_like
from ..tensor import Tensor
from ..nested._storage import NestedLayoutError
from .. import ops_math as M, ops_shape as S, ops_linalg as L, ops_index as I
from .. import creation as C
from ..autograd.grad_mode import no_grad

P = REGISTRY

__all__ = [
    "linear", "bilinear", "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "rrelu",
    "rrelu_", "elu", "elu_", "selu", "selu_", "celu", "celu_", "gelu", "silu", "mish", "sigmoid",
    "tanh", "hardtanh", "hardtanh_", "hardsigmoid", "hardswish", "softplus", "softsign", "softmax",
    "log_softmax", "softmin", "threshold", "threshold_", "glu", "logsigmoid", "tanhshrink",
    "softshrink", "hardshrink", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "embedding", "embedding_bag", "one_hot", "normalize", "cosine_similarity",
    "pairwise_distance", "pdist",
]


def _assign(t, r, name):
    from .._tensor_methods import _assign as a
    if t.is_nested:         # framework.nested: written into the values buffer
        return t.copy_(r)
    return a(t, r, name)


def _maybe_inplace(input, r, inplace, name):
    return _assign(input, r, name) if inplace else r


def _inplace_src(input, inplace):
    """The tensor an in-place activation computes from: a copy when autograd will need the
    input's old values (PyTorch saves original_self), so writing the result back into input
    does not invalidate the backward."""
    if inplace and STATE.grad_enabled and isinstance(input, Tensor) and input.requires_grad:
        return M.clone(input)
    return input


def _is_float(x):
    return x.dtype.is_floating_point or x.dtype.is_complex


def _float_out(input, op):
    # these losses write into a tensor of the input's dtype: an integer input cannot hold them
    if not _is_float(input):
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{dt.tname(input.dtype)} ({op}: input of shape {list(input.shape)})")


def _check_tensor(x, op, arg="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument '{arg}' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


# ---- linear ------------------------------------------------------------------------------------

def linear(input, weight, bias=None):
    """y = x W^T + b. 2-D input goes through addmm (grad_fn AddmmBackward0, like PyTorch); other
    ranks are flattened to 2-D and viewed back (ViewBackward0)."""
    try:
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
        if input.dtype is not weight.dtype and bias is not None and \
                (input.ndim == 2 or input.is_contiguous()):
            # addmm's text; without a bias PyTorch's matmul (mm) raises its own
            raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                               f"{dt.tname(input.dtype)} and {dt.tname(weight.dtype)}")
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
        y = S.reshape(y, tuple(input.shape[:-1]) + (weight.shape[0],))
        # PyTorch flattens only a contiguous input with a bias; else matmul (+ add_)
        if bias is None:
            return rename(y, "SqueezeBackward4" if input.ndim == 1 else "UnsafeViewBackward0")
        return y if input.is_contiguous() else rename(y, "AddBackward0")
    except NestedLayoutError:          # a nested operand: framework.nested
        from ..nested import _ops as N
        return N.linear(input, weight, bias)


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
    # x <= threshold ? value : x, so NaN passes through (with its gradient), as in torch
    r = rename(M.where(M.le(input, threshold), value, input),
               "ThresholdBackward1" if inplace else "ThresholdBackward0", link=input)
    return _maybe_inplace(input, r, inplace, "threshold")


def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, inplace=True)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    # the gradient is zero at and beyond the limits (and at NaN), as in PyTorch's vectorised
    # hardtanh_backward; the values are clamp's (hardtanh(-0.0, 0.0, 6.0) is -0.0)
    if M._no_grad_eager(input):
        r = M._clamp_value(input, min_val, max_val)
    else:
        inside = M.logical_and(M.gt(input, min_val), M.lt(input, max_val))
        r = M.where(inside, input, M._clamp_value(input.detach(), min_val, max_val))
    if r.dtype is not input.dtype:
        r = M.cast(r, input.dtype)
    return _maybe_inplace(input, rename(r, "HardtanhBackward0", link=input), inplace, "hardtanh")


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    M._need_float("leaky_relu_cpu", input)
    x = _inplace_src(input, inplace)
    # (PyTorch's in-place kernels have their own grad_fn overloads: ...Backward1)
    r = rename(M.where(M.gt(x, 0), x, M.mul(x, negative_slope)),
               "LeakyReluBackward1" if inplace else "LeakyReluBackward0", link=x)
    return _maybe_inplace(input, r, inplace, "leaky_relu")


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, inplace=True)


def prelu(input, weight):
    if isinstance(weight, Tensor) and weight._dtype is not input._dtype:
        raise RuntimeError(f"prelu: Type promoting not supported. Got "
                           f"{dt.TORCH_NAME.get(input._dtype.name, input._dtype.name)} and "
                           f"{dt.TORCH_NAME.get(weight._dtype.name, weight._dtype.name)}")
    if weight.numel() != 1:
        c = input.shape[1] if input.ndim >= 2 else 1       # (torch: 1-D input is one channel)
        if weight.numel() != c:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {weight.numel()} and channel size = {c}.")
        if input.ndim >= 2:
            weight = S.reshape(weight, (c,) + (1,) * (input.ndim - 2))
    elif input.ndim > 0:
        weight = S.reshape(weight, ())
    r = M.where(M.gt(input, 0), input, M.mul(weight, input))
    return rename(r, "PreluKernelBackward0", link=input)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, *, generator=None):
    M._need_float("leaky_relu_cpu", input)
    # (generator: torch.rrelu's; F.rrelu draws from the default one)
    if lower > upper:
        raise RuntimeError(f"rrelu: Lower bound should be less than or equal to the upper bound "
                           f"(lower={lower}, upper={upper})")
    x = _inplace_src(input, inplace)
    # x <= 0 takes the slope, as PyTorch's rrelu_with_noise (so the gradient at 0 is the slope)
    if not training:
        slope = (lower + upper) / 2
        r = M.where(M.gt(x, 0), x, M.mul(x, slope))
    elif input.device.type == "cpu" and STATE.tracer is None and _dispatch.VMAP is None:
        # PyTorch's CPU kernel draws one float64 uniform per element <= 0, in order (the
        # others, NaN too, keep slope 1), each rounded to the input's dtype
        from .._device_ops import host
        neg = np.asarray(host(values(x))) <= 0
        slopes = np.ones(neg.shape, np.float64)
        slopes[neg] = C._gen(generator).uniform((int(neg.sum()),), dt.float64, lower, upper)
        r = M.where(M.gt(x, 0), x, M.mul(x, wrap_like(slopes, input.dtype, x)))
    else:
        noise = C.empty(tuple(input.shape), dtype=input.dtype)
        C.uniform_(noise, lower, upper, generator)
        r = M.where(M.gt(x, 0), x, M.mul(x, noise))
    return _maybe_inplace(input, rename(r, "RreluWithNoiseBackward1" if inplace else
                                        "RreluWithNoiseBackward0", link=x), inplace, "rrelu")


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, inplace=True)


def _elu(x, alpha, scale, input_scale, inplace=False):
    def f(x):
        neg = M.mul(apply(P["expm1"], M.mul(_neg_part(x), input_scale)), alpha)
        r = M.where(M.gt(x, 0), x, neg)
        return M.mul(r, scale) if scale != 1.0 else r
    return rename(M.half_opmath(f, x), "EluBackward1" if inplace else "EluBackward0")


def _neg_part(x):
    # min(x, 0) without the tie-splitting gradient of minimum: the positive branch is masked
    # by the caller's where anyway; this keeps exp() finite for large positive x
    return M.where(M.gt(x, 0), 0.0, x)


def elu(input, alpha=1.0, inplace=False):
    M._need_float("elu_cpu", input)
    return _maybe_inplace(input, _elu(input, alpha, 1.0, 1.0, inplace), inplace, "elu")


def elu_(input, alpha=1.0):
    return elu(input, alpha, inplace=True)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    M._need_float("elu_cpu", input)
    return _maybe_inplace(input, _elu(input, _SELU_ALPHA, _SELU_SCALE, 1.0, inplace), inplace,
                          "selu")


def selu_(input):
    return selu(input, inplace=True)


def celu(input, alpha=1.0, inplace=False):
    M._need_float("elu_cpu", input)
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: celu: alpha must not be 0")
    r = _elu(input, alpha, 1.0, 1.0 / alpha)
    return _maybe_inplace(input, rename(r, "CeluBackward1" if inplace else "CeluBackward0"),
                          inplace, "celu")


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


def gelu(input, approximate="none"):
    M._need_float("GeluKernelImpl", input)
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh (got "
                           f"'{approximate}')")
    return rename(M.half_opmath(_gelu, input, approximate), "GeluBackward0")


def _gelu(x, approximate):
    if approximate == "none":
        return M.mul(M.mul(x, 0.5), M.add(M.erf(M.mul(x, 1.0 / math.sqrt(2.0))), 1.0))
    inner = M.mul(M.add(x, M.mul(M.pow(x, 3), 0.044715)), math.sqrt(2.0 / math.pi))
    return M.mul(M.mul(x, 0.5), M.add(M.tanh(inner), 1.0))


def silu(input, inplace=False):
    M._need_float("silu_cpu", input)
    x = _inplace_src(input, inplace)
    r = M.half_opmath(lambda x: M.mul(x, M.sigmoid(x)), x)
    return _maybe_inplace(input, rename(r, "SiluBackward0"), inplace, "silu")


def _softplus(x, beta=1.0, threshold=20.0):
    bx = M.mul(x, beta) if beta != 1 else x
    # clamp before exp so the unused branch stays finite (its gradient would be 0 * inf)
    soft = M.log1p(M.exp(M.where(M.gt(bx, threshold), 0.0, bx)))
    if beta != 1:
        soft = M.div(soft, beta)
    return M.where(M.gt(bx, threshold), x, soft)


def softplus(input, beta=1.0, threshold=20.0):
    M._need_float("softplus_cpu", input)
    return rename(M.half_opmath(_softplus, input, beta, threshold), "SoftplusBackward0")


def mish(input, inplace=False):
    M._need_float("mish_cpu", input)
    x = _inplace_src(input, inplace)
    r = rename(M.half_opmath(lambda x: M.mul(x, M.tanh(_softplus(x))), x), "MishBackward0")
    return _maybe_inplace(input, r, inplace, "mish")


def sigmoid(input):
    return M.sigmoid(input)


def tanh(input):
    return M.tanh(input)


def hardsigmoid(input, inplace=False):
    if isinstance(input, Tensor) and input._dtype.category == 4:    # quantized
        from ..ao._qtensor import unary_fixed, copy_q
        r = unary_fixed(input, "hardsigmoid")
        return copy_q(input, r) if inplace else r      # (PyTorch's hardsigmoid_ copies it in)
    M._need_float("hardsigmoid_cpu", input)
    x = _inplace_src(input, inplace)
    # gradient 1/6 strictly inside (-3, 3), else 0 (also at NaN, whose value stays NaN)
    inside = M.logical_and(M.gt(x, -3.0), M.lt(x, 3.0))
    r = M.where(inside, M.add(M.div(x, 6.0), 0.5),
                M.where(M.le(x, -3.0), 0.0, M.where(M.ge(x, 3.0), 1.0, x.detach())))
    if r.dtype is not input.dtype:
        r = M.cast(r, input.dtype)
    return _maybe_inplace(input, rename(r, "HardsigmoidBackward0"), inplace, "hardsigmoid")


def hardswish(input, inplace=False):
    M._need_float("hardswish_cpu", input)
    x = _inplace_src(input, inplace)
    # x * 0 below -3 as torch's x * relu6(x + 3) / 6: -0.0 for x < -3, NaN at -inf
    r = M.half_opmath(lambda x: M.where(M.le(x, -3.0), M.mul(x, 0.0), M.where(
        M.ge(x, 3.0), x, M.div(M.mul(x, M.add(x, 3.0)), 6.0))), x)
    if r.dtype is not input.dtype:
        r = M.cast(r, input.dtype)
    return _maybe_inplace(input, rename(r, "HardswishBackward0"), inplace, "hardswish")


def softsign(input):
    return M.div(input, M.add(M.abs(input), 1))


def logsigmoid(input):
    M._need_float("log_sigmoid_cpu", input)
    return rename(M.half_opmath(lambda x: M.neg(_softplus(M.neg(x))), input),
                  "LogSigmoidBackward0")


def tanhshrink(input):
    return M.sub(input, M.tanh(input))


def softshrink(input, lambd=0.5):
    M._need_float("softshrink_check", input)
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    r = M.where(M.gt(input, lambd), M.sub(input, lambd),
                M.where(M.lt(input, -lambd), M.add(input, lambd), _zero_keep_nan(input)))
    return rename(M.cast(r, input.dtype) if r.dtype is not input.dtype else r,
                  "SoftshrinkBackward0", link=input)


def _zero_keep_nan(x):
    # the shrink ops' middle branch in torch's vectorised kernels: +0.0, NaN stays NaN, and no
    # gradient (also at NaN)
    return M.where(M.isnan(x), x.detach(), 0.0)


def hardshrink(input, lambd=0.5):
    M._need_float("hardshrink_cpu", input)
    r = M.where(M.gt(M.abs(input), lambd), input, _zero_keep_nan(input))
    return rename(M.cast(r, input.dtype) if r.dtype is not input.dtype else r,
                  "HardshrinkBackward0", link=input)


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
    M._need_float("glu_cpu", input)
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


def _bernoulli_mask(shape, keep, dtype, device=None, like=None, order=None):
    """A keep mask on `device` (the input's), drawn from that device's generator. Traced for a
    device program, the draw is a `philox` node of the graph whose [seed, offset] state is a
    program input: the program draws the same mask eager would, inside its own kernels.
    With `like` on the cpu: laid out as empty_like(like), so a transposed input's mask is drawn
    in its memory order, as PyTorch's CPU dropout does (`order`: those dims, fixed at trace
    time so that a compiled replay draws as eager did)."""
    tr = STATE.tracer
    if tr is not None:
        device = tr.draw_device(device)
        if device.type != "cpu":
            return _traced_mask(tr, tuple(shape), keep, dtype, device)
    if order is None and like is not None and like.device.type == "cpu":
        order = _memory_order(like, tr)
    if order is not None and len(order) == len(shape):
        buf = np.empty(tuple(shape[i] for i in order), dtype.np)
        m = wrap(np.transpose(buf, np.argsort(order)), dtype)
    else:
        m = C.empty(tuple(shape), dtype=dtype, device=device)
    C.bernoulli_(m, keep)
    if tr is not None:                # a compiled replay draws the mask again the same way
        tr.note_draw(m._data, dtype,
                     lambda: _bernoulli_mask(shape, keep, dtype, device, order=order)._data)
    return m


def _memory_order(t, tr):
    """t's dims by decreasing stride when empty_like(t) keeps a non-row-major layout (t dense),
    else None. Traced, t's eager layout is its view chain applied to a row-major root."""
    a = t._data
    if tr is not None and type(a) is not np.ndarray:
        up = getattr(tr, "view_root", {}).get(a)
        if up is None:
            return None
        root, chain = up[0], up[1]
        a = root if type(root) is np.ndarray else np.empty(root.shape, np.int8)
        for p, attrs in chain:
            if p.name == "permute":
                a = np.transpose(a, attrs["dims"])
            elif p.name == "reshape":
                a = a.reshape(attrs["shape"])    # (a copy where eager's reshape copies too)
            else:                                # (other view chains: the row-major draw)
                return None
    if type(a) is not np.ndarray or a.ndim < 2 or a.flags.c_contiguous or \
            a.shape != tuple(t.shape):   # (under vmap: the batched array)
        return None
    el = C._dense_strides(a)
    if el is None or el == C._contiguous_strides(a.shape):
        return None
    return tuple(sorted(range(a.ndim), key=lambda i: -el[i] if a.shape[i] > 1 else 0))


def _traced_mask(tr, shape, keep, dtype, device):
    from .._device_random import generator_for
    n = math.prod(shape)

    def take_state():                 # the generator's (seed, offset), then advanced by n
        g = generator_for(device, None)
        st = np.array([g._seed, g._offset], np.uint64).view(np.int64)
        g._offset += n
        return st
    st = take_state()
    tr.note_draw(st, dt.int64, take_state)     # (the input's own array: replays feed theirs)
    state = wrap(st, dt.int64)
    return apply(P["philox"], state, kind="bernoulli", shape=shape, dtype=dtype,
                 params=(float(keep),))


def _dropout_impl(input, p, training, inplace, feature, alpha, name):
    _check_p(p)
    if not training or p == 0:
        return input
    if input.is_nested and not feature:     # framework.nested: the values buffer's draws
        from ..nested._tensor import _like
        from ..nested._storage import unsupported
        if inplace:                         # (PyTorch has no nested bernoulli_)
            raise unsupported("bernoulli_.float")
        return _like(input, _dropout_impl(input._values, p, training, False, feature, alpha,
                                          name))
    if feature:
        noise_shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    else:
        noise_shape = tuple(input.shape)
    if p == 1:
        r = M.mul(input, C.zeros(noise_shape, dtype=input.dtype, device=input.device))
        return _maybe_inplace(input, r, inplace, name)
    noise = _bernoulli_mask(noise_shape, 1 - p, input.dtype, input.device,
                            None if feature else input)
    if alpha:
        a_ = 1.7580993408473766
        a = 1.0 / math.sqrt((a_ * a_ * p + 1) * (1 - p))
        b = M.add(M.mul(M.sub(noise, 1), a_ * a), a_ * a * p)
        r = M.add(M.mul(input, M.mul(noise, a)), b)
    else:
        # PyTorch's CPU dropout is this product too (native_dropout is for accelerators)
        r = M.mul(input, M.div(noise, 1 - p))
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
        note = (f"Note that {name} exists to provide channel-wise dropout on inputs with {n} "
                "spatial dimensions, a channel dimension, and an optional batch dimension (i.e. "
                f"{n + 1}D or {n + 2}D inputs).")
        if n == 1:
            raise RuntimeError(f"{name}: Expected {n + 1}D or {n + 2}D input, but received a "
                               f"{input.ndim}D input. {note}")
        # PyTorch only warns for dropout2d/dropout3d (deprecated, still runs)
        warnings.warn(f"{name}: Received a {input.ndim}-D input to {name}, which is deprecated "
                      "and will result in an error in a future release. To retain the behavior "
                      f"and silence this warning, please use dropout instead. {note}",
                      stacklevel=3)
    if n == 2 and input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                      "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                      "where C is the channel dim. This behavior will change in a future release "
                      "to interpret the input as one without a batch dimension, i.e. shape "
                      "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch "
                      "to using dropout1d instead.", stacklevel=3)
    # as PyTorch: dropout2d never adds a batch dimension (a 3-D input is (N, C, L));
    # dropout1d/dropout3d add one unless the input has n + 2 dims
    batched = input.ndim == n + 2 or n == 2
    if batched and training and p > 0 and input.ndim < 2:
        raise RuntimeError(f"{name}: Feature dropout requires at least 2 dimensions in the input "
                           f"(got shape {list(input.shape)})")
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
    w = values(weight)
    sub = w[rows].astype(np.float64)
    if norm_type == float("inf"):
        norms = np.abs(sub).max(axis=1)
    elif norm_type == 0:                 # the count of nonzeros
        norms = (sub != 0).sum(axis=1).astype(np.float64)
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
    if input.is_nested:     # framework.nested: the rows of the indices' values buffer
        return input._on_values(lambda v: embedding(v, weight, padding_idx, max_norm, norm_type,
                                                    scale_grad_by_freq, sparse))
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
    # a sparse weight.grad (below) needs the indices' values: under compile() a graph break
    sparse_grad = sparse and weight._node is None and weight._rg and STATE.grad_enabled and \
        weight._device.type == "cpu"
    if (STATE.tracer is not None or _batched(input) or input._device.type == "meta") and \
            max_norm is None and not scale_grad_by_freq and not (sparse_grad and
                                                                 STATE.tracer is not None):
        # traced, or indices batched by vmap: no value read (the index op checks the range)
        return _traced_embedding(input, weight, padding_idx)
    idx = values(input)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"index out of range in self (embedding with {n} rows got index "
                         f"{int(idx.max()) if idx.max() >= n else int(idx.min())})")
    if max_norm is not None:
        _renorm_rows_(weight, idx, max_norm, norm_type)
    if sparse_grad:
        # a sparse COO weight.grad (a non-leaf weight keeps the dense gradient)
        from ..sparse import embedding as sparse_embedding
        return sparse_embedding(weight, idx, padding_idx, scale_grad_by_freq)
    ii = wrap_like(idx.astype(np.int64), dt.int64, weight)
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
        sw = wrap_like(s.astype(weight.dtype.np)[..., None], weight.dtype, weight)
        det = out.detach()
        out = M.add(det, M.mul(M.sub(out, det), sw))
    out = rename(out, "EmbeddingBackward0")
    if out._node is not None:
        _dispatch.saved_extra(out, indices=input, weight_sym_argsize_0=n,
                              padding_idx=-1 if padding_idx is None else padding_idx,
                              scale_grad_by_freq=bool(scale_grad_by_freq), sparse=bool(sparse))
    return out


def _batched(t):
    from ..func.vmap import batched_level
    return batched_level(t) is not None


def _traced_embedding(input, weight, padding_idx):
    """embedding under compile() without reading the indices in Python (a read would keep the
    trace from replaying): the index op checks its range itself (NumPy lowering, or a device
    program's range check), the padding row's gradient mask is a graph op."""
    ii = input if input.dtype is dt.int64 else M.cast(input, dt.int64)
    out = apply(P["index"], weight, ii, pos=(0,))
    # a vmap-batched result does not show requires_grad (its graph is on the real tensor)
    if padding_idx is not None and (out.requires_grad or _batched(out)):
        keep = S.unsqueeze(M.cast(M.ne(ii, padding_idx), weight.dtype), -1)
        det = out.detach()
        out = M.add(det, M.mul(M.sub(out, det), keep))
    return rename(out, "EmbeddingBackward0")


def one_hot(tensor, num_classes=-1):
    if tensor.dtype is not dt.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes >= 1:
        # a static shape: the class range is checked by the graph op, not by a value read
        # (no graph break under compile())
        tensor = apply(P["class_index"], tensor, classes=num_classes, ignore_index=None,
                       one_hot=True)
    else:
        # num_classes=-1 infers the class count from the values (a data-dependent shape)
        a = values(tensor)
        if a.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        if a.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if num_classes == -1:
            num_classes = int(a.max()) + 1
        else:
            raise RuntimeError(f"Class values must be smaller than num_classes. (one_hot: "
                               f"num_classes {num_classes})")
    # (the class range on the index tensor's device: a cpu arange would not mix with it)
    return M.cast(M.eq(S.unsqueeze(tensor, -1), C.arange(num_classes, device=tensor.device)),
                  dt.int64)


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

    def clamped_norm(v):
        # PyTorch clamps the norms in place under no_grad: the value is max(|v|, eps) but the
        # gradient flows through |v| as if unclamped (a straight-through clamp)
        n = M.norm(v, 2, d, keepdim=True)
        return M.add(n, M.sub(M.clamp_min(n, eps), n).detach())

    return M.sum(M.mul(M.div(a, clamped_norm(a)), M.div(b, clamped_norm(b))), d)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    diff = M.add(M.sub(x1, x2), eps)
    if diff.ndim == 0:
        return M.abs(diff) if not keepdim else diff
    return rename(M.norm(diff, p, -1, keepdim=keepdim), "NormBackward1")


def pdist(input, p=2):
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if p < 0:
        raise RuntimeError(f"pdist only supports non-negative p values (got p={p})")
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    a = apply(P["index"], input, wrap_like(i.astype(np.int64), dt.int64, input), pos=(0,))
    b = apply(P["index"], input, wrap_like(j.astype(np.int64), dt.int64, input), pos=(0,))
    return rename(M.norm(M.sub(a, b), p, -1), "PdistBackward0")




# ---- losses ------------------------------------------------------------------------------------

__all__ += [
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss",
    "gaussian_nll_loss", "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
    "triplet_margin_loss", "triplet_margin_with_distance_loss", "soft_margin_loss",
    "multilabel_soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss",
]


def _legacy_reduction(size_average, reduce, emit_warning=True):
    """size_average/reduce (deprecated arguments) -> reduction string, as PyTorch maps them."""
    warning = ("size_average and reduce args will be deprecated, please use reduction='{}' "
               "instead.")
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if (size_average and reduce) else "sum" if reduce else "none"
    if emit_warning:
        warnings.warn(warning.format(ret), stacklevel=3)
    return ret


def _get_reduction(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        return _legacy_reduction(size_average, reduce)
    return reduction


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return M.mean(loss)
    if reduction == "sum":
        return M.sum(loss)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _pointwise_pair(input, target, op):
    """Elementwise losses broadcast mismatched shapes with PyTorch's warning (given first, also
    when the shapes then fail to broadcast); those raise broadcasting's RuntimeError."""
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=3)
        broadcast_shapes(op, tuple(input.shape), tuple(target.shape))


_REDUCTION = {"none": 0, "mean": 1, "sum": 2}     # (torch's at::Reduction enum)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _pointwise_pair(input, target, "mse_loss")
    if not _is_float(target):
        M._need_float("mse_cpu", input)
    d = M.sub(input, target)
    loss = M.mul(d, d)
    if weight is not None:
        loss = M.mul(loss, weight)
    r = rename(_reduce(loss, reduction), "MseLossBackward0", saves=(input, target))
    if r._node is not None:
        _dispatch.saved_extra(r, self=input, target=target, reduction=_REDUCTION[reduction])
    return r


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _pointwise_pair(input, target, "l1_loss")
    loss = M.abs(M.sub(input, target))
    if weight is not None:
        loss = M.mul(loss, weight)
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _pointwise_pair(input, target, "smooth_l1_loss")
    if not _is_float(target):
        M._need_float("smooth_l1_cpu", input)
    z = M.abs(M.sub(input, target))
    if beta == 0:
        # PyTorch falls back to l1_loss: its grad_fn names
        return _reduce(z, reduction)
    else:
        loss = M.where(M.lt(z, beta), M.div(M.mul(M.mul(z, z), 0.5), beta), M.sub(z, 0.5 * beta))
    return rename(_reduce(loss, reduction), "SmoothL1LossBackward0", saves=(input, target))


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    _check_reduction(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _pointwise_pair(input, target, "huber_loss")
    if not _is_float(target):
        M._need_float("huber_cpu", input)
    _float_out(input, "huber_loss")
    z = M.abs(M.sub(input, target))
    loss = M.where(M.lt(z, delta), M.mul(M.mul(z, z), 0.5), M.mul(M.sub(z, 0.5 * delta), delta))
    if weight is not None:
        loss = M.mul(loss, weight)
    return rename(_reduce(loss, reduction), "HuberLossBackward0", saves=(input, target))


def _class_target_checks(input, target, op):
    # PyTorch's nll_loss kernels take only int64 or uint8 class indices (int32 raises too)
    if target.dtype not in (dt.int64, dt.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                           f"{dt.tname(target.dtype)} ({op}: class-index targets must "
                           f"be an int64 or uint8 tensor)")
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim == 1:
        # a 1-element 1-D target is taken as the scalar class, as PyTorch's nll_loss does
        if target.ndim == 1 and target.shape[0] != 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: "
                             f"{target.shape[0]}")
        if target.ndim > 1:
            raise RuntimeError(f"{op}: 0D or 1D target tensor expected, multi-target not "
                               f"supported (input {list(input.shape)}, target "
                               f"{list(target.shape)})")
        return
    if input.shape[0] != target.shape[0] if target.ndim else True:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0] if target.ndim else 0}).")
    if input.ndim == 2 and target.ndim != 1:
        raise RuntimeError(f"{op}: 0D or 1D target tensor expected, multi-target not supported "
                           f"(input {list(input.shape)}, target {list(target.shape)})")
    if input.ndim > 2:
        if target.dtype is dt.uint8:    # (nll_loss2d takes int64 only)
            raise RuntimeError("expected scalar type Long but found Byte")
        if target.ndim != input.ndim - 1:
            raise RuntimeError(f"only batches of spatial targets supported ({input.ndim - 1}D "
                               f"tensors) but got targets of dimension: {target.ndim}")
        if tuple(target.shape[1:]) != tuple(input.shape[2:]):
            raise RuntimeError(f"size mismatch (got input: {list(input.shape)}, target: "
                               f"{list(target.shape)})")


def _weighted_mean(total, weight_sum):
    """total / weight_sum for the 'mean' class losses. When every target is ignored the sum
    of weights is 0: the loss is NaN, as PyTorch's, but the gradient is 0, not 0 * inf = NaN
    (PyTorch's nll_loss backward writes nothing for ignored targets)."""
    empty = M.eq(weight_sum, 0)
    r = M.div(total, M.where(empty, 1.0, weight_sum))
    return M.where(empty, float("nan"), r)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _class_target_checks(input, target, "nll_loss")
    n_classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != n_classes):
        raise RuntimeError(f"weight tensor should be defined either for all {n_classes} classes "
                           f"or no classes but got weight tensor of shape: {list(weight.shape)}")
    if weight is not None and weight.dtype is not input.dtype:
        raise RuntimeError(f"expected scalar type {dt.tname(input.dtype)} but found "
                           f"{dt.tname(weight.dtype)}")
    tgt = S.reshape(target, (1,)) if input.ndim == 1 else target
    if tgt.dtype is not dt.int64:
        tgt = apply(P["cast"], tgt, dtype=dt.int64)
    # checked by a primitive, so a compiled program raises the same IndexError
    tgt = apply(P["class_index"], tgt, classes=n_classes, ignore_index=ignore_index)
    # tensor ops, not NumPy on the target's values: a traced step stays independent of them
    x = S.unsqueeze(input, 0) if input.ndim == 1 else input
    valid = M.ne(tgt, ignore_index)
    ts = M.where(valid, tgt, 0)
    picked = S.squeeze(I.gather(x, 1, S.unsqueeze(ts, 1)), 1)            # (N, d1, ...)
    w = apply(P["cast"], valid, dtype=input.dtype)
    if weight is not None:
        w = M.mul(apply(P["index"], weight, ts, pos=(0,)), w)
    loss = M.neg(M.mul(picked, w))
    if reduction == "none":
        r = S.reshape(loss, ()) if input.ndim == 1 else loss
    elif reduction == "sum":
        r = M.sum(loss)
    else:
        r = _weighted_mean(M.sum(loss), M.sum(w))
    if input.ndim < 3:
        r = rename(r, "NllLossBackward0", link=input)
        if r._node is not None:     # (total_weight: the sum of w, made when read)
            _dispatch.saved_extra(r, self=input, target=target, weight=weight,
                                  reduction=_REDUCTION[reduction], ignore_index=ignore_index,
                                  w=w._data)
        return r
    # PyTorch runs nll_loss2d, on a (N, C, 1, L)/(N, C, H, W*) view for 3-d/5-d+ input
    # whose unreduced loss it views back
    return rename(r, "ViewBackward0" if reduction == "none" and input.ndim != 4
                  else "NllLoss2DBackward0", link=input)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: "
                           f"{label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = M.log_softmax(input, class_dim)
    wshape = (n_classes,) + (1,) * (input.ndim - class_dim - 1)
    if tuple(target.shape) == tuple(input.shape):
        # class probabilities: PyTorch decides by the shapes, then checks the dtype
        if not target.dtype.is_floating_point:
            raise RuntimeError(f"Expected floating point type for target with class "
                               f"probabilities, got {dt.tname(target.dtype)}")
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        tgt = target
        if label_smoothing > 0:
            tgt = M.add(M.mul(tgt, 1 - label_smoothing), label_smoothing / n_classes)
        prod = M.mul(logp, tgt)
        if weight is not None:
            prod = M.mul(prod, S.reshape(weight, wshape))
        if reduction == "none":
            return M.neg(M.sum(prod, class_dim))
        loss = M.neg(M.sum(prod))
        if reduction == "sum":
            return loss
        # PyTorch divides by a Scalar: DivBackward1
        return rename(M.div(loss, input.numel() // n_classes), "DivBackward1")
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0:
        return nll
    if input.ndim == 1:
        target = S.reshape(target, ())   # (1,) was checked by nll_loss: one sample, 0-d loss
    keep = M.ne(target, ignore_index)
    keepf = apply(P["cast"], keep, dtype=input.dtype)
    lp = logp if weight is None else M.mul(logp, S.reshape(weight, wshape))
    smooth = M.mul(M.neg(M.sum(lp, class_dim)), keepf)
    if reduction == "none":
        ret = smooth
    elif reduction == "sum":
        ret = M.sum(smooth)
    elif weight is not None:
        ts = M.where(keep, apply(P["cast"], target, dtype=dt.int64), 0)
        ret = _weighted_mean(M.sum(smooth),
                             M.sum(M.mul(apply(P["index"], weight, ts, pos=(0,)), keepf)))
    else:
        ret = _weighted_mean(M.sum(smooth), M.sum(keepf))
    return M.add(M.mul(nll, 1 - label_smoothing), M.mul(ret, label_smoothing / n_classes))


def _safe_log_clamped(x):
    """max(log(x), -100) with a finite gradient at x == 0 (PyTorch clamps BCE's logs at -100)."""
    pos = M.gt(x, 0)
    lx = M.where(pos, M.log(M.where(pos, x, 1.0)), -100.0)
    return M.clamp_min(lx, -100.0)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same "
                         "size.")
    # PyTorch's kernel runs in input's dtype: a target of another dtype is refused, not promoted
    if target.dtype is not input.dtype:
        raise RuntimeError(f"Found dtype {dt.tname(target.dtype)} but expected "
                           f"{dt.tname(input.dtype)}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"binary_cross_entropy" not implemented for '
                                  f"'{dt.tname(input.dtype)}'")
    if STATE.tracer is None:        # (a value check: compiled code skips it, as torch's does)
        for n, a in (("input", input._data), ("target", target._data)):
            if a.size and not ((a >= 0) & (a <= 1)).all():
                raise RuntimeError(f"all elements of {n} should be between 0 and 1")
    t = target
    loss = M.neg(M.add(M.mul(t, _safe_log_clamped(input)),
                       M.mul(M.sub(1, t),
                             _safe_log_clamped(M.sub(1, input)))))
    if weight is not None:
        loss = M.mul(loss, weight)
        if loss.dtype is not input.dtype:        # the weighted loss is stored in input's dtype
            loss = apply(P["cast"], loss, dtype=input.dtype)
    return rename(_reduce(loss, reduction), "BinaryCrossEntropyBackward0")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    # PyTorch computes (1 - target).mul_(input)...: the loss has target's dtype, and an
    # integer target cannot hold it
    if target.dtype is dt.bool_:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not "
                           "supported. Use the `^` or `logical_xor()` operator instead.")
    if not target.dtype.is_floating_point and not target.dtype.is_complex:
        raise RuntimeError(f"result type {dt.tname(dt.promote_types(input.dtype, target.dtype))} "
                           f"can't be cast to the desired output type {dt.tname(target.dtype)}")
    sp = _softplus(M.neg(input))                        # -log(sigmoid(x)), stable
    if pos_weight is not None:
        lw = M.add(M.mul(M.sub(pos_weight, 1), target), 1)
        sp = M.mul(lw, sp)
    loss = M.add(M.mul(M.sub(1, target), input), sp)
    if weight is not None:
        loss = M.mul(loss, weight)
    if loss.dtype is not target.dtype:
        loss = apply(P["cast"], loss, dtype=target.dtype)
    return rename(_reduce(loss, reduction), "BinaryCrossEntropyWithLogitsBackward0")


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    if log_target:
        loss = M.mul(M.exp(target), M.sub(target, input))
    else:
        loss = M.sub(M.xlogy(target, target), M.mul(target, input))
    if reduction == "batchmean":
        return M.div(M.sum(loss), input.shape[0]) if input.ndim else M.sum(loss)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if log_input:
        loss = M.sub(M.exp(input), M.mul(target, input))
    else:
        loss = M.sub(input, M.mul(target, M.log(M.add(input, eps))))
    if full:
        t = target
        stirling = M.add(M.sub(M.mul(t, M.log(t)), t), M.mul(M.log(M.mul(t, 2 * math.pi)), 0.5))
        loss = M.add(loss, M.where(M.gt(t, 1), stirling, 0.0))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    _check_reduction(reduction)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = S.unsqueeze(var, -1)
        elif var.ndim == input.ndim and builtins.sum(
                v for i, v in zip(input.shape, var.shape) if i != v) == 1:
            pass   # PyTorch's rule: exactly one mismatched dim, of size 1 in var (broadcasts)
        else:
            raise ValueError("var is of incorrect size")
    if (values(var) < 0).any():
        raise ValueError("var has negative entry/entries")
    # clamped in value, identity in gradient (torch clamps a copy under no_grad)
    vd = var.detach()
    v = M.clamp_min(var, eps) if not var.requires_grad else \
        M.add(var, M.sub(M.clamp_min(vd, eps), vd))
    d = M.sub(input, target)
    loss = M.mul(M.add(M.log(v), M.div(M.mul(d, d), v)), 0.5)
    if full:
        loss = M.add(loss, 0.5 * math.log(2 * math.pi))
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if input1.shape != input2.shape:
        raise RuntimeError(f"cosine_embedding_loss: input1 {list(input1.shape)} and input2 "
                           f"{list(input2.shape)} must have the same shape")
    d = input1.ndim - 1
    eps = 1e-12
    prod = M.sum(M.mul(input1, input2), d)
    m1 = M.add(M.sum(M.mul(input1, input1), d), eps)
    m2 = M.add(M.sum(M.mul(input2, input2), d), eps)
    cos = M.div(prod, M.sqrt(M.mul(m1, m2)))
    pos = M.sub(1, cos)
    neg = M.clamp_min(M.sub(cos, margin), 0)
    loss = M.add(M.where(M.eq(target, 1), pos, 0.0), M.where(M.eq(target, -1), neg, 0.0))
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension "
                           f"but got sizes: input1: {input1.shape}, input2: {input2.shape}, "
                           f"target: {target.shape} ")
    loss = M.clamp_min(M.add(M.mul(M.neg(target), M.sub(input1, input2)), margin), 0)
    return _reduce(loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    margin_clamp = M.clamp_min(M.sub(margin, input), 0)
    out_margin = M.where(M.ne(target, 1), margin_clamp, 0.0)
    out_self = M.where(M.ne(target, -1), input, 0.0)
    return _reduce(M.add(out_margin, out_self), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0, got {margin}")
    a, pz, n = anchor.ndim, positive.ndim, negative.ndim
    if not (a == pz == n):
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the "
                           f"same number of dimensions, but got: anchor {a}D, positive {pz}D, "
                           f"and negative {n}D inputs")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = M.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    loss = M.clamp_min(M.add(M.sub(d_pos, d_neg), margin), 0)
    return _reduce(loss, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    _check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: margin must be greater than 0, got "
                         f"{margin}")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = M.minimum(d_neg, dist(positive, negative))
    loss = M.clamp_min(M.add(M.sub(d_pos, d_neg), margin), 0)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _float_out(input, "soft_margin_loss")
    return rename(_reduce(_softplus(M.neg(M.mul(target, input))), reduction),
                  "SoftMarginLossBackward0")


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    loss = M.neg(M.add(M.mul(target, logsigmoid(input)),
                       M.mul(M.sub(1, target), logsigmoid(M.neg(input)))))
    if weight is not None:
        loss = M.mul(loss, weight)
    loss = M.div(M.sum(loss, input.ndim - 1), input.shape[-1])
    return _reduce(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    if target.dtype is not dt.int64:
        raise RuntimeError(f"expected scalar type Long but found {dt.tname(target.dtype)} "
                           f"(multi_margin_loss target)")
    x = S.unsqueeze(input, 0) if input.ndim == 1 else input
    t = values(target).reshape(-1).astype(np.int64)
    c = x.shape[1]
    if x.ndim != 2 or t.shape[0] != x.shape[0]:
        raise RuntimeError(f"multi_margin_loss: inconsistent target size: {list(target.shape)} "
                           f"for input of size: {list(input.shape)}")
    if t.size and (t.min() < 0 or t.max() >= c):
        raise RuntimeError(f"multi_margin_loss: target out of range (targets must be in [0, {c}), "
                           f"input {list(input.shape)})")
    if weight is not None and weight.shape[0] != c:
        raise RuntimeError(f"multi_margin_loss: inconsistent weight size, expected {c} but got "
                           f"{list(weight.shape)}")
    ti = wrap_like(t[:, None], dt.int64, x)
    xy = I.gather(x, 1, ti)
    z = M.clamp_min(M.add(M.sub(x, xy), margin), 0)
    if p == 2:
        z = M.mul(z, z)
    if weight is not None:
        z = M.mul(z, S.unsqueeze(apply(P["index"], weight, wrap_like(t, dt.int64, weight),
                                       pos=(0,)), 1))
    notself = wrap_like((np.arange(c)[None, :] != t[:, None]).astype(x.dtype.np), x.dtype, x)
    loss = M.div(M.sum(M.mul(z, notself), 1), c)
    if input.ndim == 1:
        loss = S.reshape(loss, ())
    return rename(_reduce(loss, reduction), "MultiMarginLossBackward0")


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Each sample's target lists its classes up to the first -1; every (target class j,
    other class i) pair costs max(0, 1 - (x[j] - x[i])), summed and divided by the class count.
    Masks built in the graph (membership, the prefix before the first -1); only the range check
    reads the targets."""
    reduction = _get_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if input.ndim not in (1, 2) or (input.ndim == 2 and input.shape[1] == 0):
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, "
                           f"but got: {list(input.shape)}")
    if tuple(target.shape) != tuple(input.shape):
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)}")
    if target.dtype is not dt.int64:
        raise RuntimeError(f"expected scalar type Long but found {dt.tname(target.dtype)}")
    x = S.unsqueeze(input, 0) if input.ndim == 1 else input
    t = S.unsqueeze(target, 0) if target.ndim == 1 else target
    c = x.shape[1]
    tv = values(t)
    if tv.size and (tv.min() < -1 or tv.max() >= c):
        raise RuntimeError("argument #2 'target' is out of range")
    valid = M.cumprod(M.ge(t, 0).long(), 1)                            # before the first -1
    tj = M.clamp_min(t, 0)
    classes = S.reshape(C.arange(c, device=x.device), (1, 1, c))
    hit = M.logical_and(M.eq(S.unsqueeze(tj, 2), classes), M.gt(S.unsqueeze(valid, 2), 0))
    is_target = M.any(hit, 1)                                         # (N, C)
    xj = I.gather(x, 1, tj)                                           # (N, J)
    z = M.clamp_min(M.add(M.sub(S.unsqueeze(x, 1), S.unsqueeze(xj, 2)), 1.0), 0)  # (N, J, C)
    keep = M.mul(S.unsqueeze(valid.to(x.dtype), 2),
                 S.unsqueeze(M.logical_not(is_target).to(x.dtype), 1))
    loss = M.div(M.sum(M.mul(z, keep), (1, 2)), c)
    if input.ndim == 1:
        loss = S.reshape(loss, ())
    return rename(_reduce(loss, reduction), "MultilabelMarginLossBackward0")


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2,
                  scale_grad_by_freq=False, mode="mean", sparse=False, per_sample_weights=None,
                  include_last_offset=False, padding_idx=None):
    """Sums, means or maxima of bags of embedding rows: a 2-D input is one bag per row; a 1-D
    input is cut into bags at `offsets`. padding_idx entries belong to no bag; an empty bag
    gives zeros. Composed of embedding and index_add / scatter_reduce (so gradients reach the
    rows, and the per-sample weights)."""
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) "
                         f"is not None, then it must have the same shape as the input "
                         f"({input.shape})")
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max (got {mode!r})")
    if scale_grad_by_freq and mode == "max":
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if sparse and mode == "max":
        raise ValueError("max mode does not support sparse weights")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' (got "
                                  f"mode='{mode}'). Please open a feature request on GitHub.")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"if input is 2D, then offsets has to be None, as input is treated "
                             f"is a mini-batch of fixed length sequences. However, found offsets "
                             f"of type {type(offsets)}")
        b, n = input.shape
        bag = np.repeat(np.arange(b), n)
        flat = S.reshape(input, (-1,))
        psw = None if per_sample_weights is None else S.reshape(per_sample_weights, (-1,))
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        off = np.asarray(values(offsets)).astype(np.int64).reshape(-1)
        if include_last_offset:
            off = off[:-1]
        b = off.shape[0]
        if b and off[0] != 0:
            raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the "
                               f"mini-batch has to start from position 0. However, got "
                               f"{int(off[0])}")
        if b and off[-1] > input.shape[0]:
            raise RuntimeError(f"offsets[-1] can not be greater than input's length "
                               f"{input.shape[0]} but got offsets[-1] of {int(off[-1])}")
        if b and np.any(np.diff(off) < 0):
            raise RuntimeError(f"embedding_bag: offsets must start at 0, be non-decreasing and "
                               f"not exceed the input's length {input.shape[0]} (got "
                               f"{off.tolist()})")
        bag = np.searchsorted(off, np.arange(input.shape[0]), side="right") - 1
        flat, psw = input, per_sample_weights
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.ndim}")
    if STATE.tracer is None and not _batched(flat):  # PyTorch: RuntimeError here, not IndexError
        idx = values(flat)
        bad = idx[(idx < 0) | (idx >= weight.shape[0])] if idx.size else idx
        if bad.size:
            raise RuntimeError(f"embedding_bag: Expected idx >= 0 && idx < num_embeddings "
                               f"({weight.shape[0]}) but found idx to be {int(bad[0])}")
    rows = embedding(flat, weight, None, max_norm, norm_type, scale_grad_by_freq, sparse)
    d = weight.shape[1]
    bag_t = wrap_like(bag.astype(np.int64), dt.int64, weight)
    keep = None
    if padding_idx is not None:
        keep = M.cast(M.ne(flat, padding_idx), weight.dtype)
    w = psw if keep is None else (keep if psw is None else M.mul(psw, keep))
    if w is not None:
        rows = M.mul(rows, S.unsqueeze(w, -1))
    zeros = C.zeros(b, d, dtype=weight.dtype, device=weight.device)
    if mode == "max":
        idx = S.expand(S.unsqueeze(bag_t, -1), (bag.shape[0], d))
        with no_grad():                # the maxima (scatter's amax has no gradient rule)
            vals = rows.detach()
            if keep is not None:       # padding entries take no part in the maximum
                vals = M.where(S.unsqueeze(keep, -1) > 0, vals, float("-inf"))
            r = I.scatter_reduce(zeros, 0, idx, vals, "amax", include_self=False)
            r = M.where(M.isinf(r) & (r < 0), 0.0, r)   # bags with nothing left: zeros
        if not rows.requires_grad:
            return r
        # the gradient of each maximum goes to the row entry that attains it (value exact:
        # what is added is rows - rows.detach(), zero in value)
        with no_grad():    # the first entry of its bag that attains the maximum (ties: one)
            hit = M.cast(M.eq(vals, I.index_select(r, 0, bag_t)), rows.dtype)
            before = M.sub(M.cumsum(hit, 0), hit)          # hits earlier in the flat order
            first_at = wrap_like(np.searchsorted(bag, bag).astype(np.int64), dt.int64, weight)
            within = M.sub(before, I.index_select(before, 0, first_at))
            hit = M.mul(hit, M.cast(M.eq(within, 0), rows.dtype))
        return rename(M.add(r, I.index_add(zeros, 0, bag_t,
                                           M.mul(M.sub(rows, rows.detach()), hit))),
                      "EmbeddingBagBackward0")
    low = weight.dtype if weight.dtype in (dt.float16, dt.bfloat16) else None
    if low is not None:     # half bags accumulate in float32 and round once, as PyTorch's
        rows, keep = M.cast(rows, dt.float32), keep if keep is None else M.cast(keep, dt.float32)
        zeros = C.zeros(b, d, dtype=dt.float32, device=weight.device)
    r = I.index_add(zeros, 0, bag_t, rows)
    if mode == "mean":
        ones = C.ones(bag.shape[0], dtype=r.dtype, device=weight.device) if keep is None \
            else keep
        cnt = I.index_add(C.zeros(b, dtype=r.dtype, device=weight.device), 0, bag_t, ones)
        r = M.div(r, S.unsqueeze(M.clamp_min(cnt, 1.0), -1))
    return rename(r if low is None else M.cast(r, low), "EmbeddingBagBackward0")
