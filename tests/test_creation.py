"""Tensor creation: factories, dtype inference, memory sharing with NumPy, legacy constructors,
random sampling with seeds and generators, and bad arguments."""
import math
import warnings

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
    with pytest.raises(RuntimeError, match="negative dimension|Dimension size must be non-neg"):
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


def test_legacy_cuda_tensor_types():
    # torch.cuda.FloatTensor & co: a cuda tensor's type(), isinstance and conversions by type
    x = torch.tensor([1.5, 2.5], device="cpu")
    assert str(torch.cuda.FloatTensor) == "<class 'torch.cuda.FloatTensor'>"
    assert torch.cuda.HalfTensor.dtype == torch.float16 and torch.cuda.LongTensor.is_cuda
    assert not torch.FloatTensor.is_cuda
    assert x.type() == "torch.FloatTensor" and not isinstance(x, torch.cuda.FloatTensor)
    d = torch.tensor([1.5, 2.5], device="interpret")       # Triton's interpreter: a cuda device
    assert d.type() == "torch.cuda.FloatTensor"
    assert isinstance(d, torch.cuda.FloatTensor) and not isinstance(d, torch.FloatTensor)
    assert torch.typename(d.long()) == "torch.cuda.LongTensor"
    back = d.type(torch.DoubleTensor)                        # a cpu type moves it to the cpu
    assert back.device.type == "cpu" and back.dtype == torch.float64
    assert back.tolist() == [1.5, 2.5]
    same = d.type("torch.cuda.IntTensor")                    # names work as well as classes
    assert same.is_cuda and same.dtype == torch.int32 and same.tolist() == [1, 2]
    assert x.type("torch.ComplexFloatTensor").dtype == torch.complex64
    assert x.type(torch.float64, non_blocking=True).dtype == torch.float64
    with pytest.raises(ValueError, match="invalid type: 'torch.cuda.FooTensor'"):
        x.type("torch.cuda.FooTensor")
    if torch.cuda.is_available():
        c = torch.cuda.FloatTensor([1, 2])
        assert c.is_cuda and c.dtype == torch.float32 and c.tolist() == [1.0, 2.0]
        assert torch.cuda.LongTensor(2, 3).shape == (2, 3)
        assert x.type(torch.cuda.FloatTensor).is_cuda
    else:       # PyTorch's CPU build: the types exist but cannot make tensors
        with pytest.raises(TypeError, match="type torch.cuda.FloatTensor not available"):
            torch.cuda.FloatTensor([1, 2])
        with pytest.raises(RuntimeError, match="cuda"):
            x.type(torch.cuda.FloatTensor)
    assert x.tolist() == [1.5, 2.5] and x.dtype == torch.float32     # left unchanged


def test_version_error_names_cuda_type():
    # the seed's message: "[torch.cuda.FloatTensor [1, 32]] is at version 3; expected version 2"
    w = torch.ones(1, 32, device="interpret", requires_grad=True)
    h = w * 1
    # exp saves its output (and its kernel uses no Triton library function: in this process
    # Triton may have been imported for compiling, not interpreting, by an earlier test)
    y = h.exp()
    y.mul_(2)
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"\[torch\.cuda\.FloatTensor \[1, 32\]\], which is "
                                           r"output 0 of Exp, is at version 2; "
                                           r"expected version 0"):
        y.sum().backward()


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
    # size is a sequence (a bare int is PyTorch's overload TypeError); low/high are ints
    assert torch.randint(0, 9, [4]).shape == (4,)
    for args, got in (((0, 10, 3), "int, int, int"), ((0.5, 10, (2,)), "float, int, tuple")):
        with pytest.raises(TypeError, match=rf"randint\(\) received an invalid combination of "
                                            rf"arguments - got \({got}\), but expected one of:\n"
                                            rf" \* \(int high, tuple of ints size, \*, torch"):
            torch.randint(*args)
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
    # weighted without replacement: 4000 rows, each drawn on its own (one call, not 4000:
    # the interpret run repeats this test through Triton's interpreter)
    first = torch.multinomial(torch.tensor([[1., 3.]]).expand(4000, 2), 2)[:, 0]
    assert abs(float(first.float().mean()) - 0.75) < 0.03
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
                   (lambda: torch.normal(torch.zeros(2), -1.0),
                    "normal expects std >= 0.0, but found std -1"),
                   (lambda: torch.normal(0.0, torch.tensor([-1.0, 1.0])),
                    r"^normal expects all elements of std >= 0.0$"),
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


