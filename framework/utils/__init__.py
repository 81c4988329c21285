"""torch.utils"""
from . import data  # noqa: F401
from . import checkpoint  # noqa: F401
from . import benchmark  # noqa: F401
from . import dlpack  # noqa: F401
from . import _pytree  # noqa: F401,E402


def swap_tensors(t1, t2):
    """Swap everything two tensors hold (class, data, dtype, device, autograd state, .grad,
    hooks, Python attributes), each keeping its identity. A Kiln tensor keeps all of that in
    its __dict__ (and any subclass slots), so swapping those swaps the tensors."""
    import copyreg
    import weakref
    from ..tensor import Tensor
    for name, t in (("t1", t1), ("t2", t2)):
        if weakref.getweakrefs(t):
            raise RuntimeError(f"Cannot swap {name} because it has weakref associated with it")
    for t in (t1, t2):
        if not isinstance(t, Tensor):        # (what torch's use-count check runs into)
            raise AttributeError(f"'{type(t).__name__}' object has no attribute '_use_count'")
    s1 = set(copyreg._slotnames(t1.__class__))
    s2 = set(copyreg._slotnames(t2.__class__))
    if s1 != s2:
        raise RuntimeError("Cannot swap t1 and t2 if they have different slots")
    t1.__class__, t2.__class__ = t2.__class__, t1.__class__
    d1, d2 = dict(t1.__dict__), dict(t2.__dict__)
    t1.__dict__.clear()
    t1.__dict__.update(d2)
    t2.__dict__.clear()
    t2.__dict__.update(d1)
    for s in s1:
        h1, h2 = hasattr(t1, s), hasattr(t2, s)
        a, b = getattr(t1, s, None), getattr(t2, s, None)
        if h1:
            delattr(t1, s)
        if h2:
            delattr(t2, s)
        if h2:
            setattr(t1, s, b)
        if h1:
            setattr(t2, s, a)
