"""torch.distributed.fsdp: FullyShardedDataParallel (the FSDP1 API, use_orig_params=False) over
Kiln's mpi backend (cpu tensors).

Each FSDP unit flattens the parameters of its module (those not inside a nested unit) into one
vector, pads it to a multiple of the world size and keeps only this rank's slice as the unit's
`_flat_param` (an nn.Parameter registered on the wrapped module, so an optimizer built on
`fsdp_model.parameters()` steps the local shard). Forward all-gathers the flat vector into a
fresh leaf tensor and points the module's original parameter names at views of it; when
backward has accumulated that leaf's gradient, a post-accumulate-grad hook reduce-scatters it
(averaged over ranks) into `_flat_param.grad`. NO_SHARD keeps the whole vector on every rank and
all-reduces instead. Outside forward the original names hold empty tensors, as in PyTorch.
Kiln's autograd keeps the tensors a backward needs, so the gathered values stay alive until the
backward that uses them: FULL_SHARD and SHARD_GRAD_OP differ only in when the module's names are
emptied, not in peak memory.
"""
import contextlib
import enum
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ... import distributed as dist
from ..._dispatch import STATE, wrap as _wrap
from ...nn.modules.module import Module
from ...nn.parameter import Parameter
from .wrap import _recursive_wrap

__all__ = ["FullyShardedDataParallel", "ShardingStrategy", "StateDictType",
           "FullStateDictConfig", "ShardedStateDictConfig", "LocalStateDictConfig",
           "BackwardPrefetch", "CPUOffload", "MixedPrecision", "fully_shard", "FSDPModule",
           "ShardedParameter"]

_PREFIX = "_fsdp_wrapped_module."


class ShardingStrategy(enum.Enum):
    FULL_SHARD = enum.auto()
    SHARD_GRAD_OP = enum.auto()
    NO_SHARD = enum.auto()
    HYBRID_SHARD = enum.auto()
    _HYBRID_SHARD_ZERO2 = enum.auto()


class StateDictType(enum.Enum):
    FULL_STATE_DICT = enum.auto()
    LOCAL_STATE_DICT = enum.auto()
    SHARDED_STATE_DICT = enum.auto()


class BackwardPrefetch(enum.Enum):
    BACKWARD_PRE = enum.auto()
    BACKWARD_POST = enum.auto()


@dataclass
class StateDictConfig:
    offload_to_cpu: bool = False


@dataclass
class FullStateDictConfig(StateDictConfig):
    rank0_only: bool = False


@dataclass
class ShardedStateDictConfig(StateDictConfig):
    _use_dtensor: bool = False


@dataclass
class LocalStateDictConfig(StateDictConfig):
    pass


@dataclass
class CPUOffload:
    offload_params: bool = False


@dataclass
class MixedPrecision:
    param_dtype: object = None
    reduce_dtype: object = None
    buffer_dtype: object = None


def _units(module):
    """The FSDP units in `module`'s tree, outermost first."""
    return [m for m in module.modules() if isinstance(m, FullyShardedDataParallel)]


