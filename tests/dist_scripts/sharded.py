"""ZeroRedundancyOptimizer, FullyShardedDataParallel and torch.distributed.checkpoint on every
rank; results go to OUT/rank{r}.npz and OUT/rank{r}.json for tests/test_fsdp.py, which
recomputes the expected values in one process (the model and batches are defined here).

    mpiexec -n 2 python tests/dist_scripts/sharded.py OUT
"""
import functools
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import framework as torch  # noqa: E402
from framework import nn, optim  # noqa: E402

STEPS, WORLD = 4, 2


def make_model():
    # 112 + 272 + 51 parameters: with min_num_params=100 the first two Linears become units
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3))


def batch(step):
    """The global batch of one step; rank r takes rows r::WORLD."""
    rng = np.random.default_rng(50 + step)
    return (torch.from_numpy(rng.standard_normal((8, 6)).astype(np.float32)),
            torch.from_numpy(rng.standard_normal((8, 3)).astype(np.float32)))


def train(model, opt, steps, shard=None, clip=None):
    """mse steps; returns the losses. shard=(rank, world) takes that rank's rows."""
    losses = []
    for s in range(steps):
        x, y = batch(s)
        if shard is not None:
            x, y = x[shard[0]::shard[1]], y[shard[0]::shard[1]]
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        if clip is not None:
            clip(model)
        opt.step()
        losses.append(loss.item())
    return losses


def sgd(params):
    # FSDP runs use SGD: unlike Adam it would show a gradient that is not averaged over ranks
    return optim.SGD(params, lr=0.2, momentum=0.9)


def _err(f):
    try:
        f()
    except Exception as e:          # noqa: BLE001 (the test checks class and message)
        return f"{type(e).__name__}: {e}"
    return "no error"


