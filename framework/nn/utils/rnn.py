"""PackedSequence, pad_sequence, pack_padded_sequence, pad_packed_sequence, pack_sequence."""
from collections import namedtuple

import numpy as np

from runtime import dtypes as dt
from ...tensor import Tensor
from ..._dispatch import wrap, wrap_like
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
        return self if data is self.data else type(self)(data, self.batch_sizes,
                                                          self.sorted_indices,
                                                          self.unsorted_indices)

    @property
    def is_cuda(self):
        return self.data.is_cuda


def invert_permutation(permutation):
    if permutation is None:
        return None
    p = permutation._data
    out = np.empty_like(p)
    out[p] = np.arange(p.size)
    return wrap(out, dt.int64)


def _lengths_np(lengths):
    if isinstance(lengths, Tensor):
        if lengths.ndim != 1 or lengths.dtype.is_floating_point:
            raise RuntimeError("'lengths' argument should be a 1D CPU int64 tensor, but got "
                               f"{lengths.ndim}D {lengths.device} {lengths.dtype} tensor")
        return lengths._data.astype(np.int64)
    return np.asarray(list(lengths), np.int64)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    max_len = max(s.shape[0] for s in sequences)
    out = []
    for s in sequences:
        n = max_len - s.shape[0]
        if n:
            pad = C.full((n,) + tuple(s.shape[1:]), padding_value, dtype=s.dtype)
            s = S.cat([s, pad] if padding_side == "right" else [pad, s])
        out.append(s)
    return S.stack(out, 1 if not batch_first else 0)


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
    out = S.stack(steps, 0)
    lengths = np.array([(bsz > i).sum() for i in range(max_b)], np.int64)
    if sequence.unsorted_indices is not None:
        out = I.index_select(out, 1, sequence.unsorted_indices)
        lengths = lengths[sequence.unsorted_indices._data]
    if batch_first:
        out = S.transpose(out, 0, 1)
    return out, wrap(lengths, dt.int64)


def pack_sequence(sequences, enforce_sorted=True):
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    x = padded_sequences if batch_first else S.transpose(padded_sequences, 0, 1)
    return [S.narrow(x[i], 0, 0, int(n)) for i, n in enumerate(_lengths_np(lengths))]


def unpack_sequence(packed_sequences):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
