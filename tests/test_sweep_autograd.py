"""Regression tests from the autograd API sweep (Kiln vs PyTorch 2.13): each test pins one
divergence that was fixed, with hand-derived values or float64 NumPy references. An optional
cross-check against the real PyTorch runs only where it is installed."""
import warnings

import numpy as np
import pytest

import framework as torch
import framework.nn as nn
from framework.utils import checkpoint as cp


def T(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def N(t):
    return t.detach().numpy()


X = [[0.5, -1.2, 2.0], [1.5, 0.3, -0.7]]


# ---- backward / autograd.grad arguments --------------------------------------------------------

def test_backward_integer_gradient_is_cast_to_the_output_dtype():
    x = T([1.0, 2.0, 3.0], grad=True)
    (x * 2).backward(torch.tensor([1, 2, 3]))
    assert x.grad.dtype == torch.float64
    np.testing.assert_array_equal(N(x.grad), [2.0, 4.0, 6.0])


def test_implicit_gradient_refuses_complex_scalar_and_complex_grad_for_real_output():
    z = torch.tensor([1 + 1j, 2 + 0j], requires_grad=True)
    with pytest.raises(RuntimeError, match="only for real scalar outputs but got torch.complex64"):
        (z * z).sum().backward()
    assert z.grad is None
    x = T([1.0, 2.0], grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in dtype"):
        (x * 2).backward(torch.tensor([1 + 0j, 1 + 0j]))


def test_grad_errors_name_the_input():
    x, y = T(X, grad=True), T(X, grad=True)
    with pytest.raises(RuntimeError, match="The differentiated Tensor at index 1 appears to not"):
        torch.autograd.grad(x.sum(), [x, y])
    with pytest.raises(RuntimeError, match="`inputs` argument to `grad\\(\\)` cannot be empty"):
        torch.autograd.grad(x.sum(), [])
    with pytest.raises(RuntimeError, match="all inputs have to be Tensors or GradientEdges, but "
                                           "got int"):
        torch.autograd.grad(x.sum(), [3])


def test_grad_is_grads_batched_stacks_one_vjp_per_cotangent():
    x = T([0.5, -1.0, 2.0], grad=True)
    y = x ** 2                                            # J = diag(2x)
    v = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    g, = torch.autograd.grad(y, x, v, is_grads_batched=True)
    np.testing.assert_allclose(N(g), [[1.0, 0, 0], [0, -2.0, 0], [1.0, -2.0, 4.0]])
    assert x.grad is None
    with pytest.raises(RuntimeError, match="If `is_grads_batched=True`"):
        torch.autograd.grad(x * 3, x, torch.ones(2, 4, dtype=torch.float64), is_grads_batched=True)


def test_backward_create_graph_warns_about_the_reference_cycle():
    import framework.autograd as ag
    ag._warned_create_graph = False
    x = T([1.0, 2.0], grad=True)
    with pytest.warns(UserWarning, match="create_graph=True will create a reference cycle"):
        (x ** 3).sum().backward(create_graph=True)
    np.testing.assert_array_equal(N(x.grad), [3.0, 12.0])


# ---- saved tensors modified in place ------------------------------------------------------------

def _version_msg(fn):
    with pytest.raises(RuntimeError) as e:
        fn()
    return str(e.value)


def test_version_error_names_the_saved_tensors_producer_like_pytorch():
    def saved_output():
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x.exp()
        y.add_(1)
        y.sum().backward()
    m = _version_msg(saved_output)
    assert m.startswith("one of the variables needed for gradient computation has been modified "
                        "by an inplace operation: [torch.FloatTensor [3]], which is output 0 of "
                        "Exp, is at version 1; expected version 0 instead. Hint: enable anomaly "
                        "detection to find the operation that failed to compute its gradient, "
                        "with torch.autograd.set_detect_anomaly(True, check_nan=False).")

    def saved_input():
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        z = y.pow(2)
        y.add_(1)                   # y is now the output of the add
        z.sum().backward()
    assert "[torch.FloatTensor [3]], which is output 0 of Add, is at version 1" in \
        _version_msg(saved_input)

    def saved_leaf():
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        w = torch.tensor([1.0, 2.0, 3.0])
        z = x * w
        w.add_(1)
        z.sum().backward()
    assert "inplace operation: [torch.FloatTensor [3]] is at version 1; expected version 0 " \
        "instead. Hint" in _version_msg(saved_leaf)

    def copy_slices():
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        z = y.sin()
        y[0] = 5.0
        z.sum().backward()
    assert "which is output 0 of torch::autograd::CopySlices, is at version 1" in \
        _version_msg(copy_slices)

    def custom_function():
        class Sq(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                ctx.save_for_backward(a)
                return a * a

            @staticmethod
            def backward(ctx, g):
                a, = ctx.saved_tensors
                return 2 * a * g
        x = T([1.0, 2.0], grad=True)
        y = x * 1
        z = Sq.apply(y)
        y.mul_(3)
        z.sum().backward()
    assert "[torch.DoubleTensor [2]], which is output 0 of Mul, is at version 1; expected " \
        "version 0 instead. Hint: enable anomaly" in _version_msg(custom_function)


def test_version_error_hint_under_anomaly_mode():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            x = torch.tensor([1.0, 2.0], requires_grad=True)
            y = x.sigmoid()
            y.mul_(2)
            with pytest.raises(RuntimeError, match="output 0 of Sigmoid, is at version 1; expected "
                                                   "version 0 instead. Hint: the backtrace further "
                                                   "above shows the operation"):
                y.sum().backward()


# ---- hooks --------------------------------------------------------------------------------------

def test_tensor_hook_that_changes_the_size_raises():
    x = T(X, grad=True)

    def shrink(g):
        return g.sum()
    x.register_hook(shrink)
    with pytest.raises(RuntimeError, match="hook 'shrink' has changed the size of value"):
        (x * 2).sum().backward()
    assert x.grad is None


def test_forward_hook_always_call_runs_when_forward_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")
    m, seen = Boom(), []
    m.register_forward_hook(lambda mod, a, o: seen.append(("always", o)), always_call=True)
    m.register_forward_hook(lambda mod, a, o: seen.append(("plain", o)))
    with pytest.raises(ValueError, match="boom"):
        m(T([1.0]))
    assert seen == [("always", None)]
    # a normal call runs each hook once
    lin = nn.Linear(2, 1)
    calls = []
    lin.register_forward_hook(lambda mod, a, o: calls.append(1), always_call=True)
    lin(torch.ones(1, 2))
    assert calls == [1]


def test_full_backward_hook_warns_when_no_input_requires_grad():
    lin = nn.Linear(2, 1).double()
    got = []
    lin.register_full_backward_hook(lambda mod, gi, go: got.append((gi, go)))
    with pytest.warns(UserWarning, match="Full backward hook is firing when gradients are "
                                         "computed with respect to module outputs"):
        lin(T([[1.0, 2.0]])).sum().backward()
    assert got[0][0] == (None,)
    np.testing.assert_array_equal(N(got[0][1][0]), [[1.0]])


# ---- autograd.Function --------------------------------------------------------------------------

def test_function_argument_errors():
    class SaveInt(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g
    with pytest.raises(TypeError, match="save_for_backward can only save variables, but argument "
                                        "1 is of type int"):
        SaveInt.apply(T(X, grad=True))

    class Dirty(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad has been used in "
                                           "an in-place operation"):
        Dirty.apply(T(X, grad=True))
    x = T([1.0, 2.0], grad=True)         # on a non-leaf it is allowed: gradient 2 per element
    y = x * 1
    Dirty.apply(y).sum().backward()
    np.testing.assert_array_equal(N(x.grad), [2.0, 2.0])

    class IntGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return 3
    with pytest.raises(RuntimeError, match=r"expected Variable or None \(got int\)"):
        IntGrad.apply(T(X, grad=True)).sum().backward()


# ---- inference mode -----------------------------------------------------------------------------

def test_inference_tensors():
    x = T([1.0, 2.0, 3.0], grad=True)
    assert not torch.is_inference_mode_enabled()
    with torch.inference_mode():
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
        y = x * 2
        c = torch.ones(3, dtype=torch.float64)
        with torch.inference_mode(False):
            assert not torch.is_inference_mode_enabled()
            assert not torch.ones(2).is_inference()
    assert y.is_inference() and c.is_inference() and not y.requires_grad
    assert not x.is_inference() and not (x * 2).is_inference()
    assert c[:2].is_inference()                    # a view of one outside the mode still is
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside "
                                           "InferenceMode is not allowed"):
        c.add_(1)
    np.testing.assert_array_equal(N(c), [1.0, 1.0, 1.0])       # untouched
    with pytest.raises(RuntimeError, match="Setting requires_grad=True on inference tensor"):
        c.requires_grad_(True)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        x * c
    np.testing.assert_array_equal(N(x + c), [2.0, 3.0, 4.0])   # add saves nothing: allowed
    with torch.inference_mode():
        c.add_(1)                                   # inside the mode it is
        n = torch.zeros(2)
    np.testing.assert_array_equal(N(c), [2.0, 2.0, 2.0])
    z = c.clone()                                   # a clone outside is a normal tensor
    assert not z.is_inference()
    z.add_(1)
    assert n.is_inference()


def test_inference_mode_decorator():
    @torch.inference_mode()
    def f():
        return torch.ones(2).is_inference(), torch.is_grad_enabled()
    assert f() == (True, False)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


# ---- autograd.functional strict mode ------------------------------------------------------------

def test_functional_strict_and_hessian_errors():
    AF = torch.autograd.functional
    a, b = T([1.0, 2.0]), T([3.0, 4.0])
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is independent "
                                           "of input 1. This is not allowed in strict mode."):
        AF.jacobian(lambda x, y: x * 2, (a, b), strict=True)
    j = AF.jacobian(lambda x, y: x * 2, (a, b))
    np.testing.assert_array_equal(N(j[0]), 2 * np.eye(2))
    np.testing.assert_array_equal(N(j[1]), np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function does not "
                                           "require gradients"):
        AF.vjp(lambda x: torch.ones(2, dtype=torch.float64), a, a, strict=True)
    with pytest.raises(RuntimeError, match="The output of the user-provided function is "
                                           "independent of input 1"):
        AF.vjp(lambda x, y: x * 3, (a, b), a, strict=True)
    out, g = AF.vjp(lambda x: x ** 2, a, b, strict=True)
    np.testing.assert_array_equal(N(g), [6.0, 16.0])
    with pytest.raises(RuntimeError, match="The Tensor returned by the function given to hessian "
                                           "should contain a single element"):
        AF.hessian(lambda x: x ** 3, a)


# ---- checkpoint ---------------------------------------------------------------------------------

def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def _np_mlp_grads(m, x):
    """float64 reference: loss = sum((W2 tanh(W1 x + b1) + b2)^2), gradients by hand."""
    W1, b1, W2, b2 = [N(p) for p in m.parameters()]
    h = np.tanh(x @ W1.T + b1)
    y = h @ W2.T + b2
    gy = 2 * y
    gW2, gb2 = gy.T @ h, gy.sum(0)
    gh = gy @ W2 * (1 - h ** 2)
    return [gh.T @ x, gh.sum(0), gW2, gb2], gh @ W1


def test_checkpoint_non_reentrant_reaches_parameters_without_grad_inputs():
    m = _mlp()
    x = T(X)                                         # the input needs no gradient
    y = cp.checkpoint(m, x, use_reentrant=False)
    assert y.requires_grad
    (y ** 2).sum().backward()
    ref, _ = _np_mlp_grads(m, np.asarray(X))
    for p, r in zip(m.parameters(), ref):
        np.testing.assert_allclose(N(p.grad), r, rtol=1e-12, atol=1e-12)


def test_checkpoint_non_reentrant_autograd_grad_and_double_backward():
    m = _mlp()
    x = T(X, grad=True)
    y = cp.checkpoint(m, x, use_reentrant=False)
    gs = torch.autograd.grad((y ** 2).sum(), [x] + list(m.parameters()))
    ref, gx = _np_mlp_grads(m, np.asarray(X))
    np.testing.assert_allclose(N(gs[0]), gx, rtol=1e-12, atol=1e-12)
    for g, r in zip(gs[1:], ref):
        np.testing.assert_allclose(N(g), r, rtol=1e-12, atol=1e-12)
    assert all(p.grad is None for p in m.parameters())
    x = T([1.0, -2.0], grad=True)
    z = cp.checkpoint(lambda a: a ** 3, x, use_reentrant=False)
    g, = torch.autograd.grad(z.sum(), x, create_graph=True)
    gg, = torch.autograd.grad(g.sum(), x)
    np.testing.assert_array_equal(N(g), [3.0, 12.0])
    np.testing.assert_array_equal(N(gg), [6.0, -12.0])


def test_checkpoint_reentrant_argument_checks():
    x = T(X, grad=True)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: k"):
        cp.checkpoint(lambda a, k=1.0: a * k, x, k=3.0, use_reentrant=True)
    y = cp.checkpoint(lambda a, k=1.0: a * k, x, k=3.0, use_reentrant=False)
    y.sum().backward()
    np.testing.assert_array_equal(N(x.grad), np.full((2, 3), 3.0))
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        r = cp.checkpoint(_mlp(), T(X), use_reentrant=True)
    assert not r.requires_grad


# ---- optional cross-check against PyTorch -------------------------------------------------------

def test_version_message_matches_pytorch():
    ref = pytest.importorskip("torch", reason="cross-check against PyTorch only where installed")
    msgs = []
    for mod in (ref, torch):
        x = mod.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        z = y.pow(2)
        y.add_(1)
        with pytest.raises(RuntimeError) as e:
            z.sum().backward()
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_fill_and_zero_on_a_non_leaf_keep_the_history():
    # PyTorch: y.zero_() / y.fill_(v) on a tensor with history give ZeroBackward0 /
    # FillBackward2, whose gradient to the old y is zero; Kiln cut the history (y stopped
    # requiring grad, so y.sum().backward() raised)
    x = torch.ones(3, requires_grad=True)
    y = x * 2
    y.zero_()
    assert y.requires_grad and y.grad_fn.name() == "ZeroBackward0"
    (y * float("nan")).sum().backward()           # a NaN upstream still gives exact zeros
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    x = torch.ones(3, requires_grad=True)
    y = x * 2
    y.fill_(3.0)
    assert y.grad_fn.name() == "FillBackward2"
    (y * x).sum().backward()                      # d/dx of 3 * x only
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])
    x = torch.ones(4, requires_grad=True)         # through a view: the base's other rows keep
    y = x * 2                                     # their gradient (hand-derived: 2 * 2y = 8)
    y[1:3].fill_(5.0)
    assert y.grad_fn.name() == "torch::autograd::CopySlices"
    np.testing.assert_array_equal(y.detach().numpy(), [2.0, 5.0, 5.0, 2.0])
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 0.0, 0.0, 8.0])


def test_anomaly_mode_records_the_forward_stack_of_a_custom_function():
    class NanGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            y = NanGrad.apply(torch.tensor([1.0], requires_grad=True))  # the line to be shown
            with pytest.raises(RuntimeError, match="'NanGradBackward' returned nan values"):
                y.sum().backward()
    msgs = [str(x.message) for x in w if "Error detected in NanGradBackward" in str(x.message)]
    assert msgs and "Traceback of forward call that caused the error" in msgs[0]
    assert "the line to be shown" in msgs[0]
