"""fx.Proxy: a stand-in value that records what is done to it as Graph nodes."""
import dis
import inspect
import operator
import sys
from bisect import bisect_left

from .node import map_aggregate
from ._codegen import magic_methods, reflectable_magic_methods

__all__ = ["Proxy", "Attribute", "TraceError", "ParameterProxy"]


class TraceError(ValueError):
    pass


class Proxy:
    """Each operation on a Proxy (operators, attributes, method calls, Kiln functions) adds a
    node to the tracer's graph and returns a new Proxy for its result."""

    def __init__(self, node, tracer=None):
        if tracer is None:
            from ._symbolic_trace import GraphAppendingTracer
            tracer = GraphAppendingTracer(node.graph)
        self.tracer = tracer
        self.node = node

    def __repr__(self):
        return f"Proxy({self.node.name})"

    def __getattr__(self, k):
        if k in ("tracer", "node"):       # not set yet (copy, unpickling)
            raise AttributeError(k)
        return Attribute(self, k)

    def __call__(self, *args, **kwargs):
        return self.tracer.create_proxy("call_method", "__call__", (self,) + args, kwargs)

    def __iter__(self):
        frame = inspect.currentframe().f_back
        insts = list(dis.get_instructions(frame.f_code))
        if sys.version_info >= (3, 11):
            idx = bisect_left(insts, frame.f_lasti, key=lambda x: x.offset)
        else:
            idx = frame.f_lasti // 2
        inst = insts[idx] if idx < len(insts) else None
        if inst is not None and inst.opname == "UNPACK_SEQUENCE":
            return (self[i] for i in range(inst.argval))      # a, b = proxy
        return self.tracer.iter(self)

    def __bool__(self):
        return self.tracer.to_bool(self)

    def keys(self):
        return self.tracer.keys(self)

    def __len__(self):
        raise RuntimeError("'len' is not supported in symbolic tracing by default. If you want "
                           "this call to be recorded, please call torch.fx.wrap('len') at "
                           "module scope")

    def __deepcopy__(self, memo):
        raise TraceError("Proxy objects cannot be deep-copied during symbolic tracing")


class Attribute(Proxy):
    """proxy.attr: a getattr node made only if the attribute is used as a value; calling it
    records a call_method node instead."""

    def __init__(self, root, attr):
        self.root = root
        self.attr = attr
        self.tracer = root.tracer
        self._node = None

    @property
    def node(self):
        if self._node is None:
            self._node = self.tracer.create_proxy("call_function", getattr,
                                                  (self.root, self.attr), {}).node
        return self._node

    def __call__(self, *args, **kwargs):
        return self.tracer.create_proxy("call_method", self.attr, (self.root,) + args, kwargs)


class ParameterProxy(Proxy):
    """A parameter's proxy that answers shape/size/dim with the real parameter's values."""

    def __init__(self, tracer, node, name, param):
        super().__init__(node, tracer)
        self.param = param
        self.name = name

    @property
    def shape(self):
        return self.param.shape

    def size(self, dim=None):
        return self.param.size() if dim is None else self.param.size(dim)

    def dim(self):
        return self.param.dim()

    @property
    def ndim(self):
        return self.param.ndim

    def numel(self):
        return self.param.numel()

    def nelement(self):
        return self.param.nelement()


def _make_magic(name):
    target = getattr(operator, name)

    def impl(*args):
        return args[0].tracer.create_proxy("call_function", target, args, {})
    impl.__name__ = f"__{name.strip('_')}__"
    setattr(Proxy, impl.__name__, impl)


def _make_rmagic(name):
    target = getattr(operator, name)

    def impl(self, rhs):
        return self.tracer.create_proxy("call_function", target, (rhs, self), {})
    impl.__name__ = f"__r{name.strip('_')}__"
    setattr(Proxy, impl.__name__, impl)


for _m in magic_methods:
    if _m != "div":                   # operator.div does not exist in Python 3
        _make_magic(_m)
for _m in reflectable_magic_methods:
    if _m not in ("div", "getitem"):
        _make_rmagic(_m)


def _find_proxy(*objects):
    found = []

    def look(x):
        if isinstance(x, Proxy) and not found:
            found.append(x)
        return x
    map_aggregate(objects, look)
    return found[0] if found else None
