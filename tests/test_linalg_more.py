"""Linear algebra added for PyTorch parity: LU (factor, unpack, solve), slogdet/logdet,
matrix_power, matrix_exp, pinv/pinverse, chain_matmul, cholesky_solve, lstsq, cond, inv_ex,
solve_ex, tensorinv, tensorsolve, linalg.diagonal, householder_product/orgqr. References:
NumPy/SciPy float64 and values printed by PyTorch 2.13."""
import numpy as np
import pytest
import scipy.linalg as sl

import framework as torch
from framework.autograd import gradcheck
from tests.conftest import assert_close, to_np

F64 = torch.float64
rng = np.random.default_rng(1)
L = torch.linalg


def T(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), dtype=F64, requires_grad=grad)


def sq(n, batch=(), seed=0):
    r = np.random.default_rng(seed)
    return r.uniform(-1, 1, batch + (n, n)) + 2 * np.eye(n)


def test_lu_factor_matches_scipy_and_torch():
    a = rng.standard_normal((2, 4, 4))
    LU, piv = L.lu_factor(T(a))
    assert piv.dtype == torch.int32
    for k in range(2):
        lu, p = sl.lu_factor(a[k])
        assert_close(LU[k], lu, rtol=1e-12, atol=1e-12)
        assert to_np(piv[k]).tolist() == (p + 1).tolist()
    r = L.lu_factor(torch.tensor([[1., 2.], [3., 4.]]))                  # torch-printed
    assert_close(r.LU, [[3., 4.], [1 / 3, 2 / 3]])
    assert to_np(r.pivots).tolist() == [2, 2]
    ex = L.lu_factor_ex(torch.zeros(2, 2))
    assert to_np(ex.pivots).tolist() == [1, 2] and ex.info.item() == 1
    # PyTorch 2.13: a plain RuntimeError here (not a LinAlgError), and "lu_cpu" for integers
    with pytest.raises(RuntimeError, match=r"U\[1,1\] is zero and using it on lu_solve") as e:
        L.lu_factor(torch.zeros(2, 2))
    assert not isinstance(e.value, L.LinAlgError)
    with pytest.raises(NotImplementedError, match="\"lu_cpu\" not implemented for 'Long'"):
        L.lu_factor(torch.ones(2, 2, dtype=torch.int64))
    LU3, piv3, info3 = torch.lu(torch.tensor([[1., 2.], [3., 4.]]), get_infos=True)
    assert info3.item() == 0 and to_np(piv3).tolist() == [2, 2]


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 3, 3)])
def test_linalg_lu_and_unpack(shape):
    a = rng.standard_normal(shape)
    P, Lm, U = L.lu(T(a))
    assert_close(P @ Lm @ U, a, rtol=1e-12, atol=1e-12)
    if len(shape) == 2:
        p, l, u = sl.lu(a)
        assert_close(P, p)
        assert_close(Lm, l, rtol=1e-12, atol=1e-12)
        assert_close(U, u, rtol=1e-12, atol=1e-12)
    P2, L2, U2 = torch.lu_unpack(*L.lu_factor(T(a)))
    assert_close(P2, to_np(P))
    assert_close(L2, to_np(Lm))
    with pytest.raises(RuntimeError, match="LU_pivots is expected to be a contiguous tensor of "
                                           "torch.int32"):
        torch.lu_unpack(T(a), torch.ones(min(shape[-2:]), dtype=torch.int64))


def test_lu_solve_and_gradients():
    a, b = sq(4, seed=2), rng.standard_normal((4, 2))
    LU, piv = L.lu_factor(T(a))
    assert_close(L.lu_solve(LU, piv, T(b)), np.linalg.solve(a, b), rtol=1e-10)
    assert_close(L.lu_solve(LU, piv, T(b), adjoint=True), np.linalg.solve(a.T, b), rtol=1e-10)
    assert_close(L.lu_solve(LU, piv, T(b.T), left=False), np.linalg.solve(a.T, b).T, rtol=1e-10)
    assert_close(torch.lu_solve(T(b), LU, piv), np.linalg.solve(a, b), rtol=1e-10)
    assert_close(T(b).lu_solve(LU, piv), np.linalg.solve(a, b), rtol=1e-10)
    with pytest.raises(RuntimeError, match="Incompatible shapes of A and B"):
        L.lu_solve(LU, piv, T(np.ones((3, 1))))
    assert gradcheck(lambda x, y: L.lu_solve(*L.lu_factor(x), y), (T(a, True), T(b, True)))
    assert gradcheck(lambda x: L.lu(x).U + L.lu(x).L, (T(sq(3, seed=3), True),))


def test_slogdet_logdet():
    a = sq(4, (3,), seed=4)
    a[1] = -a[1][[1, 0, 2, 3]]
    s, l = L.slogdet(T(a))
    ws, wl = np.linalg.slogdet(a)
    assert_close(s, ws)
    assert_close(l, wl, rtol=1e-12)
    s2, l2 = torch.slogdet(T(a))
    assert_close(l2, wl, rtol=1e-12)
    big = np.eye(200) * 10.0                                    # det overflows, logdet does not
    assert_close(L.slogdet(T(big)).logabsdet, 200 * np.log(10.0), rtol=1e-12)
    ld = torch.logdet(T(a))
    w = np.where(ws < 0, np.nan, wl)
    np.testing.assert_allclose(to_np(ld), w, rtol=1e-12)
    assert torch.logdet(torch.zeros(2, 2)).item() == float("-inf")
    assert np.isnan(torch.tensor([[0., 1.], [1., 0.]]).logdet().item())
    with pytest.raises(RuntimeError, match="A must be batches of square matrices"):
        torch.slogdet(torch.ones(2, 3))
    assert gradcheck(lambda x: L.slogdet(x).logabsdet, (T(sq(3, (2,), seed=5), True),))
    assert gradcheck(torch.logdet, (T(sq(3, seed=6) + 2 * np.eye(3), True),))


