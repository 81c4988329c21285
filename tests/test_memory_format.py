"""Memory formats (torch.channels_last, channels_last_3d, contiguous_format, preserve_format):
the layouts contiguous / to / clone / empty / *_like / Module.to make, is_contiguous for each
format, element-wise results keeping their input's layout, and PyTorch's errors. Expected
strides are hand-derived (NHWC order in memory for NCHW shapes) and equal torch 2.13's."""
import pickle

import numpy as np
import pytest

import framework as torch


def _x(*shape):
    return torch.from_numpy(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))


def test_formats_are_distinct_named_objects():
    fmts = [torch.contiguous_format, torch.preserve_format, torch.channels_last,
            torch.channels_last_3d]
    assert len({id(f) for f in fmts}) == 4
    assert [repr(f) for f in fmts] == ["torch.contiguous_format", "torch.preserve_format",
                                       "torch.channels_last", "torch.channels_last_3d"]
    assert all(isinstance(f, torch.memory_format) for f in fmts)
    assert pickle.loads(pickle.dumps(torch.channels_last)) is torch.channels_last


def test_channels_last_layout_and_is_contiguous():
    x = _x(2, 3, 4, 5)
    assert x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    y = x.contiguous(memory_format=torch.channels_last)
    # NHWC in memory: C innermost (1), then W (C=3), H (W*C=15), N (H*W*C=60)
    assert y.stride() == (60, 1, 15, 3)
    assert not y.is_contiguous() and y.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    # the memory really is NHWC: reading it flat gives x permuted to (0, 2, 3, 1)
    flat = np.lib.stride_tricks.as_strided(y.numpy(), (120,), (4,))
    np.testing.assert_array_equal(flat, x.numpy().transpose(0, 2, 3, 1).reshape(-1))
    assert y.contiguous(memory_format=torch.channels_last) is y
    assert y.to(memory_format=torch.channels_last) is y
    assert x.to(memory_format=torch.contiguous_format) is x
    assert y.contiguous().stride() == (60, 20, 5, 1)
    assert y.permute(0, 2, 3, 1).is_contiguous()
    # size-1 dims may have any stride: C == 1 or H == W == 1 is both formats at once
    assert _x(2, 1, 4, 5).is_contiguous(memory_format=torch.channels_last)
    assert _x(2, 3, 1, 1).is_contiguous(memory_format=torch.channels_last)
    z = _x(1, 2, 3, 4, 5).contiguous(memory_format=torch.channels_last_3d)
    assert z.stride() == (120, 1, 40, 10, 2)
    assert z.is_contiguous(memory_format=torch.channels_last_3d)


def test_copies_keep_or_set_the_format():
    x = _x(2, 3, 4, 5)
    y = x.to(memory_format=torch.channels_last)
    assert y.stride() == (60, 1, 15, 3)
    assert y.clone().stride() == (60, 1, 15, 3)                          # preserve_format
    assert y.clone(memory_format=torch.contiguous_format).stride() == (60, 20, 5, 1)
    assert x.clone(memory_format=torch.channels_last).stride() == (60, 1, 15, 3)
    assert torch.clone(x, memory_format=torch.channels_last).stride() == (60, 1, 15, 3)
    assert torch.zeros_like(y).stride() == (60, 1, 15, 3)
    assert torch.empty_like(y, memory_format=torch.contiguous_format).stride() == (60, 20, 5, 1)
    assert torch.ones_like(x, memory_format=torch.channels_last).stride() == (60, 1, 15, 3)
    assert torch.empty(2, 3, 4, 5, memory_format=torch.channels_last).stride() == (60, 1, 15, 3)
    assert y.to(torch.float64).stride() == (60, 1, 15, 3)
    assert y.double().stride() == (60, 1, 15, 3)
    d = y.to(torch.float64, memory_format=torch.contiguous_format)
    assert d.stride() == (60, 20, 5, 1) and d.dtype is torch.float64
    for v in (y.clone(), torch.ones_like(x, memory_format=torch.channels_last) * x, d):
        np.testing.assert_array_equal(v.numpy(), x.numpy())


def test_elementwise_results_follow_a_channels_last_input():
    x = _x(2, 3, 4, 5)
    y = x.contiguous(memory_format=torch.channels_last)
    for r in (y + 1, torch.relu(y), (y * 2.0).exp(), torch.where(y > 3, y, 0.0)):
        assert r.stride() == (60, 1, 15, 3)
    np.testing.assert_allclose((y * 2.0).exp().numpy(), np.exp(x.numpy() * 2.0), rtol=1e-6)
    assert y.sum(1).stride() == (20, 5, 1)
    np.testing.assert_array_equal(y.sum(1).numpy(), x.numpy().sum(1))


def test_view_needs_compatible_strides_reshape_copies():
    x = _x(2, 3, 4, 5)
    y = x.contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        y.view(-1)
    np.testing.assert_array_equal(y.reshape(-1).numpy(), x.numpy().reshape(-1))


