"""BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm.

Running statistics follow PyTorch: the running variance is updated with the unbiased batch
variance; momentum=None means a cumulative average (factor 1/num_batches_tracked)."""
import numbers

from ... import creation, _dispatch
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from runtime import dtypes as dt
from ..parameter import Parameter
from .. import init
from .. import _functional_conv as F
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm",
           "CrossMapLRN2d", "SyncBatchNorm"]



def _affine_parameters(mod, shape, affine, bias, dtype):
    """weight and bias Parameters of `shape` (filled by _reset_affine), or both registered as
    None: what every normalisation layer with an `affine`/`elementwise_affine` flag has."""
    if affine:
        mod.weight = Parameter(creation.empty(shape, dtype=dtype))
        if bias:
            mod.bias = Parameter(creation.empty(shape, dtype=dtype))
        else:
            mod.register_parameter("bias", None)
    else:
        mod.register_parameter("weight", None)
        mod.register_parameter("bias", None)


def _reset_affine(mod):
    if mod.weight is not None:
        init.ones_(mod.weight)
    if mod.bias is not None:
        init.zeros_(mod.bias)

class _NormBase(Module):
    _version = 2
    __constants__ = ["track_running_stats", "momentum", "eps", "num_features", "affine"]

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, bias=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_parameters(self, num_features, affine, bias, dtype)
        if self.track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", creation.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", creation.tensor(0, dtype=dt.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0
            for t in (self.running_mean, self.running_var, self.num_batches_tracked):
                t._bump()

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input):
        raise NotImplementedError

    def extra_repr(self):              # (PyTorch 2.13 prints bias: whether there is one)
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats:
            # checkpoints from before num_batches_tracked existed
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                state_dict[key] = creation.tensor(0, dtype=dt.int64)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class _BatchNorm(_NormBase):
    def forward(self, input):
        self._check_input_dim(input)
        # reject bad input before touching num_batches_tracked, so a failed call changes nothing
        if input.shape[1] != self.num_features:
            raise RuntimeError(f"running_mean should contain {input.shape[1]} elements not "
                               f"{self.num_features} (input of size {list(input.shape)})")
        if self.training and input.numel() // input.shape[1] <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {input.size()}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            if _dispatch.STATE.tracer is None and _dispatch.VMAP is None and \
                    isinstance(self.num_batches_tracked, Tensor):
                self.num_batches_tracked._data[...] += 1
                self.num_batches_tracked._bump()
            else:       # compile(): an in-place op the trace captures (and replays); vmap:
                # one per model in stack_module_state's stacked counter; export: add_ recorded
                with no_grad():
                    self.num_batches_tracked.add_(1)
            if self.momentum is None:      # cumulative moving average
                factor = 1.0 / self.num_batches_tracked.item()
        # without running stats, eval mode still normalises with the batch's statistics
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if use_running else None,
                            self.running_var if use_running else None, self.weight, self.bias,
                            bn_training, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    def _check_input_dim(self, input):
        if input.dim() != 2 and input.dim() != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class BatchNorm2d(_BatchNorm):
    def _check_input_dim(self, input):
        if input.dim() != 4:
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


class BatchNorm3d(_BatchNorm):
    def _check_input_dim(self, input):
        if input.dim() != 5:
            raise ValueError(f"expected 5D input (got {input.dim()}D input)")


class _InstanceNorm(_NormBase):
    _nobatch = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def _check_input_dim(self, input):
        if input.dim() not in (self._nobatch, self._nobatch + 1):
            raise ValueError(f"expected {self._nobatch}D or {self._nobatch + 1}D input (got "
                             f"{input.dim()}D input)")

    def forward(self, input):
        self._check_input_dim(input)
        feature_dim = input.dim() - self._nobatch
        if input.size(feature_dim) != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={feature_dim} to match "
                                 f"num_features ({self.num_features}), but got: "
                                 f"{input.size(feature_dim)}.")
            import warnings
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You "
                          "can silence this warning by not passing in num_features, which is "
                          "not used because affine=False")
        unbatched = input.dim() == self._nobatch
        x = input.unsqueeze(0) if unbatched else input
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    _nobatch = 2


class InstanceNorm2d(_InstanceNorm):
    _nobatch = 3


class InstanceNorm3d(_InstanceNorm):
    _nobatch = 4


def _shape_tuple(s):
    return (int(s),) if isinstance(s, numbers.Integral) else tuple(int(e) for e in s)


