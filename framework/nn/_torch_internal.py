"""The ATen-level entry points nn's functional forms sit on (torch.convolution,
torch.grid_sampler, torch.affine_grid_generator, torch.embedding_renorm_, torch.norm_except_dim,
the SyncBatchNorm building blocks torch.batch_norm_stats & co.): ATen's signatures and checks
over the functional forms' single definitions."""
import numbers

import numpy as np

from runtime import dtypes as dt
from .._dispatch import rename
from ..tensor import Tensor
from .. import ops_math as M
from .. import ops_shape as S
from . import _functional_basic as FB
from . import _functional_conv as FC
from . import _functional_sampling as FS

__all__ = ["convolution", "grid_sampler", "grid_sampler_2d", "grid_sampler_3d",
           "affine_grid_generator", "embedding_renorm_", "norm_except_dim",
           "batch_norm_stats", "batch_norm_elemt", "batch_norm_gather_stats",
           "batch_norm_gather_stats_with_counts", "batch_norm_backward_reduce",
           "batch_norm_backward_elemt", "batch_norm_update_stats"]


def _arg(op, name, pos, v, kind):
    """PyTorch's argument parser's type check for one argument."""
    ok = {"Tensor": lambda: isinstance(v, Tensor),
          "int": lambda: isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool),
          "bool": lambda: isinstance(v, (bool, np.bool_)),
          "float": lambda: isinstance(v, numbers.Real) and not isinstance(v, bool),
          "tuple of ints": lambda: isinstance(v, (list, tuple)) and all(
              isinstance(e, (numbers.Integral, np.integer)) and not isinstance(e, bool)
              for e in v)}[kind]()
    if not ok:
        got = "Tensor" if isinstance(v, Tensor) else type(v).__name__
        raise TypeError(f"{op}(): argument '{name}' (position {pos}) must be {kind}, not {got}")


# ---- convolution -----------------------------------------------------------------------------

def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
                groups):
    """ATen's convolution: conv{1,2,3}d or conv_transpose{1,2,3}d by weight's rank (batched
    input only; output_padding is read only when transposed)."""
    _arg("convolution", "input", 1, input, "Tensor")
    _arg("convolution", "weight", 2, weight, "Tensor")
    if bias is not None:
        _arg("convolution", "bias", 3, bias, "Tensor")
    for pos, (name, v) in enumerate((("stride", stride), ("padding", padding),
                                     ("dilation", dilation)), 4):
        _arg("convolution", name, pos, v, "tuple of ints")
    _arg("convolution", "transposed", 7, transposed, "bool")
    _arg("convolution", "output_padding", 8, output_padding, "tuple of ints")
    _arg("convolution", "groups", 9, groups, "int")
    nd = weight.ndim - 2
    args = {"stride": stride, "padding": padding, "dilation": dilation}
    if transposed:
        args["output_padding"] = output_padding
    args = {k: FC._ntuple(v, max(nd, 1), k, "convolution") for k, v in args.items()}
    if input.ndim != weight.ndim or nd not in (1, 2, 3):
        raise RuntimeError(f"Expected {weight.ndim}-dimensional input for {weight.ndim}-"
                           f"dimensional weight {list(weight.shape)}, but got {input.ndim}-"
                           f"dimensional input of size {list(input.shape)} instead")
    if any(p < 0 for p in args["padding"]):
        raise RuntimeError("negative padding is not supported")
    if transposed:
        return FC._conv_transpose_nd(nd, "convolution", input, weight, bias, args["stride"],
                                     args["padding"], args["output_padding"], groups,
                                     args["dilation"])
    return FC._conv_nd(nd, "convolution", input, weight, bias, args["stride"], args["padding"],
                       args["dilation"], groups)


# ---- grid sampling ---------------------------------------------------------------------------

_INTERP = ("bilinear", "nearest", "bicubic")
_PADDING = ("zeros", "border", "reflection")