def test_wrong_rank_and_bad_arguments_raise_and_change_nothing():
    t = _x(2, 3, 4)
    for f in (lambda: t.contiguous(memory_format=torch.channels_last),
              lambda: t.to(memory_format=torch.channels_last),
              lambda: t.clone(memory_format=torch.channels_last),
              lambda: torch.empty(2, 3, 4, memory_format=torch.channels_last),
              lambda: torch.zeros_like(t, memory_format=torch.channels_last),
              lambda: _x(2, 3, 4, 5).contiguous(memory_format=torch.channels_last_3d)):
        with pytest.raises(RuntimeError, match=r"required rank \d tensor to use channels_last"):
            f()
    assert not t.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(TypeError, match="memory_format"):
        t.contiguous(memory_format="channels_last")
    assert t.stride() == (12, 4, 1)


def test_module_to_channels_last_converts_4d_parameters_only():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    w = m[0].weight
    before = w.detach().numpy().copy()
    assert m.to(memory_format=torch.channels_last) is m
    assert m[0].weight is w and isinstance(w, torch.nn.Parameter)       # same Parameter
    assert w.stride() == (27, 1, 9, 3) and m[0].bias.stride() == (1,)
    np.testing.assert_array_equal(w.detach().numpy(), before)
    x = torch.randn(2, 3, 6, 6)
    ref = torch.nn.functional.conv2d(x, torch.from_numpy(before), m[0].bias)
    np.testing.assert_allclose(m[0](x.to(memory_format=torch.channels_last)).detach().numpy(),
                               ref.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_to_copies_unless_the_suggested_format_matches():
    # PyTorch's to(memory_format=f) aliases only when suggest_memory_format() is f; otherwise it
    # copies with empty_like(f)'s strides, also for layouts contiguous() would accept as they are
    w = torch.arange(24.0).reshape(8, 3, 1, 1)                  # also channels_last-contiguous
    c = w.to(memory_format=torch.channels_last)
    assert c is not w and c.stride() == (3, 1, 3, 3) and w.stride() == (3, 1, 1, 1)
    np.testing.assert_array_equal(c.numpy(), np.arange(24.0).reshape(8, 3, 1, 1))
    assert w.contiguous(memory_format=torch.channels_last) is w
    assert c.clone().stride() == (3, 1, 3, 3)                   # preserve_format keeps them
    assert c.to(memory_format=torch.channels_last) is c
    t = torch.arange(6.0).reshape(2, 3).t()                     # suggests contiguous: an alias
    assert t.to(memory_format=torch.contiguous_format) is t
    m = torch.nn.Conv2d(3, 8, 1).to(memory_format=torch.channels_last)
    assert m.weight.stride() == (3, 1, 3, 3)
    with pytest.raises(RuntimeError, match="required rank 4 tensor to use channels_last"):
        torch.zeros(3).to(memory_format=torch.channels_last)

def test_gradients_through_a_format_change():
    a = torch.randn(2, 3, 4, 5, requires_grad=True)
    b = a.contiguous(memory_format=torch.channels_last)
    (b.sin() * 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.cos(a.detach().numpy()), rtol=1e-6)


def test_compiled_function_of_a_channels_last_input_equals_eager():
    def f(t):
        return (t * 2 + 1).relu().sum(1)
    y = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(torch.compile(f)(y).numpy(), f(y).numpy())


# ---- results of spatial ops: PyTorch's cpu kernels make them in the input's suggested format ----
# (channels_last when the strides order the dims N, H, W, C in memory). Expected strides are
# hand-derived; values are checked against the contiguous input's result and NumPy references.

F = torch.nn.functional
CL, CL3 = torch.channels_last, torch.channels_last_3d


def _nhwc(n, c, h, w):
    return (h * w * c, 1, w * c, c)


def _ndhwc(n, c, d, h, w):
    return (d * h * w * c, 1, h * w * c, w * c, c)


def _rowmajor(*shape):
    return tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))


