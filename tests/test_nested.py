"""torch.nested (layouts torch.strided and torch.jagged), cpu. References: NumPy per component in
float64, hand-derived values and printing, finite-difference gradcheck."""
import re

import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from framework.autograd import gradcheck

A = np.arange(6.0).reshape(2, 3)
B = np.arange(12.0).reshape(4, 3) / 4 - 1


def comps(*arrs, **kw):
    return [torch.tensor(a, **kw) for a in arrs]


def nj(*arrs, dtype=torch.float64):
    return torch.nested.nested_tensor(comps(*(arrs or (A, B)), dtype=dtype), layout=torch.jagged)


def ns(*arrs, dtype=torch.float64):
    return torch.nested.nested_tensor(comps(*(arrs or (A, B)), dtype=dtype))


def check(nt, refs, atol=1e-12):
    cs = nt.unbind()
    assert len(cs) == len(refs)
    for c, r in zip(cs, refs):
        assert tuple(c.shape) == np.shape(r)
        np.testing.assert_allclose(c.detach().numpy(), r, atol=atol, rtol=1e-10)


def softmax(x, d):
    e = np.exp(x - x.max(d, keepdims=True))
    return e / e.sum(d, keepdims=True)


# ---- construction, metadata, printing --------------------------------------------------------

def test_metadata():
    j, s = nj(), ns()
    assert j.is_nested and s.is_nested and not torch.ones(2).is_nested
    assert j.layout is torch.jagged and s.layout is torch.strided
    assert j.dim() == s.dim() == 3 and j.dtype is torch.float64
    assert j.shape[0] == 2 and j.shape[2] == 3 and j.size(-1) == 3
    assert j.shape[1] == j.shape[1] and j.shape[1] != 2 and repr(j.shape[1]).startswith("j")
    assert repr(j.shape) == f"torch.Size([2, {j.shape[1]!r}, 3])"
    assert s.size(0) == 2 and s.size(2) == 3 and j.numel() == s.numel() == 18
    np.testing.assert_array_equal(j.offsets().numpy(), [0, 2, 6])
    np.testing.assert_array_equal(j.values().numpy(), np.concatenate([A, B]))
    np.testing.assert_array_equal(s.values().numpy(), np.concatenate([A.ravel(), B.ravel()]))
    assert j.lengths() is None and j.is_contiguous() and not j.transpose(1, 2).is_contiguous()
    check(j, [A, B])
    check(s, [A, B])
    with pytest.raises(RuntimeError, match="doesn't support sizes"):
        s.size()
    with pytest.raises(RuntimeError, match="Given dimension 1 is irregular"):
        s.size(1)


def test_construction_forms():
    t = torch.nested.nested_tensor([[1, 2], [3]])
    assert t.dtype is torch.int64
    check(t, [np.array([1, 2]), np.array([3])])
    # the ragged dim is wherever the components differ
    r2 = torch.nested.nested_tensor(comps(np.ones((3, 2)), np.ones((3, 4))), layout=torch.jagged)
    assert r2._ragged_idx == 2 and r2.shape[1] == 3 and r2.is_contiguous()
    check(r2, [np.ones((3, 2)), np.ones((3, 4))])
    v = torch.arange(12.0).reshape(6, 2)
    f = torch.nested.nested_tensor_from_jagged(v, torch.tensor([0, 1, 4, 6]))
    check(f, [np.arange(12.0).reshape(6, 2)[a:b] for a, b in ((0, 1), (1, 4), (4, 6))])
    g = torch.nested.nested_tensor_from_jagged(v, torch.tensor([0, 1, 4]), torch.tensor([1, 2]))
    check(g, [np.arange(12.0).reshape(6, 2)[0:1], np.arange(12.0).reshape(6, 2)[1:3]])
    assert not g.is_contiguous()
    h = torch.nested.nested_tensor_from_jagged(v, lengths=torch.tensor([2, 4]))
    np.testing.assert_array_equal(h.offsets().numpy(), [0, 2, 6])
    x = torch.arange(12.0).reshape(2, 6)
    n = torch.nested.narrow(x, 1, torch.tensor([0, 2]), torch.tensor([3, 4]), layout=torch.jagged)
    check(n, [np.arange(3.0), np.arange(8.0, 12.0)])
    a = torch.nested.as_nested_tensor(torch.arange(24.0).reshape(2, 3, 4), layout=torch.jagged)
    check(a, list(np.arange(24.0).reshape(2, 3, 4)))
    m = torch.nested.masked_select(torch.arange(6.0).reshape(2, 3),
                                   torch.tensor([[True, False, True], [False, False, True]]))
    check(m, [np.array([0.0, 2.0]), np.array([5.0])])
    assert torch.nested.nested_tensor(comps(A), dtype=torch.float32).dtype is torch.float32


