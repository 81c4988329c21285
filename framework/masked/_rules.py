"""What a primitive does when an operand is a MaskedTensor (framework._dispatch.apply raises
MaskedOperand from its meta step for such operands, off the dense path, and calls `apply_masked`).
PyTorch's MaskedTensor rules: pointwise ops run on the data and keep the mask (binary operands
must have matching masks); where merges the masks; views apply to data and mask alike;
reductions are the masked ones, with the mask reduced by any()."""
from framework._dispatch import apply
from framework.tensor import Tensor
from ._core import MaskedTensor, _make


def _masks_match(a, b):
    ma, mb = a._masked_mask, b._masked_mask
    return ma.dim() == mb.dim() and bool((ma == mb).all())


def _parts(a):
    if isinstance(a, MaskedTensor):
        return a._masked_data, a._masked_mask
    return a, None


def apply_masked(p, args, attrs):
    if p.kind == "pointwise":
        if p.name == "where":
            cond = args[0]._masked_data if isinstance(args[0], MaskedTensor) else args[0]
            (xd, xm), (yd, ym) = _parts(args[1]), _parts(args[2])
            data = apply(p, cond, xd, yd)
            # (an operand that is not masked is specified everywhere)
            xm = xm if xm is not None else True
            ym = ym if ym is not None else True
            return _make(data, apply(p, cond, xm, ym))
        mts = [a for a in args if isinstance(a, MaskedTensor)]
        if len(args) > 2 and any(isinstance(a, Tensor) for a in args[2:]):
            raise TypeError("MaskedTensor binary ops do not support Tensor arguments aside from "
                            "the lhs and rhs")
        if len(mts) == 2 and not _masks_match(*mts):
            raise ValueError("Input masks must match. If you need support for this, please open "
                             "an issue on Github.")
        data = apply(p, *[_parts(a)[0] for a in args], **attrs)
        mask = mts[0]._masked_mask
        if tuple(mask.shape) != tuple(data.shape):
            mask = mask.expand(data.shape)
        return _make(data, mask)
    if p.kind == "reduction" and len(args) == 1:
        # torch.sum(mt, 1), torch.amax(mt), torch.argmin(mt, 1), ...: as the methods (these
        # functions end in their reduction primitive; composites that read the data first,
        # such as torch.mean, raise TypeError instead)
        mt = args[0]
        if p.name in ("argmax", "argmin"):
            return mt._reduce(p.name, attrs.get("dim"), attrs.get("keepdim", False), None)
        dims, keepdim = attrs["dims"], attrs.get("keepdim", False)
        if p.name in ("all", "any"):
            return mt._logical(p.name, dims, keepdim)
        return mt._reduce(p.name, dims, keepdim, attrs.get("dtype"))
    if p.kind == "view" and len(args) == 1:
        d, m = _parts(args[0])
        return _make(apply(p, d, **attrs), apply(p, m, **attrs))
    raise TypeError(f"{p.name} is not implemented for MaskedTensor operands here; use the "
                    "MaskedTensor method (sum, mean, amax, softmax, ...) or torch.masked."
                    f"{p.name}")

