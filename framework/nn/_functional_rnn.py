"""torch.lstm / gru / rnn_tanh / rnn_relu (ATen's .input overload, batch_first, and .data
overload, packed data with batch_sizes) and torch.lstm_cell / gru_cell / rnn_tanh_cell /
rnn_relu_cell: the flat-weight entry points nn.LSTM & co. call in torch. The recurrence is the
modules' own (modules/rnn.py); only ATen's argument checks live here."""
import numpy as np

from runtime import dtypes as dt
from .._dispatch import rename
from ..ops_math import relu
from ..tensor import Tensor
from .modules import rnn as R

__all__ = ["lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell",
           "rnn_relu_cell"]

_TAIL = ("has_biases", "num_layers", "dropout", "train", "bidirectional")


def _is_bool(v):
    return isinstance(v, (bool, np.bool_))


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not _is_bool(v)


def _is_tensors(v):
    return isinstance(v, (list, tuple)) and all(isinstance(t, Tensor) for t in v)


def _ok(kind, v):
    if kind == "Tensor":
        return isinstance(v, Tensor)
    if kind == "tuple of Tensors":
        return _is_tensors(v)
    if kind == "bool":
        return _is_bool(v)
    if kind == "int":
        return _is_int(v)
    return isinstance(v, (int, float, np.integer, np.floating)) and not _is_bool(v)   # float


def _sigs(lstm):
    hx = "tuple of Tensors" if lstm else "Tensor"
    tail = (("tuple of Tensors", "params"), ("bool", "has_biases"), ("int", "num_layers"),
            ("float", "dropout"), ("bool", "train"), ("bool", "bidirectional"))
    return (((("Tensor", "data"), ("Tensor", "batch_sizes"), (hx, "hx")) + tail),
            ((("Tensor", "input"), (hx, "hx")) + tail + (("bool", "batch_first"),)))


def _bind(sig, args, kwargs):
    if len(args) > len(sig):
        return None
    names = [n for _, n in sig]
    bound = dict(zip(names, args))
    for k, v in kwargs.items():
        if k not in names or k in bound:
            return None
    bound.update(kwargs)
    if len(bound) != len(sig) or not all(_ok(kind, bound[n]) for kind, n in sig):
        return None
    return bound


def _tname(v):
    return "Tensor" if isinstance(v, Tensor) else type(v).__name__


def _parse(name, lstm, args, kwargs):
    """PyTorch's overload resolution between the .data and .input schemas."""
    sigs = _sigs(lstm)
    for packed, sig in zip((True, False), sigs):
        b = _bind(sig, args, kwargs)
        if b is not None:
            return packed, b
    got = ", ".join([_tname(a) for a in args] + [f"{k}={_tname(v)}" for k, v in kwargs.items()])
    lines = "\n".join(" * (" + ", ".join(f"{k} {n}" for k, n in s) + ")" for s in sigs)
    raise TypeError(f"{name}() received an invalid combination of arguments - got ({got}), but "
                    f"expected one of:\n{lines}\n")


