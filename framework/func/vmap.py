"""torch.vmap: run a per-sample function over a batch, as a transformation.

Each vmap call opens a level: its mapped inputs become batched tensors of that level
(framework.func._batched), every primitive applied to them goes through its batching rule
(framework.func.batching), and the outputs are unwrapped with the batch dim moved to out_dims.
Random draws inside vmap follow `randomness` (through framework.creation._gen, the cpu draw
point): 'error' raises torch's error, 'same' draws once per-sample-shaped (shared by the
batch), 'different' draws a batch of values (a BatchedDraw, wrapped as a batched tensor).
"""
import functools

import numpy as np

from compiler.ir.registry import norm_dim
from .. import _dispatch
from ..tensor import Tensor
from . import _batched, _pytree

LEVELS = []      # active vmap levels, outermost first: [level, batch size, randomness]

RANDOM_ERROR = ("vmap: called random operation while in randomness error mode. Please either "
                "use the 'same' or 'different' randomness flags on vmap or perform the "
                "randomness operation out of vmap")


def _push(B, randomness):
    lvl = LEVELS[-1][0] + 1 if LEVELS else 1
    LEVELS.append((lvl, B, randomness))
    _dispatch.VMAP = _batched.hook
    return lvl


def _pop():
    LEVELS.pop()
    if not LEVELS and not GUARDS:
        _dispatch.VMAP = None


GUARDS = []      # randomness modes of the running jacfwd calls (no vmap level of their own)


class random_guard:
    """While jacfwd(randomness='error') runs, a random op raises vmap's error, as it does
    under the vmap torch's jacfwd runs over the tangents (the dispatch hook is set so that
    framework.creation._gen consults random_stream)."""

    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self.on = self.mode == "error"      # 'same'/'different': one draw, nothing to guard
        if self.on:
            GUARDS.append(self.mode)
            if _dispatch.VMAP is None:
                _dispatch.VMAP = _batched.hook
        return self

    def __exit__(self, *exc):
        if self.on:
            GUARDS.pop()
            if not LEVELS and not GUARDS:
                _dispatch.VMAP = None
        return False


def check_randomness(randomness):
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")


def active_levels():
    """[(level, batch size)] of the running vmaps, outermost first."""
    return [(lv, B) for lv, B, _ in LEVELS]


# ---- randomness --------------------------------------------------------------------------------

class BatchedDraw(np.ndarray):
    """Random values drawn for every sample of the 'different' vmap levels `vmap_levels`
    (outermost first; the leading dims of the array). framework._dispatch.wrap turns it into a
    batched tensor."""
    vmap_levels = ()


def random_stream(stream):
    """The stream a cpu draw uses while vmap runs (framework.creation._gen calls this)."""
    if "error" in GUARDS:
        raise RuntimeError(RANDOM_ERROR)
    diff = []
    for lvl, B, mode in LEVELS:
        if mode == "error":
            raise RuntimeError(RANDOM_ERROR)
        if mode == "different":
            diff.append((lvl, B))
    return _DifferentStream(stream, diff) if diff else stream


class _DifferentStream:
    """Draws a batch of per-sample draws from one stream: shape (B1, .., Bk) + shape."""

    def __init__(self, stream, levels):
        self._s, self._levels = stream, levels
        self._lead = tuple(B for _, B in levels)

    def _mark(self, arr):
        r = np.asarray(arr).view(BatchedDraw)
        r.vmap_levels = tuple(self._levels)
        return r

    def uniform(self, shape, d, lo=0.0, hi=1.0):
        return self._mark(self._s.uniform(self._lead + tuple(shape), d, lo, hi))

    def normal(self, shape, d, mean=0.0, std=1.0):
        return self._mark(self._s.normal(self._lead + tuple(shape), d, mean, std))

    def integers(self, shape, low, high):
        return self._mark(self._s.integers(self._lead + tuple(shape), low, high))

    def full_range(self, shape, d):
        return self._mark(self._s.full_range(self._lead + tuple(shape), d))

    def bernoulli(self, shape, p):
        return self._mark(self._s.bernoulli(self._lead + tuple(shape), p))

    def bernoulli_per_element(self, p):
        return self._mark(self._s.bernoulli_per_element(np.broadcast_to(p, self._lead + p.shape)))

    def exponential(self, shape, lambd):
        return self._mark(self._s.exponential(self._lead + tuple(shape), lambd))

    def randperm(self, n):
        k = int(np.prod(self._lead))
        return self._mark(np.stack([self._s.randperm(n) for _ in range(k)]).reshape(
            self._lead + (n,)))

    def __getattr__(self, name):
        # samplers outside the list above (NumPy's generator for multinomial and friends)
        # cannot batch their draws: refuse rather than silently share one draw
        raise RuntimeError(f"vmap: randomness='different' is not supported for this random "
                           f"operation (it draws through {name!r}); use randomness='same' or "
                           f"move it out of vmap")