# ---- rand_like / randn_like / randint_like: layout (memory_format) and memory-order draws ------
# PyTorch (CPU): preserve_format (the default) gives a non-overlapping, dense input's strides,
# and the draw walks the result in memory order, so after manual_seed(s) the memory holds what
# rand/randint of that many elements would hold; randn on a non-contiguous result draws one
# value at a time (Box-Muller pairs, the scalar path of randn with fewer than 16 values).

def _cpu_empty(*shape, **kw):
    return torch.empty(*shape, device="cpu", **kw)


def _memory(t):
    """t's elements in memory order (its dims sorted by decreasing stride)."""
    perm = sorted(range(t.ndim), key=lambda i: -t.stride(i))
    return t.permute(*perm).reshape(-1)


def _seeded_draw(fn):
    torch.manual_seed(0)
    return fn()


def _serial_randn(n, dtype=torch.float32):
    # randn of fewer than 16 values takes the scalar path, its pair cache carried between calls
    return torch.cat([torch.randn(min(10, n - i), dtype=dtype, device="cpu")
                      for i in range(0, n, 10)])


_LIKE_LAYOUTS = {     # input, the result's strides
    "transposed": (lambda: _cpu_empty(5, 6).t(), (1, 6)),
    "permuted": (lambda: _cpu_empty(2, 3, 4).permute(2, 0, 1), (1, 12, 4)),
    "channels_last": (lambda: _cpu_empty(2, 3, 4, 5).to(memory_format=torch.channels_last),
                      (60, 1, 15, 3)),
    "channels_last_3d": (lambda: _cpu_empty(2, 3, 2, 2, 3).to(
        memory_format=torch.channels_last_3d), (36, 1, 18, 9, 3)),
    "contiguous": (lambda: _cpu_empty(4, 5), (5, 1)),
    "not dense": (lambda: _cpu_empty(4, 6)[:, ::2], (3, 1)),
    "expanded": (lambda: _cpu_empty(3, 1).expand(3, 4), (4, 1)),
}


@pytest.mark.parametrize("layout", sorted(_LIKE_LAYOUTS))
def test_random_like_preserves_the_layout_and_draws_in_memory_order(layout):
    make, strides = _LIKE_LAYOUTS[layout]
    x = make()
    n = x.numel()
    r = _seeded_draw(lambda: torch.rand_like(x))
    assert r.shape == x.shape and r.stride() == strides and r.dtype == torch.float32
    assert _memory(r).tolist() == _seeded_draw(lambda: torch.rand(n, device="cpu")).tolist()
    i = _seeded_draw(lambda: torch.randint_like(x, 3, 50))
    assert i.stride() == strides and i.dtype == torch.float32
    assert _memory(i).tolist() == \
        _seeded_draw(lambda: torch.randint(3, 50, (n,), device="cpu")).tolist()
    g = _seeded_draw(lambda: torch.randn_like(x))
    assert g.stride() == strides
    contiguous = strides == x.contiguous().stride()
    want = _seeded_draw(lambda: torch.randn(n, device="cpu") if contiguous else _serial_randn(n))
    assert _memory(g).tolist() == want.tolist()


def test_random_like_known_values():
    # printed by torch 2.13 after manual_seed(0): the memory of rand_like(empty(3, 4).t()) is
    # rand(12)'s; randn_like of a transposed 5x6 (30 values) takes the scalar path
    r = _seeded_draw(lambda: torch.rand_like(_cpu_empty(3, 4).t()))
    assert r.stride() == (1, 4)
    assert r.t().reshape(-1).tolist()[:5] == [0.49625658988952637, 0.7682217955589294,
                                              0.08847743272781372, 0.13203048706054688,
                                              0.30742281675338745]
    g = _seeded_draw(lambda: torch.randn_like(_cpu_empty(5, 6).t()))
    assert g.t().reshape(-1).tolist()[:3] == [1.5409960746765137, -0.293428897857666,
                                              -2.1787893772125244]
    i = _seeded_draw(lambda: torch.randint_like(_cpu_empty(2, 3).t(), 10))
    assert i.t().reshape(-1).tolist() == [4.0, 9.0, 3.0, 0.0, 3.0, 9.0]


