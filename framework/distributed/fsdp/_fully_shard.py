"""FSDP2: fully_shard(module). Kiln has no DTensor, so a sharded parameter is a ShardedParameter:
an nn.Parameter whose data is this rank's dim-0 chunk of the parameter (torch.chunk's split,
what a DTensor with placements (Shard(0),) holds locally). Its .shape is the local shape;
full_shape, to_local(), full_tensor() and placements describe the whole. Optimizers and state
dicts see these local chunks (dcp.save writes one file per rank of them).

A forward pre-hook all-gathers each parameter into a fresh leaf tensor that shadows the
parameter's name on the module for the forward; a post-accumulate-grad hook on that leaf
reduce-scatters its gradient (averaged over ranks) into the shard's .grad.
"""
import weakref

import numpy as np

from ... import distributed as dist
from ..._dispatch import STATE, wrap
from ...nn.parameter import Parameter

_CLASSES = {}


class Shard:
    def __init__(self, dim):
        self.dim = dim

    def __repr__(self):
        return f"Shard(dim={self.dim})"

    def __eq__(self, other):
        return isinstance(other, Shard) and other.dim == self.dim


class ShardedParameter(Parameter):
    """This rank's dim-0 chunk of a parameter sharded over a process group (a stand-in for
    PyTorch's DTensor parameter)."""

    def to_local(self):
        return self

    @property
    def placements(self):
        return (Shard(0),)

    def full_tensor(self):
        return wrap(_gather(self._fsdp_pg, np.asarray(self._data), self._fsdp_full_shape),
                    self._dtype)


