"""Regressions from a differential sweep of shape and view ops against PyTorch 2.13 (view,
reshape, flatten, squeeze, permute/movedim, expand/broadcast, repeat, cat/stack families,
split/chunk/tensor_split, roll/rot90/flip, diag*, meshgrid, unfold, in-place view ops).
Expected values are hand-derived or NumPy float64 (strides are torch's, written out); the
optional cross-check at the end imports torch."""
import warnings

import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

A = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
M = np.arange(12, dtype=np.float64).reshape(3, 4)


def t(a=M, **kw):
    return torch.tensor(a, **kw)


def nc():
    """A (3, 4) float64 tensor with strides (1, 3): M's values, transposed storage."""
    return torch.tensor(np.ascontiguousarray(M.T)).t()


def shares(a, b):
    return np.shares_memory(to_np(a), to_np(b))


# ---- view / reshape / flatten / unflatten ----------------------------------------------------

def test_view_dtype_errors_name_torch_scalar_types():
    with pytest.raises(RuntimeError, match="self.size\\(-1\\) must be divisible by 2 to view Int "
                                           "as Long"):
        torch.arange(6, dtype=torch.int32).view(2, 3).view(torch.int64)
    with pytest.raises(RuntimeError, match="self.stride\\(-1\\) must be 1 to view Long as Int"):
        torch.arange(12).view(4, 3).t().view(torch.int32)
    with pytest.raises(RuntimeError, match="self.dim\\(\\) cannot be 0 to view Long as Int"):
        torch.tensor(5).view(torch.int32)
    x = torch.arange(8, dtype=torch.int32)
    with pytest.raises(RuntimeError, match="storage_offset\\(\\) must be divisible by 2"):
        x[1:7].view(torch.int64)
    r = x[2:6].view(torch.int64)          # an even offset is fine: little-endian pairs
    assert r.tolist() == [2 + (3 << 32), 4 + (5 << 32)]


def test_view_minus_one_of_zero_elements_is_ambiguous():
    z = torch.zeros(0, 3)
    for shape in ((-1, 0), (0, -1)):
        with pytest.raises(RuntimeError, match="0 elements .* ambiguous"):
            z.view(*shape)
    with pytest.raises(RuntimeError, match="ambiguous"):
        z.reshape(0, -1, 3)
    assert z.reshape(-1).shape == (0,) and z.view(3, 0, 1).shape == (3, 0, 1)


def test_flatten_dims_and_identity():
    s = torch.tensor(3.0)
    assert s.flatten().shape == (1,) and s.flatten(0, -1).shape == (1,)
    with pytest.raises(IndexError, match="Dimension out of range"):
        s.flatten(1)
    v = torch.arange(5.0)
    assert v.flatten() is v                          # torch returns self when start == end
    x = t(A)
    assert x.flatten(1, 1) is x
    assert x.flatten(1).shape == (2, 12)


def test_unflatten_errors():
    x = t(A)
    with pytest.raises(RuntimeError, match=r"Provided sizes \[3, -1\] don't multiply up to the "
                                           r"size of dim 2 \(4\)"):
        x.unflatten(2, (3, -1))
    with pytest.raises(RuntimeError, match="sizes must be non-empty"):
        torch.ones(1, 3).unflatten(0, ())
    assert_close(x.unflatten(-1, (2, -1)), A.reshape(2, 3, 2, 2))


# ---- squeeze / transpose / t / permute / movedim / T ---------------------------------------------

def test_squeeze_checks_dims():
    s = torch.tensor(2.0)
    assert s.squeeze(0).shape == () and s.squeeze(-1).shape == ()
    with pytest.raises(IndexError, match="Dimension out of range"):
        s.squeeze(1)
    b = torch.ones(1, 3, 1, 2)
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        b.squeeze((0, 0))
    assert b.squeeze((-2, 0, 1)).shape == (3, 2)    # a non-1 dim is left alone


