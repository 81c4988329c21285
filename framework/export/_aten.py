"""torch.ops.aten.<op>.<overload> for exported programs: ONE table mapping the Kiln calls an fx
trace records (functions, Tensor method names, operators) to aten overload names, each with
its schema (torch's argument order and defaults) and the Kiln callable that runs it."""
import operator
import re

__all__ = ["OpOverload", "aten", "to_aten", "lookup"]

_REQ = object()                      # a schema argument without default


class _Param:
    __slots__ = ("name", "aliases", "default", "kwonly", "kind", "varargs", "hidden")

    def __init__(self, text, kwonly):
        # "name|alias:kind=default"; kind: int[] (an int becomes [int]), int[2] ([i, i]), keep
        # (a default that is still printed), opt (None means the default), Tensor / Scalar
        # (the overload for a tensor or a number); "*name": the remaining positionals as a list;
        # "=!value": a Kiln-only argument that must have that value and is not passed on
        self.varargs = text.startswith("*")
        text = text.lstrip("*")
        head, has_default, default = text.partition("=")
        self.hidden = default.startswith("!")
        default = default.lstrip("!")
        names, _, self.kind = head.partition(":")
        self.aliases = names.split("|")
        self.name = self.aliases[0]
        self.default = eval(default, {"inf": float("inf")}) if has_default else _REQ
        self.kwonly = kwonly


def _parse(schema):
    params, kwonly = [], False
    for part in (p.strip() for p in re.split(r",(?![^\[]*\])", schema) if p.strip()):
        if part == "*":
            kwonly = True
            continue
        params.append(_Param(part, kwonly))
    return params


class OpOverload:
    """One aten overload: `torch.ops.aten.linear.default(x, w, b)` runs Kiln's implementation;
    prints and is spelled in generated code as torch spells it."""

    def __init__(self, packet, overload, schema, impl, kiln_order=None):
        self._packet, self._overload = packet, overload
        self._params = _parse(schema)
        self._kiln_order = kiln_order      # Kiln's positional order where it differs
        self._impl = impl
        self.__name__ = overload
        self.__qualname__ = overload
        self.__module__ = f"torch.ops.aten.{packet}"
        self._schema = f"aten::{packet}.{overload}({schema})"

    @property
    def name(self):
        return f"aten::{self._packet}.{self._overload}"

    def __call__(self, *args, **kwargs):
        return self._impl(*args, **kwargs)

    def __repr__(self):
        return f"aten.{self._packet}.{self._overload}"

    def bind(self, args, kwargs):
        """fx call arguments -> (aten args, aten kwargs) with trailing defaults dropped, or None
        when this overload does not accept them."""
        pos = [p for p in self._params if not p.kwonly]
        vals, args = {}, list(args)
        order = pos if self._kiln_order is None else \
            [next(p for p in self._params if p.name == n) for n in self._kiln_order]
        for p in order:
            if p.varargs:
                rest = args if not (len(args) == 1 and isinstance(args[0], (list, tuple))) \
                    else list(args[0])
                vals[p.name], args = list(rest), []
                break
            if not args:
                break
            vals[p.name] = args.pop(0)
        if args:
            return None
        for k, v in kwargs.items():
            p = next((p for p in self._params if k in p.aliases), None)
            if p is None or p.name in vals:
                if p is not None or v is not None:   # (extra None kwargs: defaults, as out=None)
                    return None
                continue
            vals[p.name] = v
        for p in self._params:
            if p.name not in vals:
                if p.default is _REQ:
                    return None
                vals[p.name] = p.default
            v = vals[p.name]
            if p.hidden and not _same(v, p.default):
                return None
            if p.kind in ("Tensor", "Scalar") and (p.kind == "Tensor") != _is_tensor_arg(v):
                return None
            if (p.kind.startswith("int[") or p.kind == "opt") and v is None:
                vals[p.name] = v = p.default
            if p.kind.startswith("int[") and isinstance(v, int):
                n = p.kind[4:-1]
                vals[p.name] = [v] * (int(n) if n else 1)
            elif p.kind.startswith("int[") and isinstance(v, tuple):
                vals[p.name] = list(v)
        pos = [p for p in pos if not p.hidden]
        out = [vals[p.name] for p in pos]
        while out and pos[len(out) - 1].default is not _REQ and \
                pos[len(out) - 1].kind != "keep" and _same(out[-1], pos[len(out) - 1].default):
            out.pop()
        kw = {p.name: vals[p.name] for p in self._params
              if p.kwonly and not _same(vals[p.name], p.default)}
        return tuple(out), kw


