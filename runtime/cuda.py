"""The cuda device: device memory from CuPy's caching memory pool, host<->device copies, the
current stream, and the buffer objects Triton launches read. No PyTorch needed.

A cuda tensor's storage is a cupy.ndarray; views of it are cupy.ndarrays over the same
allocation (shape, element strides and a byte offset), so views cost no copy. CuPy is
imported on first use: a machine without it (or without a GPU) reports zero devices.
"""
import ctypes

import numpy as np

_cp = None
_count = None
_stream_hooked = False


def _cupy():
    global _cp
    if _cp is None:
        import cupy
        cupy.cuda.set_allocator(oom_checked(cupy.get_default_memory_pool().malloc))
        _cp = cupy
    return _cp


class OutOfMemoryError(RuntimeError):
    """torch.OutOfMemoryError (torch.cuda.OutOfMemoryError is the same class): a device
    allocation failed even after the pool freed its cache. A RuntimeError, as PyTorch's."""
    __module__ = "torch"


def format_size(n):
    """Bytes as PyTorch's allocator messages write them."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} bytes"


def oom_message(size, index, total, free, allocated, reserved):
    return (f"CUDA out of memory. Tried to allocate {format_size(size)}. GPU {index} has a total "
            f"capacity of {format_size(total)} of which {format_size(free)} is free. Of the "
            f"allocated memory {format_size(allocated)} is allocated by Kiln, and "
            f"{format_size(reserved - allocated)} is reserved by Kiln but unallocated.")


def oom_checked(malloc):
    """`malloc` (a CuPy pool's) raising OutOfMemoryError with PyTorch's message where CuPy
    raises its own (a MemoryError, which `except torch.cuda.OutOfMemoryError` would miss)."""
    def checked(size):
        try:
            return malloc(size)
        except MemoryError as e:
            if type(e).__name__ != "OutOfMemoryError":
                raise
            cp = _cupy()
            dev = cp.cuda.runtime.getDevice()
            free, total = cp.cuda.runtime.memGetInfo()
            pool = cp.get_default_memory_pool()
            raise OutOfMemoryError(oom_message(size, dev, total, free, pool.used_bytes(),
                                               pool.total_bytes())) from None
    return checked


_HOOK = None


def count_memory():
    """Feed runtime.memstats (torch.cuda.memory_stats) from CuPy's memory hooks from now on:
    every pool's malloc/free (CUDA-graph pools too, as torch counts private pools) and each
    cudaMalloc. Started by the first statistics query, not at import: a hook costs a few
    microseconds per allocation. What the current device's default pool holds then is
    counted in the "all" pool. CuPy calls hooks only on the thread that registered them."""
    global _HOOK
    if _HOOK is not None:
        return
    cp = _cupy()
    from .memstats import device_stats
    pool = cp.get_default_memory_pool()
    device_stats("cuda", current_device()).seed(pool.used_bytes(), pool.total_bytes())
    sizes = {}          # pointer -> requested bytes, for requested_bytes at free

    class _Count(cp.cuda.MemoryHook):
        name = "KilnMemoryStats"

        def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id, **kw):
            st = device_stats("cuda", device_id)
            if not mem_ptr:         # (CuPy reports a failed malloc with pointer 0)
                st.num_ooms += 1
                return
            sizes[mem_ptr] = size
            st.malloc(mem_size, size)

        def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id, **kw):
            req = sizes.pop(mem_ptr, None)
            device_stats("cuda", device_id).free(mem_size, req, seeded=req is None)

        def alloc_postprocess(self, device_id, mem_size, mem_ptr, **kw):
            st = device_stats("cuda", device_id)
            if not mem_ptr:         # a failed cudaMalloc: the pool frees its cache, retries
                st.num_alloc_retries += 1
            else:
                st.reserve(mem_size)

    _HOOK = _Count()
    _HOOK.__enter__()


def device_count():
    """How many GPUs CuPy sees (0 when CuPy, the driver or a GPU is missing)."""
    global _count
    if _count is None:
        try:
            _count = int(_cupy().cuda.runtime.getDeviceCount())
        except Exception:
            _count = 0
    return _count


def available():
    return device_count() > 0


def current_device():
    return int(_cupy().cuda.runtime.getDevice())


def set_device(index):
    _cupy().cuda.runtime.setDevice(int(index))


def device_name(index=0):
    p = _cupy().cuda.runtime.getDeviceProperties(int(index))
    n = p["name"]
    return n.decode() if isinstance(n, bytes) else str(n)


def capability(index=0):
    p = _cupy().cuda.runtime.getDeviceProperties(int(index))
    return int(p["major"]), int(p["minor"])


def synchronize(index=None):
    cp = _cupy()
    if _DEFERRED:
        cp.cuda.runtime.deviceSynchronize()
        check_deferred()
    if index is None:
        cp.cuda.get_current_stream().synchronize()
        cp.cuda.runtime.deviceSynchronize()
    else:
        with cp.cuda.Device(int(index)):
            cp.cuda.runtime.deviceSynchronize()


def memory_allocated():
    """Bytes held by live arrays (the pool's used bytes, like torch.cuda.memory_allocated)."""
    return int(_cupy().get_default_memory_pool().used_bytes())


def memory_reserved():
    """Bytes the pool holds from the driver, used or cached for reuse."""
    return int(_cupy().get_default_memory_pool().total_bytes())


def empty_cache():
    """Give cached, unused blocks back to the driver (live arrays are untouched)."""
    pool = _cupy().get_default_memory_pool()
    before = pool.total_bytes()
    pool.free_all_blocks()
    freed = before - pool.total_bytes()
    if freed > 0 and _HOOK is not None:   # (no hook for cudaFree: segment sizes unknown)
        from .memstats import device_stats
        device_stats("cuda", current_device()).release_unsized(freed)


def mem_get_info(index):
    """(free, total) bytes of device `index`, as cudaMemGetInfo reports them."""
    with _cupy().cuda.Device(int(index)):
        free, total = _cp.cuda.runtime.memGetInfo()
    return int(free), int(total)


def properties(index):
    """cudaGetDeviceProperties of device `index` (a dict, CuPy's key names)."""
    return _cupy().cuda.runtime.getDeviceProperties(int(index))


def can_access_peer(index, peer):
    return bool(_cupy().cuda.runtime.deviceCanAccessPeer(int(index), int(peer)))


def set_memory_limit(index, fraction):
    """Cap the pool of device `index` at `fraction` of its memory (CuPy's set_limit)."""
    with _cupy().cuda.Device(int(index)):
        _cp.get_default_memory_pool().set_limit(fraction=fraction)


def current_stream():
    return _cupy().cuda.get_current_stream()


# ---- buffers -----------------------------------------------------------------------------------

def is_device_array(a):
    return _cp is not None and isinstance(a, _cp.ndarray)


def array_index(a):
    return int(a.device.id)


def empty(shape, npdtype, index=0):
    cp = _cupy()
    if cp.cuda.runtime.getDevice() == index:       # the common case: no device switch
        return cp.empty(tuple(shape), dtype=npdtype)
    with cp.cuda.Device(index):
        return cp.empty(tuple(shape), dtype=npdtype)


def empty_here(shape, npdtype):
    """An uninitialised array on the current device (no device switch: the hot path)."""
    return _cupy().empty(shape, dtype=npdtype)


def from_host_here(a):
    """Host array -> new array on the current device (no device switch)."""
    return _cupy().array(np.asarray(a, order="C"), copy=True)    # (0-d stays 0-d)


_STAGED = []      # (event, pinned host memory) of uploads still in flight


def upload_async(dst, host):
    """Copy host array `host` into device array `dst` (contiguous, as many bytes) on the
    current stream, without waiting for the GPU: a synchronous copy (CuPy's ndarray.set)
    from pageable memory first waits for every kernel queued before it, which made a
    replayed step's scalar upload wait for the previous step. The bytes go through pinned
    staging memory that is kept until the copy has run."""
    cp = _cupy()
    host = np.ascontiguousarray(host)
    while _STAGED and _STAGED[0][0].done:
        _STAGED.pop(0)
    mem = cp.cuda.alloc_pinned_memory(max(1, host.nbytes))
    staged = np.frombuffer(mem, np.uint8, host.nbytes)
    staged[...] = host.reshape(-1).view(np.uint8)
    stream = cp.cuda.get_current_stream()
    dst.data.copy_from_host_async(ctypes.c_void_p(mem.ptr), host.nbytes, stream)
    _STAGED.append((stream.record(), mem))
    return dst


def on_device(index):
    """Context manager: device `index` is current inside."""
    return _cupy().cuda.Device(index)


def from_host(a, index=0):
    """Host array -> new device array (contiguous), copied on the current stream."""
    cp = _cupy()
    with cp.cuda.Device(index):
        return cp.array(np.asarray(a, order="C"), copy=True)


def to_host(a):
    """Device array -> NumPy array (waits for the copy, as torch's .cpu() does)."""
    if _DEFERRED:
        check_deferred()
    return _cupy().asnumpy(a)


# device-side checks (a compiled program's class targets) read at the next synchronisation:
# [(flag device array, make_error(flag words as NumPy) -> exception or None)]
_DEFERRED = []


def defer_check(flag, make_error, read=None):
    """Register a sticky device flag to read at the next to_host() or synchronize()."""
    if not any(f is flag for f, _, _ in _DEFERRED):
        _DEFERRED.append((flag, make_error, read))


def check_deferred():
    """Read every pending flag; the first that reports an error is reset and raised."""
    pending = list(_DEFERRED)
    _DEFERRED.clear()
    for flag, make_error, read in pending:
        words = read(flag) if read is not None else _cupy().asnumpy(flag)
        err = make_error(words)
        if err is not None:
            from compiler.codegen.triton_checks import fresh_flag
            reset = np.array(fresh_flag(), np.int64)
            if read is None:
                flag.set(reset)              # (a CuPy array: the host words uploaded)
            else:
                flag[...] = reset
            raise err


def copy(a, index=None):
    """A contiguous copy of device array `a` (onto another GPU when index differs)."""
    cp = _cupy()
    with cp.cuda.Device(array_index(a) if index is None else index):
        return cp.array(a, copy=True, order="C")


def view(a, shape, strides, offset):
    """Array over a's memory with `shape`, byte `strides`, starting `offset` bytes after
    a's first element: how metadata-only views are made."""
    cp = _cupy()
    return cp.ndarray(tuple(shape), dtype=a.dtype, memptr=a.data + int(offset),
                      strides=tuple(int(s) for s in strides))


def scalar_view(a, offset, npdtype):
    """A 0-d array of `npdtype` over device array a's memory, `offset` bytes in."""
    cp = _cupy()
    return cp.ndarray((), dtype=npdtype, memptr=a.data + int(offset))


def _cupy_view(buf):
    """CuPy array over device tensor `buf` (anything with data_ptr/shape/stride/dtype)."""
    cp = _cupy()
    shape = tuple(buf.shape)
    item = np.dtype(buf.dtype.np).itemsize
    st = tuple(buf.stride())
    span = 1 + sum((n - 1) * s for n, s in zip(shape, st))
    mem = cp.cuda.UnownedMemory(buf.data_ptr(), span * item, buf)
    return cp.ndarray(shape, dtype=buf.dtype.np, memptr=cp.cuda.MemoryPointer(mem, 0),
                      strides=tuple(s * item for s in st))


def time_ms(fn, warmup=2, reps=7, inner=5):
    """Device time of one fn() in milliseconds: the median over `reps` of `inner` calls in a
    row between CUDA events on the current stream (back to back, so the host's launch time
    overlaps the kernels). Triton's do_bench, which its autotuner calls, needs PyTorch; this
    needs CuPy only."""
    cp = _cupy()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / inner)
    times.sort()
    return times[len(times) // 2]


def scratch_like(buf):
    """A launch argument over fresh memory with `buf`'s shape, dtype and element strides
    (non-negative): where a kernel can write what it would write into `buf`."""
    shape, st = tuple(buf.shape), tuple(buf.stride())
    item = np.dtype(buf.dtype.np).itemsize
    span = 1 + sum((n - 1) * s for n, s in zip(shape, st)) if all(shape) else 0
    # raw unsigned words of the element's size: CuPy has no bfloat16, and only the memory,
    # strides and Kiln dtype reach the kernel
    base = empty_here((span,), np.dtype(f"u{item}"))
    return DeviceArg(view(base, shape, [s * item for s in st], 0), buf.dtype)


def contiguous_arg(buf):
    """A row-major copy of device tensor `buf`, as a launch argument."""
    return DeviceArg(_cupy().ascontiguousarray(_cupy_view(buf)), buf.dtype)


def k_major(buf):
    """A copy of device tensor `buf` whose last two dims are column-major (stride 1 on dim
    -2): the K-major form of a matmul's B operand, as a launch argument."""
    cp = _cupy()
    t = cp.ascontiguousarray(_cupy_view(buf).swapaxes(-1, -2)).swapaxes(-1, -2)
    return DeviceArg(t, buf.dtype)


class DeviceArg:
    """A device array as Triton's launcher sees a tensor: data_ptr() and dtype (a Kiln DType,
    which prints as "torch.float32", the spelling Triton's type table reads)."""
    __slots__ = ("array", "dtype")

    def __init__(self, array, dtype):
        self.array, self.dtype = array, dtype

    def data_ptr(self):
        return self.array.data.ptr

    @property
    def shape(self):
        return self.array.shape

    def stride(self, dim=None):
        st = tuple(s // self.array.itemsize for s in self.array.strides)
        return st if dim is None else st[dim]


def hook_triton_stream():
    """Make Triton launch on CuPy's current stream and device (its default is PyTorch's, or
    the default stream when PyTorch is absent), so kernels order with CuPy's copies."""
    global _stream_hooked
    if _stream_hooked:
        return
    from triton.runtime import driver
    cp = _cupy()
    drv = driver.active
    drv.get_current_stream = lambda device=None: cp.cuda.get_current_stream().ptr
    drv.get_current_device = lambda: cp.cuda.runtime.getDevice()
    drv.set_current_device = lambda index: cp.cuda.runtime.setDevice(index)
    _stream_hooked = True
