"""torch.testing: assert_close at each dtype's default tolerance boundary (values derived by
hand, in ulps of exactly representable numbers), NaN / inf, attribute checks, nested inputs,
scalars, NumPy inputs, msg; make_tensor's ranges, layouts and errors; and an optional
cross-check that failure messages equal PyTorch 2.13's text exactly."""
import warnings

import numpy as np
import pytest

import framework as torch

assert_close = torch.testing.assert_close
make_tensor = torch.testing.make_tensor
nan, inf = float("nan"), float("inf")


def _fails(actual, expected, exc=AssertionError, **kw):
    """The message assert_close raises `exc` with."""
    with pytest.raises(exc) as info:
        assert_close(actual, expected, **kw)
    assert type(info.value) is exc
    return str(info.value)


# ---- default tolerances at the boundary -----------------------------------------------------
# Each case: expected 1.0, actual k ulps above it. The allowed error atol + rtol * |expected| is
# computed in the inputs' dtype, as torch.isclose does.

@pytest.mark.parametrize("dtype, ulp, k_pass", [
    # float16: allowed = f16(1e-5 + f16(1e-3)) = 0.00101..., ulp 2**-10 = 0.000977: 1 passes
    (torch.float16, 2.0 ** -10, 1),
    # bfloat16: allowed = bf16(1e-5 + bf16(0.016)) = 0.0159912109375, ulp 2**-7: 2 pass
    (torch.bfloat16, 2.0 ** -7, 2),
    # float32: allowed = 1e-5 + 1.3e-6 = 1.13e-5; 94 * 2**-23 = 1.1206e-5, 95 * 2**-23 = 1.1325e-5
    (torch.float32, 2.0 ** -23, 94),
    # float64: allowed = 1e-7 + 1e-7 = 2e-7; 900719925 * 2**-52 = 1.99999999948e-7 < 2e-7 <
    # 900719926 * 2**-52 = 2.00000000170e-7
    (torch.float64, 2.0 ** -52, 900719925),
])
def test_default_tolerance_boundary(dtype, ulp, k_pass):
    expected = torch.tensor([1.0], dtype=dtype)
    assert_close(torch.tensor([1.0 + k_pass * ulp], dtype=dtype), expected)
    msg = _fails(torch.tensor([1.0 + (k_pass + 1) * ulp], dtype=dtype), expected)
    assert msg.startswith("Tensor-likes are not close!\n\nMismatched elements: 1 / 1 (100.0%)\n")


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-7),
                                         (torch.float16, 1e-5), (torch.bfloat16, 1e-5)])
def test_atol_alone_at_zero_is_inclusive(dtype, atol):
    # expected 0: allowed is exactly atol rounded to the dtype; the next value up fails. In
    # float16 and bfloat16 atol rounds up, to 168 * 2**-24 = 1.0013580322265625e-05, so that
    # value passes although it exceeds 1e-5
    a = np.array([atol], dtype=dtype.np)
    assert_close(torch.tensor(a), torch.zeros(1, dtype=dtype))
    above = np.nextafter(a, np.array(1, dtype=dtype.np))
    _fails(torch.tensor(above), torch.zeros(1, dtype=dtype))


@pytest.mark.parametrize("dtype, atol", [(torch.complex64, 1e-5), (torch.complex128, 1e-7)])
def test_complex_uses_the_modulus_of_the_difference(dtype, atol):
    # expected 0: |diff| of 0.6a + 0.8aj is a (a 3-4-5 triangle); each part alone is within atol
    expected = torch.zeros(1, dtype=dtype)
    assert_close(torch.tensor([complex(0.6 * atol, 0.8 * atol) * 0.99], dtype=dtype), expected)
    _fails(torch.tensor([complex(0.6 * atol, 0.8 * atol) * 1.01], dtype=dtype), expected)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int32, torch.int64, torch.bool])
def test_integers_and_bool_compare_exactly(dtype):
    a = torch.tensor([1, 0, 1], dtype=dtype)
    assert_close(a, a.clone())
    msg = _fails(a, torch.tensor([1, 1, 1], dtype=dtype))
    assert msg.startswith("Tensor-likes are not equal!\n\nMismatched elements: 1 / 3 (33.3%)\n")
    assert "allowed" not in msg               # no tolerances to report


