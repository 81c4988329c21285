"""Shared by the tests that run generated Triton kernels through Triton's interpreter: each
runs its cases in a child process (TRITON_INTERPRET must be set before triton is imported)
where importing torch fails, which proves the GPU code path needs no PyTorch."""
import importlib.abc
import os
import sys
import warnings


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"torch is blocked in this process ({name})", name=name)


def block_torch():
    """Make `import torch` fail in this process (idempotent)."""
    if not any(isinstance(f, _NoTorch) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoTorch())


def become_interpreter_worker(root):
    """Call first thing in the child: block torch, select the interpreter, import Kiln."""
    block_torch()
    os.environ["TRITON_INTERPRET"] = "1"
    sys.path.insert(0, root)
    warnings.simplefilter("ignore")


def run_script(code, root, timeout=300):
    """Run `code` (a script that calls become_interpreter_worker) in a fresh interpreter at
    `root`, TRITON_INTERPRET unset in the parent's environment; its stdout lines."""
    import subprocess
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    p = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    return [line for line in p.stdout.splitlines() if line.strip()]


def run_worker(path, root, cache_dir, timeout=600):
    """Run test file `path` with --worker in a fresh interpreter at `root` (its own kernel
    cache; TRITON_INTERPRET and KILN_DEVICE unset: the worker chooses), and return the JSON
    records it printed, the closing {"done": ...} record last."""
    import json
    import subprocess
    env = dict(os.environ, KILN_CACHE_DIR=str(cache_dir))
    env.pop("TRITON_INTERPRET", None)
    env.pop("KILN_DEVICE", None)
    p = subprocess.run([sys.executable, os.path.abspath(path), "--worker"], cwd=root,
                       capture_output=True, text=True, timeout=timeout, env=env)
    recs = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert recs and recs[-1].get("done"), f"worker failed (rc {p.returncode}):\n{p.stderr[-4000:]}"
    return recs
