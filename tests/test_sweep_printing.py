"""Differential sweep of printing against PyTorch 2.13 (regression tests): tensor repr/str/format
for every dtype, shape and value class (summarised, wrapped, scientific, nan/inf, -0.0, empty),
suffixes (dtype, size, requires_grad, grad_fn names), print options (each option, profiles,
reset), Size/dtype/device/finfo/iinfo reprs, torch.return_types reprs, nn.Module reprs,
optimizer repr and lr_scheduler state_dict keys. Expected strings are PyTorch's output, pasted
and checked by hand; numeric expectations are derived in NumPy float64."""
import math

import numpy as np
import pytest

import framework as torch
from framework import nn


@pytest.fixture(autouse=True)
def _default_printoptions():
    # whatever earlier tests set, start and end on PyTorch's defaults
    torch.set_printoptions(profile="default")
    torch.set_printoptions(sci_mode=None)
    yield
    torch.set_printoptions(profile="default")
    torch.set_printoptions(sci_mode=None)


# (expression, print options, PyTorch 2.13's repr)
TENSOR_CASES = [
    ('torch.tensor([True, False])', None,
     'tensor([ True, False])'),
    ('torch.tensor([[1, 2], [3, 4]], dtype=torch.uint8)', None,
     'tensor([[1, 2],\n'
     '        [3, 4]], dtype=torch.uint8)'),
    ('torch.tensor([-128, 0, 127], dtype=torch.int8)', None,
     'tensor([-128,    0,  127], dtype=torch.int8)'),
    ('torch.tensor([-5, 300], dtype=torch.int16)', None,
     'tensor([ -5, 300], dtype=torch.int16)'),
    ('torch.tensor([7], dtype=torch.int32)', None,
     'tensor([7], dtype=torch.int32)'),
    ('torch.tensor([-9223372036854775808, 9223372036854775807])', None,
     'tensor([-9223372036854775808,  9223372036854775807])'),
    ('torch.tensor([1.2345, -0.5, 3.14159], dtype=torch.float16)', None,
     'tensor([ 1.2344, -0.5000,  3.1406], dtype=torch.float16)'),
    ('torch.tensor([1.2345, -0.5, 3.14159], dtype=torch.bfloat16)', None,
     'tensor([ 1.2344, -0.5000,  3.1406], dtype=torch.bfloat16)'),
    ('torch.tensor([1.2345, -0.5, 3.14159])', None,
     'tensor([ 1.2345, -0.5000,  3.1416])'),
    ('torch.tensor([1.2345, -0.5, 3.14159], dtype=torch.float64)', None,
     'tensor([ 1.2345, -0.5000,  3.1416], dtype=torch.float64)'),
    ('torch.tensor([1 + 2j, -3.5 - 0.25j])', None,
     'tensor([ 1.0000+2.0000j, -3.5000-0.2500j])'),
    ('torch.tensor([1e-5 + 1e5j, 2j], dtype=torch.complex128)', None,
     'tensor([1.0000e-05+1.0000e+05j, 0.0000e+00+2.0000e+00j],\n'
     '       dtype=torch.complex128)'),
    ("torch.tensor([complex('nan'), 1 + 1j, complex(0, float('inf'))])", None,
     'tensor([nan+0.j, 1.+1.j, 0.+infj])'),
    ('torch.tensor(-0.0)', None,
     'tensor(-0.)'),
    ('torch.tensor([-0.0, 0.5])', None,
     'tensor([-0.0000, 0.5000])'),
    ('torch.tensor([-0.0, 1e-6])', None,
     'tensor([-0.0000e+00, 1.0000e-06])'),
    ('torch.tensor([1e-5, 1e5, 3.0])', None,
     'tensor([1.0000e-05, 1.0000e+05, 3.0000e+00])'),
    ('torch.tensor([1e10, 1.0])', None,
     'tensor([1.0000e+10, 1.0000e+00])'),
    ('torch.tensor([123456789.0, 2.0])', None,
     'tensor([1.2346e+08, 2.0000e+00])'),
    ('torch.tensor([1.0, 1000.0])', None,
     'tensor([   1., 1000.])'),
    ('torch.tensor([1.0, 1001.0])', None,
     'tensor([1.0000e+00, 1.0010e+03])'),
    ("torch.tensor([float('nan'), float('inf'), -float('inf'), 1.5])", None,
     'tensor([   nan,    inf,   -inf, 1.5000])'),
    ("torch.tensor([float('nan'), float('inf'), 2.0])", None,
     'tensor([nan, inf, 2.])'),
    ("torch.tensor(float('-inf'), dtype=torch.float64)", None,
     'tensor(-inf, dtype=torch.float64)'),
    ('torch.tensor([1e-20, 2e-20])', None,
     'tensor([1.0000e-20, 2.0000e-20])'),
    ('torch.tensor([65504.0], dtype=torch.float16)', None,
     'tensor([65504.], dtype=torch.float16)'),
    ('torch.zeros(2, 1, 2, 3, dtype=torch.int32)', None,
     'tensor([[[[0, 0, 0],\n'
     '          [0, 0, 0]]],\n'
     '\n'
     '\n'
     '        [[[0, 0, 0],\n'
     '          [0, 0, 0]]]], dtype=torch.int32)'),
    ('torch.zeros(0, 3, 4)', None,
     'tensor([], size=(0, 3, 4))'),
    ('torch.zeros(0, 3, 4, dtype=torch.int64)', None,
     'tensor([], size=(0, 3, 4), dtype=torch.int64)'),
    ('torch.zeros(2, 0, dtype=torch.bool)', None,
     'tensor([], size=(2, 0), dtype=torch.bool)'),
    ('torch.zeros(0, dtype=torch.complex64)', None,
     'tensor([], dtype=torch.complex64)'),
    ('torch.zeros(0, 3, requires_grad=True)', None,
     'tensor([], size=(0, 3), requires_grad=True)'),
    ('torch.arange(2000)', None,
     'tensor([   0,    1,    2,  ..., 1997, 1998, 1999])'),
    ('torch.arange(1001.) / 7', None,
     'tensor([  0.0000,   0.1429,   0.2857,  ..., 142.5714, 142.7143, 142.8571])'),
    ('torch.arange(1200).reshape(40, 30)', None,
     'tensor([[   0,    1,    2,  ...,   27,   28,   29],\n'
     '        [  30,   31,   32,  ...,   57,   58,   59],\n'
     '        [  60,   61,   62,  ...,   87,   88,   89],\n'
     '        ...,\n'
     '        [1110, 1111, 1112,  ..., 1137, 1138, 1139],\n'
     '        [1140, 1141, 1142,  ..., 1167, 1168, 1169],\n'
     '        [1170, 1171, 1172,  ..., 1197, 1198, 1199]])'),
    ('torch.arange(1728.).reshape(12, 12, 12)', None,
     'tensor([[[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 9.0000e+00,\n'
     '          1.0000e+01, 1.1000e+01],\n'
     '         [1.2000e+01, 1.3000e+01, 1.4000e+01,  ..., 2.1000e+01,\n'
     '          2.2000e+01, 2.3000e+01],\n'
     '         [2.4000e+01, 2.5000e+01, 2.6000e+01,  ..., 3.3000e+01,\n'
     '          3.4000e+01, 3.5000e+01],\n'
     '         ...,\n'
     '         [1.0800e+02, 1.0900e+02, 1.1000e+02,  ..., 1.1700e+02,\n'
     '          1.1800e+02, 1.1900e+02],\n'
     '         [1.2000e+02, 1.2100e+02, 1.2200e+02,  ..., 1.2900e+02,\n'
     '          1.3000e+02, 1.3100e+02],\n'
     '         [1.3200e+02, 1.3300e+02, 1.3400e+02,  ..., 1.4100e+02,\n'
     '          1.4200e+02, 1.4300e+02]],\n'
     '\n'
     '        [[1.4400e+02, 1.4500e+02, 1.4600e+02,  ..., 1.5300e+02,\n'
     '          1.5400e+02, 1.5500e+02],\n'
     '         [1.5600e+02, 1.5700e+02, 1.5800e+02,  ..., 1.6500e+02,\n'
     '          1.6600e+02, 1.6700e+02],\n'
     '         [1.6800e+02, 1.6900e+02, 1.7000e+02,  ..., 1.7700e+02,\n'
     '          1.7800e+02, 1.7900e+02],\n'
     '         ...,\n'
     '         [2.5200e+02, 2.5300e+02, 2.5400e+02,  ..., 2.6100e+02,\n'
     '          2.6200e+02, 2.6300e+02],\n'
     '         [2.6400e+02, 2.6500e+02, 2.6600e+02,  ..., 2.7300e+02,\n'
     '          2.7400e+02, 2.7500e+02],\n'
     '         [2.7600e+02, 2.7700e+02, 2.7800e+02,  ..., 2.8500e+02,\n'
     '          2.8600e+02, 2.8700e+02]],\n'
     '\n'
     '        [[2.8800e+02, 2.8900e+02, 2.9000e+02,  ..., 2.9700e+02,\n'
     '          2.9800e+02, 2.9900e+02],\n'
     '         [3.0000e+02, 3.0100e+02, 3.0200e+02,  ..., 3.0900e+02,\n'
     '          3.1000e+02, 3.1100e+02],\n'
     '         [3.1200e+02, 3.1300e+02, 3.1400e+02,  ..., 3.2100e+02,\n'
     '          3.2200e+02, 3.2300e+02],\n'
     '         ...,\n'
     '         [3.9600e+02, 3.9700e+02, 3.9800e+02,  ..., 4.0500e+02,\n'
     '          4.0600e+02, 4.0700e+02],\n'
     '         [4.0800e+02, 4.0900e+02, 4.1000e+02,  ..., 4.1700e+02,\n'
     '          4.1800e+02, 4.1900e+02],\n'
     '         [4.2000e+02, 4.2100e+02, 4.2200e+02,  ..., 4.2900e+02,\n'
     '          4.3000e+02, 4.3100e+02]],\n'
     '\n'
     '        ...,\n'
     '\n'
     '        [[1.2960e+03, 1.2970e+03, 1.2980e+03,  ..., 1.3050e+03,\n'
     '          1.3060e+03, 1.3070e+03],\n'
     '         [1.3080e+03, 1.3090e+03, 1.3100e+03,  ..., 1.3170e+03,\n'
     '          1.3180e+03, 1.3190e+03],\n'
     '         [1.3200e+03, 1.3210e+03, 1.3220e+03,  ..., 1.3290e+03,\n'
     '          1.3300e+03, 1.3310e+03],\n'
     '         ...,\n'
     '         [1.4040e+03, 1.4050e+03, 1.4060e+03,  ..., 1.4130e+03,\n'
     '          1.4140e+03, 1.4150e+03],\n'
     '         [1.4160e+03, 1.4170e+03, 1.4180e+03,  ..., 1.4250e+03,\n'
     '          1.4260e+03, 1.4270e+03],\n'
     '         [1.4280e+03, 1.4290e+03, 1.4300e+03,  ..., 1.4370e+03,\n'
     '          1.4380e+03, 1.4390e+03]],\n'
     '\n'
     '        [[1.4400e+03, 1.4410e+03, 1.4420e+03,  ..., 1.4490e+03,\n'
     '          1.4500e+03, 1.4510e+03],\n'
     '         [1.4520e+03, 1.4530e+03, 1.4540e+03,  ..., 1.4610e+03,\n'
     '          1.4620e+03, 1.4630e+03],\n'
     '         [1.4640e+03, 1.4650e+03, 1.4660e+03,  ..., 1.4730e+03,\n'
     '          1.4740e+03, 1.4750e+03],\n'
     '         ...,\n'
     '         [1.5480e+03, 1.5490e+03, 1.5500e+03,  ..., 1.5570e+03,\n'
     '          1.5580e+03, 1.5590e+03],\n'
     '         [1.5600e+03, 1.5610e+03, 1.5620e+03,  ..., 1.5690e+03,\n'
     '          1.5700e+03, 1.5710e+03],\n'
     '         [1.5720e+03, 1.5730e+03, 1.5740e+03,  ..., 1.5810e+03,\n'
     '          1.5820e+03, 1.5830e+03]],\n'
     '\n'
     '        [[1.5840e+03, 1.5850e+03, 1.5860e+03,  ..., 1.5930e+03,\n'
     '          1.5940e+03, 1.5950e+03],\n'
     '         [1.5960e+03, 1.5970e+03, 1.5980e+03,  ..., 1.6050e+03,\n'
     '          1.6060e+03, 1.6070e+03],\n'
     '         [1.6080e+03, 1.6090e+03, 1.6100e+03,  ..., 1.6170e+03,\n'
     '          1.6180e+03, 1.6190e+03],\n'
     '         ...,\n'
     '         [1.6920e+03, 1.6930e+03, 1.6940e+03,  ..., 1.7010e+03,\n'
     '          1.7020e+03, 1.7030e+03],\n'
     '         [1.7040e+03, 1.7050e+03, 1.7060e+03,  ..., 1.7130e+03,\n'
     '          1.7140e+03, 1.7150e+03],\n'
     '         [1.7160e+03, 1.7170e+03, 1.7180e+03,  ..., 1.7250e+03,\n'
     '          1.7260e+03, 1.7270e+03]]])'),
    ('torch.arange(57.) * 1.5 - 40', None,
     'tensor([-40.0000, -38.5000, -37.0000, -35.5000, -34.0000, -32.5000, -31.0000,\n'
     '        -29.5000, -28.0000, -26.5000, -25.0000, -23.5000, -22.0000, -20.5000,\n'
     '        -19.0000, -17.5000, -16.0000, -14.5000, -13.0000, -11.5000, -10.0000,\n'
     '         -8.5000,  -7.0000,  -5.5000,  -4.0000,  -2.5000,  -1.0000,   0.5000,\n'
     '          2.0000,   3.5000,   5.0000,   6.5000,   8.0000,   9.5000,  11.0000,\n'
     '         12.5000,  14.0000,  15.5000,  17.0000,  18.5000,  20.0000,  21.5000,\n'
     '         23.0000,  24.5000,  26.0000,  27.5000,  29.0000,  30.5000,  32.0000,\n'
     '         33.5000,  35.0000,  36.5000,  38.0000,  39.5000,  41.0000,  42.5000,\n'
     '         44.0000])'),
    ('torch.arange(30).reshape(2, 15) * 100000', None,
     'tensor([[      0,  100000,  200000,  300000,  400000,  500000,  600000,  700000,\n'
     '          800000,  900000, 1000000, 1100000, 1200000, 1300000, 1400000],\n'
     '        [1500000, 1600000, 1700000, 1800000, 1900000, 2000000, 2100000, 2200000,\n'
     '         2300000, 2400000, 2500000, 2600000, 2700000, 2800000, 2900000]])'),
    ('torch.arange(20).reshape(1, 1, 20).to(torch.complex64)', None,
     'tensor([[[ 0.+0.j,  1.+0.j,  2.+0.j,  3.+0.j,  4.+0.j,  5.+0.j,  6.+0.j,  7.+0.j,  8.+0.j,  9.+0.j,\n'
     '          10.+0.j, 11.+0.j, 12.+0.j, 13.+0.j, 14.+0.j, 15.+0.j, 16.+0.j, 17.+0.j, 18.+0.j, 19.+0.j]]])'),
    ('torch.arange(3.).requires_grad_()', None,
     'tensor([0., 1., 2.], requires_grad=True)'),
    ('torch.tensor(1.5, requires_grad=True)', None,
     'tensor(1.5000, requires_grad=True)'),
    ('torch.tensor([1., 2.], dtype=torch.float64, requires_grad=True) * 2', None,
     'tensor([2., 4.], dtype=torch.float64, grad_fn=<MulBackward0>)'),
    ('torch.arange(30.).reshape(3, 10).requires_grad_() * 1.11111', None,
     'tensor([[ 0.0000,  1.1111,  2.2222,  3.3333,  4.4444,  5.5555,  6.6667,  7.7778,\n'
     '          8.8889, 10.0000],\n'
     '        [11.1111, 12.2222, 13.3333, 14.4444, 15.5555, 16.6666, 17.7778, 18.8889,\n'
     '         20.0000, 21.1111],\n'
     '        [22.2222, 23.3333, 24.4444, 25.5555, 26.6666, 27.7778, 28.8889, 30.0000,\n'
     '         31.1111, 32.2222]], grad_fn=<MulBackward0>)'),
    ('torch.nn.Parameter(torch.tensor([1., 2.]))', None,
     'Parameter containing:\n'
     'tensor([1., 2.], requires_grad=True)'),
    ('torch.nn.Parameter(torch.tensor([1, 2]), requires_grad=False)', None,
     'Parameter containing:\n'
     'tensor([1, 2])'),
    ('torch.nn.Parameter(torch.zeros(0, 3))', None,
     'Parameter containing:\n'
     'tensor([], size=(0, 3), requires_grad=True)'),
    ('torch.tensor([1.23456789, 2.5, -3.0])', {'precision': 2},
     'tensor([ 1.23,  2.50, -3.00])'),
    ('torch.tensor([1.23456789, 2.5, -3.0])', {'precision': 8},
     'tensor([ 1.23456788,  2.50000000, -3.00000000])'),
    ('torch.tensor([0.5, 1.5, 2.5])', {'precision': 0},
     'tensor([0, 2, 2])'),
    ('torch.arange(10.)', {'threshold': 5},
     'tensor([0., 1., 2.,  ..., 7., 8., 9.])'),
    ('torch.arange(24.).reshape(2, 3, 4)', {'threshold': 5, 'edgeitems': 1},
     'tensor([[[ 0.,  ...,  3.],\n'
     '         ...,\n'
     '         [ 8.,  ..., 11.]],\n'
     '\n'
     '        [[12.,  ..., 15.],\n'
     '         ...,\n'
     '         [20.,  ..., 23.]]])'),
    ('torch.arange(24).reshape(2, 3, 4)', {'threshold': 5, 'edgeitems': 0},
     'tensor([...], size=(2, 3, 4))'),
    ('torch.arange(20.) / 3', {'linewidth': 40},
     'tensor([0.0000, 0.3333, 0.6667, 1.0000,\n'
     '        1.3333, 1.6667, 2.0000, 2.3333,\n'
     '        2.6667, 3.0000, 3.3333, 3.6667,\n'
     '        4.0000, 4.3333, 4.6667, 5.0000,\n'
     '        5.3333, 5.6667, 6.0000, 6.3333])'),
    ('torch.tensor([1.5, 2.5], requires_grad=True) * 2', {'linewidth': 10},
     'tensor([3.,\n'
     '        5.],\n'
     '       grad_fn=<MulBackward0>)'),
    ('torch.tensor([1e-5, 1e5])', {'sci_mode': False},
     'tensor([     0.0000, 100000.0000])'),
    ('torch.tensor([1., 2., 3.])', {'sci_mode': True},
     'tensor([1.0000e+00, 2.0000e+00, 3.0000e+00])'),
    ('torch.tensor([1 + 2j, 3.333 - 1j])', {'sci_mode': True},
     'tensor([1.0000e+00+2.0000e+00j, 3.3330e+00-1.0000e+00j])'),
    ('torch.arange(2000.)', {'profile': 'short'},
     'tensor([0.00e+00, 1.00e+00,  ..., 2.00e+03, 2.00e+03])'),
    ('torch.arange(60).reshape(2, 30)', {'profile': 'full', 'linewidth': 90},
     'tensor([[ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,\n'
     '         20, 21, 22, 23, 24, 25, 26, 27, 28, 29],\n'
     '        [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,\n'
     '         50, 51, 52, 53, 54, 55, 56, 57, 58, 59]])'),
    ('torch.linspace(0, 1, 11, dtype=torch.float64)', {'profile': 'short'},
     'tensor([0.00, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 1.00],\n'
     '       dtype=torch.float64)'),
]


