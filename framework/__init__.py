"""Kiln: PyTorch's eager API over one IR. `import framework as torch`."""
import os as _os
import sys as _sys

if "numpy" not in _sys.modules:
    # OpenBLAS's worker threads busy-wait 2**28 cycles after every call by default, holding the
    # cores that compiled programs use next for element-wise work on several threads
    # (compiler/codegen/parallel.py); 2**4 lets them sleep at once. Only possible before NumPy
    # loads OpenBLAS, and an explicit setting wins.
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
if _os.environ.get("KILN_DEVICE") == "interpret" and "triton" not in _sys.modules:
    # the interpreter can run kernels that call Triton's library (tl.sum, tl.max) only when
    # Triton is imported in interpret mode
    _os.environ.setdefault("TRITON_INTERPRET", "1")
import numpy as _np  # noqa: E402

_np.seterr(all="ignore")          # IEEE results without warnings, as PyTorch gives

__version__ = "0.1.0"

# torch's math constants (torch.pi, torch.inf, ...) and x[:, torch.newaxis]
import math as _math  # noqa: E402
pi, e, inf, nan, newaxis = _math.pi, _math.e, _math.inf, _math.nan, None

from runtime import dtypes as _dt  # noqa: E402
from runtime.device import Device as device  # noqa: E402,F401
from runtime.device import set_default_device, get_default_device  # noqa: E402,F401
from runtime.dtypes import (bool_ as bool, uint8, int8, int16, int32, int64, float16,  # noqa: E402,F401
                            bfloat16, float32, float64, complex32, complex64, complex128,
                            uint16, uint32,
                            uint64, DType as dtype,
                            float8_e4m3fn, float8_e5m2, float8_e4m3fnuz, float8_e5m2fnuz,
                            float8_e8m0fnu,
                            get_default_dtype, set_default_dtype, promote_types, finfo, iinfo)

float = float32                    # noqa: A001
double = float64
half = float16
long = int64
int = int32                        # noqa: A001
short = int16
chalf = complex32
cfloat = complex64
cdouble = complex128

from . import _dispatch  # noqa: E402
from .tensor import Tensor, Size  # noqa: E402
from .tensor import (FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, ByteTensor,  # noqa: E402,F401
                     CharTensor, ShortTensor, IntTensor, LongTensor, BoolTensor)
_dispatch.Tensor = Tensor

from .creation import (tensor, as_tensor, asarray, from_numpy, zeros, ones, empty, full,  # noqa: E402,F401
                       zeros_like, ones_like, empty_like, full_like, eye, arange, linspace,
                       logspace, rand, randn, randint, randperm, normal, bernoulli, multinomial,
                       poisson, rand_like, randn_like, randint_like, manual_seed, seed,
                       initial_seed, Generator, default_generator, get_rng_state, set_rng_state,
                       tril_indices, triu_indices, complex, hann_window, hamming_window,
                       blackman_window, bartlett_window, kaiser_window)
from .creation import range_ as range  # noqa: E402,F401,A001
from .ops_math import *  # noqa: E402,F401,F403
from .ops_math import (sum, max, min, all, any, abs, round, pow, where, clamp, clip, mean,  # noqa: E402,F401
                       cast as _cast, inplace as _inplace, copy_ as _copy_, fill_ as _fill_,
                       zero_ as _zero_, erfinv, _is_all_true)
from .ops_shape import *  # noqa: E402,F401,F403
from .ops_index import (index_select, masked_fill, masked_select, gather, scatter, scatter_add,  # noqa: E402,F401
                        scatter_reduce, index_add, index_copy, index_fill, index_put, take,
                        take_along_dim, nonzero, argwhere, masked_scatter, index_reduce, put)
from .creation import empty_strided, scalar_tensor, frombuffer  # noqa: E402,F401
from .ops_linalg import (matmul, mm, bmm, mv, dot, inner, vdot, outer, ger, addmm, addmv,  # noqa: E402,F401
                         baddbmm, addbmm, einsum, tensordot, kron, cross, cdist, linalg, det,
                         inverse, svd, qr, cholesky, cholesky_inverse, triangular_solve)
