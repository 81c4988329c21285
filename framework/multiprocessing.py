"""torch.multiprocessing: the stdlib multiprocessing, with Kiln tensors shared instead of copied.

Everything of `multiprocessing` is re-exported (Process, Queue, SimpleQueue, Pool, Manager,
get_context, set_start_method, ...). What this module adds, as PyTorch's does:

* reducers for multiprocessing's pickler (ForkingPickler): a cpu Tensor or Parameter put on a
  Queue, sent through a Pipe, or given to a spawned Process is first moved to shared memory
  (Tensor.share_memory_) and arrives as a tensor over that same memory, so writes on either
  side are seen by the other. Ordinary pickle (pickle.dumps, torch.save, copy.deepcopy) still
  copies: the reducers are registered with ForkingPickler only.
* spawn / start_processes / ProcessContext with PyTorch's error propagation
  (ProcessRaisedException carries the child's traceback, ProcessExitedException its exit code
  or signal).
* get_sharing_strategy / set_sharing_strategy / get_all_sharing_strategies.

Shared memory (what Tensor.share_memory_ allocates): an unnamed shared-memory file
(memfd_create, or a file created in /dev/shm and unlinked at once where there is no memfd)
mapped MAP_SHARED with the stdlib mmap. It has no name, so nothing is left in /dev/shm and
the resource tracker is not involved: the memory goes away when the last mapping and file
descriptor referring to it are closed, in whatever way the processes end. A fork child inherits
the mapping (writes are seen both ways); another process gets it through its file descriptor,
sent with multiprocessing's own fd passing (reduction.DupFd: inherited by a spawned child,
SCM_RIGHTS through multiprocessing's resource sharer otherwise) -- PyTorch's
"file_descriptor" strategy. As in PyTorch, the sending process must still be alive when the
receiver unpickles a tensor it put on a queue.
"""
import errno
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
import warnings
import weakref
from multiprocessing import reduction
from multiprocessing import *  # noqa: F401,F403  (the whole stdlib API)

import numpy as np

try:
    # load the resource sharer now, not half-way through in a Queue's feeder thread while
    # another thread forks (DupFd uses it); PyTorch does the same
    import multiprocessing.resource_sharer  # noqa: F401
except ImportError:     # pragma: no cover - platforms without fd passing
    pass

__all__ = ["set_sharing_strategy", "get_sharing_strategy", "get_all_sharing_strategies"]
__all__ += multiprocessing.__all__


# ---- sharing strategy -------------------------------------------------------------------------

if sys.platform in ("darwin", "win32"):
    _sharing_strategy = "file_system"
    _all_sharing_strategies = {"file_system"}
else:
    _sharing_strategy = "file_descriptor"
    _all_sharing_strategies = {"file_descriptor", "file_system"}


def set_sharing_strategy(new_strategy):
    """Set the strategy for sharing cpu tensors (one of get_all_sharing_strategies()).

    Kiln shares memory one way whatever the name (an unnamed shared-memory file whose descriptor
    is passed, see the module docstring), so the strategy is recorded for PyTorch code that sets
    and reads it; "file_system" does not create named files."""
    global _sharing_strategy
    if new_strategy not in _all_sharing_strategies:
        raise AssertionError(f"invalid sharing strategy {new_strategy!r}, "
                             f"expected one of {_all_sharing_strategies}")
    _sharing_strategy = new_strategy


def get_sharing_strategy():
    """Return the current strategy for sharing cpu tensors."""
    return _sharing_strategy


def get_all_sharing_strategies():
    """Return the set of sharing strategies supported on this system."""
    return _all_sharing_strategies


# ---- shared memory ----------------------------------------------------------------------------

