"""Matrix products and linear algebra: matmul (every rank combination), mm, bmm, mv, dot,
outer, addmm, baddbmm, einsum, and torch.linalg."""
import functools

from compiler.ir.registry import REGISTRY
from runtime import dtypes as dt
from ._dispatch import apply, rename, values, wrap_like, saved_extra
from . import ops_shape as S
from .ops_math import write_out     # (here, not in each op: an import per call costs ~3 us)
from ._sparse_storage import SparseLayoutError, NoStrided
from .nested._storage import NestedLayoutError
from ._misc_api import warn_once

# PyTorch's TORCH_WARN_ONCE texts for the legacy linalg functions
_DEPRECATED = {
    "lu": "torch.lu is deprecated in favor of torch.linalg.lu_factor / torch.linalg.lu_factor_ex "
          "and will be removed in a future PyTorch release.\nLU, pivots = torch.lu(A, "
          "compute_pivots)\nshould be replaced with\nLU, pivots = torch.linalg.lu_factor(A, "
          "compute_pivots)\nand\nLU, pivots, info = torch.lu(A, compute_pivots, get_infos=True)"
          "\nshould be replaced with\nLU, pivots, info = torch.linalg.lu_factor_ex(A, "
          "compute_pivots)",
    "cholesky": "torch.cholesky is deprecated in favor of torch.linalg.cholesky and will be "
                "removed in a future PyTorch release.\nL = torch.cholesky(A)\nshould be replaced "
                "with\nL = torch.linalg.cholesky(A)\nand\nU = torch.cholesky(A, upper=True)\n"
                "should be replaced with\nU = torch.linalg.cholesky(A).mH\nThis transform will "
                "produce equivalent results for all valid (symmetric positive definite) inputs.",
    "qr": "torch.qr is deprecated in favor of torch.linalg.qr and will be removed in a future "
          "PyTorch release.\nThe boolean parameter 'some' has been replaced with a string "
          "parameter 'mode'.\nQ, R = torch.qr(A, some)\nshould be replaced with\nQ, R = "
          "torch.linalg.qr(A, 'reduced' if some else 'complete')",
    "triangular_solve": "torch.triangular_solve is deprecated in favor of "
                        "torch.linalg.solve_triangularand will be removed in a future PyTorch "
                        "release.\ntorch.linalg.solve_triangular has its arguments reversed and "
                        "does not return a copy of one of the inputs.\nX = torch.triangular_solve"
                        "(B, A).solution\nshould be replaced with\nX = "
                        "torch.linalg.solve_triangular(A, B).",
    "lu_solve": "torch.lu_solve is deprecated in favor of torch.linalg.lu_solveand will be "
                "removed in a future PyTorch release.\nNote that torch.linalg.lu_solve has its "
                "arguments reversed.\nX = torch.lu_solve(B, LU, pivots)\nshould be replaced "
                "with\nX = torch.linalg.lu_solve(LU, pivots, B)",
    "chain_matmul": "torch.chain_matmul is deprecated and will be removed in a future PyTorch "
                    "release. Use torch.linalg.multi_dot instead, which accepts a list of two or "
                    "more tensors rather than multiple parameters.",
}


def _deprecated(name):
    warn_once("deprecated_" + name, _DEPRECATED[name], stacklevel=3)

P = REGISTRY


def matmul(input, other, *, out=None):
    a, b = input, other
    try:
        if a.ndim == 0 or b.ndim == 0:
            raise RuntimeError(f"matmul: both arguments to matmul need to be at least 1D, but "
                               f"they are {a.ndim}D and {b.ndim}D")
        if a.ndim > 1 and b.ndim != 2:       # (PyTorch's kernel; the others say addmm or dot)
            dt.refuse_barebones("addmv_impl_cpu" if b.ndim == 1 else "bmm", a._dtype)
        if a.ndim == 1 and b.ndim == 1:
            r = dot(a, b)
        elif a.ndim == 1:
            r = S.squeeze(apply(P["matmul"], S.unsqueeze(a, 0), b), -2)
            r = rename(r, _matmul_grad_name(a, b))
        elif b.ndim == 1:
            if a.shape[-1] != b.shape[0]:
                raise RuntimeError(f"matmul: size mismatch, got input ({list(a.shape)}), vec "
                                   f"({b.shape[0]})")
            r = rename(S.squeeze(apply(P["matmul"], a, S.unsqueeze(b, 1)), -1),
                       _matmul_grad_name(a, b))
            if a.ndim == 2 and r._node is not None:
                saved_extra(r, self=a if b.requires_grad else None,
                            vec=b if a.requires_grad else None)
        else:
            r = apply(P["matmul"], a, b)
            if a.ndim > 2 or b.ndim > 2:
                rename(r, _matmul_grad_name(a, b))
        return write_out(r, out)
    except SparseLayoutError:          # a sparse operand: framework.sparse
        from .sparse import _matmul as sparse_matmul
        return write_out(sparse_matmul(a, b), out)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return write_out(N.matmul(a, b), out)


def _matmul_grad_name(a, b):
    """The grad_fn name of PyTorch's _matmul_impl result: the last op of the path it takes
    (1-D @ 2-D squeezes in place; N-D @ 1-D/2-D folds into mm/mv and _unsafe_view; 2-D @ N-D
    with a grad-requiring 2-D operand folds, transposes back and copies; else bmm + view)."""
    da, db = a.ndim, b.ndim
    if da == 1 and db == 2:
        return "SqueezeBackward4"
    if da == 2 and db == 1:
        return "MvBackward0"
    if da == 3 and db == 3 and a.shape[0] != b.shape[0]:
        if a.shape[0] == 1 and a.requires_grad:        # matmul(a.squeeze(0), b)
            da = 2
        elif b.shape[0] == 1 and b.requires_grad:
            db = 2
    if da == 2 and db >= 3 and a.requires_grad:
        n, p = a.shape[-2], b.shape[-1]
        # output.mT().contiguous(): no copy when a dim of the transposed pair is 1
        return "TransposeBackward0" if n == 1 or p == 1 else "CloneBackward0"
    return "UnsafeViewBackward0"


def mm(input, mat2, *, out=None):
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: self must be a matrix (got shapes {list(input.shape)} and "
                           f"{list(mat2.shape)})")
    try:
        if isinstance(input._data, NoStrided) or isinstance(mat2._data, NoStrided):
            raise SparseLayoutError     # (before the dense shape check: the sparse op's errors)
        return write_out(apply(P["matmul"], input, mat2), out)
    except SparseLayoutError:
        from .sparse import _mm as sparse_mm
        return write_out(sparse_mm(input, mat2, False), out)


def bmm(input, mat2, *, out=None):
    try:
        if input.ndim != 3 or mat2.ndim != 3:
            raise RuntimeError(f"bmm: batch1 must be a 3D tensor (got shapes {list(input.shape)} and "
                               f"{list(mat2.shape)})")
        if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
            raise RuntimeError(f"bmm: Expected size for first two dimensions of batch2 tensor to "
                               f"be: [{input.shape[0]}, {input.shape[2]}] but got: "
                               f"[{mat2.shape[0]}, {mat2.shape[1]}].")
        dt.refuse_barebones("bmm", input._dtype)
        return write_out(rename(apply(P["matmul"], input, mat2), "BmmBackward0"), out)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.matmul(input, mat2, "bmm")


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: vector + matrix @ vector expected, got {input.ndim}, {vec.ndim}")
    return matmul(input, vec)


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
                           f"[{other.shape[0]}] to have the same number of elements, but got "
                           f"{input.shape[0]} and {other.shape[0]} elements respectively")
    if input.dtype is not other.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{input.dtype.name.capitalize()} and {other.dtype.name.capitalize()}")
    dt.refuse_barebones("dot", input._dtype)
    r = apply(P["matmul"], S.unsqueeze(input, 0), S.unsqueeze(other, 1))
    return rename(S.reshape(r, ()), "DotBackward0")


def inner(input, other, *, out=None):
    """Sum over the last dims: out[i..., j...] = sum_k input[i..., k] * other[j..., k]."""
    from .ops_math import write_out, mul
    if input.ndim == 0 or other.ndim == 0:
        return write_out(mul(input, other), out)
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got "
                           f"shapes {list(input.shape)} and {list(other.shape)}")
    if input.ndim == 1 and other.ndim == 1:
        return write_out(dot(input, other), out)
    _same_dtype("inner", input, other)
    letters = "abcdefghijklmnopqrstuvwxy"
    la, lb = letters[:input.ndim - 1], letters[input.ndim - 1:input.ndim + other.ndim - 2]
    return write_out(einsum(f"{la}z,{lb}z->{la}{lb}", input, other), out)


def _same_dtype(op, *ts):
    d = ts[0].dtype
    for t in ts[1:]:
        if t.dtype is not d:
            raise RuntimeError(f"{op}: expected all operands to have the same dtype, but got "
                               + ", ".join(x.dtype.name for x in ts))


def vdot(input, other):
    dt.refuse_chalf("vdot", input._dtype)
    if input._dtype.is_complex:        # conj(input) . other
        from .ops_math import conj_physical
        input = conj_physical(input)
    return dot(input, other)


def outer(input, vec2):
    for name, v in (("self", input), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {v.ndim}-D")
    return rename(apply(P["mul"], S.unsqueeze(input, 1), S.unsqueeze(vec2, 0)), "MulBackward0")


ger = outer


def _beta_input(input, beta):
    """beta * input for the add*mm family: beta == 0 ignores input's values (NaN and inf give
    0, as torch), while input still gets its (zero) gradient."""
    if beta == 1:
        return input
    if beta == 0:
        from .ops_math import full_on
        return apply(P["where"], full_on(input, tuple(input.shape), False, dt.bool_), input, 0)
    return apply(P["mul"], input, beta)


def _half_gemm(*ts):
    """float16/bfloat16 when every operand is (else None). PyTorch's cpu gemm for them adds
    beta * input to the float32 accumulator and rounds once: the add*mm family computes in
    float32 and casts back (matmul, then add, would round twice)."""
    d = getattr(ts[0], "_dtype", None)
    if d is not dt.bfloat16 and d is not dt.float16:
        return None
    return d if all(getattr(t, "_dtype", None) is d for t in ts) else None


def _f32(*ts):
    return tuple(apply(P["cast"], t, dtype=dt.float32) for t in ts)


def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    half = _half_gemm(input, mat1, mat2)
    try:
        a, b, c = _f32(input, mat1, mat2) if half else (input, mat1, mat2)
        r = apply(P["matmul"], b, c)
    except SparseLayoutError:           # a sparse compressed operand
        from .sparse_compressed import addmm as sparse_addmm, is_compressed
        if not (is_compressed(mat1) or is_compressed(mat2)):
            raise
        return write_out(sparse_addmm(input, mat1, mat2, beta=beta, alpha=alpha), out)
    if alpha != 1:
        r = apply(P["mul"], r, alpha)
    r = apply(P["add"], _beta_input(a, beta), r)
    if half:
        r = apply(P["cast"], r, dtype=half)
    r = rename(r, "AddmmBackward0")
    if r._node is not None:     # (mat1 is saved for mat2's gradient, mat2 for mat1's)
        saved_extra(r, mat1=mat1 if mat2.requires_grad else None,
                    mat2=mat2 if mat1.requires_grad else None, alpha=alpha, beta=beta,
                    mat1_sym_sizes=tuple(mat1.shape), mat1_sym_strides=tuple(mat1.stride()),
                    mat2_sym_sizes=tuple(mat2.shape), mat2_sym_strides=tuple(mat2.stride()))
    return write_out(r, out)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    if mat.ndim != 2 or vec.ndim != 1 or input.ndim > 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.ndim}, {mat.ndim}, "
                           f"{vec.ndim}")
    n, k = mat.shape
    if vec.shape[0] != k or input.ndim == 1 and input.shape[0] not in (1, n):
        inp = input.shape[0] if input.ndim else ""
        raise RuntimeError(f"size mismatch, got input ({inp}), mat ({n}x{k}), vec ({vec.shape[0]})")
    if not input.dtype is mat.dtype is vec.dtype:
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got "
                           f"{dt.tname(input._dtype)}, {dt.tname(mat._dtype)}, and "
                           f"{dt.tname(vec._dtype)}")
    r = matmul(mat, vec)
    if alpha != 1:
        r = apply(P["mul"], r, alpha)
    return rename(apply(P["add"], _beta_input(input, beta), r), "AddmvBackward0")


