"""framework.distributed and DistributedDataParallel on 2 real MPI ranks (mpiexec from the
mpich wheel), checked against NumPy and against single-process training here.

The rank programs live in tests/dist_scripts/; each writes its results to a directory that the
tests below read. Without mpi4py or mpiexec (the dist extra) the multi-rank tests skip and say
what is missing; `make test` installs the extra, so in CI they run.
"""
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import framework as torch
import framework.distributed as dist
from framework import nn
from runtime.distributed import launcher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "tests", "dist_scripts")


def _missing():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install -e '.[dist]')"
    if launcher.find_mpiexec() is None:
        return "no mpiexec (the mpich wheel: pip install -e '.[dist]')"
    return None


needs_mpi = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _launch(script, *args, n=2, timeout=120, extra=()):
    cmd = launcher.command(n, os.path.join(SCRIPTS, script), [str(a) for a in args],
                           extra=extra)
    env = dict(os.environ, PYTHONPATH=ROOT, KILN_DIST_CHECK="1")
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    return p, time.monotonic() - t0


def _load(path):
    spec = importlib.util.spec_from_file_location(f"_dist_{os.path.basename(path)[:-3]}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- every collective against NumPy -----------------------------------------------------------
@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    out = tmp_path_factory.mktemp("coll")
    p, _ = _launch("collectives.py", out)
    assert p.returncode == 0, p.stdout + p.stderr
    arrs = [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]
    info = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return arrs, info, _load(os.path.join(SCRIPTS, "collectives.py")).data


@needs_mpi
def test_all_reduce_ops_match_numpy(coll):
    arrs, info, data = coll
    a = np.stack([data(0), data(1)]).astype(np.float64)
    want = {"SUM": a.sum(0), "AVG": a.mean(0), "MAX": a.max(0), "MIN": a.min(0),
            "PRODUCT": a.prod(0)}
    for r in range(2):
        for name, w in want.items():
            np.testing.assert_allclose(arrs[r][f"all_reduce_{name}"], w, rtol=1e-6,
                                       err_msg=name)
        np.testing.assert_allclose(arrs[r]["all_reduce_view"], a.sum(0), rtol=1e-6)
        np.testing.assert_allclose(arrs[r]["all_reduce_async"], a.sum(0), rtol=1e-6)
        np.testing.assert_allclose(arrs[r]["all_reduce_float16"], a.sum(0), rtol=2e-3)
        np.testing.assert_array_equal(arrs[r]["all_reduce_int64"], [3, 30])
        np.testing.assert_array_equal(arrs[r]["all_reduce_bool"], [True, False, True])
        assert info[r]["work_wait"] is True and info[r]["work_completed"] is True


@needs_mpi
def test_data_movement_collectives_match_numpy(coll):
    arrs, info, data = coll
    d = [data(0).astype(np.float64), data(1).astype(np.float64)]
    for r in range(2):
        np.testing.assert_array_equal(arrs[r]["broadcast"], d[1])
        np.testing.assert_array_equal(arrs[r]["all_gather"], np.stack(d))
        np.testing.assert_array_equal(arrs[r]["all_gather_into_tensor"], np.concatenate(d))
        # reduce_scatter: rank r gets the sum over ranks of input_list[r] = data * (r + 1)
        np.testing.assert_allclose(arrs[r]["reduce_scatter"], (d[0] + d[1]) * (r + 1))
        np.testing.assert_allclose(arrs[r]["reduce_scatter_tensor"], (d[0] + d[1])[r:r + 1])
        np.testing.assert_array_equal(arrs[r]["scatter"], np.full((3, 4), 7.0 * r))
    np.testing.assert_array_equal(arrs[1]["reduce"], np.maximum(d[0], d[1]))
    np.testing.assert_array_equal(arrs[0]["reduce"], d[0])          # not the destination
    np.testing.assert_array_equal(arrs[0]["gather"], np.stack(d))
    assert "gather" not in arrs[1]
    np.testing.assert_array_equal(arrs[1]["recv"], [3.0, 4.0])
    np.testing.assert_array_equal(arrs[1]["irecv"], [5.0])
    assert info[1]["recv_source"] == 0
    np.testing.assert_allclose(arrs[1]["subgroup"], d[1])            # a group of one
    assert info[1]["subgroup_size"] == 1 and info[0]["subgroup_member"] is False


@needs_mpi
def test_object_collectives_and_world(coll):
    _, info, _ = coll
    for r in range(2):
        assert info[r]["rank"] == r and info[r]["world"] == 2
        assert info[r]["initialized"] is True and info[r]["backend"] == "mpi"
        assert info[r]["broadcast_object_list"] == [{"from": 1, "list": [0, 1]}, "rank1"]
        assert info[r]["all_gather_object"] == [["obj", 0], ["obj", 1]]
        assert info[r]["scatter_object_list"] == f"for {r}"
    assert info[0]["gather_object"] == [0, 10] and info[1]["gather_object"] is None
    # DistributedSampler picks the world up from the process group: disjoint, padded shards
    assert info[0]["sampler"] == [0, 2, 4, 6, 8, 10]
    assert info[1]["sampler"] == [1, 3, 5, 7, 9, 0]


@needs_mpi
def test_collective_errors_name_op_and_shapes(coll):
    _, info, _ = coll
    for r in range(2):      # both ranks raise the same error: nobody is left waiting
        assert info[r]["mismatch_error"] == (
            "all_reduce: the ranks called mismatched collectives or passed mismatched tensors: "
            "rank 0: all_reduce(shape [2], dtype float32); rank 1: all_reduce(shape [3], dtype "
            "float32)")
        assert info[r]["list_len_error"] == ("all_gather: tensor_list must have one tensor per "
                                             "rank (2), got 1")
        assert "ReduceOp.AVG needs a floating-point" in info[r]["avg_int_error"]


# ---- all_to_all, batched p2p, subgroups, DeviceMesh, TCPStore, comm hooks: one launch ----------
@pytest.fixture(scope="module")
def extras(tmp_path_factory):
    import socket
    out = tmp_path_factory.mktemp("extras")
    with socket.socket() as s:           # a free port for the TCPStore that rank 0 serves
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p, _ = _launch("extras.py", out, port)
    assert p.returncode == 0, p.stdout + p.stderr
    arrs = [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]
    info = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return arrs, info, _load(os.path.join(SCRIPTS, "extras.py"))


@needs_mpi
def test_all_to_all_matches_numpy(extras):
    arrs, info, m = extras
    inp = [m.a2a_input(0), m.a2a_input(1)]
    for r in range(2):
        # rank r gets, from each rank k, the rows k addressed to r (k's split r)
        blocks = []
        for k in range(2):
            lo = sum(m.IN_SPLITS[k][:r])
            blocks.append(inp[k][lo:lo + m.IN_SPLITS[k][r]])
        np.testing.assert_array_equal(arrs[r]["a2a_uneven"], np.concatenate(blocks))
        even = [np.arange(12).reshape(4, 3) + 1000 * k for k in range(2)]
        np.testing.assert_array_equal(arrs[r]["a2a_even"],
                                      np.concatenate([e[2 * r:2 * r + 2] for e in even]))
        assert info[r]["a2a_work"] == [True, True]
        assert info[r]["a2a_list"] == [[10.0 * k + r] * (r + k + 1) for k in range(2)]
        assert info[r]["a2a_bad_split"] == (
            "RuntimeError: all_to_all_single: Split sizes doesn't match total dim 0 size "
            "(input split sizes [1, 1], input of shape [3])")
        # rank 0 sends [2, 0] where both ranks expect 1 row from it: both ranks raise
        assert info[r]["a2a_mismatch"] == (
            "RuntimeError: all_to_all_single: the ranks' split sizes do not match: rank 0 sends "
            "2 rows to rank 0, which expects 1; rank 0 sends 0 rows to rank 1, which expects 1")


@needs_mpi
def test_batched_p2p_objects_and_subgroups(extras):
    arrs, info, _ = extras
    for r in range(2):
        np.testing.assert_array_equal(arrs[r]["batch_p2p"], [2.0 - r] * 3)
        assert info[r]["p2p_repr"] == (f"P2POp(isend pg=0, group_src={r}, group_dst={1 - r},  "
                                       "torch.Size([3]), torch.float32)")
        assert info[r]["p2p_bad_op"].startswith("ValueError: Invalid ``op``. Expected ``op``")
        assert info[r]["batch_bad"].startswith("ValueError: Invalid ``p2p_op_list``")
        assert info[r]["world_ranks"] == [0, 1]
        # new_subgroups(1): this rank alone; the other entry is NON_GROUP_MEMBER
        assert info[r]["subgroup"] == [[r], 1, [k != r for k in range(2)]]
        assert info[r]["subgroup_all_reduce"] == [r + 1.0]
        assert info[r]["enumerated"] == [[1, 0], 1 - r]        # group rank follows the list
        assert info[r]["enumerated_broadcast"] == [2.0]        # global src=1
        assert info[r]["subgroups_bad"] == ("ValueError: The arg 'group_size' (3) must not "
                                            "exceed the world size (2)")
        assert info[r]["enum_dup"] == ("ValueError: Rank 1 has appeared in both subgroup "
                                       "[0, 1] and [1]")
        assert info[r]["split_group"] == [r]
        assert info[r]["pg_count"] == 1 + 2 + 1 + 1            # world, 2 subgroups, 1, 1
        assert info[r]["mbar_after"] is True
    assert info[1]["recv_object_list"] == [{"a": [1, 2]}, "x", None]
    assert info[1]["recv_object_list_src"] == 0
    assert info[0]["mbar"] == ("RuntimeError: [Rank 0]: Rank 1 failed to pass monitoredBarrier "
                               "in 300 ms")
    assert info[0]["mbar_all"] == ("RuntimeError: [Rank 0]: Ranks 1 failed to pass "
                                   "monitoredBarrier in 300 ms")


@needs_mpi
def test_coalesced_collectives_and_device_mesh(extras):
    _, info, _ = extras
    for r in range(2):
        assert info[r]["all_reduce_coalesced"] == [[2.0, 2.0], [20.0, 20.0, 20.0]]   # MAX
        assert info[r]["coalesced_dtypes"] == (
            "ValueError: Invalid usage of tensors with different dtypesFound torch.float32 and "
            " torch.float64")
        assert info[r]["all_gather_coalesced"] == [[[0.5, 0.5], [0]], [[1.5, 1.5], [7]]]
        assert info[r]["mesh1"] == ["DeviceMesh((dp=2), 'cpu', stride=(1,))", 2, r, [r],
                                    [0, 1]]
        assert info[r]["mesh2"] == ["DeviceMesh((dp=1, tp=2), 'cpu', stride=((), 1))", 2, 2, r,
                                    0, [0, r], [0, 1], [r],
                                    "DeviceMesh((tp=2), 'cpu', stride=(1,))", [[0, 1]]]
        assert info[r]["mesh2_tp_sum"] == [3.0]
        assert "Optional kwarg `mesh_dim` needs to be specified" in info[r]["mesh_no_dim"]
        assert info[r]["mesh_bad_name"].startswith("KeyError: \"Invalid mesh_dim_names ('pp',)")
        assert info[r]["mesh_too_big"] == ("RuntimeError: Mesh should not be bigger than "
                                           "default world size 2, but found 3 ranks!")


@needs_mpi
def test_tcp_store_across_ranks_and_ddp_comm_hooks(extras):
    arrs, info, _ = extras
    for r in range(2):
        assert info[r]["store_get"] == f"hello {1 - r}"
        assert info[r]["store_counter"] == 3 and info[r]["store_num_keys"] == 4  # + init/
        assert info[r]["hook_twice"] == ("RuntimeError: register_comm_hook or "
                                         "register_builtin_comm_hook can only be called once.")
    assert sorted([info[0]["store_add"], info[1]["store_add"]]) in ([1, 3], [2, 3])
    # the hooks average Linear(3, 2)'s gradients of sum(x W^T + b) with x = arange * (r + 1)
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    want_w = np.tile((x.sum(0) * 1 + x.sum(0) * 2) / 2, (2, 1))
    for r in range(2):
        for name, tol in (("allreduce", 1e-6), ("fp16", 1e-3)):
            np.testing.assert_allclose(arrs[r][f"hook_{name}_w"], want_w, rtol=tol)
            np.testing.assert_allclose(arrs[r][f"hook_{name}_b"], [2.0, 2.0], rtol=tol)


# ---- DDP ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    p, _ = _launch("ddp.py", out, "train", "compile", "nosync", "unused", "buffers",
                   "compile_overlap", "compiled_ddp_overlap", "compile_nosync")
    assert p.returncode == 0, p.stdout + p.stderr

    def get(case, r):
        return (dict(np.load(out / f"{case}_rank{r}.npz")),
                json.loads((out / f"{case}_rank{r}.json").read_text()))
    return get, _load(os.path.join(SCRIPTS, "ddp.py"))


