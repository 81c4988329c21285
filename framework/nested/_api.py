"""torch.nested's functions: construction, conversion, narrow."""
import numpy as np

from runtime import dtypes as dt
from ..tensor import Tensor
from .._dispatch import wrap, rename
from ._tensor import NestedTensor, jagged, pack
from . import _ops


def _layout_kind(layout):
    from .. import jagged as J, strided as ST
    if layout is None or layout is ST:
        return False
    if layout is J:
        return True
    raise RuntimeError(f"Specified layout is unsupported for nested tensors: {layout!r}")


def _components(tensor_list, dtype, device, copy):
    from ..creation import tensor as make
    out = []
    for t in tensor_list:
        if not isinstance(t, Tensor):
            t = make(t, dtype=dtype, device=device)
        elif copy:
            t = t.detach()
        if dtype is not None and t.dtype is not dtype or device is not None:
            t = t.to(dtype=dtype, device=device)
        out.append(t)
    if out and dtype is None:           # (PyTorch: the first component's dtype)
        out = [t if t.dtype is out[0].dtype else t.to(out[0].dtype) for t in out]
    return out


def _ragged_dim(comps):
    """The component dim that differs between comps (jagged allows one); 0 when none does."""
    if any(c.ndim != comps[0].ndim for c in comps):
        raise RuntimeError("When constructing a nested tensor, all tensors in list must have the "
                           "same dim")
    if comps[0].ndim == 0:
        raise RuntimeError("Cannot construct a nested tensor from a list of zero-dim tensors")
    diff = [i for i in range(comps[0].ndim) if len({c.shape[i] for c in comps}) > 1]
    if len(diff) > 1:
        raise RuntimeError("Cannot represent given tensor list as a nested tensor with the "
                           "jagged layout. Note that the jagged layout only allows for a single "
                           "ragged dimension. For example: (B, *, D_0, D_1, ..., D_N), with "
                           "ragged * dim.")
    return diff[0] if diff else 0


def _check_strided(comps):
    for i, c in enumerate(comps):
        if c.ndim != comps[0].ndim:
            raise RuntimeError(f"All Tensors given to nested_tensor must have the same dimension. "
                               f"Found dimension {c.ndim} for Tensor at index {i} and dimension "
                               f"{comps[0].ndim} for Tensor at index 0.")


def _build(comps, is_jagged):
    if not is_jagged:
        _check_strided(comps)
        return pack(comps, jagged_layout=False)
    if not comps:
        raise RuntimeError("Cannot construct a nested tensor from an empty tensor list")
    k = _ragged_dim(comps)
    return pack(comps, ragged_idx=k + 1)


def nested_tensor(tensor_list, *, dtype=None, layout=None, device=None, requires_grad=False,
                  pin_memory=False):
    """A nested tensor holding copies of tensor_list's tensors (a leaf: its gradient is nt.grad)."""
    is_jagged = _layout_kind(layout)
    comps = _components(tensor_list, dtype, device, copy=True)
    nt = _build(comps, is_jagged)
    nt._values = nt._values.detach()
    if requires_grad:
        nt._values.requires_grad_(True)
    return nt


def as_nested_tensor(ts, dtype=None, device=None, layout=None):
    """A nested tensor of ts (a list of tensors, or a tensor's dim 0) keeping their history:
    gradients flow back to the tensors given."""
    is_jagged = _layout_kind(layout)
    if isinstance(ts, NestedTensor):
        if is_jagged != ts._jagged:
            raise RuntimeError("as_nested_tensor(): converting a nested tensor to another "
                               "layout is not supported")
        return ts if dtype is None else ts.to(dtype)
    if isinstance(ts, Tensor):
        if ts.ndim < 2 and is_jagged:
            raise RuntimeError("as_nested_tensor(): Expected tensor argument to have dim > 1")
        if is_jagged:
            B, T = ts.shape[0], ts.shape[1]
            v = ts.reshape((B * T,) + tuple(ts.shape[2:]))
            v = v if dtype is None else v.to(dtype)
            off = wrap(np.arange(B + 1, dtype=np.int64) * T, dt.int64)
            return jagged(v, off)
        ts = ts.unbind(0)
    if not isinstance(ts, (list, tuple)):
        raise TypeError(f"as_nested_tensor(): Expected first argument to be a tensor or a list / "
                        f"tuple of tensors, got {type(ts).__name__}")
    nt = _build(_components(ts, dtype, device, copy=False), is_jagged)
    # (PyTorch's names for the node the components' gradients come back through)
    return rename(nt, "NestedViewFromJaggedBackward0" if is_jagged else
                  "NestedTensorFromTensorListBackward0")