def _pair(shape, fmt=CL, dtype=np.float32, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return torch.from_numpy(a.copy()), torch.from_numpy(a.copy()).contiguous(memory_format=fmt)


def _conv2d_ref(x, w, pad=0):
    """float64 NumPy convolution (cross-correlation), stride 1."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, k, axis=(2, 3))    # N,C,Ho,Wo,kh,kw
    return np.einsum("nchwij,ocij->nohw", win, w.astype(np.float64))


def test_conv_results_are_channels_last_when_input_or_weight_is():
    x, xc = _pair((2, 3, 6, 7))
    w, wc = _pair((4, 3, 3, 3), seed=1)
    ref = F.conv2d(x, w, padding=1)
    assert ref.stride() == _rowmajor(2, 4, 6, 7)
    np.testing.assert_allclose(ref.numpy(), _conv2d_ref(x.numpy(), w.numpy(), 1), rtol=1e-5,
                               atol=1e-5)
    for a, b in ((xc, w), (x, wc), (xc, wc)):
        y = F.conv2d(a, b, padding=1)
        assert y.stride() == _nhwc(2, 4, 6, 7) and y.is_contiguous(memory_format=CL)
        np.testing.assert_array_equal(y.numpy(), ref.numpy())        # the layout alone differs
    t = F.conv_transpose2d(xc, torch.from_numpy(np.ones((3, 2, 3, 3), np.float32)), stride=2)
    assert t.shape == (2, 2, 13, 15) and t.stride() == _nhwc(2, 2, 13, 15)
    np.testing.assert_array_equal(
        t.numpy(), F.conv_transpose2d(x, torch.from_numpy(np.ones((3, 2, 3, 3), np.float32)),
                                      stride=2).numpy())
    # float64 takes PyTorch's slow kernels, channels_last too in 2-d
    assert F.conv2d(xc.double(), w.double()).stride() == _nhwc(2, 4, 4, 5)


def test_conv_layout_edge_cases():
    x, xc = _pair((2, 3, 6, 7))
    w, wc = _pair((4, 3, 3, 3), seed=1)
    # unbatched input with a channels_last weight: (1, C, H, W) in NHWC, the 1 squeezed away
    u = F.conv2d(x[0], wc)
    assert u.shape == (4, 4, 5) and u.stride() == (1, 5 * 4, 4)
    np.testing.assert_array_equal(u.numpy(), F.conv2d(x[0], w).numpy())
    # ambiguous strides (C == 1, or a 1x1 kernel, is both formats at once) stay contiguous
    w1 = torch.from_numpy(np.ones((5, 3, 1, 1), np.float32)).contiguous(memory_format=CL)
    assert F.conv2d(x, w1).stride() == _rowmajor(2, 5, 6, 7)
    g = torch.from_numpy(np.ones((2, 1, 5, 5), np.float32)).contiguous(memory_format=CL)
    assert F.conv2d(g, torch.ones(4, 1, 3, 3)).stride() == _rowmajor(2, 4, 3, 3)
    # a slice of a channels_last tensor still counts as channels_last
    assert F.conv2d(xc[:, :, ::2], w).stride() == _nhwc(2, 4, 1, 5)
    # other orders (here N, W, H, C in memory) give contiguous results
    p = torch.from_numpy(x.numpy().transpose(0, 3, 2, 1).copy()).permute(0, 3, 2, 1)
    assert F.conv2d(p, w).stride() == _rowmajor(2, 4, 4, 5)
    # 3-d: channels_last_3d in float32 (PyTorch's mkldnn path), contiguous in float64 and for
    # a small single-image ungrouped convolution (its native kernel)
    v, vc = _pair((2, 3, 4, 5, 6), CL3)
    k = torch.from_numpy(np.random.default_rng(2).standard_normal((4, 3, 2, 2, 2))
                         .astype(np.float32))
    y = F.conv3d(vc, k)
    assert y.stride() == _ndhwc(2, 4, 3, 4, 5)
    np.testing.assert_array_equal(y.numpy(), F.conv3d(v, k).numpy())
    assert F.conv3d(vc.double(), k.double()).stride() == _rowmajor(2, 4, 3, 4, 5)
    assert F.conv3d(vc[:1], k).stride() == _rowmajor(1, 4, 3, 4, 5)
    assert F.conv1d(x[:, :, 0].transpose(1, 2), torch.ones(2, 7, 3)).stride() == _rowmajor(2, 2, 1)


def test_conv_error_on_channels_last_input_leaves_it_unchanged():
    _, xc = _pair((2, 3, 6, 7))
    before = xc.numpy().copy()
    with pytest.raises(RuntimeError, match=r"expected input\[2, 3, 6, 7\] to have 4 channels"):
        F.conv2d(xc, torch.ones(4, 4, 3, 3))
    assert xc.stride() == _nhwc(2, 3, 6, 7)
    np.testing.assert_array_equal(xc.numpy(), before)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        torch.cat([xc, xc[:, :, :3]], 1)


def test_pooling_results_keep_channels_last():
    x, xc = _pair((2, 3, 6, 8))
    v, i = F.max_pool2d(xc, 2, return_indices=True)
    assert v.stride() == i.stride() == _nhwc(2, 3, 3, 4)
    ref = x.numpy().reshape(2, 3, 3, 2, 4, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(v.numpy(), ref)
    np.testing.assert_array_equal(i.numpy(), F.max_pool2d(x, 2, return_indices=True)[1].numpy())
    a = F.avg_pool2d(xc, 2)
    assert a.stride() == _nhwc(2, 3, 3, 4)
    np.testing.assert_allclose(a.numpy(), x.numpy().astype(np.float64).reshape(2, 3, 3, 2, 4, 2)
                               .mean(axis=(3, 5)), rtol=1e-6, atol=1e-7)
    assert F.avg_pool2d(xc, 3, 2, 1, ceil_mode=True).stride() == _nhwc(2, 3, 4, 5)
    aa = F.adaptive_avg_pool2d(xc, (3, 5))
    assert aa.stride() == _nhwc(2, 3, 3, 5)
    np.testing.assert_array_equal(aa.numpy(), F.adaptive_avg_pool2d(x, (3, 5)).numpy())
    am, ai = F.adaptive_max_pool2d(xc, (3, 5), return_indices=True)
    assert am.stride() == ai.stride() == _nhwc(2, 3, 3, 5)
    # a global pool: (N, C, 1, 1) in NHWC strides
    g = F.adaptive_avg_pool2d(xc, 1)
    assert g.stride() == (3, 1, 3, 3)
    np.testing.assert_allclose(g.numpy()[:, :, 0, 0],
                               x.numpy().astype(np.float64).mean(axis=(2, 3)), rtol=1e-5,
                               atol=1e-6)
    assert F.adaptive_avg_pool2d(x, 1).stride() == (3, 1, 1, 1)
    # unbatched (C, H, W) results are contiguous
    assert F.max_pool2d(xc[0], 2).stride() == _rowmajor(3, 3, 4)
    assert F.adaptive_avg_pool2d(xc[0], 2).stride() == _rowmajor(3, 2, 2)


def test_pooling_3d_formats():
    v, vc = _pair((2, 3, 4, 4, 6), CL3)
    m = F.max_pool3d(vc, 2)
    assert m.stride() == _ndhwc(2, 3, 2, 2, 3)
    np.testing.assert_array_equal(m.numpy(), v.numpy().reshape(2, 3, 2, 2, 2, 2, 3, 2)
                                  .max(axis=(3, 5, 7)))
    # PyTorch's avg_pool3d and adaptive 3-d pools are contiguous, except a global average
    assert F.avg_pool3d(vc, 2).stride() == _rowmajor(2, 3, 2, 2, 3)
    assert F.adaptive_avg_pool3d(vc, (2, 3, 2)).stride() == _rowmajor(2, 3, 2, 3, 2)
    assert F.adaptive_max_pool3d(vc, (2, 3, 2)).stride() == _rowmajor(2, 3, 2, 3, 2)
    assert F.adaptive_avg_pool3d(vc, 1).stride() == (3, 1, 3, 3, 3)


def test_interpolate_keeps_channels_last():
    x, xc = _pair((2, 3, 4, 5))
    n = F.interpolate(xc, scale_factor=2)
    assert n.stride() == _nhwc(2, 3, 8, 10)
    np.testing.assert_array_equal(n.numpy(), x.numpy().repeat(2, 2).repeat(2, 3))
    for mode in ("bilinear", "bicubic"):
        y = F.interpolate(xc, size=(7, 9), mode=mode, align_corners=False)
        assert y.stride() == _nhwc(2, 3, 7, 9)
        np.testing.assert_array_equal(y.numpy(), F.interpolate(x, size=(7, 9), mode=mode,
                                                               align_corners=False).numpy())
    assert F.interpolate(xc, size=(4, 5)).stride() == _nhwc(2, 3, 4, 5)     # a new tensor
    assert F.interpolate(xc, size=(2, 3), mode="area").stride() == _nhwc(2, 3, 2, 3)
    v, vc = _pair((1, 2, 2, 3, 4), CL3)
    t = F.interpolate(vc, scale_factor=2, mode="trilinear")
    assert t.stride() == _ndhwc(1, 2, 4, 6, 8)
    np.testing.assert_array_equal(t.numpy(), F.interpolate(v, scale_factor=2, mode="trilinear")
                                  .numpy())
    # 3-d (N, C, L) inputs give contiguous results whatever their strides
    s = x[:, :, 0].transpose(1, 2)
    assert F.interpolate(s, scale_factor=2, mode="linear").stride() == _rowmajor(2, 5, 6)


def test_norm_result_layouts():
    x, xc = _pair((2, 4, 3, 5))
    xn = x.numpy().astype(np.float64)
    bn = F.batch_norm(xc, None, None, training=True)
    assert bn.stride() == _nhwc(2, 4, 3, 5)
    m, v = xn.mean(axis=(0, 2, 3), keepdims=True), xn.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(bn.numpy(), (xn - m) / np.sqrt(v + 1e-5), rtol=1e-4, atol=1e-5)
    ev = F.batch_norm(xc, torch.zeros(4), torch.ones(4), training=False)
    assert ev.stride() == _nhwc(2, 4, 3, 5)
    gn = F.group_norm(xc, 2)
    assert gn.stride() == _nhwc(2, 4, 3, 5)
    g = xn.reshape(2, 2, -1)
    gref = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    np.testing.assert_allclose(gn.numpy(), gref.reshape(2, 4, 3, 5), rtol=1e-4, atol=1e-5)
    # layer_norm and instance_norm results are contiguous whatever the input's layout
    ln = F.layer_norm(xc, (3, 5))
    assert ln.stride() == _rowmajor(2, 4, 3, 5)
    h = xn.reshape(2, 4, -1)
    href = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(ln.numpy(), href.reshape(2, 4, 3, 5), rtol=1e-4, atol=1e-5)
    inn = F.instance_norm(xc)
    assert inn.stride() == _rowmajor(2, 4, 3, 5)
    np.testing.assert_allclose(inn.numpy(), href.reshape(2, 4, 3, 5), rtol=1e-4, atol=1e-5)
    assert F.layer_norm(torch.ones(5, 4).t(), (5,)).stride() == (5, 1)
    assert F.local_response_norm(xc, 2).stride() == _nhwc(2, 4, 3, 5)


def test_pad_layouts_and_pads_that_pad_nothing_are_new_tensors():
    x, xc = _pair((2, 3, 4, 5))
    y = F.pad(xc, (1, 2, 3, 0))
    assert y.stride() == _nhwc(2, 3, 7, 8)
    np.testing.assert_array_equal(y.numpy(), np.pad(x.numpy(), ((0, 0), (0, 0), (3, 0), (1, 2))))
    for mode, npmode in (("reflect", "reflect"), ("replicate", "edge")):
        r = F.pad(xc, (1, 2, 2, 1), mode=mode)
        assert r.stride() == _nhwc(2, 3, 7, 8)
        np.testing.assert_array_equal(r.numpy(), np.pad(x.numpy(), ((0, 0), (0, 0), (2, 1), (1, 2)),
                                                        mode=npmode))
    c = F.pad(xc, (1, 1, 1, 1), mode="circular")
    assert c.stride() == _rowmajor(2, 3, 6, 7)
    np.testing.assert_array_equal(c.numpy(), np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)),
                                                    mode="wrap"))
    assert F.pad(xc, (0, 0, 0, 0, 1, 1)).stride() == _nhwc(2, 5, 4, 5)       # channels padded
    for t in (x, xc):
        for p, mode in (((0, 0, 0, 0), "constant"), ((-1, 0, 0, -1), "constant"),
                        ((0, 0, 0, 0), "reflect"), ((-1, 0, 0, 0), "replicate")):
            before = t.numpy().copy()
            r = F.pad(t, p, mode=mode)
            assert r is not t and r.stride() == (t.stride() if r.shape == t.shape else
                                                 _nhwc(*r.shape) if t is xc else
                                                 _rowmajor(*r.shape))
            r.fill_(7.0)
            np.testing.assert_array_equal(t.numpy(), before)    # writes stay in the result


def test_cat_of_channels_last_tensors_is_channels_last():
    x, xc = _pair((2, 3, 4, 5))
    for d in range(4):
        r = torch.cat([xc, xc * 2], d)
        shape = list(x.shape)
        shape[d] *= 2
        assert r.stride() == _nhwc(*shape)
        np.testing.assert_array_equal(r.numpy(), np.concatenate([x.numpy(), x.numpy() * 2], d))
    # any contiguous input, or mixed formats, give a contiguous result
    assert torch.cat([xc, x], 1).stride() == _rowmajor(2, 6, 4, 5)
    assert torch.cat([x, xc], 0).stride() == _rowmajor(4, 3, 4, 5)
    assert torch.cat([torch.empty(0), xc], 1).stride() == _rowmajor(2, 3, 4, 5)
    v = torch.ones(1, 2, 2, 3, 4).contiguous(memory_format=CL3)
    assert torch.cat([v, v], 1).stride() == _ndhwc(1, 4, 2, 3, 4)
    out = torch.empty(4, 3, 4, 5)
    torch.cat([xc, xc], 0, out=out)                     # out= keeps out's layout
    assert out.stride() == _rowmajor(4, 3, 4, 5)


def test_shuffles_keep_channels_last():
    x, xc = _pair((2, 8, 3, 4))
    p = F.pixel_shuffle(xc, 2)
    assert p.stride() == _nhwc(2, 2, 6, 8)
    ref = x.numpy().reshape(2, 2, 2, 2, 3, 4).transpose(0, 1, 4, 2, 5, 3).reshape(2, 2, 6, 8)
    np.testing.assert_array_equal(p.numpy(), ref)
    u = F.pixel_unshuffle(p, 2)
    assert u.stride() == _nhwc(2, 8, 3, 4)
    np.testing.assert_array_equal(u.numpy(), x.numpy())
    s = F.channel_shuffle(xc, 2)
    assert s.stride() == _nhwc(2, 8, 3, 4)
    np.testing.assert_array_equal(s.numpy(), x.numpy().reshape(2, 2, 4, 3, 4)
                                  .transpose(0, 2, 1, 3, 4).reshape(2, 8, 3, 4))
    for r in (F.pixel_shuffle(x, 1), F.pixel_unshuffle(x, 1), F.channel_shuffle(x, 1)):
        assert r.data_ptr() != x.data_ptr()                     # new tensors, as PyTorch's


def test_gradients_of_channels_last_inputs_and_weights_are_channels_last():
    x, xc = _pair((2, 3, 6, 7), dtype=np.float64)
    w, wc = _pair((4, 3, 3, 3), dtype=np.float64, seed=1)
    grads = []
    for a, b in ((x, w), (xc, wc)):
        a.requires_grad_(True)
        b.requires_grad_(True)
        y = F.max_pool2d(F.relu(F.conv2d(a, b, padding=1)), 2)
        (y * y).sum().backward()
        grads.append((a.grad, b.grad))
    (gx, gw), (gxc, gwc) = grads
    assert gx.stride() == _rowmajor(2, 3, 6, 7) and gw.stride() == _rowmajor(4, 3, 3, 3)
    assert gxc.stride() == _nhwc(2, 3, 6, 7) and gwc.stride() == _nhwc(4, 3, 3, 3)
    np.testing.assert_allclose(gxc.numpy(), gx.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gwc.numpy(), gw.numpy(), rtol=1e-12, atol=1e-12)
    # the gradients themselves, by finite differences, through channels_last inputs
    a = torch.from_numpy(np.random.default_rng(3).standard_normal((1, 2, 4, 4))).contiguous(
        memory_format=CL).requires_grad_(True)
    k = torch.from_numpy(np.random.default_rng(4).standard_normal((2, 2, 3, 3))).contiguous(
        memory_format=CL).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda s, t: F.interpolate(F.avg_pool2d(F.conv2d(s, t, padding=1), 2), scale_factor=2,
                                   mode="bilinear"), (a, k))


def test_leaf_gradients_follow_the_leafs_strides():
    # PyTorch's gradient layout contract: a dense leaf's .grad has the leaf's strides, any
    # other leaf's is contiguous
    base = np.arange(12.0).reshape(3, 4)
    t = torch.from_numpy(base.copy()).t().detach().requires_grad_(True)        # (4, 3), (1, 4)
    (t * torch.arange(12.0).reshape(4, 3)).sum().backward()
    assert t.grad.stride() == (1, 4)
    np.testing.assert_array_equal(t.grad.numpy(), np.arange(12.0).reshape(4, 3))
    s = torch.from_numpy(base.copy())[:, ::2].detach().requires_grad_(True)   # not dense
    (s * 3.0).sum().backward()
    assert s.grad.stride() == (2, 1)
    np.testing.assert_array_equal(s.grad.numpy(), np.full((3, 2), 3.0))


def test_module_to_channels_last_flows_through_a_small_cnn():
    def net():
        torch.manual_seed(0)
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, groups=2), nn.GroupNorm(2, 8),
                             nn.Upsample(scale_factor=2, mode="bilinear"),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 5))
    a = np.random.default_rng(5).standard_normal((2, 3, 10, 10)).astype(np.float32)
    ref, cl = net(), net().to(memory_format=CL)
    x = torch.from_numpy(a.copy()).requires_grad_(True)
    xc = torch.from_numpy(a.copy()).contiguous(memory_format=CL).requires_grad_(True)
    h, hc = x, xc
    for m, mc in zip(ref, cl):
        h, hc = m(h), mc(hc)
        if hc.ndim == 4:
            n, c, hh, ww = hc.shape
            assert hc.stride() == _nhwc(n, c, hh, ww), type(mc).__name__
        np.testing.assert_allclose(hc.detach().numpy(), h.detach().numpy(), rtol=1e-4, atol=1e-5)
    (h ** 2).sum().backward()
    (hc ** 2).sum().backward()
    assert xc.grad.stride() == _nhwc(2, 3, 10, 10)
    assert cl[0].weight.grad.stride() == _nhwc(8, 3, 3, 3)
    assert cl[4].weight.grad.stride() == _nhwc(8, 4, 3, 3)
    np.testing.assert_allclose(xc.grad.numpy(), x.grad.numpy(), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(cl[0].weight.grad.numpy(), ref[0].weight.grad.numpy(), rtol=1e-3,
                               atol=1e-4)


def test_softmax_results_are_contiguous_whatever_the_input_layout():
    # PyTorch's softmax/log_softmax kernels write a fresh contiguous tensor, even for a
    # channels_last or transposed input (element-wise ops keep the input's layout instead)
    a = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    e = np.exp(a - a.max(1, keepdims=True))
    want = e / e.sum(1, keepdims=True)
    for x in (torch.tensor(a).contiguous(memory_format=torch.channels_last),
              torch.tensor(a.transpose(0, 3, 2, 1).copy()).permute(0, 3, 2, 1)):
        assert not x.is_contiguous()
        x.requires_grad_(True)
        for f, ref in ((torch.softmax, want), (torch.log_softmax, np.log(want)),
                       (torch.nn.functional.softmin, None)):
            y = f(x, 1)
            assert y.stride() == (60, 20, 5, 1), (f, y.stride())
            if ref is not None:
                np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-12, atol=1e-12)
        y = torch.softmax(x, 1)
        (y[:, 0] * 2).sum().backward()
        # d softmax_0 / dx_j = s_0 (delta_0j - s_j)
        g = 2 * want[:, :1] * ((np.arange(3) == 0)[None, :, None, None] - want)
        np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-10, atol=1e-12)


# ---- element-wise ops on operands of several layouts (TensorIterator's reorder_dimensions):
# for each pair of dims the first operand whose strides order it (broadcast dims skipped)
# decides; the result is dense in that order. Strides below are derived by hand from that rule.

def _cl(a):
    return torch.tensor(a).contiguous(memory_format=torch.channels_last)


def _tr(a):
    """a 2-d tensor with a's values, transposed in memory (strides (1, rows))."""
    return torch.tensor(np.ascontiguousarray(a.T)).t()


def test_mixed_layouts_first_operand_decides():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4, 5))
    b = rng.standard_normal((2, 3, 4, 5))
    x, y = _cl(a), torch.tensor(b)
    for r, want, st in ((x + y, a + b, (60, 1, 15, 3)), (y + x, b + a, (60, 20, 5, 1)),
                        (x * y, a * b, (60, 1, 15, 3)), (torch.sub(y, x, alpha=2), b - 2 * a,
                                                         (60, 20, 5, 1))):
        assert r.stride() == st
        np.testing.assert_allclose(r.numpy(), want, rtol=1e-15)
    m = rng.standard_normal((3, 4))
    n = rng.standard_normal((3, 4))
    t, c = _tr(m), torch.tensor(n)
    assert t.stride() == (1, 3)
    assert (t + c).stride() == (1, 3) and (c + t).stride() == (4, 1)
    np.testing.assert_allclose((t / c).numpy(), m / n, rtol=1e-15)
    # comparisons and type promotion follow the same rule
    r = torch.lt(t, c)
    assert r.dtype == torch.bool and r.stride() == (1, 3)
    np.testing.assert_array_equal(r.numpy(), m < n)
    i = torch.tensor(np.arange(12).reshape(4, 3)).t()           # int64, transposed
    r = i + c.float()
    assert r.dtype == torch.float32 and r.stride() == (1, 3)
    np.testing.assert_allclose(r.numpy(), np.arange(12).reshape(4, 3).T + n.astype(np.float32),
                               rtol=1e-6)


