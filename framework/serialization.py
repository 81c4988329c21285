"""save/load (the optim/data issue delivers the safe format)."""


def save(obj, f, **kwargs):
    raise NotImplementedError("framework.save: arrives with the checkpoint work (issue 5)")


def load(f, map_location=None, weights_only=True, **kwargs):
    raise NotImplementedError("framework.load: arrives with the checkpoint work (issue 5)")


def _rebuild_tensor(arr, dtype_name, requires_grad):
    from runtime import dtypes as dt
    from ._dispatch import wrap
    t = wrap(arr, dt._dtype_by_name(dtype_name))
    if requires_grad:
        t.requires_grad_(True)
    return t
