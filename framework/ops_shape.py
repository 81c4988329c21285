"""Shape and view ops. Views (view, reshape when possible, permute, transpose, expand, slicing,
squeeze/unsqueeze, narrow, unbind, split, chunk, diagonal) share memory with their input."""
import builtins
import operator

import numpy as np

from compiler.ir.registry import REGISTRY, norm_dim
from compiler.ops.layout import infer_shape
from runtime import dtypes as dt
from ._dispatch import STATE, apply, rename, values, const, saved_extra
from .tensor import Tensor
from . import _memory_format as _mf
from .nested._storage import NestedLayoutError

P = REGISTRY


def _sizes(args):
    if type(args) is tuple:
        for a in args:
            if type(a) is not int:
                break
        else:
            return args         # (x.view(2, 8): already a tuple of ints)
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    elif len(args) == 1 and isinstance(args[0], Tensor) and args[0].ndim:
        args = args[0].tolist()
    try:    # ints, NumPy ints and 0-d integer tensors all name a size/dim
        return tuple(operator.index(a) for a in args)
    except TypeError:
        bad = next(a for a in args if not hasattr(a, "__index__"))
        raise TypeError(f"expected a sequence of ints for sizes/dims, but got an element of type "
                        f"{type(bad).__name__} in {list(args)!r}") from None


def _kw_sizes(name, args, kw, key):
    """The size given by keyword (x.view(size=(3, 2)), x.reshape(shape=...), x.expand(size=...)
    as PyTorch's argument names) instead of positionally."""
    if not kw:
        return args
    if args or set(kw) != {key}:
        bad = next((k for k in kw if k != key), key)
        raise TypeError(f"{name}() got an unexpected keyword argument '{bad}'")
    return (kw[key],)


def view(input, *shape, **kw):
    shape = _kw_sizes("view", shape, kw, "size")
    if len(shape) == 1 and isinstance(shape[0], dt.DType):
        return _view_dtype(input, shape[0])
    shape = infer_shape("view", _sizes(shape), input._data.size, input._data.shape)
    a = input._data
    if a.ndim and not (type(a) is np.ndarray and a.flags.c_contiguous) and \
            not input.is_contiguous():    # (NumPy's flag implies it, and is one lookup)
        probe = input._data.view()
        try:
            probe.shape = shape
        except AttributeError:
            raise RuntimeError(f"view size is not compatible with input tensor's size and stride "
                               f"(at least one dimension spans across two contiguous subspaces). "
                               f"Use .reshape(...) instead. (input shape {list(input.shape)}, "
                               f"stride {list(input.stride())}, view shape {list(shape)})") from None
    return apply(P["reshape"], input, shape=shape)


def _view_dtype(input, d):
    """x.view(dtype): reinterpret the bytes; a size change scales the last dim like torch."""
    from ._dispatch import wrap
    a = input._data
    if ((d.round is not None or input._dtype.round is not None) and d is not input._dtype
            and isinstance(a, np.ndarray)):
        return _view_bytes(input, d)
    if d.itemsize != input._dtype.itemsize:
        what = f"to view {dt.tname(input._dtype)} as {dt.tname(d)} (different element sizes)"
        if a.ndim == 0:
            raise RuntimeError(f"self.dim() cannot be 0 {what}")
        if a.strides[-1] != a.itemsize and a.shape[-1] != 1:
            raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {input.stride(-1)}")
        if d.itemsize > a.itemsize:
            k = d.itemsize // a.itemsize
            if a.shape[-1] % k:
                raise RuntimeError(f"self.size(-1) must be divisible by {k} {what}, but got "
                                   f"{a.shape[-1]}")
            if input.storage_offset() % k:
                raise RuntimeError(f"self.storage_offset() must be divisible by {k} {what}, but "
                                   f"got {input.storage_offset()}")
            if builtins.any(s % k for s in input.stride()[:-1]):
                raise RuntimeError(f"self.stride(i) must be divisible by {k} for all i < -1 "
                                   f"{what} (strides {list(input.stride())})")
    r = wrap(a.view(d.np), d)
    r._base = input._base if input._base is not None else input
    return r


def _view_bytes(input, d):
    """x.view(dtype) to or from complex32 / float8 through the bytes PyTorch stores (complex32:
    float16 (real, imag) pairs): a copy, not a view, as these dtypes are held in wider NumPy
    arrays (runtime.dtypes)."""
    from ._dispatch import wrap, wrap_like
    a, src = input._data.view(np.ndarray), input._dtype      # (interpret buffers: host memory)
    isz = src.itemsize
    if d.itemsize != isz:       # PyTorch's checks, on the element sizes it sees
        what = f"to view {dt.tname(src)} as {dt.tname(d)} (different element sizes)"
        if a.ndim == 0:
            raise RuntimeError(f"self.dim() cannot be 0 {what}")
        if input.stride(-1) != 1 and a.shape[-1] != 1:
            raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {input.stride(-1)}")
        k = d.itemsize // isz
        if k > 1 and a.shape[-1] % k:
            raise RuntimeError(f"self.size(-1) must be divisible by {k} {what}, but got "
                               f"{a.shape[-1]}")
    a1 = a if a.ndim else a.reshape(1)
    if src is dt.complex32:
        b = dt.chalf_pairs(a1)                      # (..., 2) float16
        b = b.reshape(a1.shape[:-1] + (-1,)).view(np.uint8)
    elif src in dt.FLOAT8:
        b = dt.FLOAT8[src].encode(a1)
    else:
        b = np.ascontiguousarray(a1).view(np.uint8)
    if d is dt.complex32:
        h = b.view(np.float16)
        r = dt.chalf_from_pairs(h.reshape(h.shape[:-1] + (-1, 2)))
    elif d in dt.FLOAT8:
        r = dt.FLOAT8[d].decode(b)
    else:
        r = b.view(d.np)
    r = r.reshape(()) if a.ndim == 0 else r
    return wrap(r, d) if input._device.type == "cpu" else wrap_like(r, d, input)


def reshape(input, *shape, **kw):
    shape = _kw_sizes("reshape", shape, kw, "shape")
    shape = infer_shape("reshape", _sizes(shape), input._data.size, input._data.shape)
    out = apply(P["reshape"], input, shape=shape)
    if shape == input._data.shape:
        rename(out, "ViewBackward0")
    a = input._data
    if out._node is not None and type(a) is np.ndarray and not a.flags.c_contiguous and \
            not input.is_contiguous():
        # PyTorch's reshape of a non-contiguous tensor: _reshape_alias when the strides allow a
        # view, else a copy and _unsafe_view
        rename(out, "ReshapeAliasBackward0" if np.shares_memory(out._data, a)
               else "UnsafeViewBackward0")
    return out


def view_as(input, other):
    return view(input, other.shape)


def reshape_as(input, other):
    return reshape(input, other.shape)


def flatten(input, start_dim=0, end_dim=-1):
    n = input.ndim
    s, e = norm_dim("flatten", start_dim, n), norm_dim("flatten", end_dim, n)
    if n == 0:
        return reshape(input, (1,))
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:          # torch returns the tensor itself (no view)
        return input
    shp = input._data.shape
    k = 1
    for x in shp[s:e + 1]:
        k *= x
    return reshape(input, shp[:s] + (k,) + shp[e + 1:])


ravel = lambda input: reshape(input, (-1,))  # noqa: E731


def unflatten(input, dim, sizes):
    d = norm_dim("unflatten", dim, input.ndim)
    shp = input._data.shape
    sizes = tuple(sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    try:
        inner = infer_shape("unflatten", sizes, shp[d])
    except RuntimeError:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the "
                           f"size of dim {dim} ({shp[d]}) in the input tensor") from None
    return view(input, shp[:d] + inner + shp[d + 1:])