class _SharedMap(mmap.mmap):
    """A MAP_SHARED mapping of an unnamed shared-memory file: the storage of shared tensors
    (their arrays' memory owner, behind numpy's memoryview). It keeps the file's descriptor
    (`_fd`, what is sent to other processes) and closes it when the mapping is freed, that is
    when the last array over it is gone. (Before Python 3.13 the stdlib mmap keeps a
    duplicate descriptor of its own.)"""
    _fd = -1

    def __del__(self, _close=os.close):
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                _close(fd)
            except OSError:
                pass


_lock = threading.RLock()       # share_memory_ moves and the receive cache
_cache = {}                     # (st_dev, st_ino) -> weakref to this process's _SharedMap


def _after_fork_in_child():
    global _lock
    _lock = threading.RLock()   # (a fork while another thread held it would leave it locked)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _fd_key(fd):
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


def _remember(mm):
    key = mm._key

    def gone(ref, key=key):
        if _cache.get(key) is ref:
            _cache.pop(key, None)
    _cache[key] = weakref.ref(mm, gone)


def _raise_fd_limit():
    """Out of file descriptors: raise this process's soft limit toward the hard one (each
    shared storage holds descriptors). False when it cannot grow."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = max(4 * soft, 4096)
        new = want if hard == resource.RLIM_INFINITY else min(hard, want)
        if new <= soft:
            return False
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        return True
    except (ImportError, ValueError, OSError):     # pragma: no cover
        return False


def _fd_call(f, *args):
    """f(*args), which opens a file descriptor; on EMFILE the limit is raised once."""
    try:
        return f(*args)
    except OSError as e:
        if e.errno != errno.EMFILE:
            raise
        if not _raise_fd_limit():
            raise RuntimeError("Too many open files: every tensor storage in shared memory keeps "
                               "file descriptors open (see framework.multiprocessing). Please "
                               "increase the limit using `ulimit -n` in the shell.") from e
    return f(*args)


def _new_map(fd, nbytes):
    if _TRACKFD:        # (Python 3.13+: no duplicate descriptor kept by the mmap)
        return _SharedMap(fd, nbytes, trackfd=False)
    return _SharedMap(fd, nbytes)       # MAP_SHARED, read/write


_TRACKFD = sys.version_info >= (3, 13)


def _map(fd, nbytes):
    """A _SharedMap of nbytes of the shared-memory file fd; it owns fd from here on."""
    try:
        key = _fd_key(fd)
        mm = _fd_call(_new_map, fd, nbytes)
    except BaseException:
        os.close(fd)
        raise
    mm._fd, mm._key = fd, key
    mm._addr = np.frombuffer(mm, np.uint8).__array_interface__["data"][0]
    return mm


def _new_fd():
    if hasattr(os, "memfd_create"):
        return os.memfd_create("kiln_shm", getattr(os, "MFD_CLOEXEC", 0))
    # no memfd (macOS): a file in shared memory, unlinked as soon as it is open
    d = "/dev/shm" if os.path.isdir("/dev/shm") else None       # pragma: no cover
    fd, path = tempfile.mkstemp(prefix="kiln_shm_", dir=d)      # pragma: no cover
    os.unlink(path)                                             # pragma: no cover
    return fd                                                   # pragma: no cover


def _alloc(nbytes):
    """nbytes (at least 1: mmap refuses 0) of new, zeroed shared memory, as a _SharedMap."""
    nbytes = max(int(nbytes), 1)
    fd = _fd_call(_new_fd)
    try:
        os.ftruncate(fd, nbytes)
    except BaseException:
        os.close(fd)
        raise
    mm = _map(fd, nbytes)
    with _lock:
        _remember(mm)   # (a tensor sent to this same process maps back onto this mapping)
    return mm


# ---- pickling through multiprocessing (ForkingPickler) ----------------------------------------

def _reduce_shared_map(mm):
    # pickled once per message however many tensors use it (pickle's memo), so one descriptor
    # travels per storage, as PyTorch sends each storage once
    return (_rebuild_shared_map, (reduction.DupFd(mm._fd), len(mm)))


def _rebuild_shared_map(df, nbytes):
    fd = df.detach()
    key = _fd_key(fd)
    with _lock:
        ref = _cache.get(key)
        mm = ref() if ref is not None else None
        if mm is not None:          # mapped here already (received before, or our own)
            os.close(fd)
            return mm
        mm = _map(fd, nbytes)
        _remember(mm)
        return mm


def _reduce_tensor(t):
    from .nn.parameter import Parameter
    from runtime.device import cpu
    if t.requires_grad and t._node is not None:
        raise RuntimeError("Cowardly refusing to serialize non-leaf tensor which requires_grad, "
                           "since autograd does not support crossing process boundaries.  If you "
                           "just want to transfer the data, call detach() on the tensor before "
                           "serializing (e.g., putting it on the queue).")
    if t._hooks:
        for h in t._hooks:
            if not hasattr(h, "__torch_unserializable__"):
                warnings.warn(f"backward hook {h!r} on tensor will not be serialized.  If this "
                              "is expected, you can decorate the function with "
                              "@torch.utils.hooks.unserializable_hook to suppress this warning",
                              stacklevel=2)
    if t._device is not cpu or type(t._data) is not np.ndarray:
        # (device memory has no cross-process handle here: Kiln's ordinary pickle, a copy)
        return t.__reduce_ex__(pickle.DEFAULT_PROTOCOL)
    from .tensor import _mem_owner
    t.share_memory_()
    a = t._data
    mm = _mem_owner(a)[1]
    off = a.__array_interface__["data"][0] - mm._addr if a.size else 0
    return (_rebuild_tensor, (isinstance(t, Parameter), mm, a.dtype, t._dtype.name, a.shape,
                              a.strides, off, t.requires_grad))


def _rebuild_tensor(is_param, mm, np_dtype, dtype_name, shape, strides, offset, requires_grad):
    from runtime import dtypes as dt
    from ._dispatch import wrap
    u8 = np.frombuffer(mm, np.uint8)
    arr = np.ndarray(shape, np_dtype, buffer=u8, offset=offset, strides=strides)
    t = wrap(arr, dt._dtype_by_name(dtype_name))
    if is_param:
        from .nn.parameter import Parameter
        return Parameter(t, requires_grad)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _init_reductions():
    from .tensor import Tensor
    from .nn.parameter import Parameter
    reduction.ForkingPickler.register(_SharedMap, _reduce_shared_map)
    reduction.ForkingPickler.register(Tensor, _reduce_tensor)
    reduction.ForkingPickler.register(Parameter, _reduce_tensor)


_init_reductions()


# ---- spawn / start_processes ------------------------------------------------------------------

class ProcessException(Exception):
    __slots__ = ["error_index", "error_pid"]

    def __init__(self, msg, error_index, error_pid):
        super().__init__(msg)
        self.msg = msg
        self.error_index = error_index
        self.error_pid = error_pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.error_pid)


class ProcessRaisedException(ProcessException):
    """Exception raised when a process failed due to an exception raised by the code."""


class ProcessExitedException(ProcessException):
    """Exception raised when a process failed due to signal or exited with a specific code."""
    __slots__ = ["exit_code"]

    def __init__(self, msg, error_index, error_pid, exit_code, signal_name=None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code = exit_code
        self.signal_name = signal_name

    def __reduce__(self):
        return (type(self), (self.msg, self.error_index, self.error_pid, self.exit_code,
                             self.signal_name))


def _set_pdeathsig(sig):
    """prctl(PR_SET_PDEATHSIG): a non-daemonic child still ends when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)   # PR_SET_PDEATHSIG = 1
    except Exception:       # pragma: no cover
        pass


