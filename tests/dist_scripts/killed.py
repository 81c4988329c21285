"""Rank 1 goes away before an all_reduce that rank 0 waits in; rank 0 must not hang.

    killed.py TIMEOUT kill     rank 1 dies by SIGKILL: mpiexec sees it and stops the job
    killed.py TIMEOUT hang     rank 1 stops answering (sleeps): rank 0's deadline raises
                               DistBackendError, and its abort ends rank 1
"""
import os
import signal
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import framework as torch  # noqa: E402
import framework.distributed as dist  # noqa: E402

dist.init_process_group("mpi", timeout=timedelta(seconds=float(sys.argv[1])))
dist.barrier()
if dist.get_rank() == 1:
    how = sys.argv[2]
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(3600)
t0 = time.monotonic()
try:
    dist.all_reduce(torch.ones(4))
finally:
    print(f"rank {dist.get_rank()}: all_reduce returned after {time.monotonic() - t0:.1f} s",
          file=sys.stderr, flush=True)
