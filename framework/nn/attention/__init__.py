"""torch.nn.attention: SDPBackend, the sdpa_kernel context manager, and the bias submodule
(torch.nn.attention.bias: CausalVariant, CausalBias, causal_upper_left, causal_lower_right).

Kiln's F.scaled_dot_product_attention has one implementation, PyTorch's MATH backend (softmax of
Q K^T * scale + mask, times V). The backend set chosen here decides whether a call may run, as in
PyTorch 2.13 on the CPU:
  * PyTorch's CPU kernels are FLASH_ATTENTION (preferred) and MATH; EFFICIENT_ATTENTION,
    CUDNN_ATTENTION and OVERRIDEABLE have no CPU kernel. With neither FLASH_ATTENTION nor MATH
    enabled a call raises "No viable backend for scaled_dot_product_attention was found. ...".
  * With MATH enabled every call runs (MATH accepts all inputs).
  * With FLASH_ATTENTION but not MATH, the inputs must pass PyTorch's CPU flash constraints
    (4-D q/k/v, no dropout, equal batch and heads (or GQA), a 2-D/4-D mask shape, equal head
    dims, last-dim stride 1, a floating dtype); otherwise PyTorch warns "Flash attention kernel
    not used because:" and the failed constraint, then raises "No available kernel.  Aborting
    execution.", and so does Kiln (same texts). When they pass, Kiln's math implementation
    serves the call: PyTorch's CPU flash kernel computes the same softmax attention and agrees
    with its MATH backend within float rounding (checked on float32/float64/bfloat16/float16,
    masks, is_causal, GQA and strided inputs).
  * An empty query sequence (L == 0) or a value with no elements is answered before any
    backend is chosen, as in PyTorch: zeros, whatever the backend set (other empty inputs, a
    head dim of 0 or an empty batch, go through the backend choice like any other).
  * attn_mask together with is_causal=True: PyTorch's CPU flash kernel applies both (the mask
    on top of the causal one), its MATH backend raises; so Kiln combines them where the flash
    kernel would be chosen and raises MATH's error where MATH would serve the call.
On other devices ('cuda', 'interpret') Kiln cannot mirror the CUDA kernels' constraints (GPU
architecture, head-dim alignment, ...): any non-empty backend set is served by the math
implementation, and only a set without any backend raises the "No viable backend" error.

set_priority only records the order (read back by _cur_sdpa_kernel_backends(with_priority=True));
PyTorch's CPU selection ignores it too (flash first, then math).
"""
import contextlib
import enum
import sys
import types
import warnings

from ...tensor import Tensor as _Tensor

__all__ = ["SDPBackend", "sdpa_kernel", "WARN_FOR_UNFUSED_KERNELS"]

# PyTorch's flag for bias subclasses' unfused-kernel warnings (its CUDA dispatch reads it)
WARN_FOR_UNFUSED_KERNELS = False


class SDPBackend(enum.Enum):
    """The backends of scaled_dot_product_attention (PyTorch 2.13's values). Like PyTorch's
    (pybind) enum, members are not equal to ints but convert with int()/operator.index()."""
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4

    def __int__(self):
        return self.value

    __index__ = __int__


# the five switchable backends in PyTorch's _backend_names order (cudnn, flash, mem_efficient,
# math, overrideable): the order _cur_sdpa_kernel_backends lists them in
_SWITCHABLE = (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
               SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH, SDPBackend.OVERRIDEABLE)
_enabled = set(_SWITCHABLE)
_priority = [1, 2, 0, 3, 4]          # torch._C._get_sdp_priority_order() by default
_math_on = True                      # SDPBackend.MATH in _enabled (the per-call fast path)


def _cur_sdpa_kernel_backends(with_priority=False):
    backends = [b for b in _SWITCHABLE if b in _enabled]
    if with_priority:
        backends.sort(key=lambda b: _priority.index(int(b)))
    return backends


