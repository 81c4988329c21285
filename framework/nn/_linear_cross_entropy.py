"""torch 2.13's F.linear_cross_entropy and LinearCrossEntropyOptions: cross_entropy(linear(x, W, b),
target). With options=None it is exactly that composition (every autograd feature works).
With options, the batch runs in chunks so the (N, C) logits are never held whole: two custom
ops as PyTorch's (torch_nn::_linear_cross_entropy_batch_chunked[_no_reduction]); the scalar
one computes the gradients in its forward and its backward only scales them (so, as in
PyTorch, a second backward raises unless allow_retain_graph), the per-sample one recomputes
them in backward. Chunks compute in `acc_dtype` (float32 for half inputs on the cpu)."""
import dataclasses
import math
import typing
import warnings
from typing import Literal, Optional

from runtime import dtypes as dt
from .. import creation as C
from .. import ops_shape as S
from ..tensor import Tensor

__all__ = ["linear_cross_entropy", "LinearCrossEntropyOptions"]

# (device type, dtype) -> (acc_policy, chunking_method) that "auto" resolves to
_AUTO_DEFAULTS = {("cuda", dt.bfloat16): ("compact", "aspect_ratio:2"),
                  ("cuda", dt.float16): ("compact", "aspect_ratio:2"),
                  ("cpu", dt.bfloat16): ("accurate", "aspect_ratio"),
                  ("cpu", dt.float16): ("accurate", "aspect_ratio")}
_AUTO_FALLBACK = ("compact", "aspect_ratio:2")
_ACC_DTYPES = (dt.float16, dt.bfloat16, dt.float32, dt.float64)


@dataclasses.dataclass(slots=True, frozen=True)
class LinearCrossEntropyOptions:
    """How F.linear_cross_entropy chunks the batch (PyTorch 2.13's fields and checks):
    batch_chunk_size rows per chunk, or chunking_method "aspect_ratio[:N]" (a chunk's logits
    as large as the input, divided by N) or "auto"; acc_policy and acc_dtype pick the
    accumulation precision; allow_retain_graph keeps the gradients for a second backward."""
    allow_retain_graph: bool = False
    batch_chunk_size: "int | None" = None
    chunking_method: "str | None" = "auto"
    acc_policy: Literal["accurate", "balanced", "compact", "auto"] = "auto"
    acc_dtype: object = None

    def __post_init__(self):
        if self.acc_policy not in {"auto", "accurate", "balanced", "compact"}:
            raise ValueError(f"invalid acc_policy: {self.acc_policy!r}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = self.chunking_method.partition(":")
            if not (name == "aspect_ratio" and (factor if sep else "1").isdigit()
                    and int(factor if sep else "1") > 0):
                raise ValueError(f"invalid chunking_method: {self.chunking_method!r}")
        if not (self.batch_chunk_size is None or (isinstance(self.batch_chunk_size, int)
                                                  and self.batch_chunk_size > 0)):
            raise ValueError(f"batch_chunk_size must be positive int or None, got "
                             f"{self.batch_chunk_size!r}")
        if self.acc_dtype is not None and self.acc_dtype not in _ACC_DTYPES:
            raise ValueError(f"acc_dtype must be one of {{None, torch.float16, torch.bfloat16, "
                             f"torch.float32, torch.float64}}, got {self.acc_dtype!r}. Pass "
                             "acc_dtype=None to let the op pick automatically.")

    @staticmethod
    def _compute_batch_chunk_size(num_batches, in_features, num_classes, method):
        factor = int(method.split(":", 1)[1]) if ":" in method else 1
        target = -(-num_batches // -(-num_classes // in_features))
        return min((1 << (target - 1).bit_length()) // factor, num_batches)

    def _adjust(self, num_batches, in_features, num_classes, dtype, device=None):
        """These options made concrete for one call: "auto" resolved for the device and dtype,
        the chunk size computed."""
        policy, method = self.acc_policy, self.chunking_method
        if method == "auto" and self.batch_chunk_size is not None:
            method = None
        if policy == "auto" or method == "auto":
            ap, cm = (_AUTO_DEFAULTS.get((device.type, dtype), _AUTO_FALLBACK)
                      if device is not None else _AUTO_FALLBACK)
            policy = ap if policy == "auto" else policy
            method = cm if method == "auto" else method
        size = num_batches if self.batch_chunk_size is None else \
            min(self.batch_chunk_size, num_batches)
        if method is not None:
            size = self._compute_batch_chunk_size(num_batches, in_features, num_classes, method)
            if self.batch_chunk_size is not None and self.batch_chunk_size != size:
                raise ValueError(f"batch_chunk_size (={self.batch_chunk_size}) and "
                                 f"chunking_method ('{method}') give different chunk sizes "
                                 f"({self.batch_chunk_size} vs {size}); pass only one.")
        acc = self.acc_dtype
        if acc is None:
            # "auto": float32 accumulation for half inputs where mixed-precision mm exists
            half = dtype in (dt.float16, dt.bfloat16) and device is not None
            acc = dt.float32 if self.acc_policy == "auto" and half and \
                device.type in ("cpu", "cuda") else dtype
        return dataclasses.replace(self, acc_policy=policy, chunking_method=method,
                                   batch_chunk_size=max(1, size), acc_dtype=acc)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction="mean", ignore_index=None, label_smoothing=0.0, options=None):
    from . import _functional_basic as F
    if input.ndim < 1 or input.ndim > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got "
                           f"{linear_weight.ndim}")
    batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError(f"expected equal input and linear_weight last dimensions "
                           f"(in_features), got {input.shape[-1]} and "
                           f"{linear_weight.shape[-1]}, respectively")
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(num_classes, *out_features)}, got "
                           f"{tuple(linear_bias.shape)}")
    if out_features and not batches:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape "
                           f"{tuple(linear_weight.shape)} requires batched input, "
                           f"(N, {in_features}), got unbatched input with shape "
                           f"{tuple(input.shape)}")
    logits_shape = (*batches, num_classes, *out_features)
    # (cross_entropy tells probability targets by their shape)
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    from .. import jit
    if options is not None:
        if out_features or reduction not in ("mean", "sum", "none") or label_smoothing != 0.0 \
                or target.dtype is not dt.int64 or jit.is_tracing():
            warnings.warn(
                "linear_cross_entropy: ``options`` ignored; chunked path needs reduction in "
                "{'mean','sum','none'}, label_smoothing == 0, target.dtype == int64, "
                f"out_features == (). Got reduction={reduction!r}, "
                f"label_smoothing={label_smoothing}, target.dtype={target.dtype}, "
                f"out_features={out_features}, tracing={jit.is_tracing()}, "
                f"linear_bias.shape="
                f"{tuple(linear_bias.shape) if linear_bias is not None else None}.",
                stacklevel=2)
        else:
            return _chunked(input, linear_weight, target, linear_bias, weight, reduction,
                            ignore_index, options)
    if out_features:
        linear_weight = linear_weight.reshape((math.prod(out_features, start=num_classes),
                                               in_features))
        if linear_bias is not None:
            linear_bias = linear_bias.reshape(math.prod(out_features, start=num_classes))
    logits = F.linear(input, linear_weight, linear_bias).reshape(logits_shape)
    return F.cross_entropy(logits, target, weight=weight, reduction=reduction,
                           ignore_index=ignore_index, label_smoothing=label_smoothing)