@pytest.mark.parametrize("fn", ["rand_like", "randn_like", "randint_like"])
def test_random_like_memory_format_argument(fn):
    f = getattr(torch, fn)
    args = (3, 50) if fn == "randint_like" else ()
    ref = {"rand_like": lambda n: torch.rand(n, device="cpu"),
           "randn_like": lambda n: _serial_randn(n),
           "randint_like": lambda n: torch.randint(3, 50, (n,), device="cpu")}[fn]
    c4 = _cpu_empty(2, 3, 4, 5)
    cl = c4.to(memory_format=torch.channels_last)
    r = _seeded_draw(lambda: f(c4, *args, memory_format=torch.channels_last))
    assert r.stride() == (60, 1, 15, 3) and r.is_contiguous(memory_format=torch.channels_last)
    assert _memory(r).tolist() == _seeded_draw(lambda: ref(120)).tolist()
    for fmt in (torch.contiguous_format, None):
        x = cl if fmt is not None else c4
        r = _seeded_draw(lambda: f(x, *args, memory_format=fmt))
        assert r.stride() == (60, 20, 5, 1)
    t = _cpu_empty(5, 6).t()
    assert f(t, *args, memory_format=torch.preserve_format).stride() == (1, 6)
    assert f(t, *args, memory_format=torch.contiguous_format).stride() == (5, 1)
    assert f(torch.empty(2, 3, 2, 2, 3, device="cpu"), *args,
             memory_format=torch.channels_last_3d).stride() == (36, 1, 18, 9, 3)
    for fmt, msg in ((torch.channels_last, "required rank 4 tensor to use channels_last format"),
                     (torch.channels_last_3d, "required rank 5 tensor to use channels_last_3d "
                                              "format")):
        with pytest.raises(RuntimeError) as e:
            f(t, *args, memory_format=fmt)
        assert str(e.value) == msg
    with pytest.raises(TypeError) as e:
        f(t, *args, memory_format=1)
    got = ", ".join(["Tensor"] + ["int"] * len(args) + ["memory_format=int"])
    assert str(e.value).startswith(f"{fn}() received an invalid combination of arguments - got "
                                   f"({got}), but expected one of:\n * (Tensor input")
    assert "torch.Generator generator, torch.memory_format memory_format = None" in str(e.value)


