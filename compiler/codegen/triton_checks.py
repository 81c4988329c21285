"""Value checks that compiled Triton programs run on the device: class targets of
cross_entropy / nll_loss (the class_index primitive, the identity inside fused kernels).

A GPU kernel cannot raise. Before a program's kernels run, one small kernel folds every
target into a sticky four-word flag buffer with atomics:

    flag[0]  1 once any target is outside [0, classes) and is not ignore_index
    flag[1]  the largest such target (or -2**62)
    flag[2]  the smallest such target (or 2**62)
    flag[3]  the position of the first such target (or 2**62)

On the interpret device the flag is host memory: the program reads it at once and raises the
cpu path's IndexError before any other kernel runs, so nothing is written. On 'cuda' reading it
would stall every step, so the runtime reads it at the next synchronisation (a device-to-host
copy such as .item() or .cpu(), or torch.cuda.synchronize()) and raises RuntimeError there, as
PyTorch's device-side assert surfaces (runtime.cuda.defer_check). Eager class_index on a
device runs the same kernel and reads the flag at once (triton_eager.EagerClassIndex). Where
the targets can still be read (eager calls, the interpret device) the report names the first
bad target in order, as the cpu path does; a deferred 'cuda' report names the largest bad
target at or above `classes`, else the smallest below 0 (the targets may be gone by then).
"""
from .triton_pointwise import Param, PointwiseKernel

NONE_HI, NONE_LO = -(2 ** 62), 2 ** 62

_SOURCE = """import triton
import triton.language as tl


@triton.jit
def check_class_targets(t_ptr, flag_ptr, numel, classes, ignore_index, BLOCK: tl.constexpr):
    # class_index: every target in [0, classes) or equal to ignore_index; violations are
    # folded into flag (any, largest, smallest) by atomics (a kernel cannot raise)
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < numel
    t = tl.load(t_ptr + i, mask=mask, other=ignore_index)
    bad = (t != ignore_index) & ((t < 0) | (t >= classes))
    tl.atomic_max(flag_ptr, tl.max(bad.to(tl.int64), 0))
    tl.atomic_max(flag_ptr + 1, tl.max(tl.where(bad, t, %d), 0))
    tl.atomic_min(flag_ptr + 2, tl.min(tl.where(bad, t, %d), 0))
    tl.atomic_min(flag_ptr + 3, tl.min(tl.where(bad, i, %d), 0))
""" % (NONE_HI, NONE_LO, NONE_LO)


class ClassTargetCheck(PointwiseKernel):
    """The check kernel (one per process: sizes and classes are launch arguments)."""

    runs = 0            # launches (tests check that the kernel, not a host loop, ran)

    def __init__(self):
        params = [Param("t_ptr", "*i64", ("in", 0)), Param("flag_ptr", "*i64", ("out", 0)),
                  Param("numel", "i64", ("numel",)), Param("classes", "i64", ("value", 0)),
                  Param("ignore_index", "i64", ("value", 0))]
        super().__init__("check_class_targets", _SOURCE, params, None, (), True)

    def check(self, targets, flag, numel, classes, ignore_index, interpret):
        """Fold `targets` (a buffer of numel int64) into `flag` (4 int64, already holding
        fresh_flag() or an earlier run's findings)."""
        if numel == 0:
            return
        self.runs += 1
        fn = self.function(interpret)
        block = 1 << max(4, min(12 if not interpret else 16, (numel - 1).bit_length()))
        grid = ((numel + block - 1) // block,)
        args = [targets, flag, int(numel), int(classes), int(ignore_index)]
        if interpret:
            fn[grid](*args, BLOCK=block)
        else:
            self.relauncher.launch(fn, grid, args, {"BLOCK": block}, {"num_warps": 4})


def fresh_flag():
    """The flag's initial words (as a list: the caller places them on its device)."""
    return [0, NONE_HI, NONE_LO, NONE_LO]


def violation(words, classes, target_at=None):
    """The target to report from read flag words, or None when every target was valid:
    target_at(position) when the targets can still be read (the first bad one, as the cpu
    path reports), else the largest bad target at or above `classes`, or the smallest."""
    any_bad, hi, lo, first = (int(w) for w in words)
    if not any_bad:
        return None
    if target_at is not None:
        return int(target_at(first))
    return hi if hi >= classes else lo


_KERNEL = []


def kernel():
    if not _KERNEL:
        from ..triton_backend import _write_aot_sidecar   # (the kernel-cache walk compiles it)
        _KERNEL.append(ClassTargetCheck())
        _write_aot_sidecar(_KERNEL[0])
    return _KERNEL[0]