@needs_mpi
@pytest.mark.parametrize("case", ["train", "compile", "compile_overlap",
                                  "compiled_ddp_overlap"])
def test_ddp_matches_single_process_on_the_whole_batch(ddp_run, case):
    get, m = ddp_run
    torch.manual_seed(0)            # rank 0's seed: DDP broadcast its initial weights
    ref = m.make_model()
    m.train(ref, 1)
    m.train(ref, m.STEPS - 1)
    want = m.params(ref)
    got0, info = get(case, 0)
    got1, _ = get(case, 1)
    if case == "compile":           # the forward really ran compiled, every step
        assert info["calls"] == m.STEPS and info["compiles"] >= 1 and info["eager_calls"] == 0
    if case == "compile_overlap":
        assert info["calls"] == m.STEPS and info["eager_calls"] == 0
    assert set(got0) == set(want)
    for k, w in want.items():
        np.testing.assert_allclose(got0[k], w, rtol=1e-4, atol=1e-5, err_msg=k)
        np.testing.assert_array_equal(got0[k], got1[k], err_msg=k)   # ranks stay identical
    # and training moved the weights: the check is not vacuous
    torch.manual_seed(0)
    init = m.params(m.make_model())
    assert max(np.abs(want[k] - init[k]).max() for k in want) > 1e-2