def _wrap(fn, i, args, error_file):
    _set_pdeathsig(signal.SIGINT)
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass        # SIGINT: killed by the parent
    except Exception:
        import traceback
        with open(error_file, "wb") as fh:
            pickle.dump(traceback.format_exc(), fh)
        sys.exit(1)


class ProcessContext:
    def __init__(self, processes, error_files):
        self.error_files = error_files
        self.processes = processes
        self.sentinels = {process.sentinel: index for index, process in enumerate(processes)}

    def pids(self):
        return [int(process.pid) for process in self.processes]

    def _join_procs_with_timeout(self, timeout):
        end = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0, end - time.monotonic()))

    def join(self, timeout=None, grace_period=None):
        """Join the processes: True when all have exited successfully, False when some still
        run (after `timeout`). When one exited with a non-zero status the others are stopped
        (SIGTERM after `grace_period`, then SIGKILL) and ProcessRaisedException (with the
        child's traceback) or ProcessExitedException is raised for the first one that failed."""
        if len(self.sentinels) == 0:
            return True
        ready = multiprocessing.connection.wait(self.sentinels.keys(), timeout=timeout)
        error_index = None
        for sentinel in ready:
            index = self.sentinels.pop(sentinel)
            process = self.processes[index]
            process.join()
            if process.exitcode != 0:
                error_index = index
                break
        if error_index is None:
            return len(self.sentinels) == 0

        if grace_period is not None:
            self._join_procs_with_timeout(grace_period)
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        self._join_procs_with_timeout(30 if grace_period is None else grace_period)
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join()

        failed = self.processes[error_index]
        path = self.error_files[error_index]
        if not os.access(path, os.R_OK):
            exitcode = failed.exitcode
            if exitcode < 0:
                try:
                    name = signal.Signals(-exitcode).name
                except ValueError:
                    name = f"<Unknown signal {-exitcode}>"
                raise ProcessExitedException(
                    f"process {error_index:d} terminated with signal {name}",
                    error_index=error_index, error_pid=failed.pid, exit_code=exitcode,
                    signal_name=name)
            raise ProcessExitedException(
                f"process {error_index:d} terminated with exit code {exitcode:d}",
                error_index=error_index, error_pid=failed.pid, exit_code=exitcode)
        with open(path, "rb") as fh:
            original_trace = pickle.load(fh)
        try:
            os.unlink(path)     # (PyTorch leaves it in the temp dir)
        except OSError:
            pass
        msg = f"\n\n-- Process {error_index:d} terminated with the following error:\n"
        msg += original_trace
        raise ProcessRaisedException(msg, error_index, failed.pid)


