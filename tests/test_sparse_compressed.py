"""Sparse compressed tensors (CSR/CSC/BSR/BSC): construction and invariants, conversions,
printing, math and autograd. cpu only. References: NumPy dense arrays in float64 and
hand-built compressed arrays."""
import io

import numpy as np
import pytest

import framework as torch

# A = [[1, 0, 2],
#      [0, 3, 0],
#      [0, 0, 0]]  as CSR by hand
CROW, COL, VAL = [0, 2, 3, 3], [0, 2, 1], [1.0, 2.0, 3.0]
A = np.array([[1.0, 0, 2], [0, 3, 0], [0, 0, 0]])


def csr(vals=VAL, dtype=torch.float64, **kw):
    v = vals if isinstance(vals, torch.Tensor) else torch.tensor(vals, dtype=dtype)
    return torch.sparse_csr_tensor(torch.tensor(CROW), torch.tensor(COL), v, (3, 3), **kw)


def arr(t):
    return np.asarray(t.detach().numpy())


def rand(*shape, density=0.5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * (rng.random(shape) < density)


# ---- construction, accessors, invariants --------------------------------------------------------

def test_csr_constructor_and_accessors():
    s = csr()
    assert s.layout is torch.sparse_csr and s.is_sparse_csr and not s.is_sparse
    assert (s.sparse_dim(), s.dense_dim(), s._nnz()) == (2, 0, 3)
    assert tuple(s.shape) == (3, 3) and s.dtype is torch.float64
    np.testing.assert_array_equal(arr(s.crow_indices()), CROW)
    np.testing.assert_array_equal(arr(s.col_indices()), COL)
    np.testing.assert_array_equal(arr(s.values()), VAL)
    np.testing.assert_array_equal(arr(s.to_dense()), A)
    with pytest.raises(RuntimeError, match="row_indices expected sparse column compressed "
                                           "tensor layout but got SparseCsr"):
        s.row_indices()
    with pytest.raises(RuntimeError, match="indices expected sparse coordinate"):
        s.indices()
    with pytest.raises(RuntimeError, match="do not have strides"):
        s.stride()
    with pytest.raises(TypeError, match="can't convert SparseCsr layout tensor to numpy"):
        s.numpy()
    # size inferred from the indices, as PyTorch: (len(crow) - 1, max(col) + 1)
    t = torch.sparse_csr_tensor(torch.tensor([0, 1, 2]), torch.tensor([0, 3]),
                                torch.tensor([1.0, 2.0]))
    assert tuple(t.shape) == (2, 4)


def test_compressed_tensor_other_layouts_by_hand():
    # CSC of A: columns 0, 1, 2 hold rows [0], [1], [0]
    c = torch.sparse_csc_tensor(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 0]),
                                torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64), (3, 3))
    np.testing.assert_array_equal(arr(c.to_dense()), A)
    np.testing.assert_array_equal(arr(c.ccol_indices()), [0, 1, 2, 3])
    # BSR with 2x2 blocks: one block in block row 0, block column 1
    blk = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    b = torch.sparse_bsr_tensor(torch.tensor([0, 1, 1]), torch.tensor([1]), torch.tensor(blk),
                                (4, 4))
    ref = np.zeros((4, 4))
    ref[0:2, 2:4] = blk[0]
    np.testing.assert_array_equal(arr(b.to_dense()), ref)
    g = torch.sparse_compressed_tensor(torch.tensor([0, 0, 1]), torch.tensor([0]),
                                       torch.tensor(blk), (4, 4), layout=torch.sparse_bsc)
    ref = np.zeros((4, 4))
    ref[0:2, 2:4] = blk[0]
    np.testing.assert_array_equal(arr(g.to_dense()), ref)
    with pytest.raises(RuntimeError, match="expected sparse compressed tensor layout but got "
                                           "none"):
        torch.sparse_compressed_tensor(torch.tensor([0, 1]), torch.tensor([0]),
                                       torch.tensor([1.0]), (1, 1))