@pytest.mark.parametrize("code,opts,expected", TENSOR_CASES,
                         ids=[f"{i}:{c[:40]}" for i, (c, _, _) in enumerate(TENSOR_CASES)])
def test_tensor_repr_matches_pytorch(code, opts, expected):
    if opts:
        torch.set_printoptions(**opts)
    t = eval(code, {"torch": torch, "math": math})
    assert repr(t) == expected
    assert str(t) == expected
    # f-strings: a 0-dim tensor formats its item (f"{torch.tensor(-0.0)}" is "-0.0")
    fmt = format(t.item(), "") if t.dim() == 0 else expected
    assert f"{t}" == fmt
    assert format(t, "") == fmt


def test_print_writes_the_repr(capsys):
    print(torch.tensor([[1.5, -2.0], [0.25, 3.0]]))
    assert capsys.readouterr().out == "tensor([[ 1.5000, -2.0000],\n        [ 0.2500,  3.0000]])\n"


def test_zero_dim_format_spec_formats_the_item():
    assert f"{torch.tensor(3.14159):.2f}" == "3.14"
    assert f"{torch.tensor(3):>5}" == "    3"
    assert f"{torch.tensor(2.5, requires_grad=True):.1f}" == "2.5"
    assert f"{torch.tensor(1e-5):.3e}" == "1.000e-05"
    with pytest.raises(TypeError):
        format(torch.tensor([1.0, 2.0]), ".2f")       # only 0-dim tensors take a spec