def _entry(name, mode, args, kwargs):
    lstm = mode == "LSTM"
    packed, a = _parse(name, lstm, args, kwargs)
    x = a["data"] if packed else a["input"]
    hx, params = a["hx"], list(a["params"])
    has_biases, num_layers = bool(a["has_biases"]), int(a["num_layers"])
    D = 2 if a["bidirectional"] else 1
    if lstm:
        if len(hx) != 2:
            raise RuntimeError(f"{name} expects two hidden states")
        h0, c0 = hx
        for h in hx:
            if h.dim() != 3:
                raise IndexError(f"Dimension out of range (expected to be in range of "
                                 f"[{-max(h.dim(), 1)}, {max(h.dim(), 1) - 1}], but got 2)")
        proj = h0.shape[2] != c0.shape[2]
    else:
        h0, c0, proj = hx, None, False
    stride = (4 if has_biases else 2) + (1 if proj else 0)
    if len(params) % stride:
        raise RuntimeError(f"MatrixRef: ArrayRef size {len(params)} not divisible by stride "
                           f"{stride}" if lstm else "got an incorrect number of RNN parameters")
    if num_layers < 1 or len(params) // stride < num_layers * D:
        raise RuntimeError(f"{name}: got {len(params)} parameters, expected {stride} per layer "
                           f"and direction for num_layers={num_layers} and "
                           f"bidirectional={D == 2}: {stride * num_layers * D}")
    layers = [tuple(params[k * stride:k * stride + 2]) +
              (tuple(params[k * stride + 2:k * stride + 4]) if has_biases else (None, None)) +
              ((params[k * stride + stride - 1],) if proj else (None,))
              for k in range(num_layers * D)]
    for s in (h0, c0):
        if s is not None and (s.dim() != 3 or s.shape[0] < num_layers * D):
            raise RuntimeError("Expected more hidden states in stacked_rnn")
    for i, w in enumerate(params[:stride * num_layers * D]):
        want = 1 if has_biases and i % stride in (2, 3) else 2
        if w.dim() != want:
            raise RuntimeError(f"{name}: parameter {i} must be {want}-D (has_biases={has_biases}, "
                               f"{stride} per layer and direction), got shape {list(w.shape)}")
    w_ih = layers[0][0]
    if x.dtype != w_ih.dtype:        # ATen's linear: addmm's text with a bias, else mm's
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{dt.tname(x.dtype)} and {dt.tname(w_ih.dtype)}" if has_biases else
                           f"expected m1 and m2 to have the same dtype, but got: "
                           f"{dt.tname(x.dtype).lower()} != {dt.tname(w_ih.dtype).lower()}")
    bs = None
    if packed:
        b = a["batch_sizes"]
        if b.dtype != dt.int64:
            raise RuntimeError(f"expected scalar type Long but found {dt.tname(b.dtype)}")
        if x.dim() != 2 or b.dim() != 1:
            raise RuntimeError(f"{name}: expected packed data of 2 dimensions and 1-D "
                               f"batch_sizes, got {list(x.shape)} and {list(b.shape)}")
        bs = np.asarray(b.cpu()._data).astype(np.int64)
        start = 0
        for n in bs:
            if start + n > x.shape[0]:
                raise RuntimeError(f"start ({start}) + length ({n}) exceeds dimension size "
                                   f"({x.shape[0]}).")
            start += n
        L, N = len(bs), int(bs[0]) if len(bs) else 0
        if start != x.shape[0] or (len(bs) > 1 and np.any(np.diff(bs) > 0)) or \
                (len(bs) and bs[-1] < 1):
            raise RuntimeError(f"{name}: batch_sizes {bs.tolist()} must be positive, "
                               f"non-increasing and sum to data.size(0) = {x.shape[0]}")
    else:
        if x.dim() != 3:
            if x.dim() < 3:
                raise IndexError(f"Dimension out of range (expected to be in range of "
                                 f"[{-max(x.dim(), 1)}, {max(x.dim(), 1) - 1}], but got 2)")
            raise RuntimeError(f"{name}: expected input of 3 dimensions, got {x.dim()}")
        if a["batch_first"]:
            x = x.transpose(0, 1)
        L, N = x.shape[0], x.shape[1]
    if L == 0:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
    H = w_ih.shape[0] // {"LSTM": 4, "GRU": 3}.get(mode, 1)
    H_out = layers[0][4].shape[0] if proj else H
    for k, (s, size) in enumerate(((h0, H_out), (c0, H))):
        if s is not None and tuple(s.shape[1:]) != (N, size):
            which = f"hidden[{k}]" if lstm else "hidden"
            raise RuntimeError(f"Expected {which} size {(s.shape[0], N, size)}, got "
                               f"{list(s.shape)}")
    hs = [R._step(h0, k) for k in range(num_layers * D)]
    cs = [R._step(c0, k) for k in range(num_layers * D)] if lstm else None
    weights = [[w for w in lay if w is not None] for lay in layers]
    out, h_n, c_n = R._run(mode, weights, has_biases, proj, num_layers, D,
                           float(a["dropout"]), bool(a["train"]), x, hs, cs, bs)
    if not packed and a["batch_first"]:
        out = out.transpose(0, 1)
        if not lstm:       # ATen's rnn_tanh/relu/gru transpose their output in place
            out = rename(out, "TransposeBackward1")
    h_n = R._stack0(h_n)
    return (out, h_n, R._stack0(c_n)) if lstm else (out, h_n)


def lstm(*args, **kwargs):
    return _entry("lstm", "LSTM", args, kwargs)


def gru(*args, **kwargs):
    return _entry("gru", "GRU", args, kwargs)


def rnn_tanh(*args, **kwargs):
    return _entry("rnn_tanh", "RNN_TANH", args, kwargs)


def rnn_relu(*args, **kwargs):
    return _entry("rnn_relu", "RNN_RELU", args, kwargs)


# ---- cells: ATen's checks, in the order each cell makes them ----