def _is_tensor_arg(v):
    import framework
    from framework.fx import Node
    return isinstance(v, framework.Tensor) or (
        isinstance(v, Node) and isinstance(v.meta.get("val"), framework.Tensor))


def _same(a, b):
    if isinstance(b, list) and isinstance(a, (list, tuple)):
        return list(a) == b
    return type(a) is type(b) and a == b if not isinstance(a, bool) else a is b


class _Packet:
    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"aten.{self._name}"

    def overloads(self):
        return [k for k in vars(self) if not k.startswith("_")]


class _AtenNamespace:
    """torch.ops.aten: the overloads export knows (attribute access as in torch)."""

    def __repr__(self):
        return "torch.ops.aten"

    def __getattr__(self, op):
        raise AttributeError(f"'_OpNamespace' 'aten' object has no attribute '{op}'")


aten = _AtenNamespace()
_BY_SOURCE = {}          # key -> [OpOverload, ...] in preference order
_BY_NAME = {}            # "linear.default" -> OpOverload


def _key(src):
    return ("m", src) if isinstance(src, str) else ("f", id(src))


def _slice(x, dim=0, start=None, end=None, step=1):
    idx = [slice(None)] * x.dim()
    idx[dim] = slice(start, end, step)
    return x[tuple(idx)]


def _convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    import framework.nn.functional as F
    nd = w.dim() - 2
    if transposed:
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]
        return fn(x, w, b, stride, padding, output_padding, groups, dilation)
    return (F.conv1d, F.conv2d, F.conv3d)[nd - 1](x, w, b, stride, padding, dilation, groups)


def _bn_functional(x, w, b, rm, rv, training, momentum, eps):
    """(out, save_mean, save_invstd, new running_mean, new running_var): the running stats
    updated on copies, the inputs left as they are."""
    import framework
    rm, rv = rm.clone(), rv.clone()
    return framework.native_batch_norm(x, w, b, rm, rv, training, momentum, eps) + (rm, rv)


