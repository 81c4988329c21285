"""torch.nn.functional.grouped_mm / torch._grouped_mm (the four operand layouts, offsets,
dtypes, the grouped-GEMM layout and argument checks, gradients). References: per-group NumPy
float64 products and the error texts PyTorch 2.13's cpu build raises."""
import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F

rng = np.random.default_rng(7)


def T(a, dtype=torch.float32, grad=False):
    return torch.tensor(np.asarray(a, np.float32), dtype=dtype, requires_grad=grad)


def I32(v):
    return torch.tensor(v, dtype=torch.int32)


def test_grouped_mm_2d_3d_groups_rows_and_grad():
    a, b = rng.standard_normal((8, 16)), rng.standard_normal((3, 16, 8))
    g = rng.standard_normal((8, 8))
    ta, tb = T(a, grad=True), T(b, grad=True)
    r = F.grouped_mm(ta, tb, offs=I32([2, 2, 7]))      # an empty group; row 7 in no group
    assert r.shape == (8, 8) and r.dtype == torch.float32
    assert r.grad_fn.name() == "GroupedMmBackward0"
    ref = np.zeros((8, 8))
    ref[:2], ref[2:7] = a[:2] @ b[0], a[2:7] @ b[2]
    np.testing.assert_allclose(r.detach().numpy()[:7], ref[:7], rtol=1e-5, atol=1e-5)
    r.backward(T(g))
    ga, gb = np.zeros_like(a), np.zeros_like(b)
    ga[:2], ga[2:7] = g[:2] @ b[0].T, g[2:7] @ b[2].T
    gb[0], gb[2] = a[:2].T @ g[:2], a[2:7].T @ g[2:7]
    np.testing.assert_allclose(ta.grad.numpy()[:7], ga[:7], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tb.grad.numpy(), gb, rtol=1e-5, atol=1e-5)


def test_grouped_mm_3d_2d_groups_columns():
    a, b = rng.standard_normal((2, 4, 8)), rng.standard_normal((8, 12))
    ta, tb = T(a, grad=True), T(b, grad=True)
    r = torch._grouped_mm(ta, tb, I32([4, 12]))
    assert r.shape == (4, 12)
    ref = np.concatenate([a[0] @ b[:, :4], a[1] @ b[:, 4:]], 1)
    np.testing.assert_allclose(r.detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    g = rng.standard_normal((4, 12))
    r.backward(T(g))
    np.testing.assert_allclose(ta.grad.numpy()[1], g[:, 4:] @ b[:, 4:].T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tb.grad.numpy()[:, :4], a[0].T @ g[:, :4], rtol=1e-5, atol=1e-5)


def test_grouped_mm_2d_2d_splits_k_and_3d_3d_is_batched():
    a, b = rng.standard_normal((4, 8)), rng.standard_normal((8, 4))
    r = F.grouped_mm(T(a), T(b), offs=I32([4, 4, 8]))
    assert r.shape == (3, 4, 4)
    ref = np.stack([a[:, :4] @ b[:4], np.zeros((4, 4)), a[:, 4:] @ b[4:]])
    np.testing.assert_allclose(r.numpy(), ref, rtol=1e-5, atol=1e-5)
    a3, b3 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 8))
    r = F.grouped_mm(T(a3), T(b3), out_dtype=torch.float32)
    np.testing.assert_allclose(r.numpy(), a3 @ b3, rtol=1e-5, atol=1e-5)


