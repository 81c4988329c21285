"""torch.library: Python custom operators (custom_op, register_fake, register_autograd,
register_kernel, opcheck, infer_schema) and the torch.ops namespace that finds them.

A custom op runs its Python function on real tensors (the body may go through NumPy). Under
compile() it is a graph break: its tensor arguments are made concrete, it runs eagerly, and
tracing goes on after it (fullgraph=True raises). The register_fake rule serves opcheck."""
import collections.abc
import inspect
import typing

from ._dispatch import STATE
from .amp.autocast_mode import _first_device
from .tensor import Tensor
from runtime import dtypes as _dt
from runtime.device import Device as _Device

_OPS = {}       # (namespace, name) -> CustomOpDef


class OpCheckError(Exception):
    pass


# annotation -> schema type, as torch.library.infer_schema writes it
_ARG_TYPES = {Tensor: "Tensor", typing.Optional[Tensor]: "Tensor?",
              int: "SymInt", float: "float", bool: "bool", str: "str",
              typing.Optional[int]: "SymInt?", typing.Optional[float]: "float?",
              typing.Optional[bool]: "bool?", typing.Optional[str]: "str?",
              _dt.DType: "ScalarType", _Device: "Device"}
for _seq in (typing.Sequence, typing.List, collections.abc.Sequence, list):
    for _k, _v in ((Tensor, "Tensor[]"), (int, "SymInt[]"), (float, "float[]"), (bool, "bool[]"),
                   (typing.Optional[Tensor], "Tensor?[]")):
        _ARG_TYPES[_seq[_k]] = _v
        _ARG_TYPES[typing.Optional[_seq[_k]]] = _v + "?"
_RET_TYPES = {Tensor: "Tensor", int: "SymInt", float: "float", bool: "bool",
              typing.List[Tensor]: "Tensor[]", list[Tensor]: "Tensor[]",
              typing.Sequence[Tensor]: "Tensor[]"}


def _hints(fn):
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return getattr(fn, "__annotations__", {})


def _default_str(d):
    if isinstance(d, str):
        return f'"{d}"'
    return repr(d)


def infer_schema(prototype_function, /, *, mutates_args, op_name=None):
    sig = inspect.signature(prototype_function)
    hints = _hints(prototype_function)

    def err(what):
        raise ValueError(f"infer_schema(func): {what} Got func with signature {sig})")
    if mutates_args != "unknown":
        if isinstance(mutates_args, str) or not isinstance(mutates_args, collections.abc.Iterable):
            raise ValueError("mutates_args must either be a sequence of the names of the "
                             "arguments that are mutated or the string 'unknown'. ")
        missing = set(mutates_args) - set(sig.parameters)
        if missing:
            err(f"{missing} in mutates_args were not found in the custom op's signature. "
                "mutates_args should contain the names of all args that the custom op mutates, "
                "or just the string 'unknown' if you don't know.")
    params = []
    for i, (name, p) in enumerate(sig.parameters.items()):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            err("We do not support positional-only args, varargs, or varkwargs.")
        if p.annotation is inspect.Parameter.empty:
            err(f"Parameter {name} must have a type annotation.")
        ann = hints.get(name, p.annotation)
        ty = _ARG_TYPES.get(ann)
        if ty is None:
            err(f"Parameter {name} has unsupported type {ann}. The valid types are: "
                f"{list(_ARG_TYPES)}.")
        mutated = mutates_args == "unknown" or name in mutates_args
        if mutated:
            if not ty.startswith("Tensor"):
                err(f"Parameter {name} is in mutable_args but only Tensors or collections of "
                    "Tensors can be mutated")
            ty = f"Tensor(a{i}!)" + ty[len("Tensor"):]
        s = f"{ty} {name}"
        if p.default is not inspect.Parameter.empty:
            s += f"={_default_str(p.default)}"
        if p.kind is p.KEYWORD_ONLY and not any(x.startswith("*") for x in params):
            params.append("*")
        params.append(s)
    if sig.return_annotation is inspect.Signature.empty:
        err("No return type annotation was provided. Please add one.")
    ret = hints.get("return", sig.return_annotation)
    if ret is None or ret is type(None):
        rs = "()"
    elif typing.get_origin(ret) is tuple:
        parts = [_RET_TYPES.get(a) for a in typing.get_args(ret)]
        if None in parts:
            err(f"Return has unsupported type {ret}.")
        rs = "(" + ", ".join(parts) + ")"
    else:
        rs = _RET_TYPES.get(ret)
        if rs is None:
            err(f"Return has unsupported type {ret}. The valid types are: {list(_RET_TYPES)}.")
    head = op_name or ""
    return f"{head}({', '.join(params)}) -> {rs}"


