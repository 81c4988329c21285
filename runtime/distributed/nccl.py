"""NCCLGroup: collectives on device (CuPy) buffers through CuPy's NCCL bindings.

Ranks come from MPI when the job was started by mpiexec (the NCCL unique id is broadcast over
MPI, and each rank takes GPU local_rank % device_count); a process started alone is a world of
one. NCCL calls are asynchronous on the group's stream; a Request records a CUDA event after
its call and polls that event against the deadline, aborting the communicator on timeout so a
dead peer becomes DistBackendError instead of a hang. Pickled-object collectives go through
the MPI bootstrap group on the host.

Only importable where CuPy is installed; exercised on a GPU machine (tests/dist_scripts/
nccl_check.py), never in CPU-only CI.
"""
import os
import time

import numpy as np

from . import DistBackendError, SUM, PRODUCT, MIN, MAX, AVG, OP_NAMES

try:
    import cupy
    from cupy.cuda import nccl
    IMPORT_ERROR = None
except Exception as e:            # ImportError, or CuPy present without a CUDA runtime
    cupy = nccl = None
    IMPORT_ERROR = e


def available():
    if nccl is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def require():
    if nccl is None:
        raise RuntimeError(f"the nccl backend needs CuPy with NCCL (pip install 'kiln[cuda]') "
                           f"and an NVIDIA GPU; import failed: {IMPORT_ERROR}")
    if not available():
        raise RuntimeError("the nccl backend needs an NVIDIA GPU; none is visible to CuPy")


def _nccl_dtype(dtype):
    table = {np.dtype(np.int8): nccl.NCCL_INT8, np.dtype(np.uint8): nccl.NCCL_UINT8,
             np.dtype(np.bool_): nccl.NCCL_UINT8, np.dtype(np.int32): nccl.NCCL_INT32,
             np.dtype(np.uint32): nccl.NCCL_UINT32, np.dtype(np.int64): nccl.NCCL_INT64,
             np.dtype(np.uint64): nccl.NCCL_UINT64, np.dtype(np.float16): nccl.NCCL_FLOAT16,
             np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}
    dt = table.get(np.dtype(dtype))
    if dt is None and getattr(nccl, "NCCL_BFLOAT16", None) is not None \
            and np.dtype(dtype).name == "bfloat16":
        dt = nccl.NCCL_BFLOAT16
    if dt is None:
        raise TypeError(f"nccl backend: no NCCL datatype for {np.dtype(dtype)}")
    return dt


def _nccl_op(op):
    table = {SUM: nccl.NCCL_SUM, PRODUCT: nccl.NCCL_PROD, MIN: nccl.NCCL_MIN,
             MAX: nccl.NCCL_MAX}
    if op == AVG:
        return getattr(nccl, "NCCL_AVG", None)
    if op not in table:
        raise ValueError(f"nccl backend: ReduceOp.{OP_NAMES[op]} is not supported")
    return table[op]


class Request:
    __slots__ = ("group", "event", "what", "on_done", "done")

    def __init__(self, group, what, on_done=None):
        self.group, self.what, self.on_done = group, what, on_done
        self.event = cupy.cuda.Event(disable_timing=True)
        self.event.record(group.stream)
        self.done = False

    def test(self):
        if self.done:
            return True
        if self.event.done:
            self.done = True
            if self.on_done is not None:
                self.on_done()
        return self.done

    def wait(self, timeout=None):
        limit = self.group.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self.test():
            if time.monotonic() > deadline:
                self.group.comm.abort()    # unblocks the kernels waiting on the dead peer
                raise DistBackendError(
                    f"[rank {self.group.rank}] {self.what} did not complete within {limit:g} s "
                    f"(nccl backend, world size {self.group.size}): a peer rank has probably "
                    "died; the communicator was aborted.")
            time.sleep(1e-4)


def _ptr(a):
    if not a.flags.c_contiguous:
        raise ValueError(f"NCCLGroup: buffer of shape {a.shape} is not contiguous")
    return a.data.ptr


