"""Dynamic quantized LSTM and GRU (torch.ao.nn.quantized.dynamic.LSTM / GRU): each weight
matrix is quantized (qint8 per tensor, by the qconfig's weight observer) or kept as float16;
the gate products run through the dynamic linear (linear.py): the input projection of a whole
sequence at once, the hidden state's at every step, as PyTorch's CPU quantized_lstm / _gru. Inference
only (no autograd), no proj_size."""
import numpy as np

from runtime import dtypes as dt
from .... import _qtensor as Q
from ..... import nn
from ....._dispatch import wrap, values
from .linear import _dynamic_int8_matmul


def _sigmoid(v):
    return (np.float32(1) / (np.float32(1) + np.exp(-v))).astype(np.float32)


class _RNNBase(nn.Module):
    _mode = None
    _gates = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=dt.qint8):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.dtype = bidirectional, dtype
        self._cells = []        # per (layer, direction): (w_ih, w_hh, b_ih, b_hh)

    def _get_name(self):
        return "DynamicQuantized" + type(self).__name__

    proj_size = 0               # (not built; the float modules' repr then reads the same)
    extra_repr = nn.RNNBase.extra_repr

    def __repr__(self):
        return f"{self._get_name()}({self.extra_repr()})"

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for i, cell in enumerate(self._cells):
            destination[f"{prefix}_all_weight_values.{i}.param"] = cell

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for i in range(len(self._cells)):
            v = state_dict.pop(f"{prefix}_all_weight_values.{i}.param", None)
            if v is not None:
                self._cells[i] = tuple(v)
            elif strict:
                missing_keys.append(f"{prefix}_all_weight_values.{i}.param")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        from ....quantization.qconfig import default_dynamic_qconfig
        if getattr(mod, "proj_size", 0):
            raise NotImplementedError("Kiln's dynamic quantized LSTM has no proj_size")
        qconfig = getattr(mod, "qconfig", None) or default_dynamic_qconfig
        dtype = qconfig.weight().dtype
        if dtype not in (dt.qint8, dt.float16):
            raise RuntimeError(f"Unsupported dtype for dynamic RNN quantization: {dtype}")
        new = cls(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias, mod.batch_first,
                  mod.dropout, mod.bidirectional, dtype)

        def qw(w):
            w = w.detach().float()
            if dtype is dt.float16:
                return w.to(dt.float16).float()
            obs = qconfig.weight()      # (one observer per matrix, as PyTorch)
            obs(w)
            s, z = obs.calculate_qparams()
            return Q.quantize_per_tensor(w, float(s.item()), int(z.item()), dt.qint8)

        for names in mod._all_weights:
            ps = [getattr(mod, n) for n in names]
            b = (ps[2].detach().float(), ps[3].detach().float()) if mod.bias else (None, None)
            new._cells.append((qw(ps[0]), qw(ps[1])) + b)
        return new

    def _lin(self, a, w, b):
        bias = None if b is None else np.asarray(values(b), np.float32)
        if self.dtype is dt.float16:
            out = a @ np.asarray(values(w), np.float32).T
            return out if bias is None else (out + bias).astype(np.float32)
        return _dynamic_int8_matmul(a, w, bias)

    def forward(self, input, hx=None):
        x = np.asarray(values(input.detach()), np.float32)
        if x.ndim != 3:      # (PyTorch's dynamic RNNs take batched input only)
            raise RuntimeError(f"input must have 3 dimensions, got {x.ndim}")
        if self.batch_first:
            x = x.transpose(1, 0, 2)
        nd = 2 if self.bidirectional else 1
        T, B = x.shape[0], x.shape[1]
        states = self._initial(hx, nd, B)
        h_out, c_out = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(nd):
                k = layer * nd + d
                st = tuple(s[k] for s in states)
                seq = range(T - 1, -1, -1) if d == 1 else range(T)
                ys = [None] * T
                w = self._cells[k]
                # (the input projection of the whole sequence at once, quantized as one)
                xw = self._lin(x.reshape(T * B, -1), w[0], w[2]).reshape(T, B, -1)
                for t in seq:
                    st = self._cell(xw[t], st, w)
                    ys[t] = st[0]
                outs.append(np.stack(ys))
                h_out.append(st[0])
                if len(st) > 1:
                    c_out.append(st[1])
            x = np.concatenate(outs, axis=-1)
        y = x.transpose(1, 0, 2) if self.batch_first else x
        y, hn = wrap(np.ascontiguousarray(y), dt.float32), wrap(np.stack(h_out), dt.float32)
        if c_out:
            return y, (hn, wrap(np.stack(c_out), dt.float32))
        return y, hn

    def _initial(self, hx, nd, B):
        n = self.num_layers * nd
        zeros = np.zeros((n, B, self.hidden_size), np.float32)
        if hx is None:
            return (zeros, zeros.copy()) if self._mode == "LSTM" else (zeros,)
        hs = hx if isinstance(hx, tuple) else (hx,)
        return tuple(np.asarray(values(h.detach()), np.float32) for h in hs)


class LSTM(_RNNBase):
    """Dynamic quantized nn.LSTM (PyTorch's gate order i, f, g, o)."""
    _mode = "LSTM"

    def _cell(self, xw, st, w):
        h, c = st
        gates = xw + self._lin(h, w[1], w[3])
        i, f, g, o = np.split(gates, 4, axis=1)
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        c = (f * c + i * g).astype(np.float32)
        return (o * np.tanh(c)).astype(np.float32), c


class GRU(_RNNBase):
    """Dynamic quantized nn.GRU (gates r, z, n)."""
    _mode = "GRU"

    def _cell(self, gi, st, w):
        (h,) = st
        gh = self._lin(h, w[1], w[3])
        ir, iz, in_ = np.split(gi, 3, axis=1)
        hr, hz, hn = np.split(gh, 3, axis=1)
        r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
        n = np.tanh(in_ + r * hn)
        return ((n + z * (h - n)).astype(np.float32),)
