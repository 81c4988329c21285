"""ZeroRedundancyOptimizer, FullyShardedDataParallel and torch.distributed.checkpoint: 2 real MPI
ranks (tests/dist_scripts/sharded.py, launched once) against single-process training here, plus
checks in a world of one."""
import json
import os

import numpy as np
import pytest

import framework as torch
import framework.distributed as dist
from framework import nn, optim
from framework.distributed import checkpoint as dcp
from framework.distributed.fsdp import (FullyShardedDataParallel as FSDP, ShardingStrategy,
                                        StateDictType, MixedPrecision, fully_shard)
from framework.distributed.fsdp.wrap import (ModuleWrapPolicy, size_based_auto_wrap_policy,
                                             transformer_auto_wrap_policy)
from framework.distributed.optim import ZeroRedundancyOptimizer

from test_distributed import SCRIPTS, _launch, _load, needs_mpi


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded")
    p, _ = _launch("sharded.py", out)
    assert p.returncode == 0, p.stdout + p.stderr
    arrs = [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]
    info = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return arrs, info, _load(os.path.join(SCRIPTS, "sharded.py"))


def _np(t):
    return t.detach().numpy().copy()


def _reference(m, clip=None, adam=False):
    """rank 0's initial model trained on the whole batch in this process."""
    torch.manual_seed(0)
    ref = m.make_model()
    opt = optim.Adam(ref.parameters(), lr=0.05) if adam else m.sgd(ref.parameters())
    norms = []
    cl = None if clip is None else (
        lambda mod: norms.append(nn.utils.clip_grad_norm_(mod.parameters(), clip).item()))
    losses = m.train(ref, opt, m.STEPS, None, cl)
    return ref, opt, losses, norms


@needs_mpi
def test_zero_equals_adam_on_the_whole_batch(run):
    arrs, info, m = run
    ref, opt, losses, _ = _reference(m, adam=True)
    # equal halves and a mean loss: the ranks' mean loss is the whole batch's loss
    np.testing.assert_allclose(np.mean([info[0]["zero_losses"], info[1]["zero_losses"]], 0),
                               losses, rtol=1e-5)
    for k, p in ref.named_parameters():
        for r in range(2):
            np.testing.assert_allclose(arrs[r][f"zero_{k}"], _np(p), rtol=1e-4, atol=1e-6,
                                       err_msg=k)
    # largest first, to the emptier rank: 2.weight (256) on rank 0, the other 179 on rank 1
    assert [info[r]["zero_local_state_numel"] for r in range(2)] == [256, 179]
    want = opt.state_dict()["state"]
    assert info[0]["zero_sd_keys"] == sorted(want) == list(range(6))
    for i, s in want.items():
        np.testing.assert_allclose(arrs[0][f"zero_state_{i}_exp_avg_sq"], _np(s["exp_avg_sq"]),
                                   rtol=1e-4, atol=1e-9)
        assert info[0][f"zero_state_{i}_step"] == 4.0
    assert info[1]["zero_unconsolidated"] == (
        "RuntimeError: Optimizer state has not been consolidated on this rank. Please call "
        "`consolidate_state_dict(to=0)` on all ranks beforehand if you meant to save the global "
        "state.")
    # the consolidated state (lr 0.05 included) loaded into a fresh ZeRO continues identically
    assert info[0]["zero_reload_diff"] == 0.0 and info[1]["zero_reload_diff"] == 0.0


@needs_mpi
@pytest.mark.parametrize("name", ["full", "grad_op", "no_shard"])
def test_fsdp_equals_single_process_training(run, name):
    arrs, info, m = run
    ref, _, losses, norms = _reference(m, clip=0.5 if name == "full" else None)
    np.testing.assert_allclose(np.mean([info[0][f"{name}_losses"], info[1][f"{name}_losses"]],
                                       0), losses, rtol=1e-5)
    if name == "full":      # the norm over both ranks' shards is the whole model's norm
        for r in range(2):
            np.testing.assert_allclose(info[r]["full_norms"], norms, rtol=1e-5)
        assert max(norms) > 0.5         # clipping really happened
    want = {k: _np(v) for k, v in ref.state_dict().items()}
    assert info[0][f"{name}_full_keys"] == list(want)
    assert info[1][f"{name}_full_keys"] == []          # rank0_only
    for k, w in want.items():
        np.testing.assert_allclose(arrs[0][f"{name}_{k}"], w, rtol=1e-4, atol=1e-6, err_msg=k)
    torch.manual_seed(0)
    init = m.make_model().state_dict()
    assert max(np.abs(want[k] - _np(init[k])).max() for k in want) > 1e-2
    # each rank holds ceil(numel / 2) of every unit: units of 112, 272 and 51 parameters
    total = sum(v.size for v in want.values())
    assert total == 435
    local = 56 + 136 + 26 if name != "no_shard" else total
    assert info[0][f"{name}_local_numel"] == info[1][f"{name}_local_numel"] == local


