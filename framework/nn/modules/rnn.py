"""RNN, LSTM, GRU and their cells, with PyTorch's parameter names (weight_ih_l0, ...), gate
order (LSTM: i, f, g, o; GRU: r, z, n), layouts and initialisation U(-1/sqrt(H), 1/sqrt(H)).

The recurrence is unrolled eagerly into primitives: the input projection of a whole layer is
one matmul, then each time step costs one matmul with W_hh plus pointwise gate math."""
import math
import numbers
import warnings

from compiler.ir.registry import REGISTRY as P
from runtime import dtypes as dt
from ... import creation
from ..._dispatch import apply, rename
from ...ops_math import relu
from ...tensor import Tensor
from ..parameter import Parameter
from .. import init
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def sigmoid(x):
    return apply(P["sigmoid"], x)


def tanh(x):
    return apply(P["tanh"], x)


def _mT(w):
    return apply(P["permute"], w, dims=(1, 0))


def _proj(x, w, b):
    """x @ w.T (+ b) for x of any rank >= 1 with the features last."""
    y = apply(P["matmul"], x, _mT(w)) if x.ndim >= 2 else \
        apply(P["reshape"], apply(P["matmul"], apply(P["reshape"], x, shape=(1, x.shape[0])),
                                  _mT(w)), shape=(w.shape[0],))
    return y if b is None else apply(P["add"], y, b)


def _chunk(x, n):
    h = x.shape[-1] // n
    d = x.ndim - 1
    return [apply(P["slice"], x, dim=d, start=i * h, stop=(i + 1) * h, step=1) for i in range(n)]


def _step(x, i):
    """x[i] for x of shape (L, N, F), as a view."""
    return apply(P["select"], x, dim=0, index=i)


def _rows(x, start, stop):
    """x[start:stop] along dim 0, as a view."""
    return apply(P["slice"], x, dim=0, start=start, stop=stop, step=1)


def _add(a, b):
    return apply(P["add"], a, b)


def _mul(a, b):
    return apply(P["mul"], a, b)


def _lstm_cell(gates, c):
    i, f, g, o = _chunk(gates, 4)
    c = _add(_mul(sigmoid(f), c), _mul(sigmoid(i), tanh(g)))
    return _mul(sigmoid(o), tanh(c)), c


def _gru_cell(gi, gh, h):
    ir, iz, in_ = _chunk(gi, 3)
    hr, hz, hn = _chunk(gh, 3)
    r = sigmoid(_add(ir, hr))
    z = sigmoid(_add(iz, hz))
    n = tanh(_add(in_, _mul(r, hn)))
    return _add(n, _mul(z, apply(P["sub"], h, n)))      # (1 - z) * n + z * h


