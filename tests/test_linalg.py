"""Matrix products and torch.linalg against NumPy float64 references; shape, dtype and
numerical-failure errors. Seeds: catalog-000 3.9 (matmul/mm/bmm/mv/dot/addmm/einsum, norms T6),
catalog-001-004 3.11 (svd, svdvals, eig, eigvals, norm, qr)."""
import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np


def R(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape)


def t64(a):
    return torch.tensor(a, dtype=torch.float64)


MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)),
                 ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 5)),
                 ((2, 3, 4), (4,)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
                 ((1, 3, 4), (6, 4, 2))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul_all_ranks(sa, sb):
    a, b = R(*sa), R(*sb, seed=1)
    r = torch.matmul(t64(a), t64(b))
    assert_close(r, np.matmul(a, b), rtol=1e-12, atol=1e-12)
    assert_close(t64(a) @ t64(b), np.matmul(a, b), rtol=1e-12, atol=1e-12)
    assert r.dtype == torch.float64


@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3,), (4,)), ((2, 3, 4), (3,)),
                                   ((2, 3, 4), (3, 4, 5))])
def test_matmul_shape_errors(sa, sb):
    with pytest.raises(RuntimeError):
        torch.matmul(torch.ones(*sa), torch.ones(*sb))


def test_matmul_dtype_rules():
    r = torch.matmul(torch.tensor([[1, 2]]), torch.tensor([[3], [4]]))
    assert r.dtype == torch.int64 and r.item() == 11
    with pytest.raises(RuntimeError, match="dtype"):
        torch.matmul(torch.tensor([[1., 2]]), torch.tensor([[3], [4]]))
    with pytest.raises(RuntimeError):
        torch.matmul(torch.tensor([[1., 2]], dtype=torch.float64), torch.tensor([[3.], [4]]))
    with pytest.raises(NotImplementedError):
        torch.matmul(torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(RuntimeError):
        torch.matmul(torch.tensor(1.), torch.tensor([1.]))
    o = torch.empty(0)
    torch.matmul(torch.ones(2, 3), torch.ones(3, 4), out=o)
    assert o.shape == (2, 4) and (to_np(o) == 3).all()


def test_mm_bmm_mv_dot_outer():
    a, b = R(3, 4), R(4, 5, seed=1)
    assert_close(torch.mm(t64(a), t64(b)), a @ b, rtol=1e-12)
    with pytest.raises(RuntimeError):
        torch.mm(t64(a), t64(a))
    with pytest.raises(RuntimeError):
        torch.mm(torch.ones(2, 3, 4), torch.ones(4, 5))
    x, y = R(2, 3, 4), R(2, 4, 5, seed=2)
    assert_close(torch.bmm(t64(x), t64(y)), x @ y, rtol=1e-12)
    # bmm does not broadcast; PyTorch 2.13 names batch2's expected leading sizes
    with pytest.raises(RuntimeError, match=r"Expected size for first two dimensions of batch2 "
                                           r"tensor to be: \[2, 4\] but got: \[1, 4\]\."):
        torch.bmm(t64(x), t64(y[:1]))
    with pytest.raises(RuntimeError, match=r"to be: \[2, 4\] but got: \[2, 3\]\."):
        torch.bmm(t64(x), t64(x))
    v = R(4, seed=3)
    assert_close(torch.mv(t64(a), t64(v)), a @ v, rtol=1e-12)
    with pytest.raises(RuntimeError):
        torch.mv(t64(a), t64(R(3)))
    d = torch.dot(torch.tensor([2, 3]), torch.tensor([2, 1]))
    assert d.dtype == torch.int64 and d.shape == () and d.item() == 7
    assert repr(d) == "tensor(7)"
    with pytest.raises(RuntimeError):
        torch.dot(torch.tensor([2, 3]), torch.tensor([2, 1, 1]))
    with pytest.raises(RuntimeError):
        torch.dot(torch.tensor([2, 3]), torch.tensor([2., 1]))
    with pytest.raises(RuntimeError):
        torch.dot(torch.ones(2, 3), torch.ones(3))
    w = R(3, seed=4)
    assert_close(torch.outer(t64(v), t64(w)), np.outer(v, w))
    assert torch.outer(torch.tensor([1, 2]), torch.tensor([1., 2])).dtype == torch.float32


def test_seed_matmul_uses():
    w = torch.tensor([1., 2., 3.])
    z = torch.tensor([4., 5., 6.])
    r = w.matmul(z)
    assert r.shape == () and r.item() == 32.0                 # 1-D . 1-D -> 0-d
    x = torch.tensor([[1.], [2.], [3.]])
    noise = torch.tensor([[1., 10., 100.]])
    assert_close(torch.matmul(x, noise), np.array([[1.], [2.], [3.]]) @ np.array([[1., 10., 100.]]))


def test_addmm_baddbmm():
    inp, m1, m2 = R(5), R(3, 4, seed=1), R(4, 5, seed=2)
    assert_close(torch.addmm(t64(inp), t64(m1), t64(m2)), inp + m1 @ m2, rtol=1e-12)
    assert_close(torch.addmm(t64(inp), t64(m1), t64(m2), beta=0.5, alpha=2),
                 0.5 * inp + 2 * (m1 @ m2), rtol=1e-12)
    c = t64(R(3, 5, seed=3))
    c0 = to_np(c).copy()
    c.addmm_(t64(m1), t64(m2), beta=0.5, alpha=2)
    assert_close(c, 0.5 * c0 + 2 * (m1 @ m2), rtol=1e-12)
    with pytest.raises(RuntimeError):
        torch.addmm(t64(R(4)), t64(m1), t64(m2))
    ii = torch.addmm(torch.ones(2, 2, dtype=torch.int64), torch.ones(2, 2, dtype=torch.int64),
                     torch.ones(2, 2, dtype=torch.int64), alpha=2, beta=3)
    assert ii.dtype == torch.int64 and to_np(ii).tolist() == [[7, 7], [7, 7]]
    b1, b2, bi = R(2, 3, 4), R(2, 4, 5, seed=1), R(2, 3, 5, seed=2)
    assert_close(torch.baddbmm(t64(bi), t64(b1), t64(b2), beta=0.5, alpha=2),
                 0.5 * bi + 2 * (b1 @ b2), rtol=1e-12)
    assert_close(torch.baddbmm(t64(R(5)), t64(b1), t64(b2)), R(5) + b1 @ b2, rtol=1e-12)


@pytest.mark.parametrize("dtype,base", [(torch.bfloat16, 256.), (torch.float16, 2048.)])
def test_half_gemm_adds_input_before_rounding(dtype, base):
    # x @ w = base + 1 (halfway between two representable values); + 1 -> base + 2 exactly.
    # PyTorch's gemm adds beta * input to the float32 sum and rounds once (base + 2); matmul
    # then add would round twice (base + 1 -> base, + 1 -> base)
    x = torch.tensor([[base, 1.]], dtype=dtype)
    w = torch.tensor([[1., 1.]], dtype=dtype)
    b = torch.tensor([1.], dtype=dtype)
    assert to_np((x @ w.T + b).float()).tolist() == [[base]]
    for r in (torch.nn.functional.linear(x, w, b), torch.addmm(b, x, w.T),
              torch.baddbmm(b, x[None], w.T[None])[0], torch.addbmm(b, x[None], w.T[None])):
        assert r.dtype is dtype and to_np(r.float()).tolist() == [[base + 2]]
    # 0.5 * 1 + 2 * (base + 1) = 2 base + 2.5: one rounding of that value
    expect = float(np.float32(2 * base + 2.5).astype(np.float16)) if dtype is torch.float16 \
        else 516.0                      # (bfloat16 spacing at 512 is 4)
    assert to_np(torch.addmm(b, x, w.T, beta=0.5, alpha=2).float()).tolist() == [[expect]]
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    y = torch.nn.functional.linear(xr, wr, br)
    assert type(y.grad_fn).__name__ == "AddmmBackward0"
    y.backward(torch.ones(1, 1, dtype=dtype))
    assert xr.grad.dtype is dtype and to_np(xr.grad.float()).tolist() == [[1., 1.]]
    assert to_np(wr.grad.float()).tolist() == [[base, 1.]] and to_np(br.grad.float()).tolist() == [1.]


def test_addbmm_adds_one_batch_at_a_time():
    # PyTorch's addbmm is one addmm per batch into the result: float32 rounding after each
    one = np.float32(1)
    b1 = torch.tensor([[[2.0 ** 24]], [[1.0]], [[1.0]]])
    b2 = torch.ones(3, 1, 1)
    r = torch.addbmm(torch.zeros(1, 1), b1, b2)         # 2^24 + 1 rounds to 2^24, twice
    assert to_np(r).tolist() == [[float(np.float32(2 ** 24) + one + one)]] == [[2.0 ** 24]]
    i, a, c = R(4, 5), R(3, 4, 2, seed=1), R(3, 2, 5, seed=2)
    it, at_, ct = (t64(v).requires_grad_() for v in (i, a, c))
    out = torch.addbmm(it, at_, ct, beta=0.5, alpha=2)
    assert_close(out, 0.5 * i + 2 * np.einsum("bij,bjk->ik", a, c), rtol=1e-12)
    assert type(out.grad_fn).__name__ == "AddbmmBackward0"
    out.sum().backward()
    assert_close(it.grad, np.full((4, 5), 0.5), rtol=1e-12)
    assert_close(at_.grad, 2 * np.einsum("ik,bjk->bij", np.ones((4, 5)), c), rtol=1e-12)
    empty = torch.addbmm(t64(i), t64(a)[:0], t64(c)[:0], beta=2)
    assert_close(empty, 2 * i, rtol=1e-12)
    with pytest.raises(RuntimeError, match=r"^batch1 and batch2 must have same number of "
                                           r"batches, got 3 and 2$"):
        torch.addbmm(t64(i), t64(a), t64(R(2, 2, 5)))
    with pytest.raises(RuntimeError, match=r"^Incompatible matrix sizes for bmm \(4x2 and 3x5\)$"):
        torch.addbmm(t64(i), t64(a), t64(R(3, 3, 5)))


def test_einsum():
    a, b = R(3, 4), R(4, 5, seed=1)
    sq = R(3, 3, seed=2)
    x, y = R(2, 3, 4), R(2, 4, 5, seed=3)
    v, w = R(3), R(4, seed=4)
    cases = [("ij,jk->ik", (a, b)), ("ij,jk", (a, b)), ("ba", (a,)), ("ii", (sq,)),
             ("ii->i", (sq,)), ("bij,bjk->bik", (x, y)), ("...ij,...jk", (x, y)),
             ("i...->...", (x,)), ("i,j->ij", (v, w)), ("ij->", (a,)), ("ij,ij->ij", (R(1, 4), a))]
    for eq, ops in cases:
        assert_close(torch.einsum(eq, *[t64(o) for o in ops]), np.einsum(eq, *ops),
                     rtol=1e-12, atol=1e-12)
    # list-of-operands form and spaces (the seed's attention energy, typo fixed)
    q, k = R(2, 3, 4, 5), R(2, 6, 4, 5, seed=5)
    assert_close(torch.einsum("nqhd, nkhd->nhqk", [t64(q), t64(k)]),
                 np.einsum("nqhd,nkhd->nhqk", q, k), rtol=1e-12)
    # ... which equals the bmm formulation after a head-major permute
    qb = np.transpose(q, (0, 2, 1, 3)).reshape(8, 3, 5)
    kb = np.transpose(k, (0, 2, 1, 3)).reshape(8, 6, 5)
    assert_close(torch.bmm(t64(qb), t64(kb).permute(0, 2, 1)).reshape(2, 4, 3, 6),
                 np.einsum("nqhd,nkhd->nhqk", q, k), rtol=1e-12)
    assert torch.einsum("i,i", torch.tensor([1, 2]), torch.tensor([3, 4])).item() == 11
    with pytest.raises(RuntimeError):
        torch.einsum("ij,jk->ik", t64(a), t64(a))
    with pytest.raises(RuntimeError):
        torch.einsum("ij,jk->ik", t64(a))
    with pytest.raises(RuntimeError):
        torch.einsum("i,i", torch.ones(2, dtype=torch.float64), torch.ones(2))


def test_inner_tensordot_kron_multi_dot():
    a, b = R(2, 3), R(4, 3, seed=1)
    assert_close(torch.inner(t64(a), t64(b)), np.inner(a, b), rtol=1e-12)
    assert_close(torch.inner(t64(R(2, 2, 3)), t64(b)), np.inner(R(2, 2, 3), b), rtol=1e-12)
    assert_close(torch.inner(t64(a), t64(R(3, seed=2))), np.inner(a, R(3, seed=2)), rtol=1e-12)
    x, y = R(2, 3, 4), R(2, 4, 5, seed=3)
    assert_close(torch.tensordot(t64(x), t64(y), dims=([0, 2], [0, 1])),
                 np.tensordot(x, y, axes=([0, 2], [0, 1])), rtol=1e-12)
    assert_close(torch.kron(torch.tensor([[1, 2], [3, 4]]), torch.tensor([[0, 1], [1, 0]])),
                 np.kron([[1, 2], [3, 4]], [[0, 1], [1, 0]]))
    m = [R(3), R(3, 4, seed=1), R(4, 5, seed=2), R(5, seed=3)]
    assert_close(torch.linalg.multi_dot([t64(z) for z in m]), np.linalg.multi_dot(m), rtol=1e-12)
    assert_close(torch.linalg.vecdot(t64(a), t64(R(3, seed=4))), a @ R(3, seed=4), rtol=1e-12)


def test_norm_seed_t6():
    a = torch.arange(9, dtype=torch.float) - 4
    b = a.reshape(3, 3)
    assert str(a) == "tensor([-4., -3., -2., -1.,  0.,  1.,  2.,  3.,  4.])"
    assert str(b) == "tensor([[-4., -3., -2.],\n        [-1.,  0.,  1.],\n        [ 2.,  3.,  4.]])"
    assert str(torch.norm(a)) == "tensor(7.7460)" and str(torch.norm(b)) == "tensor(7.7460)"
    assert str(torch.norm(a, float("inf"))) == "tensor(4.)"
    assert str(torch.norm(b, float("inf"))) == "tensor(4.)"
    c = torch.tensor([[1, 2, 3], [-1, 1, 4]], dtype=torch.float)
    assert str(torch.norm(c, dim=0)) == "tensor([1.4142, 2.2361, 5.0000])"
    assert torch.norm(c, dim=0).size() == torch.Size([3])
    assert str(torch.norm(c, dim=1)) == "tensor([3.7417, 4.2426])"
    assert str(torch.norm(c, p=1, dim=1)) == "tensor([6., 6.])"


def test_linalg_norms():
    a, x = R(3, 4), R(2, 3, 4, seed=1)
    L = torch.linalg
    assert_close(L.norm(t64(a)), np.linalg.norm(a), rtol=1e-12)
    assert_close(L.norm(t64(x)), np.linalg.norm(x.ravel()), rtol=1e-12)
    for o in (1, -1, 2, -2, float("inf"), float("-inf"), "fro", "nuc"):
        assert_close(L.norm(t64(a), o), np.linalg.norm(a, o), rtol=1e-10)
        assert_close(L.matrix_norm(t64(x), o), np.linalg.norm(x, o, axis=(-2, -1)), rtol=1e-10)
        assert_close(L.matrix_norm(t64(x), o, dim=(0, 2)), np.linalg.norm(x, o, axis=(0, 2)),
                     rtol=1e-10)
        assert_close(L.matrix_norm(t64(x), o, dim=(2, 0), keepdim=True),
                     np.linalg.norm(x, o, axis=(2, 0), keepdims=True), rtol=1e-10)
    for o in (1, 2, 3, 0, float("inf"), float("-inf"), 0.5):
        assert_close(L.vector_norm(t64(x), o, dim=(0, 2)),
                     np.linalg.norm(np.moveaxis(x, 1, 0).reshape(3, -1), o, axis=1), rtol=1e-10)
        assert_close(L.norm(t64(x), o, dim=1), np.linalg.norm(x, o, axis=1), rtol=1e-10)
    assert_close(L.vector_norm(t64(x)), np.linalg.norm(x.ravel()), rtol=1e-12)
    assert L.vector_norm(t64(a), 2, dim=(0, 1), keepdim=True).shape == (1, 1)
    assert_close(L.norm(t64(x), dim=(0, 2)), np.linalg.norm(x, "fro", axis=(0, 2)), rtol=1e-12)
    assert_close(L.norm(t64(x), 2, dim=(0, 2), keepdim=True),
                 np.linalg.norm(x, 2, axis=(0, 2), keepdims=True), rtol=1e-10)
    with pytest.raises(RuntimeError, match="1D or 2D"):
        L.norm(t64(x), 1)
    with pytest.raises(RuntimeError):
        L.norm(t64(a), 3)                        # no matrix 3-norm
    with pytest.raises(RuntimeError):
        L.matrix_norm(t64(R(3)))
    with pytest.raises(RuntimeError):
        L.norm(t64(a), "fro", dim=0)
    with pytest.raises(TypeError):
        L.vector_norm(t64(a), "fro")
    with pytest.raises(RuntimeError):
        L.norm(torch.tensor([3, 4]))


def test_inv_det_solve():
    sq = R(3, 3) + 3 * np.eye(3)
    bsq = R(2, 3, 3, seed=1) + 3 * np.eye(3)
    L = torch.linalg
    assert_close(L.inv(t64(sq)), np.linalg.inv(sq), rtol=1e-10)
    assert_close(L.inv(t64(bsq)), np.linalg.inv(bsq), rtol=1e-10)
    assert_close(torch.inverse(t64(sq)) @ t64(sq), np.eye(3), atol=1e-12)
    assert_close(L.det(t64(sq)), np.linalg.det(sq), rtol=1e-10)
    assert_close(L.det(t64(bsq)), np.linalg.det(bsq), rtol=1e-10)
    assert_close(t64(sq).det(), np.linalg.det(sq), rtol=1e-10)
    assert L.det(torch.zeros(2, 2)).item() == 0.0
    with pytest.raises(L.LinAlgError):
        L.inv(torch.zeros(2, 2))
    assert issubclass(L.LinAlgError, RuntimeError)
    with pytest.raises(RuntimeError):
        L.inv(torch.ones(3, 4))
    with pytest.raises(RuntimeError):
        L.inv(torch.eye(2, dtype=torch.int64))
    b, B = R(3, seed=2), R(3, 2, seed=3)
    assert_close(L.solve(t64(sq), t64(b)), np.linalg.solve(sq, b), rtol=1e-10)
    assert_close(L.solve(t64(sq), t64(B)), np.linalg.solve(sq, B), rtol=1e-10)
    bb = R(2, 3, seed=4)      # same shape as A without its last dim: a batch of vectors
    assert_close(L.solve(t64(bsq), t64(bb)), np.linalg.solve(bsq, bb[..., None])[..., 0], rtol=1e-10)
    assert_close(L.solve(t64(bsq), t64(B)), np.linalg.solve(bsq, B), rtol=1e-10)   # B broadcast
    Bl = R(2, 3, seed=5)
    assert_close(L.solve(t64(sq), t64(Bl), left=False), Bl @ np.linalg.inv(sq), rtol=1e-10)
    with pytest.raises(RuntimeError):
        L.solve(t64(sq), t64(R(4)))
    with pytest.raises(RuntimeError, match="same dtype"):
        L.solve(t64(sq), torch.ones(3))
    with pytest.raises(L.LinAlgError):
        L.solve(torch.zeros(2, 2), torch.ones(2))


def test_svd_qr_eig_seed_001():
    a = R(5, 5)
    L = torch.linalg
    U, S, Vh = L.svd(t64(a))
    assert U.shape == (5, 5) and S.shape == (5,) and Vh.shape == (5, 5)
    assert_close(S, np.linalg.svd(a, compute_uv=False), rtol=1e-10)
    assert_close(U @ torch.diag(S) @ Vh, a, atol=1e-10)
    assert_close(U.mT @ U, np.eye(5), atol=1e-10)
    m = R(3, 4, seed=1)
    U, S, Vh = L.svd(t64(m), full_matrices=False)
    assert (U.shape, S.shape, Vh.shape) == ((3, 3), (3,), (3, 4))
    assert_close(U @ torch.diag(S) @ Vh, m, atol=1e-10)
    assert [tuple(z.shape) for z in L.svd(t64(m))] == [(3, 3), (3,), (4, 4)]
    assert_close(L.svdvals(t64(a)), np.linalg.svd(a, compute_uv=False), rtol=1e-10)
    Q, Rr = L.qr(t64(R(4, 3, seed=2)))
    assert (Q.shape, Rr.shape) == ((4, 3), (3, 3))
    assert_close(Q @ Rr, R(4, 3, seed=2), atol=1e-10)
    assert_close(Q.mT @ Q, np.eye(3), atol=1e-10)
    assert_close(torch.tril(Rr, -1), np.zeros((3, 3)), atol=0)
    Qc, Rc = L.qr(t64(R(4, 3, seed=2)), mode="complete")
    assert (Qc.shape, Rc.shape) == ((4, 4), (4, 3))
    Qr, Rr2 = L.qr(t64(R(4, 3, seed=2)), mode="r")
    assert Qr.shape == (0,)
    assert_close(Rr2, to_np(Rr), atol=1e-12)
    with pytest.raises(RuntimeError):
        L.qr(t64(a), mode="bogus")
    w = L.eigvals(t64(np.array([[0., -1.], [1., 0.]])))
    assert w.dtype == torch.complex128
    assert sorted(to_np(w).tolist(), key=lambda z: z.imag) == [-1j, 1j]
    ev, V = L.eig(t64(a))
    assert ev.dtype == torch.complex128 and V.shape == (5, 5)
    av = a.astype(np.complex128) @ to_np(V)
    assert np.allclose(av, to_np(V) * to_np(ev)[None, :], atol=1e-10)
    assert L.eigvals(torch.tensor(np.diag([1., 2.]), dtype=torch.float32)).dtype == torch.complex64
    spd = a @ a.T + 5 * np.eye(5)
    assert_close(L.eigh(t64(spd)).eigenvalues, np.linalg.eigvalsh(spd), rtol=1e-10)
    Lc = L.cholesky(t64(spd))
    assert_close(Lc @ Lc.mT, spd, atol=1e-10)


def test_trace_cross():
    m = R(3, 4)
    assert torch.trace(t64(m)).item() == pytest.approx(np.trace(m))
    a, b = R(2, 3), R(2, 3, seed=1)
    assert_close(torch.cross(t64(a), t64(b), dim=1), np.cross(a, b), rtol=1e-12)
    assert_close(torch.linalg.cross(t64(R(4, 3)), t64(R(1, 3, seed=2))),
                 np.cross(R(4, 3), R(1, 3, seed=2)), rtol=1e-12)
    with pytest.raises(RuntimeError):
        torch.linalg.cross(torch.ones(2, 4), torch.ones(2, 4))
    with pytest.raises(RuntimeError):
        torch.cross(t64(a), torch.ones(2, 3), dim=1)


@pytest.mark.parametrize("fn", [
    lambda m, x, y: m.matmul(x, y), lambda m, x, y: m.einsum("bij,jk->bik", x, y),
    lambda m, x, y: m.linalg.norm(x, dim=(0, 2)), lambda m, x, y: m.linalg.matrix_norm(x, 2),
    lambda m, x, y: m.linalg.vector_norm(x, 3, dim=-1, keepdim=True),
    lambda m, x, y: m.linalg.solve(x[:, :, :3] + 3 * m.eye(3, dtype=m.float64), y[:3, :2]),
])
def test_matches_torch(fn):
    real = pytest.importorskip("torch")
    x, y = R(2, 3, 4), R(4, 5, seed=1)
    ours = fn(torch, t64(x), t64(y))
    ref = fn(real, real.tensor(x), real.tensor(y))
    assert tuple(ours.shape) == tuple(ref.shape)
    np.testing.assert_allclose(to_np(ours), ref.numpy(), rtol=1e-10, atol=1e-12)


def test_integer_matrices_raise_pytorch_errors():
    # PyTorch 2.13's classes and messages (its scalar-type names: Long)
    x = torch.tensor([[1, 2], [3, 4]])
    for f in ("qr", "svd", "svdvals", "det", "inv", "cholesky", "solve", "matrix_norm"):
        args = (x, x) if f == "solve" else (x,)
        with pytest.raises(RuntimeError, match=f"linalg.{f if f != 'svdvals' else 'svd'}: "
                                               "Expected a floating point or complex tensor as "
                                               "input. Got Long"):
            getattr(torch.linalg, f)(*args)
    with pytest.raises(NotImplementedError, match="\"linalg_eigh_cpu\" not implemented for 'Long'"):
        torch.linalg.eigh(x)
    with pytest.raises(RuntimeError, match=r"linalg.pinv\(Long\{\[2, 2\]\}\): expected a tensor"):
        torch.linalg.pinv(x)
    with pytest.raises(RuntimeError, match="doesn't handle types other than float and double"):
        torch.linalg.matrix_rank(x)
    xf = x.float()                                       # the float versions run
    np.testing.assert_allclose(to_np(torch.linalg.pinv(xf)), [[-2, 1], [1.5, -0.5]], rtol=1e-5)
    assert int(torch.linalg.matrix_rank(xf)) == 2
    np.testing.assert_allclose(to_np(torch.linalg.eigh(xf + xf.T).eigenvalues),
                               [5 - np.sqrt(34), 5 + np.sqrt(34)], rtol=1e-5)


# cholesky (differentiable), cholesky_ex, solve_triangular, triangular_solve, cholesky_inverse

def spd(*batch, n=4, seed=0):
    a = R(*batch, n, n, seed=seed)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def tri(*batch, n=4, upper=False, seed=0):
    a = R(*batch, n, n, seed=seed) + 3 * np.eye(n)
    return np.triu(a) if upper else np.tril(a)


def _scipy_tri(A, B, lower, unit=False):
    """scipy.linalg.solve_triangular over broadcast batch dims (the float64 reference)."""
    sl = pytest.importorskip("scipy.linalg")
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    A = np.broadcast_to(A, batch + A.shape[-2:]).reshape((-1,) + A.shape[-2:])
    B = np.broadcast_to(B, batch + B.shape[-2:]).reshape((-1,) + B.shape[-2:])
    X = np.stack([sl.solve_triangular(a, b, lower=lower, unit_diagonal=unit) for a, b in zip(A, B)])
    return X.reshape(batch + X.shape[-2:])


def test_cholesky_values_upper_batched_and_legacy_forms():
    A = spd(2, 3, n=5)
    ref = np.linalg.cholesky(A)
    assert_close(torch.linalg.cholesky(t64(A)), ref, rtol=1e-12, atol=1e-13)
    assert_close(torch.linalg.cholesky(t64(A), upper=True), np.swapaxes(ref, -1, -2), rtol=1e-12,
                 atol=1e-13)
    assert_close(torch.cholesky(t64(A[0, 0])), ref[0, 0], rtol=1e-12, atol=1e-13)
    assert_close(t64(A[1]).cholesky(upper=True), np.swapaxes(ref[1], -1, -2), rtol=1e-12, atol=1e-13)
    f32 = torch.linalg.cholesky(torch.tensor(A, dtype=torch.float32))
    assert f32.dtype == torch.float32
    assert_close(f32, ref, rtol=1e-4, atol=1e-5)
    # only the lower triangle is read
    garbage = A + np.triu(R(5, 5, seed=9), 1)
    assert_close(torch.linalg.cholesky(t64(garbage)), ref, rtol=1e-12, atol=1e-13)
    assert torch.linalg.cholesky(torch.zeros(2, 0, 0)).shape == (2, 0, 0)


def test_cholesky_gradient_matches_pytorch():
    # values printed by PyTorch 2.13 (cholesky_backward) for this A and upstream gradient
    A = [[4., 2., 1.], [2., 3., 0.5], [1., 0.5, 2.]]
    G = t64([[1., -2., 0.5], [0.3, 1., 2.], [-1., 0.25, 1.5]])
    want = {False: [[0.42091960390501304, -0.12387378220871648, -0.43593085120261943],
                    [-0.12387378220871648, 0.35355339059327373, 0.08838834764831843],
                    [-0.43593085120261943, 0.08838834764831843, 0.5669467095138407]],
            True: [[0.7693492122895702, -0.8535533905932736, -0.3702900679717339],
                   [-0.8535533905932737, 0.35355339059327373, 0.7071067811865475],
                   [-0.3702900679717339, 0.7071067811865475, 0.5669467095138407]]}
    for upper in (False, True):
        a = torch.tensor(A, dtype=torch.float64, requires_grad=True)
        L = torch.linalg.cholesky(a, upper=upper)
        assert type(L.grad_fn).__name__ == "LinalgCholeskyExBackward0"
        (L * G).sum().backward()
        assert_close(a.grad, want[upper], rtol=1e-12, atol=1e-14)
    a = torch.tensor(A, dtype=torch.float64, requires_grad=True)
    assert type(torch.cholesky(a).grad_fn).__name__ == "CholeskyBackward0"
    assert type(a.cholesky().grad_fn).__name__ == "CholeskyBackward0"


def test_cholesky_gradcheck_and_gradgradcheck():
    from framework.autograd import gradcheck, gradgradcheck
    eye = torch.eye(3, dtype=torch.float64)
    for upper in (False, True):
        def f(x, upper=upper):
            return torch.linalg.cholesky(x @ x.mT + 3 * eye, upper=upper)
        x = torch.tensor(R(2, 3, 3, seed=upper), dtype=torch.float64, requires_grad=True)
        assert gradcheck(f, (x,))
        assert gradgradcheck(f, (x,))
    x = torch.tensor(R(3, 3, seed=4), dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda x: torch.linalg.cholesky_ex(x @ x.mT + 3 * eye).L, (x,))


def test_cholesky_errors():
    bad = t64([[1., 0, 0], [0, 2, 3], [0, 3, 1]])
    msg = ("The factorization could not be completed because the input is not positive-definite "
           r"\(the leading minor of order 3 is not positive-definite\).")
    with pytest.raises(torch.linalg.LinAlgError, match="^linalg.cholesky: " + msg):
        torch.linalg.cholesky(bad)
    with pytest.raises(RuntimeError, match=r"^linalg.cholesky: \(Batch element 1\): " + msg):
        torch.linalg.cholesky(torch.stack([torch.eye(3, dtype=torch.float64), bad]))
    with pytest.raises(torch.linalg.LinAlgError, match="^cholesky: " + msg):
        torch.cholesky(bad)
    with pytest.raises(torch.linalg.LinAlgError, match="order 1 is not"):
        torch.linalg.cholesky(-torch.eye(2))
    with pytest.raises(RuntimeError, match="linalg.cholesky: A must be batches of square matrices"):
        torch.linalg.cholesky(torch.ones(2, 3))
    with pytest.raises(RuntimeError, match="linalg.cholesky: Expected a floating point or complex "
                                           "tensor as input. Got Long"):
        torch.linalg.cholesky_ex(torch.eye(2, dtype=torch.int64))
    with pytest.raises(NotImplementedError, match="\"cholesky_cpu\" not implemented for 'Half'"):
        torch.linalg.cholesky(torch.eye(2, dtype=torch.float16))
    a = t64([[1., 2.], [2., 1.]])
    with pytest.raises(torch.linalg.LinAlgError):
        torch.linalg.cholesky(a)
    assert_close(a, [[1., 2.], [2., 1.]], atol=0)                # input unchanged


def test_cholesky_ex_info():
    # PyTorch 2.13: info is the order of the first leading minor that is not positive-definite;
    # L holds the finished columns and the failing pivot's value (LAPACK potrf)
    L, info = torch.linalg.cholesky_ex(torch.tensor([[1., 2.], [2., 1.]]))
    assert info.dtype == torch.int32 and info.shape == () and int(info) == 2
    assert_close(L, [[1., 0.], [2., -3.]], atol=1e-6)
    r = torch.linalg.cholesky_ex(torch.tensor([[1., 0, 0], [0, 2, 3], [0, 3, 1]]))
    assert int(r.info) == 3
    assert_close(r.L, [[1., 0, 0], [0, 2 ** 0.5, 0], [0, 3 / 2 ** 0.5, -3.5]], atol=1e-6)
    batch = torch.stack([torch.eye(3), torch.tensor([[1., 0, 0], [0, 2, 3], [0, 3, 1]]),
                         -torch.eye(3)])
    assert to_np(torch.linalg.cholesky_ex(batch).info).tolist() == [0, 3, 1]
    assert int(torch.linalg.cholesky_ex(torch.tensor([[float("nan"), 0.], [0., 1.]])).info) == 1
    A = spd(2, n=4)
    L, info = torch.linalg.cholesky_ex(t64(A), upper=True)
    assert to_np(info).tolist() == [0, 0]
    assert_close(L, np.swapaxes(np.linalg.cholesky(A), -1, -2), rtol=1e-12, atol=1e-13)
    with pytest.raises(torch.linalg.LinAlgError, match=r"^linalg.cholesky_ex: .*order 3 is not"):
        torch.linalg.cholesky_ex(batch[1], check_errors=True)
    assert to_np(torch.linalg.cholesky_ex(torch.zeros(2, 0, 0)).info).tolist() == [0, 0]


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular_values(upper, unit):
    sa, sb = (2, 1, 5, 5), (3, 5, 2)                          # batch dims broadcast
    A = tri(*sa[:-2], n=5, upper=upper) + np.triu(R(*sa, seed=7), 1) * (not upper) \
        + np.tril(R(*sa, seed=8), -1) * upper               # the other triangle is ignored
    B = R(*sb, seed=1)
    ref = _scipy_tri(np.triu(A) if upper else np.tril(A), B, lower=not upper, unit=unit)
    X = torch.linalg.solve_triangular(t64(A), t64(B), upper=upper, unitriangular=unit)
    assert X.shape == (2, 3, 5, 2)
    assert_close(X, ref, rtol=1e-12, atol=1e-12)
    # X A = B: A^T X^T = B^T
    Bl = R(2, 5, seed=2)
    At = np.tril(A) if not upper else np.triu(A)
    refl = np.swapaxes(_scipy_tri(np.swapaxes(At, -1, -2), Bl.T, lower=upper, unit=unit), -1, -2)
    Xl = torch.linalg.solve_triangular(t64(A), t64(Bl), upper=upper, left=False, unitriangular=unit)
    assert_close(Xl, refl, rtol=1e-12, atol=1e-12)


def test_solve_triangular_large_dtype_singular_and_out():
    # 70 rows: the solve by halves (blocks of 16 rows and fewer) is exercised
    A, B = tri(n=70, seed=3), R(70, 3, seed=4)
    assert_close(torch.linalg.solve_triangular(t64(A), t64(B), upper=False),
                 _scipy_tri(A, B, lower=True), rtol=1e-10, atol=1e-12)
    U = np.swapaxes(tri(2, n=70, seed=5), -1, -2)
    assert_close(torch.linalg.solve_triangular(t64(U), t64(B), upper=True),
                 _scipy_tri(U, B, lower=False), rtol=1e-10, atol=1e-12)
    # the result has A's dtype (PyTorch casts B)
    r = torch.linalg.solve_triangular(torch.tensor(tri(), dtype=torch.float32), t64(R(4, 2)),
                                      upper=False)
    assert r.dtype == torch.float32
    r = torch.linalg.solve_triangular(t64(tri()), torch.tensor(R(4, 2), dtype=torch.float32),
                                      upper=False)
    assert r.dtype == torch.float64
    # a zero pivot gives inf, as LAPACK's trtrs does, not an error
    x = torch.linalg.solve_triangular(torch.tensor([[0., 0.], [1., 1.]]), torch.ones(2, 1),
                                      upper=False)
    assert to_np(x).ravel().tolist() == [float("inf"), float("-inf")]
    o = torch.empty(0, dtype=torch.float64)
    torch.linalg.solve_triangular(t64(tri()), t64(R(4, 2)), upper=False, out=o)
    assert_close(o, _scipy_tri(tri(), R(4, 2), lower=True), rtol=1e-12)
    assert torch.linalg.solve_triangular(torch.zeros(0, 0), torch.zeros(0, 2), upper=True).shape == (0, 2)


def test_solve_triangular_gradient_matches_pytorch():
    # PyTorch 2.13: B_bar = A^-T X_bar, A_bar = -B_bar X^T kept on A's triangle
    L = torch.tensor([[2., 0., 0.], [1., 3., 0.], [0.5, -1., 4.]], dtype=torch.float64,
                     requires_grad=True)
    B = torch.tensor([[1., 2.], [3., -1.], [0.5, 0.25]], dtype=torch.float64, requires_grad=True)
    X = torch.linalg.solve_triangular(L, B, upper=False)
    assert type(X.grad_fn).__name__ == "LinalgSolveTriangularBackward0"
    assert_close(X, [[0.5, 1.0], [0.8333333333333333, -0.6666666666666666],
                     [0.2708333333333333, -0.22916666666666666]], rtol=1e-14)
    (X * t64([[1., -2.], [0.3, 1.], [-1., 0.25]])).sum().backward()
    assert_close(L.grad, [[0.915625, 0., 0.], [-0.3625, 0.22222222222222218, 0.],
                          [0.0625, 0.25, 0.08203125]], rtol=1e-12, atol=1e-15)
    assert_close(B.grad, [[0.5541666666666667, -1.1927083333333333],
                          [0.016666666666666663, 0.35416666666666663], [-0.25, 0.0625]],
                 rtol=1e-12)
    # unitriangular: the diagonal is not read, so it gets no gradient (PyTorch: [[0, 0], [-2, 0]])
    a = torch.tensor([[2., 1.], [0.5, 3.]], dtype=torch.float64, requires_grad=True)
    torch.linalg.solve_triangular(a, torch.ones(2, 2, dtype=torch.float64), upper=False,
                                  unitriangular=True).sum().backward()
    assert to_np(a.grad).tolist() == [[0., 0.], [-2., 0.]]


def test_solve_triangular_gradcheck_and_gradgradcheck():
    from framework.autograd import gradcheck, gradgradcheck
    A = torch.tensor(tri(2, 1, n=3, upper=True, seed=1), requires_grad=True)
    B = torch.tensor(R(3, 3, 2, seed=2), requires_grad=True)
    for left in (True, False):
        for unit in (False, True):
            def f(a, b, left=left, unit=unit):
                return torch.linalg.solve_triangular(a, b if left else b.mT, upper=True, left=left,
                                                     unitriangular=unit)
            assert gradcheck(f, (A, B))
            assert gradgradcheck(f, (A, B))


def test_solve_triangular_errors():
    st = torch.linalg.solve_triangular
    with pytest.raises(RuntimeError, match="linalg.solve_triangular: A must be batches of square"):
        st(torch.ones(2, 3), torch.ones(2, 2), upper=False)
    with pytest.raises(RuntimeError, match=r"Incompatible shapes of A and B for the equation "
                                           r"AX = B \(3x3 and 2x2\)"):
        st(torch.ones(3, 3), torch.ones(2, 2), upper=False)
    with pytest.raises(RuntimeError, match=r"equation XA = B \(3x3 and 3x2\)"):
        st(torch.ones(3, 3), torch.ones(3, 2), upper=False, left=False)
    with pytest.raises(RuntimeError, match="The input tensor B must have at least 2 dimensions"):
        st(torch.ones(3, 3), torch.ones(3), upper=False)
    with pytest.raises(NotImplementedError, match="\"triangular_solve_cpu\" not implemented for 'Long'"):
        st(torch.ones(3, 3, dtype=torch.int64), torch.ones(3, 2, dtype=torch.int64), upper=False)
    with pytest.raises(RuntimeError, match="must match the size"):
        st(torch.ones(2, 3, 3), torch.ones(3, 3, 2), upper=False)
    with pytest.raises(TypeError):
        st(torch.ones(3, 3), torch.ones(3, 2))                    # upper is required


def test_triangular_solve_legacy():
    U, B = tri(2, n=4, upper=True, seed=1), R(4, 3, seed=2)
    r = torch.triangular_solve(t64(B), t64(U))
    assert type(r).__name__ == "triangular_solve" and r._fields == ("solution", "cloned_coefficient")
    assert_close(r.solution, _scipy_tri(U, B, lower=False), rtol=1e-12, atol=1e-12)
    assert_close(r.cloned_coefficient, U, atol=0)
    L = tri(n=4, seed=3)
    x, c = torch.triangular_solve(t64(B), t64(L), upper=False, transpose=True)
    assert_close(x, _scipy_tri(L.T, B, lower=False), rtol=1e-12, atol=1e-12)
    x, c = t64(B).triangular_solve(t64(L), upper=False, unitriangular=True)
    assert_close(x, _scipy_tri(L, B, lower=True, unit=True), rtol=1e-12, atol=1e-12)
    # batch dims broadcast; the copy of A has the broadcast batch shape
    x, c = torch.triangular_solve(t64(R(2, 4, 3, seed=4)), t64(L), upper=False)
    assert x.shape == (2, 4, 3) and c.shape == (2, 4, 4)
    a = torch.tensor(U[0], requires_grad=True)
    b = torch.tensor(B, requires_grad=True)
    s = torch.triangular_solve(b, a, transpose=True)
    assert type(s.solution.grad_fn).__name__ == "TriangularSolveBackward0"
    from framework.autograd import gradcheck
    assert gradcheck(lambda a, b: torch.triangular_solve(b, a, transpose=True), (a, b))
    with pytest.raises(RuntimeError, match="Expected b to have at least 2 dimensions"):
        torch.triangular_solve(torch.ones(3), torch.eye(3))
    with pytest.raises(RuntimeError, match="A must be batches of square matrices, but they are 3 by 4"):
        torch.triangular_solve(torch.ones(3, 2), torch.ones(3, 4))
    with pytest.raises(RuntimeError, match="Incompatible matrix sizes for triangular_solve: each A "
                                           "matrix is 3 by 3 but each b matrix is 2 by 2"):
        torch.triangular_solve(torch.ones(2, 2), torch.ones(3, 3))
    with pytest.raises(RuntimeError, match="Expected b and A to have the same dtype"):
        torch.triangular_solve(torch.ones(3, 1, dtype=torch.float64), torch.eye(3))
    with pytest.raises(NotImplementedError, match="triangular_solve_cpu"):
        torch.triangular_solve(torch.ones(3, 2, dtype=torch.int64), torch.ones(3, 3, dtype=torch.int64))


def test_cholesky_inverse():
    L = tri(2, n=4, seed=6)
    ref = np.linalg.inv(L @ np.swapaxes(L, -1, -2))
    assert_close(torch.cholesky_inverse(t64(L)), ref, rtol=1e-11, atol=1e-13)
    assert_close(t64(L[0]).cholesky_inverse(), ref[0], rtol=1e-11, atol=1e-13)
    Ut = np.swapaxes(L, -1, -2)
    assert_close(torch.cholesky_inverse(t64(Ut), upper=True), ref, rtol=1e-11, atol=1e-13)
    # only the triangle is read (PyTorch 2.13 agrees); printed by PyTorch:
    Lf = t64([[2., 0., 0.], [1., 3., 0.], [0.5, -1., 4.]])
    want = [[0.2886284722222222, -0.0642361111111111, -0.026041666666666664],
            [-0.0642361111111111, 0.11805555555555555, 0.020833333333333332],
            [-0.026041666666666664, 0.020833333333333332, 0.0625]]
    assert_close(torch.cholesky_inverse(Lf), want, rtol=1e-13)
    assert_close(torch.cholesky_inverse(Lf + torch.triu(t64(R(3, 3)), 1)), want, rtol=1e-13)
    # through cholesky: the inverse of A, and a gradient that checks
    A = spd(n=3, seed=2)
    assert_close(torch.cholesky_inverse(torch.linalg.cholesky(t64(A))), np.linalg.inv(A), rtol=1e-11)
    from framework.autograd import gradcheck, gradgradcheck
    x = torch.tensor(R(3, 3, seed=3), requires_grad=True)
    eye = torch.eye(3, dtype=torch.float64)
    f = lambda x: torch.cholesky_inverse(torch.linalg.cholesky(x @ x.mT + 3 * eye))   # noqa: E731
    assert gradcheck(f, (x,))
    assert_close(f(x), np.linalg.inv(to_np(x.detach()) @ to_np(x.detach()).T + 3 * np.eye(3)),
                 rtol=1e-11)
    l = torch.tensor(tri(n=3, upper=True, seed=4), requires_grad=True)
    assert gradcheck(lambda l: torch.cholesky_inverse(l, upper=True), (l,))
    assert gradgradcheck(lambda l: torch.cholesky_inverse(l, upper=True), (l,))
    assert type(torch.cholesky_inverse(l).grad_fn).__name__ == "CholeskyInverseBackward0"
    with pytest.raises(RuntimeError, match="cholesky_inverse: A must be batches of square"):
        torch.cholesky_inverse(torch.ones(2, 3))
    with pytest.raises(RuntimeError, match="cholesky_inverse: The input tensor A must have at "
                                           "least 2 dimensions"):
        torch.cholesky_inverse(torch.ones(2))
    with pytest.raises(NotImplementedError, match="\"cholesky_inverse_out_cpu\" not implemented "
                                                  "for 'Long'"):
        torch.cholesky_inverse(torch.ones(2, 2, dtype=torch.int64))


def _tri_fn(A, B, C):
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    L = torch.linalg.cholesky(A @ A.mT + 3 * eye)
    X = torch.linalg.solve_triangular(L, B, upper=False)
    Y = torch.linalg.solve_triangular(L.mT, C, upper=True, left=False, unitriangular=True)
    return (X * X).sum() + torch.cholesky_inverse(L).sum() + (Y * Y).sum() + \
        torch.linalg.cholesky_ex(A @ A.mT + eye).L.sum()


def _tri_inputs(dev, seed):
    return [torch.tensor(R(*s, seed=seed + k), device=dev, requires_grad=True)
            for k, s in enumerate([(2, 4, 4), (4, 3), (3, 4)])]


def test_compile_matches_eager():
    eager = _tri_inputs(None, 1)
    want = _tri_fn(*eager)
    want.backward()
    comp = _tri_inputs(None, 1)
    f = torch.compile(_tri_fn)
    got = f(*comp)
    got.backward()
    assert not f.graph_break_reasons()                  # one graph, the ops in it
    assert {"cholesky", "solve_triangular"} <= {n.op for g in f.graphs() for n in g.nodes}
    assert_close(got, to_np(want.detach()), rtol=1e-12)
    for c, e in zip(comp, eager):
        assert_close(c.grad, to_np(e.grad), rtol=1e-10, atol=1e-12)


def test_interpret_device_matches_cpu():
    res = {}
    for dev in ("cpu", "interpret"):
        xs = _tri_inputs(dev, 3)
        out = _tri_fn(*xs)
        assert out.device.type == dev
        out.backward()
        info = torch.linalg.cholesky_ex(torch.tensor([[1., 2.], [2., 1.]], device=dev)).info
        res[dev] = [to_np(out.detach()), to_np(info)] + [to_np(x.grad) for x in xs]
        with pytest.raises(torch.linalg.LinAlgError, match="order 2 is not positive-definite"):
            torch.linalg.cholesky(torch.tensor([[1., 2.], [2., 1.]], device=dev))
    for c, i in zip(res["cpu"], res["interpret"]):
        np.testing.assert_allclose(i, c, rtol=1e-12, atol=1e-12)


# ---- ormqr: Q (packed by geqrf) times a matrix, against LAPACK's ormqr / unmqr -----------------

def _lapack_ormqr(qr, tau, c, left, transpose):
    from scipy.linalg import lapack
    k = tau.shape[-1]
    f = lapack.get_lapack_funcs("unmqr" if np.iscomplexobj(qr) else "ormqr", (qr,))
    trans = ("C" if np.iscomplexobj(qr) else "T") if transpose else "N"
    out, _, info = f("L" if left else "R", trans, np.asfortranarray(qr[:, :k]), tau,
                     np.asfortranarray(c), lwork=64 * max(c.shape + (1,)))
    assert info == 0
    return out


ORMQR_CASES = [((5, 3), np.float64), ((3, 5), np.float64), ((2, 4, 4), np.complex128),
               ((6, 2), np.float32), ((2, 1, 4, 3), np.complex64)]


@pytest.mark.parametrize("shape, dtype", ORMQR_CASES, ids=[f"{s}-{np.dtype(d).name}"
                                                           for s, d in ORMQR_CASES])
def test_ormqr_matches_lapack(shape, dtype):
    from scipy.linalg import lapack
    r = np.random.default_rng(shape[-1] + len(shape))
    def draw(s):
        a = r.standard_normal(s)
        return (a + 1j * r.standard_normal(s) if np.dtype(dtype).kind == "c" else a).astype(dtype)
    a = draw(shape)
    m = shape[-2]
    qr, tau = np.empty_like(a), np.empty(shape[:-2] + (min(shape[-2:]),), dtype)
    geqrf = lapack.get_lapack_funcs("geqrf", (a,))
    for idx in np.ndindex(*shape[:-2]):
        qr[idx], tau[idx] = geqrf(a[idx])[:2]
    tol = 1e-4 if dtype in (np.float32, np.complex64) else 1e-12
    for left in (True, False):
        c = draw(shape[:-2] + ((m, 3) if left else (2, m)))
        for transpose in (False, True):
            got = torch.ormqr(torch.tensor(qr), torch.tensor(tau), torch.tensor(c), left=left,
                              transpose=transpose)
            assert got.dtype == torch.tensor(c).dtype and tuple(got.shape) == c.shape
            want = np.empty_like(c)
            for idx in np.ndindex(*shape[:-2]):
                want[idx] = _lapack_ormqr(qr[idx], tau[idx], c[idx], left, transpose)
            np.testing.assert_allclose(to_np(got), want, rtol=tol, atol=tol)
    # Q applied to the identity is unitary, and Q R rebuilds the matrix (R from the packed form)
    eye = np.broadcast_to(np.eye(m, dtype=dtype), shape[:-2] + (m, m)).copy()
    q = to_np(torch.tensor(qr).ormqr(torch.tensor(tau), torch.tensor(eye)))
    np.testing.assert_allclose(q.conj().swapaxes(-1, -2) @ q, eye, atol=10 * tol)
    np.testing.assert_allclose(q @ np.triu(qr), a, rtol=10 * tol, atol=10 * tol)


def test_ormqr_gradcheck():
    from framework.autograd import gradcheck
    r = np.random.default_rng(7)
    a, tau = torch.geqrf(t64(r.standard_normal((2, 3, 2))))
    cl, cr = r.standard_normal((2, 3, 1)), r.standard_normal((2, 1, 3))
    for left, c in ((True, cl), (False, cr)):
        for transpose in (False, True):
            ins = (a.detach().requires_grad_(), tau.detach().requires_grad_(),
                   t64(c).requires_grad_())
            assert gradcheck(lambda x, t, o: torch.ormqr(x, t, o, left, transpose), ins)
    z = r.standard_normal((3, 2)) + 1j * r.standard_normal((3, 2))
    za, zt = torch.geqrf(torch.tensor(z))
    zc = torch.tensor(r.standard_normal((3, 1)) + 1j * r.standard_normal((3, 1)),
                      requires_grad=True)
    assert gradcheck(lambda x, t, o: torch.ormqr(x, t, o, transpose=True),
                     (za.detach().requires_grad_(), zt.detach().requires_grad_(), zc))


def test_ormqr_bad_input():
    # messages as PyTorch 2.13 prints them (its "dtypeDouble" included)
    a, tau, c = t64(R(5, 3)), t64(R(3)), t64(R(5, 4))
    bad = [
        (lambda: torch.ormqr(t64(R(5)), tau, c), "input must have at least 2 dimensions"),
        (lambda: torch.ormqr(a, tau, t64(R(5))), "other must have at least 2 dimensions"),
        (lambda: torch.ormqr(a, tau, t64(R(4, 5))),
         r"other.shape\[-2\] must be equal to input.shape\[-2\]"),
        (lambda: torch.ormqr(a, tau, c, left=False),
         r"other.shape\[-1\] must be equal to input.shape\[-2\]"),
        (lambda: torch.ormqr(a, t64(R(2)), c),
         r"tau.shape\[-1\] must be equal to min\(other.shape\[-2\], input.shape\[-1\]\)"),
        (lambda: torch.ormqr(a, t64(R(3, 3)), c),
         "Expected tau to have one dimension less than input, but got tau.ndim equal to 2 and "
         "input.ndim is equal to 2"),
        (lambda: torch.ormqr(t64(R(2, 5, 3)), t64(R(2, 3)), c),
         "Expected other to have the same number of dimensions as input, but got other.ndim "
         "equal to 2 and input.ndim is equal to 3"),
        (lambda: torch.ormqr(t64(R(2, 5, 3)), t64(R(3, 3)), t64(R(3, 5, 4))),
         r"Expected batch dimensions of tau to be equal to input.shape\[:-2\], but got \[3\]"),
        (lambda: torch.ormqr(t64(R(2, 5, 3)), t64(R(2, 3)), t64(R(3, 5, 4))),
         r"Expected batch dimensions of other to be equal to input.shape\[:-2\], but got \[3\]"),
        (lambda: torch.ormqr(a, tau.float(), c),
         "Expected input and tau to have the same dtype, but input has dtypeDouble and tau has "
         "dtype Float"),
        (lambda: torch.ormqr(a.float(), tau.float(), c),
         "Expected input and other to have the same dtype, but input has dtypeFloat and other "
         "has dtype Double"),
    ]
    for f, msg in bad:
        with pytest.raises(RuntimeError, match="torch.ormqr: " + msg):
            f()
    with pytest.raises(NotImplementedError, match="\"ormqr_cpu\" not implemented for 'Int'"):
        torch.ormqr(a.cpu().int(), tau.cpu().int(), c.cpu().int())
    # empty: no reflectors leave other unchanged; an empty other stays empty
    assert_close(torch.ormqr(t64(R(5, 0)), t64(R(0)), c), to_np(c), rtol=0, atol=0)
    assert tuple(torch.ormqr(a, tau, t64(R(5, 0))).shape) == (5, 0)
    out = torch.empty(5, 4, dtype=torch.float64)
    assert torch.ormqr(a, tau, c, out=out) is out
    assert_close(out, to_np(torch.ormqr(a, tau, c)), rtol=0, atol=0)