@pytest.mark.parametrize("crow,col,msg", [
    ([0, 2, 4], [0, 1, 1], r"`crow_indices\[..., -1\] == nnz` is not satisfied"),
    ([1, 2, 3], [0, 1, 1], r"`crow_indices\[..., 0\] == 0` is not satisfied"),
    ([0, 2, 3], [0, 1, 5], r"`0 <= col_indices < ncols` is not satisfied"),
    ([0, 2, 3], [0, 1, -1], r"`0 <= col_indices < ncols` is not satisfied"),
    ([0, 2, 3], [1, 0, 1], r"are sorted and distinct along the last dimension"),
    ([0, 2, 3, 3], [0, 1, 1], r"crow_indices.shape\[-1\] must be equal to the number of rows "
                              r"\+ 1 \(=3\), but got 4"),
])
def test_invariant_errors(crow, col, msg):
    v = torch.tensor([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match=msg):
        torch.sparse_csr_tensor(torch.tensor(crow), torch.tensor(col), v, (2, 2),
                                check_invariants=True)
    # the global switch turns the same checks on
    with torch.sparse.check_sparse_tensor_invariants():
        with pytest.raises(RuntimeError, match=msg):
            torch.sparse_csr_tensor(torch.tensor(crow), torch.tensor(col), v, (2, 2))
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0, 3.0])     # inputs untouched


def test_unchecked_bad_indices_fail_when_read():
    s = torch.sparse_csr_tensor(torch.tensor([0, 2, 3]), torch.tensor([0, 1, 5]),
                                torch.tensor([1.0, 2.0, 3.0]), (2, 2))
    with pytest.raises(RuntimeError, match="col_indices < ncols"):
        s.to_dense()
    with pytest.raises(RuntimeError, match="same number of specified elements"):
        torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([0, 0]),
                                torch.tensor([1.0]), (1, 1))


# ---- conversions -------------------------------------------------------------------------------

def test_dense_to_csr_csc_match_hand_arrays():
    s = torch.tensor(A).to_sparse_csr()
    np.testing.assert_array_equal(arr(s.crow_indices()), CROW)
    np.testing.assert_array_equal(arr(s.col_indices()), COL)
    c = torch.tensor(A).to_sparse_csc()
    np.testing.assert_array_equal(arr(c.ccol_indices()), [0, 1, 2, 3])
    np.testing.assert_array_equal(arr(c.row_indices()), [0, 1, 0])
    np.testing.assert_array_equal(arr(c.values()), [1.0, 3.0, 2.0])
    # csr -> csc reorders the stored entries (explicit zeros kept)
    z = csr([1.0, 0.0, 3.0]).to_sparse_csc()
    np.testing.assert_array_equal(arr(z.values()), [1.0, 3.0, 0.0])
    assert z._nnz() == 3
    np.testing.assert_array_equal(arr(z.to_sparse_csr().values()), [1.0, 0.0, 3.0])
    assert torch.tensor(A).to_sparse(layout=torch.sparse_csc).layout is torch.sparse_csc


@pytest.mark.parametrize("layout,bs", [("csr", None), ("csc", None), ("bsr", (2, 1)),
                                       ("bsc", (1, 3)), ("bsr", 2)])
def test_round_trips_batched(layout, bs):
    d = rand(2, 4, 6, density=0.6, seed=1)
    d[:, :, :] = d[0]                  # the same pattern in each batch (PyTorch requires it)
    d[1] *= 2.0
    x = torch.tensor(d)
    s = getattr(x, "to_sparse_" + layout)(*(() if bs is None else (bs,)))
    assert s.layout is getattr(torch, "sparse_" + layout)
    np.testing.assert_array_equal(arr(s.to_dense()), d)
    coo = s.to_sparse_coo()
    assert coo.layout is torch.sparse_coo and coo.sparse_dim() == 3
    np.testing.assert_array_equal(arr(coo.to_dense()), d)
    if bs is not None:
        n = s.values().shape
        b = (bs, bs) if isinstance(bs, int) else bs
        assert tuple(n[2:]) == b


def test_block_conversions_and_coo():
    d = np.arange(16.0).reshape(4, 4)
    d[0, 0] = 0
    b = torch.tensor(d).to_sparse_bsr((2, 2))
    np.testing.assert_array_equal(arr(b.crow_indices()), [0, 2, 4])
    np.testing.assert_array_equal(arr(b.values()[1]), d[0:2, 2:4])
    c = b.to_sparse_bsc((2, 2))
    np.testing.assert_array_equal(arr(c.row_indices()), [0, 1, 0, 1])
    np.testing.assert_array_equal(arr(c.values()[1]), d[2:4, 0:2])
    np.testing.assert_array_equal(arr(c.to_dense()), d)
    coo = b.to_sparse_coo()         # every element of every block (the zero at (0, 0) too)
    assert coo._nnz() == 16
    np.testing.assert_array_equal(arr(coo.to_dense()), d)
    np.testing.assert_array_equal(arr(torch.tensor(A).to_sparse().to_sparse_csr().to_dense()),
                                  A)
    np.testing.assert_array_equal(arr(csr().to_sparse_bsr((1, 1)).to_dense()), A)


