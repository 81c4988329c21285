"""torch.quasirandom.SobolEngine: Sobol' sequences as PyTorch draws them.

Direction numbers: Joe & Kuo's new-joe-kuo-6.21201 table, shipped for the first 1111
dimensions in its own format (_sobol_joe_kuo.txt); PyTorch ships all 21201, so larger
dimensions raise. Point k of the sequence (k = 0, 1, ...) is shift XOR the direction numbers
picked by the bits of gray(k) = k ^ (k >> 1): the same bits PyTorch's point-by-point XOR
recurrence reaches, computed for all points at once. Scrambling follows PyTorch's recipe
(a random digital shift and random lower-triangular matrices, drawn with torch.randint from
the given seed, applied to the direction numbers), so a seeded engine repeats its points.
"""
import os

import numpy as np

import framework as torch

_MAXBIT = 30
_TABLE = None


def _table():
    """(poly, m) per dimension from the Joe-Kuo file; dimension 1 is the van der Corput one."""
    global _TABLE
    if _TABLE is None:
        polys, ms = [1], [[]]
        with open(os.path.join(os.path.dirname(__file__), "_sobol_joe_kuo.txt")) as f:
            for line in f:
                if line.startswith(("#", "d")):        # provenance comments, column names
                    continue
                d, s, a, *m = map(int, line.split())
                polys.append((1 << s) | (a << 1) | 1)
                ms.append(m)
        _TABLE = (polys, ms)
    return _TABLE


def _direction_numbers(dimension):
    """(dimension, MAXBIT) int64: PyTorch's sobolstate after _sobol_engine_initialize_state_
    (Bratley & Fox's recurrence, scaled so column j holds v_j * 2^(MAXBIT-1-j))."""
    polys, ms = _table()
    v = np.zeros((dimension, _MAXBIT), np.int64)
    v[0] = 1
    for d in range(1, dimension):
        p, m = polys[d], ms[d]
        s = p.bit_length() - 1
        v[d, :s] = m
        for j in range(s, _MAXBIT):
            new = v[d, j - s]
            for k in range(s):
                if (p >> (s - 1 - k)) & 1:
                    new ^= v[d, j - k - 1] << (k + 1)
            v[d, j] = new
    return v << np.arange(_MAXBIT - 1, -1, -1, dtype=np.int64)


