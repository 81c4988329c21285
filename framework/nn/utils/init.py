"""skip_init (torch.nn.utils.skip_init): build a module without running its parameter
initialisation (the parameters hold uninitialised memory)."""
import inspect

__all__ = ["skip_init"]


def skip_init(module_cls, *args, **kwargs):
    from .. import init
    from ..modules.module import Module
    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    saved = {}
    # every initialiser in nn.init (and the module's reset_parameters) becomes a no-op while the
    # module is built, so the parameters keep the memory they were allocated with
    for name in dir(init):
        f = getattr(init, name)
        if callable(f) and name.endswith("_") and not name.startswith("_"):
            saved[name] = f
            setattr(init, name, lambda t, *a, **k: t)
    try:
        return module_cls(*args, **kwargs)
    finally:
        for name, f in saved.items():
            setattr(init, name, f)