def squeeze(input, dim=None, *more):
    shp = input._data.shape
    if more:                                   # x.squeeze(0, 1): several dims
        dim = (dim,) + more
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dl = [norm_dim("squeeze", d, input.ndim) for d in dims]
        ds = set(dl)
        if len(ds) != len(dl):
            rep = next(d for d in dl if dl.count(d) > 1)
            raise RuntimeError(f"squeeze: dim {rep} appears multiple times in the list of dims "
                               f"{list(dims)}")
        new = tuple(s for i, s in enumerate(shp) if not (i in ds and s == 1))
    # PyTorch's overloads: squeeze() / squeeze(dim) / squeeze(dims) name 0 / 1 / 2
    name = ("SqueezeBackward0" if dim is None else
            "SqueezeBackward2" if isinstance(dim, (tuple, list)) else "SqueezeBackward1")
    return rename(apply(P["reshape"], input, shape=new), name)


def unsqueeze(input, dim):
    n = input.ndim + 1
    d = norm_dim("unsqueeze", dim, n)
    shp = input._data.shape
    return rename(apply(P["reshape"], input, shape=shp[:d] + (1,) + shp[d:]), "UnsqueezeBackward0")


def permute(input, *args, dims=None):
    if not args and dims is None:       # (torch needs dims even for a 0-d tensor: pass ())
        raise TypeError('permute() missing 1 required positional arguments: "dims"')
    dims = args if dims is None else dims
    r = apply(P["permute"], input, dims=tuple(norm_dim("permute", d, input.ndim)
                                               for d in _sizes(dims)))
    return saved_extra(r, dims=tuple(_sizes(dims))) if r._node is not None else r


def transpose(input, dim0, dim1):
    n = input.ndim
    a, b = norm_dim("transpose", dim0, n), norm_dim("transpose", dim1, n)
    if n == 0:          # (a view of the 0-d tensor, as torch's)
        return rename(apply(P["reshape"], input, shape=()), "TransposeBackward0")
    perm = list(range(n))
    perm[a], perm[b] = perm[b], perm[a]
    r = rename(apply(P["permute"], input, dims=tuple(perm)), "TransposeBackward0")
    return saved_extra(r, dim0=dim0, dim1=dim1) if r._node is not None else r


swapaxes = swapdims = transpose


def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    if input.ndim < 2:      # torch: an alias view of the tensor, not the tensor itself
        return rename(apply(P["reshape"], input, shape=input._data.shape), "TBackward0")
    return rename(apply(P["permute"], input, dims=(1, 0)), "TBackward0")   # (transpose(0, 1))


def _T(input):
    if input.ndim == 0:
        import warnings
        warnings.warn("Tensor.T is deprecated on 0-D tensors. This function is the identity in "
                      "these cases.", UserWarning, stacklevel=3)
    elif input.ndim != 2:
        import warnings
        warnings.warn("The use of `x.T` on tensors of dimension other than 2 to reverse their shape "
                      "is deprecated and it will throw an error in a future release. Consider "
                      "`x.mT` to transpose batches of matrices or `x.permute(*torch.arange(x.ndim "
                      "- 1, -1, -1))` to reverse the dimensions of a tensor.", UserWarning,
                      stacklevel=3)
    return apply(P["permute"], input, dims=tuple(reversed(range(input.ndim))))


def _mT(input):
    if input.ndim == 0:
        import warnings
        warnings.warn("Tensor.mT is deprecated on 0-D tensors. This function is the identity in "
                      "these cases.", UserWarning, stacklevel=3)
        return input
    if input.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. Got "
                           f"{input.ndim}-D tensor.")
    return transpose(input, -2, -1)


def adjoint(input):
    t = _mT(input)
    return apply(P["conj"], t) if t._dtype.is_complex else t


def _mH(input):
    return adjoint(input)


def movedim(input, source, destination):
    n = input.ndim
    src = [norm_dim("movedim", d, n) for d in (source if isinstance(source, (tuple, list)) else [source])]
    dst = [norm_dim("movedim", d, n) for d in (destination if isinstance(destination, (tuple, list))
                                               else [destination])]
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({src} dims) should "
                           f"contain the same number of dims as destination ({dst} dims)")
    for name, ds in (("source", src), ("destination", dst)):
        if len(set(ds)) != len(ds):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({ds})")
    if n == 0:
        src = dst = []
    order = [d for d in range(n) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, order)


moveaxis = movedim


def expand(input, *sizes, **kw):
    kw.pop("implicit", None)
    sizes = _kw_sizes("expand", sizes, kw, "size")
    return apply(P["expand"], input, shape=_sizes(sizes))


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, size):
    return expand(input, tuple(size))


def broadcast_tensors(*tensors):
    from compiler.ir.registry import broadcast_shapes
    shape = broadcast_shapes("broadcast_tensors", *[tuple(x.shape) for x in tensors])
    # a tensor that already has the shape is returned itself (torch's expand_outplace)
    return tuple(x if tuple(x.shape) == shape else expand(x, shape) for x in tensors)


def broadcast_shapes(*shapes):
    """torch.broadcast_shapes (torch._refs._broadcast_shapes' checks and messages)."""
    from .tensor import Size
    shapes = [(operator.index(s),) if hasattr(s, "__index__") else tuple(s) for s in shapes]
    common = [1] * builtins.max((len(s) for s in shapes), default=0)
    for i, s in enumerate(shapes):
        for k in range(-1, -1 - len(s), -1):
            if s[k] < 0:
                raise ValueError("Attempting to broadcast a dimension with negative length!")
            if common[k] == 1:
                common[k] = s[k]
            elif s[k] != 1 and s[k] != common[k]:
                raise RuntimeError(f"Attempting to broadcast a dimension of length {s[k]} at {k}! "
                                   f"Mismatching argument at index {i} had {tuple(s)}; but "
                                   f"expected shape should be broadcastable to {common}")
    return Size(common)


def contiguous(input, memory_format=None):
    if memory_format is not None and _mf.is_channels_last(memory_format):
        _mf.check_rank("contiguous", input.ndim, memory_format)
        if input.is_contiguous(memory_format=memory_format):
            return input
        r = apply(P["copy"], input)
        if type(r._data) is np.ndarray:      # (cpu; device buffers keep their own layout)
            r._data = _mf.laid_out(r._data, memory_format)
        return r
    _mf.check("contiguous", memory_format)
    if input.is_contiguous():
        return input
    return _copy_contig(input)


def _copy_contig(input):
    r = apply(P["copy"], input)
    if type(r._data) is np.ndarray:      # (cpu; device buffers keep their own types)
        r._data = np.asarray(r._data, order="C")      # (0-d stays 0-d)
    return r


def narrow(input, dim, start, length):
    try:
        if input.ndim == 0:
            raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
        d = norm_dim("narrow", dim, input.ndim)
        size = input._data.shape[d]
        if isinstance(start, Tensor):
            start = int(start.item())
        if start < -size or start > size:
            raise IndexError(f"narrow(): start out of range (expected to be in range of [{-size}, "
                             f"{size}], but got {start}) for tensor of shape {list(input.shape)}")
        if start < 0:
            start += size
        if length < 0:
            raise RuntimeError(f"narrow(): length must be non-negative (got {length}).")
        if start + length > size:
            raise RuntimeError(f"narrow(): start ({start}) + length ({length}) exceeds dimension "
                               f"size ({size}) of dim {d} in shape {list(input.shape)}.")
        return apply(P["slice"], input, dim=d, start=start, stop=start + length, step=1)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.narrow(input, dim, start, length)