def test_matrix_power():
    a = sq(3, seed=7)
    for n in (0, 1, 2, 5, -1, -3):
        assert_close(torch.matrix_power(T(a), n), np.linalg.matrix_power(a, n), rtol=1e-10)
    assert_close(L.matrix_power(T(a), 3), np.linalg.matrix_power(a, 3), rtol=1e-12)
    ai = torch.tensor([[1, 1], [1, 0]])
    r = ai.matrix_power(10)
    assert r.dtype == torch.int64 and to_np(r).tolist() == [[89, 55], [55, 34]]
    with pytest.raises(RuntimeError, match="A must be batches of square matrices"):
        torch.matrix_power(torch.ones(2, 3), 2)
    with pytest.raises(RuntimeError, match="Expected a floating point"):
        torch.matrix_power(ai, -1)
    assert gradcheck(lambda x: torch.matrix_power(x, 3), (T(a, True),))
    assert gradcheck(lambda x: L.matrix_power(x, -2), (T(a, True),))


def test_matrix_exp():
    for a in (rng.standard_normal((4, 4)), 30 * rng.standard_normal((3, 3)), np.zeros((2, 2)),
              np.array([[0., 1e-3], [0., 0.]])):
        assert_close(L.matrix_exp(T(a)), sl.expm(a), rtol=1e-10, atol=1e-12)
    b = rng.standard_normal((2, 3, 3)) * [[[1.]], [[8.]]]
    assert_close(torch.matrix_exp(T(b)), np.stack([sl.expm(m) for m in b]), rtol=1e-10)
    assert_close(T(b[0]).matrix_exp(), sl.expm(b[0]), rtol=1e-10)
    r32 = L.matrix_exp(torch.tensor([[0., 1.], [-1., 0.]]))
    assert r32.dtype == torch.float32
    assert_close(r32, [[np.cos(1), np.sin(1)], [-np.sin(1), np.cos(1)]], rtol=1e-6)
    with pytest.raises(RuntimeError, match="Expected a square matrix"):
        L.matrix_exp(torch.ones(2, 3))
    assert gradcheck(L.matrix_exp, (T(rng.standard_normal((3, 3)), True),))


def test_pinv_pinverse_chain_matmul_cholesky_solve():
    a = rng.standard_normal((5, 3))
    assert_close(L.pinv(T(a)), np.linalg.pinv(a), rtol=1e-10)
    assert_close(torch.pinverse(T(a)), np.linalg.pinv(a), rtol=1e-10)
    assert_close(T(a.T).pinverse(), np.linalg.pinv(a.T), rtol=1e-10)
    d = np.diag([1., 1e-10, 0.])
    assert_close(L.pinv(T(d), atol=1e-8), np.diag([1., 0., 0.]))
    assert_close(L.pinv(T(d), rtol=1e-12), np.linalg.pinv(d, rcond=1e-12), rtol=1e-10)
    assert gradcheck(L.pinv, (T(a, True),))
    assert gradcheck(torch.pinverse, (T(a.T, True),))
    ms = [rng.standard_normal(s) for s in ((2, 3), (3, 4), (4, 2))]
    with pytest.warns(UserWarning, match="chain_matmul is deprecated"):
        assert_close(torch.chain_matmul(*[T(m) for m in ms]), ms[0] @ ms[1] @ ms[2], rtol=1e-12)
    spd = sq(3, seed=8)
    spd = spd @ spd.T
    c = np.linalg.cholesky(spd)
    b = rng.standard_normal((3, 2))
    assert_close(torch.cholesky_solve(T(b), T(c)), np.linalg.solve(spd, b), rtol=1e-10)
    assert_close(T(b).cholesky_solve(T(c.T), upper=True), np.linalg.solve(spd, b), rtol=1e-10)
    assert gradcheck(lambda bb, cc: torch.cholesky_solve(bb, cc), (T(b, True), T(c, True)))


def test_lstsq_drivers_as_torch_fills_them():
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    sol, res, rank, sv = np.linalg.lstsq(a, b, rcond=None)
    for drv in ("gelsy", "gelsd", "gelss", "gels", None):
        r = L.lstsq(T(a), T(b), driver=drv)
        assert_close(r.solution, sol, rtol=1e-10)
        if drv in ("gelsd", "gelss", "gels"):
            assert_close(r.residuals, res, rtol=1e-10)
        else:
            assert tuple(r.residuals.shape) == (0,)
        if drv == "gels":
            assert tuple(r.rank.shape) == (0,) and r.rank.dtype == torch.int64
        else:
            assert r.rank.item() == 3
        if drv in ("gelsd", "gelss"):
            assert_close(r.singular_values, sv, rtol=1e-10)
        else:
            assert tuple(r.singular_values.shape) == (0,)
    wide = L.lstsq(T(a.T), T(b[:3]), driver="gelsd")                  # minimum-norm solution
    assert_close(wide.solution, np.linalg.pinv(a.T) @ b[:3], rtol=1e-10)
    assert tuple(wide.residuals.shape) == (0,)
    defic = L.lstsq(T(np.repeat(a[:, :1], 3, 1)), T(b), driver="gelsd")
    assert defic.rank.item() == 1 and tuple(defic.residuals.shape) == (0,)
    with pytest.raises(RuntimeError, match="parameter `driver` should be one of"):
        L.lstsq(T(a), T(b), driver="foo")
    assert gradcheck(lambda x, y: L.lstsq(x, y).solution, (T(a, True), T(b, True)))