def _grid_sampler(op, nd, input, grid, interpolation_mode, padding_mode, align_corners):
    _arg(op, "input", 1, input, "Tensor")
    _arg(op, "grid", 2, grid, "Tensor")
    _arg(op, "interpolation_mode", 3, interpolation_mode, "int")
    _arg(op, "padding_mode", 4, padding_mode, "int")
    _arg(op, "align_corners", 5, align_corners, "bool")
    if nd is not None and (input.ndim != nd + 2 or grid.ndim != nd + 2):
        raise RuntimeError(f"grid_sampler(): expected {nd + 2}D input and grid with same number "
                           f"of dimensions, but got input with sizes {list(input.shape)} and "
                           f"grid with sizes {list(grid.shape)}")
    if input.ndim == 5 and grid.ndim == 5 and interpolation_mode == 2:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    # (ATen reads an out-of-range mode as garbage; Kiln refuses it)
    if not 0 <= interpolation_mode < 3:
        raise RuntimeError(f"{op}(): interpolation_mode must be 0 (bilinear), 1 (nearest) or 2 "
                           f"(bicubic), but got {interpolation_mode}")
    if not 0 <= padding_mode < 3:
        raise RuntimeError(f"{op}(): padding_mode must be 0 (zeros), 1 (border) or 2 "
                           f"(reflection), but got {padding_mode}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"grid_sampler_{input.ndim - 2}d_cpu_kernel_impl\" not "
                                  f"implemented for '{dt.tname(input.dtype)}'")
    if grid.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {dt.tname(input.dtype)} but found "
                           f"{dt.tname(grid.dtype)}")
    return FS.grid_sample(input, grid, _INTERP[interpolation_mode], _PADDING[padding_mode],
                          bool(align_corners))


def grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners):
    return _grid_sampler("grid_sampler", None, input, grid, interpolation_mode, padding_mode,
                         align_corners)


def grid_sampler_2d(input, grid, interpolation_mode, padding_mode, align_corners):
    return _grid_sampler("grid_sampler_2d", 2, input, grid, interpolation_mode, padding_mode,
                         align_corners)


def grid_sampler_3d(input, grid, interpolation_mode, padding_mode, align_corners):
    return _grid_sampler("grid_sampler_3d", 3, input, grid, interpolation_mode, padding_mode,
                         align_corners)


def affine_grid_generator(theta, size, align_corners):
    _arg("affine_grid_generator", "theta", 1, theta, "Tensor")
    _arg("affine_grid_generator", "size", 2, size, "tuple of ints")
    _arg("affine_grid_generator", "align_corners", 3, align_corners, "bool")
    size = [int(s) for s in size]
    if len(size) not in (4, 5):
        raise RuntimeError("AffineGridGenerator needs 4d (spatial) or 5d (volumetric) inputs.")
    nd = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[:2]) != (size[0], nd) or \
            theta.shape[2] != nd + 1:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{size[0]}, {nd + 1}] but got: "
                           f"[{theta.shape[0] if theta.ndim else 0}, "
                           f"{theta.shape[2] if theta.ndim > 2 else 0}].")
    if not theta.dtype.is_floating_point:
        raise NotImplementedError(f"affine_grid_generator: integer theta "
                                  f"({dt.tname(theta.dtype)}) is not supported by Kiln")
    return FS.affine_grid(theta, size, bool(align_corners))


# ---- embedding_renorm_, norm_except_dim --------------------------------------------------------

