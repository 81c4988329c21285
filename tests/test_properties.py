"""Property tests (hypothesis): broadcasting equals NumPy's, view/reshape/permute/transpose
round trips, slicing equals NumPy slicing, cat and split are inverse, and views write through."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import framework as torch
from conftest import assert_close, to_np

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

dims = st.lists(st.integers(1, 4), min_size=0, max_size=4)


@st.composite
def broadcastable_pair(draw):
    """Two shapes that broadcast: each dim of the shorter shape is 1 or equal to the other."""
    out = draw(dims)
    def sub(shape):
        k = draw(st.integers(0, len(shape)))
        tail = shape[len(shape) - k:]
        return [1 if draw(st.booleans()) else s for s in tail]
    return sub(out), sub(out)


@SETTINGS
@given(broadcastable_pair(), st.sampled_from(["add", "sub", "mul", "maximum", "lt", "where"]))
def test_binary_broadcasting_equals_numpy(shapes, op):
    sa, sb = shapes
    a = np.arange(int(np.prod(sa)), dtype=np.float64).reshape(sa) - 3
    b = (np.arange(int(np.prod(sb)), dtype=np.float64).reshape(sb) * 0.5 + 1)
    ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    if op == "where":
        r, e = torch.where(ta > 0, ta, tb), np.where(a > 0, a, b)
    else:
        r, e = getattr(torch, op)(ta, tb), {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                                            "maximum": np.maximum, "lt": np.less}[op](a, b)
    assert tuple(r.shape) == e.shape
    assert_close(r, e, rtol=0, atol=0)
    assert torch.broadcast_shapes(tuple(sa), tuple(sb)) == np.broadcast_shapes(tuple(sa), tuple(sb))


@SETTINGS
@given(dims, dims)
def test_incompatible_shapes_raise_like_numpy(sa, sb):
    try:
        np.broadcast_shapes(tuple(sa), tuple(sb))
        compatible = True
    except ValueError:
        compatible = False
    a, b = torch.zeros(tuple(sa)), torch.ones(tuple(sb))
    if compatible:
        assert tuple((a + b).shape) == np.broadcast_shapes(tuple(sa), tuple(sb))
    else:
        with pytest.raises(RuntimeError):
            a + b
        assert (to_np(a) == 0).all()


@st.composite
def array_and_perm(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    perm = draw(st.permutations(range(len(shape))))
    return np.arange(int(np.prod(shape))).reshape(shape), list(perm)


@SETTINGS
@given(array_and_perm())
def test_permute_round_trip(ap):
    a, perm = ap
    x = torch.tensor(a)
    p = x.permute(*perm)
    assert_close(p, a.transpose(perm))
    inv = list(np.argsort(perm))
    back = p.permute(*inv)
    assert_close(back, a)
    assert back.stride() == x.stride()          # same layout as the original
    assert back.is_contiguous()


@SETTINGS
@given(array_and_perm(), st.data())
def test_transpose_reshape_view_round_trips(ap, data):
    a, _ = ap
    x = torch.tensor(a)
    d0 = data.draw(st.integers(-a.ndim, a.ndim - 1))
    d1 = data.draw(st.integers(-a.ndim, a.ndim - 1))
    tr = x.transpose(d0, d1)
    assert_close(tr, np.swapaxes(a, d0, d1))
    assert_close(tr.transpose(d0, d1), a)
    flat = x.reshape(-1)
    assert_close(flat, a.ravel())
    assert_close(flat.view(a.shape), a)
    assert_close(tr.reshape(-1), np.swapaxes(a, d0, d1).ravel())   # copies when it must
    assert_close(tr.contiguous().view(-1), np.swapaxes(a, d0, d1).ravel())
    # a view and its base see the same memory
    v = x.view(a.shape[::-1]) if a.size else x
    v.add_(1)
    assert_close(x, a + 1)


@st.composite
def array_and_slices(draw):
    shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3))
    idx = []
    for s in shape:
        kind = draw(st.sampled_from(["slice", "int", "all"]))
        if kind == "int" and s > 0:
            idx.append(draw(st.integers(-s, s - 1)))
        elif kind == "slice":
            start = draw(st.one_of(st.none(), st.integers(-8, 8)))
            stop = draw(st.one_of(st.none(), st.integers(-8, 8)))
            step = draw(st.one_of(st.none(), st.integers(1, 3)))
            idx.append(slice(start, stop, step))
        else:
            idx.append(slice(None))
    if draw(st.booleans()):
        idx.insert(draw(st.integers(0, len(idx))), None)
    return np.arange(int(np.prod(shape))).reshape(shape), tuple(idx)


@SETTINGS
@given(array_and_slices())
def test_slicing_equals_numpy(ai):
    a, idx = ai
    x = torch.tensor(a)
    r = x[idx]
    assert tuple(r.shape) == a[idx].shape
    assert_close(r, a[idx])
    if r.numel():   # strides of size-1 dims are arbitrary (NumPy says 0 for None, torch doesn't)
        want = [s // a.itemsize for s in a[idx].strides]
        assert [st for st, n in zip(r.stride(), r.shape) if n > 1] == \
            [st for st, n in zip(want, r.shape) if n > 1]
    # writing through the slice changes the base exactly where NumPy's slice points
    r.fill_(-1)
    e = a.copy()
    e[idx] = -1
    assert_close(x, e)


@SETTINGS
@given(array_and_slices())
def test_setitem_slices_equals_numpy(ai):
    a, idx = ai
    x = torch.tensor(a)
    target = a[idx].shape
    val = np.arange(int(np.prod(target))).reshape(target) + 1000
    x[idx] = torch.tensor(val)
    e = a.copy()
    e[idx] = val
    assert_close(x, e)


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=1, max_size=4), st.lists(st.integers(1, 3), min_size=1,
                                                                     max_size=3), st.data())
def test_cat_split_inverse(sizes, rest, data):
    dim = data.draw(st.integers(0, len(rest)))
    parts = []
    for k, n in enumerate(sizes):
        shape = rest[:dim] + [n] + rest[dim:]
        parts.append(np.arange(int(np.prod(shape))).reshape(shape) + 100 * k)
    c = torch.cat([torch.tensor(p) for p in parts], dim)
    assert_close(c, np.concatenate(parts, dim))
    back = torch.split(c, sizes, dim)
    assert len(back) == len(parts)
    for b, p in zip(back, parts):
        assert_close(b, p)
    # and the int form: equal chunks then a remainder
    step = data.draw(st.integers(1, 5))
    total = sum(sizes)
    pieces = torch.split(c, step, dim)
    if total:
        assert [p.shape[dim] for p in pieces] == [min(step, total - i) for i in range(0, total, step)]
    assert_close(torch.cat(list(pieces), dim), np.concatenate(parts, dim))
    # stack/unbind round trip
    s = torch.stack([torch.tensor(parts[0])] * 2, dim)
    for u in s.unbind(dim):
        assert_close(u, parts[0])


@SETTINGS
@given(array_and_perm(), st.data())
def test_squeeze_unsqueeze_flatten_round_trip(ap, data):
    a, _ = ap
    x = torch.tensor(a)
    d = data.draw(st.integers(-a.ndim - 1, a.ndim))
    u = x.unsqueeze(d)
    assert_close(u, np.expand_dims(a, d))
    assert_close(u.squeeze(d), a)
    assert_close(x.squeeze(), np.squeeze(a))
    s = data.draw(st.integers(0, a.ndim - 1))
    e = data.draw(st.integers(s, a.ndim - 1))
    f = x.flatten(s, e)
    assert_close(f.unflatten(s, a.shape[s:e + 1]), a)