def _chunked(input, w, target, b, weight, reduction, ignore_index, options):
    from .. import autograd, compiler
    batched = input.ndim == 2
    if not batched:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    o = options._adjust(num_batches=input.shape[0], in_features=input.shape[1],
                        num_classes=w.shape[0], dtype=input.dtype, device=input.device)
    ops = _ops()
    if reduction == "none":
        r = ops[1](input, w, target, b, weight, ignore_index, o.batch_chunk_size, o.acc_policy,
                   o.acc_dtype)
    else:
        if not o.allow_retain_graph and compiler.is_compiling():
            warnings.warn("linear_cross_entropy: forcing allow_retain_graph=True under "
                          "torch.compile (adds one gradient-sized allocation/call). Construct "
                          "options with allow_retain_graph=True to silence.", stacklevel=3)
            o = dataclasses.replace(o, allow_retain_graph=True)
        on = autograd.grad_mode.is_grad_enabled()
        r = ops[0](input, w, target, b, weight, reduction, ignore_index, 0.0, o.batch_chunk_size,
                   o.acc_policy, o.acc_dtype, o.allow_retain_graph, input.requires_grad and on,
                   w.requires_grad and on, b is not None and b.requires_grad and on)[0]
    return r if batched else r.squeeze(0)


def _accumulate(x, w, target, b, weight, reduction, ignore_index, chunk, acc, grads,
                grad_out=None):
    """(loss, grad_input, grad_linear_weight, grad_linear_bias), one chunk of rows at a time in
    dtype `acc`. The gradient of row i's loss w[t_i] (lse_i - z_i,t_i) in its logits is
    w[t_i] (softmax_i - onehot(t_i)), scaled by 1 / sum of the weights for 'mean' and by
    grad_out[i] for the per-sample backward. Ignored rows add nothing."""
    n, c = x.shape[0], w.shape[0]
    xa, wa = x.to(acc), w.to(acc)
    ba = b.to(acc) if b is not None else None
    valid = target != ignore_index
    safe = target.masked_fill(~valid, 0)
    dev = x.device
    wt = (weight.to(acc)[safe] if weight is not None else C.ones(n, dtype=acc, device=dev)) * valid
    scale = wt / wt.sum() if reduction == "mean" else wt
    if grad_out is not None:
        scale = scale * grad_out.to(acc)
    losses = []
    gi = C.zeros(tuple(x.shape), dtype=acc, device=dev) if grads[0] else None
    gw = C.zeros(tuple(w.shape), dtype=acc, device=dev) if grads[1] else None
    gb = C.zeros((c,), dtype=acc, device=dev) if grads[2] else None
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        z = xa[s:e] @ wa.t()
        if ba is not None:
            z = z + ba
        lse = z.logsumexp(1)
        picked = z.gather(1, safe[s:e, None])[:, 0]
        losses.append(wt[s:e] * (lse - picked))
        if any(grads):
            d = (z - lse[:, None]).exp()
            d[C.arange(e - s, device=dev), safe[s:e]] -= 1.0
            d = d * scale[s:e, None]
            if gi is not None:
                gi[s:e] = d @ wa
            if gw is not None:
                gw += d.t() @ xa[s:e]
            if gb is not None:
                gb += d.sum(0)
    loss = S.cat(losses) if losses else C.zeros((0,), dtype=acc, device=dev)
    if reduction == "mean":
        loss = loss.sum() / wt.sum()
    elif reduction == "sum":
        loss = loss.sum()
    out = x.dtype
    return (loss.to(out), gi.to(out) if gi is not None else C.zeros((0, 0), dtype=out, device=dev),
            gw.to(out) if gw is not None else C.zeros((0, 0), dtype=out, device=dev),
            gb.to(out) if gb is not None else C.zeros((0,), dtype=out, device=dev))


