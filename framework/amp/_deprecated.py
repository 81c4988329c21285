"""torch.cpu.amp / torch.cuda.amp: the deprecated per-device spellings, with torch's
FutureWarning."""
import warnings

from runtime import dtypes as dt
from .autocast_mode import autocast as _autocast
from .autocast_mode import custom_bwd as _custom_bwd, custom_fwd as _custom_fwd
from .grad_scaler import GradScaler as _GradScaler


def _autocast_for(device_type):
    class autocast(_autocast):  # noqa: N801
        def __init__(self, enabled=True, dtype=None, cache_enabled=True):
            warnings.warn(f"`torch.{device_type}.amp.autocast(args...)` is deprecated. Please use "
                          f"`torch.amp.autocast('{device_type}', args...)` instead.",
                          FutureWarning, stacklevel=2)
            if dtype is None:
                dtype = dt.bfloat16 if device_type == "cpu" else dt.float16
            super().__init__(device_type, dtype=dtype, enabled=enabled,
                             cache_enabled=cache_enabled)
    autocast.__qualname__ = "autocast"
    autocast.__module__ = f"framework.{device_type}.amp.autocast_mode"   # torch's, for repr
    return autocast


def _scaler_for(device_type):
    class GradScaler(_GradScaler):
        def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                     growth_interval=2000, enabled=True):
            warnings.warn(f"`torch.{device_type}.amp.GradScaler(args...)` is deprecated. Please "
                          f"use `torch.amp.GradScaler('{device_type}', args...)` instead.",
                          FutureWarning, stacklevel=2)
            super().__init__(device_type, init_scale=init_scale, growth_factor=growth_factor,
                             backoff_factor=backoff_factor, growth_interval=growth_interval,
                             enabled=enabled)
    GradScaler.__qualname__ = "GradScaler"
    GradScaler.__module__ = f"framework.{device_type}.amp.grad_scaler"   # torch's, for repr
    return GradScaler


def _cuda_custom_fwd(fwd=None, *, cast_inputs=None):
    """``torch.cuda.amp.custom_fwd(args...)`` is deprecated: torch.amp.custom_fwd(args...,
    device_type='cuda')."""
    warnings.warn("`torch.cuda.amp.custom_fwd(args...)` is deprecated. Please use "
                  "`torch.amp.custom_fwd(args..., device_type='cuda')` instead.",
                  FutureWarning, stacklevel=2)
    return _custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def _cuda_custom_bwd(bwd):
    """``torch.cuda.amp.custom_bwd(args...)`` is deprecated: torch.amp.custom_bwd(args...,
    device_type='cuda')."""
    warnings.warn("`torch.cuda.amp.custom_bwd(args...)` is deprecated. Please use "
                  "`torch.amp.custom_bwd(args..., device_type='cuda')` instead.",
                  FutureWarning, stacklevel=2)
    return _custom_bwd(bwd, device_type="cuda")


_cuda_custom_fwd.__name__ = _cuda_custom_fwd.__qualname__ = "custom_fwd"
_cuda_custom_bwd.__name__ = _cuda_custom_bwd.__qualname__ = "custom_bwd"


class _Namespace:
    def __init__(self, device_type):
        self.autocast = _autocast_for(device_type)
        self.GradScaler = _scaler_for(device_type)
        if device_type == "cuda":       # (torch.cpu.amp has no custom_fwd/custom_bwd)
            self.custom_fwd, self.custom_bwd = _cuda_custom_fwd, _cuda_custom_bwd


cpu_amp = _Namespace("cpu")
cuda_amp = _Namespace("cuda")
