"""torch.autocast: thread-local autocast state and the op hooks that apply framework.amp.policy.

Every op named in the policy table is a Python function of Kiln (composites such as linear or
cross_entropy, and thin ones such as exp). While some thread has autocast enabled, each such
function is replaced, wherever the framework binds it (module globals, Tensor methods, static
methods, torch.linalg), by a wrapper that reads this thread's state, casts the floating
arguments per the table with the recorded `cast` op (so gradients flow back to float32
parameters in their own dtype, and compile() traces the casts into its graph), and runs the
op with autocast excluded inside it. When no thread has autocast enabled the original
functions are bound again: programs outside autocast pay nothing per op.
"""
import contextlib
import functools
import sys
import threading
import types
import warnings
from weakref import ref as _weakref

from runtime import dtypes as dt
from .. import _dispatch
from .policy import POLICY, PRIMS

# autocast device type of a Kiln device type: 'interpret' stands in for cuda
_AC_TYPE = {"cpu": "cpu", "cuda": "cuda", "interpret": "cuda"}
_TORCH_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                "privateuseone", "interpret")


class _State(threading.local):
    """Per thread, as torch's: a new thread starts with autocast off."""

    def __init__(self):
        self.enabled = {"cpu": False, "cuda": False}
        self.dtype = {"cpu": dt.bfloat16, "cuda": dt.float16}
        self.on = False            # any device type enabled here
        self.cache_enabled = True
        self.nesting = 0
        self.cache = {}
        self.excluded = 0          # >0 while a listed op's body runs (torch's exclude guard)


_tls = _State()
_lock = threading.Lock()
_active = 0                        # threads with autocast enabled (hooks bound while > 0)


def _ac_type(device_type, fn):
    if not isinstance(device_type, str):
        raise TypeError(f"{fn}(): argument 'device_type' must be str, not "
                        f"{type(device_type).__name__}")
    t = device_type.partition(":")[0]
    if t not in _TORCH_TYPES:
        raise RuntimeError("Expected one of cpu, cuda, interpret, ipu, xpu, mkldnn, opengl, "
                           "opencl, ideep, hip, ve, fpga, maia, xla, lazy, vulkan, mps, meta, "
                           f"hpu, mtia, privateuseone device type at start of device string: "
                           f"{device_type}")
    return _AC_TYPE.get(t)


def is_autocast_available(device_type):
    """Whether autocast supports this device type (Kiln: cpu, cuda and interpret)."""
    return _ac_type(device_type, "is_autocast_available") is not None


def _known(device_type, fn):
    t = _ac_type(device_type, fn)
    if t is None:
        raise RuntimeError(f"{fn}(): autocast is not available for device type "
                           f"'{device_type}' in Kiln (cpu, cuda, interpret)")
    return t


def is_autocast_enabled(device_type=None):
    """torch.is_autocast_enabled: with no argument, the cuda state (torch's legacy form)."""
    return _tls.enabled[_known(device_type or "cuda", "is_autocast_enabled")]


def get_autocast_dtype(device_type):
    return _tls.dtype[_known(device_type, "get_autocast_dtype")]


def set_autocast_dtype(device_type, dtype):
    if not isinstance(dtype, dt.DType):
        raise TypeError(f"set_autocast_dtype(): argument 'dtype' (position 2) must be "
                        f"torch.dtype, not {type(dtype).__name__}")
    _tls.dtype[_known(device_type, "set_autocast_dtype")] = dtype


def set_autocast_enabled(device_type, enabled=None):
    """set_autocast_enabled(device_type, enabled), or the legacy set_autocast_enabled(enabled)
    for cuda."""
    if enabled is None and isinstance(device_type, bool):
        device_type, enabled = "cuda", device_type
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autocast_enabled(): argument 'enabled' (position 2) must be bool, "
                        f"not {type(enabled).__name__}")
    t = _known(device_type, "set_autocast_enabled")
    st = _tls
    st.enabled[t] = enabled
    was, st.on = st.on, st.enabled["cpu"] or st.enabled["cuda"]
    if was != st.on:
        _count(1 if st.on else -1)


