"""Running a generated pointwise group on several threads (NumPy backend).

NumPy runs each ufunc on one thread, releasing the GIL while it loops over large arrays. A
fused group of element-wise ops over one big iteration space (an optimizer update over a
weight matrix) is split into contiguous chunks, one per thread, each running the group's ops
on its slices: every element is computed by the same ops in the same order as in one call, so
results are bit-identical. Generated programs call `run(fn, n)` for groups of at least
MIN_ELEMENTS elements (numpy_gen decides); KILN_THREADS=1 (or `threads = 1`) turns it off.
"""
import os
import threading

MIN_ELEMENTS = 1 << 17          # below this a thread hand-off costs more than it saves
_ALIGN = 64                     # chunk boundaries on multiples of 64 elements (cache lines)


def _default_threads():
    env = os.environ.get("KILN_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(os.cpu_count() or 1, 8))


threads = _default_threads()


class _Worker:
    """One pool thread and its two hand-off locks: `go` (released by the caller when `job` is
    set) and `done` (released by the thread when the chunk ran). A bare lock hand-off is the
    cheapest wake-up Python has (ThreadPoolExecutor's queue, future and condition cost about
    three times as long on a VM, where every wake-up is slow)."""
    __slots__ = ("go", "done", "job", "err")

    def __init__(self):
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.job = self.err = None
        threading.Thread(target=self._loop, name="kiln-pointwise", daemon=True).start()

    def _loop(self):
        go, done = self.go, self.done
        while True:
            go.acquire()
            job = self.job
            if job is None:                 # stop (set_threads made the pool smaller)
                return
            fn, lo, hi = job
            try:
                fn(lo, hi)
            except BaseException as e:      # re-raised by the caller
                self.err = e
            self.job = None
            done.release()

    def stop(self):
        self.job = None
        self.go.release()


_workers = []
_busy = threading.Lock()        # one run at a time uses the pool; others run serially


def _forget_pool():
    """In a forked child the pool's threads do not exist: start new ones on first use."""
    global _workers, _busy
    _workers, _busy = [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def set_threads(n):
    """Chunks per run from now on (torch.set_num_threads); surplus pool threads stop."""
    global threads
    with _busy:
        threads = n
        while len(_workers) > max(0, n - 1):
            _workers.pop().stop()


def run(fn, n):
    """fn(lo, hi) over [0, n) in `threads` contiguous chunks: the calling thread runs the
    first, pool threads the others; returns when all are done (a chunk's exception is
    re-raised here). A run while another is using the pool (another Python thread, or a
    chunk itself) computes all of [0, n) on its own thread: same ops, same results."""
    k = threads
    if k <= 1 or n < MIN_ELEMENTS or not _busy.acquire(False):
        fn(0, n)
        return
    try:
        step = -(-n // k)
        step = -(-step // _ALIGN) * _ALIGN
        bounds = [(lo, min(lo + step, n)) for lo in range(step, n, step)]
        while len(_workers) < len(bounds):
            _workers.append(_Worker())
        ws = _workers[:len(bounds)]
        for w, (lo, hi) in zip(ws, bounds):
            w.job = (fn, lo, hi)
            w.go.release()
        try:
            fn(0, min(step, n))
        finally:
            errs = []
            for w in ws:                    # every chunk finished before anything returns
                w.done.acquire()
                if w.err is not None:
                    errs.append(w.err)
                    w.err = None
        if errs:
            raise errs[0]
    finally:
        _busy.release()
