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
from concurrent.futures import ThreadPoolExecutor

MIN_ELEMENTS = 1 << 17          # below this a thread hand-off costs more than it saves
_ALIGN = 64                     # chunk boundaries on multiples of 64 elements (cache lines)


def _default_threads():
    env = os.environ.get("KILN_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(os.cpu_count() or 1, 8))


threads = _default_threads()
_pool = None
_lock = threading.Lock()


def _forget_pool():
    """In a forked child the pool's threads do not exist: start a new pool on first use."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def set_threads(n):
    """Chunks per run from now on (torch.set_num_threads); the pool is rebuilt for n."""
    global threads, _pool
    with _lock:
        if n != threads:
            threads = n
            if _pool is not None:
                _pool.shutdown(wait=False)
                _pool = None


def _executor():
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=threads - 1,
                                           thread_name_prefix="kiln-pointwise")
    return _pool


def run(fn, n):
    """fn(lo, hi) over [0, n) in `threads` contiguous chunks: the calling thread runs the
    first, pool threads the others; returns when all are done (a chunk's exception is
    re-raised here)."""
    k = threads
    if k <= 1 or n < MIN_ELEMENTS:
        fn(0, n)
        return
    step = -(-n // k)
    step = -(-step // _ALIGN) * _ALIGN
    bounds = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
    futures = [_executor().submit(fn, lo, hi) for lo, hi in bounds[1:]]
    try:
        fn(*bounds[0])
    finally:
        for f in futures:
            f.result()