def _legacy(old, new):
    warnings.warn(f"torch.{old} is deprecated. Please use torch.{new} instead.",
                  DeprecationWarning, stacklevel=3)


# torch's deprecated per-device forms of the functions above
def is_autocast_cpu_enabled():
    _legacy("is_autocast_cpu_enabled()", "is_autocast_enabled('cpu')")
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled):
    _legacy("set_autocast_cpu_enabled(enabled)", "set_autocast_enabled('cpu', enabled)")
    set_autocast_enabled("cpu", enabled)


def _dtype_arg(dtype):
    if not isinstance(dtype, dt.DType):
        raise TypeError(f"dtype must be a torch.dtype (got {type(dtype).__name__})")
    return dtype


def get_autocast_cpu_dtype():
    _legacy("get_autocast_cpu_dtype()", "get_autocast_dtype('cpu')")
    return get_autocast_dtype("cpu")


def set_autocast_cpu_dtype(dtype):
    _legacy("set_autocast_cpu_dtype(dtype)", "set_autocast_dtype('cpu', dtype)")
    set_autocast_dtype("cpu", _dtype_arg(dtype))


def get_autocast_gpu_dtype():
    _legacy("get_autocast_gpu_dtype()", "get_autocast_dtype('cuda')")
    return get_autocast_dtype("cuda")


def set_autocast_gpu_dtype(dtype):
    _legacy("set_autocast_gpu_dtype(dtype)", "set_autocast_dtype('cuda', dtype)")
    set_autocast_dtype("cuda", _dtype_arg(dtype))


def is_autocast_cache_enabled():
    return _tls.cache_enabled


def set_autocast_cache_enabled(enabled):
    _tls.cache_enabled = bool(enabled)


def clear_autocast_cache():
    _tls.cache.clear()


def autocast_increment_nesting():
    _tls.nesting += 1
    return _tls.nesting


def autocast_decrement_nesting():
    _tls.nesting -= 1
    return _tls.nesting


def _snapshot():
    """This thread's autocast state (enabled, dtypes, cache), as torch.utils.checkpoint records
    it in forward (_get_autocast_kwargs) to recompute under it in backward."""
    st = _tls
    return dict(st.enabled), dict(st.dtype), st.cache_enabled


@contextlib.contextmanager
def _restored(snap):
    """Run under a _snapshot()'s autocast state, then put back the current one."""
    st = _tls
    prev = _snapshot()
    st.nesting += 1
    try:
        for t in ("cpu", "cuda"):
            set_autocast_enabled(t, snap[0][t])
        st.dtype.update(snap[1])
        st.cache_enabled = snap[2]
        yield
    finally:
        st.nesting -= 1
        if st.nesting == 0:
            st.cache.clear()
        for t in ("cpu", "cuda"):
            set_autocast_enabled(t, prev[0][t])
        st.dtype.update(prev[1])
        st.cache_enabled = prev[2]


def guard_state():
    """What compile() guards on: None while autocast is off in this thread."""
    st = _tls
    if not st.on:
        return None
    return tuple((t, st.dtype[t].name) for t in ("cpu", "cuda") if st.enabled[t])


