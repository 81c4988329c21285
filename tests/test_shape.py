"""Shape ops: values against NumPy (or hand-derived values), shapes, dtypes and the errors
PyTorch raises. Seed oracles: catalog-000 T7/T9 and 3.3/3.5, catalog-001-004 3.6/3.7."""
import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

A = np.arange(24).reshape(2, 3, 4)


def t(a=A, **kw):
    return torch.tensor(a, **kw)


# ---- view / reshape / flatten / unflatten ----------------------------------------------------

def test_view_seed_004():
    v = torch.arange(0, 12)
    m34 = v.view(3, 4)
    assert m34.shape == torch.Size([3, 4])
    assert to_np(m34).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    m43 = v.view(4, -1)
    assert m43.shape == (4, 3)
    assert to_np(m43).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert repr(m43.shape) == "torch.Size([4, 3])"


def test_view_after_transpose_fails_reshape_copies_seed_004():
    m26 = torch.arange(0, 12).view(2, 6)
    m62 = m26.t()
    assert m62.is_contiguous() is False
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        m62.view(3, 4)
    m34 = m62.reshape(3, 4)
    assert to_np(m34).tolist() == [[0, 6, 1, 7], [2, 8, 3, 9], [4, 10, 5, 11]]
    assert to_np(m62.contiguous().view(3, 4)).tolist() == to_np(m34).tolist()


def test_view_cases():
    x = t()
    assert_close(x.view(4, 6), A.reshape(4, 6))
    assert_close(x.view(-1, 2), A.reshape(-1, 2))
    # a transposed tensor can still be viewed when the split/merge respects its strides
    assert_close(x.transpose(1, 2).view(2, 4, 3), A.transpose(0, 2, 1))
    assert_close(x[:, :, :2].view(6, 2), A[:, :, :2].reshape(6, 2))
    with pytest.raises(RuntimeError):
        x[:, :, :2].view(12)
    with pytest.raises(RuntimeError, match="invalid for input of size 24"):
        x.view(5, 5)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        x.view(-1, -1)
    assert torch.zeros(0, 3).view(3, 0, 2).shape == (3, 0, 2)
    assert torch.zeros(3, 1).expand(3, 4).view(3, 2, 2).shape == (3, 2, 2)
    with pytest.raises(RuntimeError):
        torch.zeros(3, 1).expand(3, 4).view(12)


def test_view_dtype():
    x = torch.tensor([1.0, 2.0])
    assert to_np(x.view(torch.int32)).tolist() == np.array([1.0, 2.0], np.float32).view(np.int32).tolist()
    assert x.view(torch.int16).shape == (4,)
    y = torch.tensor([[1, 2]], dtype=torch.int16).view(torch.int32)
    assert y.shape == (1, 1) and y.item() == 1 + (2 << 16)
    with pytest.raises(RuntimeError):
        torch.tensor([[1, 2, 3]], dtype=torch.int16).view(torch.int32)
    x.view(torch.int32).fill_(0)          # shares memory
    assert to_np(x).tolist() == [0.0, 0.0]


def test_reshape_flatten_unflatten():
    x = t()
    assert_close(x.transpose(0, 1).reshape(-1), A.transpose(1, 0, 2).reshape(-1))
    assert_close(x.flatten(), A.reshape(-1))
    assert_close(x.flatten(1), A.reshape(2, 12))
    assert_close(x.flatten(0, 1), A.reshape(6, 4))
    assert torch.tensor(3).flatten().shape == (1,)
    assert_close(x.unflatten(2, (2, 2)), A.reshape(2, 3, 2, 2))
    assert_close(x.unflatten(-1, (-1, 2)), A.reshape(2, 3, 2, 2))
    assert_close(torch.reshape(torch.ones(9), (1, 3, 3, 1)), np.ones((1, 3, 3, 1)))
    assert_close(x.ravel(), A.reshape(-1))
    with pytest.raises(RuntimeError):
        x.flatten(2, 1)
    with pytest.raises(RuntimeError):
        x.unflatten(2, (3, 2))
    with pytest.raises(IndexError):
        x.flatten(3)


# ---- squeeze / unsqueeze / permute / transpose -----------------------------------------------

