"""Tensor creation and random sampling (torch.tensor, zeros, arange, rand, Generator, ...)."""
import math

import numpy as np

from runtime import dtypes as dt
from runtime.device import canonical
from ._dispatch import wrap
from .tensor import Tensor


# ---- dtype inference for Python data ---------------------------------------------------------

def _infer(data):
    """dtype PyTorch infers for nested Python data (bool < int < float < complex)."""
    cat = -1
    stack = [data]
    tdt = None
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, Tensor):
            tdt = x._dtype if tdt is None else dt.promote_types(tdt, x._dtype)
        elif isinstance(x, np.ndarray) or isinstance(x, np.generic):
            d = dt.from_numpy(x.dtype)
            tdt = d if tdt is None else dt.promote_types(tdt, d)
        else:
            cat = max(cat, dt.scalar_category(x))
    if tdt is not None and cat <= tdt.category:
        return tdt
    if cat < 0:
        return dt.get_default_dtype() if tdt is None else tdt
    return dt.scalar_dtype(True if cat == 0 else 1 if cat == 1 else 1.0 if cat == 2 else 1j)


def _to_numpy(data, d):
    if isinstance(data, Tensor):
        return data._data.astype(d.np, copy=True)
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = _untensor(data)
    try:
        return np.array(data, dtype=d.np)
    except (ValueError, TypeError) as e:
        raise (ValueError if "inhomogeneous" in str(e) or "sequence" in str(e) else TypeError)(
            f"tensor(): could not build a tensor from {type(data).__name__}: {e}") from None


def _flat(x):
    if isinstance(x, (list, tuple)):
        for y in x:
            yield from _flat(y)
    else:
        yield x


def _untensor(x):
    if isinstance(x, (list, tuple)):
        return [_untensor(y) for y in x]
    if isinstance(x, Tensor):
        return x._data.tolist() if x._dtype is not dt.bfloat16 else x._data.astype(np.float32).tolist()
    return x


def _finish(arr, d, device, requires_grad):
    canonical(device)
    t = wrap(arr, d)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    if isinstance(data, np.ndarray):
        d = dtype or dt.from_numpy(data.dtype)
        arr = np.array(data, dtype=d.np)
    else:
        d = dtype or _infer(data)
        arr = _to_numpy(data, d)
    return _finish(arr, d, device, requires_grad)


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor):
        return data if dtype is None or dtype is data._dtype else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or dtype.np == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    t = as_tensor(obj, dtype, device) if not copy else tensor(obj, dtype=dtype, device=device)
    if requires_grad:
        t.requires_grad_()
    return t


def from_numpy(ndarray):
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return wrap(ndarray, dt.from_numpy(ndarray.dtype))


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s)
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"expected a sequence of integers or a single integer as size, got "
                            f"{type(s).__name__}")
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s))
    return tuple(out)


def _filled(size, value, dtype, device, requires_grad):
    d = dtype or dt.get_default_dtype()
    return _finish(np.full(_shape(size), value, dtype=d.np), d, device, requires_grad)


def zeros(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    return _filled(size, 0, dtype, device, requires_grad)


def ones(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    return _filled(size, 1, dtype, device, requires_grad)


def empty(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False, memory_format=None):
    d = dtype or dt.get_default_dtype()
    return _finish(np.empty(_shape(size), dtype=d.np), d, device, requires_grad)


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    d = dtype or dt.scalar_dtype(fill_value)
    return _finish(np.full(_shape((size,) if isinstance(size, int) else tuple(size)), fill_value,
                           dtype=d.np), d, device, requires_grad)


def _like(input, dtype):
    return dtype or input._dtype


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None):
    return _filled(tuple(input.shape), 0, _like(input, dtype), device, requires_grad)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    return _filled(tuple(input.shape), 1, _like(input, dtype), device, requires_grad)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None):
    d = _like(input, dtype)
    return _finish(np.empty(input._data.shape, d.np), d, device, requires_grad)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    return _filled(tuple(input.shape), fill_value, _like(input, dtype), device, requires_grad)


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    d = dtype or dt.get_default_dtype()
    return _finish(np.eye(n, n if m is None else m, dtype=d.np), d, device, requires_grad)


