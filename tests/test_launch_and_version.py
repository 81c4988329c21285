"""python -m framework.distributed.launch / .run (torch.distributed.launch and torchrun over
Kiln's MPI launcher), torch.version, torch.utils.hooks and torch.nn.modules.utils.

The launcher tests start 2 real ranks of tests/dist_scripts/launched.py (a script written for
torch's launchers: argparse --local_rank, init_process_group('gloo'), all_reduce) and read the
`RESULT {json}` line each rank prints. Without mpiexec / mpi4py (the dist extra) they skip and
say what is missing.
"""
import json
import os
import pickle
import re
import subprocess
import sys

import pytest

import framework as torch
from framework.distributed import launch as dlaunch, run as drun
from framework.nn.modules.utils import (_single, _pair, _triple, _quadruple, _ntuple,
                                        _reverse_repeat_tuple, _list_with_default,
                                        consume_prefix_in_state_dict_if_present)
from framework.utils.hooks import RemovableHandle
from runtime.distributed import launcher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "tests", "dist_scripts")
SCRIPT = os.path.join(SCRIPTS, "launched.py")


def _missing():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install -e '.[dist]')"
    if launcher.find_mpiexec() is None:
        return "no mpiexec (the mpich wheel: pip install -e '.[dist]')"
    return None