def test_squeeze_seed_t9():
    x = torch.zeros(2, 1, 2, 1, 2)
    assert torch.squeeze(x).size() == torch.Size([2, 2, 2])
    assert torch.squeeze(x, 0).size() == torch.Size([2, 1, 2, 1, 2])
    assert torch.squeeze(x, 1).size() == torch.Size([2, 2, 1, 2])
    assert x.squeeze((1, 3)).shape == (2, 2, 2)
    assert x.squeeze((0, -2)).shape == (2, 1, 2, 2)
    assert torch.zeros(3, 1).squeeze(-1).shape == (3,)
    assert torch.tensor(2.).squeeze(0).shape == ()
    with pytest.raises(IndexError):
        torch.zeros(2, 1).squeeze(3)


def test_unsqueeze():
    x = t()
    assert x.unsqueeze(0).shape == (1, 2, 3, 4)
    assert x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert x.unsqueeze(2).shape == (2, 3, 1, 4)
    assert torch.tensor(1).unsqueeze(0).shape == (1,)
    with pytest.raises(IndexError):
        x.unsqueeze(5)


def test_permute_transpose_t():
    x = t()
    assert torch.randn(2, 3, 5).permute(2, 0, 1).size() == torch.Size([5, 2, 3])
    assert_close(x.permute(2, 0, 1), A.transpose(2, 0, 1))
    assert_close(x.permute(-1, 0, 1), A.transpose(2, 0, 1))
    assert_close(x.permute((1, 2, 0)), A.transpose(1, 2, 0))
    with pytest.raises(RuntimeError):
        x.permute(0, 1)
    with pytest.raises(RuntimeError):
        x.permute(0, 1, 1)
    with pytest.raises(TypeError):         # dims are required, even for a 0-d tensor
        torch.tensor(1.0).permute()
    assert torch.tensor(1.0).permute(()).shape == ()
    assert x.permute(dims=(2, 0, 1)).shape == (4, 2, 3)
    assert_close(x.transpose(0, 2), A.transpose(2, 1, 0))
    assert_close(torch.swapaxes(x, 0, 2), A.swapaxes(0, 2))
    assert_close(x.swapdims(-1, 1), A.swapaxes(-1, 1))
    assert_close(x.mT, A.swapaxes(-1, -2))
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2]).mT
    assert_close(t(A[0]).T, A[0].T)


def test_t_seed_t9():
    s = torch.tensor(0.1995)
    assert torch.t(s).item() == pytest.approx(0.1995)
    v = torch.tensor([2.4320, -0.4608, 0.7702])
    assert_close(torch.t(v), [2.4320, -0.4608, 0.7702])
    m = torch.tensor([[0.4875, 0.9158, -0.5872], [0.3938, -0.6929, 0.6932]])
    assert_close(torch.t(m), [[0.4875, 0.3938], [0.9158, -0.6929], [-0.5872, 0.6932]])
    with pytest.raises(RuntimeError, match="<= 2 dimensions"):
        torch.t(t())


def test_movedim():
    x = t()
    assert_close(torch.movedim(x, 0, 2), np.moveaxis(A, 0, 2))
    assert_close(torch.movedim(x, (0, 1), (2, 0)), np.moveaxis(A, (0, 1), (2, 0)))
    assert_close(torch.moveaxis(x, -1, 0), np.moveaxis(A, -1, 0))
    with pytest.raises(RuntimeError):
        torch.movedim(x, (0, 0), (1, 2))
    with pytest.raises(RuntimeError):
        torch.movedim(x, (0, 1), (1,))


# ---- expand / repeat / repeat_interleave / tile ----------------------------------------------