def _run(mode, weights, bias, proj, num_layers, D, dropout, training, x, hs, cs,
         batch_sizes=None):
    """x: (L, N, I) time-major; hs, cs: lists of (N, H) per layer*direction; weights: per
    layer*direction [w_ih, w_hh, (b_ih, b_hh), (w_hr)]. With batch_sizes (a PackedSequence's,
    as NumPy), x is the packed data (sum(batch_sizes), I): step t runs the first
    batch_sizes[t] rows only and the other rows' states stay frozen, so each sequence's final
    state is the one after its own last step."""
    packed = batch_sizes is not None
    if packed:
        L = len(batch_sizes)
        offs = [0]
        for n in batch_sizes:
            offs.append(offs[-1] + int(n))
    else:
        L = x.shape[0]
    h_out, c_out = [], []
    from .. import functional as F
    for layer in range(num_layers):
        outs_dir = []
        for d in range(D):
            k = layer * D + d
            w = weights[k]
            w_ih, w_hh = w[0], w[1]
            b_ih = w[2] if bias else None
            b_hh = w[3] if bias else None
            w_hr = w[-1] if proj else None
            if mode == "GRU":
                xi = _proj(x, w_ih, b_ih)          # b_hh sits inside r * (W_hn h + b_hn)
            else:
                b = b_ih if b_hh is None else (b_hh if b_ih is None else _add(b_ih, b_hh))
                xi = _proj(x, w_ih, b)
            w_hhT = _mT(w_hh)
            h, c = hs[k], (cs[k] if cs is not None else None)
            steps = [None] * L
            order = range(L - 1, -1, -1) if d == 1 else range(L)
            for t in order:
                if packed:
                    n, N = int(batch_sizes[t]), h.shape[0]
                    xt = _rows(xi, offs[t], offs[t] + n)
                    h_all, c_all = h, c
                    if n < N:
                        h = _rows(h, 0, n)
                        c = _rows(c, 0, n) if c is not None else None
                else:
                    xt = _step(xi, t)
                gh = apply(P["matmul"], h, w_hhT)
                if mode == "LSTM":
                    h, c = _lstm_cell(_add(xt, gh), c)
                    if w_hr is not None:
                        h = apply(P["matmul"], h, _mT(w_hr))
                elif mode == "GRU":
                    if b_hh is not None:
                        gh = _add(gh, b_hh)
                    h = _gru_cell(xt, gh, h)
                elif mode == "RNN_TANH":
                    h = tanh(_add(xt, gh))
                else:
                    h = relu(_add(xt, gh))
                steps[t] = h
                if packed and n < N:
                    h = apply(P["cat"], h, _rows(h_all, n, N), dim=0)
                    if c is not None:
                        c = apply(P["cat"], c, _rows(c_all, n, N), dim=0)
            h_out.append(h)
            c_out.append(c)
            outs_dir.append(apply(P["cat"], *steps, dim=0) if packed and L > 1 else
                            steps[0] if packed else _stack0(steps))
        x = outs_dir[0] if D == 1 else apply(P["cat"], *outs_dir, dim=outs_dir[0].ndim - 1)
        if dropout > 0 and training and layer < num_layers - 1:
            x = F.dropout(x, dropout, True)
    return x, h_out, c_out


