"""torch.sym_*: PyTorch's SymInt-aware helpers. Kiln's compile() traces with concrete sizes
(no symbolic ints), so these have their plain-Python meaning, as in torch on ints, floats,
bools and 0-d tensors. Also set_flush_denormal."""
import builtins
import math

import numpy as np

_NUMBERS = (np.integer, np.floating, builtins.int, builtins.float)
_FLOATS = (np.floating, builtins.float)


def sym_int(a):
    """int(a) (a float truncates toward zero)."""
    return builtins.int(a)


def sym_float(a):
    return builtins.float(a)


def sym_not(a):
    """not a (a tensor must hold one value)."""
    return not a


def _check_number(a):
    if not isinstance(a, _NUMBERS):
        raise AssertionError(f"expected {_NUMBERS}, got {type(a)}")


def sym_max(a, b):
    """max(a, b) of ints/floats, a float when either is one (unlike builtins.max)."""
    _check_number(a)
    _check_number(b)
    r = builtins.max(a, b)
    return builtins.float(r) if isinstance(a, _FLOATS) or isinstance(b, _FLOATS) else r


def sym_min(a, b):
    """min(a, b) of ints/floats, a float when either is one."""
    _check_number(a)
    _check_number(b)
    r = builtins.min(a, b)
    return builtins.float(r) if isinstance(a, _FLOATS) or isinstance(b, _FLOATS) else r


def sym_sqrt(a):
    """math.sqrt(a) (a float; negative input raises ValueError)."""
    return math.sqrt(a)


def sym_sum(*args):
    """sum of the arguments; sym_sum([a, b, c]) and sym_sum(a, b, c) both work."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = args[0]
    return builtins.sum(args)


def sym_ite(b, t, f):
    """t if b else f; b must be a bool and t, f of one type."""
    if not isinstance(b, builtins.bool):
        raise AssertionError(f"expected SymBool or bool, got {type(b)}")
    if type(t) is not type(f):
        raise AssertionError(f"type mismatch: {type(t)} vs {type(f)}")
    return t if b else f


def set_flush_denormal(mode):
    """Flush denormal floats to zero on the CPU: NumPy cannot (it keeps the FPU's default
    mode), so this returns False, PyTorch's answer where flushing is unsupported, and changes
    nothing."""
    if not isinstance(mode, builtins.bool):
        raise RuntimeError(f"flush_denormal expects a bool, but got {type(mode).__name__}")
    return False