def test_printing():
    s = torch.nested.nested_tensor([torch.tensor([1.0, 2.0]), torch.tensor([3.0])])
    assert repr(s) == ("nested_tensor([\n  tensor([1., 2.]),\n  tensor([3.])\n])")
    s2 = torch.nested.nested_tensor([torch.tensor([[1.0, 2.0], [3.0, 4.0]])], requires_grad=True)
    assert repr(s2) == ("nested_tensor([\n  tensor([[1., 2.],\n          [3., 4.]], "
                        "requires_grad=True)\n], requires_grad=True)")
    assert repr(s2 * 2).endswith("], grad_fn=<MulBackward0>)")
    assert repr(torch.nested.nested_tensor([])) == "nested_tensor([\n\n])"
    j = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged)
    assert repr(j) == (f"NestedTensor(size=(2, {j.shape[1]!r}, 3), offsets=tensor([0, 2, 6]), "
                       f"contiguous=True)")
    assert re.fullmatch(r"NestedTensor\(size=\(2, 3, j\d+\), offsets=tensor\(\[0, 2, 6\]\), "
                        r"contiguous=False\)", repr(j.transpose(1, 2)))
    j.requires_grad_()
    assert repr(j).endswith("requires_grad=True, contiguous=True)")


# ---- ops -------------------------------------------------------------------------------------

def test_pointwise():
    j, s = nj(), ns()
    check(j * 2 + 1, [A * 2 + 1, B * 2 + 1])
    check(torch.sin(j), [np.sin(A), np.sin(B)])
    check(s.exp() - s, [np.exp(A) - A, np.exp(B) - B])
    check(j / (j + 1), [A / (A + 1), B / (B + 1)])
    check(F.relu(s), [np.maximum(A, 0), np.maximum(B, 0)])
    w = np.array([1.0, -2.0, 0.5])
    check(j + torch.tensor(w), [A + w, B + w])
    check(torch.tensor(w) - j, [w - A, w - B])
    per = np.array([10.0, 20.0]).reshape(2, 1, 1)
    check(j * torch.tensor(per), [A * 10, B * 20])
    check((j > 1).to(torch.float64), [(A > 1) * 1.0, (B > 1) * 1.0])
    t = j.transpose(1, 2)
    check(t * t, [A.T ** 2, B.T ** 2])


def test_reductions_and_softmax():
    j, s = nj(), ns()
    check(j.sum(-1), [A.sum(-1), B.sum(-1)])
    check(j.mean(-1, keepdim=True), [A.mean(-1, keepdims=True), B.mean(-1, keepdims=True)])
    check(torch.amax(j, -1), [A.max(-1), B.max(-1)])
    np.testing.assert_allclose(j.sum(1).numpy(), np.stack([A.sum(0), B.sum(0)]))
    np.testing.assert_allclose(torch.mean(j, 1).numpy(), np.stack([A.mean(0), B.mean(0)]))
    np.testing.assert_allclose(j.sum().item(), A.sum() + B.sum())
    np.testing.assert_allclose(j.sum((0, 1)).numpy(), A.sum(0) + B.sum(0))
    check(s.sum(-1, keepdim=True), [A.sum(-1, keepdims=True), B.sum(-1, keepdims=True)])
    check(j.softmax(-1), [softmax(A, -1), softmax(B, -1)])
    check(F.softmax(j, 1), [softmax(A, 0), softmax(B, 0)])
    check(torch.log_softmax(j, 2), [np.log(softmax(A, -1)), np.log(softmax(B, -1))])
    check(s.softmax(1), [softmax(A, 0), softmax(B, 0)])


def test_matmul_linear_attention():
    j, s = nj(), ns()
    W = np.arange(6.0).reshape(2, 3) / 5 - 0.4
    b = np.array([0.5, -1.0])
    check(torch.matmul(j, torch.tensor(W.T)), [A @ W.T, B @ W.T])
    check(F.linear(j, torch.tensor(W), torch.tensor(b)), [A @ W.T + b, B @ W.T + b])
    check(F.linear(s, torch.tensor(W)), [A @ W.T, B @ W.T])
    check(torch.bmm(s, s.transpose(1, 2)), [A @ A.T, B @ B.T])
    lin = torch.nn.Linear(3, 4).double()
    check(lin(j), [A @ lin.weight.detach().numpy().T + lin.bias.detach().numpy(),
                   B @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()])
    # the tutorial's (B, j, E) -> (B, H, j, D) attention
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((2, 8)), rng.standard_normal((3, 8))]
    q = nj(*X).unflatten(-1, [2, 4]).transpose(1, 2)
    assert q.dim() == 4 and q.shape[2] == q.shape[2] and q.size(1) == 2
    out = F.scaled_dot_product_attention(q, q, q)
    refs = []
    for x in X:
        h = x.reshape(-1, 2, 4).transpose(1, 0, 2)
        refs.append(softmax(h @ h.transpose(0, 2, 1) / 2.0, -1) @ h)
    check(out, refs)
    merged = out.transpose(1, 2).flatten(-2)
    check(merged, [r.transpose(1, 0, 2).reshape(-1, 8) for r in refs])