@needs_mpi
def test_ddp_inside_a_compiled_training_step(tmp_path):
    # its own launch: a failure of compile() here must not hide the other DDP results
    p, _ = _launch("ddp.py", tmp_path, "compiled_step")
    assert p.returncode == 0, p.stdout + p.stderr
    m = _load(os.path.join(SCRIPTS, "ddp.py"))
    torch.manual_seed(0)
    ref = m.make_model()
    m.train(ref, m.STEPS)           # one optimizer for all steps, as in the compiled step
    got = dict(np.load(tmp_path / "compiled_step_rank0.npz"))
    info = json.loads((tmp_path / "compiled_step_rank0.json").read_text())
    for k, w in m.params(ref).items():
        np.testing.assert_allclose(got[k], w, rtol=1e-4, atol=1e-5, err_msg=k)
    # the all-reduce needs the gradients' values: a logged graph break, run eagerly
    assert info["graph_breaks"] and all("needs a traced tensor's value" in b
                                        for b in info["graph_breaks"])


@needs_mpi
def test_ddp_buckets_all_reduce_during_backward(ddp_run):
    get, _ = ddp_run
    for r in range(2):
        _, info = get("train", r)
        log = [e[0] for e in info["log"]]
        assert info["bucket_sizes"] == [4840, 160]       # last layers first: 4840 >= 2 KiB cap
        assert log.count("allreduce_start") == 2 and log[-1] == "backward_end"
        first = log.index("allreduce_start")
        # the first bucket's all-reduce starts before autograd reaches the first layer
        assert first < log.index("first_layer_grad")
        assert first < len(log) - 1 - log[::-1].index("grad_ready")
        assert info["keys"] == ["module.0.weight", "module.0.bias"]


