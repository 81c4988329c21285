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
takes no part; the disabled state and the mode stack are process-wide, not per thread.

TorchFunctionMode (`with MyMode():`) sees every such call first, factory functions included,
with itself popped off the mode stack while its handler runs (PyTorch's order: modes, then
subclasses). Entering one installs the wrappers; code that never does pays nothing."""
import contextlib
import functools
import sys
import types as _types
import warnings

_INSTALLED = False
_DISABLED = 0           # > 0 inside DisableTorchFunctionSubclass (the default impl's func call)
_ALL_OFF = 0            # > 0 inside DisableTorchFunction: modes are off too
_MODES = []             # the TorchFunctionMode stack, innermost last
_MODE_ON = False        # bool(_MODES) and not _ALL_OFF: the wrappers' one check for modes

# functions whose arguments are not tensors to dispatch on (neither subclasses nor modes see
# them in PyTorch)
_SKIP = frozenset((
    "is_tensor", "is_storage", "compile", "save", "load", "manual_seed", "seed",
    "set_printoptions", "set_default_dtype", "get_default_dtype", "set_grad_enabled",
    "is_grad_enabled", "typename", "set_default_device", "get_num_threads", "set_num_threads",
    "get_num_interop_threads", "set_num_interop_threads", "init_num_threads", "initial_seed",
    "get_rng_state", "set_rng_state", "is_warn_always_enabled", "set_warn_always",
    "broadcast_shapes", "are_deterministic_algorithms_enabled", "use_deterministic_algorithms",
    "is_deterministic_algorithms_warn_only_enabled", "get_deterministic_debug_mode",
    "set_deterministic_debug_mode", "set_default_tensor_type", "from_numpy", "frombuffer",
    # Kiln's helpers that star-imports leak into torch's namespace: not torch API
    "cast", "as_tensor_arg", "check_inplace_leaf", "check_int_pow", "check_writable",
    "contiguous", "expand", "expand_as", "inplace", "named", "propagate_view_write", "repeat",
    "reshape_as", "store", "view", "view_as", "full_on", "write_out"))
# Tensor dunders that dispatch (PyTorch's list, less the pickling/copy protocol)
_DUNDERS = frozenset((   # (not __hash__/__iter__: PyTorch ignores them; iter's ops dispatch)
    "__getitem__", "__setitem__", "__repr__", "__format__", "__len__", "__reversed__",
    "__contains__", "__bool__", "__float__", "__int__", "__index__", "__complex__", "__neg__",
    "__pos__", "__abs__", "__invert__", "__array__", "__rsub__", "__rdiv__",
    "__rtruediv__", "__rfloordiv__", "__rpow__", "__rmatmul__", "__rmod__", "__rlshift__",
    "__rrshift__", "__rand__", "__ror__", "__rxor__", "__radd__", "__rmul__") + tuple(
    f"__{p}{n}__" for n in ("add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow",
                            "matmul", "and", "or", "xor", "lshift", "rshift")
    for p in ("", "i")) + tuple(f"__{n}__" for n in ("eq", "ne", "lt", "le", "gt", "ge")))
_PROPERTIES = ("T", "mT", "H", "mH", "real", "imag")


def _sync():
    global _MODE_ON
    _MODE_ON = bool(_MODES) and not _ALL_OFF


class DisableTorchFunctionSubclass:
    """Context manager: subclasses' __torch_function__ is skipped inside it (modes still run)."""

    def __enter__(self):
        global _DISABLED
        _DISABLED += 1
        return self

    def __exit__(self, *exc):
        global _DISABLED
        _DISABLED -= 1
        return False


class DisableTorchFunction:
    """Context manager: neither subclasses nor modes see calls inside it."""

    def __enter__(self):
        global _DISABLED, _ALL_OFF
        _DISABLED += 1
        _ALL_OFF += 1
        _sync()
        return self

    def __exit__(self, *exc):
        global _DISABLED, _ALL_OFF
        _DISABLED -= 1
        _ALL_OFF -= 1
        _sync()
        return False


# ---- torch function modes -------------------------------------------------------------------

def _push_mode(mode):
    _install()
    _MODES.append(mode)
    _sync()