def test_shape_ops_and_padding():
    j, s = nj(), ns()
    check(j.transpose(1, 2), [A.T, B.T])
    check(s.transpose(1, 2), [A.T, B.T])
    check(j.reshape(2, -1, 3, 1), [A[..., None], B[..., None]])
    check(j.view(2, -1, 1, 3).flatten(-2), [A, B])
    check(j.unsqueeze(-1), [A[..., None], B[..., None]])
    q, k = torch.chunk(j, 2, -1)        # (the tutorial's packed projection)
    check(q, [A[:, :2], B[:, :2]])
    check(k, [A[:, 2:], B[:, 2:]])
    check(s.split(1, 2)[2], [A[:, 2:], B[:, 2:]])
    check(s.reshape(2, -1, 3), [A, B])
    check(j.clone(), [A, B])
    assert j.to(torch.float32).dtype is torch.float32
    assert j.detach().requires_grad is False
    p = j.to_padded_tensor(-1.0)
    ref = np.full((2, 4, 3), -1.0)
    ref[0, :2], ref[1] = A, B
    np.testing.assert_array_equal(p.numpy(), ref)
    p5 = torch.nested.to_padded_tensor(s, 0.0, (2, 5, 4))
    ref5 = np.zeros((2, 5, 4))
    ref5[0, :2, :3], ref5[1, :4, :3] = A, B
    np.testing.assert_array_equal(p5.numpy(), ref5)
    # jagged: output_size sets the ragged length only (cutting longer components)
    np.testing.assert_array_equal(torch.nested.to_padded_tensor(j, 0.0, (2, 3, 3)).numpy(),
                                  np.stack([np.vstack([A, np.zeros((1, 3))]), B[:3]]))


# ---- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("f, exc, msg", [
    (lambda j, s: j + torch.ones(2, 3), RuntimeError,
     r"cannot call binary pointwise function add.Tensor with inputs of shapes torch.Size\(\[2, "
     r"j\d+, 3\]\) and torch.Size\(\[2, 3\]\)"),
    (lambda j, s: j + nj(A, B[:3]), RuntimeError, r"shapes \(2, j\d+, 3\) and \(2, j\d+, 3\)"),
    (lambda j, s: s + torch.ones(3), RuntimeError,
     "Expected both self and other to be nested, but got a nested self and non-nested other"),
    (lambda j, s: s + ns(A, B[:3]), RuntimeError,
     "add does not support broadcasting when given a NestedTensor"),
    (lambda j, s: j.sum(0), RuntimeError, r"sum\(\): reducing along the batch dimension but not "
                                          "the ragged dimension"),
    (lambda j, s: j.sum((1, 2)), RuntimeError, "reducing along a ragged and non-batch"),
    (lambda j, s: s.sum(-1), RuntimeError, "NestedTensor always requires keepdim=True for now."),
    (lambda j, s: s.sum(1), RuntimeError, "can only be reduced across the last dimension for now "
                                          "got dimension 1 instead"),
    (lambda j, s: s.sum(), NotImplementedError, "aten::sum"),
    (lambda j, s: j.softmax(0), RuntimeError, "softmax\\(\\): not supported when reducing across "
                                              "the batch dimension for NestedTensor"),
    (lambda j, s: s.softmax(0), RuntimeError, "Cannot apply softmax across nested dimension 0"),
    (lambda j, s: s.log_softmax(-1), NotImplementedError, "aten::_log_softmax"),
    (lambda j, s: j.log_softmax(1), RuntimeError, "not supported when reducing along the ragged"),
    (lambda j, s: j.transpose(0, 1), ValueError, "Transpose is not supported on the batch "
                                                 "dimension for jagged NT"),
    (lambda j, s: s.transpose(0, 1), RuntimeError, "Nested tensor dimension 0 cannot be "
                                                   "transposed"),
    (lambda j, s: torch.matmul(s, torch.ones(3, 2)), RuntimeError,
     "Expected both to be nested, but got a nested self and non-nested other"),
    (lambda j, s: torch.bmm(j, j.transpose(1, 2)), RuntimeError,
     r"matmul\(\): not supported between inputs of shapes \(2, j\d+, 3\)"),
    (lambda j, s: torch.bmm(s, torch.ones(3, 2)), RuntimeError, "batch2 must be a 3D tensor"),
    (lambda j, s: j.reshape(-1, 3), RuntimeError, r"view\(\): cannot view shape"),
    (lambda j, s: j.flatten(1), RuntimeError, "not supported for NestedTensor on ragged dim"),
    (lambda j, s: j.unbind(1), RuntimeError, "only supported for NestedTensor on dim=0"),
    (lambda j, s: F.scaled_dot_product_attention(j, j, j), RuntimeError,
     "No viable backend for scaled_dot_product_attention was found."),
    (lambda j, s: j.backward(), RuntimeError, "does not require grad"),
    (lambda j, s: j.cumsum(2), NotImplementedError, "NestedTensorCPU"),
    (lambda j, s: torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 5)],
                                             layout=torch.jagged), RuntimeError,
     "only allows for a single ragged dimension"),
    (lambda j, s: torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4)]), RuntimeError,
     "Found dimension 1 for Tensor at index 1 and dimension 2 for Tensor at index 0"),
    (lambda j, s: torch.nested.nested_tensor([torch.ones(2)], layout=torch.sparse_coo),
     RuntimeError, "Specified layout is unsupported for nested tensors: torch.sparse_coo"),
    (lambda j, s: torch.nested.nested_tensor_from_jagged(torch.ones(3, 2)), RuntimeError,
     "At least one of offsets or lengths is required"),
    (lambda j, s: torch.nested.narrow(torch.ones(2, 6), 1, torch.tensor([0, 1]),
                                      torch.tensor([2, 3])), RuntimeError,
     "start and length must be integers for the strided layout NT impl"),
])
def test_errors(f, exc, msg):
    j, s = nj(), ns()
    before = j.values().numpy().copy()
    with pytest.raises(exc, match=msg):
        f(j, s)
    np.testing.assert_array_equal(j.values().numpy(), before)