def test_transpose_and_t_of_small_tensors_are_views():
    s = torch.tensor(2.0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        s.transpose(0, 1)
    r = s.transpose(0, -1)
    assert r is not s and r._base is s and r.shape == ()
    v = torch.arange(3.0)
    r = v.t()
    assert r is not v and r._base is v
    r[0] = 7.0
    assert v.tolist() == [7.0, 1.0, 2.0]
    with pytest.raises(RuntimeError, match="t\\(\\) expects a tensor with <= 2 dimensions"):
        t(A).t()


def test_permute_and_movedim_errors():
    x = t(A)
    with pytest.raises(RuntimeError, match="duplicate dims are not allowed"):
        x.permute(0, 0, 1)
    with pytest.raises(RuntimeError, match=r"repeated dim in `source` \(\[0, 0\]\)"):
        torch.movedim(x, [0, 0], [1, 2])
    with pytest.raises(RuntimeError, match=r"repeated dim in `destination` \(\[2, 2\]\)"):
        torch.movedim(x, [0, 1], [2, 2])
    s = torch.tensor(4.0)
    assert torch.movedim(s, 0, 0).item() == 4.0 and torch.movedim(s, -1, 0).shape == ()
    assert_close(torch.movedim(x, [0, 1], [2, 0]), np.moveaxis(A, [0, 1], [2, 0]))


def test_T_of_0d_warns_its_own_message():
    with pytest.warns(UserWarning, match="Tensor.T is deprecated on 0-D tensors"):
        r = torch.tensor(1.5).T
    assert r.item() == 1.5


# ---- expand / broadcast ------------------------------------------------------------------------

def test_expand_size_errors():
    c = torch.ones(3, 1)
    with pytest.raises(RuntimeError, match=r"expanded size of the tensor \(-1\) isn't allowed in "
                                           r"a leading, non-existing dimension 0"):
        c.expand(-1, 3, 4)
    with pytest.raises(RuntimeError, match="invalid size -2"):
        c.expand(3, -2)


def test_broadcast_shapes_like_torch():
    assert torch.broadcast_shapes() == torch.Size([])
    assert torch.broadcast_shapes(3, (2, 1)) == (2, 3)
    assert torch.broadcast_shapes((0, 1), (1, 3)) == (0, 3)
    assert isinstance(torch.broadcast_shapes((3, 1)), torch.Size)
    with pytest.raises(ValueError, match="negative length"):
        torch.broadcast_shapes((-1, 1), (1, 3))
    with pytest.raises(RuntimeError, match=r"dimension of length 2 at -2! Mismatching argument "
                                           r"at index 1 had \(2, 4\)"):
        torch.broadcast_shapes((3, 1), (2, 4))


def test_broadcast_tensors_returns_already_shaped_inputs_themselves():
    s, v = torch.tensor(2.0), torch.arange(5.0)
    a, b = torch.broadcast_tensors(s, v)
    assert b is v and a.shape == (5,) and a.stride() == (0,)
    (c,) = torch.broadcast_tensors(v)
    assert c is v


# ---- repeat / repeat_interleave ------------------------------------------------------------------

def test_repeat_result_is_contiguous():
    c = t(np.array([[1.0], [2.0], [3.0]]))
    r = c.repeat(2, 1, 3)
    assert r.stride() == (9, 3, 1) and r.is_contiguous()
    assert_close(r, np.tile(to_np(c), (2, 1, 3)))
    r = nc().repeat(1, 2)
    assert r.is_contiguous() and r.stride() == (8, 1)
    assert_close(r, np.tile(M, (1, 2)))
    s = torch.tensor(2.0)
    assert s.repeat(()).shape == () and s.repeat(()).item() == 2.0
    with pytest.raises(RuntimeError, match=r"negative dimension -3: \[-3, 1\]"):
        c.repeat(-1, 1)


def test_repeat_interleave_errors_and_layout():
    x = t()
    with pytest.raises(NotImplementedError, match="not implemented for 'Float'"):
        torch.repeat_interleave(x, torch.tensor([1.0, 2.0, 1.0]), dim=0)
    with pytest.raises(RuntimeError, match="repeats must be 0-dim or 1-dim tensor"):
        torch.repeat_interleave(x, torch.tensor([[1, 2, 1]]), dim=0)
    with pytest.raises(RuntimeError, match="repeats can not be negative"):
        torch.repeat_interleave(x, torch.tensor([1, -1, 1]), dim=0)
    r = torch.repeat_interleave(x, 2, dim=1)
    assert r.stride() == (8, 1) and r.is_contiguous()
    assert_close(r, np.repeat(M, 2, axis=1))


# ---- cat / stack ------------------------------------------------------------------------------

def test_cat_result_is_contiguous_and_errors_name_the_position():
    r = torch.cat([nc(), nc()], 1)
    assert r.stride() == (8, 1) and r.is_contiguous()
    assert_close(r, np.concatenate([M, M], 1))
    assert_close(torch.concatenate([t(), t()], axis=1), np.concatenate([M, M], 1))
    assert_close(torch.cat([t(), t()], axis=0), np.concatenate([M, M], 0))
    with pytest.raises(RuntimeError, match=r"zero-dimensional tensor \(at position 1\)"):
        torch.cat([torch.ones(2), torch.tensor(1.0)])


def test_cat_gives_a_skipped_empty_input_an_empty_gradient():
    x = t(requires_grad=True)
    e = torch.zeros(0, dtype=torch.float64, requires_grad=True)
    w = np.arange(12, dtype=np.float64).reshape(3, 4) - 5
    (torch.cat([e, x], 1) * t(w)).sum().backward()
    assert_close(x.grad, w)
    assert e.grad is not None and e.grad.shape == (0,)


@pytest.mark.parametrize("name", ["hstack", "vstack", "dstack", "column_stack"])
def test_stack_family_refuses_an_empty_list(name):
    with pytest.raises(RuntimeError, match=f"{name} expects a non-empty TensorList"):
        getattr(torch, name)([])


# ---- split family / select / unbind -------------------------------------------------------------

def test_split_family_on_0d_tensors():
    s = torch.tensor(1.0)
    for f, msg in ((lambda: s.split(1), "split expects at least a 1-dimensional tensor"),
                   (lambda: s.chunk(1), "chunk expects at least a 1-dimensional tensor"),
                   (lambda: s.tensor_split(2), "tensor_split expected at least a 1-dimensional"),
                   (lambda: torch.hsplit(s, 1), "torch.hsplit requires a tensor with at least 1"),
                   (lambda: torch.vsplit(torch.ones(5), 1), "vsplit requires a tensor with at "
                                                            "least 2 dimension")):
        with pytest.raises(RuntimeError, match=msg):
            f()
    with pytest.raises(IndexError, match="select\\(\\) cannot be applied to a 0-dim tensor"):
        s.select(0, 0)
    with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
        s.unbind()


def test_split_checks_and_chunk_of_an_empty_dim():
    x = torch.ones(7, 4)
    with pytest.raises(RuntimeError, match="split expects split_size be non-negative, but got "
                                           "split_size=-1"):
        x.split(-1)
    assert [p.shape for p in torch.zeros(0, 3).chunk(3)] == [(0, 3)] * 3
    assert [p.shape for p in torch.zeros(2, 0).chunk(2, 1)] == [(2, 0)] * 2
    with pytest.raises(RuntimeError, match="hsplit attempted to split along dimension 1, but the "
                                           "size of the dimension 4 is not divisible by the "
                                           "split_size 3"):
        torch.hsplit(x, 3)
    with pytest.raises(RuntimeError, match="vsplit attempted to split along dimension 0"):
        torch.vsplit(x, 2)
    a = torch.arange(7.0)
    assert [p.tolist() for p in torch.tensor_split(a, indices=[2])] == [[0, 1], [2, 3, 4, 5, 6]]
    assert [len(p) for p in torch.tensor_split(a, sections=3)] == [3, 2, 2]


# ---- roll / rot90 / flip -------------------------------------------------------------------------

def test_roll_always_returns_new_memory():
    s = torch.tensor(5.0)
    r = torch.roll(s, 1)
    r.fill_(0.0)
    assert s.item() == 5.0
    x = t()
    r = torch.roll(x, 0, 0)
    assert r is not x and not shares(r, x)
    assert_close(r, M)
    assert_close(torch.roll(x, torch.tensor(1), 0), np.roll(M, 1, 0))
    r = torch.roll(nc(), 1, 1)
    assert r.is_contiguous() and r.stride() == (4, 1)
    assert_close(r, np.roll(M, 1, 1))


@pytest.mark.parametrize("k", [-1, 0, 1, 2, 3, 5])
def test_rot90_values_grads_and_no_view(k):
    x = t(requires_grad=True)
    r = torch.rot90(x, k)
    assert_close(r, np.rot90(M, k))
    assert r._base is None                          # a new tensor (torch: flip + transpose_)
    if k % 4 in (1, 3):
        assert r.stride() == (1, 4)                 # torch's strides: the transposed copy
    w = np.arange(r.numel(), dtype=np.float64).reshape(r.shape)
    (r * t(w)).sum().backward()
    assert_close(x.grad, np.rot90(w, -k))


def test_flip_keeps_the_input_dim_order():
    r = nc().flip(1)
    assert r.stride() == (1, 3)                     # torch: same layout as the input
    assert_close(r, M[:, ::-1])
    e = torch.arange(4.0).expand(3, 4).flip(0)
    assert e.stride() == (4, 1)                     # an expanded input flips to contiguous


# ---- diag family ---------------------------------------------------------------------------------

def test_diag_of_a_matrix_copies():
    x = t()
    for off, want in ((0, [0.0, 5.0, 10.0]), (1, [1.0, 6.0, 11.0]), (-2, [8.0])):
        d = torch.diag(x, off)
        assert d.tolist() == want and d.stride() == (1,) and d._base is None
    d = torch.diag(x)
    d[0] = 99.0
    assert x[0, 0].item() == 0.0


def test_diag_embed_results_are_contiguous():
    x = t()
    r = torch.diag_embed(x, 1, 2, 0)
    assert r.shape == (5, 3, 5) and r.is_contiguous() and r.stride() == (15, 5, 1)
    want = np.zeros((5, 3, 5))
    for b in range(3):
        for i in range(4):
            want[i + 1, b, i] = M[b, i]     # offset 1 above the (dim1=2, dim2=0) diagonal
    assert_close(r, want)
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.diag_embed(torch.tensor(1.0))
    with pytest.raises(RuntimeError, match="diagonal dimensions cannot be identical 1, 1"):
        torch.diagonal(t(A), 0, 1, 1)


# ---- meshgrid / cartesian_prod -------------------------------------------------------------------

def test_meshgrid_default_warns_and_checks_inputs():
    a, b = torch.arange(3.0), torch.arange(2.0)
    with pytest.warns(UserWarning, match="it will be required to pass the indexing argument"):
        g = torch.meshgrid(a, b)
    assert g[0].shape == (3, 2)                     # 'ij' by default
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.meshgrid(a, b, indexing="xy")
        torch.cartesian_prod(a, b)
    with pytest.raises(RuntimeError, match="indexing must be one of"):
        torch.meshgrid(a, indexing="ab")
    with pytest.raises(RuntimeError, match="meshgrid expects a non-empty TensorList"):
        torch.meshgrid(indexing="ij")
    with pytest.raises(RuntimeError, match="meshgrid expects all tensors to have the same dtype"):
        torch.meshgrid(a, torch.arange(2), indexing="ij")
    with pytest.raises(RuntimeError, match=r"Expect a 1D vector, but got shape \[3, 4\]"):
        torch.cartesian_prod(t(), b)


# ---- Tensor.unfold -------------------------------------------------------------------------------

def test_unfold_is_a_view_with_torch_strides():
    x = t()
    u = x.unfold(1, 2, 2)
    assert u.shape == (3, 2, 2) and u.stride() == (4, 2, 1)
    assert_close(u, M.reshape(3, 2, 2))
    u[0, 1, 0] = -1.0
    assert x[0, 2].item() == -1.0                   # writes reach the input
    w = torch.arange(5.0).unfold(0, 2, 1)
    assert w.stride() == (1, 1) and not w.is_contiguous()
    assert w.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]
    assert torch.tensor(3.0).unfold(0, 1, 1).shape == (1,)