def test_mixed_layouts_broadcast_and_scalar_operands():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((3, 4))
    v = rng.standard_normal(4)
    t = _tr(m)
    # v's dim 0 is a broadcast (stride 0): it has no say on the (0, 1) pair, t decides
    for r in (torch.tensor(v) + t, t + torch.tensor(v)):
        assert r.stride() == (1, 3)
        np.testing.assert_allclose(r.numpy(), m + v, rtol=1e-15)
    # a (3, 1) column broadcasts along dim 1: again no say
    col = rng.standard_normal((3, 1))
    assert (torch.tensor(col) * t).stride() == (1, 3)
    a = rng.standard_normal((2, 3, 4, 5))
    x = _cl(a)
    # 0-dim tensors and Python numbers: all strides 0, the 4-d operand decides
    for r, want in ((torch.tensor(2.0) + x, a + 2), (x * torch.tensor(3), a * 3),
                    (2.5 - x, 2.5 - a)):
        assert r.stride() == (60, 1, 15, 3)
        np.testing.assert_allclose(r.numpy(), want, rtol=1e-15)
    # a per-channel (1, 3, 1, 1) operand first: only its dim 1 is not broadcast, x decides
    w = rng.standard_normal((1, 3, 1, 1))
    r = torch.tensor(w) * x
    assert r.stride() == (60, 1, 15, 3)
    np.testing.assert_allclose(r.numpy(), w * a, rtol=1e-15)


