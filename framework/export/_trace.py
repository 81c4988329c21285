"""Export's tracer: fx's Tracer run through every module (no leaves) with each Proxy carrying
the value it has on (copies of) the example inputs, so Python that reads shapes or branches on
them runs as torch's non-strict export does (specialized); then the recorded Kiln calls are
rewritten to aten overloads (one table, _aten.py) and constants folded."""
import operator
import os
import traceback

from framework.fx import Tracer, Proxy, Attribute, Graph
from framework.fx import _patcher
from framework.fx.node import Node, map_arg, map_aggregate
from . import _aten

_SKIP_DIRS = tuple(os.path.join(os.path.dirname(os.path.dirname(__file__)), d) + os.sep
                   for d in ("fx", "export"))


def _val(a):
    return map_aggregate(a, lambda x: x.node.meta["val"] if isinstance(x, Proxy) else
                         (x.meta["val"] if isinstance(x, Node) else x))


class _ConcreteMixin:
    def __len__(self):
        return len(self.node.meta["val"])

    def __bool__(self):
        self.tracer.guards.append(self.node)
        return bool(self.node.meta["val"])

    def __index__(self):
        return operator.index(self.node.meta["val"])

    def __iter__(self):
        return iter([self[i] for i in range(len(self))])

    def __getattr__(self, k):
        if k in ("tracer", "node", "root", "attr", "_node"):
            raise AttributeError(k)
        v = getattr(self.node.meta["val"], k)          # AttributeError as the value gives it
        import framework
        if isinstance(v, (str, type(None), framework.dtype, framework.device)):
            return v            # dtype, device, names: constants, as torch's export sees them
        return _ConcreteAttribute(self, k)


def _inplace(method, binop):
    """`t += y` on a tensor is t.add_(y) (torch's export records add_); on a number, t + y."""
    def f(self, other):
        import framework
        if isinstance(self.node.meta.get("val"), framework.Tensor):
            return self.tracer.create_proxy("call_method", method, (self, other), {})
        return binop(self, other)
    return f


for _name, _method, _op in (("__iadd__", "add_", operator.add),
                            ("__isub__", "sub_", operator.sub),
                            ("__imul__", "mul_", operator.mul),
                            ("__itruediv__", "div_", operator.truediv)):
    setattr(_ConcreteMixin, _name, _inplace(_method, _op))


class _ConcreteProxy(_ConcreteMixin, Proxy):
    pass


class _ConcreteAttribute(_ConcreteMixin, Attribute):
    pass


