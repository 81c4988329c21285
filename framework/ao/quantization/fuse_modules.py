"""fuse_modules / fuse_modules_qat: replace runs of modules (conv-bn, conv-bn-relu, conv-relu,
linear-relu, linear-bn, bn-relu) by one fused module and Identity placeholders."""
import copy

from ... import nn
from .fuser_method_mappings import get_fuser_method


def fuse_known_modules(mod_list, is_qat, additional_fuser_method_mapping=None):
    types = tuple(type(m) for m in mod_list)
    fuser = get_fuser_method(types, additional_fuser_method_mapping)
    fused = fuser(is_qat, *mod_list)
    # the first module's pre hooks and the last one's hooks move to the fused module
    for h in mod_list[0]._forward_pre_hooks.values():
        fused.register_forward_pre_hook(h)
    mod_list[0]._forward_pre_hooks.clear()
    for h in mod_list[-1]._forward_hooks.values():
        fused.register_forward_hook(h)
    mod_list[-1]._forward_hooks.clear()
    new = [fused]
    for _ in mod_list[1:]:
        ident = nn.Identity()
        ident.training = mod_list[0].training
        new.append(ident)
    return new


def _get(model, name):
    for part in name.split("."):
        model = getattr(model, part)
    return model


def _set(model, name, mod):
    parts = name.split(".")
    for part in parts[:-1]:
        model = getattr(model, part)
    setattr(model, parts[-1], mod)


def _fuse(model, names, is_qat, fuser_func, fuse_custom_config_dict):
    mapping = (fuse_custom_config_dict or {}).get("additional_fuser_method_mapping", {})
    mods = [_get(model, n) for n in names]
    for n, m in zip(names, fuser_func(mods, is_qat, mapping)):
        _set(model, n, m)


def _fuse_modules(model, modules_to_fuse, is_qat, inplace, fuser_func, fuse_custom_config_dict):
    if not inplace:
        model = copy.deepcopy(model)
    if all(isinstance(m, str) for m in modules_to_fuse):
        _fuse(model, modules_to_fuse, is_qat, fuser_func, fuse_custom_config_dict)
    else:
        for group in modules_to_fuse:
            _fuse(model, group, is_qat, fuser_func, fuse_custom_config_dict)
    return model


def fuse_modules(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                 fuse_custom_config_dict=None):
    """Fuse each named list of modules (eval mode: BatchNorm folded into the conv/linear)."""
    return _fuse_modules(model, modules_to_fuse, False, inplace, fuser_func,
                         fuse_custom_config_dict)


def fuse_modules_qat(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                     fuse_custom_config_dict=None):
    """fuse_modules for QAT: BatchNorm kept (nni.ConvBn2d, ...) for prepare_qat."""
    return _fuse_modules(model, modules_to_fuse, True, inplace, fuser_func,
                         fuse_custom_config_dict)