def test_user_tolerances_replace_the_defaults():
    a, e = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5])
    assert_close(a, e, rtol=0.2, atol=0.0)          # 0.5 <= 0.2 * 2.5
    assert _fails(a, e, rtol=0.1, atol=0.0) == (
        "Tensor-likes are not close!\n\nMismatched elements: 1 / 2 (50.0%)\n"
        "Greatest absolute difference: 0.5 at index (1,) (up to 0.0 allowed)\n"
        # 0.5 / 2.5 in float32
        "Greatest relative difference: 0.20000000298023224 at index (1,) (up to 0.1 allowed)")
    # zero tolerances: an equality check, "not equal" and no allowances
    assert _fails(a, e, rtol=0, atol=0).startswith("Tensor-likes are not equal!")


@pytest.mark.parametrize("kw, missing", [({"rtol": 1e-3}, "atol"), ({"atol": 1e-3}, "rtol")])
def test_only_one_of_rtol_atol_is_a_value_error(kw, missing):
    want = f"Both 'rtol' and 'atol' must be either specified or omitted, but got no {missing}."
    assert _fails(torch.zeros(2), torch.zeros(2), ValueError, **kw) == want
    # (raised while pairing the inputs: msg does not replace it, as in PyTorch)
    assert _fails(torch.zeros(2), torch.zeros(2), ValueError, msg="custom", **kw) == want
    assert _fails(1.0, 1.0, ValueError, **kw) == want


# ---- NaN and inf ----------------------------------------------------------------------------

def test_nan_mismatches_unless_equal_nan():
    a = torch.tensor([1.0, nan])
    assert _fails(a, a.clone()) == (
        "Tensor-likes are not close!\n\nMismatched elements: 1 / 2 (50.0%)\n"
        "Greatest absolute difference: nan at index (1,) (up to 1e-05 allowed)\n"
        "Greatest relative difference: nan at index (1,) (up to 1.3e-06 allowed)")
    assert_close(a, a.clone(), equal_nan=True)
    _fails(torch.tensor([1.0, 2.0]), a, equal_nan=True)      # NaN against a number: never
    c = torch.tensor([complex(nan, 0.0)])
    _fails(c, c.clone())
    assert_close(c, c.clone(), equal_nan=True)
    assert _fails(torch.tensor(nan), torch.tensor(nan)) == (
        "Scalars are not close!\n\nExpected nan but got nan.\n"
        "Absolute difference: nan (up to 1e-05 allowed)\n"
        "Relative difference: nan (up to 1.3e-06 allowed)")


def test_inf_equals_only_itself():
    assert_close(torch.tensor([inf, -inf, 1.0]), torch.tensor([inf, -inf, 1.0]))
    msg = _fails(torch.tensor([inf, 1.0]), torch.tensor([-inf, 1.0]))
    assert "Greatest absolute difference: inf at index (0,)" in msg
    assert "Greatest relative difference: nan at index (0,)" in msg    # inf / inf
    _fails(torch.tensor([inf]), torch.tensor([3e38]))


# ---- messages and attribute checks ----------------------------------------------------------

def test_mismatch_message_shape():
    assert _fails(torch.tensor([1.0, 2.5, 3.0]), torch.tensor([1.0, 2.0, 3.0])) == (
        "Tensor-likes are not close!\n\nMismatched elements: 1 / 3 (33.3%)\n"
        "Greatest absolute difference: 0.5 at index (1,) (up to 1e-05 allowed)\n"
        "Greatest relative difference: 0.25 at index (1,) (up to 1.3e-06 allowed)")
    # 2-d index; integers: int64 absolute difference, float32 relative (3 / 5)
    assert "at index (1, 1)" in _fails(torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
                                       torch.tensor([[1.0, 2.0], [3.0, 5.0]]))
    assert _fails(torch.tensor([1, 2, 3]), torch.tensor([1, 5, 3])) == (
        "Tensor-likes are not equal!\n\nMismatched elements: 1 / 3 (33.3%)\n"
        "Greatest absolute difference: 3 at index (1,)\n"
        f"Greatest relative difference: {float(np.float32(0.6))} at index (1,)")
    # expected 0: relative difference inf; ties report the first index
    msg = _fails(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0]))
    assert "Mismatched elements: 2 / 2 (100.0%)" in msg and "inf at index (0,)" in msg