def _cell_args(name, input, hx, w_ih, w_hh, b_ih, b_hh, lstm):
    hx_kind = "tuple of Tensors" if lstm else "Tensor"
    for pos, (arg, v, kind) in enumerate((("input", input, "Tensor"), ("hx", hx, hx_kind),
                                          ("w_ih", w_ih, "Tensor"), ("w_hh", w_hh, "Tensor")), 1):
        if not _ok(kind, v):
            raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be {kind}, not "
                            f"{_tname(v)}")
    for pos, (arg, v) in enumerate((("b_ih", b_ih), ("b_hh", b_hh)), 5):
        if v is not None and not isinstance(v, Tensor):
            raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                            f"{_tname(v)}")


def _size(t, d):
    if t.dim() <= d:
        n = max(t.dim(), 1)
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {d})")
    return t.shape[d]


def _check_input(input, w_ih):
    if _size(input, 1) != _size(w_ih, 1):
        raise RuntimeError(f"input has inconsistent input_size: got {input.shape[1]} expected "
                           f"{w_ih.shape[1]}")


def _check_hidden(input, hx, H, k):
    if _size(input, 0) != _size(hx, 0):
        raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match hidden{k} batch "
                           f"size {hx.shape[0]}")
    if _size(hx, 1) != H:
        raise RuntimeError(f"hidden{k} has inconsistent hidden_size: got {hx.shape[1]}, "
                           f"expected {H}")


def _check_weights(w_ih, w_hh, g, H):
    for nm, w in (("weight_ih", w_ih), ("weight_hh", w_hh)):
        if _size(w, 0) != g * H:
            raise RuntimeError(f"{nm} first dim must be {g} * hidden_size = {g * H}, but got "
                               f"{w.shape[0]}")


def _linear(x, w, b):
    """ATen's linear(x, w, b) for the 2-D x of a cell: addmm's dtype and bias texts."""
    if w.dim() != 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {w.dim()}D")
    if x.dtype != w.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{dt.tname(x.dtype)} and {dt.tname(w.dtype)}" if b is not None else
                           f"expected m1 and m2 to have the same dtype, but got: "
                           f"{dt.tname(x.dtype).lower()} != {dt.tname(w.dtype).lower()}")
    if b is not None:
        target, bs = (x.shape[0], w.shape[0]), tuple(b.shape)
        for j in range(1, len(bs) + 1):          # expand's first mismatch from the right
            if len(bs) > 2 or bs[-j] not in (1, target[-j]):
                d = max(2 - j, 0)
                raise RuntimeError(f"The expanded size of the tensor ({target[d]}) must match "
                                   f"the existing size ({bs[-j]}) at non-singleton dimension "
                                   f"{d}.  Target sizes: {list(target)}.  Tensor sizes: "
                                   f"{list(bs)}")
    return R._proj(x, w, b)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    _cell_args("lstm_cell", input, hx, w_ih, w_hh, b_ih, b_hh, True)
    if len(hx) != 2:
        raise RuntimeError("lstm_cell expects two hidden states")
    H = _size(w_hh, 1)
    _check_input(input, w_ih)
    _check_weights(w_ih, w_hh, 4, H)
    _check_hidden(input, hx[0], H, 0)
    _check_hidden(input, hx[1], H, 1)
    gates = R._add(_linear(input, w_ih, b_ih), _linear(hx[0], w_hh, b_hh))
    return R._lstm_cell(gates, hx[1])


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    _cell_args("gru_cell", input, hx, w_ih, w_hh, b_ih, b_hh, False)
    H = _size(w_hh, 1)
    _check_input(input, w_ih)
    _check_hidden(input, hx, H, 0)
    _check_weights(w_ih, w_hh, 3, H)
    return R._gru_cell(_linear(input, w_ih, b_ih), _linear(hx, w_hh, b_hh), hx)


def _rnn_cell(name, act, input, hx, w_ih, w_hh, b_ih, b_hh):
    _cell_args(name, input, hx, w_ih, w_hh, b_ih, b_hh, False)
    H = _size(w_hh, 1)
    _check_weights(w_ih, w_hh, 1, H)
    _check_input(input, w_ih)
    _check_hidden(input, hx, H, 0)
    return act(R._add(_linear(input, w_ih, b_ih), _linear(hx, w_hh, b_hh)))


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return _rnn_cell("rnn_tanh_cell", R.tanh, input, hx, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return _rnn_cell("rnn_relu_cell", relu, input, hx, w_ih, w_hh, b_ih, b_hh)

