"""torch.overrides: __torch_function__ dispatch for Tensor subclasses.

A public function (torch.add, torch.nn.functional.relu, Tensor.add, Tensor.__getitem__, ...)
called with an argument whose class is a user-defined Tensor subclass hands the call to that
class's __torch_function__(func, types, args, kwargs); Tensor's default runs func with dispatch
disabled and returns tensor results as the subclass (as_subclass), as PyTorch's does.

The wrappers are installed the first time a Tensor subclass that defines __torch_function__ is
defined outside Kiln (code without one pays nothing for them); they take the place of the
originals wherever a Kiln module or class binds them, so identities hold. Kiln's own subclasses
(Parameter, sparse, nested, masked) and its proxies dispatch as plain tensors. Known limits:
property reads other than T/mT/H/mH/real/imag do not dispatch; before installation a subclass
without a handler gets plain tensors from ops, and a non-Tensor object with __torch_function__
takes no part; the disabled state is process-wide, not per thread."""
import functools
import sys
import types as _types

_INSTALLED = False
_DISABLED = 0           # > 0 inside DisableTorchFunctionSubclass (the default impl's func call)

# functions whose arguments are not tensors to dispatch on
_SKIP = frozenset(("is_tensor", "is_storage", "compile", "save", "load", "manual_seed", "seed",
                   "set_printoptions", "set_default_dtype", "get_default_dtype",
                   "set_grad_enabled", "is_grad_enabled", "typename", "set_default_device"))
# Tensor dunders that dispatch (PyTorch's list, less the pickling/copy protocol)
_DUNDERS = frozenset((
    "__getitem__", "__setitem__", "__repr__", "__format__", "__len__", "__iter__", "__reversed__",
    "__contains__", "__bool__", "__float__", "__int__", "__index__", "__complex__", "__neg__",
    "__pos__", "__abs__", "__invert__", "__hash__", "__array__", "__rsub__", "__rdiv__",
    "__rtruediv__", "__rfloordiv__", "__rpow__", "__rmatmul__", "__rmod__", "__rlshift__",
    "__rrshift__", "__rand__", "__ror__", "__rxor__", "__radd__", "__rmul__") + tuple(
    f"__{p}{n}__" for n in ("add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow",
                            "matmul", "and", "or", "xor", "lshift", "rshift")
    for p in ("", "i")) + tuple(f"__{n}__" for n in ("eq", "ne", "lt", "le", "gt", "ge")))
_PROPERTIES = ("T", "mT", "H", "mH", "real", "imag")


class DisableTorchFunctionSubclass:
    """Context manager: public functions skip __torch_function__ inside it."""

    def __enter__(self):
        global _DISABLED
        _DISABLED += 1
        return self

    def __exit__(self, *exc):
        global _DISABLED
        _DISABLED -= 1
        return False


DisableTorchFunction = DisableTorchFunctionSubclass


def _disabled_torch_function_impl(func, types, args=(), kwargs=None):
    """torch._C._disabled_torch_function_impl: a subclass that sets it as its
    __torch_function__ gets plain tensors back, with no dispatch."""
    with DisableTorchFunctionSubclass():
        return func(*args, **(kwargs or {}))


def _is_plain(cls):
    from .tensor import Tensor
    return cls is Tensor or cls.__dict__.get("_tf_plain", False) or \
        getattr(cls, "_tf_plain", False) and "__torch_function__" not in cls.__dict__ or \
        getattr(cls, "__torch_function__", None) is _disabled_torch_function_impl


_PLAIN = {int, float, bool, complex, str, slice, type(None), type(Ellipsis)}   # (+ Tensor, dtype)
_PLAIN_BASES = (int, float, complex, str)
_T = None           # Tensor (set by _install)


def _plain_object(x, t):
    """Does x (of type t) take no part in dispatch? Kiln's own non-Tensor classes (fx and
    export proxies) carry their own interception."""
    if isinstance(x, _PLAIN_BASES) or isinstance(x, type) or \
            not hasattr(t, "__torch_function__") or _is_plain(t):
        return True
    return not isinstance(x, _T or _tensor_cls()) and \
        (t.__module__ or "").startswith(("framework.", "compiler.", "runtime."))


def _overloaded(args, kwargs):
    """The arguments (one level into lists and tuples) that carry __torch_function__, as
    PyTorch orders them: one per type, a subclass before its base, else left to right."""
    found = []
    for a in (*args, *kwargs.values()):
        t = type(a)
        if t in _PLAIN:
            continue
        for x in (a if t is list or t is tuple else (a,)):
            t = type(x)
            if t in _PLAIN:
                continue
            if _plain_object(x, t):
                if t is not list and t is not tuple:
                    _PLAIN.add(t)      # (a class's plainness does not change)
                continue
            if any(type(y) is t for y in found):
                continue
            pos = len(found)
            for k, y in enumerate(found):
                if issubclass(t, type(y)):
                    pos = k
                    break
            found.insert(pos, x)
    return found