def test_random_like_dtypes_generator_and_errors():
    t = _cpu_empty(5, 6).t()
    g = torch.Generator().manual_seed(3)
    a = torch.rand_like(t, generator=g, dtype=torch.float64)
    assert a.dtype == torch.float64 and a.stride() == (1, 6)
    assert _memory(a).tolist() == \
        torch.rand(30, dtype=torch.float64, device="cpu",
                   generator=torch.Generator().manual_seed(3)).tolist()
    assert torch.randn_like(t, requires_grad=True).requires_grad
    assert torch.randint_like(t, 5, requires_grad=True).requires_grad
    # complex: the real view drawn in memory order (randn: the scalar path, std 1/sqrt(2))
    c = _cpu_empty(5, 6, dtype=torch.complex128).t()
    z = _seeded_draw(lambda: torch.randn_like(c))
    assert z.stride() == (1, 6) and z.dtype == torch.complex128
    want = _seeded_draw(lambda: _serial_randn(60, torch.float64)) * (1 / math.sqrt(2))
    assert torch.view_as_real(z.t()).reshape(-1).tolist() == want.tolist()
    u = _seeded_draw(lambda: torch.rand_like(c))
    assert torch.view_as_real(u.t()).reshape(-1).tolist() == \
        _seeded_draw(lambda: torch.rand(60, dtype=torch.float64, device="cpu")).tolist()
    ints = torch.zeros(3, 4, dtype=torch.int64, device="cpu").t()
    i = _seeded_draw(lambda: torch.randint_like(ints, torch.tensor(7)))
    assert i.dtype == torch.int64 and i.stride() == (1, 4)
    assert _memory(i).tolist() == \
        _seeded_draw(lambda: torch.randint(7, (12,), device="cpu")).tolist()
    for f, cls, msg in (
            (lambda: torch.rand_like(ints), NotImplementedError,
             "\"check_uniform_bounds\" not implemented for 'Long'"),
            (lambda: torch.randn_like(ints), NotImplementedError,
             "\"normal_kernel_cpu\" not implemented for 'Long'"),
            (lambda: torch.rand_like(ints, memory_format=torch.channels_last), RuntimeError,
             "required rank 4 tensor to use channels_last format"),
            (lambda: torch.randint_like(t, 5, 2), RuntimeError,
             "random_ expects 'from' to be less than 'to', but got from=5 >= to=2"),
            (lambda: torch.randint_like(t, 300, dtype=torch.uint8), RuntimeError,
             "to - 1 is out of bounds for unsigned char"),
            (lambda: torch.randint_like(t, torch.tensor([7])), RuntimeError,
             "high must be a scalar tensor and on CPU"),
            (lambda: torch.randint_like(c, 5), RuntimeError,
             "check_random_bounds handles only integral, floating-point and boolean types")):
        with pytest.raises(cls) as e:
            f()
        assert str(e.value) == msg
    with pytest.raises(TypeError, match=r"randint_like\(\) received an invalid combination of "
                                        r"arguments - got \(Tensor, float\)"):
        torch.randint_like(t, 2.5)


_TORCH_LIKE_CASES = {
    "rand transposed": lambda L: L.rand_like(L.empty(5, 6).t()),
    "rand permuted": lambda L: L.rand_like(L.empty(2, 3, 4).permute(2, 0, 1)),
    "rand channels_last": lambda L: L.rand_like(
        L.empty(2, 3, 4, 5).to(memory_format=L.channels_last)),
    "rand to channels_last": lambda L: L.rand_like(L.empty(2, 3, 4, 5),
                                                   memory_format=L.channels_last),
    "rand to contiguous": lambda L: L.rand_like(
        L.empty(2, 3, 4, 5).to(memory_format=L.channels_last), memory_format=L.contiguous_format),
    "rand channels_last_3d": lambda L: L.rand_like(L.empty(2, 3, 2, 2, 3),
                                                   memory_format=L.channels_last_3d),
    "rand float64 transposed": lambda L: L.rand_like(L.empty(5, 6).t(), dtype=L.float64),
    "rand float16 transposed": lambda L: L.rand_like(L.empty(5, 6).t(), dtype=L.float16),
    "rand not dense": lambda L: L.rand_like(L.empty(4, 6)[:, ::2]),
    "rand complex64 transposed": lambda L: L.rand_like(L.empty(5, 6, dtype=L.complex64).t()),
    "rand generator": lambda L: L.rand_like(L.empty(5, 6).t(),
                                            generator=L.Generator().manual_seed(3)),
    "randn transposed small": lambda L: L.randn_like(L.empty(3, 4).t()),
    "randn transposed": lambda L: L.randn_like(L.empty(40, 20).t()),
    "randn float64 channels_last": lambda L: L.randn_like(
        L.empty(2, 3, 4, 5, dtype=L.float64).to(memory_format=L.channels_last)),
    "randn to channels_last": lambda L: L.randn_like(L.empty(2, 3, 4, 5),
                                                     memory_format=L.channels_last),
    "randn contiguous": lambda L: L.randn_like(L.empty(4, 5)),
    "randn bfloat16 transposed": lambda L: L.randn_like(L.empty(5, 6).t(),
                                                        dtype=L.bfloat16).float(),
    "randn complex64 transposed": lambda L: L.randn_like(L.empty(5, 6, dtype=L.complex64).t()),
    "randn complex128 channels_last": lambda L: L.randn_like(
        L.empty(2, 3, 2, 2, dtype=L.complex128).to(memory_format=L.channels_last)),
    "randint transposed": lambda L: L.randint_like(L.empty(5, 6).t(), 3, 50),
    "randint int32 transposed": lambda L: L.randint_like(
        L.zeros(5, 6, dtype=L.int32).t(), 100),
    "randint channels_last": lambda L: L.randint_like(
        L.empty(2, 3, 4, 5).to(memory_format=L.channels_last), 7),
    "randint to channels_last": lambda L: L.randint_like(L.empty(2, 3, 4, 5), 0, 7,
                                                         memory_format=L.channels_last),
    "randint tensor high": lambda L: L.randint_like(L.empty(5, 6).t(), L.tensor(9)),
}