def _addmv_(self, mat, vec, *, beta=1, alpha=1):
    """Tensor.addmv_: the result is mat's row count long, so self must already be."""
    if (mat.ndim == 2 and vec.ndim == 1 and self.numel() == 1 and self.ndim <= 1
            and list(self.shape) != [mat.shape[0]]):     # (other shapes: addmv's errors)
        raise RuntimeError(f"Bad in-place call: input tensor size {list(self.shape)} and output "
                           f"tensor size [{mat.shape[0]}] should match")
    from ._tensor_methods import _via
    return _via(addmv)(self, mat, vec, beta=beta, alpha=alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    dt.refuse_barebones("baddbmm", batch1._dtype)
    half = _half_gemm(input, batch1, batch2)
    if half:                            # (one rounding, as addmm)
        bmm(batch1, batch2)             # (bmm's checks on the operands as given)
        input, batch1, batch2 = _f32(input, batch1, batch2)
    r = bmm(batch1, batch2)
    if alpha != 1:
        r = apply(P["mul"], r, alpha)
    r = apply(P["add"], _beta_input(input, beta), r)
    return rename(apply(P["cast"], r, dtype=half) if half else r, "BaddbmmBackward0")


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """PyTorch's loop: one addmm per batch into the result (rounded after each)."""
    if batch1.ndim == 3 and batch2.ndim == 3:
        (n, i, k), (n2, k2, j) = batch1.shape, batch2.shape
        if n != n2:
            raise RuntimeError(f"batch1 and batch2 must have same number of batches, got {n} and "
                               f"{n2}")
        if k != k2:
            raise RuntimeError(f"Incompatible matrix sizes for bmm ({i}x{k} and {k2}x{j})")
    else:
        bmm(batch1, batch2)             # (its dimension errors)
    n = batch1.shape[0]
    if n == 0:
        r = _beta_input(input, beta)
        return rename(S.expand(r, (batch1.shape[1], batch2.shape[2])).clone(), "AddbmmBackward0")
    r = input
    for i in range(n):
        r = addmm(r, S.select(batch1, 0, i), S.select(batch2, 0, i), beta=beta if i == 0 else 1,
                  alpha=alpha)
    return rename(r, "AddbmmBackward0")


_GMM_DTYPES = frozenset(("float32", "bfloat16", "float16"))


def _gmm_check_strides(mat):
    """torch's grouped-GEMM layout rule: one of the last two dims contiguous, the other's
    stride a multiple of 16 bytes."""
    st, sz = mat.stride(), tuple(mat.shape)
    align = 16 // mat.element_size()
    if st[-1] == 1 and st[-2] >= max(1, sz[-1]):
        lead = st[-2]
    elif st[-2] == 1 and st[-1] >= max(1, sz[-2]):
        lead = st[-1]
    else:
        raise RuntimeError(f"Invalid strides/sizes, got {list(st)} for strides and {list(sz)} "
                           f"for sizes")
    if lead % align:
        raise RuntimeError("strides should be multiple of 16 bytes")


def _gmm_segments(offs, n):
    """[(group or -1, start, end)] covering 0..n: group g owns [offs[g-1], offs[g]) clipped to
    n (a later group wins an overlap, as torch's loop writes it); -1 rows are left over."""
    import numpy as np
    owner = np.full(n, -1, np.int64)
    start = 0
    for g, end in enumerate(values(offs).tolist()):
        owner[max(start, 0):max(min(end, n), 0)] = g
        start = end
    cuts = [0] + (np.flatnonzero(np.diff(owner)) + 1).tolist() + [n]
    return [(int(owner[s]), s, e) for s, e in zip(cuts, cuts[1:]) if e > s]


def _grouped_mm(input, mat2, offs=None, bias=None, out_dtype=None):
    """torch._grouped_mm: per-group matmuls. 2-d x 3-d: offs splits input's rows, group g
    uses mat2[g]; 3-d x 2-d: offs splits mat2's columns; 2-d x 2-d: offs splits K and gives
    one (M, N) result per group; 3-d x 3-d: a batched matmul (no offs). Parts no group covers
    are zero (torch leaves them uninitialised)."""
    a, b = input, mat2
    for name, m in (("mat_a", a), ("mat_b", b)):
        if m._dtype.name not in _GMM_DTYPES:
            raise RuntimeError(f"Expected {name} to be Float32, BFloat16 or Float16 matrix, got "
                               f"{dt.tname(m._dtype)}")
    for name, m in (("mat_a", a), ("mat_b", b)):
        if m.ndim not in (2, 3):
            raise RuntimeError(f"{name} has to be 2 or 3d")
    a2, b2 = a.ndim == 2, b.ndim == 2
    if not (a2 and b2) and a.shape[-1] != b.shape[-2]:
        raise RuntimeError("contraction dimension of mat_a and mat_b must match")
    _gmm_check_strides(a)
    _gmm_check_strides(b)
    if (offs is not None) != (a2 or b2):
        raise RuntimeError("Have to provide offsets if there is a 2d matrix, or no offset if "
                           "both matrices are 3d")
    if offs is not None:
        if offs.ndim != 1:
            raise RuntimeError("offs has to be 1D")
        if offs._dtype is not dt.int32:
            raise RuntimeError("Offsets have to be int32")
    if bias is not None:
        raise RuntimeError("Bias not supported yet")
    if out_dtype is not None and out_dtype is not a.dtype:
        raise RuntimeError("Grouped gemm output dtype must match `mat_a` dtype")
    if a2 != b2 and offs.shape[0] != (b if a2 else a).shape[0]:
        raise RuntimeError("matrix batch sizes have to match")
    if not (a2 or b2) and a.shape[0] != b.shape[0]:
        raise RuntimeError("batched dimension has to match")
    if a._dtype is not b._dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{dt.CPP_NAME[a._dtype.name]} != {dt.CPP_NAME[b._dtype.name]}")
    if not (a2 or b2):
        return rename(apply(P["matmul"], a, b), "GroupedMmBackward0")
    if a2 and b2:            # offs splits K: out[g] = a[:, s:e] @ b[s:e]
        parts, start = [], 0
        for end in values(offs).tolist():
            s = max(start, 0)
            parts.append(apply(P["matmul"], a[:, s:max(end, s)], b[s:max(end, s)]))
            start = end
        if not parts:
            return a.new_zeros((0, a.shape[0], b.shape[1]))
        return rename(S.stack(parts), "GroupedMmBackward0")
    if a2:                   # offs splits rows: out[s:e] = a[s:e] @ b[g]
        n, N = a.shape[0], b.shape[2]
        parts = [apply(P["matmul"], a[s:e], b[g]) if g >= 0 else a.new_zeros((e - s, N))
                 for g, s, e in _gmm_segments(offs, n)]
        dim = 0
    else:                    # offs splits columns: out[:, s:e] = a[g] @ b[:, s:e]
        n, M = b.shape[1], a.shape[1]
        parts = [apply(P["matmul"], a[g], b[:, s:e]) if g >= 0 else a.new_zeros((M, e - s))
                 for g, s, e in _gmm_segments(offs, n)]
        dim = 1
    if not parts:
        return a.new_zeros((0, b.shape[2]) if a2 else (a.shape[1], 0))
    return rename(parts[0] if len(parts) == 1 else S.cat(parts, dim), "GroupedMmBackward0")


def _smm_config_error(a, b, sa, sb):
    def st(t):
        return list(t.stride())
    return ValueError(
        "Invalid scaling configuration.\n- For TensorWise scaling, a and b should be float8, "
        "scales should be float and singletons.\n- For RowWise scaling, a and b should be "
        f"float8, scales should be float, scale_a should be ({a.shape[0]}, 1) and scale_b should "
        f"be (1, {b.shape[1]}), and both should be contiguous.\nGot mat_a.dtype()="
        f"{dt.tname(a._dtype)}, scale_a.dtype()={dt.tname(sa._dtype)}, scale_a.size()="
        f"{list(sa.shape)}, scale_a.stride()={st(sa)}, mat_b.dtype()={dt.tname(b._dtype)}, "
        f"scale_b.dtype()={dt.tname(sb._dtype)}, scale_b.size()={list(sb.shape)} and "
        f"scale_b.stride()={st(sb)}")


def _scaled_mm(input, mat2, scale_a, scale_b, bias=None, scale_result=None, out_dtype=None,
               use_fast_accum=False):
    """torch._scaled_mm on the cpu: float8 operands with tensor-wise (one float each) or
    row-wise ((M, 1) and (1, N)) float32 scales, computed as (a * scale_a) @ (b * scale_b)
    (+ bias) in float32, then cast. As torch's cpu kernel, scale_result and use_fast_accum
    change nothing, and the result has no gradient."""
    a, b = input, mat2
    for name, m in (("mat1", a), ("mat2", b)):
        if m.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat_a and mat_b shapes cannot be multiplied ({a.shape[0]}x"
                           f"{a.shape[1]} and {b.shape[0]}x{b.shape[1]})")
    f8 = a._dtype in dt.FLOAT8 and b._dtype in dt.FLOAT8
    fl = scale_a._dtype is dt.float32 and scale_b._dtype is dt.float32
    tensorwise = scale_a.numel() == 1 and scale_b.numel() == 1
    rowwise = (tuple(scale_a.shape) == (a.shape[0], 1) and tuple(scale_b.shape) == (1, b.shape[1])
               and scale_a.is_contiguous() and scale_b.is_contiguous())
    if f8 and fl and rowwise and not tensorwise:
        for name, s in (("scale_a", scale_a), ("scale_b", scale_b)):
            if s.stride(1) != 1:
                raise ValueError(f"expected {name}.stride(1) to be 1, but got {s.stride(1)}")
    if not (f8 and fl and (tensorwise or rowwise)):
        raise _smm_config_error(a, b, scale_a, scale_b)
    if bias is not None and bias.numel() != b.shape[1]:
        raise RuntimeError(f"Bias must be size {b.shape[1]} but got {bias.numel()}")
    from .ops_math import cast
    f32 = dt.float32
    if tensorwise:
        scale_a, scale_b = S.reshape(scale_a, ()), S.reshape(scale_b, ())
    x = apply(P["mul"], cast(a.detach(), f32), scale_a.detach())
    y = apply(P["mul"], cast(b.detach(), f32), scale_b.detach())
    r = apply(P["matmul"], x, y)
    if bias is not None:
        r = apply(P["add"], r, cast(bias.detach(), f32))
    return cast(r, a.dtype if out_dtype is None else out_dtype)


def _no_grouped_scaled_kernel(op, t):
    """torch's scaled grouped GEMMs are CUDA kernels (compute capability 9.0+): its cpu build
    raises this, and Kiln has none on any device."""
    if t._device.type == "cpu":
        return NotImplementedError(f"Could not run 'aten::{op}' with arguments from the 'CPU' "
                                   f"backend. This could be because the operator doesn't exist "
                                   f"for this backend, or was omitted during the selective/"
                                   f"custom build process (if using custom build).")
    return NotImplementedError(f"{op}: Kiln has no kernel for it on '{t._device}' (PyTorch runs "
                               f"it on CUDA GPUs of compute capability 9.0 and above only)")


def _scaled_grouped_mm(input, mat2, scale_a, scale_b, offs=None, bias=None, scale_result=None,
                       out_dtype=None, use_fast_accum=False):
    raise _no_grouped_scaled_kernel("_scaled_grouped_mm", input)


def _lobpcg_host(A, B, X, iK, n, k, niter, tol, largest, step=None):
    """LOBPCG [Knyazev 2001] on NumPy arrays: Rayleigh-Ritz over span[X, iK R, P], each basis
    B-orthonormalised by SVQB [Stathopoulos & Wu 2002] (dropping directions it finds
    dependent), until the first k residuals ||A x - e B x|| <= tol (||A|| + e ||B||) ||x||.
    step(istep, E, X, R, rerr): called after every update; True stops the iteration."""
    import numpy as np
    Bm = (lambda v: v) if B is None else (lambda v: B @ v)
    eps = np.finfo(A.dtype).eps
    a_norm = np.linalg.norm(A, 2) if A.size else 0.0
    b_norm = 1.0 if B is None else np.linalg.norm(B, 2)

    def orth(S):
        """A B-orthonormal basis of span(S) (SVQB, twice for accuracy)."""
        for _ in range(2):
            G = S.T @ Bm(S)
            d = np.sqrt(np.abs(np.diag(G)))
            d[d == 0] = 1
            G = G / d[:, None] / d[None, :]
            w, V = np.linalg.eigh((G + G.T) / 2)
            keep = w > eps * max(w.max(initial=0), 1) * 10
            S = (S / d) @ (V[:, keep] / np.sqrt(w[keep]))
        return S

    def rayleigh_ritz(Q):
        T = Q.T @ (A @ Q)
        w, C = np.linalg.eigh((T + T.T) / 2)
        order = np.argsort(-w if largest else w, kind="stable")
        return w[order], C[:, order]

    X = orth(X)
    E, C = rayleigh_ritz(X)
    X, E = X @ C[:, :n], E[:n]
    P = None
    for istep in range(niter + 1):
        R = A @ X - Bm(X) * E
        err = np.linalg.norm(R, axis=0) / ((a_norm + np.abs(E) * b_norm) *
                                          np.linalg.norm(X, axis=0))
        if step is not None and step(istep, E, X, R, err):
            break
        if (err[:k] <= tol).all() or istep == niter:
            break
        W = R if iK is None else iK @ R
        parts = [X, W] + ([P] if P is not None else [])
        Q = orth(np.concatenate(parts, 1))
        E2, C = rayleigh_ritz(Q)
        Xn = Q @ C[:, :n]
        # the new search direction: the part of the update outside the old X
        P = Xn - X @ (X.T @ Bm(Xn))
        X, E = Xn, E2[:n]
    return E, X


class _LOBPCGWorker:
    """What lobpcg hands its tracker after each update, with torch's LOBPCG attribute names:
    A, B, iK, X, E, R, the i/f/b/t params and vars; bvars["force_stop"] = True stops it."""

    def __init__(self, A, B, iK, iparams, fparams, bparams, method, tracker):
        self.A, self.B, self.iK, self.method, self.tracker = A, B, iK, method, tracker
        self.iparams, self.fparams, self.bparams = iparams, fparams, bparams
        self.ivars, self.fvars, self.bvars, self.tvars = {}, {}, {}, {}
        self.X = self.E = self.R = self.S = None

    def __call__(self, istep, E, X, R, rerr):
        like = self.A
        self.E, self.X, self.R = (wrap_like(v.copy(), like._dtype, like) for v in (E, X, R))
        self.tvars["rerr"] = wrap_like(rerr.astype(E.dtype), like._dtype, like)
        # (torch counts the initial Rayleigh-Ritz as update 1)
        self.ivars.update(istep=istep + 1, iterations_left=self.iparams["niter"] - istep,
                          converged_count=int((rerr <= self.fparams["tol"]).sum()))
        self.tracker(self)
        return bool(self.bvars.get("force_stop", False))


_LOBPCG_FN = []      # the autograd.Function, made on first use (autograd imports after this)


def _lobpcg_function():
    if _LOBPCG_FN:
        return _LOBPCG_FN[0]
    from .autograd import Function

    class LOBPCGAutogradFunction(Function):      # (torch's name: its grad_fn's)
        """Gradient of k eigenpairs of a symmetric A: U diag(gE) U^T plus, for each vector,
        its cotangent's components along the other eigenvectors over the eigenvalue gaps."""
        @staticmethod
        def forward(ctx, A, B, run):
            E, X = run(A, B)
            ctx.with_b = B is not None
            ctx.save_for_backward(A, E, X)
            return E, X

        @staticmethod
        def backward(ctx, gE, gX):
            import numpy as np
            if ctx.with_b:
                raise ValueError("lobpcg.backward does not support backward with B != I yet.")
            A, E, X = ctx.saved_tensors
            a = np.asarray(values(A), np.float64)
            e, x = np.asarray(values(E), np.float64), np.asarray(values(X), np.float64)
            lam, V = np.linalg.eigh(a)
            g = np.zeros_like(a)
            if gE is not None:
                g += (x * np.asarray(values(gE), np.float64)) @ x.T
            if gX is not None:
                gx = np.asarray(values(gX), np.float64)
                proj = V.T @ gx                                  # (m, k)
                gap = e[None, :] - lam[:, None]
                # (the vector's own eigenvalue, and any equal to it: no component there)
                same = np.abs(gap) <= 1e3 * np.finfo(values(A).dtype).eps * np.abs(lam).max(
                    initial=1)
                coef = np.where(same, 0.0, proj / np.where(same, 1.0, gap))
                g += (V @ coef) @ x.T
            return wrap_like(g.astype(values(A).dtype), A._dtype, A), None, None

    _LOBPCG_FN.append(LOBPCGAutogradFunction)
    return LOBPCGAutogradFunction


def lobpcg(A, k=None, B=None, X=None, n=None, iK=None, niter=None, tol=None, largest=None,
           method=None, tracker=None, ortho_iparams=None, ortho_fparams=None,
           ortho_bparams=None):
    """torch.lobpcg: the k largest (or smallest) eigenpairs of the symmetric (generalized)
    problem A x = e B x, found by LOBPCG with the preconditioner iK. Both methods ("basic",
    "ortho") take the same B-orthonormalised iteration, so the ortho_* tuning parameters
    change nothing; a batch of A runs matrix by matrix."""
    import numpy as np
    if A.ndim < 2 or A.shape[-2] != A.shape[-1]:
        raise AssertionError(f"A must be square, got shape {A.shape}")
    if B is not None and tuple(A.shape) != tuple(B.shape):
        raise AssertionError(f"A and B must have same shape, got {A.shape} vs {B.shape}")
    m = A.shape[-1]
    k = (1 if X is None else X.shape[-1]) if k is None else k
    n = (k if n is None else n) if X is None else X.shape[-1]
    if m < 3 * n:
        raise ValueError(f"LOBPCG algorithm is not applicable when the number of A rows (={m}) "
                         f"is smaller than 3 x the number of requested eigenpairs (={n})")
    if X is not None and tuple(X.shape[-2:]) != (m, n):
        raise AssertionError(f"X shape mismatch: got {X.shape}, expected {(m, n)}")
    if not A._dtype.is_floating_point:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{dt.CPP_NAME[A._dtype.name]} != float")
    niter = 1000 if niter is None else niter
    largest = True if largest is None else largest
    npd = np.float32 if A._dtype in (dt.float16, dt.bfloat16, dt.float32) else np.float64
    tol = float(np.finfo(npd).eps) ** 0.5 if tol is None else tol
    from . import strided
    if X is None:
        from .creation import randn
        X = randn(tuple(A.shape[:-2]) + (m, n), dtype=A.dtype, device=A.device)

    def host(t):
        if t is None:
            return None
        if t.layout is not strided:          # a sparse A, B or iK
            t = t.to_dense()
        return np.asarray(values(t.detach()), npd)

    def run(A, B):
        a, b, x, ik = host(A), host(B), host(X), host(iK)
        batch = a.shape[:-2]
        Es, Xs = [], []
        for i in np.ndindex(*batch):
            step = None if tracker is None else _LOBPCGWorker(
                A, B, iK, {"m": m, "n": n, "k": k, "niter": niter}, {"tol": tol},
                {"largest": largest}, "basic" if method == "basic" else "ortho", tracker)
            e, v = _lobpcg_host(a[i], None if b is None else b[i if b.ndim > 2 else ()],
                                x[i if x.ndim > 2 else ()],
                                None if ik is None else ik[i if ik.ndim > 2 else ()],
                                n, k, niter, tol, largest, step)
            Es.append(e[:k])
            Xs.append(v[:, :k])
        E = np.stack(Es).reshape(batch + Es[0].shape)
        V = np.stack(Xs).reshape(batch + Xs[0].shape)
        return wrap_like(E.astype(npd), A._dtype, A), wrap_like(V.astype(npd), A._dtype, A)

    if A.requires_grad or (B is not None and B.requires_grad):
        # (A + A^T) / 2: a symmetric gradient, so that A - lr * grad stays symmetric
        def sym(t):
            return apply(P["div"], apply(P["add"], t, S.transpose(t, -2, -1)), 2)
        return _lobpcg_function().apply(sym(A), None if B is None else sym(B), run)
    return run(A, B)


def _einsum_sublist(args):
    """einsum(op0, sublist0, op1, sublist1, ..., [out_sublist]) as (equation, operands)."""
    def letters(sub):
        return "".join("..." if x is Ellipsis else
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[x] for x in sub)
    ops, subs = list(args[0::2]), list(args[1::2])
    out = ops.pop() if len(args) % 2 else None       # an odd count ends with the output's
    eq = ",".join(letters(x) for x in subs)
    return (eq + "->" + letters(out) if out is not None else eq), tuple(ops)


def einsum(equation, *operands):
    if not isinstance(equation, str):            # the sublist form
        equation, operands = _einsum_sublist((equation,) + operands)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->", 1)
        rl = rhs.replace("...", "")
        for c in rl:
            if rl.count(c) > 1:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the "
                                   f"output (equation {equation!r})")
            if c not in lhs:
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the "
                                   f"equation for any input operand (equation {equation!r})")
        if "..." in lhs and "..." not in rhs:
            # torch sums the dims an ellipsis covers when the output leaves it out (NumPy
            # refuses): spell the ellipsis out as letters, which the output then omits
            from compiler.ops.linalg import _explicit_einsum
            ins, _ = _explicit_einsum(eq, [tuple(o.shape) for o in operands])
            equation = ",".join(ins) + "->" + rhs
    _same_dtype(f"einsum({equation!r})", *operands)
    return rename(apply(P["einsum"], *operands, equation=equation), "EinsumBackward0")