def main(out):
    import framework.distributed as dist
    import framework.distributed.checkpoint as dcp
    from framework.distributed.fsdp import (FullyShardedDataParallel as FSDP, ShardingStrategy,
                                            StateDictType, FullStateDictConfig, fully_shard)
    from framework.distributed.fsdp.wrap import size_based_auto_wrap_policy
    from framework.distributed.optim import ZeroRedundancyOptimizer
    from framework.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("gloo")
    r, n = dist.get_rank(), dist.get_world_size()
    res, info = {}, {}

    # ZeRO: DDP averages the gradients, each rank steps its half of Adam's state
    torch.manual_seed(0)
    model = make_model()
    ddp = DDP(model)
    zero = ZeroRedundancyOptimizer(model.parameters(), optim.Adam, lr=0.05)
    info["zero_losses"] = train(ddp, zero, STEPS, (r, n))
    for k, p in model.named_parameters():
        res[f"zero_{k}"] = p.detach().numpy().copy()
    info["zero_local_state_numel"] = sum(int(s["exp_avg"].numel())
                                         for s in zero.optim.state.values())
    info["zero_unconsolidated"] = _err(zero.state_dict)
    zero.consolidate_state_dict(to=0)
    if r == 0:
        sd = zero.state_dict()
        info["zero_sd_keys"] = sorted(sd["state"])
        for i, s in sd["state"].items():
            res[f"zero_state_{i}_exp_avg_sq"] = s["exp_avg_sq"].numpy().copy()
            info[f"zero_state_{i}_step"] = float(s["step"].item())
    # load the consolidated state into a fresh ZeRO: one more step equals continuing
    sd = [zero.state_dict() if r == 0 else None]
    dist.broadcast_object_list(sd, src=0)
    model2 = make_model()
    model2.load_state_dict(model.state_dict())
    zero2 = ZeroRedundancyOptimizer(model2.parameters(), optim.Adam, lr=0.3)
    zero2.load_state_dict(sd[0])
    for m, o in ((model, zero), (model2, zero2)):
        x, y = batch(STEPS)
        o.zero_grad()
        ((m(x) - y) ** 2).mean().backward()     # the same full batch on every rank
        o.step()
    info["zero_reload_diff"] = max(float(np.abs(a.detach().numpy() - b.detach().numpy()).max())
                                   for a, b in zip(model.parameters(), model2.parameters()))

    # FSDP: three strategies, nested units in the first, clipping
    policy = functools.partial(size_based_auto_wrap_policy, min_num_params=100)
    for name, strategy, wrap, clip in (
            ("full", ShardingStrategy.FULL_SHARD, policy, 0.5),
            ("grad_op", ShardingStrategy.SHARD_GRAD_OP, policy, None),
            ("no_shard", ShardingStrategy.NO_SHARD, None, None)):
        torch.manual_seed(r)            # differs per rank: sync_module_states broadcasts
        fsdp = FSDP(make_model(), sharding_strategy=strategy, auto_wrap_policy=wrap,
                    sync_module_states=True)
        if name == "full":
            info["repr"] = repr(fsdp)
            info["param_names"] = [k for k, _ in fsdp.named_parameters()]
        info[f"{name}_local_numel"] = sum(int(p.numel()) for p in fsdp.parameters())
        opt = sgd(fsdp.parameters())
        norms = []
        cl = None if clip is None else (
            lambda m: norms.append(float(FSDP.clip_grad_norm_(m, clip).item())))
        info[f"{name}_losses"] = train(fsdp, opt, STEPS, (r, n), cl)
        info[f"{name}_norms"] = norms
        cfg = FullStateDictConfig(offload_to_cpu=True, rank0_only=True)
        with FSDP.state_dict_type(fsdp, StateDictType.FULL_STATE_DICT, cfg):
            full = fsdp.state_dict()
        info[f"{name}_full_keys"] = list(full)
        for k, v in full.items():
            res[f"{name}_{k}"] = v.detach().numpy().copy()
        if name != "full":
            continue
        # summon_full_params: whole parameters under their names; writes go back to shards
        with FSDP.summon_full_params(fsdp):
            info["summon_names"] = [k for k, _ in fsdp.named_parameters()]
            with torch.no_grad():
                fsdp[4].bias.fill_(7.0)
        res["summon_bias"] = fsdp.state_dict()["4.bias"].detach().numpy().copy()

        # sharded state dict -> dcp.save -> a fresh model -> dcp.load
        with FSDP.state_dict_type(fsdp, StateDictType.SHARDED_STATE_DICT):
            sd = {"model": fsdp.state_dict(), "step": STEPS}
            info["sharded_shapes"] = {k: list(v.shape) for k, v in sd["model"].items()}
            ckpt = os.path.join(out, "ckpt")
            dcp.save(sd, checkpoint_id=ckpt)
        torch.manual_seed(123)
        fresh = FSDP(make_model(), auto_wrap_policy=policy)
        with FSDP.state_dict_type(fresh, StateDictType.SHARDED_STATE_DICT):
            sd2 = {"model": fresh.state_dict(), "step": 0}
            dcp.load(sd2, checkpoint_id=ckpt)
            fresh.load_state_dict(sd2["model"])
        info["dcp_step"] = sd2["step"]
        for k, v in fresh.state_dict().items():
            res[f"dcp_{k}"] = v.detach().numpy().copy()
        info["ckpt_files"] = sorted(os.listdir(ckpt))

    # FSDP2: fully_shard each Linear, then the root; parameters become dim-0 chunks
    torch.manual_seed(0)
    model = make_model()
    for i in (0, 2, 4):
        fully_shard(model[i])
    fully_shard(model)
    info["fsdp2_repr"] = repr(model)
    info["fsdp2_local_shapes"] = {k: list(p.shape) for k, p in model.named_parameters()}
    opt = sgd(model.parameters())
    info["fsdp2_losses"] = train(model, opt, STEPS, (r, n))
    for k, p in model.named_parameters():
        res[f"fsdp2_{k}"] = p.full_tensor().numpy().copy()

    np.savez(os.path.join(out, f"rank{r}.npz"), **res)
    with open(os.path.join(out, f"rank{r}.json"), "w") as f:
        json.dump(info, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