def select(input, dim, index):
    # (the select primitive's meta rule checks the dim and the index: torch's errors)
    if type(index) is not int:
        index = operator.index(index)
    if type(dim) is not int:
        dim = operator.index(dim)
    if dim < 0 and input.ndim:
        dim = norm_dim("select", dim, input.ndim)
    return apply(P["select"], input, dim=dim, index=index)


def _multi_output_views(outs, src, name):
    """PyTorch refuses in-place writes (while autograd records) to the views a function that
    returns several views made (split, chunk, unbind): mark them for check_inplace_leaf."""
    if STATE.grad_enabled and src.requires_grad:
        for i, o in enumerate(outs):
            o._multi_view = (i, name)
    return outs


def unbind(input, dim=0):
    if input.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = norm_dim("unbind", dim, input.ndim)
    return _multi_output_views(tuple(rename(select(input, d, i), "UnbindBackward0")
                                     for i in range(input._data.shape[d])), input, "Unbind")


def split(tensor, split_size_or_sections, dim=0):
    try:
        if tensor.ndim == 0:
            raise RuntimeError("split expects at least a 1-dimensional tensor")
        d = norm_dim("split", dim, tensor.ndim)
        size = tensor._data.shape[d]
        if isinstance(split_size_or_sections, Tensor) and split_size_or_sections.ndim == 0:
            split_size_or_sections = int(split_size_or_sections)
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step < 0:
                raise RuntimeError(f"split expects split_size be non-negative, but got "
                                   f"split_size={step}")
            if step == 0 and size:
                raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                                   f"dimension size of {size} (split of shape "
                                   f"{list(tensor.shape)}, dim {d})")
            bounds = [(i, builtins.min(i + step, size)) for i in range(0, size, step)] if step \
                else []
            bounds = bounds or [(0, 0)]
        else:
            secs = [int(s) for s in split_size_or_sections]
            if builtins.sum(secs) != size or builtins.any(s < 0 for s in secs):
                raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} "
                                   f"(input tensor's size at dimension {d}), but got "
                                   f"split_sizes={secs}")
            bounds, pos = [], 0
            for s in secs:
                bounds.append((pos, pos + s))
                pos += s
        name = "Split" if isinstance(split_size_or_sections, int) else "SplitWithSizes"
        return _multi_output_views(
            tuple(rename(apply(P["slice"], tensor, dim=d, start=a, stop=b, step=1),
                         name + "Backward0") for a, b in bounds), tensor, name)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.split(tensor, split_size_or_sections, dim)


def chunk(input, chunks, dim=0):
    try:
        if input.ndim == 0:
            raise RuntimeError("chunk expects at least a 1-dimensional tensor")
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        d = norm_dim("chunk", dim, input.ndim)
        size = input._data.shape[d]
        if size == 0:           # torch: `chunks` empty pieces (split would give one)
            return split(input, [0] * chunks, d)
        return split(input, -(-size // chunks), d)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.split(input, chunks, dim, "chunk")


def tensor_split(input, indices_or_sections=None, dim=0, *, indices=None, sections=None):
    if indices_or_sections is None:         # torch's keyword forms: indices= / sections=
        indices_or_sections = indices if indices is not None else sections
    if input.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a "
                           "tensor with 0 dims")
    d = norm_dim("tensor_split", dim, input.ndim)
    size = input._data.shape[d]
    if isinstance(indices_or_sections, Tensor):
        if indices_or_sections._dtype.category != 1 or indices_or_sections.ndim > 1:
            raise RuntimeError(f"tensor_split expected tensor_indices_or_sections to be a zero-"
                               f"dimensional or one-dimensional tensor of integers, but got shape "
                               f"{list(indices_or_sections.shape)} dtype {indices_or_sections.dtype}")
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, int):
        n = indices_or_sections
        if n <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be larger than 0, got {n}")
        q, r = divmod(size, n)
        bounds, pos = [], 0
        for i in range(n):
            ln = q + (1 if i < r else 0)
            bounds.append((pos, pos + ln))
            pos += ln
    else:
        # each piece is input[a:b] with Python slice rules (negative indices count from the end)
        idx = [0] + [int(i) for i in indices_or_sections] + [size]
        bounds = []
        for a, b in zip(idx[:-1], idx[1:]):
            a, b, _ = slice(a, b).indices(size)
            bounds.append((a, builtins.max(a, b)))
    return tuple(apply(P["slice"], input, dim=d, start=a, stop=b, step=1) for a, b in bounds)


def _split_check(name, input, sections, dim, least):
    if input.ndim < least:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {least} dimension, but "
                           f"got a tensor with {input.ndim} dimensions!")
    if isinstance(sections, int):
        size = input._data.shape[dim]
        if sections == 0 or size % sections:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the "
                               f"size of the dimension {size} is not divisible by the split_size "
                               f"{sections}!")
    return tensor_split(input, sections, dim)


def hsplit(input, sections):
    return _split_check("hsplit", input, sections, 1 if input.ndim > 1 else 0, 1)


def vsplit(input, sections):
    return _split_check("vsplit", input, sections, 0, 2)


def _tensor_list(op, tensors):
    """The tensors of a cat/stack argument, refused as PyTorch's argument parser does."""
    if isinstance(tensors, Tensor):
        raise TypeError(f"{op}(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        f"Tensor")
    tensors = list(tensors)
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got "
                            f"{type(x).__name__}")
    return tensors


def cat(tensors, dim=0, *, out=None, axis=None):
    from .ops_math import write_out
    if axis is not None:        # torch's NumPy-style alias: cat(ts, axis=1)
        dim = axis
    tensors = _tensor_list("cat", tensors)
    if not tensors:        # (PyTorch checks the Python argument before dispatching: ValueError)
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    r = apply(P["cat"], *tensors, dim=dim)
    if out is None and tensors[0].ndim in (4, 5) and not r.is_nested:
        # channels-last inputs that all agree give a channels-last result (the primitive, also
        # used inside other ops, makes contiguous ones)
        r = _mf.lay_out(r, _mf.common([t._data for t in tensors]))
    if r._node is not None:
        saved_extra(r, dim=dim)
    return write_out(r, out)


concat = concatenate = cat


def stack(tensors, dim=0, *, out=None):
    tensors = _tensor_list("stack", tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    if builtins.any(t.is_nested for t in tensors):        # framework.nested
        from .nested import _ops as N
        return N.stack(tensors, dim)
    s0 = tensors[0].shape
    for i, x in enumerate(tensors):
        if x.shape != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} at "
                               f"entry 0 and {list(x.shape)} at entry {i}")
    d = norm_dim("stack", dim, len(s0) + 1)
    r = cat([unsqueeze(x, d) for x in tensors], d, out=out)
    if out is None:
        # channels-last inputs that all agree: each slice keeps their layout; else row-major
        # (cat's own rule would read the unsqueezed inputs)
        fmt = _mf.common([t._data for t in tensors]) if len(s0) in (4, 5) else \
            _mf.contiguous_format
        if fmt is _mf.contiguous_format:
            r = _mf.lay_out(r, fmt)
        elif type(r._data) is np.ndarray and r._data.size:
            r._data = _mf.in_order(r._data, _mf.stacked(fmt, len(s0), d))
    r = rename(r, "StackBackward0")
    return saved_extra(r, dim=dim) if r._node is not None else r


def _nonempty(tensors, name):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return tensors


def hstack(tensors):
    tensors = [atleast_1d(x) for x in _nonempty(tensors, "hstack")]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([atleast_2d(x) for x in _nonempty(tensors, "vstack")], 0)


row_stack = vstack


def dstack(tensors):
    return cat([atleast_3d(x) for x in _nonempty(tensors, "dstack")], 2)


def column_stack(tensors):
    return hstack([reshape(x, (-1, 1)) if x.ndim <= 1 else x
                   for x in _nonempty(tensors, "column_stack")])