@needs_mpi
def test_fsdp_repr_names_and_summon_full_params(run):
    arrs, info, _ = run
    assert info[0]["repr"] == """FullyShardedDataParallel(
  (_fsdp_wrapped_module): Sequential(
    (0): FullyShardedDataParallel(
      (_fsdp_wrapped_module): Linear(in_features=6, out_features=16, bias=True)
    )
    (1): Tanh()
    (2): FullyShardedDataParallel(
      (_fsdp_wrapped_module): Linear(in_features=16, out_features=16, bias=True)
    )
    (3): Tanh()
    (4): Linear(in_features=16, out_features=3, bias=True)
  )
)"""
    assert info[0]["param_names"] == [
        "_fsdp_wrapped_module._flat_param",
        "_fsdp_wrapped_module.0._fsdp_wrapped_module._flat_param",
        "_fsdp_wrapped_module.2._fsdp_wrapped_module._flat_param"]
    names = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    for r in range(2):
        assert info[r]["summon_names"] == names
    # written inside summon_full_params, written back into both ranks' shards
    np.testing.assert_array_equal(arrs[0]["summon_bias"], [7.0, 7.0, 7.0])


@needs_mpi
def test_sharded_state_dict_through_dcp_into_a_fresh_model(run):
    arrs, info, _ = run
    # each parameter's dim-0 chunk: 16 rows -> 8 + 8, 3 rows -> 2 + 1
    assert info[0]["sharded_shapes"]["4.weight"] == [2, 16]
    assert info[1]["sharded_shapes"]["4.weight"] == [1, 16]
    assert info[1]["sharded_shapes"]["0.weight"] == [8, 6]
    assert info[0]["ckpt_files"] == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    for r in range(2):
        assert info[r]["dcp_step"] == 4
        for k in ("0.weight", "0.bias", "2.weight", "2.bias", "4.weight"):
            np.testing.assert_array_equal(arrs[r][f"dcp_{k}"], arrs[0][f"full_{k}"], err_msg=k)
        np.testing.assert_array_equal(arrs[r]["dcp_4.bias"], [7.0, 7.0, 7.0])


@needs_mpi
def test_fully_shard_equals_single_process_training(run):
    arrs, info, m = run
    ref, _, losses, _ = _reference(m)
    np.testing.assert_allclose(np.mean([info[0]["fsdp2_losses"], info[1]["fsdp2_losses"]], 0),
                               losses, rtol=1e-5)
    for k, p in ref.named_parameters():
        for r in range(2):
            np.testing.assert_allclose(arrs[r][f"fsdp2_{k}"], _np(p), rtol=1e-4, atol=1e-6,
                                       err_msg=k)
    assert info[0]["fsdp2_repr"].splitlines()[:2] == [
        "FSDPSequential(", "  (0): FSDPLinear(in_features=6, out_features=16, bias=True)"]
    # torch.chunk's split of dim 0: 3 rows -> 2 on rank 0, 1 on rank 1
    assert info[0]["fsdp2_local_shapes"]["4.weight"] == [2, 16]
    assert info[1]["fsdp2_local_shapes"]["4.weight"] == [1, 16]
    assert info[1]["fsdp2_local_shapes"]["2.bias"] == [8]


# ---- a world of one, in this process ---------------------------------------------------------
@pytest.fixture
def world1():
    dist.init_process_group("gloo")
    yield
    dist.destroy_process_group()


def test_before_init_and_unsupported():
    if dist.is_initialized():
        pytest.skip("a process group is active in this process")
    msg = "Default process group has not been initialized"
    with pytest.raises(ValueError, match=msg):
        FSDP(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=msg):
        ZeroRedundancyOptimizer(nn.Linear(2, 2).parameters(), optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match=msg):
        fully_shard(nn.Linear(2, 2))


