"""Views share storage with their base like PyTorch views: writes go both ways, stride(),
storage_offset() and is_contiguous() report what PyTorch reports; ops that copy in PyTorch
(flip, reshape of a non-viewable layout, advanced indexing) copy here too."""
import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

A = np.arange(24).reshape(2, 3, 4)


def t():
    return torch.tensor(A)


# (name, fn, stride, storage_offset, is_contiguous) as PyTorch reports them for A's layout
LAYOUTS = [
    ("unsqueeze0", lambda x: x.unsqueeze(0), (24, 12, 4, 1), 0, True),
    ("unsqueeze-1", lambda x: x.unsqueeze(-1), (12, 4, 1, 1), 0, True),
    ("select", lambda x: x[:, 1], (12, 1), 4, False),
    ("select2", lambda x: x[1, :, 2], (4,), 14, False),
    ("none", lambda x: x[None, :, None], (24, 12, 12, 4, 1), 0, True),
    ("transpose", lambda x: x.transpose(0, 2), (1, 4, 12), 0, False),
    ("view", lambda x: x.view(6, 4), (4, 1), 0, True),
    ("expand", lambda x: x[:, :1].expand(2, 5, 4), (12, 0, 1), 0, False),
    ("diagonal", lambda x: x.diagonal(0, 1, 2), (12, 5), 0, False),
    ("narrow", lambda x: x.narrow(2, 1, 2), (12, 4, 1), 1, False),
    ("step", lambda x: x[:, ::2, 1::3], (12, 8, 3), 1, False),
    ("unbind", lambda x: x.unbind(2)[1], (12, 4), 1, False),
    ("chunk", lambda x: x.chunk(2, 2)[1], (12, 4, 1), 2, False),
    ("permute-slice", lambda x: x.permute(1, 0, 2)[:, 1:], (4, 12, 1), 12, True),
    ("mT", lambda x: x.mT, (12, 1, 4), 0, False),
    ("unflatten", lambda x: x.unflatten(2, (2, 2)), (12, 4, 2, 1), 0, True),
    ("size1", lambda x: x[:1, :1], (12, 4, 1), 0, True),
    ("row", lambda x: x[1], (4, 1), 12, True),
    ("movedim", lambda x: x.movedim(0, 2), (4, 1, 12), 0, False),
    ("contiguous", lambda x: x.transpose(0, 1).contiguous(), (8, 4, 1), 0, True),
    ("empty", lambda x: x[:, 3:], None, None, True),
]


@pytest.mark.parametrize("name,fn,stride,offset,contig", LAYOUTS, ids=[r[0] for r in LAYOUTS])
def test_layout_metadata(name, fn, stride, offset, contig):
    v = fn(t())
    if stride is not None:
        assert v.stride() == stride
        assert v.storage_offset() == offset
    assert v.is_contiguous() is contig


def test_layout_metadata_matches_torch():
    real = pytest.importorskip("torch")
    for name, fn, _, _, _ in LAYOUTS:
        ours, ref = fn(t()), fn(real.tensor(A))
        assert ours.is_contiguous() == ref.is_contiguous(), name
        if ref.numel():
            assert ours.stride() == ref.stride(), name
            assert ours.storage_offset() == ref.storage_offset(), name


def test_t_not_contiguous_and_stride_dim():
    x = torch.arange(12).view(2, 6)
    assert x.t().is_contiguous() is False
    assert x.t().stride() == (1, 6)
    assert x.stride(0) == 6 and x.stride(-1) == 1
    assert x[:, 1].stride() == (6,)


@pytest.mark.parametrize("make", [
    lambda x: x.view(6, 4), lambda x: x.reshape(6, 4), lambda x: x[1], lambda x: x[:, 1:3],
    lambda x: x[..., ::2], lambda x: x.transpose(0, 2), lambda x: x.permute(1, 2, 0),
    lambda x: x.unsqueeze(1), lambda x: x.squeeze(), lambda x: x.narrow(1, 1, 1),
    lambda x: x.unbind(1)[0], lambda x: x.split(2, 2)[1], lambda x: x.chunk(3, 1)[2],
    lambda x: x.diagonal(0, 1, 2), lambda x: x.flatten(1), lambda x: x.unflatten(2, (2, 2)),
    lambda x: x.select(2, 3), lambda x: x.movedim(0, 1), lambda x: x[None], lambda x: x[...],
    lambda x: x.mT, lambda x: x.detach(), lambda x: x.view_as(x), lambda x: x.tensor_split(2, 2)[0],
])
def test_write_through_view_reaches_base_and_back(make):
    x = t()
    v = make(x)
    # A[k] == k, so the view's values are the flat storage positions it covers
    before = to_np(v).copy()
    assert len(np.unique(before)) == before.size
    v.mul_(-1)                        # in-place op on the view changes the base
    exp = A.copy()
    exp.flat[before.ravel()] *= -1
    assert_close(x, exp)
    x.add_(1000)                      # and writes to the base show through the view
    assert_close(v, 1000 - before)