class OpOverload:
    def __init__(self, op):
        self._op = op

    def __call__(self, *args, **kwargs):
        return self._op(*args, **kwargs)

    @property
    def _schema(self):
        return self._op._schema

    def __repr__(self):
        return f"{self._op._namespace}.{self._op._name}.default"


class OpOverloadPacket:
    def __init__(self, op):
        self._op = op
        self.default = op._opoverload

    def __call__(self, *args, **kwargs):
        return self._op(*args, **kwargs)

    def overloads(self):
        return ["default"]

    def __repr__(self):
        return f"{self._op._namespace}.{self._op._name}"


class _OpNamespace:
    def __init__(self, name):
        self.name = name

    def __getattr__(self, op):
        if op.startswith("__"):
            raise AttributeError(op)
        d = _OPS.get((self.name, op))
        if d is None:
            raise AttributeError(f"'_OpNamespace' '{self.name}' object has no attribute '{op}'")
        return OpOverloadPacket(d)


class _Ops:
    """torch.ops: torch.ops.<namespace>.<op> for the custom ops defined so far."""
    def __getattr__(self, ns):
        if ns.startswith("__"):
            raise AttributeError(ns)
        return _OpNamespace(ns)


ops = _Ops()


def _tensors(args):
    out = []
    for a in args:
        if isinstance(a, Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(b for b in a if isinstance(b, Tensor))
    return out


class CustomOpDef:
    def __init__(self, namespace, name, schema, fn, mutates_args, device_types):
        self._namespace, self._name = namespace, name
        self._qualname = f"{namespace}::{name}"
        self._schema = schema
        self._init_fn = fn
        self._sig = inspect.signature(fn)
        self._mutates = tuple(self._sig.parameters) if mutates_args == "unknown" \
            else tuple(mutates_args)
        self._kernels = {}
        if device_types is None:
            self._default = fn
        else:
            self._default = None
            for d in ([device_types] if isinstance(device_types, str) else device_types):
                self._kernels[d] = fn
        self._fake_fn = None
        self._backward_fn = None
        self._setup_context_fn = None
        self._opoverload = OpOverload(self)
        self.__name__ = name
        self.__doc__ = fn.__doc__

    def __repr__(self):
        return f"<CustomOpDef({self._qualname})>"

    def register_fake(self, fn=None, /):
        def reg(f):
            self._fake_fn = f
            return f
        return reg if fn is None else reg(fn)

    def register_kernel(self, device_types, fn=None, /):
        def reg(f):
            for d in ([device_types] if isinstance(device_types, str) else device_types):
                self._kernels[d] = f
            return f
        return reg if fn is None else reg(fn)

    def register_autograd(self, backward, /, *, setup_context=None):
        self._backward_fn = backward
        self._setup_context_fn = setup_context

    def _bind(self, args, kwargs):
        decl = f"Declaration: {self._qualname}{self._schema}"
        n = len(self._sig.parameters)
        if len(args) > n:
            raise RuntimeError(f"{self._qualname}() expected at most {n} argument(s) but "
                               f"received {len(args)} argument(s). {decl}")
        try:
            b = self._sig.bind(*args, **kwargs)
        except TypeError as e:
            raise RuntimeError(f"{self._qualname}(): {e}. {decl}") from None
        b.apply_defaults()
        hints = _hints(self._init_fn)
        for pos, (name, v) in enumerate(b.arguments.items()):
            ann = hints.get(name)
            want_t = ann is Tensor or (ann == typing.Optional[Tensor] and v is not None)
            if want_t and not isinstance(v, Tensor):
                raise RuntimeError(f"{self._qualname}() Expected a value of type 'Tensor' for "
                                   f"argument '{name}' but instead found type "
                                   f"'{type(v).__name__}'.\nPosition: {pos}\nValue: {v!r}\n"
                                   f"{decl}")
        return tuple(b.arguments.values())

    def _kernel(self, args):
        dev = _first_device(args, {}) or "cpu"     # (the first tensor's, as autocast picks)
        k = self._kernels.get(dev, self._default)
        if k is None:
            raise NotImplementedError(f"{self._qualname}: no kernel registered for device type "
                                      f"'{dev}' (registered: {sorted(self._kernels)})")
        return k

    def _run(self, args):
        # the kernel sees tensors below autograd (as in torch): x.numpy() works on them
        def det(a):
            if isinstance(a, Tensor):
                return a.detach()
            if isinstance(a, (list, tuple)):
                return type(a)(det(b) for b in a)
            return a
        out = self._kernel(args)(*(det(a) for a in args))
        ins = {id(t._base if t._base is not None else t) for t in _tensors(args)}
        for o in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(o, Tensor) and id(o._base if o._base is not None else o) in ins:
                raise RuntimeError(f"{self._name} (with implementation in "
                                   f"{inspect.getmodule(self._init_fn)}): The output of this "
                                   "custom operator (1) must not also be an input to this "
                                   "custom operator and (2) may not alias any inputs to this "
                                   "custom operator or other returns. The most common way to "
                                   "trigger this error is if we have y = custom_op(x) and y "
                                   "and x are the same Tensor. Please instead return a clone "
                                   "of the offending output tensor(s) (e.g. return x.clone()) "
                                   "or refactor the custom operator to not return y.")
        names = list(self._sig.parameters)
        for name in self._mutates:
            for t in _tensors((args[names.index(name)],)):
                t._bump()           # (torch bumps a declared mutated argument's version too)
        return out

    def __call__(self, *args, **kwargs):
        args = self._bind(args, kwargs)
        tr = STATE.tracer
        if tr is not None:
            # an opaque Python call: the region so far runs, then the op runs on real tensors
            tr.make_concrete(_tensors(args), f"custom op {self._qualname}")
        needs = STATE.grad_enabled and any(t.requires_grad for t in _tensors(args))
        if not needs:
            return self._run(args)
        return self._autograd_fn().apply(*args)

    def _autograd_fn(self):
        from .autograd.function import Function
        op = self

        class Fn(Function):
            @staticmethod
            def forward(*args):
                return op._run(args)

            @staticmethod
            def setup_context(ctx, inputs, output):
                if op._setup_context_fn is not None:
                    op._setup_context_fn(ctx, inputs, output)

            @staticmethod
            def backward(ctx, *grads):
                if op._backward_fn is None:
                    raise RuntimeError(f"Trying to backward through {op._namespace}."
                                       f"{op._name}.default but no autograd formula was "
                                       "registered. Please use register_autograd to add one.")
                r = op._backward_fn(ctx, *grads)
                return r
        Fn.__name__ = f"GeneratedBackwardFor_{self._namespace}_{self._name}_default"
        return Fn


def custom_op(name, fn=None, /, *, mutates_args, device_types=None, schema=None):
    """Decorator: the annotated Python function becomes the operator `name`
    ("namespace::opname"), also reachable as torch.ops.namespace.opname."""
    def inner(f):
        ns, opname = name.split("::")
        s = schema if schema is not None else infer_schema(f, mutates_args=mutates_args)
        op = CustomOpDef(ns, opname, s, f, mutates_args, device_types)
        _OPS[(ns, opname)] = op
        return op
    return inner if fn is None else inner(fn)


def _lookup(op):
    if isinstance(op, CustomOpDef):
        return op
    if isinstance(op, (OpOverload, OpOverloadPacket)):
        return op._op
    if isinstance(op, str):
        ns, name = op.split("::")
        d = _OPS.get((ns, name.split(".")[0]))
        if d is not None:
            return d
    raise ValueError(f"{op} is not a custom op defined with torch.library.custom_op "
                     "(torch.library.Library/define are not supported in Kiln)")


def register_fake(op, fn=None, /, *, lib=None, _stacklevel=1):
    return _lookup(op).register_fake(fn) if fn is not None else _lookup(op).register_fake


def register_autograd(op, backward, /, *, setup_context=None, lib=None):
    _lookup(op).register_autograd(backward, setup_context=setup_context)


def register_kernel(op, device_types, func=None, /, *, lib=None):
    return _lookup(op).register_kernel(device_types, func)


DEFAULT_TEST_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor",
                      "test_aot_dispatch_dynamic")


