"""torch.masked: masked reductions/normalisations (_ops) and the prototype MaskedTensor."""
from ._ops import (sum, prod, cumsum, cumprod, amax, amin, argmax, argmin, mean,  # noqa: F401
                   median, norm, var, std, logsumexp, softmax, log_softmax, softmin, normalize,
                   logaddexp)
from ._core import MaskedTensor, is_masked_tensor, masked_tensor, as_masked_tensor  # noqa: F401
from . import _rules
from .. import _dispatch

_dispatch.MASKED_TYPE = MaskedTensor
_dispatch.MASKED_APPLY = _rules.apply_masked
del _rules

__all__ = ["as_masked_tensor", "is_masked_tensor", "masked_tensor", "MaskedTensor", "sum", "prod",
           "cumsum", "cumprod", "amax", "amin", "argmax", "argmin", "mean", "median", "norm",
           "var", "std", "logsumexp", "softmax", "log_softmax", "softmin", "normalize",
           "logaddexp"]