def _build():
    import framework
    import framework.nn.functional as F

    # (aten "packet.overload", schema with Kiln's keyword names as aliases, implementation,
    #  the Kiln calls it stands for: functions, Tensor method names, operators)
    rows = [
        ("linear.default", "input, weight, bias=None", F.linear, [F.linear]),
        ("conv1d.default", "input, weight, bias=None, stride:int[1]=[1], "
         "padding:int[1]=[0], dilation:int[1]=[1], groups=1", F.conv1d, [F.conv1d]),
        ("conv2d.default", "input, weight, bias=None, stride:int[2]=[1, 1], "
         "padding:int[2]=[0, 0], dilation:int[2]=[1, 1], groups=1", F.conv2d, [F.conv2d]),
        ("conv3d.default", "input, weight, bias=None, stride:int[3]=[1, 1, 1], "
         "padding:int[3]=[0, 0, 0], dilation:int[3]=[1, 1, 1], groups=1", F.conv3d,
         [F.conv3d]),
        ("convolution.default", "input, weight, bias, stride, padding, dilation, transposed, "
         "output_padding, groups", _convolution, []),
        ("_softmax.default", "self, dim, half_to_float", lambda x, d, h: F.softmax(x, d), []),
        ("_log_softmax.default", "self, dim, half_to_float", lambda x, d, h: F.log_softmax(x, d),
         []),
        ("relu.default", "self|input, inplace=!False", lambda x: F.relu(x),
         [F.relu, framework.relu, "relu"]),
        ("relu_.default", "self|input, inplace=!True", lambda x: F.relu(x, inplace=True),
         [F.relu, framework.relu_, "relu_"]),
        ("gelu.default", "self|input, *, approximate='none'", F.gelu, [F.gelu]),
        ("silu.default", "self|input, inplace=!False", lambda x: F.silu(x), [F.silu]),
        ("sigmoid.default", "self|input", framework.sigmoid,
         [framework.sigmoid, F.sigmoid, "sigmoid"]),
        ("tanh.default", "self|input", framework.tanh, [framework.tanh, F.tanh, "tanh"]),
        ("exp.default", "self|input", framework.exp, [framework.exp, "exp"]),
        ("log.default", "self|input", framework.log, [framework.log, "log"]),
        ("sqrt.default", "self|input", framework.sqrt, [framework.sqrt, "sqrt"]),
        ("abs.default", "self|input", framework.abs, [framework.abs, "abs"]),
        ("neg.default", "self|input", framework.neg, [framework.neg, "neg", operator.neg]),
        ("softmax.int", "self|input, dim, dtype=None", lambda x, d, dt=None: F.softmax(x, d),
         [F.softmax, framework.softmax, "softmax"]),
        ("log_softmax.int", "self|input, dim, dtype=None",
         lambda x, d, dt=None: F.log_softmax(x, d), [F.log_softmax, "log_softmax"]),
        ("dropout.default", "input, p=0.5, train|training=True, inplace=False",
         lambda x, p, t: F.dropout(x, p, t), [F.dropout]),
        ("add.Tensor", "self|input, other, *, alpha=1", framework.add,
         [framework.add, "add", operator.add]),
        ("sub.Tensor", "self|input, other, *, alpha=1", framework.sub,
         [framework.sub, "sub", operator.sub]),
        ("mul.Tensor", "self|input, other", framework.mul, [framework.mul, "mul", operator.mul]),
        ("add_.Tensor", "self, other, *, alpha=1", lambda x, o, alpha=1: x.add_(o, alpha=alpha),
         ["add_"]),
        ("sub_.Tensor", "self, other, *, alpha=1", lambda x, o, alpha=1: x.sub_(o, alpha=alpha),
         ["sub_"]),
        ("mul_.Tensor", "self, other", lambda x, o: x.mul_(o), ["mul_"]),
        ("div_.Tensor", "self, other", lambda x, o: x.div_(o), ["div_"]),
        ("copy_.default", "self, src", lambda x, o: x.copy_(o), ["copy_"]),
        ("zero_.default", "self", lambda x: x.zero_(), ["zero_"]),
        ("fill_.Scalar", "self, value", lambda x, v: x.fill_(v), ["fill_"]),
        ("div.Tensor", "self|input, other", framework.div,
         [framework.div, "div", operator.truediv]),
        ("pow.Tensor_Scalar", "self|input, exponent", framework.pow,
         [framework.pow, "pow", operator.pow]),
        ("eq.Tensor", "self|input, other:Tensor", framework.eq,
         [framework.eq, "eq", operator.eq]),
        ("eq.Scalar", "self|input, other:Scalar", framework.eq,
         [framework.eq, "eq", operator.eq]),
        ("ne.Tensor", "self|input, other:Tensor", framework.ne,
         [framework.ne, "ne", operator.ne]),
        ("ne.Scalar", "self|input, other:Scalar", framework.ne,
         [framework.ne, "ne", operator.ne]),
        ("lt.Tensor", "self|input, other:Tensor", framework.lt,
         [framework.lt, "lt", operator.lt]),
        ("lt.Scalar", "self|input, other:Scalar", framework.lt,
         [framework.lt, "lt", operator.lt]),
        ("le.Tensor", "self|input, other:Tensor", framework.le,
         [framework.le, "le", operator.le]),
        ("le.Scalar", "self|input, other:Scalar", framework.le,
         [framework.le, "le", operator.le]),
        ("gt.Tensor", "self|input, other:Tensor", framework.gt,
         [framework.gt, "gt", operator.gt]),
        ("gt.Scalar", "self|input, other:Scalar", framework.gt,
         [framework.gt, "gt", operator.gt]),
        ("ge.Tensor", "self|input, other:Tensor", framework.ge,
         [framework.ge, "ge", operator.ge]),
        ("ge.Scalar", "self|input, other:Scalar", framework.ge,
         [framework.ge, "ge", operator.ge]),
        ("matmul.default", "self|input, other", framework.matmul,
         [framework.matmul, "matmul", operator.matmul]),
        ("mm.default", "self|input, mat2", framework.mm, [framework.mm, "mm"]),
        ("bmm.default", "self|input, mat2", framework.bmm, [framework.bmm, "bmm"]),
        ("addmm.default", "self|input, mat1, mat2, *, beta=1, alpha=1", framework.addmm,
         [framework.addmm]),
        ("permute.default", "self|input, *dims:int[]", lambda x, d: x.permute(d),
         [framework.permute, "permute"]),
        ("t.default", "self|input", framework.t, [framework.t, "t"]),
        ("transpose.int", "self|input, dim0, dim1", framework.transpose,
         [framework.transpose, "transpose"]),
        ("view.default", "self|input, *size|shape:int[]", lambda x, s: x.view(s), ["view"]),
        ("reshape.default", "self|input, *shape:int[]", lambda x, s: x.reshape(s),
         [framework.reshape, "reshape"]),
        ("flatten.using_ints", "self|input, start_dim=0, end_dim=-1", framework.flatten,
         [framework.flatten, "flatten"]),
        ("unsqueeze.default", "self|input, dim", framework.unsqueeze,
         [framework.unsqueeze, "unsqueeze"]),
        ("squeeze.dim", "self|input, dim", framework.squeeze, [framework.squeeze, "squeeze"]),
        ("squeeze.default", "self|input", framework.squeeze, [framework.squeeze, "squeeze"]),
        ("cat.default", "tensors, dim=0", framework.cat, [framework.cat]),
        ("stack.default", "tensors, dim=0", framework.stack, [framework.stack]),
        ("sum.default", "self|input, *, dtype=None", framework.sum, [framework.sum, "sum"]),
        ("sum.dim_IntList", "self|input, dim|axis:int[], keepdim=False, *, dtype=None",
         framework.sum, [framework.sum, "sum"]),
        ("mean.default", "self|input, *, dtype=None", framework.mean, [framework.mean, "mean"]),
        ("mean.dim", "self|input, dim|axis:int[], keepdim=False, *, dtype=None", framework.mean,
         [framework.mean, "mean"]),
        ("max_pool2d.default", "input|self, kernel_size:int[2], stride:int[2]=[], "
         "padding:int[2]=[0, 0], dilation:int[2]=[1, 1], ceil_mode=False, "
         "return_indices=!False",
         lambda x, k, s=(), p=0, d=1, c=False: F.max_pool2d(x, k, list(s) or None, p, d, c),
         [F.max_pool2d]),
        ("avg_pool2d.default", "input|self, kernel_size:int[2], stride:int[2]=[], "
         "padding:int[2]=[0, 0], ceil_mode=False, count_include_pad=True, "
         "divisor_override=None",
         lambda x, k, s=(), *r: F.avg_pool2d(x, k, list(s) or None, *r), [F.avg_pool2d]),
        ("adaptive_avg_pool2d.default", "input|self, output_size:int[2]",
         F.adaptive_avg_pool2d, [F.adaptive_avg_pool2d]),
        ("layer_norm.default", "input, normalized_shape:int[], weight=None, bias=None, "
         "eps:keep=1e-05, cudnn_enable:keep=False", lambda x, s, w=None, b=None, e=1e-5, c=False:
         F.layer_norm(x, s, w, b, e), [F.layer_norm]),
        ("batch_norm.default", "input, weight=None, bias=None, running_mean, running_var, "
         "training=False, momentum=0.1, eps=1e-05, cudnn_enabled:keep=False",
         lambda x, w, b, rm, rv, t, m, e, c=False: F.batch_norm(x, rm, rv, w, b, t, m, e),
         [F.batch_norm], ("input", "running_mean", "running_var", "weight", "bias", "training",
                          "momentum", "eps")),
        ("embedding.default", "weight, indices|input, padding_idx:opt=-1, "
         "scale_grad_by_freq=False, sparse=False, max_norm=!None, norm_type=!2.0",
         lambda w, i, p=-1, *r: F.embedding(i, w, None if p == -1 else p), [F.embedding],
         ("indices", "weight", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq",
          "sparse")),
        ("clone.default", "self|input", framework.clone, [framework.clone, "clone"]),
        ("select.int", "self, dim, index", framework.select, [framework.select, "select"]),
        ("slice.Tensor", "self, dim=0, start=None, end=None, step=1", _slice, []),
        ("index.Tensor", "self, indices", lambda x, i: x[tuple(i)], []),
        ("sym_size.int", "self, dim", lambda x, d: x.size(d), []),
        ("full_like.default", "self, fill_value, *, dtype=None, layout=None, device=None, "
         "pin_memory=None, memory_format=None",
         lambda x, v, dtype=None, layout=None, device=None, pin_memory=None,
         memory_format=None: framework.full_like(x, v, dtype=dtype, device=device), []),
        ("copy.default", "self, src, non_blocking=False",
         lambda x, src, nb=False: src.to(x.dtype).expand(x.shape).clone(), []),
        ("_native_batch_norm_legit_functional.default", "input, weight, bias, running_mean, "
         "running_var, training, momentum, eps", _bn_functional, []),
        ("_native_batch_norm_legit_no_training.default", "input, weight, bias, running_mean, "
         "running_var, momentum, eps", lambda x, w, b, rm, rv, m, e:
         framework.native_batch_norm(x, w, b, rm, rv, False, m, e), []),
        ("squeeze.dims", "self, dim", lambda x, d: framework.squeeze(x, tuple(d)), []),
        ("max_pool2d_with_indices.default", "self, kernel_size:int[2], stride:int[2]=[], "
         "padding:int[2]=[0, 0], dilation:int[2]=[1, 1], ceil_mode=False",
         lambda x, k, s=(), p=0, d=1, c=False: F.max_pool2d(x, k, list(s) or None, p, d, c,
                                                             return_indices=True), []),
        ("_adaptive_avg_pool2d.default", "self, output_size", F.adaptive_avg_pool2d, []),
        ("native_layer_norm.default", "input, normalized_shape, weight, bias, eps",
         framework.native_layer_norm, []),
        ("full.default", "size:int[], fill_value, *, dtype=None, layout=None, device=None, "
         "pin_memory=None", lambda s, v, dtype=None, layout=None, device=None, pin_memory=None:
         framework.full(s, v, dtype=dtype, device=device), []),
        ("zeros.default", "*size:int[], *, dtype=None, layout=None, device=None, "
         "pin_memory=None", lambda s, dtype=None, layout=None, device=None, pin_memory=None:
         framework.zeros(s, dtype=dtype, device=device), [framework.zeros]),
    ]
    for name in ("lstm", "gru", "rnn_tanh", "rnn_relu"):     # what nn.LSTM/GRU/RNN record
        rows.append((f"{name}.input", "input, hx, params, has_biases, num_layers, dropout, "
                     "train, bidirectional, batch_first", getattr(framework, name), []))
    for name, schema, impl, sources, *order in rows:
        packet, overload = name.split(".")
        op = OpOverload(packet, overload, schema, impl, *order)
        p = aten.__dict__.get(packet)
        if p is None:
            p = aten.__dict__[packet] = _Packet(packet)
        setattr(p, overload, op)
        _BY_NAME[name] = op
        for s in sources:       # (the original, should this run while fx has them patched)
            _BY_SOURCE.setdefault(_key(getattr(s, "__fx_original__", s)), []).append(op)


def lookup(name):
    """'linear.default' -> its OpOverload (KeyError when export does not know it)."""
    if not _BY_NAME:
        _build()
    return _BY_NAME[name]


def to_aten(kind, target, args, kwargs):
    """(OpOverload, aten args, aten kwargs) for a recorded Kiln call, or None when the table
    has no entry that accepts these arguments."""
    if not _BY_NAME:
        _build()
    key = ("m", target) if kind == "call_method" else ("f", id(target))
    if kind == "call_function" and target in (operator.add, operator.mul):
        # 1.0 + x is recorded as add(1.0, x): aten takes the tensor first
        from framework.fx import Node
        if not isinstance(args[0], Node) and isinstance(args[1], Node):
            args = (args[1], args[0])
    for op in _BY_SOURCE.get(key, ()):
        got = op.bind(args, kwargs)
        if got is not None:
            return (op,) + got
    return None


def _ensure():
    if not _BY_NAME:
        _build()
    return aten
