"""Tensor printing, following PyTorch's _tensor_str rules so that tutorial output matches:
shared formatter per tensor (int mode / fixed / scientific), 4 digits, summarisation above
1000 elements with 3 edge items, line width 80, suffixes (dtype, grad_fn, requires_grad)."""
import math

import numpy as np

from runtime import dtypes as dt


class _PrintOptions:
    precision = 4
    threshold = 1000
    edgeitems = 3
    linewidth = 80
    sci_mode = None


PRINT_OPTS = _PrintOptions()


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None):
    if profile == "default":
        PRINT_OPTS.precision, PRINT_OPTS.threshold = 4, 1000
        PRINT_OPTS.edgeitems, PRINT_OPTS.linewidth = 3, 80
    elif profile == "short":
        PRINT_OPTS.precision, PRINT_OPTS.threshold = 2, 1000
        PRINT_OPTS.edgeitems, PRINT_OPTS.linewidth = 2, 80
    elif profile == "full":
        PRINT_OPTS.precision, PRINT_OPTS.threshold = 4, math.inf
        PRINT_OPTS.edgeitems, PRINT_OPTS.linewidth = 3, 80
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


class _Formatter:
    """One formatter per tensor (PyTorch's _Formatter): int mode / fixed / scientific and
    a shared column width, decided from the nonzero finite values."""

    def __init__(self, values, floating, zero=0.0):
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        p = PRINT_OPTS.precision
        if not floating:
            flat = values.reshape(-1)
            if flat.size:
                # the widest integer is the min or the max (a sign counts as a character)
                self.max_width = max(len(str(flat.min().item())), len(str(flat.max().item())))
            return
        v = values.reshape(-1).astype(np.float64)
        nz = v[np.isfinite(v) & (v != zero)]     # (zero: 0 as the dtype holds it)
        if not nz.size:
            return
        a = np.abs(nz)
        mn, mx = a.min(), a.max()
        self.int_mode = bool(np.all(nz == np.ceil(nz)))
        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = bool(mx / mn > 1000.0 or mx > 1.0e8 or mn < 1.0e-4)
        else:
            self.sci_mode = PRINT_OPTS.sci_mode
        vals = nz.tolist()
        if self.sci_mode:
            self.max_width = max(len(f"{x:.{p}e}") for x in vals)
        elif self.int_mode:
            self.max_width = max(len(f"{x:.0f}") + 1 for x in vals)
        else:
            self.max_width = max(len(f"{x:.{p}f}") for x in vals)

    def width(self):
        return self.max_width

    def format(self, value):
        p = PRINT_OPTS.precision
        if self.floating:
            if self.sci_mode:
                ret = f"{{:{self.max_width}.{p}e}}".format(value)
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{{:.{p}f}}".format(value)
        else:
            ret = str(value)
        return (self.max_width - len(ret)) * " " + ret


def _summarized(a):
    e = PRINT_OPTS.edgeitems
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate([a[:e], a[-e:]]) if a.shape[0] > 2 * e else a
    if not e:
        return a[(slice(0, 0),) * a.ndim]
    if a.shape[0] > 2 * e:
        rows = [a[i] for i in range(e)] + [a[i] for i in range(a.shape[0] - e, a.shape[0])]
    else:
        rows = list(a)
    return np.stack([_summarized(r) for r in rows])


def _val_str(v, fmt, ifmt):
    if ifmt is None:
        return fmt.format(v)
    re_s = fmt.format(v.real)
    im_s = (ifmt.format(v.imag) + "j").lstrip()
    return re_s + im_s if im_s[0] in "+-" else re_s + "+" + im_s


