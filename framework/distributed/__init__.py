"""torch.distributed over Kiln's process groups (runtime.distributed): MPI for cpu tensors,
NCCL for cuda tensors.

    import framework.distributed as dist
    dist.init_process_group("mpi")          # rank and size come from mpiexec / `kiln run`
    dist.all_reduce(t, op=dist.ReduceOp.SUM)

Ranks are started by `kiln run -n N script.py` or `mpiexec -n N python script.py`; a process
started alone is a world of one. 'gloo' is accepted as another name for 'mpi' so CPU tutorial
code runs unchanged. Collectives check, with one small all-gather of each rank's (op, shape,
dtype), that every rank called the same collective with matching tensors, and raise the same
error on every rank when not (set KILN_DIST_CHECK=0 to skip that check). Every wait has a
deadline (`timeout`, default 30 minutes as in PyTorch): a dead peer raises DistBackendError.
An uncaught exception in a rank of an initialized group aborts the whole MPI job, so the other
ranks stop at once instead of waiting for the deadline.
"""
import os
import pickle
import sys
import time
import zlib
from datetime import timedelta

import numpy as np

from runtime import distributed as _rt
from runtime.distributed import DistError, DistBackendError  # noqa: F401
from ..tensor import Tensor

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "is_mpi_available", "is_nccl_available", "is_gloo_available", "get_rank",
           "get_world_size", "get_backend", "barrier", "all_reduce", "broadcast", "all_gather",
           "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "reduce",
           "gather", "scatter", "send", "recv", "isend", "irecv", "broadcast_object_list",
           "all_gather_object", "gather_object", "scatter_object_list", "new_group",
           "ReduceOp", "Work", "ProcessGroup", "GroupMember", "group", "Backend",
           "DistError", "DistBackendError", "default_pg_timeout", "all_to_all",
           "all_to_all_single", "all_gather_coalesced", "all_reduce_coalesced",
           "batch_isend_irecv", "P2POp", "send_object_list", "recv_object_list",
           "monitored_barrier", "new_subgroups", "new_subgroups_by_enumeration", "split_group",
           "get_process_group_ranks", "get_pg_count", "get_node_local_rank",
           "get_default_backend_for_device", "is_backend_available", "is_ucc_available",
           "is_xccl_available", "supports_complex", "get_debug_level", "set_debug_level",
           "set_debug_level_from_env", "DebugLevel", "Store", "TCPStore", "FileStore",
           "HashStore", "PrefixStore", "DistStoreError", "DistNetworkError", "QueueEmptyError",
           "GradBucket", "BuiltinCommHookType", "breakpoint", "AllreduceOptions",
           "AllreduceCoalescedOptions", "AllToAllOptions", "BarrierOptions", "BroadcastOptions",
           "GatherOptions", "ReduceOptions", "ReduceScatterOptions", "ScatterOptions"]

default_pg_timeout = timedelta(minutes=30)


class RedOpType:
    __slots__ = ("name", "value")

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __repr__(self):
        return f"<RedOpType.{self.name}: {self.value}>"

    def __eq__(self, other):
        return isinstance(other, RedOpType) and other.value == self.value

    def __hash__(self):
        return hash(self.value)


class ReduceOp:
    SUM = RedOpType("SUM", _rt.SUM)
    PRODUCT = RedOpType("PRODUCT", _rt.PRODUCT)
    MIN = RedOpType("MIN", _rt.MIN)
    MAX = RedOpType("MAX", _rt.MAX)
    BAND = RedOpType("BAND", _rt.BAND)
    BOR = RedOpType("BOR", _rt.BOR)
    BXOR = RedOpType("BXOR", _rt.BXOR)
    AVG = RedOpType("AVG", _rt.AVG)
    RedOpType = RedOpType


class Backend(str):
    MPI = "mpi"
    NCCL = "nccl"
    GLOO = "gloo"

    def __new__(cls, name):
        return str.__new__(cls, name.lower())


class ProcessGroup:
    """A set of ranks and the runtime group their collectives run on. `ranks` are global ranks
    in group-rank order."""

    def __init__(self, impl, ranks, backend):
        self._impl = impl
        self._ranks = list(ranks)
        self._backend = backend

    def rank(self):
        return self._impl.rank

    def size(self):
        return self._impl.size

    def name(self):
        return self._backend

    def __repr__(self):
        return f"ProcessGroup(backend={self._backend!r}, rank={self.rank()}, size={self.size()})"


class GroupMember:
    WORLD = None
    NON_GROUP_MEMBER = object()


class group:
    WORLD = None


_default = None
_pg_count = [0]             # groups created since init_process_group (get_pg_count)


def is_available():
    return True


def is_mpi_available():
    from runtime.distributed import mpi
    return mpi.available()


def is_nccl_available():
    from runtime.distributed import nccl
    return nccl.nccl is not None


def is_gloo_available():
    return False


def is_initialized():
    return _default is not None


def is_torchelastic_launched():
    """True in a worker started by `python -m framework.distributed.run` (or .launch), which
    sets TORCHELASTIC_RUN_ID as torchrun does."""
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


def _timeout_s(timeout):
    if timeout is None:
        timeout = default_pg_timeout
    s = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if s <= 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout!r}")
    return s


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """Join the default process group. Rank and world size come from MPI (mpiexec or
    `kiln run`); world_size/rank arguments and the RANK/WORLD_SIZE variables, where given,
    must agree with it (MPI decides who is who; they cannot reassign it)."""
    global _default
    if _default is not None:
        raise ValueError("trying to initialize the default process group twice!")
    name = "mpi" if backend is None else str(backend).lower()
    if name in ("gloo", "cpu:gloo,cuda:nccl", "cpu:mpi,cuda:nccl"):
        name = "mpi"            # CPU tensors: MPI plays gloo's part
    if name not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: unknown or unsupported backend {backend!r}; "
                         "Kiln has 'mpi' (cpu tensors; 'gloo' is an alias) and 'nccl' (cuda)")
    if init_method not in (None, "env://") and not str(init_method).startswith(("tcp://",
                                                                                "file://")):
        raise ValueError(f"init_process_group: unsupported init_method {init_method!r}")
    if store is not None:
        raise ValueError("init_process_group: store= is not supported; ranks come from MPI")
    t = _timeout_s(timeout)
    if name == "mpi":
        from runtime.distributed.mpi import MPIGroup
        impl = MPIGroup.world(t)
    else:
        from runtime.distributed.nccl import NCCLGroup
        impl = NCCLGroup.world(t)
    want = [("world_size", world_size, os.environ.get("WORLD_SIZE"), impl.size),
            ("rank", rank, os.environ.get("RANK"), impl.rank)]
    for what, arg, env, have in want:
        for src, v in ((f"{what}={arg}", arg), (f"${what.upper()}={env}", env)):
            if v is not None and int(v) != -1 and int(v) != have:
                impl.free()
                raise RuntimeError(
                    f"init_process_group: {src} but MPI started this process as {what} {have}; "
                    f"start the ranks with `kiln run -n N script.py` or `mpiexec -n N python "
                    "script.py` (MPI assigns ranks; torchrun-style launches are not supported)")
    _default = ProcessGroup(impl, range(impl.size), name)
    _pg_count[0] = 1
    group.WORLD = GroupMember.WORLD = _default
    _install_abort_on_error()


