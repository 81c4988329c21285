"""torch.library: Python custom operators (custom_op, register_fake, register_autograd,
register_kernel, register_autocast, register_vmap, opcheck, infer_schema, triton_op and
wrap_triton) and the torch.ops namespace that finds them. Not here: get_ctx (Kiln has no fake
tensors), get_kernel (no dispatch key sets), register_torch_dispatch (no __torch_dispatch__).

A custom op runs its Python function on real tensors (the body may go through NumPy). Under
compile() it is a graph break: its tensor arguments are made concrete, it runs eagerly, and
tracing goes on after it (fullgraph=True raises). The register_fake rule serves opcheck."""
import collections.abc
import inspect
import typing
import warnings
import weakref

from ._dispatch import STATE
from ._op_schema import parse_schema as _parse_schema
from .amp.autocast_mode import _first_device
from .tensor import Tensor
from runtime import dtypes as _dt
from runtime.device import Device as _Device

_OPS = {}       # (namespace, name) -> {overload name: CustomOpDef}


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
    """torch.ops.ns.name.overload: one schema of an operator."""
    def __init__(self, op):
        self._op = op
        self._overloadname = op._overload
        self.namespace = op._namespace
        self.__name__ = f"{op._name}.{op._overload}"

    def __call__(self, *args, **kwargs):
        return self._op(*args, **kwargs)

    @property
    def _schema(self):
        return self._op._fschema

    @property
    def overloadpacket(self):
        return getattr(getattr(ops, self.namespace), self._op._name)

    def name(self):
        o = self._overloadname
        return self._op._qualname + ("" if o == "default" else f".{o}")

    def __repr__(self):
        return f"{self.namespace}.{self.__name__}"


class OpOverloadPacket:
    """torch.ops.ns.name: calling it picks the first overload whose schema the arguments
    match, as PyTorch's overload resolution does."""
    def __init__(self, ns, name, overloads):
        self._ns, self._name, self._overloads = ns, name, overloads
        self._qualified_op_name = f"{ns}::{name}"
        self.__name__ = name

    def __getattr__(self, ovl):
        if ovl.startswith("__"):
            raise AttributeError(ovl)
        op = self._overloads.get(ovl)
        if op is None:
            raise AttributeError(f"The underlying op of '{self._ns}.{self._name}' has no "
                                 f"overload name '{ovl}'")
        return op._opoverload

    def __call__(self, *args, **kwargs):
        ovls = list(self._overloads.values())
        if len(ovls) == 1:
            return ovls[0](*args, **kwargs)
        errors = []
        for op in ovls:
            try:
                op._fschema.bind(args, kwargs)
            except RuntimeError as e:
                errors.append(str(e))
                continue
            return op(*args, **kwargs)
        raise RuntimeError("Overloaded torch operator invoked from Python failed to match any "
                           "schema:\n" + "\n\n".join(errors) + "\n\n")

    def overloads(self):
        return list(self._overloads)

    def __repr__(self):
        return f"{self._ns}.{self._name}"


class _OpNamespace:
    def __init__(self, name):
        self.name = name

    def __getattr__(self, op):
        if op.startswith("__"):
            raise AttributeError(op)
        d = _OPS.get((self.name, op))
        if not d:
            raise AttributeError(f"'_OpNamespace' '{self.name}' object has no attribute '{op}'")
        return OpOverloadPacket(self.name, op, d)


class _Ops:
    """torch.ops: torch.ops.<namespace>.<op> for the custom ops defined so far."""
    def __getattr__(self, ns):
        if ns.startswith("__"):
            raise AttributeError(ns)
        if ns == "aten":                # the overloads torch.export records
            from .export._aten import _ensure
            return _ensure()
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


# dispatch key -> the kernel slot it fills: device types, the composite kernels (any device;
# the implicit one runs under autograd), the autograd kernel, the fake (Meta) rule
_KEY_SLOT = {"CPU": "cpu", "CUDA": "cuda", "CompositeExplicitAutograd": "explicit",
             "CompositeExplicitAutogradNonFunctional": "explicit",
             "CompositeImplicitAutograd": "implicit", "Autograd": "autograd",
             "AutogradCPU": "autograd", "AutogradCUDA": "autograd", "Meta": "meta"}