@needs_mpi
@pytest.mark.parametrize("case", ["compile_overlap", "compiled_ddp_overlap"])
def test_ddp_all_reduces_during_the_compiled_backward_program(ddp_run, case):
    # DDP(compile(model)) and compile(DDP(model)): the model's backward is one compiled
    # program; the first bucket (the last layers) is all-reduced while it still runs
    get, _ = ddp_run
    for r in range(2):
        _, info = get(case, r)
        assert len(info["logs"]) == 5                    # every step, traced or replayed
        for log in info["logs"]:
            ev = [e[0] for e in log]
            assert ev[0] == "compiled_backward_start" and ev[-1] == "backward_end"
            assert ev.count("compiled_backward_start") == 1
            end = ev.index("compiled_backward_end")
            starts = [i for i, e in enumerate(ev) if e == "allreduce_start"]
            assert len(starts) == 2 and starts[0] < end
            # gradients came from inside the program, once each; the post-accumulate hooks
            # that follow were not counted again
            ready = [e[1] for e in log if e[0] == "grad_ready_compiled"]
            assert len(ready) == len(set(ready)) == 6 and "grad_ready" not in ev
            assert all(i < end for i, e in enumerate(ev) if e == "grad_ready_compiled")
            # the conv layer (first bucket in parameter order, last in backward) comes after
            # the first all-reduce started
            assert starts[0] < max(i for i, e in enumerate(log)
                                   if e[0] == "grad_ready_compiled" and "0." in e[1])


