"""framework.amp (torch.amp): autocast and GradScaler."""
from .autocast_mode import (autocast, is_autocast_available, is_autocast_enabled,  # noqa: F401
                            get_autocast_dtype, set_autocast_dtype, set_autocast_enabled,
                            is_autocast_cache_enabled, set_autocast_cache_enabled,
                            clear_autocast_cache, autocast_increment_nesting,
                            autocast_decrement_nesting, custom_fwd, custom_bwd)
from .autocast_mode import (is_autocast_cpu_enabled, set_autocast_cpu_enabled,  # noqa: F401
                            get_autocast_cpu_dtype, set_autocast_cpu_dtype,
                            get_autocast_gpu_dtype, set_autocast_gpu_dtype)
from .grad_scaler import GradScaler, OptState  # noqa: F401

__all__ = ["autocast", "custom_bwd", "custom_fwd", "GradScaler", "is_autocast_available"]
