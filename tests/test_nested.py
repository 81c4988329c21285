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