def embedding_renorm_(input, indices, max_norm, norm_type):
    """Rescales, in place, each row of input that indices name to norm max_norm where its
    norm_type-norm exceeds it (rows named twice scale once)."""
    _arg("embedding_renorm_", "input", 1, input, "Tensor")
    _arg("embedding_renorm_", "indices", 2, indices, "Tensor")
    _arg("embedding_renorm_", "max_norm", 3, max_norm, "float")
    _arg("embedding_renorm_", "norm_type", 4, norm_type, "float")
    if indices.dtype not in (dt.int64, dt.int32):
        raise RuntimeError(f"Expected tensor for argument #2 'indices' to have one of the "
                           f"following scalar types: Long, Int; but got torch."
                           f"{dt.tname(indices.dtype)}Tensor instead (while checking arguments "
                           f"for embedding_renorm_)")
    if input.ndim != 2:
        raise RuntimeError(f"Expected 2-dimensional tensor, but got {input.ndim}-dimensional "
                           f"tensor for argument #1 'self' (while checking arguments for "
                           f"embedding_renorm_)")
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise RuntimeError(f"norm(): input dtype should be either floating point or complex. "
                           f"Got {dt.tname(input.dtype)} instead.")
    from .._device_ops import host
    idx = np.asarray(host(indices._data)).reshape(-1).astype(np.int64)
    n = input.shape[0]
    bad = idx[(idx >= n) | (idx < -n)]
    if bad.size:
        raise IndexError(f"select(): index {bad[0]} out of range for tensor of size "
                         f"{list(input.shape)} at dimension 0")
    idx = np.where(idx < 0, idx + n, idx)
    from ..autograd.grad_mode import no_grad
    from .._dispatch import STATE
    if STATE.grad_enabled and input.requires_grad:
        M.check_inplace_leaf(input)
        with no_grad():
            new = input.clone()
            FB._renorm_rows_(new, idx, float(max_norm), float(norm_type))
        r = _renorm_no_grad().apply(input, new)
        from .._tensor_methods import _assign
        _assign(input, r, "embedding_renorm")
        return rename(input, "EmbeddingRenormBackward0")
    M.check_writable(input, "embedding_renorm_")
    FB._renorm_rows_(input, idx, float(max_norm), float(norm_type))
    return input


_RENORM = []


def _renorm_no_grad():
    """PyTorch records EmbeddingRenormBackward0, which raises when backward reaches it."""
    if not _RENORM:
        from ..autograd.function import Function

        class _EmbeddingRenorm(Function):
            @staticmethod
            def forward(ctx, x, new):
                return new.clone()

            @staticmethod
            def backward(ctx, g):
                raise NotImplementedError("the derivative for 'embedding_renorm' is not "
                                          "implemented.")
        _RENORM.append(_EmbeddingRenorm)
    return _RENORM[0]


def norm_except_dim(v, pow=2, dim=0):
    """The pow-norm of v over every dim but `dim`, shaped to broadcast against v (dim -1: the
    norm of all of v), composed as ATen does (its views name the grad_fn)."""
    _arg("norm_except_dim", "v", 1, v, "Tensor")
    _arg("norm_except_dim", "pow", 2, pow, "int")
    _arg("norm_except_dim", "dim", 3, dim, "int")
    if not (v.dtype.is_floating_point or v.dtype.is_complex):
        raise RuntimeError(f"norm(): input dtype should be either floating point or complex. "
                           f"Got {dt.tname(v.dtype)} instead.")
    if dim == -1:
        return rename(M.norm(v, pow), "NormBackward0")
    if v.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    last = v.ndim - 1
    if dim == 0 or dim == last:
        shape = [1] * v.ndim
        shape[dim] = v.shape[dim]
        flat = (v.shape[0], -1) if dim == 0 else (-1, v.shape[last])
        n = M.norm(S.reshape(v.contiguous(), flat), pow, 1 if dim == 0 else 0)
        return S.reshape(n, shape)
    return S.transpose(norm_except_dim(S.transpose(v, 0, dim), pow, 0), 0, dim)


# ---- SyncBatchNorm's building blocks -----------------------------------------------------------
# torch's CPU build has kernels for batch_norm_update_stats only (the others are CUDA-only
# there); Kiln runs all of them on every device, with the CUDA kernels' arithmetic. Outputs
# carry torch's NotImplemented grad_fn, whose backward raises.

_NOT_IMPL = []


def _no_derivative(name, inputs, outs, node="NotImplemented", error=None):
    """outs (computed from inputs) as outputs of a grad_fn named `node` whose backward raises:
    `error` as (class, message), by default RuntimeError "derivative for aten::name ..."."""
    from .._dispatch import STATE
    if not (STATE.grad_enabled and any(isinstance(t, Tensor) and t.requires_grad
                                       for t in inputs)):
        return outs
    if not _NOT_IMPL:
        from ..autograd.function import Function

        class _NotImplemented(Function):
            @staticmethod
            def forward(ctx, err, x, *vals):
                ctx.err = err
                return tuple(v.clone() for v in vals)

            @staticmethod
            def backward(ctx, *grads):
                raise ctx.err[0](ctx.err[1])
        _NOT_IMPL.append(_NotImplemented)
    src = next(t for t in inputs if isinstance(t, Tensor) and t.requires_grad)
    keep = [o for o in outs if o is not None]
    err = error or (RuntimeError, f"derivative for aten::{name} is not implemented")
    made = iter(_NOT_IMPL[0].apply(err, src, *keep))
    res = []
    for o in outs:
        res.append(None if o is None else rename(next(made), node))
    return tuple(res)


