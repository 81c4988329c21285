"""MPIGroup: collectives on host (NumPy) buffers over mpi4py, linked to the mpich wheel's MPI.

Every operation is issued as a nonblocking MPI call (Iallreduce, Ibcast, ...) and returns a
Request. Request.wait() polls it against the group's deadline rather than blocking inside MPI,
so a dead or stuck peer turns into DistBackendError on this rank after `timeout` seconds, not
a hang. Polling is also what drives MPICH's progress engine for requests left in flight (MPICH
has no progress thread by default), which DDP uses to overlap all-reduce with backward.

Buffers must be C-contiguous; the caller copies views in and out. Reductions on float16 and
the ml_dtypes floats (bfloat16, float8) run in float32, because MPI has no arithmetic for them;
bool reduces as uint8 (SUM is logical or, PRODUCT logical and, as in PyTorch).
"""
import time

import numpy as np

from . import DistBackendError, SUM, PRODUCT, MIN, MAX, BAND, BOR, BXOR, AVG, OP_NAMES

try:
    from mpi4py import MPI
    IMPORT_ERROR = None
except ImportError as e:          # the dist extra is optional: pip install 'kiln[dist]'
    MPI = None
    IMPORT_ERROR = e


def available():
    return MPI is not None


def require():
    if MPI is None:
        raise RuntimeError(f"the mpi backend needs mpi4py and an MPI library: pip install "
                           f"'kiln[dist]' (mpi4py + the mpich wheel); import failed: "
                           f"{IMPORT_ERROR}")


def env_world():
    """(rank, size) of this process in MPI_COMM_WORLD (initializes MPI if needed)."""
    require()
    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


class Request:
    """The MPI request(s) of one operation and what runs once when they complete."""
    __slots__ = ("group", "reqs", "what", "on_done", "done", "status")

    def __init__(self, group, reqs, what, on_done=None, status=None):
        self.group, self.reqs, self.what, self.on_done = group, reqs, what, on_done
        self.status = status
        self.done = False

    def test(self):
        if self.done:
            return True
        try:
            if self.status is not None:
                ok = self.reqs[0].Test(self.status)
            else:
                ok = MPI.Request.Testall(self.reqs)
        except MPI.Exception as e:
            raise self.group.failed(self.what, e) from None
        if ok:
            self.done = True
            if self.on_done is not None:
                self.on_done()
        return ok

    def cancel(self):
        """Withdraw a receive that will not be matched (monitored_barrier after a timeout)."""
        if not self.done:
            for r in self.reqs:
                r.Cancel()
            MPI.Request.Waitall(self.reqs)
            self.done = True

    def wait(self, timeout=None):
        """Poll until complete; DistBackendError after `timeout` (default: the group's)."""
        if self.test():
            return
        limit = self.group.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        n = 0
        while not self.test():
            n += 1
            if n > 50:            # short spin for latency, then back off to 1 ms sleeps
                if time.monotonic() > deadline:
                    raise self.group.timed_out(self.what, limit)
                time.sleep(min(1e-3, 2e-6 * (n - 50)))


def _flat(a):
    if not a.flags.c_contiguous:
        raise ValueError(f"MPIGroup: buffer of shape {a.shape} is not contiguous")
    return a.reshape(-1)


def _bytes(a):
    return [_flat(a).view(np.uint8), MPI.BYTE]


def _upcast(dtype):
    return dtype == np.float16 or dtype.kind == "V"     # ml_dtypes floats have kind 'V'