def test_cond_inv_ex_solve_ex():
    a = sq(4, (2,), seed=9)
    for p in (None, 2, -2, "fro", "nuc", 1, -1, float("inf"), float("-inf")):
        assert_close(L.cond(T(a), p), np.linalg.cond(a, p), rtol=1e-10)
    assert L.cond(torch.zeros(2, 2), 1).item() == float("inf")
    with pytest.raises(RuntimeError, match="invalid norm type"):
        L.cond(T(a), 3)
    assert gradcheck(lambda x: L.cond(x), (T(a[0], True),))
    assert gradcheck(lambda x: L.cond(x, "fro"), (T(a[0], True),))
    inv, info = L.inv_ex(T(a))
    assert_close(inv, np.linalg.inv(a), rtol=1e-10)
    assert to_np(info).tolist() == [0, 0] and info.dtype == torch.int32
    assert L.inv_ex(torch.zeros(2, 2)).info.item() == 1
    with pytest.raises(L.LinAlgError, match="singular"):
        L.inv_ex(torch.zeros(2, 2), check_errors=True)
    b = rng.standard_normal((2, 4, 3))
    res, info = L.solve_ex(T(a), T(b))
    assert_close(res, np.linalg.solve(a, b), rtol=1e-10)
    v = rng.standard_normal(4)
    assert_close(L.solve_ex(T(a[0]), T(v)).result, np.linalg.solve(a[0], v), rtol=1e-10)
    assert gradcheck(lambda x: L.inv_ex(x).inverse, (T(a[0], True),))
    assert gradcheck(lambda x, y: L.solve_ex(x, y)[0], (T(a[0], True), T(b[0], True)))


def test_tensorinv_tensorsolve_diagonal_householder():
    a = sq(6, seed=10).reshape(6, 2, 3)
    assert_close(L.tensorinv(T(a), ind=1), np.linalg.tensorinv(a, ind=1), rtol=1e-10)
    a4 = sq(6, seed=11).reshape(2, 3, 6)
    assert_close(L.tensorinv(T(a4)), np.linalg.tensorinv(a4), rtol=1e-10)
    with pytest.raises(RuntimeError, match="prod\\(self.shape\\[ind:\\]\\) == prod"):
        L.tensorinv(T(np.ones((2, 3, 4))))
    A = sq(6, seed=12).reshape(2, 3, 2, 3)
    B = rng.standard_normal((2, 3))
    assert_close(L.tensorsolve(T(A), T(B)), np.linalg.tensorsolve(A, B), rtol=1e-10)
    A3 = sq(6, seed=13).reshape(2, 3, 2, 3)
    B3 = rng.standard_normal((3, 2))
    assert_close(L.tensorsolve(T(A3), T(B3), dims=(0,)),
                 np.linalg.tensorsolve(A3, B3, axes=(0,)), rtol=1e-10)
    x = rng.standard_normal((2, 3, 4))
    assert_close(L.diagonal(T(x)), np.diagonal(x, 0, -2, -1))
    assert_close(L.diagonal(T(x), offset=1, dim1=0, dim2=2), np.diagonal(x, 1, 0, 2))
    m = rng.standard_normal((5, 3))
    (qr_packed, tau), _ = sl.qr(m, mode="raw")
    q = np.linalg.qr(m)[0]
    hp = L.householder_product(T(qr_packed), T(tau))
    assert_close(hp, sl.qr(m, mode="economic")[0], rtol=1e-10)
    assert_close(torch.orgqr(T(qr_packed), T(tau)), q * np.sign(np.diag(q))[None] *
                 np.sign(np.diag(to_np(hp)))[None], rtol=1e-10)
    with pytest.raises(RuntimeError, match="must be greater than or equal to input.shape\\[-1\\]"):
        L.householder_product(T(np.ones((2, 3))), T(np.ones(2)))
    assert gradcheck(L.householder_product, (T(qr_packed, True), T(tau, True)))


def _few():
    return [lambda x: L.slogdet(x).logabsdet, lambda x: L.matrix_exp(x),
            lambda x: L.lu_solve(*L.lu_factor(x), x[..., :1]), lambda x: L.pinv(x),
            lambda x: torch.matrix_power(x, 3)]


def test_compile_matches_eager():
    a = sq(3, (2,), seed=14)
    for f in _few():
        e = f(T(a))
        c = torch.compile(f)(T(a))
        assert_close(c, to_np(e), rtol=1e-10, atol=1e-12)
    x1, x2 = T(a, True), T(a, True)
    L.matrix_exp(x1).sum().backward()
    torch.compile(lambda x: L.matrix_exp(x).sum())(x2).backward()
    assert_close(x2.grad, to_np(x1.grad), rtol=1e-10)


def test_interpret_device_matches_cpu():
    a = sq(3, (2,), seed=15)
    for f in _few():
        c = f(T(a))
        i = f(torch.tensor(a, device="interpret"))
        assert i.device.type == "interpret"
        np.testing.assert_allclose(to_np(i), to_np(c), rtol=1e-12, atol=1e-12)


def test_eigh_and_eigvalsh_gradients_match_pytorch():
    # values printed by torch 2.13 (LinalgEighBackward0)
    A = np.random.default_rng(0).standard_normal((4, 4))
    a = torch.tensor(A + A.T, requires_grad=True)
    w, v = torch.linalg.eigh(a)
    assert type(w.grad_fn).__name__ == "LinalgEighBackward0"
    (w * torch.tensor([1., 2, 3, 4], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy()[0], [2.849977, -0.315889, 0.096343, -1.165544],
                               atol=1e-6)
    a.grad = None
    w, v = torch.linalg.eigh(a)
    (v[:, 1:] * torch.tensor(np.arange(12.).reshape(4, 3))).abs().sum().backward()
    np.testing.assert_allclose(a.grad.numpy()[0], [-1.599226, -1.635045, 0.115874, 0.627305],
                               atol=1e-6)
    a.grad = None
    torch.linalg.eigvalsh(a).pow(2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy()[1], [-1.335548, 1.44638, 0.077157, 1.456579],
                               atol=1e-6)
    np.testing.assert_allclose(torch.linalg.eigvalsh(a).detach().numpy(),
                               np.linalg.eigvalsh(A + A.T), rtol=1e-12)
    with pytest.raises(RuntimeError, match="Expected UPLO argument to be 'L' or 'U'"):
        torch.linalg.eigh(a, UPLO="X")


def test_einsum_integer_sum_promotes_and_bool_contraction_refused():
    # a letter summed within one operand goes through sum(): int64 for ints and bools
    a = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.int32)
    r = torch.einsum("ij->", a)
    assert r.dtype == torch.int64 and r.item() == 21
    r = torch.einsum("ij->i", torch.tensor([[True, True], [False, True]]))
    assert r.dtype == torch.int64 and to_np(r).tolist() == [2, 1]
    assert torch.einsum("ii", torch.eye(2, dtype=torch.uint8)).dtype == torch.int64
    # transposes, diagonals and contractions keep the dtype
    assert torch.einsum("ij->ji", a).dtype == torch.int32
    r = torch.einsum("ij,j->i", a, torch.tensor([1, 1, 1], dtype=torch.int32))
    assert r.dtype == torch.int32 and to_np(r).tolist() == [6, 15]
    b = torch.tensor([[True, False]])
    with pytest.raises(NotImplementedError):
        torch.einsum("ij,kj->ik", b, b)
    with pytest.raises(NotImplementedError):
        torch.inner(b, b)
    assert torch.einsum("i,j->ij", b[0], b[0]).dtype == torch.bool


