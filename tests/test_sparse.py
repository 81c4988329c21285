"""Sparse COO tensors (torch.sparse_coo_tensor, torch.sparse), sparse embedding gradients and
the optimizers that take them (SparseAdam, SGD, Adagrad). cpu only. References: NumPy dense
equivalents in float64, hand-derived gradients, and a NumPy re-implementation of SparseAdam."""
import copy
import io

import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from framework import nn, optim

I = np.array([[0, 1, 1, 0], [2, 0, 2, 2]])          # (0, 2) appears twice
V = np.array([3.0, 4.0, 5.0, 7.0])


def dense_ref(ix, v, shape):
    out = np.zeros(shape, np.float64)
    np.add.at(out, tuple(ix), v)
    return out


def sp(ix=I, v=V, size=(2, 3), **kw):
    return torch.sparse_coo_tensor(torch.tensor(ix), torch.tensor(v, dtype=torch.float64), size,
                                   **kw)


# ---- construction, conversion -------------------------------------------------------------

def test_metadata_and_to_dense():
    s = sp()
    assert s.is_sparse and s.layout is torch.sparse_coo and repr(s.layout) == "torch.sparse_coo"
    assert s.shape == torch.Size([2, 3]) and s.size() == (2, 3) and s.size(1) == 3
    assert s.dim() == 2 and s.numel() == 6 and len(s) == 2
    assert s.dtype is torch.float64 and s.device == torch.device("cpu")
    assert s.sparse_dim() == 2 and s.dense_dim() == 0 and s._nnz() == 4
    assert not s.is_coalesced() and not s.requires_grad and s.is_leaf
    np.testing.assert_array_equal(s.to_dense().numpy(), dense_ref(I, V, (2, 3)))
    np.testing.assert_array_equal(s._indices().numpy(), I)
    np.testing.assert_array_equal(s._values().numpy(), V)
    assert s._indices().dtype is torch.int64
    assert not torch.ones(2).is_sparse and torch.ones(2).layout is torch.strided


def test_size_inferred_and_hybrid_dense_dims():
    v = np.arange(8.0).reshape(4, 2)
    s = torch.sparse_coo_tensor(torch.tensor(I), torch.tensor(v))
    assert s.shape == (2, 3, 2) and s.sparse_dim() == 2 and s.dense_dim() == 1
    ref = np.zeros((2, 3, 2))
    np.add.at(ref, tuple(I), v)
    np.testing.assert_array_equal(s.to_dense().numpy(), ref)
    # lists, an explicit dtype, float indices (converted to int64, as PyTorch)
    t = torch.sparse_coo_tensor([[0.0, 1.0]], [1, 2], (3,), dtype=torch.float32)
    assert t.dtype is torch.float32 and t._indices().dtype is torch.int64
    np.testing.assert_array_equal(t.to_dense().numpy(), [1, 2, 0])


def test_coalesce_sums_duplicates():
    s = sp()
    c = s.coalesce()
    assert c.is_coalesced() and c._nnz() == 3
    np.testing.assert_array_equal(c.indices().numpy(), [[0, 1, 1], [2, 0, 2]])
    np.testing.assert_array_equal(c.values().numpy(), [10.0, 4.0, 5.0])
    assert c.coalesce() is c
    with pytest.raises(RuntimeError, match="uncoalesced"):
        s.indices()
    with pytest.raises(RuntimeError, match="uncoalesced"):
        s.values()
    # nnz < 2 is coalesced from the start; is_coalesced=True is trusted
    assert sp([[0], [1]], [1.0]).is_coalesced()
    assert sp([[0, 1], [1, 0]], [1.0, 2.0], is_coalesced=True).is_coalesced()
    e = sp(np.zeros((2, 0), np.int64), np.zeros(0))
    assert e.is_coalesced() and e._nnz() == 0 and e.to_dense().numpy().sum() == 0


def test_to_sparse_from_dense():
    a = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -3.0]])
    s = torch.tensor(a).to_sparse()
    assert s.is_coalesced() and s.sparse_dim() == 2
    np.testing.assert_array_equal(s.indices().numpy(), [[0, 1, 1], [1, 0, 2]])
    np.testing.assert_array_equal(s.values().numpy(), [1.5, 2.0, -3.0])
    r = torch.tensor(a).to_sparse(1)           # rows holding a nonzero, dense rows as values
    assert r.sparse_dim() == 1 and r.dense_dim() == 1
    np.testing.assert_array_equal(r.values().numpy(), a)
    np.testing.assert_array_equal(r.to_dense().numpy(), a)
    assert s.to_sparse() is s
    with pytest.raises(RuntimeError, match=r"\[0,2\] range, but 3"):
        torch.tensor(a).to_sparse(3)
    d = torch.tensor(a)
    assert d.to_dense() is d


def test_bad_inputs():
    with pytest.raises(RuntimeError, match="size is inconsistent with indices: for dim 1, size "
                                           "is 2 but found index 2"):
        sp(size=(2, 2), check_invariants=True)
    with pytest.raises(RuntimeError, match="found negative index -1 for dim 0"):
        sp(-I, size=(2, 3), check_invariants=True)
    with torch.sparse.check_sparse_tensor_invariants():
        with pytest.raises(RuntimeError, match="size is inconsistent"):
            sp(size=(2, 2))
    assert not torch.sparse.check_sparse_tensor_invariants.is_enabled()
    # unchecked: accepted, but refused (never read out of bounds) by the first op reading them
    bad = sp(size=(2, 2))
    with pytest.raises(RuntimeError, match="for dim 1, size is 2 but found index 2"):
        bad.to_dense()
    with pytest.raises(RuntimeError, match="same nnz, but got nnz from indices: 4, nnz from "
                                           "values: 3"):
        sp(I, V[:3])
    with pytest.raises(RuntimeError, match="len\\(size\\) = 3, sparse_dim = 2, dense_dim = 0"):
        sp(size=(2, 3, 4))
    with pytest.raises(RuntimeError, match="values has incorrect size, expected \\[4, 5\\], "
                                           "got \\[4, 2\\]"):
        torch.sparse_coo_tensor(torch.tensor(I), torch.ones(4, 2), (2, 3, 5))
    with pytest.raises(RuntimeError, match="sparse_dim x nnz"):
        torch.sparse_coo_tensor(torch.tensor([0, 1]), torch.ones(2), (2,))