class SpawnContext(ProcessContext):
    def __init__(self, processes, error_files):
        warnings.warn("SpawnContext is renamed to ProcessContext since 1.4 release.",
                      stacklevel=2)
        super().__init__(processes, error_files)


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Start nprocs processes running fn(i, *args), i = 0..nprocs-1, with the given start
    method; join=True waits for them all (raising as ProcessContext.join does), join=False
    returns the ProcessContext."""
    mp = multiprocessing.get_context(start_method)
    error_files, processes = [], []
    for i in range(nprocs):
        # a file name for the child's traceback: it exists only if the child raised
        tf = tempfile.NamedTemporaryFile(prefix="kiln-errorfile-", suffix=".pickle",
                                         delete=False)
        tf.close()
        os.unlink(tf.name)
        process = mp.Process(target=_wrap, args=(fn, i, args, tf.name), daemon=daemon)
        process.start()
        error_files.append(tf.name)
        processes.append(process)
    context = ProcessContext(processes, error_files)
    if not join:
        return context
    while not context.join():
        pass


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Spawn nprocs processes that run fn(i, *args) (the start method is always "spawn"; use
    start_processes for another). If one exits with a non-zero status the others are stopped
    and an exception with its cause is raised (with the child's traceback when it raised).
    Returns None when join is True, else the ProcessContext."""
    if start_method != "spawn":
        warnings.warn(f"This method only supports start_method=spawn (got: {start_method}).\n"
                      "To use a different start_method use:\n\t\t "
                      "torch.multiprocessing.start_processes(...)", FutureWarning, stacklevel=2)
    return start_processes(fn, args, nprocs, join, daemon, start_method="spawn")