# accepted but never reached in Kiln (other backends, functorch, tracing layers)
_OTHER_KEYS = {"XLA", "MPS", "XPU", "HPU", "Lazy", "MTIA", "PrivateUse1", "AutogradXLA",
               "AutogradMPS", "AutogradPrivateUse1", "Python", "FuncTorchBatched",
               "BackendSelect", "Functionalize", "ADInplaceOrView", "AutocastCPU",
               "AutocastCUDA", "SparseCPU", "SparseCUDA", "QuantizedCPU", "NestedTensorCPU",
               "Tracer", "Conjugate", "Negative", "ZeroTensor", "Batched", "VmapMode"}
_DEVICE_KEY = {"cpu": "CPU", "cuda": "CUDA", "interpret": "CUDA"}


class _VmapInfo:
    """torch.library's VmapInfo: what a vmap rule learns about the vmap level it runs in."""
    def __init__(self, batch_size, randomness):
        self.batch_size, self.randomness = batch_size, randomness

    def __repr__(self):
        return f"VmapInfo(batch_size={self.batch_size}, randomness='{self.randomness}')"


class CustomOpDef:
    """One operator overload: its schema, its kernels by slot (see _KEY_SLOT), and its autograd
    and fake rules. custom_op makes one from an annotated function; Library.define from a
    schema string (kernels come later through impl)."""
    def __init__(self, namespace, name, schema, fn, mutates_args, device_types,
                 fschema=None, overload="default"):
        self._namespace, self._name, self._overload = namespace, name, overload
        self._qualname = f"{namespace}::{name}"
        self._schema = schema
        self._fschema = fschema or _parse_schema(self._qualname + schema)
        self._init_fn = fn
        self._from_library = fn is None
        self._mutates = tuple(a.name for a in self._fschema.arguments if a.is_write)
        self._kernels = {}
        if fn is not None:
            if device_types is None:
                self._kernels["explicit"] = fn
            else:
                for d in ([device_types] if isinstance(device_types, str) else device_types):
                    self._kernels[d] = fn
        self._fake_fn = None
        self._backward_fn = None
        self._setup_context_fn = None
        self._autocast_dtype = {}      # autocast device type -> the dtype inputs are cast to
        self._vmap_fn = None
        self._opoverload = OpOverload(self)
        self.__name__ = name
        self.__doc__ = fn.__doc__ if fn is not None else None

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

    def register_vmap(self, func=None, /):
        """func(info, in_dims, *args) -> (output, out_dims): the op's batching rule under
        torch.vmap; args hold the batch at in_dims (None: not batched)."""
        def reg(f):
            self._vmap_fn = f
            return f
        return reg if func is None else reg(func)

    def _vmap_call(self, args):
        from .func import _batched
        from .func.vmap import LEVELS
        lvl, B, randomness = LEVELS[-1]
        phys, dims = [], []
        for a in args:
            if isinstance(a, (list, tuple)) and any(isinstance(b, Tensor) for b in a):
                u = [_batched.unwrap(b, lvl) for b in a]
                phys.append(type(a)(v for v, _ in u))
                dims.append([d for _, d in u])
            else:
                v, d = _batched.unwrap(a, lvl)
                phys.append(v)
                dims.append(d)
        if all(d is None or isinstance(d, list) and all(e is None for e in d) for d in dims):
            return None
        out, out_dims = self._vmap_fn(_VmapInfo(B, randomness), tuple(dims), *phys)
        multi = isinstance(out, (tuple, list))
        outs = list(out) if multi else [out]
        od = list(out_dims) if isinstance(out_dims, (tuple, list)) else [out_dims] * len(outs)
        if len(od) != len(outs):
            raise ValueError(f"{self._qualname}: the vmap rule returned {len(outs)} outputs "
                             f"but {len(od)} out_dims")
        res = [o if d is None or not isinstance(o, Tensor) else _batched.make(o, d % o.dim(), lvl)
               for o, d in zip(outs, od)]
        return type(out)(res) if multi else res[0]

    def register_autocast(self, device_type, cast_inputs, /):
        """Inside an autocast region of device_type, the op's floating inputs on that device
        (not float64) are cast to cast_inputs and it runs with autocast off."""
        from .amp.autocast_mode import is_autocast_available
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if not is_autocast_available(device_type):
            raise ValueError(f"Device type '{device_type}' does not support autocast.")
        self._autocast_dtype.setdefault(device_type, cast_inputs)     # (the first one stays)

    def _set_impl(self, key, fn):
        slot = _KEY_SLOT.get(key)
        if slot is None:
            return                  # a backend Kiln has no device for
        if slot == "meta":
            self._fake_fn = fn
            return
        if slot in self._kernels:
            warnings.warn(f"Overriding a previously registered kernel for the same operator "
                          f"and the same dispatch key\n  operator: {self._fschema}\n"
                          f"  dispatch key: {key}", UserWarning, stacklevel=4)
        self._kernels[slot] = fn

    def _bind(self, args, kwargs):
        return tuple(self._fschema.bind(args, kwargs))

    def _kernel(self, args):
        dev = _first_device(args, {}) or "cpu"     # (the first tensor's, as autocast picks)
        k = self._kernels
        # the interpret device runs the GPU code path: it takes the cuda kernel
        fn = k.get(dev) or (dev == "interpret" and k.get("cuda")) or k.get("explicit") or \
            k.get("implicit")
        if fn:
            return fn
        if self._from_library:
            name = self._opoverload.name()
            have = sorted({key for key, s in _KEY_SLOT.items() if s in k} |
                          ({"Meta"} if self._fake_fn else set()))
            raise NotImplementedError(
                f"Could not run '{name}' with arguments from the '{_DEVICE_KEY.get(dev, dev)}' "
                "backend. This could be because the operator doesn't exist for this backend, "
                f"or was omitted during the selective/custom build process (if using custom "
                f"build). '{name}' is only available for these backends: [{', '.join(have)}].")
        raise NotImplementedError(f"{self._qualname}: no kernel registered for device type "
                                  f"'{dev}' (registered: {sorted(self._kernels)})")

    def _call_kernel(self, fn, args):
        # the schema's keyword-only arguments go to the kernel by name
        pos, kw = [], {}
        for a, v in zip(self._fschema.arguments, args):
            if a.kwarg_only:
                kw[a.name] = v
            else:
                pos.append(v)
        return fn(*pos, **kw)

    def _run(self, args, detach=True):
        # the kernel sees tensors below autograd (as in torch): x.numpy() works on them
        def det(a):
            if isinstance(a, Tensor):
                return a.detach()
            if isinstance(a, (list, tuple)):
                return type(a)(det(b) for b in a)
            return a
        fn = self._kernel(args)
        written = [(t, t._version) for a, v in zip(self._fschema.arguments, args) if a.is_write
                   for t in _tensors((v,))]
        if fn is self._kernels.get("implicit"):
            detach = False          # a composite of differentiable ops: autograd sees them
        out = self._call_kernel(fn, [det(a) for a in args] if detach else args)
        ins = {id(t._base if t._base is not None else t) for t in _tensors(args)}
        for o in (out if isinstance(out, (tuple, list)) else (out,)):
            if not self._from_library and isinstance(o, Tensor) and \
                    id(o._base if o._base is not None else o) in ins:
                raise RuntimeError(f"{self._name} (with implementation in "
                                   f"{inspect.getmodule(self._init_fn)}): The output of this "
                                   "custom operator (1) must not also be an input to this "
                                   "custom operator and (2) may not alias any inputs to this "
                                   "custom operator or other returns. The most common way to "
                                   "trigger this error is if we have y = custom_op(x) and y "
                                   "and x are the same Tensor. Please instead return a clone "
                                   "of the offending output tensor(s) (e.g. return x.clone()) "
                                   "or refactor the custom operator to not return y.")
        for t, v in written:
            if t._version == v:     # (torch bumps a declared mutated argument's version once)
                t._bump()
        return self._aliased_returns(out, args)

    def _aliased_returns(self, out, args):
        # a return declared as an argument's alias (Tensor(a!) of an out= overload) is that
        # argument itself, as in PyTorch
        alias = {a.alias: v for a, v in zip(self._fschema.arguments, args) if a.alias}
        rets = self._fschema.returns
        if not alias or not any(r.alias in alias for r in rets):
            return out
        if len(rets) == 1:
            return alias.get(rets[0].alias, out)
        return type(out)(alias.get(r.alias, o) for r, o in zip(rets, out))

    def __call__(self, *args, **kwargs):
        return self._invoke(self._bind(args, kwargs))

    def _invoke(self, args):
        """Run on arguments already bound to the schema (all of them, in schema order)."""
        if self._vmap_fn is not None:
            from .func.vmap import LEVELS
            if LEVELS:
                r = self._vmap_call(args)
                if r is not None:
                    return r
        if self._autocast_dtype:
            from .amp import autocast_mode as am
            dev = am._AC_TYPE.get(_first_device(args, {}))
            to = self._autocast_dtype.get(dev)
            if to is not None and am.is_autocast_enabled(dev):
                with am.autocast(dev, enabled=False):
                    return self._invoke(tuple(am._cast_inputs(list(args), dev, to)))
        tr = STATE.tracer
        if tr is not None:
            # an opaque Python call: the region so far runs, then the op runs on real tensors
            tr.make_concrete(_tensors(args), f"custom op {self._qualname}")
        needs = STATE.grad_enabled and any(t.requires_grad for t in _tensors(args))
        if not needs:
            return self._run(args)
        if self._kernels.get("autograd") is fallthrough_kernel:
            return self._run(args)          # declared not differentiable
        if self._kernels.get("autograd") is not None:
            return self._call_kernel(self._kernels["autograd"], args)
        if self._backward_fn is None and self._from_library:
            return self._untracked_autograd(args)
        return self._autograd_fn().apply(*args)

    def _untracked_autograd(self, args):
        # PyTorch's fallback for an op with no autograd kernel: the kernel's own ops are
        # recorded (a composite kernel is exact), and backward warns that nothing checked it
        out = self._run(args, detach=False)
        msg = (f"{self._qualname}: an autograd kernel was not registered to the Autograd key(s) "
               "but we are trying to backprop through it. This may lead to silently incorrect "
               "behavior. This behavior is deprecated and will be removed in a future version "
               "of PyTorch. If your operator is differentiable, please ensure you have "
               "registered an autograd kernel to the correct Autograd key (e.g. "
               "DispatchKey::Autograd, DispatchKey::CompositeImplicitAutograd). If your "
               "operator is not differentiable, or to squash this warning and use the previous "
               "behavior, please register torch::CppFunction::makeFallthrough() to "
               "DispatchKey::Autograd.")
        if self._kernels.get("implicit") is None:
            for o in _tensors(out if isinstance(out, (tuple, list)) else (out,)):
                if o.grad_fn is not None:
                    o.grad_fn.register_prehook(lambda g: warnings.warn(msg, UserWarning))
        return out

    def _autograd_fn(self):
        from .autograd.function import Function
        op = self

        def backward(ctx, *grads):
            if op._backward_fn is None:
                raise RuntimeError(f"Trying to backward through {op._namespace}.{op._name}."
                                   f"{op._overload} but no autograd formula was registered. "
                                   "Please use register_autograd to add one.")
            return op._backward_fn(ctx, *grads)

        def setup_context(ctx, inputs, output):
            if op._setup_context_fn is not None:
                op._setup_context_fn(ctx, inputs, output)
        # named before the class is made: its backward node takes the name then (as torch's)
        return type(f"GeneratedBackwardFor_{self._namespace}_{self._name}_{self._overload}",
                    (Function,), {"forward": staticmethod(lambda *args: op._run(args)),
                                  "setup_context": staticmethod(setup_context),
                                  "backward": staticmethod(backward)})