def test_print_options_reset_and_profiles():
    t = torch.tensor([1.23456789])
    torch.set_printoptions(precision=2)
    assert repr(t) == "tensor([1.23])"
    torch.set_printoptions(profile="default")
    assert repr(t) == "tensor([1.2346])"
    torch.set_printoptions(sci_mode=True)
    assert repr(t) == "tensor([1.2346e+00])"
    torch.set_printoptions()                      # sci_mode=None is reset by every call
    assert repr(t) == "tensor([1.2346])"
    torch.set_printoptions(profile="full")
    s = repr(torch.arange(1001))
    assert "..." not in s and s.count(",") == 1000 and s.endswith(" 999, 1000])")
    torch.set_printoptions(profile="short")
    assert repr(torch.arange(10.) / 3) == ("tensor([0.00, 0.33, 0.67, 1.00, 1.33, 1.67, 2.00, "
                                           "2.33, 2.67, 3.00])")
    torch.set_printoptions(profile="default")
    assert "..." in repr(torch.arange(1001)) and "..." not in repr(torch.arange(1000))


# grad_fn names of common ops (PyTorch 2.13's class names)
GRAD_FN = [
    (lambda x, y: x + y, "AddBackward0"), (lambda x, y: x * 2, "MulBackward0"),
    (lambda x, y: 1 - x, "RsubBackward1"), (lambda x, y: torch.rsub(x, 1), "RsubBackward1"),
    (lambda x, y: torch.rsub(x, y), "RsubBackward0"), (lambda x, y: 1 / x, "MulBackward0"),
    (lambda x, y: x / 2, "DivBackward0"), (lambda x, y: x / y, "DivBackward0"),
    (lambda x, y: 2 ** x, "PowBackward2"), (lambda x, y: x.sum(), "SumBackward0"),
    (lambda x, y: x.mean(1), "MeanBackward1"), (lambda x, y: x.log1p(), "Log1PBackward0"),
    (lambda x, y: x.norm(), "LinalgVectorNormBackward0"),
    (lambda x, y: x.norm(dim=1), "LinalgVectorNormBackward0"),
    (lambda x, y: x.lerp(y, 0.5), "LerpBackward0"), (lambda x, y: x.lerp(y, y), "LerpBackward1"),
    (lambda x, y: x[0], "SelectBackward0"), (lambda x, y: x[:, 1], "SelectBackward0"),
    (lambda x, y: x[0, 1], "SelectBackward0"), (lambda x, y: x[None], "UnsqueezeBackward0"),
    (lambda x, y: x[..., None], "UnsqueezeBackward0"), (lambda x, y: x[...], "AliasBackward0"),
    (lambda x, y: x[:, :], "AliasBackward0"), (lambda x, y: x[1:], "SliceBackward0"),
    (lambda x, y: x[[0, 1]], "IndexBackward0"), (lambda x, y: x.split(1)[0], "SplitBackward0"),
    (lambda x, y: x.split([1, 1])[1], "SplitWithSizesBackward0"),
    (lambda x, y: x.chunk(2, 1)[0], "SplitBackward0"),
    (lambda x, y: x.unbind()[1], "UnbindBackward0"), (lambda x, y: list(x)[0], "UnbindBackward0"),
    (lambda x, y: x.roll(1), "RollBackward0"), (lambda x, y: x.roll(1, 0), "RollBackward0"),
    (lambda x, y: x.unfold(1, 2, 1), "UnfoldBackward0"),
    (lambda x, y: x.nan_to_num(), "NanToNumBackward0"),
    (lambda x, y: torch.outer(x[0], y[0]), "MulBackward0"),
    (lambda x, y: x.view(-1), "ViewBackward0"), (lambda x, y: x.t(), "TBackward0"),
    (lambda x, y: x.to(torch.float64), "ToCopyBackward0"),
    (lambda x, y: torch.cat([x, y]), "CatBackward0"),
    (lambda x, y: torch.nn.functional.cross_entropy(x, torch.tensor([0, 2])), "NllLossBackward0"),
]


