"""grad_fn._saved_* / _raw_saved_* (PyTorch's saved-tensor attributes) and SavedTensor hooks."""
import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck

U = 1 << 64          # torch reads a saved negative int64 through an unsigned cast


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _leaf(a):
    return torch.tensor(a, requires_grad=True)


def test_mul_div_saved_inputs_and_wrapped_numbers():
    a, b = _r(3, 4), _r(3, 4, seed=1)
    x, w = _leaf(a), _leaf(b)
    for y in (x * w, x / w):
        assert y.grad_fn._saved_self is x and y.grad_fn._saved_other is w
    y = x * 2
    assert y.grad_fn._saved_self is None          # (other needs no gradient: self not saved)
    o = y.grad_fn._saved_other
    assert o.dtype == torch.int64 and o.shape == () and o.item() == 2
    assert (x / 2.5).grad_fn._saved_other.dtype == torch.float64
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.grad_fn._saved_other
    assert y.grad_fn._saved_self is None
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2, np.float32))


def test_pow_exponents_and_results():
    a, b = np.abs(_r(3, 4)) + 0.5, _r(3, 4, seed=1)
    x, w = _leaf(a), _leaf(b)
    g = x.pow(2).grad_fn
    assert type(g).__name__ == "PowBackward0" and g._saved_exponent == 2 and g._saved_self is x
    assert (x ** 3.5).grad_fn._saved_exponent == 3.5
    y = x.pow(w)
    g = y.grad_fn
    assert g._saved_self is x and g._saved_exponent is w
    r = g._saved_result
    assert r is not y and r.grad_fn is g and r.requires_grad
    np.testing.assert_allclose(r.detach().numpy(), np.power(a, b), rtol=1e-6)
    g = (2 ** x).grad_fn
    assert type(g).__name__ == "PowBackward2" and g._saved_self == 2 and g._saved_exponent is x
    np.testing.assert_allclose(g._saved_result.detach().numpy(), 2.0 ** a, rtol=1e-6)


@pytest.mark.parametrize("op,ref", [("exp", np.exp), ("tanh", np.tanh), ("sqrt", np.sqrt),
                                    ("sigmoid", lambda v: 1 / (1 + np.exp(-v))),
                                    ("relu", lambda v: np.maximum(v, 0))])
def test_unary_saved_result(op, ref):
    a = np.abs(_r(3, 4)) if op == "sqrt" else _r(3, 4)
    x = _leaf(a)
    y = getattr(x, op)()
    r = y.grad_fn._saved_result
    assert r is not y and r.grad_fn is y.grad_fn
    np.testing.assert_allclose(r.detach().numpy(), ref(a.astype(np.float64)),
                               rtol=1e-5, atol=1e-7)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="already been freed"):
        y.grad_fn._saved_result


def test_unary_saved_self_and_absent_names():
    x = _leaf(_r(2, 3))
    for op in ("sin", "cos"):
        assert getattr(x, op)().grad_fn._saved_self is x
    g = (-x).grad_fn
    assert not [a for a in dir(g) if a.startswith("_saved")]
    with pytest.raises(AttributeError, match="'NegBackward0' object has no attribute '_saved_self'"):
        g._saved_self
    with pytest.raises(AttributeError):
        x.exp().grad_fn._saved_foo
    assert {"_saved_result", "_raw_saved_result"} <= set(dir(x.exp().grad_fn))


def test_add_sub_alpha():
    x, w = _leaf(_r(2, 3)), _leaf(_r(2, 3, seed=1))
    assert (x + w).grad_fn._saved_alpha == 1 and (x + 2).grad_fn._saved_alpha == 1
    assert torch.add(x, w, alpha=2).grad_fn._saved_alpha == 2
    assert torch.add(x, w, alpha=2.5).grad_fn._saved_alpha == 2.5
    y = torch.sub(x, w, alpha=3)
    assert type(y.grad_fn).__name__ == "SubBackward0" and y.grad_fn._saved_alpha == 3
    y.sum().backward()
    assert y.grad_fn._saved_alpha == 3        # a scalar: kept after backward
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), -3, np.float32))