class NCCLGroup:
    backend = "nccl"

    def __init__(self, rank, size, uid, timeout, host=None):
        self.rank, self.size, self.timeout = rank, size, float(timeout)
        self.host = host                    # MPIGroup for objects, or None (world of one)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.comm = nccl.NcclCommunicator(size, uid, rank)

    @classmethod
    def world(cls, timeout):
        require()
        from . import mpi
        host = None
        rank, size = 0, 1
        if mpi.available():
            rank, size = mpi.env_world()
        if size > 1:
            host = mpi.MPIGroup.world(timeout)
            local = host.comm.Split_type(mpi.MPI.COMM_TYPE_SHARED).Get_rank()
            cupy.cuda.Device(local % cupy.cuda.runtime.getDeviceCount()).use()
            uid = nccl.get_unique_id() if rank == 0 else None
            uid = host.comm.bcast(uid, root=0)
        else:
            cupy.cuda.Device(int(os.environ.get("LOCAL_RANK", 0))).use()
            uid = nccl.get_unique_id()
        return cls(rank, size, uid, timeout, host)

    def _fix_avg(self, arr, op):
        # NCCL before 2.10 has no AVG: sum, then divide on the device
        if op == AVG and _nccl_op(AVG) is None:
            def done():
                arr /= self.size
            return nccl.NCCL_SUM, done
        return _nccl_op(op), None

    def allreduce(self, arr, op=SUM):
        nop, done = self._fix_avg(arr, op)
        p = _ptr(arr)
        self.comm.allReduce(p, p, arr.size, _nccl_dtype(arr.dtype), nop, self.stream.ptr)
        return Request(self, f"all_reduce({OP_NAMES[op]}, shape {list(arr.shape)})", done)

    def reduce(self, arr, dst, op=SUM):
        nop, done = self._fix_avg(arr, op)
        p = _ptr(arr)
        self.comm.reduce(p, p, arr.size, _nccl_dtype(arr.dtype), nop, dst, self.stream.ptr)
        return Request(self, f"reduce({OP_NAMES[op]}, dst {dst})",
                       done if self.rank == dst else None)

    def reduce_scatter(self, send, recv, op=SUM):
        nop, done = self._fix_avg(recv, op)
        self.comm.reduceScatter(_ptr(send), _ptr(recv), recv.size, _nccl_dtype(recv.dtype), nop,
                                self.stream.ptr)
        return Request(self, f"reduce_scatter({OP_NAMES[op]})", done)

    def broadcast(self, arr, src):
        p = _ptr(arr)
        self.comm.broadcast(p, p, arr.nbytes, nccl.NCCL_UINT8, src, self.stream.ptr)
        return Request(self, f"broadcast(src {src})")

    def allgather(self, send, recv, what=None):
        self.comm.allGather(_ptr(send), _ptr(recv), send.nbytes, nccl.NCCL_UINT8,
                            self.stream.ptr)
        return Request(self, what or "all_gather()")

    def gather(self, send, recv, dst):
        nccl.groupStart()
        self.comm.send(_ptr(send), send.nbytes, nccl.NCCL_UINT8, dst, self.stream.ptr)
        if self.rank == dst:
            flat = recv.reshape(self.size, -1)
            for r in range(self.size):
                self.comm.recv(flat[r].data.ptr, send.nbytes, nccl.NCCL_UINT8, r,
                               self.stream.ptr)
        nccl.groupEnd()
        return Request(self, f"gather(dst {dst})")

    def scatter(self, send, recv, src):
        nccl.groupStart()
        if self.rank == src:
            flat = send.reshape(self.size, -1)
            for r in range(self.size):
                self.comm.send(flat[r].data.ptr, recv.nbytes, nccl.NCCL_UINT8, r,
                               self.stream.ptr)
        self.comm.recv(_ptr(recv), recv.nbytes, nccl.NCCL_UINT8, src, self.stream.ptr)
        nccl.groupEnd()
        return Request(self, f"scatter(src {src})")

    def send(self, arr, dst, tag=0):
        self.comm.send(_ptr(arr), arr.nbytes, nccl.NCCL_UINT8, dst, self.stream.ptr)
        return Request(self, f"send(dst {dst})")

    def recv(self, arr, src=None, tag=0):
        if src is None:
            raise ValueError("nccl backend: recv needs an explicit src rank")
        self.comm.recv(_ptr(arr), arr.nbytes, nccl.NCCL_UINT8, src, self.stream.ptr)
        return Request(self, f"recv(src {src})")

    def barrier(self):
        one = cupy.ones(1, cupy.float32)
        return self.allreduce(one)

    def allgather_bytes(self, data):
        return [data] if self.host is None else self.host.allgather_bytes(data)

    def broadcast_bytes(self, data, src):
        return data if self.host is None else self.host.broadcast_bytes(data, src)

    def split(self, ranks):
        raise NotImplementedError("new_group: subgroups are implemented for the mpi backend only")

    def abort(self, code=1):
        self.comm.abort()
        if self.host is not None:
            self.host.abort(code)
        os._exit(code)

    def free(self):
        if self.comm is not None:
            self.stream.synchronize()
            self.comm.destroy()
            self.comm = None
        if self.host is not None:
            self.host.free()
