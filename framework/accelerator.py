"""torch.accelerator: the device-agnostic front of framework.cuda, Kiln's one accelerator.

PyTorch's current_accelerator() names the accelerator the build was compiled for. Kiln decides
at run time (CuPy finds a GPU, or KILN_DEVICE=interpret), so its accelerator is 'cuda' exactly
when framework.cuda.is_available() is True, else None, as in a cpu-only PyTorch build; then
every query that needs a device raises RuntimeError. Under KILN_DEVICE=interpret it is
device('cuda') too: framework.cuda.is_available() says True there and 'cuda' maps to the
interpret device, so the tutorials' `torch.accelerator.current_accelerator().type` picks the
same path as their `torch.cuda.is_available()` form. Tensors there report device 'interpret',
so that type is accepted wherever a device of the accelerator is expected.
"""
import warnings

from runtime.device import Device, interpret_selected
from . import cuda as _cuda

__all__ = ["current_accelerator", "current_device_idx", "current_device_index", "current_stream",
           "device_count", "device_index", "empty_cache", "is_available", "max_memory_allocated",
           "max_memory_reserved", "memory_allocated", "memory_reserved", "memory_stats",
           "reset_accumulated_memory_stats", "reset_peak_memory_stats", "set_device_idx",
           "set_device_index", "set_stream", "synchronize"]

_NONE = "Cannot access accelerator device when none is available."


def is_available():
    return _cuda.is_available()


def current_accelerator(check_available=False):
    # check_available changes nothing: the accelerator is only named when it is available
    return Device("cuda") if _cuda.is_available() else None


def device_count():
    return _cuda.device_count() if _cuda.is_available() else 0


def _need():
    if not _cuda.is_available():
        raise RuntimeError(_NONE)


def _index(device, optional):
    """PyTorch's accelerator._utils._get_device_index."""
    if isinstance(device, int) and not isinstance(device, bool):
        return device
    if isinstance(device, str):
        device = Device(device)
    idx = None
    if isinstance(device, Device):
        acc = current_accelerator()
        if acc is None:
            raise RuntimeError("Accelerator expected")
        ok = ("cuda", "interpret") if interpret_selected() else ("cuda",)
        if device.type not in ok:
            raise ValueError(f"{device.type} doesn't match the current accelerator {acc}.")
        idx = device.index
    elif device is not None:
        raise TypeError(f"expected a torch.device, str or int, got {type(device).__name__}")
    if idx is None:
        if not optional:
            raise ValueError(f"Expected a torch.device with a specified index or an integer, "
                             f"but got:{device}")
        return current_device_index()
    return idx


def _check_index(i):
    n = device_count()
    if not 0 <= i < n:
        raise RuntimeError(f"device index {i} is out of range: {n} accelerator device(s)")


def current_device_index():
    _need()
    return _cuda.current_device()


def set_device_index(device, /):
    """A negative index is a no-op, as in PyTorch."""
    i = _index(device, optional=False)
    _need()
    if i < 0:
        return
    _check_index(i)
    _cuda.set_device(i)


def current_device_idx():
    warnings.warn("Use `current_device_index` instead.", FutureWarning, stacklevel=2)
    return current_device_index()


def set_device_idx(device, /):
    warnings.warn("Use `set_device_index` instead.", FutureWarning, stacklevel=2)
    return set_device_index(device)


class device_index:  # noqa: N801  (torch's name)
    """Makes device index i current inside the block; None switches nothing."""

    def __init__(self, device, /):
        self.idx = device
        self.prev_idx = -1

    def __enter__(self):
        if self.idx is not None:
            self.prev_idx = current_device_index()
            set_device_index(self.idx)

    def __exit__(self, *exc):
        if self.idx is not None and self.prev_idx >= 0:
            set_device_index(self.prev_idx)
        return False


def synchronize(device=None, /):
    _need()
    i = _index(device, optional=True)
    _check_index(i)
    _cuda.synchronize(i)


def current_stream(device=None, /):
    """The stream Kiln launches on (a torch.cuda.Stream; framework._streams)."""
    _need()
    i = _index(device, optional=True)
    _check_index(i)
    return _cuda.current_stream(i)


def set_stream(stream, /):
    """Make `stream` (one of the accelerator's) current on its device."""
    _need()
    ok = ("cuda", "interpret")
    if not hasattr(stream, "device") or stream.device.type not in ok:
        raise ValueError(f"set_stream: {stream!r} is not a stream of the current accelerator "
                         f"{current_accelerator()}.")
    _cuda.set_stream(stream)


# ---- memory: framework.cuda's figures (framework._cuda_memory keeps them) ----------------------

def empty_cache():
    _need()
    _cuda.empty_cache()


def memory_allocated(device_index=None, /):
    _index(device_index, optional=True)
    return _cuda.memory_allocated()


def max_memory_allocated(device_index=None, /):
    _index(device_index, optional=True)
    return _cuda.max_memory_allocated()


def memory_reserved(device_index=None, /):
    _index(device_index, optional=True)
    return _cuda.memory_reserved()


def max_memory_reserved(device_index=None, /):
    _index(device_index, optional=True)
    return _cuda.max_memory_reserved()


def memory_stats(device_index=None, /):
    _index(device_index, optional=True)
    return _cuda.memory_stats()


def reset_peak_memory_stats(device_index=None, /):
    _index(device_index, optional=True)
    _cuda.reset_peak_memory_stats()


def reset_accumulated_memory_stats(device_index=None, /):
    _index(device_index, optional=True)
    _cuda.reset_accumulated_memory_stats()
