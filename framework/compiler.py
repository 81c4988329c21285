"""torch.compiler: the public controls of compile() (framework/_dynamo.py holds them)."""
import collections
import dataclasses
import functools
import inspect
import json
import logging
import types

from ._dynamo import (reset, disable, is_compiling, is_dynamo_compiling,  # noqa: F401
                      set_stance)

_BACKENDS = ("eager", "numpy", "interpret", "triton")


def list_backends(exclude_tags=("debug", "experimental")):
    """The backend names compile() accepts (besides the default, None / 'inductor', which picks
    one by device); 'eager' is Kiln's debugging backend."""
    return [b for b in _BACKENDS if not (b == "eager" and exclude_tags and "debug" in exclude_tags)]


def allow_in_graph(fn):
    """Kiln's tracer runs every Python function with symbolic tensors, so any function whose
    tensor work goes through Kiln's ops is already in the graph: fn is returned as is."""
    return fn


def assume_constant_result(fn):
    """PyTorch caches fn's result as a constant of the graph; Kiln's tracer runs fn at every
    trace and a replay never runs it, which is what that promise allows. Returned as is."""
    return fn


def cudagraph_mark_step_begin():
    """Kiln's CUDA-graph replays copy their results out of the graph's memory, so no step
    boundary needs marking; kept for scripts written for torch.compile."""


def is_exporting():
    """True while torch.export traces; Kiln has no export, so always False."""
    return False


# ---- default backend ----------------------------------------------------------------------------

def set_default_backend(backend):
    """The backend torch.compile uses when none is given; None restores 'inductor' (Kiln's
    pick by device)."""
    from ._compile import _DEFAULT_BACKEND
    if backend is None:
        backend = "inductor"
    elif not isinstance(backend, str) and not callable(backend):
        raise TypeError(f"backend must be a string or callable, got {type(backend)}")
    _DEFAULT_BACKEND[0] = backend


def get_default_backend():
    from ._compile import _DEFAULT_BACKEND
    return _DEFAULT_BACKEND[0]


# ---- function wrappers --------------------------------------------------------------------------

def wrap_numpy(fn):
    """A function of np.ndarrays as a function of Tensors: tensor arguments go in as arrays
    (Tensor.numpy(), so no grad-requiring ones), ndarray results come back as tensors. Kiln's
    tracer does not follow NumPy code: under compile the call runs eagerly (a graph break)."""
    import numpy as np
    from .tensor import Tensor
    from .utils import _pytree as pytree

    @functools.wraps(fn)
    def wrap(*args, **kwargs):
        from .creation import as_tensor
        args, kwargs = pytree.tree_map_only(Tensor, lambda x: x.numpy(), (args, kwargs))
        out = fn(*args, **kwargs)
        return pytree.tree_map_only(np.ndarray, lambda x: as_tensor(x), out)
    return wrap


_POLYFILLS = {}     # original function -> its traceable substitute


def _is_function(f):
    return isinstance(f, (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                          types.BuiltinMethodType, types.MethodDescriptorType,
                          types.WrapperDescriptorType))


def _sig_ident(sig):
    ps = sig.parameters.values()
    return (tuple(p.name for p in ps if p.kind not in (p.KEYWORD_ONLY, p.VAR_POSITIONAL,
                                                      p.VAR_KEYWORD)),
            {p.name for p in ps if p.kind == p.KEYWORD_ONLY},
            {p.name: p.default for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)})


def substitute_in_graph(original_fn, *, can_constant_fold_through=False,
                        skip_signature_check=False):
    """Register a traceable substitute (polyfill) for original_fn, usually a C function. The
    decorator returns a function that calls original_fn eagerly and the substitute while
    compile() traces. (Kiln's tracer runs Python itself, so original_fn called directly inside
    a compiled function still runs as is.)"""
    if not _is_function(original_fn):
        raise TypeError(f"substitute_in_graph expects a function but got {type(original_fn)!r}")

    def wrapper(traceable_fn):
        if not _is_function(traceable_fn):
            raise TypeError("@substitute_in_graph(...) expects a function but got "
                            f"{type(traceable_fn)!r}")
        if not skip_signature_check:
            try:
                osig = inspect.signature(original_fn)
            except ValueError:
                osig = None
            if osig is not None:
                tsig = inspect.signature(traceable_fn)
                wild = _sig_ident(inspect.signature(lambda *args, **kwargs: None))
                if _sig_ident(osig) != _sig_ident(tsig) and wild not in (_sig_ident(osig),
                                                                          _sig_ident(tsig)):
                    raise TypeError(f"Signature mismatch between {original_fn} and "
                                    f"{traceable_fn}: {osig} != {tsig}")
        if original_fn in _POLYFILLS:
            raise ValueError(f"Duplicate dispatch rule for {original_fn}: already registered in "
                             "VariableBuilder's id dispatch map")
        _POLYFILLS[original_fn] = traceable_fn

        @functools.wraps(traceable_fn)
        def wrapped(*args, **kwargs):
            f = traceable_fn if is_compiling() else original_fn
            return f(*args, **kwargs)
        wrapped.__torch_dynamo_polyfill__ = traceable_fn
        return wrapped
    return wrapper


