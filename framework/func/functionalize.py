"""torch.func.functionalize and torch.func.debug_unwrap.

functionalize(f) runs f on copies of its tensor inputs, so every in-place op inside writes
only function-local memory (PyTorch swaps them for out-of-place ops: the values and gradients
are the same), then copies an input's new value back once, at the end, if f mutated it. As in
PyTorch: an output that is an unmutated input is that input, and a view of one is the same
view of the input (a fresh tensor with remove='mutations_and_views'); a leaf that requires
grad is not copied, so mutating it raises as it does outside. Kiln has no make_fx; the result
is a plain function (compile() and export see its ops)."""
import functools

from .. import _dispatch
from ..tensor import Tensor
from . import _batched, _pytree

_REMOVE_ERROR = (
    "functionalize(f, remove='mutations'): received invalid argument for remove={}. Valid "
    "options are:\n     remove='mutations': all inplace and out= operators will be removed from "
    "the program, and replaced with their out-of-place equivalents.\n     "
    "remove='mutations_and_views': In addition to the above, all aliasing operators {{view}} "
    "will be replaced with their non-aliasing counterparts, {{view}}_copy.\n")


def _view_chain(t, root):
    """The (primitive, attrs) view steps from root to t, or None if t is no view of root."""
    chain = []
    while t is not root:
        vs = t._view_src
        if vs is None:
            return None
        chain.append(vs[1:3])
        t = vs[0]
    return chain[::-1]


def functionalize(func, *, remove="mutations"):
    """A function with func's results and effects whose in-place ops write only copies of the
    inputs; inputs func mutated are updated (one copy_) when it returns."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(_REMOVE_ERROR.format(remove))
    views = remove == "mutations"

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        flat, spec = _pytree.flatten((args, kwargs))
        copies = []                  # (input, copy, the copy's version at start)
        run = []
        for x in flat:
            if isinstance(x, Tensor) and not (x.is_leaf and x.requires_grad):
                # (one copy per argument, as PyTorch wraps each: f(a, a) writing its first
                # argument does not change what it reads through the second)
                c = x.clone()
                copies.append((x, c, c._version))
                run.append(c)
            else:
                run.append(x)
        a, kw = _pytree.unflatten(run, spec)
        out = func(*a, **kw)
        mutated = {id(c) for x, c, v in copies if c._version != v}
        for x, c, v in copies:
            if id(c) in mutated:
                x.copy_(c)
        by_copy = {id(c): (x, c) for x, c, v in copies if id(c) not in mutated}
        res = []
        for o in _pytree.flatten(out)[0]:
            if isinstance(o, Tensor):
                if id(o) in by_copy:
                    o = by_copy[id(o)][0]
                elif o._base is not None:
                    root = next((xc for xc in by_copy.values() if o._base is xc[1]), None)
                    chain = None if root is None else _view_chain(o, root[1])
                    if not views:                   # PyTorch's {view}_copy op
                        name = None if o.grad_fn is None else o.grad_fn._name
                        o = o.clone()
                        if name is not None:
                            _dispatch.rename(o, name + "_copy")
                    elif chain is not None:         # (recorded under grad: replay it)
                        o = root[0]
                        for p, attrs in chain:
                            o = _dispatch.apply(p, o, **attrs)
                    elif root is not None and root[0].stride() == root[1].stride():
                        x, c = root
                        o = x.as_strided(o.shape, o.stride(), o.storage_offset() -
                                         c.storage_offset() + x.storage_offset())
            res.append(o)
        return _pytree.unflatten(res, _pytree.flatten(out)[1])
    return wrapped


def debug_unwrap(tensor, *, recurse=True):
    """Unwraps a functorch tensor (e.g. BatchedTensor, GradTrackingTensor) to its underlying
    tensor.

    This function should only be used in a debug setting (e.g. trying to print the value of a
    Tensor in a debugger). Otherwise, using the result of function inside of a function being
    transformed will lead to undefined behavior."""
    while isinstance(tensor, Tensor) and type(tensor._data) is _batched.BatchedArray:
        tensor = tensor._data.value
        if not recurse:
            break
    return tensor