def test_dense_dims_and_conversion_errors():
    d = rand(3, 4, 2, seed=2)
    s = torch.tensor(d).to_sparse_csr(dense_dim=1)
    assert (s.sparse_dim(), s.dense_dim()) == (2, 1)
    np.testing.assert_array_equal(arr(s.to_dense()), d)
    with pytest.raises(RuntimeError, match=r"sparse size \(3,4\) must be divisible by given "
                                           r"blocksize \(2,2\)"):
        torch.ones(3, 4).to_sparse_bsr((2, 2))
    with pytest.raises(RuntimeError, match=r"dense_dim argument must be in \[0,0\] range, but "
                                           r"1 is given"):
        torch.ones(3, 4).to_sparse_csr(dense_dim=1)
    with pytest.raises(RuntimeError, match="Expect the same number of specified elements per "
                                           "batch"):
        torch.tensor([[[1.0, 0], [0, 2]], [[1.0, 1], [0, 2]]]).to_sparse_csr()
    with pytest.raises(RuntimeError, match="expected SparseCsr or SparseCsc layout but got "
                                           "SparseBsr"):
        torch.ones(2, 2).to_sparse_bsr((1, 1)).to_sparse_csr()
    with pytest.raises(RuntimeError, match="conversion from SparseCsr to SparseBsr for "
                                           "batched inputs is not supported"):
        torch.ones(2, 2, 2).to_sparse_csr().to_sparse_bsr((1, 1))


# ---- printing -----------------------------------------------------------------------------------

def test_printing():
    s = torch.sparse_csr_tensor(torch.tensor(CROW), torch.tensor(COL), torch.tensor(VAL), (3, 3))
    assert repr(s) == ("tensor(crow_indices=tensor([0, 2, 3, 3]),\n"
                       "       col_indices=tensor([0, 2, 1]),\n"
                       "       values=tensor([1., 2., 3.]), size=(3, 3), nnz=3,\n"
                       "       layout=torch.sparse_csr)")
    assert repr(s.to(torch.float64).t()) == (
        "tensor(ccol_indices=tensor([0, 2, 3, 3]),\n"
        "       row_indices=tensor([0, 2, 1]),\n"
        "       values=tensor([1., 2., 3.]), size=(3, 3), nnz=3, dtype=torch.float64,\n"
        "       layout=torch.sparse_csc)")
    assert repr(torch.zeros(2, 3).to_sparse_csr()) == (
        "tensor(crow_indices=tensor([0, 0, 0]),\n"
        "       col_indices=tensor([], size=(0,)),\n"
        "       values=tensor([], size=(0,)), size=(2, 3), nnz=0,\n"
        "       layout=torch.sparse_csr)")
    x = torch.tensor([[1.0, 0], [0, 2]], requires_grad=True)
    assert repr(x.to_sparse_bsr((1, 1))).endswith(
        "size=(2, 2), nnz=2, layout=torch.sparse_bsr,\n       grad_fn=<ToSparseBsrBackward0>)")


# ---- math --------------------------------------------------------------------------------------

def test_matmul_with_dense():
    x = rand(3, 2, density=1.0, seed=3)
    s, X = csr(), torch.tensor(x)
    for r in (s @ X, torch.mm(s, X), s.matmul(X), torch.sparse.mm(s, X)):
        np.testing.assert_allclose(arr(r), A @ x)
    np.testing.assert_allclose(arr(s @ torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)),
                               A @ [1.0, 2.0, 3.0])
    np.testing.assert_allclose(arr(torch.tensor(x.T) @ s), x.T @ A)
    np.testing.assert_allclose(arr((s @ s).to_dense()), A @ A)
    inp = rand(3, 2, density=1.0, seed=4)
    np.testing.assert_allclose(arr(torch.addmm(torch.tensor(inp), s, X, beta=0.5, alpha=2)),
                               0.5 * inp + 2 * A @ x)
    np.testing.assert_allclose(arr(torch.sparse.addmm(torch.tensor(inp), s, X, alpha=3)),
                               inp + 3 * A @ x)
    # blocked and column layouts multiply too
    d = rand(4, 6, density=0.5, seed=5)
    y = rand(6, 3, density=1.0, seed=6)
    for sp in (torch.tensor(d).to_sparse_bsr((2, 3)), torch.tensor(d).to_sparse_bsc((2, 2)),
               torch.tensor(d).to_sparse_csc()):
        np.testing.assert_allclose(arr(sp @ torch.tensor(y)), d @ y)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied "
                                           r"\(3x3 and 2x2\)"):
        s @ torch.ones(2, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        s @ torch.ones(3, 2)


def test_sampled_addmm():
    m1, m2 = rand(3, 4, density=1.0, seed=7), rand(4, 3, density=1.0, seed=8)
    r = torch.sparse.sampled_addmm(csr(), torch.tensor(m1), torch.tensor(m2), beta=0.5,
                                   alpha=2.0)
    assert r.layout is torch.sparse_csr
    P = m1 @ m2
    np.testing.assert_allclose(arr(r.values()),
                               0.5 * np.array(VAL) + 2.0 * P[[0, 0, 1], [0, 2, 1]])
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied "
                                           r"\(3x4 and 3x3\)"):
        torch.sparse.sampled_addmm(csr(), torch.tensor(m1), torch.tensor(m2[:3]))


