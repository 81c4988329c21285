"""fx.Node: one operation of an fx Graph, kept in a doubly linked list (torch.fx.node)."""
import builtins
import types

__all__ = ["Node", "map_arg", "map_aggregate", "Argument", "Target"]

Argument = object
Target = object


def map_aggregate(a, fn):
    """Apply fn to every leaf of a nested tuple/list/dict/slice structure."""
    if isinstance(a, tuple):
        t = tuple(map_aggregate(e, fn) for e in a)
        return type(a)(*t) if hasattr(a, "_fields") else t
    if isinstance(a, list):
        return [map_aggregate(e, fn) for e in a]
    if isinstance(a, dict):
        return {k: map_aggregate(v, fn) for k, v in a.items()}
    if isinstance(a, slice):
        return slice(map_aggregate(a.start, fn), map_aggregate(a.stop, fn),
                     map_aggregate(a.step, fn))
    return fn(a)


def map_arg(a, fn):
    """Apply fn to each Node appearing in the nested argument a."""
    return map_aggregate(a, lambda x: fn(x) if isinstance(x, Node) else x)


# Kiln's functions are spelled as torch spells them: the namespace `torch` is Kiln's `framework`
_NAMESPACES = (("torch", "framework"), ("torch.nn.functional", "framework.nn.functional"),
               ("torch.special", "framework.special"), ("torch.linalg", "framework.linalg"),
               ("torch.fft", "framework.fft"))
_public_names = None


def _public_functions(ns):
    """(name, function) for the public functions of a module or namespace object (Kiln's
    torch.linalg is an object whose functions are class attributes)."""
    names = vars(ns) if isinstance(ns, types.ModuleType) else dir(ns)
    out = []
    for k in list(names):
        v = getattr(ns, k, None)
        if not k.startswith("_") and isinstance(v, (types.FunctionType, types.BuiltinFunctionType)):
            out.append((k, v))
    return out


def _public_name_table():
    """{id(fn): (spelling, fn)} for the public callables of Kiln's torch-named namespaces."""
    global _public_names
    if _public_names is None:
        import framework
        table = {}
        for spelled, path in _NAMESPACES:
            ns = framework
            for part in path.split(".")[1:]:
                ns = getattr(ns, part)
            for k, v in _public_functions(ns):
                table.setdefault(id(v), (f"{spelled}.{k}", v))
        table[id(framework._assert)] = ("torch._assert", framework._assert)
        _public_names = table
    return _public_names


def _get_qualified_name(func):
    if getattr(builtins, func.__name__, None) is func:
        return func.__name__
    hit = _public_name_table().get(id(func))
    if hit is not None and hit[1] is func:
        return hit[0]
    name = func.__name__
    if name == "<lambda>":
        raise RuntimeError("Unable to represent lambda")
    module = getattr(func, "__module__", None) or "builtins"
    if module == "_operator":
        module = "operator"
    return _torch_spelling(func) or f"{module}.{name}"


def _format_arg(arg):
    if isinstance(arg, list):
        return "[" + ", ".join(_format_arg(a) for a in arg) + "]"
    if isinstance(arg, tuple):
        return "(" + ", ".join(_format_arg(a) for a in arg) + ("," if len(arg) == 1 else "") + ")"
    if isinstance(arg, dict):
        return "{" + ", ".join(f"{k}: {_format_arg(v)}" for k, v in arg.items()) + "}"
    if isinstance(arg, Node):
        return "%" + str(arg)
    return str(arg)


def _type_repr(t):
    if isinstance(t, type):
        if t.__module__ == "builtins":
            return t.__name__
        return _torch_spelling(t) or f"{t.__module__}.{t.__qualname__}"
    return repr(t)


def _torch_spelling(obj):
    """`torch.<path>` for an object of Kiln's framework package reachable by that path (the
    generated code names Kiln `torch`), else None."""
    import importlib
    module, name = getattr(obj, "__module__", None) or "", getattr(obj, "__qualname__", "")
    if not (module == "framework" or module.startswith("framework.")) or "." in name:
        return None
    import framework
    if getattr(framework, name, None) is obj:
        return f"torch.{name}"
    try:
        if getattr(importlib.import_module(module), name, None) is obj:
            return "torch" + module[len("framework"):] + "." + name
    except ImportError:
        pass
    return None


_RANDOM_FUNCTIONS = frozenset(("rand", "randn", "randint", "randperm", "rand_like", "randn_like",
                               "randint_like", "bernoulli", "normal", "multinomial", "poisson",
                               "dropout", "alpha_dropout", "feature_alpha_dropout",
                               "dropout1d", "dropout2d", "dropout3d", "rrelu"))

_LEGAL_OPS = ("placeholder", "call_method", "call_module", "call_function", "get_attr",
              "output", "root")