def custom_op(name, fn=None, /, *, mutates_args, device_types=None, schema=None):
    """Decorator: the annotated Python function becomes the operator `name`
    ("namespace::opname"), also reachable as torch.ops.namespace.opname."""
    def inner(f):
        ns, opname = name.split("::")
        s = schema if schema is not None else infer_schema(f, mutates_args=mutates_args)
        op = CustomOpDef(ns, opname, s, f, mutates_args, device_types)
        _OPS[(ns, opname)] = {"default": op}
        return op
    return inner if fn is None else inner(fn)


# ---- user Triton kernels ---------------------------------------------------------------------

_FAKE_LAUNCH = [0]      # > 0 while a triton_op's function runs as its fake impl: no launches


class _TritonLauncher:
    """What wrap_triton returns: kernel[grid](*args) launches the kernel with Kiln tensors as
    its pointer arguments. cpu and interpret tensors run through Triton's interpreter on their
    host memory (in place); cuda tensors go to the compiled kernel."""

    def __init__(self, kernel):
        self.kernel = kernel

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.run(*args, grid=grid, **kwargs)

    def run(self, *args, grid, **kwargs):
        if _FAKE_LAUNCH[0]:
            return None
        devs = {t._device.type for t in _tensors((*args, *kwargs.values()))}
        if devs - {"cpu", "interpret"}:
            if devs & {"cpu", "interpret"}:
                raise RuntimeError(f"wrap_triton: a kernel's tensor arguments must be on one "
                                   f"device type, got {sorted(devs)}")
            return self.kernel[grid](*args, **kwargs)
        return _interpret_launch(self.kernel, grid, args, kwargs)


