"""torch.autograd: backward, grad, Function, grad modes, gradcheck, functional helpers, and
graph_of (the backward graph of a tensor as readable IR)."""
import numpy as np

from .._dispatch import STATE, wrap
from ..tensor import Tensor
from .engine import run_backward
from .grad_mode import (no_grad, enable_grad, set_grad_enabled, inference_mode,  # noqa: F401
                        is_grad_enabled, is_inference_mode_enabled, set_multithreading_enabled,
                        is_multithreading_enabled, _force_original_view_tracking,
                        is_view_replay_enabled)
from .function import Function, FunctionCtx, once_differentiable, InplaceFunction, NestedIOFunction  # noqa: F401,E501
from .graph import graph_of, recorded_nodes  # noqa: F401
from .gradcheck import gradcheck, gradgradcheck, GradcheckError  # noqa: F401
from .anomaly_mode import (detect_anomaly, set_detect_anomaly, is_anomaly_enabled,  # noqa: F401
                           is_anomaly_check_nan_enabled, set_anomaly_enabled)
from . import functional, function, graph, grad_mode, anomaly_mode  # noqa: F401
from . import profiler  # noqa: F401  (torch.autograd.profiler)
from .variable import Variable  # noqa: F401,E402  (the module name is shadowed below, as torch's)
from . import forward_ad  # noqa: F401  (torch.autograd.forward_ad)


def _make_grads(outputs, grad_outputs):
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad_outputs has {len(grad_outputs)} entries but there are "
                           f"{len(outputs)} outputs; give one gradient (or None) per output")
    res = []
    for k, (o, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(o, Tensor):
            raise TypeError(f"autograd: outputs must be tensors, got {type(o).__name__}")
        if g is None:
            if not o.requires_grad:
                raise RuntimeError(f"element {k} of tensors does not require grad and does not "
                                   "have a grad_fn")
            if o._data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs (got "
                                   f"output {k} of shape {list(o.shape)})")
            if not o._dtype.is_floating_point:
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs "
                                   f"but got {o._dtype}")
            g = np.ones(o._data.shape, o._dtype.np)
            if o._device.type != "cpu":          # the seed gradient lives with the output
                from .._device_ops import to_device
                g = to_device(g, o._device)
            g = wrap(g, o._dtype)
        else:
            if not isinstance(g, Tensor):
                raise TypeError(f"autograd: gradients must be tensors or None, got "
                                f"{type(g).__name__} for output {k}")
            if g.shape != o.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[{k}] has a shape of "
                                   f"{g.shape} and output[{k}] has a shape of {o.shape}.")
            if g._dtype.is_complex != o._dtype.is_complex:     # (PyTorch casts int/float)
                raise RuntimeError(f"For complex Tensors, both grad_output and output are required "
                                   f"to have the same dtype. Mismatch in dtype: grad_output[{k}] "
                                   f"has a dtype of {g._dtype} and output[{k}] has a dtype of "
                                   f"{o._dtype}.")
            if g._dtype is not o._dtype:    # PyTorch's validate_outputs: cast to the output's
                g = g.to(o._dtype)          # dtype (a complex64 seed for a complex128 matmul)
        res.append(g)
    return res


def _seq(x):
    if x is None:
        return None
    if isinstance(x, (Tensor, graph.GradientEdge)):
        return [x]
    return list(x)


def _edges(ts):
    """GradientEdges (autograd.graph.get_gradient_edge) replaced by the tensors they stand for."""
    if ts is None:
        return None
    return [graph.edge_tensor(t) if isinstance(t, graph.GradientEdge) else t for t in ts]


