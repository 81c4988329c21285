"""gradcheck / gradgradcheck: compare analytic gradients (reverse mode, one backward per output
element; forward mode, one JVP per input element) with central finite differences, like
torch.autograd.gradcheck. Complex tensors are checked as pairs of real coordinates (real part,
imaginary part): a complex input's gradient is read as (d/dRe, d/dIm), PyTorch's conjugate
Wirtinger convention, and a complex output's two rows come from cotangents 1 and 1j."""
import numpy as np

from ..tensor import Tensor
from .._dispatch import STATE
from .._dispatch import wrap as _wrap


def wrap(arr, dtype, like=None):
    """A tensor of host array `arr` on `like`'s device (cotangents and zeros beside inputs)."""
    t = _wrap(arr, dtype)
    return t if like is None or like._device is t._device else t.to(like._device)


class GradcheckError(RuntimeError):
    pass


FAILED_NONDET_MSG = """\n
NOTE: If your op relies on non-deterministic operations, this failure might be expected.
To relax the check, call gradcheck/gradgradcheck with a positive `nondet_tol`."""
FAILED_BATCHED_GRAD_MSG = """
gradcheck or gradgradcheck failed while testing batched gradient computation.
To compute batched grads we vmap over the backward computation; the usual cause is a
'vmap-incompatible operation' in the backward pass. To skip this test, call
gradcheck/gradgradcheck with `check_batched_grad=False`.""".strip()
FAST_FAIL_SLOW_OK_MSG = """
Fast gradcheck failed but element-wise differences are small. This means that the
test might've passed in slow_mode! Call gradcheck/gradgradcheck with `fast_mode=False`."""


def _as_tuple(x):
    return x if isinstance(x, tuple) else tuple(x) if isinstance(x, list) else (x,)


def _diff_outputs(out):
    return [o for o in _as_tuple(out) if isinstance(o, Tensor) and
            (o._dtype.is_floating_point or o._dtype.is_complex)]


def _diff(x):
    return isinstance(x, Tensor) and x.requires_grad


def _real(a):
    """Flat float64 real coordinates of an array: its values, or real parts then imaginary."""
    a = np.asarray(a).reshape(-1)
    return np.concatenate([a.real, a.imag]) if np.iscomplexobj(a) else a.astype(np.float64)


def _unreal(r, t):
    """Inverse of _real for tensor t: host array of t's shape and dtype from coordinates r."""
    n = t._data.size
    v = r[:n] + 1j * r[n:] if t._dtype.is_complex else r
    return np.asarray(v, t._dtype.np).reshape(t._data.shape)


def _nreal(t):
    return t._data.size * (2 if t._dtype.is_complex else 1)


def _fail(raise_exception, msg):
    if raise_exception:
        raise GradcheckError(msg)
    return False


def _outs_real(fn, inputs):
    return [_real(o._data) for o in _diff_outputs(fn(*inputs))]


def _numerical(fn, inputs, eps, direction=None):
    """Per input (None if not differentiable): per output, the central-difference Jacobian
    (rows: input real coordinates, cols: output real coordinates); with `direction` (one real
    vector per input) the directional derivative J^T u instead. Grad mode stays as it is:
    gradgradcheck's function computes gradients itself."""
    sizes = [len(r) for r in _outs_real(fn, inputs)]
    res = []
    for i, x in enumerate(inputs):
        if not _diff(x):
            res.append(None)
            continue
        d = x._data
        n = d.size

        def shifted(delta):      # outputs with x's data moved by `delta` (then restored)
            orig = d.copy()
            d[...] = orig + delta
            try:
                return _outs_real(fn, inputs)
            finally:
                d[...] = orig

        if direction is not None:
            step = eps * _unreal(direction[i], x)
            res.append([(p - m) / (2 * eps) for p, m in zip(shifted(step), shifted(-step))])
            continue
        rows = []
        for k in range(_nreal(x)):
            step = np.zeros(n, d.dtype)
            step[k % n] = eps * (1j if k >= n else 1)
            step = step.reshape(d.shape)
            rows.append([(p - m) / (2 * eps) for p, m in zip(shifted(step), shifted(-step))])
        res.append([np.array([r[o] for r in rows]).reshape(len(rows), m)
                    for o, m in enumerate(sizes)])
    return res


