"""torch.distributed.fsdp.wrap: auto-wrap policies deciding which submodules become nested FSDP
units. A policy is called as policy(module=m, recurse=True/False, nonwrapped_numel=n): with
recurse=True it says whether to look inside m, with recurse=False whether to wrap m."""


def size_based_auto_wrap_policy(module, recurse, nonwrapped_numel, min_num_params=int(1e8),
                                force_leaf_modules=None, exclude_wrap_modules=None):
    force_leaf = size_based_auto_wrap_policy.FORCE_LEAF_MODULES if force_leaf_modules is None \
        else force_leaf_modules
    exclude = size_based_auto_wrap_policy.EXCLUDE_WRAP_MODULES if exclude_wrap_modules is None \
        else exclude_wrap_modules
    is_large = nonwrapped_numel >= min_num_params
    if recurse:
        return is_large and not isinstance(module, tuple(force_leaf))
    return is_large and not isinstance(module, tuple(exclude))


def _lazy_defaults():
    from ...nn import ModuleList, ModuleDict, MultiheadAttention
    size_based_auto_wrap_policy.EXCLUDE_WRAP_MODULES = {ModuleList, ModuleDict}
    size_based_auto_wrap_policy.FORCE_LEAF_MODULES = {MultiheadAttention}


_lazy_defaults()


def transformer_auto_wrap_policy(module, recurse, nonwrapped_numel, transformer_layer_cls):
    if recurse:
        return True
    return isinstance(module, tuple(transformer_layer_cls))


def lambda_auto_wrap_policy(module, recurse, nonwrapped_numel, lambda_fn):
    if recurse:
        return True
    return lambda_fn(module)


class ModuleWrapPolicy:
    """Wraps every submodule whose class is in `module_classes`."""

    def __init__(self, module_classes):
        self._module_classes = set(module_classes)
        self._module_classes_str = str(self._module_classes)

    def __call__(self, module, recurse, *args, **kwargs):
        return transformer_auto_wrap_policy(module, recurse, 0, tuple(self._module_classes))

    def __repr__(self):
        return super().__repr__() + f"({self._module_classes_str})"


def _recursive_wrap(module, policy, wrap_fn, only_wrap_children=False):
    """PyTorch's _recursive_wrap: wrap children bottom-up; returns (module, numel wrapped)."""
    from . import FullyShardedDataParallel
    if isinstance(module, FullyShardedDataParallel):
        return module, 0
    total = sum(p.numel() for p in module.parameters())
    if policy(module=module, recurse=True, nonwrapped_numel=total):
        wrapped = 0
        for name, child in list(module.named_children()):
            new, n = _recursive_wrap(child, policy, wrap_fn)
            if new is not child:
                setattr(module, name, new)
            wrapped += n
        remainder = total - wrapped
        if not only_wrap_children and policy(module=module, recurse=False,
                                             nonwrapped_numel=remainder):
            return wrap_fn(module), total
        return module, wrapped
    return module, 0
