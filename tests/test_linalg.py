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
    with pytest.raises(RuntimeError):
        torch.bmm(t64(x), t64(y[:1]))          # bmm does not broadcast
    with pytest.raises(RuntimeError):
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