def test_zero_dim_tensors_give_the_scalar_message():
    assert _fails(torch.tensor(3), torch.tensor(5)) == (
        "Scalars are not equal!\n\nExpected 5 but got 3.\nAbsolute difference: 2\n"
        "Relative difference: 0.4")
    # relative to expected: 0.5 / 1.0
    assert _fails(torch.tensor(1.5), torch.tensor(1.0)) == (
        "Scalars are not close!\n\nExpected 1.0 but got 1.5.\n"
        "Absolute difference: 0.5 (up to 1e-05 allowed)\n"
        "Relative difference: 0.5 (up to 1.3e-06 allowed)")


def test_shape_dtype_stride_device_mismatch():
    assert _fails(torch.zeros(2), torch.zeros(3)) == (
        "The values for attribute 'shape' do not match: torch.Size([2]) != torch.Size([3]).")
    assert _fails(torch.zeros(2), torch.zeros(2, dtype=torch.float64)) == (
        "The values for attribute 'dtype' do not match: torch.float32 != torch.float64.")
    a, b = torch.zeros(2, 3), torch.zeros(3, 2).t()
    assert_close(a, b)                                  # strides are not checked by default
    assert _fails(a, b, check_stride=True) == (
        "The values for attribute 'stride()' do not match: (3, 1) != (1, 2).")
    d = torch.tensor([1.0, 2.0], device="interpret")
    assert _fails(d, torch.tensor([1.0, 2.0], device="cpu")) == (
        "The values for attribute 'device' do not match: interpret != cpu.")
    assert_close(d, torch.tensor([1.0, 2.0], device="cpu"), check_device=False)


def test_check_dtype_false_promotes_and_uses_the_looser_tolerance():
    f32 = torch.tensor([1.0, 2.0])
    # 5e-6 off: outside float64's 2e-7 but inside float32's 1e-5 + 1.3e-6 * 2
    f64 = torch.tensor([1.0, 2.0 + 5e-6], dtype=torch.float64)
    _fails(f32, f64)
    assert_close(f32, f64, check_dtype=False)
    assert_close(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]), check_dtype=False)
    # bool and int promote to int64: an exact comparison, a difference of 2 - 0
    msg = _fails(torch.tensor([True, False]), torch.tensor([1, 2]), check_dtype=False)
    assert msg.startswith("Tensor-likes are not equal!") and "difference: 2 at index (1,)" in msg


def test_msg_string_and_callable():
    a, e = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0])
    assert _fails(a, e, msg="Argh, the tensors are not close!") == (
        "Argh, the tensors are not close!")
    assert _fails(a, e, msg="") == ""
    got = _fails([a], [e], msg=lambda m: f"Header\n\n{m}\n\nFooter")
    assert got.startswith("Header\n\nTensor-likes are not close!\n\nMismatched elements: 1 / 2")
    assert got.endswith("\n\nThe failure occurred for item [0]\n\nFooter")


# ---- nested inputs, scalars, NumPy ----------------------------------------------------------

def test_sequences_and_mappings():
    # tuple against list is fine: both are sequences
    assert_close([torch.tensor(1.0), (torch.tensor([2.0]), 3)],
                 (torch.tensor(1.0), [torch.tensor([2.0]), 3]))
    assert_close({"a": torch.ones(2), "b": [1, 2]}, {"b": [1, 2], "a": torch.ones(2)})
    assert _fails([1, 2], [1, 2, 3]) == "The length of the sequences mismatch: 2 != 3"
    assert _fails({"a": 1, "b": 2}, {"a": 1, "c": 2}) == (
        "The keys of the mappings do not match:\nMissing keys in the actual mapping: ['c']\n"
        "Additional keys in the actual mapping: ['b']")
    msg = _fails({"a": [torch.tensor(1.0), torch.tensor([1.0, 2.0])]},
                 {"a": [torch.tensor(1.0), torch.tensor([1.0, 3.0])]})
    assert msg.endswith("\n\nThe failure occurred for item ['a'][1]")
    # the first failing item (in sorted key order) is reported
    assert _fails({2: 0, 1: 1}, {2: 1, 1: 0}).endswith("item [1]")