needs_mpi = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _start(module, *args, cwd=ROOT, timeout=120):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PET_") and k != "OMP_NUM_THREADS"}
    env.update(PYTHONPATH=ROOT, KILN_DIST_CHECK="1")
    return subprocess.run([sys.executable, "-m", module] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def _results(p):
    return sorted((json.loads(line[len("RESULT "):]) for line in p.stdout.splitlines()
                   if line.startswith("RESULT ")),
                  key=lambda r: (r["env"]["TORCHELASTIC_RESTART_COUNT"], r["rank"]))


# ---- the launchers on 2 ranks ------------------------------------------------------------------
@needs_mpi
def test_launch_passes_local_rank_argument_and_env():
    p = _start("framework.distributed.launch", "--nproc_per_node=2", SCRIPT, "--value", 2)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "FutureWarning: The module torch.distributed.launch is deprecated" in p.stderr
    assert "Setting OMP_NUM_THREADS environment variable for each process to be 1" in p.stderr
    res = _results(p)
    assert [r["rank"] for r in res] == [0, 1], p.stdout + p.stderr
    for k, r in enumerate(res):
        assert r["argv"] == [SCRIPT, f"--local-rank={k}", "--value", "2"]
        assert r["local_rank_arg"] == k               # argparse's --local_rank / --local-rank
        e = r["env"]
        assert (e["LOCAL_RANK"], e["RANK"], e["WORLD_SIZE"], e["LOCAL_WORLD_SIZE"]) == \
            (str(k), str(k), "2", "2")
        assert e["MASTER_ADDR"] == "localhost" and e["MASTER_PORT"].isdigit()
        assert e["OMP_NUM_THREADS"] == "1" and e["GROUP_RANK"] == "0"
        assert r["world"] == 2 and r["sum"] == [6.0]  # 2*1 + 2*2 over both ranks
        assert r["elastic"] is True                   # TORCHELASTIC_RUN_ID is set
        assert r["name"] == "__main__" and r["path0"] == SCRIPTS
        assert r["backend"] == "mpi"                  # 'gloo' runs on MPI
    assert res[0]["env"]["MASTER_PORT"] == res[1]["env"]["MASTER_PORT"]
    assert res[0]["env"]["TORCHELASTIC_RUN_ID"] == res[1]["env"]["TORCHELASTIC_RUN_ID"]


@needs_mpi
def test_launch_use_env_and_static_master():
    p = _start("framework.distributed.launch", "--use_env", "--nproc-per-node", 2,
               "--master-addr", "127.0.0.2", "--master_port", 29555, SCRIPT, "--backend", "mpi")
    assert p.returncode == 0, p.stdout + p.stderr
    res = _results(p)
    assert [r["rank"] for r in res] == [0, 1], p.stdout + p.stderr
    for k, r in enumerate(res):
        assert r["argv"] == [SCRIPT, "--backend", "mpi"]       # no --local-rank
        assert r["local_rank_arg"] == k                          # from LOCAL_RANK
        assert r["env"]["MASTER_ADDR"] == "127.0.0.2" and r["env"]["MASTER_PORT"] == "29555"
        assert r["env"]["TORCHELASTIC_RUN_ID"] == "none" and r["sum"] == [3.0]


@needs_mpi
def test_run_module_form_env_only():
    p = _start("framework.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
               "launched", "--value", 0.5, cwd=SCRIPTS)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "deprecated" not in p.stderr
    res = _results(p)
    assert [r["rank"] for r in res] == [0, 1], p.stdout + p.stderr
    for k, r in enumerate(res):
        assert r["argv"] == [SCRIPT, "--value", "0.5"]   # python -m: argv[0] is the file
        assert r["local_rank_arg"] == k and r["env"]["LOCAL_RANK"] == str(k)
        assert r["path0"] == SCRIPTS and r["name"] == "__main__" and r["sum"] == [1.5]
    rid = res[0]["env"]["TORCHELASTIC_RUN_ID"]
    assert re.fullmatch(r"[0-9a-f-]{36}", rid) and res[1]["env"]["TORCHELASTIC_RUN_ID"] == rid


@needs_mpi
def test_run_failure_and_max_restarts():
    p = _start("framework.distributed.run", "--nproc_per_node=2", SCRIPT, "--fail-first-attempt")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "ChildFailedError" in p.stderr and f"{SCRIPT} FAILED" in p.stderr
    p = _start("framework.distributed.run", "--nproc_per_node=2", "--max-restarts=1", SCRIPT,
               "--fail-first-attempt")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "worker group failed (exit status 3); restarting (1/1)" in p.stderr
    second = [r for r in _results(p) if r["env"]["TORCHELASTIC_RESTART_COUNT"] == "1"]
    assert [r["rank"] for r in second] == [0, 1], p.stdout + p.stderr


@needs_mpi
def test_run_no_python_redirects_and_ranks_filter(tmp_path):
    # static rendezvous (a master port given), so --rdzv-id is the run id, as in torchrun
    p = _start("framework.distributed.run", "--nproc-per-node=2", "--no-python",
               "--local-ranks-filter=1", "-r", "0:2,1:2", "--log-dir", tmp_path, "--rdzv-id",
               "job7", "--master-port=29556", "/bin/sh", "-c",
               'echo "LINE $RANK $LOCAL_RANK $WORLD_SIZE $TORCHELASTIC_RUN_ID"; '
               'echo "ERR $RANK" >&2')
    assert p.returncode == 0, p.stdout + p.stderr
    assert [ln for ln in p.stdout.splitlines() if ln.startswith("LINE")] == ["LINE 1 1 2 job7"]
    for k in range(2):
        log = tmp_path / "job7" / "attempt_0" / str(k) / "stderr.log"
        assert log.read_text() == f"ERR {k}\n"
        assert not (log.parent / "stdout.log").exists()


def test_bad_arguments_error_like_torch(capsys, monkeypatch):
    for k in [k for k in os.environ if k.startswith("PET_")]:
        monkeypatch.delenv(k)
    with pytest.raises(SystemExit) as e:
        drun.main([])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "the following arguments are required: training_script" in err
    with pytest.raises(SystemExit) as e:
        drun.main(["--start-method=thread", "x.py"])
    assert e.value.code == 2 and "invalid choice: 'thread'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        drun.main(["--max-restarts=x", "x.py"])
    assert e.value.code == 2 and "invalid int value: 'x'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unsupported nproc_per_node value: abc"):
        drun.main(["--nproc-per-node=abc", "x.py"])
    with pytest.raises(RuntimeError, match='nnodes=1:2:3 is not in "MIN:MAX" format'):
        drun.main(["--nnodes=1:2:3", "x.py"])
    with pytest.raises(AssertionError, match="min_nodes must be > 0 and <= max_nodes"):
        drun.main(["--nnodes=2:1", "x.py"])
    with pytest.raises(ValueError, match="one node only.*kiln run -n N -f HOSTFILE"):
        drun.main(["--nnodes=2", "x.py"])
    with pytest.raises(ValueError, match="Don't use both the '--no-python' flag and the "
                                         "'--module' flag"):
        drun.main(["-m", "--no-python", "x"])
    with pytest.raises(ValueError, match="--tee is not supported"):
        drun.main(["--tee=3", "x.py"])
    with pytest.warns(FutureWarning, match="torch.distributed.launch is deprecated"):
        with pytest.raises(ValueError, match="When using the '--no-python' flag, you must also "
                                             "set the '--use-env' flag."):
            dlaunch.main(["--no-python", "x"])