def arange(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None,
           requires_grad=False):
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    if dtype is None:
        dtype = dt.int64 if all(isinstance(v, int) for v in vals) else dt.get_default_dtype()
    n = int(math.ceil((end - start) / step))
    if dtype.is_floating_point:
        arr = (start + np.arange(n, dtype=np.float64) * step).astype(dtype.np)
    else:
        arr = (start + np.arange(n) * step).astype(dtype.np)
    return _finish(arr, dtype, device, requires_grad)


def range_(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    d = dtype or dt.get_default_dtype()
    n = int(math.floor((end - start) / step)) + 1
    return _finish((start + np.arange(n) * step).astype(d.np), d, device, requires_grad)


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    d = dtype or dt.get_default_dtype()
    if steps < 0:
        raise RuntimeError("linspace: number of steps must be non-negative")
    # PyTorch computes the two halves from both ends (symmetric rounding)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    i = np.arange(steps, dtype=np.float64)
    half = steps // 2
    arr = np.where(i < half, start + step * i, end - step * (steps - 1 - i))
    if d.category < 2:
        arr = np.trunc(arr)
    return _finish(arr.astype(d.np), d, device, requires_grad)


def logspace(start, end, steps, base=10.0, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    d = dtype or dt.get_default_dtype()
    lin = linspace(start, end, steps, dtype=dt.float64)._data
    return _finish(np.power(base, lin).astype(d.np), d, device, requires_grad)


def tril_indices(row, col, offset=0, *, dtype=None, device=None):
    r, c = np.tril_indices(row, offset, col)
    return tensor(np.stack([r, c]).astype(np.int64), dtype=dtype or dt.int64)


def triu_indices(row, col, offset=0, *, dtype=None, device=None):
    r, c = np.triu_indices(row, offset, col)
    return tensor(np.stack([r, c]).astype(np.int64), dtype=dtype or dt.int64)


def complex(real, imag):
    return wrap((real._data + 1j * imag._data).astype(
        np.complex128 if real._dtype is dt.float64 else np.complex64),
        dt.complex128 if real._dtype is dt.float64 else dt.complex64)


# ---- random numbers ----------------------------------------------------------------------------

_DEFAULT_SEED = 67280421310721


class Generator:
    """torch.Generator: a seeded source of random numbers (NumPy's PCG64 underneath)."""

    def __init__(self, device="cpu"):
        self.device = canonical(device)
        self._seed = _DEFAULT_SEED
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed):
        seed = int(seed)
        if seed < 0:
            seed &= 0xFFFFFFFFFFFFFFFF
        self._seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self):
        s = int(np.random.SeedSequence().entropy) & 0xFFFFFFFFFFFFFFFF
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    def get_state(self):
        st = self._rng.bit_generator.state
        blob = repr((self._seed, st)).encode()
        return wrap(np.frombuffer(blob, np.uint8).copy(), dt.uint8)

    def set_state(self, state):
        import ast
        seed, st = ast.literal_eval(bytes(state._data).decode())
        self._seed = seed
        self._rng = np.random.Generator(np.random.PCG64())
        self._rng.bit_generator.state = st
        return self


default_generator = Generator()


def _gen(generator):
    return (generator or default_generator)._rng


def manual_seed(seed):
    default_generator.manual_seed(seed)
    return default_generator


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


def _float_dtype(dtype, op):
    d = dtype or dt.get_default_dtype()
    if not d.is_floating_point:
        raise RuntimeError(f"{op}: \"{op}\" not implemented for '{d.name.capitalize()}' "
                           "(a floating point dtype is needed)")
    return d


def rand(*size, generator=None, out=None, dtype=None, layout=None, device=None,
         requires_grad=False, pin_memory=False):
    d = _float_dtype(dtype, "rand")
    arr = _gen(generator).random(_shape(size), dtype=np.float64 if d is dt.float64 else np.float32)
    return _finish(arr.astype(d.np, copy=False), d, device, requires_grad)