def tensordot(a, b, dims=2):
    if hasattr(dims, "tolist"):          # dims as a tensor
        dims = dims.tolist()
    if a._dtype is dt.bool_ or b._dtype is dt.bool_:   # torch runs it as an mm: no bool kernel
        raise NotImplementedError(f"tensordot: \"addmm_impl_cpu_\" not implemented for 'Bool' "
                                  f"(shapes {list(a.shape)} and {list(b.shape)})")
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = [list(d) if isinstance(d, (list, tuple)) else [d] for d in dims]
        from compiler.ir.registry import norm_dim
        da = [norm_dim("tensordot", d, a.ndim) for d in da]
        db = [norm_dim("tensordot", d, b.ndim) for d in db]
    letters = "abcdefghijklmnopqrstuvwxyz"
    sa = list(letters[:a.ndim])
    sb = list(letters[a.ndim:a.ndim + b.ndim])
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in da] + [c for k, c in enumerate(sb) if k not in db]
    # (PyTorch runs it as one dot or mm of the flattened operands)
    dt.refuse_chalf("addmm_impl_cpu_" if out else "dot", dt.promote_types(a._dtype, b._dtype))
    return einsum(f"{''.join(sa)},{''.join(sb)}->{''.join(out)}", a, b)


def kron(a, b):
    n = max(a.ndim, b.ndim)                 # the one with fewer dims gains leading 1s
    sa, sb = (1,) * (n - a.ndim) + tuple(a.shape), (1,) * (n - b.ndim) + tuple(b.shape)
    r = apply(P["mul"], S.reshape(a, tuple(x for s in sa for x in (s, 1))),
              S.reshape(b, tuple(x for s in sb for x in (1, s))))
    return rename(S.reshape(r, tuple(x * y for x, y in zip(sa, sb))), "UnsafeViewBackward0")