@needs_mpi
@pytest.mark.parametrize("case", ["nosync", "compile_nosync"])
def test_no_sync_accumulation_equals_summed_gradient(ddp_run, case):
    get, m = ddp_run
    import framework.nn.functional as F
    per_rank = []
    for r in range(2):
        torch.manual_seed(0)
        ref = m.make_model()
        for micro in range(2):
            x, y = m.batch(0, micro)
            F.cross_entropy(ref(x[r::2]), y[r::2]).backward()
            if micro == 0:
                local = m.grads(ref)
        per_rank.append((local, m.grads(ref)))
    for r in range(2):
        got, _ = get(case, r)
        for k, v in per_rank[r][0].items():
            np.testing.assert_allclose(got[f"local/{k}"], v, rtol=1e-5, atol=1e-6)
        for k in per_rank[0][1]:
            want = (per_rank[0][1][k] + per_rank[1][1][k]) / 2
            np.testing.assert_allclose(got[f"synced/{k}"], want, rtol=1e-5, atol=1e-6)


@needs_mpi
def test_find_unused_parameters(ddp_run):
    get, m = ddp_run
    g = []
    for r in range(2):
        torch.manual_seed(0)
        ref = m.Branchy()
        x = torch.from_numpy(np.arange(8, dtype=np.float32).reshape(2, 4) * (r + 1) / 10)
        ref(x, r == 0).pow(2).sum().backward()
        g.append(m.grads(ref))
    for r in range(2):
        got, info = get("unused", r)
        for k in ("a.weight", "a.bias"):
            np.testing.assert_allclose(got[k], (g[0][k] + g[1][k]) / 2, rtol=1e-5)
        for k in ("b.weight", "b.bias"):          # used on rank 0 only: rank 1 adds zeros
            np.testing.assert_allclose(got[k], g[0][k] / 2, rtol=1e-5)
        assert info["none"] == ["never.weight", "never.bias"]   # unused everywhere: untouched
        assert info["error"].startswith("Expected to have finished reduction in the prior "
                                        "iteration")
        assert info["error"].endswith(f"for rank {r}: never.weight, never.bias")


@needs_mpi
def test_ddp_broadcasts_parameters_and_buffers(ddp_run):
    get, _ = ddp_run
    b0, _ = get("buffers", 0)
    b1, _ = get("buffers", 1)
    np.testing.assert_array_equal(b0["after_init"], b1["after_init"])
    for b in (b0, b1):                 # rank 0's values, broadcast at the start of forward
        np.testing.assert_array_equal(b["after_forward"], [5.0, 5.0, 5.0])
        assert int(b["nbt"]) == 3