def test_mm_sizes_and_strides():
    a, b = _leaf(_r(3, 4)), _leaf(_r(5, 4, seed=1))
    g = (a @ b.t()).grad_fn
    assert type(g).__name__ == "MmBackward0" and g._saved_self is a
    assert g._saved_self_sym_sizes == (3, 4) and g._saved_self_sym_strides == (4, 1)
    assert g._saved_mat2_sym_sizes == (4, 5) and g._saved_mat2_sym_strides == (1, 4)
    np.testing.assert_array_equal(g._saved_mat2.detach().numpy(), b.detach().numpy().T)


def test_reductions_and_views():
    x = _leaf(_r(2, 3, 4))
    g = x.sum().grad_fn
    assert g._saved_self_sym_sizes == (2, 3, 4)
    g = x.sum(-1).grad_fn
    assert g._saved_dim == (U - 1,) and g._saved_keepdim is False
    g = x.sum((0, 1), keepdim=True).grad_fn
    assert g._saved_dim == (0, 1) and g._saved_keepdim is True
    y = x.mean()
    assert y.grad_fn._saved_self_sym_sizes == (2, 3, 4) and y.grad_fn._saved_self_sym_numel == 24
    g = x.mean((-1, 0), keepdim=True).grad_fn
    assert g._saved_dim == (U - 1, 0) and g._saved_keepdim is True and g._saved_self_sym_numel == 24
    assert x.view(6, 4).grad_fn._saved_self_sym_sizes == (2, 3, 4)
    assert x.reshape(24).grad_fn._saved_self_sym_sizes == (2, 3, 4)
    assert x.permute(-1, 0, 1).grad_fn._saved_dims == (U - 1, 0, 1)
    g = x.transpose(-1, 0).grad_fn
    assert (g._saved_dim0, g._saved_dim1) == (U - 1, 0)
    assert x[0, :, 0].unsqueeze(0).expand(5, 3).grad_fn._saved_self_sym_sizes == (1, 3)
    g = x.select(1, -1).grad_fn
    assert (g._saved_dim, g._saved_index, g._saved_self_sym_sizes) == (1, U - 1, (2, 3, 4))
    g = x[:, ::2].grad_fn
    assert (g._saved_dim, g._saved_step, g._saved_self_sym_sizes) == (1, 2, (2, 3, 4))
    assert torch.cat([x, x], -1).grad_fn._saved_dim == U - 1
    assert torch.stack([x, x], 1).grad_fn._saved_dim == 1
    y = x.sum(1)
    y.sum().backward()
    assert y.grad_fn._saved_self_sym_sizes == (2, 3, 4)   # sizes stay after backward


def test_softmax_saved_result_and_gradcheck():
    a = _r(3, 5).astype(np.float64)
    x = _leaf(a)
    y = torch.softmax(x, -1)
    g = y.grad_fn
    e = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(g._saved_result.detach().numpy(), e / e.sum(1, keepdims=True),
                               rtol=1e-12)
    assert g._saved_dim == U - 1 and g._saved_result.grad_fn is g
    g = torch.log_softmax(x, 1).grad_fn
    assert g._saved_dim == 1
    np.testing.assert_allclose(g._saved_result.detach().numpy(),
                               a - np.log(np.exp(a).sum(1, keepdims=True)), rtol=1e-12)
    assert gradcheck(lambda t: torch.softmax(t, -1) * torch.log_softmax(t, 0), (x,))


def test_raw_saved_register_hooks():
    a = _r(5).astype(np.float64)
    x = _leaf(a)
    y = x.pow(2)
    log = []
    raw = y.grad_fn._raw_saved_self
    assert repr(raw).startswith("<torch._C._autograd.SavedTensor object at 0x")

    def pack(t):
        log.append("pack")
        return t * 3                  # backward then reads 3x: grad 2 * (3x)

    def unpack(t):
        log.append("unpack")
        return t

    raw.register_hooks(pack, unpack)
    assert log == ["pack"]
    with pytest.raises(RuntimeError, match="hooks have already been set"):
        raw.register_hooks(pack, unpack)
    y.sum().backward()
    assert log == ["pack", "unpack"]
    np.testing.assert_allclose(x.grad.numpy(), 6 * a)
    with pytest.raises(RuntimeError, match="after it has been freed"):
        raw.register_hooks(pack, unpack)
    with pytest.raises(RuntimeError, match="second time"):
        y.grad_fn._saved_self


