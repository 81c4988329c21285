"""Regression tests from the torch.func / autocast sweep (Kiln vs PyTorch 2.13): each test pins
one divergence that was fixed, with references computed here in NumPy (float64, or ml_dtypes
for the half types) or derived by hand."""
import ml_dtypes
import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F

BF16 = ml_dtypes.bfloat16


def N(t):
    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return np.asarray(t.numpy())


def _bf16(a):
    return np.asarray(a, np.float32).astype(BF16).astype(np.float32)


# ---- half-precision matmul: float32 accumulation, one rounding ---------------------------------

def test_bf16_matmul_result_is_rounded_to_bf16():
    rs = np.random.RandomState(0)
    a, b = _bf16(rs.randn(5, 7)), _bf16(rs.randn(7, 3))
    r = torch.mm(torch.tensor(a).to(torch.bfloat16), torch.tensor(b).to(torch.bfloat16))
    assert r.dtype is torch.bfloat16
    ref = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32).astype(BF16)
    np.testing.assert_array_equal(N(r), ref.astype(np.float32))
    # every value is a bfloat16 value (the stored result was float32 before)
    np.testing.assert_array_equal(N(r), _bf16(N(r)))


def test_fp16_matmul_accumulates_in_float32():
    # 4096 ones: a float16 accumulator stops at 2048 (2048 + 1 rounds back to 2048)
    x = torch.ones(1, 4096, dtype=torch.float16)
    r = torch.mm(x, torch.ones(4096, 1, dtype=torch.float16))
    assert r.dtype is torch.float16
    assert N(r)[0, 0] == 4096.0


def test_autocast_mm_gradient_to_float32_param_is_bf16_rounded():
    rs = np.random.RandomState(3)
    a = rs.randn(4, 4).astype(np.float32)
    w = torch.nn.Parameter(torch.tensor(a))
    x = torch.tensor(a.T.copy())
    with torch.autocast("cpu"):
        y = torch.mm(w, x)
    assert y.dtype is torch.bfloat16
    y.float().sum().backward()
    assert w.grad.dtype is torch.float32
    # dL/dw = ones @ x_bf16^T, computed in bfloat16 (accumulated in float32, rounded once)
    ref = _bf16(np.ones((4, 4)) @ _bf16(a.T).T.astype(np.float64))
    np.testing.assert_array_equal(N(w.grad), ref)


# ---- autocast: CPU fp32 list -------------------------------------------------------------------

def _bf(a):
    return torch.tensor(np.asarray(a, np.float32)).to(torch.bfloat16)


def test_autocast_pad_reflect_replicate_fp32_constant_unchanged():
    a = _bf16(np.arange(12.0).reshape(1, 2, 6) / 4)
    x = _bf(a)
    with torch.autocast("cpu"):
        r = F.pad(x, (2, 1), mode="reflect")
        p = F.pad(x, (1, 1), "replicate")
        c = F.pad(x, (1, 1))
        m = torch.nn.ReflectionPad2d(1)(x.unsqueeze(0))
    assert r.dtype is torch.float32 and p.dtype is torch.float32 and m.dtype is torch.float32
    assert c.dtype is torch.bfloat16
    np.testing.assert_array_equal(N(r), np.pad(a, ((0, 0), (0, 0), (2, 1)), mode="reflect"))
    np.testing.assert_array_equal(N(p), np.pad(a, ((0, 0), (0, 0), (1, 1)), mode="edge"))
    np.testing.assert_array_equal(N(c), np.pad(a, ((0, 0), (0, 0), (1, 1))))


