"""register_parametrization: module.<name> becomes a property computed from
module.parametrizations[<name>].original (PyTorch's class-swapping scheme)."""
from ...autograd.grad_mode import no_grad
from ..parameter import Parameter
from ..modules.module import Module
from ..modules.container import ModuleList, ModuleDict

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized",
           "ParametrizationList", "cached"]


class ParametrizationList(ModuleList):
    def __init__(self, modules, original, unsafe=False):
        super().__init__(modules)
        self.unsafe = unsafe
        new = original
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    new = m.right_inverse(new)
        if isinstance(new, (tuple, list)):
            self.is_tensor = False
            self.ntensors = len(new)
            for i, t in enumerate(new):
                p = Parameter(t.detach().clone(), original.requires_grad) \
                    if isinstance(original, Parameter) else t.detach().clone()
                if isinstance(p, Parameter):
                    self.register_parameter(f"original{i}", p)
                else:
                    self.register_buffer(f"original{i}", p)
        else:
            self.is_tensor = True
            self.ntensors = 1
            if new is not original:
                # keep the user's Parameter object (optimizers may hold it): swap its data
                original._data, original._dtype = new.detach()._data, new.dtype
            if isinstance(original, Parameter):
                self.register_parameter("original", original)
            else:
                self.register_buffer("original", original)

    def right_inverse(self, value):
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    value = m.right_inverse(value)
            if self.is_tensor:
                if value.shape != self.original.shape or value.dtype is not self.original.dtype:
                    if not self.unsafe:
                        raise ValueError(f"When `right_inverse` outputs one tensor, it may not "
                                         f"change the shape or dtype: got {list(value.shape)} "
                                         f"{value.dtype}, original {list(self.original.shape)} "
                                         f"{self.original.dtype}")
                self.original._data = value._data.copy()
                self.original._dtype = value.dtype
                self.original._bump()
            else:
                for i, t in enumerate(value):
                    o = getattr(self, f"original{i}")
                    o._data = t._data.copy()
                    o._bump()

    def forward(self):
        mods = list(self)
        if self.is_tensor:
            x = mods[0](self.original)
        else:
            x = mods[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in mods[1:]:
            x = m(x)
        return x


def is_parametrized(module, tensor_name=None):
    p = getattr(module, "parametrizations", None)
    if p is None or not isinstance(p, ModuleDict):
        return False
    return len(p) > 0 if tensor_name is None else tensor_name in p


def _inject_new_class(module):
    cls = module.__class__
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {})


def _inject_property(module, name):
    def get(self):
        return self.parametrizations[name]()

    def set_(self, value):
        self.parametrizations[name].right_inverse(value)
    setattr(module.__class__, name, property(get, set_))


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].append(parametrization)
        return module
    if tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        module.parametrizations[tensor_name] = plist
        _inject_property(module, tensor_name)
        return module
    raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized "
                     f"element with name '{tensor_name}'")


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                t = getattr(module, tensor_name)
            original._data, original._dtype = t._data.copy(), t.dtype
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                             "that is parametrized in terms of a sequence of tensors.")
        with no_grad():
            t = getattr(module, tensor_name)
        original = Parameter(t.detach(), t.requires_grad) if isinstance(plist.original0, Parameter) \
            else t.detach()
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    if isinstance(original, Parameter):
        module.register_parameter(tensor_name, original)
    else:
        module.register_buffer(tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


class cached:
    """Context manager accepted for API compatibility; Kiln recomputes each access (the result
    is identical, only slower)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


Module  # noqa: B018  (imported for type references in docs)