def test_launch_module_without_script_exits_2():
    p = _start("framework.distributed.launch")
    assert p.returncode == 2
    assert "error: the following arguments are required: training_script" in p.stderr
    assert "FutureWarning" in p.stderr


def test_parser_env_defaults_and_local_world_size(monkeypatch):
    monkeypatch.setenv("PET_NPROC_PER_NODE", "3")
    monkeypatch.setenv("PET_STANDALONE", "1")
    a = drun.parse_args(["x.py", "--local-rank", "5"])
    assert a.nproc_per_node == "3" and a.standalone is True
    assert a.training_script == "x.py" and a.training_script_args == ["--local-rank", "5"]
    assert drun.get_use_env(a) is True
    b = dlaunch.parse_args(["--use_env", "--nproc_per_node=2", "x.py"])
    assert b.use_env is True and b.nproc_per_node == "2"
    assert dlaunch.parse_args(["x.py"]).use_env is False
    assert drun.determine_local_world_size("4") == 4
    assert drun.determine_local_world_size("cpu") == len(os.sched_getaffinity(0))
    if torch.cuda.is_available():
        assert drun.determine_local_world_size("gpu") == torch.cuda.device_count()
    else:
        with pytest.raises(ValueError, match="Cuda is not available."):
            drun.determine_local_world_size("gpu")
    assert drun.parse_min_max_nnodes("1:4") == (1, 4)


# ---- torch.version ----------------------------------------------------------------------------
def test_version_module():
    import framework.version as v
    from runtime import cuda as rt
    assert torch.version is v
    assert v.__version__ == torch.__version__ and isinstance(torch.__version__, str)
    assert re.match(r"\d+\.\d+\.\d+", torch.__version__)
    assert v.debug is False and v.hip is None
    if rt.available():
        assert re.fullmatch(r"\d+\.\d+", v.cuda)
    else:
        assert v.cuda is None
    assert isinstance(v.git_version, str) and v.git_version
    assert {"cuda", "git_version", "__version__"} <= set(dir(v))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        v.nope


def test_git_version_reads_the_git_folder(tmp_path):
    from framework.version import _git_version
    sha, sha2 = "a" * 40, "b" * 40
    g = tmp_path / ".git"
    (g / "refs" / "heads").mkdir(parents=True)
    (g / "HEAD").write_text("ref: refs/heads/main\n")
    (g / "refs" / "heads" / "main").write_text(sha + "\n")
    assert _git_version(str(tmp_path)) == sha
    (g / "refs" / "heads" / "main").unlink()
    (g / "packed-refs").write_text(f"# pack-refs with: peeled\n{sha2} refs/heads/main\n")
    assert _git_version(str(tmp_path)) == sha2
    (g / "HEAD").write_text(sha + "\n")                  # detached
    assert _git_version(str(tmp_path)) == sha
    assert _git_version(str(tmp_path / "nowhere")) == "Unknown"


