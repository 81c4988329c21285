"""The cpu generator reproduces PyTorch's CPU random stream (framework/_cpu_random.py): after
manual_seed(s) the draws equal PyTorch 2.13's. Values below were printed by torch 2.13.0 (CPU
wheel); the cross-check against torch itself runs when torch is installed."""
import numpy as np
import pytest

import framework as torch
from framework._cpu_random import TorchStream
from runtime import dtypes as dt


def _seeded(fn, seed=0):
    torch.manual_seed(seed)
    return fn()


def test_seeded_draws_equal_pytorch_values():
    rand = _seeded(lambda: torch.rand(5))
    assert rand.tolist() == [0.49625658988952637, 0.7682217955589294, 0.08847743272781372,
                             0.13203048706054688, 0.30742281675338745]
    a, b = _seeded(lambda: (torch.randn(3), torch.randn(2)))     # small: the scalar path
    assert a.tolist() == [1.5409960746765137, -0.293428897857666, -2.1787893772125244]
    assert b.tolist() == [0.5684312582015991, -1.0845223665237427]   # (its cached pair value)
    assert _seeded(lambda: torch.randint(0, 10, (6,))).tolist() == [4, 9, 3, 0, 3, 9]
    assert _seeded(lambda: torch.randperm(10)).tolist() == [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]
    assert _seeded(lambda: torch.empty(5).uniform_(-2, 3)).tolist() == \
        [0.48128294944763184, 1.841109037399292, -1.5576128959655762, -1.3398475646972656,
         -0.46288591623306274]
    assert _seeded(lambda: torch.empty(12).bernoulli_(0.3)).tolist() == \
        [0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1]
    lin = _seeded(lambda: torch.nn.Linear(3, 2))                 # kaiming_uniform_ + bias
    assert lin.weight.tolist() == [[-0.004322517663240433, 0.3097158372402191,
                                    -0.4751853346824646],
                                   [-0.4248946011066437, -0.2223689705133438,
                                    0.15482072532176971]]
    assert lin.bias.tolist() == [-0.011439144611358643, 0.45777493715286255]
    assert _seeded(lambda: torch.empty(2, dtype=torch.int64).random_()).tolist() == \
        [900450186894289455, 3969543146641149120]
    assert _seeded(lambda: torch.normal(2.0, 3.0, (4,))).tolist() == \
        [6.622988224029541, 1.119713306427002, -4.536368370056152, 3.705293893814087]
    assert _seeded(lambda: torch.nn.functional.dropout(torch.ones(10), 0.5)).tolist() == \
        [0, 0, 2, 0, 0, 0, 2, 2, 0, 2]
    # 16 or more values: Box-Muller on blocks of 16 (PyTorch's vectorised log/sin/cos may
    # differ from NumPy's in the last place)
    np.testing.assert_allclose(_seeded(lambda: torch.randn(20)).numpy(), [
        -1.1258398294448853, -1.152360200881958, -0.2505785822868347, -0.4338788092136383,
        0.5988394618034363, -1.5550950765609741, -0.3413603901863098, 1.85300612449646,
        0.46809640526771545, -0.1577124446630478, 1.4436601400375366, 0.26604941487312317,
        1.3893661499023438, 1.586334228515625, 0.946298360824585, -0.843676745891571,
        0.9318265914916992, 1.2590092420578003, 2.0049805641174316, 0.05373690277338028],
        rtol=0, atol=3e-7)


def test_generators_states_and_reseeding():
    g = torch.Generator().manual_seed(42)
    x = torch.rand(4, generator=g)
    assert torch.rand(4, generator=torch.Generator().manual_seed(42)).tolist() == x.tolist()
    torch.manual_seed(3)
    torch.randn(3)                               # leaves a cached normal in the state
    st = torch.get_rng_state()
    assert st.dtype == torch.uint8
    a = (torch.randn(5).tolist(), torch.randint(0, 100, (4,)).tolist())
    torch.set_rng_state(st)
    assert (torch.randn(5).tolist(), torch.randint(0, 100, (4,)).tolist()) == a
    assert torch.initial_seed() == 3
    with pytest.raises(RuntimeError, match="CPUGeneratorImplState of size 5056"):
        torch.set_rng_state(torch.zeros(10, dtype=torch.uint8))
    big = torch.Generator().manual_seed(2 ** 40 + 7)       # mt19937 takes the low 32 bits
    assert torch.rand(2, generator=big).tolist() == \
        torch.rand(2, generator=torch.Generator().manual_seed(7)).tolist()


