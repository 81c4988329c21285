"""torch.distributed.optim: ZeroRedundancyOptimizer (ZeRO stage 1) over Kiln's process groups."""
import copy

import numpy as np

from ... import distributed as dist
from ...optim.optimizer import Optimizer

__all__ = ["ZeroRedundancyOptimizer"]


class ZeroRedundancyOptimizer(Optimizer):
    """Wraps `optimizer_class`: each rank keeps the optimizer state of its partition of the
    parameters only (greedy by size, as PyTorch partitions), steps that partition, and then
    broadcasts the updated values from their owners, so every rank ends the step with the same
    parameters. Gradients must already be the same on every rank (DDP averages them)."""

    def __init__(self, params, optimizer_class, process_group=None,
                 parameters_as_bucket_view=False, overlap_with_ddp=False, **defaults):
        if overlap_with_ddp:
            raise NotImplementedError("ZeroRedundancyOptimizer: overlap_with_ddp=True is not "
                                      "supported in Kiln")
        self._ready = False
        pg = dist._pg(process_group, "ZeroRedundancyOptimizer")
        if pg._backend != "mpi":
            raise NotImplementedError("ZeroRedundancyOptimizer: only the mpi (gloo) backend on "
                                      "cpu tensors is supported")
        self.process_group = pg
        self.world_size, self.rank = pg.size(), pg.rank()
        self.global_rank = pg._ranks[self.rank]
        self.parameters_as_bucket_view = parameters_as_bucket_view
        self._optim_constructor = optimizer_class
        self._optim_defaults = defaults
        self._all_state_dicts = []
        super().__init__(params, defaults)
        self._ready = True
        self._build_local()

    # ---- partition -----------------------------------------------------------------------
    def _partition(self):
        """per rank: a list of param groups (one per global group) holding that rank's
        params; each parameter goes to the rank with the fewest elements so far, largest
        parameters first."""
        sizes = [0] * self.world_size
        per_rank = [[] for _ in range(self.world_size)]
        for g in self.param_groups:
            mine = [[] for _ in range(self.world_size)]
            for p in sorted(g["params"], key=lambda t: t.numel(), reverse=True):
                r = sizes.index(min(sizes))
                mine[r].append(p)
                sizes[r] += p.numel()
            for r in range(self.world_size):
                gr = copy.copy(g)
                gr["params"] = mine[r]
                per_rank[r].append(gr)
        return per_rank

    def _build_local(self):
        self._per_rank = self._partition()
        self._owner = {id(p): r for r, groups in enumerate(self._per_rank)
                       for g in groups for p in g["params"]}
        old = getattr(self, "optim", None)
        self.optim = self._optim_constructor(self._per_rank[self.rank], **self._optim_defaults)
        if old is not None:            # add_param_group: keep the state gathered so far
            for p, s in old.state.items():
                if self._owner.get(id(p)) == self.rank:
                    self.optim.state[p] = s
        self.state = self.optim.state
        self._sync_hparams(self.param_groups, self.optim.param_groups)

    @staticmethod
    def _sync_hparams(src, dst):
        for s, d in zip(src, dst):
            for k, v in s.items():
                if k != "params":
                    d[k] = v

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        if getattr(self, "_ready", False):
            self._build_local()

    # ---- step ----------------------------------------------------------------------------
    def step(self, closure=None, **kwargs):
        self._sync_hparams(self.param_groups, self.optim.param_groups)
        loss = self.optim.step(closure, **kwargs) if closure is not None or kwargs \
            else self.optim.step()
        self._sync_hparams(self.optim.param_groups, self.param_groups)
        self._sync_params()
        return loss

    def _sync_params(self):
        """Every owner broadcasts its updated parameters: one flat broadcast per rank and dtype."""
        if self.world_size == 1:
            return
        from .. import _broadcast_flat
        impl = self.process_group._impl
        for r, groups in enumerate(self._per_rank):
            _broadcast_flat(impl, [p for g in groups for p in g["params"]], r,
                            write=r != self.rank)

    # ---- state dicts ---------------------------------------------------------------------
    def _global_index(self):
        idx, i = {}, 0
        for g in self.param_groups:
            for p in g["params"]:
                idx.setdefault(id(p), i)
                i += 1
        return idx

    def consolidate_state_dict(self, to=0):
        """Gather every rank's optimizer state on rank `to` (a collective: call it on all)."""
        local = self.optim.state_dict()
        # local indices -> global indices, so the receiver needs no partition of its own
        gidx = self._global_index()
        lparams = [p for g in self.optim.param_groups for p in g["params"]]
        state = {gidx[id(lparams[i])]: _to_numpy(s) for i, s in local["state"].items()}
        everyone = [None] * self.world_size if self.rank == dist.get_group_rank(
            self.process_group, to) else None
        dist.gather_object(state, everyone, dst=to, group=self.process_group)
        self._all_state_dicts = everyone or []

    def state_dict(self):
        if not self._all_state_dicts:
            raise RuntimeError("Optimizer state has not been consolidated on this rank. Please "
                               "call `consolidate_state_dict(to=0)` on all ranks beforehand if "
                               "you meant to save the global state.")
        state = {}
        for s in self._all_state_dicts:
            state.update(s)
        state = {k: _from_numpy(state[k]) for k in sorted(state)}
        gidx = self._global_index()
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = [gidx[id(p)] for p in g["params"]]
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        saved = {}
        for g, s in zip(self.param_groups, groups):
            for p, i in zip(g["params"], s["params"]):
                saved[id(p)] = i
            for k, v in s.items():
                if k != "params":
                    g[k] = v
        lstate, lgroups, j = {}, [], 0
        for lg in self.optim.param_groups:
            ids = []
            for p in lg["params"]:
                k = saved[id(p)]
                if k in state_dict["state"]:
                    lstate[j] = state_dict["state"][k]
                ids.append(j)
                j += 1
            lgroups.append(ids)
        packed = [dict({k: v for k, v in g.items() if k != "params"}, params=ids)
                  for g, ids in zip(groups, lgroups)]
        self.optim.load_state_dict({"state": lstate, "param_groups": packed})
        self.state = self.optim.state
        self._sync_hparams(self.param_groups, self.optim.param_groups)


def _to_numpy(state):
    from ...tensor import Tensor
    return {k: ("__tensor__", v._dtype.name, np.array(v._data)) if isinstance(v, Tensor) else v
            for k, v in state.items()}


def _from_numpy(state):
    from ..._dispatch import wrap
    from runtime import dtypes
    out = {}
    for k, v in state.items():
        if isinstance(v, tuple) and len(v) == 3 and v[0] == "__tensor__":
            v = wrap(v[2], dtypes._dtype_by_name(v[1]))
        out[k] = v
    return out