@pytest.mark.parametrize("f,name", GRAD_FN, ids=[n + str(i) for i, (_, n) in enumerate(GRAD_FN)])
def test_grad_fn_names(f, name):
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], requires_grad=True)
    y = torch.tensor([[1.0, 2.0, 0.5], [0.1, -0.2, 0.3]], requires_grad=True)
    r = f(x, y)
    assert r.grad_fn.name() == name
    assert repr(r).endswith(f"grad_fn=<{name}>)")


def test_renamed_grad_fns_keep_their_gradients():
    # the renames only change the name: gradients are those of the underlying ops
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], requires_grad=True)
    ((x[0] * 2).sum() + x[None].sum() + (1 - x).sum() + (1 / x).sum() + x.roll(1).sum()).backward()
    xn = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    ref = np.ones_like(xn) + (-1.0) - 1.0 / xn ** 2 + 1.0      # x[None], 1 - x, 1 / x, roll
    ref[0] += 2.0                                               # x[0] * 2
    np.testing.assert_allclose(x.grad.numpy(), ref, rtol=1e-6)
    a, b = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0, 5.0])
    torch.lerp(a, b, 0.25).sum().backward()                    # d/da = 1 - w
    np.testing.assert_allclose(a.grad.numpy(), [0.75, 0.75])