def test_unsupported_ops_raise():
    s = sp()
    for f, op in ((lambda: s.view(6), "aten::view"), (lambda: s.exp(), "aten::exp"),
                  (lambda: torch.exp(s), "aten::exp"), (lambda: s == s, "aten::eq")):
        with pytest.raises(NotImplementedError, match=op):    # (a RuntimeError, as PyTorch's)
            f()
    assert issubclass(NotImplementedError, RuntimeError)
    with pytest.raises(RuntimeError, match="reshape is not implemented for sparse"):
        s.reshape(6)
    with pytest.raises(TypeError, match="can't convert Sparse layout tensor to numpy"):
        s.numpy()
    with pytest.raises(TypeError, match="Use Tensor.to_dense"):
        np.asarray(s)
    with pytest.raises(NotImplementedError, match="cpu only"):
        s.to("interpret")
    with pytest.raises(NotImplementedError, match="cpu only"):
        torch.sparse_coo_tensor(torch.tensor(I), torch.tensor(V), (2, 3), device="interpret")
    assert s.type() == "torch.sparse.DoubleTensor"


# ---- printing -------------------------------------------------------------------------------

def test_printing():
    s = torch.sparse_coo_tensor(torch.tensor([[0, 1], [2, 0]]), torch.tensor([3.0, 4.0]),
                                (2, 3))
    assert repr(s) == ("tensor(indices=tensor([[0, 1],\n"
                       "                       [2, 0]]),\n"
                       "       values=tensor([3., 4.]),\n"
                       "       size=(2, 3), nnz=2, layout=torch.sparse_coo)")
    assert str(s) == repr(s)
    r = sp([[0, 1]], [1.0, 2.0], (3,), requires_grad=True)
    assert repr(r) == ("tensor(indices=tensor([[0, 1]]),\n"
                       "       values=tensor([1., 2.]),\n"
                       "       size=(3,), nnz=2, dtype=torch.float64, layout=torch.sparse_coo,\n"
                       "       requires_grad=True)")
    e = torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.int64), torch.zeros(0, 2), (4, 2))
    assert repr(e) == ("tensor(indices=tensor([], size=(1, 0)),\n"
                       "       values=tensor([], size=(0, 2)),\n"
                       "       size=(4, 2), nnz=0, layout=torch.sparse_coo)")
    g = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.tensor([1.0], requires_grad=True),
                                (2,))
    assert repr(g).endswith("layout=torch.sparse_coo,\n"
                            "       grad_fn=<SparseCooTensorWithDimsAndTensorsBackward0>)")


# ---- arithmetic -----------------------------------------------------------------------------

def test_add_sub_scale():
    a = sp()
    b = sp([[1, 0], [1, 2]], [10.0, 20.0])
    ra, rb = dense_ref(I, V, (2, 3)), dense_ref([[1, 0], [1, 2]], [10, 20], (2, 3))
    np.testing.assert_array_equal((a + b).to_dense().numpy(), ra + rb)
    np.testing.assert_array_equal((a - b).to_dense().numpy(), ra - rb)
    np.testing.assert_array_equal(a.sub(b, alpha=2).to_dense().numpy(), ra - 2 * rb)
    assert (a + b)._nnz() == 6 and not (a + b).is_coalesced()        # entries of both
    c = a.coalesce() + b.coalesce()                                     # both coalesced: merged
    assert c.is_coalesced() and c._nnz() == 4
    np.testing.assert_array_equal(c.to_dense().numpy(), ra + rb)
    np.testing.assert_array_equal((a * 2.5).to_dense().numpy(), ra * 2.5)
    np.testing.assert_array_equal((3 * a).to_dense().numpy(), ra * 3)
    np.testing.assert_array_equal((a / 4).to_dense().numpy(), ra / 4)
    np.testing.assert_array_equal((-a).to_dense().numpy(), -ra)
    w = np.arange(6.0).reshape(2, 3)
    m = a * torch.tensor(w)
    assert m.is_sparse
    np.testing.assert_array_equal(m.to_dense().numpy(), ra * w)
    np.testing.assert_array_equal((a * b).to_dense().numpy(), ra * rb)
    # dense + sparse is dense; sparse + dense is PyTorch's error
    d = np.ones((2, 3))
    np.testing.assert_array_equal((torch.tensor(d) + a).numpy(), d + ra)
    np.testing.assert_array_equal((torch.tensor(d) - a).numpy(), d - ra)
    np.testing.assert_array_equal(torch.add(torch.tensor(d), a, alpha=2).numpy(), d + 2 * ra)
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        a + torch.tensor(d)
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        a + 1
    with pytest.raises(RuntimeError, match="expected sizes of 'self' and 'other' to match"):
        a + sp(size=(2, 4))
    with pytest.raises(RuntimeError, match="does not currently support broadcasting"):
        torch.ones(2, 4, dtype=torch.float64) + a