def test_dense_errors_unchanged():
    with pytest.raises(RuntimeError, match="size of tensor a"):
        torch.ones(2) + torch.ones(3)


# ---- autograd ----------------------------------------------------------------------------------

def _xy():
    rng = np.random.default_rng(1)
    return (torch.tensor(rng.standard_normal((2, 8)), requires_grad=True),
            torch.tensor(rng.standard_normal((3, 8)), requires_grad=True))


def test_gradcheck_jagged():
    x, y = _xy()
    W = torch.tensor(np.random.default_rng(2).standard_normal((8, 8)) / 3, requires_grad=True)

    def f(a, b, w):
        n = torch.nested.as_nested_tensor([a, b], layout=torch.jagged)
        h = F.linear(n, w).unflatten(-1, [2, 4]).transpose(1, 2)
        o = F.scaled_dot_product_attention(h, h, h).transpose(1, 2).flatten(-2)
        return (o.sin() * 2 + n.softmax(1)).sum(-1).to_padded_tensor(0.0)
    assert gradcheck(f, (x, y, W))
    n = torch.nested.as_nested_tensor([x, y], layout=torch.jagged)
    assert type(n.grad_fn).__name__ == "NestedViewFromJaggedBackward0" and not n.is_leaf


def test_gradcheck_strided():
    x, y = _xy()
    W = torch.tensor(np.random.default_rng(3).standard_normal((3, 8)), requires_grad=True)

    def f(a, b, w):
        n = torch.nested.as_nested_tensor([a, b])
        return F.linear(n, w).softmax(-1).sum(-1, keepdim=True).to_padded_tensor(0.0) * \
            torch.bmm(n, n.transpose(1, 2)).to_padded_tensor(1.0).sum(-1, keepdim=True)
    assert gradcheck(f, (x, y, W))


def test_leaf_grad():
    j = torch.nested.nested_tensor(comps(A, B), layout=torch.jagged, requires_grad=True)
    assert j.is_leaf and j.requires_grad and j.grad_fn is None
    (j * j * 3).to_padded_tensor(0.0).sum().backward()
    check(j.grad, [6 * A, 6 * B])
    s = torch.nested.nested_tensor(comps(A, B), requires_grad=True)
    out = s.sin()
    out.backward(torch.nested.nested_tensor(comps(np.ones_like(A), 2 * np.ones_like(B))))
    check(s.grad, [np.cos(A), 2 * np.cos(B)])


# ---- cat, stack, slicing, select, chunk/split ------------------------------------------------

def test_cat_and_stack():
    j = nj()
    w = np.array([1.0, -2.0, 0.5])
    check(torch.cat([j, j * 2], -1), [np.hstack([A, 2 * A]), np.hstack([B, 2 * B])])
    check(torch.cat([j, torch.tensor(w)], 2), [np.hstack([A, np.tile(w, (2, 1))]),
                                               np.hstack([B, np.tile(w, (4, 1))])])
    r = torch.cat([j, j], -1)
    assert r.shape[1] is j.shape[1] and r.offsets() is j.offsets()
    u = j.unsqueeze(-1)
    check(torch.cat([u, u], 2), [np.concatenate([A, A], 1)[..., None],
                                 np.concatenate([B, B], 1)[..., None]])
    t = j.transpose(1, 2)
    check(torch.cat([t, t], 1), [np.vstack([A.T, A.T]), np.vstack([B.T, B.T])])
    check(torch.stack([j, j + 1], -1), [np.stack([A, A + 1], -1), np.stack([B, B + 1], -1)])
    assert torch.stack([j, j], 2).shape[1] is j.shape[1]
    # strided: the batch dim appends components; other dims cat per component
    s = ns()
    check(torch.cat([s, ns(A)], 0), [A, B, A])
    check(torch.cat([s, s], 1), [np.vstack([A, A]), np.vstack([B, B])])
    check(torch.cat([s, ns(A[:, :1], B[:, :1])], -1), [np.hstack([A, A[:, :1]]),
                                                       np.hstack([B, B[:, :1]])])