def test_stream_transformations():
    s = TorchStream(0)
    words = s.random(3).tolist()
    assert words == [2357136044, 2546248239, 3071714933]          # mt19937(0)'s first outputs
    s = TorchStream(0)
    w64 = s.random64(1)[0]
    assert int(w64) == (2357136044 << 32) | 2546248239             # first word high
    s = TorchStream(1)
    p = s.randperm(50)
    assert sorted(p.tolist()) == list(range(50)) and p.tolist() != list(range(50))
    u = TorchStream(2).uniform((1000,), dt.float16)
    assert u.dtype == np.float16 and u.min() >= 0 and u.max() <= 1
    r = TorchStream(2).full_range((1000,), dt.uint8)
    assert r.dtype == np.uint8 and r.max() > 200


_CASES = {
    "rand": lambda L: L.rand(7),
    "rand f64": lambda L: L.rand(2, 3, dtype=L.float64),
    "rand f16": lambda L: L.rand(7, dtype=L.float16),
    "randn small": lambda L: L.cat([L.randn(3), L.randn(5)]),
    "randn f64": lambda L: L.randn(100, dtype=L.float64),
    "randint": lambda L: L.randint(-3, 10, (3, 4)),
    "randint wide": lambda L: L.randint(0, 2 ** 40, (5,)),
    "randperm": lambda L: L.randperm(1000),
    "normal tensors": lambda L: L.normal(L.zeros(3) + 1, L.ones(3) * 2),
    "uniform_": lambda L: L.empty(9).uniform_(-2, 3),
    "bernoulli p": lambda L: L.bernoulli(L.full((12,), 0.4)),
    "exponential_": lambda L: L.empty(8).exponential_(2.0),
    "random_ f32": lambda L: L.empty(4).random_(),
    "random_ uint8": lambda L: L.empty(4, dtype=L.uint8).random_(),
    "Linear": lambda L: L.cat([p.detach().reshape(-1) for p in L.nn.Linear(5, 3).parameters()]),
    "Conv2d": lambda L: L.cat([p.detach().reshape(-1) for p in L.nn.Conv2d(2, 4, 3).parameters()]),
    "LSTM": lambda L: L.cat([p.detach().reshape(-1) for p in L.nn.LSTM(3, 4).parameters()]),
    "xavier_uniform_": lambda L: L.nn.init.xavier_uniform_(L.empty(3, 5)),
    "dropout": lambda L: L.nn.functional.dropout(L.ones(30), 0.4),
    "trunc_normal_ (uniform rejection)": lambda L: L.nn.init.trunc_normal_(L.empty(50), 5., 2., 0.,
                                                                           1.),
}
_CLOSE = {"randn 40": lambda L: L.randn(40), "normal_": lambda L: L.empty(50).normal_(1, 2),
          "Embedding": lambda L: L.nn.Embedding(10, 4).weight.detach(),
          "trunc_normal_": lambda L: L.nn.init.trunc_normal_(L.empty(50))}


@pytest.mark.parametrize("name", sorted(_CASES) + sorted(_CLOSE))
def test_against_pytorch(name):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    fn = _CASES.get(name) or _CLOSE[name]
    real.manual_seed(0)
    want = fn(real).detach().numpy()
    torch.manual_seed(0)
    got = fn(torch).detach().numpy()
    assert got.shape == want.shape and got.dtype == want.dtype
    if name in _CASES:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_data_loader_shuffle_and_random_split_follow_pytorch():
    # RandomSampler seeds a generator from random_() and takes randperm from it, as PyTorch's
    # does: the same batches as PyTorch 2.13 after manual_seed(0)
    torch.manual_seed(0)
    ds = torch.utils.data.TensorDataset(torch.arange(10))
    batches = [b[0].tolist() for b in torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True)]
    assert batches == [[6, 7, 1, 4], [2, 0, 9, 8], [3, 5]]
    torch.manual_seed(0)
    a, b = torch.utils.data.random_split(range(10), [7, 3])
    assert (list(a), list(b)) == ([4, 1, 7, 5, 3, 9, 0], [8, 6, 2])