def test_raw_saved_result_hooks_and_bad_hooks():
    a = _r(4).astype(np.float64)
    x = _leaf(a)
    y = x.exp()
    raw = y.grad_fn._raw_saved_result
    with pytest.raises(TypeError, match="incompatible function arguments"):
        raw.register_hooks(1, lambda t: t)
    raw.register_hooks(lambda t: 5.0, lambda v: torch.ones(4, dtype=torch.float64) * v)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(4, 5.0))
    y = x.exp()
    y.grad_fn._raw_saved_result.register_hooks(lambda t: t, lambda t: 3)
    with pytest.raises(TypeError, match="unpack_hook expected to be a Tensor"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="value None is forbidden"):
        (x * 2).grad_fn._raw_saved_self.register_hooks(lambda t: t, lambda t: t)
    with pytest.raises(AttributeError):
        (x * 2).grad_fn._raw_saved_alpha


def test_indexing_keeps_written_bounds():
    x = _leaf(_r(4, 5, 6))
    g = x[::2].grad_fn
    assert (g._saved_start, g._saved_end, g._saved_step) == (0, (1 << 63) - 1, 2)
    g = x[-3:].grad_fn
    assert (g._saved_start, g._saved_end) == (U - 3, (1 << 63) - 1)
    g = x[:, 1:100].grad_fn
    assert (g._saved_dim, g._saved_start, g._saved_end) == (1, 1, 100)
    g = x[1:3].grad_fn
    assert (g._saved_start, g._saved_end) == (1, 3)
    assert x[-1].grad_fn._saved_index == U - 1
    assert x[:, -2].grad_fn._saved_index == U - 2
    assert x[0, -1].grad_fn._saved_index == U - 1
    assert x[2].grad_fn._saved_index == 2
    y = x[1:3, -1]
    y.sum().backward()
    ref = np.zeros((4, 5, 6), np.float32)
    ref[1:3, -1] = 1
    np.testing.assert_array_equal(x.grad.numpy(), ref)


def test_addmm_linear_mv_saved():
    a, b, c = _r(3, 4), _r(4, 5, seed=1), _r(5, seed=2)
    m1, m2, bias = _leaf(a), _leaf(b), _leaf(c)
    g = torch.addmm(bias, m1, m2, beta=2, alpha=0.5).grad_fn
    assert type(g).__name__ == "AddmmBackward0"
    assert g._saved_mat1 is m1 and g._saved_mat2 is m2
    assert (g._saved_alpha, g._saved_beta) == (0.5, 2)
    assert g._saved_mat1_sym_sizes == (3, 4) and g._saved_mat2_sym_strides == (5, 1)
    w = torch.tensor(b.T.copy())          # (a constant weight: mat1 is not saved)
    g = torch.nn.functional.linear(m1, w, bias).grad_fn
    assert g._saved_mat1 is None and g._saved_mat2_sym_strides == (1, 4)
    np.testing.assert_array_equal(g._saved_mat2.numpy(), b)
    v = _leaf(_r(4, seed=3))
    y = m1 @ v
    assert type(y.grad_fn).__name__ == "MvBackward0"
    assert y.grad_fn._saved_self is m1 and y.grad_fn._saved_vec is v
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.grad_fn._saved_vec
    np.testing.assert_allclose(v.grad.numpy(), a.sum(0), rtol=1e-6)


