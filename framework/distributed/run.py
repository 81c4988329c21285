"""torch.distributed.run (torchrun) for Kiln: start the workers of one node over MPI.

    python -m framework.distributed.run --nproc-per-node=4 train.py --epochs 3
    python -m framework.distributed.run --standalone --nproc_per_node=2 -m mypkg.train
    python -m framework.distributed.run --nproc-per-node=2 --no-python ./train.sh

Takes torchrun's options (same parser, same PET_* environment defaults) and starts the workers
with Kiln's launcher (runtime/distributed/launcher.py: mpiexec from the mpich wheel). Every
worker runs framework/distributed/_rank_entry.py first, which reads its MPI rank from Hydra and
sets what torchrun gives a worker: LOCAL_RANK, RANK, GROUP_RANK, ROLE_RANK, ROLE_NAME,
LOCAL_WORLD_SIZE, WORLD_SIZE, GROUP_WORLD_SIZE, ROLE_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
TORCHELASTIC_RUN_ID, TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_MAX_RESTARTS (OMP_NUM_THREADS=1
by default when several workers share the node), then runs the script as __main__.
`dist.init_process_group()` in the script joins the MPI world those ranks form ('gloo' and
'mpi' for CPU tensors, 'nccl' for CUDA tensors).

Limits, each an error that says so: one node only (--nnodes other than 1, or --node-rank other
than 0, is refused: for several machines start all ranks from one place with `kiln run -n N -f
HOSTFILE script.py`); --tee, --duplicate-*-filters, --logs-specs and --numa-binding are not
supported. The rendezvous options are accepted (MPI does the rendezvous; --rdzv-id names the
run), as are --start-method (mpiexec always starts fresh processes), --monitor-interval,
--signals-to-handle and --shutdown-timeout (Hydra forwards SIGINT/SIGTERM to the workers and
stops the others when one fails). --max-restarts reruns the whole worker group on failure.
"""
import json
import logging
import os
import socket
import sys
import tempfile
import time
import uuid
from argparse import REMAINDER, Action, ArgumentParser

__all__ = ["get_args_parser", "parse_args", "parse_min_max_nnodes",
           "determine_local_world_size", "get_rdzv_endpoint", "get_use_env", "config_from_args",
           "run", "main", "ChildFailedError"]

logger = logging.getLogger(__name__)

_ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_rank_entry.py")


# ---- torch.distributed.argparse_util ---------------------------------------------------------
class env(Action):
    """Take the value from ``PET_{DEST}`` before the default (torchrun's convention)."""

    def __init__(self, dest, default=None, required=False, **kwargs) -> None:
        env_name = f"PET_{dest.upper()}"
        default = os.environ.get(env_name, default)
        if default:
            required = False
        super().__init__(dest=dest, default=default, required=required, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)


class check_env(Action):
    """store_true whose default comes from ``PET_{DEST}`` (0 or 1)."""

    def __init__(self, dest, default=False, **kwargs) -> None:
        env_name = f"PET_{dest.upper()}"
        default = bool(int(os.environ.get(env_name, "1" if default else "0")))
        super().__init__(dest=dest, const=True, default=default, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const)


class ChildFailedError(Exception):
    """Raised by run() when the workers failed (after --max-restarts reruns), as torchrun's
    torch.distributed.elastic.multiprocessing.errors.ChildFailedError."""

    def __init__(self, name, exitcode, restarts=0):
        self.name, self.exitcode, self.restarts = name, exitcode, restarts
        bar = "=" * 60
        line = "-" * 60
        tries = f" (after {restarts} restart(s))" if restarts else ""
        super().__init__(
            f"\n{bar}\n{name} FAILED{tries}\n{line}\nRoot Cause (first observed failure):\n"
            f"  time      : {time.strftime('%Y-%m-%d_%H:%M:%S')}\n"
            f"  host      : {socket.gethostname()}\n"
            f"  exitcode  : {exitcode} (mpiexec's exit status; the failing rank's own output "
            f"is above)\n{bar}")


def _comma_separated_list(value):
    placeholder = "<COMMA_PLACEHOLDER>"
    value = value.replace(",,", placeholder)
    return [item.replace(placeholder, ",") for item in value.split(",")]


