"""NCCL process group on CuPy buffers, checked against NumPy: run on a GPU machine, as a world
of one (python tests/dist_scripts/nccl_check.py) or with mpiexec -n N on N GPUs. Prints one
line per check and exits non-zero on a mismatch."""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from runtime import distributed as rt  # noqa: E402
from runtime.distributed import nccl  # noqa: E402


def main():
    nccl.require()
    import cupy as cp
    g = nccl.NCCLGroup.world(timeout=60)
    r, n = g.rank, g.size
    base = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    every = np.stack([base * (k + 1) + k for k in range(n)])
    fails = 0

    def check(name, got, want):
        nonlocal fails
        ok = np.allclose(cp.asnumpy(got), want, rtol=1e-5)
        fails += not ok
        print(f"[rank {r}] {name:24s} {'ok' if ok else 'MISMATCH'}", flush=True)

    mine = lambda: cp.asarray(every[r])  # noqa: E731
    for op, ref in ((rt.SUM, every.sum(0)), (rt.AVG, every.mean(0)), (rt.MAX, every.max(0)),
                    (rt.MIN, every.min(0)), (rt.PRODUCT, every.prod(0))):
        x = mine()
        g.allreduce(x, op).wait()
        check(f"all_reduce {rt.OP_NAMES[op]}", x, ref)
    x = mine()
    g.broadcast(x, 0).wait()
    check("broadcast", x, every[0])
    out = cp.empty((n, 3, 4), cp.float32)
    g.allgather(mine(), out).wait()
    check("all_gather", out, every)
    send = cp.asarray(np.concatenate([every[r]] * n))
    recv = cp.empty((3, 4), cp.float32)
    g.reduce_scatter(send, recv).wait()
    check("reduce_scatter", recv, every.sum(0))
    x = cp.asarray(np.ones(1 << 22, np.float32))
    g.allreduce(x).wait()
    t0 = time.perf_counter()
    for _ in range(10):
        g.allreduce(x).wait()
    dt = (time.perf_counter() - t0) / 10
    check("all_reduce 16 MiB", x[:4], np.full(4, float(n) ** 11))
    print(f"[rank {r}] all_reduce of 16 MiB float32 over {n} rank(s): {dt * 1e3:.3f} ms")
    g.barrier().wait()
    g.free()
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