def test_misc_reprs():
    assert repr(torch.Size([2, 3])) == "torch.Size([2, 3])"
    assert str(torch.zeros(2, 3).shape) == "torch.Size([2, 3])"
    assert repr(torch.Size([])) == "torch.Size([])"
    assert repr(torch.float) == "torch.float32" and str(torch.long) == "torch.int64"
    assert repr(torch.cfloat) == "torch.complex64" and repr(torch.half) == "torch.float16"
    assert repr(torch.device("cpu")) == "device(type='cpu')"
    assert repr(torch.device("cuda", 1)) == "device(type='cuda', index=1)"
    assert str(torch.device("cuda:0")) == "cuda:0"
    assert repr(torch.zeros(2).device) == "device(type='cpu')"


def test_finfo_iinfo_repr():
    assert repr(torch.finfo(torch.float32)) == (
        "finfo(resolution=1e-06, min=-3.40282e+38, max=3.40282e+38, eps=1.19209e-07, "
        "smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=float32)")
    assert repr(torch.finfo(torch.float16)) == (
        "finfo(resolution=0.001, min=-65504, max=65504, eps=0.000976562, "
        "smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float16)")
    assert repr(torch.finfo(torch.bfloat16)) == (
        "finfo(resolution=0.01, min=-3.38953e+38, max=3.38953e+38, eps=0.0078125, "
        "smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=bfloat16)")
    assert torch.finfo(torch.float64).resolution == 1e-15
    assert repr(torch.iinfo(torch.int32)) == "iinfo(min=-2.14748e+09, max=2.14748e+09, dtype=int32)"
    assert repr(torch.iinfo(torch.int8)) == "iinfo(min=-128, max=127, dtype=int8)"
    assert torch.iinfo(torch.int64).max == 2 ** 63 - 1