def _chan(v, x):
    """A per-channel (C,) vector shaped to broadcast against x (N, C, ...)."""
    return S.reshape(v, (1, -1) + (1,) * (x.ndim - 2))


def _red_dims(op, x):
    if x.ndim < 2:
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got "
                         "1)")
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f"\"{op}\" not implemented for '{dt.tname(x.dtype)}'")
    return (0,) + tuple(range(2, x.ndim))


def _acc(x):
    """The statistics' dtype: float32 for half-precision input, as the CUDA kernels keep."""
    return dt.float32 if x.dtype in (dt.float16, dt.bfloat16) else x.dtype


def _biased_var(x, dims):
    xf = M.cast(x, _acc(x))
    mean = M.mean(xf, dims)
    return mean, M.mean(M.square(M.sub(xf, _chan(mean, xf))), dims)


def batch_norm_stats(input, eps):
    """(mean, invstd) per channel (dim 1): invstd = 1 / sqrt(biased var + eps)."""
    from ..autograd.grad_mode import no_grad
    with no_grad():
        mean, var = _biased_var(input, _red_dims("batch_norm_stats", input))
        invstd = M.rsqrt(M.add(var, float(eps)))
    return _no_derivative("batch_norm_stats", (input,), (mean, invstd))


def batch_norm_elemt(input, weight, bias, mean, invstd, eps):
    """(input - mean) * invstd * weight + bias, per channel."""
    from ..autograd.grad_mode import no_grad
    _red_dims("batch_norm_elemt", input)
    C = input.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("mean", mean), ("invstd", invstd)):
        if t is not None and tuple(t.shape) != (C,):
            raise RuntimeError(f"batch_norm_elemt: expected {name} of shape [{C}], got "
                               f"{list(t.shape)}")
    with no_grad():
        y = M.mul(M.sub(input, _chan(mean, input)), _chan(invstd, input))
        if weight is not None:
            y = M.mul(y, _chan(weight, input))
        if bias is not None:
            y = M.add(y, _chan(bias, input))
        y = M.cast(y, input.dtype)
    return _no_derivative("batch_norm_elemt", (input, weight, bias, mean, invstd), (y,))[0]


def batch_norm_gather_stats_with_counts(input, mean, invstd, running_mean, running_var,
                                        momentum, eps, counts):
    """Merges per-replica (mean, invstd) rows of counts[i] elements each into the global
    (mean, invstd), and updates running_mean / running_var (unbiased) in place."""
    from ..autograd.grad_mode import no_grad
    if mean.ndim != 2 or tuple(invstd.shape) != tuple(mean.shape) or \
            counts.numel() != mean.shape[0]:
        raise RuntimeError(f"batch_norm_gather_stats_with_counts: expected mean and invstd of "
                           f"shape [world_size, C] and counts of world_size elements, got "
                           f"{list(mean.shape)}, {list(invstd.shape)} and {list(counts.shape)}")
    with no_grad():
        acc = mean.dtype
        n = S.reshape(M.cast(counts, acc), (-1, 1))
        total = M.sum(n, 0)
        gmean = M.div(M.sum(M.mul(n, mean), 0), total)
        var_n = M.mul(M.sub(M.reciprocal(M.square(invstd)), float(eps)), n)
        m2 = M.sum(M.add(var_n, M.mul(n, M.square(M.sub(mean, gmean)))), 0)
        ginv = M.rsqrt(M.add(M.div(m2, total), float(eps)))
        m = float(momentum)
        if running_mean is not None:
            running_mean.copy_(M.add(M.mul(running_mean, 1 - m), M.mul(M.cast(gmean,
                               running_mean.dtype), m)))
        if running_var is not None:
            unb = M.div(m2, M.sub(total, 1))
            running_var.copy_(M.add(M.mul(running_var, 1 - m), M.mul(M.cast(unb,
                              running_var.dtype), m)))
    return _no_derivative("batch_norm_gather_stats_with_counts", (input, mean, invstd),
                          (gmean, ginv))