def test_add_mul_sum_unary_transpose():
    s = csr()
    B = np.array([[0.0, 5, -2], [0, 0, 0], [4, 0, 0]])
    t = torch.tensor(B).to_sparse_csr()
    r = s + t
    assert r.layout is torch.sparse_csr and r._nnz() == 5        # the union (2 - 2 stays)
    np.testing.assert_array_equal(arr(r.to_dense()), A + B)
    np.testing.assert_array_equal(arr(torch.add(s, t, alpha=2).to_dense()), A + 2 * B)
    np.testing.assert_array_equal(arr(s + torch.ones(3, 3, dtype=torch.float64)), A + 1)
    np.testing.assert_array_equal(arr(torch.ones(3, 3, dtype=torch.float64) + s), A + 1)
    np.testing.assert_array_equal(arr((s * 2).to_dense()), 2 * A)
    np.testing.assert_array_equal(arr((3 * s).to_dense()), 3 * A)
    st = s * t                                  # CSR * CSR: the entries on both patterns
    assert st._nnz() == 1
    np.testing.assert_array_equal(arr(st.to_dense()), A * B)
    W = rand(3, 3, density=1.0, seed=13)
    sw = s * torch.tensor(W)
    assert sw._nnz() == 3
    np.testing.assert_allclose(arr(sw.to_dense()), A * W)
    assert float(s.sum()) == 6.0
    np.testing.assert_array_equal(arr(s.sum(1, keepdim=True).to_dense()), A.sum(1, keepdims=True))
    np.testing.assert_allclose(arr(s.sin().values()), np.sin(VAL))
    np.testing.assert_array_equal(arr((-s).values()), [-1.0, -2.0, -3.0])
    np.testing.assert_allclose(arr(s.sqrt().to_dense()), np.sqrt(A))
    tt = s.t()
    assert tt.layout is torch.sparse_csc
    np.testing.assert_array_equal(arr(tt.to_dense()), A.T)
    bt = torch.tensor(np.arange(16.0).reshape(4, 4)).to_sparse_bsr((2, 2)).t()
    assert bt.layout is torch.sparse_bsc
    np.testing.assert_array_equal(arr(bt.to_dense()), np.arange(16.0).reshape(4, 4).T)
    with pytest.raises(RuntimeError, match="crow_indices expected sparse row compressed tensor "
                                           "layout but got SparseCsc"):
        s + s.to_sparse_csc()
    with pytest.raises(RuntimeError, match="Expected input tensors to have the same shape"):
        s + torch.ones(2, 2, dtype=torch.float64).to_sparse_csr()
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        s + torch.tensor(A, dtype=torch.float32).to_sparse_csr()
    with pytest.raises(RuntimeError, match="keepdim=False is unsupported"):
        s.sum(0)
    with pytest.raises(RuntimeError, match="dtype argument is not supported by "
                                           "sparse_csr_to_dense"):
        s.to_dense(torch.float32)


def test_plain_tensor_sparse_accessors():
    x = torch.ones(2, 3)
    assert (x.sparse_dim(), x.dense_dim(), x.is_sparse_csr) == (0, 2, False)
    for name, msg in (("indices", "indices expected sparse coordinate tensor layout but got "
                                  "Strided"),
                      ("values", "values expected sparse tensor layout but got Strided"),
                      ("coalesce", "coalesce expected sparse coordinate"),
                      ("is_coalesced", "is_coalesced expected sparse coordinate"),
                      ("crow_indices", "crow_indices expected sparse row compressed"),
                      ("ccol_indices", "ccol_indices expected sparse column compressed")):
        with pytest.raises(RuntimeError, match=msg):
            getattr(x, name)()
    with pytest.raises(NotImplementedError, match="_nnz"):
        x._nnz()