def _clone_args(args, dtype=None):
    def c(a):
        if isinstance(a, Tensor):
            t = a.detach().clone()
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            return t.requires_grad_(a.requires_grad)
        if isinstance(a, (list, tuple)):
            return type(a)(c(b) for b in a)
        return a
    return tuple(c(a) for a in args)


def _flat_out(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def opcheck(op, args, kwargs=None, *, test_utils=DEFAULT_TEST_UTILS, raise_exception=True,
            atol=None, rtol=None):
    """The checks that apply in Kiln: test_schema (only declared arguments change),
    test_autograd_registration (registered gradients match finite differences, float64),
    test_faketensor (the fake impl gives the real output's shapes and dtypes),
    test_aot_dispatch_dynamic (compile() of the op equals eager). Returns {test: "SUCCESS"}."""
    import numpy as np
    d = _lookup(op)
    kwargs = kwargs or {}
    if isinstance(test_utils, str):
        test_utils = (test_utils,)
    result = {}

    def fail(test, msg):
        e = OpCheckError(f"opcheck(op, ...): {test} failed with {msg}")
        if raise_exception:
            raise e
        result[test] = e

    full = d._bind(tuple(args), kwargs)
    names = list(d._sig.parameters)
    for test in test_utils:
        if test not in DEFAULT_TEST_UTILS:
            raise ValueError(f"test_utils must be a subset of {DEFAULT_TEST_UTILS}, got {test}")
        result[test] = "SUCCESS"
        if test == "test_schema":
            a = _clone_args(full)
            before = [[t.detach().cpu().numpy().copy() for t in _tensors((x,))] for x in a]
            d(*a)
            for name, x, b in zip(names, a, before):
                if name in d._mutates:
                    continue
                for t, v in zip(_tensors((x,)), b):
                    if not np.array_equal(t.detach().cpu().numpy(), v, equal_nan=True):
                        fail(test, f"Argument {name} is not defined as mutable but was "
                                   "mutated")
        elif test == "test_faketensor":
            if d._fake_fn is None:
                fail(test, f"There was no fake impl registered for {d}. This is necessary for "
                           f"torch.compile/export/fx tracing to work. Please use "
                           f"`{d._name}.register_fake` to add an fake impl.")
                continue
            from .autograd import no_grad
            with no_grad():
                real = _flat_out(d(*_clone_args(full)))
                fake = _flat_out(d._fake_fn(*_clone_args(full)))
            if len(real) != len(fake):
                fail(test, f"the fake impl returned {len(fake)} outputs, the op {len(real)}")
                continue
            for i, (r, f) in enumerate(zip(real, fake)):
                if isinstance(r, Tensor) and (not isinstance(f, Tensor) or r.shape != f.shape or
                                              r.dtype != f.dtype):
                    fail(test, f"output {i}: the op returned shape {tuple(r.shape)} dtype "
                               f"{r.dtype} but the fake impl returned "
                               f"{(tuple(f.shape), f.dtype) if isinstance(f, Tensor) else f}")
        elif test == "test_autograd_registration":
            if not any(t.requires_grad for t in _tensors(full)):
                continue
            if d._backward_fn is None:
                fail(test, f"{d._qualname} has inputs that require grad but no autograd "
                           "formula was registered (use register_autograd)")
                continue
            from .autograd.gradcheck import gradcheck
            from . import float64
            a = _clone_args(full, float64)
            pos = [i for i, x in enumerate(a) if isinstance(x, Tensor) and x.requires_grad]

            def f(*ts):
                b = list(a)
                for i, t in zip(pos, ts):
                    b[i] = t
                return d(*b)
            try:
                gradcheck(f, tuple(a[i] for i in pos))
            except Exception as e:
                fail(test, f"the registered backward does not match finite differences: {e}")
        else:
            from ._compile import compile as _compile
            eager = _flat_out(d(*_clone_args(full)))
            comp = _flat_out(_compile(lambda *x: d(*x))(*_clone_args(full)))
            for r, c in zip(eager, comp):
                if isinstance(r, Tensor) and not np.allclose(
                        r.detach().cpu().numpy(), c.detach().cpu().numpy(), equal_nan=True,
                        atol=atol or 1e-6, rtol=rtol or 1e-5):
                    fail(test, "compile() of the op differs from eager")
    return result