def test_unfold_gradient_counts_overlapping_windows():
    x = torch.arange(5.0, dtype=torch.float64, requires_grad=True)
    (x.unfold(0, 3, 1) * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0, 4.0, 2.0]   # each element's window count, x2
    y = t(requires_grad=True)
    r = nc().unfold(0, 2, 1)                              # (non-contiguous input: a copy)
    assert_close(r, np.stack([M[0:2].T, M[1:3].T]))
    (y.unfold(1, 2, 2) ** 2).sum().backward()
    assert_close(y.grad, 2 * M)


# ---- in-place view ops ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", [lambda x: x.squeeze_(), lambda x: x.unsqueeze_(0),
                                lambda x: x.t_(), lambda x: x.transpose_(0, 1),
                                lambda x: x.swapaxes_(0, 1),
                                lambda x: x.as_strided_((2,), (1,))])
def test_inplace_view_ops_refuse_a_leaf_that_requires_grad(op):
    x = torch.ones(1, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        op(x)
    assert x.shape == (1, 3)
    with torch.no_grad():
        op(x)                                        # allowed without grad mode


def test_t__error_names_t_():
    with pytest.raises(RuntimeError, match="t_\\(\\) expects a tensor with <= 2 dimensions, but "
                                           "self is 3D"):
        torch.ones(2, 3, 4).t_()


# ---- layouts of gathers and clones ---------------------------------------------------------------

def test_gathers_from_contiguous_inputs_are_contiguous():
    x = t()
    r = x[:, torch.tensor([0, 0, 1])]
    assert r.stride() == (3, 1)
    assert_close(r, M[:, [0, 0, 1]])
    r = torch.index_select(x, 1, torch.tensor([2, 0]))
    assert r.stride() == (2, 1)
    assert_close(r, M[:, [2, 0]])
    s = torch.take(torch.tensor(2.5), torch.tensor(0))
    assert s.shape == () and s.item() == 2.5


def test_clone_of_an_expanded_tensor_is_contiguous():
    r = torch.arange(4.0).expand(3, 4).clone()
    assert r.stride() == (4, 1)
    assert_close(r, np.broadcast_to(np.arange(4.0), (3, 4)))
    r = nc().clone()
    assert r.stride() == (1, 3)                      # preserve_format keeps a dense layout


# ---- as_strided over non-contiguous tensors ----------------------------------------------------

def test_as_strided_of_a_non_contiguous_tensor_keeps_its_gradient():
    base = np.arange(12, dtype=np.float64).reshape(4, 3)
    x = torch.tensor(base).t().detach().requires_grad_(True)   # strides (1, 3)
    r = x.as_strided((2, 2), (1, 3), 1)                        # storage positions 1 4 / 2 5
    assert r.tolist() == [[1.0, 4.0], [2.0, 5.0]]
    (r * t(np.array([[0.0, 1.0], [2.0, 3.0]]))).sum().backward()
    # storage position p holds x[p % 3, p // 3]
    assert x.grad.tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [2, 3, 0, 0]]
    x.grad = None
    y = x * 1                        # a new column-major tensor: its memory is its storage
    assert y.stride() == (1, 3)
    r = y.as_strided((3,), (4,))
    assert r.tolist() == [0.0, 4.0, 8.0]
    (r * t(np.array([1.0, 2.0, 3.0]))).sum().backward()
    assert x.grad.tolist() == [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0]]