def get_args_parser() -> ArgumentParser:
    """torchrun's command line."""
    parser = ArgumentParser(description="Torch Distributed Elastic Training Launcher")
    a = parser.add_argument
    a("--nnodes", action=env, type=str, default="1:1",
      help="Number of nodes, or the range of nodes in form <minimum_nodes>:<maximum_nodes>. "
           "Kiln: 1 only.")
    a("--nproc-per-node", "--nproc_per_node", action=env, type=str, default="1",
      help="Number of workers per node; supported values: [auto, cpu, gpu, xpu, int].")
    a("--rdzv-backend", "--rdzv_backend", action=env, type=str, default="static",
      help="Rendezvous backend (Kiln: MPI does the rendezvous; accepted).")
    a("--rdzv-endpoint", "--rdzv_endpoint", action=env, type=str, default="",
      help="Rendezvous backend endpoint; usually in form <host>:<port>.")
    a("--rdzv-id", "--rdzv_id", action=env, type=str, default="none",
      help="User-defined group id (TORCHELASTIC_RUN_ID).")
    a("--rdzv-conf", "--rdzv_conf", action=env, type=str, default="",
      help="Additional rendezvous configuration (<key1>=<value1>,<key2>=<value2>,...).")
    a("--standalone", action=check_env,
      help="Start a local standalone rendezvous on a free port (single-node, multi-worker job).")
    a("--max-restarts", "--max_restarts", action=env, type=int, default=0,
      help="Maximum number of worker group restarts before failing.")
    a("--monitor-interval", "--monitor_interval", action=env, type=float, default=0.1,
      help="Interval, in seconds, to monitor the state of workers.")
    a("--start-method", "--start_method", action=env, type=str, default="spawn",
      choices=["spawn", "fork", "forkserver"],
      help="Multiprocessing start method to use when creating workers.")
    a("--event-log-handler", "--event_log_handler", action=env, type=str, default="null",
      help="name of a registered event logging handler")
    a("--role", action=env, type=str, default="default",
      help="User-defined role for the workers.")
    a("-m", "--module", action=check_env,
      help="Change each process to interpret the launch script as a Python module, executing "
           "with the same behavior as 'python -m'.")
    a("--no-python", "--no_python", action=check_env,
      help="Skip prepending the training script with 'python' - just execute it directly.")
    a("--run-path", "--run_path", action=check_env,
      help="Run the training script with runpy.run_path in the same interpreter.")
    a("--log-dir", "--log_dir", action=env, type=str, default=None,
      help="Base directory to use for log files (with --redirects).")
    a("-r", "--redirects", action=env, type=str, default="0",
      help="Redirect std streams into a log file in the log directory (e.g. [-r 3] redirects "
           "both stdout+stderr for all workers, [-r 0:1,1:2] redirects stdout for local rank 0 "
           "and stderr for local rank 1).")
    a("-t", "--tee", action=env, type=str, default="0",
      help="Tee std streams into a log file and also to console (Kiln: not supported).")
    a("--local-ranks-filter", "--local_ranks_filter", action=env, type=str, default="",
      help="Only show logs from specified ranks in console (e.g. [--local_ranks_filter=0,1,2]).")
    a("--duplicate-stdout-filters", "--duplicate_stdout_filters", action=env,
      type=_comma_separated_list, default=[], help="(Kiln: not supported)")
    a("--duplicate-stderr-filters", "--duplicate_stderr_filters", action=env,
      type=_comma_separated_list, default=[], help="(Kiln: not supported)")
    a("--node-rank", "--node_rank", type=int, action=env, default=0,
      help="Rank of the node for multi-node distributed training (Kiln: 0 only).")
    a("--master-addr", "--master_addr", default="127.0.0.1", type=str, action=env,
      help="Address of the master node (rank 0) for static rendezvous (MASTER_ADDR).")
    a("--master-port", "--master_port", default=None, type=int, action=env,
      help="Port on the master node (rank 0) for static rendezvous (MASTER_PORT). "
           "Defaults to 29500.")
    a("--local-addr", "--local_addr", default=None, type=str, action=env,
      help="Address of the local node.")
    a("--logs-specs", "--logs_specs", default=None, type=str, help="(Kiln: not supported)")
    a("--numa-binding", "--numa_binding", type=str, default=None,
      choices=["node", "socket", "exclusive", "core-complex"], help="(Kiln: not supported)")
    a("--signals-to-handle", "--signals_to_handle", action=env, type=str,
      default="SIGTERM,SIGINT,SIGHUP,SIGQUIT",
      help="Comma-separated list of signals to forward to the workers.")
    a("--shutdown-timeout", "--shutdown_timeout", action=env, type=int, default=None,
      help="Time in seconds to wait for graceful shutdown of worker processes.")
    a("--virtual-local-rank", "--virtual_local_rank", action=check_env,
      help="LOCAL_RANK is 0 for all workers and CUDA_VISIBLE_DEVICES shows each worker only "
           "its own GPU, as device 0.")
    a("training_script", type=str,
      help="Full path to the (single GPU) training program/script to be launched in parallel, "
           "followed by all the arguments for the training script.")
    a("training_script_args", nargs=REMAINDER)
    return parser