def test_mixed_layouts_ternary_ops_follow_their_first_operand():
    rng = np.random.default_rng(2)
    m, n, k = (rng.standard_normal((3, 4)) for _ in range(3))
    t, c, d = _tr(m), torch.tensor(n), torch.tensor(k)
    # where(cond, x, y): the condition is the first operand
    r = torch.where(c > 0, t, d)
    assert r.stride() == (4, 1)
    np.testing.assert_array_equal(r.numpy(), np.where(n > 0, m, k))
    r = torch.where(t > 0, c, d)
    assert r.stride() == (1, 3)
    np.testing.assert_array_equal(r.numpy(), np.where(m > 0, n, k))
    # lerp(input, end, weight): input decides, also against a transposed weight
    w = np.abs(rng.standard_normal((3, 4))) % 1
    for inp, end, wt, st in ((t, c, torch.tensor(w), (1, 3)), (c, t, _tr(w), (4, 1))):
        r = torch.lerp(inp, end, wt)
        assert r.stride() == st
        a0, a1 = inp.numpy(), end.numpy()
        np.testing.assert_allclose(r.numpy(), a0 + w * (a1 - a0), rtol=1e-12, atol=1e-15)
    r = torch.addcmul(t, c, d, value=0.5)
    assert r.stride() == (1, 3)
    np.testing.assert_allclose(r.numpy(), m + 0.5 * n * k, rtol=1e-15)
    r = torch.clamp(c, min=t, max=t + 1)
    assert r.stride() == (4, 1)
    np.testing.assert_allclose(r.numpy(), np.clip(n, m, m + 1), rtol=1e-15)


