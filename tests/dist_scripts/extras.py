"""The less common torch.distributed API on every rank (all_to_all, batched p2p, object p2p,
subgroups, monitored_barrier, coalesced collectives, DeviceMesh, a TCPStore across ranks, DDP
comm hooks); results go to OUT/rank{r}.npz and OUT/rank{r}.json for tests/test_distributed.py.
Inputs are built from the rank so the test can rebuild every rank's inputs."""
import json
import os
import sys
from datetime import timedelta

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def a2a_input(rank):
    """all_to_all_single's input on `rank`: 3 rows for rank 0, 4 for rank 1, 2 columns."""
    return (np.arange(2 * (3 + rank), dtype=np.float32).reshape(3 + rank, 2) + 100 * rank)


IN_SPLITS = {0: [1, 2], 1: [3, 1]}       # rows rank r sends to rank 0 and rank 1


def _err(info, key, f, cls):
    try:
        f()
    except cls as e:
        info[key] = f"{type(e).__name__}: {e}"
    else:
        info[key] = "no error"


def main(out, port):
    import framework as torch
    import framework.distributed as dist
    from framework import nn
    from framework.distributed.algorithms.ddp_comm_hooks import default_hooks
    from framework.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo")
    r, n = dist.get_rank(), dist.get_world_size()
    res, info = {}, {}

    # all_to_all_single: uneven splits, async; even split of a 2-D tensor
    out_splits = [IN_SPLITS[k][r] for k in range(n)]
    o = torch.zeros(sum(out_splits), 2)
    w = dist.all_to_all_single(o, torch.from_numpy(a2a_input(r)), out_splits, IN_SPLITS[r],
                               async_op=True)
    info["a2a_work"] = [w.wait(), w.is_completed()]
    res["a2a_uneven"] = o.numpy()
    o = torch.zeros(4, 3, dtype=torch.int64)
    dist.all_to_all_single(o, torch.arange(12).reshape(4, 3) + 1000 * r)
    res["a2a_even"] = o.numpy()
    _err(info, "a2a_bad_split", lambda: dist.all_to_all_single(
        torch.zeros(3), torch.zeros(3), None, [1, 1]), RuntimeError)
    _err(info, "a2a_mismatch", lambda: dist.all_to_all_single(
        torch.zeros(2), torch.zeros(2), [1, 1], [2, 0] if r == 0 else [1, 1]), RuntimeError)
    # all_to_all with lists of different sizes: rank r sends k+r+1 elements to rank k
    outs = [torch.zeros(r + k + 1) for k in range(n)]
    dist.all_to_all(outs, [torch.full((k + r + 1,), 10.0 * r + k) for k in range(n)])
    info["a2a_list"] = [x.tolist() for x in outs]

    # batched p2p: both ranks send and receive at once
    got = torch.zeros(3)
    ops = [dist.P2POp(dist.isend, torch.full((3,), r + 1.0), 1 - r),
           dist.P2POp(dist.irecv, got, 1 - r)]
    works = dist.batch_isend_irecv(ops)
    for x in works:
        x.wait()
    res["batch_p2p"] = got.numpy()
    info["p2p_repr"] = repr(ops[0])
    _err(info, "p2p_bad_op", lambda: dist.P2POp(dist.send, torch.ones(1), 1 - r), ValueError)
    _err(info, "batch_bad", lambda: dist.batch_isend_irecv([1]), ValueError)

    # objects point to point
    if r == 0:
        dist.send_object_list([{"a": [1, 2]}, "x", None], dst=1)
    else:
        objs = [0, 0, 0]
        info["recv_object_list_src"] = dist.recv_object_list(objs)
        info["recv_object_list"] = objs

    # groups
    info["world_ranks"] = dist.get_process_group_ranks(dist.group.WORLD)
    cur, subs = dist.new_subgroups(group_size=1)
    info["subgroup"] = [dist.get_process_group_ranks(cur), dist.get_world_size(cur),
                        [s is dist.GroupMember.NON_GROUP_MEMBER for s in subs]]
    x = torch.tensor([float(r + 1)])
    dist.all_reduce(x, group=cur)                  # a group of one: unchanged
    info["subgroup_all_reduce"] = x.tolist()
    cur, _ = dist.new_subgroups_by_enumeration([[1, 0]])
    info["enumerated"] = [dist.get_process_group_ranks(cur), dist.get_rank(cur)]
    x = torch.tensor([float(r + 1)])
    dist.broadcast(x, src=1, group=cur)
    info["enumerated_broadcast"] = x.tolist()
    _err(info, "subgroups_bad", lambda: dist.new_subgroups(group_size=3), ValueError)
    _err(info, "enum_dup", lambda: dist.new_subgroups_by_enumeration([[0, 1], [1]]), ValueError)
    g = dist.split_group(split_ranks=[[0], [1]])
    info["split_group"] = dist.get_process_group_ranks(g)
    info["pg_count"] = dist.get_pg_count()

    # monitored_barrier: rank 1 stays away twice, rank 0 names it
    dist.monitored_barrier(timeout=timedelta(seconds=30))
    if r == 0:
        _err(info, "mbar", lambda: dist.monitored_barrier(timeout=timedelta(seconds=0.3)),
             RuntimeError)
        _err(info, "mbar_all", lambda: dist.monitored_barrier(
            timeout=timedelta(seconds=0.3), wait_all_ranks=True), RuntimeError)
    dist.barrier()
    dist.monitored_barrier()                       # the group still works
    info["mbar_after"] = True

    # coalesced
    ts = [torch.full((2,), r + 1.0), torch.full((3,), 10.0 * (r + 1))]
    dist.all_reduce_coalesced(ts, op=dist.ReduceOp.MAX)
    info["all_reduce_coalesced"] = [t.tolist() for t in ts]
    _err(info, "coalesced_dtypes", lambda: dist.all_reduce_coalesced(
        [torch.ones(1), torch.ones(1, dtype=torch.float64)]), ValueError)
    outs = [[torch.zeros(2), torch.zeros(1, dtype=torch.int64)] for _ in range(n)]
    dist.all_gather_coalesced(outs, [torch.full((2,), r + 0.5),
                                     torch.tensor([7 * r])])
    info["all_gather_coalesced"] = [[t.tolist() for t in lst] for lst in outs]

    # DeviceMesh
    m = init_device_mesh("cpu", (2,), mesh_dim_names=("dp",))
    info["mesh1"] = [repr(m), m.size(), m.get_local_rank(), m.get_coordinate(),
                     dist.get_process_group_ranks(m["dp"].get_group())]
    m2 = init_device_mesh("cpu", (1, 2), mesh_dim_names=("dp", "tp"))
    info["mesh2"] = [repr(m2), m2.size(), m2.size(1), m2.get_local_rank("tp"),
                     m2.get_local_rank("dp"), list(m2.get_coordinate()),
                     dist.get_process_group_ranks(m2.get_group("tp")),
                     dist.get_process_group_ranks(m2.get_group("dp")), repr(m2["tp"]),
                     m2.mesh.tolist()]
    x = torch.tensor([float(r + 1)])
    dist.all_reduce(x, group=m2.get_group("tp"))
    info["mesh2_tp_sum"] = x.tolist()
    _err(info, "mesh_no_dim", lambda: m2.get_local_rank(), RuntimeError)
    _err(info, "mesh_bad_name", lambda: m2["pp"], KeyError)
    _err(info, "mesh_too_big", lambda: init_device_mesh("cpu", (3,)), RuntimeError)

    # TCPStore across the two ranks: the server lives in rank 0
    store = dist.TCPStore("127.0.0.1", port, n, r == 0, timeout=timedelta(seconds=30))
    store.set(f"from{r}", f"hello {r}")
    info["store_get"] = store.get(f"from{1 - r}").decode()   # blocks until the peer set it
    info["store_add"] = store.add("counter", r + 1)
    dist.barrier()
    info["store_counter"] = int(store.get("counter"))
    info["store_num_keys"] = store.num_keys()

    # DDP comm hooks: same averaged gradients as the built-in reduction
    for name, hook in (("allreduce", default_hooks.allreduce_hook),
                       ("fp16", default_hooks.fp16_compress_hook)):
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        ddp = nn.parallel.DistributedDataParallel(model)
        ddp.register_comm_hook(None, hook)
        xin = torch.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3) * (r + 1))
        ddp(xin).sum().backward()
        res[f"hook_{name}_w"] = model.weight.grad.numpy()
        res[f"hook_{name}_b"] = model.bias.grad.numpy()
        if name == "allreduce":
            _err(info, "hook_twice", lambda: ddp.register_comm_hook(None, hook), RuntimeError)

    np.savez(os.path.join(out, f"rank{r}.npz"), **res)
    with open(os.path.join(out, f"rank{r}.json"), "w") as f:
        json.dump(info, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
