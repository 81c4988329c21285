"""Tensor creation: factories, dtype inference, memory sharing with NumPy, legacy constructors,
random sampling with seeds and generators, and bad arguments."""
import math

import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np


def test_tensor_infers_dtype():
    assert torch.tensor([1, 2]).dtype == torch.int64
    assert torch.tensor([1.0, 2]).dtype == torch.float32
    assert torch.tensor([[1., 2.], [3, 4]]).dtype == torch.float32
    assert torch.tensor([True, False]).dtype == torch.bool
    assert torch.tensor([True, 2]).dtype == torch.int64
    assert torch.tensor(5).shape == () and torch.tensor(5).item() == 5
    assert torch.tensor(np.ones(3)).dtype == torch.float64
    assert torch.tensor(np.ones(3, np.int32)).dtype == torch.int32
    assert torch.tensor([np.float32(2.5), 1]).dtype == torch.float32
    assert torch.tensor([torch.tensor(1.), torch.tensor(2.)]).tolist() == [1.0, 2.0]
    assert torch.tensor(range(3)).tolist() == [0, 1, 2]
    assert torch.tensor([]).shape == (0,) and torch.tensor([]).dtype == torch.float32
    assert torch.tensor([[], []]).shape == (2, 0)
    i, x, b = torch.tensor(1), torch.tensor(2.0), torch.tensor(True)
    assert (str(i), i.dtype, str(x), x.dtype, str(b), b.dtype) == (
        "tensor(1)", torch.int64, "tensor(2.)", torch.float32, "tensor(True)", torch.bool)


def test_tensor_explicit_dtype_and_copies():
    assert torch.tensor([1.7, -2.7], dtype=torch.int32).tolist() == [1, -2]
    assert torch.tensor([-0.9, 0, True, False], dtype=torch.bool).tolist() == [True, False, True,
                                                                                 False]
    assert torch.tensor([-1, 255], dtype=torch.uint8).tolist() == [255, 255]   # -1 wraps
    with pytest.raises(RuntimeError, match="without overflow"):     # 256 is out of range (torch)
        torch.tensor([256], dtype=torch.uint8)
    a = np.zeros(3)
    t = torch.tensor(a)
    a[0] = 5
    assert t.tolist() == [0.0, 0.0, 0.0]                     # tensor() copies
    src = torch.tensor([1, 2])
    c = torch.tensor(src)
    c.add_(1)
    assert src.tolist() == [1, 2]