def test_setitem_on_view_changes_base():
    x = t()
    v = x[:, 1:3]
    v[0, :, [0, 3]] = -1
    exp = A.copy()
    exp[0, 1:3, 0] = -1
    exp[0, 1:3, 3] = -1
    assert_close(x, exp)
    w = x[0].t()
    w[1] = 0                          # column 1 of x[0]
    exp[0][:, 1] = 0
    assert_close(x, exp)


@pytest.mark.parametrize("make", [
    lambda x: x.flip(0), lambda x: x[[0, 1]], lambda x: x[x > 5], lambda x: x.repeat(1, 1, 1),
    lambda x: x.clone(), lambda x: x.transpose(0, 1).reshape(-1), lambda x: x.roll(1, 0),
    lambda x: torch.cat([x, x]), lambda x: x.index_select(1, torch.tensor([0, 1])),
])
def test_copying_ops_do_not_alias(make):
    x = t()
    r = make(x)
    r.fill_(-7)
    assert_close(x, A)
    assert r.storage_offset() == 0


def test_flip_has_positive_strides():
    f = t().flip(0)
    assert f.stride() == (12, 4, 1) and f.is_contiguous()


def test_from_numpy_shares_both_ways():
    n = np.zeros(3)
    x = torch.from_numpy(n)
    x.add_(1)
    assert n.tolist() == [1.0, 1.0, 1.0]
    n[0] = 5
    assert x[0].item() == 5.0
    v = x.view(3, 1)
    v[2, 0] = 9
    assert n.tolist() == [5.0, 1.0, 9.0]


def test_view_shares_version_counter():
    x = torch.zeros(3)
    v = x.view(-1)
    v0 = x._version
    v.add_(1)
    assert x._version == v0 + 1 and v._version == x._version
    assert to_np(x).tolist() == [1.0, 1.0, 1.0]


def test_diagonal_is_writable_view():
    x = torch.zeros(3, 3)
    x.diagonal().fill_(-1)
    assert_close(x, -np.eye(3))
    x.diagonal(1).add_(2)
    assert_close(x, -np.eye(3) + 2 * np.eye(3, k=1))


def test_expand_write_refused_and_base_unchanged():
    x = torch.zeros(3, 1)
    with pytest.raises((RuntimeError, ValueError)):
        x.expand(3, 4).add_(1)
    assert_close(x, np.zeros((3, 1)))


def test_failed_view_leaves_tensor_unchanged():
    x = t().transpose(0, 1)
    with pytest.raises(RuntimeError):
        x.view(-1)
    assert_close(x, A.transpose(1, 0, 2))
    assert x.stride() == (4, 12, 1)


def test_in_place_write_into_an_expanded_tensor_is_refused():
    """Several elements of an expanded tensor share one memory location: PyTorch refuses
    in-place writes there with a RuntimeError; the base stays unchanged. (fill_ and zero_
    are the exception, as in PyTorch: tests/test_sweep_shapes.py)"""
    base = torch.zeros(3, 1)
    e = base.expand(3, 4)
    for write in (lambda: e.add_(1), lambda: e.copy_(torch.ones(3, 4)),
                  lambda: e.clamp_(min=1), lambda: e.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match="single memory location"):
            write()
    assert base.tolist() == [[0.0], [0.0], [0.0]]


def test_unfold_of_a_non_contiguous_tensor_is_a_view():
    # torch's unfold is always a view: the input's strides, writes reaching the base
    a = np.arange(120.0).reshape(4, 5, 6)
    y = torch.tensor(a)
    v = y.transpose(0, 2)                              # (6, 5, 4), strides (1, 6, 30)
    u = v.unfold(1, 2, 1)
    assert u.shape == (6, 4, 4, 2) and u.stride() == (1, 6, 30, 6)
    w = np.lib.stride_tricks.sliding_window_view(a.transpose(2, 1, 0), 2, axis=1)
    np.testing.assert_array_equal(to_np(u), w)
    u[0].fill_(-1)
    e = a.copy()
    e[:, :, 0] = -1
    np.testing.assert_array_equal(to_np(y), e)
    s = torch.tensor(a)[:, ::2].unfold(2, 3, 3)         # (4, 3, 2, 3)
    assert s.stride() == (30, 12, 3, 1) and s.storage_offset() == 0
    np.testing.assert_array_equal(to_np(s), a[:, ::2].reshape(4, 3, 2, 3))