class SobolEngine:
    MAXBIT = _MAXBIT
    MAXDIM = 21201
    SHIPPED_DIM = 1111      # dimensions with direction numbers in _sobol_joe_kuo.txt

    def __init__(self, dimension, scramble=False, seed=None):
        if dimension > self.MAXDIM or dimension < 1:
            raise ValueError(f"Supported range of dimensionality for SobolEngine is "
                             f"[1, {self.MAXDIM}]")
        if dimension > self.SHIPPED_DIM:
            raise ValueError(f"SobolEngine: Kiln ships Joe-Kuo direction numbers for "
                             f"dimensions [1, {self.SHIPPED_DIM}], got dimension={dimension}")
        self.seed = seed
        self.scramble = scramble
        self.dimension = dimension
        self._v = _direction_numbers(dimension)
        if scramble:
            self._scramble()
        else:
            self._shift = np.zeros(dimension, np.int64)
        self._quasi = self._shift.copy()
        # PyTorch divides the int64 shift in the default dtype, then casts with .to(dtype)
        dd = torch.get_default_dtype()
        self._first_point = torch.from_numpy(
            (self._shift.astype(dd.np) / dd.np.type(2 ** _MAXBIT)).reshape(1, -1))
        self.num_generated = 0

    def _scramble(self):
        g = None
        if self.seed is not None:
            g = torch.Generator()
            g.manual_seed(self.seed)
        shift_ints = torch.randint(2, (self.dimension, _MAXBIT), generator=g).numpy()
        self._shift = (shift_ints.astype(np.int64) << np.arange(_MAXBIT, dtype=np.int64)).sum(1)
        ltm = torch.randint(2, (self.dimension, _MAXBIT, _MAXBIT), generator=g).tril().numpy()
        ltm = ltm.astype(np.int64)
        ltm[:, np.arange(_MAXBIT), np.arange(_MAXBIT)] = 1
        # row p of each matrix as a bit mask (column k is bit MAXBIT-1-k)
        rows = (ltm << np.arange(_MAXBIT - 1, -1, -1, dtype=np.int64)).sum(-1)     # (D, p)
        # new v[d, j]: bit MAXBIT-1-p is the parity of row p AND v[d, j]
        par = np.bitwise_count(rows[:, None, :] & self._v[:, :, None]) & 1          # (D, j, p)
        self._v = (par.astype(np.int64) << np.arange(_MAXBIT - 1, -1, -1, dtype=np.int64)).sum(-1)

    # PyTorch exposes its state as tensors
    @property
    def sobolstate(self):
        return torch.from_numpy(self._v.copy())

    @property
    def shift(self):
        return torch.from_numpy(self._shift.copy())

    @property
    def quasi(self):
        return torch.from_numpy(self._quasi.copy())

    def _advance(self, k0, n):
        """Integer points k0 .. k0+n-1 (n, dimension); the state moves to the last one."""
        if k0 + n > 1 << _MAXBIT:
            raise ValueError(f"SobolEngine: at most 2**{_MAXBIT} points can be drawn, asked for "
                             f"points up to {k0 + n}")
        k = np.arange(k0, k0 + n, dtype=np.int64)
        gray = k ^ (k >> 1)
        pts = np.broadcast_to(self._shift, (n, self.dimension)).copy()
        for b in range(_MAXBIT):
            on = ((gray >> b) & 1).astype(bool)
            if on.any():
                pts[on] ^= self._v[:, b]
        if n:
            self._quasi = pts[-1].copy()
        return pts

    def _floats(self, pts, dtype):
        # PyTorch writes the integers into a `dtype` tensor, then scales by 2^-MAXBIT
        return torch.from_numpy(pts.astype(dtype.np) * dtype.np.type(1.0 / (1 << _MAXBIT)))

    def draw(self, n=1, out=None, dtype=None):
        if dtype is None:
            dtype = torch.get_default_dtype()
        if dtype not in (torch.float32, torch.float64):
            from runtime.dtypes import tname
            raise NotImplementedError(f'"_sobol_engine_draw" not implemented for '
                                      f"'{tname(dtype)}'")
        if self.num_generated == 0:
            first = self._first_point.to(dtype)
            if n == 1:
                result = first
            else:
                rest = self._floats(self._advance(1, n - 1), dtype)
                result = torch.cat((first, rest), dim=-2)
        else:
            result = self._floats(self._advance(self.num_generated, n), dtype)
        self.num_generated += n
        if out is not None:
            out.resize_as_(result).copy_(result)
            return out
        return result

    def draw_base2(self, m, out=None, dtype=None):
        n = 2 ** m
        total_n = self.num_generated + n
        if not total_n & (total_n - 1) == 0:
            raise ValueError("The balance properties of Sobol' points require n to be a power "
                             f"of 2. {self.num_generated} points have been previously generated, "
                             f"then: n={self.num_generated}+2**{m}={total_n}. If you still want "
                             "to do this, please use 'SobolEngine.draw()' instead.")
        return self.draw(n=n, out=out, dtype=dtype)

    def reset(self):
        self._quasi = self._shift.copy()
        self.num_generated = 0
        return self

    def fast_forward(self, n):
        if n > 0:
            self._advance(self.num_generated + n - 1, 1)
            self.num_generated += n
        return self

    def __repr__(self):
        fmt = [f"dimension={self.dimension}"]
        if self.scramble:
            fmt += ["scramble=True"]
        if self.seed is not None:
            fmt += [f"seed={self.seed}"]
        return self.__class__.__name__ + "(" + ", ".join(fmt) + ")"