def _each(f, xs):
    """atleast_*d of one tensor, or a tuple for several (or one list/tuple of them)."""
    if len(xs) == 1 and not isinstance(xs[0], (list, tuple)):
        return f(xs[0])
    return tuple(f(x) for x in (xs[0] if len(xs) == 1 else xs))


def _atleast_1d(x):
    return reshape(x, (1,)) if x.ndim == 0 else x


def _atleast_2d(x):
    if x.ndim == 1:
        return unsqueeze(x, 0)
    return reshape(x, (1,) * (2 - x.ndim) + tuple(x.shape)) if x.ndim < 2 else x


def _atleast_3d(x):
    if x.ndim == 0:
        return reshape(x, (1, 1, 1))
    if x.ndim == 1:         # (torch: unsqueeze twice)
        return unsqueeze(unsqueeze(x, 0), -1)
    if x.ndim == 2:
        return unsqueeze(x, -1)
    return x


def atleast_1d(*tensors):
    return _each(_atleast_1d, tensors)


def atleast_2d(*tensors):
    return _each(_atleast_2d, tensors)


def atleast_3d(*tensors):
    return _each(_atleast_3d, tensors)


def flip(input, *args, dims=None):
    # torch.flip(x, (0, 1)), x.flip((0, 1)), x.flip(0, 1) and x.flip(dims=(0,)) name the same dims
    if dims is None:
        dims = args
    elif args:
        raise TypeError("flip() got multiple values for argument 'dims'")
    if isinstance(dims, int):
        dims = (dims,)
    dims = _sizes(tuple(dims))
    if input._dtype.barebones:      # (complex32: the primitive's check, by the dims flipped)
        dt.refuse_barebones("flip_cpu", input._dtype)
    return apply(P["flip"], input, dims=tuple(norm_dim("flip", d, input.ndim) for d in dims))


def fliplr(input):
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, (1,))


def flipud(input):
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, (0,))


def roll(input, shifts, dims=None):
    if isinstance(shifts, Tensor):          # a 0-d (or 1-d) integer tensor of shifts
        shifts = shifts.tolist()
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if dims is None:
        return rename(view(roll(flatten(input), shifts, 0), input.shape), "RollBackward0")
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:"
                           f"{len(dims)}")
    r = input
    for s, d in zip(shifts, dims):
        d = norm_dim("roll", d, input.ndim)
        n = input._data.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            a = apply(P["slice"], r, dim=d, start=n - s, stop=n, step=1)
            b = apply(P["slice"], r, dim=d, start=0, stop=n - s, step=1)
            r = apply(P["cat"], a, b, dim=d)
    if r is input:              # nothing moved: still new memory, as torch's
        r = _copy_contig(input)
    return rename(r, "RollBackward0")


def repeat(input, *sizes):
    sizes = _sizes(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                           f"dimensions of tensor (repeat {list(sizes)}, shape {list(input.shape)})")
    shp = (1,) * (len(sizes) - input.ndim) + tuple(input._data.shape)
    if builtins.any(r < 0 for r in sizes):
        out = [r * s for r, s in zip(sizes, shp)]
        raise RuntimeError(f"Trying to create tensor with negative dimension "
                           f"{builtins.min(out)}: {out} (repeat {list(sizes)}, "
                           f"shape {list(input.shape)})")
    x = reshape(input, shp)
    # interleave a size-1 axis before each dim, expand it, merge: out[r*n + i] = x[i]
    x2 = reshape(x, tuple(v for s in shp for v in (1, s)))
    e = expand(x2, tuple(v for r, s in zip(sizes, shp) for v in (r, s)))
    r = reshape(e, tuple(r * s for r, s in zip(sizes, shp)))
    if r._base is not None or (type(r._data) is np.ndarray and not r._data.flags.c_contiguous):
        # reshape gave a view (of the input or of the expanded one), but repeat always returns
        # new contiguous memory
        r = _copy_contig(r)
    return rename(r, "RepeatBackward0")


def tile(input, dims, *more):
    dims = (dims,) + more if isinstance(dims, int) else tuple(dims)   # x.tile(2) / x.tile(2, 3)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    from .ops_index import index_select
    from .creation import tensor
    from ._device_ops import host
    if repeats is None:     # torch.repeat_interleave(repeats): indices repeated
        reps = input
        rv = host(values(reps))   # the output's length depends on them (compile(): no replays)
        if reps.ndim != 1 or reps._dtype.category != 1 or (reps.numel() and rv.min() < 0):
            raise RuntimeError(f"repeat_interleave: repeats must be a 1-d tensor of non-negative "
                               f"integers (got shape {list(reps.shape)}, dtype {reps.dtype})")
        return tensor(np.repeat(np.arange(rv.shape[0]), rv), dtype=reps._dtype,
                      device=reps.device)
    x = input
    if dim is None:
        x = flatten(x)
        dim = 0
    d = norm_dim("repeat_interleave", dim, x.ndim)
    n = x._data.shape[d]
    r = host(values(repeats)) if isinstance(repeats, Tensor) else np.asarray(repeats)
    if r.ndim > 1:
        raise RuntimeError(f"repeat_interleave: repeats must be 0-dim or 1-dim tensor (got shape "
                           f"{list(r.shape)})")
    if r.dtype.kind not in "iu":
        if isinstance(repeats, Tensor):
            raise NotImplementedError(f"\"repeat_interleave_cpu\" not implemented for "
                                      f"'{dt.tname(repeats._dtype)}'")
        raise TypeError(f"repeat_interleave(): repeats must be an int or a Tensor of integers, "
                        f"got {type(repeats).__name__}")
    if r.ndim and r.shape[0] not in (1, n):
        raise RuntimeError(f"repeat_interleave: repeats must have the same size as input along dim, "
                           f"but got repeats.size(0) = {r.shape[0]} and input.size({d}) = {n}")
    if r.size and r.min() < 0:
        raise RuntimeError(f"repeat_interleave: repeats can not be negative (got {r.min()})")
    idx = np.repeat(np.arange(n), r if r.ndim and r.shape[0] == n else int(r.reshape(-1)[0]))
    if output_size is not None and idx.shape[0] != output_size:
        raise RuntimeError(f"repeat_interleave: allocated size {output_size} does not match the "
                           f"required size {idx.shape[0]}")
    idx = tensor(idx, dtype=dt.int64, device=x.device)
    if isinstance(repeats, Tensor) or x.ndim == 0 or r.ndim:
        return index_select(x, d, idx)
    # an int count: torch expands a new axis after dim, clones it row-major and views it
    # (ViewBackward0 over CloneBackward0), so every dtype takes it
    from .ops_math import clone
    k, shp = int(r), x._data.shape
    e = expand(unsqueeze(x, d + 1), *(shp[:d + 1] + (k,) + shp[d + 1:]))
    return view(clone(e, memory_format=_mf.contiguous_format), shp[:d] + (n * k,) + shp[d + 1:])


def _tri(input, diagonal, lower):
    from .creation import arange
    if input.ndim < 2:
        raise RuntimeError(f"{'tril' if lower else 'triu'}: input tensor must have at least 2 "
                           f"dimensions (got shape {list(input.shape)})")
    dt.refuse_barebones("tril" if lower else "triu", input._dtype)
    n, m = input._data.shape[-2:]
    i = reshape(arange(n, device=input.device), (n, 1))
    j = reshape(arange(m, device=input.device), (1, m))
    mask = const(apply(P["le"] if lower else P["ge"], apply(P["sub"], j, i), diagonal))
    r = apply(P["where"], mask, input, 0)
    if r._dtype is not input._dtype:
        r = apply(P["cast"], r, dtype=input._dtype)
    return rename(r, "TrilBackward0" if lower else "TriuBackward0")