def test_python_scalars():
    assert_close(1.0, 1.0 + 1e-8)                  # float: float64's tolerances
    assert _fails(1.0, 1.5) == (
        "Scalars are not close!\n\nExpected 1.5 but got 1.0.\n"
        "Absolute difference: 0.5 (up to 1e-07 allowed)\n"
        "Relative difference: 0.3333333333333333 (up to 1e-07 allowed)")
    assert _fails(1, 2).startswith("Scalars are not equal!\n\nExpected 2 but got 1.")
    assert _fails(1, 1.0) == "The (d)types do not match: <class 'int'> != <class 'float'>."
    assert_close(1, 1.0, check_dtype=False)
    assert "Relative difference: inf" in _fails(1.0, 0.0)
    assert_close(nan, nan, equal_nan=True)
    _fails(nan, nan)
    assert _fails(True, False) == "Booleans mismatch: True is not False"
    assert_close(None, None)
    assert _fails(None, 1) == "None mismatch: None is not 1"
    assert_close(1 + 2j, 1 + 2j)
    assert _fails(torch.Size([1, 2]), torch.Size([1, 3])).endswith("item [1]")


def test_numpy_inputs():
    assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    msg = _fails(np.array([1.0, 2.0]), np.array([1.0, 2.5]))     # float64 tolerances
    assert msg.endswith("Greatest absolute difference: 0.5 at index (1,) (up to 1e-07 allowed)\n"
                        "Greatest relative difference: 0.2 at index (1,) (up to 1e-07 allowed)")
    assert _fails(np.zeros(2, np.float32), np.zeros(2)) == (
        "The values for attribute 'dtype' do not match: torch.float32 != torch.float64.")
    assert_close(np.float32(1.0), np.float32(1.0000001))       # NumPy scalars: Python numbers
    assert_close(np.bool_(True), True)


def test_unrelated_types_are_a_type_error():
    msg = _fails(torch.tensor([1.0]), [1.0], TypeError)
    assert msg == ("No comparison pair was able to handle inputs of type "
                   f"{torch.Tensor} and <class 'list'>.")
    _fails(torch.tensor(1.0), 1.0, TypeError)
    _fails(torch.tensor([1.0]), np.array([1.0]), TypeError)
    _fails("a", "a", TypeError)
    _fails({"a": 1}, [1], TypeError)


def test_deprecated_assert_allclose():
    with pytest.warns(FutureWarning, match="assert_allclose"):
        # equal_nan and check_dtype=False by default; a list takes the tensor's dtype
        torch.testing.assert_allclose(torch.tensor([1.0, nan]), [1.0, nan])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(AssertionError, match="Tensor-likes are not close"):
            torch.testing.assert_allclose(torch.tensor([1.0]), torch.tensor([1.01]))


# ---- make_tensor ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, lo, hi", [
    (torch.bool, 0, 1), (torch.uint8, 0, 9), (torch.int8, -9, 9), (torch.int16, -9, 9),
    (torch.int32, -9, 9), (torch.int64, -9, 9),
])
def test_make_tensor_integer_default_ranges(dtype, lo, hi):
    t = make_tensor(4000, dtype=dtype, device="cpu")
    assert t.dtype is dtype and t.shape == torch.Size([4000]) and t.device == torch.device("cpu")
    values = set(t.numpy().astype(np.int64).tolist())
    assert values == set(range(lo, hi + 1))          # every value of [low, high) is drawn


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                   torch.complex64, torch.complex128])
def test_make_tensor_float_default_range(dtype):
    a = make_tensor(4000, dtype=dtype, device="cpu").numpy().astype(np.complex128)
    for part in (a.real, a.imag) if dtype.is_complex else (a.real,):
        assert part.min() >= -9 and part.max() < 9
        assert part.min() < -8 and part.max() > 8 and np.unique(part).size > 100