def test_dense_add_inplace():
    a = sp()
    t = torch.ones(2, 3, dtype=torch.float64)
    v0 = t._version
    r = t.add_(a, alpha=-0.5)
    assert r is t and t._version == v0 + 1
    np.testing.assert_array_equal(t.numpy(), 1 - 0.5 * dense_ref(I, V, (2, 3)))
    t -= a
    np.testing.assert_array_equal(t.numpy(), 1 - 1.5 * dense_ref(I, V, (2, 3)))
    before = t.numpy().copy()
    with pytest.raises(RuntimeError, match="does not currently support broadcasting"):
        t.add_(sp([[0]], [1.0], (3,)))          # (broadcasts, but not for a sparse operand)
    np.testing.assert_array_equal(t.numpy(), before)


def test_transpose_and_sum():
    s = sp()
    ref = dense_ref(I, V, (2, 3))
    for tt in (s.t(), s.T, s.transpose(0, 1)):
        assert tt.shape == (3, 2)
        np.testing.assert_array_equal(tt.to_dense().numpy(), ref.T)
    h = torch.sparse_coo_tensor(torch.tensor(I), torch.ones(4, 2), (2, 3, 2))
    with pytest.raises(RuntimeError, match="t\\(\\) expects a tensor with <= 2 sparse and 0 "
                                           "dense dimensions"):
        h.t()
    with pytest.raises(RuntimeError, match="transposed dimensions must be sparse"):
        h.transpose(0, 2)
    total = torch.sparse.sum(s)
    assert not total.is_sparse and total.shape == () and total.item() == ref.sum()
    s0 = torch.sparse.sum(s, 0)
    assert s0.is_sparse and s0.is_coalesced() and s0.shape == (3,)
    np.testing.assert_array_equal(s0.to_dense().numpy(), ref.sum(0))
    np.testing.assert_array_equal(s.sum(-1).to_dense().numpy(), ref.sum(1))
    np.testing.assert_array_equal(s.sum(0, keepdim=True).to_dense().numpy(),
                                  ref.sum(0, keepdims=True))
    both = torch.sparse.sum(s, (0, 1))
    assert not both.is_sparse and both.item() == ref.sum()
    hv = np.arange(8.0).reshape(4, 2)
    h = torch.sparse_coo_tensor(torch.tensor(I), torch.tensor(hv), (2, 3, 2))
    href = np.zeros((2, 3, 2))
    np.add.at(href, tuple(I), hv)
    for dims in (2, 0, (0, 1)):
        got = torch.sparse.sum(h, dims)
        got = got.to_dense() if got.is_sparse else got
        np.testing.assert_array_equal(got.numpy(), href.sum(axis=dims))
    with pytest.raises(RuntimeError, match="expected sparse coordinate tensor layout"):
        torch.sparse.sum(torch.ones(2))


def test_softmax_against_numpy():
    s = sp().coalesce()
    ref = dense_ref(I, V, (2, 3))
    mask = dense_ref(I, np.ones(4), (2, 3)) > 0
    for dim in (0, 1):
        x = np.where(mask, ref, -np.inf)
        e = np.exp(x - x.max(dim, keepdims=True))
        want = np.where(mask, e / e.sum(dim, keepdims=True), 0)
        np.testing.assert_allclose(torch.sparse.softmax(s, dim).to_dense().numpy(), want,
                                   rtol=1e-12)
        lw = torch.sparse.log_softmax(s, dim)
        np.testing.assert_allclose(np.exp(lw.values().numpy()), want[mask], rtol=1e-12)


# ---- products and their gradients --------------------------------------------------------------

