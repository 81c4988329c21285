"""Temporary patches applied while tracing, all undone on exit, errors included
(torch.fx._symbolic_trace._Patcher), and the wrappers that turn calls of Kiln's functions on
Proxies into call_function nodes (Kiln has no __torch_function__)."""
import functools

from .proxy import _find_proxy

_wrapped_fns_to_patch = {}        # (id(globals), name) -> (globals, name): torch.fx.wrap
_kiln_wrappers = {}               # id(original) -> wrapper
_kiln_patch_list = None           # [(namespace, attr name, original)]


class _Patcher:
    def __init__(self):
        self.patches_made = []
        self.visited = set()

    def patch(self, frame_dict, name, new_fn, deduplicate=True):
        new_fn._fx_already_patched = deduplicate
        if name not in frame_dict:                 # a builtin (len): shadowed, then removed
            self.patches_made.append(("del", frame_dict, name, None))
        elif getattr(frame_dict[name], "_fx_already_patched", False):
            return
        else:
            self.patches_made.append(("set", frame_dict, name, frame_dict[name]))
        frame_dict[name] = new_fn

    def patch_attr(self, obj, name, new_value):
        own = vars(obj) if hasattr(obj, "__dict__") else {}
        if name in own:
            self.patches_made.append(("attr", obj, name, own[name]))
        else:                                      # a class attribute seen through obj
            self.patches_made.append(("delattr", obj, name, None))
        setattr(obj, name, new_value)

    def patch_cell(self, cell, new_value):
        self.patches_made.append(("cell", cell, None, cell.cell_contents))
        cell.cell_contents = new_value

    def visit_once(self, key):
        """True the first time key (hashable, e.g. ("globals", id(d))) is seen."""
        if key in self.visited:
            return False
        self.visited.add(key)
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        while self.patches_made:
            kind, where, name, orig = self.patches_made.pop()
            if kind == "attr":
                setattr(where, name, orig)
            elif kind == "cell":
                where.cell_contents = orig
            elif kind == "delattr":
                delattr(where, name)
            elif kind == "set":
                where[name] = orig
            else:
                where.pop(name, None)
        self.visited.clear()


def _create_wrapped_func(orig_fn, mark_wrapped):
    @functools.wraps(orig_fn)
    def wrapped(*args, **kwargs):
        proxy = _find_proxy(args, kwargs)
        if proxy is not None:
            out = proxy.tracer.create_proxy("call_function", orig_fn, args, kwargs)
            if mark_wrapped:
                out.node.meta["is_wrapped"] = True
            return out
        return orig_fn(*args, **kwargs)
    wrapped.__fx_original__ = orig_fn
    return wrapped


def _kiln_patch_targets():
    """The public functions of framework, nn.functional, special, linalg and fft."""
    global _kiln_patch_list
    if _kiln_patch_list is None:
        import framework
        out = []
        from .node import _public_functions
        for ns in (framework, framework.nn.functional, framework.special, framework.linalg,
                   framework.fft):
            out.extend((ns, k, v) for k, v in _public_functions(ns))
        # (torch._assert goes through __torch_function__ too: a Proxy condition is recorded)
        out.append((framework, "_assert", framework._assert))
        _kiln_patch_list = out
    return _kiln_patch_list


def _kiln_wrapper(orig):
    w = _kiln_wrappers.get(id(orig))
    if w is None:
        w = _kiln_wrappers[id(orig)] = _create_wrapped_func(orig, mark_wrapped=False)
    return w


def patch_kiln_functions(patcher):
    for ns, name, orig in _kiln_patch_targets():
        if getattr(ns, name, None) is orig:
            patcher.patch_attr(ns, name, _kiln_wrapper(orig))


def patch_globals(patcher, fn_globals):
    """A traced function's globals that name Kiln functions directly (`from framework
    import relu`) are patched too, as fx's autowrap does for math functions."""
    if not patcher.visit_once(("kiln", id(fn_globals))):
        return
    originals = {id(o): o for _, _, o in _kiln_patch_targets()}
    for name, value in list(fn_globals.items()):
        if not name.startswith("__") and originals.get(id(value)) is value:
            patcher.patch(fn_globals, name, _kiln_wrapper(value), deduplicate=False)


def patch_function_refs(patcher, fn):
    """The globals and closure cells of a traced forward that hold Kiln functions."""
    fn = getattr(fn, "__func__", fn)
    patch_globals(patcher, getattr(fn, "__globals__", {}))
    if getattr(fn, "__closure__", None) and patcher.visit_once(("cells", id(fn))):
        originals = {id(o): o for _, _, o in _kiln_patch_targets()}
        for cell in fn.__closure__:
            try:
                value = cell.cell_contents
            except ValueError:              # an empty cell
                continue
            if originals.get(id(value)) is value:
                patcher.patch_cell(cell, _kiln_wrapper(value))


def patch_wrapped_functions(patcher):
    for (_, name), (frame_dict, _) in list(_wrapped_fns_to_patch.items()):
        if name not in frame_dict:
            import builtins
            if not hasattr(builtins, name):
                continue
            orig = getattr(builtins, name)
        else:
            orig = frame_dict[name]
        patcher.patch(frame_dict, name, _create_wrapped_func(orig, mark_wrapped=True))
