"""PackedSequence, pad_sequence, pack_padded_sequence, pad_packed_sequence, pack_sequence."""
from collections import namedtuple

import numpy as np

from runtime import dtypes as dt
from ...tensor import Tensor
from ..._dispatch import wrap, wrap_like, rename
from ... import ops_shape as S, ops_index as I, creation as C

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence",
           "pack_sequence", "unpad_sequence", "unpack_sequence", "invert_permutation"]


class PackedSequence(namedtuple("PackedSequence",
                                ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        # the index tensors follow data's device only, never its dtype (as in PyTorch)
        kw = {k: v for k, v in kwargs.items() if k not in ("device", "dtype")}
        move = (lambda t: None if t is None else t.to(data.device, **kw))
        return type(self)(data, self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))

    def _to_device(self, device, args, kwargs):
        if args or kwargs.get("device") is not None:
            return self.to(*args, **kwargs)
        return self.to(*args, **dict(kwargs, device=device))

    def cuda(self, *args, **kwargs):
        return self._to_device("cuda", args, kwargs)

    def cpu(self, *args, **kwargs):
        return self._to_device("cpu", args, kwargs)

    def pin_memory(self):
        pin = (lambda t: None if t is None else t.pin_memory())
        return type(self)(self.data.pin_memory(), self.batch_sizes, pin(self.sorted_indices),
                          pin(self.unsorted_indices))

    def double(self):
        return self.to(dtype=dt.float64)

    def float(self):
        return self.to(dtype=dt.float32)

    def half(self):
        return self.to(dtype=dt.float16)

    def long(self):
        return self.to(dtype=dt.int64)

    def int(self):
        return self.to(dtype=dt.int32)

    def short(self):
        return self.to(dtype=dt.int16)

    def char(self):
        return self.to(dtype=dt.int8)

    def byte(self):
        return self.to(dtype=dt.uint8)

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def is_pinned(self):
        return self.data.is_pinned()


def invert_permutation(permutation):
    if permutation is None:
        return None
    p = permutation._data
    out = np.empty_like(p)
    out[p] = np.arange(p.size)
    return wrap(out, dt.int64)


def _lengths_np(lengths):
    # PyTorch converts lengths (float ones too) to int64 first, then wants them 1-D
    ln = lengths._data.astype(np.int64) if isinstance(lengths, Tensor) else \
        np.asarray(lengths).astype(np.int64)
    if ln.ndim != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got "
                           f"{ln.ndim}D cpu Long tensor")
    return ln


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if sequences[0].ndim == 0:
        raise RuntimeError("ArrayRef: invalid slice, N = 1; size = 0")
    trailing = tuple(sequences[0].shape[1:])
    max_len = max(s.shape[0] for s in sequences)
    out = []
    for s in sequences:
        if tuple(s.shape[1:]) != trailing and s.ndim == len(trailing) + 1:
            # PyTorch copies each sequence into its slot: broadcasting, or copy_'s error
            dst = (s.shape[0],) + trailing
            for i in range(len(dst) - 1, 0, -1):
                if s.shape[i] not in (dst[i], 1):
                    raise RuntimeError(f"The size of tensor a ({dst[i]}) must match the size of "
                                       f"tensor b ({s.shape[i]}) at non-singleton dimension {i}")
            s = S.expand(s, dst)
        n = max_len - s.shape[0]
        if n:
            pad = C.full((n,) + tuple(s.shape[1:]), padding_value, dtype=s.dtype)
            s = S.cat([s, pad] if padding_side == "right" else [pad, s])
        out.append(s)
    # (torch copies each sequence into a filled tensor: its grad_fn is CopySlices)
    return rename(S.stack(out, 1 if not batch_first else 0), "CopySlices")


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    ln = _lengths_np(lengths)
    if ln.size and ln.min() <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element "
                           "in 'lengths' that is <= 0")
    b = 0 if batch_first else 1
    if ln.size != input.shape[b]:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {ln.size} "
                           f"(batch_size={input.shape[b]})")
    if enforce_sorted:
        if np.any(np.diff(ln) > 0):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                               "pack_padded_sequence and/or pack_sequence to sidestep this "
                               "requirement if you do not need ONNX exportability.")
        sorted_indices = None
    else:
        order = np.argsort(-ln, kind="stable")
        sorted_indices = wrap_like(order.astype(np.int64), dt.int64, input)
        ln = ln[order]
        input = I.index_select(input, b, sorted_indices)
    if batch_first:
        input = S.transpose(input, 0, 1)
    if ln.max() > input.shape[0]:
        raise RuntimeError(f"pack_padded_sequence: a length {int(ln.max())} exceeds the padded "
                           f"sequence length {input.shape[0]}")
    batch_sizes = np.array([(ln > t).sum() for t in range(int(ln.max()))], np.int64)
    data = S.cat([S.narrow(input[t], 0, 0, int(bs)) for t, bs in enumerate(batch_sizes)])
    rename(data, "PackPaddedSequenceBackward0")
    return PackedSequence(data, wrap(batch_sizes, dt.int64), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    data, bsz = sequence.data, sequence.batch_sizes._data
    max_b = int(bsz[0])
    max_len = bsz.size
    if total_length is not None:
        if total_length < max_len:
            raise ValueError("Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {max_len}")
    else:
        total_length = max_len
    steps, off = [], 0
    trailing = tuple(data.shape[1:])
    for bs in bsz:
        step = S.narrow(data, 0, off, int(bs))
        off += int(bs)
        if bs < max_b:
            step = S.cat([step, C.full((max_b - int(bs),) + trailing, padding_value,
                                       dtype=data.dtype)])
        steps.append(step)
    for _ in range(total_length - max_len):
        steps.append(C.full((max_b,) + trailing, padding_value, dtype=data.dtype))
    out = rename(S.stack(steps, 0), "CopySlices")      # (as torch's filled-then-copied output)
    lengths = np.array([(bsz > i).sum() for i in range(max_b)], np.int64)
    if batch_first:
        out = S.transpose(out, 0, 1)
    if sequence.unsorted_indices is not None:
        out = I.index_select(out, 0 if batch_first else 1, sequence.unsorted_indices)
        lengths = lengths[sequence.unsorted_indices._data]
    return out, wrap(lengths, dt.int64)


def pack_sequence(sequences, enforce_sorted=True):
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    x = padded_sequences if batch_first else S.transpose(padded_sequences, 0, 1)
    idx = np.arange(x.shape[1])
    # a boolean-mask index, as torch: each sequence is a copy (grad_fn IndexBackward0)
    return [x[i][wrap_like(idx < int(n), dt.bool_, x)] for i, n in enumerate(_lengths_np(lengths))]


def unpack_sequence(packed_sequences):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