def parse_args(args):
    return get_args_parser().parse_args(args)


def parse_min_max_nnodes(nnodes: str):
    arr = nnodes.split(":")
    if len(arr) == 1:
        min_nodes = max_nodes = int(arr[0])
    elif len(arr) == 2:
        min_nodes, max_nodes = int(arr[0]), int(arr[1])
    else:
        raise RuntimeError(f'nnodes={nnodes} is not in "MIN:MAX" format')
    return min_nodes, max_nodes


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def determine_local_world_size(nproc_per_node: str):
    try:
        return int(nproc_per_node)
    except ValueError as e:
        if nproc_per_node == "cpu":
            return _cpu_count()
        if nproc_per_node in ("gpu", "auto"):
            from framework import cuda
            if cuda.is_available():
                return cuda.device_count()
            if nproc_per_node == "gpu":
                raise ValueError("Cuda is not available.") from e
            return _cpu_count()
        if nproc_per_node == "xpu":
            raise ValueError("Xpu is not available.") from e
        raise ValueError(f"Unsupported nproc_per_node value: {nproc_per_node}") from e


def get_rdzv_endpoint(args):
    if args.rdzv_backend == "static" and not args.rdzv_endpoint:
        return f"{args.master_addr}:{args.master_port}"
    return args.rdzv_endpoint


def get_use_env(args) -> bool:
    """False only for the legacy launcher without --use-env: workers then get --local-rank."""
    if not hasattr(args, "use_env"):
        return True
    return args.use_env


def _std_from_str(vm, what):
    """torch.distributed.elastic's Std.from_str: '3' for every local rank, or '0:1,1:2'."""
    def one(v):
        v = int(v)
        if v not in (0, 1, 2, 3):
            raise ValueError(f"{v} is not a valid Std")
        return v
    if ":" not in vm:
        return one(vm)
    out = {}
    for part in vm.split(","):
        k, _, v = part.partition(":")
        if not v:
            raise ValueError(f"{what}: {vm!r} does not match: <std> or <local_rank>:<std>,...")
        out[int(k)] = one(v)
    return out


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _refuse(what):
    raise ValueError(f"{what} is not supported by Kiln's launcher (framework.distributed.run): "
                     "it starts the workers of one node over MPI")