def test_return_types_repr():
    a = torch.eye(2)
    assert repr(torch.linalg.eigh(a)) == (
        "torch.return_types.linalg_eigh(\neigenvalues=tensor([1., 1.]),\n"
        "eigenvectors=tensor([[1., 0.],\n        [0., 1.]]))")
    assert repr(torch.linalg.svd(a)).startswith("torch.return_types.linalg_svd(\nU=tensor(")
    assert repr(torch.svd(a)).startswith("torch.return_types.svd(\nU=tensor(")
    assert torch.svd(a)._fields == ("U", "S", "V")
    assert repr(torch.linalg.qr(a)).startswith("torch.return_types.linalg_qr(\nQ=tensor(")
    assert repr(torch.qr(a)).startswith("torch.return_types.qr(\nQ=tensor(")
    assert repr(torch.linalg.eig(a)).startswith("torch.return_types.linalg_eig(\neigenvalues=")
    assert repr(torch.aminmax(torch.tensor([3., 1., 2.]))) == (
        "torch.return_types.aminmax(\nmin=tensor(1.),\nmax=tensor(3.))")


MODULES = [
    (lambda: nn.Linear(3, 4, bias=False), "Linear(in_features=3, out_features=4, bias=False)"),
    (lambda: nn.Conv2d(3, 16, 3, stride=(2, 1), padding=(1, 2), dilation=2, bias=False,
                       padding_mode="reflect"),
     "Conv2d(3, 16, kernel_size=(3, 3), stride=(2, 1), padding=(1, 2), dilation=(2, 2), "
     "bias=False, padding_mode=reflect)"),
    (lambda: nn.BatchNorm2d(16, eps=1e-3, momentum=0.01, affine=False),
     "BatchNorm2d(16, eps=0.001, momentum=0.01, affine=False, bias=False, "
     "track_running_stats=True)"),
    (lambda: nn.LSTM(10, 20, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True),
     "LSTM(10, 20, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.2))),
     "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n"
     "  (2): Sequential(\n    (0): Dropout(p=0.2, inplace=False)\n  )\n)"),
    (lambda: nn.ModuleList([nn.Linear(2, 2) for _ in range(3)]),
     "ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n)"),
    (lambda: nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()}),
     "ModuleDict(\n  (a): Linear(in_features=2, out_features=2, bias=True)\n  (b): ReLU()\n)"),
    (lambda: nn.Embedding(10, 3, padding_idx=-1), "Embedding(10, 3, padding_idx=9)"),
    (lambda: nn.MaxPool2d(3, stride=2, padding=1),
     "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"),
    (lambda: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True),
     "TransformerEncoderLayer(\n"
     "  (self_attn): MultiheadAttention(\n"
     "    (out_proj): NonDynamicallyQuantizableLinear(in_features=8, out_features=8, bias=True)\n"
     "  )\n"
     "  (linear1): Linear(in_features=8, out_features=16, bias=True)\n"
     "  (dropout): Dropout(p=0.1, inplace=False)\n"
     "  (linear2): Linear(in_features=16, out_features=8, bias=True)\n"
     "  (norm1): LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)\n"
     "  (norm2): LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)\n"
     "  (dropout1): Dropout(p=0.1, inplace=False)\n"
     "  (dropout2): Dropout(p=0.1, inplace=False)\n"
     ")"),
]


