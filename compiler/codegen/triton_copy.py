"""A tiled copy of a (batched) matrix view into a fresh layout: the K-major staging of tf32
matmul operands (compiler/codegen/triton_group.py, GroupKernel._stage_k_major).

The element-wise copy of a transposed view reads or writes with a stride on every element;
a tile copy loads a BLOCK x BLOCK tile along the source's contiguous dim and stores it along
the destination's, Triton moving it through shared memory in between, so both sides are
coalesced. One fixed kernel (not generated per graph); sizes and strides are arguments.
"""
from . import cache

NAME = "kiln_tile_copy"
SOURCE = '''"""kiln_tile_copy: dst[b, i, j] = src[b, i, j], any strides on either side, one
BLOCK_I x BLOCK_J tile per program (program axis 0: tiles, axis 1: batch)."""
import triton
import triton.language as tl


@triton.jit
def kiln_tile_copy(src_ptr, dst_ptr, I, J, s_b, s_i, s_j, d_b, d_i, d_j,
                   BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr):
    pid = tl.program_id(0)
    b = tl.program_id(1)
    nj = tl.cdiv(J, BLOCK_J)
    i = (pid // nj) * BLOCK_I + tl.arange(0, BLOCK_I)[:, None]
    j = (pid % nj) * BLOCK_J + tl.arange(0, BLOCK_J)[None, :]
    mask = (i < I) & (j < J)
    v = tl.load(src_ptr + b * s_b + i * s_i + j * s_j, mask=mask)
    tl.store(dst_ptr + b * d_b + i * d_i + j * d_j, v, mask=mask)
'''
BLOCK = 64


def function(interpret):
    return getattr(cache.load_module(cache.write_source(NAME, SOURCE), interpret), NAME)


def copy(src, dst, interpret=False):
    """Copy src into dst (same shape: (..., I, J), every leading dim flattened into one batch
    index, which must be expressible with one stride on each side). Buffers are launch
    arguments: data_ptr(), dtype, shape, stride() in elements."""
    shape = tuple(src.shape)
    if tuple(dst.shape) != shape or len(shape) < 2:
        raise ValueError(f"tile copy: shapes {list(shape)} and {list(dst.shape)}")
    ss, ds = tuple(src.stride()), tuple(dst.stride())
    lead = shape[:-2]
    batch = 1
    for n in lead:
        batch *= n
    sb = _batch_stride(lead, ss[:-2])
    db = _batch_stride(lead, ds[:-2])
    if sb is None or db is None:
        raise ValueError("tile copy: batch dims that one stride does not describe")
    I, J = shape[-2], shape[-1]
    grid = (-(-I // BLOCK) * -(-J // BLOCK), batch)
    args = [src, dst, I, J, sb, ss[-2], ss[-1], db, ds[-2], ds[-1]]
    fn = function(interpret)
    if interpret:
        fn[grid](*args, BLOCK_I=BLOCK, BLOCK_J=BLOCK)
    else:
        global _relauncher
        if _relauncher is None:
            from .relaunch import Relauncher
            _relauncher = Relauncher()
        _relauncher.launch(fn, grid, args, {"BLOCK_I": BLOCK, "BLOCK_J": BLOCK},
                           {"num_warps": 4})
    return dst


_relauncher = None


def _batch_stride(lead, strides):
    """The one stride of the flattened leading dims (their strides nest), or None."""
    dims = [(n, s) for n, s in zip(lead, strides) if n != 1]
    if not dims:
        return 0
    for (n0, s0), (n1, s1) in zip(dims, dims[1:]):
        if s0 != s1 * n1:
            return None
    return dims[-1][1]
