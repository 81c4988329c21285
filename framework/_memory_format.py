"""Memory formats: torch.contiguous_format, preserve_format, channels_last, channels_last_3d.

A memory format names the order of a tensor's dimensions in memory. Values never depend on it;
stride(), is_contiguous(memory_format=...) and the layout of the copies that contiguous(), to(),
clone(), empty() and the *_like factories make do, as in PyTorch. channels_last keeps a 4-d
NCHW tensor's channels innermost (NHWC in memory), channels_last_3d a 5-d NCDHW tensor's.
"""
import numpy as np


class memory_format:  # noqa: N801  (torch.memory_format)
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"

    def __reduce__(self):           # pickles as the module attribute, one object per format
        return self.name


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")

# per channels-last format: its rank and the dims from innermost to outermost in memory
_ORDER = {channels_last: (4, (1, 3, 2, 0)), channels_last_3d: (5, (1, 4, 3, 2, 0))}


def is_channels_last(fmt):
    return fmt in _ORDER


def check_rank(op, ndim, fmt):
    """PyTorch's error for a channels-last format on a tensor of another rank (its message names
    no op, whichever op it comes from)."""
    rank = _ORDER[fmt][0]
    if ndim != rank:
        raise RuntimeError(f"required rank {rank} tensor to use {fmt.name} format")


def check(op, fmt):
    if fmt is not None and not isinstance(fmt, memory_format):
        raise TypeError(f"{op}(): argument 'memory_format' must be torch.memory_format, not "
                        f"{type(fmt).__name__}")


def follows(shape, strides, fmt):
    """Do element `strides` lay out `shape` in channels-last format fmt? (c10's
    is_channels_last_contiguous: size-1 dims may have any stride.)"""
    rank, order = _ORDER[fmt]
    if len(shape) != rank:
        return False
    expect = 1
    for d in order:
        if shape[d] != 1:
            if strides[d] != expect:
                return False
            expect *= shape[d]
    return True


def laid_out(a, fmt):
    """A new NumPy array holding a's values in channels-last format fmt."""
    outer_first = tuple(reversed(_ORDER[fmt][1]))          # (0, 2, 3, 1) for channels_last
    buf = np.empty(tuple(a.shape[d] for d in outer_first), a.dtype)
    out = buf.transpose(tuple(np.argsort(outer_first)))
    out[...] = a
    return out