class FullyShardedDataParallel(Module):
    def __init__(self, module, process_group=None, sharding_strategy=None, cpu_offload=None,
                 auto_wrap_policy=None, backward_prefetch=BackwardPrefetch.BACKWARD_PRE,
                 mixed_precision=None, ignored_modules=None, param_init_fn=None,
                 device_id=None, sync_module_states=False, forward_prefetch=False,
                 limit_all_gathers=True, use_orig_params=False, ignored_states=None,
                 device_mesh=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"FullyShardedDataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        pg = dist._pg(process_group, "FullyShardedDataParallel")
        if pg._backend != "mpi":
            raise NotImplementedError("FullyShardedDataParallel: Kiln shards over the mpi "
                                      "(gloo) backend on cpu tensors only; nccl is not supported")
        strategy = ShardingStrategy.FULL_SHARD if sharding_strategy is None else sharding_strategy
        if not isinstance(strategy, ShardingStrategy):
            raise TypeError(f"FullyShardedDataParallel: sharding_strategy must be a "
                            f"ShardingStrategy, got {sharding_strategy!r}")
        unsupported = [n for n, bad in (
            ("HYBRID_SHARD", strategy in (ShardingStrategy.HYBRID_SHARD,
                                          ShardingStrategy._HYBRID_SHARD_ZERO2)),
            ("mixed_precision", mixed_precision is not None),
            ("cpu_offload=CPUOffload(offload_params=True)",
             cpu_offload is not None and cpu_offload.offload_params),
            ("use_orig_params=True", use_orig_params),
            ("ignored_modules/ignored_states", ignored_modules or ignored_states),
            ("param_init_fn", param_init_fn is not None),
            ("device_mesh", device_mesh is not None)) if bad]
        if unsupported:
            raise NotImplementedError("FullyShardedDataParallel: not supported in Kiln: "
                                      + ", ".join(unsupported))
        self.process_group = pg
        self.rank, self.world_size = pg.rank(), pg.size()
        self.sharding_strategy = strategy
        self._state_dict_type = StateDictType.FULL_STATE_DICT
        self._state_dict_config = FullStateDictConfig()
        self._summoned = False
        self._sync, self._pending = True, None
        if auto_wrap_policy is not None:
            kw = dict(process_group=pg, sharding_strategy=strategy,
                      sync_module_states=sync_module_states)
            _recursive_wrap(module, auto_wrap_policy,
                            lambda m: FullyShardedDataParallel(m, **kw), only_wrap_children=True)
        self._fsdp_wrapped_module = module
        self._init_flat(module, sync_module_states)

    # ---- construction ------------------------------------------------------------------------
    def _own_params(self, module):
        """(module, name, param) for the parameters this unit owns, in registration order;
        shared parameters are listed once (the first owner) plus as aliases."""
        owned, aliases, seen = [], [], {}
        stack = [module]
        order = []
        while stack:                              # preorder, not entering nested units
            m = stack.pop(0)
            order.append(m)
            stack[0:0] = [c for c in m._modules.values()
                          if c is not None and not isinstance(c, FullyShardedDataParallel)]
        for m in order:
            for n, p in m._parameters.items():
                if p is None:
                    continue
                if id(p) in seen:
                    aliases.append((m, n, seen[id(p)]))
                else:
                    seen[id(p)] = len(owned)
                    owned.append((m, n, p))
        return owned, aliases

    def _init_flat(self, module, sync):
        owned, aliases = self._own_params(module)
        if sync and self.world_size > 1:
            ts = [p for _, _, p in owned] + [b for b in module.buffers()]
            _broadcast(self.process_group, ts)
        self._owned = [(m, n) for m, n, _ in owned]
        self._aliases = [(m, n, i) for m, n, i in aliases]
        self._shapes = [tuple(p.shape) for _, _, p in owned]
        self._numels = [int(p.numel()) for _, _, p in owned]
        self._numel = sum(self._numels)
        if not owned:
            self._flat = None
            return
        dts = {p._dtype for _, _, p in owned}
        if len(dts) > 1:
            raise ValueError("FullyShardedDataParallel: a unit must have parameters of one "
                             f"dtype (use_orig_params=False); got {sorted(d.name for d in dts)}")
        rgs = {p.requires_grad for _, _, p in owned}
        if len(rgs) > 1:
            raise ValueError("FullyShardedDataParallel: a unit's parameters must all require "
                             "grad or all not (use_orig_params=False)")
        self._dtype = owned[0][2]._dtype
        full = np.concatenate([np.asarray(p._data).reshape(-1) for _, _, p in owned])
        if self.sharding_strategy is ShardingStrategy.NO_SHARD:
            self._shard = self._numel
            local = full
        else:
            self._shard = -(-self._numel // self.world_size)
            padded = np.zeros(self._shard * self.world_size, full.dtype)
            padded[:self._numel] = full
            local = padded[self.rank * self._shard:(self.rank + 1) * self._shard].copy()
        # a plain attribute: the parameter is registered on the wrapped module, as in PyTorch
        object.__setattr__(self, "_flat", Parameter(_wrap(local, self._dtype), rgs.pop()))
        for m, n, _ in owned:
            del m._parameters[n]
        for m, n, _ in aliases:
            del m._parameters[n]
        module.register_parameter("_flat_param", self._flat)
        self._set_names([None] * len(owned))

    def _set_names(self, tensors):
        empty = _wrap(np.empty(0, self._dtype.np), self._dtype)
        for (m, n), t in zip(self._owned, tensors):
            object.__setattr__(m, n, empty if t is None else t)
        for m, n, i in self._aliases:
            object.__setattr__(m, n, empty if tensors[i] is None else tensors[i])

    # ---- communication -----------------------------------------------------------------------
    def _gather(self):
        """The whole flat vector (numpy, unpadded)."""
        local = np.ascontiguousarray(self._flat._data)
        if self.sharding_strategy is ShardingStrategy.NO_SHARD or self.world_size == 1:
            return local[:self._numel].copy()
        out = np.empty(self._shard * self.world_size, local.dtype)
        self.process_group._impl.allgather(local, out).wait()
        return out[:self._numel]

    def _reduce_grad(self, full):
        g = np.asarray(full._grad._data).reshape(-1)
        full._grad = None
        if self._pending is not None:          # gradients accumulated under no_sync()
            g = g + self._pending
            self._pending = None
        if not self._sync:
            self._pending = g
            return
        n = self.world_size
        if self.sharding_strategy is ShardingStrategy.NO_SHARD:
            buf = np.ascontiguousarray(g, dtype=self._dtype.np)
            if n > 1:
                self.process_group._impl.allreduce(buf, dist._rt.SUM).wait()
        else:
            send = np.zeros(self._shard * n, self._dtype.np)
            send[:self._numel] = g
            buf = np.empty(self._shard, self._dtype.np)
            if n > 1:
                self.process_group._impl.reduce_scatter(send, buf, dist._rt.SUM).wait()
            else:
                buf[:] = send
        buf /= n
        fp = self._flat
        if fp._grad is None:
            fp._grad = _wrap(buf, self._dtype)
        else:
            fp._grad._data = fp._grad._data + buf
            fp._grad._bump()
        if self.sharding_strategy is not ShardingStrategy.NO_SHARD:
            self._set_names([None] * len(self._owned))      # reshard after backward

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        need_grad = False
        if self._flat is not None and not self._summoned:
            full = _wrap(self._gather(), self._dtype)
            need_grad = STATE.grad_enabled and self._flat.requires_grad
            if need_grad:
                full.requires_grad_(True)
                me = weakref.ref(self)
                full.register_post_accumulate_grad_hook(lambda t: me()._reduce_grad(t))
            self._set_names([v.view(s) for v, s in zip(full.split(self._numels), self._shapes)])
        out = self._fsdp_wrapped_module(*args, **kwargs)
        if self._flat is not None and not self._summoned and (
                self.sharding_strategy is ShardingStrategy.FULL_SHARD or not need_grad):
            self._set_names([None] * len(self._owned))     # the graph keeps what backward needs
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients of backwards inside accumulate unsharded on each rank (no communication);
        the first backward after it reduce-scatters their sum with its own."""
        units = _units(self)
        old = [u._sync for u in units]
        for u in units:
            u._sync = False
        try:
            yield
        finally:
            for u, o in zip(units, old):
                u._sync = o

    @property
    def module(self):
        return self._fsdp_wrapped_module

    def __getattr__(self, name):            # as PyTorch: unknown names go to the wrapped module
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["_fsdp_wrapped_module"], name)

    def __getitem__(self, key):
        return self._modules["_fsdp_wrapped_module"].__getitem__(key)

    # ---- full parameters ---------------------------------------------------------------------
    def _unflatten_as_params(self):
        """Put the gathered parameters back as nn.Parameters under their own names (and take
        _flat_param out), so Module's own state_dict / named_parameters see the plain model."""
        full = self._gather()
        ps, o = [], 0
        for n, s in zip(self._numels, self._shapes):
            ps.append(Parameter(_wrap(full[o:o + n].reshape(s).copy(), self._dtype),
                                self._flat.requires_grad))
            o += n
        mod = self._fsdp_wrapped_module
        del mod._parameters["_flat_param"]
        for (m, n), p in zip(self._owned, ps):
            m.__dict__.pop(n, None)
            m._parameters[n] = p
        for m, n, i in self._aliases:
            m.__dict__.pop(n, None)
            m._parameters[n] = ps[i]
        return ps

    def _reflatten(self, ps, writeback):
        if writeback:
            full = np.concatenate([np.asarray(p._data).reshape(-1) for p in ps])
            if self.sharding_strategy is ShardingStrategy.NO_SHARD:
                local = full
            else:
                local = np.zeros(self._shard, full.dtype)
                part = full[self.rank * self._shard:(self.rank + 1) * self._shard]
                local[:part.size] = part
            self._flat._data[...] = local
            self._flat._bump()
        for m, n in self._owned:
            del m._parameters[n]
        for m, n, _ in self._aliases:
            del m._parameters[n]
        self._fsdp_wrapped_module._parameters["_flat_param"] = self._flat
        self._set_names([None] * len(self._owned))

    @staticmethod
    @contextlib.contextmanager
    def summon_full_params(module, recurse=True, writeback=True, rank0_only=False,
                           offload_to_cpu=False, with_grads=False):
        """Inside: every unit's original parameters, whole, under their own names; on exit,
        with writeback, what was written into them goes back into the local shards."""
        if with_grads:
            raise NotImplementedError("summon_full_params: with_grads=True is not supported")
        units = _units(module) if recurse else [module]
        units = [u for u in units if u._flat is not None and not u._summoned]
        done = []
        try:
            for u in units:
                done.append((u, u._unflatten_as_params()))
                u._summoned = True
            yield
        finally:
            for u, ps in reversed(done):
                u._summoned = False
                u._reflatten(ps, writeback and not (rank0_only and u.rank != 0))

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        for n, p in super().named_parameters(prefix, recurse, remove_duplicate):
            yield (n.replace(_PREFIX, "") if self._summoned else n), p

    # ---- state dicts -------------------------------------------------------------------------
    @staticmethod
    def set_state_dict_type(module, state_dict_type, state_dict_config=None,
                            optim_state_dict_config=None):
        if state_dict_type not in (StateDictType.FULL_STATE_DICT,
                                   StateDictType.SHARDED_STATE_DICT):
            raise NotImplementedError(f"FullyShardedDataParallel: {state_dict_type} is not "
                                      "supported (FULL_STATE_DICT and SHARDED_STATE_DICT are)")
        if state_dict_config is None:
            state_dict_config = FullStateDictConfig() if state_dict_type is \
                StateDictType.FULL_STATE_DICT else ShardedStateDictConfig()
        prev = None
        for u in _units(module):
            if prev is None:
                prev = (u._state_dict_type, u._state_dict_config)
            u._state_dict_type, u._state_dict_config = state_dict_type, state_dict_config
        return prev

    @staticmethod
    @contextlib.contextmanager
    def state_dict_type(module, state_dict_type, state_dict_config=None,
                        optim_state_dict_config=None):
        prev = FullyShardedDataParallel.set_state_dict_type(module, state_dict_type,
                                                            state_dict_config)
        try:
            yield
        finally:
            if prev is not None:
                for u in _units(module):
                    u._state_dict_type, u._state_dict_config = prev

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """FULL_STATE_DICT: the plain model's state dict (on rank 0 only with rank0_only=True,
        others get {}); SHARDED_STATE_DICT: each parameter's dim-0 chunk for this rank
        (torch.chunk's split, what DTensor's Shard(0) holds) as a plain tensor, buffers whole."""
        if self._summoned:          # inside an enclosing unit's state_dict: a plain module
            return super().state_dict(*args, destination=destination, prefix=prefix,
                                      keep_vars=keep_vars)
        with self.summon_full_params(self, writeback=False):
            mod = self._fsdp_wrapped_module
            sd = mod.state_dict(keep_vars=keep_vars)
            params = {n.replace(_PREFIX, "") for n, _ in mod.named_parameters()}
        sd = OrderedDict((k.replace(_PREFIX, ""), v) for k, v in sd.items())
        if self._state_dict_type is StateDictType.SHARDED_STATE_DICT:
            sd = OrderedDict((k, _chunk(v, self.rank, self.world_size) if k in params else v)
                             for k, v in sd.items())
        elif getattr(self._state_dict_config, "rank0_only", False) and self.rank != 0:
            sd = OrderedDict()
        sd = OrderedDict((prefix + k, v) for k, v in sd.items())
        if destination is not None:
            destination.update(sd)
            return destination
        return sd

    def load_state_dict(self, state_dict, strict=True, assign=False):
        sd = OrderedDict(state_dict)
        with self.summon_full_params(self, writeback=True):
            mod = self._fsdp_wrapped_module
            params = {n.replace(_PREFIX, "") for n, _ in mod.named_parameters()}
            if self._state_dict_type is StateDictType.SHARDED_STATE_DICT:
                for k in sorted(params & set(sd)):     # every rank sends its chunk of each
                    v = sd[k]
                    chunks = [None] * self.world_size
                    dist.all_gather_object(chunks, np.asarray(v._data),
                                           group=self.process_group)
                    sd[k] = _wrap(np.concatenate(chunks, 0) if np.ndim(chunks[0]) else
                                 chunks[0], v._dtype)
            clean = {k.replace(_PREFIX, ""): k for k in mod.state_dict().keys()}
            renamed = OrderedDict((clean.get(k, k), v) for k, v in sd.items())
            return mod.load_state_dict(renamed, strict=strict, assign=False)

    # ---- gradient clipping -------------------------------------------------------------------
    def clip_grad_norm_(self, max_norm, norm_type=2.0):
        """Clip the gradients of all units by their total norm over every rank's shard (a
        collective); returns the total norm."""
        norm_type = float(norm_type)
        sharded, whole = [], []
        for u in _units(self):
            if u._flat is not None and u._flat._grad is not None:
                g = np.asarray(u._flat._grad._data, np.float64)
                (whole if u.sharding_strategy is ShardingStrategy.NO_SHARD else sharded).append(g)
        impl = self.process_group._impl
        if norm_type == float("inf"):
            local = np.array([max([np.abs(g).max(initial=0.0) for g in sharded], default=0.0)])
            if self.world_size > 1:
                impl.allreduce(local, dist._rt.MAX).wait()
            total = max(float(local[0]), max([np.abs(g).max(initial=0.0) for g in whole],
                                              default=0.0))
        else:
            local = np.array([sum(float((np.abs(g) ** norm_type).sum()) for g in sharded)])
            if self.world_size > 1:
                impl.allreduce(local, dist._rt.SUM).wait()
            total = (float(local[0]) + sum(float((np.abs(g) ** norm_type).sum())
                                           for g in whole)) ** (1.0 / norm_type)
        coef = min(float(max_norm) / (total + 1e-6), 1.0)
        if coef < 1.0:
            for u in _units(self):
                if u._flat is not None and u._flat._grad is not None:
                    gt = u._flat._grad
                    gt._data = (gt._data * coef).astype(gt._data.dtype)
                    gt._bump()
        dt = self._flat._dtype if self._flat is not None else None
        from runtime import dtypes
        dt = dt or dtypes.float32
        return _wrap(np.array(total, dt.np), dt)


FSDP = FullyShardedDataParallel


def _chunk(t, rank, world):
    a = np.asarray(t._data)
    if a.ndim == 0:
        return t
    k = -(-a.shape[0] // world)
    return _wrap(a[rank * k:(rank + 1) * k].copy(), t._dtype)


def _broadcast(pg, tensors):
    from .. import _broadcast_flat
    _broadcast_flat(pg._impl, tensors)


from ._fully_shard import FSDPModule, Shard, ShardedParameter, fully_shard  # noqa: E402,F401