# ---- failures ----------------------------------------------------------------------------------
def _mpich_segments():
    try:
        return {f for f in os.listdir("/dev/shm") if f.startswith("mpich_shm_")}
    except OSError:
        return set()


def _mapped_segments():
    """Names of MPICH shared-memory segments some live process has mapped."""
    names = set()
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/maps") as fh:
                    names.update(line.split()[-1].rsplit("/", 1)[-1] for line in fh
                                 if "/dev/shm/mpich_shm_" in line)
            except OSError:
                pass
    return names


@pytest.fixture
def reap_mpich_shm():
    """A job whose rank is killed or aborted never unlinks MPICH's shared-memory segment: it
    stayed in /dev/shm after every run (about 1 GB on a long-lived machine). Remove the ones
    that appeared during the test and that no live process maps (another job's are mapped)."""
    before = _mpich_segments()
    yield
    for name in _mpich_segments() - before - _mapped_segments():
        try:
            os.unlink(os.path.join("/dev/shm", name))
        except OSError:
            pass


@needs_mpi
def test_stuck_rank_makes_survivor_fail_within_timeout(reap_mpich_shm):
    p, took = _launch("killed.py", 3, "hang", timeout=60)
    assert p.returncode != 0
    assert ("[rank 0] all_reduce(shape [4]) (its shape check) did not complete within 3 s"
            in p.stderr), p.stderr
    assert "DistBackendError" in p.stderr and "aborting all 2 ranks" in p.stderr
    assert took < 20


@needs_mpi
def test_killed_rank_stops_the_job(reap_mpich_shm):
    p, took = _launch("killed.py", 30, "kill", timeout=60)
    assert p.returncode != 0
    assert "BAD TERMINATION" in p.stdout + p.stderr       # mpiexec names the failed process
    assert "Killed (signal 9)" in p.stdout + p.stderr
    assert took < 20                   # well inside the 30 s deadline: mpiexec stopped rank 0