def test_tensor_bad_data():
    with pytest.raises(ValueError):
        torch.tensor([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="NoneType"):
        torch.tensor(None)
    with pytest.raises(TypeError):
        torch.tensor("abc")
    with pytest.raises(ValueError):
        torch.tensor([2 ** 64])
    with pytest.raises(RuntimeError, match="floating point"):
        torch.tensor([1, 2], requires_grad=True)


def test_from_numpy_shares_memory_both_ways():
    arr = np.zeros(3)
    t = torch.from_numpy(arr)
    assert repr(t) == "tensor([0., 0., 0.], dtype=torch.float64)"
    np.add(arr, 1, out=arr)
    assert repr(t) == "tensor([1., 1., 1.], dtype=torch.float64)"
    t.add_(1)
    assert arr.tolist() == [2.0, 2.0, 2.0]
    a = np.array([[1, 2, 3], [3, 4, 5]])
    b = torch.from_numpy(a)
    assert b.dtype == torch.int64
    b[0][0] = 0
    assert a.tolist() == [[0, 2, 3], [3, 4, 5]]
    a5 = np.ones(5)
    b5 = torch.from_numpy(a5)
    a5 += 1
    assert str(b5) == "tensor([2., 2., 2., 2., 2.], dtype=torch.float64)"
    assert torch.from_numpy(np.arange(6).reshape(2, 3).T).stride() == (1, 3)
    with pytest.raises(TypeError):
        torch.from_numpy([1, 2])
    with pytest.raises(TypeError):        # (uint16 arrays are taken since torch 2.3)
        torch.from_numpy(np.ones(2, np.longdouble))


def test_numpy_and_clone_sharing():
    t = torch.zeros(3)
    arr = t.numpy()
    t.add_(1)
    assert arr.tolist() == [1.0, 1.0, 1.0]
    t2 = torch.zeros(3)
    arr2 = t2.clone().numpy()
    t2.add_(1)
    assert arr2.tolist() == [0.0, 0.0, 0.0]
    arr3 = t2.data.numpy()
    t2.add_(1)
    assert arr3.tolist() == [2.0, 2.0, 2.0]


def test_as_tensor_and_asarray():
    a = np.zeros(3)
    t = torch.as_tensor(a)
    t.add_(1)
    assert a.tolist() == [1.0, 1.0, 1.0]                  # same dtype: shares
    t32 = torch.as_tensor(a, dtype=torch.float32)
    t32.add_(1)
    assert a.tolist() == [1.0, 1.0, 1.0]                  # converted: a copy
    x = torch.ones(2)
    assert torch.as_tensor(x) is x
    assert torch.as_tensor([1, 2]).dtype == torch.int64


@pytest.mark.parametrize("fn,val", [(torch.zeros, 0), (torch.ones, 1), (torch.empty, None)])
def test_size_forms(fn, val):
    for args, kw in [((2, 3), {}), (((2, 3),), {}), (([2, 3],), {}), ((), {"size": (2, 3)}),
                     ((torch.Size([2, 3]),), {})]:
        t = fn(*args, **kw)
        assert t.shape == (2, 3) and t.dtype == torch.float32
        if val is not None:
            assert (to_np(t) == val).all()
    assert fn(2, dtype=torch.int32).dtype == torch.int32
    assert fn(2, requires_grad=True).requires_grad
    assert fn(()).shape == ()
    with pytest.raises(RuntimeError, match="negative dimension"):
        fn(-1)
    with pytest.raises(TypeError):
        fn(2.0)
    with pytest.raises(TypeError):
        fn()
    with pytest.raises(RuntimeError):
        fn(2, dtype=torch.int64, requires_grad=True)


def test_factory_out_argument_resizes_and_keeps_dtype():
    out_t = torch.tensor([1])
    r = torch.ones((3, 3), out=out_t)
    assert r is out_t and out_t.dtype == torch.int64
    assert out_t.tolist() == [[1, 1, 1]] * 3
    torch.zeros((3, 3), out=out_t)
    assert out_t.tolist() == [[0, 0, 0]] * 3
    o = torch.empty(0)
    torch.arange(0, 4, out=o)
    assert o.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_like_factories():
    x = torch.ones(2, 3, dtype=torch.int32)
    for f in (torch.zeros_like, torch.ones_like, torch.empty_like):
        assert f(x).dtype == torch.int32 and f(x).shape == (2, 3)
        assert f(x, dtype=torch.float64).dtype == torch.float64
    assert torch.full_like(x, 2.7).tolist() == [[2, 2, 2]] * 2
    assert torch.full_like(torch.ones(2), 2.5).tolist() == [2.5, 2.5]
    assert torch.ones_like(torch.ones(2), requires_grad=True).requires_grad


def test_full_infers_dtype_from_fill_value():
    assert torch.full((3, 3), 10).dtype == torch.int64 and torch.full((3, 3), 10).sum().item() == 90
    assert torch.full((2,), 1.5).dtype == torch.float32
    assert torch.full((2,), True).dtype == torch.bool
    assert torch.full((2,), 7, dtype=torch.float64).tolist() == [7.0, 7.0]
    with pytest.raises(TypeError):
        torch.full(3, 1.0)


def test_eye():
    assert torch.eye(3).tolist() == np.eye(3).tolist() and torch.eye(3).dtype == torch.float32
    assert torch.eye(2, 3).tolist() == [[1., 0., 0.], [0., 1., 0.]]
    assert torch.eye(2, dtype=torch.int64).dtype == torch.int64
    with pytest.raises(RuntimeError):
        torch.eye(-1)


def test_arange_values_and_dtypes():
    assert str(torch.arange(start=0, end=8, step=2)) == "tensor([0, 2, 4, 6])"
    assert str(torch.arange(1, 20, 2)) == "tensor([ 1,  3,  5,  7,  9, 11, 13, 15, 17, 19])"
    assert str(torch.arange(1, 5, dtype=torch.float)) == "tensor([1., 2., 3., 4.])"
    assert str(torch.arange(4)) == "tensor([0, 1, 2, 3])"
    assert torch.arange(0, 12).shape == torch.Size([12])
    assert torch.arange(8).dtype == torch.int64
    assert torch.arange(0, 1, 0.25).dtype == torch.float32
    assert torch.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert torch.arange(1, 2.5).tolist() == [1.0, 2.0]
    assert torch.arange(10, 0, -3).tolist() == [10, 7, 4, 1]
    assert len(torch.arange(0, 1, 0.1)) == 10
    assert torch.arange(-1, 1, 0.5, dtype=torch.int32).tolist() == [-1, -1, -1, -1]  # step -> 0
    assert torch.arange(torch.tensor(3)).tolist() == [0, 1, 2]
    torch.set_default_dtype(torch.float64)
    try:
        assert torch.arange(0., 2).dtype == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    with pytest.raises(RuntimeError):
        torch.arange(0, 5, 0)
    with pytest.raises(RuntimeError):
        torch.arange(5, 1)


def test_linspace_logspace():
    assert str(torch.linspace(start=0, end=9, steps=5)) == \
        "tensor([0.0000, 2.2500, 4.5000, 6.7500, 9.0000])"
    assert_close(torch.linspace(-1, 1, 7), np.linspace(-1, 1, 7), rtol=1e-6)
    assert torch.linspace(0, 1, 1).tolist() == [0.0]
    assert torch.linspace(0, 1, 0).shape == (0,)
    assert torch.linspace(0, 10, 4, dtype=torch.int64).tolist() == [0, 3, 6, 10]
    assert_close(torch.logspace(1, 20, 5), 10.0 ** np.linspace(1, 20, 5), rtol=1e-6)
    assert torch.logspace(0, 3, 4, base=2).tolist() == [1.0, 2.0, 4.0, 8.0]
    with pytest.raises(RuntimeError):
        torch.linspace(0, 1, -1)


def test_legacy_constructors():
    t = torch.Tensor([[1], [2], [3]])
    assert t.dtype == torch.float32 and t.tolist() == [[1.0], [2.0], [3.0]]
    g = torch.Tensor([0, 1, 2, 3]).requires_grad_()
    (g * g).sum().backward()
    assert str(g.grad) == "tensor([0., 2., 4., 6.])"
    assert torch.Tensor(2, 3).shape == (2, 3)
    assert torch.Tensor().shape == (0,)
    assert torch.Tensor(torch.Size([2, 3])).shape == (2, 3)
    x = torch.Tensor(np.array(2.0))
    assert str(x) == "tensor(2.)" and x.dtype == torch.float32
    assert torch.IntTensor(1).shape == (1,) and torch.IntTensor(1).dtype == torch.int32
    b = torch.BoolTensor(np.array([1, 0, 2, 0]))
    assert str(b) == "tensor([ True, False,  True, False])"
    assert str(torch.ByteTensor([1.1, 2, 3])) == "tensor([1, 2, 3], dtype=torch.uint8)"
    assert torch.LongTensor([1, 2]).dtype == torch.int64
    assert torch.DoubleTensor([1]).dtype == torch.float64
    assert isinstance(torch.ones(2), torch.FloatTensor)
    assert not isinstance(torch.ones(2), torch.LongTensor)
    assert torch.ones(2).type(torch.LongTensor).dtype == torch.int64


# ---- random ----------------------------------------------------------------------------------

def test_seed_reproducibility_and_initial_seed():
    torch.manual_seed(2)
    assert torch.initial_seed() == 2
    a = torch.rand(5, 3)
    torch.manual_seed(2)
    assert torch.equal(a, torch.rand(5, 3))
    assert not torch.equal(a, torch.rand(5, 3))
    g = torch.manual_seed(7)
    assert isinstance(g, torch.Generator)
    s = torch.get_rng_state()
    x = torch.randn(4)
    torch.set_rng_state(s)
    assert torch.equal(x, torch.randn(4))


def test_generator_argument_is_independent_of_the_global_stream():
    g1 = torch.Generator().manual_seed(42)
    g2 = torch.Generator().manual_seed(42)
    assert g1.initial_seed() == 42
    torch.manual_seed(0)
    a = torch.rand(4, generator=g1)
    b = torch.rand(3)
    assert torch.equal(a, torch.rand(4, generator=g2))
    torch.manual_seed(0)
    assert torch.equal(b, torch.rand(3))
    for f in (lambda g: torch.randn(3, generator=g), lambda g: torch.randint(0, 10, (5,), generator=g),
              lambda g: torch.randperm(6, generator=g), lambda g: torch.normal(
                  torch.zeros(3), 1.0, generator=g),
              lambda g: torch.multinomial(torch.ones(5), 3, generator=g),
              lambda g: torch.bernoulli(torch.full((6,), 0.5), generator=g)):
        assert torch.equal(f(torch.Generator().manual_seed(3)), f(torch.Generator().manual_seed(3)))


def test_rand_randn_shapes_dtypes_and_statistics():
    torch.manual_seed(0)
    u = torch.rand(20000)
    assert u.dtype == torch.float32 and float(u.min()) >= 0 and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.01
    n = torch.randn(20000, dtype=torch.float64)
    assert n.dtype == torch.float64
    assert abs(float(n.mean())) < 0.03 and abs(float(n.std()) - 1) < 0.03
    assert torch.randn(()).shape == () and torch.randn((1, 3, 4, 4)).shape == (1, 3, 4, 4)
    assert torch.randn([1, 3, 64, 64]).shape == (1, 3, 64, 64)
    assert torch.rand(size=(4,)).shape == (4,)
    assert torch.randn(3, requires_grad=True).requires_grad
    assert torch.rand_like(torch.ones(2, dtype=torch.float64)).dtype == torch.float64
    assert torch.randn_like(torch.ones(2, 3), dtype=torch.float).shape == (2, 3)
    with pytest.raises(RuntimeError):
        torch.rand(2, dtype=torch.int64)
    with pytest.raises(RuntimeError):
        torch.rand_like(torch.ones(2, dtype=torch.int64))


def test_randint_randperm():
    torch.manual_seed(0)
    r = torch.randint(0, 3, (3, 3))
    assert r.dtype == torch.int64 and r.shape == (3, 3)
    assert ((r >= 0) & (r < 3)).all()
    assert torch.randint(0, 9, size=(3, 3)).shape == (3, 3)
    r2 = torch.randint(9, (50,))
    assert int(r2.min()) >= 0 and int(r2.max()) < 9
    assert torch.randint(9, size=(2,)).shape == (2,)
    assert torch.randint(0, 9, (2,), dtype=torch.float32).dtype == torch.float32
    assert set(torch.randint(0, 2, (200,)).tolist()) == {0, 1}
    li = torch.randint_like(torch.ones(100), 2, 5)
    assert li.dtype == torch.float32 and float(li.min()) >= 2 and float(li.max()) < 5
    with pytest.raises(RuntimeError):
        torch.randint(5, 2, (3,))
    p = torch.randperm(10)
    assert p.dtype == torch.int64 and sorted(p.tolist()) == list(range(10))
    assert torch.randperm(4, dtype=torch.float32).dtype == torch.float32


def test_normal_forms():
    m = torch.arange(1, 5, dtype=torch.float)
    assert torch.normal(mean=m, std=m).shape == (4,)
    assert torch.normal(mean=0.0, std=1.0, size=(4, 1)).shape == (4, 1)
    assert torch.normal(mean=m, std=1.0).shape == (4,)
    assert torch.normal(mean=0.0, std=m).shape == (4,)
    assert torch.normal(torch.zeros(2, dtype=torch.float64), 1.).dtype == torch.float64
    torch.manual_seed(0)
    big = torch.normal(torch.full((20000,), 3.0), 2.0)
    assert abs(float(big.mean()) - 3) < 0.06 and abs(float(big.std()) - 2) < 0.06
    assert torch.equal(torch.normal(m, 0.0), m)
    with pytest.raises(RuntimeError):
        torch.normal(torch.zeros(2), -1.0)
    with pytest.raises(TypeError):
        torch.normal(0.0, 1.0)


def test_bernoulli():
    assert str(torch.bernoulli(torch.zeros(3, 3))) == \
        "tensor([[0., 0., 0.],\n        [0., 0., 0.],\n        [0., 0., 0.]])"
    assert torch.bernoulli(torch.ones(4)).tolist() == [1.0] * 4
    assert torch.bernoulli(torch.ones(4), p=0.0).tolist() == [0.0] * 4
    torch.manual_seed(0)
    assert abs(float(torch.bernoulli(torch.full((20000,), 0.3)).mean()) - 0.3) < 0.015
    with pytest.raises(RuntimeError):
        torch.bernoulli(torch.full((2,), 1.5))
    with pytest.raises(RuntimeError):
        torch.bernoulli(torch.ones(2, dtype=torch.int64))


def test_multinomial():
    assert torch.multinomial(torch.tensor([0., 1., 0.]), 1).tolist() == [1]
    assert torch.multinomial(torch.tensor([0., 1., 0.]), 4, replacement=True).tolist() == [1] * 4
    r = torch.multinomial(torch.tensor([0.1, 0.9, 0.0]), 2)
    assert r.dtype == torch.int64 and sorted(r.tolist()) == [0, 1]
    assert torch.multinomial(torch.tensor([[0., 1.], [1., 0.]]), 1).tolist() == [[1], [0]]
    # zero-probability categories come last once the others are used up (PyTorch does this)
    assert torch.multinomial(torch.tensor([0., 1., 0.]), 2).tolist()[0] == 1
    torch.manual_seed(0)
    draws = torch.multinomial(torch.tensor([1., 3.]), 20000, replacement=True)
    assert abs(float(draws.float().mean()) - 0.75) < 0.015
    first = torch.stack([torch.multinomial(torch.tensor([1., 3.]), 2) for _ in range(4000)])[:, 0]
    assert abs(float(first.float().mean()) - 0.75) < 0.03     # weighted without replacement
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor([-1., 1.]), 1)
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor([0., 1., 0.]), 4)
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.zeros(2, 2, 2), 1)