from .ops_linalg import (slogdet, logdet, matrix_power, matrix_exp, pinverse,  # noqa: E402,F401
                         chain_matmul, cholesky_solve, lu, lu_solve, lu_unpack, orgqr,
                         geqrf, ormqr)
from .ops_linalg import (addr, frobenius_norm, nuclear_norm, native_norm, matrix_rank,  # noqa: E402,F401
                         lstsq, eig, svd_lowrank, pca_lowrank)
from .ops_linalg import (_grouped_mm, _scaled_mm, _scaled_grouped_mm,  # noqa: E402,F401
                         lobpcg)
from .ops_index import nonzero_static, segment_reduce  # noqa: E402,F401
from .ops_shape import (unsafe_chunk, unsafe_split, unsafe_split_with_sizes,  # noqa: E402,F401
                        as_strided_)
from .creation import empty_permuted, from_dlpack  # noqa: E402,F401
from .ops_sort import (cummax, cummin, nanquantile, cov, corrcoef, histogram,  # noqa: E402,F401
                       histogramdd, isin, combinations, unravel_index, trapezoid, trapz,
                       cumulative_trapezoid, gradient, renorm, vander)
from .ops_sort import (sort, argsort, msort, topk, kthvalue, median, nanmedian, mode, unique,  # noqa: E402,F401
                       unique_consecutive, bincount, histc, searchsorted, bucketize, quantile)
from ._printing import set_printoptions  # noqa: E402,F401
from . import autograd  # noqa: E402
from . import random  # noqa: E402,F401  (torch.random: fork_rng and the seed functions)
from .autograd import no_grad, enable_grad, set_grad_enabled, inference_mode, is_grad_enabled  # noqa: E402,F401
from .autograd import is_anomaly_enabled, is_anomaly_check_nan_enabled  # noqa: E402,F401
from .autograd import is_inference_mode_enabled, set_anomaly_enabled  # noqa: E402,F401
from . import _tensor_methods  # noqa: E402,F401  (binds methods and operators)
from ._foreach import *  # noqa: E402,F401,F403  (torch._foreach_add_, _foreach_lerp_, ...)
from . import cuda  # noqa: E402,F401
from .cuda import OutOfMemoryError  # noqa: E402,F401  (torch.OutOfMemoryError)
from . import return_types  # noqa: E402,F401  (torch.return_types)
from ._streams import Stream, Event  # noqa: E402,F401  (torch.Stream, torch.Event)
from . import accelerator  # noqa: E402,F401  (torch.accelerator)
from ._misc_api import (is_inference, set_warn_always, is_warn_always_enabled,  # noqa: E402,F401
                        set_default_tensor_type, _assert)
from . import version  # noqa: E402,F401  (torch.version)
from . import overrides  # noqa: E402,F401  (torch.overrides: __torch_function__)
import types as _types  # noqa: E402
_C = _types.SimpleNamespace(  # (torch._C: only the dispatch switches user subclasses use)
    DisableTorchFunctionSubclass=overrides.DisableTorchFunctionSubclass,
    DisableTorchFunction=overrides.DisableTorchFunction,
    _disabled_torch_function_impl=overrides._disabled_torch_function_impl,
    _len_torch_function_stack=overrides._len_torch_function_stack,
    _is_torch_function_mode_enabled=overrides._is_torch_function_mode_enabled)
DisableTorchFunctionSubclass = overrides.DisableTorchFunctionSubclass
DisableTorchFunction = overrides.DisableTorchFunction


class _Layout:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "torch." + self.name


