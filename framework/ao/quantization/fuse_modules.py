"""fuse_modules / fuse_modules_qat: replace runs of modules (conv-bn, conv-bn-relu, conv-relu,
linear-relu, linear-bn, bn-relu) by one fused module and Identity placeholders."""
import copy

from ... import nn


def _fuse_conv_bn(is_qat, conv, bn):
    from ..nn import intrinsic as nni
    if conv.training != bn.training:
        raise AssertionError("Conv and BN both must be in the same mode (train or eval).")
    if is_qat:
        if bn.num_features != conv.out_channels:
            raise AssertionError("Output channel of Conv2d must match num_features of "
                                 "BatchNorm2d")
        return {nn.Conv1d: nni.ConvBn1d, nn.Conv2d: nni.ConvBn2d,
                nn.Conv3d: nni.ConvBn3d}[type(conv)](conv, bn)
    return nn.utils.fuse_conv_bn_eval(conv, bn)


def _fuse_conv_bn_relu(is_qat, conv, bn, relu):
    from ..nn import intrinsic as nni
    if conv.training != bn.training or bn.training != relu.training:
        raise AssertionError("Conv and BN both must be in the same mode (train or eval).")
    nd = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(conv)]
    if is_qat:
        return getattr(nni, f"ConvBnReLU{nd}d")(conv, bn, relu)
    return getattr(nni, f"ConvReLU{nd}d")(nn.utils.fuse_conv_bn_eval(conv, bn), relu)


def _fuse_linear_bn(is_qat, linear, bn):
    from ..nn import intrinsic as nni
    if linear.training != bn.training:
        raise AssertionError("Linear and BN both must be in the same mode (train or eval).")
    if is_qat:
        return nni.LinearBn1d(linear, bn)
    return nn.utils.fuse_linear_bn_eval(linear, bn)


def _seq(name):
    def f(is_qat, *mods):
        from ..nn import intrinsic as nni
        return getattr(nni, name)(*mods)
    return f


_FUSERS = {
    (nn.Conv1d, nn.BatchNorm1d): _fuse_conv_bn, (nn.Conv2d, nn.BatchNorm2d): _fuse_conv_bn,
    (nn.Conv3d, nn.BatchNorm3d): _fuse_conv_bn,
    (nn.Conv1d, nn.BatchNorm1d, nn.ReLU): _fuse_conv_bn_relu,
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU): _fuse_conv_bn_relu,
    (nn.Conv3d, nn.BatchNorm3d, nn.ReLU): _fuse_conv_bn_relu,
    (nn.Conv1d, nn.ReLU): _seq("ConvReLU1d"), (nn.Conv2d, nn.ReLU): _seq("ConvReLU2d"),
    (nn.Conv3d, nn.ReLU): _seq("ConvReLU3d"), (nn.Linear, nn.BatchNorm1d): _fuse_linear_bn,
    (nn.Linear, nn.ReLU): _seq("LinearReLU"), (nn.BatchNorm2d, nn.ReLU): _seq("BNReLU2d"),
    (nn.BatchNorm3d, nn.ReLU): _seq("BNReLU3d"),
}


def get_fuser_method(op_list, additional_fuser_method_mapping=None):
    m = dict(_FUSERS)
    m.update(additional_fuser_method_mapping or {})
    f = m.get(tuple(op_list))
    if f is None:
        names = ", ".join(f"<class '{_torch_name(t)}'>" for t in op_list)
        raise AssertionError(f"did not find fuser method for: ({names}) ")
    return f


def _torch_name(t):
    return f"torch.nn.modules.{t.__module__.rsplit('.', 1)[-1]}.{t.__name__}" \
        if t.__module__.startswith("framework.nn.modules") else f"{t.__module__}.{t.__name__}"


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
