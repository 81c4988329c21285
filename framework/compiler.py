"""torch.compiler: the public controls of compile() (framework/_dynamo.py holds them)."""
from ._dynamo import (reset, disable, is_compiling, is_dynamo_compiling,  # noqa: F401
                      set_stance)

_BACKENDS = ("eager", "numpy", "interpret", "triton")


def list_backends(exclude_tags=("debug", "experimental")):
    """The backend names compile() accepts (besides the default, None / 'inductor', which picks
    one by device); 'eager' is Kiln's debugging backend."""
    return [b for b in _BACKENDS if not (b == "eager" and exclude_tags and "debug" in exclude_tags)]


def allow_in_graph(fn):
    """Kiln's tracer runs every Python function with symbolic tensors, so any function whose
    tensor work goes through Kiln's ops is already in the graph: fn is returned as is."""
    return fn


def assume_constant_result(fn):
    """PyTorch caches fn's result as a constant of the graph; Kiln's tracer runs fn at every
    trace and a replay never runs it, which is what that promise allows. Returned as is."""
    return fn


def cudagraph_mark_step_begin():
    """Kiln's CUDA-graph replays copy their results out of the graph's memory, so no step
    boundary needs marking; kept for scripts written for torch.compile."""


def is_exporting():
    """True while torch.export traces; Kiln has no export, so always False."""
    return False
