"""torch.cuda's memory statistics and device queries (re-exported by framework.cuda).

Three regimes, as torch.cuda behaves in each:
- no GPU (and not KILN_DEVICE=interpret): torch's CPU build. The counters read 0 and
  memory_stats() is empty; queries that need a device raise AssertionError("Torch not
  compiled with CUDA enabled"), the class torch raises there.
- KILN_DEVICE=interpret: 'cuda' is Triton's interpreter on host memory. The counters are
  Kiln's interpret-device buffers (runtime.interpret counts each one while it lives; host
  memory is not cached, so reserved equals allocated), and the properties name the
  interpreter.
- a GPU through CuPy: the counters come from CuPy's memory hooks (runtime.cuda), hooked at
  the first statistics query (reset_peak_memory_stats() first, as usual, gives exact peaks;
  blocks that existed before count in the "all" pool only), the properties from
  cudaGetDeviceProperties.
The counters themselves live in runtime.memstats.
"""
import collections
import os
import warnings

from runtime import backends, cuda as _rt
from runtime.device import Device, interpret_selected
from runtime.memstats import device_stats

_NO_CUDA = ("Torch not compiled with CUDA enabled: no CUDA GPU is available to Kiln (CuPy and an "
            "NVIDIA driver are needed); set KILN_DEVICE=interpret to run the GPU kernels through "
            "Triton's interpreter on the CPU")
_INTERP_NAME = "Triton interpreter (KILN_DEVICE=interpret)"


def _mode():
    """'interpret', 'gpu' or None (no device behind torch.cuda)."""
    if interpret_selected():
        return "interpret" if backends.interpret_available() else None
    return "gpu" if _rt.available() else None


def _count():
    m = _mode()
    return 0 if m is None else 1 if m == "interpret" else _rt.device_count()


def _need():
    m = _mode()
    if m is None:
        raise AssertionError(_NO_CUDA)
    return m


def _current():
    return _rt.current_device() if _mode() == "gpu" else 0


def _device_index(device, optional=True):
    """torch's _get_device_index: None is the current device, an int or 'cuda:i' names one."""
    if device is None:
        if not optional:
            raise ValueError("Expected a torch.device with a specified index or an integer, "
                             "but got: None")
        return _current()
    if isinstance(device, bool) or not isinstance(device, (int, str, Device)):
        d = getattr(device, "device", None)         # (a tensor or a storage: its device)
        if not isinstance(d, Device):
            raise ValueError(f"Expected a cuda device, but got: {device!r}")
        device = d
    if isinstance(device, int):
        return device
    d = Device(device)
    if d.type not in ("cuda", "interpret"):
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return _current() if d.index is None else d.index


def _stats(device):
    m = _mode()
    i = _device_index(device)
    if m == "gpu":
        _rt.count_memory()      # (counting starts at the first query: see runtime.cuda)
    return device_stats("interpret" if m == "interpret" else "cuda", i)


# ---- memory statistics -------------------------------------------------------------------------

def memory_stats_as_nested_dict(device=None):
    """memory_stats() as a nested dictionary ({} when there is no device, as torch)."""
    if _mode() is None:
        return {}
    return _stats(device).nested()