def test_mixed_layouts_in_place_and_out():
    rng = np.random.default_rng(3)
    m, n = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    t, c = _tr(m), torch.tensor(n)
    c.add_(t)                         # in place: self keeps its layout
    assert c.stride() == (4, 1)
    np.testing.assert_allclose(c.numpy(), n + m, rtol=1e-15)
    t.mul_(torch.tensor(n))
    assert t.stride() == (1, 3)
    np.testing.assert_allclose(t.numpy(), m * n, rtol=1e-15)
    # out= of the result's shape keeps its layout; a resized one takes the result's layout
    t = _tr(m)
    o = torch.empty(3, 4, dtype=torch.float64)
    assert torch.add(t, torch.tensor(n), out=o) is o and o.stride() == (4, 1)
    np.testing.assert_allclose(o.numpy(), m + n, rtol=1e-15)
    o = torch.empty(0, dtype=torch.float64)
    torch.add(t, torch.tensor(n), out=o)
    assert o.shape == (3, 4) and o.stride() == (1, 3)
    np.testing.assert_allclose(o.numpy(), m + n, rtol=1e-15)


def test_mixed_layouts_bad_operands_raise_and_keep_data():
    x = _cl(np.ones((2, 3, 4, 5)))
    y = torch.ones(2, 3, 4, 6)
    with pytest.raises(RuntimeError, match=r"size of tensor a \(5\) must match the size of "
                                           r"tensor b \(6\)"):
        x + y
    t = _tr(np.arange(12.0).reshape(3, 4))
    with pytest.raises(RuntimeError):
        t.add_(torch.ones(4, 4))
    np.testing.assert_array_equal(t.numpy(), np.arange(12.0).reshape(3, 4))
    assert t.stride() == (1, 3)