def _sdpa_kernel(backends, set_priority=False):
    global _math_on
    _enabled.clear()
    _enabled.update(b for b in _SWITCHABLE if b in backends)
    _math_on = SDPBackend.MATH in _enabled
    if set_priority:
        order = [int(b) for b in backends]
        order += [p for p in _priority if p not in order]
        _priority[:] = order


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority=False):
    """Enable only `backends` (one SDPBackend or a list) for scaled_dot_product_attention inside
    the block; the previous set (and with set_priority, the previous order) is restored on
    exit, also when the block raises. Nestable."""
    if not isinstance(backends, (list, SDPBackend)):
        raise AssertionError(f"Backend must be an instance of SDPBackend or a list of SDPBackend "
                             f"instances, got {type(backends).__name__}")
    if isinstance(backends, SDPBackend):
        backends = [backends]
    backends = list(dict.fromkeys(backends))
    previous = _cur_sdpa_kernel_backends(with_priority=set_priority)
    try:
        _sdpa_kernel(backends, set_priority)
        yield {}
    finally:
        _sdpa_kernel(previous, set_priority)


# ---- what F.scaled_dot_product_attention asks before it computes ----------------------------

_NO_VIABLE = ("No viable backend for scaled_dot_product_attention was found. This is likely due "
              "to turning off both the math kernel and the fused kernels.")
_FLASH_DTYPES = ("float32", "float64", "bfloat16", "float16")


def _sizes(t):
    return str(list(t.shape))


def _flash_cpu_ok(q, k, v, mask, dropout_p, enable_gqa, debug):
    """PyTorch 2.13's use_flash_attention_cpp: its constraints in its order; with debug, the
    failing one warns with PyTorch's text."""
    def no(msg=None):
        if debug and msg:
            warnings.warn(msg, UserWarning, stacklevel=5)
        return False
    if dropout_p > 0.0:
        return no("Both fused kernels do not support non-zero dropout.")
    if not q.ndim == k.ndim == v.ndim == 4:
        return no(f"All fused kernels requires query, key and value to be 4 dimensional, but got "
                  f"Query dim: {q.ndim}, Key dim: {k.ndim}, Value dim: {v.ndim} instead.")
    if not q.shape[0] == k.shape[0] == v.shape[0]:
        return no(f"For dense inputs, both fused kernels require query, key and value to have "
                  f"the same batch_size. Query.sizes(): {_sizes(q)}, Key.sizes(): {_sizes(k)}, "
                  f"Value.sizes(): {_sizes(v)} instead. To broadcast dense inputs, try using "
                  f"unsqueeze and expand_to before passing them into the kernel.")
    hq, hk, hv = q.shape[1], k.shape[1], v.shape[1]
    if enable_gqa:
        if hk != hv:
            return no(f"Both fused kernels require key and value to have the same num_heads and "
                      f"batch_size but got: Key sizes: {_sizes(k)}, Value sizes: {_sizes(v)}, "
                      f"Query sizes: {_sizes(q)} instead.")
        if hq % hk:
            return no(f"The number of heads in key/value must divide number of heads in query."
                      f"Got input Key sizes(): {hk}, Value sizes(): {hv}, Query sizes(): {hq} "
                      f"instead.")
    elif not hq == hk == hv:
        return no(f"For dense input, both fused kernels require query, key and value to have the "
                  f"same num_heads. Query.sizes(): {_sizes(q)}, Key sizes(): {_sizes(k)}, "
                  f"Value sizes(): {_sizes(v)} instead. To broadcast dense inputs, try using "
                  f"unsqueeze and expand_to before passing them into the kernel.")
    if mask is not None:
        ms = mask.shape
        if mask.requires_grad or len(ms) < 2 or ms[-2] not in (q.shape[2], 1) or \
                ms[-1] not in (k.shape[2], 1):
            return no()                    # (PyTorch gives no reason for these)
        if not (len(ms) == 2 or len(ms) == 4 and ms[0] in (1, q.shape[0]) and
                ms[1] in (1, hq)):
            return no("Please use the following attn mask shapes: 2d - ({Q_seq_len, 1}  x "
                      "{KV_seq_len, 1}); 4d - ({Batch, 1} x {Num_heads, 1} x {Q_seq_len, 1}  x "
                      "{KV_seq_len, 1})")
    if not q.shape[-1] == k.shape[-1] == v.shape[-1]:
        return no(f"Flash attention requires q,k,v to have the same last dimension. Got "
                  f"Query.size(-1): {q.shape[-1]}, Key.size(-1): {k.shape[-1]}, "
                  f"Value.size(-1): {v.shape[-1]} instead.")
    st = (q.stride(-1), k.stride(-1), v.stride(-1))
    if st != (1, 1, 1):
        msg = (f"All fused kernels require the last dimension of the input to have stride 1. "
               f"Got Query.stride(-1): {st[0]}, Key.stride(-1): {st[1]}, Value.stride(-1): "
               f"{st[2]}")
        if mask is not None:
            msg += (f", Attn_mask.stride(-1): {mask.stride(-1)} (GPU backends require "
                    f"attn_mask's last dimension to have stride 1 while the CPU does not).")
        return no(msg)
    if q.dtype.name not in _FLASH_DTYPES:
        from runtime.dtypes import CPP_NAME
        return no(f"Expected query, key and value to all be of dtype: {{Float, Double, BFloat16, "
                  f"Half}}. Got Query dtype: {CPP_NAME[q.dtype.name]}, Key dtype: "
                  f"{CPP_NAME[k.dtype.name]}, and Value dtype: {CPP_NAME[v.dtype.name]} instead.")
    return True


