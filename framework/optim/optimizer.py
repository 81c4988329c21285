"""torch.optim.Optimizer: parameter groups, per-parameter state, state_dict round trips.

Updates in the subclasses are written with in-place tensor ops under no_grad (no NumPy, no
per-element Python), so a traced training step can record them like any other op.
"""
import copy
import math
import warnings
from collections import OrderedDict, defaultdict
from functools import wraps

from ..tensor import Tensor
from ..autograd import no_grad, enable_grad, set_grad_enabled


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
    # PyTorch's addcdiv_ kernel rounds as t + (value * a) / b: the same order, bit for bit
    if isinstance(value, Tensor):      # traced bias correction (see _step_value)
        return t.add_(a * value / b)
    return t.add_((a * value).div_(b)) if value != 1 else t.add_(a / b)


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


def _scalar_dtype(fused=False):
    """PyTorch's _get_scalar_dtype: the dtype of scalar state (step counts, ASGD's eta and mu,
    NAdam's mu_product): float64 under a float64 default dtype, else (and when fused) float32."""
    from runtime import dtypes as dt
    return dt.float64 if not fused and dt.get_default_dtype() is dt.float64 else dt.float32


def _step_tensor(fused=False):
    from ..creation import tensor
    return tensor(0.0, dtype=_scalar_dtype(fused))


def _check(cond, msg):
    if not cond:
        raise ValueError(msg)


def _check_lr(lr):
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    _check(lr >= 0.0, f"Invalid learning rate: {lr}")


def _check_fused(fused, foreach, differentiable):
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


class _Hooks(OrderedDict):
    """Hooks by handle id (an OrderedDict RemovableHandle can weak-reference)."""


_global_optimizer_pre_hooks = _Hooks()
_global_optimizer_post_hooks = _Hooks()


def _add_hook(hooks, hook, prepend=False):
    from ..utils.hooks import RemovableHandle
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def register_optimizer_step_pre_hook(hook):
    """A hook(optimizer, args, kwargs) run before every optimizer's step; it may return
    (new_args, new_kwargs)."""
    return _add_hook(_global_optimizer_pre_hooks, hook)


def register_optimizer_step_post_hook(hook):
    """A hook(optimizer, args, kwargs) run after every optimizer's step."""
    return _add_hook(_global_optimizer_post_hooks, hook)


def _hooked_step(step):
    """step() running the step pre- and post-hooks (global and the optimizer's own) around
    it, as PyTorch's profile_hook_step. Only a step defined by a class is wrapped, so an
    overriding step that calls super().step() runs the hooks once (the outer call)."""
    @wraps(step)
    def wrapper(*args, **kwargs):
        self = args[0]
        d = self.__dict__
        pre, post = d.get("_step_hooks"), d.get("_post_hooks")
        if not (pre or post or _global_optimizer_pre_hooks or _global_optimizer_post_hooks) \
                or d.get("_in_hooked_step"):
            return step(*args, **kwargs)
        # the hooks see args with the optimizer first, as PyTorch passes them
        for hook in list(_global_optimizer_pre_hooks.values()) + list((pre or {}).values()):
            r = hook(self, args, kwargs)
            if r is not None:
                if isinstance(r, tuple) and len(r) == 2:
                    args, kwargs = r
                else:
                    raise RuntimeError(f"{step} must return None or a tuple of (new_args, "
                                       f"new_kwargs), but got {r}.")
        d["_in_hooked_step"] = True
        try:
            out = step(*args, **kwargs)
        finally:
            del d["_in_hooked_step"]
        for hook in list((post or {}).values()) + list(_global_optimizer_post_hooks.values()):
            hook(self, args, kwargs)
        return out
    wrapper._hooked_step = True
    return wrapper


