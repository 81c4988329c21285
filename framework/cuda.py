"""framework.cuda: device queries. The CUDA runtime arrives with the Triton backend; until then
is_available() is False and device requests raise a clear error (runtime.backends)."""
from runtime import backends


def is_available():
    return False


def device_count():
    return 0


def current_device():
    raise RuntimeError("cuda: no CUDA GPU is available to Kiln")


def synchronize(device=None):
    pass


def empty_cache():
    pass


def memory_allocated(device=None):
    return 0


def manual_seed(seed):
    pass


def manual_seed_all(seed):
    pass


def is_initialized():
    return False
