"""Tensor API workflow checks found by differential runs against PyTorch's behaviour: error
messages of gather/scatter/masked ops, cdist and einsum, warnings PyTorch gives (deprecated
scatter reduce=, index_reduce beta, uint8 indices), and __torch_function__ on Tensor subclasses.
References: NumPy float64 and hand-derived values."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework import ops_index


def to_np(t):
    return np.asarray(t.detach().numpy())


# ---- gather / scatter / masked ops: messages, data unchanged -----------------------------------

def test_gather_scatter_size_messages_and_data_unchanged():
    src = torch.arange(1., 11).reshape(2, 5)
    with pytest.raises(RuntimeError, match=r"expected index \[3, 2\] to be no larger than self "
                                           r"\[2, 5\] apart from dimension 1"):
        torch.gather(src, 1, torch.zeros(3, 2, dtype=torch.long))
    x = torch.zeros(3, 5)
    with pytest.raises(RuntimeError, match=r"Expected index \[2, 6\] to be no larger than self "
                                           r"\[3, 5\] apart from dimension 0 and to be no larger "
                                           r"size than src \[2, 5\]"):
        x.scatter_add_(0, torch.zeros(2, 6, dtype=torch.long), torch.ones(2, 5))
    with pytest.raises(RuntimeError, match=r"no larger than self \[3, 5\] apart from dimension 0$"):
        x.scatter_(0, torch.zeros(2, 6, dtype=torch.long), 1.0)
    np.testing.assert_array_equal(to_np(x), np.zeros((3, 5)))
    # an index larger than self along the scatter dim is fine: rows 0 and 1 take the sums
    r = x.scatter_add(0, torch.tensor([[0], [1], [1], [0]]), torch.ones(4, 1) * 2)
    want = np.zeros((3, 5))
    want[0, 0], want[1, 0] = 4, 4
    np.testing.assert_array_equal(to_np(r), want)


def test_masked_op_mask_dtype_messages():
    x = torch.zeros(3)
    with pytest.raises(RuntimeError, match="but got mask with dtype unsigned char$"):
        x.masked_fill(torch.tensor([1, 0, 1], dtype=torch.uint8), 1.0)
    with pytest.raises(RuntimeError, match="but got mask with dtype long int$"):
        x.masked_fill(torch.tensor([1, 0, 1]), 1.0)
    with pytest.raises(RuntimeError, match="masked_scatter_ only supports boolean masks, but got "
                                           "mask with dtype Float$"):
        x.masked_scatter(torch.tensor([1., 0., 1.]), torch.ones(3))
    np.testing.assert_array_equal(to_np(x), [0, 0, 0])


def test_scatter_reduce_argument_and_index_reduce_warn_once():
    ops_index._WARNED_SCATTER_REDUCE = False
    with pytest.warns(UserWarning, match="The reduce argument of torch.scatter with Tensor src is "
                                         "deprecated"):
        r = torch.ones(3).scatter(0, torch.tensor([0, 0, 2]), torch.tensor([2., 3., 4.]),
                                  reduce="multiply")
    np.testing.assert_array_equal(to_np(r), [6., 1., 4.])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # once only, and never for a scalar value
        torch.ones(3).scatter(0, torch.tensor([1]), torch.tensor([5.]), reduce="add")
        torch.ones(3).scatter(0, torch.tensor([1]), 5.0, reduce="add")
        torch.zeros(3).scatter_add(0, torch.tensor([1]), torch.tensor([5.]))
    ops_index._WARNED_INDEX_REDUCE = False
    with pytest.warns(UserWarning, match=r"index_reduce\(\) is in beta"):
        r = torch.full((3,), 2.).index_reduce(0, torch.tensor([0, 0, 2]),
                                              torch.tensor([3., -1., 5.]), "amax")
    np.testing.assert_array_equal(to_np(r), [3., 2., 5.])


def test_uint8_index_warns_and_is_a_mask():
    x = torch.arange(4)
    with pytest.warns(UserWarning, match="indexing with dtype torch.uint8 is now deprecated"):
        r = x[torch.tensor([1, 0, 0, 1], dtype=torch.uint8)]
    np.testing.assert_array_equal(to_np(r), [0, 3])


def test_slice_step_messages():
    x = torch.arange(5)
    with pytest.raises(ValueError, match="^slice step cannot be zero$"):
        x[::0]
    with pytest.raises(ValueError, match="^step must be greater than zero"):
        x[::-1]


# ---- cdist / einsum checks ---------------------------------------------------------------------

def test_cdist_checks_values_and_grad_fn():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    a = torch.tensor(A, requires_grad=True)
    d = torch.cdist(a, torch.tensor(B))
    want = np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(to_np(d), want, rtol=1e-12)
    assert type(d.grad_fn).__name__ == "CdistBackward0"
    d.sum().backward()
    g = ((A[:, None, :] - B[None, :, :]) / want[:, :, None]).sum(1)
    np.testing.assert_allclose(to_np(a.grad), g, rtol=1e-10)
    with pytest.raises(RuntimeError, match="X1 and X2 must have the same number of columns. "
                                           "X1: 4 X2: 3"):
        torch.cdist(torch.ones(3, 4), torch.zeros(5, 3))
    with pytest.raises(RuntimeError, match="cdist only supports at least 2D tensors, X2 got: 1D"):
        torch.cdist(torch.ones(3, 4), torch.ones(4))
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        torch.cdist(torch.ones(3, 4), torch.ones(5, 4, dtype=torch.float64))


@pytest.mark.parametrize("eq,shapes,msg", [
    ("ij,jk->ik", [(2, 3), (4, 2)],
     "subscript j has size 4 for operand 1 which does not broadcast with previously seen size 3"),
    ("ii->i", [(2, 3)], "subscript i is repeated for operand 0 but the sizes don't match, 3 != 2"),
    ("...i,...i->...", [(2, 5, 3), (4, 3)],
     "dimension 0 covered by ellipsis in operand 1has size 4 which does not broadcast with "
     "previously seen ellipsis with size 5 for the respective dimension"),
    ("ijk...->...", [(2, 3)], r"the number of subscripts in the equation \(3\) is more than the "
                              r"number of dimensions \(2\) for operand 0"),
])
def test_einsum_size_messages(eq, shapes, msg):
    with pytest.raises(RuntimeError, match=msg):
        torch.einsum(eq, *[torch.ones(s) for s in shapes])


def test_einsum_broadcasts_size_one_and_ellipsis():
    A, B = np.arange(6.).reshape(2, 1, 3), np.arange(12.).reshape(4, 3)
    r = torch.einsum("...i,...i->...", torch.tensor(A), torch.tensor(B))
    np.testing.assert_allclose(to_np(r), (A * B).sum(-1))


# ---- messages PyTorch words in its own way -----------------------------------------------------

def test_normal_std_and_from_numpy_messages():
    with pytest.raises(RuntimeError, match="^normal expects all elements of std >= 0.0$"):
        torch.normal(torch.zeros(2), torch.tensor([-1., 1.]))
    with pytest.raises(RuntimeError, match="^normal expects std >= 0.0, but found std -1$"):
        torch.normal(0., -1., size=(2,))
    with pytest.raises(TypeError, match="can't convert np.ndarray of type numpy.str_. The only"):
        torch.from_numpy(np.array(["a"]))
    a = torch.eye(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Use detach\\(\\) instead. If you are using "
                                           "DistributedDataParallel"):
        a[0].detach_()


def test_copy_broadcast_and_requires_grad_messages():
    x = torch.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of "
                                           r"tensor b \(2\) at non-singleton dimension 1"):
        x.copy_(torch.ones(2))
    with pytest.raises(RuntimeError, match=r"output with shape \[2, 3\] doesn't match the "
                                           r"broadcast shape \[4, 2, 3\]"):
        x.copy_(torch.ones(4, 2, 3))
    np.testing.assert_array_equal(to_np(x), np.zeros((2, 3)))
    np.testing.assert_array_equal(to_np(x.copy_(torch.tensor([[1.], [2.]]))),
                                  [[1, 1, 1], [2, 2, 2]])
    i = torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="^only Tensors of floating point dtype can require "
                                           "gradients"):
        i.requires_grad_()
    with pytest.raises(RuntimeError, match="^only Tensors of floating point and complex dtype"):
        i.requires_grad = True
    with pytest.raises(RuntimeError, match="^Only Tensors of floating point and complex dtype"):
        torch.tensor([1, 2], requires_grad=True)
    assert not i.requires_grad


def test_cat_stack_refuse_non_tensor_elements():
    with pytest.raises(TypeError, match="expected Tensor as element 1 in argument 0, but got list"):
        torch.cat([torch.tensor([1]), [2]])
    with pytest.raises(TypeError, match="expected Tensor as element 1 in argument 0, but got int"):
        torch.stack([torch.tensor(1), 2])
    with pytest.raises(TypeError, match=r"cat\(\): argument 'tensors' \(position 1\) must be "
                                        "tuple of Tensors, not Tensor"):
        torch.cat(torch.ones(2, 2))
    np.testing.assert_array_equal(to_np(torch.cat((torch.ones(1), torch.zeros(2)))), [1, 0, 0])
    with pytest.raises(RuntimeError, match="^split_size can only be 0 if dimension size is 0, but "
                                           "got dimension size of 3"):
        torch.arange(3).split(0)


def test_view_made_under_no_grad_refuses_inplace_with_grad_on():
    w = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        v = w[:1]
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and is being "
                                           "modified inplace with grad mode enabled"):
        v.mul_(2)
    np.testing.assert_array_equal(to_np(w), [1., 1.])
    with torch.no_grad():                   # both inside no_grad: allowed, not tracked
        v.mul_(3)
    np.testing.assert_array_equal(to_np(w), [3., 1.])
    p = torch.ones(2)                       # a base that needs no grad: allowed
    with torch.no_grad():
        q = p[1:]
    q.add_(4)
    np.testing.assert_array_equal(to_np(p), [1., 5.])
    w.detach()[1:].mul_(7)                  # detach() is not a no_grad view
    np.testing.assert_array_equal(to_np(w), [3., 7.])


def test_view_made_under_no_grad_requires_grad_without_an_accumulator():
    # PyTorch: such a view requires grad through its base, is a leaf, and has no AccumulateGrad:
    # gradients reaching it are dropped, autograd.grad calls it unused
    x = torch.tensor([1., 2., 3.], requires_grad=True)
    with torch.no_grad():
        v, e, c = x[:2], x.expand(2, 3), x * 2
        d = x.detach()[:2]
    assert (v.requires_grad, v.is_leaf, v.grad_fn) == (True, True, None)
    assert e.requires_grad and not c.requires_grad and not d.requires_grad
    assert "requires_grad=True" in repr(v)
    loss = (v * x[:2]).sum()
    assert type(loss.grad_fn).__name__ == "SumBackward0"
    loss.backward()
    np.testing.assert_array_equal(to_np(x.grad), [1., 2., 0.])     # through x[:2] only
    assert v.grad is None
    with pytest.raises(RuntimeError, match="index 0 appears to not have been used in the graph"):
        torch.autograd.grad((v * x[:2]).sum(), v)
    assert torch.autograd.grad((v * x[:2]).sum(), [v, x], allow_unused=True)[0] is None
    v.requires_grad_(False)                 # PyTorch keeps it: it comes from the base
    assert v.requires_grad
    v.requires_grad_(True)                  # made explicitly: a leaf of its own, accumulating
    (v * 2).sum().backward()
    np.testing.assert_array_equal(to_np(v.grad), [2., 2.])


def test_view_grad_fn_regenerated_after_an_inplace_write():
    # PyTorch regenerates a view's grad_fn (AsStridedBackward0 of its base's new history) once
    # the base, or the view itself, was written in place; the gradients are unchanged
    a = torch.tensor([1., 2., 3., 4.], requires_grad=True)
    c = a.clone()
    d, e, f = c.view(2, 2), c[1:], c.view(2, 2).t()
    assert type(d.grad_fn).__name__ == "ViewBackward0"
    c.mul_(2)
    assert [type(t.grad_fn).__name__ for t in (c, d, e, f)] == [
        "MulBackward0", "AsStridedBackward0", "AsStridedBackward0", "AsStridedBackward0"]
    assert "grad_fn=<AsStridedBackward0>" in repr(e)
    w = torch.arange(4.).view(2, 2)
    (d.sum() + e.sum() * 2 + (f * w).sum()).backward()
    # d: 2 each; e: 4 at 1..3; f = c.view(2,2).t(): 2 * w.t() flattened = [0, 4, 2, 6]
    np.testing.assert_array_equal(to_np(a.grad), [2., 10., 8., 12.])
    b = torch.tensor([1., 2., 3., 4.], requires_grad=True)
    c2 = b.clone()
    v, u = c2[:2], c2[2:]
    v.mul_(3)                               # written through the view itself
    assert [type(t.grad_fn).__name__ for t in (c2, v, u)] == [
        "CopySlices", "AsStridedBackward0", "AsStridedBackward0"]
    (v.sum() + (c2 * c2).sum()).backward()
    # v = 3 b[:2]; c2 = [3 b0, 3 b1, b2, b3]: d/db = 3 + 18 b (first two), 2 b (last two)
    np.testing.assert_allclose(to_np(b.grad), [21., 39., 6., 8.])


# ---- Tensor subclasses and __torch_function__ --------------------------------------------------

@pytest.fixture
def dispatch_cleanup():
    yield
    torch.overrides._uninstall()     # (the wrappers would stay for the rest of the process)


def test_torch_function_logging_subclass(dispatch_cleanup):
    log = []

    class LoggingTensor(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            log.append(func.__name__)
            return super().__torch_function__(func, types, args, kwargs or {})

    X = np.array([1., -2., 3.])
    x = torch.tensor(X).as_subclass(LoggingTensor)
    r = torch.add(x, 1)
    assert type(r) is LoggingTensor and log == ["add"]
    np.testing.assert_array_equal(to_np(r.as_subclass(torch.Tensor)), X + 1)
    log.clear()
    y = x * 2 + torch.ones(3)               # operators dispatch as the method they call
    assert type(y) is LoggingTensor and log == ["mul", "add"]
    log.clear()
    m = torch.max(x, 0)                     # named tuples come back element-wise
    assert type(m.values) is LoggingTensor and type(m.indices) is LoggingTensor
    assert (m.values.item(), m.indices.item()) == (3.0, 2)
    assert log[0] == "max"
    assert type(torch.nn.functional.relu(x)) is LoggingTensor
    assert repr(x[:2].as_subclass(torch.Tensor)) == "tensor([ 1., -2.], dtype=torch.float64)"
    assert repr(torch.tensor([1., 2.]).as_subclass(LoggingTensor)) == "LoggingTensor([1., 2.])"
    with torch._C.DisableTorchFunctionSubclass():
        log.clear()
        assert type(x + 1) is torch.Tensor        # (no dispatch, no conversion)
        assert log == []
    # gradients flow through the alias as_subclass makes
    w = torch.tensor([1., 2.], requires_grad=True)
    s = w.as_subclass(LoggingTensor)
    assert type(s.grad_fn).__name__ == "AliasBackward0"
    (s * torch.tensor([3., 4.])).sum().backward()
    np.testing.assert_array_equal(to_np(w.grad), [3., 4.])


def test_torch_function_not_implemented_and_plain_subclass(dispatch_cleanup):
    class NoImpl(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    class Plain(torch.Tensor):
        pass

    n = torch.ones(1).as_subclass(NoImpl)
    with pytest.raises(TypeError, match="Multiple dispatch failed for 'torch.add'; all "
                                        "__torch_function__ handlers returned NotImplemented"):
        torch.add(n, 1)
    with pytest.raises(TypeError, match="unsupported operand"):
        n + 1                               # an operator falls back to Python's protocol
    p = Plain([1., 2.])                     # legacy constructor, default dispatch
    q = p * 3
    assert type(q) is Plain and q.tolist() == [3., 6.]
    # Kiln's own subclasses stay plain: a Parameter's results are Tensors
    assert type(torch.nn.Parameter(torch.ones(2)) * 2) is torch.Tensor

    class Off(torch.Tensor):
        __torch_function__ = torch._C._disabled_torch_function_impl

    o = torch.tensor([1., 2.]).as_subclass(Off)
    r = o + 1
    assert type(r) is torch.Tensor and r.tolist() == [2., 3.] and repr(o) == "Off([1., 2.])"

    class Scaled(torch.Tensor):
        @staticmethod
        def __new__(cls, data, scale):
            t = torch.Tensor._make_subclass(cls, data)
            t.scale = scale
            return t

    s = Scaled(torch.tensor([1., 2.]), 3)
    assert type(s) is Scaled and s.scale == 3 and s.tolist() == [1., 2.]
    assert type(s.clone()) is Scaled and not hasattr(s.clone(), "scale")
