"""Kernel source cache: generated kernels are files named by a hash of their text, imported
with importlib (Triton's JIT and interpreter both need the function's source on disk).

Location: <compiler.cache.base_dir()>/triton ($KILN_CACHE_DIR, else the user cache dir).
"""
import importlib.util
import os
import sys

from ..cache import base_dir, digest, atomic_write    # one home for location, hash, writes

_MODULES = {}      # (digest, interpret) -> module


def cache_dir():
    return os.path.join(base_dir(), "triton")


def write_source(name, text):
    """Write `text` to <cache>/<name>_<hash>.py once (atomic rename) and return the path."""
    path = os.path.join(cache_dir(), f"{name}_{digest(text)}.py")
    if not os.path.exists(path):
        atomic_write(path, text)    # concurrent writers write identical bytes
    return path


def load_module(path, interpret):
    """Import the kernel file. `interpret` picks Triton's interpreter or its JIT: Triton reads
    TRITON_INTERPRET when @triton.jit runs, so it is set for the duration of the import."""
    key = (path, bool(interpret))
    m = _MODULES.get(key)
    if m is not None:
        return m
    modname = "kiln_kernel_" + os.path.basename(path)[:-3] + ("_interp" if interpret else "_jit")
    if interpret:
        from runtime.interpret import fix_interpreter
        fix_interpreter()        # Triton's interpreter mistypes comparison results
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
    try:
        spec = importlib.util.spec_from_file_location(modname, path)
        m = importlib.util.module_from_spec(spec)
        sys.modules[modname] = m     # inspect.getsource (used by Triton) looks modules up here
        spec.loader.exec_module(m)
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old
    _MODULES[key] = m
    return m