def batch_norm_gather_stats(input, mean, invstd, running_mean, running_var, momentum, eps,
                            count):
    """batch_norm_gather_stats_with_counts with `count` elements on every replica."""
    from .. import creation
    counts = creation.full((mean.shape[0] if mean.ndim else 0,), float(count), dtype=mean.dtype,
                           device=mean.device)
    return batch_norm_gather_stats_with_counts(input, mean, invstd, running_mean, running_var,
                                               momentum, eps, counts)


def batch_norm_backward_reduce(grad_out, input, mean, invstd, weight, input_g, weight_g,
                               bias_g):
    """(sum_dy, sum_dy_xmu, grad_weight, grad_bias) per channel; None where not asked for."""
    from ..autograd.grad_mode import no_grad
    dims = _red_dims("batch_norm_backward_reduce", input)
    with no_grad():
        acc = _acc(input)
        dy = M.cast(grad_out, acc)
        sum_dy = M.sum(dy, dims)
        sum_dy_xmu = M.sum(M.mul(dy, M.sub(M.cast(input, acc), _chan(mean, input))), dims)
        gw = M.cast(M.mul(sum_dy_xmu, invstd), weight.dtype if weight is not None else acc) \
            if weight_g else None
        gb = M.cast(sum_dy, weight.dtype if weight is not None else acc) if bias_g else None
    outs = (sum_dy if input_g else None, sum_dy_xmu if input_g else None, gw, gb)
    return _no_derivative("batch_norm_backward_reduce", (grad_out, input, mean, invstd, weight),
                          outs)


def batch_norm_backward_elemt(grad_out, input, mean, invstd, weight, sum_dy, sum_dy_xmu, count):
    """The input gradient from the globally reduced sums: (dy - sum_dy / N - (x - mean) *
    invstd^2 * sum_dy_xmu / N) * invstd * weight, N = count.sum()."""
    from ..autograd.grad_mode import no_grad
    _red_dims("batch_norm_backward_elemt", input)
    if count.dtype not in (dt.int32, dt.int64) and not count.dtype.is_floating_point:
        raise RuntimeError(f"batch_norm_backward_elemt: count must be a numeric tensor, got "
                           f"{count.dtype}")
    with no_grad():
        acc = _acc(input)
        N = M.cast(M.sum(count), acc)
        mean_dy = M.div(sum_dy, N)
        mean_dy_xmu = M.div(sum_dy_xmu, N)
        inv = _chan(invstd, input)
        xmu = M.sub(M.cast(input, acc), _chan(mean, input))
        g = M.sub(M.sub(M.cast(grad_out, acc), _chan(mean_dy, input)),
                  M.mul(M.mul(xmu, M.square(inv)), _chan(mean_dy_xmu, input)))
        g = M.mul(g, inv)
        if weight is not None:
            g = M.mul(g, _chan(weight, input))
        g = M.cast(g, input.dtype)
    return _no_derivative("batch_norm_backward_elemt", (grad_out, input, mean, invstd, weight),
                          (g,))[0]


def batch_norm_update_stats(input, running_mean, running_var, momentum):
    """(mean, biased var) per channel; running_mean / running_var (unbiased var) move by
    momentum in place."""
    from ..autograd.grad_mode import no_grad
    dims = _red_dims("batch_norm_update_stats", input)
    for t in (running_mean, running_var):
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
    with no_grad():
        mean, var = _biased_var(input, dims)
        n = input.numel() // max(input.shape[1], 1)
        m = float(momentum)
        if running_mean is not None:
            running_mean.copy_(M.add(M.mul(running_mean, 1 - m), M.mul(mean, m)))
        if running_var is not None:
            unb = M.mul(var, n / (n - 1)) if n > 1 else M.mul(var, float("nan"))
            running_var.copy_(M.add(M.mul(running_var, 1 - m), M.mul(unb, m)))
    return _no_derivative("batch_norm_update_stats", (input,), (mean, var))
