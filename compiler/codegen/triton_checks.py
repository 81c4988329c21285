"""Value checks that compiled Triton programs run on the device: every value of an integer
buffer in a range [lo, hi), optionally exempting one value. Two uses:

    class targets of cross_entropy / nll_loss   [0, classes), ignore_index exempt
                                                (class_index: the identity inside fused kernels)
    index tensors of index / index_put (x[i])   [-size, size) (negative values wrap)
    and of gather / scatter                     [0, size)
                                                (their kernels read and write nothing for an
                                                out-of-range index, so a bad one cannot fault)

A GPU kernel cannot raise. Before a program's kernels run, one small kernel per checked buffer
folds its values into a sticky four-word flag buffer with atomics:

    flag[0]  1 once any value is outside [lo, hi) (and is not the exempt value)
    flag[1]  the largest such value (or -2**62)
    flag[2]  the smallest such value (or 2**62)
    flag[3]  the position of the first such value (or 2**62)

On the interpret device the flag is host memory: the program reads it at once and raises the
cpu path's error before any other kernel runs, so nothing is written. On 'cuda' reading it
would stall every step, so the runtime reads it at the next synchronisation (a device-to-host
copy such as .item() or .cpu(), or torch.cuda.synchronize()) and raises RuntimeError there, as
PyTorch's device-side assert surfaces (runtime.cuda.defer_check). Eager class_index on a
device runs the same kernel and reads the flag at once (triton_eager.EagerClassIndex). Where
the targets can still be read (eager calls, the interpret device) a class-target report names
the first bad target in order, as the cpu path does; an index report names the largest bad
value when one is too large, else the smallest (what the cpu path's min/max check names).
"""
from runtime import dtypes as dt
from .triton_pointwise import SIG, Param, PointwiseKernel

NONE_HI, NONE_LO = -(2 ** 62), 2 ** 62
INDEX_DTYPES = ("int8", "int16", "int32", "int64")

_SOURCE = """import triton
import triton.language as tl


@triton.jit
def %(name)s(t_ptr, flag_ptr, numel, lo, hi, exempt, use_exempt, BLOCK: tl.constexpr):
    # every value in [lo, hi) (or equal to `exempt` when use_exempt); violations are folded
    # into flag (any, largest, smallest, first position) by atomics (a kernel cannot raise)
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < numel
    t = tl.load(t_ptr + i, mask=mask, other=0).to(tl.int64)
    bad = mask & ((t < lo) | (t >= hi)) & ((use_exempt == 0) | (t != exempt))
    tl.atomic_max(flag_ptr, tl.max(bad.to(tl.int64), 0))
    tl.atomic_max(flag_ptr + 1, tl.max(tl.where(bad, t, %(hi)d), 0))
    tl.atomic_min(flag_ptr + 2, tl.min(tl.where(bad, t, %(lo)d), 0))
    tl.atomic_min(flag_ptr + 3, tl.min(tl.where(bad, i, %(lo)d), 0))
"""


class RangeCheck(PointwiseKernel):
    """The check kernel for one integer dtype (sizes and bounds are launch arguments)."""

    def __init__(self, dtype):
        if dtype.name not in INDEX_DTYPES:
            raise TypeError(f"range check: {dtype} is not an index dtype ({', '.join(INDEX_DTYPES)})")
        self.dtype = dtype
        self.runs = 0            # launches (tests check that the kernel, not a host loop, ran)
        name = f"check_range_{SIG[dtype.name]}"
        params = [Param("t_ptr", "*" + SIG[dtype.name], ("in", 0)),
                  Param("flag_ptr", "*i64", ("out", 0)),
                  Param("numel", "i64", ("numel",)), Param("lo", "i64", ("value", 0)),
                  Param("hi", "i64", ("value", 0)), Param("exempt", "i64", ("value", 0)),
                  Param("use_exempt", "i32", ("value", 0))]
        super().__init__(name, _SOURCE % {"name": name, "hi": NONE_HI, "lo": NONE_LO}, params,
                         None, (), True)

    def check(self, values, flag, numel, lo, hi, exempt, interpret):
        """Fold `values` (a contiguous buffer of numel elements of this kernel's dtype) into
        `flag` (4 int64, already holding fresh_flag() or an earlier run's findings); exempt:
        the one value allowed outside [lo, hi), or None."""
        if numel == 0:
            return
        self.runs += 1
        fn = self.function(interpret)
        block = 1 << max(4, min(12 if not interpret else 16, (numel - 1).bit_length()))
        grid = ((numel + block - 1) // block,)
        args = [values, flag, int(numel), int(lo), int(hi),
                0 if exempt is None else int(exempt), int(exempt is not None)]
        if interpret:
            fn[grid](*args, BLOCK=block)
        else:
            self.relauncher.launch(fn, grid, args, {"BLOCK": block}, {"num_warps": 4})


def fresh_flag():
    """The flag's initial words (as a list: the caller places them on its device)."""
    return [0, NONE_HI, NONE_LO, NONE_LO]


def violation(words, classes, target_at=None):
    """The class target to report from read flag words, or None when every target was valid:
    target_at(position) when the targets can still be read (the first bad one, as the cpu
    path reports), else the largest bad target at or above `classes`, or the smallest."""
    any_bad, hi, lo, first = (int(w) for w in words)
    if not any_bad:
        return None
    if target_at is not None:
        return int(target_at(first))
    return hi if hi >= classes else lo


def index_violation(words, op, dim, size, wraps, check=None):
    """The cpu path's error (compiler/ops/indexing.index_range_error) for the bad index values
    a range check folded into `words`, or None when every index was in range."""
    from ..ops.indexing import index_range_error
    any_bad, hi, lo, _ = (int(w) for w in words)
    if not any_bad:
        return None
    return index_range_error(op, lo, hi, dim, size, wraps, check)


_KERNELS = {}


def kernel(dtype=dt.int64):
    """The range-check kernel for index dtype `dtype` (one per process)."""
    k = _KERNELS.get(dtype.name)
    if k is None:
        from ..triton_backend import _write_aot_sidecar   # (the kernel-cache walk compiles it)
        k = _KERNELS[dtype.name] = RangeCheck(dtype)
        _write_aot_sidecar(k)
    return k