def test_slicing_select_narrow():
    j = nj()
    check(j[..., :2], [A[:, :2], B[:, :2]])
    check(j[..., 1:], [A[:, 1:], B[:, 1:]])
    check(j[..., ::2], [A[:, ::2], B[:, ::2]])
    check(j[..., 1], [A[:, 1], B[:, 1]])
    check(j[..., None], [A[..., None], B[..., None]])
    np.testing.assert_array_equal(j[1].numpy(), B)
    np.testing.assert_array_equal(j[0, 1].numpy(), A[1])
    np.testing.assert_array_equal(j[-1, ..., 2].numpy(), B[:, 2])
    check(j.narrow(2, 1, 2), [A[:, 1:], B[:, 1:]])
    check(torch.narrow(j, -1, 0, 1), [A[:, :1], B[:, :1]])
    check(j.select(-1, 2), [A[:, 2], B[:, 2]])
    check(torch.select(j, 2, 0), [A[:, 0], B[:, 0]])
    np.testing.assert_array_equal(j.select(0, 0).numpy(), A)
    u = nj(np.arange(12.0).reshape(2, 2, 3), np.arange(18.0).reshape(3, 2, 3))
    U0, U1 = np.arange(12.0).reshape(2, 2, 3), np.arange(18.0).reshape(3, 2, 3)
    check(u[..., 1, :], [U0[:, 1], U1[:, 1]])
    check(u.select(2, 0), [U0[:, 0], U1[:, 0]])
    t = j.transpose(1, 2)        # select may be taken before the ragged dim
    st = t.select(1, 0)
    check(st, [A[:, 0], B[:, 0]])
    assert st.dim() == 2 and st._ragged_idx == 1
    e = j.unsqueeze(-1).expand(2, -1, 3, 2)
    check(e, [np.repeat(A[..., None], 2, -1), np.repeat(B[..., None], 2, -1)])
    assert e.shape[1] is j.shape[1]
    check(j.unsqueeze(-1).expand(2, j.shape[1], 3, 1).squeeze(-1), [A, B])
    check(j.squeeze(-1), [A, B])        # (a dim of size 3: unchanged, as dense squeeze)
    s = ns()
    check(s.select(2, 1), [A[:, 1], B[:, 1]])
    check(s.narrow(0, 1, 1), [B])
    np.testing.assert_array_equal(s[0].numpy(), A)


def test_chunk_split():
    j = nj()
    a, b = j.split([1, 2], -1)
    check(a, [A[:, :1], B[:, :1]])
    check(b, [A[:, 1:], B[:, 1:]])
    check(torch.split(j, 2, 2)[1], [A[:, 2:], B[:, 2:]])
    check(torch.split_with_sizes(j, [2, 1], -1)[0], [A[:, :2], B[:, :2]])
    c = nj(A, B, A[:1])
    p, q = c.chunk(2, 0)         # the batch dim: pieces of whole components
    check(p, [A, B])
    check(q, [A[:1]])
    np.testing.assert_array_equal(q.offsets().numpy(), [0, 1])
    s = ns()
    check(s.chunk(3, -1)[2], [A[:, 2:], B[:, 2:]])
    check(s.split([1, 2], -1)[1], [A[:, 1:], B[:, 1:]])


def test_cat_slicing_grad():
    x, y = _xy()
    d = torch.tensor(np.linspace(-1, 1, 8), requires_grad=True)

    def f(a, b, w):
        n = torch.nested.as_nested_tensor([a, b], layout=torch.jagged)
        m = torch.cat([n[..., :5], n.narrow(-1, 2, 3) * w[:3], n.select(-1, 7).unsqueeze(-1)], -1)
        h, k = m.split([4, 5], -1)
        g = torch.stack([h * k.sum(-1, keepdim=True), h], -1).chunk(2, 0)
        return torch.cat([g[0].values(), g[1].values()]).sin() + 0
    assert gradcheck(f, (x, y, d))
    n = torch.nested.nested_tensor(comps(A, B), layout=torch.jagged, requires_grad=True)
    assert type(torch.cat([n, n], -1).grad_fn).__name__ == "CatBackward0"
    assert type(n.select(2, 0).grad_fn).__name__ == "SelectBackwardAutogradNestedTensor0"
    assert type(n.chunk(3, -1)[0].grad_fn).__name__ == "ChunkBackwardAutogradNestedTensor0"
    assert type(n.split([1, 2], -1)[0].grad_fn).__name__ == \
        "SplitWithSizesBackwardAutogradNestedTensor0"