def test_auto_wrap_policies():
    lin = nn.Linear(2, 2)
    assert size_based_auto_wrap_policy(lin, True, 100, min_num_params=100) is True
    assert size_based_auto_wrap_policy(lin, False, 99, min_num_params=100) is False
    # ModuleList is never wrapped itself; MultiheadAttention is not looked into
    assert size_based_auto_wrap_policy(nn.ModuleList(), False, 10 ** 9) is False
    assert size_based_auto_wrap_policy(nn.MultiheadAttention(4, 2), True, 10 ** 9) is False
    pol = ModuleWrapPolicy({nn.Linear})
    assert pol(lin, recurse=False) is True and pol(nn.Tanh(), recurse=False) is False
    assert transformer_auto_wrap_policy(nn.Tanh(), True, 0, {nn.Linear}) is True


def test_fsdp_world_of_one_equals_the_plain_model(world1):
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model.load_state_dict(plain.state_dict())
    fsdp = FSDP(model, auto_wrap_policy=ModuleWrapPolicy({nn.Linear}))
    assert type(fsdp[0]) is FSDP and type(fsdp[2]) is FSDP and type(fsdp[1]) is nn.ReLU
    # outside forward the original names hold empty tensors, as in PyTorch
    assert fsdp[0].weight.shape == (0,)
    x = torch.from_numpy(np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3))
    o1, o2 = optim.SGD(fsdp.parameters(), lr=0.1), optim.SGD(plain.parameters(), lr=0.1)
    for mod, o in ((fsdp, o1), (plain, o2)):
        for _ in range(2):
            o.zero_grad()
            mod(x).pow(2).sum().backward()
            o.step()
    sd, want = fsdp.state_dict(), plain.state_dict()
    assert list(sd) == list(want)
    for k in want:
        np.testing.assert_allclose(_np(sd[k]), _np(want[k]), rtol=1e-6, atol=1e-7, err_msg=k)
    # no_sync(): the first micro-batch's gradient waits and is added to the next one's
    o1.zero_grad()
    plain.zero_grad()
    with fsdp.no_sync():
        fsdp(x[:2]).sum().backward()
    assert all(p.grad is None for p in fsdp.parameters())
    fsdp(x[2:]).sum().backward()
    plain(x).sum().backward()
    got = np.concatenate([_np(fsdp[0]._flat_param.grad), _np(fsdp[2]._flat_param.grad)])
    want_g = np.concatenate([_np(p.grad).reshape(-1) for p in plain.parameters()])
    np.testing.assert_allclose(got, want_g, rtol=1e-5, atol=1e-7)
    # load_state_dict(FULL) writes into the flat shards
    zeros = {k: torch.zeros_like(v) for k, v in want.items()}
    fsdp.load_state_dict(zeros)
    assert all(float(p.detach().abs().sum().item()) == 0.0 for p in fsdp.parameters())
    with FSDP.state_dict_type(fsdp, StateDictType.SHARDED_STATE_DICT):
        assert list(fsdp.state_dict()) == list(want)
    with pytest.raises(TypeError, match="sharding_strategy must be a ShardingStrategy"):
        FSDP(nn.Linear(2, 2), sharding_strategy="FULL_SHARD")
    with pytest.raises(NotImplementedError, match="mixed_precision"):
        FSDP(nn.Linear(2, 2), mixed_precision=MixedPrecision())
    mixed = nn.Linear(2, 2)
    mixed.bias.requires_grad_(False)
    with pytest.raises(ValueError, match="all require grad or all not"):
        FSDP(mixed)
    assert ShardingStrategy.FULL_SHARD.name == "FULL_SHARD"


def test_fsdp_clip_grad_norm_hand_computed(world1):
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0]]))
    fsdp = FSDP(lin, sharding_strategy=ShardingStrategy.NO_SHARD)
    fsdp(torch.tensor([[1.0, 1.0]])).pow(2).sum().backward()   # grad = 2 * 7 * [1, 1]
    total = FSDP.clip_grad_norm_(fsdp, 1.0)
    np.testing.assert_allclose(total.item(), 14 * 2 ** 0.5, rtol=1e-6)
    np.testing.assert_allclose(_np(fsdp._flat_param.grad), [2 ** -0.5, 2 ** -0.5], rtol=1e-5)
    fsdp(torch.tensor([[1.0, 1.0]])).sum().backward()          # adds [1, 1]
    assert FSDP.clip_grad_norm_(fsdp, 5.0, norm_type="inf").item() == pytest.approx(
        1 + 2 ** -0.5, rel=1e-6)


