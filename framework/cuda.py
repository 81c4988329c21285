"""framework.cuda: device queries, answered by CuPy when a GPU is there.

Under KILN_DEVICE=interpret, 'cuda' means the interpret device (Triton's interpreter on host
memory), and is_available() answers True: PyTorch code checks is_available() before it moves
anything to 'cuda', so this is what makes tutorial code take its GPU path in CI. There,
device_count() is 1, current_device() 0, and the memory queries count the interpret
device's buffers (framework._cuda_memory). Without a GPU and without KILN_DEVICE=interpret,
is_available() is False and cuda tensors cannot be made (runtime.backends raises a clear
error).
"""
from runtime import backends, cuda as _rt
from runtime.cuda import OutOfMemoryError  # noqa: F401  (also torch.OutOfMemoryError)
from runtime.device import interpret_selected


def _gpu():
    return not interpret_selected() and _rt.available()


def is_available():
    if interpret_selected():
        return backends.interpret_available()
    return _rt.available()


def device_count():
    if interpret_selected():
        return 1 if backends.interpret_available() else 0
    return _rt.device_count()


def _need():
    if not is_available():          # (PyTorch's CPU build: torch.cuda._lazy_init's assertion)
        from ._cuda_memory import _NO_CUDA
        raise AssertionError(_NO_CUDA)


def current_device():
    _need()
    return _rt.current_device() if _gpu() else 0


def set_device(device):
    _need()
    if _gpu():
        from runtime.device import Device
        d = Device(device) if not isinstance(device, int) else Device("cuda", device)
        _rt.set_device(d.index or 0)


def get_device_name(device=None):
    _need()
    if not _gpu():
        return "Triton interpreter (KILN_DEVICE=interpret)"
    return _rt.device_name(_index(device))


def get_device_capability(device=None):
    _need()
    if not _gpu():
        return (9, 0)       # the interpret device stands in for the default AOT target, sm_90
    return _rt.capability(_index(device))


def _index(device):
    if device is None:
        return _rt.current_device()
    if isinstance(device, int):
        return device
    from runtime.device import Device
    return Device(device).index or 0


def synchronize(device=None):
    # interpret-device kernels finish before their launch returns: nothing to wait for
    _need()
    if _gpu():
        _rt.synchronize(None if device is None else _index(device))


def empty_cache():
    if _gpu():
        _rt.empty_cache()


# ---- random numbers: each device has its own Philox generator (framework._device_random);
# torch.manual_seed seeds them all, these seed or read the current one. Without a device they
# do nothing (PyTorch queues them until CUDA starts; nothing here can draw without one).

def _rng_device(device=None):
    from runtime.device import canonical, Device
    if not is_available():
        return None
    d = Device("cuda", current_device()) if device is None else device
    return canonical(d)


def _generator(device=None):
    from ._device_random import default_generator
    d = _rng_device(device)
    return None if d is None else default_generator(d)


def manual_seed(seed):
    g = _generator()
    if g is not None:
        g.manual_seed(seed)


def manual_seed_all(seed):
    from ._device_random import seed_all
    seed_all(int(seed) & 0xFFFFFFFFFFFFFFFF)


def seed():
    g = _generator()
    if g is not None:
        g.seed()


def seed_all():
    import numpy as np
    manual_seed_all(int(np.random.SeedSequence().entropy) & 0xFFFFFFFFFFFFFFFF)


def initial_seed():
    _need()
    return _generator().initial_seed()


def get_rng_state(device="cuda"):
    _need()
    return _generator(device).get_state()


def set_rng_state(new_state, device="cuda"):
    _need()
    _generator(device).set_state(new_state)


def get_rng_state_all():
    return [get_rng_state(f"cuda:{i}") for i in range(device_count())]


def set_rng_state_all(new_states):
    for i, s in enumerate(new_states):
        set_rng_state(s, f"cuda:{i}")


class _DefaultGenerators:
    """torch.cuda.default_generators: the per-device generators, made on first use."""

    def __len__(self):
        return device_count()

    def __getitem__(self, i):
        if not 0 <= i < device_count():
            raise IndexError(f"default_generators: no cuda device {i} (count {device_count()})")
        return _generator(f"cuda:{i}")


default_generators = _DefaultGenerators()


def is_initialized():
    return _gpu() and _rt._cp is not None


def current_stream(device=None):
    """The torch.cuda.Stream Kiln's launches and copies go to (framework._streams)."""
    _need()
    return _streams.current_stream(device)


def default_stream(device=None):
    _need()
    return _streams.default_stream(device)


from . import _streams  # noqa: E402
from ._streams import (CudaStream as Stream, CudaEvent as Event, StreamContext,  # noqa: E402,F401
                       set_stream, stream)


# the legacy torch.cuda.FloatTensor types (framework/tensor.py defines all legacy types)
from .tensor import CUDA_TYPES  # noqa: E402
(FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, ByteTensor, CharTensor, ShortTensor,
 IntTensor, LongTensor, BoolTensor) = CUDA_TYPES
from .amp._deprecated import cuda_amp as amp  # noqa: E402,F401  (torch.cuda.amp, deprecated)
from ._cuda_memory import (  # noqa: E402,F401  (memory statistics and device queries)
    _CudaDeviceProperties, can_device_access_peer, clock_rate, device, device_of,
    get_arch_list, get_device_properties, get_gencode_flags, get_per_process_memory_fraction,
    get_sync_debug_mode, init, ipc_collect, is_bf16_supported, max_memory_allocated,
    max_memory_cached, max_memory_reserved, mem_get_info, memory_allocated, memory_cached,
    memory_reserved, memory_stats, memory_stats_as_nested_dict, memory_summary, memory_usage,
    power_draw, reset_accumulated_memory_stats, reset_max_memory_allocated,
    reset_max_memory_cached, reset_peak_memory_stats, set_per_process_memory_fraction,
    set_sync_debug_mode, temperature, utilization)
