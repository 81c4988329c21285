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