@pytest.mark.parametrize("f, exc, msg", [
    (lambda j, s: torch.cat([j, j], 0), RuntimeError, r"cat\(\): not supported for NestedTensor "
                                                      r"on dim=0"),
    (lambda j, s: torch.cat([j, j], 1), RuntimeError, "cat\\(\\): not supported for NestedTensor "
                                                      "on ragged dim"),
    (lambda j, s: torch.cat([j, torch.ones(2, 3, dtype=torch.float64)], -1), RuntimeError,
     r"expanded size of the tensor \(6\) must match the existing size \(2\)"),
    (lambda j, s: torch.cat([j, nj(A[:1], B)], -1), RuntimeError,
     "Sizes of tensors must match except in dimension 1. Expected size 6 but got size 5"),
    (lambda j, s: torch.cat([j, j], 3), IndexError, "Dimension out of range"),
    (lambda j, s: torch.cat([s, torch.ones(2, 3)], 0), RuntimeError,
     "Expected each tensor in given list to be nested."),
    (lambda j, s: torch.cat([s, ns(A[:1])], -1), RuntimeError,
     "cat\\(\\): expected all nested tensors to have matching ragged structures outside of the "
     "concatenated dim"),
    (lambda j, s: torch.cat([j, s], 2), RuntimeError, "doesn't support sizes"),
    (lambda j, s: torch.stack([j, j], 0), RuntimeError, "stack\\(\\): not supported for "
                                                        "NestedTensor on dim=0"),
    (lambda j, s: torch.stack([j, j], 1), RuntimeError, "on ragged dim"),
    (lambda j, s: torch.stack([j, torch.ones(2, 3)], -1), RuntimeError,
     r"stack\(\): expected all nested tensors inputs"),
    (lambda j, s: torch.stack([j, nj()], -1), RuntimeError,
     r"stack\(\): expected all nested tensors to have the same nested structure"),
    (lambda j, s: j[:, :, 1:], RuntimeError, r"slice\(\): not supported for NestedTensor on "
                                             r"dim=0"),
    (lambda j, s: j[1:], RuntimeError, r"slice\(\): not supported for NestedTensor on dim=0"),
    (lambda j, s: j[None], RuntimeError, r"unsqueeze\(\): not supported for NestedTensor on "
                                         r"dim=0"),
    (lambda j, s: j[5], IndexError, "tuple index out of range"),
    (lambda j, s: j[torch.tensor([0])], NotImplementedError, "aten.index.Tensor"),
    (lambda j, s: j[..., 1, 1], RuntimeError,
     "select\\(\\): not supported for NestedTensor on ragged"),
    (lambda j, s: j.transpose(1, 2)[..., :1], ValueError,
     "expected self to be a contiguous jagged layout NestedTensor"),
    (lambda j, s: j.transpose(1, 2)[..., 1], RuntimeError, r"select\(\): not supported for "
                                                           r"NestedTensor on ragged dim"),
    (lambda j, s: j.narrow(1, 0, 1), RuntimeError, "narrow\\(\\): not supported for "
                                                   "NestedTensor on ragged dim"),
    (lambda j, s: j.narrow(2, 2, 5), RuntimeError, r"start \(2\) \+ length \(5\) exceeds "
                                                   r"dimension size \(3\)"),
    (lambda j, s: j.select(1, 0), RuntimeError, "select\\(\\): not supported for NestedTensor "
                                                "on ragged dim"),
    (lambda j, s: j.select(2, 3), IndexError, r"index 3 out of range for tensor of size "
                                              r"\[6, 3\] at dimension 1"),
    (lambda j, s: j.chunk(2, 1), RuntimeError, "chunk\\(\\): not supported for NestedTensor on "
                                               "ragged dim"),
    (lambda j, s: j.split(1, 0), RuntimeError, "split\\(\\): not supported for NestedTensor on "
                                               "dim=0"),
    (lambda j, s: j.split([1, 1], -1), RuntimeError, "split_with_sizes expects split_sizes to "
                                                     "sum exactly to 3"),
    (lambda j, s: torch.nested.nested_tensor_from_jagged(
        torch.ones(6, 2), torch.tensor([0, 1, 4]), torch.tensor([1, 2])).select(-1, 0),
     ValueError, "not yet supported on dim != 0 for non-contiguous nested tensor with holes"),
    (lambda j, s: s.narrow(2, 0, 1), RuntimeError, "narrow\\(\\): only dim=0 supported for "
                                                   "nested tensors, but got: 2"),
    (lambda j, s: s[0:1], NotImplementedError, "aten::slice.Tensor"),
    (lambda j, s: j.squeeze(1), RuntimeError, r"squeeze\(\): not supported for NestedTensor on "
                                              r"ragged dim"),
    (lambda j, s: j.expand(3, -1, 3), RuntimeError, r"expand\(\): cannot expand shape "
                                                    r"\(2, j\d+, 3\) -> \[3, -1, 3\]"),
    (lambda j, s: j.expand(2, 2, 3), RuntimeError, "cannot expand shape"),
])
def test_cat_slicing_errors(f, exc, msg):
    j, s = nj(), ns()
    before = j.values().numpy().copy()
    with pytest.raises(exc, match=msg):
        f(j, s)
    np.testing.assert_array_equal(j.values().numpy(), before)


# ---- max/min/argmax/argmin, dropout, *_like, norms, embedding ---------------------------------

def test_max_min_argmax():
    j = nj()
    m = j.max(-1)
    check(m.values, [A.max(-1), B.max(-1)])
    check(m.indices, [A.argmax(-1), B.argmax(-1)])
    assert m.indices.dtype is torch.int64 and m.values.shape[1] is j.shape[1]
    check(torch.min(j, 2, keepdim=True)[0], [A.min(-1, keepdims=True), B.min(-1, keepdims=True)])
    check(j.argmin(-1), [A.argmin(-1), B.argmin(-1)])
    # the ragged dim: a dense (B, ...) result
    r = j.max(1)
    np.testing.assert_array_equal(r.values.numpy(), np.stack([A.max(0), B.max(0)]))
    np.testing.assert_array_equal(r.indices.numpy(), np.stack([A.argmax(0), B.argmax(0)]))
    np.testing.assert_array_equal(j.argmin(1, keepdim=True).numpy(),
                                  np.stack([A.argmin(0), B.argmin(0)])[:, None])
    np.testing.assert_array_equal(j.min(1).values.numpy(), np.stack([A.min(0), B.min(0)]))
    assert j.max().item() == max(A.max(), B.max())
    assert j.argmax().item() == np.concatenate([A, B]).argmax()
    t = j.transpose(1, 2)               # (B, 3, j): max over dim 1 keeps the ragged dim
    check(t.max(1).values, [A.max(1), B.max(1)])
    np.testing.assert_array_equal(t.argmax(2).numpy(), np.stack([A.argmax(0), B.argmax(0)]))