def _interpreted(kernel):
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction
    if isinstance(kernel, InterpretedFunction):
        return kernel, {}
    f = getattr(kernel, "_kiln_interp", None)
    if f is None:
        base = kernel.fn if type(kernel).__name__ == "Autotuner" else kernel
        py = base.fn if isinstance(base, (JITFunction, InterpretedFunction)) else base
        f = InterpretedFunction(py)
        kernel._kiln_interp = f
    # an autotuned kernel runs with its first config's meta-parameters
    cfg = kernel.configs[0].kwargs if type(kernel).__name__ == "Autotuner" else {}
    return f, cfg


def _interpret_launch(kernel, grid, args, kwargs):
    import os
    from runtime.interpret import HostTensor, fix_interpreter
    fix_interpreter()

    def host(a):
        return HostTensor(a._data, a.dtype) if isinstance(a, Tensor) else a
    f, cfg = _interpreted(kernel)
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"        # (read when the kernel calls a jit helper)
    try:
        return f[grid](*[host(a) for a in args],
                       **{**cfg, **{k: host(v) for k, v in kwargs.items()}})
    finally:
        if old is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = old


def wrap_triton(triton_kernel, /):
    """The launcher of a @triton.jit (or @triton.autotune) kernel for use inside a triton_op:
    wrap_triton(kernel)[grid](*args)."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction
    if not isinstance(triton_kernel, (JITFunction, InterpretedFunction)) and \
            type(triton_kernel).__name__ != "Autotuner":
        raise RuntimeError("wrap_triton only works on functions annotated with triton.jit or "
                           "triton.autotune")
    return _TritonLauncher(triton_kernel)


def triton_op(name, fn=None, /, *, mutates_args, schema=None):
    """custom_op for a function that launches Triton kernels through wrap_triton; its fake
    impl is the function itself with the launches skipped. Under compile() it is a graph
    break like any custom op."""
    def dec(f):
        op = custom_op(name, f, mutates_args=mutates_args,
                       schema=schema if schema is not None else
                       infer_schema(f, mutates_args=mutates_args))

        def fake(*args, **kwargs):
            _FAKE_LAUNCH[0] += 1
            try:
                return f(*args, **kwargs)
            finally:
                _FAKE_LAUNCH[0] -= 1
        op.register_fake(fake)
        return op
    return dec if fn is None else dec(fn)


def fallthrough_kernel():
    """Registered to the Autograd key: the op is not differentiable (no warning, no grad)."""
    raise NotImplementedError("fallthrough_kernel() should never be called.")


def _caller():
    import sys
    f = sys._getframe(2)
    return f"{f.f_code.co_filename}:{f.f_lineno}"


_DEF_NAMESPACES = {}    # namespace -> where its DEF Library was made
_PENDING = {}           # (ns, name, overload) -> [(dispatch key, fn)]: impl before define


class Library:
    """torch.library.Library(ns, kind): kind "DEF" defines the namespace's operators (one
    per namespace), "FRAGMENT" adds more, "IMPL" only registers kernels. Its registrations
    go away with it (when it is garbage collected or _destroy()ed), as in PyTorch."""
    def __init__(self, ns, kind, dispatch_key=""):
        if kind not in ("IMPL", "DEF", "FRAGMENT"):
            raise ValueError(f"Unsupported kind: {kind}")
        self._where = _caller()
        if kind == "DEF":
            if ns in _DEF_NAMESPACES:
                raise RuntimeError(
                    f"Only a single TORCH_LIBRARY can be used to register the namespace {ns}; "
                    "please put all of your definitions in a single TORCH_LIBRARY block.  If "
                    "you were trying to specify implementations, consider using "
                    "TORCH_LIBRARY_IMPL (which can be duplicated).  If you really intended to "
                    "define operators for a single namespace in a distributed way, you can use "
                    "TORCH_LIBRARY_FRAGMENT to explicitly indicate this.  Previous registration "
                    f"of TORCH_LIBRARY was registered at {_DEF_NAMESPACES[ns]}; latest "
                    f"registration was registered at {self._where}")
            _DEF_NAMESPACES[ns] = self._where
        self.ns, self.kind, self.dispatch_key = ns, kind, dispatch_key
        self._defs, self._impls = [], []
        self._finalizer = weakref.finalize(self, _unregister, ns, kind, self._defs,
                                           self._impls)

    def __repr__(self):
        return f"Library(kind={self.kind}, ns={self.ns}, dispatch_key={self.dispatch_key})>"

    def define(self, schema, alias_analysis="", *, tags=()):
        fs = _parse_schema(schema)
        name = fs.name.split("::")[-1]
        if self.kind == "IMPL":
            raise RuntimeError(f'def("{name}"): Cannot define an operator inside of a '
                               "TORCH_LIBRARY_IMPL block.  All def()s should be placed in the "
                               "(unique) TORCH_LIBRARY block for their namespace.  (Error "
                               f"occurred while processing TORCH_LIBRARY_IMPL block at "
                               f"{self._where})")
        fs.name = f"{self.ns}::{name}"
        ovl = fs.overload_name or "default"
        old = _OPS.get((self.ns, name), {}).get(ovl)
        if old is not None:
            raise RuntimeError(f"Tried to register an operator ({fs}) with the same name and "
                               "overload name multiple times. Each overload's schema should "
                               "only be registered with a single call to def(). Duplicate "
                               f"registration: registered at {self._where}. Original "
                               f"registration: registered at {old._where}")
        op = CustomOpDef(self.ns, name, str(fs)[len(fs.name) + len(fs.overload_name) +
                                                  bool(fs.overload_name):],
                         None, (), None, fschema=fs, overload=ovl)
        op._where = self._where
        _OPS.setdefault((self.ns, name), {})[ovl] = op
        self._defs.append((self.ns, name, ovl))
        for key, fn in _PENDING.pop((self.ns, name, ovl), ()):
            op._set_impl(key, fn)
        return name

    def impl(self, op_name, fn, dispatch_key="", *, with_keyset=False, allow_override=False):
        if isinstance(op_name, OpOverload):
            ns, name, ovl = op_name.namespace, op_name._op._name, op_name._overloadname
        else:
            ns, _, rest = op_name.rpartition("::")
            name, _, ovl = rest.partition(".")
            ns, ovl = ns or self.ns, ovl or "default"
        key = dispatch_key or self.dispatch_key or "CompositeImplicitAutograd"
        if key not in _KEY_SLOT and key not in _OTHER_KEYS:
            raise RuntimeError(f"could not parse dispatch key: {key}")
        if fn is fallthrough_kernel and _KEY_SLOT.get(key) != "autograd":
            return
        op = _OPS.get((ns, name), {}).get(ovl)
        if op is None:
            _PENDING.setdefault((ns, name, ovl), []).append((key, fn))
        else:
            op._set_impl(key, fn)
        self._impls.append((ns, name, ovl, key, fn))

    def _destroy(self):
        self._finalizer()


def _unregister(ns, kind, defs, impls):
    for ons, name, ovl, key, fn in impls:
        op = _OPS.get((ons, name), {}).get(ovl)
        slot = _KEY_SLOT.get(key)
        if op is not None and op._kernels.get(slot) is fn:
            del op._kernels[slot]
        elif op is not None and slot == "meta" and op._fake_fn is fn:
            op._fake_fn = None
    for ons, name, ovl in defs:
        d = _OPS.get((ons, name), {})
        d.pop(ovl, None)
        if not d:
            _OPS.pop((ons, name), None)
    if kind == "DEF":
        _DEF_NAMESPACES.pop(ns, None)


_keep_alive = []        # the FRAGMENT libraries torch.library.define makes


def define(qualname, schema, *, lib=None, tags=()):
    """torch.library.define("ns::name", "(Tensor x) -> Tensor"): a new operator; its
    kernels come from torch.library.impl (or Library.impl)."""
    ns, name = qualname.split("::")
    if lib is None:
        lib = Library(ns, "FRAGMENT")
        _keep_alive.append(lib)
    lib.define(name + schema, tags=tags)


def impl(qualname, types, func=None, *, lib=None):
    """torch.library.impl("ns::name", "cpu" | ["cpu", "cuda"] | dispatch key)(fn) registers
    a kernel; the older form impl(lib, "name", dispatch_key)(fn) too."""
    if isinstance(qualname, Library):
        lib_, name, key = qualname, types, func or ""
        return lambda f: (lib_.impl(name, f, key), f)[1]
    keys = [types] if isinstance(types, str) else list(types)
    keys = [_DEVICE_KEY.get(k, k) if k in ("cpu", "cuda") else k for k in keys]

    def reg(f):
        ns = qualname.split("::")[0]
        use = lib
        if use is None:
            use = Library(ns, "FRAGMENT")
            _keep_alive.append(use)
        for k in keys:
            use.impl(qualname, f, k)
        return f
    return reg if func is None else reg(func)


def _lookup(op):
    if isinstance(op, CustomOpDef):
        return op
    if isinstance(op, OpOverload):
        return op._op
    if isinstance(op, OpOverloadPacket):
        op = op._qualified_op_name
    if isinstance(op, str):
        ns, name = op.split("::")
        name, _, ovl = name.partition(".")
        d = _OPS.get((ns, name), {}).get(ovl or "default")
        if d is not None:
            return d
    raise ValueError(f"{op} is not an operator defined with torch.library.custom_op, "
                     "torch.library.define or Library.define")


def impl_abstract(qualname, func=None, *, lib=None, _stacklevel=1):
    warnings.warn("`torch.library.impl_abstract` was renamed to `torch.library.register_fake`. "
                  "Please use that instead; we will remove `torch.library.impl_abstract` in a "
                  "future version of PyTorch.", FutureWarning, stacklevel=2)
    return register_fake(qualname, func, lib=lib)


def register_fake(op, fn=None, /, *, lib=None, _stacklevel=1):
    return _lookup(op).register_fake(fn) if fn is not None else _lookup(op).register_fake


def register_autograd(op, backward, /, *, setup_context=None, lib=None):
    _lookup(op).register_autograd(backward, setup_context=setup_context)


def register_kernel(op, device_types, func=None, /, *, lib=None):
    return _lookup(op).register_kernel(device_types, func)


def register_vmap(op, func=None, /, *, lib=None):
    """Registers func(info, in_dims, *args) -> (output, out_dims) as the op's vmap rule."""
    if not isinstance(op, (str, OpOverload, CustomOpDef)):
        raise ValueError(f"register_vmap({op}): got unexpected type for op: {type(op)}")
    return _lookup(op).register_vmap(func)


