"""torch.segment_reduce: the five reductions over lengths/offsets, axis, initial, unsafe,
gradients (finite differences, ties, zero factors) and PyTorch 2.13's errors. References:
per-segment NumPy float64 reductions."""
import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck

rng = np.random.default_rng(3)
NP = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod}
EMPTY = {"sum": 0.0, "mean": np.nan, "max": -np.inf, "min": np.inf, "prod": 1.0}


def ref(data, lens, reduce, initial=None):
    """data: (n, ...) reduced along axis 0 in runs of `lens`."""
    out, pos = [], 0
    for n in lens:
        seg = data[pos:pos + n]
        pos += n
        if initial is None:
            out.append(NP[reduce](seg, 0) if n else np.full(data.shape[1:], EMPTY[reduce]))
        elif reduce == "mean":
            out.append((initial + seg.sum(0)) / max(n, 1))
        else:
            full = np.concatenate([np.full((1,) + data.shape[1:], float(initial)), seg])
            out.append(NP[reduce](full, 0))
    return np.stack(out)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("initial", [None, 1.5])
def test_segment_reduce_matches_numpy(reduce, initial):
    d = rng.standard_normal((7, 3))
    lens = [2, 0, 4, 1]
    want = ref(d, lens, reduce, initial)
    x = torch.tensor(d)
    r = torch.segment_reduce(x, reduce, lengths=torch.tensor(lens), initial=initial)
    np.testing.assert_allclose(r.numpy(), want, rtol=1e-12)
    r = torch.segment_reduce(x, reduce, offsets=torch.tensor([0, 2, 2, 6, 7], dtype=torch.int32),
                             initial=initial)
    np.testing.assert_allclose(r.numpy(), want, rtol=1e-12)


def test_segment_reduce_along_axis_with_rows_of_lengths():
    d = rng.standard_normal((2, 5, 3))
    lens = [[2, 3], [4, 1]]
    r = torch.segment_reduce(torch.tensor(d), "mean", lengths=torch.tensor(lens), axis=1)
    assert r.shape == (2, 2, 3)
    for i in range(2):
        np.testing.assert_allclose(r.numpy()[i], ref(d[i], lens[i], "mean"), rtol=1e-12)
    r = torch.segment_reduce(torch.tensor(d), "max", offsets=torch.tensor([[0, 2, 5], [1, 2, 4]]),
                             axis=-2)
    np.testing.assert_allclose(r.numpy()[1], ref(d[1, 1:4], [1, 2], "max"), rtol=1e-12)
    # unsafe: the lengths are not checked to cover the data; the rest is left out
    r = torch.segment_reduce(torch.tensor(d[0]), "sum", lengths=torch.tensor([1, 2]), unsafe=True)
    np.testing.assert_allclose(r.numpy(), ref(d[0, :3], [1, 2], "sum"), rtol=1e-12)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
def test_segment_reduce_gradcheck(reduce):
    x = torch.tensor(rng.uniform(0.5, 2, (6, 2)), requires_grad=True)
    r = torch.segment_reduce(x, reduce, lengths=torch.tensor([2, 3, 1]))
    assert r.grad_fn.name() == "SegmentReduceBackward0"
    assert gradcheck(lambda t: torch.segment_reduce(t, reduce, lengths=torch.tensor([2, 3, 1]),
                                                    initial=0.25), (x,))
    y = torch.tensor(rng.uniform(0.5, 2, (2, 5)), requires_grad=True)
    assert gradcheck(lambda t: torch.segment_reduce(
        t, reduce, offsets=torch.tensor([[0, 2, 5], [0, 4, 5]]), axis=1), (y,))


def test_segment_reduce_gradient_at_ties_and_zeros():
    x = torch.tensor([1., 3., 3., 0., 2., 0.], requires_grad=True)
    L = torch.tensor([3, 3])
    g, = torch.autograd.grad(torch.segment_reduce(x, "max", lengths=L), x, torch.tensor([1., 2.]))
    assert g.tolist() == [0., 0.5, 0.5, 0., 2., 0.]       # split among the equal maxima
    g, = torch.autograd.grad(torch.segment_reduce(x, "min", lengths=L), x, torch.tensor([1., 2.]))
    assert g.tolist() == [1., 0., 0., 1., 0., 1.]
    z = torch.tensor([0., 0., 2., 0., 3., 5.], requires_grad=True)
    g, = torch.autograd.grad(torch.segment_reduce(z, "prod", lengths=torch.tensor([2, 2, 2])), z,
                             torch.ones(3))
    assert g.tolist() == [0., 0., 0., 2., 5., 3.]         # the product of the other factors


def test_segment_reduce_dtypes_and_errors():
    d = torch.tensor([1., 2., 3., 4.])
    L = torch.tensor([1, 3])
    r = torch.segment_reduce(d.bfloat16(), "mean", lengths=L.int())
    assert r.dtype == torch.bfloat16 and r.float().tolist() == [1.0, 3.0]
    cases = [
        (RuntimeError, "reduce argument must be either sum, prod, mean, amax or amin, got std",
         dict(reduce="std", lengths=L)),
        (RuntimeError, "Either lengths or offsets must be defined", dict()),
        (RuntimeError, "indices based reduction is not supported yet", dict(indices=L)),
        (RuntimeError, "Expected all rows of lengths along axis to sum to data.size",
         dict(lengths=torch.tensor([1, 1]))),
        (RuntimeError, "lengths contains negative value!", dict(lengths=torch.tensor([5, -1]))),
        (RuntimeError, "Expected data.dim\\(\\) >= lengths_value.dim\\(\\) to be true",
         dict(lengths=L.view(1, 2))),
        (RuntimeError, "Expected segment_length >= 0", dict(offsets=torch.tensor([0, 3, 1]))),
        (NotImplementedError, "\"_segment_reduce_lengths_cpu_kernel1\" not implemented for "
                              "'Float'", dict(lengths=L.float())),
        (IndexError, "Dimension out of range", dict(lengths=L, axis=1)),
    ]
    for cls, msg, kw in cases:
        with pytest.raises(cls, match=msg):
            torch.segment_reduce(d, kw.pop("reduce", "sum"), **kw)
    with pytest.raises(RuntimeError, match="Expected axis to be the last dimension of lengths "
                                           "but got 1"):
        torch.segment_reduce(d.view(2, 2), "sum", lengths=L, axis=1)
    with pytest.raises(NotImplementedError, match="\"_segment_reduce_cpu\" not implemented for "
                                                  "'Long'"):
        torch.segment_reduce(torch.arange(4), "sum", lengths=L)


def test_scatter_reduce_max_into_infinite_start_keeps_values():
    # (segment_reduce's max starts from -inf: a constant inf must not turn the value into nan)
    x = torch.tensor([1.0, 5.0, 2.0], requires_grad=True)
    base = torch.full((3,), float("-inf"))
    r = base.scatter_reduce(0, torch.tensor([0, 0, 1]), x, "amax")
    assert r.tolist() == [5.0, 2.0, float("-inf")]
    g, = torch.autograd.grad(r[:2].sum(), x)
    assert g.tolist() == [0.0, 1.0, 1.0]