# ---- optional cross-check against torch ----------------------------------------------------------

def test_strides_and_views_match_torch():
    T = pytest.importorskip("torch", reason="cross-check against PyTorch (not in CI)")
    if T is torch:
        pytest.skip("framework is torch")
    cases = [
        lambda L, x: L.cat([x.t(), x.t()], 1),
        lambda L, x: x.repeat(2, 1, 1),
        lambda L, x: L.rot90(x, 3),
        lambda L, x: x.t().flip(0),
        lambda L, x: x.unfold(1, 2, 1),
        lambda L, x: L.diag_embed(x, 0, 0, 2),
        lambda L, x: L.roll(x.t(), 1, 0),
        lambda L, x: x[:, L.tensor([1, 0])],
    ]
    for f in cases:
        a = f(T, T.tensor(M))
        b = f(torch, torch.tensor(M))
        assert tuple(a.shape) == tuple(b.shape)
        assert a.stride() == b.stride(), f
        assert (a._base is None) == (b._base is None), f
        np.testing.assert_array_equal(a.numpy(), to_np(b))


def test_fill_and_zero_write_through_expanded_tensors():
    # PyTorch's fill_/zero_ accept a tensor whose elements share memory (every element gets the
    # same value); other in-place ops keep refusing it, and a read-only NumPy array stays read-only
    b = torch.zeros(3)
    e = b.expand(2, 3)
    e.fill_(7)
    assert b.tolist() == [7.0, 7.0, 7.0] and e.tolist() == [[7.0] * 3] * 2
    e.zero_()
    assert b.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(RuntimeError, match="more than one element"):
        e.add_(1)
    m = torch.arange(6.0).reshape(2, 3)
    m[:, 1:2].expand(2, 4).fill_(-1)
    assert m.tolist() == [[0.0, -1.0, 2.0], [3.0, -1.0, 5.0]]
    xi, _ = torch.meshgrid(torch.arange(3.0), torch.arange(2.0), indexing="ij")
    xi.zero_()
    assert xi.tolist() == [[0.0, 0.0]] * 3
    ro = np.zeros(3)
    ro.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.from_numpy(ro)
    with pytest.raises(RuntimeError):
        t.expand(2, 3).fill_(1)
    assert ro.tolist() == [0.0, 0.0, 0.0]