def test_stack_keeps_channels_last_slices():
    # (2, 3, 6, 7) channels_last inputs: memory order N, H, W, C; stack puts the new dim S
    # just outside the input dim it precedes (outermost at 0), and past the last dim the
    # result is row-major, as torch 2.13's stack
    a = np.random.default_rng(4).standard_normal((2, 3, 6, 7))
    b = a * 2
    x, y = _cl(a), _cl(b)
    want = {0: (252, 126, 1, 21, 3),   # S N H W C
            1: (252, 3, 1, 42, 6),     # N H W S C
            2: (252, 1, 126, 21, 3),   # N S H W C
            3: (252, 1, 42, 21, 3),    # N H S W C
            4: (252, 84, 14, 2, 1)}    # row-major
    for d, st in want.items():
        r = torch.stack([x, y], d)
        assert r.stride() == st, d
        np.testing.assert_array_equal(r.numpy(), np.stack([a, b], d))
    assert torch.stack([x, y], -1).stride() == want[4]
    # inputs that do not all suggest channels_last, or 3-d ones: row-major
    assert torch.stack([x, torch.tensor(b)], 1).stride() == (252, 126, 42, 7, 1)
    p = torch.tensor(np.ascontiguousarray(a[0].transpose(0, 2, 1))).permute(0, 2, 1)
    r = torch.stack([p, p], 2)
    assert r.stride() == (84, 14, 7, 1)              # row-major (3, 6, 2, 7)
    np.testing.assert_array_equal(r.numpy(), np.stack([a[0], a[0]], 2))
    # channels_last_3d: (2, 3, 2, 2, 2), order N D H W C, stacked at 2
    c = np.arange(48.0).reshape(2, 3, 2, 2, 2)
    z = torch.tensor(c).contiguous(memory_format=torch.channels_last_3d)
    r = torch.stack([z, z], 2)
    assert r.stride() == (48, 1, 24, 12, 6, 3)
    np.testing.assert_array_equal(r.numpy(), np.stack([c, c], 2))
