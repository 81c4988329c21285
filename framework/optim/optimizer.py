"""torch.optim.Optimizer: parameter groups, per-parameter state, state_dict round trips.

Updates in the subclasses are written with in-place tensor ops under no_grad (no NumPy, no
per-element Python), so a traced training step can record them like any other op.
"""
import copy
import math
import warnings
from collections import defaultdict

from ..tensor import Tensor
from ..autograd import no_grad, enable_grad


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _step_value(step_t):
    """The step count the bias corrections read: a Python float eagerly; under compile() a
    float64 0-d tensor, because .item() would need a value and break the traced step's graph.
    Float64 tensor math reproduces the eager Python-float arithmetic exactly."""
    from .._compile import is_compiling
    return step_t.double() if is_compiling() else step_t.item()


def _hp(group, key):
    """group[key] for an update rule. Under compile() a float (or tuple of floats) becomes a
    float64 0-d tensor read at run time (Tracer.hyper), so a replayed step follows an LR
    schedule; eagerly it is the Python value."""
    from .._dispatch import STATE
    tr = STATE.tracer
    return group[key] if tr is None else tr.hyper(group, key)


def _hp_guard(fn):
    """fn() -- a Python decision over hyperparameters -- recorded under compile() so a replay
    rechecks it (see Tracer.guard)."""
    from .._dispatch import STATE
    tr = STATE.tracer
    return fn() if tr is None else tr.guard(fn)


def _sqrt(x):
    return x.sqrt() if isinstance(x, Tensor) else math.sqrt(x)


def _scalar(x, like):
    """A scalar for an update of `like`: tensors (traced bias corrections) are rounded to its
    dtype first, as the eager path's Python float is when it meets a float32 tensor."""
    return x.to(like.dtype) if isinstance(x, Tensor) else x


def _lerp_(t, end, w, below=None):
    """t.lerp_(end, w) with PyTorch's two-sided formula (exact at w == 1). A traced w (a
    tensor) needs `below` (w < 0.5) from the caller, as a recorded guard."""
    if below is None:
        below = w < 0.5
    if below:
        return t.add_((end - t).mul_(_scalar(w, t)))
    return t.copy_(end - (end - t).mul_(_scalar(1.0 - w, t)))


def _add_scaled_(t, x, alpha):
    """t.add_(x, alpha=alpha); a traced alpha (a tensor) is rounded to t's dtype first, as the
    eager Python float is."""
    if isinstance(alpha, Tensor):
        return t.add_(x * _scalar(alpha, t))
    return t.add_(x, alpha=alpha)


def _addcmul_(t, a, b, value=1.0):
    if isinstance(value, Tensor):
        return t.add_(a * b * value)
    # same rounding as add_(a * b, alpha=value), one temporary instead of two
    return t.add_((a * b).mul_(value)) if value != 1 else t.add_(a * b)


def _addcdiv_(t, a, b, value=1.0):
    if isinstance(value, Tensor):      # traced bias correction (see _step_value)
        return t.add_(a / b * value)
    return t.add_((a / b).mul_(value)) if value != 1 else t.add_(a / b)


def _flat(ts):
    """One 1-D tensor holding ts one after another (the foreach path's working copy)."""
    from ..ops_shape import cat
    return cat([t.reshape(-1) for t in ts])


def _per_element(values, ps, like):
    """A scalar per parameter as one value per element of the flattened group: the scalar
    itself when all are the same Python float, else each expanded over its parameter's
    elements (rounded to like's dtype first, as a scalar meeting that tensor is)."""
    from ..ops_shape import cat
    from ..creation import full
    if all(not isinstance(v, Tensor) for v in values) and len(set(values)) == 1:
        return values[0]
    parts = []
    for v, p in zip(values, ps):
        n = p.numel()
        parts.append(_scalar(v, like).reshape(1).expand(n) if isinstance(v, Tensor)
                     else full((n,), v, dtype=like.dtype))
    return cat(parts)


def _write_back(ts, flat):
    """Copy the pieces of an updated flattened tensor back into ts."""
    o = 0
    for t in ts:
        n = t.numel()
        t.copy_(flat[o:o + n].view(t.shape))
        o += n


def _step_tensor():
    from ..creation import tensor
    from runtime import dtypes as dt
    return tensor(0.0, dtype=dt.float32)