def test_grouped_mm_half_dtypes_round_once():
    a, b = rng.standard_normal((4, 8)), rng.standard_normal((2, 8, 8))
    for d in (torch.bfloat16, torch.float16):
        ta, tb = T(a, d), T(b, d)
        r = F.grouped_mm(ta, tb, offs=I32([1, 4]))
        assert r.dtype == d
        a32, b32 = ta.float().numpy().astype(np.float64), tb.float().numpy().astype(np.float64)
        ref = np.concatenate([a32[:1] @ b32[0], a32[1:] @ b32[1]])
        np.testing.assert_allclose(r.float().numpy(), ref, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("a,b,offs,kw,msg", [
    ((8, 16), (2, 16, 8), None, {}, "Have to provide offsets if there is a 2d matrix"),
    ((2, 8, 16), (2, 16, 8), [4, 8], {}, "Have to provide offsets if there is a 2d matrix"),
    ((8, 3), (2, 3, 8), [4, 8], {}, "strides should be multiple of 16 bytes"),
    ((8, 16), (2, 16, 3), [4, 8], {}, "strides should be multiple of 16 bytes"),
    ((8, 16), (2, 8, 8), [4, 8], {}, "contraction dimension of mat_a and mat_b must match"),
    ((8,), (2, 16, 8), [4, 8], {}, "mat_a has to be 2 or 3d"),
    ((8, 16), (2, 16, 8), [2, 4, 8], {}, "matrix batch sizes have to match"),
    ((2, 8, 16), (3, 16, 8), None, {}, "batched dimension has to match"),
    ((8, 16), (2, 16, 8), [4, 8], {"bias": True}, "Bias not supported yet"),
    ((8, 16), (2, 16, 8), [4, 8], {"out_dtype": torch.bfloat16},
     "Grouped gemm output dtype must match `mat_a` dtype"),
])
def test_grouped_mm_rejects_bad_arguments(a, b, offs, kw, msg):
    if kw.get("bias"):
        kw = {"bias": torch.zeros(8)}
    o = None if offs is None else I32(offs)
    with pytest.raises(RuntimeError, match=msg):
        F.grouped_mm(torch.zeros(a), torch.zeros(b), offs=o, **kw)


def test_grouped_mm_rejects_dtypes_offsets_and_layouts():
    a, b, o = torch.zeros(8, 16), torch.zeros(2, 16, 8), I32([4, 8])
    with pytest.raises(RuntimeError, match="Expected mat_a to be Float32, BFloat16 or Float16 "
                                           "matrix, got Double"):
        F.grouped_mm(a.double(), b, offs=o)
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype, but got: "
                                           "float != c10::BFloat16"):
        F.grouped_mm(a, b.bfloat16(), offs=o)
    with pytest.raises(RuntimeError, match="Offsets have to be int32"):
        F.grouped_mm(a, b, offs=o.long())
    with pytest.raises(RuntimeError, match="offs has to be 1D"):
        F.grouped_mm(a, b, offs=o.view(2, 1))
    with pytest.raises(RuntimeError, match=r"Invalid strides/sizes, got \[32, 2\] for strides "
                                           r"and \[8, 16\] for sizes"):
        F.grouped_mm(torch.zeros(8, 32)[:, ::2], b, offs=o)
    with pytest.raises(RuntimeError, match="strides should be multiple of 16 bytes"):   # bf16: 8
        F.grouped_mm(torch.zeros(8, 4).bfloat16(), torch.zeros(2, 4, 8).bfloat16(), offs=o)
    # a transposed (column-major) operand is a valid layout
    bt = T(rng.standard_normal((2, 8, 16))).transpose(1, 2)
    r = F.grouped_mm(T(np.ones((8, 16))), bt, offs=o)
    np.testing.assert_allclose(r.numpy()[:4], np.ones((4, 16)) @ bt.numpy()[0], rtol=1e-5)


# ---- scaled_mm / torch._scaled_mm: the cpu recipes (TensorWise, RowWise) --------------------

ST = F.ScalingType


def _f8(shape):
    # values e4m3fn holds exactly (halves in [-4, 4]): the reference sees the same operands
    return rng.integers(-8, 9, shape) / 2.0


