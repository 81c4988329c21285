"""The autocast op table: one entry per op, the policy per autocast device type.

Policies (torch's autocast_mode.cpp kinds):
  lower     floating inputs (not float64) are cast to the autocast dtype (bf16/fp16)
  fp32      floating inputs are cast to float32
  fp32_opt  as fp32 unless the caller passed dtype= (torch's fp32_set_opt_dtype: sum, softmax)
  promote   floating inputs are cast to float32 if any is float32, else kept in the autocast
            dtype; float64 ones are left as they are, another half type raises (torch's
            at::autocast::prioritize)
  fp32_pad  as fp32 for F.pad in 'reflect' / 'replicate' mode, no cast in the other modes
  banned    raises: unsafe to autocast (binary_cross_entropy on cuda)
  native    no cast, and the ops it calls inside are not autocast either: Kiln composes these
            from listed ops, torch runs them as one kernel in the input's dtype (mv on cpu)
An op runs its body with autocast excluded once its policy applied, as torch's wrappers do; an
op missing for a device type runs as written, and the listed ops it calls autocast.

Names: 'torch.x' is framework.x, 'F.x' framework.nn.functional.x, 'linalg.x' torch.linalg.x,
'fft.x' torch.fft.x.
Lists follow torch 2.13 ("Autocast Op Reference"; CPU entries checked against torch's CPU
autocast); ops Kiln does not have are left out.
"""

L, F32, OPT, PRO, BAN, NAT = "lower", "fp32", "fp32_opt", "promote", "banned", "native"
PAD = "fp32_pad"

_BOTH_LOWER = """torch.matmul torch.mm torch.bmm torch.addmm torch.baddbmm torch.addbmm torch.einsum
    linalg.vecdot linalg.matmul F.linear F.conv1d F.conv2d F.conv3d F.conv_transpose1d
    F.conv_transpose2d F.conv_transpose3d F.prelu F.scaled_dot_product_attention
    F.multi_head_attention_forward"""
_CUDA_LOWER = "torch.mv torch.addmv linalg.multi_dot"

_CUDA_FP32 = """torch.acos torch.asin torch.cosh torch.erfinv torch.exp torch.expm1 torch.log
    torch.log10 torch.log2 torch.log1p torch.reciprocal torch.rsqrt torch.sinh torch.tan
    torch.pow F.softplus F.layer_norm F.group_norm F.rms_norm F.cosine_similarity F.normalize
    F.softmin F.interpolate torch.dist torch.renorm torch.logsumexp F.pdist"""
_CUDA_OPT = """torch.sum torch.prod torch.cumsum torch.cumprod torch.softmax torch.log_softmax
    F.softmax F.log_softmax torch.norm linalg.vector_norm linalg.matrix_norm linalg.norm"""
_CUDA_PROMOTE = """torch.addcmul torch.addcdiv torch.atan2 F.bilinear torch.cross linalg.cross
    torch.dot torch.vdot F.grid_sample torch.index_put torch.scatter_add torch.tensordot
    torch.cat torch.stack"""

_CPU_FP32 = """torch.prod torch.quantile torch.nanquantile torch.cdist torch.trace torch.inverse
    torch.cholesky torch.svd torch.qr linalg.inv linalg.cholesky linalg.qr linalg.svd
    linalg.svdvals linalg.eig linalg.eigvals linalg.eigh linalg.eigvalsh linalg.solve
    linalg.matrix_rank F.avg_pool3d F.max_pool3d
    F.adaptive_avg_pool3d F.adaptive_max_pool3d F.grid_sample F.binary_cross_entropy
    torch.polar torch.stft torch.view_as_complex torch.cholesky_inverse torch.cholesky_solve
    torch.lu_solve torch.pinverse torch.triangular_solve torch.lu linalg.cond linalg.tensorinv
    linalg.tensorsolve linalg.cholesky_ex linalg.inv_ex linalg.lstsq F.max_unpool2d
    F.max_unpool3d F.fractional_max_pool2d F.fractional_max_pool3d fft.fft fft.ifft fft.fft2
    fft.ifft2 fft.fftn fft.ifftn fft.rfft fft.irfft fft.rfft2 fft.irfft2 fft.rfftn fft.irfftn
    fft.hfft fft.ihfft"""
# torch's reflection_pad1d/2d and replication_pad1d/2d/3d: F.pad in those modes only
_CPU_PAD = "F.pad"
# no cpu entry: fp32 on cuda only, runs in bf16 on cpu (checked against torch's cpu autocast)
_CPU_PROMOTE = "torch.cat torch.stack torch.index_copy"
# composed here from listed ops, one kernel in torch, so the input's dtype on cpu
_CPU_NATIVE = """torch.mv torch.addmv torch.dot torch.vdot torch.norm F.normalize
    F.cosine_similarity F.bilinear F.interpolate linalg.lu_solve"""

# both devices: losses run in float32
_LOSSES = """F.cross_entropy F.nll_loss F.mse_loss F.l1_loss F.smooth_l1_loss F.huber_loss F.kl_div
    F.binary_cross_entropy_with_logits F.poisson_nll_loss F.cosine_embedding_loss
    F.hinge_embedding_loss F.margin_ranking_loss F.soft_margin_loss F.triplet_margin_loss
    F.multi_margin_loss F.multilabel_margin_loss F.ctc_loss F.cdist torch.cdist"""


def _table():
    t = {}

    def put(names, dev, kind):
        for n in names.split():
            t.setdefault(n, {}).setdefault(dev, kind)   # first wins: specific before general

    put(_BOTH_LOWER, "cpu", L)
    put(_BOTH_LOWER, "cuda", L)
    put(_CUDA_LOWER, "cuda", L)
    put(_CPU_NATIVE, "cpu", NAT)
    put("F.binary_cross_entropy", "cuda", BAN)
    put(_CUDA_FP32, "cuda", F32)
    put(_CUDA_OPT, "cuda", OPT)
    put(_CUDA_PROMOTE, "cuda", PRO)
    put(_CPU_FP32, "cpu", F32)
    put(_CPU_PROMOTE, "cpu", PRO)
    put(_CPU_PAD, "cpu", PAD)
    put(_LOSSES, "cpu", F32)
    put(_LOSSES, "cuda", F32)
    return t


POLICY = _table()

# Primitives, applied in framework._dispatch.apply: Kiln code that multiplies matrices without a
# listed op (RNN layers project with the matmul primitive) still autocasts, as torch's mm does.
# Not applied inside a listed op (it already chose its dtypes) nor in backward (VJP rules).
PRIMS = {"matmul": {"cpu": L, "cuda": L}}