class LayerNorm(Module):
    __constants__ = ["normalized_shape", "eps", "elementwise_affine"]

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    __constants__ = ["num_groups", "num_channels", "eps", "affine"]

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None,
                 bias=True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, num_channels, affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    __constants__ = ["normalized_shape", "eps", "elementwise_affine"]

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if self.elementwise_affine:
            self.weight = Parameter(creation.empty(self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    __constants__ = ["size", "alpha", "beta", "k"]

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def _cross_map_lrn2d(input, size, alpha, beta, k):
    """torch.nn.CrossMapLRN2d's forward: input * (k + alpha / size * window sum of squares over
    channels) ** -beta, the window sums by PyTorch's running recurrence (which keeps channel 0 in
    the window one step longer than a centred window would)."""
    from ... import ops_math as M, ops_shape as S
    if input.dim() != 4:
        raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.dim()}D instead.")
    sq = M.mul(input, input)
    C = input.shape[1]
    pre_pad = int((size - 1) / 2 + 1)
    chans = [S.select(sq, 1, c) for c in range(C)]
    cur = None
    for c in range(min(pre_pad, C)):
        cur = chans[c] if cur is None else M.add(cur, chans[c])
    if cur is None:
        return M.mul(input, 0)
    scales = [cur]
    for c in range(1, C):
        if c < C - pre_pad + 1:
            cur = M.add(cur, chans[c + pre_pad - 1])
        if c > pre_pad:
            cur = M.sub(cur, chans[c - pre_pad])
        scales.append(cur)
    scale = M.add(M.mul(S.stack(scales, 1), alpha / size), k)
    return M.mul(M.pow(scale, -beta), input)


class CrossMapLRN2d(Module):
    """Local response normalisation across channels of a 4-D (N, C, H, W) input (the Lua-torch
    layer torch keeps as nn.CrossMapLRN2d)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        return _cross_map_lrn2d(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def _all_reduce_sum(x, group):
    """x summed over the ranks of `group`; the gradient is summed over the ranks the same way
    (each rank's loss depends on every rank's x through the sum)."""
    from ... import distributed as dist
    from ...autograd.function import Function

    class _AllReduceSum(Function):
        @staticmethod
        def forward(ctx, t):
            out = t.detach().clone()
            dist.all_reduce(out, group=group)
            return out

        @staticmethod
        def backward(ctx, g):
            g = g.detach().clone()
            dist.all_reduce(g, group=group)
            return g
    return _AllReduceSum.apply(x)


def _sync_batch_norm(input, weight, bias, running_mean, running_var, momentum, eps, group):
    """Batch norm whose batch statistics cover every rank's batch: the per-channel sums and the
    element counts are all-reduced (two passes: the mean, then the squared deviations)."""
    from ... import ops_math as M, ops_shape as S
    C = input.shape[1]
    dims = (0,) + tuple(range(2, input.ndim))
    shape = (1, C) + (1,) * (input.ndim - 2)
    count = creation.tensor([float(input.numel() // C)], dtype=dt.float64, device=input.device)
    from ... import distributed as dist
    dist.all_reduce(count, group=group)
    n = int(count.item())
    if n <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"{input.size()} on this rank ({n} values per channel over all ranks)")
    mean = M.div(_all_reduce_sum(M.sum(input, dims), group), n)
    xc = M.sub(input, S.reshape(mean, shape))
    var = M.div(_all_reduce_sum(M.sum(M.mul(xc, xc), dims), group), n)
    y = M.mul(xc, S.reshape(M.rsqrt(M.add(var, eps)), shape))
    if weight is not None:
        y = M.mul(y, S.reshape(weight, shape))
    if bias is not None:
        y = M.add(y, S.reshape(bias, shape))
    with no_grad():
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(M.mul(mean.detach(), momentum))
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(M.mul(var.detach(), momentum * n / (n - 1)))
    return y


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over N-D input whose training-mode batch statistics are all-reduced across the
    process group (framework.distributed initialised with world size > 1: every rank normalises
    with the statistics of the whole global batch); otherwise plain BatchNorm. Kiln syncs cpu
    tensors over MPI as well as device tensors."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def _check_non_zero_input_channels(self, input):
        if input.size(1) == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")

    def _need_sync(self):
        """(sync?, process group): sync when distributed is up with more than one rank."""
        from ... import distributed as dist
        if not (dist.is_available() and dist.is_initialized()):
            return False, None
        group = self.process_group or dist.group.WORLD
        return dist.get_world_size(group) > 1, group

    def forward(self, input):
        self._check_input_dim(input)
        self._check_non_zero_input_channels(input)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        sync, group = self._need_sync() if (bn_training and self.training) else (False, None)
        if not sync:
            return super().forward(input)
        if input.shape[1] != self.num_features:
            raise RuntimeError(f"running_mean should contain {input.shape[1]} elements not "
                               f"{self.num_features} (input of size {list(input.shape)})")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / self.num_batches_tracked.item()
        track = self.track_running_stats
        return _sync_batch_norm(input, self.weight, self.bias,
                                self.running_mean if track else None,
                                self.running_var if track else None, factor, self.eps, group)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm*d replaced by a SyncBatchNorm sharing its parameters
        and buffers (recursively); other modules are returned as they are."""
        module_output = module
        if isinstance(module, _BatchNorm):
            module_output = cls(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats, process_group)
            if module.affine:
                with no_grad():
                    module_output.weight = module.weight
                    module_output.bias = module.bias
            module_output.running_mean = module.running_mean
            module_output.running_var = module.running_var
            module_output.num_batches_tracked = module.num_batches_tracked
            module_output.training = module.training
            if hasattr(module, "qconfig"):
                module_output.qconfig = module.qconfig
        for name, child in module.named_children():
            module_output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        del module
        return module_output
