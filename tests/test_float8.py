"""float8 dtypes: float32 storage rounded to each format's grid (runtime/float8.py). References
are computed here from the formats' sign/exponent/mantissa fields, not by the code under test."""
import math

import numpy as np
import pytest

import framework as torch

# name: (exponent bits, mantissa bits, bias, kind); kind "fn": S.1111.111 is NaN, no inf;
# "ieee": top exponent is inf/NaN; "fnuz": 0x80 is the only NaN, no -0, no inf
FORMATS = {"float8_e4m3fn": (4, 3, 7, "fn"), "float8_e5m2": (5, 2, 15, "ieee"),
           "float8_e4m3fnuz": (4, 3, 8, "fnuz"), "float8_e5m2fnuz": (5, 2, 16, "fnuz")}


def ref_value(name, b):
    """The value of byte b in format `name`, from the format's definition."""
    if name == "float8_e8m0fnu":
        return math.nan if b == 255 else 2.0 ** (b - 127)
    E, M, bias, kind = FORMATS[name]
    s, e, m = b >> 7, (b >> M) & ((1 << E) - 1), b & ((1 << M) - 1)
    if kind == "fnuz" and b == 0x80:
        return math.nan
    if kind == "fn" and e == (1 << E) - 1 and m == (1 << M) - 1:
        return math.nan
    if kind == "ieee" and e == (1 << E) - 1:
        return math.nan if m else (-1) ** s * math.inf
    mag = (m / 2 ** M) * 2.0 ** (1 - bias) if e == 0 else (1 + m / 2 ** M) * 2.0 ** (e - bias)
    return -mag if s else mag


