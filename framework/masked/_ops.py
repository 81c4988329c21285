"""torch.masked reductions and normalisations on strided tensors, composed of framework ops
(where/sum/amax/...), so autograd and compile see ordinary ops. Masked-out elements are replaced
by the operation's identity before the dense op runs (PyTorch's `_combine_input_and_mask`)."""
import math

import framework as torch

__all__ = ["sum", "prod", "cumsum", "cumprod", "amax", "amin", "argmax", "argmin", "mean",
           "median", "norm", "var", "std", "logsumexp", "softmax", "log_softmax", "softmin",
           "normalize", "logaddexp"]

_SMALL_INTS = None


def _small_ints():
    global _SMALL_INTS
    if _SMALL_INTS is None:
        _SMALL_INTS = {torch.uint8, torch.bool, torch.int8, torch.int16, torch.int32}
    return _SMALL_INTS


def _is_mt(x):
    from ._core import MaskedTensor
    return isinstance(x, MaskedTensor)


def _reduction_identity(op_name, input, *args):
    """Identity of `op_name` as a 0-d tensor of input's dtype, or None where it is undefined."""
    dtype = input.dtype
    fp = dtype.is_floating_point
    if op_name in ("sum", "cumsum"):
        return torch.tensor(0, dtype=dtype)
    if op_name in ("prod", "cumprod"):
        return torch.tensor(1, dtype=dtype)
    if op_name in ("amax", "argmax", "logsumexp"):
        if fp:
            return torch.tensor(-math.inf, dtype=dtype)
        if dtype.is_complex and op_name == "logsumexp":
            return torch.tensor(complex(-math.inf, 0), dtype=dtype)
        if dtype is not torch.bool and not dtype.is_complex:
            return torch.tensor(torch.iinfo(dtype).min, dtype=dtype)
    elif op_name in ("amin", "argmin"):
        if fp:
            return torch.tensor(math.inf, dtype=dtype)
        if dtype is not torch.bool and not dtype.is_complex:
            return torch.tensor(torch.iinfo(dtype).max, dtype=dtype)
    elif op_name in ("mean", "var", "std"):
        return None
    elif op_name == "norm":
        ord = args[0] if args else 2
        if ord == -math.inf:
            if not fp:
                raise AssertionError(f"input must be floating point, got {dtype}")
            return torch.tensor(math.inf, dtype=dtype)
        return torch.tensor(0, dtype=dtype)
    elif op_name == "median":
        return torch.tensor(math.nan, dtype=dtype if fp else torch.float32)
    raise NotImplementedError(f"identity of {op_name} on {dtype} input")


def _canonical_dim(dim, ndim):
    """dim as a sorted tuple of non-negative dims (None and () mean all)."""
    if dim == () or dim is None:
        return tuple(range(ndim))
    ndim = max(ndim, 1)
    dims = []
    for d in ((dim,) if isinstance(dim, int) else dim):
        if d in dims:
            raise RuntimeError(f"dim={d} appears multiple times in the list of dims")
        if d >= ndim or d < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, "
                             f"{ndim - 1}], but got {d})")
        dims.append(d % ndim)
    return tuple(sorted(dims))


def _input_mask(input, mask):
    """mask broadcast to input's shape, as bool."""
    if mask is None:
        raise ValueError("_input_mask requires explicit mask")
    if _is_mt(mask) or not isinstance(mask, torch.Tensor):
        raise TypeError(f"masked ops expect mask to be a Tensor, got {type(mask).__name__}")
    if tuple(mask.shape) != tuple(input.shape):
        if mask.ndim > input.ndim:
            raise IndexError("_input_mask expected broadcastable mask (got mask dimensionality "
                             "higher than of the input)")
        mask = torch.broadcast_to(mask, input.shape)
    return mask.to(dtype=torch.bool)


def _combine(op_name, input, mask, *args):
    """input with masked-out elements replaced by op's identity (a MaskedTensor brings its own
    mask, and then `mask` is ignored as in PyTorch)."""
    if _is_mt(input):
        input, mask = input._masked_data, input._masked_mask
    if mask is None:
        return input
    m = _input_mask(input, mask)
    return torch.where(m, input, _reduction_identity(op_name, input, *args))


def _data(input):
    return input._masked_data if _is_mt(input) else input


def _int_promoted(input, dtype):
    if dtype is None:
        dtype = input.dtype
        if dtype in _small_ints():
            dtype = torch.int64
    return dtype