class MPIGroup:
    backend = "mpi"

    def __init__(self, comm, timeout):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = float(timeout)

    @classmethod
    def world(cls, timeout):
        require()
        # a private duplicate: user code may use mpi4py's COMM_WORLD too without our messages
        # matching theirs
        return cls(MPI.COMM_WORLD.Dup(), timeout)

    # ---- failures ----------------------------------------------------------------------------
    def timed_out(self, what, limit):
        return DistBackendError(
            f"[rank {self.rank}] {what} did not complete within {limit:g} s (mpi backend, "
            f"world size {self.size}): a peer rank has probably died, or the ranks are not "
            "calling the same collectives in the same order. This process group cannot be used "
            "any more.")

    def failed(self, what, err):
        return DistBackendError(f"[rank {self.rank}] {what} failed in MPI (mpi backend, world "
                                f"size {self.size}): {err}. A peer rank has probably died.")

    # ---- reductions --------------------------------------------------------------------------
    def _reduce_buf(self, arr, op):
        """(typed buffer spec, MPI op, work array, copy back) for a reduction over `arr`."""
        work, back = arr, None
        if _upcast(arr.dtype):
            work = arr.astype(np.float32)

            def back():
                np.copyto(arr, work, casting="unsafe")
        elif arr.dtype == np.bool_:
            work = arr.view(np.uint8)
            op = {SUM: MAX, PRODUCT: MIN}.get(op, op)
        mop = {SUM: MPI.SUM, AVG: MPI.SUM, PRODUCT: MPI.PROD, MIN: MPI.MIN, MAX: MPI.MAX,
               BAND: MPI.BAND, BOR: MPI.BOR, BXOR: MPI.BXOR}[op]
        return _flat(work), mop, work, back

    def _finisher(self, arr, work, back, op):
        size = self.size

        def done():
            if op == AVG:
                np.divide(work, size, out=work, casting="unsafe")
            if back is not None:
                back()
        return done if (op == AVG or back is not None) else None

    def allreduce(self, arr, op=SUM):
        buf, mop, work, back = self._reduce_buf(arr, op)
        r = self.comm.Iallreduce(MPI.IN_PLACE, buf, mop)
        return Request(self, [r], f"all_reduce({OP_NAMES[op]}, shape {list(arr.shape)})",
                       self._finisher(arr, work, back, op))

    def reduce(self, arr, dst, op=SUM):
        buf, mop, work, back = self._reduce_buf(arr, op)
        if self.rank == dst:
            r = self.comm.Ireduce(MPI.IN_PLACE, buf, mop, root=dst)
            fin = self._finisher(arr, work, back, op)
        else:
            r = self.comm.Ireduce(buf, None, mop, root=dst)
            fin = None
        return Request(self, [r], f"reduce({OP_NAMES[op]}, dst {dst}, shape {list(arr.shape)})",
                       fin)

    def reduce_scatter(self, send, recv, op=SUM):
        """recv (n elements) = this rank's block of the reduction of send (size * n)."""
        sbuf, mop, _, _ = self._reduce_buf(send, op)
        rbuf, _, work, back = self._reduce_buf(recv, op)
        r = self.comm.Ireduce_scatter_block(sbuf, rbuf, mop)
        return Request(self, [r], f"reduce_scatter({OP_NAMES[op]}, shape {list(recv.shape)})",
                       self._finisher(recv, work, back, op))

    # ---- data movement (bytes: every dtype) ----------------------------------------------------
    def broadcast(self, arr, src):
        r = self.comm.Ibcast(_bytes(arr), root=src)
        return Request(self, [r], f"broadcast(src {src}, shape {list(arr.shape)})")

    def allgather(self, send, recv, what=None):
        r = self.comm.Iallgather(_bytes(send), _bytes(recv))
        return Request(self, [r], what or f"all_gather(shape {list(send.shape)})")

    def gather(self, send, recv, dst):
        r = self.comm.Igather(_bytes(send), _bytes(recv) if self.rank == dst else None, root=dst)
        return Request(self, [r], f"gather(dst {dst}, shape {list(send.shape)})")

    def scatter(self, send, recv, src):
        r = self.comm.Iscatter(_bytes(send) if self.rank == src else None, _bytes(recv),
                               root=src)
        return Request(self, [r], f"scatter(src {src}, shape {list(recv.shape)})")

    def alltoall(self, send, scounts, recv, rcounts, what=None):
        """Bytes: send[sum(scounts[:k]):][:scounts[k]] goes to rank k, which receives it at
        its rcounts[self.rank] slot; counts are byte counts."""
        sd = np.concatenate([[0], np.cumsum(scounts)[:-1]]).astype(np.int64)
        rd = np.concatenate([[0], np.cumsum(rcounts)[:-1]]).astype(np.int64)
        sc, rc = np.asarray(scounts, np.int64), np.asarray(rcounts, np.int64)
        r = self.comm.Ialltoallv([_flat(send).view(np.uint8), sc, sd, MPI.BYTE],
                                 [_flat(recv).view(np.uint8), rc, rd, MPI.BYTE])
        return Request(self, [r], what or f"all_to_all(send bytes {list(map(int, sc))})")

    def send(self, arr, dst, tag=0):
        r = self.comm.Isend(_bytes(arr), dest=dst, tag=tag)
        return Request(self, [r], f"send(dst {dst}, tag {tag}, shape {list(arr.shape)})")

    def recv(self, arr, src=None, tag=0):
        """src None: from any rank; the sender is request.status.Get_source() once done."""
        st = MPI.Status()
        r = self.comm.Irecv(_bytes(arr), source=MPI.ANY_SOURCE if src is None else src,
                            tag=MPI.ANY_TAG if tag is None else tag)
        return Request(self, [r], f"recv(src {src}, tag {tag}, shape {list(arr.shape)})",
                       status=st)

    def barrier(self):
        return Request(self, [self.comm.Ibarrier()], "barrier()")

    # ---- pickled objects (blocking) ----------------------------------------------------------
    def allgather_bytes(self, data):
        sizes = np.zeros(self.size, np.int64)
        mine = np.array([len(data)], np.int64)
        self.allgather(mine, sizes).wait()
        recv = np.empty(int(sizes.sum()), np.uint8)
        displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        r = self.comm.Iallgatherv([np.frombuffer(data, np.uint8), MPI.BYTE],
                                  [recv, sizes, displs, MPI.BYTE])
        Request(self, [r], "all_gather_object()").wait()
        return [recv[o:o + s].tobytes() for o, s in zip(displs, sizes)]

    def broadcast_bytes(self, data, src):
        n = np.array([len(data) if self.rank == src else 0], np.int64)
        self.broadcast(n, src).wait()
        buf = np.frombuffer(data, np.uint8).copy() if self.rank == src else np.empty(int(n[0]),
                                                                                   np.uint8)
        self.broadcast(buf, src).wait()
        return buf.tobytes()

    # ---- groups ------------------------------------------------------------------------------
    def split(self, ranks):
        """A group of `ranks` (ranks of this group, in that order); every rank must call it;
        None on ranks outside."""
        member = self.rank in ranks
        comm = self.comm.Split(0 if member else MPI.UNDEFINED,
                               ranks.index(self.rank) if member else 0)
        return MPIGroup(comm, self.timeout) if member else None

    def split_by(self, color, key):
        """MPI_Comm_split: the ranks passing the same color form a group, ordered by key; every
        rank must call it; color None gives None (no group)."""
        comm = self.comm.Split(MPI.UNDEFINED if color is None else color, key)
        return None if color is None else MPIGroup(comm, self.timeout)

    def abort(self, code=1):
        self.comm.Abort(code)

    def free(self):
        if self.comm is not None and self.comm != MPI.COMM_NULL:
            self.comm.Free()
        self.comm = None