def cross(input, other, dim=None):
    if dim is None:
        dim = next((i for i, s in enumerate(input.shape) if s == 3), None)
        if dim is None:
            raise RuntimeError(f"cross: no dimension of size 3 in input (shape {list(input.shape)})")
    _same_dtype("linalg.cross", input, other)
    dt.refuse_barebones("cross", input._dtype)
    if input.ndim != other.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions (got "
                           f"shapes {list(input.shape)} and {list(other.shape)})")
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{input.shape[dim]} and {other.shape[dim]}")
    input, other = S.broadcast_tensors(input, other)
    a = [S.select(input, dim, i) for i in range(3)]
    b = [S.select(other, dim, i) for i in range(3)]
    from .ops_math import sub, mul
    c = [sub(mul(a[1], b[2]), mul(a[2], b[1])), sub(mul(a[2], b[0]), mul(a[0], b[2])),
         sub(mul(a[0], b[1]), mul(a[1], b[0]))]
    return rename(S.stack(c, dim), "LinalgCrossBackward0")


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    from .ops_math import norm, sub
    # compute_mode picks PyTorch's matmul shortcut for p=2; Kiln always takes the direct
    # difference, which is the more accurate of the two
    if compute_mode not in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                            "donot_use_mm_for_euclid_dist"):
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values (got p={p})")
    for n, x in (("X1", x1), ("X2", x2)):
        if x.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {n} got: {x.ndim}D")
    for n, x in (("X1", x1), ("X2", x2)):
        if not x._dtype.is_floating_point:
            raise RuntimeError(f"cdist only supports floating-point dtypes, {n} got: "
                               f"{dt.tname(x._dtype)}")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} "
                           f"X2: {x2.shape[-1]}")
    if x1._dtype is not x2._dtype:
        raise RuntimeError(f"expected scalar type {dt.tname(x1._dtype)} but found "
                           f"{dt.tname(x2._dtype)}")
    d = sub(S.unsqueeze(x1, -2), S.unsqueeze(x2, -3))
    return rename(norm(d, p, -1), "CdistBackward0")


# torch.linalg ----------------------------------------------------------------------------------

class _Linalg:
    """torch.linalg namespace."""

    from compiler.ops.linalg import LinAlgError

    @staticmethod
    def inv(A, *, out=None):
        from .ops_math import write_out
        return write_out(apply(P["inv"], A), out)

    @staticmethod
    def det(A, *, out=None):
        from .ops_math import write_out
        return write_out(apply(P["det"], A), out)

    @staticmethod
    def slogdet(A):
        import collections
        from .ops_math import sign, log, abs
        d = apply(P["det"], A)
        r = collections.namedtuple("slogdet", ["sign", "logabsdet"])
        return r(sign(d), log(abs(d)))

    @staticmethod
    def solve(A, B, *, left=True, out=None):
        if out is not None:
            from .ops_math import write_out
            return write_out(_Linalg.solve(A, B, left=left), out)
        if A.dtype is not B.dtype:
            raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A "
                               f"of type {A.dtype.name} and B of type {B.dtype.name} instead")
        if not left:     # X A = B  <=>  A^T X^T = B^T
            if A.ndim >= 2 and (B.ndim == 1 or (B.ndim == A.ndim - 1 and
                                                tuple(B.shape) == tuple(A.shape[:-1]))):
                # a vector B is a column (torch's rule), whose one column A's n must match
                if A.shape[-1] != 1:
                    raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the "
                                       f"equation XA = B ({A.shape[-2]}x{A.shape[-1]} and "
                                       f"{B.shape[-1]}x1)")
                raise RuntimeError("linalg.solve: Vector broadcasting of the left hand side is not "
                                   "supported for left=False. In this case linalg.solve is "
                                   "equivalent to B / A.squeeze(-1)")
            # B is a matrix here: solve A^T X^T = B^T with the primitive directly (B^T may look
            # like a batch of vectors to the left=True rule, e.g. A (2,3,3), B (3,2))
            if B.ndim < 2 or B.shape[-1] != A.shape[-1]:
                raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                                   f"XA = B ({'x'.join(map(str, A.shape[-2:]))} and "
                                   f"{'x'.join(map(str, B.shape[-2:]))})")
            return S.transpose(apply(P["solve"], S.transpose(A, -2, -1), S.transpose(B, -2, -1)),
                               -2, -1)
        # B is a (batch of) vector(s) when 1-D or when its shape is A's without the last dim
        if B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1])):
            if B.shape[-1] != A.shape[-1] if A.ndim >= 2 else True:
                raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                                   f"AX = B (A {list(A.shape)}, B {list(B.shape)})")
            return rename(S.squeeze(apply(P["solve"], A, S.unsqueeze(B, -1)), -1),
                          "LinalgSolveExBackward0")
        return apply(P["solve"], A, B)

    @staticmethod
    def eig(A):
        w, v = apply(P["eig"], A)
        return _LinalgEig(w, v)

    @staticmethod
    def eigvals(A):
        return apply(P["eig"], A)[0]

    @staticmethod
    def vecdot(x, y, *, dim=-1):
        from .ops_math import sum, mul
        if x.dtype.is_complex:
            raise NotImplementedError("linalg.vecdot: complex inputs need a conj primitive, which "
                                      "Kiln does not have yet")
        _same_dtype("linalg.vecdot", x, y)
        # (torch: vdot of two vectors, else a sum of the product)
        return rename(sum(mul(x, y), dim), "VdotBackward0" if x.ndim == 1 and y.ndim == 1
                      else "SumBackward1")

    @staticmethod
    def multi_dot(tensors):
        ts = list(tensors)
        if len(ts) < 2:
            raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(ts)}")
        for k, t in enumerate(ts):
            if t.ndim != 2 and not (t.ndim == 1 and k in (0, len(ts) - 1)):
                raise RuntimeError(f"multi_dot(): tensor {k} must be 2D (only the first and last "
                                   f"may be 1D) but got {t.ndim}D")
        r = ts[0]
        for t in ts[1:]:
            r = matmul(r, t)
        return r

    @staticmethod
    def qr(A, mode="reduced", *, _result=None):
        out = _result or _LinalgQr       # torch.return_types.linalg_qr (torch.qr: qr)
        if mode == "r":    # R only; torch returns an empty Q
            from .creation import empty
            return out(empty(0, dtype=A.dtype), apply(P["qr"], A, mode="reduced")[1])
        q, r = apply(P["qr"], A, mode=mode)
        return out(q, r)

    @staticmethod
    def svd(A, full_matrices=True):
        u, s, vh = apply(P["svd"], A, full_matrices=full_matrices)
        return _LinalgSvd(u, s, vh)

    @staticmethod
    def svdvals(A):
        return apply(P["svd"], A, full_matrices=False)[1]

    @staticmethod
    def cholesky(A, *, upper=False, out=None):
        from .ops_math import write_out
        return write_out(apply(P["cholesky"], A, upper=upper)[0], out)

    @staticmethod
    def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
        """(L, info): info (int32, one per matrix) is 0 where the factorization completed and
        otherwise the order of the first leading minor that is not positive-definite; raises
        instead only when check_errors."""
        from .ops_math import write_out
        attrs = dict(check_errors=True, name="linalg.cholesky_ex") if check_errors else \
            dict(check_errors=False)
        L, info = apply(P["cholesky"], A, upper=upper, **attrs)
        return write_out(_CholeskyEx(L, info), out)

    @staticmethod
    def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
        from .ops_math import write_out
        return write_out(_solve_triangular(A, B, upper, left, unitriangular), out)

    @staticmethod
    def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):
        from .ops_math import write_out
        if isinstance(dim, int):
            dim = (dim,)
        if dim is not None:
            dim = tuple(dim)
        if dim is not None and len(dim) not in (1, 2):
            raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. "
                               f"Got {list(dim)}")
        if ord is None:
            if dim is not None and len(dim) == 2:
                r = _Linalg.matrix_norm(A, "fro", dim, keepdim, dtype=dtype)
            else:
                r = _Linalg.vector_norm(A, 2, dim, keepdim, dtype=dtype)
            return write_out(r, out)
        if dim is None:
            if A.ndim not in (1, 2):
                raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must "
                                   f"be 1D or 2D. Got {A.ndim}D.")
            dim = tuple(range(A.ndim))
        if len(dim) == 2:
            r = _Linalg.matrix_norm(A, ord, dim, keepdim, dtype=dtype)
        elif len(dim) == 1:
            if isinstance(ord, str):
                raise RuntimeError(f"linalg.norm: order {ord} is not supported for vectors "
                                   f"(dim {list(dim)})")
            r = _Linalg.vector_norm(A, ord, dim, keepdim, dtype=dtype)
        else:
            raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got "
                               f"{list(dim)}")
        return write_out(r, out)

    @staticmethod
    def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
        from .ops_math import norm as _norm
        if isinstance(ord, str) or isinstance(ord, bool):
            raise TypeError(f"linalg_vector_norm(): argument 'ord' must be Number, not "
                            f"{type(ord).__name__}")
        return _norm(x, ord, dim, keepdim, dtype=dtype, out=out)

    @staticmethod
    def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
        from .ops_math import write_out
        if A.ndim < 2:
            raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 "
                               f"dimensions (got shape {list(A.shape)}).")
        if isinstance(dim, int) or len(tuple(dim)) != 2:
            raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}")
        from compiler.ir.registry import norm_dims
        dim = norm_dims("linalg.matrix_norm", tuple(dim), A.ndim)
        if dtype is not None:
            from .ops_math import cast
            A = cast(A, dtype)
        return write_out(_matrix_norm(A, ord, dim, keepdim), out)
    @staticmethod
    def matrix_rank(A, tol=None, hermitian=False, *, atol=None, rtol=None, out=None):
        """The count of singular values (|eigenvalues| when hermitian) above
        max(atol, rtol * largest); tol= (legacy) is atol with rtol 0. Computed on the host."""
        import numpy as np
        from .tensor import Tensor
        from .ops_math import write_out
        if A.ndim < 2:
            raise RuntimeError("torch.linalg.matrix_rank: The input tensor input must have at "
                               "least 2 dimensions.")
        if not (A._dtype.is_floating_point or A._dtype.is_complex):
            raise RuntimeError("This function doesn't handle types other than float and double")
        f = lambda v: None if v is None else _host_values(v) if isinstance(v, Tensor) else v  # noqa
        if tol is not None:
            atol, rtol = tol, 0.0
        atol, rtol = f(atol), f(rtol)
        if rtol is None:
            rtol = 0.0 if (atol is not None and np.all(np.asarray(atol) > 0)) else \
                float(np.finfo(A._dtype.np).eps) * max(A.shape[-2:])
        a = _host_values(A)
        sv = np.abs(np.linalg.eigvalsh(a)) if hermitian else np.linalg.svd(a, compute_uv=False)
        smax = sv.max(-1) if sv.shape[-1] else np.zeros(sv.shape[:-1])
        thr = np.maximum(np.asarray(0.0 if atol is None else atol), np.asarray(rtol) * smax)
        rank = (sv > np.expand_dims(thr, -1)).sum(-1)
        return write_out(wrap_like(np.asarray(rank, np.int64), dt.int64, A), out)

    @staticmethod
    def eigh(A, UPLO="L"):
        if not (A._dtype.is_floating_point or A._dtype.is_complex):
            raise NotImplementedError(f"\"linalg_eigh_cpu\" not implemented for "
                                      f"'{dt.tname(A._dtype)}'")
        w, v = apply(P["eigh"], A, UPLO=UPLO)
        return _LinalgEigh(w, v)

    @staticmethod
    def eigvalsh(A, UPLO="L"):
        return _Linalg.eigh(A, UPLO)[0]

    @staticmethod
    def pinv(A):
        import numpy as np
        if A.ndim < 2 or not (A._dtype.is_floating_point or A._dtype.is_complex):
            raise RuntimeError(f"linalg.pinv({dt.tname(A._dtype)}{{{list(A.shape)}}}): expected a "
                               f"tensor with 2 or more dimensions of float, double, cfloat or "
                               f"cdouble types")
        return wrap_like(np.linalg.pinv(_host_values(A)).astype(A._dtype.np), A._dtype, A)

    @staticmethod
    def matrix_power(A, n):
        if n == 0:
            from .creation import eye
            return eye(A.shape[-1], dtype=A.dtype).expand(A.shape)
        if n < 0:
            A, n = _Linalg.inv(A), -n
        r = A
        for _ in range(n - 1):
            r = matmul(r, A)
        return r

    @staticmethod
    def cross(input, other, dim=-1):
        return cross(input, other, dim)

    @staticmethod
    def matmul(a, b):
        return matmul(a, b)