# ---- autograd ----------------------------------------------------------------------------------

def test_grads_and_grad_fn_names():
    v = torch.tensor(VAL, dtype=torch.float64, requires_grad=True)
    x = torch.tensor(rand(3, 2, density=1.0, seed=9), requires_grad=True)
    s = csr(v)
    assert s.grad_fn.name() == "SparseCompressedTensorBackward0"
    y = s @ x
    assert y.grad_fn.name() == "MmBackward0"
    W = rand(3, 2, density=1.0, seed=10)
    (y * torch.tensor(W)).sum().backward()
    G = W @ x.detach().numpy().T                       # d/dA of sum(W * (A @ x))
    np.testing.assert_allclose(v.grad.numpy(), G[[0, 0, 1], [0, 2, 1]])
    np.testing.assert_allclose(x.grad.numpy(), A.T @ W)
    names = {"to_dense": "ToDenseBackward0", "sin": "SinBackward0", "t": "TBackward0",
             "values": "ValuesBackward0", "to_sparse_csc": "ToSparseCscBackward0"}
    for m, n in names.items():
        assert getattr(csr(v), m)().grad_fn.name() == n
    assert torch.sparse.addmm(torch.zeros(3, 2, dtype=torch.float64), csr(v),
                              x).grad_fn.name() == "SparseAddmmBackward0"
    assert torch.addmm(torch.zeros(3, 2, dtype=torch.float64), csr(v),
                       x).grad_fn.name() == "AddmmBackward0"
    assert (csr(v) @ x[:, 0]).grad_fn.name() == "MvBackward0"


def test_leaf_csr_grad_is_csr_and_accumulates():
    s = csr(requires_grad=True)
    s.to_dense().sum().backward()
    s.to_dense().sum().backward()
    assert s.grad.layout is torch.sparse_csr
    np.testing.assert_array_equal(arr(s.grad.values()), [2.0, 2.0, 2.0])


def test_gradcheck():
    x = torch.tensor(rand(3, 2, density=1.0, seed=11), requires_grad=True)
    v = torch.tensor(VAL, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, x: csr(v) @ x, (v, x))
    assert torch.autograd.gradcheck(lambda v: (csr(v).sin() * 2).t().to_dense(), (v,))
    m1 = torch.tensor(rand(3, 2, density=1.0, seed=12), requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v, a, b: torch.sparse.sampled_addmm(csr(v), a, b, beta=0.5).to_dense(),
        (v, m1, x.detach().t().clone().requires_grad_()))
    w = torch.tensor(rand(3, 3, density=1.0, seed=14), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, w: (csr(v) * w).to_dense(), (v, w))
    d = torch.tensor(A + 10.0, requires_grad=True)      # no zeros: a fixed pattern
    assert torch.autograd.gradcheck(lambda d: (d.to_sparse_csr() + csr()).to_dense(), (d,))


# ---- save / load ---------------------------------------------------------------------------------

@pytest.mark.parametrize("conv", [lambda t: t.to_sparse_csr(), lambda t: t.to_sparse_bsc(1)])
def test_save_load(conv):
    s = conv(torch.tensor(A))
    buf = io.BytesIO()
    torch.save({"s": s}, buf)
    buf.seek(0)
    r = torch.load(buf)["s"]
    assert r.layout is s.layout
    np.testing.assert_array_equal(arr(r.to_dense()), A)


def test_subtraction_is_refused_and_creation_warns_once():
    from framework import sparse_compressed as SC
    SC._warned.clear()
    with pytest.warns(UserWarning, match="Sparse CSR tensor support is in beta state"):
        a = torch.tensor([[1., 0.], [0., 2.]]).to_sparse_csr()
    d = torch.ones(2, 2)
    for f in (lambda: torch.sub(a, a), lambda: torch.sub(d, a), lambda: a - d, lambda: d - a,
              lambda: torch.subtract(a, d, alpha=2)):
        with pytest.raises(RuntimeError, match="unsupported tensor layout: SparseCsr"):
            f()
    np.testing.assert_array_equal(d.numpy(), np.ones((2, 2)))      # (left unchanged)