def _sdpa_validate(query, key, value, attn_mask, is_causal):
    """What F.scaled_dot_product_attention checks first, whatever the inputs' sizes (PyTorch's
    validate_sdpa_input, after the CausalBias dispatch): returns the attn_mask to use (a
    CausalBias materialized as its boolean mask on query's device)."""
    if isinstance(attn_mask, CausalBias):
        if is_causal:
            raise ValueError("CausalBias should not be used with causal=True")
        attn_mask = attn_mask._materialize(query.device)
    from runtime.dtypes import CPP_NAME
    if query.dtype is not key.dtype or query.dtype is not value.dtype:
        raise RuntimeError(f"Expected query, key, and value to have the same dtype, but got "
                           f"query.dtype: {CPP_NAME[query.dtype.name]} key.dtype: "
                           f"{CPP_NAME[key.dtype.name]} and value.dtype: "
                           f"{CPP_NAME[value.dtype.name]} instead.")
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(f"Expected query, key, and value to all be  at least 2 dimensional, "
                           f"but got query.dim: {query.ndim} key.dim: {key.ndim} and value.dim: "
                           f"{value.ndim} instead.")      # (PyTorch's text has the two spaces)
    if attn_mask is not None and attn_mask.dtype.name not in ("bool", "float32") and \
            attn_mask.dtype is not query.dtype:
        raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query "
                           f"dtype, but got attn_mask.dtype: {CPP_NAME[attn_mask.dtype.name]} "
                           f"and  query.dtype: {CPP_NAME[query.dtype.name]} instead.")
    return attn_mask


