"""Eager dispatch memoises pure meta rules (framework/_dispatch.py: _meta, Prim.cache_meta) and
a few planners (index shapes, inferred view shapes): calls that share a key with an earlier
one except in dtype, scalar type, attr type, default dtype, device, requires_grad or grad mode
must still give their own result (or error), as if nothing had been cached."""
import numpy as np
import pytest

import framework as torch
from compiler.ir.registry import REGISTRY
from framework import _dispatch

RNG = np.random.default_rng(7)
A = RNG.standard_normal((4, 5))
B = RNG.standard_normal((4, 5))


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
def test_same_shape_each_dtype(np_dtype):
    # one shape, one op, many dtypes (a float32 call first fills the cache)
    a32 = torch.tensor(A.astype(np.float32))
    assert (a32 + a32).dtype is torch.float32
    a, b = (A * 3).astype(np_dtype), (B * 3).astype(np_dtype)
    r = torch.tensor(a) + torch.tensor(b)
    want = np.logical_or(a, b) if np_dtype is np.bool_ else a + b
    assert r.dtype is torch.tensor(want).dtype
    np.testing.assert_array_equal(r.numpy(), want)


def test_mixed_dtypes_and_scalars_after_same_shapes():
    f32 = torch.tensor(A.astype(np.float32))
    i32 = torch.tensor((A * 10).astype(np.int32))
    assert (i32 + i32).dtype is torch.int32
    assert (i32 + f32).dtype is torch.float32           # same shapes, other dtypes
    np.testing.assert_allclose((i32 + f32).numpy(),
                               (A * 10).astype(np.int32) + A.astype(np.float32), rtol=1e-6)
    # a scalar's type is part of the answer (1, 1.0 and True hash alike)
    assert (i32 + 1).dtype is torch.int32
    assert (i32 + 1.0).dtype is torch.float32
    assert (i32 + True).dtype is torch.int32
    np.testing.assert_array_equal((i32 + True).numpy(), (A * 10).astype(np.int32) + 1)
    assert (i32 * 0.5).dtype is torch.float32
    np.testing.assert_allclose((i32 * 0.5).numpy(), (A * 10).astype(np.int32) * 0.5)


def test_default_dtype_is_part_of_the_key():
    i64 = torch.tensor(np.arange(6).reshape(2, 3))
    assert (i64 * 1.5).dtype is torch.float32
    assert i64.exp().dtype is torch.float32
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        r = i64 * 1.5
        assert r.dtype is torch.float64
        np.testing.assert_array_equal(r.numpy(), np.arange(6).reshape(2, 3) * 1.5)
        assert i64.exp().dtype is torch.float64
        np.testing.assert_allclose(i64.exp().numpy(), np.exp(np.arange(6.0)).reshape(2, 3),
                                   rtol=1e-15)
    finally:
        torch.set_default_dtype(old)
    assert (i64 * 1.5).dtype is torch.float32


def test_errors_repeat_and_are_not_cached():
    b = torch.tensor([[True, False], [False, True]])
    for _ in range(2):
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool"):
            b - b
    x = torch.tensor([1, 2, 3])
    for _ in range(2):
        with pytest.raises(OverflowError):
            x + 2 ** 70
    np.testing.assert_array_equal((x + 5).numpy(), [6, 7, 8])
    f = torch.tensor([1.0, 2.0, 3.0])
    for _ in range(2):
        with pytest.raises(NotImplementedError, match="bitwise_and"):
            f & f
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match"):
        x + torch.tensor([1, 2])


def test_attr_types_are_part_of_the_key():
    # slice(start=1) answered from the cache must not answer start=1.0, which its meta refuses
    x = torch.tensor(np.arange(12.0).reshape(4, 3))
    p = REGISTRY["slice"]
    r = _dispatch.apply(p, x, dim=0, start=1, stop=3, step=1)
    np.testing.assert_array_equal(r.numpy(), np.arange(12.0).reshape(4, 3)[1:3])
    with pytest.raises(TypeError):
        _dispatch.apply(p, x, dim=0, start=1.0, stop=3, step=1)
    # polygamma's n: 1 computes, True is refused by the meta rule (its lowering would not)
    pg = REGISTRY["polygamma"]
    r = _dispatch.apply(pg, torch.tensor([1.0, 2.0], dtype=torch.float64), n=1)
    np.testing.assert_allclose(r.numpy(), [np.pi ** 2 / 6, np.pi ** 2 / 6 - 1], rtol=1e-12)
    with pytest.raises(TypeError, match="must be int, not bool"):
        _dispatch.apply(pg, torch.tensor([1.0, 2.0], dtype=torch.float64), n=True)
    # sum's keepdim and dtype attrs
    s1 = torch.sum(x, 0, keepdim=True)
    s2 = torch.sum(x, 0)
    s3 = torch.sum(x, 0, dtype=torch.float32)
    assert tuple(s1.shape) == (1, 3) and tuple(s2.shape) == (3,)
    assert s3.dtype is torch.float32 and s2.dtype is torch.float64
    np.testing.assert_array_equal(s2.numpy(), [18.0, 22.0, 26.0])