layout = _Layout                   # (torch.layout: the type of torch.strided)
strided = _Layout("strided")
sparse_coo = _Layout("sparse_coo")
jagged = _Layout("jagged")
sparse_csr, sparse_csc = _Layout("sparse_csr"), _Layout("sparse_csc")
sparse_bsr, sparse_bsc = _Layout("sparse_bsr"), _Layout("sparse_bsc")
from . import sparse  # noqa: E402  (torch.sparse; binds Tensor.to_sparse, to_dense, sparse_mask)
from .sparse import sparse_coo_tensor  # noqa: E402,F401
from .sparse import (sspaddmm, saddmm, smm, hspmm, indices_copy, values_copy,  # noqa: E402,F401
                     crow_indices_copy, col_indices_copy, ccol_indices_copy,
                     row_indices_copy)
spmm = dsmm = mm  # (torch's names for mm with a sparse first operand; dense works too)
from . import sparse_compressed as _sparse_compressed  # noqa: E402
from .sparse_compressed import (sparse_compressed_tensor, sparse_csr_tensor,  # noqa: E402,F401
                                sparse_csc_tensor, sparse_bsr_tensor, sparse_bsc_tensor)
_sparse_compressed.install()
from . import nested  # noqa: E402  (torch.nested)
from .nested import _ops as _nested_ops  # noqa: E402
_dispatch.NESTED = _nested_ops