def _matrix_norm(A, ord, dim, keepdim):
    """Matrix norms over the dim pair `dim` (already normalized, distinct)."""
    from .ops_math import sum, abs, amin, norm
    from . import ops_math as M
    if not (A.dtype.is_floating_point or A.dtype.is_complex):
        raise RuntimeError(f"linalg.matrix_norm: Expected a floating point or complex tensor as "
                           f"input. Got {dt.tname(A._dtype)}")
    d0, d1 = dim

    def amax(x, d, keepdim=False):
        # the norms are >= 0, so torch's max over an empty dim is 0 here (min still raises)
        return sum(x, d, keepdim) if x.shape[d] == 0 else M.amax(x, d, keepdim)
    if ord == "fro":
        return norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        # singular values of the matrices spanned by (d0, d1), moved to the last two dims
        sv = _Linalg.svdvals(S.movedim(A, (d0, d1), (-2, -1)))
        r = sum(sv, -1) if ord == "nuc" else (amax if ord == 2 else amin)(sv, -1)
        if keepdim:
            for d in sorted((d0, d1)):
                r = S.unsqueeze(r, d)
        return r
    if ord in (1, -1):
        s = sum(abs(A), d0, keepdim=True)
        r = (amax if ord == 1 else amin)(s, d1, keepdim=True)
    elif ord in (float("inf"), float("-inf")):
        s = sum(abs(A), d1, keepdim=True)
        r = (amax if ord > 0 else amin)(s, d0, keepdim=True)
    else:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if not keepdim:
        r = S.squeeze(r, (d0, d1))
    return r


linalg = _Linalg()


def _host_values(A):
    """A's values as a host array (NumPy's linalg; under compile() a value read)."""
    from ._device_ops import host
    return host(values(A))


def svdvals(A):
    return _Linalg.svdvals(A)


def det(A):
    return _Linalg.det(A)


def inverse(A):
    return _Linalg.inv(A)


def svd(A, some=True, compute_uv=True):
    out = _Svd
    if not compute_uv:      # torch: the singular values, and zero-filled square U and V
        from .creation import zeros
        m, n = A.shape[-2:]
        sv = svdvals(A)
        z = lambda k: zeros(tuple(A.shape[:-2]) + (k, k), dtype=A.dtype, device=A.device)  # noqa: E731
        return out(z(m), sv, z(n))
    u, s, vh = apply(P["svd"], A, full_matrices=not some)
    return out(u, s, S.transpose(vh, -2, -1))


def qr(A, some=True):
    _deprecated("qr")
    return _Linalg.qr(A, "reduced" if some else "complete", _result=_Qr)


def cholesky(A, upper=False, *, out=None):
    _deprecated("cholesky")
    from .ops_math import write_out
    r = apply(P["cholesky"], A, upper=upper, name="cholesky")[0]
    return write_out(rename(r, "CholeskyBackward0"), out)


from .return_types import named as _named  # noqa: E402


_CholeskyEx = _named("linalg_cholesky_ex", ["L", "info"])
_TriangularSolve = _named("triangular_solve", ["solution", "cloned_coefficient"])


def _solve_triangular(A, B, upper, left, unitriangular):
    """A X = B (left) or X A = B with A triangular: one primitive (left, A's triangle read);
    X A = B is A^T X^T = B^T. The result has A's dtype, as PyTorch's."""
    from .ops_math import cast
    if B.ndim < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 "
                           "dimensions.")
    if B.dtype is not A.dtype and (A.dtype.is_floating_point or A.dtype.is_complex):
        B = cast(B, A.dtype)
    if left:
        return apply(P["solve_triangular"], A, B, upper=bool(upper),
                     unitriangular=bool(unitriangular))
    if A.ndim >= 2 and A.shape[-1] == A.shape[-2] and B.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the "
                           f"equation XA = B ({A.shape[-2]}x{A.shape[-1]} and "
                           f"{B.shape[-2]}x{B.shape[-1]})")
    At = S.transpose(A, -2, -1) if A.ndim >= 2 else A
    X = apply(P["solve_triangular"], At, S.transpose(B, -2, -1), upper=not upper,
              unitriangular=bool(unitriangular))
    return rename(S.transpose(X, -2, -1), "LinalgSolveTriangularBackward0")


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False, *, out=None):
    """Legacy torch.triangular_solve: (solution of op(A) X = b, a copy of A), op(A) = A^T when
    transpose; batch dims broadcast."""
    _deprecated("triangular_solve")
    from .ops_math import write_out, clone
    if b.ndim < 2:
        raise RuntimeError(f"torch.triangular_solve: Expected b to have at least 2 dimensions, "
                           f"but it has {b.ndim} dimensions instead")
    if A.ndim < 2:
        raise RuntimeError(f"torch.triangular_solve: Expected A to have at least 2 dimensions, "
                           f"but it has {A.ndim} dimensions instead")
    if b.dtype is not A.dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type "
                           f"{dt.tname(b.dtype)} and A of type {dt.tname(A.dtype)} instead.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"A must be batches of square matrices, but they are {A.shape[-2]} by "
                           f"{A.shape[-1]} matrices")
    if A.shape[-1] != b.shape[-2]:
        raise RuntimeError(f"Incompatible matrix sizes for triangular_solve: each A matrix is "
                           f"{A.shape[-2]} by {A.shape[-1]} but each b matrix is {b.shape[-2]} by "
                           f"{b.shape[-1]}")
    x = apply(P["solve_triangular"], S.transpose(A, -2, -1) if transpose else A, b,
              upper=bool(upper) != bool(transpose), unitriangular=bool(unitriangular))
    batch = tuple(x.shape[:-2])
    Ac = clone(S.expand(A, batch + tuple(A.shape[-2:])) if tuple(A.shape[:-2]) != batch else A)
    r = _TriangularSolve(rename(x, "TriangularSolveBackward0"),
                         rename(Ac, "TriangularSolveBackward0"))
    return write_out(r, out)


def cholesky_inverse(L, upper=False, *, out=None):
    """(L L^T)^-1 from a Cholesky factor (U^T U with upper): L^-1 by a triangular solve, then
    L^-T L^-1. Only L's triangle is read, so only it gets a gradient."""
    from .ops_math import write_out
    from .creation import eye
    if L.ndim < 2:
        raise RuntimeError("cholesky_inverse: The input tensor A must have at least 2 dimensions.")
    if L.shape[-1] != L.shape[-2]:
        raise RuntimeError(f"cholesky_inverse: A must be batches of square matrices, but they are "
                           f"{L.shape[-2]} by {L.shape[-1]} matrices")
    if not (L.dtype.is_floating_point or L.dtype.is_complex) or L.dtype in (dt.float16,
                                                                            dt.bfloat16):
        raise NotImplementedError(f"\"cholesky_inverse_out_cpu\" not implemented for "
                                  f"'{dt.tname(L.dtype)}'")
    Id = eye(L.shape[-1], dtype=L.dtype, device=L.device)
    Linv = apply(P["solve_triangular"], L, Id, upper=bool(upper), unitriangular=False)
    LinvT = S.transpose(Linv, -2, -1)
    r = matmul(Linv, LinvT) if upper else matmul(LinvT, Linv)
    return write_out(rename(r, "CholeskyInverseBackward0"), out)


# ---- LU, determinants, matrix functions ----------------------------------------------------------

_LuFactor = _named("linalg_lu_factor", ["LU", "pivots"])
_LuFactorEx = _named("linalg_lu_factor_ex", ["LU", "pivots", "info"])
_Lu = _named("linalg_lu", ["P", "L", "U"])
_LuUnpack = _named("lu_unpack", ["P", "L", "U"])
_LuWithInfo = _named("_lu_with_info", ["LU", "pivots", "info"])
_Slogdet = _named("slogdet", ["sign", "logabsdet"])
_LinalgSlogdet = _named("linalg_slogdet", ["sign", "logabsdet"])
_InvEx = _named("linalg_inv_ex", ["inverse", "info"])
_SolveEx = _named("linalg_solve_ex", ["result", "info"])
_Lstsq = _named("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
_LinalgEig = _named("linalg_eig", ["eigenvalues", "eigenvectors"])
_LinalgEigh = _named("linalg_eigh", ["eigenvalues", "eigenvectors"])
_LinalgSvd = _named("linalg_svd", ["U", "S", "Vh"])
_Svd = _named("svd", ["U", "S", "V"])
_LinalgQr = _named("linalg_qr", ["Q", "R"])
_Qr = _named("qr", ["Q", "R"])
_Geqrf = _named("geqrf", ["a", "tau"])


def _lu_factor_ex(A, pivot=True, check_errors=False, name="torch.linalg.lu_factor_ex"):
    LU, piv, info = apply(P["lu_factor"], A, pivot=bool(pivot))
    if check_errors:            # (a plain RuntimeError here in torch, not a LinAlgError)
        _raise_info(info, name, cls=RuntimeError, msg=lambda i: f"U[{i + 1},{i + 1}] is zero and using it on lu_solve would "
                    f"result in a division by zero. If you still want to perform the "
                    f"factorization, consider calling linalg.lu(A, pivot) or "
                    f"linalg.lu_factor_ex(A, pivot)")
    return LU, piv, info


def _raise_info(info, name, msg, cls=None):
    import numpy as np
    flat = _host_values(info).reshape(-1)
    bad = np.flatnonzero(flat)
    if bad.size:
        first = int(bad[0])
        where = f"(Batch element {first}): " if info.ndim else ""
        raise (cls or _Linalg.LinAlgError)(f"{name}: {where}{msg(int(flat[first]) - 1)}")


def _eye_like(A, n):
    from .creation import eye
    return eye(n, dtype=A.dtype, device=A.device)


def _perm_from_pivots(piv, m, dtype):
    """P (A = P L U) from getrf's pivots, built as eq(arange, perm): no gradient, any device."""
    from .creation import arange
    perm = apply(P["lu_pivots_to_perm"], piv, m=m)
    r = S.reshape(arange(m, device=piv.device), (m, 1))
    return (S.unsqueeze(perm, -2) == r).to(dtype)


def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True, *, out=None):
    from .ops_math import write_out
    from .creation import empty
    if LU_data.ndim < 2:
        raise RuntimeError(f"torch.lu_unpack: Expected tensor with 2 or more dimensions. Got size: "
                           f"{list(LU_data.shape)} instead")
    m, n = LU_data.shape[-2:]
    k = min(m, n)
    if LU_pivots._dtype is not dt.int32:
        raise RuntimeError(f"torch.lu_unpack: LU_pivots is expected to be a contiguous tensor of "
                           f"torch.int32 dtype. Note: this function is intended to be used with "
                           f"the output produced by torch.linalg.lu_factor (got "
                           f"{LU_pivots.dtype})")
    if tuple(LU_pivots.shape) != tuple(LU_data.shape[:-2]) + (k,):
        raise RuntimeError(f"torch.lu_unpack: Expected LU_pivots.size(-1) == min(LU_data.size(-1),"
                           f" LU_data.size(-2)), but got {LU_pivots.shape[-1] if LU_pivots.ndim else 0}"
                           f" != {k}")
    if unpack_data:
        L = S.narrow(S.tril(LU_data, -1), -1, 0, k) + _eye_like(LU_data, max(m, n))[:m, :k]
        U = S.narrow(S.triu(LU_data), -2, 0, k)
    else:
        L = U = empty(0, dtype=LU_data.dtype, device=LU_data.device)
    Pm = _perm_from_pivots(LU_pivots, m, LU_data.dtype) if unpack_pivots else \
        empty(0, dtype=LU_data.dtype, device=LU_data.device)
    return write_out(_LuUnpack(Pm, rename(L, "LuUnpackBackward0") if unpack_data else L,
                               rename(U, "LuUnpackBackward0") if unpack_data else U), out)


