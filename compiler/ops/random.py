"""philox(state, kind, shape, dtype, params): random numbers drawn inside a compiled program.

`state` is an int64 vector [seed, offset] (a program input, so each run draws new numbers
without recompiling); element i of the result (C order over `shape`) comes from Philox counter
offset + i, exactly as the device generators' fill kernels draw it
(compiler/codegen/triton_random.py), so a compiled step's dropout masks equal eager's. The
NumPy lowering is the kernels' NumPy twin; Triton programs run it as a generated kernel
(triton_group._philox). Not differentiable: a draw is a constant of the computation.
"""
from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register


def _philox_meta(state, kind, shape, dtype, params):
    if state.dtype is not dt.int64 or tuple(state.shape) != (2,):
        raise RuntimeError(f"philox: state must be an int64 [seed, offset] vector, got "
                           f"{state.dtype} of shape {list(state.shape)}")
    from ..codegen.triton_random import KINDS
    if kind not in KINDS:
        raise RuntimeError(f"philox: unknown draw kind {kind!r} (one of {', '.join(KINDS)})")
    return AVal(tuple(shape), dtype)


def _philox_np(out, state, kind, shape, dtype, params):
    from ..codegen.triton_random import draw_numpy
    seed, offset = (int(x) for x in state.reshape(-1)[:2])
    return draw_numpy(kind, tuple(shape), dtype, seed & 0xFFFFFFFFFFFFFFFF, offset, params)


register(Prim("philox", "extern", _philox_meta, _philox_np, differentiable=False, saves=(),
              doc="random numbers from Philox counters offset + i under state [seed, offset]"))
