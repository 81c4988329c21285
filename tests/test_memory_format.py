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