@needs_mpi
def test_kiln_run_and_world_of_one(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "kiln")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "framework.cli"]
    p = subprocess.run(cmd + ["run", "-n", "2", os.path.join(SCRIPTS, "collectives.py"),
                              str(tmp_path)], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "rank1.json").read_text())["world"] == 2
    # started without mpiexec: a world of one; 'gloo' is MPI underneath
    p = subprocess.run([sys.executable, os.path.join(SCRIPTS, "single.py")], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got == {"world": 1, "rank": 0, "x": [1.0, 2.0], "grad": [[4.0] * 3] * 2,
                   "backend": "mpi"}


def test_kiln_run_reports_bad_arguments():
    from framework.cli import main
    assert main(["run", "-n", "0", "script.py"]) == 2


# ---- in this process: errors before init, DataParallel ----------------------------------------
def test_errors_before_init():
    assert dist.is_available() and not dist.is_initialized()
    msg = "Default process group has not been initialized"
    for f in (lambda: dist.all_reduce(torch.ones(2)), dist.get_rank, dist.get_world_size,
              dist.barrier, lambda: dist.broadcast(torch.ones(2), 0),
              lambda: nn.parallel.DistributedDataParallel(nn.Linear(2, 2)),
              lambda: dist.all_to_all_single(torch.ones(2), torch.ones(2)),
              lambda: dist.get_process_group_ranks(None), dist.monitored_barrier,
              lambda: dist.new_subgroups(group_size=1),
              lambda: dist.all_reduce_coalesced([torch.ones(2)])):
        with pytest.raises(ValueError, match=msg):      # torch's class and message
            f()
    with pytest.raises(ValueError, match="unknown or unsupported backend 'smoke'"):
        dist.init_process_group("smoke")
    with pytest.raises(ValueError, match="not initialized"):
        dist.destroy_process_group()
    assert repr(dist.ReduceOp.SUM) == "<RedOpType.SUM: 0>"


def test_small_query_functions(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with pytest.raises(RuntimeError, match="LOCAL_RANK is not in the environment"):
        dist.get_node_local_rank()
    assert dist.get_node_local_rank(fallback_rank=3) == 3
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist.get_node_local_rank() == 1
    assert [dist.supports_complex(getattr(dist.ReduceOp, o)) for o in
            ("SUM", "AVG", "MAX", "MIN", "PRODUCT", "BAND")] == [True, True] + [False] * 4
    assert dist.get_default_backend_for_device("cpu") == "gloo"
    assert dist.get_default_backend_for_device(torch.device("cuda", 1)) == "nccl"
    with pytest.raises(ValueError, match="Default backend not registered for device : meta"):
        dist.get_default_backend_for_device("meta")
    assert dist.is_backend_available("gloo") == dist.is_mpi_available()
    assert not dist.is_backend_available("ucc") and not dist.is_ucc_available()
    assert not dist.is_xccl_available() and dist.get_pg_count() == 0
    assert repr(dist.get_debug_level()) == "<DebugLevel.OFF: 0>"
    monkeypatch.setenv("TORCH_DISTRIBUTED_DEBUG", "detail")
    dist.set_debug_level_from_env()
    assert dist.get_debug_level() is dist.DebugLevel.DETAIL
    monkeypatch.setenv("TORCH_DISTRIBUTED_DEBUG", "loud")
    with pytest.raises(ValueError, match="must be OFF, INFO, or DETAIL"):
        dist.set_debug_level_from_env()
    dist.set_debug_level(dist.DebugLevel.OFF)
    with pytest.raises(TypeError):
        dist.set_debug_level(2)
    o = dist.ReduceOptions()
    assert (o.reduceOp, o.rootRank, o.asyncOp) == (dist.ReduceOp.SUM, 0, True)
    assert issubclass(dist.QueueEmptyError, dist.DistStoreError)
    assert issubclass(dist.DistNetworkError, dist.DistError)
    assert repr(dist.BuiltinCommHookType.FP16_COMPRESS) == "<BuiltinCommHookType.FP16_COMPRESS: 2>"


def test_data_parallel_is_the_module_on_one_device():
    torch.manual_seed(0)
    m = nn.Linear(3, 2)
    dp = nn.DataParallel(m)
    x = torch.randn(4, 3)
    np.testing.assert_array_equal(dp(x).detach().numpy(), m(x).detach().numpy())
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]
    with pytest.warns(UserWarning, match="one device per process"):
        nn.DataParallel(m, device_ids=[0, 1])


def test_engine_queue_callback_runs_after_every_gradient():
    from framework.autograd import Variable
    w = torch.ones(3, requires_grad=True)
    seen = []

    def hook(p):
        Variable._execution_engine.queue_callback(lambda: seen.append(p.grad.tolist()))
    w.register_post_accumulate_grad_hook(hook)
    (w * 2).sum().backward()
    assert seen == [[2.0, 2.0, 2.0]]
    with pytest.raises(RuntimeError, match="only be installed during backward"):
        Variable._execution_engine.queue_callback(lambda: None)


@needs_mpi
def test_ddp_digits_example_saves_one_checkpoint(tmp_path):
    p = subprocess.run([sys.executable, "-m", "framework.cli", "run", "-n", "2",
                        os.path.join(ROOT, "examples", "ddp_digits.py"), "--epochs", "1",
                        "--subset", "256", "--checkpoint-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("epoch  1:") == 1                 # rank 0 alone reports
    assert "256 train samples, 128 per rank, global batch 64" in p.stdout
    assert os.listdir(tmp_path) == ["ddp_digits.pt"]
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from train_digits import DigitsCNN
    finally:
        sys.path.pop(0)
    ck = torch.load(str(tmp_path / "ddp_digits.pt"))
    m = DigitsCNN()
    m.load_state_dict(ck["model"])                            # plain keys: no "module." prefix
    assert ck["epoch"] == 0 and not any(k.startswith("module.") for k in ck["model"])