def _vjp(o, inputs, cot, check_dtypes, nondet_tol):
    """Real coordinates of each differentiable input's gradient for cotangent `cot` of output
    o (zeros when unused); backward runs twice and must agree within nondet_tol."""
    from . import grad
    diff_in = [x for x in inputs if _diff(x)]
    runs = []
    for _ in range(2):
        gs = grad([o], diff_in, [wrap(cot, o._dtype, o)], retain_graph=True, allow_unused=True)
        row = []
        for j, (g, x) in enumerate(zip(gs, diff_in)):
            if g is None:
                row.append(np.zeros(_nreal(x)))
                continue
            if g.shape != x.shape:
                raise GradcheckError(f"Gradient has shape {list(g.shape)} but its input has "
                                     f"shape {list(x.shape)} (input {j})")
            if check_dtypes and g.dtype is not x.dtype:
                raise GradcheckError(f"Gradient has dtype mismatch: {g.dtype} for an input "
                                     f"of dtype {x.dtype} (input {j})")
            gd = g._data.astype(x._dtype.np) if x._dtype.is_complex else g._data
            row.append(_real(gd))
        runs.append(row)
    if any(np.max(np.abs(a - b), initial=0.0) > nondet_tol for a, b in zip(*runs)):
        raise GradcheckError(
            "Backward is not reentrant, i.e., running backward with same input and grad_output "
            "multiple times gives different values, although analytical gradient matches "
            f"numerical gradient.The tolerance for nondeterminism was {nondet_tol}."
            + FAILED_NONDET_MSG)
    it = iter(runs[0])
    return [next(it) if _diff(x) else None for x in inputs]


def _jvp(fn, inputs, tangents):
    """Real coordinates of each differentiable output's tangent, with `tangents` (host arrays
    or None per input) on the inputs, through forward_ad."""
    from . import forward_ad as fw
    with fw.dual_level():
        ins = [fw.make_dual(x, wrap(t, x._dtype, x)) if t is not None else x
               for x, t in zip(inputs, tangents)]
        outs = _diff_outputs(fn(*ins))
        res = []
        for o in outs:
            t = fw.unpack_dual(o).tangent
            res.append(np.zeros(_nreal(o)) if t is None else
                       _real(t._data.astype(o._dtype.np)))
        return res


def _analytic_rev(fn, inputs, check_dtypes, nondet_tol):
    """Per output (None if it does not require grad): per input, the reverse-mode Jacobian."""
    res = []
    for o in _diff_outputs(fn(*inputs)):
        if not o.requires_grad:
            res.append(None)
            continue
        rows = []
        n = o._data.size
        for k in range(_nreal(o)):
            cot = np.zeros(n, o._dtype.np)
            cot[k % n] = 1j if k >= n else 1
            rows.append(_vjp(o, inputs, cot.reshape(o._data.shape), check_dtypes, nondet_tol))
        res.append([None if x is None else np.array([r[i] for r in rows]).reshape(len(rows), -1).T
                    for i, x in enumerate(rows[0])] if rows else [None] * len(inputs))
    return res


def _analytic_fwd(fn, inputs):
    """Per input (None if not differentiable): per output, the forward-mode Jacobian."""
    sizes = [_nreal(o) for o in _diff_outputs(fn(*inputs))]
    res = []
    for i, x in enumerate(inputs):
        if not _diff(x):
            res.append(None)
            continue
        cols = []
        for k in range(_nreal(x)):
            t = np.zeros(x._data.size, x._dtype.np)
            t[k % x._data.size] = 1j if k >= x._data.size else 1
            cols.append(_jvp(fn, inputs, [t.reshape(x._data.shape) if j == i else None
                                          for j in range(len(inputs))]))
        res.append([np.array([c[o] for c in cols]).reshape(len(cols), m)
                    for o, m in enumerate(sizes)])
    return res


