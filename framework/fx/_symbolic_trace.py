"""fx.Tracer and symbolic_trace: run a module's forward on Proxies to record its Graph
(torch.fx._symbolic_trace)."""
import functools
import inspect
import math
import warnings

from .graph import Graph
from .node import map_aggregate
from .proxy import Proxy, Attribute, TraceError, ParameterProxy
from . import _patcher

__all__ = ["Tracer", "symbolic_trace", "wrap", "PH", "GraphAppendingTracer"]

_CO_VARARGS, _CO_VARKEYWORDS = inspect.CO_VARARGS, inspect.CO_VARKEYWORDS


class PHBase:
    def __repr__(self):
        return "PH"


PH = PHBase()          # a concrete_args value that stays a placeholder


def _base_types():
    import framework
    return (str, int, float, bool, complex, type(None), type(Ellipsis), range,
            framework.dtype, framework.device)


class TracerBase:
    proxy_buffer_attributes = True

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        return self.graph.create_node(kind, target, args, kwargs, name, type_expr)

    def proxy(self, node):
        return Proxy(node, self)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None,
                     proxy_factory_fn=None):
        args_ = self.create_arg(args)
        kwargs_ = self.create_arg(kwargs)
        node = self.create_node(kind, target, args_, kwargs_, name, type_expr)
        return self.proxy(node) if proxy_factory_fn is None else proxy_factory_fn(node)

    def create_arg(self, a):
        if isinstance(a, Proxy):
            return a.node
        if isinstance(a, tuple) and hasattr(a, "_fields"):
            return type(a)(*(self.create_arg(e) for e in a))
        if isinstance(a, (tuple, list)):
            return type(a)(self.create_arg(e) for e in a)
        if isinstance(a, dict):
            out = {}
            for k, v in a.items():
                if not isinstance(k, str):
                    raise RuntimeError(f"Keys for dictionaries used as an argument cannot "
                                       f"contain a Node. Got key: {k}")
                out[k] = self.create_arg(v)
            return out
        if isinstance(a, slice):
            return slice(self.create_arg(a.start), self.create_arg(a.stop),
                         self.create_arg(a.step))
        if isinstance(a, _base_types()):
            return a
        from .node import Node
        if isinstance(a, Node):
            return a
        raise NotImplementedError(f"argument of type: {type(a)}")

    def to_bool(self, obj):
        raise TraceError("symbolically traced variables cannot be used as inputs to control "
                         "flow")

    def iter(self, obj):
        raise TraceError("Proxy object cannot be iterated. This can be attempted when the "
                         "Proxy is used in a loop or as a *args or **kwargs function argument. "
                         "See the torch.fx docs on pytorch.org for a more detailed explanation "
                         "of what types of control flow can be traced, and check out the Proxy "
                         "docstring for help troubleshooting Proxy iteration errors")

    def keys(self, obj):
        return Attribute(obj, "keys")()


class GraphAppendingTracer(TracerBase):
    def __init__(self, graph):
        self.graph = graph
        self.scope = None