def _check(cond, msg):
    if not cond:
        raise ValueError(msg)


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = defaults
        self._step_hooks = {}
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {params.type()}")
        self.state = defaultdict(dict)
        self.param_groups = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for g in param_groups:
            self.add_param_group(g)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._step_hooks = {}

    def __repr__(self):
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += "\n"
            s += f"Parameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        s += ")"
        return s

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but "
                            "the ordering of tensors in sets will change between runs. Please use "
                            "a list instead.")
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + type(p).__name__)
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization "
                                 f"parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in param_group["params"]]
        if len(set(ids)) != len(ids):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error", stacklevel=3)
        seen = set()
        for g in self.param_groups:
            seen.update(id(p) for p in g["params"])
        if seen & set(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ---- state_dict ------------------------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}, with
        parameters numbered in group order like PyTorch."""
        index = {}
        start = 0
        groups = []
        for g in self.param_groups:
            for i, p in enumerate(g["params"], start):
                index.setdefault(id(p), i)
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in g["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {index[id(p)]: v for p, v in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        state_dict = copy.deepcopy(state_dict)
        if not isinstance(state_dict, dict) or "state" not in state_dict or \
                "param_groups" not in state_dict:
            raise ValueError("optimizer state_dict must be a dict with 'state' and "
                             "'param_groups' entries")
        groups = self.param_groups
        saved = state_dict["param_groups"]
        if len(groups) != len(saved):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the "
                             "size of optimizer's group")
        id_map = {}
        for g, s in zip(groups, saved):
            for old, p in zip(s["params"], g["params"]):
                id_map[old] = p

        def cast(param, value, key=None):
            if isinstance(value, Tensor):
                # step counters keep their own dtype and device; buffers follow the
                # parameter's dtype and device (a checkpoint loaded to the cpu resumes on a GPU)
                if key != "step":
                    if param.dtype.is_floating_point and value.dtype.is_floating_point:
                        value = value.to(param.dtype)
                    value = value.to(param.device)
                return value
            if isinstance(value, dict):
                return {k: cast(param, v, k) for k, v in value.items()}
            return value

        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = cast(id_map[k], v)
            else:
                state[k] = v
        new_groups = []
        for g, s in zip(groups, saved):
            s = dict(s)
            s["params"] = g["params"]
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups

    # ---- stepping ---------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    gr = p.grad
                    if gr.grad_fn is not None:
                        gr.detach_()
                    else:
                        gr.requires_grad_(False)
                    gr.zero_()

    def _closure(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def step(self, closure=None):
        loss = self._closure(closure)
        with no_grad():
            for group in self.param_groups:
                ps, grads = [], []
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad
                    if group.get("maximize", False):
                        grad = -grad
                    ps.append(p)
                    grads.append(grad)
                if ps and self._use_foreach(group, ps):
                    self._update_foreach(ps, grads, [self.state[p] for p in ps], group)
                else:
                    for p, grad in zip(ps, grads):
                        self._update(p, grad, self.state[p], group)
        for hook in self.__dict__.get("_post_hooks", ()):
            hook(self, (), {})
        return loss

    def _update(self, p, grad, state, group):
        raise NotImplementedError(f"{type(self).__name__} does not define an update rule")

    _update_foreach = None      # (ps, grads, states, group): one update over all of a group

    def _use_foreach(self, group, ps):
        """The multi-tensor path, taken for foreach=True (torch's flag): the group's
        parameters, gradients and state flattened into one tensor each, updated by one chain
        of ops, written back; the same arithmetic per element, so the same results. Needs one
        floating dtype and device. The default (None) follows PyTorch: the multi-tensor path
        for parameters on a GPU (there every op is a kernel launch: one chain for the group
        instead of one per parameter), the per-parameter loop on the CPU and while compiling
        (measured on the digits CNN's compiled step, the flattening and write-back copies
        cost more than the per-op overhead they save)."""
        if self._update_foreach is None or len(ps) < 2:
            return False
        want = group.get("foreach")
        d0, dev0 = ps[0]._dtype, ps[0].device
        if want is None:
            from .._compile import is_compiling
            want = dev0.type != "cpu" and not is_compiling()
        if not want:
            return False
        return d0.is_floating_point and all(p._dtype is d0 and p.device == dev0 for p in ps)

    def register_step_post_hook(self, hook):
        from .._dispatch import _Handle
        lst = self.__dict__.setdefault("_post_hooks", [])
        lst.append(hook)
        return _Handle(lst, hook)