def test_unfold_gradients_of_views():
    # the gradient of each input element counts the windows that hold it; an expanded
    # input's windows reach its base through expand's backward (once per copy)
    g = torch.arange(6.0).reshape(2, 3).requires_grad_()
    g.t().unfold(0, 2, 1).sum().backward()
    np.testing.assert_array_equal(to_np(g.grad), [[1, 2, 1], [1, 2, 1]])
    g = torch.arange(6.0).reshape(2, 3).requires_grad_()
    g[:, :1].expand(2, 3).unfold(1, 2, 1).sum().backward()
    np.testing.assert_array_equal(to_np(g.grad), [[4, 0, 0], [4, 0, 0]])


# ---- select: x[i], x[:, i], x.select, unbind (one view op) ------------------------------------

@pytest.mark.parametrize("d", [0, 1, 2])
def test_select_values_strides_offsets_and_base(d):
    x = t()
    n = A.shape[d]
    keep = [k for k in range(3) if k != d]
    for i in range(-n, n):
        for v in (x.select(d, i), x[(slice(None),) * d + (i,)], x.select(d - 3, i)):
            np.testing.assert_array_equal(to_np(v), np.take(A, i, axis=d))
            # A is row-major: strides (12, 4, 1); selecting drops dim d, offset i * stride
            assert v.stride() == tuple((12, 4, 1)[k] for k in keep)
            assert v.storage_offset() == (i % n) * (12, 4, 1)[d]
            assert v.is_contiguous() is (d == 0)
            assert v._base is x
            assert v.grad_fn is None
    u = x.unbind(d)
    assert len(u) == n and all(w._base is x for w in u)
    assert [w.storage_offset() for w in u] == [i * (12, 4, 1)[d] for i in range(n)]


def test_select_strides_with_size_one_and_empty_dims():
    # the kept dims keep their strides (as torch: a size-1 or empty dim too)
    x = t()[::2]                                         # (1, 3, 4), strides (24, 4, 1)
    v = x.select(1, 2)
    assert v.shape == (1, 4) and v.stride() == (24, 1) and v.storage_offset() == 8
    np.testing.assert_array_equal(to_np(v), A[::2, 2])
    e = torch.arange(0.0).reshape(0, 3).select(1, 2)     # strides (3, 1)
    assert e.shape == (0,) and e.stride() == (3,) and e.storage_offset() == 2
    s = torch.tensor([5.0, 6.0, 7.0])[-1]               # a 0-d view
    assert s.shape == () and s.storage_offset() == 2 and s._base is not None and float(s) == 7


def test_select_writes_reach_base_and_share_the_version_counter():
    x = torch.zeros(4, 3)
    exp = np.zeros((4, 3), np.float32)
    v = x[3]
    v0 = x._version
    x[3] += 1
    exp[3] += 1
    x[1].zero_()
    x[2] = torch.tensor([5.0, 6.0, 7.0])
    exp[2] = [5, 6, 7]
    x[:, 1].mul_(2).add_(1)
    exp[:, 1] = exp[:, 1] * 2 + 1
    x[-1][2] = 9
    exp[-1, 2] = 9
    x.select(1, -1)[0] = -4
    exp[0, -1] = -4
    np.testing.assert_array_equal(to_np(x), exp)
    np.testing.assert_array_equal(to_np(v), exp[3])
    assert x._version == v._version and x._version >= v0 + 7
    w = x[0]
    w.fill_(8)                                            # through one select, then the base
    assert x._version == w._version == v._version
    assert to_np(x)[0].tolist() == [8, 8, 8]


def test_select_gradients():
    a = np.random.default_rng(0).standard_normal((4, 3))
    for f in (lambda x: x[2], lambda x: x[:, 1], lambda x: x[-1], lambda x: x.select(1, -2),
              lambda x: x[1, 1:3], lambda x: x[:, -1][0], lambda x: x.unbind(1)[2] * x[0, 0],
              lambda x: (x[1] * x[:, 2].sum()).exp()):
        x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(f, (x,))
    x = torch.tensor(a, requires_grad=True)
    assert type(x[1].grad_fn).__name__ == "SelectBackward0"
    assert type(x[:, 1].grad_fn).__name__ == "SelectBackward0"
    assert type(x.select(0, 1).grad_fn).__name__ == "SelectBackward0"
    assert type(x.unbind(0)[1].grad_fn).__name__ == "UnbindBackward0"
    (x[1] * 2 + x[:, 0].sum()).sum().backward()
    g = np.zeros((4, 3))
    g[1] += 2
    g[:, 0] += 3
    np.testing.assert_allclose(to_np(x.grad), g)


def test_select_gradient_through_an_in_place_write():
    x = torch.tensor(np.ones((3, 2)), requires_grad=True)
    y = x * 1
    y[1] *= 5                                             # CopySlices through a select
    y[:, 0].add_(y[:, 1])
    y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [[1, 2], [5, 10], [1, 2]])