@pytest.mark.parametrize("name", sorted(_TORCH_LIKE_CASES))
def test_random_like_against_pytorch(name):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    fn = _TORCH_LIKE_CASES[name]
    real.manual_seed(0)
    want = fn(real)
    want_next = real.rand(1).item()          # the stream advanced as far
    torch.manual_seed(0)
    with torch.device("cpu"):
        got = fn(torch)
    assert got.stride() == want.stride() and str(got.dtype) == str(want.dtype)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert torch.rand(1, device="cpu").item() == want_next


def test_random_like_errors_against_pytorch():
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    cases = (lambda L: L.rand_like(L.empty(3, 4), memory_format=1),
             lambda L: L.randn_like(L.empty(3, 4), memory_format="x"),
             lambda L: L.randint_like(L.empty(3, 4), 5, memory_format=1),
             lambda L: L.randint_like(L.empty(3, 4), 2, 5, memory_format=1),
             lambda L: L.rand_like(L.empty(3, 4), memory_format=L.channels_last),
             lambda L: L.randn_like(L.empty(3, 4), memory_format=L.channels_last_3d),
             lambda L: L.randint_like(L.empty(3, 4), 5, memory_format=L.channels_last),
             lambda L: L.rand_like(L.zeros(3, dtype=L.int64)),
             lambda L: L.randn_like(L.zeros(3, dtype=L.int64)),
             lambda L: L.randint_like(L.empty(3), 5, 2),
             lambda L: L.randint_like(L.empty(3), 300, dtype=L.uint8),
             lambda L: L.randint_like(L.empty(3, dtype=L.complex64), 5))
    for case in cases:
        out = []
        for lib in (torch, real):
            try:
                case(lib)
                out.append(None)
            except Exception as e:
                out.append((type(e).__name__, str(e)))
        assert out[0] == out[1] and out[0] is not None


def test_negative_sizes_and_inconsistent_arange_messages():
    # PyTorch 2.13's messages: zeros checks sizes itself; the other factories (new_zeros too,
    # an empty + zero_ there) report the negative dimension
    with pytest.raises(RuntimeError, match="^zeros: Dimension size must be non-negative.$"):
        torch.zeros(3, -1)
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        torch.ones(1).new_zeros(-1)
    with pytest.raises(RuntimeError, match="negative dimension -2"):
        torch.ones(2, -2)
    for a in ((0, 10, -1), (10, 0), (0.5, -3.0, 0.5)):
        with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with "
                                               "step sign"):
            torch.arange(*a)


def test_list_of_ndarrays_warns_as_pytorch():
    # PyTorch's TORCH_WARN_ONCE for ndarrays inside a list (not for NumPy scalars)
    prev = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        for data in ([np.array([1.0, 2.0]), np.array([3.0, 4.0])],
                     [[1.0, 2.0], np.array([3.0, 4.0])], ([np.array([1.0, 2.0]), [3, 4]],)):
            with pytest.warns(UserWarning, match="Creating a tensor from a list of "
                                                 "numpy.ndarrays is extremely slow") as rec:
                t = torch.as_tensor(data)
            assert rec[0].filename == __file__
            np.testing.assert_array_equal(to_np(t), np.array(data, np.float64).reshape(t.shape))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert torch.tensor([np.float32(1.5), 2]).tolist() == [1.5, 2.0]
            torch.as_tensor(np.stack([np.ones(2), np.zeros(2)]))
    finally:
        torch.set_warn_always(prev)
