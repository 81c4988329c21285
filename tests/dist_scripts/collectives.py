"""Every collective once, on every rank; results go to OUT/rank{r}.npz and OUT/rank{r}.json and
tests/test_distributed.py compares them with NumPy. Inputs are data(rank), so the test can
rebuild every rank's inputs."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def data(rank):
    return (np.arange(12, dtype=np.float32).reshape(3, 4) - 5) * (rank + 1) + 0.5 * rank


def main(out):
    import framework as torch
    import framework.distributed as dist
    from framework.utils.data import DistributedSampler

    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    res, info = {}, {"rank": r, "world": n, "initialized": dist.is_initialized(),
                     "backend": dist.get_backend()}
    t = lambda: torch.from_numpy(data(r).copy())  # noqa: E731

    for name in ("SUM", "AVG", "MAX", "MIN", "PRODUCT"):
        x = t()
        dist.all_reduce(x, op=getattr(dist.ReduceOp, name))
        res[f"all_reduce_{name}"] = x.numpy()
    x = torch.tensor([r + 1, 10 * (r + 1)], dtype=torch.int64)
    dist.all_reduce(x)
    res["all_reduce_int64"] = x.numpy()
    x = torch.tensor([r == 0, False, True])
    dist.all_reduce(x)                            # bool SUM is logical or
    res["all_reduce_bool"] = x.numpy()
    x = t().to(torch.float16)
    dist.all_reduce(x)
    res["all_reduce_float16"] = x.float().numpy()
    base = t()
    view = base.t()                               # not contiguous: reduced in place anyway
    dist.all_reduce(view)
    res["all_reduce_view"] = base.numpy()
    x = t()
    w = dist.all_reduce(x, async_op=True)
    info["work_wait"] = w.wait()
    info["work_completed"] = w.is_completed()
    res["all_reduce_async"] = x.numpy()

    x = t()
    dist.broadcast(x, src=1)
    res["broadcast"] = x.numpy()
    lst = [torch.zeros(3, 4) for _ in range(n)]
    dist.all_gather(lst, t())
    res["all_gather"] = np.stack([y.numpy() for y in lst])
    o = torch.zeros(3 * n, 4)
    dist.all_gather_into_tensor(o, t())
    res["all_gather_into_tensor"] = o.numpy()
    o = torch.zeros(3, 4)
    dist.reduce_scatter(o, [t() * (k + 1) for k in range(n)])
    res["reduce_scatter"] = o.numpy()
    o = torch.zeros(1, 4)
    dist.reduce_scatter_tensor(o, t()[:n])
    res["reduce_scatter_tensor"] = o.numpy()
    x = t()
    dist.reduce(x, dst=1, op=dist.ReduceOp.MAX)
    res["reduce"] = x.numpy()
    g = [torch.zeros(3, 4) for _ in range(n)] if r == 0 else None
    dist.gather(t(), g, dst=0)
    if r == 0:
        res["gather"] = np.stack([y.numpy() for y in g])
    x = torch.zeros(3, 4)
    dist.scatter(x, [torch.full((3, 4), 7.0 * k) for k in range(n)] if r == 1 else None, src=1)
    res["scatter"] = x.numpy()
    if r == 0:
        dist.send(torch.tensor([3.0, 4.0]), dst=1)
        w = dist.isend(torch.tensor([5.0]), dst=1, tag=7)
        w.wait()
    elif r == 1:
        x = torch.zeros(2)
        info["recv_source"] = dist.recv(x)        # from any source
        res["recv"] = x.numpy()
        x = torch.zeros(1)
        dist.irecv(x, src=0, tag=7).wait()
        res["irecv"] = x.numpy()
    dist.barrier()

    objs = [{"from": r, "list": list(range(r + 1))}, f"rank{r}"]
    dist.broadcast_object_list(objs, src=1)
    info["broadcast_object_list"] = objs
    everyone = [None] * n
    dist.all_gather_object(everyone, ("obj", r))
    info["all_gather_object"] = everyone
    got = [None] * n if r == 0 else None
    dist.gather_object(r * 10, got, dst=0)
    info["gather_object"] = got
    out_list = [None]
    dist.scatter_object_list(out_list, [f"for {k}" for k in range(n)] if r == 0 else None, src=0)
    info["scatter_object_list"] = out_list[0]

    sub = dist.new_group([1])
    if r == 1:
        x = t()
        dist.all_reduce(x, group=sub)
        res["subgroup"] = x.numpy()
        info["subgroup_size"] = dist.get_world_size(sub)
    else:
        info["subgroup_member"] = sub is not dist.GroupMember.NON_GROUP_MEMBER

    try:
        dist.all_reduce(torch.zeros(2 + r))
    except RuntimeError as e:
        info["mismatch_error"] = str(e)
    try:
        dist.all_gather([torch.zeros(3)], torch.zeros(3))
    except ValueError as e:
        info["list_len_error"] = str(e)
    try:
        dist.all_reduce(torch.tensor([1, 2]), op=dist.ReduceOp.AVG)
    except ValueError as e:
        info["avg_int_error"] = str(e)
    info["sampler"] = list(DistributedSampler(list(range(11)), shuffle=False))

    np.savez(os.path.join(out, f"rank{r}.npz"), **res)
    with open(os.path.join(out, f"rank{r}.json"), "w") as f:
        json.dump(info, f)
    dist.destroy_process_group()
    info_after = dist.is_initialized()
    assert info_after is False


if __name__ == "__main__":
    main(sys.argv[1])