# ---- torch.utils.hooks ------------------------------------------------------------------------
def test_removable_handle_is_one_class_and_removes():
    import framework.utils.hooks as hooks
    from framework.nn.modules import module as mmod
    assert torch.utils.hooks is hooks and mmod.RemovableHandle is hooks.RemovableHandle
    m = torch.nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_hook(lambda mod, i, o: calls.append(1), with_kwargs=False)
    h2 = m.register_forward_hook(lambda mod, a, k, o: calls.append(2), with_kwargs=True,
                                 always_call=True)
    assert isinstance(h1, RemovableHandle) and h2.id == h1.id + 1
    assert RemovableHandle.next_id == h2.id + 1
    m(torch.ones(1, 2))
    assert calls == [1, 2]
    h2.remove()
    assert h2.id not in m._forward_hooks and h2.id not in m._forward_hooks_with_kwargs
    assert h2.id not in m._forward_hooks_always_called
    h2.remove()                                          # twice is fine
    with m.register_forward_pre_hook(lambda mod, i: calls.append(0)) as h3:
        assert h3.id in m._forward_pre_hooks
        m(torch.ones(1, 2))
    assert h3.id not in m._forward_pre_hooks
    h1.remove()
    m(torch.ones(1, 2))
    assert calls == [1, 2, 0, 1]


def test_removable_handle_pickles_with_its_dicts():
    from collections import OrderedDict
    d, extra = OrderedDict(), OrderedDict()
    h = RemovableHandle(d, extra_dict=extra)
    d[h.id], extra[h.id] = "hook", True
    d2, h2 = pickle.loads(pickle.dumps((d, h)))
    assert h2.id == h.id and list(d2) == [h.id]
    h2.remove()
    assert not d2 and list(d) == [h.id] and list(extra) == [h.id]   # the copies only
    h.remove()
    assert not d and not extra
    lone = pickle.loads(pickle.dumps(RemovableHandle(OrderedDict())))
    assert lone.hooks_dict_ref() is None                 # its dict was not kept alive
    lone.remove()


# ---- torch.nn.modules.utils -------------------------------------------------------------------
def test_ntuple_helpers():
    assert _pair(3) == (3, 3) and _single(5) == (5,) and _triple(1) == (1, 1, 1)
    assert _quadruple(0) == (0, 0, 0, 0)
    assert _pair([1, 2]) == (1, 2) and _pair((4,)) == (4,)   # iterables pass through as tuples
    assert _triple(x for x in (1, 2, 3)) == (1, 2, 3)
    assert _ntuple(5, "_five")(2) == (2,) * 5 and _ntuple(5, "_five").__name__ == "_five"
    assert _pair.__name__ == "_pair"
    assert _reverse_repeat_tuple((1, 2, 3), 2) == (3, 3, 2, 2, 1, 1)
    assert _list_with_default([None, 3], [8, 9, 10]) == [9, 3]
    assert _list_with_default(7, [1, 2]) == 7
    with pytest.raises(ValueError, match="Input dimension should be at least 3"):
        _list_with_default([None, None], [1, 2])
    import framework.nn.modules.utils as u
    assert u.__all__ == ["consume_prefix_in_state_dict_if_present"]
    # the attribute path the seed uses, without shadowing torch.nn.utils
    assert torch.nn.modules.utils._pair(3) == (3, 3)
    assert torch.nn.utils.clip_grad_norm_ is not None


def test_consume_prefix_in_state_dict():
    ddp = torch.nn.Sequential(torch.nn.Linear(2, 2))
    sd = {"module." + k: v for k, v in ddp.state_dict().items()}
    consume_prefix_in_state_dict_if_present(sd, "module.")
    assert sorted(sd) == ["0.bias", "0.weight"]
    ddp.load_state_dict(sd)