def destroy_process_group(group=None):
    global _default
    if group is None or group is _default:
        if _default is None:
            raise ValueError("destroy_process_group: the default process group is not "
                             "initialized")
        _default._impl.free()
        _default = None
        _pg_count[0] = 0
        globals()["group"].WORLD = GroupMember.WORLD = None
    else:
        group._impl.free()


_prev_hook = None


def _install_abort_on_error():
    """An uncaught exception on one rank would leave the others blocked in their next
    collective until the deadline; abort the MPI job instead (as `python -m mpi4py` does)."""
    global _prev_hook
    if _prev_hook is not None:
        return
    _prev_hook = sys.excepthook

    def hook(tp, val, tb):
        _prev_hook(tp, val, tb)
        pg = _default
        if pg is not None and pg.size() > 1 and not issubclass(tp, KeyboardInterrupt):
            sys.stderr.write(f"[rank {pg.rank()}] uncaught {tp.__name__}: aborting all "
                             f"{pg.size()} ranks\n")
            sys.stderr.flush()
            # Abort makes Hydra kill every process at once, its output forwarders included;
            # a moment first lets the traceback above reach mpiexec's stderr
            time.sleep(0.2)
            pg._impl.abort(1)
    sys.excepthook = hook


# ---- helpers ---------------------------------------------------------------------------------
def _pg(grp, op):
    if _default is None:          # torch's ValueError and message, with the op in front
        raise ValueError(f"{op}: Default process group has not been initialized, please make "
                         "sure to call init_process_group.")
    if grp is None:
        return _default
    if grp is GroupMember.NON_GROUP_MEMBER:
        raise RuntimeError(f"{op}: this rank is not a member of the given group")
    return grp


def get_rank(group=None):
    return _pg(group, "get_rank").rank()


def get_world_size(group=None):
    return _pg(group, "get_world_size").size()


def get_backend(group=None):
    return _pg(group, "get_backend")._backend


def get_global_rank(group, group_rank):
    return _pg(group, "get_global_rank")._ranks[group_rank]


def get_group_rank(group, global_rank):
    pg = _pg(group, "get_group_rank")
    if global_rank not in pg._ranks:
        raise ValueError(f"get_group_rank: global rank {global_rank} is not part of the group")
    return pg._ranks.index(global_rank)


def _local(pg, global_rank, what, op):
    if global_rank not in pg._ranks:
        raise ValueError(f"{op}: {what}={global_rank} is not a rank of the group "
                         f"(global ranks {pg._ranks})")
    return pg._ranks.index(global_rank)


def _tensor(t, op, name="tensor"):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    return t


def _check_device(pg, t, op):
    dev = t._device.type
    if pg._backend == "mpi" and dev != "cpu":
        raise RuntimeError(f"{op}: the mpi backend works on cpu tensors; got a {dev} tensor "
                           f"of shape {list(t.shape)} (use backend='nccl' for cuda tensors)")
    if pg._backend == "nccl" and dev != "cuda":
        raise RuntimeError(f"{op}: the nccl backend works on cuda tensors; got a {dev} tensor "
                           f"of shape {list(t.shape)}")


def _out_buf(t):
    """A contiguous array to write t's new values into, and what copies it back."""
    a = t._data
    if a.flags.c_contiguous and a.flags.writeable:
        return a, lambda: t._bump()
    tmp = np.ascontiguousarray(a)

    def back():
        np.copyto(a, tmp)
        t._bump()
    return tmp, back


def _in_buf(t):
    a = t._data
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _sig(op, t, root):
    code = zlib.crc32(op.encode())      # the same on every rank (str hash is salted)
    shape = tuple(t.shape) if t is not None else ()
    dt = t._dtype.name if t is not None else ""
    return code, shape, dt, root


def _check_same(pg, op, t, root=-1):
    """All ranks must call the same collective with the same shape and dtype. Every rank gets
    every signature, so a mismatch raises on all of them (nobody is left waiting)."""
    if pg.size() == 1 or os.environ.get("KILN_DIST_CHECK", "1") == "0":
        return
    code, shape, dt, root = _sig(op, t, root)
    if len(shape) > 8:
        return
    mine = np.full(12, -1, np.int64)
    mine[0], mine[1], mine[2], mine[3] = code, zlib.crc32(dt.encode()), len(shape), root
    mine[4:4 + len(shape)] = shape
    everyone = np.empty((pg.size(), 12), np.int64)
    pg._impl.allgather(mine, everyone, f"{op}(shape {list(shape)}) (its shape check)").wait()
    if (everyone == mine).all():
        return
    names = {zlib.crc32(n.encode()): n for n in __all__}
    dts = {zlib.crc32(dt.encode()): dt}
    desc = []
    for r, row in enumerate(everyone):
        n = int(row[2])
        desc.append(f"rank {pg._ranks[r]}: {names.get(int(row[0]), 'another collective')}"
                    f"(shape {list(int(x) for x in row[4:4 + n])}, "
                    f"dtype {dts.get(int(row[1]), 'another dtype')}"
                    + (f", root {int(row[3])})" if row[3] >= 0 else ")"))
    raise RuntimeError(f"{op}: the ranks called mismatched collectives or passed mismatched "
                       "tensors: " + "; ".join(desc))


def _op_code(op, fn, t=None):
    if isinstance(op, RedOpType):
        code = op.value
    elif isinstance(op, int) and 0 <= op < len(_rt.OP_NAMES):
        code = op
    else:
        raise TypeError(f"{fn}: op must be a dist.ReduceOp, got {op!r}")
    if t is not None:
        d = t._dtype
        if code == _rt.AVG and not (d.is_floating_point or d.is_complex):
            raise ValueError(f"{fn}: ReduceOp.AVG needs a floating-point or complex tensor, "
                             f"got {d} of shape {list(t.shape)}")
        if code in (_rt.MIN, _rt.MAX) and d.is_complex:
            raise ValueError(f"{fn}: ReduceOp.{_rt.OP_NAMES[code]} is not defined for complex "
                             f"tensors (got {d} of shape {list(t.shape)})")
        if code in (_rt.BAND, _rt.BOR, _rt.BXOR) and (d.is_floating_point or d.is_complex):
            raise ValueError(f"{fn}: ReduceOp.{_rt.OP_NAMES[code]} needs an integer or bool "
                             f"tensor, got {d}")
    return code


