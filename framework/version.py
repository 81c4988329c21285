"""torch.version: what this build of Kiln is.

    __version__   Kiln's version (the same object as framework.__version__)
    cuda          "major.minor" of the CUDA runtime CuPy uses when CuPy sees a GPU, else None
                  (as PyTorch's CPU wheel reports); looked up on first access
    hip, rocm, xpu  None (Kiln has no ROCm or XPU runtime)
    git_version   the commit of the checkout Kiln is imported from, "Unknown" if not a checkout
    debug         False
"""
import os

from . import __version__

__all__ = ["__version__", "debug", "cuda", "git_version", "hip", "rocm", "xpu"]

debug = False
hip = None
rocm = None
xpu = None

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cuda_version():
    """The CUDA runtime's version as "12.4", or None without CuPy and a GPU."""
    from runtime import cuda as rt
    if not rt.available():
        return None
    try:
        v = int(rt._cupy().cuda.runtime.runtimeGetVersion())
    except Exception:
        return None
    return f"{v // 1000}.{(v % 1000) // 10}"


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _git_version(root=_ROOT):
    """HEAD's commit from the .git folder beside the package (no git process), or "Unknown"."""
    git = os.path.join(root, ".git")
    if os.path.isfile(git):                     # a worktree: "gitdir: PATH"
        line = _read(git) or ""
        if not line.startswith("gitdir:"):
            return "Unknown"
        git = os.path.normpath(os.path.join(root, line[len("gitdir:"):].strip()))
    head = _read(os.path.join(git, "HEAD"))
    if not head:
        return "Unknown"
    if not head.startswith("ref:"):
        return head                             # detached HEAD
    ref = head[len("ref:"):].strip()
    dirs = [git]
    common = _read(os.path.join(git, "commondir"))
    if common:
        dirs.append(os.path.normpath(os.path.join(git, common)))
    for d in dirs:
        sha = _read(os.path.join(d, ref))
        if sha:
            return sha
        packed = _read(os.path.join(d, "packed-refs")) or ""
        for line in packed.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return "Unknown"


_lazy = {"cuda": _cuda_version, "git_version": _git_version}


def __getattr__(name):
    if name in _lazy:
        value = _lazy[name]()
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_lazy))