class RNNBase(Module):
    __constants__ = ["mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional", "proj_size"]

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or \
                isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode == "LSTM":
            gate_size = 4 * hidden_size
        elif mode == "GRU":
            gate_size = 3 * hidden_size
        elif mode in ("RNN_TANH", "RNN_RELU"):
            gate_size = hidden_size
        else:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self._flat_weights_names = []
        self._all_weights = []
        real_hidden = proj_size if proj_size > 0 else hidden_size
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden * num_directions
                suffix = "_reverse" if direction == 1 else ""
                params = [("weight_ih_l{}{}", (gate_size, layer_input)),
                          ("weight_hh_l{}{}", (gate_size, real_hidden))]
                if bias:
                    params += [("bias_ih_l{}{}", (gate_size,)), ("bias_hh_l{}{}", (gate_size,))]
                if proj_size > 0:
                    params += [("weight_hr_l{}{}", (proj_size, hidden_size))]
                names = []
                for fmt, shape in params:
                    name = fmt.format(layer, suffix)
                    setattr(self, name, Parameter(creation.empty(shape, dtype=dtype)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _flat_weights(self):
        return [getattr(self, n, None) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self):
        """A no-op here: there is no cuDNN weight buffer to compact."""

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ---- forward ------------------------------------------------------------------------------
    def _check_input(self, input, packed=False):
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__}: expected a Tensor or PackedSequence input, "
                            f"got {type(input).__name__}")
        if input.dim() != 2 if packed else input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                             f"{input.dim()}D instead")
        w = getattr(self, self._flat_weights_names[0])
        if input.dtype != w.dtype:           # PyTorch 2.13: ValueError, ints included
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype "
                             f"({w.dtype}). Convert input: input.to({w.dtype}), or convert "
                             f"model: model.to({input.dtype})")
        if self.input_size != input.size(-1):
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {input.size(-1)}")

    def _check_hidden(self, hx, expected, msg="Expected hidden size {}, got {}"):
        if tuple(hx.shape) != tuple(expected):
            raise RuntimeError(msg.format(tuple(expected), list(hx.shape)))

    def _run(self, x, hs, cs, batch_sizes=None):
        weights = [[getattr(self, n) for n in names] for names in self._all_weights]
        return _run(self.mode, weights, self.bias, self.proj_size > 0, self.num_layers,
                    2 if self.bidirectional else 1, self.dropout, self.training, x, hs, cs,
                    batch_sizes)

    def _forward_packed(self, input, hx):
        """PyTorch's PackedSequence path: hx is in the caller's batch order and is permuted by
        sorted_indices going in; h_n goes back through unsorted_indices."""
        from ..utils.rnn import PackedSequence
        data, sorted_indices, unsorted_indices = (input.data, input.sorted_indices,
                                                  input.unsorted_indices)
        self._check_input(data, packed=True)
        bs = input.batch_sizes._data
        is_lstm = self.mode == "LSTM"
        D = 2 if self.bidirectional else 1
        N = int(bs[0])
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        if hx is None:
            h0 = creation.zeros(self.num_layers * D, N, real_hidden, dtype=data.dtype,
                                device=data.device)
            c0 = creation.zeros(self.num_layers * D, N, self.hidden_size, dtype=data.dtype,
                                device=data.device) \
                if is_lstm else None
        else:
            h0, c0 = hx if is_lstm else (hx, None)
            if sorted_indices is not None:
                h0 = h0.index_select(1, sorted_indices)
                c0 = c0.index_select(1, sorted_indices) if is_lstm else None
            self._check_hidden(h0, (self.num_layers * D, N, real_hidden),
                               "Expected hidden[0] size {}, got {}" if is_lstm else
                               "Expected hidden size {}, got {}")
            if is_lstm:
                self._check_hidden(c0, (self.num_layers * D, N, self.hidden_size),
                                   "Expected hidden[1] size {}, got {}")
        hs = [_step(h0, k) for k in range(self.num_layers * D)]
        cs = [_step(c0, k) for k in range(self.num_layers * D)] if is_lstm else None
        out, h_n, c_n = self._run(data, hs, cs, batch_sizes=bs)
        h_n = _stack0(h_n)
        c_n = _stack0(c_n) if is_lstm else None
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
            c_n = c_n.index_select(1, unsorted_indices) if is_lstm else None
        out = PackedSequence(out, input.batch_sizes, sorted_indices, unsorted_indices)
        return (out, (h_n, c_n)) if is_lstm else (out, h_n)

    def forward(self, input, hx=None):
        from ..utils.rnn import PackedSequence
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        self._check_input(input)
        is_lstm = self.mode == "LSTM"
        batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        D = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        if not batched:
            input = input.unsqueeze(batch_dim)
            if hx is not None:
                hxs = hx if is_lstm else (hx,)
                if any(h.dim() != 2 for h in hxs):
                    if is_lstm:
                        raise RuntimeError(f"For unbatched 2-D input, hx and cx should also be 2-D "
                                           f"but got ({hxs[0].dim()}-D, {hxs[1].dim()}-D) tensors")
                    raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got "
                                       f"{hxs[0].dim()}-D tensor")
                hx = tuple(h.unsqueeze(1) for h in hxs) if is_lstm else hx.unsqueeze(1)
        elif hx is not None:
            hxs = hx if is_lstm else (hx,)
            if any(h.dim() != 3 for h in hxs):
                if is_lstm:
                    raise RuntimeError(f"For batched 3-D input, hx and cx should also be 3-D but "
                                       f"got ({hxs[0].dim()}-D, {hxs[1].dim()}-D) tensors")
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got "
                                   f"{hxs[0].dim()}-D tensor")
        x = input.transpose(0, 1) if self.batch_first else input
        if x.shape[0] == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        N = x.shape[1]
        if hx is None:
            h0 = creation.zeros(self.num_layers * D, N, real_hidden, dtype=x.dtype,
                                device=x.device)
            c0 = creation.zeros(self.num_layers * D, N, self.hidden_size, dtype=x.dtype,
                                device=x.device) \
                if is_lstm else None
        elif is_lstm:
            h0, c0 = hx
            self._check_hidden(h0, (self.num_layers * D, N, real_hidden),
                               "Expected hidden[0] size {}, got {}")
            self._check_hidden(c0, (self.num_layers * D, N, self.hidden_size),
                               "Expected hidden[1] size {}, got {}")
        else:
            h0, c0 = hx, None
            self._check_hidden(h0, (self.num_layers * D, N, real_hidden))
        hs = [_step(h0, k) for k in range(self.num_layers * D)]
        cs = [_step(c0, k) for k in range(self.num_layers * D)] if is_lstm else None
        out, h_n, c_n = self._run(x, hs, cs)
        if self.batch_first:
            out = out.transpose(0, 1)
            if not is_lstm:       # PyTorch's rnn_tanh/relu/gru transpose their output in place
                out = rename(out, "TransposeBackward1")
        h_n = _stack0(h_n)
        c_n = _stack0(c_n) if is_lstm else None
        if not batched:
            out = out.squeeze(batch_dim)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if is_lstm else None
        return (out, (h_n, c_n)) if is_lstm else (out, h_n)