def _sel_fn(x, y):
    a = x[1] * 2 + x[:, 2].sum()
    b = y.clone()
    b[2] += a[:3]
    b[-1].zero_()
    return a, b, b.select(1, 0).exp(), torch.stack(x.unbind(1), 0), x[3, 1:4]


def _sel_write(x, y):
    y[1] += 1                                             # writes to an argument through x[i]
    y[:, 0].mul_(x[0, :3])
    return y.sum()


def test_select_under_compile_equals_eager():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    y = torch.tensor(rng.standard_normal((3, 3)).astype(np.float32))
    cf = torch.compile(_sel_fn)
    for _ in range(2):
        for e, c in zip(_sel_fn(x, y), cf(x, y)):
            assert c.shape == e.shape
            np.testing.assert_allclose(to_np(c), to_np(e), rtol=1e-6)
    X, Y = to_np(x).astype(np.float64), to_np(y).astype(np.float64)
    np.testing.assert_allclose(to_np(cf(x, y)[0]), X[1] * 2 + X[:, 2].sum(), rtol=1e-5)
    y1, y2 = y.clone(), y.clone()
    r1 = _sel_write(x, y1)
    r2 = torch.compile(_sel_write)(x, y2)
    Y[1] += 1
    Y[:, 0] *= X[0, :3]
    np.testing.assert_allclose(to_np(y1), Y, rtol=1e-6)
    np.testing.assert_allclose(to_np(y2), Y, rtol=1e-6)
    np.testing.assert_allclose(float(r2), float(r1), rtol=1e-6)


def test_select_gradient_under_compile():
    a = np.random.default_rng(2).standard_normal((4, 5))

    def h(x):
        return (x[1] * x[:, -1].sum() + x[-1]).pow(2).sum()
    x = torch.tensor(a, requires_grad=True)
    ge = torch.autograd.grad(h(x), x)[0]
    gc = torch.autograd.grad(torch.compile(h)(x), x)[0]
    np.testing.assert_allclose(to_np(gc), to_np(ge), rtol=1e-12)
    # by hand: s = sum(x[:, -1]); f = sum((x[1] * s + x[3]) ** 2)
    s = a[:, -1].sum()
    r = a[1] * s + a[3]
    g = np.zeros_like(a)
    g[1] += 2 * r * s
    g[3] += 2 * r
    g[:, -1] += (2 * r * a[1]).sum()
    np.testing.assert_allclose(to_np(ge), g, rtol=1e-10)


def test_select_bad_index_raises_and_leaves_data():
    x = torch.arange(12.0).reshape(4, 3)
    with pytest.raises(IndexError, match=r"^index 5 is out of bounds for dimension 0 with size 4"):
        x[5]
    with pytest.raises(IndexError, match=r"^index -5 is out of bounds for dimension 0 with size 4"):
        x[-5]
    with pytest.raises(IndexError, match=r"^index 3 is out of bounds for dimension 1 with size 3"):
        x[:, 3]
    with pytest.raises(IndexError, match=r"^index 4 is out of bounds for dimension 0 with size 4"):
        x[4] = 1.0
    with pytest.raises(IndexError, match=r"^index 4 is out of bounds for dimension 0 with size 4"):
        x[4] += 1.0
    with pytest.raises(IndexError, match=r"^select\(\): index 4 out of range for tensor of size "
                                         r"\[4, 3\] at dimension 0"):
        x.select(0, 4)
    with pytest.raises(IndexError, match=r"^select\(\): index -4 out of range for tensor of size "
                                         r"\[4, 3\] at dimension 1"):
        x.select(-1, -4)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.select(2, 0)
    with pytest.raises(IndexError, match=r"^select\(\) cannot be applied to a 0-dim tensor"):
        torch.tensor(1.0).select(0, 0)
    with pytest.raises(IndexError, match="index 0 is out of bounds for dimension 0 with size 0"):
        torch.zeros(0, 2)[0]
    np.testing.assert_array_equal(to_np(x), np.arange(12.0).reshape(4, 3))
    assert x._version == 0


def test_select_under_vmap():
    from framework.func import vmap
    x = t()
    np.testing.assert_array_equal(to_np(vmap(lambda r: r[1])(x)), A[:, 1])
    np.testing.assert_array_equal(to_np(vmap(lambda r: r[:, 2], in_dims=1)(x)),
                                  A.transpose(1, 0, 2)[:, :, 2])
    np.testing.assert_array_equal(to_np(vmap(lambda r: r.select(0, -1), in_dims=2)(x)),
                                  np.moveaxis(A, 2, 0)[:, -1])