def _lu_solve(LU, pivots, B, left=True, adjoint=False):
    """A X = B from A = P L U: X = U^-1 L^-1 P^T B by two triangular solves (only LU's
    triangles are read, so only they get gradients); adjoint / right variants by transposes."""
    if LU.ndim < 2 or LU.shape[-1] != LU.shape[-2]:
        raise RuntimeError(f"linalg.lu_solve: A must be batches of square matrices, but they are "
                           f"{LU.shape[-2] if LU.ndim > 1 else ''} by {LU.shape[-1]} matrices")
    if B.ndim < 2:
        raise RuntimeError("linalg.lu_solve: The input tensor B must have at least 2 dimensions.")
    if B.dtype is not LU.dtype:
        raise RuntimeError(f"linalg.lu_solve: Expected LU and B to have the same dtype, but found "
                           f"LU of type {dt.tname(LU.dtype)} and B of type {dt.tname(B.dtype)} "
                           f"instead")
    n = LU.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise RuntimeError(f"linalg.lu_solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and "
                           f"{B.shape[-2]}x{B.shape[-1]})")
    if tuple(pivots.shape) != tuple(LU.shape[:-1]) or pivots._dtype is not dt.int32:
        raise RuntimeError(f"linalg.lu_solve: Expected pivots of shape {list(LU.shape[:-1])} and "
                           f"dtype int32 (got {list(pivots.shape)}, {pivots.dtype})")
    Pm = _perm_from_pivots(pivots, n, LU.dtype)
    mT = lambda t: S.transpose(t, -2, -1)                         # noqa: E731
    tri = lambda A, X, upper, unit: apply(P["solve_triangular"], A, X, upper=upper,  # noqa: E731
                                          unitriangular=unit)
    if not left:       # X A = B  <=>  A^T X^T = B^T
        return mT(_lu_solve(LU, pivots, mT(B), True, not adjoint))
    if not adjoint:    # P L U X = B
        Y = tri(LU, matmul(mT(Pm), B), False, True)
        return tri(LU, Y, True, False)
    # A^T X = B: U^T L^T P^T X = B
    Y = tri(mT(LU), B, False, False)
    Z = tri(mT(LU), Y, True, True)
    return matmul(Pm, Z)


def lu_solve(b, LU_data, LU_pivots, *, out=None):
    _deprecated("lu_solve")
    from .ops_math import write_out
    return write_out(_lu_solve(LU_data, LU_pivots, b), out)


def lu(A, pivot=True, get_infos=False, out=None):
    _deprecated("lu")
    LU, piv, info = _lu_factor_ex(A, pivot, not get_infos, "torch.linalg.lu_factor")
    return _LuWithInfo(LU, piv, info) if get_infos else (LU, piv)


def _slogdet(A, name):
    from .ops_math import sum, prod, log, abs, sign, sgn, remainder
    from .creation import arange
    _square_check(A, name)
    if A._dtype.is_complex:          # the sign is a unit complex number: sgn, not sign
        sign = sgn
    n = A.shape[-1]
    LU, piv, _ = apply(P["lu_factor"], A, pivot=True)
    d = S.diagonal(LU, 0, -2, -1)
    swaps = sum((piv != arange(1, n + 1, dtype=dt.int32, device=A.device)).to(dt.int64), -1)
    psign = 1 - 2 * remainder(swaps, 2).to(A.dtype)
    sgn = prod(sign(d), -1) * psign
    return sgn, sum(log(abs(d)), -1)


def _square_check(A, name):
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{name}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2] if A.ndim > 1 else ''} by "
                           f"{A.shape[-1] if A.ndim else ''} matrices")
    if not (A._dtype.is_floating_point or A._dtype.is_complex):
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. "
                           f"Got {dt.tname(A._dtype)}")


def slogdet(A, *, out=None):
    from .ops_math import write_out
    s, l = _slogdet(A, "linalg.slogdet")
    return write_out(_Slogdet(s, rename(l, "LinalgSlogdetBackward0")), out)


def logdet(A):
    """log det A: nan where det < 0, -inf where det == 0 (as PyTorch)."""
    from .ops_math import where
    s, l = _slogdet(A, "linalg.slogdet")
    return rename(where(s < 0, float("nan"), l), "LogdetBackward0")


def matrix_power(A, n, *, out=None):
    """A^n by repeated squaring; n < 0 inverts first (float input), n == 0 gives identities."""
    from .ops_math import write_out, clone
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but they "
                           f"are {A.shape[-2] if A.ndim > 1 else ''} by "
                           f"{A.shape[-1] if A.ndim else ''} matrices")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"matrix_power(): argument 'n' must be int, not {type(n).__name__}")
    if n == 0:
        I = S.expand(_eye_like(A, A.shape[-1]).to(A.dtype), tuple(A.shape))
        if A.requires_grad:     # identities that still pass A a (zero) gradient, as torch
            from .ops_math import full_on
            return write_out(rename(apply(P["where"], full_on(A, tuple(A.shape), False, dt.bool_),
                                          A, I), "CopyBackwards"), out)   # (torch: I.copy_)
        return write_out(clone(I), out)
    if n < 0:
        if not (A._dtype.is_floating_point or A._dtype.is_complex):
            raise RuntimeError(f"linalg.inv: Expected a floating point or complex tensor as input. "
                               f"Got {dt.tname(A._dtype)}")
        A, n = _Linalg.inv(A), -n
    r, base = None, A
    while n:
        if n & 1:
            r = base if r is None else matmul(r, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    # torch's node is its last op's: matmul's, the inverse's (n = -1), a clone (n = 1)
    return write_out(r if r is not A else rename(r * 1, "CloneBackward0"), out)


def matrix_exp(A):
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.matrix_exp: Expected a square matrix or batch of square "
                           f"matrices. Got shape {list(A.shape)}")
    if not (A._dtype.is_floating_point or A._dtype.is_complex):
        raise RuntimeError(f"linalg.matrix_exp: Expected a floating point or complex tensor as "
                           f"input. Got {dt.tname(A._dtype)}")
    return apply(P["matrix_exp"], A)


def _pinv(A, atol=None, rtol=None, hermitian=False, name="linalg.pinv"):
    import numpy as np
    from .tensor import Tensor
    f = lambda v: None if v is None else float(v.item() if isinstance(v, Tensor) else v)  # noqa
    atol, rtol = f(atol), f(rtol)
    if rtol is None:
        eps = float(np.finfo(A._dtype.np).eps) if A._dtype.is_floating_point or \
            A._dtype.is_complex else 0.0
        rtol = 0.0 if (atol is not None and atol > 0) else eps * max(A.shape[-2:] or (0,))
    return apply(P["pinv"], A, atol=atol or 0.0, rtol=rtol)


def pinverse(input, rcond=1e-15):
    return rename(_pinv(input, rtol=rcond), "PinverseBackward0")


def chain_matmul(*matrices, out=None):
    from .ops_math import write_out
    import warnings
    warnings.warn(_DEPRECATED["chain_matmul"])
    if not matrices:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    for k, t in enumerate(matrices):
        if t.ndim != 2:
            raise RuntimeError(f"Tensor dimension is {t.ndim}, expected 2 instead.")
    if len(matrices) == 1:
        return write_out(matrices[0].clone(), out)
    return write_out(_Linalg.multi_dot(matrices), out)


def cholesky_solve(B, L, upper=False, *, out=None):
    """A X = B from A's Cholesky factor: two triangular solves (only L's triangle is read)."""
    from .ops_math import write_out
    if B.ndim < 2 or L.ndim < 2:
        raise RuntimeError(f"b should have at least 2 dimensions, but has {B.ndim} dimensions "
                           f"instead" if B.ndim < 2 else f"u should have at least 2 dimensions, "
                           f"but has {L.ndim} dimensions instead")
    if B.dtype is not L.dtype:
        raise RuntimeError(f"Expected b and u to have the same dtype, but found b of type "
                           f"{dt.tname(B.dtype)} and u of type {dt.tname(L.dtype)} instead.")
    mT = lambda t: S.transpose(t, -2, -1)                         # noqa: E731
    if upper:   # A = U^T U
        Y = apply(P["solve_triangular"], mT(L), B, upper=False, unitriangular=False)
        X = apply(P["solve_triangular"], L, Y, upper=True, unitriangular=False)
    else:       # A = L L^T
        Y = apply(P["solve_triangular"], L, B, upper=False, unitriangular=False)
        X = apply(P["solve_triangular"], mT(L), Y, upper=True, unitriangular=False)
    return write_out(rename(X, "CholeskySolveBackward0"), out)


def _lstsq(A, B, rcond=None, driver=None):
    import numpy as np
    from .creation import empty
    from .ops_math import sum as _sum
    drivers = ("gels", "gelsy", "gelsd", "gelss")
    if driver is None:
        driver = "gelsy"
    if driver not in drivers:
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of "
                           "(gels, gelsy, gelsd, gelss)")
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.lstsq: input must have at least 2 dimensions.")
    if not (A._dtype.is_floating_point or A._dtype.is_complex):
        raise RuntimeError(f"torch.linalg.lstsq: Expected a floating point or complex tensor as "
                           f"input. Got {dt.tname(A._dtype)}")
    if B.dtype is not A.dtype:
        raise RuntimeError(f"torch.linalg.lstsq: Expected input and other to have the same dtype, "
                           f"but got input's dtype {dt.tname(A._dtype)} and other's dtype "
                           f"{dt.tname(B._dtype)}")
    vec = B.ndim == A.ndim - 1
    Bm = S.unsqueeze(B, -1) if vec else B
    m, n = A.shape[-2:]
    if Bm.shape[-2] != m:
        raise RuntimeError(f"torch.linalg.lstsq: input.size(-2) should match other.size(-2) "
                           f"(got {m} and {Bm.shape[-2]})")
    eps = float(np.finfo(A._dtype.np).eps)
    rc = eps * max(m, n) if rcond is None or rcond < 0 else rcond
    X = matmul(apply(P["pinv"], A, atol=0.0, rtol=rc), Bm)
    sol = S.squeeze(X, -1) if vec else X
    emp = empty(0, dtype=A.dtype, device=A.device)
    sv = _Linalg.svdvals(A) if driver in ("gelsd", "gelss") else emp
    if driver != "gels":
        s = _host_values(_Linalg.svdvals(A))
        tol = rc * (s[..., :1] if s.shape[-1] else 0)
        rank = wrap_like(np.asarray((s > tol).sum(-1), np.int64), dt.int64, A)
    else:
        rank = empty(0, dtype=dt.int64, device=A.device)
    res = emp
    if m > n and driver != "gelsy":
        full = bool(np.all(_host_values(rank) == n)) if driver != "gels" else True
        if full:
            r = matmul(A, X) - Bm
            res = _sum(r * r, -2)       # (a vector B keeps its column: torch's (..., 1))
    return _Lstsq(sol, res, rank, sv)


def _cond(A, p=None):
    from .ops_math import amax, amin
    if A.ndim < 2:
        raise RuntimeError("linalg.cond: The input tensor A must have at least 2 dimensions.")
    if not (A._dtype.is_floating_point or A._dtype.is_complex):
        raise RuntimeError(f"linalg.cond: Expected a floating point or complex tensor as input. "
                           f"Got {dt.tname(A._dtype)}")
    if A.numel() == 0 and A.shape[-1] == A.shape[-2]:     # empty matrices: 0, as torch
        from .creation import zeros
        return zeros(tuple(A.shape[:-2]), dtype=A._dtype.to_real(), device=A.device)
    if p is None or p in (2, -2):
        s = _Linalg.svdvals(A)
        r = amax(s, -1) / amin(s, -1)
        return r if p != -2 else amin(s, -1) / amax(s, -1)
    if p not in ("fro", "nuc", 1, -1, float("inf"), float("-inf")):
        raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.cond(ord={p}): A must be batches of square matrices, but "
                           f"they are {A.shape[-2]} by {A.shape[-1]} matrices")
    inv, info = _Linalg.inv_ex(A)
    import numpy as np
    if bool(np.any(_host_values(info) != 0)):
        # singular matrices: PyTorch answers inf for them
        from .ops_math import where
        from .creation import eye
        bad = S.reshape(info != 0, tuple(info.shape) + (1, 1))
        safe = where(bad, eye(A.shape[-1], dtype=A.dtype, device=A.device), A)
        r = _Linalg.matrix_norm(A, p) * _Linalg.matrix_norm(_Linalg.inv(safe), p)
        return where(info != 0, float("inf"), r)
    return _Linalg.matrix_norm(A, p) * _Linalg.matrix_norm(inv, p)