class ExportTracer(Tracer):
    def __init__(self, values):
        super().__init__()
        self._values = values           # attribute path -> the copy the trace computes with
        self.guards = []
        self._assigned = {}             # id(buffer) -> (path, Proxy assigned to it, frame)
        self.preserve, self.calls = (), {}

    def is_leaf_module(self, m, qualname):
        return False

    def proxy(self, node):
        return _ConcreteProxy(node, self)

    def to_bool(self, obj):
        self.guards.append(obj.node)
        return bool(obj.node.meta["val"])

    def iter(self, obj):
        return iter([obj[i] for i in range(len(obj.node.meta["val"]))])

    def call_module(self, m, forward, args, kwargs):
        from framework.nn.modules.rnn import RNNBase
        if isinstance(m, RNNBase) and args and isinstance(args[0], Proxy):
            out = self._rnn_call(m, *args, **kwargs)
        else:
            out = super().call_module(m, forward, args, kwargs)
        path = self.path_of_module(m)
        if path in self.preserve:           # preserve_module_call_signature: its boundary
            self.calls.setdefault(path, (args, kwargs, out))
        return out

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        got = self._assigned.get(id(attr_val))       # a buffer the forward reassigned
        return got[1] if got is not None else super().getattr(attr, attr_val,
                                                               parameter_proxy_cache)

    def trace(self, root, concrete_args=None):
        from framework.nn import Module
        orig_setattr = Module.__setattr__
        tracer = self
        paths = {id(b): n for n, b in root.named_buffers(remove_duplicate=False)}

        def setattr_(mod, name, value):
            # `self.n = self.n + 1` / `self.n += 1` on a buffer: later reads see the new value
            # and the buffer gets copy_(buffer, value) at the end, as torch's export records
            buf = mod.__dict__.get("_buffers", {}).get(name)
            if isinstance(value, Proxy) and buf is not None and id(buf) in paths:
                tracer._assigned[id(buf)] = (paths[id(buf)], value, _user_frame())
                return
            orig_setattr(mod, name, value)
        Module.__setattr__ = setattr_
        try:
            return self._trace(root, concrete_args)
        finally:
            Module.__setattr__ = orig_setattr

    def _trace(self, root, concrete_args):
        from framework.nn.modules.rnn import RNNBase
        if not isinstance(root, RNNBase):
            return super().trace(root, concrete_args)
        tracer, cls = self, type(root)       # an RNN at the root: its forward is _rnn_call

        class Root(cls):
            def forward(self, input, hx=None):
                return tracer._rnn_call(self, input, hx)
        Root.__name__ = Root.__qualname__ = cls.__name__
        root.__class__ = Root
        try:
            return super().trace(root, concrete_args)
        finally:
            root.__class__ = cls

    def _rnn_call(self, m, input, hx=None):
        """nn.LSTM/GRU/RNN as torch's export records them: zeros for a missing state, one
        aten.<mode>.input call on the flat weights, its getitems (unbatched: unsqueeze and
        squeeze around it). The module runs first on the values for its input checks."""
        from framework.nn.utils.rnn import PackedSequence
        xv = input.node.meta["val"]
        if isinstance(xv, PackedSequence):
            raise NotImplementedError(f"torch.export: {type(m).__name__} with a PackedSequence "
                                      "input cannot be exported")
        m._check_input(xv)
        path = self.path_of_module(m)
        lstm = m.mode == "LSTM"
        batched = xv.dim() == 3
        bdim = 0 if m.batch_first else 1
        D = 2 if m.bidirectional else 1
        hid = m.proj_size if m.proj_size > 0 else m.hidden_size
        n = xv.shape[bdim] if batched else 1
        if hx is not None:           # the module's own state checks, on the values
            hv = _val(hx)
            hv = list(hv) if lstm else [hv]
            want = 3 if batched else 2
            if any(h.dim() != want for h in hv):
                raise RuntimeError(f"For {'batched 3-D' if batched else 'unbatched 2-D'} "
                                   f"input, hx should also be {want}-D but got "
                                   f"{hv[0].dim()}-D tensor")
            shapes = [(m.num_layers * D, n, hid), (m.num_layers * D, n, m.hidden_size)]
            for k, h in enumerate(hv):
                m._check_hidden(h if batched else h.unsqueeze(1), shapes[k],
                                f"Expected hidden[{k}] size {{}}, got {{}}" if lstm else
                                "Expected hidden size {}, got {}")
        x = input if batched else input.unsqueeze(bdim)
        if hx is not None and not batched:
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1)) if lstm else hx.unsqueeze(1)
        if hx is None:
            if batched:             # (a node: a dynamic batch dim stays symbolic)
                n = x.size(bdim)
            kw = {"dtype": xv.dtype, "device": xv.device, "pin_memory": False}
            zeros = _aten.lookup("zeros.default")
            hx = self.create_proxy("call_function", zeros, ([m.num_layers * D, n, hid],), kw,
                                   name="zeros")
            if lstm:
                c = self.create_proxy("call_function", zeros,
                                      ([m.num_layers * D, n, m.hidden_size],), kw,
                                      name="zeros")
                hx = [hx, c]
        elif lstm:
            hx = [hx[0], hx[1]]
        params = [self.create_proxy("get_attr", f"{path}.{k}" if path else k, (), {})
                  for k in m._flat_weights_names]
        op = _aten.lookup(f"{m.mode.lower()}.input")
        r = self.create_proxy("call_function", op, (x, hx, params, m.bias, m.num_layers,
                                                    m.dropout, m.training, m.bidirectional,
                                                    m.batch_first), {}, name=op._packet)
        outs = [r[i] for i in range(3 if lstm else 2)]
        if not batched:
            outs = [outs[0].squeeze(bdim)] + [o.squeeze(1) for o in outs[1:]]
        return (outs[0], tuple(outs[1:])) if lstm else tuple(outs)

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        if kind == "output":
            copy_ = _aten.lookup("copy_.default")
            for path, value, frame in self._assigned.values():
                n = self.create_node("call_function", copy_,
                                     (self.create_node("get_attr", path, (), {}), value.node),
                                     {}, name="copy__default")
                n.meta["stack_trace"] = frame
            self._assigned = {}
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind == "get_attr":
            if target not in self._values:       # a tensor constant fx just attached to root
                v = self.root
                for part in target.split("."):
                    v = getattr(v, part)
                self._values[target] = v
            node.meta["val"] = self._values[target]
        elif kind in ("call_function", "call_method"):
            a, k = _val(args), _val(kwargs)
            import framework
            with framework.no_grad():
                if kind == "call_function":
                    node.meta["val"] = target(*a, **k)
                else:
                    node.meta["val"] = getattr(a[0], target)(*a[1:], **k)
            node.meta["stack_trace"] = _user_frame()
        return node