def same(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(
        np.nan_to_num(a), np.nan_to_num(b)) and np.array_equal(np.signbit(a) & ~np.isnan(a),
                                                                np.signbit(b) & ~np.isnan(b))


@pytest.mark.parametrize("name", list(FORMATS) + ["float8_e8m0fnu"])
def test_all_bit_patterns_decode(name):
    d = getattr(torch, name)
    bits = torch.tensor(list(range(256)), dtype=torch.uint8)
    x = bits.view(d)
    assert x.dtype is d and x.element_size() == 1 and x.is_floating_point()
    assert same(x.float().tolist(), [ref_value(name, b) for b in range(256)])
    # the non-NaN patterns come back bit for bit (a NaN's payload is not kept)
    back = x.view(torch.uint8).tolist()
    for b in range(256):
        if not math.isnan(ref_value(name, b)):
            assert back[b] == b


def ref_round(name, v, _grids={}):
    """Round-to-nearest-even onto the format's grid by search, then its overflow rule."""
    E, M, bias, kind = FORMATS[name]
    if name not in _grids:
        _grids[name] = sorted(g for g in (abs(ref_value(name, b)) for b in range(128))
                              if math.isfinite(g))
    grid = _grids[name]
    top = grid[-1]
    over = {"fn": top, "ieee": math.inf, "fnuz": math.nan}[kind]
    if math.isnan(v):
        return math.nan
    a = abs(v)
    if math.isinf(a):
        r = over
    else:
        step = 2.0 ** (max(math.floor(math.log2(a)) if a else -100, 1 - bias) - M)
        lo = max(g for g in grid if g <= a)
        hi = min([g for g in grid if g >= a] + [top + step])   # (past the top: one more step)
        if lo == hi:
            r = lo
        elif a - lo != hi - a:
            r = lo if a - lo < hi - a else hi
        else:      # a tie: the even multiple of the step between lo and hi
            r = lo if round(lo / (hi - lo)) % 2 == 0 else hi
        if r > top:
            r = over
    if kind == "fnuz" and r == 0:
        return 0.0
    return math.copysign(r, v) if not math.isnan(r) else r


@pytest.mark.parametrize("name", list(FORMATS))
def test_cast_rounds_to_nearest_even(name):
    rng = np.random.default_rng(1)
    E, M, bias, kind = FORMATS[name]
    top = max(abs(ref_value(name, b)) for b in range(128) if math.isfinite(ref_value(name, b)))
    v = np.concatenate([rng.standard_normal(300) * top / 4,
                        rng.standard_normal(200) * 2.0 ** (1 - bias),     # subnormals
                        np.array([ref_value(name, b) for b in range(256)]) * 1.0625,  # ties
                        [0.0, -0.0, 1e6, 449.0, top, top * 1.06, top * 1.07, -1e9,
                         math.inf, -math.inf, math.nan]]).astype(np.float32)
    v = v[~np.isnan(v) | (np.arange(v.size) == v.size - 1)]
    got = torch.tensor(v.tolist()).to(getattr(torch, name)).to(torch.float32).tolist()
    assert same(got, [ref_round(name, float(x)) for x in v])


def test_hand_values():
    vals = [1e6, 449.0, -0.0, math.nan, math.inf, 0.1]
    f = lambda d: torch.tensor(vals, dtype=d).float().tolist()   # noqa: E731
    assert same(f(torch.float8_e4m3fn), [448, 448, -0.0, math.nan, 448, 0.1015625])
    assert same(f(torch.float8_e5m2), [math.inf, 448, -0.0, math.nan, math.inf, 0.09375])
    assert same(f(torch.float8_e4m3fnuz), [math.nan, math.nan, 0.0, math.nan, math.nan,
                                           0.1015625])
    assert same(f(torch.float8_e5m2fnuz), [math.nan, 448, 0.0, math.nan, math.nan, 0.09375])
    # e8m0fnu: a power of two, no sign; a mantissa >= 1/2 rounds up; 0 is 2**-127
    assert same(f(torch.float8_e8m0fnu), [2.0 ** 20, 512, 2.0 ** -127, math.nan, math.nan,
                                          0.125])
    assert same(torch.tensor([3.0, -4.0, 1.4], dtype=torch.float8_e8m0fnu).tolist(),
                [4.0, 4.0, 1.0])
    # bytes as PyTorch stores them: 448 is 0.1111.110, -0 is 0x80, e5m2 inf 0.11111.00
    assert torch.tensor([448.0, -0.0, 1.0], dtype=torch.float8_e4m3fn).view(
        torch.uint8).tolist() == [0x7E, 0x80, 0x38]
    assert torch.tensor([math.inf, -2.0], dtype=torch.float8_e5m2).view(
        torch.uint8).tolist() == [0x7C, 0xC0]


def test_casts_and_finfo():
    x = torch.tensor([0.1, 300.0, -2.0], dtype=torch.float64)
    y = x.to(torch.float8_e4m3fn)
    assert y.dtype is torch.float8_e4m3fn and y.to(torch.float64).tolist() == [0.1015625, 288.0,
                                                                                 -2.0]
    assert y.to(torch.float8_e5m2).tolist() == [0.09375, 256.0, -2.0]
    assert y.to(torch.int32).tolist() == [0, 288, -2] and y.half().dtype is torch.float16
    fi = torch.finfo(torch.float8_e4m3fn)
    assert (fi.bits, fi.max, fi.min, fi.eps, fi.tiny) == (8, 448.0, -448.0, 0.125, 2.0 ** -6)
    fi = torch.finfo(torch.float8_e5m2)
    assert (fi.max, fi.eps, fi.smallest_normal) == (57344.0, 0.25, 2.0 ** -14)
    assert torch.finfo(torch.float8_e4m3fnuz).max == 240.0
    fi = torch.finfo(torch.float8_e8m0fnu)
    assert (fi.max, fi.min, fi.eps) == (2.0 ** 127, 2.0 ** -127, 1.0)
    with pytest.raises(TypeError, match="Float8_e4m3fn"):
        y.numpy()


def test_promotion_refused():
    x = torch.tensor([1.0, 2.0], dtype=torch.float8_e4m3fn)
    msg = "Promotion for Float8 Types is not supported, attempted to promote Float8_e4m3fn and "
    with pytest.raises(RuntimeError, match=msg + "Float"):
        x + x.float()
    with pytest.raises(RuntimeError, match=msg + "Float8_e5m2"):
        x * x.to(torch.float8_e5m2)
    with pytest.raises(RuntimeError, match=msg + "Long"):
        x == torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match=msg + "Float"):
        torch.cat([x, torch.zeros(1)])
    with pytest.raises(RuntimeError, match="promote Float and Float8_e4m3fn"):
        torch.promote_types(torch.float32, torch.float8_e4m3fn)
    assert torch.result_type(x, 2.5) is torch.float8_e4m3fn


