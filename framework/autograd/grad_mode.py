"""Grad modes: no_grad, enable_grad, set_grad_enabled, inference_mode (context managers and
decorators, with or without parentheses), is_grad_enabled."""
import functools
import inspect

from .._dispatch import STATE


class _DecoratorContextManager:
    """Base: `with mode():`, `@mode()` and (for modes without arguments) bare `@mode`.
    Each call of a decorated function enters a fresh instance, so recursion and nesting are
    safe."""

    def _clone(self):
        return self.__class__()

    def __call__(self, fn):
        if inspect.isclass(fn):
            raise RuntimeError(f"{type(self).__name__} cannot decorate a class")
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*a, **k):
                gen = fn(*a, **k)
                try:
                    with self._clone():
                        resp = gen.send(None)
                    while True:
                        try:
                            request = yield resp
                        except GeneratorExit:
                            with self._clone():
                                gen.close()
                            raise
                        except BaseException as e:
                            with self._clone():
                                resp = gen.throw(e)
                        else:
                            with self._clone():
                                resp = gen.send(request)
                except StopIteration as e:
                    return e.value
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self._clone():
                return fn(*a, **k)
        return wrapper

    def __exit__(self, *exc):
        STATE.grad_enabled = self._prev
        return False


class _NoParam(_DecoratorContextManager):
    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)           # bare @no_grad


class no_grad(_NoParam):
    """Ops inside record no graph: results do not require grad."""

    def __enter__(self):
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = False
        return None


class enable_grad(_NoParam):
    """Turns recording back on, also inside no_grad (not inside inference_mode's tensors)."""

    def __enter__(self):
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = True
        return None


class set_grad_enabled(_DecoratorContextManager):
    """set_grad_enabled(mode) takes effect when called (also as a plain function call); as a
    context manager it restores the previous mode on exit."""

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled(): argument 'mode' must be bool, not "
                            f"{type(mode).__name__}")
        self._prev = self.prev = STATE.grad_enabled
        self._mode = self.mode = mode
        STATE.grad_enabled = mode

    def __repr__(self):
        return f"{type(self).__module__}.{type(self).__qualname__}(mode={self._mode})"

    def _clone(self):
        return _SetGrad(self._mode)

    def __call__(self, fn):
        STATE.grad_enabled = self._prev    # decorating must not change the current mode
        return super().__call__(fn)

    def __enter__(self):
        return None

    def clone(self):
        return self.__class__(self._mode)


class _SetGrad(_DecoratorContextManager):
    def __init__(self, mode):
        self._mode = mode

    def __enter__(self):
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = self._mode


class inference_mode(_DecoratorContextManager):
    """Like no_grad (and what PyTorch recommends for inference). As PyTorch's InferenceMode
    guard, inference_mode(False) turns grad mode on, also inside no_grad."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):
            return cls()(mode)             # bare @inference_mode
        return super().__new__(cls)

    def __init__(self, mode=True):
        self._mode = self.mode = bool(mode) if isinstance(mode, bool) else True

    def _clone(self):
        return self.__class__(self._mode)

    def __enter__(self):
        self._prev = STATE.grad_enabled
        self._prev_inf = STATE.inference
        STATE.grad_enabled = not self._mode
        STATE.inference = self._mode
        return None

    def __exit__(self, *exc):
        STATE.grad_enabled = self._prev
        STATE.inference = self._prev_inf
        return False

    def clone(self):
        return self.__class__(self._mode)


def is_grad_enabled():
    return STATE.grad_enabled


def is_inference_mode_enabled():
    return STATE.inference


_MULTITHREADING = [True]


class set_multithreading_enabled(_DecoratorContextManager):
    """Context-manager that enables or disables multithreaded backward. Takes effect when
    called (also as a plain function call); as a context manager it restores the previous
    setting on exit. Kiln's engine always runs backward on the calling thread, so the setting
    is recorded (is_multithreading_enabled) and changes nothing else."""

    def __init__(self, mode):
        self.prev = _MULTITHREADING[0]
        _MULTITHREADING[0] = bool(mode)
        self.mode = mode

    def _clone(self):
        return self.__class__(self.mode)

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _MULTITHREADING[0] = self.prev

    def clone(self):
        return self.__class__(self.mode)


def is_multithreading_enabled():
    return _MULTITHREADING[0]


class _force_original_view_tracking(_DecoratorContextManager):
    """Context-manager that sets whether autograd always replays the chain of views (mode=True)
    to regenerate a view whose base was modified in place: its grad_fn is then the view op's
    (SelectBackward0) instead of AsStridedBackward0. Takes effect when called; restores the
    previous setting on exit."""

    def __init__(self, mode):
        from .. import _dispatch
        self.prev = _dispatch.VIEW_REPLAY
        self.mode = mode
        _dispatch.VIEW_REPLAY = bool(mode)

    def __call__(self, fn):
        from .. import _dispatch
        _dispatch.VIEW_REPLAY = self.prev      # decorating must not change the current mode
        return super().__call__(fn)

    def _clone(self):
        return self.__class__(self.mode)

    def __enter__(self):
        from .. import _dispatch
        _dispatch.VIEW_REPLAY = bool(self.mode)

    def __exit__(self, *exc):
        from .. import _dispatch
        _dispatch.VIEW_REPLAY = self.prev

    def clone(self):
        return self.__class__(self.mode)


def is_view_replay_enabled():
    from .. import _dispatch
    return _dispatch.VIEW_REPLAY