def test_max_min_grad():
    x, y = _xy()

    def f(a, b):
        n = torch.nested.as_nested_tensor([a, b], layout=torch.jagged)
        return n.max(-1).values.to_padded_tensor(0.0).sum(1) + n.min(1).values.sum(-1)
    assert gradcheck(f, (x, y))


def test_dropout_and_like():
    j = nj()
    torch.manual_seed(7)
    d = F.dropout(j, 0.4)
    torch.manual_seed(7)
    ref = F.dropout(torch.tensor(np.concatenate([A, B])), 0.4).numpy()   # the values' draws
    np.testing.assert_array_equal(d.values().numpy(), ref)
    kept = ref != 0
    np.testing.assert_allclose(ref[kept], np.concatenate([A, B])[kept] / 0.6, rtol=1e-12)
    assert F.dropout(j, 0.4, training=False) is j
    check(torch.nn.Dropout(0.0)(j), [A, B])
    s = ns()
    torch.manual_seed(3)
    ds = F.dropout(s, 0.5)
    torch.manual_seed(3)
    np.testing.assert_array_equal(ds.values().numpy(),
                                  F.dropout(torch.tensor(np.concatenate([A.ravel(), B.ravel()])),
                                            0.5).numpy())
    check(torch.zeros_like(j), [0 * A, 0 * B])
    check(torch.ones_like(s), [A * 0 + 1, B * 0 + 1])
    f = torch.full_like(j, 3.0, dtype=torch.float32)
    assert f.dtype is torch.float32 and f.shape[1] is j.shape[1]
    check(f, [A * 0 + 3, B * 0 + 3])
    assert torch.empty_like(j).shape[1] is j.shape[1]
    torch.manual_seed(11)
    rn = torch.randn_like(j)
    torch.manual_seed(11)
    np.testing.assert_array_equal(rn.values().numpy(),
                                  torch.randn(6, 3, dtype=torch.float64).numpy())
    torch.manual_seed(11)
    ru = torch.rand_like(j).values().numpy()
    assert ((ru >= 0) & (ru < 1)).all() and ru.shape == (6, 3)


def _ln(x, w=None, b=None, eps=1e-5):
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def test_norms_activations_where():
    j = nj()
    w, b = np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2, 0.3])
    check(F.layer_norm(j, (3,)), [_ln(A), _ln(B)], atol=1e-9)
    check(F.layer_norm(j, (3,), torch.tensor(w), torch.tensor(b)), [_ln(A, w, b), _ln(B, w, b)],
          atol=1e-9)
    rms = lambda x: x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-3) * w    # noqa: E731
    check(F.rms_norm(j, (3,), torch.tensor(w), eps=1e-3), [rms(A), rms(B)], atol=1e-9)
    silu = lambda x: x / (1 + np.exp(-x))                                      # noqa: E731
    check(F.silu(j), [silu(A), silu(B)])
    from scipy.special import erf
    gelu = lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))                        # noqa: E731
    check(F.gelu(j), [gelu(A), gelu(B)], atol=1e-9)
    check(j.masked_fill(j > 1, -1.0), [np.where(A > 1, -1, A), np.where(B > 1, -1, B)])
    check(torch.where(j > 0, j, 2 * j), [np.where(A > 0, A, 2 * A), np.where(B > 0, B, 2 * B)])
    rng = np.random.default_rng(4)
    x, y = (torch.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 4), (1, 4)))
    W = torch.tensor(np.linspace(0.5, 1.5, 4), requires_grad=True)

    def f(a, b, w):
        n = torch.nested.as_nested_tensor([a, b], layout=torch.jagged)
        h = F.layer_norm(n, (4,), w) + F.rms_norm(n, (4,), w) + F.gelu(n) * F.silu(n)
        return torch.where(n > 0, h, h * 2).to_padded_tensor(0.0)
    assert gradcheck(f, (x, y, W))