def nested_tensor_from_jagged(values, offsets=None, lengths=None, jagged_dim=None,
                              min_seqlen=None, max_seqlen=None):
    """A jagged nested tensor viewing values (B components along its dim 0, or jagged_dim - 1),
    split by offsets (or lengths)."""
    if offsets is None:
        if lengths is None:
            raise RuntimeError("nested_tensor_from_jagged(): At least one of offsets or lengths "
                               "is required.")
        off = np.concatenate([[0], np.cumsum(np.asarray(lengths._data, np.int64))])
        offsets, lengths = wrap(off.astype(np.int64), dt.int64), None
    r = 1 if jagged_dim is None else int(jagged_dim)
    if r < 1 or r > values.ndim:
        raise RuntimeError(f"nested_tensor_from_jagged(): jagged_dim {jagged_dim} is out of range "
                           f"for values of dim {values.ndim}")
    return jagged(values, offsets, lengths, r)


def narrow(tensor, dim, start, length, layout=None):
    """Components tensor[i].narrow(dim - 1, start[i], length[i]) of a dense (B, ...) tensor."""
    is_jagged = _layout_kind(layout)
    if not is_jagged:
        if isinstance(start, Tensor) or isinstance(length, Tensor):
            raise RuntimeError("start and length must be integers for the strided layout NT impl")
        # (PyTorch 2.13 builds the strided result with Tensor.narrow on the batch dim)
        raise RuntimeError(f"narrow(): only dim=0 supported for nested tensors, but got: {dim}")
    if dim != 1:
        raise RuntimeError(f"narrow(): only dim=1 supported for jagged nested tensors, but got: "
                           f"{dim}")
    B, T = tensor.shape[0], tensor.shape[1]
    st = np.broadcast_to(np.asarray(start._data if isinstance(start, Tensor) else start,
                                    np.int64), (B,))
    ln = np.broadcast_to(np.asarray(length._data if isinstance(length, Tensor) else length,
                                    np.int64), (B,))
    if (st < 0).any() or (st + ln > T).any():
        raise RuntimeError(f"narrow(): start + length exceeds dimension size ({T})")
    off = np.concatenate([np.arange(B, dtype=np.int64) * T + st, [B * T]]).astype(np.int64)
    v = tensor.reshape((B * T,) + tuple(tensor.shape[2:]))
    return jagged(v, wrap(off, dt.int64), wrap(np.ascontiguousarray(ln), dt.int64))


def to_padded_tensor(input, padding, output_size=None):
    if not isinstance(input, NestedTensor):
        raise NotImplementedError("Could not run 'aten::to_padded_tensor' with arguments from the "
                                  "'CPU' backend.")
    return _ops.to_padded_tensor(input, padding, output_size)


def masked_select(tensor, mask):
    """The elements of tensor where mask (same shape) is True, as a jagged (B, j) tensor."""
    from ..ops_index import masked_select as ms
    if tensor.shape != mask.shape:
        raise RuntimeError(f"Mask with shape {tuple(mask.shape)} is not compatible with input's "
                           f"shape {tuple(tensor.shape)}")
    if tensor.ndim < 2:
        raise RuntimeError("masked_select(): expected a tensor with a batch dim")
    lens = np.asarray(mask._data).reshape(mask.shape[0], -1).sum(1)
    off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return jagged(ms(tensor, mask), wrap(off, dt.int64))
