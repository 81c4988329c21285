"""Start N ranks of a Python script through the mpich wheel's mpiexec (Hydra).

    kiln run -n 2 script.py --epochs 3          # one machine
    kiln run -n 8 -f hosts.txt script.py        # several: Hydra's host file, passed through

Hydra's own failure propagation applies: when one rank exits abnormally, mpiexec stops the
others and exits non-zero. A rank that hangs instead is caught by the process group's deadline.
"""
import os
import shutil
import subprocess
import sys


def find_mpiexec():
    """The mpiexec to use: $KILN_MPIEXEC, else the one beside this Python (the mpich wheel
    installs it into the environment's bin/), else the first on PATH; None if there is none."""
    env = os.environ.get("KILN_MPIEXEC")
    if env:
        return env
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(here):
        return here
    return shutil.which("mpiexec")


def command(nproc, script, args=(), hostfile=None, python=None, mpiexec=None, extra=()):
    """The argv that runs `python script args` on `nproc` ranks. `python`: an interpreter path,
    or a list of it and its options (["/usr/bin/python3", "-u"])."""
    if nproc < 1:
        raise ValueError(f"kiln run: -n must be at least 1, got {nproc}")
    exe = mpiexec or find_mpiexec()
    if exe is None:
        raise FileNotFoundError(
            "kiln run: no mpiexec found (looked for $KILN_MPIEXEC, beside "
            f"{sys.executable}, and on PATH); install the dist extra: pip install 'kiln[dist]'")
    cmd = [exe, "-n", str(nproc)]
    if hostfile:
        cmd += ["-f", hostfile]
    cmd += list(extra)
    py = [python] if isinstance(python, str) else list(python or [sys.executable])
    cmd += py + [script] + list(args)
    return cmd


def launch(nproc, script, args=(), hostfile=None, extra=(), env=None, python=None):
    """Run the ranks in the foreground; returns mpiexec's exit status. `env`: variables to set
    for the ranks on top of this process's environment; `python`: the interpreter argv the
    ranks run (default sys.executable)."""
    cmd = command(nproc, script, args, hostfile, python=python, extra=extra)
    env = dict(os.environ, **(env or {}))
    # ranks import framework from wherever this launcher does (a checkout without install)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:          # Hydra forwards the signal to the ranks
        return 130