def test_tensordot_refuses_bool_and_negative_dims():
    b = torch.tensor([[True, False]])
    with pytest.raises(NotImplementedError):
        torch.tensordot(b, b, 0)
    with pytest.raises(RuntimeError, match="dims"):
        torch.tensordot(T(np.ones((2, 3))), T(np.ones((3, 2))), dims=-1)


def test_det_of_matrix_with_nan_is_nan():
    nan = float("nan")
    r = torch.linalg.det(torch.tensor([[[nan, 1.0], [1.0, 1.0]], [[1.0, 2.0], [3.0, 4.0]]]))
    r = to_np(r)
    assert np.isnan(r[0]) and abs(r[1] + 2.0) < 1e-6


def test_solve_left_false_matrix_b():
    A = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    B = rng.standard_normal((2, 4, 3))
    X = to_np(L.solve(T(A), T(B), left=False))
    assert_close(X @ A, B, rtol=1e-10, atol=1e-10)
    # B (3, 2) cannot be X A for a 3x3 A: its transpose must not pass as a batch of vectors
    with pytest.raises(RuntimeError):
        L.solve(T(A), T(rng.standard_normal((3, 2))), left=False)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 3), (0, 0)])
def test_matrix_norm_of_empty_matrices(shape):
    # the max-based norms of an empty matrix are 0; the min-based ones have nothing to take
    x = torch.zeros(shape)
    for ord in ("fro", "nuc", 2, 1, float("inf")):
        r = L.matrix_norm(x, ord)
        assert tuple(r.shape) == tuple(shape[:-2]) and not to_np(r).any()
    with pytest.raises(IndexError):
        L.matrix_norm(x, -2)


# ---- eig / eigvals gradients (PyTorch's linalg_eig_backward) ----------------------------------

def _distinct(n, batch=(), seed=0, shift=0.0):
    """A real matrix with well separated eigenvalues (some complex pairs when shift is 0)."""
    r = np.random.default_rng(seed)
    return r.standard_normal(batch + (n, n)) + shift * np.diag(np.arange(n, dtype=np.float64))


def _sym_powers(w):
    # symmetric functions of the eigenvalues: independent of the order LAPACK returns them in
    return torch.stack([(w.abs() ** k).sum(-1) for k in (1, 2, 3)] + [(w.real ** 3).sum(-1),
                                                                      (w.imag ** 2).sum(-1)])


@pytest.mark.parametrize("n, batch, shift", [(3, (), 0.0), (4, (), 3.0), (3, (2,), 0.0)])
def test_eigvals_gradcheck(n, batch, shift):
    a = _distinct(n, batch, seed=n + len(batch), shift=shift)
    assert gradcheck(lambda x: _sym_powers(L.eigvals(x)), (T(a, True),))
    assert gradcheck(lambda x: _sym_powers(L.eig(x).eigenvalues), (T(a, True),))


def test_eigvals_gradient_matches_the_left_right_eigenvector_formula():
    # d lambda_k = l_k^H dA r_k / (l_k^H r_k) (SciPy's left and right eigenvectors): for the
    # loss sum(Re(lambda)^2) the gradient is Re sum_k 2 Re(lambda_k) conj(l_k) r_k^T / s_k
    a = _distinct(4, seed=21)
    lam, left, right = sl.eig(a, left=True, right=True)
    s = np.einsum("ik,ik->k", left.conj(), right)
    want = np.real(np.einsum("k,ik,jk->ij", 2 * lam.real / s, left.conj(), right))
    x = T(a, True)
    w = L.eigvals(x)
    assert type(w.grad_fn).__name__ == "LinalgEigBackward0"
    (w.real ** 2).sum().backward()
    assert x.grad.dtype is F64
    assert_close(x.grad, want, rtol=1e-10, atol=1e-12)
    # a diagonal matrix: d lambda_i / dA = e_i e_i^T
    x = T(np.diag([1.0, 2.0, 4.0]), True)
    (L.eigvals(x).real * T([1.0, 10.0, 100.0])).sum().backward()
    assert_close(x.grad, np.diag([1.0, 10.0, 100.0]), atol=1e-12)


@pytest.mark.parametrize("n, seed, shift", [(3, 4, 0.0), (4, 5, 3.0)])
def test_eig_eigenvector_gradcheck_with_phase_invariant_losses(n, seed, shift):
    a = _distinct(n, seed=seed, shift=shift)
    # |V|: each column's phase drops out; eigenvalues and eigenvectors together
    assert gradcheck(lambda x: L.eig(x).eigenvectors.abs(), (T(a, True),))
    assert gradcheck(lambda x: (lambda w, v: (v.abs() ** 2 * w.abs()).sum(0))(*L.eig(x)),
                     (T(a, True),))
    # |v_i^H v_j|: a phase-invariant loss that mixes columns
    assert gradcheck(lambda x: (lambda v: (v.mH @ v).abs())(L.eig(x).eigenvectors),
                     (T(a, True),))