def _mismatch(a, n, o, i, fwd, out_cx, in_cx, atol, rtol):
    """PyTorch's message for Jacobian block (output o, input i), or None when close. Complex
    coordinates are compared in two halves (real part, then imaginary part) as PyTorch does."""
    n_rows, n_cols = n.shape
    halves = [(slice(None), slice(None), None)]
    if fwd and in_cx:
        halves = [(slice(0, n_rows // 2), slice(None), "real"),
                  (slice(n_rows // 2, None), slice(None), "imaginary")]
    elif not fwd and out_cx:
        halves = [(slice(None), slice(0, n_cols // 2), "real"),
                  (slice(None), slice(n_cols // 2, None), "imaginary")]
    for r, c, part in halves:
        if not np.allclose(a[r, c], n[r, c], atol=atol, rtol=rtol):
            pre = "" if part is None else (f"While considering the {part} part of complex "
                                           f"{'inputs' if fwd else 'outputs'} only, ")
            mode = "computed with forward mode " if fwd else ""
            return (f"{pre}Jacobian {mode}mismatch for output {o:d} with respect to input "
                    f"{i:d},\nnumerical:{n[r, c]}\nanalytical:{a[r, c]}\n")
    return None


def _slow_jacobians(func, inputs, check_dtypes, nondet_tol, check_backward_ad, eps,
                    check_forward_ad, atol, rtol):
    outs = _diff_outputs(func(*inputs))
    num = _numerical(func, inputs, eps)
    for fwd, on in ((False, check_backward_ad), (True, check_forward_ad)):
        if not on:
            continue
        if fwd:
            ana = _analytic_fwd(func, inputs)
        else:
            rev = _analytic_rev(func, inputs, check_dtypes, nondet_tol)
        for i, x in enumerate(inputs):
            if num[i] is None:
                continue
            for o, out in enumerate(outs):
                a = ana[i][o] if fwd else (None if rev[o] is None else rev[o][i])
                if a is None:       # an output that does not require grad: zero Jacobian
                    a = np.zeros_like(num[i][o])
                msg = _mismatch(a, num[i][o], o, i, fwd, out._dtype.is_complex,
                                x._dtype.is_complex, atol, rtol)
                if msg:
                    return msg
    return None


def _fast_check(func, inputs, eps, atol, rtol, check_dtypes, nondet_tol, fwd):
    """u^T J v with random non-negative unit vectors u (per input) and v (per output)."""
    rng = np.random.default_rng(0)

    def unit(m):
        r = rng.random(m)
        return r / np.linalg.norm(r) if m else r

    outs = _diff_outputs(func(*inputs))
    us = [unit(_nreal(x)) if _diff(x) else None for x in inputs]
    vs = [unit(_nreal(o)) for o in outs]
    num = _numerical(func, inputs, eps, direction=us)
    for i, x in enumerate(inputs):
        if us[i] is None:
            continue
        if fwd:
            tan = _jvp(func, inputs, [_unreal(us[i], x) if j == i else None
                                      for j in range(len(inputs))])
        for o, out in enumerate(outs):
            n = num[i][o] @ vs[o]
            if fwd:
                a = tan[o] @ vs[o]
            elif out.requires_grad:
                a = _vjp(out, inputs, _unreal(vs[o], out), check_dtypes, nondet_tol)[i] @ us[i]
            else:
                a = 0.0
            if not np.isclose(a, n, rtol=rtol, atol=atol * us[i].sum() * vs[o].sum()):
                mode = "computed with forward mode " if fwd else ""
                msg = (f"Jacobian {mode}mismatch for output {o:d} with respect to input {i:d},\n"
                       f"numerical:{n!r}\nanalytical:{a!r}\n")
                slow = _slow_jacobians(func, inputs, check_dtypes, nondet_tol, not fwd, eps, fwd,
                                       atol, rtol)
                msg += ("\nThe above quantities relating the numerical and analytical jacobians "
                        "are computed \nin fast mode. Below, the slow-mode check "
                        + ("also fails:\n" + slow if slow else "passes:\n" + FAST_FAIL_SLOW_OK_MSG))
                return msg
    return None


def _check_batched_grad(func, inputs):
    """vmap over two random cotangents per output equals the per-cotangent loop of VJPs."""
    from . import grad
    from ..func import vmap
    from ..ops_shape import stack
    diff_in = [x for x in inputs if _diff(x)]
    rng = np.random.default_rng(1)
    for o_idx, o in enumerate(_diff_outputs(func(*inputs))):
        if not o.requires_grad:
            continue
        cots = []
        for _ in range(2):
            c = rng.standard_normal(o._data.shape)
            if o._dtype.is_complex:
                c = c + 1j * rng.standard_normal(o._data.shape)
            cots.append(wrap(np.asarray(c, o._dtype.np), o._dtype, o))

        def vjp(c):
            gs = grad([o], diff_in, [c], retain_graph=True, allow_unused=True,
                      materialize_grads=True)
            return tuple(gs)

        expected = [stack(s) for s in zip(*[vjp(c) for c in cots])]
        try:
            result = vmap(vjp)(stack(cots))
        except RuntimeError as ex:
            return f"While computing batched gradients, got: {ex}\n\n{FAILED_BATCHED_GRAD_MSG}"
        for i_idx, (res, exp) in enumerate(zip(result, expected)):
            if not np.allclose(res._data, exp._data, rtol=1e-5, atol=1e-8):
                return (f"For output {o_idx} and input {i_idx}:\n\n{FAILED_BATCHED_GRAD_MSG}"
                        f"\n\nGot:\n{res}\n\nExpected:\n{exp}")
    return None


def _check_undefined_backward(func, inputs):
    """PyTorch's rule: backward must accept zero (materialized) grads for all outputs, and an
    undefined (None) grad for each output in turn, and then give undefined or zero input
    grads. An identity Function whose backward returns None makes the grad reaching the
    output's producer undefined, as PyTorch's UndefinedGrad (Kiln's engine skips a node whose
    grads are all undefined, so "all undefined" is checked as all zeros, what a Function with
    materialized grads receives)."""
    from . import grad
    from .function import Function

    class _UndefinedGrad(Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return None

    diff_in = [x for x in inputs if _diff(x)]
    n_out = len([o for o in _diff_outputs(func(*inputs)) if o.requires_grad])
    cases = [None] + (list(range(n_out)) if n_out > 1 else [])
    for undef in cases:          # None: every output's grad zero
        outs = [o for o in _diff_outputs(func(*inputs)) if o.requires_grad]
        outs = [_UndefinedGrad.apply(o) if k == undef else o
                for k, o in enumerate(outs)]
        if not outs:
            return None
        try:
            gs = grad(outs, diff_in, [wrap(np.zeros(o._data.shape, o._dtype.np), o._dtype, o)
                                      for o in outs], allow_unused=True)
        except (RuntimeError, TypeError, AttributeError) as e:
            return ("Expected backward function to handle undefined output grads. Please look "
                    f"at \"Notes about undefined output gradients\" ({type(e).__name__}: {e})")
        if any(g is not None and np.any(g._data != 0) for g in gs):
            return ("Expected all input grads to be undefined or zero when all output grads are "
                    "undefined or zero.")
    return None


def _check_undefined_forward(func, inputs):
    """An input without a tangent must act as one with a zero tangent."""
    rng = np.random.default_rng(2)
    tans = [np.asarray(rng.standard_normal(x._data.shape), x._dtype.np) if _diff(x) else None
            for x in inputs]
    for i, x in enumerate(inputs):
        if not _diff(x):
            continue
        with_zero = _jvp(func, inputs, [np.zeros_like(t) if j == i else t
                                        for j, t in enumerate(tans)])
        undefined = _jvp(func, inputs, [None if j == i else t for j, t in enumerate(tans)])
        for o, (a, b) in enumerate(zip(with_zero, undefined)):
            if not np.allclose(a, b):
                return (f"Mismatch in tangent values for output with index: {o} when input: "
                        f"{i} has an undefined tangent value. Got: {b} but expected: {a}")
    return None


def _prepare(inputs):
    """Inputs whose data can be perturbed in place: a tensor whose buffer is read-only or
    shared with another tensor is replaced by a private copy, strided when the input is
    non-contiguous (so func still sees a non-contiguous tensor, as in PyTorch)."""
    out = []
    for x in inputs:
        if isinstance(x, Tensor) and (x._data.base is not None or not x._data.flags.writeable):
            c = x.detach().clone()
            if not x.is_contiguous():       # a strided copy: a view into a private buffer
                big = np.zeros(x._data.shape + (2,), x._dtype.np)
                big[..., 0] = x._data
                c = wrap(big, x._dtype, x)[..., 0].detach()
            x = c.requires_grad_(x.requires_grad)
        out.append(x)
    return tuple(out)


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=True, check_grad_dtypes=False,
              check_batched_grad=False, check_batched_forward_grad=False,
              check_forward_ad=False, check_backward_ad=True, fast_mode=False, masked=None):
    """True when the analytic Jacobians of func at inputs (reverse mode with
    check_backward_ad, forward mode with check_forward_ad) match finite differences; else
    raises GradcheckError (or returns False with raise_exception=False)."""
    if not (check_forward_ad or check_backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad "
                             "to be True")
    if check_batched_grad and not check_backward_ad:
        raise AssertionError("Setting check_batched_grad=True requires check_backward_ad to "
                             "be True")
    if check_batched_forward_grad and not check_forward_ad:
        raise AssertionError("Setting check_batched_forward_grad=True requires "
                             "check_forward_ad to be True")
    if check_batched_forward_grad:
        # vmap does not carry forward-AD tangents (a vmapped JVP comes back as zeros)
        raise NotImplementedError("gradcheck: check_batched_forward_grad=True is not supported: "
                                  "torch.func.vmap does not compose with forward_ad in Kiln")
    inputs = _as_tuple(inputs)
    if any(_diff(x) and getattr(x, "is_sparse", False) for x in inputs):
        # PyTorch's `masked` only changes how sparse inputs are perturbed
        raise NotImplementedError("gradcheck: sparse inputs (and so `masked`) are not supported; "
                                  "pass the dense values and build the sparse tensor in func")
    inputs = _prepare(inputs)
    if not any(_diff(x) for x in inputs):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of the them have requires_grad=True.")
    for i, x in enumerate(inputs):
        if _diff(x) and x.dtype.name not in ("float64", "complex128"):
            import warnings
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating "
                          "point or complex. This check will likely fail if all the inputs are "
                          "not of double precision floating point or complex.")
    try:
        msg = _checks(func, inputs, eps, atol, rtol, nondet_tol, check_undefined_grad,
                      check_grad_dtypes, check_batched_grad, check_forward_ad, check_backward_ad,
                      fast_mode)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True if msg is None else _fail(raise_exception, msg)


def _checks(func, inputs, eps, atol, rtol, nondet_tol, check_undefined_grad, check_grad_dtypes,
            check_batched_grad, check_forward_ad, check_backward_ad, fast_mode):
    """The first failure's message, or None."""
    if fast_mode:
        msg = None
        for fwd, on in ((False, check_backward_ad), (True, check_forward_ad)):
            msg = msg or (on and _fast_check(func, inputs, eps, atol, rtol, check_grad_dtypes,
                                             nondet_tol, fwd)) or None
    else:
        msg = _slow_jacobians(func, inputs, check_grad_dtypes, nondet_tol, check_backward_ad, eps,
                              check_forward_ad, atol, rtol)
    if msg is None and check_undefined_grad and check_backward_ad:
        msg = _check_undefined_backward(func, inputs)
    if msg is None and check_undefined_grad and check_forward_ad:
        msg = _check_undefined_forward(func, inputs)
    if msg is None and check_batched_grad:
        msg = _check_batched_grad(func, inputs)
    return msg


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0,
                  check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
                  check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False, masked=False):
    """gradcheck of the first derivative (built with create_graph=True) with respect to both
    the inputs and the output cotangents: checks second derivatives (reverse over reverse, and
    forward over reverse with check_fwd_over_rev)."""
    from . import grad
    if not (check_fwd_over_rev or check_rev_over_rev):
        raise AssertionError("Expected at least one of check_fwd_over_rev or check_rev_over_rev "
                             "to be True")
    if check_undefined_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_undefined_grad=True requires check_rev_over_rev to "
                             "be True")
    if check_batched_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_batched_grad=True requires check_rev_over_rev to be "
                             "True")
    inputs = _as_tuple(inputs)
    prev = STATE.grad_enabled
    STATE.grad_enabled = False
    try:
        outs = _diff_outputs(func(*inputs))
    finally:
        STATE.grad_enabled = prev
    if grad_outputs is None:
        rng = np.random.default_rng(3)
        grad_outputs = []
        for o in outs:
            shape = o._data.shape + ((2,) if gen_non_contig_grad_outputs else ())
            g = rng.uniform(-1, 1, shape)
            if o._dtype.is_complex:
                g = g + 1j * rng.uniform(-1, 1, shape)
            t = wrap(np.asarray(g, o._dtype.np), o._dtype, o)
            # non-contiguous: every other element of a larger buffer
            grad_outputs.append((t[..., 0] if gen_non_contig_grad_outputs else t)
                                .detach().requires_grad_())
    grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)

    def first_grad(*args):
        ins, gos = args[:n_in], args[n_in:]
        o = _diff_outputs(func(*ins))
        d = [x for x in ins if _diff(x)]
        pairs = [(oo, gg) for oo, gg in zip(o, gos) if oo.requires_grad]
        if not pairs:
            return tuple(wrap(np.zeros(x._data.shape, x._dtype.np), x._dtype, x) for x in d)
        return grad([p[0] for p in pairs], d, [p[1] for p in pairs], create_graph=True,
                    materialize_grads=True)

    return gradcheck(first_grad, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception, nondet_tol=nondet_tol,
                     check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad,
                     check_forward_ad=check_fwd_over_rev, check_backward_ad=check_rev_over_rev,
                     fast_mode=fast_mode, masked=masked)
