"""The per-rank trampoline of `python -m framework.distributed.run` / `.launch`.

mpiexec (Hydra) starts `python -u <this file> CONFIG PROGRAM [ARGS...]` on every rank; this
file reads the rank Hydra gave it (PMI_RANK, PMI_SIZE, MPI_LOCALRANKID), sets the environment
torchrun gives its workers (LOCAL_RANK, RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, ...),
appends `--local-rank=<k>` for the legacy launcher, and then runs the program in this process
with runpy, so the script sees sys.argv, sys.path[0] and __name__ == "__main__" as it would
under `python script.py` (or `python -m module`); with --no-python it execs the program.

Standard library only: nothing may be imported before the user's program sets its own
environment (it runs with this file's directory as sys.path[0], which is replaced).
CONFIG is JSON written by framework/distributed/run.py.
"""
import json
import os
import runpy
import sys


def _rank_env(cfg, environ):
    """(global rank, local rank, environment updates) for this rank from Hydra's variables."""
    if "PMI_RANK" not in environ:
        raise RuntimeError("framework.distributed launcher: PMI_RANK is not set; this file is "
                           "started on every rank by mpiexec (python -m framework.distributed.run)")
    rank = int(environ["PMI_RANK"])
    world = int(environ.get("PMI_SIZE", cfg["world_size"]))
    local_world = cfg["nproc_per_node"]
    local = int(environ.get("MPI_LOCALRANKID", rank % local_world))
    group_rank = rank // local_world
    env = {
        "LOCAL_RANK": str(local),
        "RANK": str(rank),
        "GROUP_RANK": str(group_rank),
        "ROLE_RANK": str(rank),
        "ROLE_NAME": cfg["role"],
        "LOCAL_WORLD_SIZE": str(local_world),
        "WORLD_SIZE": str(world),
        "GROUP_WORLD_SIZE": str(max(1, world // local_world)),
        "ROLE_WORLD_SIZE": str(world),
        "MASTER_ADDR": cfg["master_addr"],
        "MASTER_PORT": str(cfg["master_port"]),
        "TORCHELASTIC_RESTART_COUNT": str(cfg["restart_count"]),
        "TORCHELASTIC_MAX_RESTARTS": str(cfg["max_restarts"]),
        "TORCHELASTIC_RUN_ID": cfg["run_id"],
        "TORCHELASTIC_USE_AGENT_STORE": str(cfg["use_agent_store"]),
        "TORCH_NCCL_ASYNC_ERROR_HANDLING": environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"),
    }
    if cfg.get("virtual_local_rank"):
        # each worker sees only its own GPU, as device 0
        visible = environ.get("CUDA_VISIBLE_DEVICES")
        devs = [d for d in visible.split(",") if d] if visible else None
        env["CUDA_VISIBLE_DEVICES"] = devs[local] if devs and local < len(devs) else str(local)
        env["LOCAL_RANK"] = "0"
    return rank, local, env


def _filter_console(cfg, local):
    """--local-ranks-filter: ranks not listed write nothing to the console."""
    keep = cfg.get("local_ranks_filter")
    if keep is not None and local not in keep:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)


def _redirect(cfg, local):
    """--redirects: stdout (1), stderr (2) or both (3) of this rank into
    <log_dir>/<run_id>/attempt_<restart>/<local_rank>/{stdout,stderr}.log, as torchrun."""
    r = cfg.get("redirects") or 0
    if isinstance(r, dict):
        r = r.get(str(local), 0)
    if not r:
        return
    d = os.path.join(cfg["log_dir"], cfg["run_id"], f"attempt_{cfg['restart_count']}",
                     str(local))
    os.makedirs(d, exist_ok=True)
    for fd, bit, name in ((1, 1, "stdout.log"), (2, 2, "stderr.log")):
        if r & bit:
            f = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)


def main(argv):
    cfg = json.loads(argv[0])
    program, args = argv[1], list(argv[2:])
    rank, local, env = _rank_env(cfg, os.environ)
    os.environ.update(env)
    _filter_console(cfg, local)
    _redirect(cfg, local)
    if not cfg["use_env"]:
        args = [f"--local-rank={local}"] + args
    if cfg["mode"] == "exec":                 # --no-python
        try:
            os.execvp(program, [program] + args)
        except OSError as e:
            print(f"[rank {rank}] cannot execute {program!r}: {e}", file=sys.stderr)
            return 127
    if cfg["mode"] == "module":               # -m: as `python -m module`
        sys.argv = [program] + args
        sys.path[0] = os.getcwd()
        runpy.run_module(program, run_name="__main__", alter_sys=True)
        return 0
    # a script: as `python script.py` (and torchrun's --run-path)
    if not os.path.exists(program):
        print(f"{sys.executable}: can't open file {os.path.abspath(program)!r}: [Errno 2] "
              "No such file or directory", file=sys.stderr)
        return 2
    sys.argv = [program] + args
    sys.path[0] = os.path.dirname(os.path.abspath(program))
    runpy.run_path(program, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