def test_eig_gradient_of_a_complex_input():
    # a complex A: finite differences over its real and imaginary parts (gradcheck's inputs)
    r = np.random.default_rng(7)
    re, im = r.standard_normal((2, 3, 3))

    def f(x, y):
        w, v = L.eig(torch.complex(x, y))
        return torch.cat([_sym_powers(w), (v.abs() ** 3).sum(0)])
    assert gradcheck(f, (T(re, True), T(im, True)))


def test_eig_backward_refuses_a_loss_that_depends_on_the_eigenvector_phases():
    a = _distinct(3, seed=4)
    x = T(a, True)
    v = L.eig(x).eigenvectors
    with pytest.raises(RuntimeError, match=r"linalg_eig_backward: The eigenvectors in the "
                                           r"complex case are specified up to multiplication "
                                           r"by e\^\{i phi\}"):
        v.imag.sum().backward()
    assert x.grad is None
    # eigenvalues alone carry no phase: no check, and the gradient is written
    L.eigvals(x).abs().sum().backward()
    assert x.grad is not None and np.isfinite(to_np(x.grad)).all()


# ---- geqrf, and complex gradients of the maps orthogonal() uses ---------------------------------

@pytest.mark.parametrize("shape, dtype", [((4, 3), np.float64), ((3, 5), np.float64),
                                          ((2, 4, 4), np.float32), ((4, 2), np.complex128)])
def test_geqrf_matches_lapack_and_rebuilds_the_matrix(shape, dtype):
    from scipy.linalg import lapack
    r = np.random.default_rng(len(shape) + shape[-1])
    a = r.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * r.standard_normal(shape)
    a = a.astype(dtype)
    res = torch.geqrf(torch.tensor(a))
    assert type(res).__name__ == "geqrf" and res._fields == ("a", "tau")
    assert tuple(res.tau.shape) == shape[:-2] + (min(shape[-2:]),)
    assert res.a.dtype == res.tau.dtype == torch.tensor(a).dtype
    tol = 1e-5 if dtype is np.float32 else 1e-12
    geqrf = lapack.get_lapack_funcs("geqrf", (a,))
    got_a, got_tau = to_np(res.a), to_np(res.tau)
    for idx in np.ndindex(*shape[:-2]):
        qr, tau, _, info = geqrf(a[idx])
        assert info == 0
        np.testing.assert_allclose(got_a[idx], qr, rtol=tol, atol=tol)
        np.testing.assert_allclose(got_tau[idx], tau, rtol=tol, atol=tol)
    if shape[-2] >= shape[-1]:      # Q R == A, Q from householder_product (orgqr)
        q = to_np(L.householder_product(res.a, res.tau))
        rr = np.triu(to_np(res.a))[..., :shape[-1], :]
        np.testing.assert_allclose(q @ rr, a, rtol=10 * tol, atol=10 * tol)
    np.testing.assert_array_equal(to_np(torch.tensor(a).geqrf().a), got_a)


def test_geqrf_bad_input():
    with pytest.raises(RuntimeError, match="torch.geqrf: input must have at least 2 dimensions"):
        torch.geqrf(torch.ones(3))
    with pytest.raises(NotImplementedError, match="\"geqrf_cpu\" not implemented for 'Long'"):
        torch.geqrf(torch.ones(3, 3, dtype=torch.int64))
    e = torch.geqrf(torch.zeros(0, 3, 2))
    assert tuple(e.a.shape) == (0, 3, 2) and tuple(e.tau.shape) == (0, 2)
    # no derivative, as PyTorch: the outputs carry GeqrfBackward0, which refuses backward
    x = torch.tensor(np.eye(3) + 0.5, requires_grad=True)
    a, tau = torch.geqrf(x)
    assert a.requires_grad and type(a.grad_fn).__name__ == "GeqrfBackward0"
    with pytest.raises(NotImplementedError, match="the derivative for 'geqrf' is not implemented"):
        a.sum().backward()
    assert x.grad is None


def test_eig_of_a_non_finite_matrix_raises():
    for bad in (float("nan"), float("inf")):
        x = torch.tensor([[1.0, 2.0], [bad, 1.0]])
        for f in (L.eig, L.eigvals):
            with pytest.raises(RuntimeError, match="linalg.eig: input tensor should not contain "
                                                   "infs or NaNs"):
                f(x)


def test_householder_product_of_complex_reflectors():
    # H_i = I - tau_i v_i v_i^H (LAPACK's ungqr), v_i: 1 on the diagonal, A's column below it
    r = np.random.default_rng(3)
    a = r.standard_normal((4, 3)) + 1j * r.standard_normal((4, 3))
    tau = r.standard_normal(3) + 1j * r.standard_normal(3)
    q = np.eye(4, dtype=complex)
    for i in range(3):
        v = np.tril(a, -1)[:, i].copy()
        v[i] = 1.0
        q = q @ (np.eye(4) - tau[i] * np.outer(v, v.conj()))
    got = to_np(L.householder_product(torch.tensor(a), torch.tensor(tau)))
    np.testing.assert_allclose(got, q[:, :3], rtol=1e-12, atol=1e-12)


def test_matrix_exp_and_solve_gradients_of_complex_matrices():
    # finite differences over the real and imaginary parts (conjugate transposes in the rules)
    r = np.random.default_rng(8)
    re, im, bre, bim = (0.5 * r.standard_normal((3, 3)) for _ in range(4))
    re2 = re + 2 * np.eye(3)

    def expm(x, y):
        return torch.view_as_real(L.matrix_exp(torch.complex(x, y)))

    def solve(x, y, u, v):
        return torch.view_as_real(L.solve(torch.complex(x, y), torch.complex(u, v)))
    assert gradcheck(expm, (T(re, True), T(im, True)))
    assert gradcheck(solve, (T(re2, True), T(im, True), T(bre, True), T(bim, True)))


