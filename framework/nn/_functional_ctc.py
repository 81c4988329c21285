"""ctc_loss: the connectionist temporal classification loss (speech and handwriting
recognition, where the alignment of a label sequence to the input frames is unknown). The
recursions are the ctc_loss primitive (compiler/ops/ctc.py); this module checks and shapes the
arguments as PyTorch does and applies the reduction."""
import numpy as np

from compiler.ir.registry import REGISTRY
from runtime import dtypes as dt
from .._dispatch import apply, wrap_like
from ..tensor import Tensor
from .. import ops_math as M, ops_shape as S

__all__ = ["ctc_loss"]


def _lengths(x, name, like):
    """A Tensor, or a tuple/list of ints as PyTorch's IntArrayRef overload takes."""
    if isinstance(x, Tensor):
        if x.dtype.category == 1 and x.dtype is not dt.int64:
            x = x.long()
        return x.to(like.device) if x.device != like.device else x
    if isinstance(x, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in x):
        return wrap_like(np.asarray(x, np.int64).reshape(len(x)), dt.int64, like)
    raise TypeError(f"ctc_loss(): argument '{name}' must be a Tensor or a tuple of ints, not "
                    f"{type(x).__name__}")


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """log_probs (T, N, C) or unbatched (T, C), normally a log_softmax over C; targets padded
    (N, S) or concatenated (sum(target_lengths),); 'mean' divides each loss by its target length
    (at least 1) before averaging over the batch, as PyTorch does."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    unbatched = log_probs.ndim == 2
    il = _lengths(input_lengths, "input_lengths", log_probs)
    tl = _lengths(target_lengths, "target_lengths", log_probs)
    if unbatched:
        log_probs = S.unsqueeze(log_probs, 1)
        targets = S.unsqueeze(targets, 0)
        il, tl = S.reshape(il, (1,)), S.reshape(tl, (1,))
    if targets.dtype is not dt.int64:
        targets = targets.long()
    if targets.device != log_probs.device:
        targets = targets.to(log_probs.device)
    loss = apply(REGISTRY["ctc_loss"], log_probs, targets, il, tl, blank=int(blank),
                 zero_infinity=bool(zero_infinity))
    if unbatched:
        loss = S.reshape(loss, ())
    if reduction == "sum":
        return M.sum(loss)
    if reduction == "mean":
        return M.mean(M.div(loss, M.clamp_min(tl.to(loss.dtype), 1)))
    return loss
