"""The fuser methods fuse_modules uses per run of module types (conv-bn, conv-bn-relu,
linear-bn, convtranspose-bn, ...) and get_fuser_method to look one up."""
from ... import nn


def _check_bn_qat(bn, out, what):
    if bn.num_features != out:
        raise AssertionError(what)
    nd = type(bn).__name__
    if not bn.affine:
        raise AssertionError(f"Only support fusing {nd} with affine set to True")
    if not bn.track_running_stats:
        raise AssertionError(f"Only support fusing {nd} with tracking_running_stats set to True")


def fuse_conv_bn(is_qat, conv, bn):
    """conv followed by bn as one module: nni.ConvBn{1,2,3}d for QAT, else a conv with the
    batch norm folded into its weight and bias (eval mode)."""
    from ..nn import intrinsic as nni
    if conv.training != bn.training:
        raise AssertionError("Conv and BN both must be in the same mode (train or eval).")
    if is_qat:
        _check_bn_qat(bn, conv.out_channels,
                      "Output channel of Conv2d must match num_features of BatchNorm2d.")
        cls = {nn.Conv1d: nni.ConvBn1d, nn.Conv2d: nni.ConvBn2d,
               nn.Conv3d: nni.ConvBn3d}.get(type(conv))
        if cls is None:
            raise NotImplementedError(f"Cannot fuse train modules: {(conv, bn)}")
        return cls(conv, bn)
    return nn.utils.fuse_conv_bn_eval(conv, bn)


def fuse_conv_bn_relu(is_qat, conv, bn, relu):
    """conv, bn, relu as one module: nni.ConvBnReLU{1,2,3}d for QAT, else nni.ConvReLU{1,2,3}d
    of the bn-folded conv."""
    from ..nn import intrinsic as nni
    if not (conv.training == bn.training == relu.training):
        raise AssertionError("Conv and BN both must be in the same mode (train or eval).")
    if is_qat:
        cls = {nn.Conv1d: nni.ConvBnReLU1d, nn.Conv2d: nni.ConvBnReLU2d,
               nn.Conv3d: nni.ConvBnReLU3d}.get(type(conv))
        _check_bn_qat(bn, conv.out_channels,
                      "Output channel of Conv2d must match num_features of BatchNorm2d")
        if cls is None:
            raise NotImplementedError(f"Cannot fuse train modules: {(conv, bn, relu)}")
        return cls(conv, bn, relu)
    cls = {nn.Conv1d: nni.ConvReLU1d, nn.Conv2d: nni.ConvReLU2d,
           nn.Conv3d: nni.ConvReLU3d}.get(type(conv))
    if cls is None:
        raise NotImplementedError(f"Cannot fuse eval modules: {(conv, bn, relu)}")
    return cls(nn.utils.fuse_conv_bn_eval(conv, bn), relu)


def fuse_linear_bn(is_qat, linear, bn):
    """linear followed by BatchNorm1d: nni.LinearBn1d for QAT, else the bn-folded linear."""
    from ..nn import intrinsic as nni
    if linear.training != bn.training:
        raise AssertionError("Linear and BN both must be in the same mode (train or eval).")
    if is_qat:
        _check_bn_qat(bn, linear.out_features,
                      "Output features of Linear must match num_features of BatchNorm1d")
        return nni.LinearBn1d(linear, bn)
    return nn.utils.fuse_linear_bn_eval(linear, bn)


def fuse_convtranspose_bn(is_qat, convt, bn):
    """ConvTranspose followed by bn, folded (eval only: PyTorch has no QAT module for it)."""
    if convt.training != bn.training:
        raise AssertionError("ConvTranspose and BN both must be in the same mode "
                             "(train or eval).")
    if is_qat:
        raise Exception("Fusing ConvTranspose+BatchNorm not yet supported in QAT.")
    return nn.utils.fuse_conv_bn_eval(convt, bn, transpose=True)


def _seq(name):
    def fuser_method(is_qat, m1, m2):
        from ..nn import intrinsic as nni
        return getattr(nni, name)(m1, m2)
    return fuser_method


_DEFAULT_OP_LIST_TO_FUSER_METHOD = {
    (nn.Conv1d, nn.BatchNorm1d): fuse_conv_bn, (nn.Conv2d, nn.BatchNorm2d): fuse_conv_bn,
    (nn.Conv3d, nn.BatchNorm3d): fuse_conv_bn,
    (nn.Conv1d, nn.BatchNorm1d, nn.ReLU): fuse_conv_bn_relu,
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU): fuse_conv_bn_relu,
    (nn.Conv3d, nn.BatchNorm3d, nn.ReLU): fuse_conv_bn_relu,
    (nn.Conv1d, nn.ReLU): _seq("ConvReLU1d"), (nn.Conv2d, nn.ReLU): _seq("ConvReLU2d"),
    (nn.Conv3d, nn.ReLU): _seq("ConvReLU3d"), (nn.Linear, nn.BatchNorm1d): fuse_linear_bn,
    (nn.Linear, nn.ReLU): _seq("LinearReLU"), (nn.BatchNorm2d, nn.ReLU): _seq("BNReLU2d"),
    (nn.BatchNorm3d, nn.ReLU): _seq("BNReLU3d"),
    (nn.ConvTranspose1d, nn.BatchNorm1d): fuse_convtranspose_bn,
    (nn.ConvTranspose2d, nn.BatchNorm2d): fuse_convtranspose_bn,
    (nn.ConvTranspose3d, nn.BatchNorm3d): fuse_convtranspose_bn,
}


def get_fuser_method(op_list, additional_fuser_method_mapping=None):
    """The fuser method for a tuple of module types (the additional mapping wins)."""
    m = dict(_DEFAULT_OP_LIST_TO_FUSER_METHOD)
    m.update(additional_fuser_method_mapping or {})
    f = m.get(tuple(op_list))
    if f is None:
        names = ", ".join(f"<class '{_torch_name(t)}'>" for t in op_list)
        names += "," if len(op_list) == 1 else ""
        raise AssertionError(f"did not find fuser method for: ({names}) ")
    return f


def _torch_name(t):
    return f"torch.nn.modules.{t.__module__.rsplit('.', 1)[-1]}.{t.__name__}" \
        if t.__module__.startswith("framework.nn.modules") else f"{t.__module__}.{t.__name__}"