def test_ops_pytorch_has_and_refuses():
    d = torch.float8_e4m3fn
    x = torch.tensor([1.0, 2.0, -3.0], dtype=d)
    y = torch.tensor([0.5, 3.0, 208.0], dtype=d)
    assert (x * y).tolist() == [0.5, 6.0, -448.0]         # -624 saturates
    assert x.abs().tolist() == [1.0, 2.0, 3.0]
    assert (x == y).tolist() == [False, False, False]
    assert (torch.tensor([0.1], dtype=d) == 0.1).tolist() == [True]    # 0.1 as float8 too
    assert torch.where(x == 2.0, x, y).tolist() == [0.5, 2.0, 208.0]
    assert torch.cat([x, y]).dtype is d and x[[2, 0]].tolist() == [-3.0, 1.0]
    assert (x.reshape(1, 3) @ y.reshape(3, 1)).tolist() == [[-448.0]]    # -617.5
    assert (x.reshape(3, 1)[:2] @ y.reshape(1, 3)[:, :2]).tolist() == [[0.5, 3.0], [1.0, 6.0]]
    z = x.clone()
    z.copy_(torch.tensor([0.1, 1e6, -0.3]))
    assert z.tolist() == [0.1015625, 448.0, -0.3125] and x.tolist() == [1.0, 2.0, -3.0]
    z[0] = 500.0
    assert z.tolist()[0] == 448.0
    for f, kernel in [(lambda: x + y, "add_stub"), (lambda: -x, "neg_cpu"),
                      (lambda: x * 2.0, "mul_cpu_reduced_float"), (lambda: x.sum(), "sum_cpu"),
                      (lambda: x < y, "lt_cpu"), (lambda: x.exp(), "exp_vml_cpu"),
                      (lambda: x @ y, "dot"), (lambda: torch.arange(3, dtype=d), "arange_cpu")]:
        with pytest.raises(NotImplementedError, match=f'"{kernel}" not implemented for '
                                                      f"'Float8_e4m3fn'"):
            f()
    with pytest.raises(NotImplementedError, match='"add_stub"'):
        z.add_(y)
    assert z.tolist() == [448.0, 448.0, -0.3125]        # unchanged
    e = torch.tensor([1.0, 2.0], dtype=torch.float8_e8m0fnu)
    with pytest.raises(NotImplementedError, match="\"abs_cpu\" not implemented for "
                                                  "'Float8_e8m0fnu'"):
        e.abs()


def test_printing():
    assert repr(torch.tensor([1.0, 2.0, -3.0], dtype=torch.float8_e4m3fn)) == \
        "tensor([ 1.,  2., -3.], dtype=torch.float8_e4m3fn)"
    assert repr(torch.tensor([0.1, 2.0], dtype=torch.float8_e5m2)) == \
        "tensor([0.0938, 2.0000], dtype=torch.float8_e5m2)"
    assert repr(torch.tensor(2.0, dtype=torch.float8_e4m3fnuz)) == \
        "tensor(2., dtype=torch.float8_e4m3fnuz)"
    assert repr(torch.float8_e8m0fnu) == "torch.float8_e8m0fnu"
    # e8m0fnu holds 0 as 2**-127; like PyTorch, printing counts it as a zero
    assert torch.zeros(2, dtype=torch.float8_e8m0fnu).tolist() == [2.0 ** -127] * 2
    assert repr(torch.zeros(2, dtype=torch.float8_e8m0fnu)) == \
        "tensor([0., 0.], dtype=torch.float8_e8m0fnu)"
    assert repr(torch.tensor(3.0, dtype=torch.float8_e8m0fnu)) == \
        "tensor(4., dtype=torch.float8_e8m0fnu)"
    assert repr(torch.finfo(torch.float8_e4m3fn)) == (
        "finfo(resolution=1, min=-448, max=448, eps=0.125, smallest_normal=0.015625, "
        "tiny=0.015625, dtype=float8_e4m3fn)")