def wrap_draw(arr, dtype):
    """_dispatch.wrap of a BatchedDraw: the batched tensor of the draw."""
    levels = arr.vmap_levels
    t = _dispatch.wrap(np.ascontiguousarray(arr.view(np.ndarray)), dtype)
    for lvl, _ in levels:
        t = _batched.make(t, 0, lvl)
    return t


def fill_draw(t, values):
    """An in-place random fill (uniform_, bernoulli_, ...) given a BatchedDraw: t is rebound to
    the batched tensor of the draw. torch refuses this for an unbatched t; Kiln's dropout draws
    its mask into a fresh unbatched tensor this way, so here it is allowed."""
    levels = values.vmap_levels
    arr = values.view(np.ndarray)
    want = tuple(arr.shape[:len(levels)]) + tuple(t.shape)
    arr = np.broadcast_to(arr, want).astype(t._dtype.np)       # (a copy of its own)
    new = _dispatch.wrap(arr, t._dtype)
    for lvl, _ in levels:
        new = _batched.make(new, 0, lvl)
    t._data = new._data
    return t


# ---- vmap ----------------------------------------------------------------------------------------

def _name(func):
    return getattr(func, "__name__", repr(func))


def _process_inputs(func, in_dims, args):
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): expected "
                         f"`in_dims` to be int or a (potentially nested) tuple matching the "
                         f"structure of inputs, got: {type(in_dims)}.")
    if len(args) == 0:
        raise ValueError(f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to add "
                         f"inputs, or you are trying to vmap over a function with no inputs. "
                         f"The latter is unsupported.")
    flat, spec = _pytree.flatten(tuple(args))
    dims = _pytree.broadcast_prefix(in_dims, spec)
    if dims is None:
        raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): in_dims is not "
                         f"compatible with the structure of `inputs`. in_dims has structure "
                         f"{_pytree.flatten(in_dims)[1]} but inputs has structure {spec}.")
    for i, (a, d) in enumerate(zip(flat, dims)):
        if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
            raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): Got "
                             f"in_dim={d} for an input but in_dim must be either an integer "
                             f"dimension or None.")
        if d is not None and not isinstance(a, Tensor):
            raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): Got "
                             f"in_dim={d} for an input but the input is of type {type(a)}. We "
                             f"cannot vmap over non-Tensor arguments, please use None as the "
                             f"respective in_dim")
        if d is not None:
            n = a.dim()
            if d < -n or d >= n:
                raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): Got "
                                 f"in_dim={d} for some input, but that input is a Tensor of "
                                 f"dimensionality {n} so expected in_dim to satisfy "
                                 f"-{n} <= in_dim < {n}.")
            dims[i] = d % n
    sizes = [a.shape[d] for a, d in zip(flat, dims) if d is not None]
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0], flat, dims, spec


def _check_out_dims(func, out_dims):
    for d in _pytree.flatten(out_dims)[0]:
        if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
            raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims}): `out_dims` must be "
                             f"an int, None or a python collection of ints representing where in "
                             f"the outputs the vmapped dimension should appear.")


def _unwrap_output(func, out, out_dims, lvl, B):
    flat, spec = _pytree.flatten(out)

    def incompatible():
        raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is "
                         f"not compatible with the structure of `outputs`. out_dims has structure "
                         f"{_pytree.flatten(out_dims)[1]} but outputs has structure {spec}.")
    if isinstance(out, Tensor):
        if isinstance(out_dims, int) or out_dims is None:
            dims = [out_dims]
        elif isinstance(out_dims, tuple) and len(out_dims) == 1:
            dims = list(out_dims)
        else:
            incompatible()
    else:
        dims = _pytree.broadcast_prefix(out_dims, spec)
        if dims is None:
            incompatible()
    res = []
    name = _name(func)
    for o, d in zip(flat, dims):
        if d is None:
            if _batched.unwrap(o, lvl)[1] is not None:
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor "
                                 f"when out_dim is None")
            res.append(o)
            continue
        if not isinstance(o, Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                             f"{type(o)}. Did you mean to set out_dims= to None for output?")
        v, bd = _batched.unwrap(o, lvl)
        n = o.dim() + 1
        od = norm_dim("vmap", d, n)
        if bd is None:     # the same value for every sample: a broadcast view, as torch
            v = o.unsqueeze(od).expand(*[B if i == od else -1 for i in range(n)])
        elif bd != od:
            v = v.movedim(bd, od)
        res.append(v)
    return _pytree.unflatten(res, spec)


