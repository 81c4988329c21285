"""Devices: where a tensor's buffer lives and how its kernels run.

cpu        NumPy arrays are the storage (views share memory like PyTorch).
interpret  host memory (runtime.interpret.InterpretArray); every kernel runs through Triton's
           interpreter. KILN_DEVICE=interpret maps 'cuda' requests here, so GPU code runs in CI.
cuda       device memory from CuPy's caching pool (runtime.cuda); needs a GPU.
"""
import os


class Device:
    __slots__ = ("type", "index")
    _cache = {}

    def __new__(cls, type, index=None):
        if isinstance(type, Device):
            return type
        if index is None and isinstance(type, str) and ":" in type:
            type, _, idx = type.partition(":")
            index = int(idx)
        if isinstance(type, int):
            type, index = "cuda", type
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string or Device, got {type!r}")
        if type not in ("cpu", "cuda", "interpret", "meta"):
            raise RuntimeError(f"Expected one of cpu, cuda, interpret, meta device type at start of "
                               f"device string: {type}")
        key = (type, index)
        d = cls._cache.get(key)
        if d is None:
            d = object.__new__(cls)
            d.type, d.index = type, index
            cls._cache[key] = d
        return d

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            other = Device(other)
        if not isinstance(other, Device):
            return NotImplemented
        return self.type == other.type and (self.index == other.index or
                                            self.index is None or other.index is None)

    def __hash__(self):
        return hash(self.type)

    def __reduce__(self):
        return (Device, (self.type, self.index))

    # `with torch.device("interpret"):` makes it the default device inside the block, as
    # torch.device's context manager does (nested blocks restore the outer default)
    def __enter__(self):
        _ENTERED.append(_DEFAULT[0])
        set_default_device(self)
        return self

    def __exit__(self, *exc):
        _DEFAULT[0] = _ENTERED.pop()
        return False


cpu = Device("cpu")
# torch.set_default_device: the device factory functions (tensor, zeros, randn, arange, ...)
# use when called without device=. One slot, so canonical(None) stays one lookup.
_DEFAULT = [cpu]
_ENTERED = []


def set_default_device(device):
    """torch.set_default_device: None restores cpu. The device is checked (an unavailable
    'cuda' raises here, not at the next factory call)."""
    _DEFAULT[0] = cpu if device is None else canonical(device)


def get_default_device():
    """torch.get_default_device: the device factory functions use when none is given."""
    return _DEFAULT[0]


def interpret_selected():
    """KILN_DEVICE=interpret makes 'cuda' requests map to the interpreter device."""
    return os.environ.get("KILN_DEVICE", "") == "interpret"


def canonical(dev):
    """The Device a user's device argument names, checked for availability; None is the
    default device (torch.set_default_device)."""
    if dev is None:
        return _DEFAULT[0]
    d = Device(dev) if not isinstance(dev, Device) else dev
    if d.type == "cpu":
        return cpu
    if d.type == "cuda" and interpret_selected():
        d = Device("interpret")
    if d.type in ("cuda", "interpret"):
        from . import backends
        return backends.require(d)
    return d
