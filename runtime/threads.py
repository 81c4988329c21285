"""Intra-op threads on the CPU (torch.get_num_threads / set_num_threads).

Two thread pools do Kiln's CPU work: NumPy's BLAS (OpenBLAS in NumPy's wheels) for matrix
products, and compiler/codegen/parallel.py for large element-wise runs of generated programs.
set(n) sets both: the chunk count of parallel.run, and OpenBLAS's thread count through its
C API (openblas_set_num_threads, found in the library NumPy loaded; a BLAS without that entry
point -- MKL, Accelerate -- keeps its own setting, which is then the only one not followed).
"""
import ctypes
import glob
import os

_state = {"n": None, "blas": False}


def _blas_setter():
    """openblas_set_num_threads of the OpenBLAS NumPy loaded, or None."""
    if _state["blas"] is not False:
        return _state["blas"]
    fn = None
    try:
        import numpy as np
        here = os.path.dirname(np.__file__)
        libs = glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*")) + \
            glob.glob(os.path.join(here, ".dylibs", "*openblas*"))
        for path in libs:
            lib = ctypes.CDLL(path)
            for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                         "openblas_set_num_threads64_", "openblas_set_num_threads"):
                fn = getattr(lib, name, None)
                if fn is not None:
                    fn.argtypes, fn.restype = [ctypes.c_int], None
                    break
            if fn is not None:
                break
    except OSError:             # (a library that does not load: no BLAS control)
        fn = None
    _state["blas"] = fn
    return fn


def get():
    """The intra-op thread count: what set() was given, else one per core."""
    n = _state["n"]
    return n if n is not None else max(1, os.cpu_count() or 1)


def set(n):  # noqa: A001  (torch.set_num_threads)
    from compiler.codegen import parallel
    if isinstance(n, bool) or not isinstance(n, int):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    _state["n"] = n
    parallel.set_threads(n)
    fn = _blas_setter()
    if fn is not None:
        fn(n)