def tril(input, diagonal=0):
    return _tri(input, diagonal, True)


def triu(input, diagonal=0):
    return _tri(input, diagonal, False)


def diagonal(input, offset=0, dim1=0, dim2=1):
    return apply(P["diagonal"], input, offset=offset, dim1=norm_dim("diagonal", dim1, input.ndim),
                 dim2=norm_dim("diagonal", dim2, input.ndim))


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """A copy of input with src written on its diagonal (the one diagonal() views)."""
    return apply(P["diagonal_scatter"], input, src, offset=offset,
                 dim1=norm_dim("diagonal_scatter", dim1, input.ndim),
                 dim2=norm_dim("diagonal_scatter", dim2, input.ndim))


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """A copy of input with src written at input[..., start:end:step, ...] (along dim)."""
    return apply(P["slice_scatter"], input, src,
                 dim=norm_dim("slice_scatter", dim, builtins.max(input.ndim, 1)),
                 start=start, stop=end, step=step)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    if input.ndim == 0:     # (torch: the output has 1 dim, so dim1=-2 is out of range)
        norm_dim("diag_embed", dim1, 1), norm_dim("diag_embed", dim2, 1)
        raise IndexError("diag_embed: input must be at least 1-D (got a 0-d tensor)")
    n = input.ndim + 1
    d1, d2 = norm_dim("diag_embed", dim1, n), norm_dim("diag_embed", dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}")
    if offset == 0 and (d1, d2) == (n - 2, n - 1):
        return apply(P["diag_embed"], input)
    # general case: scatter the last dim onto a diagonal of a zero (..., m, m) block, then move
    # the two new dims to (dim1, dim2)
    k = input._data.shape[-1] + builtins.abs(offset)
    from .ops_math import full_on
    z = full_on(input, tuple(input._data.shape[:-1]) + (k, k), 0, input._dtype)
    r = apply(P["diagonal_scatter"], z, input, offset=offset, dim1=n - 2, dim2=n - 1)
    if (d1, d2) != (n - 2, n - 1):
        r = _copy_contig(movedim(r, (n - 2, n - 1), (d1, d2)))   # torch's result is contiguous
    return rename(r, "DiagEmbedBackward0")


def diag(input, diagonal=0):
    if input.ndim == 1:
        n = input._data.shape[0] + builtins.abs(diagonal)
        from .creation import zeros
        z = zeros(n, n, dtype=input._dtype, device=input.device)
        return rename(apply(P["diagonal_scatter"], z, input, offset=diagonal, dim1=0, dim2=1),
                      "DiagEmbedBackward0")
    if input.ndim == 2:     # torch.diag copies the diagonal (unlike diagonal(), not a view)
        return rename(_copy_contig(apply(P["diagonal"], input, offset=diagonal, dim1=0, dim2=1)),
                      "DiagonalBackward0_copy")
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diagflat(input, offset=0):
    return diag(flatten(input), offset)


def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    dt.refuse_barebones("trace", input._dtype)
    if input._dtype is dt.bool_:        # torch has no bool trace kernel (sum of bools has one)
        raise NotImplementedError(f"\"trace\" not implemented for 'Bool' (input shape "
                                  f"{list(input.shape)})")
    from .ops_math import sum
    return rename(sum(diagonal(input)), "TraceBackward0")


# ---- complex views -----------------------------------------------------------------------------
# torch.real/imag/view_as_real/view_as_complex are views: writes through them reach the complex
# tensor (z.real.mul_(2)). Kiln's conj is materialised (a new tensor, is_conj() False), so
# view_as_real needs no resolve_conj first.

def _chalf_part(input, r, part):
    """complex32's parts are float16 copies (runtime.dtypes): writes into them go back into
    input (Tensor._bump)."""
    if input._dtype is dt.complex32:
        r.__dict__["_chalf_part"] = (input, part)
    return r


def real(input):
    if not input._dtype.is_complex:
        return input                    # torch returns the tensor itself
    return _chalf_part(input, apply(P["real"], input), "real")


def imag(input):
    return _chalf_part(input, apply(P["imag"], input), "imag")


def view_as_real(input):
    return _chalf_part(input, apply(P["view_as_real"], input), "pairs")


def view_as_complex(input):
    d = input._dtype
    if d not in (dt.float16, dt.float32, dt.float64):
        apply(P["view_as_complex"], input)          # the meta rule raises PyTorch's error
    if input.ndim == 0:
        raise RuntimeError("Input tensor must have one or more dimensions")
    if input.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    st = input.stride()
    if st[-1] != 1:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if any(s % 2 for s in st[:-1]):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    if input.storage_offset() % 2:
        raise RuntimeError("Tensor must have a storage_offset divisible by 2")
    return apply(P["view_as_complex"], input)


# ---- select_scatter, split_with_sizes, dsplit ---------------------------------------------------

def select_scatter(input, src, dim, index):
    """A copy of input with src written at input.select(dim, index)."""
    d = norm_dim("select_scatter", dim, input.ndim)
    size = input._data.shape[d]
    if index < -size or index >= size:
        raise IndexError(f"select_scatter(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {d}")
    index %= size
    shp = input._data.shape
    want = shp[:d] + shp[d + 1:]
    if tuple(src.shape) != want:
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(want)}")
    s = apply(P["reshape"], src, shape=shp[:d] + (1,) + shp[d + 1:])
    if s._dtype is not input._dtype:
        s = apply(P["cast"], s, dtype=input._dtype)
    return rename(apply(P["slice_scatter"], input, s, dim=d, start=index, stop=index + 1, step=1),
                  "SelectScatterBackward0")


def split_with_sizes(input, split_sizes, dim=0):
    if not isinstance(split_sizes, (list, tuple)):
        raise TypeError(f"split_with_sizes(): argument 'split_sizes' must be tuple of ints, not "
                        f"{type(split_sizes).__name__}")
    return split(input, list(split_sizes), dim)


def dsplit(input, indices_or_sections):
    return _split_check("dsplit", input, indices_or_sections, 2, 3)


# ---- as_strided ---------------------------------------------------------------------------------
# A view with the given size/stride/storage_offset over the tensor's storage: the as_strided
# primitive on the tensor itself (contiguous input: element positions and storage agree, so the
# gradient is exact) or on the tensor its memory belongs to (a non-contiguous view).

def _storage_numel(t):
    from compiler.ops.layout import _memory_of
    base = t._base if t._base is not None else t
    mem = _memory_of(base._data) if isinstance(base._data, np.ndarray) else None
    return mem[0].shape[0] if mem is not None else base._data.size


def as_strided(input, size, stride, storage_offset=None):
    from compiler.ops.layout import _as_strided_check, as_strided_extent
    from ._dispatch import STATE
    size, stride = _sizes((size,)), _sizes((stride,))
    if storage_offset is not None:
        storage_offset = operator.index(storage_offset)
    if STATE.tracer is not None:        # a traced value is its own contiguous storage
        return apply(P["as_strided"], input, size=size, stride=stride,
                     offset=storage_offset or 0)
    _as_strided_check("as_strided", size, stride, 0)
    own = input.storage_offset()
    off = own if storage_offset is None else storage_offset
    if off < 0:
        raise RuntimeError(f"as_strided: Tensor: invalid storage offset {off}")
    n = _storage_numel(input)
    need = as_strided_extent(size, stride, off)
    if need > n:
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset "
                           f"{off}, and itemsize {input._dtype.itemsize} requiring a storage size "
                           f"of {need * input._dtype.itemsize} are out of bounds for storage of "
                           f"size {n * input._dtype.itemsize}")
    src = input
    grad = STATE.grad_enabled and input.requires_grad
    if not input.is_contiguous():
        base = input._base
        if base is not None and base.is_contiguous() and (not grad or base.requires_grad):
            src, own = base, 0
        elif grad and type(input._data) is np.ndarray:
            # a non-contiguous tensor whose gradient the base cannot carry (its own history, or
            # a detached view): the values come from the storage and the gradient reaches the
            # input's own elements through input scattered into a snapshot of its storage (a
            # copy then, not a view)
            from compiler.ops.layout import _scatter_positions
            from ._dispatch import wrap
            flat, _ = _storage_of(input)
            pos = _scatter_positions(tuple(input.shape), input.stride(), own)
            store = apply(P["index_put"], wrap(flat.copy(), input._dtype), reshape(input, (-1,)),
                          wrap(pos.astype(np.int64), dt.int64), pos=(0,), accumulate=False)
            return apply(P["as_strided"], store, size=size, stride=stride, offset=off)
    return apply(P["as_strided"], src, size=size, stride=stride, offset=off - own)