class Node:
    """One operation: op is placeholder/get_attr/call_function/call_method/call_module/output."""

    def __init__(self, graph, name, op, target, args, kwargs, return_type=None):
        if op not in _LEGAL_OPS:
            raise ValueError(f"Unknown op {op!r}; expected one of {_LEGAL_OPS}")
        if op == "call_function" and not callable(target):
            raise ValueError(f"Node [graph = {graph}, name = '{name}'] target {target} has type "
                             f"{type(target)} but a Callable is expected")
        if op in ("placeholder", "call_method", "call_module", "get_attr") and \
                not isinstance(target, str):
            raise ValueError(f"Node [graph = {graph}, name = '{name}'] target {target} has type "
                             f"{type(target)} but a str is expected")
        self.graph = graph
        self.name = name
        self.op = op
        self.target = target
        self._input_nodes = {}
        self.users = {}
        self._args, self._kwargs = (), {}
        self._update_args_kwargs(args, kwargs)
        self.type = return_type
        self._prev = self
        self._next = self
        self._erased = False
        self._repr_fn = None
        self.meta = {}

    # --- list links -------------------------------------------------------------------
    @property
    def next(self):
        return self._next

    @property
    def prev(self):
        return self._prev

    def prepend(self, x):
        """Insert x before this node (moving it if it is already in the list)."""
        if self is x:
            return
        x._remove_from_list()
        p = self._prev
        p._next, x._prev = x, p
        x._next, self._prev = self, x

    def append(self, x):
        """Insert x after this node."""
        self._next.prepend(x)

    def _remove_from_list(self):
        p, n = self._prev, self._next
        p._next, n._prev = n, p

    # --- arguments and uses ----------------------------------------------------------
    @property
    def args(self):
        return self._args

    @args.setter
    def args(self, a):
        self._update_args_kwargs(a, self._kwargs)

    @property
    def kwargs(self):
        return self._kwargs

    @kwargs.setter
    def kwargs(self, k):
        self._update_args_kwargs(self._args, k)

    @property
    def all_input_nodes(self):
        return list(self._input_nodes)

    def _update_args_kwargs(self, new_args, new_kwargs):
        for old in list(self._input_nodes):
            old.users.pop(self, None)
        self._input_nodes = {}
        map_arg(new_args, self._input_nodes.setdefault)
        map_arg(new_kwargs, self._input_nodes.setdefault)
        for new in self._input_nodes:
            new.users.setdefault(self)
        self._args = tuple(new_args) if not isinstance(new_args, tuple) else new_args
        self._kwargs = dict(new_kwargs)

    def update_arg(self, idx, arg):
        args = list(self.args)
        args[idx] = arg
        self.args = tuple(args)

    def update_kwarg(self, key, arg):
        self.kwargs = {**self.kwargs, key: arg}

    def replace_all_uses_with(self, replace_with, delete_user_cb=lambda user: True, *,
                              propagate_meta=False):
        """Make every user of this node use replace_with instead; returns the changed users."""
        if propagate_meta:
            for k, v in self.meta.items():
                replace_with.meta.setdefault(k, v)
        changed = []
        for user in list(self.users):
            if not delete_user_cb(user):
                continue

            def swap(n):
                return replace_with if n is self else n
            user._update_args_kwargs(map_arg(user.args, swap), map_arg(user.kwargs, swap))
            changed.append(user)
        return changed

    def replace_input_with(self, old_input, new_input):
        def swap(n):
            return new_input if n is old_input else n
        self._update_args_kwargs(map_arg(self.args, swap), map_arg(self.kwargs, swap))

    @property
    def stack_trace(self):
        return self.meta.get("stack_trace")

    def is_impure(self, impure_random=True):
        """Whether dead-code elimination must keep this node: placeholders, output, asserts,
        setitem, in-place functions, random draws (impure_random) and call_module of a
        module marked `_is_impure`; call_method nodes are pure, as in torch."""
        if self.op in ("placeholder", "output"):
            return True
        if self.op == "call_function":
            import operator
            import framework
            name = getattr(self.target, "__name__", "")
            if self.target in (framework._assert, operator.setitem) or \
                    (name.endswith("_") and not name.startswith("_")):
                return True
            return impure_random and name in _RANDOM_FUNCTIONS
        if self.op == "call_module" and self.graph.owning_module is not None:
            mod = self.graph.owning_module.get_submodule(self.target)
            return getattr(mod, "_is_impure", False)
        return False

    # --- printing --------------------------------------------------------------------
    def __repr__(self):
        if self._repr_fn:
            return self._repr_fn(self)
        return self.name

    @staticmethod
    def _pretty_print_target(target):
        if isinstance(target, str):
            return target
        mod = getattr(target, "__module__", None)
        if mod == "builtins":
            return f"builtins.{target.__name__}"
        if mod == "_operator":
            return f"operator.{target.__name__}"
        return _get_qualified_name(target)

    def format_node(self, placeholder_names=None, maybe_return_typename=None):
        """The line Graph's printout gives this node (torch's format)."""
        if self.op == "placeholder":
            arg_str = self.target
            if self.type:
                arg_str += f": {_type_repr(self.type)}"
            if placeholder_names:     # (torch passes an empty list: placeholders print as lines)
                placeholder_names.append(arg_str)
                return None
            maybe_typename = f"{_type_repr(self.type)} " if self.type else ""
            default_val = "(default=" + str(self.args[0]) + ")" if self.args else ""
            return (f"%{self.name} : {maybe_typename}[num_users={len(self.users)}] = "
                    f"{self.op}[target={self.target}]{default_val}")
        if self.op == "get_attr":
            maybe_typename = f"{_type_repr(self.type)} " if self.type is not None else ""
            return (f"%{self.name} : {maybe_typename}[num_users={len(self.users)}] = "
                    f"{self.op}[target={self._pretty_print_target(self.target)}]")
        if self.op == "output":
            if self.type and maybe_return_typename:
                maybe_return_typename[0] = f" -> {_type_repr(self.type)}"
            return f"return {self.args[0]}"
        maybe_typename = f"{_type_repr(self.type)} " if self.type is not None else ""
        return (f"%{self.name} : {maybe_typename}[num_users={len(self.users)}] = "
                f"{self.op}[target={self._pretty_print_target(self.target)}]("
                f"args = {_format_arg(self.args)}, kwargs = {_format_arg(self.kwargs)})")