class autocast:  # noqa: N801  (torch's name)
    """torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None): a context
    manager and a decorator. Ops in framework.amp.policy run in the autocast dtype (bf16 on cpu,
    fp16 on cuda by default), or in float32, or in the widest input type."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        t = _ac_type(device_type, "autocast")
        if t is None:
            raise RuntimeError(f"User specified an unsupported autocast device_type "
                               f"'{device_type}'")
        if dtype is not None and not isinstance(dtype, dt.DType):
            raise TypeError(f"set_autocast_dtype(): argument 'dtype' (position 2) must be "
                            f"torch.dtype, not {type(dtype).__name__}")
        if not isinstance(enabled, bool):
            raise TypeError(f"set_autocast_enabled(): argument 'enabled' (position 2) must be "
                            f"bool, not {type(enabled).__name__}")
        self.device = device_type
        self._type = t
        self.fast_dtype = get_autocast_dtype(t) if dtype is None else dtype
        self._cache_enabled = is_autocast_cache_enabled() if cache_enabled is None \
            else bool(cache_enabled)
        if enabled:
            if t == "cuda":
                from .. import cuda
                from runtime import backends
                if not (backends.interpret_available() if device_type.startswith("interpret")
                        else cuda.is_available()):
                    warnings.warn("CUDA is not available or torch_xla is imported. Disabling "
                                  "autocast.", stacklevel=2)
                    enabled = False
            if enabled and self.fast_dtype not in (dt.bfloat16, dt.float16):
                name = t.upper()
                warnings.warn(f"In {name} autocast, but the target dtype is not supported. "
                              f"Disabling autocast.\n{name} Autocast only supports dtypes of "
                              f"torch.bfloat16, torch.float16 currently.", stacklevel=2)
                enabled = False
        self._enabled = enabled

    def __enter__(self):
        st = _tls
        self.prev_cache_enabled = st.cache_enabled
        self.prev = st.enabled[self._type]
        self.prev_fastdtype = st.dtype[self._type]
        set_autocast_enabled(self._type, self._enabled)
        st.dtype[self._type] = self.fast_dtype
        st.nesting += 1
        st.cache_enabled = self._cache_enabled
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        st = _tls
        st.nesting -= 1
        if st.nesting == 0:        # drop the cast cache when leaving the outermost autocast
            st.cache.clear()
        set_autocast_enabled(self._type, self.prev)
        st.dtype[self._type] = self.prev_fastdtype
        st.cache_enabled = self.prev_cache_enabled
        return False

    def __call__(self, func):
        if not callable(func):
            raise TypeError(f"autocast()(func) requires a callable, but got "
                            f"{type(func).__name__}. Did you mean to use autocast as a context "
                            f"manager? For example:\n    with torch.autocast(device_type=...):\n"
                            f"        output = model(input)")

        @functools.wraps(func)
        def decorate_autocast(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return decorate_autocast


# ---- the op hooks -------------------------------------------------------------------------------

def _count(d):
    global _active
    with _lock:
        _active += d
        if _active > 0 and not _hooks.bound:
            _hooks.bind()
        elif _active == 0 and _hooks.bound:
            _hooks.unbind()


def _first_device(args, kw):
    T = _dispatch.Tensor
    for a in (*args, *kw.values()):
        if isinstance(a, T):
            return a._device.type
        if isinstance(a, (list, tuple)):
            for x in a:
                if isinstance(x, T):
                    return x._device.type
    return None


def _eligible(a, devtype):
    # torch's is_autocast_eligible: floating, not float64, on the autocast device type
    return (isinstance(a, _dispatch.Tensor) and a._dtype.is_floating_point
            and a._dtype is not dt.float64 and _AC_TYPE.get(a._device.type) == devtype)


def _cast(a, dtype, devtype, st):
    if not _eligible(a, devtype) or a._dtype is dtype:
        return a
    from ..ops_math import cast
    # torch caches the casts of leaf parameters (a weight used several times is cast once);
    # never while tracing, where the cast belongs to the traced graph
    if (st.cache_enabled and a._rg and a._node is None and _dispatch.STATE.tracer is None):
        key = (id(a), dtype, _dispatch.STATE.grad_enabled)
        hit = st.cache.get(key)
        if hit is not None and hit[0]() is a and hit[1] == a._vcount:
            return hit[2]
        r = cast(a, dtype)
        st.cache[key] = (_weakref(a), a._vcount, r)
        return r
    return cast(a, dtype)


def _map(args, f):
    out = []
    for a in args:
        if isinstance(a, (list, tuple)) and a and isinstance(a[0], _dispatch.Tensor):
            a = type(a)(f(x) for x in a)
        else:
            a = f(a)
        out.append(a)
    return out


def _run(fn, name, entry, args, kw, st):
    """Apply `entry` (policy per device type) to one call of op `fn` and run it."""
    devtype = _AC_TYPE.get(_first_device(args, kw))
    if devtype is None or not st.enabled[devtype]:
        return fn(*args, **kw)
    kind = entry.get(devtype)
    if kind is None:
        return fn(*args, **kw)
    if kind == "banned":
        raise RuntimeError(
            "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to "
            "autocast.\n"
            "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
            "In this case, combine the two layers using torch.nn.functional."
            "binary_cross_entropy_with_logits\nor torch.nn.BCEWithLogitsLoss.  "
            "binary_cross_entropy_with_logits and BCEWithLogits are\nsafe to autocast.")
    to = None
    if kind == "lower":
        to = st.dtype[devtype]
    elif kind == "fp32" or (kind == "fp32_opt" and kw.get("dtype") is None):
        to = dt.float32
    elif kind == "fp32_pad":
        mode = kw.get("mode", args[2] if len(args) > 2 else "constant")
        to = dt.float32 if mode in ("reflect", "replicate") else None
    elif kind == "promote":
        # torch's at::autocast::prioritize: float32 wins over the autocast dtype, float64
        # operands are ignored (and left as they are), any other half type is an error
        low = to = st.dtype[devtype]
        for a in (*args, *kw.values()):
            for x in (a if isinstance(a, (list, tuple)) else (a,)):
                if not _eligible(x, devtype):
                    continue
                if to is dt.float32 or x._dtype is dt.float32:
                    to = dt.float32
                elif not (to is low and x._dtype is low):
                    raise RuntimeError(f"Unexpected floating ScalarType in "
                                       f"at::autocast::prioritize ({name} of a "
                                       f"{dt.tname(x._dtype)} tensor under {devtype} "
                                       f"autocast to {dt.tname(low)})")
    if to is not None:
        f = lambda a: _cast(a, to, devtype, st)  # noqa: E731
        args = _map(args, f)
        kw = dict(zip(kw, _map(kw.values(), f)))
    st.excluded += 1
    try:
        return fn(*args, **kw)
    finally:
        st.excluded -= 1


def _wrap(fn, name, entry):
    def op(*args, **kw):
        st = _tls
        if st.excluded or not st.on:
            return fn(*args, **kw)
        return _run(fn, name, entry, args, kw, st)
    functools.update_wrapper(op, fn)
    return op


class _Hooks:
    """The places where the framework binds each listed op, found once by identity."""

    def __init__(self):
        self.bound = False
        self.slots = None      # [(container, key, original, wrapped)]
        self.nmods = 0

    def _find(self):
        import framework
        from ..nn import functional as F
        roots = {"torch": framework, "F": F, "linalg": framework.linalg, "fft": framework.fft}
        from ..overrides import unwrap
        wrapped = {}           # id(original function) -> (original, wrapper)
        inner = {}             # the same, keyed by what a __torch_function__ wrapper wraps
        for qual, entry in POLICY.items():
            ns, _, name = qual.partition(".")
            fn = getattr(roots[ns], name, None)
            if fn is None or not callable(fn) or id(fn) in wrapped:
                continue
            wrapped[id(fn)] = (fn, _wrap(fn, name, entry))
            inner[id(unwrap(fn))] = (unwrap(fn), name, entry)
        slots = []

        def scan(container, d):
            for k, v in list(d.items()):
                f = v.__func__ if isinstance(v, staticmethod) else v
                w = wrapped.get(id(f))
                if w is not None and w[0] is f:
                    new = staticmethod(w[1]) if isinstance(v, staticmethod) else w[1]
                    slots.append((container, k, v, new))
                elif type(f) is types.FunctionType and f.__dict__.get("_tf_wrapped") and \
                        id(f.__wrapped__) in inner:
                    # a Tensor method's own __torch_function__ wrapper of a listed op
                    o, name, entry = inner[id(f.__wrapped__)]
                    if o is f.__wrapped__:
                        slots.append((container, k, v, _wrap(f, name, entry)))

        seen = set()
        for mname, mod in list(sys.modules.items()):
            if mod is None or not (mname == "framework" or mname.startswith("framework.")) \
                    or mname.startswith("framework.amp"):
                continue
            scan(mod, vars(mod))
            for v in list(vars(mod).values()):
                if isinstance(v, type) and id(v) not in seen and \
                        getattr(v, "__module__", "").startswith("framework"):
                    seen.add(id(v))
                    scan(v, dict(vars(v)))
        self.slots = slots

    def bind(self):
        # found again when framework modules were imported since (they may bind listed ops)
        n = sum(1 for k in list(sys.modules) if k.startswith("framework"))
        if self.slots is None or n != self.nmods:
            self._find()
            self.nmods = n
        for c, k, _, new in self.slots:
            setattr(c, k, new)
        _dispatch.AUTOCAST = _prim_hook
        self.bound = True

    def unbind(self):
        _dispatch.AUTOCAST = None
        for c, k, old, _ in self.slots:
            setattr(c, k, old)
        self.bound = False


def _prim_hook(p, args):
    """framework._dispatch.apply's autocast step for the primitives in policy.PRIMS."""
    entry = PRIMS.get(p.name)
    if entry is None:
        return args
    st = _tls
    if st.excluded or not st.on or _dispatch.EMIT.needs is not None:
        return args
    devtype = _AC_TYPE.get(_first_device(args, {}))
    if devtype is None or not st.enabled[devtype] or entry.get(devtype) != "lower":
        return args
    to = st.dtype[devtype]
    return tuple(_cast(a, to, devtype, st) for a in args)