def nested_compile_region(fn=None, *, options=None, max_reuse_entries=8, reuse_hash_fn=None):
    """Mark fn as a region repeated in a model (PyTorch compiles it once and stamps it out).
    A no-op in eager. Kiln's tracer inlines the region at each call: the compiled result and
    gradients are the same, only the compile time is not saved."""
    if options is not None:
        raise RuntimeError("nested_compile_region config is an experimental feature for "
                           "testing only.")

    def wrap(func):
        def inner(*args, **kwargs):
            f = func
            while hasattr(f, "__marked_compile_region_fn__"):   # (nested regions: innermost)
                f = f.__marked_compile_region_fn__
            return f(*args, **kwargs)
        inner.__marked_compile_region_fn__ = func
        func.__marked_compile_region_config__ = options
        func.__marked_compile_region_max_reuse_entries__ = max_reuse_entries
        func.__marked_compile_region_reuse_hash_fn__ = reuse_hash_fn
        return inner
    return wrap(fn) if fn else wrap


# ---- cache artifacts ----------------------------------------------------------------------------

_MAGIC = b"KILN-CACHE-ARTIFACTS 1\n"


@dataclasses.dataclass
class CacheInfo:
    """What save_cache_artifacts / load_cache_artifacts carried: artifact type -> keys. Kiln's
    generated programs are the 'inductor' artifacts (they stand where Inductor's compiled
    graphs do); Kiln has no autotune, AOT-autograd, PGO or precompile artifacts."""
    artifacts: collections.defaultdict = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list))

    @property
    def inductor_artifacts(self):
        return self.artifacts["inductor"]

    @property
    def autotune_artifacts(self):
        return self.artifacts["autotune"]

    @property
    def aot_autograd_artifacts(self):
        return self.artifacts["aot_autograd"]

    @property
    def pgo_artifacts(self):
        return self.artifacts["pgo"]

    @property
    def precompile_artifacts(self):
        return self.artifacts["precompile"]

    def add(self, kind, key):
        self.artifacts[kind].append(key)

    def clear(self):
        self.artifacts.clear()

    def empty(self):
        return not self.artifacts


def save_cache_artifacts():
    """(bytes, CacheInfo) holding every compiled program this process wrote to or read from
    Kiln's compile cache, for load_cache_artifacts in another process or machine; None when
    there is none."""
    from compiler import cache
    progs = cache.recorded_programs()
    if not progs:
        return None
    info = CacheInfo()
    for _backend, key, _text in progs:
        info.add("inductor", key)
    payload = json.dumps([[b, k, t] for b, k, t in progs]).encode()
    return _MAGIC + payload, info


def load_cache_artifacts(serialized_artifacts):
    """Write the programs of save_cache_artifacts' bytes into this process's compile cache
    (later compiles of the same graphs load them instead of generating code); their CacheInfo,
    or None (logged) when the bytes are not such artifacts."""
    from compiler import cache
    data = bytes(serialized_artifacts)
    try:
        if not data.startswith(_MAGIC):
            raise ValueError("not Kiln cache artifacts")
        progs = json.loads(data[len(_MAGIC):].decode())
        if not all(isinstance(p, list) and len(p) == 3 and all(isinstance(x, str) for x in p)
                   for p in progs):
            raise ValueError("malformed entry")
    except (ValueError, UnicodeDecodeError) as e:
        logging.getLogger("kiln.cache").warning("Failed to un-pickle cache artifacts (%s)", e)
        return None
    info = CacheInfo()
    for backend, key, text in progs:
        if cache.install_program(key, backend, text):
            info.add("inductor", key)
    return info


def compile(*args, **kwargs):   # noqa: A001  (torch's name)
    """torch.compile under torch.compiler (same arguments)."""
    from ._compile import compile as _compile
    return _compile(*args, **kwargs)
