"""Small top-level torch functions: is_inference, the warn-once switch, set_default_tensor_type."""
import warnings

from runtime import dtypes as dt

_WARN_ALWAYS = [False]
_WARNED = set()


def set_warn_always(b):
    """torch.set_warn_always: warnings PyTorch gives once per process (TORCH_WARN_ONCE) are
    given every time while on."""
    if not isinstance(b, bool):
        raise RuntimeError(f"setWarnOnlyOnce expects a bool, but got {type(b).__name__}")
    _WARN_ALWAYS[0] = b


def is_warn_always_enabled():
    return _WARN_ALWAYS[0]


def warn_once(key, msg, category=UserWarning, stacklevel=2, seen=_WARNED):
    """TORCH_WARN_ONCE: one warning per key and process, unless set_warn_always(True)."""
    if _WARN_ALWAYS[0] or key not in seen:
        seen.add(key)
        warnings.warn(msg, category, stacklevel=stacklevel + 1)


_KILN_DIRS = None


def user_stacklevel():
    """The stacklevel, for a warnings.warn in the caller, of the first frame outside Kiln:
    where a warning from PyTorch's C++ points, whichever Python wrapper led there."""
    global _KILN_DIRS
    import os
    import sys
    if _KILN_DIRS is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        _KILN_DIRS = tuple(os.path.join(root, d) + os.sep for d in ("framework", "compiler",
                                                                     "runtime"))
    f, level = sys._getframe(2), 2
    while f is not None and f.f_code.co_filename.startswith(_KILN_DIRS):
        f, level = f.f_back, level + 1
    return level


def is_inference(input):
    from .tensor import Tensor
    if not isinstance(input, Tensor):
        raise TypeError(f"is_inference(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    return input.is_inference()


def set_default_tensor_type(t):
    """Deprecated in PyTorch: sets the default dtype from a floating tensor type (the class,
    e.g. torch.DoubleTensor, or its name). The cuda types (which also moved the default
    device) are not supported: use set_default_device."""
    from .tensor import _TypedMeta
    warn_once("set_default_tensor_type",
              "torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
              "torch.set_default_dtype() and torch.set_default_device() as alternatives.")
    if isinstance(t, str):
        names = {f"torch.{dt.tname(d)}Tensor": d for d in dt.ALL}
        if t.startswith("torch.cuda."):
            raise TypeError(f"set_default_tensor_type({t!r}): cuda tensor types are not "
                            "supported by Kiln; use torch.set_default_device('cuda') and "
                            "torch.set_default_dtype()")
        if t not in names:
            raise TypeError(f"invalid type: '{t}'")
        d = names[t]
    elif isinstance(t, _TypedMeta):
        d = t.dtype
    else:
        raise TypeError("invalid type object: only floating-point types are supported as the "
                        "default type")
    if d not in (dt.float16, dt.bfloat16, dt.float32, dt.float64):
        raise TypeError("only floating-point types are supported as the default type")
    dt.set_default_dtype(d)


# ---- Tensor.resize / resize_as (deprecated out-of-place forms) and Tensor.as_subclass ------

def resize(self, *sizes):
    """Deprecated in PyTorch: a view of the (contiguous) tensor with the same number of
    elements in a new shape; unlike resize_ it cannot grow or shrink."""
    warnings.warn("non-inplace resize is deprecated", UserWarning, stacklevel=2)
    return _resize_view(self, sizes)


def resize_as(self, tensor):
    warnings.warn("non-inplace resize_as is deprecated", UserWarning, stacklevel=2)
    return _resize_view(self, tuple(tensor.size()))


def _resize_view(t, sizes):
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    n = 1
    for s in sizes:
        n *= s
    if t.numel() != n:
        raise RuntimeError(f"requested resize to {'x'.join(map(str, sizes))} ({n} elements in "
                           f"total), but the given tensor has a size of "
                           f"{'x'.join(map(str, t.size()))} ({t.numel()} elements). autograd's "
                           "resize can only change the shape of a given tensor, while "
                           "preserving the number of elements. ")
    return t.contiguous().view(*sizes)


def as_subclass(self, cls):
    """The tensor as an instance of `cls` (a Tensor subclass), sharing its data and autograd
    history (an alias: grad_fn AliasBackward0 where self has history, as PyTorch)."""
    from .tensor import Tensor
    from .ops_shape import view_as
    from ._dispatch import rename
    if not (isinstance(cls, type) and issubclass(cls, Tensor)):
        raise TypeError("Creating a Tensor subclass from a class that does not inherit from "
                        "Tensor is not possible. Make sure your class inherits from Tensor.")
    out = view_as(self, self)
    if out.grad_fn is not None:
        out = rename(out, "AliasBackward0")
    out.__class__ = cls
    return out


def make_subclass(cls, data, require_grad=False, **kwargs):
    """Tensor._make_subclass: a cls instance over data's memory, detached from its history."""
    out = data.detach()
    out.__class__ = cls
    if require_grad:
        out.requires_grad_(True)
    return out


def _assert(condition, message):
    """torch._assert: Python's assert as a function, so fx tracing can record it."""
    if not condition:
        raise AssertionError(message)