def test_autocast_fft_and_complex_ops_run_in_float32():
    a = _bf16(np.random.RandomState(1).randn(8))
    x = _bf(a)
    with torch.autocast("cpu"):
        f = torch.fft.rfft(x)
        g = torch.fft.fft(x)
        vc = torch.view_as_complex(x.reshape(4, 2))
        pol = torch.polar(x.abs(), x)
    assert f.dtype is torch.complex64 and g.dtype is torch.complex64
    np.testing.assert_allclose(f.numpy(), np.fft.rfft(a.astype(np.float64)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g.numpy(), np.fft.fft(a.astype(np.float64)), rtol=1e-5, atol=1e-5)
    assert vc.dtype is torch.complex64
    np.testing.assert_array_equal(vc.numpy(), a[0::2] + 1j * a[1::2])
    assert pol.dtype is torch.complex64
    np.testing.assert_allclose(pol.numpy(), np.abs(a) * np.exp(1j * a.astype(np.float64)),
                               rtol=1e-6, atol=1e-6)


def test_autocast_linalg_fp32_list_no_mixed_dtype_errors():
    rs = np.random.RandomState(2)
    A = rs.randn(4, 4)
    spd = (A @ A.T + 4 * np.eye(4)).astype(np.float32)
    B = rs.randn(4, 2).astype(np.float32)
    S, Bt = torch.tensor(spd), torch.tensor(B)
    with torch.autocast("cpu"):
        LU, piv = torch.linalg.lu_factor(S)
        x1 = torch.linalg.lu_solve(LU, piv, Bt)
        inv, info = torch.linalg.inv_ex(S)
        ls = torch.linalg.lstsq(S, Bt).solution
        cl = torch.linalg.cholesky(S)
        ci = torch.cholesky_inverse(cl)
        cs = torch.cholesky_solve(Bt.to(torch.bfloat16), cl)
    ref = np.linalg.solve(spd.astype(np.float64), B.astype(np.float64))
    for t, r in ((x1, ref), (ls, ref), (inv, np.linalg.inv(spd.astype(np.float64))),
                 (ci, np.linalg.inv(spd.astype(np.float64)))):
        assert t.dtype is torch.float32
        np.testing.assert_allclose(N(t), r, rtol=1e-4, atol=1e-5)
    assert cs.dtype is torch.float32
    np.testing.assert_allclose(N(cs), np.linalg.solve(spd.astype(np.float64), _bf16(B)),
                               rtol=1e-4, atol=1e-5)
    assert int(info) == 0


def test_autocast_pool_unpool_fp32():
    a = _bf16(np.arange(32.0).reshape(1, 2, 4, 4) / 8)
    x = _bf(a)
    with torch.autocast("cpu"):
        p, i = F.max_pool2d(x, 2, return_indices=True)
        u = F.max_unpool2d(p, i, 2)
        fm = F.fractional_max_pool2d(x, 2, output_size=2)
    assert u.dtype is torch.float32 and fm.dtype is torch.float32
    ref = np.zeros((1, 2, 4, 4), np.float32)
    ref[:, :, 1::2, 1::2] = a[:, :, 1::2, 1::2]       # the max of each 2x2 block: its last
    np.testing.assert_array_equal(N(u), ref)


# ---- autocast: promote (cat, stack, index_copy) -------------------------------------------------

def test_autocast_promote_follows_torch_prioritize():
    a = np.array([[1.5, -2.0]], np.float32)
    f32, bf = torch.tensor(a), torch.tensor(a).to(torch.bfloat16)
    with torch.autocast("cpu"):
        assert torch.cat([f32, bf]).dtype is torch.float32
        assert torch.cat([bf, bf]).dtype is torch.bfloat16
        assert torch.stack([bf, f32]).dtype is torch.float32
        # float64 is ignored by the promotion and left as it is: cat then promotes to it
        r = torch.cat([f32.double(), bf])
        assert r.dtype is torch.float64
        np.testing.assert_array_equal(N(r), np.concatenate([a, a]))
        with pytest.raises(RuntimeError, match="prioritize"):
            torch.cat([f32.half(), bf])
    with torch.autocast("cpu", dtype=torch.float16):
        with pytest.raises(RuntimeError, match="prioritize"):
            torch.cat([f32.double(), bf])
        assert torch.cat([f32.half(), f32]).dtype is torch.float32


# ---- torch.func --------------------------------------------------------------------------------

def test_jvp_integer_output_has_zero_integer_tangent():
    x = torch.tensor([0.5, -1.0, 2.0])
    t = torch.tensor([1.0, 2.0, 3.0])
    (o1, o2), (t1, t2) = torch.func.jvp(lambda p: ((p > 0).long(), p * 3), (x,), (t,))
    assert o1.dtype is torch.int64 and t1.dtype is torch.int64
    np.testing.assert_array_equal(N(o1), [1, 0, 1])
    np.testing.assert_array_equal(N(t1), [0, 0, 0])
    np.testing.assert_array_equal(N(t2), [3.0, 6.0, 9.0])
    o, tt = torch.func.jvp(lambda p: (p > 0).long(), (x,), (t,))
    np.testing.assert_array_equal(N(tt), [0, 0, 0])


def test_jacrev_chunk_size_and_jacfwd_randomness():
    with pytest.raises(ValueError, match="chunk_size"):
        torch.func.jacrev(torch.sin, chunk_size=0)
    x = torch.tensor([0.1, 0.2, 0.3])
    with pytest.raises(RuntimeError, match="randomness error mode"):
        torch.func.jacfwd(lambda p: p * torch.rand(3))(x)
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        torch.func.jacfwd(torch.sin, randomness="bad")
    J = torch.func.jacfwd(lambda p: p * torch.rand(3), randomness="same")(x)
    assert tuple(J.shape) == (3, 3)
    assert N(J)[0, 1] == 0.0 and 0.0 <= N(J)[0, 0] < 1.0
    # the guard is gone afterwards: random ops outside work again
    assert tuple(torch.rand(2).shape) == (2,)
    np.testing.assert_allclose(N(torch.func.jacfwd(torch.sin)(x)), np.diag(np.cos([.1, .2, .3])),
                               rtol=1e-6)


def test_grad_of_complex_scalar_output_raises():
    x = torch.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="real scalar outputs"):
        torch.func.grad(lambda p: torch.view_as_complex(p.reshape(1, 2)).sum())(x)