def register_autocast(op, device_type, cast_inputs, /, *, lib=None):
    """Under torch.autocast(device_type), the op's floating inputs are cast to cast_inputs
    and the op runs with autocast off."""
    if not isinstance(op, (str, OpOverload, CustomOpDef)):
        raise ValueError(f"register_autocast({op}): got unexpected type for op: {type(op)}")
    _lookup(op).register_autocast(device_type, cast_inputs)


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
    names = [a.name for a in d._fschema.arguments]
    for test in test_utils:
        if test not in DEFAULT_TEST_UTILS:
            raise ValueError(f"test_utils must be a subset of {DEFAULT_TEST_UTILS}, got {test}")
        result[test] = "SUCCESS"
        if test == "test_schema":
            a = _clone_args(full)
            before = [[t.detach().cpu().numpy().copy() for t in _tensors((x,))] for x in a]
            d._invoke(a)
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
                real = _flat_out(d._invoke(_clone_args(full)))
                fake = _flat_out(d._call_kernel(d._fake_fn, _clone_args(full)))
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
                return d._invoke(b)
            try:
                gradcheck(f, tuple(a[i] for i in pos))
            except Exception as e:
                fail(test, f"the registered backward does not match finite differences: {e}")
        else:
            from ._compile import compile as _compile
            eager = _flat_out(d._invoke(_clone_args(full)))
            comp = _flat_out(_compile(lambda *x: d._invoke(x))(*_clone_args(full)))
            for r, c in zip(eager, comp):
                if isinstance(r, Tensor) and not np.allclose(
                        r.detach().cpu().numpy(), c.detach().cpu().numpy(), equal_nan=True,
                        atol=atol or 1e-6, rtol=rtol or 1e-5):
                    fail(test, "compile() of the op differs from eager")
    return result