def test_save_load(tmp_path):
    sd = {"a": torch.tensor([0.1, 300.0, -2.0], dtype=torch.float8_e4m3fn),
          "b": torch.tensor([[1e-5, 6e4]], dtype=torch.float8_e5m2),
          "c": torch.tensor([1.0, 0.3], dtype=torch.float8_e8m0fnu)}
    torch.save(sd, tmp_path / "f8.pt")
    back = torch.load(tmp_path / "f8.pt")
    for k, v in sd.items():
        assert back[k].dtype is v.dtype
        assert back[k].view(torch.uint8).tolist() == v.view(torch.uint8).tolist()


def test_cast_gradients():
    x = torch.tensor([1.0, 2.0], dtype=torch.float8_e4m3fn, requires_grad=True)
    (x.float() * torch.tensor([0.3, 1000.0])).sum().backward()
    assert x.grad.dtype is torch.float8_e4m3fn and x.grad.tolist() == [0.3125, 448.0]
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = a.to(torch.float8_e5m2)
    assert type(b.grad_fn).__name__ == "ToCopyBackward0"
    (b.float() * 3.0).sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]


def test_compile_runs_float8_ops_eagerly():
    d = torch.float8_e4m3fn

    def f(x, y):
        return (x.to(d) * y.to(d)).float() * 2

    x, y = torch.tensor([1.1, 300.0, -3.3]), torch.tensor([2.0, 2.0, 0.1])
    # 1.125 * 2, 288 * 2 -> 448 (saturated), -3.25 * 0.1015625 -> -0.34375, each doubled
    assert torch.compile(f)(x, y).tolist() == [4.5, 896.0, -0.6875]


def test_loads_pytorch_float8_checkpoint(tmp_path):
    # the layout torch.save (2.13) writes for {"a": a float8_e4m3fn tensor of 4}: an untyped
    # storage of its bytes, rebuilt by _rebuild_tensor_v3 with the dtype
    import struct
    import zipfile

    def s(v):
        return b"X" + struct.pack("<I", len(v)) + v.encode()

    def i(v):
        return b"J" + struct.pack("<i", v)

    pkl = (b"\x80\x02}(" + s("a") + b"ctorch._utils\n_rebuild_tensor_v3\n((" + s("storage") +
           b"ctorch.storage\nUntypedStorage\n" + s("0") + s("cpu") + i(4) + b"tQ" + i(0) +
           b"(" + i(4) + b"t(" + i(1) + b"t\x89ccollections\nOrderedDict\n)R" +
           b"ctorch\nfloat8_e4m3fn\ntRu.")
    p = tmp_path / "f8.pt"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("ck/data.pkl", pkl)
        zf.writestr("ck/byteorder", "little")
        zf.writestr("ck/version", "3\n")
        zf.writestr("ck/data/0", bytes([0b0_0011_101, 0b0_1111_001, 0b1_1000_000, 0x7F]))
    a = torch.load(str(p))["a"]
    assert a.dtype is torch.float8_e4m3fn
    # 1.625 * 2**-4, 1.125 * 2**8, -2, NaN
    assert same(a.tolist(), [0.1015625, 288.0, -2.0, math.nan])