def test_linalg_special_import_as_submodules_and_legacy_deprecations():
    import importlib
    LA = importlib.import_module("framework.linalg")
    from framework.special import expit
    assert LA is torch.linalg
    np.testing.assert_allclose(expit(torch.tensor([0.0, 2.0], dtype=torch.float64)).numpy(),
                               1 / (1 + np.exp([0.0, -2.0])))
    A = np.array([[4.0, 1.0], [1.0, 3.0]])
    t = torch.tensor(A)
    torch.set_warn_always(True)       # TORCH_WARN_ONCE warnings: shown every time while on
    try:
        with pytest.warns(UserWarning, match="torch.cholesky is deprecated"):
            L = torch.cholesky(t)
        with pytest.warns(UserWarning, match="torch.qr is deprecated"):
            torch.qr(t)
        with pytest.warns(UserWarning, match="torch.lu is deprecated"):
            LU, piv = torch.lu(t)
        with pytest.warns(UserWarning, match="torch.lu_solve is deprecated"):
            x = torch.lu_solve(torch.ones(2, 1, dtype=torch.float64), LU, piv)
        with pytest.warns(UserWarning, match="torch.triangular_solve is deprecated"):
            y = torch.triangular_solve(torch.ones(2, 1, dtype=torch.float64), L, upper=False)
    finally:
        torch.set_warn_always(False)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, np.ones((2, 1))))
    np.testing.assert_allclose(y.solution.numpy(),
                               np.linalg.solve(np.linalg.cholesky(A), np.ones((2, 1))))


def test_complex_linalg_gradients_use_conjugate_transposes():
    # inv / det / solve_triangular / cholesky / qr / lu_factor / pinv / eigh / svd VJPs used
    # plain transposes, right only for real matrices
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    W = torch.tensor(rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3)))
    eye = torch.eye(3, dtype=torch.complex128)
    LA = torch.linalg
    w3 = torch.arange(3.0, dtype=torch.float64)
    fns = {
        "inv": lambda x: LA.inv(x).abs().sum(),
        "det": lambda x: LA.det(x).real,
        "slogdet": lambda x: LA.slogdet(x)[1],
        "solve_triangular": lambda x: LA.solve_triangular(x.triu() + 3 * eye, W,
                                                          upper=True).abs().sum(),
        "cholesky": lambda x: LA.cholesky(x @ x.mH + eye).abs().sum(),
        "qr": lambda x: LA.qr(x)[1].abs().sum(),
        "qr_Q": lambda x: (LA.qr(x)[0].abs() ** 2 * w3).sum(),
        "pinv": lambda x: LA.pinv(x).abs().sum(),
        "eigvalsh": lambda x: (LA.eigvalsh(x + x.mH) * w3).sum(),
        "eigh_vectors": lambda x: (LA.eigh(x + x.mH)[1].abs() ** 2 * w3).sum(),
        "svd_U": lambda x: (LA.svd(x[:, :2], full_matrices=False)[0].abs() ** 2
                            * w3[:, None]).sum(),
    }
    for name, f in fns.items():
        assert gradcheck(f, (torch.tensor(A, requires_grad=True),), raise_exception=False), name
    # a hand-derived value: d det(A) for a real-valued loss Re(det A) is conj(det A A^-T)
    x = torch.tensor(A, requires_grad=True)
    LA.det(x).real.backward()
    np.testing.assert_allclose(x.grad.numpy(),
                               np.conj(np.linalg.det(A) * np.linalg.inv(A).T), rtol=1e-10)


# ---- LDL (Bunch-Kaufman, LAPACK sytrf / hetrf) ------------------------------------------------

def _indefinite(n, seed, zero_diag=False, cx=False, herm=False):
    r = np.random.default_rng(seed)
    a = r.standard_normal((n, n)) + (1j * r.standard_normal((n, n)) if cx else 0)
    if zero_diag:               # small diagonals force 2x2 pivot blocks
        a[np.diag_indices(n)] *= 0.01
    return a + (a.conj().T if herm else a.T)


def test_ldl_factor_hand_derived_2x2_block():
    # [[0,1,2],[1,0,3],[2,3,0]] by hand: a11 = 0 fails the 1x1 test and so does a33 = 0, so
    # rows/columns 2 and 3 swap (pivots -3, -3) giving [[0,2,1],[2,0,3],[1,3,0]]; its leading
    # block D1 = [[0,2],[2,0]] is the pivot, L31 = [1 3] D1^-1 = [1.5 0.5] and
    # D2 = 0 - L31 D1 L31^T = -3
    A = torch.tensor([[0., 1, 2], [1, 0, 3], [2, 3, 0]], dtype=F64)
    LD, piv = L.ldl_factor(A)
    np.testing.assert_array_equal(piv.numpy(), [-3, -3, 3])
    assert piv.dtype == torch.int32
    np.testing.assert_allclose(LD.numpy(), [[0, 0, 0], [2, 0, 0], [1.5, 0.5, -3]], atol=1e-15)
    np.testing.assert_allclose(L.ldl_solve(LD, piv, T(np.eye(3))).numpy(),
                               np.linalg.inv(A.numpy()), atol=1e-14)


@pytest.mark.parametrize("n,zero_diag", [(1, False), (5, False), (6, True), (9, True), (40, True)])
def test_ldl_factor_matches_lapack_sytrf(n, zero_diag):
    from scipy.linalg import lapack
    a = _indefinite(n, n, zero_diag)
    ref, ipiv, info = lapack.dsytrf(a, lower=1)
    LD, piv, inf = L.ldl_factor_ex(T(a))
    np.testing.assert_array_equal(piv.numpy(), ipiv)
    assert inf.item() == info == 0
    np.testing.assert_allclose(LD.numpy(), np.tril(ref), rtol=1e-10, atol=1e-12)
    b = np.random.default_rng(0).standard_normal((n, 3))
    np.testing.assert_allclose(L.ldl_solve(LD, piv, T(b)).numpy(), np.linalg.solve(a, b),
                               rtol=1e-9, atol=1e-10)
    # the hermitian flag changes nothing for real input
    np.testing.assert_array_equal(L.ldl_factor(T(a), hermitian=True).pivots.numpy(), ipiv)