def test_multinomial_and_what_samples_through_it_equal_pytorch():
    # printed by torch 2.13 after manual_seed(7) / (5)
    torch.manual_seed(7)
    assert torch.multinomial(torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.5, 0.0, 0.25, 0.25]]), 6,
                             True).tolist() == [[1, 1, 3, 2, 3, 3], [0, 2, 3, 3, 0, 0]]
    torch.manual_seed(7)
    assert torch.multinomial(torch.tensor([0.1, 0.4, 0.2, 0.3, 0.05]), 3).tolist() == [1, 0, 3]
    torch.manual_seed(7)
    one = torch.multinomial(torch.tensor([[0.1, 0.4, 0.2, 0.3]], dtype=torch.float64), 1)
    assert one.tolist() == [[1]] and torch.rand(1).item() == 0.36531615257263184
    torch.manual_seed(5)
    D = torch.distributions
    mix = D.MixtureSameFamily(D.Categorical(torch.tensor([0.3, 0.7])),
                              D.Normal(torch.tensor([-1., 2.]), torch.tensor([0.5, 1.])))
    assert mix.sample((4,)).tolist() == [3.9427833557128906, -1.7008509635925293,
                                         1.1008648872375488, 2.690718650817871]
    assert D.OneHotCategorical(torch.tensor([0.2, 0.3, 0.5])).sample((2,)).tolist() == \
        [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    assert D.Multinomial(10, torch.tensor([0.2, 0.3, 0.5])).sample().tolist() == [2.0, 5.0, 3.0]
    assert list(torch.utils.data.WeightedRandomSampler([0.1, 0.9, 0.5, 0.2], 6)) == \
        [2, 1, 1, 1, 1, 2]
    for bad, msg in ((torch.tensor([1, 2]), "only supports floating-point dtypes"),
                     (torch.tensor([0., 0.]), "sum of probabilities <= 0"),
                     (torch.tensor([1., -1.]), "element < 0")):
        with pytest.raises(RuntimeError, match=msg):
            torch.multinomial(bad, 1, True)
    with pytest.raises(RuntimeError, match="cannot sample n_sample <= 0 samples"):
        torch.multinomial(torch.tensor([1., 2.]), 0)


# sampling kernels on integer, bool and complex tensors: PyTorch's error classes, messages and
# check order (a bad parameter or a bad dtype, whichever PyTorch checks first); data unchanged
_SAMPLE_ERRORS = [
    ("uniform_", (2.0, 1.0), torch.int64, NotImplementedError,
     "\"check_uniform_bounds\" not implemented for 'Long'"),
    ("uniform_", (), torch.uint8, NotImplementedError,
     "\"check_uniform_bounds\" not implemented for 'Byte'"),
    ("normal_", (0.0, -1.0), torch.int64, RuntimeError,
     "normal expects std >= 0.0, but found std -1"),
    ("normal_", (), torch.int8, NotImplementedError,
     "\"normal_kernel_cpu\" not implemented for 'Char'"),
    ("normal_", (), torch.bool, NotImplementedError,
     "\"normal_kernel_cpu\" not implemented for 'Bool'"),
    ("exponential_", (-1.0,), torch.int64, RuntimeError,
     "exponential_ expects lambda > 0.0, but found lambda=-1"),
    ("exponential_", (), torch.int16, RuntimeError,
     "Exponential distribution is a continuous probability distribution. dtype must be a "
     "floating point but you specified Short"),
    ("exponential_", (), torch.complex64, RuntimeError,
     "dtype must be a floating point but you specified ComplexFloat"),
    ("geometric_", (2.0,), torch.bool, RuntimeError,
     "geometric_ expects p to be in (0, 1), but got p=2"),
    ("geometric_", (0.5,), torch.bool, NotImplementedError,
     "\"geometric_cpu\" not implemented for 'Bool'"),
]


@pytest.mark.parametrize("op,args,dtype,cls,msg", _SAMPLE_ERRORS)
def test_sampling_kernels_refuse_other_dtypes_as_pytorch(op, args, dtype, cls, msg):
    t = torch.full((3,), 1, dtype=dtype)
    before = t.cpu().numpy().copy()
    with pytest.raises(cls) as e:
        getattr(t, op)(*args)
    assert msg in str(e.value)
    np.testing.assert_array_equal(t.cpu().numpy(), before)


def test_sampling_kernel_errors_match_torch():
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    for op, args, dtype, cls, _ in _SAMPLE_ERRORS:
        rd = getattr(real, str(dtype).split(".")[-1])
        with pytest.raises(cls) as want:
            getattr(real.full((3,), 1, dtype=rd), op)(*args)
        with pytest.raises(cls) as got:
            getattr(torch.full((3,), 1, dtype=dtype), op)(*args)
        assert str(got.value) == str(want.value), (op, dtype)
