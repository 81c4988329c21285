"""torch.nn.functional.grouped_mm and scaled_mm (torch 2.13): per-group matmuls for
mixture-of-experts layers and float8 matmuls with decoding scales; the ops themselves are
torch._grouped_mm and torch._scaled_mm (framework.ops_linalg)."""
import enum

from runtime import dtypes as dt
from .. import ops_linalg as L


class _ScalingType(enum.Enum):
    TensorWise = 0
    RowWise = 1
    BlockWise1x16 = 2
    BlockWise1x32 = 3
    BlockWise1x128 = 4
    BlockWise128x128 = 5

    def __int__(self):
        return self.value

    __index__ = __int__


class _SwizzleType(enum.Enum):
    NO_SWIZZLE = 0
    SWIZZLE_32_4_4 = 1

    def __int__(self):
        return self.value

    __index__ = __int__


for _c in (_ScalingType, _SwizzleType):
    _c.__module__ = "torch.nn.functional"
ScalingType, SwizzleType = _ScalingType, _SwizzleType


def grouped_mm(mat_a, mat_b, *, offs=None, bias=None, out_dtype=None):
    return L._grouped_mm(mat_a, mat_b, offs=offs, bias=bias, out_dtype=out_dtype)


def _one(x):
    return x if isinstance(x, (list, tuple)) else [x]


def scaled_mm(mat_a, mat_b, scale_a, scale_recipe_a, scale_b, scale_recipe_b, swizzle_a=None,
              swizzle_b=None, bias=None, output_dtype=dt.bfloat16, contraction_dim=(),
              use_fast_accum=False):
    """The cpu recipes of torch's scaled_mm: TensorWise and RowWise on both operands (swizzles
    and contraction_dim are not read there); every other recipe is an invalid configuration."""
    sa, sb = _one(scale_a), _one(scale_b)
    ra = [r.value for r in _one(scale_recipe_a)]     # (a plain int: AttributeError, as torch)
    rb = [r.value for r in _one(scale_recipe_b)]
    for name, m in (("mat_a", mat_a), ("mat_b", mat_b)):
        if m.ndim != 2:
            raise ValueError(f"{name} must be a matrix")
    (M, K), (K2, N) = mat_a.shape, mat_b.shape
    if K != K2:
        raise ValueError(f"mat_a and mat_b shapes cannot be multiplied ({M}x{K} and {K2}x{N})")
    tw, rw = _ScalingType.TensorWise.value, _ScalingType.RowWise.value
    if len(sa) == len(sb) == 1 and ra == rb == [tw]:
        for name, s in (("scale_a", sa[0]), ("scale_b", sb[0])):
            if s.numel() != 1:
                raise ValueError(f"{name} must have 1 Float element")
    elif len(sa) == len(sb) == 1 and ra == rb == [rw]:
        for name, s in (("scale_a", sa[0]), ("scale_b", sb[0])):
            if s.ndim == 0:
                raise IndexError("Dimension specified as 0 but tensor has no dimensions")
            if s.ndim == 1:
                raise IndexError("Dimension out of range (expected to be in range of [-1, 0], "
                                 "but got 1)")
            if s.stride(1) != 1:
                raise ValueError(f"expected {name}.stride(1) to be 1, but got {s.stride(1)}")
    else:
        raise L._smm_config_error(mat_a, mat_b, sa[0], sb[0])
    return L._scaled_mm(mat_a, mat_b, sa[0], sb[0], bias=bias, out_dtype=output_dtype,
                        use_fast_accum=use_fast_accum)


def scaled_grouped_mm(mat_a, mat_b, scale_a, scale_recipe_a, scale_b, scale_recipe_b,
                      swizzle_a=None, swizzle_b=None, bias=None, offs=None,
                      output_dtype=dt.bfloat16, contraction_dim=(), use_fast_accum=False):
    """A CUDA kernel in torch (compute capability 9.0+): its cpu build raises this."""
    for r in _one(scale_recipe_a) + _one(scale_recipe_b):
        r.value                                      # (a plain int: AttributeError, as torch)
    raise L._no_grouped_scaled_kernel("_scaled_grouped_mm_v2", mat_a)