@pytest.mark.parametrize("herm", [False, True])
def test_ldl_complex_symmetric_and_hermitian_match_lapack(herm):
    from scipy.linalg import lapack
    a = _indefinite(7, 3, True, cx=True, herm=herm)
    ref, ipiv, info = (lapack.zhetrf if herm else lapack.zsytrf)(a, lower=1)
    LD, piv = L.ldl_factor(torch.tensor(a), hermitian=herm)
    assert (ipiv < 0).any() and LD.dtype == torch.complex128
    np.testing.assert_array_equal(piv.numpy(), ipiv)
    np.testing.assert_allclose(LD.numpy(), np.tril(ref), rtol=1e-10, atol=1e-12)
    b = np.random.default_rng(1).standard_normal((7, 2)) + 1j
    np.testing.assert_allclose(L.ldl_solve(LD, piv, torch.tensor(b), hermitian=herm).numpy(),
                               np.linalg.solve(a, b), rtol=1e-9, atol=1e-10)


def test_ldl_batched_float32_and_broadcast_solve():
    a = np.stack([_indefinite(4, s, True) for s in range(3)])
    LD, piv = L.ldl_factor(torch.tensor(a, dtype=torch.float32))
    assert LD.shape == (3, 4, 4) and LD.dtype == torch.float32 and piv.shape == (3, 4)
    b = np.random.default_rng(2).standard_normal((2, 1, 4, 2))
    x = L.ldl_solve(LD.double(), piv, T(b))
    assert x.shape == (2, 3, 4, 2)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a[None], b), rtol=1e-4, atol=1e-4)
    assert L.ldl_factor(torch.ones(0, 3, 3)).LD.shape == (0, 3, 3)


def test_ldl_singular_info_and_errors():
    # a zero column: D[2,2] is exactly 0 (info 2, the 1-based step); factor_ex reports it,
    # factor raises (PyTorch's words for it)
    LD, piv, info = L.ldl_factor_ex(T([[1, 0, 0], [0, 0, 0], [0, 0, 2]]))
    assert info.item() == 2 and piv.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(LD.numpy(), np.diag([1.0, 0, 2]))
    with pytest.raises(RuntimeError, match="ldl_factor: Unknown error code: 1"):
        L.ldl_factor(torch.zeros(3, 3))
    A = T(_indefinite(4, 0))
    LD, piv = L.ldl_factor(A)
    for f, cls, msg in [
            (lambda: L.ldl_factor(torch.ones(4)), RuntimeError, "at least 2 dimensions"),
            (lambda: L.ldl_factor(torch.ones(3, 4)), RuntimeError, "3 by 4 matrices"),
            (lambda: L.ldl_factor(torch.ones(3, 3, dtype=torch.int32)), RuntimeError,
             "floating point or complex tensor as input. Got Int"),
            (lambda: L.ldl_factor(torch.ones(3, 3, dtype=torch.float16)), NotImplementedError,
             "ldl_factor_kernel_cpu"),
            (lambda: L.ldl_solve(LD, piv[:3], T(np.ones((4, 1)))), RuntimeError,
             "pivots with shape [3]"),
            (lambda: L.ldl_solve(LD, piv.float(), T(np.ones((4, 1)))), RuntimeError,
             "Expected pivots to be integers. Got Float"),
            (lambda: L.ldl_solve(LD, piv, torch.ones(4, 1)), RuntimeError,
             "found b of type Float and A of type Double"),
            (lambda: L.ldl_solve(LD, piv, T(np.ones(4))), IndexError, "Dimension out of range"),
            (lambda: L.ldl_solve(LD, piv, T(np.ones((3, 1)))), RuntimeError,
             "each A matrix is 4 by 4 but each b matrix is 3 by 1"),
            (lambda: L.ldl_solve(LD, piv + 10, T(np.ones((4, 1)))), RuntimeError,
             "|pivot| <= LD.size(-2)")]:
        with pytest.raises(cls) as e:
            f()
        assert msg in str(e.value)
    # no derivative formula, as in PyTorch: the failure comes at backward
    Ag = T(_indefinite(4, 0), True)
    out = L.ldl_factor(Ag).LD
    assert out.requires_grad
    with pytest.raises(RuntimeError, match="derivative for aten::linalg_ldl_factor_ex"):
        out.sum().backward()


def test_addmv_inplace_function_and_checks():
    m, v = rng.standard_normal((3, 2)), rng.standard_normal(2)
    x = T(np.ones(3))
    assert torch.addmv_(x, T(m), T(v), beta=2, alpha=0.5) is x
    np.testing.assert_allclose(x.numpy(), 2 + 0.5 * m @ v, rtol=1e-12)
    a = T(np.ones(3), grad=True)
    assert torch.addmv(a, T(m), T(v)).grad_fn.name() == "AddmvBackward0"
    assert gradcheck(lambda i, mm, vv: torch.addmv(i, mm, vv, beta=0.5, alpha=2),
                     (a, T(m, grad=True), T(v, grad=True)))
    one = T([1.0])
    with pytest.raises(RuntimeError, match=r"Bad in-place call: input tensor size \[1\] and "
                                           r"output tensor size \[3\] should match"):
        torch.addmv_(one, T(m), T(v))
    with pytest.raises(RuntimeError, match=r"size mismatch, got input \(2\), mat \(3x2\), "
                                           r"vec \(2\)"):
        torch.addmv_(T(np.ones(2)), T(m), T(v))
    with pytest.raises(RuntimeError, match="vector \\+ matrix @ vector expected, got 1, 2, 2"):
        torch.addmv(T(np.ones(3)), T(m), T(m))
    i = torch.ones(3, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="addmv input tensors must have the same dtype, but "
                                           "got Long, Double, and Double"):
        torch.addmv_(i, T(m), T(v))
    assert one.tolist() == [1.0] and i.tolist() == [1, 1, 1]


