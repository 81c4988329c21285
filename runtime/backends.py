"""Which non-CPU devices this process can use, and the error when one is missing."""


def cuda_available():
    try:
        import cupy  # noqa: F401
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def require(dev):
    if dev.type == "cuda":
        if not cuda_available():
            raise RuntimeError(
                f"device {dev}: no CUDA GPU is available to Kiln (CuPy and an NVIDIA driver are "
                "needed); set KILN_DEVICE=interpret to run the GPU kernels through Triton's "
                "interpreter on the CPU")
        raise RuntimeError(f"device {dev}: the CUDA runtime is not part of this build yet")
    raise RuntimeError(f"device {dev}: the Triton-interpreter device is not part of this build yet")