def randn(*size, generator=None, out=None, dtype=None, layout=None, device=None,
          requires_grad=False, pin_memory=False):
    d = _float_dtype(dtype, "randn")
    arr = _gen(generator).standard_normal(_shape(size),
                                          dtype=np.float64 if d is dt.float64 else np.float32)
    return _finish(arr.astype(d.np, copy=False), d, device, requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, out=None, dtype=None, layout=None,
            device=None, requires_grad=False):
    if size is None:          # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        raise TypeError("randint() missing required argument 'high'")
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= "
                           f"to={high}")
    d = dtype or dt.int64
    arr = _gen(generator).integers(low, high, size=_shape(tuple(size)))
    return _finish(arr.astype(d.np), d, device, requires_grad)


def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    d = dtype or dt.int64
    return _finish(_gen(generator).permutation(n).astype(d.np), d, device, requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return rand(*input.shape, dtype=dtype or input._dtype, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return randn(*input.shape, dtype=dtype or input._dtype, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False):
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input._dtype)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, device=None,
           requires_grad=False):
    rng = _gen(generator)
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    if size is not None:
        shape = _shape(tuple(size))
    else:
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
    if np.any(np.asarray(s) < 0):
        raise RuntimeError(f"normal expects std >= 0.0, but found std {np.min(s)}")
    d = dtype or (mean._dtype if isinstance(mean, Tensor) else std._dtype if isinstance(std, Tensor)
                  else dt.get_default_dtype())
    arr = m + s * rng.standard_normal(shape)
    return _finish(np.asarray(arr).astype(d.np), d, device, requires_grad)


def bernoulli(input, p=None, *, generator=None, out=None):
    probs = input._data if p is None else np.full(input._data.shape, p)
    if np.any((probs < 0) | (probs > 1)):
        raise RuntimeError("bernoulli: Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    arr = (_gen(generator).random(input._data.shape) < probs).astype(input._dtype.np)
    return wrap(arr, input._dtype)


def poisson(input, generator=None):
    return wrap(_gen(generator).poisson(input._data).astype(input._dtype.np), input._dtype)


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    p = input._data.astype(np.float64)
    if p.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim (got shape {list(input.shape)})")
    if np.any(p < 0) or np.any(~np.isfinite(p)):
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or "
                           "element < 0")
    rows = p.reshape(-1, p.shape[-1])
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           "without replacement")
    rng = _gen(generator)
    res = np.empty((rows.shape[0], num_samples), np.int64)
    for i, r in enumerate(rows):
        s = r.sum()
        if s <= 0:
            raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities "
                               "<= 0)")
        if not replacement and np.count_nonzero(r) < num_samples:
            raise RuntimeError("multinomial: invalid multinomial distribution (with replacement="
                               "False, not enough non-negative category to sample)")
        res[i] = rng.choice(r.shape[0], size=num_samples, replace=replacement, p=r / s)
    return wrap(res.reshape(p.shape[:-1] + (num_samples,)), dt.int64)


# in-place random fills used by nn.init and Tensor methods
def uniform_(t, a=0.0, b=1.0, generator=None):
    t._data[...] = _gen(generator).uniform(a, b, t._data.shape)
    t._bump()
    return t


def normal_(t, mean=0.0, std=1.0, generator=None):
    t._data[...] = _gen(generator).normal(mean, std, t._data.shape)
    t._bump()
    return t


def bernoulli_(t, p=0.5, generator=None):
    pp = p._data if isinstance(p, Tensor) else p
    t._data[...] = _gen(generator).random(t._data.shape) < pp
    t._bump()
    return t


def random_(t, from_=0, to=None, generator=None):
    if to is None:
        to = 2 ** 24 if t._dtype.is_floating_point else np.iinfo(t._dtype.np).max
    t._data[...] = _gen(generator).integers(from_, to, t._data.shape)
    t._bump()
    return t


def exponential_(t, lambd=1.0, generator=None):
    t._data[...] = _gen(generator).exponential(1.0 / lambd, t._data.shape)
    t._bump()
    return t