def _pop_mode():
    if not _MODES:
        raise RuntimeError("trying to pop from empty mode stack")
    m = _MODES.pop()
    _sync()
    return m


@contextlib.contextmanager
def _pop_mode_temporarily():
    old = _pop_mode()
    try:
        yield old
    finally:
        _push_mode(old)


def _call_mode(func, types, args, kwargs):
    """The innermost mode's __torch_function__, run with that mode popped."""
    global _MODE_ON
    mode = _MODES.pop()
    _MODE_ON = bool(_MODES)
    try:
        return mode.__torch_function__(func, types, args, kwargs)
    finally:
        _MODES.append(mode)
        _sync()


def _get_current_function_mode():
    return _MODES[-1] if _MODES else None


def _get_current_function_mode_stack():
    return list(_MODES)


def _len_torch_function_stack():
    return len(_MODES)


def _is_torch_function_mode_enabled():
    return _MODE_ON


class TorchFunctionMode:
    """Overrides every __torch_function__-overridable call made inside `with mode:`; calls
    made by its own __torch_function__ go on to the next mode down the stack."""

    def __init__(self):
        pass

    def __torch_function__(self, func, types, args=(), kwargs=None):
        raise NotImplementedError

    def __enter__(self):
        _push_mode(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        _pop_mode()

    @classmethod
    def push(cls, *args, **kwargs):
        warnings.warn("`Mode.push()` is no longer necessary and can be replaced with just "
                      "`with Mode()`", stacklevel=2)
        return cls(*args, **kwargs)


class BaseTorchFunctionMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        return func(*args, **kwargs)


@contextlib.contextmanager
def enable_reentrant_dispatch():
    # re-enters __torch_dispatch__ state, which Kiln does not have: every call is outside it
    raise RuntimeError("Accessing torch dispatch state outside of '__torch_dispatch__' is not "
                       "allowed.")
    yield


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


def _dispatch(func, over, types, args, kwargs, name, mode=None):
    for x in over:
        r = type(x).__torch_function__(func, types, args, kwargs)
        if r is not NotImplemented:
            return r
    lines = (f"  - mode object {mode}\n" if mode is not None else "") + "".join(
        f"  - tensor subclass {t}\n" for t in types)      # (a Tensor-like object's class too)
    raise TypeError(f"Multiple dispatch failed for '{name}'; all __torch_function__ handlers "
                    f"returned NotImplemented:\n\n{lines}\nFor more information, try re-running "
                    f"with TORCH_LOGS=not_implemented")


def _tensor_cls():
    from .tensor import Tensor
    return Tensor


def _py_overloaded(relevant_args):
    """torch.overrides._get_overloaded_args: as _overloaded, but plain Tensors count (their
    __torch_function__ is the default one) and nothing counts inside DisableTorchFunction*."""
    if _DISABLED:
        return []
    T = _T or _tensor_cls()
    found = []
    for x in relevant_args:
        t = type(x)
        if t in found or not hasattr(t, "__torch_function__") or \
                getattr(t, "__torch_function__") is _disabled_torch_function_impl or \
                (t is not T and _plain_object(x, t)):
            continue
        pos = len(found)
        for k, y in enumerate(found):
            if issubclass(t, y):
                pos = k
                break
        found.insert(pos, t)
    return [next(x for x in relevant_args if type(x) is t) for t in found]


def handle_torch_function(public_api, relevant_args, *args, **kwargs):
    """Hands public_api(*args, **kwargs) to the innermost mode, then to the relevant arguments'
    __torch_function__ (PyTorch's Python-level protocol)."""
    return _handle(public_api, relevant_args, args, kwargs)


def _handle(public_api, relevant_args, args, kwargs):
    over = _py_overloaded(relevant_args)
    types = tuple(map(type, over))
    if _MODE_ON:
        r = _call_mode(public_api, types, args, kwargs)
        if r is not NotImplemented:
            return r
    for x in over:
        r = x.__torch_function__(public_api, types, args, kwargs)
        if r is not NotImplemented:
            return r
    name = getattr(public_api, "_tf_name", None) or \
        f"{public_api.__module__}.{public_api.__name__}"
    msg = (f"no implementation found for '{name}' on types that implement "
           f"__torch_function__: {[type(a) for a in over]}")
    if _MODE_ON:
        msg += f" nor in mode {_get_current_function_mode()}"
    raise TypeError(msg)


def has_torch_function(relevant_args):
    relevant_args = tuple(relevant_args)
    if _MODE_ON:
        return bool(relevant_args)
    return not _DISABLED and bool(_overloaded(relevant_args, {}))


def has_torch_function_unary(input):
    return has_torch_function((input,))


def has_torch_function_variadic(*args):
    return has_torch_function(args)


def wrap_torch_function(dispatcher):
    """Decorator: the function dispatches to __torch_function__ on what dispatcher(*args,
    **kwargs) returns."""
    def inner(func):
        @functools.wraps(func)
        def wrapped(*args, **kwargs):
            relevant_args = dispatcher(*args, **kwargs)
            if has_torch_function(relevant_args):
                return handle_torch_function(wrapped, relevant_args, *args, **kwargs)
            return func(*args, **kwargs)
        return wrapped
    return inner


def is_tensor_like(inp):
    from .tensor import Tensor
    return type(inp) is Tensor or hasattr(inp, "__torch_function__")


# operators PyTorch dispatches as the method they call (x + 1 reaches Tensor.add)
_AS_METHOD = {"__add__": "add", "__radd__": "add", "__iadd__": "add_", "__sub__": "sub",
              "__isub__": "sub_", "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul_",
              "__truediv__": "div", "__itruediv__": "div_", "__mod__": "remainder",
              "__matmul__": "matmul", "__neg__": "neg", "__pos__": "positive", "__abs__": "abs",
              "__ne__": "ne", "__lt__": "lt", "__le__": "le", "__gt__": "gt", "__ge__": "ge",
              "__rand__": "bitwise_and", "__ror__": "bitwise_or", "__rxor__": "bitwise_xor"}
# functions PyTorch writes in Python (handle_torch_function): a mode's types include Tensor
_PY_LEVEL = frozenset(
    ["torch." + n for n in (
        "atleast_1d", "atleast_2d", "atleast_3d", "block_diag", "broadcast_tensors",
        "cartesian_prod", "cdist", "chain_matmul", "einsum", "lobpcg", "meshgrid", "norm",
        "split", "stft", "tensordot", "unique_consecutive", "unravel_index")] +
    ["Tensor." + n for n in (
        "__array__", "__contains__", "__floordiv__", "__format__", "__ipow__", "__len__",
        "__pow__", "__rdiv__", "__reversed__", "__rfloordiv__", "__rlshift__", "__rmatmul__",
        "__rmod__", "__rpow__", "__rrshift__", "__rsub__", "__repr__", "backward", "istft",
        "is_shared", "lu", "module_load", "norm", "register_hook",
        "register_post_accumulate_grad_hook", "resize", "resize_as", "share_memory_", "split",
        "stft", "storage", "unflatten", "unique", "unique_consecutive", "dim_order")])
# torch.nn.functional's functions that are native (the rest are Python)
_F_NATIVE = frozenset(
    "torch.nn.functional." + n for n in (
        "adaptive_avg_pool1d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "bilinear", "celu_",
        "channel_shuffle", "conv1d", "conv2d", "conv3d", "conv_tbc", "conv_transpose1d",
        "conv_transpose2d", "conv_transpose3d", "cosine_similarity", "elu_", "gelu",
        "hardshrink", "hardtanh_", "leaky_relu_", "linear", "logsigmoid",
        "native_channel_shuffle", "one_hot", "pairwise_distance", "pdist", "pixel_shuffle",
        "pixel_unshuffle", "prelu", "relu_", "rrelu_", "scaled_dot_product_attention", "selu_",
        "softplus", "softshrink", "threshold_"))


_BINOPS = frozenset(f"Tensor.__{n}__" for n in (
    "add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
    "lshift", "rshift", "eq", "ne", "lt", "le", "gt", "ge"))


def _py_level(name):
    return name in _PY_LEVEL or name.startswith("torch.nn.init.") or \
        name.startswith("torch.nn.functional.") and name not in _F_NATIVE


def _tensors_in(args, kwargs):
    T = _T or _tensor_cls()
    out = []
    for a in (*args, *kwargs.values()):
        for x in (a if type(a) is list or type(a) is tuple else (a,)):
            if isinstance(x, T) or type(x) not in _PLAIN and hasattr(x, "__torch_function__") \
                    and not isinstance(x, type):
                out.append(x)
    return out


def _mode_dispatch(public, name, as_method, prop, binop, args, kwargs):
    """A wrapped call while a mode is on: the innermost mode first (popped while it runs),
    then the subclasses, as PyTorch orders them."""
    T = _T or _tensor_cls()
    if as_method is not None:
        func = getattr(T, as_method)
    elif prop is not None:
        func = vars(T)[prop].__get__
    else:
        func = public
    try:
        if prop is not None:        # (a getter: no keywords, passed as None)
            return _handle(func, args, args, None)
        if _py_level(name):
            return _handle(func, _tensors_in(args, kwargs), args, kwargs)
        over = [] if _DISABLED else _overloaded(args, kwargs)
        kwargs = kwargs or None     # (a native function passes None for no keywords)
        types = tuple(type(x) for x in over)
        r = _call_mode(func, types, args, kwargs)
        if r is not NotImplemented:
            return r
        return _dispatch(func, over, types, args, kwargs, name, _MODES[-1])
    except TypeError:
        if binop:       # Python's operator protocol then tries the other operand
            return NotImplemented
        raise


def _wrap(fn, name, as_method=None, prop=None):
    @functools.wraps(fn)
    def _public(*args, **kwargs):
        if _MODE_ON:
            return _mode_dispatch(_public, name, as_method, prop, binop, args, kwargs)
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
        elif prop is not None:
            func = vars(_T)[prop].__get__
        if not kwargs and (prop is not None or not _py_level(name)):
            kwargs = None           # (a native function passes None for no keywords)
        try:
            return _dispatch(func, over, types, args, kwargs, name)
        except TypeError:
            if binop:       # Python's operator protocol then tries the other operand
                return NotImplemented
            raise
    binop = name.startswith("Tensor.__r") or name in _BINOPS
    _public.__name__ = name.rsplit(".", 1)[-1]      # (Tensor.__add__'s own function is 'f')
    _public._tf_wrapped = True
    _public._tf_name = name if name.startswith("torch.") else "torch." + name
    return _public


WRAPPER_CODE = _wrap(len, "len").__code__     # (frame walks that name Kiln callers skip it)


# PyTorch's get_ignored_functions() (what __torch_function__ cannot override), by name, as far
# as Kiln has the names
_IGNORED = (
    "arange are_deterministic_algorithms_enabled as_strided as_tensor asarray "
    "autocast_decrement_nesting autocast_increment_nesting bartlett_window blackman_window "
    "broadcast_shapes can_cast clear_autocast_cache compile cond default_generator device dtype "
    "empty empty_permuted empty_strided enable_grad eye fill finfo from_numpy frombuffer full "
    "get_autocast_cpu_dtype get_autocast_dtype get_autocast_gpu_dtype get_default_device "
    "get_default_dtype get_deterministic_debug_mode get_float32_matmul_precision "
    "get_num_interop_threads get_num_threads get_rng_state hamming_window hann_window iinfo "
    "inference_mode init_num_threads initial_seed is_anomaly_check_nan_enabled "
    "is_anomaly_enabled is_autocast_cache_enabled is_autocast_cpu_enabled is_autocast_enabled "
    "is_deterministic_algorithms_warn_only_enabled is_grad_enabled is_inference_mode_enabled "
    "is_storage is_tensor is_warn_always_enabled kaiser_window layout linspace load logspace "
    "manual_seed memory_format no_grad normal ones promote_types qscheme rand rand_like randint "
    "randint_like randn randn_like randperm range result_type save scalar_tensor seed "
    "set_anomaly_enabled set_autocast_cache_enabled set_autocast_cpu_dtype "
    "set_autocast_cpu_enabled set_autocast_dtype set_autocast_enabled set_autocast_gpu_dtype "
    "set_default_device set_default_tensor_type set_deterministic_debug_mode "
    "set_float32_matmul_precision set_flush_denormal set_grad_enabled set_num_interop_threads "
    "set_num_threads set_printoptions set_rng_state set_warn_always sparse_bsc_tensor "
    "sparse_bsr_tensor sparse_compressed_tensor sparse_coo_tensor sparse_csc_tensor "
    "sparse_csr_tensor tensor tril_indices triu_indices typename use_deterministic_algorithms "
    "vander vmap zeros nn.functional.grouped_mm nn.functional.hardsigmoid "
    "nn.functional.hardswish nn.functional.sigmoid nn.functional.tanh nn.functional.upsample "
    "nn.functional.upsample_bilinear nn.functional.upsample_nearest fft.fftfreq fft.rfftfreq "
    "Tensor.__class__ Tensor.__delattr__ Tensor.__dir__ Tensor.__getattribute__ Tensor.__hash__ "
    "Tensor.__init__ Tensor.__init_subclass__ Tensor.__iter__ Tensor.__new__ Tensor.__setattr__ "
    "Tensor.__subclasshook__ Tensor.__torch_function__ Tensor._make_subclass "
    "Tensor._typed_storage Tensor.as_subclass Tensor.eig Tensor.lstsq Tensor.new "
    "Tensor.new_empty Tensor.new_empty_strided Tensor.new_full Tensor.new_ones Tensor.new_tensor "
    "Tensor.new_zeros Tensor.stride Tensor.to_sparse_bsc Tensor.to_sparse_bsr "
    "Tensor.to_sparse_coo Tensor.to_sparse_csc Tensor.to_sparse_csr Tensor.unflatten").split()


def get_ignored_functions():
    """The public functions that __torch_function__ cannot override (PyTorch's set)."""
    import framework
    out = set()
    for n in _IGNORED:
        obj = framework
        for part in n.split("."):
            obj = getattr(obj, part, None)
        for f in (obj, unwrap(obj)):
            if f is not None and getattr(type(f), "__hash__", None) is not None:
                out.add(f)
    return out


_TABLE = None       # (overridable functions by namespace, {function: qualified name})


def _overridable():
    """torch.overrides._get_overridable_functions, from Kiln's dispatch wrappers: every public
    callable of the namespaces is named; the wrapped ones that PyTorch does not ignore are
    overridable."""
    global _TABLE
    _install()
    if _TABLE is not None:
        return _TABLE
    import collections
    import framework
    from .tensor import Tensor
    from .nn import functional as F
    ignored = get_ignored_functions()
    over, index = collections.defaultdict(list), {}
    for ns_str, ns in (("torch", framework), ("torch.nn.functional", F),
                       ("torch.linalg", framework.linalg), ("torch.fft", framework.fft),
                       ("torch.special", framework.special), ("torch.nn.init", framework.nn.init),
                       ("torch.Tensor", Tensor)):
        for name in dir(ns):
            ignore = False
            if ns is not Tensor:
                if name.startswith("__"):
                    continue
                ignore = name.startswith("_") or name.endswith("_") or not name[0].islower()
            elif name == "__weakref__":
                continue
            try:
                func = getattr(ns, name)
            except Exception:
                continue
            if ns is Tensor and getattr(object, name, None) == func or \
                    isinstance(func, _types.ModuleType):
                continue
            if isinstance(func, property):
                index[func.__get__] = f"{ns_str}.{name}.__get__"
                index[func.__set__] = f"{ns_str}.{name}.__set__"
                if not ignore and func.fget is not None and \
                        func.fget.__dict__.get("_tf_wrapped"):
                    over[func].append(func.__get__)
                continue
            if not callable(func):
                continue
            # the function and what it wraps (autocast's binding over the dispatch wrapper over
            # the original) all name it; an alias keeps the function's own name (torch.neg)
            chain = [func]
            while type(chain[-1]) is _types.FunctionType and \
                    getattr(chain[-1], "__wrapped__", None) is not None:
                chain.append(chain[-1].__wrapped__)
            try:
                for f in chain:
                    old = index.get(f)
                    if old is None or old.rsplit(".", 1)[0] == ns_str and \
                            getattr(chain[-1], "__name__", None) == name:
                        index[f] = f"{ns_str}.{name}"
            except TypeError:       # (unhashable)
                continue
            if not ignore and any(type(f) is _types.FunctionType and
                                  f.__dict__.get("_tf_wrapped") for f in chain) and \
                    func not in ignored:
                over[ns].append(func)
    _TABLE = (dict(over), index)
    return _TABLE


def get_overridable_functions():
    """{namespace: [public functions]} of what dispatches to __torch_function__."""
    return _overridable()[0]


def resolve_name(f):
    """The qualified name ("torch.add", "torch.Tensor.T.__get__") of an overridable function,
    or None."""
    lib = sys.modules.get("framework.library")
    if lib is not None and isinstance(f, (lib.OpOverload, lib.OpOverloadPacket)):
        return str(f)
    try:
        return _overridable()[1].get(f)
    except TypeError:
        return None


def is_tensor_method_or_property(func):
    from .tensor import Tensor
    return func in set(get_overridable_functions().get(Tensor, ())) or \
        getattr(func, "__name__", None) == "__get__"


def get_testing_overrides():
    """{overridable function: a function with its signature that returns -1}: for testing
    that a __torch_function__ implementation covers the API."""
    import inspect
    from .nn import init
    out = {}
    _install()
    # (PyTorch lists torch.nn.init's dispatching four here though not as overridable)
    inits = [init.uniform_, init.normal_, init.constant_, init.kaiming_uniform_]
    for fs in (*get_overridable_functions().values(), inits):
        for f in fs:
            P = inspect.Parameter
            try:
                sig = inspect.signature(unwrap(f))
            except (TypeError, ValueError):
                sig = inspect.Signature([P("args", P.VAR_POSITIONAL),
                                         P("kwargs", P.VAR_KEYWORD)])
            if getattr(f, "__name__", None) == "__get__":
                sig = inspect.Signature([P("self", P.POSITIONAL_OR_KEYWORD)])
            dummy = (lambda *args, **kwargs: -1)
            dummy.__signature__ = sig
            out[f] = dummy
    return out


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
    global _TABLE
    _TABLE = None
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
    # autocast's bindings wrap whatever is bound: inside an autocast region, take them off
    # while the dispatch wrappers go in, then bind them again over the wrappers
    amp = sys.modules.get("framework.amp.autocast_mode")
    bound = amp is not None and amp._hooks.bound
    if bound:
        amp._hooks.unbind()
    _install_wrappers()
    if bound:
        amp._hooks.slots = None
        amp._hooks.bind()


def _install_wrappers():
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
                            _functional_sampling, _functional_ctc, _torch_functional)),
                        (framework.special, "torch.special.")):
        for name, obj in list(vars(mod).items()):
            if type(obj) is _types.FunctionType and not name.startswith("_") and \
                    name not in _SKIP and not getattr(obj, "_tf_wrapped", False) and \
                    not (obj.__module__ or "").startswith(_NOT_API):
                if id(obj) not in done:
                    done[id(obj)] = _wrap(obj, prefix + name)
                _SLOTS.append((mod, name, obj))
                setattr(mod, name, done[id(obj)])
    from .nn import init
    for name in ("uniform_", "normal_", "constant_", "kaiming_uniform_"):   # (PyTorch's four)
        f = vars(init)[name]
        done[id(f)] = _wrap(f, "torch.nn.init." + name)
        _SLOTS.append((init, name, f))
        setattr(init, name, done[id(f)])
    L = type(framework.linalg)         # (torch.linalg: an object whose class holds staticmethods)
    for name, obj in list(vars(L).items()):
        if isinstance(obj, staticmethod) and not name.startswith("_") and \
                type(obj.__func__) is _types.FunctionType:
            f = obj.__func__
            if id(f) not in done:
                done[id(f)] = _wrap(f, "torch.linalg." + name)
            _SLOTS.append((L, name, obj))
            setattr(L, name, staticmethod(done[id(f)]))
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
            setattr(Tensor, name, property(_wrap(p.fget, f"Tensor.{name}.__get__", prop=name),
                                           p.fset, p.fdel, p.__doc__))


def unwrap(fn):
    """The function a dispatch wrapper stands for (code-keyed tables need its __code__)."""
    return fn.__wrapped__ if type(fn) is _types.FunctionType and \
        fn.__dict__.get("_tf_wrapped") else fn
