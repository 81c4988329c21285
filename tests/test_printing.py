"""Printing: hand-written expected strings in PyTorch's format, plus (when torch is importable)
repr(kiln) == repr(torch) on many fixed and random tensors."""
import math

import numpy as np
import pytest

import framework as torch


@pytest.fixture(autouse=True)
def _default_printoptions():
    yield
    torch.set_printoptions(profile="default")
    torch.set_printoptions(sci_mode=None)


EXPECTED = [
    (lambda: torch.tensor([2.1, 2.1]), "tensor([2.1000, 2.1000])"),
    (lambda: torch.tensor([6., 6.]), "tensor([6., 6.])"),
    (lambda: torch.tensor(7), "tensor(7)"),
    (lambda: torch.tensor(7.7460), "tensor(7.7460)"),
    (lambda: torch.tensor(4.), "tensor(4.)"),
    (lambda: torch.tensor(1.0), "tensor(1.)"),
    (lambda: torch.tensor(0.), "tensor(0.)"),
    (lambda: torch.tensor(13.0005), "tensor(13.0005)"),
    (lambda: torch.tensor(True), "tensor(True)"),
    (lambda: torch.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
    (lambda: torch.arange(0, 12), "tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11])"),
    (lambda: torch.arange(1, 20, 2), "tensor([ 1,  3,  5,  7,  9, 11, 13, 15, 17, 19])"),
    (lambda: torch.tensor([-1, 20]), "tensor([-1, 20])"),
    (lambda: torch.tensor([True, False, True, False]), "tensor([ True, False,  True, False])"),
    (lambda: torch.tensor([1, 2, 3], dtype=torch.uint8), "tensor([1, 2, 3], dtype=torch.uint8)"),
    (lambda: torch.tensor(1, dtype=torch.int32), "tensor(1, dtype=torch.int32)"),
    (lambda: torch.tensor(2.0, dtype=torch.double), "tensor(2., dtype=torch.float64)"),
    (lambda: torch.tensor([0.5, 1.25], dtype=torch.float16),
     "tensor([0.5000, 1.2500], dtype=torch.float16)"),
    (lambda: torch.tensor([1.5], dtype=torch.bfloat16), "tensor([1.5000], dtype=torch.bfloat16)"),
    (lambda: torch.zeros(4), "tensor([0., 0., 0., 0.])"),
    (lambda: torch.tensor([0., 0., 0.], dtype=torch.float64),
     "tensor([0., 0., 0.], dtype=torch.float64)"),
    (lambda: torch.linspace(0, 9, 5), "tensor([0.0000, 2.2500, 4.5000, 6.7500, 9.0000])"),
    (lambda: torch.linspace(1, 20, 5), "tensor([ 1.0000,  5.7500, 10.5000, 15.2500, 20.0000])"),
    (lambda: torch.logspace(1, 20, 5),
     "tensor([1.0000e+01, 5.6234e+05, 3.1623e+10, 1.7783e+15, 1.0000e+20])"),
    (lambda: torch.tensor([0.0, 0.0, -3.1534e-21]),
     "tensor([ 0.0000e+00,  0.0000e+00, -3.1534e-21])"),
    (lambda: torch.tensor([math.nan, math.nan, math.nan]), "tensor([nan, nan, nan])"),
    (lambda: torch.tensor([1.0, math.inf, -math.inf, math.nan]),
     "tensor([1., inf, -inf, nan])"),
    (lambda: torch.tensor([1.5, math.nan]), "tensor([1.5000,    nan])"),
    (lambda: torch.tensor([]), "tensor([])"),
    (lambda: torch.zeros(2, 0), "tensor([], size=(2, 0))"),
    (lambda: torch.zeros(0, dtype=torch.int64), "tensor([], dtype=torch.int64)"),
    (lambda: torch.tensor([[1, 2, 3], [-1, 1, 4]], dtype=torch.float),
     "tensor([[ 1.,  2.,  3.],\n        [-1.,  1.,  4.]])"),
    (lambda: torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]]),
     "tensor([[[1., 2.],\n         [3., 4.]],\n\n        [[5., 6.],\n         [7., 8.]]])"),
    (lambda: torch.tensor([[[[1., 1.], [2., 2.]], [[3., 3.], [4., 4.]]],
                           [[[5., 5.], [6., 6.]], [[7., 7.], [8., 8.]]]]),
     "tensor([[[[1., 1.],\n          [2., 2.]],\n\n         [[3., 3.],\n          [4., 4.]]],\n\n\n"
     "        [[[5., 5.],\n          [6., 6.]],\n\n         [[7., 7.],\n          [8., 8.]]]])"),
    (lambda: torch.flip(torch.arange(8).view(2, 2, 2), [0, 1]),
     "tensor([[[6, 7],\n         [4, 5]],\n\n        [[2, 3],\n         [0, 1]]])"),
    (lambda: torch.tensor([[0.0, 0.0], [1.0, 2.0]], requires_grad=True),
     "tensor([[0., 0.],\n        [1., 2.]], requires_grad=True)"),
    (lambda: torch.tensor([[0., 1.], [-1., 0.]], requires_grad=True) + 1,
     "tensor([[1., 2.],\n        [0., 1.]], grad_fn=<AddBackward0>)"),
    (lambda: torch.tensor([1., 2.], requires_grad=True).mean() * 0 + 40,
     "tensor(40., grad_fn=<AddBackward0>)"),
    (lambda: torch.tensor([39., 41.], requires_grad=True).mean(),
     "tensor(40., grad_fn=<MeanBackward0>)"),
    (lambda: torch.tensor([[2.9207], [3.6278]]), "tensor([[2.9207],\n        [3.6278]])"),
    (lambda: torch.tensor([[2.9207], [-3.6278]]), "tensor([[ 2.9207],\n        [-3.6278]])"),
    (lambda: torch.arange(2000), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"),
    (lambda: torch.arange(10.), "tensor([0., 1., 2., 3., 4., 5., 6., 7., 8., 9.])"),
    (lambda: torch.tensor([123456789.0, 1.0]), "tensor([1.2346e+08, 1.0000e+00])"),
    (lambda: torch.tensor([100000.0, 1.0]), "tensor([1.0000e+05, 1.0000e+00])"),
    (lambda: torch.tensor([1000.0, 1.0]), "tensor([1000.,    1.])"),
    # 0.0001 is below 1e-4 once rounded to float32, so scientific mode
    (lambda: torch.tensor([0.0001, 0.001]), "tensor([1.0000e-04, 1.0000e-03])"),
    (lambda: torch.tensor([0.00011, 0.001]), "tensor([0.0001, 0.0010])"),
    (lambda: torch.tensor([0.00001, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
    (lambda: torch.tensor([2 ** 62, -5]), "tensor([4611686018427387904,                  -5])"),
]


@pytest.mark.parametrize("i", range(len(EXPECTED)))
def test_repr_matches_pytorch_format(i):
    make, expected = EXPECTED[i]
    assert repr(make()) == expected
    assert str(make()) == expected


def test_summarised_2d_and_wrapping():
    s = repr(torch.arange(2000).reshape(2, 1000))
    assert s == ("tensor([[   0,    1,    2,  ...,  997,  998,  999],\n"
                 "        [1000, 1001, 1002,  ..., 1997, 1998, 1999]])")
    s = repr(torch.arange(30.) / 7)
    lines = s.split("\n")
    assert lines[0] == "tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,"
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("        1.2857")
    big = torch.ones(100, 100)
    s = repr(big)
    assert "...," in s and s.count("\n") == 6


def test_suffix_wraps_to_a_new_line_when_too_long():
    x = torch.tensor([[-0.6341, 0.5285, 1.4953, 1.3056], [-0.1750, -2.7269, -1.6093, -0.3915]],
                     dtype=torch.float64, requires_grad=True) * 1
    assert repr(x) == ("tensor([[-0.6341,  0.5285,  1.4953,  1.3056],\n"
                       "        [-0.1750, -2.7269, -1.6093, -0.3915]], dtype=torch.float64,\n"
                       "       grad_fn=<MulBackward0>)")


def test_set_printoptions():
    torch.set_printoptions(precision=2)
    assert repr(torch.tensor([1.12345])) == "tensor([1.12])"
    torch.set_printoptions(threshold=5)
    assert repr(torch.arange(10)) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    torch.set_printoptions(profile="default")
    assert repr(torch.tensor([1.12345])) == "tensor([1.1235])"
    assert repr(torch.arange(10)) == "tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])"
    torch.set_printoptions(sci_mode=True)
    assert repr(torch.tensor([0.5, -2.0])) == "tensor([ 5.0000e-01, -2.0000e+00])"
    torch.set_printoptions(sci_mode=False)
    assert repr(torch.tensor([1e-5, 1.0])) == "tensor([0.0000, 1.0000])"
    torch.set_printoptions(sci_mode=None, linewidth=30)
    # (30 - indent 8) // (width 6 + 2) = 2 elements per line
    assert repr(torch.arange(8.) / 3) == ("tensor([0.0000, 0.3333,\n"
                                          "        0.6667, 1.0000,\n"
                                          "        1.3333, 1.6667,\n"
                                          "        2.0000, 2.3333])")


def test_size_and_other_reprs():
    assert repr(torch.zeros(2, 3, 4, 4).shape) == "torch.Size([2, 3, 4, 4])"
    assert str(torch.zeros(5, 3).size()) == "torch.Size([5, 3])"
    assert repr(torch.Size([])) == "torch.Size([])"
    assert repr(torch.zeros(2, 3).shape[1:]) == "torch.Size([3])"
    assert repr(torch.float32) == "torch.float32" and str(torch.long) == "torch.int64"
    assert repr(torch.nonzero(torch.tensor([1, 1, 1, 0, 1]), as_tuple=True)) == \
        "(tensor([0, 1, 2, 4]),)"
    assert f"{torch.tensor(2.5):.2f}" == "2.50"
    assert repr(torch.tensor([1+2j, -1.5j], dtype=torch.complex64)) == \
        "tensor([1.+2.0000j, -0.-1.5000j])"     # real and imaginary parts format separately


def test_default_dtype_changes_the_dtype_suffix():
    torch.set_default_dtype(torch.float64)
    try:
        assert repr(torch.tensor([1.5])) == "tensor([1.5000])"
        assert repr(torch.tensor([1.5], dtype=torch.float32)) == \
            "tensor([1.5000], dtype=torch.float32)"
    finally:
        torch.set_default_dtype(torch.float32)


def _cases():
    rng = np.random.default_rng(5)
    out = []
    for shape in [(), (1,), (5,), (3, 4), (2, 3, 2), (0,), (2, 0), (1001,), (40, 30), (3, 400),
                  (2, 2, 2, 2)]:
        out.append(rng.standard_normal(shape))
        out.append(rng.standard_normal(shape) * 1e6)
        out.append(rng.standard_normal(shape) * 1e-6)
        out.append(rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 6, shape))
        out.append(rng.integers(-1000, 1000, shape).astype(float))
        out.append(rng.integers(-1000, 1000, shape))
        out.append(rng.random(shape) < 0.5)
    return out


def test_repr_equals_torch_on_many_tensors():
    T = pytest.importorskip("torch")
    for a in _cases():
        kinds = {"f": ["float32", "float64", "float16", "bfloat16"],
                 "i": ["int64", "int32", "int8", "uint8"], "b": ["bool"]}[a.dtype.kind]
        for d in kinds:
            arr = np.abs(a) % 100 if d in ("uint8", "int8") else a
            data = arr.tolist() if arr.ndim else arr.item()
            k = torch.tensor(data, dtype=getattr(torch, d))
            t = T.tensor(data, dtype=getattr(T, d))
            assert repr(k) == repr(t), (d, a.shape)
    for opts in (dict(precision=2), dict(sci_mode=True), dict(sci_mode=False),
                 dict(threshold=5, edgeitems=2), dict(linewidth=40)):
        for a in _cases()[:20]:
            data = a.tolist() if a.ndim else a.item()
            torch.set_printoptions(**opts)
            T.set_printoptions(**opts)
            try:
                assert repr(torch.tensor(data)) == repr(T.tensor(data)), opts
            finally:
                torch.set_printoptions(profile="default")
                T.set_printoptions(profile="default")