_hooks = _Hooks()


# ---- custom autograd Functions under autocast -------------------------------------------------

def _cast_inputs(value, device_type, dtype):
    """torch.amp's _cast: floating tensors (not float64) on the device type become `dtype`,
    through lists, tuples and dicts."""
    if isinstance(value, _dispatch.Tensor):
        return value.to(dtype) if _eligible(value, device_type) else value
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, dict):
        return {_cast_inputs(k, device_type, dtype): _cast_inputs(v, device_type, dtype)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_inputs(v, device_type, dtype) for v in value)
    return value


def custom_fwd(fwd=None, *, device_type, cast_inputs=None):
    """Decorator for the forward of an autograd.Function: records the autocast state for
    custom_bwd; with cast_inputs, inside an autocast region, casts floating inputs on
    device_type to that dtype and runs forward with autocast off (outside a region: no-op)."""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        args[0]._dtype = get_autocast_dtype(device_type)
        if cast_inputs is None:
            args[0]._fwd_used_autocast = is_autocast_enabled(device_type)
            return fwd(*args, **kwargs)
        args[0]._fwd_used_autocast = False
        if is_autocast_enabled(device_type):
            with autocast(device_type=device_type, enabled=False):
                return fwd(*_cast_inputs(args, device_type, cast_inputs),
                           **_cast_inputs(kwargs, device_type, cast_inputs))
        return fwd(*args, **kwargs)
    return decorate_fwd


def custom_bwd(bwd=None, *, device_type):
    """Decorator for the backward of an autograd.Function: runs it with the autocast state
    its custom_fwd forward ran with."""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        with autocast(device_type=device_type, enabled=args[0]._fwd_used_autocast,
                      dtype=args[0]._dtype):
            return bwd(*args, **kwargs)
    return decorate_bwd