def test_make_tensor_bounds_and_errors():
    t = make_tensor(2000, dtype=torch.float32, device="cpu", low=2.0, high=3.0).numpy()
    assert t.min() >= 2.0 and t.max() < 3.0
    # integers: bounds ceiled, then clamped to the dtype (uint8 from -5 gives [0, 3))
    u = make_tensor(2000, dtype=torch.uint8, device="cpu", low=-5, high=2.5)
    assert set(u.numpy().tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match=r"`low` must be less than `high`, but got 3 >= 1"):
        make_tensor(2, dtype=torch.float32, device="cpu", low=3, high=1)
    with pytest.raises(ValueError, match="cannot be NaN"):
        make_tensor(2, dtype=torch.float32, device="cpu", low=nan)
    with pytest.raises(ValueError, match=r"is \[300, 400\), but torch.uint8 only supports "
                                         r"\[0, 256\)"):
        make_tensor(2, dtype=torch.uint8, device="cpu", low=300, high=400)
    with pytest.raises(ValueError, match="not supported for boolean and integral dtypes"):
        make_tensor(2, dtype=torch.int64, device="cpu", requires_grad=True)
    with pytest.raises(ValueError, match="mutually exclusive"):
        make_tensor(1, 2, 2, 2, dtype=torch.float32, device="cpu", noncontiguous=True,
                    memory_format=torch.channels_last)
    with pytest.warns(FutureWarning, match="low==high"):
        t = make_tensor(3, dtype=torch.float32, device="cpu", low=2, high=2)
    assert t.tolist() == [2.0, 2.0, 2.0]


def test_make_tensor_shape_forms_and_seed():
    for shape in ((2, 3), ([2, 3],), (torch.Size([2, 3]),)):
        assert make_tensor(*shape, dtype=torch.float32, device="cpu").shape == torch.Size([2, 3])
    assert make_tensor((), dtype=torch.float32, device="cpu").shape == torch.Size([])
    torch.manual_seed(7)
    a = make_tensor(3, 4, dtype=torch.float32, device="cpu")
    torch.manual_seed(7)
    b = make_tensor(3, 4, dtype=torch.float32, device="cpu")
    assert np.array_equal(a.numpy(), b.numpy())
    c = make_tensor(3, 4, dtype=torch.float32, device="cpu")     # the generator moved on
    assert not np.array_equal(a.numpy(), c.numpy())


def test_make_tensor_noncontiguous_and_memory_format():
    t = make_tensor(3, 4, dtype=torch.float32, device="cpu", noncontiguous=True)
    assert t.shape == torch.Size([3, 4]) and not t.is_contiguous() and t.stride() == (8, 2)
    c = t.contiguous()
    assert c.is_contiguous() and np.array_equal(c.numpy(), t.numpy())
    assert np.unique(t.numpy()).size == 12               # drawn values, not a repeated fill
    # fewer than two elements: nothing to make non-contiguous
    assert make_tensor(1, dtype=torch.float32, device="cpu", noncontiguous=True).is_contiguous()
    m = make_tensor(2, 3, 4, 5, dtype=torch.float32, device="cpu",
                    memory_format=torch.channels_last)
    assert m.is_contiguous(memory_format=torch.channels_last) and not m.is_contiguous()


def test_make_tensor_exclude_zero():
    i = make_tensor(2000, dtype=torch.int8, device="cpu", low=-1, high=2, exclude_zero=True)
    assert set(i.numpy().tolist()) == {-1, 1}                   # zeros became 1
    b = make_tensor(50, dtype=torch.bool, device="cpu", high=1, exclude_zero=True)
    assert b.numpy().all()
    # [0, 1e-45) in float32 rounds to 0 or the least subnormal; zeros become finfo.tiny
    f = make_tensor(200, dtype=torch.float32, device="cpu", low=0, high=1e-45,
                    exclude_zero=True).numpy()
    assert (f != 0).all() and np.float32(torch.finfo(torch.float32).tiny) in f
    n = make_tensor(4, 6, dtype=torch.float64, device="cpu", noncontiguous=True, low=0,
                    high=1e-320, exclude_zero=True)
    assert (n.numpy() != 0).all() and not n.is_contiguous()


