"""Reductions, scans, ordering ops and linear algebra: the divergences a differential sweep
against PyTorch 2.13 CPU found (about 7,000 cases), pinned with hand-derived values and NumPy
float64 references."""
import math
import warnings

import numpy as np
import pytest

import framework as torch

L = torch.linalg
NAN, INF = float("nan"), float("inf")


def T(a, **kw):
    return torch.tensor(np.asarray(a), **kw)


def npy(t):
    return t.detach().numpy()


# ---- reductions over a 0-d input: dim 0 / -1 name no axis ----------------------------------------

@pytest.mark.parametrize("dim", [0, -1, (0,), [-1]])
def test_zero_dim_reductions_accept_dim_0_and_minus_1(dim):
    x = torch.tensor(1.5, dtype=torch.float64)
    for f, want in [(torch.sum, 1.5), (torch.mean, 1.5), (torch.nansum, 1.5), (torch.nanmean, 1.5),
                    (torch.amax, 1.5), (torch.amin, 1.5), (torch.logsumexp, 1.5), (torch.norm, 1.5),
                    (torch.any, True), (torch.all, True)]:
        for keep in (False, True):
            r = f(x, dim, keepdim=keep) if f is not torch.norm else f(x, dim=dim, keepdim=keep)
            assert r.shape == () and r.item() == want, (f.__name__, r)
    assert torch.count_nonzero(x, dim).item() == 1
    assert torch.prod(x, 0).item() == 1.5 and torch.prod(x, -1, keepdim=True).shape == ()
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        assert math.isnan(torch.std(x, dim).item())
    assert torch.var(x, dim, correction=0).item() == 0.0
    mn, mx = torch.aminmax(x, dim=0)
    assert mn.item() == 1.5 and mx.item() == 1.5
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.sum(x, 1)
    with pytest.raises(RuntimeError, match="appears multiple times"):
        torch.sum(x, (0, -1))


def test_zero_dim_reduction_gradient():
    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (torch.sum(x, 0) * 3 + torch.mean(x, -1)).backward()
    assert x.grad.item() == 4.0


# ---- std / var: the degrees-of-freedom warning names the op -------------------------------------