def test_vmap_dynamic_shape_ops_raise():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    with pytest.raises(RuntimeError, match="dynamic shape.*aten::nonzero"):
        torch.vmap(lambda p: p.nonzero())(x)
    with pytest.raises(RuntimeError, match="dynamic shape"):
        torch.vmap(torch.unique)(x)
    # argwhere runs per sample (torch's fallback): fine while the shapes agree
    np.testing.assert_array_equal(N(torch.vmap(torch.argwhere)(x)), [[[0]], [[1]]])
    # nonzero_static has a static shape
    y = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    r = torch.vmap(lambda p: torch.nonzero_static(p, size=2))(y)
    np.testing.assert_array_equal(N(r), [[[0], [2]], [[1], [-1]]])


def test_vmap_setitem_basic_and_tensor_index():
    a = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    x = torch.tensor(a)

    def f(p):
        q = p.clone()
        q[0] = 5.0
        q[1:] = p[:2] * 2
        return q
    ref = np.empty_like(a)      # per sample p: [5, 2 p0, 2 p1]
    ref[:, 0] = 5.0
    ref[:, 1:] = a[:, :2] * 2
    np.testing.assert_array_equal(N(torch.vmap(f)(x)), ref)

    def g(p, v):
        q = p.clone()
        q[torch.tensor([0, 2])] = v
        return q
    r = torch.vmap(g, in_dims=(0, None))(x, torch.tensor([7.0, 8.0]))
    ref2 = a.copy()
    ref2[:, [0, 2]] = [7.0, 8.0]
    np.testing.assert_array_equal(N(r), ref2)
    # an unbatched tensor written with a batched value: torch's in-place error
    with pytest.raises(RuntimeError, match="inplace arithmetic"):
        torch.vmap(lambda p, q: q.__setitem__(0, p[0]), in_dims=(0, None))(x, torch.zeros(3))


def test_vmap_grad_through_setitem():
    a = np.arange(1.0, 7.0).reshape(2, 3)

    def loss(p):
        q = p.clone()
        q[0] = 0.0           # the overwritten element gets no gradient
        return (q ** 2).sum()
    g = torch.vmap(torch.func.grad(loss))(torch.tensor(a))
    ref = 2 * a
    ref[:, 0] = 0.0
    np.testing.assert_array_equal(N(g), ref)


def test_vmap_embedding_batched_indices():
    w = np.arange(10.0).reshape(5, 2)
    idx = np.array([[0, 2], [1, 1], [4, 0]])
    W = torch.tensor(w)
    r = torch.vmap(lambda i: F.embedding(i, W))(torch.tensor(idx))
    np.testing.assert_array_equal(N(r), w[idx])
    g = torch.func.grad(lambda ww: torch.vmap(lambda i: F.embedding(i, ww, padding_idx=0))(
        torch.tensor(idx)).sum())(W)
    ref = np.zeros((5, 2))
    for i in idx.ravel():
        if i != 0:
            ref[i] += 1.0
    np.testing.assert_array_equal(N(g), ref)


def _np_median(a, axis, ignore_nan):
    """Lower median and its index along axis, torch's NaN rules."""
    a = np.moveaxis(a, axis, -1)
    vals, idxs = np.empty(a.shape[:-1]), np.empty(a.shape[:-1], np.int64)
    for k in np.ndindex(*a.shape[:-1]):
        row = a[k]
        order = np.argsort(row, kind="stable")
        nans = int(np.isnan(row).sum())
        m = len(row) - nans
        if ignore_nan:
            pos = (m - 1) // 2 if m > 0 else len(row) // 2
        else:
            pos = m if nans else (len(row) - 1) // 2
        idxs[k] = order[pos]
        vals[k] = row[order[pos]]
    return vals, idxs


@pytest.mark.parametrize("name", ["median", "nanmedian"])
def test_vmap_median(name):
    a = np.random.RandomState(0).randn(4, 5, 3)
    a[1, 2, 0] = np.nan
    a[2, :, 1] = np.nan
    fn = getattr(torch, name)
    v, i = torch.vmap(lambda p: tuple(fn(p, 0)))(torch.tensor(a))
    rv, ri = _np_median(a, 1, name == "nanmedian")
    np.testing.assert_array_equal(N(v), rv)
    np.testing.assert_array_equal(N(i), ri)
    whole = torch.vmap(fn)(torch.tensor(a))
    ref = [_np_median(a[b].reshape(1, -1), 1, name == "nanmedian")[0][0] for b in range(4)]
    np.testing.assert_array_equal(N(whole), ref)


def test_torch_cross_check_autocast_dtypes():
    real = pytest.importorskip("torch", reason="cross-check against PyTorch when installed")
    a = np.random.RandomState(5).randn(2, 3, 4).astype(np.float32)
    for L, out in ((real, []), (torch, [])):
        x = L.tensor(a).to(L.bfloat16)
        with L.autocast("cpu"):
            out.append(L.nn.functional.pad(x, (1, 1), mode="reflect").dtype)
            out.append(L.fft.rfft(x).dtype)
            out.append(L.cat([x, L.tensor(a)]).dtype)
            out.append(L.cholesky_inverse(L.eye(3)).dtype)
        if L is real:
            ref = [str(d) for d in out]
        else:
            assert [str(d) for d in out] == ref