@pytest.mark.parametrize("make,expected", MODULES, ids=[e.split("(")[0] for _, e in MODULES])
def test_module_repr(make, expected):
    assert repr(make()) == expected


def test_optimizer_repr():
    m = nn.Linear(2, 2)
    assert repr(torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)) == (
        "SGD (\nParameter Group 0\n    dampening: 0\n    differentiable: False\n"
        "    foreach: None\n    fused: None\n    lr: 0.1\n    maximize: False\n"
        "    momentum: 0.9\n    nesterov: False\n    weight_decay: 0\n)")


@pytest.mark.parametrize("make", [
    lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.9 ** e),
    lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3),
])
def test_lr_scheduler_state_dict_keys(make):
    # PyTorch's state_dict carries the get_lr-inside-step flag (False between steps)
    o = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    s = make(o)
    for _ in range(3):
        o.step()
        s.step()
    sd = s.state_dict()
    assert sd["_get_lr_called_within_step"] is False
    keys = list(sd)
    assert keys[keys.index("_is_initial") + 1:][:2] == ["_get_lr_called_within_step", "_last_lr"]


def test_step_lr_state_dict_exact():
    o = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    s = torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)
    for _ in range(3):
        o.step()
        s.step()
    assert repr(s.state_dict()) == (
        "{'step_size': 2, 'gamma': 0.5, 'base_lrs': [0.1], 'last_epoch': 3, '_step_count': 4, "
        "'_is_initial': False, '_get_lr_called_within_step': False, '_last_lr': [0.05]}")