_OPS = []


def _ops():
    """The two chunked custom ops, defined on first use (as PyTorch imports them lazily)."""
    if _OPS:
        return _OPS
    from ..library import custom_op

    @custom_op("torch_nn::_linear_cross_entropy_batch_chunked", mutates_args=())
    def scalar_op(input: Tensor, linear_weight: Tensor, target: Tensor,
                  linear_bias: Optional[Tensor], weight: Optional[Tensor], reduction: str,
                  ignore_index: int, label_smoothing: float, batch_chunk_size: int,
                  acc_policy: str, acc_dtype: dt.DType, allow_retain_graph: bool,
                  compute_input_grad: bool, compute_linear_weight_grad: bool,
                  compute_linear_bias_grad: bool) -> typing.Tuple[Tensor, Tensor, Tensor, Tensor]:
        return _accumulate(input, linear_weight, target, linear_bias, weight, reduction,
                           ignore_index, batch_chunk_size, acc_dtype,
                           (compute_input_grad, compute_linear_weight_grad,
                            compute_linear_bias_grad))

    def setup(ctx, inputs, output):
        ctx.allow_retain_graph = inputs[11]
        ctx.flags = inputs[12:15]
        ctx.grads = [g.detach() if f else None for g, f in zip(output[1:], ctx.flags)]

    def backward(ctx, grad_output, *_):
        res = [None] * 15
        for slot, k in ((0, 0), (1, 1), (3, 2)):
            if ctx.flags[k]:
                g = ctx.grads[k]
                if g is None:
                    raise RuntimeError("linear_cross_entropy chunked backward called twice; "
                                       "retain_graph=True / double backward are not supported.")
                if not ctx.allow_retain_graph:
                    ctx.grads[k] = None
                res[slot] = g * grad_output
        return tuple(res)

    scalar_op.register_autograd(backward, setup_context=setup)

    @custom_op("torch_nn::_linear_cross_entropy_batch_chunked_no_reduction", mutates_args=())
    def none_op(input: Tensor, linear_weight: Tensor, target: Tensor,
                linear_bias: Optional[Tensor], weight: Optional[Tensor], ignore_index: int,
                batch_chunk_size: int, acc_policy: str, acc_dtype: dt.DType) -> Tensor:
        return _accumulate(input, linear_weight, target, linear_bias, weight, "none",
                           ignore_index, batch_chunk_size, acc_dtype, (False, False, False))[0]

    def setup_none(ctx, inputs, output):
        x, w, t, b, wt = inputs[:5]
        ctx.save_for_backward(x.detach(), w.detach(), t, b.detach() if b is not None else None,
                              wt.detach() if wt is not None else None)
        ctx.args = inputs[5:]

    def backward_none(ctx, grad_output):
        x, w, t, b, wt = ctx.saved_tensors
        need = ctx.needs_input_grad
        grads = (need[0], need[1], b is not None and need[3])
        res = [None] * 9
        if any(grads):
            ignore, chunk, _, acc = ctx.args
            _, gi, gw, gb = _accumulate(x, w, t, b, wt, "none", ignore, chunk, acc, grads,
                                        grad_out=grad_output)
            res[0], res[1], res[3] = (g if f else None for g, f in zip((gi, gw, gb), grads))
        return tuple(res)

    none_op.register_autograd(backward_none, setup_context=setup_none)
    _OPS.extend((scalar_op, none_op))
    return _OPS