def test_zero_world_of_one_equals_adam_and_add_param_group(world1):
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    zero = ZeroRedundancyOptimizer(a.parameters(), optim.Adam, lr=0.1)
    adam = optim.Adam(b.parameters(), lr=0.1)
    extra_a = nn.Parameter(torch.ones(2))
    extra_b = nn.Parameter(torch.ones(2))
    x = torch.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3) / 5)
    for step in range(3):
        if step == 1:
            zero.add_param_group({"params": [extra_a], "lr": 0.01})
            adam.add_param_group({"params": [extra_b], "lr": 0.01})
            zero.param_groups[0]["lr"] = adam.param_groups[0]["lr"] = 0.05   # a scheduler
        for m, e, o in ((a, extra_a, zero), (b, extra_b, adam)):
            o.zero_grad()
            (m(x).pow(2).sum() + (e * e).sum()).backward()
            o.step()
    for p, q in zip(list(a.parameters()) + [extra_a], list(b.parameters()) + [extra_b]):
        np.testing.assert_allclose(_np(p), _np(q), rtol=1e-6)
    assert "ZeroRedundancyOptimizer (" in repr(zero) and "lr: 0.05" in repr(zero)
    zero.consolidate_state_dict()
    sd, want = zero.state_dict(), adam.state_dict()
    assert [g["lr"] for g in sd["param_groups"]] == [0.05, 0.01]
    assert sd["param_groups"][1]["params"] == [2]
    for i, s in want["state"].items():
        np.testing.assert_allclose(_np(sd["state"][i]["exp_avg"]), _np(s["exp_avg"]), rtol=1e-6)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        zero.load_state_dict({"state": {}, "param_groups": sd["param_groups"][:1]})


def test_dcp_round_trip_and_errors(world1, tmp_path):
    torch.manual_seed(0)
    m = nn.Linear(3, 2)
    o = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.ones(1, 3)).sum().backward()
    o.step()
    saved_w = _np(m.weight)
    dcp.save({"model": m, "optim": o, "epoch": 3}, checkpoint_id=tmp_path / "c")
    assert sorted(os.listdir(tmp_path / "c")) == [".metadata", "__0_0.distcp"]
    torch.manual_seed(1)
    m2 = nn.Linear(3, 2)
    o2 = optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    m2(torch.ones(1, 3)).sum().backward()
    o2.step()                               # momentum buffers exist to be overwritten
    sd = {"model": m2, "optim": o2, "epoch": 0}
    dcp.load(sd, checkpoint_id=tmp_path / "c")
    np.testing.assert_array_equal(_np(m2.weight), saved_w)
    assert sd["epoch"] == 3
    np.testing.assert_array_equal(_np(o2.state[m2.weight]["momentum_buffer"]),
                                  _np(o.state[m.weight]["momentum_buffer"]))
    wrong = {"model": {"weight": torch.zeros(3, 3), "bias": torch.zeros(2)}}
    with pytest.raises(dcp.CheckpointException, match=r"size mismatch for 'model.weight': the "
                       r"checkpoint has shape \[2, 3\], the state dict's tensor has shape"):
        dcp.load(wrong, checkpoint_id=tmp_path / "c")
    assert float(wrong["model"]["weight"].abs().sum().item()) == 0.0     # left unchanged
    with pytest.raises(dcp.CheckpointException, match="'nope' is missing"):
        dcp.load({"nope": torch.zeros(1)}, checkpoint_id=tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="no checkpoint metadata"):
        dcp.load({}, checkpoint_id=tmp_path / "none")


def test_fully_shard_world_of_one_and_gradient_accumulation(world1):
    from framework.distributed.fsdp import FSDPModule, ShardedParameter
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    model.load_state_dict(plain.state_dict())
    fully_shard(model[0])
    assert fully_shard(model) is model
    assert isinstance(model, FSDPModule) and isinstance(model, nn.Sequential)
    assert repr(model).startswith("FSDPSequential(\n  (0): FSDPLinear(in_features=3")
    assert all(type(p) is ShardedParameter for p in model.parameters())
    with pytest.raises(AssertionError, match="can only be applied to a module once"):
        fully_shard(model[0])
    x = torch.from_numpy(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    # two micro-batches, the first without gradient sync: the sum of both gradients
    model.set_requires_gradient_sync(False)
    model(x[:2]).sum().backward()
    assert model[0].weight.grad is None           # held back until a synced backward
    model.set_requires_gradient_sync(True)
    model(x[2:]).sum().backward()
    plain(x).sum().backward()
    for (k, p), q in zip(model.named_parameters(), plain.parameters()):
        np.testing.assert_allclose(_np(p.grad), _np(q.grad), rtol=1e-5, atol=1e-7, err_msg=k)
        np.testing.assert_array_equal(_np(p.full_tensor()), _np(q))
    with pytest.raises(TypeError, match="module must be an nn.Module"):
        fully_shard(3)