def test_requires_grad_and_grad_mode():
    a = torch.tensor(A.astype(np.float32))
    b = torch.tensor(B.astype(np.float32))
    assert (a * b).grad_fn is None                      # fills the cache: no grad
    w = torch.tensor(A.astype(np.float32), requires_grad=True)
    y = w * b
    assert type(y.grad_fn).__name__ == "MulBackward0"
    with torch.no_grad():
        assert (w * b).grad_fn is None and not (w * b).requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), B.astype(np.float32))
    # a Parameter is keyed like a tensor; its results record history
    p = torch.nn.Parameter(torch.tensor(A.astype(np.float32)))
    z = (p * b).sum()
    assert type(z.grad_fn).__name__ == "SumBackward0"
    z.backward()
    np.testing.assert_array_equal(p.grad.numpy(), B.astype(np.float32))


def test_views_and_index_fast_paths_keep_errors_and_history():
    base = np.arange(20.0).reshape(5, 4)
    x = torch.tensor(base, requires_grad=True)
    r = x[-2]
    assert type(r.grad_fn).__name__ == "SelectBackward0"
    np.testing.assert_array_equal(r.detach().numpy(), base[-2])
    r.sum().backward()
    want = np.zeros_like(base)
    want[3] = 1
    np.testing.assert_array_equal(x.grad.numpy(), want)
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for dimension 0 with size 5"):
        x[5]
    i = torch.tensor([4, -5, 1])
    g = x[i]
    assert type(g.grad_fn).__name__ == "IndexBackward0"
    np.testing.assert_array_equal(g.detach().numpy(), base[[4, -5, 1]])
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for dimension 0 with size 5"):
        x[torch.tensor([0, 5])]
    with pytest.raises(IndexError, match=r"index -6 is out of bounds for dimension 0 with size 5"):
        x[torch.tensor([-6, 0])]
    s = torch.index_select(x.detach(), 0, torch.tensor([3, 0]))
    np.testing.assert_array_equal(s.numpy(), base[[3, 0]])
    with pytest.raises(IndexError, match=r"index_select\(\): index 5 is out of bounds"):
        torch.index_select(x.detach(), 0, torch.tensor([5]))
    # view(-1) of the same shape, contiguous then not
    v = x.detach().view(-1)
    assert v.shape == (20,) and v._base is not None
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.detach().t().view(-1)


def test_many_scalars_do_not_grow_the_cache_without_bound():
    x = torch.tensor([1.0, 2.0])
    for k in range(9000):
        x + (k + 0.5)
    assert len(_dispatch._META) <= 8192
    np.testing.assert_array_equal((x + 0.25).numpy(), [1.25, 2.25])


def test_device_after_cpu_same_shapes():
    a = torch.tensor(A.astype(np.float32))
    b = torch.tensor(B.astype(np.float32))
    want = (a + b).numpy()
    r = a.to("interpret") + b.to("interpret")
    assert r.device.type == "interpret"
    np.testing.assert_array_equal(r.cpu().numpy(), want)


def test_compile_after_eager_same_shapes():
    a32, b32 = torch.tensor(A.astype(np.float32)), torch.tensor(B.astype(np.float32))
    a64, b64 = torch.tensor(A), torch.tensor(B)
    (a32 * b32 + a32).exp()                              # eager first: the cache holds these

    @torch.compile
    def f(a, b):
        return (a * b + a).exp()
    r32, r64 = f(a32, b32), f(a64, b64)
    assert r32.dtype is torch.float32 and r64.dtype is torch.float64
    np.testing.assert_allclose(r64.numpy(), np.exp(A * B + A), rtol=1e-12)
    np.testing.assert_allclose(r32.numpy(), np.exp(A * B + A), rtol=1e-5)