def test_in_place():
    j = nj()
    c = j.clone()
    assert c.mul_(2) is c and c.add_(j, alpha=-1) is c
    check(c, [A, B])
    check(c.masked_fill_(c > 1, 0.5), [np.where(A > 1, 0.5, A), np.where(B > 1, 0.5, B)])
    check(c.fill_(2.0), [A * 0 + 2, B * 0 + 2])
    check(c.zero_(), [A * 0, B * 0])
    check(c.copy_(j), [A, B])
    assert F.relu(c, inplace=True) is c
    check(c, [np.maximum(A, 0), np.maximum(B, 0)])
    check(ns().mul_(2), [2 * A, 2 * B])
    check(c.clamp_(0, 1), [np.clip(A, 0, 1), np.clip(B, 0, 1)])
    x = torch.nested.nested_tensor(comps(A, B), layout=torch.jagged, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        x.mul_(2)
    y = x * 1
    y.mul_(3)
    (y * y).to_padded_tensor(0.0).sum().backward()
    check(x.grad, [18 * A, 18 * B])


def test_embedding_jagged_indices():
    ids = torch.nested.nested_tensor([torch.tensor([1, 2]), torch.tensor([0, 3, 1])],
                                     layout=torch.jagged)
    Wn = np.arange(12.0).reshape(4, 3) / 7
    W = torch.tensor(Wn, requires_grad=True)
    e = F.embedding(ids, W)
    assert e.dim() == 3 and e.shape[1] is ids.shape[1]
    check(e, [Wn[[1, 2]], Wn[[0, 3, 1]]])
    e.to_padded_tensor(0.0).sum().backward()
    np.testing.assert_array_equal(W.grad.numpy(), np.array([1, 2, 1, 1.0])[:, None] * np.ones(3))


def test_transformer_workflow_matches_per_sequence():
    """embedding -> nested -> linear -> sdpa -> layer_norm -> to_padded_tensor -> loss ->
    backward equals the same model run on each sequence alone (dense ops)."""
    V, E, H = 7, 4, 2
    rng = np.random.default_rng(5)
    Wn = {k: rng.standard_normal(s) / 2 for k, s in
          (("emb", (V, E)), ("q", (E, E)), ("k", (E, E)), ("v", (E, E)), ("head", (V, E)))}
    seqs = [rng.integers(0, V, n) for n in (3, 1, 4)]
    tgts = [rng.integers(0, V, n) for n in (3, 1, 4)]

    def run(nested):
        P = {k: torch.tensor(v, requires_grad=True) for k, v in Wn.items()}

        def model(ids):
            x = F.embedding(ids, P["emb"])
            sp = (lambda t: t.unflatten(-1, [H, E // H]).transpose(1, 2)) if nested else \
                (lambda t: t.unflatten(-1, [H, E // H]).transpose(0, 1))
            q, k, v = (sp(F.linear(x, P[n])) for n in "qkv")
            a = F.scaled_dot_product_attention(q, k, v)
            a = a.transpose(1, 2).flatten(-2) if nested else a.transpose(0, 1).flatten(-2)
            return F.linear(F.layer_norm(x + a, (E,)), P["head"])
        if nested:
            ids = torch.nested.nested_tensor([torch.tensor(s) for s in seqs], layout=torch.jagged)
            tg = torch.nested.nested_tensor([torch.tensor(t) for t in tgts], layout=torch.jagged)
            logits = model(ids).to_padded_tensor(0.0)
            loss = F.cross_entropy(logits.reshape(-1, V), tg.to_padded_tensor(-100).reshape(-1),
                                   ignore_index=-100)
        else:
            loss = sum(F.cross_entropy(model(torch.tensor(s)), torch.tensor(t), reduction="sum")
                       for s, t in zip(seqs, tgts)) / sum(len(t) for t in tgts)
        loss.backward()
        return loss.item(), {k: p.grad.numpy() for k, p in P.items()}
    (l1, g1), (l2, g2) = run(True), run(False)
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    for k in Wn:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("f, exc, msg", [
    (lambda j, s: j.max(0), RuntimeError, r"max\(\): reducing along the batch dimension but not "
                                          r"the ragged dimension"),
    (lambda j, s: j.argmin(0), RuntimeError, r"argmin\(\): reducing along the batch dimension"),
    (lambda j, s: s.max(-1), NotImplementedError, "aten::max.dim"),
    (lambda j, s: s.argmax(-1), NotImplementedError, "aten::argmax"),
    (lambda j, s: torch.nested.nested_tensor_from_jagged(
        torch.ones(6, 2), torch.tensor([0, 1, 4]), torch.tensor([1, 2])).max(1), RuntimeError,
     "reducing across the ragged dimension is not supported for non-contiguous nested tensors"),
    (lambda j, s: torch.nested.nested_tensor_from_jagged(
        torch.ones(6, 2), torch.tensor([0, 1, 4]), torch.tensor([1, 2])).to_padded_tensor(0.0),
     RuntimeError, "not supported for nested tensors with holes"),
    (lambda j, s: F.scaled_dot_product_attention(*(t.unflatten(-1, [1, 1]).transpose(1, 2)
                                                   for t in j.chunk(3, -1))),
     RuntimeError, "No viable backend for scaled_dot_product_attention was found."),
    (lambda j, s: torch.where(s > 0, s, 0.0), RuntimeError, "other must be nested"),
    (lambda j, s: j.cumsum(-1), NotImplementedError, "aten::cumsum"),
    (lambda j, s: F.dropout(j, 0.5, inplace=True), NotImplementedError, "aten::bernoulli_"),
    (lambda j, s: j.copy_(nj(A[:1], B)), RuntimeError, "copy_\\(\\): expected compatible input "
                                                       "and src shapes"),
    (lambda j, s: nj(dtype=torch.int64).add_(0.5), RuntimeError, "can't be cast to the desired "
                                                                 "output type"),
    (lambda j, s: torch.nested.to_padded_tensor(torch.ones(2), 0.0), NotImplementedError,
     "Could not run 'aten::to_padded_tensor' with arguments from the 'CPU' backend"),
])
def test_reduction_errors(f, exc, msg):
    j, s = nj(), ns()
    before = j.values().numpy().copy()
    with pytest.raises(exc, match=msg):
        f(j, s)
    np.testing.assert_array_equal(j.values().numpy(), before)