def _stack0(ts):
    parts = [apply(P["reshape"], t, shape=(1,) + tuple(t.shape)) for t in ts]
    return rename(parts[0] if len(parts) == 1 else apply(P["cat"], *parts, dim=0),
                  "StackBackward0")


class RNN(RNNBase):
    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(mode, *args, **kwargs)


class LSTM(RNNBase):
    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    __constants__ = ["input_size", "hidden_size", "bias"]

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(creation.empty((num_chunks * hidden_size, input_size), dtype=dtype))
        self.weight_hh = Parameter(creation.empty((num_chunks * hidden_size, hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(num_chunks * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(num_chunks * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _prep(self, input, hx, n_states):
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.size(-1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(-1)} expected "
                               f"{self.input_size}")
        batched = input.dim() == 2
        w = self.weight_ih
        for t in [input] + ([] if hx is None else list(hx) if n_states == 2 else [hx]):
            if self.bias and isinstance(t, Tensor) and t.dtype != w.dtype:
                # ATen's cells are linear(x, W, b): addmm's text
                raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                                   f"{dt.tname(t.dtype)} and {dt.tname(w.dtype)}")
        x = input if batched else input.unsqueeze(0)
        N = x.shape[0]
        if hx is None:
            states = [creation.zeros(N, self.hidden_size, dtype=x.dtype, device=x.device)
                      for _ in range(n_states)]
        else:
            states = list(hx) if n_states == 2 else [hx]
            for k, s in enumerate(states):       # PyTorch: ValueError only for a 0-d/3-d+ state
                if s.dim() not in (1, 2):
                    which = f"hx[{k}]" if n_states == 2 else "hidden"
                    raise ValueError(f"{name}: Expected {which} to be 1D or 2D, got "
                                     f"{s.dim()}D instead")
            if not batched:
                states = [s.unsqueeze(0) for s in states]
            for k, s in enumerate(states):       # ATen's check_rnn_cell_forward_hidden texts
                if s.shape[0] != N:
                    raise RuntimeError(f"Input batch size {N} doesn't match hidden{k} batch size "
                                       f"{s.shape[0]}")
                if s.dim() < 2:                  # (ATen's hx.size(1) on a 1-D state)
                    raise IndexError("Dimension out of range (expected to be in range of "
                                     "[-1, 0], but got 1)")
                if s.shape[1] != self.hidden_size:
                    raise RuntimeError(f"hidden{k} has inconsistent hidden_size: got "
                                       f"{s.shape[1]}, expected {self.hidden_size}")
                if s.dim() != 2:
                    raise RuntimeError(f"{name}: expected hidden{k} of shape "
                                       f"{[N, self.hidden_size]}, got {list(s.shape)}")
        return x, states, batched


class RNNCell(RNNCellBase):
    __constants__ = ["input_size", "hidden_size", "bias", "nonlinearity"]

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), batched = self._prep(input, hx, 1)
        pre = _add(_proj(x, self.weight_ih, self.bias_ih), _proj(h, self.weight_hh, self.bias_hh))
        if self.nonlinearity == "tanh":
            h = tanh(pre)
        elif self.nonlinearity == "relu":
            h = relu(pre)
        else:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        x, (h, c), batched = self._prep(input, hx, 2)
        gates = _add(_proj(x, self.weight_ih, self.bias_ih), _proj(h, self.weight_hh, self.bias_hh))
        h, c = _lstm_cell(gates, c)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prep(input, hx, 1)
        h = _gru_cell(_proj(x, self.weight_ih, self.bias_ih), _proj(h, self.weight_hh, self.bias_hh), h)
        return h if batched else h.squeeze(0)