@pytest.mark.parametrize("name", ["std", "var", "std_mean", "var_mean"])
def test_std_var_warn_when_dof_not_positive(name):
    f = getattr(torch, name)
    one = torch.tensor([2.0], dtype=torch.float64)
    with pytest.warns(UserWarning, match=rf"^{name}\(\): degrees of freedom is <= 0") as rec:
        r = f(one)
    assert rec[0].filename == __file__          # the caller's line, through any wrapper
    with pytest.warns(UserWarning) as rec:
        getattr(one, name)() if hasattr(one, name) else f(one)
    assert rec[0].filename == __file__
    r = r[0] if isinstance(r, tuple) else r
    assert math.isnan(r.item())
    with pytest.warns(UserWarning, match="degrees of freedom"):
        f(torch.zeros(0, 3, dtype=torch.float64), 0, correction=0)
    x = T(np.arange(12.0).reshape(3, 4))
    with pytest.warns(UserWarning, match="degrees of freedom"):
        f(x, 0, correction=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = f(x, 0, correction=2)            # 3 - 2 = 1 > 0: no warning
    r = r[0] if isinstance(r, tuple) else r
    var = ((np.arange(12.0).reshape(3, 4) - [[4, 5, 6, 7]]) ** 2).sum(0) / 1
    np.testing.assert_allclose(npy(r), var if "var" in name else np.sqrt(var), rtol=1e-12)


# ---- mode / kthvalue on empty and 0-d inputs -----------------------------------------------------

def test_mode_and_kthvalue_of_an_empty_dim_raise_index_error():
    e = torch.zeros(0, 3)
    with pytest.raises(IndexError, match=r"mode\(\): Expected reduction dim 0 to have non-zero"):
        torch.mode(e, 0)
    with pytest.raises(IndexError, match=r"mode\(\): Expected reduction dim 1 to have non-zero"):
        torch.mode(torch.zeros(2, 0))
    with pytest.raises(IndexError, match=r"kthvalue\(\): Expected reduction dim 0 to have non-zero"):
        torch.kthvalue(e, 1, 0)
    assert torch.mode(e, 1).values.shape == (0,)


def test_kthvalue_of_a_zero_dim_tensor():
    x = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    v, i = torch.kthvalue(x, 1, -1)
    assert v.item() == 2.5 and i.item() == 0 and v.shape == () and i.dtype == torch.int64
    v.backward()
    assert x.grad.item() == 1.0
    with pytest.raises(RuntimeError, match="k out of range"):
        torch.kthvalue(x, 2)


# ---- whole-tensor median: the gradient is split evenly between the tied elements ----------------

def test_median_without_dim_splits_gradient_between_ties():
    x = T([1.0, 2.0, 2.0, 3.0, 2.0], requires_grad=True)
    y = torch.median(x)
    assert y.item() == 2.0
    y.backward()
    np.testing.assert_array_equal(npy(x.grad), [0, 1 / 3, 1 / 3, 0, 1 / 3])
    # a NaN median: all the NaNs share it
    x = T([1.0, NAN, 2.0, NAN, 3.0], requires_grad=True)
    y = torch.median(x)
    assert math.isnan(y.item())
    y.backward()
    np.testing.assert_array_equal(npy(x.grad), [0, 0.5, 0, 0.5, 0])
    # nanmedian skips the NaNs; ties split as for median
    x = T([1.0, NAN, 2.0, NAN, 2.0], requires_grad=True)
    torch.nanmedian(x).backward()
    np.testing.assert_array_equal(npy(x.grad), [0, 0, 0.5, 0, 0.5])
    # infinities tie too (no inf - inf = NaN on the way)
    x = T([[1.0, INF], [INF, INF]], requires_grad=True)
    y = torch.median(x)
    y.backward()
    assert y.item() == INF
    np.testing.assert_array_equal(npy(x.grad), [[0, 1 / 3], [1 / 3, 1 / 3]])
    # along a dim, one element gets it (torch's median(dim) backward)
    x = T([[2.0, 2.0, 1.0]], requires_grad=True)
    torch.median(x, 1).values.sum().backward()
    assert npy(x.grad).sum() == 1.0


# ---- torch.norm: 'nuc' (and 'fro' over more than 2 dims) is a matrix norm over dim --------------

def test_norm_nuc_uses_the_given_dims():
    a = np.random.default_rng(0).standard_normal((3, 4, 5))
    x = T(a)
    nuc01 = np.linalg.norm(np.moveaxis(a, 2, 0), "nuc", axis=(1, 2))
    np.testing.assert_allclose(npy(torch.norm(x, "nuc", dim=(0, 1))), nuc01, rtol=1e-12)
    r = torch.norm(x, "nuc", dim=(0, 1), keepdim=True)
    assert r.shape == (1, 1, 5)
    np.testing.assert_allclose(npy(r).ravel(), nuc01, rtol=1e-12)
    assert torch.norm(x, "nuc", dim=(1, 2), keepdim=True).shape == (3, 1, 1)
    with pytest.raises(RuntimeError, match="dim must be a 2-tuple"):
        torch.norm(x, "nuc")                         # all 3 dims
    with pytest.raises(RuntimeError, match="dim must be a 2-tuple"):
        torch.norm(x, "nuc", dim=1)
    with pytest.raises(RuntimeError, match="dim must be a 2-tuple"):
        torch.norm(x, dim=(0, 2, 1))                 # the default p is 'fro'
    np.testing.assert_allclose(torch.norm(x, 2, dim=(0, 2, 1)).item(), np.sqrt((a * a).sum()),
                               rtol=1e-12)           # a number p: a vector norm over any dims
    with pytest.raises(RuntimeError, match="must be of length 1 or 2"):
        L.norm(x, dim=(0, 1, 2))


def test_vector_norm_zero_order_is_differentiable_with_zero_gradient():
    x = T([[0.0, 2.0], [-3.0, 0.0]], requires_grad=True)
    for r in (torch.norm(x, 0), L.vector_norm(x, 0)):
        assert r.item() == 2.0 and r.requires_grad
        (g,) = torch.autograd.grad(r, x)
        np.testing.assert_array_equal(npy(g), 0.0)
    assert L.vector_norm(T([0.0, NAN, INF, -0.0]), 0).item() == 2.0


@pytest.mark.parametrize("p", [0.5, -1.0, -0.5])
def test_vector_norm_below_one_has_zero_gradient_at_zeros(p):
    x = T([0.0, 0.0, 3.0], requires_grad=True)
    r = L.vector_norm(x, p)
    r.backward()
    if p > 0:      # d/dx_i (sum |x|^p)^(1/p) = |x_i|^(p-1) sign(x_i) * r^(1-p); 0 at x_i == 0
        assert r.item() == pytest.approx(3.0)
        np.testing.assert_allclose(npy(x.grad), [0.0, 0.0, 1.0])
    else:          # a zero makes the norm 0 (sum = inf): gradient 0 everywhere
        assert r.item() == 0.0
        np.testing.assert_array_equal(npy(x.grad), [0.0, 0.0, 0.0])


def test_vector_norm_errors():
    x = T([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"convertible without narrowing to the specified "
                                           r"dtype \(Float\)"):
        L.vector_norm(x, dtype=torch.float32)
    assert L.vector_norm(x.float(), dtype=torch.float64).dtype == torch.float64
    for p, s in ((-1, "-1"), (-0.5, "-0.5"), (INF, "inf"), (-INF, "-inf")):
        with pytest.raises(RuntimeError, match=rf"cannot compute the {s} norm on an empty tensor"):
            L.vector_norm(torch.zeros(0, dtype=torch.float64), p)
    assert L.vector_norm(torch.zeros(0, dtype=torch.float64), 2).item() == 0.0


# ---- searchsorted / bucketize --------------------------------------------------------------------

def test_searchsorted_sorter_and_nd_sequences():
    rng = np.random.default_rng(1)
    s = rng.standard_normal(8)
    v = rng.standard_normal(5)
    order = np.argsort(s)
    for side in ("left", "right"):
        want = np.searchsorted(s[order], v, side=side)
        r = torch.searchsorted(T(s), T(v), sorter=T(order), side=side)
        np.testing.assert_array_equal(npy(r), want)
    s3 = np.sort(rng.standard_normal((2, 3, 6)), -1)
    v3 = rng.standard_normal((2, 3, 4))
    want = np.stack([np.searchsorted(s3[i, j], v3[i, j], side="right")
                     for i in range(2) for j in range(3)]).reshape(2, 3, 4)
    np.testing.assert_array_equal(npy(torch.searchsorted(T(s3), T(v3), right=True)), want)
    u2 = rng.standard_normal((3, 8))
    o2 = np.argsort(u2, -1)
    v2 = rng.standard_normal((3, 4))
    want = np.stack([np.searchsorted(u2[i][o2[i]], v2[i]) for i in range(3)])
    np.testing.assert_array_equal(npy(torch.searchsorted(T(u2), T(v2), sorter=T(o2))), want)


def test_searchsorted_and_bucketize_errors():
    s, v = T([1.0, 2.0, 3.0]), T([2.0])
    with pytest.raises(RuntimeError, match="side and right can't be set to opposites"):
        torch.searchsorted(s, v, side="left", right=True)
    assert torch.searchsorted(s, v, side="right", right=True).tolist() == [2]
    with pytest.raises(RuntimeError, match="side can only be 'left' or 'right' but got middle"):
        torch.searchsorted(s, v, side="middle")
    with pytest.raises(RuntimeError, match="first N-1 dimensions of boundaries tensor and input"):
        torch.searchsorted(torch.zeros(3, 8), torch.zeros(2, 4))
    with pytest.raises(RuntimeError, match="boundary and sorter must have the same size"):
        torch.searchsorted(s, v, sorter=torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=r"boundaries tensor must be 1 dimension, but got dim\(2\)"):
        torch.bucketize(v, torch.zeros(2, 3))


# ---- histc ---------------------------------------------------------------------------------------

def test_histc_ranges_and_errors():
    a = np.array([0.5, 1.0, 1.5, 2.0, 4.0])
    # min == max (not only 0 == 0): the data's range
    np.testing.assert_array_equal(npy(torch.histc(T(a), bins=3, min=1, max=1)),
                                  np.histogram(a, 3, (0.5, 4.0))[0])
    np.testing.assert_array_equal(npy(torch.histc(T(a), bins=4, min=0, max=4)), [1, 2, 1, 1])
    # NaN is not counted; the empty input counts nothing
    np.testing.assert_array_equal(npy(torch.histc(T([1.0, NAN, 2.0]), bins=3, min=0, max=3)),
                                  [0, 1, 1])
    r = torch.histc(torch.zeros(0), bins=4)
    assert r.tolist() == [0, 0, 0, 0] and r.dtype == torch.float32
    with pytest.raises(NotImplementedError, match="\"histogram_cpu\" not implemented for 'Long'"):
        torch.histc(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="max must be larger than min"):
        torch.histc(T(a), min=2, max=1)
    with pytest.raises(RuntimeError, match=r"range of \[1, inf\] is not finite"):
        torch.histc(T([1.0, INF]), bins=3)
    with pytest.raises(RuntimeError, match="bins must be > 0"):
        torch.histc(T(a), bins=0)


def test_diff_negative_order_raises():
    with pytest.raises(RuntimeError, match="order must be non-negative but got -1"):
        torch.diff(T([1.0, 2.0]), n=-1)


# ---- unique / unique_consecutive with dim --------------------------------------------------------

def test_unique_consecutive_along_a_dim():
    a = np.array([[1, 2], [1, 2], [3, 4], [1, 2], [3, 4], [3, 4]])
    u, inv, cnt = torch.unique_consecutive(T(a), dim=0, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(npy(u), [[1, 2], [3, 4], [1, 2], [3, 4]])
    np.testing.assert_array_equal(npy(inv), [0, 0, 1, 2, 3, 3])
    np.testing.assert_array_equal(npy(cnt), [2, 1, 1, 2])
    u, inv, cnt = torch.unique_consecutive(T(a.T), dim=1, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(npy(u), np.array([[1, 2], [3, 4], [1, 2], [3, 4]]).T)
    assert npy(inv).tolist() == [0, 0, 1, 2, 3, 3] and npy(cnt).tolist() == [2, 1, 1, 2]
    u = torch.unique_consecutive(T([[1, 1, 2], [1, 1, 3]]), dim=1)
    np.testing.assert_array_equal(npy(u), [[1, 2], [1, 3]])
    u, inv, cnt = torch.unique_consecutive(torch.zeros(0, 3), dim=0, return_inverse=True,
                                           return_counts=True)
    assert u.shape == (0, 3) and inv.shape == (0,) and cnt.shape == (0,)


def test_unique_dim_errors():
    for f in (torch.unique, torch.unique_consecutive):
        with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dim"):
            f(torch.tensor(1.0), dim=0)
        with pytest.raises(RuntimeError, match="0 sized dimensions, and they aren't selected"):
            f(torch.zeros(0, 3), dim=1)
        with pytest.raises(IndexError, match="Dimension out of range"):
            f(torch.zeros(2, 3), dim=2)


# ---- the add*mm family: beta == 0 ignores input (NaN and inf included) ---------------------------

def test_addmm_family_beta_zero_ignores_nan_input():
    rng = np.random.default_rng(2)
    m34, m45 = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    b234, b245 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    v4 = rng.standard_normal(4)
    cases = [
        (torch.addmm, (3, 5), (m34, m45), 0.5 * m34 @ m45),
        (torch.addmv, (3,), (m34, v4), 0.5 * m34 @ v4),
        (torch.baddbmm, (2, 3, 5), (b234, b245), 0.5 * b234 @ b245),
        (torch.addbmm, (3, 5), (b234, b245), 0.5 * (b234 @ b245).sum(0)),
        (torch.addr, (3, 4), (m34[:, 0], v4), 0.5 * np.outer(m34[:, 0], v4)),
    ]
    for f, shape, args, want in cases:
        inp = T(np.full(shape, NAN), requires_grad=True)
        inp2 = T(np.full(shape, INF))
        r = f(inp, *map(T, args), beta=0, alpha=0.5)
        np.testing.assert_allclose(npy(r), want, rtol=1e-12, err_msg=f.__name__)
        np.testing.assert_allclose(npy(f(inp2, *map(T, args), beta=0, alpha=0.5)), want,
                                   rtol=1e-12)
        r.sum().backward()
        np.testing.assert_array_equal(npy(inp.grad), np.zeros(shape))   # a zero gradient
    c = T(np.full((3, 5), NAN))
    c.addmm_(T(m34), T(m45), beta=0)
    np.testing.assert_allclose(npy(c), m34 @ m45, rtol=1e-12)


def test_vdot_conjugates_the_first_argument_and_outer_wants_vectors():
    a = np.array([1 + 2j, 3 - 1j])
    b = np.array([2 - 1j, 1j])
    r = torch.vdot(T(a), T(b))
    assert r.item() == np.vdot(a, b) == (1 - 2j) * (2 - 1j) + (3 + 1j) * 1j
    assert torch.vdot(T([1.0, 2.0]), T([3.0, 4.0])).item() == 11.0
    with pytest.raises(RuntimeError, match="outer: Expected 1-D argument self, but got 2-D"):
        torch.outer(torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(RuntimeError, match="Expected 1-D argument vec2"):
        torch.ger(torch.zeros(2), torch.zeros(2, 1))


# ---- einsum / tensordot --------------------------------------------------------------------------

def test_einsum_sums_an_ellipsis_left_out_of_the_output():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    x = T(a, requires_grad=True)
    r = torch.einsum("b...,b...->b", x, T(b))
    np.testing.assert_allclose(npy(r), (a * b).sum((1, 2)), rtol=1e-12)
    r.sum().backward()
    np.testing.assert_allclose(npy(x.grad), b, rtol=1e-12)
    np.testing.assert_allclose(npy(torch.einsum("...ij->j", T(a))), a.sum((0, 1)), rtol=1e-12)


def test_einsum_output_subscript_errors_and_sublist_form():
    a, b = T(np.ones((3, 4))), T(np.ones((4, 5)))
    with pytest.raises(RuntimeError, match="output subscript k appears more than once"):
        torch.einsum("ij,jk->ikk", a, b)
    with pytest.raises(RuntimeError, match="output subscript z does not appear in the equation"):
        torch.einsum("ij,jk->iz", a, b)
    m = np.arange(12.0).reshape(3, 4)
    n = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(npy(torch.einsum(T(m), [0, 1], T(n), [1, 2], [0, 2])), m @ n)
    np.testing.assert_array_equal(npy(torch.einsum(T(m), [0, 1], T(n), [1, 2])), m @ n)
    np.testing.assert_array_equal(npy(torch.einsum(T(m), [Ellipsis, 1], [1, Ellipsis])), m.T)


def test_tensordot_negative_and_tensor_dims():
    m = np.arange(12.0).reshape(3, 4)
    n = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(npy(torch.tensordot(T(m), T(n), dims=([-1], [0]))), m @ n)
    np.testing.assert_array_equal(npy(torch.tensordot(T(m), T(n), dims=([1], [-2]))), m @ n)
    np.testing.assert_array_equal(
        npy(torch.tensordot(T(m), T(n), dims=torch.tensor([[1], [0]]))), m @ n)


# ---- linalg error messages and empty matrices ---------------------------------------------------

def test_singular_inverse_and_solve_name_the_pivot_and_batch_element():
    sing = [[1.0, 2.0], [2.0, 4.0]]        # getrf: the second pivot is zero
    with pytest.raises(L.LinAlgError, match=r"^linalg.inv: The diagonal element 2 is zero"):
        L.inv(T(sing))
    with pytest.raises(L.LinAlgError, match=r"^linalg.inv: \(Batch element 1\): The diagonal "
                                            r"element 2 is zero"):
        torch.inverse(T([np.eye(2), sing]))
    with pytest.raises(L.LinAlgError, match=r"^torch.linalg.solve: The solver failed because"):
        L.solve(T(sing), T(sing))
    with pytest.raises(L.LinAlgError, match=r"^torch.linalg.solve: \(Batch element 1\): The solver"):
        L.solve(T([np.eye(2), sing]), T([np.eye(2), sing]))
    with pytest.raises(L.LinAlgError, match=r"^torch.linalg.solve_ex: \(Batch element 1\)"):
        L.solve_ex(T([np.eye(2), sing]), T([np.eye(2), sing]), check_errors=True)
    assert issubclass(L.LinAlgError, RuntimeError)


def test_lu_factor_errors_are_plain_runtime_errors():
    sing = T([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(RuntimeError, match=r"^torch.linalg.lu_factor: U\[2,2\] is zero") as e:
        L.lu_factor(sing)
    assert not isinstance(e.value, L.LinAlgError)
    with pytest.raises(RuntimeError, match=r"^torch.linalg.lu_factor_ex: U\[2,2\] is zero") as e:
        L.lu_factor_ex(sing, check_errors=True)
    assert not isinstance(e.value, L.LinAlgError)
    with pytest.raises(NotImplementedError, match="\"lu_cpu\" not implemented for 'Long'"):
        L.lu_factor_ex(torch.eye(3, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="matrix_exp: Expected a floating point or complex"):
        L.matrix_exp(torch.eye(3, dtype=torch.int64))


def test_empty_square_matrices():
    e = torch.zeros(0, 0, dtype=torch.float64)
    s, l = L.slogdet(e)
    assert s.item() == 1.0 and l.item() == 0.0
    assert torch.logdet(e).item() == 0.0
    inv, info = L.inv_ex(e)
    assert inv.shape == (0, 0) and info.item() == 0
    LU, piv = L.lu_factor(e)
    assert LU.shape == (0, 0) and piv.shape == (0,)
    for p in (None, "fro", "nuc", 1, -1, 2, -2, INF):
        r = L.cond(e, p)
        assert r.shape == () and r.item() == 0.0, p
    assert L.cond(torch.zeros(2, 0, 0)).tolist() == [0.0, 0.0]
    LU, piv = L.lu_factor(torch.zeros(3, 0, 0))
    assert LU.shape == (3, 0, 0) and piv.shape == (3, 0)


def test_matrix_rank_tolerances_and_pinv_rcond():
    a = np.diag([4.0, 2.0, 0.5, 1e-20])
    A = T(a)
    assert L.matrix_rank(A).item() == 3                       # rtol = eps * 4
    assert L.matrix_rank(A, atol=1.0).item() == 2             # atol > 0: rtol 0
    assert L.matrix_rank(A, atol=1.0, rtol=0.6).item() == 1   # max(1.0, 0.6 * 4)
    assert L.matrix_rank(A, rtol=0.1).item() == 3
    assert L.matrix_rank(A, tol=0.4).item() == 3              # legacy: tol is atol, rtol 0
    assert L.matrix_rank(A, hermitian=True).item() == 3
    assert L.matrix_rank(T(-a), hermitian=True, atol=1.0).item() == 2   # |eigenvalues|
    assert L.matrix_rank(T([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]])).tolist() == [2, 1]
    with pytest.raises(RuntimeError, match="must have at least 2 dimensions"):
        L.matrix_rank(T([1.0, 2.0]))
    m = np.random.default_rng(4).standard_normal((4, 4))
    u, s, vh = np.linalg.svd(m)
    keep = s > 0.3 * s[0]
    want = (vh[keep].T / s[keep]) @ u[:, keep].T
    np.testing.assert_allclose(npy(L.pinv(T(m), rcond=0.3)), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(L.pinv(T(m), 0.3)), want, rtol=1e-10, atol=1e-12)


def test_lstsq_residuals_of_a_vector_b_keep_their_column():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal(5)
    r = L.lstsq(T(a), T(b), driver="gelsd")
    x = np.linalg.lstsq(a, b, rcond=None)[0]
    np.testing.assert_allclose(npy(r.solution), x, rtol=1e-10)
    assert r.residuals.shape == (1,)
    np.testing.assert_allclose(npy(r.residuals), [((a @ x - b) ** 2).sum()], rtol=1e-10)
    ab, bb = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5))
    assert L.lstsq(T(ab), T(bb), driver="gelsd").residuals.shape == (2, 1)


def test_solve_left_false_with_a_vector_b_raises():
    with pytest.raises(RuntimeError, match=r"Incompatible shapes of A and B for the equation "
                                           r"XA = B \(4x4 and 4x1\)"):
        L.solve(torch.eye(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64), left=False)
    with pytest.raises(RuntimeError, match="Vector broadcasting of the left hand side is not "
                                           "supported for left=False"):
        L.solve(T([[2.0]]), T([3.0]), left=False)
    b = np.array([[1.0, 2.0]])
    a = np.array([[2.0, 0.0], [1.0, 4.0]])
    np.testing.assert_allclose(npy(L.solve(T(a), T(b), left=False)), b @ np.linalg.inv(a))


def test_matrix_power_zero_passes_a_zero_gradient():
    a = T([[1.0, NAN], [2.0, 3.0]], requires_grad=True)
    r = L.matrix_power(a, 0)
    np.testing.assert_array_equal(npy(r), np.eye(2))
    r.sum().backward()
    np.testing.assert_array_equal(npy(a.grad), np.zeros((2, 2)))
    assert not torch.matrix_power(T(np.ones((2, 3, 3))), 0).requires_grad


def test_complex_norms_singular_values_and_slogdet_are_real_valued():
    c = np.array([[1 + 2j, 3 - 1j], [0.5j, 2.0]])
    A = T(c)
    for r, want in ((L.vector_norm(A), np.sqrt((np.abs(c) ** 2).sum())),
                    (torch.norm(A), np.sqrt((np.abs(c) ** 2).sum())),
                    (L.svdvals(A), np.linalg.svd(c, compute_uv=False)),
                    (L.svd(A).S, np.linalg.svd(c, compute_uv=False)),
                    (L.matrix_norm(A, 2), np.linalg.norm(c, 2)),
                    (L.matrix_norm(A, "nuc"), np.linalg.norm(c, "nuc")),
                    (L.cond(A), np.linalg.cond(c))):
        assert r.dtype == torch.float64
        np.testing.assert_allclose(npy(r), want, rtol=1e-12)
    sign, logabs = L.slogdet(A)
    ws, wl = np.linalg.slogdet(c)
    np.testing.assert_allclose(npy(sign), ws, rtol=1e-12)
    np.testing.assert_allclose(npy(logabs), wl, rtol=1e-12)


def test_inv_det_solve_out_arguments():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    o = torch.empty(0, dtype=torch.float64)
    r = L.inv(T(a), out=o)
    assert r is o and o.shape == (2, 2)
    np.testing.assert_allclose(npy(o), np.linalg.inv(a), rtol=1e-12)
    o = torch.empty(0, dtype=torch.float64)
    L.det(T(a), out=o)
    assert o.item() == pytest.approx(5.0)
    o = torch.empty(0, dtype=torch.float64)
    L.solve(T(a), T([3.0, 4.0]), out=o)
    np.testing.assert_allclose(npy(o), np.linalg.solve(a, [3.0, 4.0]), rtol=1e-12)


def test_ordering_ops_refuse_the_dtypes_torch_has_no_kernel_for():
    c = torch.tensor([[1 + 1j, 2 - 1j]])
    b = torch.tensor([[True, False]])
    for f, cls, msg in [
            (lambda: torch.cummax(c, 1), NotImplementedError, "\"cummax_cpu\" not implemented for 'ComplexFloat'"),
            (lambda: torch.cummin(c, 1), NotImplementedError, "\"cummin_cpu\" not implemented"),
            (lambda: torch.median(c), NotImplementedError, "\"median_cpu\" not implemented for 'ComplexFloat'"),
            (lambda: torch.median(c, 1), NotImplementedError, "\"median_out\" not implemented"),
            (lambda: torch.nanmedian(c), NotImplementedError, "\"median_cpu\" not implemented"),
            (lambda: torch.mode(c), NotImplementedError, "\"mode_cpu\" not implemented"),
            (lambda: torch.kthvalue(c, 1), NotImplementedError, "\"kthvalue_cpu\" not implemented"),
            (lambda: torch.kthvalue(b, 1), NotImplementedError, "\"kthvalue_cpu\" not implemented for 'Bool'"),
            (lambda: torch.topk(b, 1), RuntimeError, "topk does not support bool dtypes on CPU"),
            (lambda: torch.unique(c), NotImplementedError, "\"unique\" not implemented for 'ComplexFloat'"),
            (lambda: torch.unique(c, dim=0), NotImplementedError, "\"unique_dim\" not implemented"),
            (lambda: torch.unique_consecutive(c), NotImplementedError, "\"unique\" not implemented"),
            (lambda: torch.nansum(c), RuntimeError, "nansum on CPU does not support complex inputs")]:
        with pytest.raises(cls, match=msg):
            f()
    assert torch.mode(b).values.tolist() == [False]         # bool mode has a kernel


# ---- optional cross-check against PyTorch --------------------------------------------------------

def test_cross_check_against_torch():
    ref = pytest.importorskip("torch", reason="PyTorch cross-check (reference only)")
    rng = np.random.default_rng(6)
    a = rng.standard_normal((3, 4, 5))
    u = rng.standard_normal(8)
    o = np.argsort(u)
    v = rng.standard_normal(5)
    for f in (lambda M, x: M.norm(x, "nuc", dim=(0, 1)),
              lambda M, x: M.einsum("b...,b...->b", x, x),
              lambda M, x: M.histc(x, bins=7, min=1, max=1),
              lambda M, x: M.unique_consecutive((x > 0).long(), dim=2),
              lambda M, x: M.sum(x[0, 0, 0], 0)):
        np.testing.assert_allclose(npy(f(torch, T(a))), f(ref, ref.tensor(a)).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(
        npy(torch.searchsorted(T(u), T(v), sorter=T(o))),
        ref.searchsorted(ref.tensor(u), ref.tensor(v), sorter=ref.tensor(o)).numpy())
