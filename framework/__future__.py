"""torch.__future__: switches for behaviour that changes in a future release."""

_overwrite_module_params_on_conversion = False
_swap_module_params_on_conversion = False


def set_overwrite_module_params_on_conversion(value):
    """True: module.to()/.double()/... give each parameter a new Parameter object instead of
    changing the existing one's data (and its .grad a new tensor)."""
    global _overwrite_module_params_on_conversion
    _overwrite_module_params_on_conversion = value


def get_overwrite_module_params_on_conversion():
    return _overwrite_module_params_on_conversion


def set_swap_module_params_on_conversion(value):
    """True: module.to()/.double()/... convert each parameter (and its .grad) with
    torch.utils.swap_tensors, so the Parameter keeps its identity but takes everything of the
    converted one (attributes and hooks set on it are dropped, as in torch)."""
    global _swap_module_params_on_conversion
    _swap_module_params_on_conversion = value


def get_swap_module_params_on_conversion():
    return _swap_module_params_on_conversion