def _user_frame():
    """torch's `# File: ... in forward, code: ...` line: the innermost frame outside fx/export."""
    for fs in reversed(traceback.extract_stack()):
        if not fs.filename.startswith(_SKIP_DIRS):
            return f"File: {fs.filename}:{fs.lineno} in {fs.name}, code: {(fs.line or '').strip()}"
    return None


# Kiln's modules that nn layers call public functions through (F.linear, S.flatten)
_FUNCTION_MODULES = frozenset(("framework.nn._functional_basic", "framework.nn._functional_conv",
                               "framework.nn._functional_pool_more", "framework.nn.functional",
                               "framework.nn._torch_functional", "framework.ops_shape",
                               "framework.ops_math", "framework.ops_index", "framework.creation"))


def _patch_static_functions(patcher, root):
    """Modules that keep a Kiln function as a class attribute (Conv2d._fn) record it too."""
    import types
    originals = {id(o): o for _, _, o in _patcher._kiln_patch_targets()}
    for mod in root.modules():
        for k, v in list(vars(mod).items()):          # self.activation = F.relu
            if callable(v) and originals.get(id(v)) is v:
                patcher.patch(vars(mod), k, _patcher._kiln_wrapper(v), deduplicate=False)
        for cls in type(mod).__mro__:
            fwd = vars(cls).get("forward")
            # `from .. import _functional_basic as F`: Kiln's internal modules hold them too
            for g in getattr(fwd, "__globals__", {}).values():
                if isinstance(g, types.ModuleType) and g.__name__ in _FUNCTION_MODULES \
                        and patcher.visit_once(("mod", id(g))):
                    for k, v in list(vars(g).items()):
                        if not k.startswith("_") and originals.get(id(v)) is v:
                            patcher.patch_attr(g, k, _patcher._kiln_wrapper(v))
            for k, v in list(vars(cls).items()):
                if isinstance(v, staticmethod) and originals.get(id(v.__func__)) is v.__func__:
                    if patcher.visit_once(("static", id(cls), k)):
                        patcher.patch_attr(cls, k, staticmethod(_patcher._kiln_wrapper(
                            v.__func__)))