class Optimizer:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked_step", False):
            cls.step = _hooked_step(step)

    def __init__(self, params, defaults):
        self.defaults = defaults
        self._step_hooks = _Hooks()     # step pre-hooks (the name replay checks)
        self._post_hooks = _Hooks()     # step post-hooks
        self._state_dict_pre_hooks = _Hooks()
        self._state_dict_post_hooks = _Hooks()
        self._load_state_dict_pre_hooks = _Hooks()
        self._load_state_dict_post_hooks = _Hooks()
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
        for name in ("_step_hooks", "_post_hooks", "_state_dict_pre_hooks",
                     "_state_dict_post_hooks", "_load_state_dict_pre_hooks",
                     "_load_state_dict_post_hooks"):
            self.__dict__.setdefault(name, _Hooks())

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
        from .. import typename
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but "
                            "the ordering of tensors in sets will change between runs. Please use "
                            "a list instead.")
        else:
            param_group["params"] = list(params)
        # (name, tensor) pairs, as from named_parameters(): the names go to 'param_names'
        names = [p[0] for p in param_group["params"] if isinstance(p, tuple)]
        param_group["params"] = [p[1] if isinstance(p, tuple) else p
                                 for p in param_group["params"]]
        if names:
            if len(names) != len(param_group["params"]):
                raise ValueError("all optimizer params should be with/without names. Some param "
                                 "names are missing")
            param_group["param_names"] = names
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + typename(p))
            if not self.defaults.get("differentiable", None) and \
                    not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization "
                                 f"parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in param_group["params"]]
        if len(set(ids)) != len(ids):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error; see "
                          "github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = set()
        for g in self.param_groups:
            seen.update(id(p) for p in g["params"])
            if ("param_names" in param_group) != ("param_names" in g):
                txt = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {txt} to the optimizer")
        if seen & set(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ---- state_dict ------------------------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}, with
        parameters numbered in group order like PyTorch."""
        for hook in list(self.__dict__.get("_state_dict_pre_hooks", {}).values()):
            hook(self)
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
        sd = {"state": state, "param_groups": groups}
        for hook in list(self.__dict__.get("_state_dict_post_hooks", {}).values()):
            r = hook(self, sd)
            if r is not None:
                sd = r
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        for hook in list(self.__dict__.get("_load_state_dict_pre_hooks", {}).values()):
            r = hook(self, state_dict)
            if r is not None:
                state_dict = r
        state_dict = copy.deepcopy(state_dict)
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
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            # options missing from an older checkpoint take this optimizer's defaults (what
            # PyTorch's per-optimizer __setstate__ does: e.g. Adam's 'amsgrad', 'maximize')
            for k, v in self.defaults.items():
                if v is not required:
                    s.setdefault(k, v)
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups
        for hook in list(self.__dict__.get("_load_state_dict_post_hooks", {}).values()):
            hook(self)

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
        # differentiable=True records the update (PyTorch's _use_grad_for_differentiable)
        with set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            for group in self.param_groups:
                ps, grads = [], []
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad
                    if grad.is_sparse and not self._sparse_grads:
                        raise RuntimeError(self._sparse_error.format(type(self).__name__))
                    if group.get("maximize", False):
                        grad = -grad
                    ps.append(p)
                    grads.append(grad)
                if ps and group.get("capturable", False):
                    self._check_capturable(ps, group)
                if ps and self._use_foreach(group, ps):
                    self._update_foreach(ps, grads, [self.state[p] for p in ps], group)
                else:
                    for p, grad in zip(ps, grads):
                        if p.dtype.is_complex and self._complex_as_real:
                            self._update_complex(p, grad, self._state_for(p, group), group)
                        else:
                            self._update(p, grad, self._state_for(p, group), group)
        return loss

    # what PyTorch's capturable check names (NAdam and ASGD name their extra state)
    _capturable_names = "params and state_steps"
    _capturable_xla = True

    def _check_capturable(self, ps, group):
        """capturable=True (step counts kept on the device for CUDA graphs) needs parameters
        on a GPU: PyTorch asserts in the update, except while compiling."""
        from .._compile import is_compiling
        if is_compiling() or all(p.device.type in ("cuda", "interpret") for p in ps):
            return
        foreach = bool(group.get("foreach"))
        names = self._capturable_names
        if isinstance(names, tuple):        # (single-tensor, foreach) wordings
            names = names[foreach]
        devs = ['cuda', 'xpu', 'hpu', 'privateuseone']
        if self._capturable_xla and not foreach:
            devs.append('xla')
        raise AssertionError(f"If capturable=True, {names} must be on supported devices: "
                             f"{devs}.")

    # PyTorch updates a complex parameter as its view_as_real (a pair of real numbers per
    # element): elementwise rules such as Adam's grad * grad then act on the real and
    # imaginary parts separately instead of as complex products. An optimizer whose rule
    # rejects complex parameters sets this False so its _update sees the complex tensor.
    _complex_as_real = True

    # sparse COO gradients (embedding(sparse=True)): SGD and Adagrad take them in _update;
    # the others refuse them with PyTorch's error before touching any parameter of the group
    _sparse_grads = False
    _sparse_error = "{} does not support sparse gradients"

    def _update_complex(self, p, grad, state, group):
        """_update on view_as_real views of p, grad and p-shaped complex state; the state
        keeps complex tensors (new p-shaped buffers are viewed back as complex)."""
        from ..ops_shape import view_as_real, view_as_complex
        pr = view_as_real(p)
        real = {k: view_as_real(v) if isinstance(v, Tensor) and v.dtype.is_complex else v
                for k, v in state.items()}
        views = dict(real)
        self._update(pr, view_as_real(grad), real, group)
        for k, v in real.items():
            if k in views and views[k] is v:
                continue                # updated in place through the view
            if isinstance(v, Tensor) and v.dtype.is_floating_point and v.shape == pr.shape:
                v = view_as_complex(v.contiguous())
            state[k] = v

    def _state_for(self, p, group):
        """The state dict _update writes into: self.state[p] (created on first use). An
        optimizer that keeps no state for some options returns a scratch dict instead, so
        state_dict() lists no empty entries (as PyTorch's SGD without momentum)."""
        return self.state[p]

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

    # ---- hooks (PyTorch's signatures; each returns a RemovableHandle) ------------------------
    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), before step()."""
        return _add_hook(self._step_hooks, hook)

    def register_step_post_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None, after step()."""
        return _add_hook(self._post_hooks, hook)

    def register_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer) -> None, before state_dict() builds the dict."""
        return _add_hook(self._state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> None or a replacement state_dict."""
        return _add_hook(self._state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> None or the state_dict to load instead."""
        return _add_hook(self._load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer) -> None, after load_state_dict()."""
        return _add_hook(self._load_state_dict_post_hooks, hook, prepend)


Optimizer.step = _hooked_step(Optimizer.step)