def _householder_product(A, tau):
    """Q = H_1 ... H_k (first n columns), H_i = I - tau_i v_i v_i^H with v_i the i-th column of
    A below the diagonal and 1 on it (LAPACK's orgqr): a composite, differentiable."""
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.householder_product: input must have at least 2 "
                           "dimensions.")
    m, n = A.shape[-2:]
    if m < n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-2] must be greater "
                           "than or equal to input.shape[-1]")
    k = tau.shape[-1] if tau.ndim else 0
    if k > n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-1] must be greater "
                           "than or equal to tau.shape[-1]")
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise RuntimeError(f"torch.linalg.householder_product: Expected batch dimensions of tau "
                           f"to be equal to input.shape[:-2], but got {list(tau.shape[:-1])}")
    if tau.dtype is not A.dtype:
        raise RuntimeError(f"torch.linalg.householder_product: tau dtype {dt.tname(tau._dtype)} "
                           f"does not match input dtype {dt.tname(A._dtype)}")
    return S.narrow(_reflector_product(A, tau), -1, 0, n) * 1


def _reflector_product(A, tau):
    """The full (*, m, m) Q = H_1 ... H_k, k = tau.shape[-1] <= m, H_i = I - tau_i v_i v_i^H with
    v_i column i of A below the diagonal and 1 on it: composed of ops, so differentiable."""
    m, k = A.shape[-2], tau.shape[-1]
    I = _eye_like(A, m)
    V = S.tril(S.narrow(A, -1, 0, k), -1) + I[:, :k]
    Q = S.expand(I, tuple(A.shape[:-2]) + (m, m))
    for i in range(k):
        v = S.narrow(V, -1, i, 1)                                # (*, m, 1)
        t = S.unsqueeze(S.narrow(tau, -1, i, 1), -1)             # (*, 1, 1)
        Q = Q - matmul(matmul(Q, v) * t, S.transpose(v, -2, -1).conj())    # H_i = I - tau v v^H
    return Q


def orgqr(input, tau):
    return _householder_product(input, tau)


def ormqr(input, tau, other, left=True, transpose=False, *, out=None):
    """Q @ other (other @ Q when left=False; Q^H for transpose=True) with Q the Householder
    product geqrf packs in (input, tau). Q is formed (m x m) and multiplied, rather than applied
    reflector by reflector as LAPACK's ormqr does: gradients come from the composed ops."""
    if input.ndim < 2:
        raise RuntimeError("torch.ormqr: input must have at least 2 dimensions.")
    if other.ndim < 2:
        raise RuntimeError("torch.ormqr: other must have at least 2 dimensions.")
    side = -2 if left else -1
    m = input.shape[-2]
    if other.shape[side] != m:
        raise RuntimeError(f"torch.ormqr: other.shape[{side}] must be equal to input.shape[-2]")
    if tau.ndim == 0 or tau.shape[-1] != min(other.shape[side], input.shape[-1]):
        raise RuntimeError(f"torch.ormqr: tau.shape[-1] must be equal to min(other.shape[{side}], "
                           f"input.shape[-1])")
    if input.ndim - tau.ndim != 1:
        raise RuntimeError(f"torch.ormqr: Expected tau to have one dimension less than input, "
                           f"but got tau.ndim equal to {tau.ndim} and input.ndim is equal to "
                           f"{input.ndim}")
    if input.ndim != other.ndim:
        raise RuntimeError(f"torch.ormqr: Expected other to have the same number of dimensions "
                           f"as input, but got other.ndim equal to {other.ndim} and input.ndim "
                           f"is equal to {input.ndim}")
    batch = tuple(input.shape[:-2])
    if tuple(tau.shape[:-1]) != batch:
        raise RuntimeError(f"torch.ormqr: Expected batch dimensions of tau to be equal to "
                           f"input.shape[:-2], but got {list(tau.shape[:-1])}")
    if tuple(other.shape[:-2]) != batch:
        raise RuntimeError(f"torch.ormqr: Expected batch dimensions of other to be equal to "
                           f"input.shape[:-2], but got {list(other.shape[:-2])}")
    for name, t in (("tau", tau), ("other", other)):
        if t.dtype is not input.dtype:
            # (torch's message has no space after "dtype" for input)
            raise RuntimeError(f"torch.ormqr: Expected input and {name} to have the same dtype, "
                               f"but input has dtype{dt.tname(input._dtype)} and {name} has "
                               f"dtype {dt.tname(t._dtype)}")
    if input._dtype not in (dt.float32, dt.float64, dt.complex64, dt.complex128):
        raise NotImplementedError(f"\"ormqr_{'cpu' if input.device.type == 'cpu' else 'cuda'}\" "
                                  f"not implemented for '{dt.tname(input._dtype)}'")
    Q = _reflector_product(input, tau)
    if transpose:
        Q = S.transpose(Q, -2, -1).conj()        # Q^H: LAPACK's trans='C' for complex
    return write_out(matmul(Q, other) if left else matmul(other, Q), out)


def geqrf(input, *, out=None):
    """QR in LAPACK's packed form: a holds R on and above the diagonal and the Householder
    vectors below it, tau their scales (householder_product(a, tau) is Q). No gradient, as
    PyTorch's."""
    from .ops_math import write_out
    from ._dispatch import STATE
    if input.requires_grad and STATE.grad_enabled:
        # PyTorch records GeqrfBackward0, which raises when backward reaches it
        a, tau = _geqrf_no_grad().apply(input)
        rename(a, "GeqrfBackward0")
    else:
        a, tau = apply(P["geqrf"], input)
    return write_out(_Geqrf(a, tau), out)


@functools.cache
def _geqrf_no_grad():
    from .autograd.function import Function       # (at first use: import order)

    class _GeqrfNoGrad(Function):
        @staticmethod
        def forward(ctx, x):
            return apply(P["geqrf"], x)

        @staticmethod
        def backward(ctx, ga, gtau):
            raise NotImplementedError("the derivative for 'geqrf' is not implemented.")
    return _GeqrfNoGrad


def _tensorinv(A, ind=2):
    import math
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    outs, ins = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    p, q = math.prod(outs), math.prod(ins)
    if p != q:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {q} != {p}")
    return S.reshape(_Linalg.inv(S.reshape(A, (p, q))), ins + outs)


def _tensorsolve(A, B, dims=None):
    import math
    if dims is not None:
        nd = A.ndim
        dims = [d % nd for d in dims]
        rest = [d for d in range(nd) if d not in dims]
        A = S.permute(A, rest + dims)
    bsh = tuple(B.shape)
    rsh = tuple(A.shape[B.ndim:])
    p = math.prod(bsh)
    q = math.prod(rsh)
    if p != q or tuple(A.shape[:B.ndim]) != bsh:
        raise RuntimeError(f"Expected self to satisfy the requirement "
                           f"prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), but "
                           f"got {q} != {p}")
    X = _Linalg.solve(S.reshape(A, (p, q)), S.reshape(B, (p,)))
    return S.reshape(X, rsh)


def _vander(x, N=None):
    from .ops_math import cumprod
    from .creation import ones
    if x.ndim == 0:
        raise RuntimeError("N must be greater than 1.")
    n = x.shape[-1]
    N = n if N is None else N
    if N <= 1:
        raise RuntimeError("N must be greater than 1.")
    xd = x if x._dtype.category >= 2 else x.to(dt.int64)
    one = ones(tuple(x.shape) + (1,), dtype=xd._dtype, device=x.device)
    return rename(cumprod(S.cat([one, S.expand(S.unsqueeze(xd, -1), tuple(x.shape) + (N - 1,))],
                                -1), -1), "CatBackward0")      # (torch: cat of ones, cumprod)


def _inv_ex(A, check_errors=False):
    """(inverse, info) through LU: info is getrf's first zero pivot (0 where invertible)."""
    _square_check(A, "linalg.inv_ex")
    LU, piv, info = apply(P["lu_factor"], A, pivot=True)
    if check_errors:
        _raise_info(info, "linalg.inv_ex", lambda i: f"The diagonal element {i + 1} is zero, the "
                    f"inversion could not be completed because the input matrix is singular.")
    I = S.expand(_eye_like(A, A.shape[-1]), tuple(A.shape))
    return _InvEx(rename(_lu_solve(LU, piv, I), "LinalgInvExBackward0"), info)


def _solve_ex(A, B, left=True, check_errors=False):
    _square_check(A, "linalg.solve_ex")
    LU, piv, info = apply(P["lu_factor"], A, pivot=True)
    if check_errors:
        _raise_info(info, "torch.linalg.solve_ex", lambda i: "The solver failed because the input "
                    "matrix is singular.")
    vec = B.ndim == 1 or (left and B.ndim == A.ndim - 1 and
                          tuple(B.shape) == tuple(A.shape[:-1]))
    Bm = S.unsqueeze(B, -1) if vec else B
    if B.dtype is not A.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A "
                           f"of type {dt.tname(A._dtype)} and B of type {dt.tname(B._dtype)} "
                           f"instead")
    batch = tuple(broadcast_batch(A, Bm))
    LUb = S.expand(LU, batch + tuple(LU.shape[-2:]))
    pivb = S.expand(piv, batch + tuple(piv.shape[-1:]))
    Bb = S.expand(Bm, batch + tuple(Bm.shape[-2:]))
    X = _lu_solve(LUb, pivb, Bb, left=left)
    return _SolveEx(S.squeeze(X, -1) if vec else X, info)


def broadcast_batch(A, B):
    return S.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2]))


def _linalg_more():
    """Bind the torch.linalg functions defined above."""
    def lu_factor(A, *, pivot=True, out=None):
        from .ops_math import write_out
        LU, piv, _ = _lu_factor_ex(A, pivot, True, "torch.linalg.lu_factor")
        return write_out(_LuFactor(LU, piv), out)

    def lu_factor_ex(A, *, pivot=True, check_errors=False, out=None):
        from .ops_math import write_out
        return write_out(_LuFactorEx(*_lu_factor_ex(A, pivot, check_errors)), out)

    def lu(A, *, pivot=True, out=None):
        from .ops_math import write_out
        LU, piv, _ = _lu_factor_ex(A, pivot)
        Pm, L, U = lu_unpack(LU, piv)
        return write_out(_Lu(Pm, rename(L, "LinalgLuBackward0"), rename(U, "LinalgLuBackward0")),
                         out)

    def lu_solve(LU, pivots, B, *, left=True, adjoint=False, out=None):
        from .ops_math import write_out
        return write_out(_lu_solve(LU, pivots, B, left, adjoint), out)

    def slogdet_(A, *, out=None):
        from .ops_math import write_out
        s, l = _slogdet(A, "linalg.slogdet")
        return write_out(_LinalgSlogdet(s, rename(l, "LinalgSlogdetBackward0")), out)

    def lstsq(A, B, rcond=None, *, driver=None):
        return _lstsq(A, B, rcond, driver)

    def cond(A, p=None, *, out=None):
        from .ops_math import write_out
        return write_out(_cond(A, p), out)

    def inv_ex(A, *, check_errors=False, out=None):
        from .ops_math import write_out
        return write_out(_inv_ex(A, check_errors), out)

    def solve_ex(A, B, *, left=True, check_errors=False, out=None):
        from .ops_math import write_out
        return write_out(_solve_ex(A, B, left, check_errors), out)

    def pinv(A, rcond=None, hermitian=False, *, atol=None, rtol=None, out=None):
        from .ops_math import write_out
        if rcond is not None:           # the legacy spelling of rtol
            rtol = rcond
        return write_out(_pinv(A, atol, rtol, hermitian), out)

    def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
        return S.diagonal(A, offset, dim1, dim2)

    def householder_product(A, tau, *, out=None):
        from .ops_math import write_out
        return write_out(_householder_product(A, tau), out)

    def vander(x, *, N=None):
        return _vander(x, N)

    def tensorinv(A, ind=2, *, out=None):
        from .ops_math import write_out
        return write_out(_tensorinv(A, ind), out)

    def tensorsolve(A, B, dims=None, *, out=None):
        from .ops_math import write_out
        return write_out(_tensorsolve(A, B, dims), out)

    def matrix_power_(A, n, *, out=None):
        return matrix_power(A, n, out=out)

    def matrix_exp_(A):
        return matrix_exp(A)

    for name, f in dict(lu_factor=lu_factor, lu_factor_ex=lu_factor_ex, lu=lu, lu_solve=lu_solve,
                        slogdet=slogdet_, lstsq=lstsq, cond=cond, inv_ex=inv_ex,
                        solve_ex=solve_ex, pinv=pinv, diagonal=diagonal,
                        householder_product=householder_product, vander=vander,
                        tensorinv=tensorinv, tensorsolve=tensorsolve,
                        matrix_power=matrix_power_, matrix_exp=matrix_exp_).items():
        setattr(_Linalg, name, staticmethod(f))


