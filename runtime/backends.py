"""Which non-CPU devices this process can use, and the error when one is missing."""


def cuda_available():
    from . import cuda
    return cuda.device_count() > 0


def interpret_available():
    try:
        import triton  # noqa: F401
        return True
    except Exception:
        return False


def require(dev):
    """The Device a 'cuda' or 'interpret' request resolves to, or a RuntimeError saying what
    is missing. cuda requests get an index (tensors live on cuda:N, as in PyTorch)."""
    from .device import Device
    if dev.type == "cuda":
        from . import cuda
        n = cuda.device_count()
        if n == 0:
            raise RuntimeError(
                f"device {dev}: no CUDA GPU is available to Kiln (CuPy and an NVIDIA driver are "
                "needed); set KILN_DEVICE=interpret to run the GPU kernels through Triton's "
                "interpreter on the CPU")
        idx = cuda.current_device() if dev.index is None else dev.index
        if not 0 <= idx < n:
            raise RuntimeError(f"device {dev}: CUDA error: invalid device ordinal (this machine "
                               f"has {n} GPU{'s' if n != 1 else ''})")
        return Device("cuda", idx)
    if dev.type == "interpret":
        import os
        import sys
        if "triton" not in sys.modules:
            # kernels that call @triton.jit helpers run in the interpreter only when Triton
            # starts in interpreter mode (as KILN_DEVICE=interpret arranges at import)
            os.environ.setdefault("TRITON_INTERPRET", "1")
        if not interpret_available():
            raise RuntimeError(f"device {dev}: the interpret device runs kernels through Triton's "
                               "interpreter, and triton is not installed")
        return Device("interpret")
    raise RuntimeError(f"device {dev}: not a device Kiln can place tensors on")


# float32 matmuls on GPUs: full float32 (PyTorch's default, 'highest'), or TensorFloat-32
# tensor cores when torch.backends.cuda.matmul.allow_tf32 / set_float32_matmul_precision('high')
# allow them; generated matmul kernels read it when they are generated (and key on it)
matmul_allow_tf32 = False