def test_scaled_mm_tensorwise_and_rowwise_match_numpy():
    a, bt = _f8((8, 32)), _f8((16, 32))
    e4 = torch.float8_e4m3fn
    ta, tb = T(a).to(e4), T(bt).to(e4).t()
    r = F.scaled_mm(ta, tb, T(0.37), ST.TensorWise, T(1.5), ST.TensorWise,
                    output_dtype=torch.float32)
    assert r.dtype == torch.float32 and r.shape == (8, 16)
    np.testing.assert_allclose(r.numpy(), (a * 0.37) @ (bt.T * 1.5), rtol=1e-5, atol=1e-4)
    sa, sb = rng.uniform(0.5, 2, (8, 1)), rng.uniform(0.5, 2, (1, 16))
    bias = rng.standard_normal(16)
    r = torch._scaled_mm(ta, tb, T(sa), T(sb), bias=T(bias), out_dtype=torch.float32)
    np.testing.assert_allclose(r.numpy(), (a * sa) @ (bt.T * sb) + bias, rtol=1e-5, atol=1e-4)
    # the default outputs: bfloat16 for scaled_mm, the operands' float8 for _scaled_mm
    assert F.scaled_mm(ta, tb, T(1), ST.TensorWise, T(1), ST.TensorWise).dtype == torch.bfloat16
    r8 = torch._scaled_mm(ta, tb, T(1), T(1))
    assert r8.dtype == e4
    want = T(a @ bt.T).to(e4).float().numpy()      # one rounding of the float32 product
    np.testing.assert_array_equal(r8.float().numpy(), want)
    with pytest.raises(ValueError, match="mat_a and mat_b shapes cannot be multiplied "
                                         r"\(8x32 and 8x32\)"):
        F.scaled_mm(ta, ta, T(1), ST.TensorWise, T(1), ST.TensorWise)


def test_scaled_mm_rejects_other_recipes_and_operands():
    e4 = torch.float8_e4m3fn
    ta, tb = T(_f8((8, 32))).to(e4), T(_f8((16, 32))).to(e4).t()
    with pytest.raises(ValueError, match=r"Invalid scaling configuration\.\n- For TensorWise "
                                         r"(.|\n)*scale_a should be \(8, 1\) and scale_b should "
                                         r"be \(1, 16\)(.|\n)*Got mat_a.dtype\(\)=Float, "):
        F.scaled_mm(ta.float(), tb.float(), T(1), ST.TensorWise, T(1), ST.TensorWise)
    with pytest.raises(ValueError, match="Invalid scaling configuration"):
        F.scaled_mm(ta, tb, torch.ones(8, 1), ST.BlockWise1x32, torch.ones(1, 16),
                    ST.BlockWise1x32)
    with pytest.raises(ValueError, match="scale_a must have 1 Float element"):
        F.scaled_mm(ta, tb, torch.ones(8, 1), ST.TensorWise, torch.ones(1, 16), ST.TensorWise)
    with pytest.raises(ValueError, match=r"expected scale_a.stride\(1\) to be 1, but got 8"):
        torch._scaled_mm(ta, tb, torch.ones(1, 8).t(), torch.ones(1, 16))
    with pytest.raises(RuntimeError, match="Bias must be size 16 but got 5"):
        torch._scaled_mm(ta, tb, T(1), T(1), bias=torch.ones(5), out_dtype=torch.float32)
    with pytest.raises(RuntimeError, match="mat1 must be a matrix"):
        torch._scaled_mm(ta[None], tb, T(1), T(1))
    assert str(ST.RowWise) == "_ScalingType.RowWise" and int(ST.BlockWise128x128) == 5
    assert int(F.SwizzleType.SWIZZLE_32_4_4) == 1


def test_scaled_grouped_mm_has_no_cpu_kernel():
    e4 = torch.float8_e4m3fn
    a, b = torch.ones(16, 32).to(e4), torch.ones(2, 32, 16).to(e4)
    with pytest.raises(NotImplementedError, match="Could not run 'aten::_scaled_grouped_mm_v2' "
                                                  "with arguments from the 'CPU' backend"):
        F.scaled_grouped_mm(a, b, torch.ones(16), ST.RowWise, torch.ones(2, 16), ST.RowWise,
                            offs=I32([8, 16]))
    with pytest.raises(NotImplementedError, match="Could not run 'aten::_scaled_grouped_mm' "):
        torch._scaled_grouped_mm(a, b, torch.ones(16), torch.ones(2, 16), offs=I32([8, 16]))
    with pytest.raises(AttributeError, match="'int' object has no attribute 'value'"):
        F.scaled_grouped_mm(a, b, torch.ones(16), 1, torch.ones(2, 16), 1)
