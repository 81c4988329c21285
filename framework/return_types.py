"""torch.return_types: the named tuples ops return (max's values/indices, sort's, frexp's,
the linalg factorizations' ...), all made by `named`, so each prints as PyTorch's
(`torch.return_types.max(\nvalues=...,\nindices=...)`) and is found here by name
(`isinstance(r, torch.return_types.max)`)."""
import collections

_TYPES = {}
_VALUES_INDICES = ("max", "min", "sort", "topk", "kthvalue", "median", "nanmedian", "mode",
                   "cummax", "cummin")


def _repr(self):
    return (f"torch.return_types.{type(self).__name__}(\n"
            + ",\n".join(f"{k}={v!r}" for k, v in zip(self._fields, self)) + ")")


def named(name, fields=("values", "indices")):
    """The return type `name` with `fields`, made on first use."""
    t = _TYPES.get(name)
    if t is None:
        t = collections.namedtuple(name, fields)
        t.__module__ = "torch.return_types"
        t.__repr__ = _repr
        _TYPES[name] = t
    return t


for _n in _VALUES_INDICES:
    named(_n)


def __getattr__(name):
    t = _TYPES.get(name)
    if t is None:
        raise AttributeError(f"module 'torch.return_types' has no attribute '{name}'")
    return t
