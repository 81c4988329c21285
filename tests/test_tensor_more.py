"""The remaining Tensor methods and torch functions: storage ops (resize_, set_, as_strided_),
random fills (cauchy_, geometric_, log_normal_ with torch's seeded numbers), legacy linalg forms,
randomized low-rank SVD/PCA, native_* ops, DLPack, deterministic-mode getters, CrossMapLRN2d and
SyncBatchNorm (one process, and 2 MPI ranks against one process on the whole batch). Expected
values are NumPy references or numbers printed by PyTorch 2.13."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.autograd import gradcheck

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def f64(*shape, seed=0):
    return torch.tensor(np.random.RandomState(seed).randn(*shape), requires_grad=True)


# ---- storage-level ops -------------------------------------------------------------------------

def test_resize_keeps_storage_and_grows_it():
    a = torch.arange(6.)
    a.resize_(2, 2)
    assert a.tolist() == [[0., 1.], [2., 3.]] and a.stride() == (2, 1)
    a.resize_(3, 3)         # the storage kept 6 values: they come back, the rest is new memory
    assert a.shape == (3, 3) and a.flatten()[:6].tolist() == [0., 1., 2., 3., 4., 5.]
    b = torch.arange(6.)[::2]           # non-contiguous: contiguous strides at its offset
    b.resize_(2)
    assert b.tolist() == [0., 1.] and b.stride() == (1,)
    v = torch.arange(6.)[1:]
    v.resize_(7)                        # grows the storage past the end; offset stays 1
    assert v.storage_offset() == 1 and v[:5].tolist() == [1., 2., 3., 4., 5.]
    c = torch.arange(4.)
    assert c.resize_as_(torch.ones(2, 1)).tolist() == [[0.], [1.]]


def test_resize_memory_format_and_same_sizes():
    # the same sizes without a format keep the strides (channels_last or transposed, as
    # PyTorch's resize_ does); a channels-last format restrides the same storage elements
    cl = torch.arange(24.).reshape(2, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    cl.resize_(2, 3, 2, 2)
    assert cl.stride() == (12, 1, 6, 3)
    t = torch.arange(24.).reshape(4, 6).t()
    t.resize_(6, 4)
    assert t.stride() == (1, 6) and t[0].tolist() == [0., 6., 12., 18.]
    cl.resize_(2, 3, 2, 2, memory_format=torch.contiguous_format)
    assert cl.stride() == (12, 4, 2, 1)
    a = torch.arange(24.)
    a.resize_(2, 3, 2, 2, memory_format=torch.channels_last)
    # element (n, c, h, w) is storage element 12n + c + 6h + 3w
    n, c, h, w = np.meshgrid(*[np.arange(k) for k in (2, 3, 2, 2)], indexing="ij")
    assert a.stride() == (12, 1, 6, 3)
    np.testing.assert_array_equal(a.numpy(), 12 * n + c + 6 * h + 3 * w)
    b = torch.arange(6.)
    b.resize_(2, 3, 1, 1, memory_format=torch.channels_last)
    assert b.stride() == (3, 1, 3, 3)
    d = torch.arange(24.)
    d.resize_(1, 2, 3, 4, 1, memory_format=torch.channels_last_3d)
    assert d.stride() == (24, 1, 8, 2, 2)
    e = torch.arange(24.)
    with pytest.raises(RuntimeError, match="required rank 4 tensor to use channels_last format"):
        e.resize_(2, 12, memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="Unsupported memory formatPreserve"):
        e.resize_(2, 12, memory_format=torch.preserve_format)
    assert e.shape == (24,) and e.tolist() == list(range(24))


def test_resize_errors_leave_tensor_unchanged():
    g = torch.arange(6., requires_grad=True)
    with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
        g.resize_(2)
    a = torch.arange(4.)
    with pytest.raises(RuntimeError):
        a.resize_(-1)
    assert a.tolist() == [0., 1., 2., 3.]


def test_set_shares_storage():
    a = torch.arange(6.)
    b = torch.zeros(2)
    b.set_(a)
    assert b.tolist() == a.tolist() and b.data_ptr() == a.data_ptr()
    b[0] = -1.
    assert a[0].item() == -1.
    s = torch.arange(6.)[2:]
    c = torch.zeros(2).set_(s)
    assert c.storage_offset() == 2
    d = torch.zeros(2).set_(torch.arange(6.), 1, (2, 2), (1, 2))
    assert d.tolist() == [[1., 3.], [2., 4.]]
    e = torch.zeros(2).set_()
    assert e.shape == (0,)
    x = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="Could not set tensor of type float to a tensor of "
                                           "type long int"):
        x.set_(torch.arange(6.))
    assert x.tolist() == [0, 0]
    with pytest.raises(RuntimeError, match="out of bounds for storage"):
        torch.zeros(2).set_(torch.arange(3.), 2, (2,), (1,))


def test_as_strided_in_place():
    a = torch.arange(6.)
    r = a.as_strided_((2, 2), (1, 2), 1)
    assert r is a and a.tolist() == [[1., 3.], [2., 4.]] and a.storage_offset() == 1
    b = torch.arange(6.)
    with pytest.raises(RuntimeError, match="out of bounds for storage of size 24"):
        b.as_strided_((2, 2), (1, 2), 10)
    assert b.tolist() == [0., 1., 2., 3., 4., 5.]
    x = torch.arange(4.)
    torch.as_strided_(x, (2,), (2,))
    assert x.tolist() == [0., 2.]


def test_swapaxes_inplace_and_unsafe_splits():
    x = torch.arange(6.).reshape(2, 3)
    assert x.swapaxes_(0, 1) is x and x.tolist() == [[0., 3.], [1., 4.], [2., 5.]]
    x.swapdims_(1, 0)
    assert x.shape == (2, 3)
    with pytest.raises(IndexError):
        x.swapaxes_(0, 2)
    assert x.shape == (2, 3)
    w = torch.ones(2, 3, requires_grad=True)
    y = w * torch.arange(3.)
    parts = y.unsafe_split(2, 1)
    assert [tuple(p.shape) for p in parts] == [(2, 2), (2, 1)]
    parts[0].mul_(2)                     # allowed: no multi-output-view guard on unsafe_*
    parts[0].sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [[0., 2., 0.], [0., 2., 0.]])
    assert [p.shape[1] for p in torch.unsafe_chunk(torch.ones(2, 5), 2, 1)] == [3, 2]
    assert [p.shape[1] for p in torch.ones(2, 3).unsafe_split_with_sizes([1, 2], 1)] == [1, 2]
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum"):
        torch.ones(2, 3).unsafe_split_with_sizes([1, 1], 1)


def test_sum_to_size():
    x = torch.arange(6.).reshape(2, 3)
    assert x.sum_to_size(3).tolist() == [3., 5., 7.]
    assert x.sum_to_size(1, 3).tolist() == [[3., 5., 7.]]
    assert x.sum_to_size((2, 1)).tolist() == [[3.], [12.]]
    assert x.sum_to_size(2, 3).tolist() == x.tolist()
    for bad in ((4, 3), (2, 2), (1, 2, 3)):
        with pytest.raises(RuntimeError, match="is not expandable to size"):
            x.sum_to_size(*bad)
    with pytest.raises(TypeError):
        x.sum_to_size()
    assert gradcheck(lambda t: t.sum_to_size(1, 3), (f64(2, 3),))


def test_narrow_copy_nonzero_static_where_isreal():
    a = torch.tensor([1, 2, 3])
    c = a.narrow_copy(0, 1, 2)
    c[0] = 9
    assert a.tolist() == [1, 2, 3] and c.tolist() == [9, 3]
    t = torch.tensor([1, 0, 3, 0])
    assert t.nonzero_static(size=4).tolist() == [[0], [2], [-1], [-1]]
    assert t.nonzero_static(size=1, fill_value=7).tolist() == [[0]]
    assert torch.nonzero_static(torch.tensor([[1, 0], [3, 0]]), size=3,
                                fill_value=-5).tolist() == [[0, 0], [1, 0], [-5, -5]]
    assert torch.nonzero_static(torch.tensor(5), size=2).shape == (2, 0)
    with pytest.raises(RuntimeError, match="'size' must be an non-negative integer"):
        t.nonzero_static(size=-1)
    cond = torch.tensor([True, False, True, False])
    assert torch.arange(4.).where(cond, 0).tolist() == [0., 0., 2., 0.]
    assert torch.arange(4.).where(cond, torch.tensor(-1.)).tolist() == [0., -1., 2., -1.]
    with pytest.raises(RuntimeError, match="expected condition to be a boolean tensor"):
        torch.arange(4.).where(torch.tensor([1, 0, 1, 0]), 0.)
    assert torch.tensor([1 + 0j, 2 + 1j]).isreal().tolist() == [True, False]
    assert torch.isreal(torch.tensor([1., 2.])).tolist() == [True, True]


def test_hardshrink_prelu_methods():
    x = torch.tensor([-1., 0.3, 0.5, 0.7])
    np.testing.assert_allclose(x.hardshrink().numpy(), [-1., 0., 0., 0.7])
    np.testing.assert_allclose(x.hardshrink(0.3).numpy(), [-1., 0., 0.5, 0.7])
    m = torch.tensor([[-1., 2.], [3., -4.]])
    np.testing.assert_allclose(m.prelu(torch.tensor([0.25, 0.1])).numpy(), [[-0.25, 2.], [3., -0.4]])
    with pytest.raises(RuntimeError, match="channel size = 1"):
        torch.tensor([-1., 2.]).prelu(torch.tensor([0.25, 0.1, 3.]))
    assert gradcheck(lambda t, w: t.prelu(w), (f64(3, 2), torch.tensor([0.2, -0.3], dtype=torch.float64,
                                                                       requires_grad=True)))


def test_legacy_new():
    t = torch.arange(6.)
    assert t.new(2, 3).shape == (2, 3) and t.new(2, 3).dtype == torch.float32
    assert t.new([1, 2]).tolist() == [1., 2.] and t.new((1, 2)).dtype == torch.float32
    assert t.new().shape == (0,)
    assert t.new(torch.Size([2])).shape == (2,)
    assert torch.tensor([1, 2]).new([1.5]).tolist() == [1]
    same = t.new(t)
    same[0] = 5.
    assert t[0].item() == 5.
    with pytest.raises(TypeError):
        t.new(torch.tensor([1, 2]))
    with pytest.raises(TypeError):
        t.new([1, 2], dtype=torch.int64)
    with pytest.raises(TypeError, match="data must be a sequence"):
        t.new(2.5)


def test_apply_map_map2():
    a = torch.arange(4.)
    assert a.apply_(lambda v: v * 2) is a and a.tolist() == [0., 2., 4., 6.]
    seen = []
    i = torch.arange(4)
    i.apply_(lambda v: seen.append(type(v)) or v // 2)
    assert i.tolist() == [0, 0, 1, 1] and seen == [int] * 4
    b = torch.arange(4.)
    b.map_(torch.tensor(10.), lambda x, y: x + y)
    assert b.tolist() == [10., 11., 12., 13.]
    c = torch.arange(4.)
    c.map2_(torch.ones(4), torch.full((4,), 3.), lambda x, y, z: x + y * z)
    assert c.tolist() == [3., 4., 5., 6.]
    with pytest.raises(TypeError, match="expected torch.FloatTensor for 'other'"):
        c.map_(torch.ones(4, dtype=torch.int64), lambda x, y: x)
    with pytest.raises(RuntimeError, match="Can't call apply_\\(\\) on Variable that requires grad"):
        torch.ones(2, requires_grad=True).apply_(lambda v: v)

    def boom(v):
        if v > 1:
            raise ValueError("no")
        return -v
    d = torch.arange(4.)
    with pytest.raises(ValueError):
        d.apply_(boom)
    assert d.tolist() == [0., 1., 2., 3.]           # unchanged on error


# ---- random fills: PyTorch's numbers for a seed ------------------------------------------------

def test_cauchy_geometric_log_normal_match_torch():
    torch.manual_seed(5)
    c = torch.empty(4).cauchy_(0.5, 2.0)
    g = torch.empty(5, dtype=torch.float64).geometric_(0.3)
    gi = torch.empty(6, dtype=torch.int64).geometric_(0.7)
    ln = torch.empty(3, dtype=torch.float64).log_normal_()
    # printed by PyTorch 2.13 after torch.manual_seed(5), same calls
    np.testing.assert_allclose(c.numpy(), [1.45663905, -1.38098943, -0.43478477, -0.81256205],
                               rtol=1e-6)
    assert g.tolist() == [4.0, 1.0, 2.0, 1.0, 1.0]
    assert gi.tolist() == [1, 1, 1, 1, 2, 2]
    np.testing.assert_allclose(ln.numpy(), [1.11607374, 14.03603177, 0.26416264], rtol=1e-7)


def test_random_fill_errors():
    with pytest.raises(RuntimeError, match="dtype must be a floating point but you specified long int"):
        torch.zeros(3, dtype=torch.int64).cauchy_()
    with pytest.raises(RuntimeError, match="cauchy_ expects sigma > 0.0"):
        torch.zeros(3).cauchy_(0, 0)
    with pytest.raises(RuntimeError, match=r"geometric_ expects p to be in \(0, 1\)"):
        torch.zeros(3).geometric_(1)
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
        torch.zeros(3, dtype=torch.bool).geometric_(0.5)
    with pytest.raises(NotImplementedError, match="\"log_normal_cpu\" not implemented for 'Long'"):
        torch.zeros(3, dtype=torch.int64).log_normal_()
    z = torch.zeros(3)
    with pytest.raises(RuntimeError, match="log_normal_ expects std > 0.0"):
        z.log_normal_(0, -1)
    assert z.tolist() == [0., 0., 0.]


# ---- linalg ------------------------------------------------------------------------------------

def test_addr_and_inplace_products():
    r = torch.addr(torch.zeros(2, 3), torch.ones(2), torch.arange(3.), beta=2, alpha=3)
    assert r.tolist() == [[0., 3., 6.], [0., 3., 6.]]
    assert torch.addr(torch.zeros(3), torch.ones(2), torch.arange(3.)).shape == (2, 3)
    nan = torch.addr(torch.full((2, 3), float("nan")), torch.ones(2), torch.ones(3), beta=0)
    assert nan.tolist() == [[1.] * 3] * 2
    i = torch.ones(2, 3, dtype=torch.int64)
    assert torch.addr(i, torch.ones(2, dtype=torch.int64), torch.ones(3, dtype=torch.int64),
                      beta=2).tolist() == [[3] * 3] * 2
    with pytest.raises(RuntimeError, match="argument beta must not be a floating point"):
        torch.addr(i, torch.ones(2, dtype=torch.int64), torch.ones(3, dtype=torch.int64), beta=0.5)
    with pytest.raises(RuntimeError, match="Expected 1-D argument vec1"):
        torch.addr(torch.zeros(2, 3), torch.ones(2, 1), torch.arange(3.))
    with pytest.raises(RuntimeError):
        torch.addr(torch.zeros(2, 3), torch.ones(3), torch.arange(3.))
    m = torch.zeros(2, 3)
    assert m.addr_(torch.ones(2), torch.arange(3.)) is m and m.tolist() == [[0., 1., 2.]] * 2
    v = torch.zeros(3)
    with pytest.raises(RuntimeError):
        v.addr_(torch.ones(2), torch.arange(3.))
    assert v.tolist() == [0., 0., 0.]
    assert torch.zeros(3).addmv_(torch.ones(3, 2), torch.ones(2)).tolist() == [2., 2., 2.]
    w = torch.zeros(2)
    with pytest.raises(RuntimeError):
        w.addmv_(torch.ones(3, 2), torch.ones(2))
    assert w.tolist() == [0., 0.]
    assert torch.zeros(2, 3).addbmm_(torch.ones(4, 2, 5), torch.ones(4, 5, 3)).tolist() == \
        [[20.] * 3] * 2
    rn = torch.ones(3, 3).renorm_(2, 0, 1)
    np.testing.assert_allclose(rn.numpy(), np.full((3, 3), 0.57735), rtol=1e-5)
    with pytest.raises(RuntimeError):
        torch.ones(3, 3).renorm_(-1, 0, 1)
    assert gradcheck(lambda a, x, y: torch.addr(a, x, y, beta=0.5, alpha=2.),
                     (f64(2, 3), f64(2, seed=1), f64(3, seed=2)))


def test_legacy_norms():
    t = torch.arange(6.).reshape(2, 3)
    np.testing.assert_allclose(torch.frobenius_norm(t, dim=(0, 1)).item(), 7.4162, rtol=1e-4)
    np.testing.assert_allclose(torch.frobenius_norm(t, (1,), True).numpy(), [[2.2361], [7.0711]],
                               rtol=1e-4)
    np.testing.assert_allclose(torch.nuclear_norm(t).item(), 8.3485, rtol=1e-4)
    assert torch.nuclear_norm(t, keepdim=True).shape == (1, 1)
    assert torch.nuclear_norm(t.reshape(1, 2, 3), dim=(1, 2)).shape == (1,)
    np.testing.assert_allclose(torch.native_norm(t).item(), np.sqrt(55), rtol=1e-6)
    np.testing.assert_allclose(torch.native_norm(t, 3, [1], True, None).numpy(),
                               np.cbrt((np.arange(6.).reshape(2, 3) ** 3).sum(1, keepdims=True)),
                               rtol=1e-6)
    assert gradcheck(lambda a: torch.nuclear_norm(a), (f64(3, 2),))
    assert gradcheck(lambda a: torch.frobenius_norm(a, (0, 1)), (f64(3, 2),))


def test_legacy_method_forms():
    a = torch.arange(6.).reshape(2, 3)
    r = a.svd(compute_uv=False)
    np.testing.assert_allclose(r.S.numpy(), [7.3485, 1.0], rtol=1e-4)
    assert r.U.tolist() == [[0., 0.], [0., 0.]] and r.V.shape == (3, 3) and not r.V.any()
    u, s, v = f64(4, 3).detach().svd()
    np.testing.assert_allclose((u * s) @ v.mT, f64(4, 3).detach().numpy(), atol=1e-12)
    q, rr = f64(4, 3).detach().qr()
    np.testing.assert_allclose((q @ rr).numpy(), f64(4, 3).detach().numpy(), atol=1e-12)
    assert a.qr(some=False).Q.shape == (2, 2)
    for f in (lambda: a.lstsq(a), lambda: a.eig(), lambda: torch.matrix_rank(a),
              lambda: torch.lstsq(a, a)):
        with pytest.raises(RuntimeError, match="deprecated since version 1.9 and is now removed"):
            f()


def _align_signs(x, ref):
    s = np.sign((x * ref).sum(-2, keepdims=True))
    return x * s


def test_svd_lowrank_pca_lowrank_match_torch():
    A = np.random.RandomState(0).randn(8, 5)
    torch.manual_seed(1)
    U, S, V = torch.svd_lowrank(torch.tensor(A), q=3, niter=2)
    # singular values printed by PyTorch 2.13 (torch.manual_seed(1), same call); the singular
    # vectors agree with torch's up to each pair's sign (LAPACK implementations choose it)
    np.testing.assert_allclose(S.numpy(), [4.45749966, 4.00082856, 2.83707728], rtol=1e-7)
    u, s, vh = np.linalg.svd(A, full_matrices=False)
    np.testing.assert_allclose(S.numpy(), s[:3], rtol=0.05)
    np.testing.assert_allclose(U.T.numpy() @ U.numpy(), np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.abs(V.numpy()), np.abs(_align_signs(vh[:3].T, V.numpy())),
                               atol=0.2)
    # M: the low-rank SVD of A - M
    torch.manual_seed(2)
    U2, S2, V2 = torch.svd_lowrank(torch.tensor(A), q=5, M=torch.tensor(A[:1]))
    np.testing.assert_allclose(S2.numpy(), np.linalg.svd(A - A[:1], compute_uv=False)[:5],
                               rtol=1e-10)
    np.testing.assert_allclose((U2 * S2 @ V2.mT).numpy(), A - A[:1], atol=1e-10)
    # pca: centred columns; a wide input goes through A^H
    torch.manual_seed(1)
    Up, Sp, Vp = torch.pca_lowrank(torch.tensor(A.T), q=2)
    assert Up.shape == (5, 2) and Vp.shape == (8, 2)
    np.testing.assert_allclose(Sp.numpy(), [4.28334260, 3.20791540], rtol=1e-7)   # torch-printed
    with pytest.raises(ValueError, match="must be non-negative integer and not greater"):
        torch.pca_lowrank(torch.tensor(A), q=7)
    with pytest.raises(ValueError, match="niter"):
        torch.pca_lowrank(torch.tensor(A), niter=-1)


# ---- native_* ops ------------------------------------------------------------------------------

def test_native_norm_ops_tuples():
    x = np.random.RandomState(2).randn(4, 3, 5)
    t = torch.tensor(x)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    out, mean, invstd = torch.native_batch_norm(t, None, None, rm, rv, True, 0.1, 1e-5)
    m = x.mean((0, 2))
    var = x.var((0, 2))
    np.testing.assert_allclose(mean.numpy(), m, rtol=1e-12)
    np.testing.assert_allclose(invstd.numpy(), 1 / np.sqrt(var + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), (x - m[:, None]) / np.sqrt(var[:, None] + 1e-5),
                               rtol=1e-10)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * x.var((0, 2), ddof=1), rtol=1e-12)
    o2, e1, e2 = torch.native_batch_norm(t, None, None, rm, rv, False, 0.1, 1e-5)
    assert e1.shape == (0,) and e2.shape == (0,) and o2.shape == (4, 3, 5)
    o, mu, rstd = torch.native_layer_norm(t, [5], None, None, 1e-5)
    assert mu.shape == (4, 3, 1) and rstd.shape == (4, 3, 1)
    np.testing.assert_allclose(rstd.numpy(), 1 / np.sqrt(x.var(-1, keepdims=True) + 1e-5),
                               rtol=1e-12)
    o, mu, rstd = torch.native_group_norm(t, None, None, 4, 3, 5, 3, 1e-5)
    assert mu.shape == (4, 3)
    np.testing.assert_allclose(mu.numpy(), x.mean(-1), rtol=1e-12)
    assert gradcheck(lambda a, w: torch.native_layer_norm(a, [3], w, None, 1e-5)[0],
                     (f64(2, 3), f64(3, seed=3)))
    assert gradcheck(lambda a: torch.native_group_norm(a, None, None, 2, 4, 1, 2, 1e-5)[0],
                     (f64(2, 4),))


def test_native_dropout_matches_dropout_mask():
    torch.manual_seed(3)
    out, mask = torch.native_dropout(torch.ones(20), 0.3, True)
    torch.manual_seed(3)
    ref = nn.functional.dropout(torch.ones(20), 0.3)
    assert mask.dtype == torch.bool
    np.testing.assert_allclose(out.numpy(), ref.numpy())
    assert mask.tolist() == (ref != 0).tolist()
    # torch.manual_seed(0); torch.native_dropout(torch.ones(20), 0.3, True)[1] in PyTorch 2.13
    torch.manual_seed(0)
    assert torch.native_dropout(torch.ones(20), 0.3, True)[1].tolist()[:6] == \
        [False, False, True, False, True, False]
    o, m = torch.native_dropout(torch.ones(3), 0.5, False)
    assert o.tolist() == [1., 1., 1.] and m.tolist() == [True] * 3


# ---- small torch.* functions ---------------------------------------------------------------------

def test_threads_device_deterministic_flags():
    assert torch.get_device(torch.ones(1)) == -1
    assert torch.get_num_interop_threads() >= 1 and torch.init_num_threads() is None
    with pytest.raises(RuntimeError, match="expects a positive integer"):
        torch.set_num_interop_threads(0)
    try:
        torch.set_deterministic_debug_mode("warn")
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.get_deterministic_debug_mode() == 1
        torch.use_deterministic_algorithms(True)
        assert torch.get_deterministic_debug_mode() == 2
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
        with pytest.raises(RuntimeError, match="expected one of `default`, `warn`, `error`"):
            torch.set_deterministic_debug_mode("bad")
        with pytest.raises(RuntimeError, match="expected 0, 1, or 2, but got 3"):
            torch.set_deterministic_debug_mode(3)
        with pytest.raises(TypeError):
            torch.set_deterministic_debug_mode(1.0)
        with pytest.raises(TypeError):
            torch.use_deterministic_algorithms(1)
        assert torch.get_deterministic_debug_mode() == 2      # unchanged by the failures
    finally:
        torch.set_deterministic_debug_mode(0)
    assert not torch.are_deterministic_algorithms_enabled()


def test_empty_permuted_and_dlpack():
    e = torch.empty_permuted((2, 3, 4), (2, 0, 1))
    assert e.shape == (2, 3, 4) and e.stride() == (3, 1, 6)
    with pytest.raises(RuntimeError):
        torch.empty_permuted((2, 3), (0, 0))
    t = torch.arange(6.)
    assert t.__dlpack_device__() == (1, 0)
    n = np.from_dlpack(t)
    n[0] = 9.
    assert t[0].item() == 9.
    a = np.arange(4.)
    k = torch.from_dlpack(a)
    k[1] = 7.
    assert a.tolist() == [0., 7., 2., 3.] and k.dtype == torch.float64
    cap = torch.from_dlpack(torch.arange(3, dtype=torch.int32).__dlpack__())
    assert cap.tolist() == [0, 1, 2] and cap.dtype == torch.int32
    with pytest.raises(BufferError, match="Can't export tensors that require gradient"):
        torch.ones(2, requires_grad=True).__dlpack__()


# ---- nn ----------------------------------------------------------------------------------------

def test_cross_map_lrn2d():
    x = np.random.RandomState(1).randn(2, 6, 3, 3)
    m = nn.CrossMapLRN2d(3, 1e-2, 0.75, 1)
    assert repr(m) == "CrossMapLRN2d(3, alpha=0.01, beta=0.75, k=1)"
    out = m(torch.tensor(x)).numpy()
    # PyTorch's running window: scale[c] adds channel c + 1 and drops channel c - 2 only from
    # c = 3 on (so channel 0 stays in channel 2's window)
    sq = x ** 2
    win = np.zeros_like(x)
    win[:, 0] = sq[:, 0] + sq[:, 1]
    for c in range(1, 6):
        win[:, c] = win[:, c - 1] + (sq[:, c + 1] if c + 1 < 6 else 0) - \
            (sq[:, c - 2] if c > 2 else 0)
    np.testing.assert_allclose(out, x * (1 + 1e-2 / 3 * win) ** -0.75, rtol=1e-12)
    # one value printed by PyTorch 2.13 for this input (float32)
    np.testing.assert_allclose(
        nn.CrossMapLRN2d(4, 0.5, 0.5, 2)(torch.tensor(x, dtype=torch.float32))[0, 2, 0, 0].item(),
        0.026984430849552155, rtol=1e-6)
    with pytest.raises(ValueError, match="Expected input to be 4D, got 3D instead"):
        m(torch.ones(2, 3, 4))
    assert gradcheck(lambda t: nn.CrossMapLRN2d(3, 0.3, 0.75, 1)(t), (f64(1, 5, 2, 2),))


def test_sync_batchnorm_single_process_is_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 4)
    sb, bn = nn.SyncBatchNorm(3), nn.BatchNorm1d(3)
    assert repr(sb).startswith("SyncBatchNorm(3, eps=1e-05, momentum=0.1, affine=True")
    np.testing.assert_allclose(sb(x).detach().numpy(), bn(x).detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(sb.running_var.numpy(), bn.running_var.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        sb(torch.ones(3))
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Sequential(nn.BatchNorm1d(4)))
    net[1].running_mean.fill_(0.5)
    conv = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert type(conv[1]) is nn.SyncBatchNorm and type(conv[2][0]) is nn.SyncBatchNorm
    assert conv[1].weight is net[1].weight and conv[1].running_mean.tolist() == [0.5, 0.5]
    assert type(conv[0]) is nn.Conv2d


_SYNC_SCRIPT = r'''
import json, sys
import numpy as np
import framework as torch
import framework.distributed as dist
from framework import nn
dist.init_process_group("mpi")
r = dist.get_rank()
x = np.random.RandomState(0).randn(8, 3, 2)
mine = torch.tensor(x[4 * r:4 * r + 4], requires_grad=True)
torch.manual_seed(0)
m = nn.SyncBatchNorm(3).double()
m.weight.data.copy_(torch.tensor([1.0, 2.0, -1.0]))
y = m(mine)
(y * torch.arange(24.).reshape(4, 3, 2)).sum().backward()
json.dump({"y": y.tolist(), "g": mine.grad.tolist(), "rm": m.running_mean.tolist(),
           "rv": m.running_var.tolist(), "wg": m.weight.grad.tolist()},
          open(sys.argv[1] + f"/rank{r}.json", "w"))
dist.destroy_process_group()
'''


def test_sync_batchnorm_two_ranks_equal_one_process_on_whole_batch(tmp_path):
    try:
        import mpi4py  # noqa: F401
        from runtime.distributed import launcher
    except ImportError:
        pytest.skip("mpi4py is not installed")
    if launcher.find_mpiexec() is None:
        pytest.skip("no mpiexec")
    script = tmp_path / "sync_bn.py"
    script.write_text(_SYNC_SCRIPT)
    cmd = launcher.command(2, str(script), [str(tmp_path)])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert p.returncode == 0, p.stdout + p.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    x = torch.tensor(np.random.RandomState(0).randn(8, 3, 2), requires_grad=True)
    bn = nn.BatchNorm1d(3).double()
    bn.weight.data.copy_(torch.tensor([1.0, 2.0, -1.0]))
    y = bn(x)
    (y * torch.arange(24.).reshape(4, 3, 2).repeat(2, 1, 1)).sum().backward()
    np.testing.assert_allclose(np.concatenate([ranks[0]["y"], ranks[1]["y"]]),
                               y.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([ranks[0]["g"], ranks[1]["g"]]),
                               x.grad.numpy(), rtol=1e-9, atol=1e-12)
    for r in range(2):
        np.testing.assert_allclose(ranks[r]["rm"], bn.running_mean.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ranks[r]["rv"], bn.running_var.numpy(), rtol=1e-10)
    # each rank's weight gradient is its own batch's share; together the whole batch's
    np.testing.assert_allclose(np.add(ranks[0]["wg"], ranks[1]["wg"]), bn.weight.grad.numpy(),
                               rtol=1e-9)


def test_operators_with_unsupported_operands_are_not_implemented():
    # Python operators take tensors, numbers and NumPy scalars; anything else makes Python
    # fall back: == / != compare identity, the rest are TypeErrors (as PyTorch)
    t = torch.tensor([1, 2])
    assert (t == None) is False and (t != None) is True     # noqa: E711
    assert (t == "a") is False and (t == [1, 2]) is False and (t == (1, 2)) is False
    for f in (lambda: t + None, lambda: t + [1, 2], lambda: [1, 2] + t, lambda: t < None,
              lambda: t ** [2], lambda: t @ [1, 2], lambda: t & None, lambda: None - t):
        with pytest.raises(TypeError, match="not supported|unsupported operand|concatenate"):
            f()
    u = torch.tensor([1, 2])
    with pytest.raises(TypeError, match="unsupported operand"):
        u += [1, 2]
    assert u.tolist() == [1, 2]
    assert (t + np.int64(2)).tolist() == [3, 4] and (t == np.float64(1)).tolist() == [True, False]
    assert torch.tensor(2) * "ab" == "abab"       # (str repetition through __index__)


def test_integer_inplace_pow_by_negative_int_is_refused():
    t = torch.tensor([2, 3], dtype=torch.int32)
    with pytest.raises(RuntimeError, match="Integers to negative integer powers"):
        t **= -1
    with pytest.raises(RuntimeError, match="Integers to negative integer powers"):
        t.pow_(-2)
    assert t.tolist() == [2, 3]
    t **= 2
    assert t.tolist() == [4, 9]


def test_scalar_divided_by_tensor_rounds_through_the_reciprocal():
    # PyTorch computes s / t as t.reciprocal() * s: at float32 2.5 / 3 is
    # float32(2.5 * float32(1/3)) = 0.83333337, not float32(2.5 / 3) = 0.8333333
    x = torch.tensor([3.0, 2.0], requires_grad=True)
    y = 2.5 / x
    ref = (np.float32(1) / np.array([3.0, 2.0], np.float32)) * np.float32(2.5)
    assert y.detach().numpy().tolist() == ref.tolist()
    assert y.grad_fn.name() == "MulBackward0"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -2.5 / np.array([9.0, 4.0]), rtol=1e-6)
    h = 2.5 / torch.tensor([3.0], dtype=torch.float16)
    assert h.item() == float(np.float16(np.float16(1) / np.float16(3)) * np.float16(2.5))
    assert (1 / torch.tensor([0, 2])).tolist() == [float("inf"), 0.5]


def test_new_methods_keep_device_and_honour_requires_grad():
    base = torch.zeros(2, dtype=torch.float64)
    for t in (base.new_zeros(2, requires_grad=True), base.new_ones((2,), requires_grad=True),
              base.new_full((2,), 1.5, requires_grad=True),
              base.new_empty(2, requires_grad=True), base.new_tensor([1.0], requires_grad=True)):
        assert t.requires_grad and t.is_leaf and t.dtype == torch.float64
    assert base.new_full((2,), 7).tolist() == [7.0, 7.0]
    assert base.new_zeros(3, dtype=torch.int8).dtype == torch.int8
    src = torch.tensor([1, 2], dtype=torch.int32)
    with pytest.warns(UserWarning, match="new_tensor"):
        c = base.new_tensor(src)
    c[0] = 5
    assert c.dtype == torch.float64 and c.tolist() == [5.0, 2.0] and src.tolist() == [1, 2]
    assert base.new_zeros(2, device="cpu").device.type == "cpu"


def test_split_method_keyword_is_split_size():
    parts = torch.arange(5).split(split_size=2)
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3], [4]]
    assert [p.tolist() for p in torch.arange(5).split([1, 4], dim=0)] == [[0], [1, 2, 3, 4]]


def test_size_keywords_of_view_reshape_expand():
    x = torch.arange(6.0)
    assert x.view(size=(3, 2)).tolist() == np.arange(6.0).reshape(3, 2).tolist()
    assert x.reshape(shape=[2, 3]).shape == (2, 3) and torch.reshape(x, shape=(3, 2)).shape == (3, 2)
    assert torch.zeros(1, 3).expand(size=(2, 3)).shape == (2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'sizes'"):
        x.view(sizes=(3, 2))


def test_size_elements_are_ints_and_is_cpu():
    s = torch.Size([torch.tensor(2), np.int64(3)])
    assert s == (2, 3) and all(type(v) is int for v in s) and repr(s) == "torch.Size([2, 3])"
    with pytest.raises(TypeError, match=r"item 0 is 'float'"):
        torch.Size([2.5])
    with pytest.raises(TypeError, match=r"item 1 is 'str'"):
        torch.Size([1, "a"])
    assert torch.zeros(1).is_cpu is True


def test_to_positional_non_blocking_and_copy_flags():
    # to(dtype, non_blocking, copy) / to(device, dtype, non_blocking, copy): bools are flags
    a = torch.ones(2)
    assert a.to(torch.float64, True).dtype == torch.float64
    assert a.to("cpu", torch.float64, False, True).tolist() == [1.0, 1.0]
    b = a.to(torch.float32, False, True)
    assert b is not a and b.tolist() == [1.0, 1.0]
    assert a.to(torch.float32, False, False) is a and a.to(a, True) is a