_linalg_more()


# ---- LDL (Bunch-Kaufman) -----------------------------------------------------------------------

_LdlFactor = _named("linalg_ldl_factor", ["LD", "pivots"])
_LdlFactorEx = _named("linalg_ldl_factor_ex", ["LD", "pivots", "info"])


@functools.cache
def _no_derivative(prim, aten):
    """prim run under a Function whose backward raises: PyTorch records a NotImplemented node for
    ops without a derivative formula (ldl_factor, ldl_solve), failing only when reached."""
    from .autograd.function import Function       # (at first use: import order)

    class _NoDerivative(Function):
        @staticmethod
        def forward(ctx, *args, **attrs):
            return apply(P[prim], *args, **attrs)

        @staticmethod
        def backward(ctx, *gs):
            raise RuntimeError(f"derivative for aten::{aten} is not implemented")
    return _NoDerivative


def _apply_no_derivative(prim, aten, *args, **attrs):
    from ._dispatch import STATE
    if STATE.grad_enabled and any(getattr(a, "requires_grad", False) for a in args):
        r = _no_derivative(prim, aten).apply(*args, **attrs)
        for t in (r if isinstance(r, tuple) else (r,)):
            if t.requires_grad:
                rename(t, "torch::autograd::NotImplemented")
        return r
    return apply(P[prim], *args, **attrs)


def _ldl_factor_ex(A, hermitian, check_errors, name):
    LD, piv, info = _apply_no_derivative("ldl_factor", "linalg_ldl_factor_ex", A,
                                         hermitian=bool(hermitian))
    if check_errors:
        flat = _host_values(info).reshape(-1)
        bad = flat[flat != 0]
        if bad.size:        # (PyTorch's words: its check knows no code for an exactly zero D)
            raise RuntimeError(f"{name}: Unknown error code: {int(bad[0])}.")
    return LD, piv, info


def _ldl_solve(LD, pivots, B, hermitian=False):
    op = "torch.linalg.ldl_solve"
    if LD.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    n = LD.shape[-1]
    if LD.shape[-2] != n:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{LD.shape[-2]} by {n} matrices")
    if tuple(pivots.shape) != tuple(LD.shape[:-1]):
        raise RuntimeError(f"{op}: Expected LD.shape[:-1] and pivots.shape to be the same, but got "
                           f"pivots with shape {list(pivots.shape)} instead")
    if pivots._dtype.is_floating_point or pivots._dtype.is_complex or pivots._dtype is dt.bool_:
        raise RuntimeError(f"{op}: Expected pivots to be integers. Got {dt.tname(pivots._dtype)}")
    if not (LD._dtype.is_floating_point or LD._dtype.is_complex):
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got "
                           f"{dt.tname(LD._dtype)}")
    if B._dtype is not LD._dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type "
                           f"{dt.tname(B._dtype)} and A of type {dt.tname(LD._dtype)} instead.")
    if B.ndim < 2:
        k = B.ndim if B.ndim > 1 else 1
        raise IndexError(f"Dimension out of range (expected to be in range of [{-k}, {k - 1}], "
                         f"but got -2)")
    if B.shape[-2] != n:
        raise RuntimeError(f"Incompatible matrix sizes for {op}: each A matrix is {n} by {n} but "
                           f"each b matrix is {B.shape[-2]} by {B.shape[-1]}")
    if LD._dtype in (dt.float16, dt.bfloat16):
        raise NotImplementedError(f"\"ldl_solve_kernel_cpu\" not implemented for "
                                  f"'{dt.tname(LD._dtype)}'")
    import numpy as np
    p = _host_values(pivots)
    if p.size and (int(np.abs(p.astype(np.int64)).max()) > n or (p == 0).any()):
        raise RuntimeError("Pivots given to ldl_solve must all satisfy |pivot| <= LD.size(-2). "
                           "Did you properly pass the result of ldl_factor?")
    from compiler.ir.registry import broadcast_shapes
    batch = broadcast_shapes(op, tuple(B.shape[:-2]), tuple(LD.shape[:-2]))
    LDb = S.expand(LD, batch + (n, n))
    pb = S.expand(pivots, batch + (n,))
    Bb = S.expand(B, batch + tuple(B.shape[-2:]))
    return _apply_no_derivative("ldl_solve", "linalg_ldl_solve", LDb, pb, Bb,
                                hermitian=bool(hermitian))


def _linalg_ldl():
    def ldl_factor_ex(A, *, hermitian=False, check_errors=False, out=None):
        return write_out(_LdlFactorEx(*_ldl_factor_ex(A, hermitian, check_errors,
                                                      "torch.linalg.ldl_factor_ex")), out)

    def ldl_factor(A, *, hermitian=False, out=None):
        LD, piv, _ = _ldl_factor_ex(A, hermitian, True, "torch.linalg.ldl_factor")
        return write_out(_LdlFactor(LD, piv), out)

    def ldl_solve(LD, pivots, B, *, hermitian=False, out=None):
        return write_out(_ldl_solve(LD, pivots, B, hermitian), out)

    for name, f in dict(ldl_factor=ldl_factor, ldl_factor_ex=ldl_factor_ex,
                        ldl_solve=ldl_solve).items():
        setattr(_Linalg, name, staticmethod(f))


_linalg_ldl()


# ---- addr, the legacy norms, removed legacy functions, randomized low-rank SVD/PCA -------------

def addr(input, vec1, vec2, *, beta=1, alpha=1, out=None):
    """beta * input + alpha * outer(vec1, vec2); beta == 0 ignores input's values (nan too)."""
    from .ops_math import write_out, as_tensor_arg
    for name, v in (("vec1", vec1), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(f"addr: Expected 1-D argument {name}, but got {v.ndim}-D")
    integral = not (input._dtype.is_floating_point or input._dtype.is_complex)
    if integral and (isinstance(beta, float) or isinstance(alpha, float)):
        which = "beta" if isinstance(beta, float) else "alpha"
        raise RuntimeError(f"For integral input tensors, argument {which} must not be a floating "
                           "point number.")
    input = as_tensor_arg(input)
    target = (vec1.shape[0], vec2.shape[0])
    S.expand(input, target)         # input must broadcast to the outer product's shape
    r = outer(vec1, vec2)
    if alpha != 1:
        r = apply(P["mul"], r, alpha)
    r = apply(P["add"], _beta_input(input, beta), r)
    return write_out(rename(r, "AddrBackward0"), out)


def frobenius_norm(input, dim, keepdim=False, *, out=None):
    """The legacy torch.frobenius_norm: linalg.vector_norm(input, 2, dim, keepdim)."""
    return _Linalg.vector_norm(input, 2.0, tuple(dim) if not isinstance(dim, int) else dim,
                               keepdim, out=out)


def nuclear_norm(input, dim=None, keepdim=False, *, out=None):
    """The legacy torch.nuclear_norm: linalg.matrix_norm(input, 'nuc', dim, keepdim) (dim
    defaults to the two dims of a 2-D input)."""
    if isinstance(dim, bool):           # nuclear_norm(input, keepdim)
        dim, keepdim = None, dim
    if dim is None:
        if input.ndim != 2:
            raise RuntimeError(f"Expected a tensor with 2 dimensions, but got a tensor with "
                               f"{input.ndim} dimension{'' if input.ndim == 1 else 's'} instead.")
        dim = (0, 1)
    return _Linalg.matrix_norm(input, "nuc", tuple(dim), keepdim, out=out)


def native_norm(input, p=2, dim=None, keepdim=False, dtype=None):
    """aten::native_norm: the vector p-norm over `dim` (all elements when None). PyTorch ships
    it for sparse tensors only; Kiln computes it for dense ones."""
    if dim is not None:
        dim = tuple(dim) if not isinstance(dim, int) else dim
    return _Linalg.vector_norm(input, 2 if p is None else p, dim, keepdim, dtype=dtype)


def _removed(message):
    def f(*args, **kwargs):
        raise RuntimeError(message)
    return f


# functions PyTorch 2.13 still binds but that raise with these messages (removed in 1.9)
matrix_rank = _removed(
    "This function was deprecated since version 1.9 and is now removed.\nPlease use the "
    "`torch.linalg.matrix_rank` function instead. The parameter 'symmetric' was renamed in "
    "`torch.linalg.matrix_rank()` to 'hermitian'.")
lstsq = _removed(
    "This function was deprecated since version 1.9 and is now removed. `torch.lstsq` is "
    "deprecated in favor of `torch.linalg.lstsq`.\n`torch.linalg.lstsq` has reversed arguments "
    "and does not return the QR decomposition in the returned tuple (although it returns other "
    "information about the problem).")
eig = _removed(
    "This function was deprecated since version 1.9 and is now removed. `torch.linalg.eig` "
    "returns complex tensors of dtype `cfloat` or `cdouble` rather than real tensors mimicking "
    "complex tensors.")
matrix_rank.__name__, lstsq.__name__, eig.__name__ = "matrix_rank", "lstsq", "eig"


def _floating_dtype(A):
    return A._dtype if (A._dtype.is_floating_point or A._dtype.is_complex) else dt.float32


def get_approximate_basis(A, q, niter=2, M=None):
    """torch._lowrank.get_approximate_basis (Halko et al. 2009, Algorithm 4.4): Q with
    orthonormal columns such that Q Q^H (A - M) approximates A - M; the random start is
    randn(n, q) from the default generator, as torch draws it."""
    from .creation import randn
    niter = 2 if niter is None else niter
    R = randn(A.shape[-1], q, dtype=_floating_dtype(A), device=A.device)
    X = matmul(A, R)
    if M is not None:
        X = X - matmul(M, R)
    Q = _Linalg.qr(X).Q
    for _ in range(niter):
        X = matmul(S._mH(A), Q)
        if M is not None:
            X = X - matmul(S._mH(M), Q)
        Q = _Linalg.qr(X).Q
        X = matmul(A, Q)
        if M is not None:
            X = X - matmul(M, Q)
        Q = _Linalg.qr(X).Q
    return Q


def _svd_lowrank(A, q=6, niter=2, M=None):
    q = 6 if q is None else q
    m, n = A.shape[-2:]
    if M is not None:
        M = S.broadcast_to(M, A.shape)
    if m < n:
        A = S._mH(A)
        if M is not None:
            M = S._mH(M)
    Q = get_approximate_basis(A, q, niter=niter, M=M)
    B = matmul(S._mH(Q), A)
    if M is not None:
        B = B - matmul(S._mH(Q), M)
    U, Sv, Vh = _Linalg.svd(B, full_matrices=False)
    V = S._mH(Vh)
    U = matmul(Q, U)
    if m < n:
        U, V = V, U
    return U, Sv, V


def svd_lowrank(A, q=6, niter=2, M=None):
    """torch.svd_lowrank: (U, S, V) of a randomized rank-q SVD of A - M (Halko et al. 2009,
    Algorithm 5); with the same seed the same numbers as torch."""
    return _svd_lowrank(A, q=q, niter=niter, M=M)


def pca_lowrank(A, q=None, center=True, niter=2):
    """torch.pca_lowrank: svd_lowrank of A with its column means removed (center=True)."""
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not (q >= 0 and q <= min(m, n)):
        raise ValueError(f"q(={q}) must be non-negative integer and not greater than "
                         f"min(m, n)={min(m, n)}")
    if not (niter >= 0):
        raise ValueError(f"niter(={niter}) must be non-negative integer")
    if not center:
        return _svd_lowrank(A, q, niter=niter, M=None)
    from .ops_math import mean
    C = mean(A, dim=(-2,), keepdim=True)
    return _svd_lowrank(A - C, q, niter=niter, M=None)