def test_float64_to_float16_rounds_through_float32():
    # c10::Half is built from a float: -42.98437372777596 -> float32 -42.984375, exactly half
    # way between the float16 neighbours -42.96875 and -43.0; ties-to-even gives -43.0 (a direct
    # double -> half rounding would give -42.96875)
    v = -42.98437372777596
    assert np.float32(v) == -42.984375
    assert torch.tensor([v], dtype=torch.float64).half().item() == -43.0
    assert torch.tensor([v], dtype=torch.float64).to(torch.float16).item() == -43.0
    rng = np.random.default_rng(1)
    a = rng.standard_normal(20000) * 100
    got = torch.tensor(a).half().numpy()
    np.testing.assert_array_equal(got, a.astype(np.float32).astype(np.float16))


def test_linspace_rounds_each_value_once():
    # PyTorch's kernel: step in the dtype, each value start + step * k (or end - step * (n-1-k)
    # from the second half) rounded once; float64 arithmetic is exact for float32 operands here
    step = np.float32(200.0) / np.float32(56.0)
    k = np.arange(57)
    ref = np.where(k < 28, (-100.0 + np.float64(step) * k).astype(np.float32),
                   (100.0 - np.float64(step) * (56 - k)).astype(np.float32))
    got = torch.linspace(-100, 100, 57).numpy()
    np.testing.assert_array_equal(got, ref)
    assert got[28] == np.float32(9.5367431640625e-07)        # not 0: 100 - 28 * step
    assert "9.5367e-07" in repr(torch.linspace(-100, 100, 57))
    # integer dtypes: double step, truncated; -100 + 21 * (200 / 56) is just above -25
    assert torch.linspace(-100, 100, 57, dtype=torch.int64)[21].item() == -24
