"""Rank program for tests/test_launch_and_version.py, written as a script for
torch.distributed.launch / torchrun is: --local_rank from argparse (or LOCAL_RANK), the process
group from the environment, one all_reduce. Prints one `RESULT {json}` line per rank.

    --backend NAME      init_process_group's backend (default gloo)
    --value V           rank r contributes V * (r + 1)
    --fail-first-attempt  exit 3 on rank 1 when TORCHELASTIC_RESTART_COUNT is 0
"""
import argparse
import json
import os
import sys

import framework as torch
import framework.distributed as dist

p = argparse.ArgumentParser()
p.add_argument("--local_rank", "--local-rank", type=int,
               default=int(os.environ.get("LOCAL_RANK", -1)))
p.add_argument("--backend", default="gloo")
p.add_argument("--value", type=float, default=1.0)
p.add_argument("--fail-first-attempt", action="store_true")
a = p.parse_args()

dist.init_process_group(backend=a.backend, init_method="env://")
rank = dist.get_rank()
t = torch.tensor([a.value * (rank + 1)])
dist.all_reduce(t, op=dist.ReduceOp.SUM)
env = {k: os.environ.get(k) for k in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                      "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK", "ROLE_NAME",
                                      "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
                                      "OMP_NUM_THREADS")}
rec = {"rank": rank, "world": dist.get_world_size(), "local_rank_arg": a.local_rank,
       "argv": sys.argv, "name": __name__, "env": env, "sum": t.tolist(),
       "backend": dist.get_backend(), "path0": sys.path[0],
       "elastic": dist.is_torchelastic_launched()}
sys.stdout.write("RESULT " + json.dumps(rec) + "\n")
sys.stdout.flush()
dist.destroy_process_group()
if a.fail_first_attempt and rank == 1 and env["TORCHELASTIC_RESTART_COUNT"] == "0":
    sys.exit(3)
