"""affine_grid and grid_sample (spatial transformers), 2-D, composed from existing ops: the
sampling positions are computed with tensor arithmetic and the corners are read with gather,
so gradients reach both the input and the grid (through the bilinear weights), on every
device and under compile(). In nearest mode the grid gets no gradient (grid.grad stays None;
PyTorch fills it with zeros)."""
import framework as torch

__all__ = ["affine_grid", "grid_sample"]


def _base_coords(n, align_corners, like):
    """The normalised coordinates of n pixel centres in [-1, 1]."""
    if n == 1:
        return torch.zeros(1, dtype=like.dtype, device=like.device)
    r = torch.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)
    return r if align_corners else r * (n - 1) / n


def affine_grid(theta, size, align_corners=None):
    """Sampling grid (N, H, W, 2) of the affine maps theta (N, 2, 3) over an output of
    size (N, C, H, W): grid[n, i, j] = theta[n] @ (x_j, y_i, 1)."""
    align_corners = bool(align_corners)
    if len(size) != 4:
        raise NotImplementedError(f"affine_grid only supports 4D sizes, for 2D affine "
                                  f"transformations. Got size {list(size)}.")
    n, _, h, w = size
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (2, 3) or theta.shape[0] != n:
        raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size "
                         f"{list(size)}. Got {list(theta.shape)}.")
    xs = _base_coords(w, align_corners, theta).reshape(1, w).expand(h, w)
    ys = _base_coords(h, align_corners, theta).reshape(h, 1).expand(h, w)
    base = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, h * w, 3)
    return (base @ theta.transpose(1, 2)).reshape(n, h, w, 2)


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


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    align_corners = bool(align_corners)
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', "
                         f"'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
                         f"'border', or 'reflection', but got: '{padding_mode}'")
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or \
            grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected 4D input and grid with same batch size "
                           f"and grid of shape (N, H, W, 2), but got input with sizes "
                           f"{list(input.shape)} and grid with sizes {list(grid.shape)}")
    n, c, h, w = input.shape
    ho, wo = grid.shape[1], grid.shape[2]
    x = _unnormalize(grid[..., 0], w, align_corners)
    y = _unnormalize(grid[..., 1], h, align_corners)
    if padding_mode == "border":
        x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    elif padding_mode == "reflection":
        if align_corners:
            x, y = _reflect(x, 0, w - 1), _reflect(y, 0, h - 1)
        else:
            x, y = _reflect(x, -0.5, w - 0.5), _reflect(y, -0.5, h - 0.5)
        x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    flat = input.reshape(n, c, h * w)

    def corner(xi, yi):
        """input at integer positions (xi, yi), 0 outside; (values (N, C, Ho, Wo))."""
        valid = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
        idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long().reshape(n, 1, ho * wo)
        v = flat.gather(2, idx.expand(n, c, ho * wo)).reshape(n, c, ho, wo)
        return v * valid.unsqueeze(1).to(v.dtype)

    if mode == "nearest":
        return corner(torch.round(x), torch.round(y))
    x0, y0 = torch.floor(x), torch.floor(y)
    wx1, wy1 = (x - x0).unsqueeze(1), (y - y0).unsqueeze(1)
    wx0, wy0 = 1 - wx1, 1 - wy1
    return (corner(x0, y0) * wx0 * wy0 + corner(x0 + 1, y0) * wx1 * wy0 +
            corner(x0, y0 + 1) * wx0 * wy1 + corner(x0 + 1, y0 + 1) * wx1 * wy1)