def test_expand_seed_t9():
    x = torch.Tensor([[1], [2], [3]])
    y = x.expand(3, 4)
    assert y.size() == (3, 4) and x.size() == (3, 1)
    assert y.stride() == (1, 0)
    assert_close(y, np.repeat([[1.], [2.], [3.]], 4, axis=1))
    assert x.expand(-1, 4).shape == (3, 4)
    z = x.expand(2, 3, 4)
    assert z.shape == (2, 3, 4) and z.stride()[0] == 0
    assert_close(x.expand_as(torch.zeros(3, 5)), np.repeat([[1.], [2.], [3.]], 5, axis=1))
    assert_close(torch.broadcast_to(torch.tensor([1, 2, 3]), (2, 3)), [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(RuntimeError, match="expanded size"):
        x.expand(4, 4)
    with pytest.raises(RuntimeError):
        torch.broadcast_to(torch.tensor([1, 2, 3]), (2, 2))
    with pytest.raises(RuntimeError):
        x.expand(4)


def test_repeat_seed_t7():
    x = torch.tensor([1, 2, 3])
    r = x.repeat(4, 2, 1)
    assert r.size() == torch.Size([4, 2, 3])
    assert to_np(r).tolist() == [[[1, 2, 3], [1, 2, 3]]] * 4
    assert_close(t().repeat(1, 2, 1), np.tile(A, (1, 2, 1)))
    assert_close(t().repeat(2, 1, 1, 2), np.tile(A, (2, 1, 1, 2)))
    assert t().repeat(0, 2, 1).shape == (0, 6, 4)
    assert_close(torch.tile(torch.tensor([1, 2]), (2,)), [1, 2, 1, 2])
    assert_close(torch.tile(t(), (2,)), np.tile(A, (1, 1, 2)))
    with pytest.raises(RuntimeError):
        t().repeat(2, 2)


def test_repeat_interleave_seed_t7():
    assert to_np(torch.tensor([1, 2, 3]).repeat_interleave(2)).tolist() == [1, 1, 2, 2, 3, 3]
    y = torch.tensor([[1, 2], [3, 4]])
    r = torch.repeat_interleave(y, 2)
    assert to_np(r).tolist() == [1, 1, 2, 2, 3, 3, 4, 4] and r.dtype == torch.int64
    assert to_np(torch.repeat_interleave(y, 3, dim=1)).tolist() == [[1, 1, 1, 2, 2, 2],
                                                                    [3, 3, 3, 4, 4, 4]]
    assert to_np(torch.repeat_interleave(y, torch.tensor([1, 2]), dim=0)).tolist() == \
        [[1, 2], [3, 4], [3, 4]]
    assert to_np(torch.repeat_interleave(torch.tensor([1, 2, 3]))).tolist() == [0, 1, 1, 2, 2, 2]
    assert to_np(torch.repeat_interleave(torch.tensor([1, 2]), torch.tensor([2]))).tolist() == \
        [1, 1, 2, 2]
    with pytest.raises(RuntimeError):
        torch.repeat_interleave(y, torch.tensor([1, 2, 3]), dim=0)
    with pytest.raises(RuntimeError):
        torch.repeat_interleave(y, -1)
    with pytest.raises(RuntimeError):
        torch.repeat_interleave(torch.tensor([1, 2]), 2, output_size=5)


def test_repeat_interleave_int_count_is_a_cloned_view_w3():
    # torch: an int count expands, clones row-major and views (ViewBackward0 over
    # CloneBackward0); a tensor of counts is index_select (llama's GQA uses both)
    a = np.arange(24.0).reshape(2, 3, 4)
    x = torch.tensor(a, requires_grad=True)
    for dim in (0, 1, 2, -1):
        y = torch.repeat_interleave(x, 2, dim=dim)
        assert_close(y, np.repeat(a, 2, axis=dim), rtol=0, atol=0)
        assert y.grad_fn.name() == "ViewBackward0" and y.is_contiguous()
        assert y.grad_fn.next_functions[0][0].name() == "CloneBackward0"
    y = torch.repeat_interleave(x, 3)
    assert y.shape == (72,) and y.grad_fn.name() == "ViewBackward0"
    assert torch.repeat_interleave(x, torch.tensor(2), dim=0).grad_fn.name() == \
        "IndexSelectBackward0"
    w = torch.tensor([[1.0], [2.0], [3.0]])
    (torch.repeat_interleave(x, 3, dim=1) * torch.repeat_interleave(w, 3, dim=0)).sum().backward()
    assert_close(x.grad, np.broadcast_to(3.0 * np.array([1.0, 2.0, 3.0])[:, None], (2, 3, 4)))
    xt = torch.tensor(a[0]).t()                    # a transposed input gives a row-major result
    r = xt.repeat_interleave(2, dim=1)
    assert r.stride() == (6, 1)
    assert_close(r, np.repeat(a[0].T, 2, axis=1), rtol=0, atol=0)
    assert torch.repeat_interleave(x, 0, dim=1).shape == (2, 0, 4)
    assert torch.repeat_interleave(torch.tensor([True, False]), 2).tolist() == \
        [True, True, False, False]
    g = torch.tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.repeat_interleave(t, 2, dim=1), (g,))
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.repeat_interleave(x, 2, dim=3)


# ---- flip / roll / narrow / select / unbind --------------------------------------------------

def test_flip_seed_t7():
    x = torch.arange(8).view(2, 2, 2)
    f = torch.flip(x, [0, 1])
    assert to_np(f).tolist() == [[[6, 7], [4, 5]], [[2, 3], [0, 1]]]
    assert repr(f) == ("tensor([[[6, 7],\n         [4, 5]],\n\n        [[2, 3],\n"
                       "         [0, 1]]])")
    assert_close(x.flip(0, 1), to_np(f))
    assert_close(x.flip(-1), np.flip(np.arange(8).reshape(2, 2, 2), -1))
    assert_close(torch.fliplr(t()[0]), np.fliplr(A[0]))
    assert_close(torch.flipud(t()[0]), np.flipud(A[0]))
    with pytest.raises(RuntimeError, match="multiple times"):
        torch.flip(x, [0, 0])
    with pytest.raises(IndexError):
        torch.flip(x, [3])


def test_roll():
    x = t()
    assert_close(torch.roll(x, 1), np.roll(A, 1))
    assert_close(torch.roll(x, (1, -2), (0, 2)), np.roll(A, (1, -2), (0, 2)))
    assert_close(torch.roll(x, 5, 1), np.roll(A, 5, 1))
    with pytest.raises(RuntimeError):
        torch.roll(x, (1, 2), 0)


def test_narrow_select_unbind():
    x = t()
    assert_close(x.narrow(2, 1, 2), A[:, :, 1:3])
    assert_close(x.narrow(2, -2, 2), A[:, :, 2:4])
    assert_close(x.narrow(0, 2, 0), A[2:2])
    with pytest.raises(RuntimeError, match="exceeds dimension size"):
        x.narrow(2, 3, 2)
    with pytest.raises(IndexError, match="start out of range"):
        x.narrow(2, 5, 0)
    with pytest.raises(RuntimeError):
        torch.tensor(1).narrow(0, 0, 1)
    assert_close(x.select(1, 2), A[:, 2])
    assert_close(x.select(-1, -1), A[..., -1])
    with pytest.raises(IndexError):
        x.select(1, 3)
    parts = x.unbind(1)
    assert len(parts) == 3
    for k, p in enumerate(parts):
        assert_close(p, A[:, k])


# ---- chunk / split / tensor_split ------------------------------------------------------------

def test_chunk_seed_001():
    a = torch.arange(0, 12, step=1).reshape(2, 6)
    c = a.chunk(chunks=3, dim=1)
    assert [to_np(p).tolist() for p in c] == [[[0, 1], [6, 7]], [[2, 3], [8, 9]], [[4, 5], [10, 11]]]
    assert [p.shape[0] for p in torch.arange(5).chunk(3)] == [2, 2, 1]
    assert [p.shape[0] for p in torch.arange(6).chunk(4)] == [2, 2, 2]   # fewer chunks, like torch
    with pytest.raises(RuntimeError):
        torch.arange(6).chunk(0)


def test_split_seed_001_002():
    x = torch.arange(0, 12, step=1).reshape(2, 6)
    s = torch.split(x, split_size_or_sections=(1, 3, 2), dim=1)
    assert [tuple(p.shape) for p in s] == [(2, 1), (2, 3), (2, 2)]
    assert [to_np(p).tolist() for p in s] == [[[0], [6]], [[1, 2, 3], [7, 8, 9]], [[4, 5], [10, 11]]]
    t1 = torch.ones((1, 3))
    one = torch.split(t1, 3, dim=1)
    assert len(one) == 1 and to_np(one[0]).tolist() == [[1., 1., 1.]]
    three = torch.split(t1, [1, 1, 1], dim=1)
    assert len(three) == 3 and all(to_np(p).tolist() == [[1.]] for p in three)
    assert [p.shape[0] for p in torch.arange(10).split(3)] == [3, 3, 3, 1]
    assert len(torch.zeros(0).split(0)) == 1
    with pytest.raises(RuntimeError, match="sum exactly"):
        x.split([1, 3], dim=1)
    with pytest.raises(RuntimeError):
        torch.arange(4).split(-1)


def test_tensor_split():
    x = torch.arange(10)
    assert [p.shape[0] for p in x.tensor_split(3)] == [4, 3, 3]
    assert [to_np(p).tolist() for p in x.tensor_split([2, 5, 8])] == \
        [[0, 1], [2, 3, 4], [5, 6, 7], [8, 9]]
    # indices follow Python slice rules: negative ones count from the end, past-the-end clamps
    assert [p.shape[0] for p in x.tensor_split([-3, 12])] == [7, 3, 0]
    assert [p.shape[0] for p in x.tensor_split([6, 2])] == [6, 0, 8]
    assert [p.shape[0] for p in x.tensor_split(torch.tensor([2, 5]))] == [2, 3, 5]
    assert [tuple(p.shape) for p in torch.hsplit(torch.arange(12).reshape(2, 6), 3)] == [(2, 2)] * 3
    assert [tuple(p.shape) for p in torch.vsplit(torch.arange(12).reshape(6, 2), [2, 3])] == \
        [(2, 2), (1, 2), (3, 2)]
    with pytest.raises(RuntimeError):
        x.tensor_split(0)


# ---- cat / stack / hstack / vstack -----------------------------------------------------------

def test_cat_stack_seed_002():
    t1 = torch.ones((1, 3))
    c1 = torch.cat([t1, t1, t1], dim=0)
    c2 = torch.cat([t1, t1, t1], dim=1)
    s1 = torch.stack([t1, t1, t1], dim=0)
    assert c1.shape == torch.Size([3, 3]) and to_np(c1).tolist() == [[1.] * 3] * 3
    assert c2.shape == torch.Size([1, 9]) and repr(c2) == "tensor([[1., 1., 1., 1., 1., 1., 1., 1., 1.]])"
    assert s1.shape == torch.Size([3, 1, 3])
    assert [tuple(p.shape) for p in torch.chunk(c1, dim=1, chunks=3)] == [(3, 1)] * 3
    assert [tuple(p.shape) for p in torch.chunk(c1, dim=0, chunks=3)] == [(1, 3)] * 3
    assert torch.cat((t1, t1), dim=0).shape == (2, 3)     # tuple argument
    assert torch.cat([torch.randn((1, 3, 4, 4)) for _ in range(2)], 0).size() == \
        torch.Size([2, 3, 4, 4])


def test_cat_values_and_errors():
    x = t()
    assert_close(torch.cat([x, x * 2], 1), np.concatenate([A, A * 2], 1))
    assert_close(torch.cat([x, x], -1), np.concatenate([A, A], -1))
    assert_close(torch.concat([x, x], 0), np.concatenate([A, A], 0))
    m = torch.cat([torch.tensor([1, 2]), torch.tensor([1.5])])
    assert m.dtype == torch.float32 and to_np(m).tolist() == [1.0, 2.0, 1.5]
    e = torch.cat([x, torch.tensor([])])                 # legacy: empty 1-D skipped, dtype promoted
    assert e.shape == (2, 3, 4) and e.dtype == torch.float32
    with pytest.raises(RuntimeError):
        torch.cat([x, torch.zeros(2, 3)])
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        torch.cat([x, torch.zeros(2, 4, 5)], 1)
    with pytest.raises(ValueError, match=r"torch.cat\(\): expected a non-empty list"):
        torch.cat([])                    # (PyTorch 2.13: ValueError, stack's is RuntimeError)
    with pytest.raises(RuntimeError):
        torch.cat([torch.tensor(1), torch.tensor(2)])


def test_stack_hstack_vstack():
    x = t()
    assert_close(torch.stack([x, x + 1], 3), np.stack([A, A + 1], 3))
    assert_close(torch.stack([x, x + 1], -1), np.stack([A, A + 1], -1))
    s = torch.stack([torch.tensor([1, 2]), torch.tensor([1.5, 2])])
    assert s.dtype == torch.float32
    with pytest.raises(RuntimeError, match="equal size"):
        torch.stack([x, torch.zeros(2, 3)])
    assert_close(torch.hstack([torch.tensor([1, 2]), torch.tensor([3])]), [1, 2, 3])
    assert_close(torch.hstack([x, x]), np.hstack([A, A]))
    assert_close(torch.vstack([torch.tensor([1, 2]), torch.tensor([3, 4])]), [[1, 2], [3, 4]])
    assert_close(torch.vstack([x, x]), np.vstack([A, A]))
    assert_close(torch.dstack([torch.tensor([1, 2]), torch.tensor([3, 4])]), [[[1, 3], [2, 4]]])
    assert_close(torch.column_stack([torch.tensor([1, 2]), torch.tensor([3, 4])]), [[1, 3], [2, 4]])


# ---- tril / triu / diag / diagonal / trace ---------------------------------------------------

def test_tril_seed_t8():
    a = torch.tensor([[-1.0813, -0.8619, 0.7105], [0.0935, 0.1380, 2.2112], [-0.3409, -0.9828, 0.0289]])
    assert_close(torch.tril(a), [[-1.0813, 0, 0], [0.0935, 0.1380, 0], [-0.3409, -0.9828, 0.0289]])
    b = torch.tensor([[1.2219, 0.5653, -0.2521, -0.2345, 1.2544, 0.3461],
                      [0.4785, -0.4477, 0.6049, 0.6368, 0.8775, 0.7145],
                      [1.1502, 3.2716, -1.1243, -0.5413, 0.3615, 0.6864],
                      [-0.0614, -0.7344, -1.3164, -0.7648, -1.4024, 0.0978]])
    assert_close(torch.tril(b, diagonal=1),
                 [[1.2219, 0.5653, 0, 0, 0, 0], [0.4785, -0.4477, 0.6049, 0, 0, 0],
                  [1.1502, 3.2716, -1.1243, -0.5413, 0, 0],
                  [-0.0614, -0.7344, -1.3164, -0.7648, -1.4024, 0]])
    assert_close(torch.tril(b, diagonal=-1),
                 [[0, 0, 0, 0, 0, 0], [0.4785, 0, 0, 0, 0, 0], [1.1502, 3.2716, 0, 0, 0, 0],
                  [-0.0614, -0.7344, -1.3164, 0, 0, 0]])
    assert repr(torch.tril(a)) == ("tensor([[-1.0813,  0.0000,  0.0000],\n"
                                   "        [ 0.0935,  0.1380,  0.0000],\n"
                                   "        [-0.3409, -0.9828,  0.0289]])")


def test_tril_triu_general():
    x = t()
    for k in (-2, -1, 0, 1, 3):
        assert_close(torch.tril(x, k), np.tril(A, k), check_dtype=torch.int64)
        assert_close(torch.triu(x, k), np.triu(A, k), check_dtype=torch.int64)
    b = torch.triu(torch.ones(3, 3, dtype=torch.bool))
    assert b.dtype == torch.bool and to_np(b).tolist() == np.triu(np.ones((3, 3), bool)).tolist()
    y = torch.ones(3, 3)
    y.tril_(-1)
    assert_close(y, np.tril(np.ones((3, 3)), -1))
    with pytest.raises(RuntimeError):
        torch.tril(torch.ones(3))


def test_diag_diagonal_trace():
    assert_close(torch.diag(torch.tensor([1, 2, 3])), np.diag([1, 2, 3]))
    assert_close(torch.diag(torch.tensor([1, 2, 3]), 1), np.diag([1, 2, 3], 1))
    assert_close(torch.diag(torch.tensor([1., 2, 3]), -1), np.diag([1., 2, 3], -1))
    m = np.arange(12).reshape(3, 4)
    assert_close(torch.diag(torch.tensor(m), 1), np.diag(m, 1))
    assert_close(torch.diag(torch.tensor(m), -2), np.diag(m, -2))
    with pytest.raises(RuntimeError):
        torch.diag(t())
    x = t()
    assert_close(x.diagonal(0, 1, 2), np.diagonal(A, 0, 1, 2))
    assert_close(x.diagonal(1, -1, 0), np.diagonal(A, 1, -1, 0))
    with pytest.raises(RuntimeError):
        x.diagonal(0, 1, 1)
    assert torch.trace(torch.arange(12.).reshape(3, 4)).item() == 0 + 5 + 10
    assert torch.trace(torch.arange(12).reshape(3, 4)).dtype == torch.int64
    with pytest.raises(RuntimeError):
        torch.trace(t())
    assert_close(torch.diagflat(torch.tensor([[1, 2], [3, 4]])), np.diagflat([[1, 2], [3, 4]]))


def test_diag_embed():
    x = np.arange(6).reshape(2, 3)
    r = torch.diag_embed(torch.tensor(x))
    exp = np.zeros((2, 3, 3), np.int64)
    for b in range(2):
        exp[b] = np.diag(x[b])
    assert_close(r, exp)
    r = torch.diag_embed(torch.tensor(x), 1)
    assert r.shape == (2, 4, 4)
    assert_close(r[1], np.diag(x[1], 1))
    r = torch.diag_embed(torch.tensor(x), -1, 0, 2)       # diagonal planes are dims (0, 2)
    assert r.shape == (4, 2, 4)
    assert_close(r[:, 0, :], np.diag(x[0], -1))


def test_contiguous():
    x = t()
    assert x.contiguous() is x
    y = x.transpose(0, 1).contiguous()
    assert y.is_contiguous() and y.stride() == (8, 4, 1)
    assert_close(y, A.transpose(1, 0, 2))


@pytest.mark.parametrize("fn", [
    lambda m, x: m.flip(x, [0, 2]), lambda m, x: m.roll(x, (1, 2), (0, 2)),
    lambda m, x: x.repeat(2, 1, 3), lambda m, x: m.repeat_interleave(x, 2, dim=1),
    lambda m, x: m.tril(x, -1), lambda m, x: m.diag_embed(x, 1, 0, 3),
    lambda m, x: m.cat([x, x], 1), lambda m, x: m.stack([x, x], 2),
    lambda m, x: x.unflatten(1, (3, 1)), lambda m, x: m.movedim(x, (0, 2), (2, 0)),
    lambda m, x: [p for p in x.tensor_split([1, -1], 2)],
])
def test_matches_torch(fn):
    real = pytest.importorskip("torch")
    ours = fn(torch, t())
    ref = fn(real, real.tensor(A))
    ours = ours if isinstance(ours, list) else [ours]
    ref = ref if isinstance(ref, list) else [ref]
    for o, r in zip(ours, ref):
        assert tuple(o.shape) == tuple(r.shape)
        np.testing.assert_array_equal(to_np(o), r.numpy())


def test_keyword_and_numpy_int_dims_seed_001():
    a = torch.arange(6).view(2, 3)
    assert to_np(a.flip(dims=(0,))).tolist() == [[3, 4, 5], [0, 1, 2]]
    assert a.permute(dims=(1, 0)).shape == (3, 2)
    assert to_np(a.select(dim=1, index=2)).tolist() == [2, 5]
    d = a.diagonal()
    assert to_np(torch.diag_embed(d)).tolist() == [[0, 0], [0, 4]]
    perm = np.argsort([2, 0, 1])                 # NumPy ints are accepted as dims
    assert t().permute(*perm).shape == (3, 4, 2)
    assert t().transpose(np.int64(0), np.int64(2)).shape == (4, 3, 2)
    assert t().view(np.int64(6), -1).shape == (6, 4)
    with pytest.raises(TypeError):
        t().transpose(0.0, 1)


def test_squeeze_several_dims_and_tile_by_ints():
    x = torch.zeros(1, 1, 3, 1)
    assert tuple(x.squeeze(0, 1).shape) == (3, 1)          # PyTorch 2.x: several dims
    assert tuple(x.clone().squeeze_(0, 3).shape) == (1, 3)
    assert tuple(x.tile(2).shape) == (1, 1, 3, 2)            # an int, or ints, as the reps
    assert torch.arange(3).tile(2, 2).tolist() == [[0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2]]