def test_device_argument_accepted_everywhere():
    for f in (lambda: torch.zeros(2, device="cpu"), lambda: torch.tensor([1], device="cpu"),
              lambda: torch.arange(3, device=torch.device("cpu")),
              lambda: torch.rand(2, device="cpu"), lambda: torch.eye(2, device="cpu"),
              lambda: torch.full((2,), 1, device="cpu"), lambda: torch.linspace(0, 1, 3, device="cpu")):
        assert f().device == torch.device("cpu")
    assert math.isclose(torch.tensor([1.0], device="cpu").item(), 1.0)


def test_factories_make_device_tensors_on_the_device():
    # zeros/ones/full/empty(_like) on a device allocate there and fill there (no host buffer
    # and upload); the first device tensor of a process being made this way must still switch
    # dispatch to the device path (a fresh child process, where nothing was moved before)
    import json
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys, json; sys.path.insert(0, %r)\n"
            "import framework as torch\n"
            "from framework import _device_ops as D\n"
            "z = torch.zeros(3, 4, device='interpret')\n"
            "y = z + 1\n"
            "f = torch.full((5,), 7, dtype=torch.int64, device='interpret')\n"
            "o = torch.ones_like(f)\n"
            "e = torch.empty(2, 3, dtype=torch.float16, device='interpret')\n"
            "b = torch.ones(2, dtype=torch.bool, device='interpret')\n"
            "x = torch.ones(4, device='interpret', requires_grad=True)\n"
            "x[1:].sum().backward()\n"          # the slice's VJP makes its zeros on the device
            "made = [D.STATS['made', 'full'], D.STATS['fallback', 'full'], x.grad.cpu().numpy().tolist()]\n"
            "print(json.dumps([type(z._data).__name__, str(y.device), y.cpu().numpy().tolist(),\n"
            "                  f.cpu().numpy().tolist(), str(o.dtype), o.cpu().numpy().tolist(),\n"
            "                  [str(e.dtype), list(e.shape), str(e.device)], b.cpu().numpy().tolist(),\n"
            "                  sorted(k[1] for k in D.STATS if k[0] == 'kernel'), made]))\n" % root)
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    env.pop("KILN_DEVICE", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    kind, ydev, y, f, odt, o, e, b, kernels, made = json.loads(r.stdout.strip().splitlines()[-1])
    assert kind == "InterpretArray" and ydev == "interpret"
    assert y == [[1.0] * 4] * 3 and f == [7] * 5 and odt == "torch.int64" and o == [1] * 5
    assert e == ["torch.float16", [2, 3], "interpret"] and b == [True, True]
    assert "fused_add_0" in kernels               # z + 1 ran its Triton kernel on the device
    n_made, n_fallback, grad = made
    assert n_made >= 1 and n_fallback == 0 and grad == [0.0, 1.0, 1.0, 1.0]


def test_random_fills_reject_bad_parameters_before_drawing():
    # PyTorch 2.13's messages; the tensor keeps its values (checked before any draw, on every
    # device: the Philox kernels and NumPy would otherwise take them)
    t = torch.zeros(3)
    for f, msg in ((lambda: t.random_(5, 3), "random_ expects 'from' to be less than 'to', "
                                            "but got from=5 >= to=3"),
                   (lambda: t.uniform_(2, 1), r"uniform_ expects to return a \[from, to\) range, "
                                              "but found from=2 > to=1"),
                   (lambda: t.normal_(0, -1), "normal expects std >= 0.0, but found std -1"),
                   (lambda: t.exponential_(-1), "exponential_ expects lambda > 0.0, but found "
                                                "lambda=-1"),
                   (lambda: t.bernoulli_(1.5), r"bernoulli_ expects p to be in \[0, 1\], but "
                                               "got p=1.5")):
        with pytest.raises(RuntimeError, match=msg):
            f()
    with pytest.raises(RuntimeError, match="uniform_ expects"):
        torch.nn.init.uniform_(t, 2, 1)
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0"):
        torch.nn.init.normal_(t, 0, -1)
    np.testing.assert_array_equal(to_np(t), np.zeros(3))