def as_strided_scatter(input, src, size, stride, storage_offset=None):
    """A copy of input with src embedded where input.as_strided(size, stride, storage_offset)
    looks (positions count input's elements in row-major order, as on a fresh clone)."""
    size, stride = _sizes((size,)), _sizes((stride,))
    if src._dtype is not input._dtype:
        src = apply(P["cast"], src, dtype=input._dtype)
    return apply(P["as_strided_scatter"], input, src, size=size, stride=stride,
                 offset=0 if storage_offset is None else operator.index(storage_offset))


# ---- the *_copy forms of the views: the view's values in fresh contiguous memory ---------------

def _slice_view(input, dim=0, start=None, end=None, step=1):
    d = norm_dim("slice", dim, input.ndim)
    return apply(P["slice"], input, dim=d, start=start, stop=end, step=step)


def _expand_view(input, size, *, implicit=False):
    return expand(input, size)


def _make_copy(name, view_fn):
    def f(input, *args, out=None, **kw):
        from .ops_math import write_out
        r = view_fn(input, *args, **kw)
        if isinstance(r, tuple):
            if out is not None:
                for o, x in zip(out, r):
                    write_out(_copy_contig(x), o)
                return None
            return tuple(_copy_contig(x) for x in r)
        return write_out(_copy_contig(r), out)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"torch.{name}: {view_fn.__name__}(...) copied into new contiguous memory."
    return f


_COPY_VIEWS = {
    "view_copy": lambda input, *size: view(input, *size),
    "permute_copy": lambda input, dims: permute(input, dims),
    "transpose_copy": lambda input, dim0, dim1: transpose(input, dim0, dim1),
    "t_copy": lambda input: t(input),
    "expand_copy": _expand_view,
    "squeeze_copy": lambda input, dim=None: squeeze(input, dim),
    "unsqueeze_copy": lambda input, dim: unsqueeze(input, dim),
    "select_copy": lambda input, dim, index: select(input, dim, index),
    "slice_copy": _slice_view,
    "diagonal_copy": lambda input, offset=0, dim1=0, dim2=1: diagonal(input, offset, dim1, dim2),
    "unbind_copy": lambda input, dim=0: unbind(input, dim),
    "split_copy": lambda input, split_size, dim=0: split(input, split_size, dim),
    "split_with_sizes_copy": lambda input, split_sizes, dim=0: split_with_sizes(input, split_sizes,
                                                                                dim),
    "alias_copy": lambda input: input,
    "detach_copy": lambda input: input.detach(),
    "narrow_copy": lambda input, dim, start, length: narrow(input, dim, start, length),
    "view_as_real_copy": lambda input: view_as_real(input),
    "view_as_complex_copy": lambda input: view_as_complex(input),
    "unfold_copy": lambda input, dimension, size, step: input.unfold(dimension, size, step),
    "as_strided_copy": lambda input, size, stride, storage_offset=None: as_strided(
        input, size, stride, storage_offset),
}
for _n, _v in _COPY_VIEWS.items():
    _v.__name__ = _n[:-5]
    globals()[_n] = _make_copy(_n, _v)
_COPY_OPS = tuple(_COPY_VIEWS)


# ---- small Tensor queries and conversions (bound as methods in _tensor_methods) -----------------

def is_nonzero(input):
    n = input._data.size
    if n == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if n != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return input.item() != 0


def is_same_size(input, other):
    return tuple(input.shape) == tuple(other.shape)


def is_signed(input):
    d = input._dtype
    return d is not dt.bool_ and d is not dt.uint8 and not d.name.startswith("uint")


def _dim_order(input, *, ambiguity_check=False):
    """Dims from outermost to innermost in memory (stable for equal strides)."""
    st = input.stride()
    order = tuple(sorted(range(input.ndim), key=lambda d: -st[d]))
    if ambiguity_check:
        shp = input._data.shape
        for a, b in zip(order, order[1:]):
            if st[a] == st[b] or shp[a] == 1 or shp[b] == 1:
                raise RuntimeError("The tensor does not have unique dim order, or cannot map to "
                                   "contiguous or channels_last memory format")
    return order


def _to_complex(d, name):
    def f(input, memory_format=None):
        from .ops_math import cast
        return input if input._dtype is d else cast(input, d)
    f.__name__ = name
    return f


_cdouble = _to_complex(dt.complex128, "cdouble")
_cfloat = _to_complex(dt.complex64, "cfloat")


_chalf = _to_complex(dt.complex32, "chalf")


def _new_empty_strided(input, size, stride, *, dtype=None, layout=None, device=None,
                      requires_grad=False, pin_memory=False):
    from .creation import empty_strided
    return empty_strided(size, stride, dtype=dtype or input._dtype,
                         device=device if device is not None else input.device,
                         requires_grad=requires_grad)


# ---- in-place views, unsafe splits, sum_to_size, storage-level ops (resize_, set_) ---------------

def _swapaxes_(input, axis0, axis1):
    """Tensor.swapaxes_/swapdims_: self becomes its own transposed view."""
    if STATE.grad_enabled:
        from .ops_math import check_inplace_leaf
        check_inplace_leaf(input)
    r = transpose(input, axis0, axis1)
    input._data, input._node, input._oi = r._data, r._node, r._oi
    return input


def _unsafe(outs):
    # the unsafe_* forms return the same pieces without the multi-output-view guard, so each
    # piece may be written in place (torch leaves the aliasing to the caller)
    for o in outs:
        o.__dict__.pop("_multi_view", None)
    return outs


def unsafe_split(tensor, split_size, dim=0):
    return _unsafe(split(tensor, operator.index(split_size), dim))


def unsafe_split_with_sizes(tensor, split_sizes, dim=0):
    return _unsafe(split(tensor, [operator.index(s) for s in split_sizes], dim))


def unsafe_chunk(input, chunks, dim=0):
    return _unsafe(chunk(input, chunks, dim))


def _sum_to_size(input, *size):
    """input summed (keepdim) over the dims where `size` is 1 or missing, to `size`: the inverse
    of expanding a tensor of `size` to input's shape."""
    if not size:
        raise TypeError('sum_to_size() missing 1 required positional arguments: "size"')
    shape = _sizes(size)
    have = tuple(input.shape)
    ok = len(shape) <= len(have)
    if ok:
        lead = len(have) - len(shape)
        ok = builtins.all(s == h or s == 1 for s, h in zip(shape, have[lead:]))
    if not ok:
        raise RuntimeError(f"size {{{list(shape)}}} is not expandable to size {{{list(have)}}}.")
    from .ops_math import sum as _sum
    r = input
    lead = len(have) - len(shape)
    if lead:
        r = _sum(r, tuple(range(lead)))
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and r.shape[i] != 1)
    if dims:
        r = _sum(r, dims, keepdim=True)
    return r


