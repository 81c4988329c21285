"""Started without mpiexec: a world of one, where collectives are identities and DDP trains
like the plain module."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import framework as torch  # noqa: E402
import framework.distributed as dist  # noqa: E402
from framework import nn  # noqa: E402

dist.init_process_group("gloo")           # the CPU tutorials' backend name: MPI underneath
x = torch.tensor([1.0, 2.0])
dist.all_reduce(x, op=dist.ReduceOp.AVG)
torch.manual_seed(0)
m = nn.Linear(3, 2)
ddp = nn.parallel.DistributedDataParallel(m)
ddp(torch.ones(4, 3)).sum().backward()
print(json.dumps({"world": dist.get_world_size(), "rank": dist.get_rank(), "x": x.tolist(),
                  "grad": m.weight.grad.tolist(), "backend": dist.get_backend()}))
dist.destroy_process_group()
