"""NumPy's argument names as PyTorch's argument parser takes them: `axis` for `dim` and
`keepdims` for `keepdim`, in every torch.* function and Tensor method that has those
arguments (x.sum(axis=0, keepdims=True), torch.cat(xs, axis=1), torch.fft.fft(x, axis=0)).

Kiln's ops are plain Python functions with PyTorch's argument names. Rather than spell the
aliases in every signature, `install` wraps each public function that takes `dim` or
`keepdim` once, after the namespaces are built; the wrapper renames the two keywords and
calls the op (calls without keywords pay one extra call). Internal code keeps calling the
unwrapped functions. (torch.nn.functional is Python in PyTorch too, and takes no aliases.)
"""
import functools
import inspect

_ALIASES = (("axis", "dim"), ("keepdims", "keepdim"))


def _wrap(f, pairs):
    @functools.wraps(f)
    def op(*args, **kw):
        if kw:
            for alias, name in pairs:
                if alias in kw:
                    if name in kw:
                        raise TypeError(f"{f.__name__}() got multiple values for argument "
                                        f"'{name}' (as '{name}' and as '{alias}')")
                    kw[name] = kw.pop(alias)
        return f(*args, **kw)
    return op


def _aliased(f, done):
    """f's wrapper (made once per function), or f itself when it takes neither argument."""
    w = done.get(id(f))
    if w is None:
        try:
            params = inspect.signature(f).parameters
        except (TypeError, ValueError):
            params = {}
        pairs = tuple((a, n) for a, n in _ALIASES if n in params and a not in params)
        w = done[id(f)] = (f, _wrap(f, pairs) if pairs else f)
    return w[1]


def install(*namespaces):
    """Wrap the public functions of each namespace in place: a module, a class, or an
    instance (its own functions, as a SimpleNamespace holds them, and its class's)."""
    done = {}        # id(function) -> (function, wrapper): one wrapper however often bound
    holders = [h for ns in namespaces for h in
               ((ns,) if isinstance(ns, type) or inspect.ismodule(ns) else (ns, type(ns)))]
    for holder in holders:
        for k, v in list(vars(holder).items()):
            if k.startswith("_"):
                continue
            f = v.__func__ if isinstance(v, staticmethod) else v
            if not inspect.isfunction(f):
                continue
            w = _aliased(f, done)
            if w is not f:
                setattr(holder, k, staticmethod(w) if isinstance(v, staticmethod) else w)