def test_conv_pool_saved():
    F = torch.nn.functional
    xa, wa = _r(2, 3, 6, 6), _r(4, 3, 3, 3, seed=1)
    x, w = _leaf(xa), _leaf(wa)
    y = F.conv2d(x, w, None, stride=2, padding=1)
    g = y.grad_fn
    assert g._saved_input is x and g._saved_weight is w
    assert (g._saved_stride, g._saved_padding, g._saved_dilation) == ((2, 2), (1, 1), (1, 1))
    assert (g._saved_groups, g._saved_transposed, g._saved_output_padding) == (1, False, (0, 0))
    assert g._saved_bias_sym_sizes_opt == (0,)
    p = F.max_pool2d(x, 2)
    g = p.grad_fn
    assert g._saved_self is x and g._saved_kernel_size == (2, 2) and g._saved_stride == ()
    assert (g._saved_padding, g._saved_dilation, g._saved_ceil_mode) == ((0, 0), (1, 1), False)
    # result1: the flat index of each window's maximum in its 6x6 plane
    win = xa.reshape(2, 3, 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 3, 3, 4)
    k = win.argmax(-1)
    rows = np.arange(3)[:, None] * 2 + k // 2
    cols = np.arange(3)[None, :] * 2 + k % 2
    ind = g._saved_result1
    assert ind.dtype == torch.int64
    np.testing.assert_array_equal(ind.numpy(), rows * 6 + cols)
    p.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        g._saved_result1
    assert g._saved_kernel_size == (2, 2)


def test_norm_saved_statistics():
    F = torch.nn.functional
    xa = _r(4, 3, 5).astype(np.float64)
    x, gm = _leaf(xa), _leaf(np.ones(3))
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    g = F.batch_norm(x, rm, rv, gm, None, training=True, eps=1e-3).grad_fn
    assert g._saved_input is x and g._saved_weight is gm and g._saved_running_mean is rm
    assert (g._saved_training, g._saved_eps) == (True, 1e-3)
    np.testing.assert_allclose(g._saved_result1.numpy(), xa.mean((0, 2)), rtol=1e-12)
    np.testing.assert_allclose(g._saved_result2.numpy(), 1 / np.sqrt(xa.var((0, 2)) + 1e-3),
                               rtol=1e-12)
    g = F.batch_norm(x, rm, rv, gm, training=False).grad_fn
    assert g._saved_training is False and tuple(g._saved_result1.shape) == (0,)
    lw = _leaf(np.full(5, 2.0))
    y = F.layer_norm(x, (5,), lw, None)
    g = y.grad_fn
    assert g._saved_input is x and g._saved_weight is lw and g._saved_bias is None
    assert g._saved_normalized_shape == (5,)
    np.testing.assert_allclose(g._saved_result1.numpy(), xa.mean(-1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(g._saved_result2.numpy(),
                               1 / np.sqrt(xa.var(-1, keepdims=True) + 1e-5), rtol=1e-12)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        g._saved_result2
    assert gradcheck(lambda t: F.layer_norm(t, (5,), lw, None) ** 2, (x,))


def test_embedding_and_losses_saved():
    F = torch.nn.functional
    E = _leaf(_r(10, 3))
    idx = torch.tensor([1, 2, 4, 1])
    g = F.embedding(idx, E).grad_fn
    assert g._saved_indices is idx and g._saved_padding_idx == U - 1
    assert (g._saved_weight_sym_argsize_0, g._saved_sparse, g._saved_scale_grad_by_freq) == \
        (10, False, False)
    assert F.embedding(idx, E, padding_idx=-2).grad_fn._saved_padding_idx == 8
    a = _r(3, 4)
    x, tgt = _leaf(a), torch.tensor([0, -100, 1])
    wt = torch.tensor([1.0, 2.0, 3.0, 4.0])
    g = F.nll_loss(x, tgt, weight=wt).grad_fn
    assert g._saved_self is x and g._saved_target is tgt and g._saved_weight is wt
    assert (g._saved_reduction, g._saved_ignore_index) == (1, U - 100)
    assert g._saved_total_weight.item() == 3.0 and g._saved_total_weight.shape == ()
    assert F.nll_loss(x, tgt, reduction="none").grad_fn._saved_total_weight.item() == 0
    g = F.cross_entropy(x, torch.tensor([0, 3, 1])).grad_fn
    ls = a - np.log(np.exp(a.astype(np.float64)).sum(1, keepdims=True))
    np.testing.assert_allclose(g._saved_self.detach().numpy(), ls, rtol=1e-5)
    t = _leaf(_r(3, 4, seed=1))
    y = F.mse_loss(x, t, reduction="sum")
    g = y.grad_fn
    assert g._saved_self is x and g._saved_target is t and g._saved_reduction == 2
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        g._saved_target
    assert g._saved_reduction == 2
    np.testing.assert_allclose(x.grad.numpy(), 2 * (a - t.detach().numpy()), rtol=1e-6)