def test_make_tensor_requires_grad():
    t = make_tensor(3, dtype=torch.float32, device="cpu", requires_grad=True)
    assert t.requires_grad and t.is_leaf
    (t * 2).sum().backward()
    assert np.array_equal(t.grad.numpy(), np.full(3, 2.0, np.float32))
    n = make_tensor(2, 3, dtype=torch.complex64, device="cpu", requires_grad=True,
                    noncontiguous=True)
    assert n.requires_grad and n.is_leaf and not n.is_contiguous()
    assert not make_tensor(3, dtype=torch.float32, device="cpu").requires_grad


# ---- cross-check against PyTorch ------------------------------------------------------------

def _failing_cases(T):
    """(actual, expected, kwargs) that fail, built with module T (torch or framework)."""
    t = T.tensor
    return [
        (t([1.0, 2.5, 3.0]), t([1.0, 2.0, 3.0]), {}),
        (t([[1, 2], [3, 4]]), t([[1, 2], [3, 9]]), {}),
        (t(1.1), t(1.0), {}),
        (t([1.0, 2.0], dtype=T.float16), t([1.0, 2.01], dtype=T.float16), {}),
        (t([1.0, 2.0], dtype=T.bfloat16), t([1.0, 2.1], dtype=T.bfloat16), {}),
        (t([1 + 1j, 2 + 0j]), t([1 + 1j, 2 + 1j]), {}),
        (t([1.0, 2.0]), t([1.0, 2.1], dtype=T.float64), {"check_dtype": False}),
        (t([1.0, nan, inf]), t([1.0, nan, -inf]), {}),
        ({"x": [t([1.0]), T.arange(1000.0)]}, {"x": [t([1.0]), T.arange(1000.0) * 1.001]},
         {"msg": lambda m: f"[{m}]"}),
        (t([True, False]), t([1, 2]), {"check_dtype": False}),
        (T.zeros(2), T.zeros(2, dtype=T.int32), {}),
        ([1.0, 2], [1.0, 3], {}),
    ]


def _message(T, actual, expected, kw):
    with pytest.raises(Exception) as info:
        T.testing.assert_close(actual, expected, **kw)
    return f"{type(info.value).__name__}: {info.value}"


def test_failure_messages_match_pytorch():
    torch_ref = pytest.importorskip("torch", reason="PyTorch reference not installed")
    for ours, ref in zip(_failing_cases(torch), _failing_cases(torch_ref)):
        assert _message(torch, *ours) == _message(torch_ref, *ref)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64", "complex64",
                                  "int8", "int64"])
def test_boundary_fuzz_matches_pytorch(name):
    """Random values a few ulps either side of the allowed error: the same mismatches and the
    same message as PyTorch's (complex128 is left out: its abs may differ by an ulp)."""
    torch_ref = pytest.importorskip("torch", reason="PyTorch reference not installed")
    rng = np.random.default_rng(0)
    for trial in range(20):
        e = rng.standard_normal(64) * 10.0 ** rng.uniform(-6, 3, 64)
        a = e * (1 + rng.choice([-1, 1], 64) * 10.0 ** rng.uniform(-8, -1, 64)) \
            + rng.choice([-1, 1], 64) * 10.0 ** rng.uniform(-7, -4, 64)
        if name.startswith("complex"):
            a, e = a + 1j * e, e + 1j * a
        if name.startswith("int"):
            e = rng.integers(-100, 100, 64)
            a = e + (rng.random(64) < 0.1)
        kw = {} if trial % 2 else {"rtol": float(rng.uniform(0, 1e-2)),
                                   "atol": float(rng.uniform(0, 1e-3))}
        ref = [torch_ref.tensor(x).to(getattr(torch_ref, name)) for x in (a, e)]
        # Kiln gets torch's rounded values, held exactly in the wider dtype
        wide = torch_ref.complex128 if name.startswith("complex") else torch_ref.float64
        ours = [torch.tensor(r.to(wide).numpy()).to(getattr(torch, name)) for r in ref]
        results = []
        for T, (x, y) in ((torch, ours), (torch_ref, ref)):
            try:
                T.testing.assert_close(x, y, **kw)
                results.append("PASS")
            except AssertionError as err:
                results.append(str(err))
        assert results[0] == results[1], (name, trial, kw)
