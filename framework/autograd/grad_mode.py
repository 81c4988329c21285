"""Grad modes: no_grad, enable_grad, set_grad_enabled, inference_mode (context managers and
decorators), is_grad_enabled."""
import functools

from .._dispatch import STATE


class _Mode:
    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self.__class__(*self._args):
                return fn(*a, **k)
        return wrapper

    def __enter__(self):
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = self._target()
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self._prev
        return False


class no_grad(_Mode):
    _args = ()

    def __init__(self):
        pass

    def _target(self):
        return False


class enable_grad(_Mode):
    _args = ()

    def __init__(self):
        pass

    def _target(self):
        return True


class set_grad_enabled(_Mode):
    def __init__(self, mode):
        self._args = (mode,)
        self._mode = bool(mode)
        # like torch, calling it as a function takes effect at once
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = self._mode

    def _target(self):
        return self._mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self._prev
        return False


class inference_mode(_Mode):
    def __init__(self, mode=True):
        self._args = (mode,)
        self._mode = mode

    def _target(self):
        return not self._mode

    def __call__(self, fn=None):
        if isinstance(fn, bool):
            return inference_mode(fn)
        return super().__call__(fn)


def is_grad_enabled():
    return STATE.grad_enabled


def is_inference_mode_enabled():
    return False