def _dispatch(func, over, types, args, kwargs, name):
    for x in over:
        r = type(x).__torch_function__(func, types, args, kwargs)
        if r is not NotImplemented:
            return r
    lines = "".join(f"  - tensor subclass {t}\n" if isinstance(x, _tensor_cls()) else
                    f"  - mode object {t}\n" for x, t in zip(over, types))
    raise TypeError(f"Multiple dispatch failed for '{name}'; all __torch_function__ handlers "
                    f"returned NotImplemented:\n\n{lines}\nFor more information, try re-running "
                    f"with TORCH_LOGS=not_implemented")


def _tensor_cls():
    from .tensor import Tensor
    return Tensor


def handle_torch_function(public_api, relevant_args, *args, **kwargs):
    over = _overloaded(relevant_args, {})
    name = getattr(public_api, "__qualname__", getattr(public_api, "__name__", public_api))
    return _dispatch(public_api, over, tuple(type(x) for x in over), args, kwargs, name)


def has_torch_function(relevant_args):
    return not _DISABLED and bool(_overloaded(tuple(relevant_args), {}))


def is_tensor_like(inp):
    from .tensor import Tensor
    return type(inp) is Tensor or hasattr(inp, "__torch_function__")


# operators PyTorch dispatches as the method they call (x + 1 reaches Tensor.add)
_AS_METHOD = {"__add__": "add", "__radd__": "add", "__iadd__": "add_", "__sub__": "sub",
              "__isub__": "sub_", "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul_",
              "__truediv__": "div", "__itruediv__": "div_", "__pow__": "pow", "__ipow__": "pow_",
              "__mod__": "remainder", "__matmul__": "matmul", "__neg__": "neg", "__abs__": "abs",
              "__lt__": "lt", "__le__": "le", "__gt__": "gt", "__ge__": "ge"}


_BINOPS = frozenset(f"Tensor.__{n}__" for n in (
    "add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
    "lshift", "rshift", "eq", "ne", "lt", "le", "gt", "ge"))


def _wrap(fn, name, as_method=None):
    @functools.wraps(fn)
    def _public(*args, **kwargs):
        if _DISABLED:
            return fn(*args, **kwargs)
        for a in args:
            if type(a) not in _PLAIN:
                break
        else:
            if not kwargs or all(type(a) in _PLAIN for a in kwargs.values()):
                return fn(*args, **kwargs)
        over = _overloaded(args, kwargs)
        if not over:
            return fn(*args, **kwargs)
        types = tuple(type(x) for x in over)
        func = _public
        if as_method is not None:
            from .tensor import Tensor
            func = getattr(Tensor, as_method)
        try:
            return _dispatch(func, over, types, args, kwargs, name)
        except TypeError:
            if binop:       # Python's operator protocol then tries the other operand
                return NotImplemented
            raise
    binop = name.startswith("Tensor.__r") or name in _BINOPS
    _public.__name__ = name.rsplit(".", 1)[-1]      # (Tensor.__add__'s own function is 'f')
    _public._tf_wrapped = True
    return _public


WRAPPER_CODE = _wrap(len, "len").__code__     # (frame walks that name Kiln callers skip it)


def get_overridable_functions():
    """{namespace: [public functions]} of what dispatches to __torch_function__."""
    import framework
    from .tensor import Tensor
    from .nn import functional as F
    _install()
    return {ns: [v for v in vars(ns).values() if getattr(v, "_tf_wrapped", False)]
            for ns in (framework, F, framework.fft, Tensor)}


def convert(ret, cls):
    """Tensor results as cls (tuples, lists and named tuples element-wise)."""
    from .tensor import Tensor
    if cls is Tensor:
        return ret
    if isinstance(ret, Tensor) and not isinstance(ret, cls):
        return ret.as_subclass(cls)
    if isinstance(ret, (tuple, list)):
        items = [convert(r, cls) for r in ret]
        return type(ret)(*items) if hasattr(ret, "_fields") else type(ret)(items)
    return ret


def default_torch_function(cls, func, types, args=(), kwargs=None):
    if kwargs is None:
        kwargs = {}
    if not all(issubclass(cls, t) for t in types):
        return NotImplemented
    with DisableTorchFunctionSubclass():
        return convert(func(*args, **kwargs), cls)


def new_subclass(cls):
    """Tensor.__init_subclass__: Kiln's own subclasses stay plain; a user's that defines
    __torch_function__ installs the dispatch."""
    if cls.__module__.split(".")[0] in ("framework", "compiler", "runtime"):
        cls._tf_plain = True
        return
    if "__torch_function__" in cls.__dict__ and not _is_plain(cls):
        _install()