class Tracer(TracerBase):
    """Records a Module's or function's forward into a Graph. Subclass it to change which
    modules stay opaque (is_leaf_module) or how calls are recorded (call_module,
    create_proxy)."""

    def __init__(self, autowrap_modules=(math,), autowrap_functions=(),
                 param_shapes_constant=False):
        self._autowrap_function_ids = {id(v) for m in autowrap_modules
                                       for k, v in vars(m).items()
                                       if not k.startswith("_") and callable(v)}
        self._autowrap_function_ids.update(id(f) for f in autowrap_functions)
        self._autowrap_modules = list(autowrap_modules)
        self.param_shapes_constant = param_shapes_constant
        self.submodule_paths = None
        self.root = None
        self.tensor_attrs = {}

    def create_arg(self, a):
        import framework
        from framework.nn import Module, Parameter
        if isinstance(a, Parameter):
            for n_, p in self.root.named_parameters():
                if a is p:
                    return self.create_node("get_attr", n_, (), {})
            raise NameError("parameter is not a member of this module")
        if isinstance(a, Module):
            for n_, p in self.root.named_modules():
                if a is p:
                    return self.create_node("get_attr", n_, (), {})
            raise NameError("module is not installed as a submodule")
        if isinstance(a, framework.Tensor):
            for n_, p in self.root.named_buffers():
                if a is p:
                    return self.create_node("get_attr", n_, (), {})
            qualname = self.tensor_attrs.get(id(a), (None,))[0]
            if qualname is None:
                i = 0
                while hasattr(self.root, f"_tensor_constant{i}"):
                    i += 1
                qualname = f"_tensor_constant{i}"
                self.tensor_attrs[id(a)] = (qualname, a)
                setattr(self.root, qualname, a)
            return self.create_node("get_attr", qualname, (), {})
        return super().create_arg(a)

    def is_leaf_module(self, m, module_qualified_name):
        """Kiln's own layers (framework.nn.*, except Sequential) stay call_module nodes."""
        from framework.nn import Sequential
        return ((m.__module__.startswith("framework.nn") or m.__module__.startswith("torch.nn"))
                and not isinstance(m, Sequential))

    def path_of_module(self, mod):
        if self.submodule_paths:
            path = self.submodule_paths.get(id(mod))
            if path is None:
                raise NameError("module is not installed as a submodule")
            return path
        for n, p in self.root.named_modules():
            if mod is p:
                return n
        raise NameError("module is not installed as a submodule")

    def call_module(self, m, forward, args, kwargs):
        module_qualified_name = self.path_of_module(m)
        if not self.is_leaf_module(m, module_qualified_name):
            return forward(*args, **kwargs)
        return self.create_proxy("call_module", module_qualified_name, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        from framework.nn import Parameter
        import framework

        def maybe_proxy(collection):
            for n, p in collection:
                if attr_val is p:
                    if n not in parameter_proxy_cache:
                        factory = None
                        if self.param_shapes_constant:
                            def factory(node, n=n):
                                return ParameterProxy(self, node, n, attr_val)
                        parameter_proxy_cache[n] = self.create_proxy(
                            "get_attr", n, (), {}, proxy_factory_fn=factory)
                    return parameter_proxy_cache[n]
            return None
        if isinstance(attr_val, Parameter):
            got = maybe_proxy(self.root.named_parameters())
            if got is not None:
                return got
        if self.proxy_buffer_attributes and isinstance(attr_val, framework.Tensor):
            got = maybe_proxy(self.root.named_buffers())
            if got is not None:
                return got
        return attr_val

    def create_args_for_root(self, root_fn, is_module, concrete_args=None):
        fn = inspect.unwrap(root_fn)
        co = fn.__code__
        total_args = co.co_argcount + co.co_kwonlyargcount
        names_iter = iter(co.co_varnames)
        args = []
        skip = 0
        if is_module:
            if total_args == 0:
                raise RuntimeError("``self`` argument cannot be part of *args expansion!")
            skip = 1
            next(names_iter)
            args.append(self.root)
        sig = inspect.signature(fn)
        arg_names = [next(names_iter) for _ in range(skip, total_args)]
        if isinstance(concrete_args, tuple):
            if len(arg_names) != len(concrete_args):
                raise RuntimeError(f"Tracing expected {len(arg_names)} arguments but got "
                                   f"{len(concrete_args)} concrete arguments")
            concrete_args = dict(zip(arg_names, concrete_args))
        args.extend(self._proxy_placeholder(n, concrete_args, sig) for n in arg_names)
        if co.co_kwonlyargcount > 0 or co.co_flags & (_CO_VARARGS | _CO_VARKEYWORDS):
            if co.co_flags & _CO_VARARGS:
                args.append(self._proxy_placeholder("*" + next(names_iter), concrete_args, sig))
            if co.co_flags & _CO_VARKEYWORDS:
                args.append(self._proxy_placeholder("**" + next(names_iter), concrete_args,
                                                    sig))
            root_fn = _patch_function(root_fn, len(args))
        return root_fn, args

    def _proxy_placeholder(self, name, concrete_args, sig):
        import framework
        if concrete_args is not None and name in concrete_args:
            cnt = [0]

            def replace_ph(x):
                cnt[0] += 1
                param = sig.parameters[name]
                default = () if param.default is inspect.Parameter.empty else (param.default,)
                out = self.create_proxy("placeholder", f"{name}_{cnt[0]}", default, {})
                if isinstance(x, PHBase):
                    return out
                if type(x) in (bool, int, float, str, complex):
                    self.create_proxy("call_function", framework._assert,
                                      (out == x, f"{name} has been specialized to have value "
                                                 f"{x} but got another value"), {})
                elif x is None:
                    self.create_proxy("call_function", _assert_is_none,
                                      (out, f"{name} has been specialized to have value None "
                                            "but got another value"), {})
                else:
                    warnings.warn(f"Was not able to add assertion to guarantee correct input "
                                  f"{name} to specialized function. It is up to the user to "
                                  "make sure that your inputs match the inputs you specialized "
                                  "the function with.")
                return x
            return map_aggregate(concrete_args[name], replace_ph)
        if name[0] == "*":
            default = ()
        else:
            param = sig.parameters[name]
            default = () if param.default is inspect.Parameter.empty else (param.default,)
        return self.create_proxy("placeholder", name, default, {},
                                 type_expr=fn_annotation(sig, name))

    def _collect_tensor_attrs(self, m, prefix):
        """Plain tensor attributes (not parameters or buffers) are named by their path."""
        import framework
        for k, v in vars(m).items():
            if isinstance(v, framework.Tensor):
                self.tensor_attrs.setdefault(id(v), (".".join(prefix + [k]), v))
        for k, v in m.named_children():
            self._collect_tensor_attrs(v, prefix + [k])

    def trace(self, root, concrete_args=None):
        """Trace root (a Module or a function) and return the recorded Graph."""
        from framework.nn import Module
        if isinstance(root, Module):
            self.root = root
            fn = type(root).forward
            self.submodule_paths = {id(m): n for n, m in root.named_modules()}
        else:
            self.root = Module()
            fn = root
        self.graph = Graph(tracer_cls=getattr(self, "__class__", None))
        self.tensor_attrs = {}          # id(tensor) -> (attribute path, tensor)
        self._collect_tensor_attrs(self.root, [])
        fn_globals = getattr(fn, "__globals__", {})
        parameter_proxy_cache = {}
        orig_getattr, orig_call = Module.__getattr__, Module.__call__

        @functools.wraps(orig_getattr)
        def module_getattr_wrapper(mod, attr):
            return self.getattr(attr, orig_getattr(mod, attr), parameter_proxy_cache)

        @functools.wraps(orig_call)
        def module_call_wrapper(mod, *args, **kwargs):
            def forward(*args, **kwargs):
                return orig_call(mod, *args, **kwargs)
            fwd = getattr(type(mod), "forward", None)
            _patcher.patch_function_refs(patcher, fwd)
            _autowrap_check(patcher, getattr(fwd, "__globals__", {}),
                            self._autowrap_function_ids)
            return self.call_module(mod, forward, args, kwargs)

        with _patcher._Patcher() as patcher:
            fn, args = self.create_args_for_root(fn, isinstance(root, Module), concrete_args)
            patcher.patch_attr(Module, "__getattr__", module_getattr_wrapper)
            patcher.patch_attr(Module, "__call__", module_call_wrapper)
            _patcher.patch_kiln_functions(patcher)
            _patcher.patch_wrapped_functions(patcher)
            _patcher.patch_function_refs(patcher, fn)
            _autowrap_check(patcher, fn_globals, self._autowrap_function_ids)
            for m in self._autowrap_modules:
                _autowrap_check(patcher, vars(m), self._autowrap_function_ids)
            result = fn(*args)
            self.create_node("output", "output", (self.create_arg(result),), {},
                             type_expr=getattr(fn, "__annotations__", {}).get("return"))
        self.submodule_paths = None
        return self.graph


def fn_annotation(sig, name):
    p = sig.parameters.get(name.lstrip("*"))
    if p is None or p.annotation is inspect.Parameter.empty:
        return None
    return p.annotation


def _assert_is_none(value, msg):
    assert value is None, msg


def _autowrap_check(patcher, frame_dict, function_ids):
    """Functions of autowrap_modules (math) named in a traced function's globals record
    call_function nodes when given Proxies."""
    if patcher.visit_once(("autowrap", id(frame_dict))):
        for name, value in list(frame_dict.items()):
            if not name.startswith("_") and callable(value) and id(value) in function_ids:
                patcher.patch(frame_dict, name,
                              _patcher._create_wrapped_func(value, mark_wrapped=True))


def _patch_function(fn, nargs):
    """Call fn with *args/**kwargs placeholders passed positionally (torch's rewrite)."""
    import types
    co = fn.__code__
    co_flags = co.co_flags & ~(_CO_VARARGS | _CO_VARKEYWORDS)
    new_code = co.replace(co_argcount=nargs, co_kwonlyargcount=0, co_flags=co_flags)
    return types.FunctionType(new_code, fn.__globals__, fn.__name__, fn.__defaults__,
                              fn.__closure__)


def wrap(fn_or_name):
    """Record calls of this module-level function as call_function nodes instead of tracing
    through it. Call at module scope: torch.fx.wrap("my_fn") or @torch.fx.wrap."""
    if not (callable(fn_or_name) or isinstance(fn_or_name, str)):
        raise AssertionError("Unsupported type for global function! Must be either a callable "
                             "or string name")
    fn_name = fn_or_name if isinstance(fn_or_name, str) else fn_or_name.__code__.co_name
    f = inspect.currentframe().f_back
    if f.f_code.co_name != "<module>":
        raise NotImplementedError("wrap must be called at the top level of a module")
    _patcher._wrapped_fns_to_patch[(id(f.f_globals), fn_name)] = (f.f_globals, fn_name)
    return fn_or_name


def symbolic_trace(root, concrete_args=None):
    """Trace a Module or function into a GraphModule (torch.fx.symbolic_trace)."""
    from framework.nn import Module
    from .graph_module import GraphModule
    tracer = Tracer()
    graph = tracer.trace(root, concrete_args)
    name = root.__class__.__name__ if isinstance(root, Module) else root.__name__
    return GraphModule(tracer.root, graph, name)