def memory_stats(device=None):
    """The allocator's statistics, flattened to torch's dotted keys and sorted:
    "{allocation,allocated_bytes,active,active_bytes,requested_bytes,segment,reserved_bytes,
    inactive_split,inactive_split_bytes}.{all,large_pool,small_pool}.{current,peak,allocated,
    freed}", "num_alloc_retries", "num_ooms", ... Blocks of 1 MiB or more count in the large
    pool. Kiln never splits cached blocks, so the inactive_split figures stay 0."""
    out = []

    def walk(prefix, obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out.append((prefix, obj))

    walk("", memory_stats_as_nested_dict(device))
    out.sort()
    return collections.OrderedDict(out)


def memory_allocated(device=None):
    """Bytes held by live tensors on the device."""
    return memory_stats(device).get("allocated_bytes.all.current", 0)


def max_memory_allocated(device=None):
    """The peak of memory_allocated() since the start or reset_peak_memory_stats()."""
    return memory_stats(device).get("allocated_bytes.all.peak", 0)


def memory_reserved(device=None):
    """Bytes the allocator holds, used or cached for reuse."""
    return memory_stats(device).get("reserved_bytes.all.current", 0)


def max_memory_reserved(device=None):
    return memory_stats(device).get("reserved_bytes.all.peak", 0)


def memory_cached(device=None):
    """Deprecated; see memory_reserved()."""
    warnings.warn("`torch.cuda.memory_cached` has been renamed to `torch.cuda.memory_reserved`",
                  FutureWarning, stacklevel=2)
    return memory_reserved(device)


def max_memory_cached(device=None):
    """Deprecated; see max_memory_reserved()."""
    warnings.warn("`torch.cuda.max_memory_cached` has been renamed to "
                  "`torch.cuda.max_memory_reserved`", FutureWarning, stacklevel=2)
    return max_memory_reserved(device)


def _no_stats(name):
    # torch's CPU build fails here on a missing torch._C binding: AttributeError
    raise AttributeError(f"torch.cuda.{name}: there are no CUDA memory statistics without a "
                         "device (" + _NO_CUDA.split(": ", 1)[1] + ")")


def reset_peak_memory_stats(device=None):
    """Start the "peak" figures again from the current ones."""
    if _mode() is None:
        _no_stats("reset_peak_memory_stats")
    _stats(device).reset_peak()


def reset_accumulated_memory_stats(device=None):
    """Zero the "allocated"/"freed" totals, num_alloc_retries and num_ooms."""
    if _mode() is None:
        _no_stats("reset_accumulated_memory_stats")
    _stats(device).reset_accumulated()


def reset_max_memory_allocated(device=None):
    warnings.warn("torch.cuda.reset_max_memory_allocated now calls "
                  "torch.cuda.reset_peak_memory_stats, which resets /all/ peak memory stats.",
                  FutureWarning, stacklevel=2)
    return reset_peak_memory_stats(device)


def reset_max_memory_cached(device=None):
    warnings.warn("torch.cuda.reset_max_memory_cached now calls "
                  "torch.cuda.reset_peak_memory_stats, which resets /all/ peak memory stats.",
                  FutureWarning, stacklevel=2)
    return reset_peak_memory_stats(device)


def memory_summary(device=None, abbreviated=False):
    """memory_stats() as torch's table."""
    stats = memory_stats(device)
    if not stats:
        raise KeyError("allocated_bytes.all.current")      # (what torch's CPU build raises)
    device = _device_index(device)

    def size(sz, pref):
        prefix = "B  "
        for p in ("KiB", "MiB", "GiB", "TiB", "PiB"):
            if pref < 768 * 1024:
                break
            prefix, sz, pref = p, sz // 1024, pref / 1024
        return f"{sz:6d} {prefix}"

    def count(n, pref):
        prefix = " "
        for p in ("K", "M"):
            if pref < 750 * 1000:
                break
            prefix, n, pref = p, n // 1000, pref / 1000
        return f"{n:7d} {prefix} "

    rows = [("allocated_bytes", "Allocated memory", size), ("active_bytes", "Active memory", size),
            ("requested_bytes", "Requested memory", size),
            ("reserved_bytes", "GPU reserved memory", size),
            ("inactive_split_bytes", "Non-releasable memory", size),
            ("allocation", "Allocations", count), ("active", "Active allocs", count),
            ("segment", "GPU reserved segments", count),
            ("inactive_split", "Non-releasable allocs", count)]
    lines = ["=" * 75, f" {'':16} PyTorch CUDA memory summary, device ID {device:<17d} ", "-" * 75,
             f"  {'':9} CUDA OOMs: {stats['num_ooms']:<12d} | {'':6} cudaMalloc retries: "
             f"{stats['num_alloc_retries']:<8d}  ", "=" * 75,
             "        Metric         | Cur Usage  | Peak Usage | Tot Alloc  | Tot Freed  "]
    keys = ("current", "peak", "allocated", "freed")
    for key, name, fmt in rows:
        lines.append("-" * 75)
        subs = [("all", name)] + ([] if abbreviated else [("large_pool", "      from large pool"),
                                                         ("small_pool", "      from small pool")])
        pref = [stats[f"{key}.all.{k}"] for k in keys]
        for sub, label in subs:
            cells = " | ".join(fmt(stats[f"{key}.{sub}.{k}"], p) for k, p in zip(keys, pref))
            lines.append(f" {label:<21} | {cells} ")
    for key, name in (("oversize_allocations", "Oversize allocations"),
                      ("oversize_segments", "Oversize GPU segments")):
        lines.append("-" * 75)
        cells = " | ".join(count(stats[f"{key}.{k}"], stats[f"{key}.{k}"]) for k in keys)
        lines.append(f" {name:<21} | {cells} ")
    lines.append("=" * 75)
    return "|" + "|\n|".join(lines) + "|\n"


def _host_memory():
    """(available, total) bytes of host memory: the interpret device's memory."""
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page


def mem_get_info(device=None):
    """(free, total) bytes of the device's memory, as cudaMemGetInfo reports them."""
    m = _need()
    i = _device_index(device)
    _check(i)
    return _host_memory() if m == "interpret" else _rt.mem_get_info(i)


_FRACTION = {}


def set_per_process_memory_fraction(fraction, device=None):
    """Cap this process's allocations on the device at fraction * total memory. On a GPU
    CuPy's pool enforces it (MemoryPool.set_limit); the interpret device only records it."""
    m = _need()
    i = _device_index(device)
    _check(i)
    if not isinstance(fraction, float):
        raise TypeError("Invalid type for fraction argument, must be `float`")
    if fraction < 0 or fraction > 1:
        raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
    if m == "gpu":
        _rt.set_memory_limit(i, fraction)
    _FRACTION[i] = fraction


def get_per_process_memory_fraction(device=None):
    _need()
    i = _device_index(device)
    _check(i)
    return _FRACTION.get(i, 1.0)


# ---- device properties -------------------------------------------------------------------------

class _CudaDeviceProperties:
    """What torch.cuda.get_device_properties returns (torch's attribute names)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
                f"minor={self.minor}, total_memory={self.total_memory // 2**20}MB, "
                f"multi_processor_count={self.multi_processor_count}, uuid={self.uuid}, "
                f"L2_cache_size={self.L2_cache_size // 2**20}MB)")


def _check(i, what="device"):
    if not 0 <= i < _count():
        raise AssertionError(f"Invalid {what} id")


def _uuid(raw):
    if isinstance(raw, (bytes, bytearray)) and len(raw) == 16:
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return str(raw)


def get_device_properties(device=None):
    """The device's properties: name, major, minor, total_memory, multi_processor_count, ...
    On the interpret device: the interpreter (compute capability 9.0, the default AOT
    target; host memory; the interpreter runs one program at a time, so one "SM")."""
    m = _need()
    i = _device_index(device)
    _check(i)
    if m == "interpret":
        return _CudaDeviceProperties(
            name=_INTERP_NAME, major=9, minor=0, total_memory=_host_memory()[1],
            multi_processor_count=1, is_integrated=True, is_multi_gpu_board=False,
            max_threads_per_multi_processor=1, warp_size=32, regs_per_multiprocessor=0,
            shared_memory_per_block=0, shared_memory_per_block_optin=0,
            shared_memory_per_multiprocessor=0, L2_cache_size=0, uuid="interpret",
            pci_bus_id=0, pci_device_id=0, pci_domain_id=0)
    p = _rt.properties(i)
    name = p["name"]
    return _CudaDeviceProperties(
        name=name.decode() if isinstance(name, bytes) else str(name),
        major=int(p["major"]), minor=int(p["minor"]), total_memory=int(p["totalGlobalMem"]),
        multi_processor_count=int(p["multiProcessorCount"]),
        is_integrated=bool(p.get("integrated", 0)),
        is_multi_gpu_board=bool(p.get("isMultiGpuBoard", 0)),
        max_threads_per_multi_processor=int(p.get("maxThreadsPerMultiProcessor", 0)),
        warp_size=int(p.get("warpSize", 32)),
        regs_per_multiprocessor=int(p.get("regsPerMultiprocessor", 0)),
        shared_memory_per_block=int(p.get("sharedMemPerBlock", 0)),
        shared_memory_per_block_optin=int(p.get("sharedMemPerBlockOptin", 0)),
        shared_memory_per_multiprocessor=int(p.get("sharedMemPerMultiprocessor", 0)),
        L2_cache_size=int(p.get("l2CacheSize", 0)), uuid=_uuid(p.get("uuid", "")),
        pci_bus_id=int(p.get("pciBusID", 0)), pci_device_id=int(p.get("pciDeviceID", 0)),
        pci_domain_id=int(p.get("pciDomainID", 0)))


def can_device_access_peer(device, peer_device):
    """Whether `device` can read `peer_device`'s memory directly (False for itself)."""
    m = _need()
    i, j = _device_index(device), _device_index(peer_device, optional=False)
    _check(i)
    _check(j, "peer device")
    return False if m == "interpret" else _rt.can_access_peer(i, j)


def is_bf16_supported(including_emulation=True):
    """bfloat16 kernels: compute capability 8.0 or newer (the interpret device, which stands
    in for sm_90, has them); False without a device."""
    if _mode() is None:
        return False
    return get_device_properties(_current()).major >= 8 or bool(including_emulation)


def get_arch_list():
    """Kiln ships no prebuilt kernels: Triton compiles for the GPU at hand, so the list is
    the visible GPUs' sm_XY ([] without a GPU, as torch's CPU build)."""
    if _mode() != "gpu":
        return []
    caps = sorted({_rt.capability(i) for i in range(_rt.device_count())})
    return [f"sm_{a}{b}" for a, b in caps]


def get_gencode_flags():
    return " ".join(f"-gencode compute=compute_{a.split('_')[1]},code={a}"
                    for a in get_arch_list())


def init():
    """Start CUDA (nothing to do: Kiln starts CuPy on first use)."""
    if _need() == "gpu":
        _rt.current_device()


def ipc_collect():
    """Kiln shares no CUDA memory between processes: nothing to collect."""
    _need()


_SYNC_DEBUG = [0]


def set_sync_debug_mode(debug_mode):
    """Record the debug mode for synchronizing operations ("default"/0, "warn"/1,
    "error"/2). Kiln records it for get_sync_debug_mode() but does not yet warn or raise
    at synchronizing operations."""
    _need()
    if isinstance(debug_mode, str):
        modes = {"default": 0, "warn": 1, "error": 2}
        if debug_mode not in modes:
            raise RuntimeError("invalid value of debug_mode, expected one of `default`, "
                               "`warn`, `error`")
        debug_mode = modes[debug_mode]
    _SYNC_DEBUG[0] = int(debug_mode)


def get_sync_debug_mode():
    _need()
    return _SYNC_DEBUG[0]


# ---- current device as a context --------------------------------------------------------------

class device:
    """Context manager that makes `device` current inside (a negative index or None: no-op)."""

    def __init__(self, device):
        self.idx = -1 if device is None else _device_index(device)
        self.prev_idx = -1

    def __enter__(self):
        if self.idx < 0:
            return
        m = _mode()
        if m is None:
            raise RuntimeError("PyTorch was compiled without CUDA support: " +
                               _NO_CUDA.split(": ", 1)[1])
        if self.idx >= _count():
            raise RuntimeError(f"CUDA error: invalid device ordinal (device {self.idx}; "
                               f"{_count()} visible)")
        self.prev_idx = _current()
        if m == "gpu" and self.idx != self.prev_idx:
            _rt.set_device(self.idx)

    def __exit__(self, *exc):
        if self.prev_idx >= 0 and _mode() == "gpu" and self.prev_idx != self.idx:
            _rt.set_device(self.prev_idx)
        return False


class device_of(device):
    """Context manager: the device of tensor `obj` is current inside (a cpu tensor: no-op)."""

    def __init__(self, obj):
        super().__init__(obj.get_device() if obj.is_cuda else -1)


# ---- NVML counters: torch reads them through pynvml ---------------------------------------------

def _nvml(device):
    try:
        import pynvml
    except ImportError as e:
        raise ModuleNotFoundError("nvidia-ml-py does not seem to be installed or it can't be "
                                  "imported.") from e
    if _mode() != "gpu":
        raise RuntimeError("cuda driver can't be loaded, is cuda enabled? (NVML counters need a "
                           "GPU; the interpret device has none)")
    pynvml.nvmlInit()
    return pynvml, pynvml.nvmlDeviceGetHandleByIndex(_device_index(device))


def utilization(device=None):
    """Percent of the last sample period in which a kernel ran (nvidia-smi's GPU-Util)."""
    nv, h = _nvml(device)
    return nv.nvmlDeviceGetUtilizationRates(h).gpu


def memory_usage(device=None):
    """Percent of the last sample period in which device memory was read or written."""
    nv, h = _nvml(device)
    return nv.nvmlDeviceGetUtilizationRates(h).memory


def temperature(device=None):
    """GPU die temperature in degrees C."""
    nv, h = _nvml(device)
    return nv.nvmlDeviceGetTemperature(h, 0)


def power_draw(device=None):
    """Power draw in mW."""
    nv, h = _nvml(device)
    return nv.nvmlDeviceGetPowerUsage(h)


def clock_rate(device=None):
    """SM clock in MHz."""
    nv, h = _nvml(device)
    return nv.nvmlDeviceGetClockInfo(h, 1)