# ---- torch.lobpcg: eigenvalues against numpy.linalg.eigh / scipy.linalg.eigh ----------------

def _spd(n, seed):
    r = np.random.default_rng(seed)
    m = r.standard_normal((n, n))
    return m @ m.T + n * np.eye(n)


@pytest.mark.parametrize("method", ["basic", "ortho"])
@pytest.mark.parametrize("largest", [True, False])
def test_lobpcg_matches_eigh(method, largest):
    a = _spd(18, 4)
    ev = np.linalg.eigh(a)[0]
    E, X = torch.lobpcg(T(a), k=3, method=method, largest=largest)
    assert E.shape == (3,) and X.shape == (18, 3) and E.dtype == F64
    np.testing.assert_allclose(E.numpy(), ev[::-1][:3] if largest else ev[:3], rtol=1e-9)
    x = X.numpy()
    np.testing.assert_allclose(a @ x, x * E.numpy(), atol=1e-6)
    np.testing.assert_allclose(x.T @ x, np.eye(3), atol=1e-8)


def test_lobpcg_generalized_preconditioned_batched_sparse():
    a, b = _spd(15, 5), _spd(15, 6)
    evb = sl.eigh(a, b)[0]
    E, X = torch.lobpcg(T(a), k=2, B=T(b), X=T(rng.standard_normal((15, 2))))
    np.testing.assert_allclose(E.numpy(), evb[::-1][:2], rtol=1e-9)
    np.testing.assert_allclose(X.numpy().T @ b @ X.numpy(), np.eye(2), atol=1e-8)
    ev = np.linalg.eigh(a)[0]
    E, _ = torch.lobpcg(T(a), k=2, iK=T(np.linalg.inv(a)), largest=False, method="basic")
    np.testing.assert_allclose(E.numpy(), ev[:2], rtol=1e-9)
    E, X = torch.lobpcg(T(np.stack([a, 2 * a])), k=1)
    assert E.shape == (2, 1) and X.shape == (2, 15, 1)
    np.testing.assert_allclose(E.numpy()[:, 0], [ev[-1], 2 * ev[-1]], rtol=1e-9)
    E, _ = torch.lobpcg(T(a).to_sparse(), k=1)
    np.testing.assert_allclose(E.numpy(), ev[-1:], rtol=1e-9)
    E, _ = torch.lobpcg(T(a).float(), k=1)
    assert E.dtype == torch.float32
    np.testing.assert_allclose(E.numpy(), ev[-1:], rtol=1e-4)


def test_lobpcg_gradient_and_errors():
    a = _spd(12, 7)
    lam, V = np.linalg.eigh(a)
    A = T(a, grad=True)
    E, X = torch.lobpcg(A, k=2)
    assert E.grad_fn.name() == "LOBPCGAutogradFunctionBackward"
    gx = rng.standard_normal((12, 2))
    s = np.sign(X.detach().numpy()[0])
    ((E * T([1.0, -2.0])).sum() + (X * T(s * gx)).sum()).backward()
    # d(e_i) = u_i^T dA u_i; d(u_i) = sum_{j != i} u_j u_j^T dA u_i / (e_i - e_j);
    # then (G + G^T) / 2
    g = np.zeros((12, 12))
    for c, (i, w) in enumerate([(11, 1.0), (10, -2.0)]):
        u = V[:, i] * np.sign(V[0, i])
        g += w * np.outer(u, u)
        for j in range(12):
            if j != i:
                g += np.outer(V[:, j], u) * (V[:, j] @ gx[:, c]) / (lam[i] - lam[j])
    np.testing.assert_allclose(A.grad.numpy(), (g + g.T) / 2, atol=1e-6)
    Bt = T(_spd(12, 8), grad=True)
    E, _ = torch.lobpcg(T(a), k=1, B=Bt)
    with pytest.raises(ValueError, match="lobpcg.backward does not support backward with B != I"):
        E.sum().backward()
    with pytest.raises(ValueError, match=r"LOBPCG algorithm is not applicable when the number "
                                         r"of A rows \(=12\) is smaller than 3 x the number of "
                                         r"requested eigenpairs \(=5\)"):
        torch.lobpcg(T(a), k=5)
    with pytest.raises(AssertionError, match="A must be square"):
        torch.lobpcg(T(a[:, :6]), k=1)
    with pytest.raises(AssertionError, match="A and B must have same shape"):
        torch.lobpcg(T(a), k=1, B=T(np.eye(6)))
    with pytest.raises(AssertionError, match="X shape mismatch"):
        torch.lobpcg(T(a), X=T(np.ones((6, 2))))


def test_lobpcg_tracker_sees_each_update_and_can_stop():
    a = _spd(15, 9)
    seen = []

    def tracker(w):
        seen.append((w.ivars["istep"], tuple(w.X.shape), tuple(w.tvars["rerr"].shape)))
        np.testing.assert_allclose(w.R.numpy(), a @ w.X.numpy() - w.X.numpy() * w.E.numpy(),
                                   atol=1e-9)
        if w.ivars["istep"] >= 3:
            w.bvars["force_stop"] = True
    torch.lobpcg(T(a), k=2, X=T(rng.standard_normal((15, 2))), tracker=tracker)
    assert seen == [(1, (15, 2), (2,)), (2, (15, 2), (2,)), (3, (15, 2), (2,))]
    counts = []
    E, _ = torch.lobpcg(T(a), k=2, tracker=lambda w: counts.append(w.ivars["converged_count"]))
    assert counts[-1] == 2 and counts[0] < 2
    np.testing.assert_allclose(E.numpy(), np.linalg.eigh(a)[0][::-1][:2], rtol=1e-9)