class Work:
    """Handle of an operation started with async_op=True (or by isend/irecv)."""

    def __init__(self, req, finish=None, result=None):
        self._req, self._finish, self._result = req, finish, result
        self._done = False

    def _complete(self):
        if not self._done:
            self._done = True
            if self._finish is not None:
                self._finish()

    def wait(self, timeout=None):
        t = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        self._req.wait(t)
        self._complete()
        return True

    def is_completed(self):
        if self._req.test():
            self._complete()
            return True
        return False

    def is_success(self):
        return self.is_completed()

    def result(self):
        return self._result if self._result is not None else []

    def get_future(self):
        """A Future whose value is result(), once this work completes."""
        from ..futures import Future
        return Future._deferred(lambda: (self.wait(), self.result())[1])

    def source_rank(self):
        st = getattr(self._req, "status", None)
        if st is None:
            raise RuntimeError("source_rank: only a recv from any source has one")
        return st.Get_source()


def _run(req, finish, async_op, result=None):
    w = Work(req, finish, result)
    if async_op:
        return w
    w.wait()
    return None


# ---- collectives -----------------------------------------------------------------------------
def barrier(group=None, async_op=False, device_ids=None):
    pg = _pg(group, "barrier")
    return _run(pg._impl.barrier(), None, async_op)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` over all ranks, in place on each."""
    pg = _pg(group, "all_reduce")
    _tensor(tensor, "all_reduce")
    _check_device(pg, tensor, "all_reduce")
    code = _op_code(op, "all_reduce", tensor)
    _check_same(pg, "all_reduce", tensor)
    buf, back = _out_buf(tensor)
    return _run(pg._impl.allreduce(buf, code), back, async_op, [tensor])


def _broadcast_flat(impl, tensors, src=0, write=True):
    """Overwrite `tensors` with rank `src`'s values through one flat broadcast per dtype (DDP's
    and FSDP's start-up sync, ZeRO's parameter updates); write=False on the source itself."""
    by_dtype = {}
    for t in tensors:
        by_dtype.setdefault(t._dtype, []).append(t)
    reqs = []
    for ts in by_dtype.values():
        flat = np.concatenate([t._data.reshape(-1) for t in ts])
        reqs.append((impl.broadcast(flat, src), flat, ts))
    for req, flat, ts in reqs:
        req.wait()
        if not write:
            continue
        o = 0
        for t in ts:
            n = t._data.size
            t._data[...] = flat[o:o + n].reshape(t._data.shape)
            t._bump()
            o += n


def broadcast(tensor, src=None, group=None, async_op=False, group_src=None):
    pg = _pg(group, "broadcast")
    _tensor(tensor, "broadcast")
    _check_device(pg, tensor, "broadcast")
    root = group_src if group_src is not None else _local(pg, 0 if src is None else src, "src",
                                                          "broadcast")
    _check_same(pg, "broadcast", tensor, root)
    buf, back = _out_buf(tensor)
    return _run(pg._impl.broadcast(buf, root), back, async_op, [tensor])


def reduce(tensor, dst=None, op=ReduceOp.SUM, group=None, async_op=False, group_dst=None):
    """Reduce into `tensor` on rank dst; the other ranks' tensors are left unchanged."""
    pg = _pg(group, "reduce")
    _tensor(tensor, "reduce")
    _check_device(pg, tensor, "reduce")
    code = _op_code(op, "reduce", tensor)
    root = group_dst if group_dst is not None else _local(pg, 0 if dst is None else dst, "dst",
                                                          "reduce")
    _check_same(pg, "reduce", tensor, root)
    if pg.rank() == root:
        buf, back = _out_buf(tensor)
    else:                             # MPI does not write here; the copy keeps tensor as it was
        buf, back = np.array(tensor._data, order="C"), None
    return _run(pg._impl.reduce(buf, root, code), back, async_op, [tensor])


def _same_shape_list(lst, t, op, name):
    if not isinstance(lst, (list, tuple)):
        raise TypeError(f"{op}: {name} must be a list of tensors, got {type(lst).__name__}")
    for i, x in enumerate(lst):
        _tensor(x, op, f"{name}[{i}]")
        if tuple(x.shape) != tuple(t.shape) or x._dtype is not t._dtype:
            raise RuntimeError(f"{op}: {name}[{i}] has shape {list(x.shape)} and dtype "
                               f"{x._dtype}, but the input tensor has shape {list(t.shape)} and "
                               f"dtype {t._dtype}; all must match")


def _need_len(lst, n, op, name):
    if len(lst) != n:
        raise ValueError(f"{op}: {name} must have one tensor per rank ({n}), got {len(lst)}")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """tensor_list[r] = rank r's tensor, on every rank."""
    pg = _pg(group, "all_gather")
    _tensor(tensor, "all_gather")
    _check_device(pg, tensor, "all_gather")
    _same_shape_list(tensor_list, tensor, "all_gather", "tensor_list")
    _need_len(tensor_list, pg.size(), "all_gather", "tensor_list")
    _check_same(pg, "all_gather", tensor)
    recv = np.empty((pg.size(),) + tuple(tensor._data.shape), tensor._data.dtype)
    req = pg._impl.allgather(_in_buf(tensor), recv)

    def finish():
        for x, r in zip(tensor_list, recv):
            np.copyto(x._data, r)
            x._bump()
    return _run(req, finish, async_op, list(tensor_list))


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """output = the ranks' inputs concatenated along dim 0 (or stacked: (world, *shape))."""
    pg = _pg(group, "all_gather_into_tensor")
    op = "all_gather_into_tensor"
    _tensor(output_tensor, op, "output_tensor")
    _tensor(input_tensor, op, "input_tensor")
    _check_device(pg, input_tensor, op)
    n = pg.size()
    if output_tensor._dtype is not input_tensor._dtype:
        raise RuntimeError(f"{op}: output dtype {output_tensor._dtype} differs from input "
                           f"dtype {input_tensor._dtype}")
    if output_tensor.numel() != n * input_tensor.numel():
        raise ValueError(f"{op}: output_tensor of shape {list(output_tensor.shape)} must have "
                         f"world_size ({n}) times the elements of input_tensor of shape "
                         f"{list(input_tensor.shape)}")
    _check_same(pg, op, input_tensor)
    buf, back = _out_buf(output_tensor)
    return _run(pg._impl.allgather(_in_buf(input_tensor), buf), back, async_op,
                [output_tensor])


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """output = this rank's entry of the elementwise reduction of every rank's input_list."""
    pg = _pg(group, "reduce_scatter")
    _tensor(output, "reduce_scatter", "output")
    _check_device(pg, output, "reduce_scatter")
    _same_shape_list(input_list, output, "reduce_scatter", "input_list")
    _need_len(input_list, pg.size(), "reduce_scatter", "input_list")
    code = _op_code(op, "reduce_scatter", output)
    _check_same(pg, "reduce_scatter", output)
    send = np.stack([_in_buf(x) for x in input_list])
    buf, back = _out_buf(output)
    return _run(pg._impl.reduce_scatter(send, buf, code), back, async_op, [output])


def _same_dtype(output, input, op):
    if output._dtype is not input._dtype:
        raise RuntimeError(f"{op}: output dtype {output._dtype} differs from input dtype "
                           f"{input._dtype}")


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """output = this rank's dim-0 block of the reduction of every rank's `input`."""
    pg = _pg(group, "reduce_scatter_tensor")
    fn = "reduce_scatter_tensor"
    _tensor(output, fn, "output")
    _tensor(input, fn, "input")
    _check_device(pg, input, fn)
    _same_dtype(output, input, fn)
    if input.numel() != pg.size() * output.numel():
        raise ValueError(f"{fn}: input of shape {list(input.shape)} must have world_size "
                         f"({pg.size()}) times the elements of output of shape "
                         f"{list(output.shape)}")
    code = _op_code(op, fn, output)
    _check_same(pg, fn, input)
    buf, back = _out_buf(output)
    return _run(pg._impl.reduce_scatter(_in_buf(input), buf, code), back, async_op, [output])


def gather(tensor, gather_list=None, dst=None, group=None, async_op=False, group_dst=None):
    pg = _pg(group, "gather")
    _tensor(tensor, "gather")
    _check_device(pg, tensor, "gather")
    root = group_dst if group_dst is not None else _local(pg, 0 if dst is None else dst, "dst",
                                                          "gather")
    recv = None
    if pg.rank() == root:
        if gather_list is None:
            raise ValueError("gather: gather_list is required on the destination rank")
        _same_shape_list(gather_list, tensor, "gather", "gather_list")
        _need_len(gather_list, pg.size(), "gather", "gather_list")
        recv = np.empty((pg.size(),) + tuple(tensor._data.shape), tensor._data.dtype)
    elif gather_list:
        raise ValueError("gather: gather_list must be None or empty on non-destination ranks")
    _check_same(pg, "gather", tensor, root)
    req = pg._impl.gather(_in_buf(tensor), recv, root)

    def finish():
        if recv is not None:
            for x, r in zip(gather_list, recv):
                np.copyto(x._data, r)
                x._bump()
    return _run(req, finish, async_op, list(gather_list or []))


def scatter(tensor, scatter_list=None, src=None, group=None, async_op=False, group_src=None):
    pg = _pg(group, "scatter")
    _tensor(tensor, "scatter")
    _check_device(pg, tensor, "scatter")
    root = group_src if group_src is not None else _local(pg, 0 if src is None else src, "src",
                                                          "scatter")
    send = None
    if pg.rank() == root:
        if scatter_list is None:
            raise ValueError("scatter: scatter_list is required on the source rank")
        _same_shape_list(scatter_list, tensor, "scatter", "scatter_list")
        _need_len(scatter_list, pg.size(), "scatter", "scatter_list")
        send = np.stack([_in_buf(x) for x in scatter_list])
    elif scatter_list:
        raise ValueError("scatter: scatter_list must be None or empty on non-source ranks")
    _check_same(pg, "scatter", tensor, root)
    buf, back = _out_buf(tensor)
    return _run(pg._impl.scatter(send, buf, root), back, async_op, [tensor])


# ---- point to point --------------------------------------------------------------------------
def isend(tensor, dst=None, group=None, tag=0, group_dst=None):
    pg = _pg(group, "isend")
    _tensor(tensor, "isend")
    _check_device(pg, tensor, "isend")
    peer = group_dst if group_dst is not None else _local(pg, dst, "dst", "isend")
    if peer == pg.rank():
        raise ValueError(f"isend: dst {dst} is this rank; a rank cannot send to itself")
    buf = np.array(tensor._data, order="C")    # the caller may change tensor before wait()
    return Work(pg._impl.send(buf, peer, tag))


def irecv(tensor, src=None, group=None, tag=0, group_src=None):
    pg = _pg(group, "irecv")
    _tensor(tensor, "irecv")
    _check_device(pg, tensor, "irecv")
    peer = group_src if group_src is not None else (
        None if src is None else _local(pg, src, "src", "irecv"))
    buf, back = _out_buf(tensor)
    return Work(pg._impl.recv(buf, peer, tag), back)


def send(tensor, dst=None, group=None, tag=0, group_dst=None):
    isend(tensor, dst, group, tag, group_dst).wait()


def recv(tensor, src=None, group=None, tag=0, group_src=None):
    """Returns the sender's rank (useful with src=None: from any rank)."""
    pg = _pg(group, "recv")
    w = irecv(tensor, src, group, tag, group_src)
    w.wait()
    st = getattr(w._req, "status", None)
    return pg._ranks[st.Get_source()] if st is not None else src


# ---- pickled objects -------------------------------------------------------------------------
def broadcast_object_list(object_list, src=None, group=None, device=None, group_src=None):
    pg = _pg(group, "broadcast_object_list")
    root = group_src if group_src is not None else _local(pg, 0 if src is None else src, "src",
                                                          "broadcast_object_list")
    data = pickle.dumps(list(object_list)) if pg.rank() == root else b""
    got = pickle.loads(pg._impl.broadcast_bytes(data, root))
    if len(got) != len(object_list):
        raise RuntimeError(f"broadcast_object_list: the source sent {len(got)} objects but this "
                           f"rank's object_list has {len(object_list)} slots")
    object_list[:] = got


def all_gather_object(object_list, obj, group=None):
    pg = _pg(group, "all_gather_object")
    _need_len(object_list, pg.size(), "all_gather_object", "object_list")
    object_list[:] = [pickle.loads(b) for b in pg._impl.allgather_bytes(pickle.dumps(obj))]


def gather_object(obj, object_gather_list=None, dst=None, group=None, group_dst=None):
    pg = _pg(group, "gather_object")
    root = group_dst if group_dst is not None else _local(pg, 0 if dst is None else dst, "dst",
                                                          "gather_object")
    if pg.rank() == root:
        if object_gather_list is None:
            raise ValueError("gather_object: object_gather_list is required on the destination")
        _need_len(object_gather_list, pg.size(), "gather_object", "object_gather_list")
    everything = pg._impl.allgather_bytes(pickle.dumps(obj))
    if pg.rank() == root:
        object_gather_list[:] = [pickle.loads(b) for b in everything]


def scatter_object_list(scatter_object_output_list, scatter_object_input_list=None, src=None,
                        group=None, group_src=None):
    pg = _pg(group, "scatter_object_list")
    root = group_src if group_src is not None else _local(pg, 0 if src is None else src, "src",
                                                          "scatter_object_list")
    if not isinstance(scatter_object_output_list, list) or not scatter_object_output_list:
        raise ValueError("scatter_object_list: scatter_object_output_list must be a non-empty "
                         "list")
    data = b""
    if pg.rank() == root:
        _need_len(scatter_object_input_list or [], pg.size(), "scatter_object_list",
                  "scatter_object_input_list")
        data = pickle.dumps(list(scatter_object_input_list))
    scatter_object_output_list[0] = pickle.loads(pg._impl.broadcast_bytes(data, root))[pg.rank()]


# ---- groups ----------------------------------------------------------------------------------
def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False,
              group_desc=None, device_id=None):
    """A group of the given global ranks. Every rank of the default group must call it (as in
    PyTorch); ranks outside get GroupMember.NON_GROUP_MEMBER."""
    pg = _pg(None, "new_group")
    ranks = list(range(pg.size())) if ranks is None else sorted(int(r) for r in ranks)
    for r in ranks:
        if not 0 <= r < pg.size():
            raise ValueError(f"new_group: rank {r} is not in the world of size {pg.size()}")
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"new_group: duplicate ranks in {ranks}")
    impl = pg._impl.split(ranks)
    _pg_count[0] += 1
    if impl is None:
        return GroupMember.NON_GROUP_MEMBER
    if timeout is not None:
        impl.timeout = _timeout_s(timeout)
    return ProcessGroup(impl, ranks, pg._backend)




def _group_split(pg, color, key, timeout=None):
    """One MPI split of `pg` into disjoint groups: this rank joins group `color` (None: none)
    at position `key`; every rank of pg must call it."""
    if not hasattr(pg._impl, "split_by"):
        raise NotImplementedError(f"subgroups are implemented for the mpi backend only (this "
                                  f"group's backend: {pg._backend})")
    impl = pg._impl.split_by(color, key)
    if impl is not None and timeout is not None:
        impl.timeout = _timeout_s(timeout)
    return impl


def new_subgroups_by_enumeration(ranks_per_subgroup_list, timeout=None, backend=None,
                                 pg_options=None, group_desc=None):
    """(this rank's subgroup or None, [subgroup or NON_GROUP_MEMBER per list entry]): one
    group per list of global ranks; the lists must be disjoint."""
    if not ranks_per_subgroup_list:
        raise ValueError("The arg 'ranks_per_subgroup_list' cannot be empty")
    pg = _pg(None, "new_subgroups_by_enumeration")
    seen = {}
    for ranks in ranks_per_subgroup_list:
        for r in ranks:
            if r in seen:
                raise ValueError(f"Rank {r} has appeared in both subgroup {seen[r]} and "
                                 f"{list(ranks)}")
            if not 0 <= r < pg.size():
                raise ValueError(f"new_subgroups_by_enumeration: rank {r} is not in the world "
                                 f"of size {pg.size()}")
            seen[r] = list(ranks)
    me = pg.rank()
    mine = next((i for i, rs in enumerate(ranks_per_subgroup_list) if me in rs), None)
    key = list(ranks_per_subgroup_list[mine]).index(me) if mine is not None else 0
    impl = _group_split(pg, mine, key, timeout)
    _pg_count[0] += len(ranks_per_subgroup_list)
    cur = None if impl is None else ProcessGroup(impl, ranks_per_subgroup_list[mine],
                                                 pg._backend)
    subgroups = [cur if i == mine else GroupMember.NON_GROUP_MEMBER
                 for i in range(len(ranks_per_subgroup_list))]
    return cur, subgroups


def new_subgroups(group_size=None, group=None, timeout=None, backend=None, pg_options=None,
                  group_desc=None):
    """Split the world (or `group`) into consecutive subgroups of group_size ranks."""
    if group_size is None:
        from .. import cuda
        if not cuda.is_available():
            raise ValueError("Default group size only takes effect when CUDA is available.If "
                             "your subgroup using a backend that does not depend on CUDA,please "
                             "pass in 'group_size' correctly.")
        group_size = cuda.device_count()
    if group_size <= 0:
        raise ValueError(f"The arg 'group_size' ({group_size}) must be positive")
    pg = _pg(group, "new_subgroups")
    n = pg.size()
    if group_size > n:
        raise ValueError(f"The arg 'group_size' ({group_size}) must not exceed the world size "
                         f"({n})")
    if n % group_size:
        raise ValueError(f"The world size ({n}) must be divisible by 'group_size="
                         f"{group_size}'")
    ranks = pg._ranks
    lists = [ranks[i:i + group_size] for i in range(0, n, group_size)]
    if group is None:
        return new_subgroups_by_enumeration(lists, timeout)
    me = pg.rank()
    impl = _group_split(pg, me // group_size, me % group_size, timeout)
    _pg_count[0] += len(lists)
    cur = ProcessGroup(impl, lists[me // group_size], pg._backend)
    return cur, [cur if i == me // group_size else GroupMember.NON_GROUP_MEMBER
                 for i in range(len(lists))]


def split_group(parent_pg=None, split_ranks=None, timeout=None, pg_options=None,
                group_desc=None):
    """The group of split_ranks (lists of global ranks) this rank is in, or None."""
    if not split_ranks:
        raise ValueError("split_ranks cannot be empty")
    pg = _pg(parent_pg, "split_group")
    for rs in split_ranks:
        for r in rs:
            if r not in pg._ranks:
                raise ValueError(f"split_group: rank {r} is not a rank of the parent group "
                                 f"(global ranks {pg._ranks})")
    flat = [r for rs in split_ranks for r in rs]
    if len(set(flat)) != len(flat):
        raise ValueError(f"split_group: the split_ranks {split_ranks} overlap")
    me = pg._ranks[pg.rank()]
    mine = next((i for i, rs in enumerate(split_ranks) if me in rs), None)
    key = list(split_ranks[mine]).index(me) if mine is not None else 0
    impl = _group_split(pg, mine, key, timeout)
    _pg_count[0] += 1
    return None if impl is None else ProcessGroup(impl, split_ranks[mine], pg._backend)


def get_process_group_ranks(group):
    """The global ranks of `group`, in group-rank order (None: the default group)."""
    return list(_pg(group, "get_process_group_ranks")._ranks)


def get_pg_count():
    return _pg_count[0]


def get_node_local_rank(fallback_rank=None):
    if "LOCAL_RANK" in os.environ:
        return int(os.environ["LOCAL_RANK"])
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError("LOCAL_RANK is not in the environment. Consider passing fallback_rank to "
                       "allow `get_node_local_rank` to work, assuming you are not running in a "
                       "multi-device context and want the code to run locally instead.")


def get_default_backend_for_device(device):
    """'gloo' for cpu (Kiln runs it over MPI), 'nccl' for cuda, as in PyTorch."""
    from runtime.device import Device as _device
    dev = device if not isinstance(device, str) else _device(device)
    kind = getattr(dev, "type", str(dev))
    table = {"cpu": "gloo", "cuda": "nccl"}
    if kind not in table:
        raise ValueError(f"Default backend not registered for device : {kind}")
    return table[kind]


def is_backend_available(backend):
    name = str(backend).lower()
    if name in ("gloo", "mpi"):
        return is_mpi_available()
    if name == "nccl":
        return is_nccl_available()
    return False


def is_ucc_available():
    return False


def is_xccl_available():
    return False


def supports_complex(reduceOp):
    """Whether ReduceOp `reduceOp` is defined for complex tensors."""
    deny = (ReduceOp.MAX, ReduceOp.MIN, ReduceOp.PRODUCT, ReduceOp.BAND, ReduceOp.BOR,
            ReduceOp.BXOR)
    return reduceOp not in deny


class DebugLevel:
    """TORCH_DISTRIBUTED_DEBUG levels. Kiln's collectives always check shapes across ranks
    (KILN_DIST_CHECK), so the level is recorded but changes nothing."""
    __slots__ = ("name", "value")
    __members__ = {}

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __repr__(self):
        return f"<DebugLevel.{self.name}: {self.value}>"

    def __str__(self):
        return f"DebugLevel.{self.name}"

    def __int__(self):
        return self.value


for _i, _n in enumerate(("OFF", "INFO", "DETAIL")):
    setattr(DebugLevel, _n, DebugLevel(_n, _i))
    DebugLevel.__members__[_n] = getattr(DebugLevel, _n)
_debug_level = [DebugLevel.OFF]


def get_debug_level():
    return _debug_level[0]


def set_debug_level(level):
    if not isinstance(level, DebugLevel):
        raise TypeError(f"set_debug_level(): level must be a dist.DebugLevel, got {level!r}")
    _debug_level[0] = level


def set_debug_level_from_env():
    v = os.environ.get("TORCH_DISTRIBUTED_DEBUG", "OFF").upper()
    if v not in DebugLevel.__members__:
        raise ValueError("The value of TORCH_DISTRIBUTED_DEBUG must be OFF, INFO, or DETAIL.")
    _debug_level[0] = DebugLevel.__members__[v]


# ---- all-to-all ------------------------------------------------------------------------------
def _mpi_only(pg, op):
    # these pack host (NumPy) buffers; the nccl backend has no path for them yet
    if pg._backend != "mpi":
        raise NotImplementedError(f"{op}: implemented for the mpi backend (cpu tensors) only; "
                                  f"this group's backend is {pg._backend!r}")


def _check_exchange(pg, op, t, send_rows, recv_rows):
    """all_to_all's cross-rank check: rank k's send count to rank r must be rank r's receive
    count from k, and dtypes and row shapes must agree; raises the same error on every rank."""
    n = pg.size()
    if n == 1 or os.environ.get("KILN_DIST_CHECK", "1") == "0":
        return
    row = tuple(t.shape[1:]) if t.dim() > 0 else ()
    mine = np.full(4 + 2 * n, -1, np.int64)
    mine[0], mine[1] = zlib.crc32(op.encode()), zlib.crc32(t._dtype.name.encode())
    mine[2] = zlib.crc32(repr(row).encode())
    mine[4:4 + n], mine[4 + n:] = send_rows, recv_rows
    every = np.empty((n, mine.size), np.int64)
    pg._impl.allgather(mine, every, f"{op} (its size check)").wait()
    bad = [f"rank {pg._ranks[k]} sends {int(every[k, 4 + r])} rows to rank {pg._ranks[r]}, "
           f"which expects {int(every[r, 4 + n + k])}"
           for k in range(n) for r in range(n) if every[k, 4 + r] != every[r, 4 + n + k]]
    if (every[:, :3] != every[0, :3]).any():
        bad.insert(0, "the ranks called different collectives or passed different dtypes or "
                      "row shapes")
    if bad:
        raise RuntimeError(f"{op}: the ranks' split sizes do not match: " + "; ".join(bad))


def _splits(sizes, t, n, name, op):
    if sizes is None or len(sizes) == 0:
        if t.dim() == 0 or t.shape[0] % n:
            raise RuntimeError(f"{op}: Tensor's dim 0 does not divide equally across group size "
                               f"({name} of shape {list(t.shape)}, group size {n})")
        return [t.shape[0] // n] * n
    sizes = [int(x) for x in sizes]
    if len(sizes) != n:
        raise RuntimeError(f"{op}: Number of tensor splits not equal to group size ({name} "
                           f"split sizes {sizes}, group size {n})")
    if any(x < 0 for x in sizes) or sum(sizes) != (t.shape[0] if t.dim() else 0):
        raise RuntimeError(f"{op}: Split sizes doesn't match total dim 0 size ({name} split "
                           f"sizes {sizes}, {name} of shape {list(t.shape)})")
    return sizes


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None,
                      group=None, async_op=False):
    """Rank r sends rows [sum(in_splits[:k]), +in_splits[k]) of `input` to rank k, and gets
    rank k's block into rows [sum(out_splits[:k]), +out_splits[k]) of `output`. No split
    sizes: dim 0 splits evenly."""
    op = "all_to_all_single"
    pg = _pg(group, op)
    _mpi_only(pg, op)
    _tensor(output, op, "output")
    _tensor(input, op, "input")
    _check_device(pg, input, op)
    _same_dtype(output, input, op)
    if tuple(output.shape[1:]) != tuple(input.shape[1:]):
        raise RuntimeError(f"{op}: output of shape {list(output.shape)} and input of shape "
                           f"{list(input.shape)} must agree beyond dim 0")
    n = pg.size()
    si = _splits(input_split_sizes, input, n, "input", op)
    so = _splits(output_split_sizes, output, n, "output", op)
    _check_exchange(pg, op, input, si, so)
    row = input._data.itemsize * int(np.prod(input.shape[1:], dtype=np.int64))
    buf, back = _out_buf(output)
    req = pg._impl.alltoall(_in_buf(input), [x * row for x in si], buf, [x * row for x in so],
                            f"{op}(input shape {list(input.shape)}, splits {si})")
    return _run(req, back, async_op, [output])


def all_to_all(output_tensor_list, input_tensor_list, group=None, async_op=False):
    """output_tensor_list[k] = rank k's input_tensor_list[this rank]; sizes may differ."""
    op = "all_to_all"
    pg = _pg(group, op)
    _mpi_only(pg, op)
    n = pg.size()
    for name, lst in (("output_tensor_list", output_tensor_list),
                      ("input_tensor_list", input_tensor_list)):
        if not isinstance(lst, (list, tuple)):
            raise TypeError(f"{op}: {name} must be a list of tensors, got {type(lst).__name__}")
        for i, x in enumerate(lst):
            _tensor(x, op, f"{name}[{i}]")
        _need_len(lst, n, op, name)
    dt = input_tensor_list[0]._dtype
    for name, lst in (("output_tensor_list", output_tensor_list),
                      ("input_tensor_list", input_tensor_list)):
        for i, x in enumerate(lst):
            _check_device(pg, x, op)
            if x._dtype is not dt:
                raise RuntimeError(f"{op}: {name}[{i}] has dtype {x._dtype}, but "
                                   f"input_tensor_list[0] has dtype {dt}; all must match")
    sn = [x.numel() for x in input_tensor_list]
    rn = [x.numel() for x in output_tensor_list]
    _check_exchange(pg, op, input_tensor_list[0].reshape(-1), sn, rn)
    send = np.concatenate([_in_buf(x).reshape(-1) for x in input_tensor_list])
    recv = np.empty(sum(rn), send.dtype)
    item = send.itemsize
    req = pg._impl.alltoall(send, [x * item for x in sn], recv, [x * item for x in rn],
                            f"{op}(elements sent {sn})")

    def finish():
        o = 0
        for x, k in zip(output_tensor_list, rn):
            buf, back = _out_buf(x)
            buf.reshape(-1)[...] = recv[o:o + k]
            back()
            o += k
    return _run(req, finish, async_op, list(output_tensor_list))


# ---- coalesced -------------------------------------------------------------------------------
def all_reduce_coalesced(tensors, op=ReduceOp.SUM, group=None, async_op=False):
    """all_reduce of every tensor in `tensors` (one dtype), as one flat all-reduce."""
    fn = "all_reduce_coalesced"
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    pg = _pg(group, fn)
    _mpi_only(pg, fn)
    for i, t in enumerate(tensors):
        _tensor(t, fn, f"tensors[{i}]")
        _check_device(pg, t, fn)
        if t._dtype is not tensors[0]._dtype:
            raise ValueError(f"Invalid usage of tensors with different dtypesFound "
                             f"{tensors[0]._dtype} and  {t._dtype}")
    if not tensors:
        return _run(pg._impl.barrier(), None, async_op, [])
    code = _op_code(op, fn, tensors[0])
    flat = np.concatenate([_in_buf(t).reshape(-1) for t in tensors])
    _check_same(pg, fn, _flat_probe(flat, tensors[0]))
    req = pg._impl.allreduce(flat, code)

    def finish():
        o = 0
        for t in tensors:
            buf, back = _out_buf(t)
            k = buf.size
            buf.reshape(-1)[...] = flat[o:o + k]
            back()
            o += k
    return _run(req, finish, async_op, list(tensors))


class _flat_probe:
    """What _check_same reads of a tensor (shape and dtype), for a packed flat buffer."""
    def __init__(self, flat, like):
        self.shape, self._dtype = flat.shape, like._dtype


def all_gather_coalesced(output_tensor_lists, input_tensor_list, group=None, async_op=False):
    """output_tensor_lists[r][i] = rank r's input_tensor_list[i], as one all-gather."""
    fn = "all_gather_coalesced"
    pg = _pg(group, fn)
    _mpi_only(pg, fn)
    n = pg.size()
    _need_len(output_tensor_lists, n, fn, "output_tensor_lists")
    for i, t in enumerate(input_tensor_list):
        _tensor(t, fn, f"input_tensor_list[{i}]")
        _check_device(pg, t, fn)
    for r, lst in enumerate(output_tensor_lists):
        if len(lst) != len(input_tensor_list):
            raise ValueError(f"{fn}: output_tensor_lists[{r}] has {len(lst)} tensors, "
                             f"input_tensor_list has {len(input_tensor_list)}")
        for i, (o, t) in enumerate(zip(lst, input_tensor_list)):
            _tensor(o, fn, f"output_tensor_lists[{r}][{i}]")
            if tuple(o.shape) != tuple(t.shape) or o._dtype is not t._dtype:
                raise RuntimeError(f"{fn}: output_tensor_lists[{r}][{i}] has shape "
                                   f"{list(o.shape)} and dtype {o._dtype}, but "
                                   f"input_tensor_list[{i}] has shape {list(t.shape)} and "
                                   f"dtype {t._dtype}; they must match")
    send = np.concatenate([_in_buf(t).reshape(-1).view(np.uint8) for t in input_tensor_list]) \
        if input_tensor_list else np.zeros(0, np.uint8)
    _check_same(pg, fn, _flat_probe(send, input_tensor_list[0]) if input_tensor_list else None)
    recv = np.empty((n, send.size), np.uint8)
    req = pg._impl.allgather(send, recv)

    def finish():
        for r, lst in enumerate(output_tensor_lists):
            o = 0
            for x in lst:
                buf, back = _out_buf(x)
                k = buf.nbytes
                buf.reshape(-1).view(np.uint8)[...] = recv[r, o:o + k]
                back()
                o += k
    return _run(req, finish, async_op, [x for lst in output_tensor_lists for x in lst])


# ---- batched point to point ------------------------------------------------------------------
class P2POp:
    """One isend or irecv for batch_isend_irecv."""

    def __init__(self, op, tensor, peer=None, group=None, tag=0, group_peer=None):
        if op not in (isend, irecv):
            raise ValueError("Invalid ``op``. Expected ``op`` to be of type "
                             "``torch.distributed.isend`` or ``torch.distributed.irecv``.")
        _tensor(tensor, "P2POp")
        if (peer is None) == (group_peer is None):
            raise ValueError("P2POp: give exactly one of peer and group_peer")
        self.op, self.tensor, self.group, self.tag = op, tensor, group, tag
        pg = _pg(group, "P2POp")
        self.group_peer = group_peer if group_peer is not None else _local(
            pg, peer, "peer", "P2POp")
        self.peer = pg._ranks[self.group_peer]

    def __repr__(self):
        pg = _pg(self.group, "P2POp")
        me = pg.rank()
        src, dst = (me, self.group_peer) if self.op is isend else (self.group_peer, me)
        name = "0" if pg is _default else ",".join(map(str, pg._ranks))
        return (f"P2POp({self.op.__name__} pg={name}, "
                f"group_src={src}, group_dst={dst},  {self.tensor.shape}, "
                f"{self.tensor.dtype})")


def batch_isend_irecv(p2p_op_list):
    """Start every isend/irecv of the list at once (nonblocking MPI: their order cannot
    deadlock) and return their Work handles."""
    if not p2p_op_list:
        raise IndexError("batch_isend_irecv: p2p_op_list is empty; give at least one P2POp")
    if not all(isinstance(p, P2POp) for p in p2p_op_list):
        raise ValueError("Invalid ``p2p_op_list``. Each op is expected to to be of type "
                         "``torch.distributed.P2POp``.")
    groups = {id(_pg(p.group, "batch_isend_irecv")) for p in p2p_op_list}
    if len(groups) > 1:
        raise ValueError("All ops need to use the same group.")
    return [p.op(p.tensor, group=p.group, tag=p.tag, group_dst=p.group_peer)
            if p.op is isend else
            p.op(p.tensor, group=p.group, tag=p.tag, group_src=p.group_peer)
            for p in p2p_op_list]


# ---- objects point to point ------------------------------------------------------------------
def _host(pg):
    """The group that moves host bytes: nccl groups carry their MPI bootstrap group."""
    return getattr(pg._impl, "host", None) or pg._impl


def send_object_list(object_list, dst=None, group=None, device=None, group_dst=None,
                     use_batch=False):
    """Pickle and send every object of object_list to dst (recv_object_list's peer)."""
    pg = _pg(group, "send_object_list")
    peer = group_dst if group_dst is not None else _local(pg, dst, "dst", "send_object_list")
    if peer == pg.rank():
        raise ValueError(f"send_object_list: dst {dst} is this rank; a rank cannot send to "
                         "itself")
    blobs = [pickle.dumps(o) for o in object_list]
    sizes = np.array([len(b) for b in blobs], np.int64)
    data = np.frombuffer(b"".join(blobs), np.uint8).copy()
    impl = _host(pg)
    impl.send(sizes, peer).wait()
    impl.send(data, peer).wait()


def recv_object_list(object_list, src=None, group=None, device=None, group_src=None,
                     use_batch=False):
    """Fill object_list (as many slots as the sender sent) from src (None: any rank); returns
    the sender's global rank."""
    pg = _pg(group, "recv_object_list")
    peer = group_src if group_src is not None else (
        None if src is None else _local(pg, src, "src", "recv_object_list"))
    impl = _host(pg)
    sizes = np.empty(len(object_list), np.int64)
    req = impl.recv(sizes, peer, 0)
    req.wait()
    if peer is None:
        st = getattr(req, "status", None)
        peer = st.Get_source() if st is not None else 0
    data = np.empty(int(sizes.sum()), np.uint8)
    impl.recv(data, peer, 0).wait()
    o = 0
    for i, k in enumerate(sizes):
        object_list[i] = pickle.loads(data[o:o + int(k)].tobytes())
        o += int(k)
    return pg._ranks[peer]


# ---- monitored barrier -----------------------------------------------------------------------
_MB_TAG = 32001                 # MPI guarantees tags up to 32767; user p2p tags rarely go there


def monitored_barrier(group=None, timeout=None, wait_all_ranks=False):
    """A barrier in which rank 0 names the ranks that did not arrive within `timeout`
    (default: the group's). Rank 0 collects one message from every other rank, then answers
    each; a rank whose answer does not come in time raises too. As with gloo, a group whose
    monitored_barrier failed should not be used for more of them: a late rank's message
    would be taken by the next one."""
    pg = _pg(group, "monitored_barrier")
    if pg._backend != "mpi":
        raise RuntimeError(f"ProcessGroup{pg._backend.upper()} does not support "
                           "monitoredBarrier, only GLOO supports monitored barrier.")
    limit = pg._impl.timeout if timeout is None else (
        timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout))
    ms = int(round(limit * 1000))
    impl, me, n = pg._impl, pg.rank(), pg.size()
    if n == 1:
        return
    if me != 0:
        impl.send(np.ones(1, np.int64), 0, _MB_TAG).wait()
        req = impl.recv(np.zeros(1, np.int64), 0, _MB_TAG)
        try:
            req.wait(limit)
        except DistBackendError:
            req.cancel()
            raise RuntimeError(f"[Rank {pg._ranks[me]}]: Rank {pg._ranks[me]} timed out in "
                               f"monitoredBarrier after {ms} ms.") from None
        return
    deadline = time.monotonic() + limit
    reqs = {r: impl.recv(np.zeros(1, np.int64), r, _MB_TAG) for r in range(1, n)}
    missing = []
    for r in range(1, n):
        try:
            reqs[r].wait(max(deadline - time.monotonic(), 0.0))
        except DistBackendError:
            reqs[r].cancel()
            missing.append(r)
            if not wait_all_ranks:
                for q in range(r + 1, n):
                    reqs[q].cancel()
                break
    if missing:
        names = ", ".join(str(pg._ranks[r]) for r in missing)
        what = (f"Ranks {names}" if wait_all_ranks else f"Rank {names}")
        raise RuntimeError(f"[Rank {pg._ranks[0]}]: {what} failed to pass monitoredBarrier in "
                           f"{ms} ms")
    for r in range(1, n):
        impl.send(np.ones(1, np.int64), r, _MB_TAG).wait()


def breakpoint(rank=0, skip=0, timeout_s=3600):
    """pdb on one rank (its stdin), the others wait at a barrier until it continues."""
    if skip > 0:
        key = "_kiln_breakpoint_skips"
        left = globals().get(key, skip)
        globals()[key] = left - 1
        if left > 0:
            return
    pg = _pg(None, "breakpoint")
    if pg.rank() == rank:
        import pdb
        pdb.Pdb(stdin=open("/dev/stdin")).set_trace(sys._getframe(1))
    pg._impl.barrier().wait(timeout_s)


# ---- option bags (what ProcessGroup methods take in PyTorch) ----------------------------------
def _options(name, **fields):
    def __init__(self):
        for k, v in fields.items():
            setattr(self, k, v)
    return type(name, (), {"__init__": __init__, "__module__": __name__,
                           "__doc__": f"torch.distributed.{name}: attributes "
                                      + ", ".join(fields)})


_T = timedelta(milliseconds=-1)     # PyTorch's 'unset' timeout
AllreduceOptions = _options("AllreduceOptions", reduceOp=ReduceOp.SUM, timeout=_T,
                            asyncOp=True)
AllreduceCoalescedOptions = _options("AllreduceCoalescedOptions", reduceOp=ReduceOp.SUM,
                                     timeout=_T, asyncOp=True)
AllToAllOptions = _options("AllToAllOptions", timeout=_T, asyncOp=True)
BarrierOptions = _options("BarrierOptions", device_ids=[], device=None, timeout=_T, asyncOp=True)
BroadcastOptions = _options("BroadcastOptions", rootRank=0, rootTensor=0, timeout=_T,
                            asyncOp=True)
GatherOptions = _options("GatherOptions", rootRank=0, timeout=_T, asyncOp=True)
ReduceOptions = _options("ReduceOptions", reduceOp=ReduceOp.SUM, rootRank=0, rootTensor=0,
                         timeout=_T, asyncOp=True)
ReduceScatterOptions = _options("ReduceScatterOptions", reduceOp=ReduceOp.SUM, timeout=_T,
                                asyncOp=True)
ScatterOptions = _options("ScatterOptions", rootRank=0, timeout=_T, asyncOp=True)

from .store import (Store, HashStore, FileStore, TCPStore, PrefixStore,  # noqa: E402
                    DistStoreError, DistNetworkError, QueueEmptyError)
from .comm_hooks import GradBucket, BuiltinCommHookType  # noqa: E402
from .device_mesh import DeviceMesh, init_device_mesh  # noqa: E402,F401