_CAUSAL_WITH_MASK = ("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                     "is_causal=True")


def _sdpa_check(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa):
    """The backend choice F.scaled_dot_product_attention makes for non-empty inputs (after
    _sdpa_validate and its own checks): raises what PyTorch raises under the current backend
    set, MATH's error for an attn_mask given with is_causal=True included."""
    if query.device.type != "cpu":
        if not _enabled:
            raise RuntimeError(_NO_VIABLE)
        return
    both = is_causal and attn_mask is not None
    if _math_on and not both:              # MATH takes every input: nothing to decide
        return
    flash = SDPBackend.FLASH_ATTENTION in _enabled
    if flash and _flash_cpu_ok(query, key, value, attn_mask, dropout_p, enable_gqa, False):
        return                             # Kiln's math implementation serves it (see above)
    if _math_on:                           # MATH serves it, and refuses a mask with is_causal
        raise RuntimeError(_CAUSAL_WITH_MASK)
    if not flash:
        raise RuntimeError(_NO_VIABLE)
    warnings.warn("Flash attention kernel not used because:", UserWarning, stacklevel=3)
    _flash_cpu_ok(query, key, value, attn_mask, dropout_p, enable_gqa, True)
    raise RuntimeError("No available kernel.  Aborting execution.")


# ---- torch.nn.attention.bias ----------------------------------------------------------------

class CausalVariant(enum.IntEnum):
    """UPPER_LEFT: tril(ones(L, S)) (is_causal=True); LOWER_RIGHT: tril(ones(L, S), S - L)."""
    UPPER_LEFT = 1
    LOWER_RIGHT = 2


class CausalBias(_Tensor):
    """A causal (triangular) attention bias for F.scaled_dot_product_attention, made by
    causal_upper_left / causal_lower_right. As in PyTorch, passing it as attn_mask computes
    causal attention (is_causal=True with it is a ValueError). Kiln's differs in being the
    materialized boolean (L, S) mask as a tensor (PyTorch's has a meaningless tensor
    payload; only its repr shows the mask)."""

    def __init__(self, variant, seq_len_q, seq_len_kv):
        if not isinstance(variant, CausalVariant):
            raise AssertionError(f"variant must be a CausalVariant, got "
                                 f"{type(variant).__name__}")
        self.variant = variant
        self.seq_len_q = seq_len_q
        self.seq_len_kv = seq_len_kv
        if seq_len_q > seq_len_kv and variant == CausalVariant.LOWER_RIGHT:
            warnings.warn("Lower right causal bias will produce NaNs in the output when "
                          "seq_len_q > seq_len_kv!", stacklevel=2)
        m = self._materialize()
        self._data, self._dtype = m._data, m._dtype

    def _upper_left(self, device):
        from ... import tril, ones, bool as bool_
        return tril(ones(self.seq_len_q, self.seq_len_kv, device=device, dtype=bool_))

    def _lower_right(self, device):
        from ... import tril, ones, bool as bool_
        return tril(ones(self.seq_len_q, self.seq_len_kv, device=device, dtype=bool_),
                    diagonal=self.seq_len_kv - self.seq_len_q)

    def _materialize(self, device=None):
        device = "cpu" if device is None else device
        if self.variant == CausalVariant.UPPER_LEFT:
            return self._upper_left(device)
        if self.variant == CausalVariant.LOWER_RIGHT:
            return self._lower_right(device)



def causal_upper_left(*size):
    """CausalBias of shape (seq_len_q, seq_len_kv), aligned to the upper left corner (the mask
    is_causal=True applies)."""
    if len(size) != 2:
        raise AssertionError("causal_upper_left only supports 2D tensors")
    seq_len_q, seq_len_kv = size
    return CausalBias(CausalVariant.UPPER_LEFT, seq_len_q, seq_len_kv)


def causal_lower_right(*size):
    """CausalBias of shape (seq_len_q, seq_len_kv), aligned to the lower right corner
    (tril with diagonal seq_len_kv - seq_len_q)."""
    if len(size) != 2:
        raise AssertionError("causal_lower_right only supports 2D tensors")
    seq_len_q, seq_len_kv = size
    return CausalBias(CausalVariant.LOWER_RIGHT, seq_len_q, seq_len_kv)


# torch.nn.attention is a package in PyTorch; its `bias` submodule is registered here so that
# `import framework.nn.attention.bias` and `from framework.nn.attention.bias import ...` work
bias = types.ModuleType(__name__ + ".bias", "torch.nn.attention.bias: causal attention biases")
bias.__all__ = ["causal_upper_left", "causal_lower_right", "CausalVariant", "CausalBias"]
for _n in bias.__all__:
    setattr(bias, _n, globals()[_n])
    getattr(bias, _n).__module__ = bias.__name__
sys.modules[bias.__name__] = bias
del _n
