"""torch.distributed.checkpoint (dcp): save / load a state dict from every rank.

Each rank writes what it holds to CHECKPOINT_ID/__{rank}_0.distcp (a sharded state dict, e.g.
from FSDP's SHARDED_STATE_DICT, holds this rank's chunks) and rank 0 writes
CHECKPOINT_ID/.metadata (world size and every rank's keys, shapes and dtypes). load() fills the
given state dict in place from this rank's file. Kiln does not reshard: loading needs the world
size the checkpoint was saved with. Values with state_dict()/load_state_dict() (Stateful: a
module, an optimizer) are saved through their state_dict() and restored through
load_state_dict().
"""
import os
import pickle
from typing import Protocol, runtime_checkable

import numpy as np

from ... import distributed as dist
from ...tensor import Tensor

__all__ = ["save", "load", "Stateful", "CheckpointException"]


class CheckpointException(RuntimeError):
    pass


@runtime_checkable
class Stateful(Protocol):
    """Anything with state_dict() and load_state_dict() (duck-typed, as in PyTorch)."""

    def state_dict(self):
        ...

    def load_state_dict(self, state_dict):
        ...


def _stateful(v):
    return not isinstance(v, (dict, Tensor)) and isinstance(v, Stateful)


def _flatten(obj, prefix, out):
    if _stateful(obj):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}{k}.", out)
    elif isinstance(obj, (list, tuple)) and any(isinstance(x, (dict, Tensor)) for x in obj):
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}{i}.", out)
    else:
        out[prefix[:-1]] = obj
    return out


def _world(process_group, no_dist):
    if no_dist or not dist.is_initialized():
        return None, 0, 1
    pg = dist._pg(process_group, "dcp")
    return pg, pg.rank(), pg.size()


def _checkpoint_dir(checkpoint_id, writer, op):
    path = checkpoint_id if checkpoint_id is not None else getattr(writer, "path", None)
    if path is None:
        raise ValueError(f"{op}: give checkpoint_id (a directory)")
    return os.fspath(path)


def save(state_dict, *, checkpoint_id=None, storage_writer=None, planner=None,
         process_group=None, no_dist=False):
    """Write every rank's `state_dict` under the directory `checkpoint_id` (a collective)."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"dcp.save: state_dict must be a dict, got {type(state_dict).__name__}")
    path = _checkpoint_dir(checkpoint_id, storage_writer, "dcp.save")
    pg, rank, world = _world(process_group, no_dist)
    flat = _flatten(state_dict, "", {})
    data, meta = {}, {}
    for k, v in flat.items():
        if isinstance(v, Tensor):
            data[k] = ("tensor", v._dtype.name, np.array(v.detach().cpu()._data))
            meta[k] = ("tensor", v._dtype.name, tuple(v.shape))
        else:
            data[k] = ("object", None, v)
            meta[k] = ("object", None, None)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, f"__{rank}_0.distcp"), "wb") as f:
        pickle.dump(data, f)
    everyone = [meta]
    if pg is not None and world > 1:
        everyone = [None] * world
        dist.all_gather_object(everyone, meta, group=pg)
    if rank == 0:
        with open(os.path.join(path, ".metadata"), "wb") as f:
            pickle.dump({"world_size": world, "ranks": everyone}, f)
    if pg is not None and world > 1:
        dist.barrier(group=pg)       # nobody reads the checkpoint before it is whole


def load(state_dict, *, checkpoint_id=None, storage_reader=None, planner=None,
         process_group=None, no_dist=False):
    """Fill `state_dict` in place (tensors copied into, other values replaced, Stateful values
    restored through load_state_dict) from the checkpoint under `checkpoint_id`."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"dcp.load: state_dict must be a dict, got {type(state_dict).__name__}")
    path = _checkpoint_dir(checkpoint_id, storage_reader, "dcp.load")
    pg, rank, world = _world(process_group, no_dist)
    mpath = os.path.join(path, ".metadata")
    if not os.path.exists(mpath):
        raise FileNotFoundError(f"dcp.load: no checkpoint metadata at {mpath}")
    with open(mpath, "rb") as f:
        md = pickle.load(f)
    if md["world_size"] != world:
        raise CheckpointException(
            f"dcp.load: the checkpoint at {path} was saved by {md['world_size']} ranks and is "
            f"loaded by {world}; Kiln cannot reshard a checkpoint to another world size")
    with open(os.path.join(path, f"__{rank}_0.distcp"), "rb") as f:
        data = pickle.load(f)
    _fill(state_dict, "", data, path)


def _fill(obj, prefix, data, path):
    """Load into `obj` (a dict, list or Stateful) the entries of `data` under `prefix`."""
    if _stateful(obj):
        sd = obj.state_dict()
        _fill(sd, prefix, data, path)
        obj.load_state_dict(sd)
        return
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for k, v in list(items):
        key = f"{prefix}{k}"
        if _stateful(v) or isinstance(v, dict) or (
                isinstance(v, (list, tuple)) and any(isinstance(x, (dict, Tensor)) for x in v)):
            if isinstance(v, tuple):
                v = list(v)
                obj[k] = v
            _fill(v, key + ".", data, path)
            continue
        if key not in data:
            raise CheckpointException(f"dcp.load: key {key!r} is missing from the checkpoint "
                                      f"at {path}")
        kind, _, val = data[key]
        if isinstance(v, Tensor):
            if kind != "tensor":
                raise CheckpointException(f"dcp.load: {key!r} is a tensor here but the "
                                          "checkpoint holds a non-tensor value")
            if tuple(val.shape) != tuple(v.shape):
                raise CheckpointException(
                    f"dcp.load: size mismatch for {key!r}: the checkpoint has shape "
                    f"{list(val.shape)}, the state dict's tensor has shape {list(v.shape)}")
            v._data[...] = val.astype(v._data.dtype, copy=False)
            v._bump()
        else:
            if kind == "tensor":
                from ..._dispatch import wrap
                from runtime import dtypes
                val = wrap(val, dtypes._dtype_by_name(data[key][1]))
            obj[k] = val
