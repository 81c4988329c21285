"""torch.futures: Future, collect_all, wait_all.

Kiln runs no work in the background, so a Future is completed by set_result/set_exception, or,
when it was made for deferred work (jit.fork's, a collective's Work.get_future, DDP comm hooks),
by running that work on the first wait(). then() and add_done_callback() callbacks run when
the future completes, in the order they were added, as PyTorch's."""
import warnings

__all__ = ["Future", "collect_all", "wait_all"]

_TWICE = ("Attempting to mark a completed Future as complete again. Note that a Future can only "
          "be marked completed once.")


class Future:
    def __init__(self, *, devices=None):
        self._done = False
        self._value = self._exc = self._run = None
        self._callbacks = []

    @classmethod
    def _deferred(cls, run):
        """A future whose value is run(), computed by the first wait()."""
        f = cls()
        f._run = run
        return f

    def __repr__(self):
        return f"<torch.jit.Future object at {hex(id(self))}>"

    def done(self):
        return self._done

    def set_result(self, result):
        if self._done:
            raise RuntimeError(_TWICE)
        self._value, self._done, self._run = result, True, None
        self._fire()

    def set_exception(self, result):
        if self._done:
            raise RuntimeError(_TWICE)
        self._exc, self._done, self._run = result, True, None
        self._fire()

    def _fire(self):
        cbs, self._callbacks = self._callbacks, []
        for cb in cbs:
            cb(self)

    def wait(self):
        if not self._done and self._run is not None:
            run, self._run = self._run, None
            try:
                v = run()
            except Exception as e:          # (the error surfaces from wait(), as PyTorch's)
                if not self._done:
                    self.set_exception(e)
            else:
                if not self._done:          # (a then() child is completed by its callback)
                    self.set_result(v)
        if not self._done:
            raise RuntimeError("Future.wait(): nothing will complete this future (Kiln runs no "
                               "work in the background: call set_result or set_exception)")
        if self._exc is not None:
            raise self._exc
        return self._value

    def value(self):
        if not self._done:
            raise RuntimeError("Future.value() called on a future that is not completed yet "
                               "(use wait())")
        if self._exc is not None:
            raise self._exc
        return self._value

    def then(self, callback):
        """A new future holding callback(self) once self completes; an error in the callback
        completes it with PyTorch's RuntimeError."""
        child = Future._deferred(self.wait) if self._run is not None else Future()

        def run(fut):
            try:
                r = callback(fut)
            except Exception as e:
                child.set_exception(RuntimeError("Got the following error when running the "
                                                 f"callback: {type(e).__name__}: {e}"))
            else:
                child.set_result(r)
        self._on_done(run)
        return child

    def add_done_callback(self, callback):
        def guarded(fut):
            try:
                callback(fut)
            except Exception as e:      # (PyTorch logs such an error and goes on)
                warnings.warn(f"Got the following error when running the callback: "
                              f"{type(e).__name__}: {e}", RuntimeWarning)
        self._on_done(guarded)

    def _on_done(self, cb):
        if self._done:
            cb(self)
        else:
            self._callbacks.append(cb)


def collect_all(futures):
    """A future completed with the list of `futures` once every one of them is."""
    futures = list(futures)

    def settle_all():
        for f in futures:
            _settle(f)
        return futures
    # (deferred inputs are run by waiting on the result; plain ones complete it themselves)
    out = Future._deferred(settle_all) if any(f._run is not None for f in futures) else Future()
    left = [len(futures)]

    def one(_):
        left[0] -= 1
        if left[0] == 0 and not out.done():
            out.set_result(futures)
    for f in futures:
        f._on_done(one)
    if not futures:
        out.set_result([])
    return out


def _settle(f):
    try:
        f.wait()
    except Exception:       # (collect_all completes; the error is the future's own)
        pass
    return f


def wait_all(futures):
    """The values of all `futures`, waiting for each; the first error is raised."""
    return [f.wait() for f in futures]
