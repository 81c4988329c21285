"""affine_grid and grid_sample (spatial transformers), 2-D and 3-D, composed from existing ops: the
sampling positions are computed with tensor arithmetic and the corners are read with gather,
so gradients reach both the input and the grid (through the bilinear weights), on every
device and under compile(). In nearest mode the grid's gradient is zeros, as PyTorch's."""
import math
import warnings

import framework as torch
from framework._dispatch import rename

__all__ = ["affine_grid", "grid_sample"]


def _base_coords(n, align_corners, like):
    """The normalised coordinates of n pixel centres in [-1, 1]."""
    if n == 1:
        return torch.zeros(1, dtype=like.dtype, device=like.device)
    r = torch.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)
    return r if align_corners else r * (n - 1) / n


def _default_corners(align_corners):
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to "
                      "align_corners=False since 1.3.0. Please specify align_corners=True if the "
                      "old behavior is desired. See the documentation of grid_sample for "
                      "details.", stacklevel=3)
    return bool(align_corners)


def affine_grid(theta, size, align_corners=None):
    """Sampling grid of the affine maps theta over an output of `size`: (N, H, W, 2) from
    theta (N, 2, 3) for size (N, C, H, W), grid[n, i, j] = theta[n] @ (x_j, y_i, 1); or
    (N, D, H, W, 3) from theta (N, 3, 4) for size (N, C, D, H, W)."""
    align_corners = _default_corners(align_corners)
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = [int(v) for v in size]
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D "
                                  f"affine transforms, respectively. Got size {size}.")
    nd = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (nd, nd + 1) or theta.shape[0] != size[0]:
        raise ValueError(f"Expected a batch of {nd}D affine matrices of shape Nx{nd}x{nd + 1} for "
                         f"size {size}. Got {list(theta.shape)}.")
    spatial = size[2:]
    if not (align_corners and min(spatial) == 1) and min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    n = size[0]
    # coordinate k of the grid (x, y, z) runs along spatial dim nd - 1 - k
    coords = []
    for k in range(nd):
        d = nd - 1 - k
        shape = [1] * nd
        shape[d] = spatial[d]
        coords.append(_base_coords(spatial[d], align_corners, theta).reshape(shape)
                      .expand(*spatial))
    coords.append(torch.ones_like(coords[0]))
    m = 1
    for v in spatial:
        m *= v
    base = torch.stack(coords, -1).reshape(1, m, nd + 1)
    return rename((base @ theta.transpose(1, 2)).reshape(n, *spatial, nd),
                  "AffineGridGeneratorBackward0")


def _unnormalize(g, size, align_corners):
    return (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2


def _reflect(x, lo, hi):
    """Reflect coordinates into [lo, hi] (PyTorch's reflect_coordinates, twice the span)."""
    span = hi - lo
    if span <= 0:
        return torch.zeros_like(x)
    x = (x - lo).abs()
    flips = torch.floor(x / span)
    extra = x - flips * span
    return torch.where(flips % 2 == 0, extra + lo, span - extra + lo)


def _cubic_weights(t):
    """PyTorch's cubic convolution coefficients (A = -0.75) for fraction t: taps -1, 0, 1, 2."""
    a = -0.75

    def c1(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def c2(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """input (N, C, H, W) sampled at grid (N, Ho, Wo, 2), or input (N, C, D, H, W) at grid
    (N, Do, Ho, Wo, 3); grid[..., 0] is x (the last input dim)."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', "
                         f"'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
                         f"'border', or 'reflection', but got: '{padding_mode}'")
    align_corners = _default_corners(align_corners)
    nd = input.ndim - 2
    if nd not in (2, 3) or grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sampler(): expected 4D or 5D input and grid with same number of "
                           f"dimensions, but got input with sizes {list(input.shape)} and grid "
                           f"with sizes {list(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but "
                           f"got input with sizes {list(input.shape)} and grid with sizes "
                           f"{list(grid.shape)}")
    if grid.shape[-1] != nd:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {nd} in last dimension, "
                           f"but got grid with sizes {list(grid.shape)}")
    if mode == "bicubic" and nd != 2:
        raise RuntimeError(f"grid_sampler(): bicubic interpolation only supports 4D input (got "
                           f"input with sizes {list(input.shape)})")
    n, c = input.shape[0], input.shape[1]
    sizes = list(input.shape[2:])
    out_sp = list(grid.shape[1:-1])
    mo, total = math.prod(out_sp), math.prod(sizes)
    flat = input.reshape(n, c, total)

    def bound(v, size):
        """padding_mode applied to (unnormalised) coordinates: PyTorch's compute_coordinates."""
        if padding_mode == "border":
            return v.clamp(0, size - 1)
        if padding_mode == "reflection":
            v = _reflect(v, 0, size - 1) if align_corners else _reflect(v, -0.5, size - 0.5)
            return v.clamp(0, size - 1)
        return v

    def corner(pos):
        """input at integer positions pos (one per spatial dim), 0 outside: (N, C, *out)."""
        valid = None
        idx = None
        for p, size in zip(pos, sizes):
            ok = (p >= 0) & (p <= size - 1)
            valid = ok if valid is None else valid & ok
            q = p.clamp(0, size - 1)
            idx = q if idx is None else idx * size + q
        idx = idx.long().reshape(n, 1, mo)
        v = flat.gather(2, idx.expand(n, c, mo)).reshape(n, c, *out_sp)
        return torch.where(valid.unsqueeze(1), v, 0.0)     # (0.0 outside, not -0.0)

    # spatial dim d of the input is indexed by grid component nd - 1 - d
    raw = [_unnormalize(grid[..., nd - 1 - d], sizes[d], align_corners) for d in range(nd)]
    if mode == "bicubic":
        # taps at floor - 1 .. floor + 2, each bounded by the padding mode (PyTorch's
        # get_value_bounded); the grid's gradient flows through the fractions only
        fl = [torch.floor(v) for v in raw]
        wts = [[w.unsqueeze(1) for w in _cubic_weights(v - f)] for v, f in zip(raw, fl)]
        out = 0
        for i in range(4):
            for j in range(4):
                taps = [bound(fl[0] + (i - 1), sizes[0]), bound(fl[1] + (j - 1), sizes[1])]
                taps = [torch.trunc(t).detach() for t in taps]
                out = out + corner(taps) * wts[0][i] * wts[1][j]
        return rename(out, "GridSampler2DBackward0", link=(input, grid), unused=True)
    pos = [bound(v, size) for v, size in zip(raw, sizes)]
    name = f"GridSampler{nd}DBackward0"
    if mode == "nearest":
        r = [torch.round(v) for v in pos]
        out = corner(r)
        # keep the grid in the graph with a zero gradient (the unselected branch's), as
        # PyTorch's grid_sampler gives it zeros rather than none
        return rename(torch.where(torch.ones_like(out, dtype=torch.bool), out,
                                  pos[0].unsqueeze(1)), name, link=(input, grid), unused=True)
    lo = [torch.floor(v) for v in pos]
    frac = [(v - f).unsqueeze(1) for v, f in zip(pos, lo)]
    out = 0
    for bits in range(2 ** nd):
        taps, w = [], None
        for d in range(nd):
            hi = (bits >> (nd - 1 - d)) & 1
            taps.append(lo[d] + hi)
            wd = frac[d] if hi else 1 - frac[d]
            w = wd if w is None else w * wd
        out = out + corner(taps) * w
    return rename(out, name, link=(input, grid), unused=True)