def _run(func, flat, dims, spec, kwargs, B, out_dims, randomness):
    lvl = _push(B, randomness)
    try:
        args = [a if d is None else _batched.make(a, d, lvl) for a, d in zip(flat, dims)]
        out = func(*_pytree.unflatten(args, spec), **kwargs)
        return _unwrap_output(func, out, out_dims, lvl, B)
    finally:
        _pop()


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """torch.vmap: func mapped over dim `in_dims` of its inputs; results stacked at out_dims."""
    check_randomness(randomness)
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        _check_out_dims(func, out_dims)
        B, flat, dims, spec = _process_inputs(func, in_dims, args)
        if chunk_size is None or chunk_size >= B:
            return _run(func, flat, dims, spec, kwargs, B, out_dims, randomness)
        return _chunked(func, flat, dims, spec, kwargs, B, out_dims, randomness, chunk_size)
    return wrapped


def _chunked(func, flat, dims, spec, kwargs, B, out_dims, randomness, chunk_size):
    from ..creation import get_rng_state, set_rng_state
    state = get_rng_state() if randomness == "same" else None
    results = []
    for s in range(0, B, chunk_size):
        n = min(chunk_size, B - s)
        part = [a if d is None else a.narrow(d, s, n) for a, d in zip(flat, dims)]
        if state is not None:       # 'same': every chunk draws what the first one drew
            set_rng_state(state)
        results.append(_run(func, part, dims, spec, kwargs, n, out_dims, randomness))
    from ..ops_shape import cat
    flats = [_pytree.flatten(r) for r in results]
    oflat, ospec = flats[0]
    if isinstance(results[0], Tensor):
        odims = [out_dims if not isinstance(out_dims, tuple) else out_dims[0]]
    else:
        odims = _pytree.broadcast_prefix(out_dims, ospec)
    merged = []
    for i, d in enumerate(odims):
        if d is None:
            merged.append(oflat[i])
        else:
            merged.append(cat([f[0][i] for f in flats], dim=d))
    return _pytree.unflatten(merged, ospec)


# ---- in-place ops on batched tensors ----------------------------------------------------------

INPLACE_OTHER = ("vmap: inplace arithmetic(self, *extra_args) is not possible because there "
                 "exists a Tensor `other` in extra_args that has more elements than `self`. This "
                 "happened due to `other` being vmapped over but `self` not being vmapped over in "
                 "a vmap. Please try to use out-of-place operators instead of inplace arithmetic. "
                 "If said operator is being called inside the PyTorch framework, please file a "
                 "bug report instead.")


def batched_level(t):
    """The vmap level t is batched at (its innermost), or None."""
    from ._batched import BatchedArray
    d = getattr(t, "_data", None)
    return d.level if type(d) is BatchedArray else None


def inplace_commit(self, p, args, attrs):
    """self.<p>_(*args) while vmap runs: the batched out-of-place result is written into the
    real tensor behind self (its batch dim where self keeps it), which is an ordinary in-place
    copy there (autograd and outer vmap levels see it as such). Refused as torch refuses when
    an argument is batched deeper than self."""
    from .. import _dispatch
    from ._batched import unwrap
    lv = batched_level(self)
    deeper = [batched_level(a) for a in args if batched_level(a) is not None]
    if deeper and (lv is None or max(deeper) > lv):
        raise RuntimeError(INPLACE_OTHER)
    return write_back(self, _dispatch.apply(p, snapshot(self), *args, **attrs))


def snapshot(self):
    """What an in-place op on batched self computes from: a copy when autograd records, since
    the write into self's real tensor would change values the backward saved (eager in-place
    ops snapshot self the same way)."""
    from .. import _dispatch
    if _dispatch.STATE.grad_enabled and batched_level(self) is not None:
        return self.clone()
    return self


def write_back(self, r):
    """Write the (per-sample shaped) result r into batched self's real tensor."""
    from .. import _dispatch
    from ._batched import unwrap
    lv = batched_level(self)
    if lv is None:
        if batched_level(r) is not None:
            raise RuntimeError(INPLACE_OTHER)
        return self.copy_(r)
    if batched_level(r) is not None and batched_level(r) > lv:
        raise RuntimeError(INPLACE_OTHER)
    if r._dtype is not self._dtype:
        r = _dispatch.apply(_dispatch.REGISTRY["cast"], r, dtype=self._dtype)
    real, bdim = unwrap(self, lv)
    rv, rb = unwrap(r, lv)
    if rb is None:       # unbatched at this level (self's values did not matter): broadcast
        from ..ops_shape import unsqueeze
        rv, rb = unsqueeze(rv, bdim), bdim
    from ..ops_shape import movedim
    real.copy_(movedim(rv, rb, bdim).expand(real.shape))
    self._bump()
    return self


def copy_into(self, src):
    """self.copy_(src) / fill_ while vmap runs: src broadcast to self's per-sample shape."""
    from .. import _dispatch
    from ..tensor import Tensor
    if not isinstance(src, Tensor):
        from ..creation import full
        src = full(tuple(self.shape), src, dtype=self._dtype, device=self.device)
    return write_back(self, _dispatch.apply(_dispatch.REGISTRY["expand"], src,
                                            shape=tuple(self.shape)))
