"""framework.cuda: device queries, answered by CuPy when a GPU is there.

Under KILN_DEVICE=interpret, 'cuda' means the interpret device (Triton's interpreter on host
memory), and is_available() answers True: PyTorch code checks is_available() before it moves
anything to 'cuda', so this is what makes tutorial code take its GPU path in CI. There,
device_count() is 1, current_device() 0, and the memory queries report 0 (host memory is not
pooled). Without a GPU and without KILN_DEVICE=interpret, is_available() is False and cuda
tensors cannot be made (runtime.backends raises a clear error).
"""
from runtime import backends, cuda as _rt
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
    if not is_available():
        raise RuntimeError("cuda: no CUDA GPU is available to Kiln (CuPy and an NVIDIA driver "
                           "are needed); set KILN_DEVICE=interpret to run the GPU kernels through "
                           "Triton's interpreter on the CPU")


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
    if _gpu():
        _rt.synchronize(None if device is None else _index(device))


def empty_cache():
    if _gpu():
        _rt.empty_cache()


def memory_allocated(device=None):
    return _rt.memory_allocated() if _gpu() else 0


def memory_reserved(device=None):
    return _rt.memory_reserved() if _gpu() else 0


def max_memory_allocated(device=None):
    return memory_allocated(device)


def manual_seed(seed):
    # cuda random numbers are drawn by the host generator and copied (framework.creation),
    # so seeding it makes them reproducible
    from .creation import manual_seed as _seed
    _seed(seed)


def manual_seed_all(seed):
    manual_seed(seed)


def is_initialized():
    return _gpu() and _rt._cp is not None


def current_stream(device=None):
    _need()
    return _rt.current_stream() if _gpu() else None