def _storage_of(t):
    """(flat array that owns t's cpu memory, t's element offset in it)."""
    from compiler.ops.layout import _memory_of
    mem = _memory_of(t._data) if isinstance(t._data, np.ndarray) else None
    if mem is None:
        raise RuntimeError(f"storage: tensor of shape {list(t.shape)} on {t.device} has no "
                           "addressable cpu storage")
    return mem


def _rehome(t, data, flat):
    """t now looks at `data` inside the storage `flat`: a tensor that is not the whole storage
    keeps a base holding it, so storage_offset() and the version counter still work."""
    old = t._base if t._base is not None else t
    vc = old._vcount
    if data.size == flat.size and data.__array_interface__["data"][0] == \
            flat.__array_interface__["data"][0] and t._base is None:
        t._data = data
        return t
    base = t._base
    if base is None or _storage_of(base)[0].__array_interface__["data"][0] != \
            flat.__array_interface__["data"][0]:
        base = Tensor.__new__(Tensor)
        base._data, base._dtype, base._device = flat, t._dtype, t._device
        base._vcount = vc
    t._data, t._base = data, base
    return t


def _check_resizable(t, name):
    if t.requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    if STATE.tracer is not None:
        raise RuntimeError(f"{name}: resizing a tensor's storage is not supported under "
                           "compile() (a graph break)")


def _resize_(input, *sizes, memory_format=None):
    """torch's resize_: the tensor takes `sizes` with contiguous strides at its storage offset;
    storage too small for that grows (existing values kept, new ones zero), storage larger is
    kept whole, so shrinking and growing back shows the old values."""
    _check_resizable(input, "resize_")
    shape = _sizes(sizes)
    if builtins.any(s < 0 for s in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension "
                           f"{next(s for s in shape if s < 0)}: {list(shape)}")
    if memory_format is _mf.preserve_format:
        raise RuntimeError("Unsupported memory formatPreserve")        # (PyTorch's text)
    if memory_format is not None and _mf.is_channels_last(memory_format):
        _mf.check_rank("resize_", len(shape), memory_format)
    if memory_format is None and shape == tuple(input._data.shape):
        return input        # (PyTorch: the same sizes keep the strides, channels_last or not)
    n = 1
    for s in shape:
        n *= s
    if not isinstance(input._data, np.ndarray):       # device memory: a reshaped copy
        from runtime import cuda as _cuda
        xp = _cuda._cupy()
        flat = input._data.reshape(-1)
        if n <= flat.size:
            input._data = flat[:n].reshape(shape)
        else:
            new = xp.zeros(n, input._data.dtype)
            new[:flat.size] = flat
            input._data = new.reshape(shape)
        input._bump()
        return input
    flat, off = _storage_of(input)
    if off + n > flat.size:
        grown = np.zeros(off + n, flat.dtype)
        grown[:flat.size] = flat
        flat = grown
    if memory_format is not None and _mf.is_channels_last(memory_format):
        # the same storage elements, strided as PyTorch lays a new tensor out in that format
        data = np.lib.stride_tricks.as_strided(
            flat[off:off + n], shape, [st * flat.itemsize for st in _mf._strides(shape,
                                                                                 memory_format)])
    else:
        data = flat[off:off + n].reshape(shape)
    _rehome(input, data, flat)
    input._bump()
    return input


def resize_as_(input, the_template, *, memory_format=None):
    return _resize_(input, tuple(the_template.shape), memory_format=memory_format)


_SET_NAMES = ("source", "storage_offset", "size", "stride")
_SET_FORMS = ("() ", "(torch.Storage source) ",
              "(torch.Storage source, int storage_offset, tuple of ints size, tuple of ints "
              "stride = None)", "(Tensor source) ",
              "(Tensor source, int storage_offset, tuple of ints size, tuple of ints stride = "
              "None)")


def _set_arg_type(v, detail=False):
    """How PyTorch's argument parser names an argument's type (detail: as its "didn't match"
    note does, with a sequence's element types)."""
    from ._storage import TypedStorage, UntypedStorage
    if isinstance(v, Tensor):
        return "Tensor"
    if isinstance(v, (UntypedStorage, TypedStorage)):
        return f"torch.storage.{'Untyped' if isinstance(v, UntypedStorage) else 'Typed'}Storage"
    names = ", ".join(type(e).__name__ for e in v) if isinstance(v, (list, tuple)) else ""
    if detail and isinstance(v, list):
        return f"list of [{names}]"
    if detail and isinstance(v, tuple):
        return f"tuple of ({names}{',' if len(v) == 1 else ''})"
    return type(v).__name__


def _set_type_error(args, kwargs):
    """PyTorch's TypeError for arguments that match none of set_'s forms. A lone argument that
    is neither a Tensor nor a Storage gets the "didn't match" note under each one-argument
    form."""
    got = [_set_arg_type(a) for a in args] + [f"{k}={_set_arg_type(v)}" for k, v in
                                              kwargs.items()]
    note = ""
    if len(args) == 1 and not kwargs:
        note = (f"      didn't match because some of the arguments have invalid types: "
                f"(!{_set_arg_type(args[0], detail=True)}!)\n")
    forms = "".join(f" * {f.rstrip()}\n" + (note if f.endswith(" ") else "") for f in _SET_FORMS)
    return TypeError(f"set_() received an invalid combination of arguments - got "
                     f"({', '.join(got)}), but expected one of:\n{forms}")


def _set_int(v):
    """An int argument of set_ (a Python/NumPy int or a one-element integer tensor; not a
    bool), else None."""
    if isinstance(v, (bool, np.bool_)) or not hasattr(v, "__index__"):
        return None
    try:
        return operator.index(v)
    except TypeError:
        return None


def _set_ints(v):
    if not isinstance(v, (tuple, list)):
        return None
    out = tuple(_set_int(e) for e in v)
    return None if builtins.any(e is None for e in out) else out


def _set_bind(args, kwargs):
    """(source, storage_offset, size, stride) of a set_ call (size None: the whole source),
    or PyTorch's TypeError for arguments no form of set_ takes."""
    from ._storage import TypedStorage, UntypedStorage
    err = _set_type_error(args, kwargs)
    if len(args) > 4 or builtins.any(k not in _SET_NAMES or k in _SET_NAMES[:len(args)]
                                     for k in kwargs):
        raise err
    bound = dict(zip(_SET_NAMES, args), **kwargs)
    src = bound.get("source")
    if not isinstance(src, (Tensor, UntypedStorage, TypedStorage)):
        raise err
    if set(bound) == {"source"}:
        return src, 0, None, None
    if not {"source", "storage_offset", "size"} <= set(bound):
        raise err
    off, size = _set_int(bound["storage_offset"]), _set_ints(bound["size"])
    stride = bound.get("stride")
    if stride is not None:
        stride = _set_ints(stride)
    if off is None or size is None or (bound.get("stride") is not None and stride is None):
        raise err
    return src, off, size, stride