from ._memory_format import (memory_format, contiguous_format, preserve_format,  # noqa: E402
                             channels_last, channels_last_3d)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def _need_tensor(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")


def is_floating_point(input):
    _need_tensor("is_floating_point", input)
    return input.dtype.is_floating_point


def is_complex(input):
    _need_tensor("is_complex", input)
    return input.dtype.is_complex


def numel(input):
    _need_tensor("numel", input)
    return input.numel()


def result_type(tensor1, tensor2):
    from compiler.ir.registry import promote
    return promote(tensor1, tensor2)


def can_cast(from_, to):
    return from_.category <= to.category


def is_nonzero(input):
    from .ops_shape import is_nonzero as _is_nonzero
    return _is_nonzero(input)


def get_num_threads():
    from runtime import threads
    return threads.get()


def set_num_threads(n):
    """Threads for CPU work: NumPy's OpenBLAS and generated programs' element-wise chunks
    (runtime/threads.py)."""
    from runtime import threads
    threads.set(n)


import builtins as _builtins  # noqa: E402  (int and bool are dtypes here)

_INTEROP = {"n": None}
_DETERMINISTIC = {"mode": False, "warn_only": False}


def get_num_interop_threads():
    return _INTEROP["n"] or get_num_threads()


def set_num_interop_threads(n):
    # torch: once per process (before inter-op work); Kiln runs no inter-op pool, so only the
    # value is kept, with torch's checks
    if not isinstance(n, _builtins.int) or isinstance(n, _builtins.bool) or n <= 0:
        raise RuntimeError("set_num_interop_threads expects a positive integer")
    if _INTEROP["n"] is not None:
        raise RuntimeError("Error: cannot set number of interop threads after parallel work has "
                           "started or set_num_interop_threads called")
    _INTEROP["n"] = n


def init_num_threads():
    return None


def get_device(input):
    return input.get_device()


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Records the mode for the getters below, as torch's do. Kiln switches no kernels under
    it: cpu programs are deterministic, but GPU scatter-adds (index_put accumulate,
    scatter_add, index_add) use atomics, whose summation order varies between runs."""
    for name, v in (("mode", mode), ("warn_only", warn_only)):
        if not isinstance(v, _builtins.bool):
            raise TypeError(f"_set_deterministic_algorithms(): argument '{name}' must be bool, "
                            f"not {type(v).__name__}")
    _DETERMINISTIC["mode"], _DETERMINISTIC["warn_only"] = mode, warn_only


def are_deterministic_algorithms_enabled():
    return _DETERMINISTIC["mode"]


def is_deterministic_algorithms_warn_only_enabled():
    return _DETERMINISTIC["warn_only"]


def set_deterministic_debug_mode(debug_mode):
    """"default"/0: off; "warn"/1: on, warn only; "error"/2: on."""
    if isinstance(debug_mode, str):
        names = {"default": 0, "warn": 1, "error": 2}
        if debug_mode not in names:
            raise RuntimeError(f"invalid value of debug_mode, expected one of `default`, `warn`, "
                               f"`error`, but got {debug_mode}")
        debug_mode = names[debug_mode]
    elif not isinstance(debug_mode, _builtins.int):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got "
                           f"{debug_mode}")
    use_deterministic_algorithms(debug_mode > 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode():
    if not are_deterministic_algorithms_enabled():
        return 0
    return 1 if is_deterministic_algorithms_warn_only_enabled() else 2


def abs_(input):
    return input.abs_()


def detach(input):
    return input.detach()


def clone(input, *, memory_format=None):
    return input.clone(memory_format=memory_format)


def typename(obj):
    """PyTorch's torch.typename: a tensor's type() string, else module-qualified name
    ('numpy.ndarray', 'float', 'torch.nn.modules.linear.Linear' for a class)."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


_dt.bool_  # keep the runtime dtype module referenced

from . import nn, optim, utils  # noqa: E402,F401
from . import __future__  # noqa: E402,F401  (torch.__future__)
from . import ao  # noqa: E402  (torch.ao: quantized tensors, quantize_dynamic; binds Tensor.int_repr, ...)
from .ao import quantization  # noqa: E402,F401  (torch.quantization is torch.ao.quantization)
from .ao._qtensor import (qscheme, per_tensor_affine, per_channel_affine,  # noqa: E402,F401
                          per_tensor_symmetric, per_channel_symmetric,
                          per_channel_affine_float_qparams, quantize_per_tensor,
                          quantize_per_channel, quantize_per_tensor_dynamic, dequantize,
                          int_repr, q_scale, q_zero_point, q_per_channel_scales,
                          q_per_channel_zero_points, q_per_channel_axis, quantized_max_pool1d,
                          quantized_max_pool2d)
from .ao.nn.quantized.modules import quantized_batch_norm  # noqa: E402,F401
from .ao._fake_quant import (fake_quantize_per_tensor_affine,  # noqa: E402,F401
                             fake_quantize_per_channel_affine)
from runtime.dtypes import qint8, quint8, qint32, quint4x2  # noqa: E402,F401
from runtime.dtypes import NO_TENSOR as _NO_TENSOR  # noqa: E402  (torch.uint1 .. torch.quint2x4)
globals().update({_d.name: _d for _d in _NO_TENSOR})
from .utils.dlpack import to_dlpack  # noqa: E402,F401
from ._sym import (sym_int, sym_float, sym_not, sym_max, sym_min,  # noqa: E402,F401
                   sym_sqrt, sym_sum, sym_ite, set_flush_denormal)
from .nn._torch_functional import *  # noqa: E402,F401,F403  (torch.conv2d, torch.dropout, ...)
from .nn._functional_rnn import *  # noqa: E402,F401,F403  (torch.lstm, torch.gru_cell, ...)
from .nn._torch_internal import *  # noqa: E402,F401,F403  (torch.convolution, torch.batch_norm_stats, ...)
from ._torch_extras import *  # noqa: E402,F401,F403  (torch.hash_tensor, torch.from_file, ...)
from .ops_compose import (meshgrid, cartesian_prod, block_diag, rot90, diff,  # noqa: E402,F401
                          tensor_methods as _compose_methods, _special)
special = _special()
_compose_methods()
from . import backends  # noqa: E402,F401
from . import fft  # noqa: E402,F401  (torch.fft)
from . import masked  # noqa: E402,F401  (torch.masked: masked reductions, MaskedTensor)
from . import signal  # noqa: E402,F401  (torch.signal.windows)
from . import quasirandom  # noqa: E402,F401  (torch.quasirandom.SobolEngine)
from . import hub  # noqa: E402,F401  (torch.hub: hubconf entrypoints, checkpoint downloads)
from . import testing  # noqa: E402,F401
from .fft import stft, istft  # noqa: E402,F401
Tensor.stft = stft
Tensor.istft = istft
from . import distributions  # noqa: E402,F401
# PyTorch's samplers and incomplete gamma functions live with the distributions that use them
from .distributions._samplers import (binomial, _standard_gamma, _sample_dirichlet,  # noqa: E402,F401
                                      gammainc as igamma, gammaincc as igammac)
special.gammainc, special.gammaincc = igamma, igammac
Tensor.igamma = lambda self, other: igamma(self, other)
Tensor.igammac = lambda self, other: igammac(self, other)
Tensor.igamma_ = lambda self, other: _tensor_methods._assign(self, igamma(self, other), "igamma")
Tensor.igammac_ = lambda self, other: _tensor_methods._assign(self, igammac(self, other), "igammac")


def _torch_inplace(name):
    """torch.<op>_(input, ...): the Tensor method, so each in-place op keeps one definition."""
    def f(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    f.__name__ = f.__qualname__ = name
    return f


# the in-place functions torch 2.x exposes at top level (torch.exp_(x), torch.clamp_(x, 0), ...)
for _n in ("abs_ acos_ acosh_ addmv_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ "
           "asinh_ atan_ atanh_ ceil_ clamp_ clamp_max_ clamp_min_ clip_ conj_physical_ cos_ cosh_ "
           "deg2rad_ detach_ erf_ erfc_ exp2_ exp_ expm1_ fill_ fix_ floor_ frac_ gcd_ i0_ "
           "index_put_ lcm_ ldexp_ log10_ log1p_ log2_ log_ logit_ nan_to_num_ neg_ negative_ "
           "rad2deg_ reciprocal_ relu_ resize_as_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ sqrt_ "
           "square_ tan_ tanh_ trunc_ xlogy_ zero_").split():
    if _n not in globals():
        globals()[_n] = _torch_inplace(_n)
from .backends import set_float32_matmul_precision, get_float32_matmul_precision  # noqa: E402,F401
from ._compile import compile  # noqa: E402,F401
from . import compiler, _dynamo  # noqa: E402,F401  (torch.compiler, torch._dynamo)
from . import library  # noqa: E402,F401  (torch.library: Python custom operators)
from .library import ops  # noqa: E402,F401  (torch.ops.<namespace>.<op>)
from ._control_flow import cond, while_loop  # noqa: E402,F401
from . import jit  # noqa: E402,F401  (torch.jit: trace, script, save/load)
from . import futures  # noqa: E402,F401  (torch.futures: Future, collect_all, wait_all)
from . import _storage  # noqa: E402,F401  (Tensor.untyped_storage / storage)
from . import multiprocessing  # noqa: E402,F401  (torch.multiprocessing)
from . import func  # noqa: E402,F401  (torch.func)
from .func import vmap  # noqa: E402,F401
from . import fx  # noqa: E402,F401  (torch.fx)
from . import export  # noqa: E402,F401  (torch.export)
from . import profiler  # noqa: E402,F401
from .serialization import save, load  # noqa: E402,F401
from . import amp, cpu  # noqa: E402,F401
from .amp import (autocast, is_autocast_enabled, get_autocast_dtype, set_autocast_dtype,  # noqa: E402,F401
                  set_autocast_enabled, is_autocast_cache_enabled, set_autocast_cache_enabled,
                  clear_autocast_cache, autocast_increment_nesting, autocast_decrement_nesting,
                  GradScaler, is_autocast_cpu_enabled, set_autocast_cpu_enabled,
                  get_autocast_cpu_dtype, set_autocast_cpu_dtype, get_autocast_gpu_dtype,
                  set_autocast_gpu_dtype)
# last, once every namespace is built: NumPy's `axis` / `keepdims` keywords (PyTorch's parser
# takes them for every native function with `dim` / `keepdim`)
from ._numpy_aliases import install as _install_numpy_aliases  # noqa: E402
_install_numpy_aliases(_sys.modules[__name__], Tensor, linalg, fft, special)
# `import torch.linalg` / `from torch.special import expit`: these namespaces are objects, not
# submodules, so register them where the import system looks
_sys.modules[__name__ + ".linalg"] = linalg
_sys.modules[__name__ + ".special"] = special