_warned_create_graph = False


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None):
    """Accumulate d(tensors)/d(leaf) into the .grad of the leaves (or of `inputs` only)."""
    tensors = _edges(_seq(tensors))
    if grad_tensors is None:
        grad_tensors = grad_variables
    grads = _seq(grad_tensors) or [None] * len(tensors)
    for k, t in enumerate(tensors):
        if not t.requires_grad:
            raise RuntimeError(f"element {k} of tensors does not require grad and does not have "
                               "a grad_fn")
    if retain_graph is None:
        retain_graph = create_graph
    inputs = _edges(_seq(inputs))
    if inputs is not None:
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        for t in inputs:
            if not isinstance(t, Tensor) or not t.requires_grad:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
    global _warned_create_graph
    if create_graph and not _warned_create_graph:       # PyTorch warns once per process
        _warned_create_graph = True
        import warnings
        warnings.warn("Using backward() with create_graph=True will create a reference cycle "
                      "between the parameter and its gradient which can cause a memory leak. We "
                      "recommend using autograd.grad when creating the graph to avoid this. If "
                      "you have to use this function, make sure to reset the .grad fields of "
                      "your parameters to None after use to break the cycle and avoid the leak.",
                      UserWarning, stacklevel=3)
    run_backward(tensors, _make_grads(tensors, grads), retain_graph, create_graph,
                 inputs=inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, as a tuple; no .grad is touched."""
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    outputs = _edges(_seq(outputs))
    inputs = _seq(inputs)
    if not inputs:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    if materialize_grads and any(isinstance(t, graph.GradientEdge) for t in inputs):
        raise RuntimeError("materialize_grads cannot be used when the given input is a "
                           "GradientEdge")
    inputs = _edges(inputs)
    for t in inputs:
        if not isinstance(t, Tensor):
            raise RuntimeError(f"all inputs have to be Tensors or GradientEdges, but got "
                               f"{type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    for k, o in enumerate(outputs):
        if not o.requires_grad:
            raise RuntimeError(f"element {k} of tensors does not require grad and does not have a "
                               "grad_fn")
    gos = _seq(grad_outputs) or [None] * len(outputs)
    if retain_graph is None:
        retain_graph = create_graph
    if is_grads_batched:
        return _grad_batched(outputs, inputs, gos, retain_graph, create_graph, allow_unused,
                             materialize_grads)
    res = run_backward(outputs, _make_grads(outputs, gos), retain_graph, create_graph,
                       inputs=inputs, accumulate=False)
    for i, r in enumerate(res):
        if "_vrg" in inputs[i].__dict__:    # a no_grad view has no gradient edge of its own
            res[i] = r = None
        if r is None:
            if materialize_grads:
                res[i] = wrap(np.zeros(inputs[i]._data.shape, inputs[i]._dtype.np), inputs[i]._dtype)
                if inputs[i]._device is not res[i]._device:     # zeros beside the input
                    res[i] = res[i].to(inputs[i]._device)
            elif not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {i} appears to not have "
                                   "been used in the graph. Set allow_unused=True if this is the "
                                   "desired behavior.")
        elif not create_graph and r._node is not None:
            res[i] = r.detach()
    return tuple(res)


def _grad_batched(outputs, inputs, gos, retain_graph, create_graph, allow_unused,
                  materialize_grads):
    """is_grads_batched=True: dim 0 of every grad_output is a batch of cotangents; the result
    stacks one vector-Jacobian product per batch entry (PyTorch vmaps; a loop gives the same
    values)."""
    from ..ops_shape import stack
    n = None
    for k, (o, g) in enumerate(zip(outputs, gos)):
        if g is None:
            raise RuntimeError("autograd.grad: is_grads_batched=True needs a batched grad_output "
                               f"for every output (grad_output[{k}] is None)")
        if g.ndim == 0 or tuple(g.shape[1:]) != tuple(o.shape) or (n is not None and
                                                                   g.shape[0] != n):
            raise RuntimeError(
                "If `is_grads_batched=True`, we interpret the first dimension of each grad_output "
                "as the batch dimension. The sizes of the remaining dimensions are expected to "
                f"match the shape of corresponding output, but a mismatch was detected: "
                f"grad_output[{k}] has a shape of {g.shape} and output[{k}] has a shape of "
                f"{o.shape}. If you only want some tensors in `grad_output` to be considered "
                "batched, consider using vmap.")
        n = g.shape[0]
    per = []
    for b in range(n):
        per.append(grad(outputs, inputs, [g[b] for g in gos],
                        retain_graph=True if b < n - 1 else retain_graph,
                        create_graph=create_graph, allow_unused=allow_unused,
                        materialize_grads=materialize_grads))
    res = []
    for i in range(len(inputs)):
        col = [r[i] for r in per]
        res.append(None if any(c is None for c in col) else stack(col))
    return tuple(res)


def variable(*args, **kwargs):
    raise RuntimeError("torch.autograd.variable(...) is deprecated, use torch.tensor(...) instead")
