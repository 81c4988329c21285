"""fuse_conv_bn_eval / fuse_linear_bn_eval and their weight forms (torch.nn.utils.fusion):
fold an eval-mode BatchNorm into the preceding conv or linear layer."""
import copy

from ... import ops_math as M
from ... import creation as C
from ... import ops_shape as S
from ...autograd.grad_mode import no_grad
from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]


def fuse_conv_bn_eval(conv, bn, transpose=False):
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn running stats are required")
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean,
                                                    bn.running_var, bn.eps, bn.weight, bn.bias,
                                                    transpose)
    return fused


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    with no_grad():
        dtype = conv_w.dtype
        conv_b = C.zeros_like(bn_rm) if conv_b is None else conv_b
        bn_w = C.ones_like(bn_rm) if bn_w is None else bn_w
        bn_b = C.zeros_like(bn_rm) if bn_b is None else bn_b
        var_rsqrt = M.rsqrt(M.add(bn_rv, bn_eps))
        nd = conv_w.ndim - 1
        shape = ((1, -1) + (1,) * (nd - 1)) if transpose else ((-1,) + (1,) * nd)
        w = M.mul(conv_w, S.reshape(M.mul(bn_w, var_rsqrt), shape)).to(dtype)
        b = M.add(M.mul(M.mul(M.sub(conv_b, bn_rm), var_rsqrt), bn_w), bn_b).to(dtype)
    return Parameter(w, conv_w.requires_grad), Parameter(b, conv_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    if not (linear.out_features == bn.num_features or bn.num_features == 1):
        raise AssertionError("To fuse, linear.out_features == bn.num_features or "
                             "bn.num_features == 1, got linear.out_features="
                             f"{linear.out_features} and bn.num_features={bn.num_features}")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn running stats are required")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean,
                                                      bn.running_var, bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    with no_grad():
        if linear_b is None:
            linear_b = C.zeros_like(bn_rm)
        scale = M.mul(bn_w, M.rsqrt(M.add(bn_rv, bn_eps)))
        w = M.mul(linear_w, S.unsqueeze(scale, -1))
        b = M.add(M.mul(M.sub(linear_b, bn_rm), scale), bn_b)
    return Parameter(w, linear_w.requires_grad), Parameter(b, linear_b.requires_grad)