def _set_memory(input, src):
    """(flat array of input's dtype over src's memory, the storage's size in bytes, the tensor
    to hold as input's base, the UntypedStorage when src is a storage)."""
    from ._storage import TypedStorage, _is_host
    if isinstance(src, Tensor):
        flat, _ = _storage_of(src)
        return flat, flat.size * flat.itemsize, src._base if src._base is not None else src, \
            None
    us = src._untyped_storage if isinstance(src, TypedStorage) else src
    b, d = us._b, input._dtype
    if not _is_host(b):
        raise NotImplementedError(f"set_(): a storage on {us.device} is not supported in Kiln "
                                  f"(only host memory)")
    root = us._root
    whole = us._off == 0 and us._length is None and root._dtype is d
    if whole and isinstance(root._data, np.ndarray):
        mem = _storage_of(root) if root._data.size else None
        if mem is not None and mem[1] == 0 and mem[0].dtype == d.np and \
                mem[0].size * d.itemsize == b.size:
            return mem[0], b.size, root, us
    # another dtype, a slice of a storage, or memory that is not one flat array: a new base
    # tensor of input's dtype over the storage's bytes
    n = b.size // d.itemsize
    base = Tensor.__new__(Tensor)
    base._data, base._dtype, base._device = b[:n * d.itemsize].view(d.np), d, input._device
    base._vcount = input._version
    return base._data, b.size, base, us


def _set_(input, *args, **kwargs):
    """Tensor.set_(): empty; set_(source) with a Tensor (its storage, sizes, strides and offset)
    or a Storage (UntypedStorage/TypedStorage: all of it, 1-d); set_(source, storage_offset,
    size, stride=None): that window of the source's storage. The tensor then shares the
    storage's memory. PyTorch's errors, raised before anything changes; where PyTorch would
    grow the storage, Kiln grows only a storage made by a constructor (a tensor's storage is
    not resizable in Kiln, and PyTorch's error for such a storage is raised)."""
    from ._dispatch import STATE as _S
    from ._storage import TypedStorage
    from .ops_math import check_inplace_leaf
    if not args and not kwargs:
        if _S.grad_enabled:
            check_inplace_leaf(input)
        input._data = np.empty(0, input._data.dtype) if isinstance(input._data, np.ndarray) \
            else input._data.reshape(-1)[:0].copy()
        input._base = None
        input._bump()
        return input
    source, off, size, stride = _set_bind(args, kwargs)
    d = input._dtype
    if isinstance(source, TypedStorage) and source.dtype is not d:
        raise RuntimeError(f"Expected a Storage of type {dt.CPP_NAME[d.name]} or an "
                           f"UntypedStorage, but got type {dt.tname(source.dtype)} for argument "
                           f"1 'storage'")
    if _S.grad_enabled:
        check_inplace_leaf(input)
    if isinstance(source, Tensor) and source._dtype is not d:
        raise RuntimeError(f"Could not set tensor of type {dt.CPP_NAME[source._dtype.name]} "
                           f"to a tensor of type {dt.CPP_NAME[d.name]}")
    sdev = source._device if isinstance(source, Tensor) else \
        (source._untyped_storage if isinstance(source, TypedStorage) else source).device
    if sdev != input._device:
        raise RuntimeError(f"Attempted to set the storage of a tensor on device "
                           f"\"{input.device}\" to a storage on different device \"{sdev}\".  "
                           f"This is no longer allowed; the devices must match.")
    if isinstance(source, Tensor) and size is None:
        if source is input:
            return input
        input._data = source._data.view()
        input._base = source._base if source._base is not None else source
        input._bump()
        return input
    flat, nbytes, base, us = _set_memory(input, source)
    isz = d.itemsize
    given = stride
    if size is None:                    # a whole storage: 1-d, all its elements
        size, given = (nbytes // isz,), None
    if given is not None and len(size) != len(given):
        raise RuntimeError(f"unequal size length ({len(size)}) and stride length "
                           f"({len(given)})")
    if off < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {off}")
    contiguous = []
    acc = 1
    for s in reversed(size):
        contiguous.append(acc)
        acc *= builtins.max(s, 1)
    contiguous = tuple(reversed(contiguous))
    stride = list(contiguous if given is None else given)
    numel = 1
    for s in size:
        numel *= s
    unchanged = tuple(input.shape) == size and (given is None or
                                                tuple(input.stride()) == tuple(given))
    if unchanged and numel > 0 and builtins.min(size) >= 0:
        need = (off + 1 + builtins.sum((n - 1) * s for n, s in zip(size, stride))) * isz
        if need > nbytes:
            raise RuntimeError(f"setStorage: sizes {list(size)}, strides "
                               f"{list(given) if given is not None else []}, storage offset "
                               f"{off}, and itemsize {isz} requiring a storage size of {need} "
                               f"are out of bounds for storage of size {nbytes}")
    if builtins.any(s < 0 for s in size):
        raise RuntimeError("numel: integer multiplication overflow")
    if numel > 0:
        if builtins.any(n > 1 and s < 0 for n, s in zip(size, stride)):
            raise RuntimeError(f"Storage size calculation overflowed with sizes={list(size)} "
                               f"and strides={list(stride)}")
        # (PyTorch's TensorImpl: a negative stride, of a dim of size 0 or 1 here, becomes the
        # contiguous stride over the dims after it)
        for i in reversed(range(len(size))):
            if stride[i] < 0:
                stride[i] = 1 if i == len(size) - 1 else builtins.max(size[i + 1], 1) * \
                    stride[i + 1]
    # (PyTorch's TensorImpl: a negative stride, here of a dim of size 0 or 1, becomes the
    # contiguous stride over the dims after it)
    for i in reversed(range(len(size))):
        if stride[i] < 0:
            stride[i] = 1 if i == len(size) - 1 else builtins.max(size[i + 1], 1) * stride[i + 1]
    if numel > 0:
        need = (off + 1 + builtins.sum((n - 1) * s for n, s in zip(size, stride))) * isz
        if need > nbytes:
            if us is None or not us.resizable():
                raise RuntimeError("Trying to resize storage that is not resizable")
            us.resize_(need)            # a constructor's storage grows, as PyTorch's does
            flat, nbytes, base, us = _set_memory(input, source)
    if base is input:                   # input's own storage: a base holding all of it
        old = base
        base = Tensor.__new__(Tensor)
        base._data, base._dtype, base._device, base._vcount = flat, d, input._device, \
            input._version
        if us is not None and us._root is old:      # the storage stays on that memory
            us._root, us._arr = base, flat
    data = _strided_at(flat, off, size, tuple(s * isz for s in stride))
    if us is not None:
        if base is us._root:
            from ._storage import _cache
            cur = _cache.get(id(base))
            if cur is None or cur._root is not base:
                _cache[id(base)] = us
        else:
            base._set_storage = us     # (Tensor.untyped_storage() then answers this storage)
    input._data, input._base = data, base
    input._bump()
    return input


class _At:
    __slots__ = ("__array_interface__", "_keep")

    def __init__(self, iface, keep):
        self.__array_interface__, self._keep = iface, keep


def _strided_at(flat, off, size, strides):
    """The view of flat's memory at element offset off with size and byte strides (an empty
    view past the end still starts at off, as a PyTorch tensor's storage offset does)."""
    if off < flat.size:
        return np.lib.stride_tricks.as_strided(flat[off:], size, strides)
    same = np.dtype(f"u{flat.itemsize}") if flat.itemsize in (1, 2, 4, 8) else flat.dtype
    iface = {"data": (flat.__array_interface__["data"][0] + off * flat.itemsize, False),
             "shape": tuple(size), "strides": strides, "typestr": same.str, "version": 3}
    return np.asarray(_At(iface, flat)).view(flat.dtype)


def as_strided_(input, size, stride, storage_offset=None):
    """In place: input becomes the as_strided view of its own storage."""
    if STATE.grad_enabled:
        from .ops_math import check_inplace_leaf
        check_inplace_leaf(input)
    r = as_strided(input, size, stride, storage_offset)
    if STATE.tracer is not None or not isinstance(input._data, np.ndarray):
        input._data, input._node, input._oi = r._data, r._node, r._oi
        return input
    flat, _ = _storage_of(input)
    node, oi = r._node, r._oi
    _rehome(input, r._data, flat)
    input._node, input._oi = node, oi
    return input