def test_mm_against_numpy():
    rng = np.random.default_rng(0)
    d = rng.standard_normal((3, 4))
    ref = dense_ref(I, V, (2, 3))
    s = sp()
    for r in (torch.sparse.mm(s, torch.tensor(d)), torch.mm(s, torch.tensor(d)),
              s @ torch.tensor(d), s.mm(torch.tensor(d)), torch.matmul(s, torch.tensor(d))):
        np.testing.assert_allclose(r.numpy(), ref @ d, rtol=1e-12)
    vec = rng.standard_normal(3)
    np.testing.assert_allclose((s @ torch.tensor(vec)).numpy(), ref @ vec, rtol=1e-12)
    left = rng.standard_normal((5, 2))
    np.testing.assert_allclose((torch.tensor(left) @ s).numpy(), left @ ref, rtol=1e-12)
    np.testing.assert_allclose(torch.mm(torch.tensor(left), s).numpy(), left @ ref, rtol=1e-12)
    c = rng.standard_normal((2, 4))
    np.testing.assert_allclose(torch.sparse.addmm(torch.tensor(c), s, torch.tensor(d), beta=0.5,
                                                  alpha=2.0).numpy(), 0.5 * c + 2 * ref @ d,
                               rtol=1e-12)
    ss = torch.sparse.mm(s, s.t())
    assert ss.is_sparse
    np.testing.assert_allclose(ss.to_dense().numpy(), ref @ ref.T, rtol=1e-12)
    with pytest.raises(RuntimeError, match="Expected dim 0 size 3, got 4"):
        torch.sparse.mm(s, torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        torch.sparse.mm(s, torch.ones(3, 2))


def test_sparse_mm_gradients_by_hand():
    rng = np.random.default_rng(1)
    d = rng.standard_normal((3, 2))
    g = rng.standard_normal((2, 2))
    s = sp(requires_grad=True)
    D = torch.tensor(d, requires_grad=True)
    out = torch.sparse.mm(s, D)
    assert type(out.grad_fn).__name__ == "SparseAddmmBackward0"
    out.backward(torch.tensor(g))
    ref = dense_ref(I, V, (2, 3))
    np.testing.assert_allclose(D.grad.numpy(), ref.T @ g, rtol=1e-12)
    # the sparse input's gradient: (g @ D^T) at its coalesced pattern, flagged uncoalesced
    # as PyTorch's (so .indices() raises there too)
    assert s.grad.is_sparse and not s.grad.is_coalesced()
    gs = g @ d.T
    np.testing.assert_array_equal(s.grad._indices().numpy(), [[0, 1, 1], [2, 0, 2]])
    np.testing.assert_allclose(s.grad._values().numpy(), [gs[0, 2], gs[1, 0], gs[1, 2]],
                               rtol=1e-12)
    with pytest.raises(RuntimeError, match="uncoalesced"):
        s.grad.indices()
    # torch.mm / @ give the sparse input a dense gradient, as PyTorch
    s2 = sp(requires_grad=True)
    (s2 @ torch.tensor(d)).backward(torch.tensor(g))
    assert not s2.grad.is_sparse
    np.testing.assert_allclose(s2.grad.numpy(), gs, rtol=1e-12)


def test_gradcheck_through_values():
    ix = torch.tensor(I)

    def f(v, d):
        return torch.sparse.mm(torch.sparse_coo_tensor(ix, v, (2, 3)), d)

    v = torch.tensor(V, requires_grad=True)
    d = torch.tensor(np.random.default_rng(2).standard_normal((3, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(f, (v, d))
    assert torch.autograd.gradcheck(lambda v: torch.sparse_coo_tensor(ix, v, (2, 3)).to_dense(),
                                    (v,))
    assert torch.autograd.gradcheck(
        lambda x, v: x + torch.sparse_coo_tensor(ix, v, (2, 3)) * 3,
        (torch.ones(2, 3, dtype=torch.float64, requires_grad=True), v))


def test_to_dense_backward_by_hand():
    w = np.arange(6.0).reshape(2, 3)
    s = sp(requires_grad=True)
    d = s.to_dense()
    assert type(d.grad_fn).__name__ == "ToDenseBackward0"
    (d * torch.tensor(w)).sum().backward()
    # duplicates are summed by to_dense: one gradient entry per coalesced index (flagged
    # uncoalesced, as PyTorch's)
    assert not s.grad.is_coalesced()
    np.testing.assert_array_equal(s.grad._indices().numpy(), [[0, 1, 1], [2, 0, 2]])
    np.testing.assert_array_equal(s.grad._values().numpy(), [w[0, 2], w[1, 0], w[1, 2]])
    # a second gradient at the same indices adds entry by entry (equal index tensors)
    (s.to_dense() * torch.tensor(w)).sum().backward()
    assert s.grad._nnz() == 3
    np.testing.assert_array_equal(s.grad._values().numpy(), 2 * w[[0, 1, 1], [2, 0, 2]])
    v = torch.tensor(V, requires_grad=True)
    (torch.sparse_coo_tensor(torch.tensor(I), v, (2, 3)).to_dense() * torch.tensor(w)).sum() \
        .backward()
    np.testing.assert_array_equal(v.grad.numpy(), w[I[0], I[1]])   # each entry its cell's weight



def test_sparse_mask_keeps_uncoalesced_mask_and_its_gradient():
    x = torch.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    m = x.sparse_mask(sp())                      # mask I has (0, 2) twice: kept, as in PyTorch
    assert not m.is_coalesced() and m._nnz() == 4
    np.testing.assert_array_equal(m._indices().numpy(), I)
    np.testing.assert_array_equal(m._values().numpy(), [2.0, 3.0, 5.0, 2.0])
    w = np.arange(1.0, 7.0).reshape(2, 3)
    (m.to_dense() * torch.tensor(w)).sum().backward()
    ref = np.zeros((2, 3))
    np.add.at(ref, tuple(I), w[I[0], I[1]])      # one read of x per mask entry
    np.testing.assert_array_equal(x.grad.numpy(), ref)
    assert ref[0, 2] == 2 * w[0, 2]
    c = x.detach().sparse_mask(sp().coalesce())
    assert c.is_coalesced() and c._nnz() == 3


def test_size_only_constructor_and_addmm_gradient_name():
    z = torch.sparse_coo_tensor(size=(2, 3), dtype=torch.float64)
    assert z._nnz() == 0 and z.is_coalesced() and z.shape == (2, 3) and z.dtype is torch.float64
    assert tuple(z._indices().shape) == (2, 0)
    np.testing.assert_array_equal(torch.sparse_coo_tensor((2, 3)).to_dense().numpy(),
                                  np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="sparse_coo_tensor"):
        torch.sparse_coo_tensor()
    d = np.arange(6.0).reshape(3, 2)
    D = torch.tensor(d, requires_grad=True)
    r = torch.sparse.addmm(torch.ones(2, 2, dtype=torch.float64), sp(), D, beta=0.5, alpha=3)
    assert type(r.grad_fn).__name__ == "SparseAddmmBackward0"
    np.testing.assert_allclose(r.detach().numpy(), 0.5 + 3 * dense_ref(I, V, (2, 3)) @ d,
                               rtol=1e-12)
    r.sum().backward()
    np.testing.assert_allclose(D.grad.numpy(), 3 * dense_ref(I, V, (2, 3)).T @ np.ones((2, 2)),
                               rtol=1e-12)

def test_sparse_stride_is_zeros():
    s = sp()
    assert s.stride() == (0, 0) and s.stride(-1) == 0     # PyTorch 2.x: no strided storage
    with pytest.raises(IndexError, match="Dimension out of range"):
        s.stride(2)

# ---- embedding(sparse=True) -------------------------------------------------------------------

def test_embedding_sparse_grad_by_hand():
    torch.manual_seed(0)
    emb = nn.Embedding(5, 3, sparse=True)
    ids = np.array([[1, 2, 1], [4, 0, 1]])
    g = np.arange(18.0, dtype=np.float32).reshape(2, 3, 3)
    out = emb(torch.tensor(ids))
    assert type(out.grad_fn).__name__ == "EmbeddingBackward0"
    np.testing.assert_array_equal(out.detach().numpy(), emb.weight.detach().numpy()[ids])
    (out * torch.tensor(g)).sum().backward()
    gr = emb.weight.grad
    assert gr.is_sparse and not gr.is_coalesced() and gr.shape == (5, 3)
    np.testing.assert_array_equal(gr._indices().numpy(), ids.reshape(1, -1))
    np.testing.assert_array_equal(gr._values().numpy(), g.reshape(-1, 3))
    dense = np.zeros((5, 3), np.float32)
    np.add.at(dense, ids.reshape(-1), g.reshape(-1, 3))
    np.testing.assert_array_equal(gr.to_dense().numpy(), dense)
    # a second backward accumulates by concatenation
    emb(torch.tensor([3])).sum().backward()
    gr2 = emb.weight.grad
    np.testing.assert_array_equal(gr2._indices().numpy(), [[1, 2, 1, 4, 0, 1, 3]])
    np.testing.assert_array_equal(gr2._values().numpy()[-1], [1, 1, 1])
    emb.zero_grad()
    assert emb.weight.grad is None


def test_embedding_sparse_variants():
    w = torch.randn(5, 2, requires_grad=True)
    F.embedding(torch.tensor([1, 2, 1]), w, padding_idx=1, sparse=True).sum().backward()
    np.testing.assert_array_equal(w.grad._indices().numpy(), [[2]])      # padding rows dropped
    w.grad = None
    with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse"):
        F.embedding(torch.tensor([1]), w, scale_grad_by_freq=True, sparse=True).sum().backward()
    # two lookups in one backward: both sets of entries
    w = torch.randn(5, 2, requires_grad=True)
    (F.embedding(torch.tensor([0, 3]), w, sparse=True).sum()
     + 3 * F.embedding(torch.tensor([2]), w, sparse=True).sum()).backward()
    np.testing.assert_array_equal(w.grad.to_dense().numpy(),
                                  [[1, 1], [0, 0], [3, 3], [1, 1], [0, 0]])
    # with a dense gradient of the same weight the sum is dense
    w = torch.ones(5, 2, requires_grad=True)
    (F.embedding(torch.tensor([0, 3]), w, sparse=True).sum() + (w * w).sum()).backward()
    assert not w.grad.is_sparse
    np.testing.assert_array_equal(w.grad.numpy(), [[3, 3], [2, 2], [2, 2], [3, 3], [2, 2]])
    # autograd.grad returns the sparse gradient; zero_grad(set_to_none=False) empties it
    w = torch.randn(5, 2, requires_grad=True)
    (g,) = torch.autograd.grad(F.embedding(torch.tensor([4, 0]), w, sparse=True).sum(), w)
    np.testing.assert_array_equal(g._indices().numpy(), [[4, 0]])
    F.embedding(torch.tensor([4]), w, sparse=True).sum().backward()
    opt = optim.SGD([w], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert w.grad.is_sparse and w.grad._nnz() == 0
    # EmbeddingBag(sparse=True) passes its rows' gradients on
    eb = nn.EmbeddingBag(5, 2, sparse=True, mode="sum")
    eb(torch.tensor([[1, 2], [2, 3]])).sum().backward()
    np.testing.assert_array_equal(eb.weight.grad._indices().numpy(), [[1, 2, 2, 3]])


# ---- optimizers -------------------------------------------------------------------------------

STEPS = [(np.array([1, 3, 1]), np.array([[0.5, -1.0], [2.0, 0.25], [1.0, 1.0]])),
         (np.array([0, 3]), np.array([[-0.75, 0.5], [0.125, -2.0]])),
         (np.array([3]), np.array([[1.5, 1.5]]))]


def _sparse_adam_numpy(w, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
    """PyTorch's SparseAdam written out: coalesce, then update only the touched rows."""
    w = w.copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for step, (ids, rows) in enumerate(STEPS, 1):
        g = -rows if maximize else rows
        uniq = np.unique(ids)
        gc = np.stack([g[ids == u].sum(0) for u in uniq])
        m[uniq] = betas[0] * m[uniq] + (1 - betas[0]) * gc
        v[uniq] = betas[1] * v[uniq] + (1 - betas[1]) * gc ** 2
        size = lr * np.sqrt(1 - betas[1] ** step) / (1 - betas[0] ** step)
        w[uniq] -= size * m[uniq] / (np.sqrt(v[uniq]) + eps)
    return w


def _run(opt_cls, w0, sparse=True, **kw):
    w = torch.tensor(w0, requires_grad=True)
    opt = opt_cls([w], **kw)
    for ids, rows in STEPS:
        opt.zero_grad()
        F.embedding(torch.tensor(ids), w, sparse=sparse).backward(torch.tensor(rows))
        opt.step()
    return w.detach().numpy(), opt


@pytest.mark.parametrize("kw", [{}, dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6),
                                dict(lr=0.01, maximize=True)])
def test_sparse_adam_against_numpy(kw):
    w0 = np.random.default_rng(3).standard_normal((5, 2))
    got, opt = _run(optim.SparseAdam, w0, **kw)
    np.testing.assert_allclose(got, _sparse_adam_numpy(w0, **kw), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(got[[2, 4]], w0[[2, 4]])      # never looked up: unchanged
    st = opt.state[opt.param_groups[0]["params"][0]]
    assert st["step"] == 3 and st["exp_avg"].shape == (5, 2)


def test_sparse_adam_compiled_step_against_numpy():
    # compile() of a whole training step keeps the sparse gradient (a graph break at the
    # lookup) and so steps exactly as eager SparseAdam
    w0 = np.random.default_rng(4).standard_normal((5, 2))
    emb = nn.Embedding(5, 2, sparse=True, _weight=torch.tensor(w0))
    opt = optim.SparseAdam(list(emb.parameters()), lr=0.05)
    kinds = []

    @torch.compile
    def step(ids, rows):
        opt.zero_grad()
        (emb(ids) * rows).sum().backward()
        kinds.append((emb.weight.grad.is_sparse, emb.weight.grad._nnz()))
        opt.step()

    for ids, rows in STEPS:
        step(torch.tensor(ids), torch.tensor(rows))
    assert kinds == [(True, len(ids)) for ids, _ in STEPS]
    np.testing.assert_allclose(emb.weight.detach().numpy(), _sparse_adam_numpy(w0, lr=0.05),
                               rtol=1e-12, atol=1e-14)
    # a compiled module (backward outside the compiled region): the same sparse gradient
    e2 = nn.Embedding(5, 2, sparse=True, _weight=torch.tensor(w0))
    cm = torch.compile(e2)
    ids, rows = STEPS[0]
    (cm(torch.tensor(ids)) * torch.tensor(rows)).sum().backward()
    w = e2.weight
    assert w.grad.is_sparse
    np.testing.assert_array_equal(w.grad._indices().numpy(), ids.reshape(1, -1))
    np.testing.assert_array_equal(w.grad._values().numpy(), rows)


def test_sparse_adam_errors_and_repr():
    w = torch.zeros(3, 2, requires_grad=True)
    opt = optim.SparseAdam([w])
    assert repr(opt) == ("SparseAdam (\nParameter Group 0\n    betas: (0.9, 0.999)\n"
                         "    eps: 1e-08\n    lr: 0.001\n    maximize: False\n)")
    (w * 2).sum().backward()
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients, please "
                                           "consider Adam instead"):
        opt.step()
    assert w.detach().numpy().sum() == 0 and len(opt.state) == 0
    for kw, msg in ((dict(lr=0), "Invalid learning rate: 0"), (dict(eps=0), "Invalid epsilon"),
                    (dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
                    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1")):
        with pytest.raises(ValueError, match=msg):
            optim.SparseAdam([w], **kw)
    with pytest.raises(ValueError, match=r"Sparse params at indices \[\[0, 0\]\]: SparseAdam "
                                         "requires dense parameter tensors"):
        optim.SparseAdam([sp(requires_grad=True)])
    with pytest.raises(ValueError, match="Complex params at indices"):
        optim.SparseAdam([torch.zeros(2, dtype=torch.complex64, requires_grad=True)])


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, momentum=0.9),
                                dict(lr=0.1, momentum=0.9, nesterov=True),
                                dict(lr=0.05, momentum=0.5, dampening=0.25, maximize=True)])
def test_sgd_sparse_equals_dense(kw):
    w0 = np.random.default_rng(4).standard_normal((5, 2))
    a, _ = _run(optim.SGD, w0, sparse=True, **kw)
    b, _ = _run(optim.SGD, w0, sparse=False, **kw)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    assert not np.array_equal(a, w0)


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, lr_decay=0.05,
                                                   initial_accumulator_value=0.2)])
def test_adagrad_sparse_equals_dense(kw):
    # rows without a gradient move by 0 / (sqrt(sum) + eps) = 0 on the dense run too
    w0 = np.random.default_rng(5).standard_normal((5, 2))
    a, _ = _run(optim.Adagrad, w0, sparse=True, **kw)
    b, _ = _run(optim.Adagrad, w0, sparse=False, **kw)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_optimizers_refusing_sparse_grads():
    for cls, kw, msg in ((optim.Adam, {}, "Adam does not support sparse gradients, please "
                                          "consider SparseAdam instead"),
                         (optim.AdamW, {}, "Adam does not support sparse gradients"),
                         (optim.RMSprop, {}, "RMSprop does not support sparse gradients"),
                         (optim.SGD, dict(weight_decay=0.1), r"add\(sparse, dense\)"),
                         (optim.Adagrad, dict(weight_decay=0.1),
                          "weight_decay option is not compatible with sparse gradients")):
        w = torch.ones(4, 2, requires_grad=True)
        opt = cls([w], **kw)
        F.embedding(torch.tensor([1]), w, sparse=True).sum().backward()
        with pytest.raises(RuntimeError, match=msg):
            opt.step()
        np.testing.assert_array_equal(w.detach().numpy(), np.ones((4, 2)))


def test_clip_grad_norm_refuses_sparse_grads():
    # PyTorch 2.13 has no sparse kernel for the norm either
    w = torch.ones(4, 2, requires_grad=True)
    F.embedding(torch.tensor([1]), w, sparse=True).sum().backward()
    with pytest.raises(NotImplementedError, match="linalg_vector_norm"):
        nn.utils.clip_grad_norm_([w], 1.0)


# ---- copies and checkpoints -------------------------------------------------------------------

def test_save_load_and_deepcopy():
    s = sp(requires_grad=True)
    buf = io.BytesIO()
    torch.save({"a": s, "b": [s]}, buf)
    buf.seek(0)
    r = torch.load(buf)
    assert r["b"][0] is r["a"] and r["a"].is_sparse and r["a"].requires_grad
    np.testing.assert_array_equal(r["a"]._indices().numpy(), I)
    np.testing.assert_array_equal(r["a"].to_dense().detach().numpy(), dense_ref(I, V, (2, 3)))
    c = copy.deepcopy(s)
    assert c is not s and c.requires_grad and not c.is_coalesced()
    np.testing.assert_array_equal(c._values().numpy(), V)
    cl = s.detach().clone()
    cl._values()[0] = 100.0             # the clone has its own values
    assert s._values()[0].item() == 3.0


# ---- sspaddmm / smm / hspmm / spmm / dsmm / saddmm / spdiags / *_copy -------------------------

def _s33():
    ix = np.array([[2, 0, 2], [1, 2, 0]])
    v = np.array([1.0, 2.0, 3.0])
    return ix, v, sp(ix, v, (3, 3))


def test_sspaddmm_smm_hspmm_match_numpy():
    ix, v, s = _s33()
    rng = np.random.default_rng(5)
    d = rng.standard_normal((3, 2))
    prod = dense_ref(ix, v, (3, 3)) @ d           # rows 0 and 2 hold entries, row 1 none
    r = torch.smm(s, torch.tensor(d))
    assert r.is_sparse and not r.is_coalesced() and r._nnz() == 4
    np.testing.assert_array_equal(r._indices().numpy(), [[0, 0, 2, 2], [0, 1, 0, 1]])
    np.testing.assert_allclose(r.to_dense().numpy(), prod, rtol=1e-12)
    np.testing.assert_allclose(s.smm(torch.tensor(d)).to_dense().numpy(), prod, rtol=1e-12)
    h = torch.hspmm(s, torch.tensor(d))
    assert (h.sparse_dim(), h.dense_dim(), h.shape) == (1, 1, (3, 2))
    np.testing.assert_array_equal(h._indices().numpy(), [[0, 2]])
    np.testing.assert_allclose(h._values().numpy(), prod[[0, 2]], rtol=1e-12)
    inp = sp(np.array([[1, 1], [0, 0]]), np.array([1.0, 1.0]), (3, 2))   # uncoalesced input
    r = torch.sspaddmm(inp, s, torch.tensor(d), beta=2, alpha=0.5)
    assert r._nnz() == 6                      # input's entries first, kept as they are
    np.testing.assert_array_equal(r._indices().numpy()[:, :2], [[1, 1], [0, 0]])
    want = 2 * dense_ref([[1, 1], [0, 0]], [1.0, 1.0], (3, 2)) + 0.5 * prod
    np.testing.assert_allclose(r.to_dense().numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(torch.saddmm(inp, s, torch.tensor(d)).to_dense().numpy(),
                               dense_ref([[1, 1], [0, 0]], [1.0, 1.0], (3, 2)) + prod, rtol=1e-12)
    # spmm / dsmm: mm with a sparse first operand (dense result, mm's gradient)
    a = sp(ix, v, (3, 3)).requires_grad_()
    r = torch.spmm(a, torch.tensor(d))
    assert r.grad_fn.name() == "MmBackward0"
    np.testing.assert_allclose(torch.dsmm(s, torch.tensor(d)).numpy(), prod, rtol=1e-12)


def test_sspaddmm_family_errors():
    _, _, s = _s33()
    d = torch.ones(3, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="sspaddmm: Argument #3: Expected dim 0 size 3, got 2"):
        torch.smm(s, d.t())
    with pytest.raises(RuntimeError, match="hspmm: Argument #3: Expected dim 0 size 3, got 2"):
        torch.hspmm(s, d.t())
    with pytest.raises(RuntimeError, match="addmm: Argument #3 \\(dense\\): Expected dim 0 size 3, "
                                           "got 2"):
        torch.spmm(s, d.t())            # (the sparse op's check, before a dense shape check)
    with pytest.raises(RuntimeError, match="hspmm: Argument #3: matrices expected, got 3D"):
        torch.hspmm(s, d[None])
    with pytest.raises(RuntimeError, match="sspaddmm: Argument #1: Expected dim 1 size 2, got 3"):
        torch.sspaddmm(s, s, d)
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        torch.smm(s, d.float())
    with pytest.raises(RuntimeError, match="tensor.sspaddmm\\(...\\) can only be called on "
                                           "sparse tensors"):
        torch.smm(d.t(), d)
    with pytest.raises(RuntimeError, match="sspaddmm: expected 'mat2' to have strided layout"):
        torch.saddmm(s, s, s)
    with pytest.raises(NotImplementedError, match="Could not run 'aten::hspmm' with arguments "
                                                  "from the 'CPU' backend"):
        torch.hspmm(d.t(), d)


def test_spdiags_matches_scipy_layout_rule():
    diags = np.array([[1.0, 2.0, 3.0, 9.0], [4.0, 5.0, 6.0, 9.0]])
    for offs, shape in (([0, -1], (3, 3)), ([0, 1], (3, 4)), ([1, -2], (4, 3))):
        want = np.zeros(shape)
        for k, o in enumerate(offs):           # diags[k, j] at (j - o, j)
            for j in range(shape[1]):
                if 0 <= j - o < shape[0] and j < diags.shape[1]:
                    want[j - o, j] = diags[k, j]
        for layout in (None, torch.sparse_csr, torch.sparse_csc):
            r = torch.sparse.spdiags(torch.tensor(diags), torch.tensor(offs), shape,
                                     layout=layout)
            assert r.layout is (torch.sparse_coo if layout is None else layout)
            np.testing.assert_array_equal(r.to_dense().numpy(), want)
    r = torch.sparse.spdiags(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
                             torch.tensor([0, -1]), (3, 3))
    np.testing.assert_array_equal(r._indices().numpy(), [[0, 1, 2, 1, 2], [0, 1, 2, 0, 1]])
    cases = [((torch.ones(1, 3), torch.tensor([0, 0])), "Number of diagonals \\(1\\) does not "
                                                        "match the number of offsets \\(2\\)"),
             ((torch.ones(2, 3), torch.tensor([0, 0])), "Offset tensor contains duplicate values"),
             ((torch.ones(1, 3), torch.tensor([0.0])), "Offset Tensor must have dtype Long but "
                                                       "got Float"),
             ((torch.ones(1, 1, 3), torch.tensor([0])), "Diagonals must be vector or matrix"),
             ((torch.ones(1, 3), torch.tensor([5])), "negative dimension -2")]
    for (dg, off), msg in cases:
        with pytest.raises(RuntimeError, match=msg):
            torch.sparse.spdiags(dg, off, (3, 3))
    with pytest.raises(RuntimeError, match="Only output layouts \\(Sparse, SparseCsc, SparseCsr\\) "
                                           "are supported, got Strided"):
        torch.sparse.spdiags(torch.ones(1, 3), torch.tensor([0]), (3, 3), layout=torch.strided)


def test_copy_accessors_and_spsolve():
    c = torch.tensor([[1.0, 0, 2], [0, 0, 3]]).to_sparse_csr()
    crow = torch.crow_indices_copy(c)
    assert crow.tolist() == [0, 2, 3] and torch.col_indices_copy(c).tolist() == [0, 2, 2]
    crow[0] = 5                                # a copy: c keeps its indices
    assert c.crow_indices().tolist() == [0, 2, 3]
    assert torch.values_copy(c).tolist() == [1.0, 2.0, 3.0]
    cc = torch.tensor([[1.0, 0, 2], [0, 0, 3]]).to_sparse_csc()
    assert torch.ccol_indices_copy(cc).tolist() == [0, 1, 1, 3]
    assert torch.row_indices_copy(cc).tolist() == [0, 0, 1]
    out = torch.empty(3, dtype=torch.int64)
    assert torch.crow_indices_copy(c, out=out) is out and out.tolist() == [0, 2, 3]
    v = torch.tensor([[1.0, 0], [0, 2]]).to_sparse_csr().requires_grad_()
    assert torch.values_copy(v).grad_fn.name() == "ValuesBackward0_copy"
    with pytest.raises(RuntimeError, match="row_indices expected sparse column compressed "
                                           "tensor layout but got SparseCsr"):
        torch.row_indices_copy(c)
    with pytest.raises(RuntimeError, match="values expected sparse tensor layout but got Strided"):
        torch.values_copy(torch.eye(2))
    # torch 2.13's cpu build has no COO kernel for these, nor a cpu spsolve (it needs cuDSS)
    for f in (torch.indices_copy, torch.values_copy):
        with pytest.raises(NotImplementedError, match="from the 'SparseCPU' backend"):
            f(sp())
    with pytest.raises(NotImplementedError, match="Could not run 'aten::_spsolve'"):
        torch.sparse.spsolve(c, torch.ones(2))


def test_as_sparse_gradcheck():
    gc = torch.sparse.as_sparse_gradcheck(torch.autograd.gradcheck)
    x = torch.tensor([[0.0, 1], [2, 3]], dtype=torch.float64).to_sparse().requires_grad_()
    assert gc(lambda t: t.to_dense() * 2, x)
    assert gc(lambda t: t.to_sparse_csr(), x)          # (PyTorch's docstring example)
    assert gc(lambda t: (t * 3).to_dense().sum(), x, masked=True)
    c = torch.tensor([[0.0, 1], [2, 3]], dtype=torch.float64).to_sparse_csr().requires_grad_()
    assert gc(lambda t: t.to_dense() ** 2, c)
    d = torch.tensor(np.random.default_rng(0).standard_normal((2, 2)), requires_grad=True)
    assert gc(lambda t, m: torch.sparse.mm(t, m), (x, d))
    # a wrong gradient is caught: x's zero element is checked too (specified as a zero)
    assert not gc(lambda t: _WrongGrad.apply(t.to_dense()), x, raise_exception=False)


class _WrongGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        return t * 2

    @staticmethod
    def backward(ctx, g):
        return g * 3


def test_coo_to_compressed_keeps_explicit_zeros_and_gradient():
    v = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.sparse_coo_tensor(torch.tensor([[0, 0, 1], [0, 1, 0]]), v, (2, 2))
    r = y.to_sparse_csr()
    assert r.grad_fn.name() == "ToSparseCsrBackward0"
    assert r.crow_indices().tolist() == [0, 2, 3] and r.values().tolist() == [0.0, 1.0, 2.0]
    g, = torch.autograd.grad((r.to_dense() * torch.tensor([[1.0, 2], [3, 4]],
                                                          dtype=torch.float64)).sum(), v)
    assert g.tolist() == [1.0, 2.0, 3.0]
    c = y.to_sparse_csc()                   # column-major order of the same entries
    assert c.ccol_indices().tolist() == [0, 2, 3] and c.row_indices().tolist() == [0, 1, 0]
    assert c.values().tolist() == [0.0, 2.0, 1.0]
    u = sp(np.array([[1, 0, 0], [0, 1, 1]]), np.array([5.0, 1.0, 2.0]), (2, 2))   # duplicates
    assert u.to_sparse_csr().values().tolist() == [3.0, 5.0]
