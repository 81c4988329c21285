"""DDP checks on every rank; results go to OUT/<case>_rank{r}.npz (and .json) for
tests/test_distributed.py, which recomputes the expected values in one process.

    mpiexec -n 2 python tests/dist_scripts/ddp.py OUT train nosync unused buffers compile
    (cases: the case_* functions below)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import framework as torch  # noqa: E402
from framework import nn, optim  # noqa: E402
import framework.nn.functional as F  # noqa: E402

STEPS, BATCH, WORLD = 5, 8, 2          # BATCH samples per rank and step


def make_model():
    # no dropout or batch norm: then DDP on 2 x 8 samples equals one process on 16
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))


def batch(step, micro=0):
    """The global batch of one step: (WORLD * BATCH) samples; rank r takes rows r::WORLD."""
    rng = np.random.default_rng(1000 * step + micro)
    x = rng.standard_normal((WORLD * BATCH, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, WORLD * BATCH)
    return torch.from_numpy(x), torch.from_numpy(y)


def train(model, steps, shard=None):
    """SGD with momentum; shard=(rank, world) trains on that rank's rows of each batch."""
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for s in range(steps):
        x, y = batch(s)
        if shard is not None:
            x, y = x[shard[0]::shard[1]], y[shard[0]::shard[1]]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def params(m):
    return {n: p.detach().numpy().copy() for n, p in m.named_parameters()}


def grads(m):
    return {n: p.grad.numpy().copy() for n, p in m.named_parameters() if p.grad is not None}


def case_train(dist, DDP, r, n):
    torch.manual_seed(r)                 # different on each rank: construction must broadcast
    ddp = DDP(make_model(), bucket_cap_mb=0.002)
    log = ddp._event_log = []
    # the log also records when autograd computes the first layer's weight gradient, which is
    # among the last gradients of backward
    h = ddp.module[0].weight.register_hook(lambda g: log.append(("first_layer_grad", None)))
    train(ddp, 1, (r, n))
    h.remove()
    ddp._event_log = None
    train(ddp, STEPS - 1, (r, n))         # continues with fresh momentum: reproduced below
    info = {"log": log, "bucket_sizes": ddp.bucket_sizes,
            "keys": list(ddp.state_dict().keys())[:2]}
    return params(ddp.module), info


def case_compile(dist, DDP, r, n):
    torch.manual_seed(r)
    model = make_model()
    ddp = DDP(torch.compile(model), bucket_cap_mb=0.002)
    train(ddp, 1, (r, n))
    train(ddp, STEPS - 1, (r, n))
    st = ddp.module._compiled.stats
    return params(model), {"calls": st["calls"], "compiles": st["compiles"],
                           "eager_calls": st.get("eager_calls", 0)}


def _overlap_run(ddp, model, r, n, call=None):
    """train STEPS steps (forward through `call`, default ddp) logging DDP's and the compiled
    region's events of each backward."""
    call = call or ddp
    from framework._compile import region
    logs = []
    try:
        for s in range(STEPS):
            # as train(m, 1) then train(m, STEPS - 1), the reference: that restarts the
            # optimizer (fresh momentum) and the batches once
            if s <= 1:
                opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            log = []
            ddp._event_log = region.EVENT_LOG = log
            x, y = batch(max(s - 1, 0))
            opt.zero_grad()
            F.cross_entropy(call(x[r::n]), y[r::n]).backward()
            opt.step()
            logs.append(log)
    finally:
        ddp._event_log = region.EVENT_LOG = None
    return logs


def case_compile_overlap(dist, DDP, r, n):
    """DDP(compile(model)): buckets all-reduced while the compiled backward program runs."""
    torch.manual_seed(r)
    model = make_model()
    ddp = DDP(torch.compile(model), bucket_cap_mb=0.002)
    logs = _overlap_run(ddp, model, r, n)
    st = ddp.module._compiled.stats
    return params(model), {"logs": logs, "calls": st["calls"], "eager_calls":
                           st.get("eager_calls", 0), "bucket_sizes": ddp.bucket_sizes}


def case_compiled_ddp_overlap(dist, DDP, r, n):
    """compile(DDP(model)): the same, with DDP's forward inside the compiled module."""
    torch.manual_seed(r)
    model = make_model()
    ddp = DDP(model, bucket_cap_mb=0.002)
    logs = _overlap_run(ddp, model, r, n, torch.compile(ddp))
    return params(model), {"logs": logs}


def case_compiled_step(dist, DDP, r, n):
    """forward, backward and optimizer step in one compiled function."""
    torch.manual_seed(r)
    model = make_model()
    ddp = DDP(model, bucket_cap_mb=0.002)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    @torch.compile
    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        opt.step()
    for s in range(STEPS):
        x, y = batch(s)
        step(x[r::n], y[r::n])
    return params(model), {"graph_breaks": [b[0] for b in step.stats["graph_breaks"]]}


def case_nosync(dist, DDP, r, n, wrap=lambda m: m):
    torch.manual_seed(0)
    model = make_model()
    ddp = DDP(wrap(model))
    x0, y0 = batch(0, micro=0)
    x1, y1 = batch(0, micro=1)
    with ddp.no_sync():
        F.cross_entropy(ddp(x0[r::n]), y0[r::n]).backward()
    local_after_first = grads(model)      # not averaged: rank-local
    F.cross_entropy(ddp(x1[r::n]), y1[r::n]).backward()
    out = {f"local/{k}": v for k, v in local_after_first.items()}
    out.update({f"synced/{k}": v for k, v in grads(model).items()})
    return out, {}


def case_compile_nosync(dist, DDP, r, n):
    """no_sync then a synced backward through a compiled module: the bucket gets the
    accumulated .grad plus the gradient the compiled backward hands over early."""
    return case_nosync(dist, DDP, r, n, torch.compile)


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 3)          # used on rank 0 only
        self.never = nn.Linear(4, 3)      # used on no rank

    def forward(self, x, use_b):
        y = self.a(x)
        return y + self.b(x) if use_b else y


def case_unused(dist, DDP, r, n):
    torch.manual_seed(0)
    ddp = DDP(Branchy(), find_unused_parameters=True)
    x = torch.from_numpy(np.arange(8, dtype=np.float32).reshape(2, 4) * (r + 1) / 10)
    ddp(x, r == 0).pow(2).sum().backward()
    info = {"none": [k for k, p in ddp.module.named_parameters() if p.grad is None]}
    # without find_unused_parameters the same model fails with PyTorch's message
    plain = DDP(Branchy())
    try:
        plain(x, True).sum().backward()
    except RuntimeError as e:
        info["error"] = str(e)
    return grads(ddp.module), info


def case_buffers(dist, DDP, r, n):
    torch.manual_seed(r)
    m = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ddp = DDP(m)
    after_init = m[1].running_mean.numpy().copy()
    with torch.no_grad():
        m[1].running_mean.fill_(float(r + 5))     # diverge on purpose
        m[1].num_batches_tracked.fill_(r + 3)
    ddp.eval()
    ddp(torch.ones(2, 3))                          # broadcast_buffers: rank 0's values first
    return {"after_init": after_init, "after_forward": m[1].running_mean.numpy().copy(),
            "nbt": m[1].num_batches_tracked.numpy().copy()}, {}


def main(out, cases):
    import framework.distributed as dist
    from framework.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    for c in cases:
        arrays, info = globals()[f"case_{c}"](dist, DDP, r, n)
        np.savez(os.path.join(out, f"{c}_rank{r}.npz"), **arrays)
        with open(os.path.join(out, f"{c}_rank{r}.json"), "w") as f:
            json.dump(info, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