def trace(mod, names, flat_inputs, concrete_args=None, preserve=()):
    """Record mod(*inputs) -> (fx Graph on Kiln calls, guard nodes). names: the user input
    names; flat_inputs: their example values (already copied); preserve: module paths whose
    first call's (args, kwargs, result) go to graph._export_calls."""
    values = {}
    for n, p in mod.named_parameters(remove_duplicate=False):
        values[n] = p.detach().clone()
    for n, b in mod.named_buffers(remove_duplicate=False):
        values[n] = b.clone()
    tracer = ExportTracer(values)
    tracer.preserve = tuple(preserve)
    tracer._placeholder_values = dict(zip(names, flat_inputs))
    orig_create = tracer.create_proxy

    def create_proxy(kind, target, args, kwargs, name=None, type_expr=None,
                     proxy_factory_fn=None):
        p = orig_create(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if kind == "placeholder":
            p.node.meta["val"] = tracer._placeholder_values.get(target, args[0] if args else None)
        return p
    tracer.create_proxy = create_proxy
    try:
        with _patcher._Patcher() as patcher:
            _patch_static_functions(patcher, mod)
            graph = tracer.trace(mod, concrete_args)
            graph._export_guards = list(tracer.guards)
            graph._export_calls = dict(tracer.calls)
    finally:
        for qualname, _ in tracer.tensor_attrs.values():     # fx attached them to mod
            if qualname.startswith("_tensor_constant") and qualname in vars(mod):
                delattr(mod, qualname)
    return graph, tracer, values


def is_tensor(v):
    import framework
    return isinstance(v, framework.Tensor)


def to_aten_graph(graph, keep_symbolic=frozenset()):
    """A new Graph: placeholders and get_attr kept, Kiln calls rewritten to aten overloads,
    values that are not tensors (shapes, sizes) folded to constants unless their node is in
    keep_symbolic; tensor getitem expanded into select/slice/unsqueeze/index."""
    new = Graph()
    env = {}

    def arg(a):
        return map_arg(a, lambda n: env[n])

    def emit(op, a, k, src, name):
        n = new.create_node("call_function", op, a, k, name=name)
        n.meta["stack_trace"] = src.meta.get("stack_trace")
        return n

    for node in graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            env[node] = new.node_copy(node, lambda n: env[n])
            continue
        if node.op == "output":
            new.output(arg(node.args[0]))
            continue
        val = node.meta.get("val")
        if not _has_tensor(val) and node not in keep_symbolic:
            env[node] = val
            continue
        a, k = arg(node.args), arg(node.kwargs)
        if node.op == "call_function" and node.target is operator.getitem and is_tensor(
                node.args[0].meta.get("val")) if isinstance(node.args[0], Node) else False:
            env[node] = _expand_getitem(new, emit, node, a[0], a[1])
            env[node].meta["val"] = val
            if "sym_shape" in node.meta:
                env[node].meta["sym_shape"] = node.meta["sym_shape"]
            continue
        if node.op == "call_method" and node.target in ("size",) and node in keep_symbolic:
            n = emit(_aten.lookup("sym_size.int"), (a[0], a[1]), {}, node, "sym_size_int")
            n.meta["val"] = val
            n.meta["sym_int"] = node.meta.get("sym_int")
            env[node] = n
            continue
        got = None
        if node.op in ("call_function", "call_method"):
            got = _aten.to_aten(node.op, node.target, a, k)
        if got is not None:
            op, aa, kk = got
            if op._packet == "zeros" and "device" not in kk:    # torch's factory call spells
                kk = dict(kk, device=val.device, pin_memory=False)    # these out
            n = emit(op, aa, kk, node, op._packet)
            if op._packet.endswith("_") and isinstance(node.args[0], Node):
                env[node.args[0]] = n        # later reads see the mutated value, as torch's
        else:                                    # not in the table: the Kiln call itself
            n = new.node_copy(node, lambda x: env[x])
        n.meta["val"] = val
        n.meta["stack_trace"] = node.meta.get("stack_trace")
        for k in ("sym_shape", "sym_int"):
            if k in node.meta:
                n.meta[k] = node.meta[k]
        env[node] = n
    # in-place aten ops (add_, copy_) stay: they mutate buffers or inputs, as in torch's graph
    # (and every getitem of a multi-output aten op, as torch's graph keeps them)
    new._export_env = env
    new.eliminate_dead_code(lambda n: n.op in ("placeholder", "output") or (
        isinstance(n.target, _aten.OpOverload) and n.target._packet.endswith("_")) or (
        n.target is operator.getitem and isinstance(n.args[0], Node) and
        isinstance(n.args[0].target, _aten.OpOverload)) or (
        n.op != "get_attr" and not isinstance(n.target, _aten.OpOverload) and n.is_impure()))
    return new


def _has_tensor(v):
    found = []
    map_aggregate(v, lambda x: found.append(1) if is_tensor(x) else None)
    return bool(found)


def _expand_getitem(g, emit, node, x, idx):
    """x[idx] as torch's export spells it: select.int / slice.Tensor / unsqueeze / index."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    cur, dim = x, 0
    nd = node.args[0].meta["val"].dim()
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    tensor_idx = [i for i in idx if isinstance(i, Node) or is_tensor(i)]
    if tensor_idx:
        n = emit(_aten.lookup("index.Tensor"), (cur, list(idx)), {}, node, "index")
        return n
    for i in idx:
        if i is Ellipsis:
            dim += nd - n_real
        elif i is None:
            cur = emit(_aten.lookup("unsqueeze.default"), (cur, dim), {}, node, "unsqueeze")
            dim += 1
        elif isinstance(i, int):
            cur = emit(_aten.lookup("select.int"), (cur, dim, i), {}, node, "select")
        elif isinstance(i, slice):
            if i == slice(None):
                dim += 1
                continue
            a = [cur, dim, i.start, i.stop] + ([i.step] if i.step not in (None, 1) else [])
            while a[-1] is None and len(a) > 2:
                a.pop()
            cur = emit(_aten.lookup("slice.Tensor"), tuple(a), {}, node, "slice_1")
            dim += 1
    if cur is x:
        cur = emit(_aten.lookup("slice.Tensor"), (cur,), {}, node, "slice_1")
    return cur


def guard_nodes(graph):
    return getattr(graph, "_export_guards", [])


def rerun(graph, attr_values, inputs):
    """Every node's value for other inputs (same calls as recorded)."""
    import framework
    env = {}
    for n in graph.nodes:
        if n.op == "placeholder":
            env[n] = inputs.get(n.target, n.args[0] if n.args else None)
        elif n.op == "get_attr":
            env[n] = attr_values[n.target]
        elif n.op in ("call_function", "call_method"):
            a = map_arg(n.args, lambda x: env[x])
            k = map_arg(n.kwargs, lambda x: env[x])
            with framework.no_grad():
                env[n] = n.target(*a, **k) if n.op == "call_function" else \
                    getattr(a[0], n.target)(*a[1:], **k)
    return env
