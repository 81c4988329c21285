"""torch.nn.utils.stateless: the deprecated functional_call (torch.func.functional_call's
predecessor), here a thin layer over Kiln's framework.func.functional_call.

On top of that function it keeps what torch's stateless path does beyond it:
  * the FutureWarning torch 2.x raises on every call (text identical);
  * strict=True checks the keys before anything else (func.api._check_keys, the check
    torch.func.functional_call makes too);
  * values the module rebinds during the call (`self.foo = self.foo + 1` on a swapped-in buffer)
    are written back into the caller's dict, as torch documents;
  * nn.DataParallel modules are refused, and a name through a missing submodule or a value
    that is not a tensor raise torch's AttributeError / TypeError.
torch's _reparametrize_module (a context manager swapping the tensors in for a whole block) is
not provided: Kiln swaps them inside func.functional_call only.
"""
import sys
import warnings

from ...func.api import _check_keys

__all__ = ["functional_call"]

_DEPRECATION = ("`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 "
                "and will be removed in a future version of PyTorch. "
                "Please use `torch.func.functional_call` instead which is a drop-in replacement.")


def _kiln():
    return sys.modules[__name__.split(".")[0]]


def _check_paths(module, parameters_and_buffers):
    """torch's accessor errors for a name whose owner is not a submodule, or a non-tensor."""
    Module, Tensor = _kiln().nn.Module, _kiln().Tensor
    for name, value in parameters_and_buffers.items():
        m, walked = module, []
        for attr in name.split(".")[:-1]:
            walked.append(attr)
            try:
                sub = getattr(m, attr)
            except AttributeError as ex:
                raise AttributeError(f"{m._get_name()} has no attribute `{attr}`") from ex
            if not isinstance(sub, Module):
                raise TypeError(f"submodule `{'.'.join(walked)}`: {sub} is not an instance of "
                                "torch.nn.Module")
            m = sub
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"{value} is not an instance of torch.Tensor")


_MISSING = object()


def _current(module, name):
    """The tensor now stored under a dotted name (_MISSING when there is none)."""
    *path, attr = name.split(".")
    m = module
    for p in path:
        m = getattr(m, p, None)
        if m is None:
            return _MISSING
    for store in ("_parameters", "_buffers"):
        d = m.__dict__.get(store)
        if d is not None and attr in d:
            return d[attr]
    return getattr(m, attr, _MISSING)


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *,
                    tie_weights=True, strict=False):
    """module(*args, **kwargs) with its parameters and buffers replaced by the tensors in
    `parameters_and_buffers` (a dict of dotted names) for this call only.

    Deprecated (as in PyTorch): use framework.func.functional_call, a drop-in replacement.
    args: one argument or a tuple of them. tie_weights: names tied in the module (the same
    Parameter under two names) take the value given for either; giving different values for
    tied names raises ValueError. strict: the dict must name exactly the module's parameters and
    buffers (RuntimeError otherwise). Values the module rebinds during the call are written
    back into `parameters_and_buffers`.
    """
    warnings.warn(_DEPRECATION, FutureWarning, stacklevel=2)
    return _functional_call(module, parameters_and_buffers, args, kwargs,
                            tie_weights=tie_weights, strict=strict)


functional_call.__deprecated__ = _DEPRECATION


def _functional_call(module, parameters_and_buffers, args=None, kwargs=None, *,
                     tie_weights=True, strict=False):
    fw = _kiln()
    if isinstance(module, fw.nn.DataParallel):
        raise RuntimeError("The stateless API can't be used with nn.DataParallel module")
    if not (hasattr(parameters_and_buffers, "keys") and hasattr(parameters_and_buffers,
                                                                   "update")):
        # torch reads the dict's keys first (a list of dicts is torch.func's form only)
        raise AttributeError(f"'{type(parameters_and_buffers).__name__}' object has no "
                             "attribute 'keys'")
    if strict:
        _check_keys(module, parameters_and_buffers, tie_weights)
    _check_paths(module, parameters_and_buffers)

    final = {}

    def capture(mod, inputs, output):      # runs before func.functional_call swaps back
        final.clear()
        for k in parameters_and_buffers:
            v = _current(module, k)
            if v is not _MISSING:
                final[k] = v

    handle = module.register_forward_hook(capture, always_call=True)
    try:
        return fw.func.functional_call(module, parameters_and_buffers, args, kwargs,
                                       tie_weights=tie_weights, strict=False)
    finally:
        handle.remove()
        parameters_and_buffers.update(final)