def _vector_str(a, indent, summarize, fmt, ifmt):
    e = PRINT_OPTS.edgeitems
    element_length = fmt.width() + 2
    if ifmt is not None:
        element_length += ifmt.width() + 1
    per_line = max(1, int(math.floor((PRINT_OPTS.linewidth - indent) / element_length)))
    if summarize and not e:
        data = ["..."]
    elif summarize and a.shape[0] > 2 * e:
        data = [_val_str(v, fmt, ifmt) for v in a[:e].tolist()] + [" ..."] + \
               [_val_str(v, fmt, ifmt) for v in a[-e:].tolist()]
    else:
        data = [_val_str(v, fmt, ifmt) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_fmt(a, indent, summarize, fmt, ifmt=None):
    if a.ndim == 0:
        return _val_str(a.item(), fmt, ifmt)
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt, ifmt)
    e = PRINT_OPTS.edgeitems
    if summarize and a.shape[0] > 2 * e:
        slices = [_tensor_str_fmt(a[i], indent + 1, summarize, fmt, ifmt) for i in range(e)] + \
                 ["..."] + [_tensor_str_fmt(a[i], indent + 1, summarize, fmt, ifmt)
                            for i in range(a.shape[0] - e, a.shape[0])]
    else:
        slices = [_tensor_str_fmt(a[i], indent + 1, summarize, fmt, ifmt)
                  for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def tensor_str(a, dtype, indent):
    if a.size == 0:
        return "[]"
    summarize = a.size > PRINT_OPTS.threshold
    if dtype in (dt.float16, dt.bfloat16):
        a = a.astype(np.float32)
    src = _summarized(a) if summarize else a
    if dtype.is_complex:
        return _tensor_str_fmt(a, indent, summarize, _Formatter(src.real, True),
                               _Formatter(src.imag, True))
    # (float8_e8m0fnu holds 0 as 2**-127, and PyTorch's != 0 test casts the 0 too)
    zero = float(dtype.round(0.0)) if dtype in dt.FLOAT8 else 0.0
    return _tensor_str_fmt(a, indent, summarize, _Formatter(src, dtype.is_floating_point, zero))


def _add_suffixes(s, suffixes, indent, force_newline=False):
    parts = [s]
    last = len(s) - s.rfind("\n") + 1
    if force_newline:       # (PyTorch's sparse tensors: the first suffix starts a new line)
        parts.append(",\n" + " " * indent + suffixes[0])
        last = indent + len(suffixes[0])
        suffixes = suffixes[1:]
    for suf in suffixes:
        if last + len(suf) + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suf)
            last = indent + len(suf)
        else:
            parts.append(", " + suf)
            last += len(suf) + 2
    parts.append(")")
    return "".join(parts)


def _batched_repr(b):
    """A tensor inside vmap prints as PyTorch's BatchedTensor wrapper around the real tensor
    (its values are readable for printing, though not for control flow)."""
    inner = repr(b.value).replace("\n", "\n    ")
    return f"BatchedTensor(lvl={b.level}, bdim={b.bdim}, value=\n    {inner}\n)"


def _meta_repr(t, prefix):
    """A meta tensor has no values: PyTorch prints '...', the size, and the dtype unless it is
    the default float dtype."""
    suffixes = ["device='meta'", "size=" + str(tuple(t._data.shape))]
    if t._dtype is not dt.get_default_dtype():
        suffixes.append("dtype=" + repr(t._dtype))
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t._node._name}>")
    elif t._rg:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + "...", suffixes, len(prefix))


def tensor_repr(t, prefix="tensor("):
    from .func._batched import BatchedArray
    if type(t._data) is BatchedArray:
        return _batched_repr(t._data)
    if t._dtype.category == 4:
        from .ao._qtensor import q_repr
        return q_repr(t, prefix)
    indent = len(prefix)
    a = t._data
    if t._device.type == "meta":
        return _meta_repr(t, prefix)
    if t._device.type != "cpu":          # print a host copy of device memory
        from ._device_ops import host
        a = host(a)
    d = t._dtype
    suffixes = []
    if t._device.type != "cpu":
        suffixes.append(f"device='{t._device}'")
    dflt = dt.get_default_dtype()
    default = d in (dflt, dt.int64, dt.bool_,
                    dt.complex128 if dflt is dt.float64 else dt.complex64)
    if a.size == 0:
        if a.ndim != 1:
            suffixes.append("size=" + str(tuple(a.shape)))
        if d is not dflt:
            suffixes.append("dtype=" + repr(d))
        body = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append("size=" + str(tuple(a.shape)))
        if not default:
            suffixes.append("dtype=" + repr(d))
        body = tensor_str(a, d, indent)
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t._node._name}>")
    elif t._rg:
        suffixes.append("requires_grad=True")
    if t._fwt is not None:      # a dual tensor (forward_ad): f-string, so a 0-d one reads 2.0
        suffixes.append(f"tangent={t._fwt}")
    return _add_suffixes(prefix + body, suffixes, indent)