def _rows(shape, world):
    d0 = shape[0] if shape else 1
    return d0, -(-d0 // world)


def _gather(pg, local, full_shape):
    world = pg.size()
    d0, k = _rows(full_shape, world)
    row = full_shape[1:] if full_shape else ()
    buf = np.zeros((k,) + tuple(row), local.dtype)
    buf[:local.shape[0] if full_shape else local.size] = local.reshape((-1,) + tuple(row))
    if world == 1:
        out = buf
    else:
        out = np.empty((world * k,) + tuple(row), local.dtype)
        pg._impl.allgather(np.ascontiguousarray(buf), out).wait()
    return out[:d0].reshape(full_shape)


class FSDPModule:
    """Mixed into the class of a module that fully_shard() was applied to."""

    def unshard(self, async_op=False):
        st = self._fsdp_state
        st.unshard(grad=False)
        return None

    def reshard(self):
        self._fsdp_state.reshard()

    def set_requires_gradient_sync(self, requires_gradient_sync, *, recurse=True):
        mods = [m for m in self.modules() if isinstance(m, FSDPModule)] if recurse else [self]
        for m in mods:
            m._fsdp_state.sync = bool(requires_gradient_sync)

    def set_reshard_after_forward(self, reshard_after_forward, recurse=True):
        mods = [m for m in self.modules() if isinstance(m, FSDPModule)] if recurse else [self]
        for m in mods:
            m._fsdp_state.reshard_after_forward = bool(reshard_after_forward)


class _State:
    def __init__(self, module, pg, reshard_after_forward):
        self.pg = pg
        self.sync = True
        self.reshard_after_forward = reshard_after_forward
        self.params = []                       # (owner module, name, ShardedParameter)
        self.live = []                         # (owner, name) shadowed by gathered tensors
        stack, order = [module], []
        while stack:
            m = stack.pop(0)
            order.append(m)
            stack[0:0] = [c for c in m._modules.values()
                          if c is not None and not isinstance(c, FSDPModule)]
        seen = {}
        world, rank = pg.size(), pg.rank()
        for m in order:
            for n, p in list(m._parameters.items()):
                if p is None:
                    continue
                if id(p) in seen:              # a shared parameter: the same shard object
                    m._parameters[n] = seen[id(p)]
                    self.params.append((m, n, seen[id(p)]))
                    continue
                full = np.asarray(p._data)
                shape = tuple(full.shape)
                d0, k = _rows(shape, world)
                rows = full.reshape((d0,) + shape[1:]) if shape else full.reshape(1)
                local = np.array(rows[rank * k:(rank + 1) * k])
                sp = ShardedParameter(wrap(local, p._dtype), p.requires_grad)
                sp._fsdp_full_shape = shape
                sp._fsdp_pg = pg
                sp._fsdp_pending = None        # unreduced gradient while sync is off
                m._parameters[n] = sp
                seen[id(p)] = sp
                self.params.append((m, n, sp))

    def unshard(self, grad):
        self.reshard()
        done = {}
        for m, n, sp in self.params:
            t = done.get(id(sp))
            if t is None:
                t = wrap(_gather(self.pg, np.asarray(sp._data), sp._fsdp_full_shape), sp._dtype)
                if grad and sp.requires_grad:
                    t.requires_grad_(True)
                    t.register_post_accumulate_grad_hook(_reducer(self, sp))
                done[id(sp)] = t
            m.__dict__[n] = t                  # shadows the shard under the same name
            self.live.append((m, n))

    def reshard(self):
        for m, n in self.live:
            m.__dict__.pop(n, None)
        self.live = []

    def reduce(self, sp, full):
        g = np.asarray(full._grad._data)
        full._grad = None
        if sp._fsdp_pending is not None:
            g = g + sp._fsdp_pending
            sp._fsdp_pending = None
        if not self.sync:
            sp._fsdp_pending = g
            return
        world = self.pg.size()
        shape = sp._fsdp_full_shape
        d0, k = _rows(shape, world)
        row = shape[1:] if shape else ()
        send = np.zeros((world * k,) + tuple(row), g.dtype)
        send[:d0] = g.reshape((d0,) + tuple(row))
        buf = np.empty((k,) + tuple(row), g.dtype)
        if world > 1:
            self.pg._impl.reduce_scatter(send, buf, dist._rt.SUM).wait()
        else:
            buf[...] = send
        mine = (buf[:sp._data.shape[0]] if shape else buf.reshape(-1)[:sp._data.size]) / world
        mine = mine.astype(sp._data.dtype).reshape(sp._data.shape)
        if sp._grad is None:
            sp._grad = wrap(mine, sp._dtype)
        else:
            sp._grad._data = sp._grad._data + mine
            sp._grad._bump()


def _reducer(state, sp):
    ref = weakref.ref(sp)
    return lambda full: state.reduce(ref(), full)


def _pre_forward(module, args):
    module._fsdp_state.unshard(grad=STATE.grad_enabled)


def _post_forward(module, args, output):
    st = module._fsdp_state
    if st.reshard_after_forward or not STATE.grad_enabled:
        st.reshard()                           # the autograd graph keeps what backward needs


def fully_shard(module, *, mesh=None, reshard_after_forward=True, shard_placement_fn=None,
                mp_policy=None, offload_policy=None, ignored_params=None):
    """Shard `module`'s parameters (those not under a module fully_shard was applied to
    before) over `mesh` (a 1-D DeviceMesh; default: the world) and return it, now an instance
    of FSDP<its class>."""
    from ...nn.modules.module import Module
    if isinstance(module, (list, tuple)):
        raise NotImplementedError("fully_shard: a list of modules is not supported in Kiln")
    if not isinstance(module, Module):
        raise TypeError(f"fully_shard: module must be an nn.Module, got "
                        f"{type(module).__name__}")
    if isinstance(module, FSDPModule):
        raise AssertionError("Each distinct composable distributed API can only be applied to a "
                             "module once. fully_shard has already been applied to the "
                             f"following module:\n{module}")
    unsupported = [n for n, bad in (("shard_placement_fn", shard_placement_fn is not None),
                                    ("mp_policy", mp_policy is not None),
                                    ("offload_policy", offload_policy is not None),
                                    ("ignored_params", ignored_params)) if bad]
    if unsupported:
        raise NotImplementedError("fully_shard: not supported in Kiln: " + ", ".join(unsupported))
    if not isinstance(reshard_after_forward, bool):
        raise NotImplementedError("fully_shard: reshard_after_forward must be a bool in Kiln, "
                                  f"got {reshard_after_forward!r}")
    if mesh is None:
        pg = dist._pg(None, "fully_shard")
    else:
        if mesh.ndim != 1:
            raise NotImplementedError(f"fully_shard: Kiln shards over a 1-D mesh, got a "
                                      f"{mesh.ndim}-D mesh")
        pg = mesh.get_group()
    if pg._backend != "mpi":
        raise NotImplementedError("fully_shard: Kiln shards over the mpi (gloo) backend on cpu "
                                  "tensors only; nccl is not supported")
    object.__setattr__(module, "_fsdp_state", _State(module, pg, reshard_after_forward))
    module.register_forward_pre_hook(_pre_forward)
    module.register_forward_hook(_post_forward)
    cls = type(module)
    new = _CLASSES.get(cls)
    if new is None:
        new = _CLASSES[cls] = type(f"FSDP{cls.__name__}", (FSDPModule, cls), {})
    module.__class__ = new
    return module
