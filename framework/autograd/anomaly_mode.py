"""torch.autograd.detect_anomaly / set_detect_anomaly.

While enabled, every recorded node keeps the stack of the forward call that made it
(`grad_fn.metadata["traceback_"]`); during backward a node whose gradients contain NaN raises
PyTorch's RuntimeError ("Function 'DivBackward0' returned nan values in its 1th output.") when
check_nan is on, and any error raised by a node's backward is preceded by a warning showing that
forward stack. Off (the default), the engine pays one flag test per node."""
import functools
import warnings

from .._dispatch import STATE


def is_anomaly_enabled():
    return STATE.anomaly


def is_anomaly_check_nan_enabled():
    return STATE.anomaly_check_nan


def set_anomaly_enabled(enabled, check_nan=True):
    """torch.set_anomaly_enabled: switches anomaly detection on or off, without a warning."""
    for name, v in (("enabled", enabled), ("check_nan", check_nan)):
        if not isinstance(v, bool):
            raise TypeError(f"set_anomaly_enabled(): argument '{name}' (position "
                            f"{1 if name == 'enabled' else 2}) must be bool, not "
                            f"{type(v).__name__}")
    _set(enabled, check_nan)


def _set(mode, check_nan):
    STATE.anomaly = bool(mode)
    STATE.anomaly_check_nan = bool(check_nan)


class detect_anomaly:
    """Context manager (and decorator) that enables anomaly detection for its block."""

    def __init__(self, check_nan=True):
        self.prev = STATE.anomaly
        self.check_nan = check_nan
        self.prev_check_nan = STATE.anomaly_check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", stacklevel=2)

    def __enter__(self):
        _set(True, self.check_nan)

    def __exit__(self, *args):
        _set(self.prev, self.prev_check_nan)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self.__class__(self.check_nan):
                return fn(*a, **k)
        return wrapper


class set_detect_anomaly:
    """Turns anomaly detection on or off at once; as a context manager it restores the previous
    setting on exit."""

    def __init__(self, mode, check_nan=True):
        self.prev = STATE.anomaly
        self.prev_check_nan = STATE.anomaly_check_nan
        _set(mode, check_nan)

    def __enter__(self):
        pass

    def __exit__(self, *args):
        _set(self.prev, self.prev_check_nan)


def forward_trace_warning(node):
    tb = (node.metadata or {}).get("traceback_") if node.metadata is not None else None
    if tb is None:
        warnings.warn(f"Error detected in {node._name}. No forward pass information available. "
                      "Enable detect anomaly during forward pass for more information.",
                      stacklevel=2)
    else:
        warnings.warn(f"Error detected in {node._name}. Traceback of forward call that caused "
                      "the error:\n" + "".join(tb), stacklevel=2)


def check_nan(node, in_grads):
    import numpy as np
    for i, g in enumerate(in_grads):
        if g is None:
            continue
        a = g._data
        if type(a) is not np.ndarray:          # device tensors: a host copy for the check
            a = g.cpu()._data
        if a.dtype.kind in "fc" and np.isnan(a).any():
            raise RuntimeError(f"Function '{node._name}' returned nan values in its {i}th output.")