def config_from_args(args):
    """(config for every worker, program, program args) from the parsed command line."""
    min_nodes, max_nodes = parse_min_max_nnodes(args.nnodes)
    if not (0 < min_nodes <= max_nodes):
        raise AssertionError(f"min_nodes must be > 0 and <= max_nodes, got "
                             f"min_nodes={min_nodes}, max_nodes={max_nodes}")
    if args.max_restarts < 0:
        raise AssertionError("max_restarts must be >= 0")
    if max_nodes != 1:
        raise ValueError(
            f"--nnodes={args.nnodes}: Kiln's launcher (framework.distributed.run) starts the "
            "workers of one node only; for several machines start every rank from one place "
            "with `kiln run -n N -f HOSTFILE script.py` (mpiexec's host file; those ranks get "
            "RANK from MPI: dist.get_rank(), not LOCAL_RANK)")
    if args.node_rank != 0:
        raise ValueError(f"--node-rank={args.node_rank}: with one node (--nnodes=1) the node "
                         "rank is 0")
    if args.tee != "0":
        _refuse("--tee")
    if args.duplicate_stdout_filters or args.duplicate_stderr_filters:
        _refuse("--duplicate-stdout-filters / --duplicate-stderr-filters")
    if args.logs_specs is not None:
        _refuse("--logs-specs")
    if args.numa_binding is not None:
        _refuse("--numa-binding")
    nproc = determine_local_world_size(args.nproc_per_node)
    if nproc < 1:
        raise ValueError(f"nproc_per_node must be at least 1, got {nproc}")
    if "OMP_NUM_THREADS" not in os.environ and nproc > 1:
        logger.warning(
            "\n*****************************************\n"
            "Setting OMP_NUM_THREADS environment variable for each process to be "
            "%s in default, to avoid your system being overloaded, "
            "please further tune the variable for optimal performance in "
            "your application as needed. \n"
            "*****************************************", 1)
        os.environ["OMP_NUM_THREADS"] = "1"
    ranks = None
    if args.local_ranks_filter:
        try:
            ranks = sorted(set(map(int, args.local_ranks_filter.split(","))))
        except Exception as e:
            raise ValueError("--local_ranks_filter must be a comma-separated list of integers "
                             "e.g. --local_ranks_filter=0,1,2") from e
    redirects = _std_from_str(args.redirects, "--redirects")
    log_dir = None
    if redirects:
        log_dir = args.log_dir or tempfile.mkdtemp(prefix="torchelastic_")
        os.makedirs(log_dir, exist_ok=True)
    if args.rdzv_backend == "static" and not args.rdzv_endpoint:
        master_addr, master_port = args.master_addr, args.master_port
    else:                               # c10d rendezvous: the agent's host and a free port
        master_addr = "localhost" if args.rdzv_endpoint.startswith("localhost") else \
            socket.getfqdn()
        master_port = _free_port()
    if args.run_path:
        mode = "script"
    elif not args.no_python:
        mode = "module" if args.module else "script"
    else:
        if args.module:
            raise ValueError("Don't use both the '--no-python' flag and the '--module' flag at "
                             "the same time.")
        mode = "exec"
    cfg = {"nproc_per_node": nproc, "world_size": nproc, "role": args.role,
           "master_addr": master_addr, "master_port": master_port, "restart_count": 0,
           "max_restarts": args.max_restarts, "run_id": args.rdzv_id,
           "use_agent_store": args.rdzv_backend == "c10d", "use_env": get_use_env(args),
           "virtual_local_rank": bool(args.virtual_local_rank), "local_ranks_filter": ranks,
           "redirects": redirects, "log_dir": log_dir, "mode": mode}
    return cfg, args.training_script, list(args.training_script_args)


def run(args):
    """Start the workers and wait for them; raises ChildFailedError if they failed."""
    from runtime.distributed import launcher
    if args.standalone:
        args.rdzv_backend = "c10d"
        args.rdzv_endpoint = "localhost:0"
        args.rdzv_id = str(uuid.uuid4())
    elif args.rdzv_backend == "static" and not args.rdzv_endpoint and args.master_port is None:
        _, max_nodes = parse_min_max_nnodes(args.nnodes)
        if max_nodes == 1:
            args.rdzv_backend = "c10d"
            args.rdzv_endpoint = "localhost:0"
            args.rdzv_id = str(uuid.uuid4())
    if args.master_port is None:
        args.master_port = 29500
    cfg, program, program_args = config_from_args(args)
    python = [os.getenv("PYTHON_EXEC", sys.executable), "-u"]
    rc = 0
    for attempt in range(cfg["max_restarts"] + 1):
        if attempt:
            logger.warning("[%s] worker group failed (exit status %s); restarting (%s/%s)",
                           cfg["role"], rc, attempt, cfg["max_restarts"])
        cfg["restart_count"] = attempt
        rc = launcher.launch(cfg["nproc_per_node"], _ENTRY,
                             [json.dumps(cfg), program] + program_args, python=python)
        if rc == 0:
            return
    raise ChildFailedError(program, rc, cfg["max_restarts"])


def main(args=None):
    args = parse_args(args)
    run(args)


if __name__ == "__main__":
    main()
