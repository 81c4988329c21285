"""torch.nn.modules.utils: the argument helpers layers and user code use (_pair(3) == (3, 3)).

Kiln's own layers normalize their arguments with stricter private helpers (nn/modules/conv.py
`_tuple` broadcasts a 1-element list; nn/_functional_conv.py `_ntuple` checks lengths and raises
PyTorch's conv errors); these are PyTorch's permissive ones, for code written against torch.
"""
import collections.abc
from itertools import repeat

__all__ = ["consume_prefix_in_state_dict_if_present"]


def _ntuple(n, name="parse"):
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t, n):
    r"""Reverse the order of `t` and repeat each element for `n` times (Conv/Pool padding to
    F.pad's order)."""
    return tuple(x for x in reversed(t) for _ in range(n))


def _list_with_default(out_size, defaults):
    """Adaptive pooling's output size: None entries take the input's size from `defaults`."""
    if isinstance(out_size, int):
        return out_size
    if len(defaults) <= len(out_size):
        raise ValueError(f"Input dimension should be at least {len(out_size) + 1}")
    return [v if v is not None else d
            for v, d in zip(out_size, defaults[-len(out_size):])]


def consume_prefix_in_state_dict_if_present(state_dict, prefix):
    r"""Strip the prefix in state_dict in place, if any (a DDP model's "module." for a local
    model's load_state_dict)."""
    keys = list(state_dict.keys())
    for key in keys:
        if key.startswith(prefix):
            newkey = key[len(prefix):]
            state_dict[newkey] = state_dict.pop(key)
    # also strip the prefix in metadata if any.
    if hasattr(state_dict, "_metadata"):
        keys = list(state_dict._metadata.keys())
        for key in keys:
            # '': the DDP module, 'module': the actual model, 'module.xx.xx': the rest
            if len(key) == 0:
                continue
            if key == prefix.replace(".", "") or key.startswith(prefix):
                newkey = key[len(prefix):]
                state_dict._metadata[newkey] = state_dict._metadata.pop(key)