# where public names leak from (from .ops_math import *): machinery, not torch API
_NOT_API = ("framework._dispatch", "framework.amp", "framework._sym", "framework.autograd",
            "framework.serialization", "framework._printing", "framework.backends",
            "framework._compile", "framework._storage", "framework._control_flow",
            "framework.func", "framework.overrides", "compiler.", "runtime.")
_SLOTS = []         # (container, name, original) of every binding _install replaced


def _uninstall():
    """Put the original functions back (tests that define a dispatching subclass)."""
    global _INSTALLED
    for c, name, orig in reversed(_SLOTS):
        setattr(c, name, orig)
    _SLOTS.clear()
    _INSTALLED = False
    _forget_bindings()


def _forget_bindings():
    # autocast and fx/export find the functions they patch once, by identity: again now
    amp = sys.modules.get("framework.amp.autocast_mode")
    if amp is not None and not amp._hooks.bound:
        amp._hooks.slots = None
    fx = sys.modules.get("framework.fx._patcher")
    if fx is not None:
        fx._kiln_patch_list = None


def _install():
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    import framework
    from .tensor import Tensor, Size
    from runtime.dtypes import DType
    global _T
    _T = Tensor
    _PLAIN.update((Tensor, Size, DType))
    from .nn import functional as F
    from .nn import _functional_basic, _functional_conv, _functional_pool_more, \
        _functional_sampling, _functional_ctc, _torch_functional
    done = {}       # one wrapper per function, wherever it is named (F.linear and the
    # nn modules' own reference to it are one object, as a handler's `func is F.linear` needs)
    for mod, prefix in ((framework, "torch."), (framework.fft, "torch.fft."),
                        (F, "torch.nn.functional."),
                        *((m, "torch.nn.functional.") for m in (
                            _functional_basic, _functional_conv, _functional_pool_more,
                            _functional_sampling, _functional_ctc, _torch_functional))):
        for name, obj in list(vars(mod).items()):
            if type(obj) is _types.FunctionType and not name.startswith("_") and \
                    name not in _SKIP and not getattr(obj, "_tf_wrapped", False) and \
                    not (obj.__module__ or "").startswith(_NOT_API):
                if id(obj) not in done:
                    done[id(obj)] = _wrap(obj, prefix + name)
                _SLOTS.append((mod, name, obj))
                setattr(mod, name, done[id(obj)])
    # every other framework module that binds one of them binds the wrapper too, so identities
    # (torch.to_dlpack is torch.utils.dlpack.to_dlpack) hold and internal callers dispatch
    def rebind(container, d):
        for name, obj in list(d.items()):
            f = obj.__func__ if isinstance(obj, staticmethod) else obj
            if type(f) is _types.FunctionType and id(f) in done and done[id(f)].__wrapped__ is f:
                _SLOTS.append((container, name, obj))
                w = done[id(f)]
                setattr(container, name, staticmethod(w) if isinstance(obj, staticmethod) else w)

    seen = {id(Tensor)}
    for mname, mod in list(sys.modules.items()):
        if mod is None or not (mname == "framework" or mname.startswith("framework.")):
            continue
        rebind(mod, vars(mod))
        for v in list(vars(mod).values()):      # (class attributes: Conv2d._fn = F.conv2d)
            if isinstance(v, type) and id(v) not in seen and \
                    (getattr(v, "__module__", None) or "").startswith("framework"):
                seen.add(id(v))
                rebind(v, dict(vars(v)))
    _forget_bindings()
    for name, obj in list(vars(Tensor).items()):
        if type(obj) is _types.FunctionType and (name in _DUNDERS or not name.startswith("_")) \
                and name != "as_subclass" and not getattr(obj, "_tf_wrapped", False):
            shown = "__rdiv__" if name == "__rtruediv__" else name     # (PyTorch's name)
            _SLOTS.append((Tensor, name, obj))
            setattr(Tensor, name, _wrap(obj, "Tensor." + shown, _AS_METHOD.get(name)))
    for name in _PROPERTIES:
        p = vars(Tensor).get(name)
        if isinstance(p, property) and p.fget is not None:
            _SLOTS.append((Tensor, name, p))
            setattr(Tensor, name, property(_wrap(p.fget, f"Tensor.{name}.__get__"), p.fset,
                                           p.fdel, p.__doc__))


def unwrap(fn):
    """The function a dispatch wrapper stands for (code-keyed tables need its __code__)."""
    return fn.__wrapped__ if type(fn) is _types.FunctionType and \
        fn.__dict__.get("_tf_wrapped") else fn