def sum(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    dtype = _int_promoted(input, dtype)
    dim_ = _canonical_dim(dim, input.ndim)
    x = _combine("sum", input, mask)
    return torch.sum(x, dim_, bool(keepdim), dtype=dtype)


def prod(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    dtype = _int_promoted(input, dtype)
    dim_ = _canonical_dim(dim, input.ndim)
    r = _combine("prod", input, mask).to(dtype=dtype)
    for d in reversed(dim_):
        r = r.prod(dim=d, keepdim=bool(keepdim))
    return r


def cumsum(input, dim, *, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return torch.cumsum(_combine("sum", input, mask), d, dtype=dtype).to(dtype=dtype)


def cumprod(input, dim, *, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return torch.cumprod(_combine("prod", input, mask), d, dtype=dtype).to(dtype=dtype)


def amax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    x = _combine("amax", input, mask)
    return torch.amax(x, _canonical_dim(dim, x.ndim), bool(keepdim)).to(dtype=dtype)


def amin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    x = _combine("amin", input, mask)
    return torch.amin(x, _canonical_dim(dim, x.ndim), bool(keepdim)).to(dtype=dtype)


def argmax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    # (PyTorch casts the index to input's dtype when dtype is not given)
    dtype = input.dtype if dtype is None else dtype
    return torch.argmax(_combine("argmax", input, mask), dim, bool(keepdim)).to(dtype=dtype)


def argmin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    return torch.argmin(_combine("argmin", input, mask), dim, bool(keepdim)).to(dtype=dtype)


def mean(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    src = "Optional"
    if dtype is None:
        dtype, src = input.dtype, "Input"
    if not (dtype.is_floating_point or dtype.is_complex):
        raise ValueError(f"mean(): Could not infer output dtype. {src} dtype must be either a "
                         f"floating point or complex dtype. Got: {dtype}")
    if _is_mt(input):
        mask = input._masked_mask
    if mask is None:
        count = sum(torch.ones(input.shape, dtype=torch.int64), dim, keepdim=keepdim)
        total = sum(input, dim, keepdim=keepdim, dtype=dtype)
    else:
        inmask = _input_mask(input, mask)
        count = inmask.sum(dim=_canonical_dim(dim, input.ndim), keepdim=bool(keepdim))
        total = sum(input, dim, keepdim=keepdim, dtype=dtype, mask=inmask)
    return total / count


def median(input, dim=-1, *, keepdim=False, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    is_float = input.dtype.is_floating_point
    if _is_mt(input):
        input, mask = input._masked_data, input._masked_mask
    if not is_float:
        input = input.to(dtype=torch.float32)
    out = torch.nanmedian(_combine("median", input, mask), d, keepdim).values
    if is_float:
        return out
    if not torch.isnan(out).any():
        return out.to(dtype=dtype)
    raise ValueError("masked median expects no fully masked out rows if dtype is not floating "
                     "point")


def logsumexp(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    dim_ = _canonical_dim(dim, input.ndim)
    return torch.logsumexp(_combine("logsumexp", input, mask), dim_,
                           keepdim=keepdim).to(dtype=dtype)


def logaddexp(input, other, *, dtype=None, input_mask=None, other_mask=None):
    """logaddexp of input and other, each with its masked-out elements as -inf (so the other
    operand's value comes through, and -inf where both are masked out)."""
    if dtype is None:
        dtype = input.dtype
    if input.layout == torch.strided and other.layout == torch.strided:
        return torch.logaddexp(_combine("logsumexp", input, input_mask),
                               _combine("logsumexp", other, other_mask)).to(dtype=dtype)
    raise ValueError(f"masked logaddexp expects strided tensors (got {input.layout} tensor for "
                     f"input, {other.layout} for other)")


def norm(input, ord=2.0, dim=None, *, keepdim=False, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    x = _combine("norm", input, mask, ord)
    return torch.linalg.vector_norm(x, ord, _canonical_dim(dim, input.ndim), bool(keepdim),
                                    dtype=dtype)


def _std_var(input, dim, unbiased, correction_opt, keepdim, dtype, mask, take_sqrt):
    if unbiased is not None and correction_opt is not None:
        raise AssertionError("Only one of unbiased and correction may be given")
    correction = 1.0
    if unbiased is not None:
        correction = 1.0 if unbiased else 0.0
    if correction_opt is not None:
        correction = float(correction_opt)
    if dtype is None:
        dtype = input.dtype
        if not (dtype.is_floating_point or dtype.is_complex):
            dtype = torch.float32
    compute = dtype
    if _is_mt(input):
        input, mask = input._masked_data, input._masked_mask
    dims = _canonical_dim(dim, input.ndim)
    if mask is None:
        count = sum(torch.ones(input.shape, dtype=torch.int64), dims, keepdim=True)
        total = sum(input, dims, keepdim=True, dtype=dtype)
        inmask = None
    else:
        inmask = _input_mask(input, mask)
        count = inmask.sum(dim=dims, keepdim=True)
        total = sum(input, dims, keepdim=True, dtype=dtype, mask=inmask)
    x = input - total / count
    total = sum(x * x.conj(), dims, keepdim=keepdim, dtype=compute, mask=inmask)
    if not keepdim:
        count = count.reshape(total.shape)
    if correction != 0:
        real = compute.to_real() if compute.is_complex else compute
        count = (count.to(real) - correction).clamp(min=0)
    out = (total / count).to(dtype=dtype)
    return out.sqrt() if take_sqrt else out


def var(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None,
        mask=None):
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, False)


def std(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None,
        mask=None):
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, True)


def softmax(input, dim, *, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return torch.nn.functional.softmax(_combine("amax", input, mask), d, dtype=dtype)


def log_softmax(input, dim, *, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return torch.nn.functional.log_softmax(_combine("amax", input, mask), d, dtype=dtype)


def softmin(input, dim, *, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return torch.nn.functional.softmin(_combine("amin", input, mask), d, dtype=dtype)


def normalize(input, ord, dim, *, eps=1e-12, dtype=None, mask=None):
    dtype = input.dtype if dtype is None else dtype
    x = _combine("sum", input, mask)
    nrm = norm(input, ord, dim, keepdim=True, dtype=dtype, mask=mask)
    return x / torch.maximum(nrm, nrm.new_full([], eps))
