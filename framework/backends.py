"""torch.backends: the flags training scripts set.

Kiln uses neither cuDNN nor MPS, so cudnn.benchmark / deterministic / enabled only record what
was asked (Kiln's kernels are chosen by shape and are deterministic except atomic scatter-adds);
cuda.matmul.allow_tf32 (and torch.set_float32_matmul_precision) decides whether generated
float32 matmul kernels use TensorFloat-32 tensor cores, as in PyTorch (default: no)."""
import runtime.backends as _rt


class _Flags:
    def __init__(self, **flags):
        self.__dict__.update(flags)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class _CudaMatmul:
    """torch.backends.cuda.matmul: allow_tf32 is the runtime's switch."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self):
        return _rt.matmul_allow_tf32

    @allow_tf32.setter
    def allow_tf32(self, value):
        _rt.matmul_allow_tf32 = bool(value)


class _Cuda:
    matmul = _CudaMatmul()

    @staticmethod
    def is_built():
        return True


class _Mps:
    @staticmethod
    def is_available():
        return False

    @staticmethod
    def is_built():
        return False


cudnn = _Flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=True)
cudnn.is_available = lambda: False
cudnn.version = lambda: None
cuda = _Cuda()
mps = _Mps()

_PRECISION = {"highest": False, "high": True, "medium": True}


def set_float32_matmul_precision(precision):
    """'highest' (full float32, the default), 'high' or 'medium' (TensorFloat-32 allowed)."""
    if precision not in _PRECISION:
        raise RuntimeError(f"set_float32_matmul_precision: invalid precision {precision!r} "
                           f"(expected one of {', '.join(_PRECISION)})")
    _rt.matmul_allow_tf32 = _PRECISION[precision]


def get_float32_matmul_precision():
    return "high" if _rt.matmul_allow_tf32 else "highest"
