"""Distributed process groups (where collectives run) and the mpiexec launcher.

    mpi.py       MPIGroup over mpi4py (the mpich wheel's MPI) for host (NumPy) buffers
    nccl.py      NCCLGroup over CuPy's NCCL bindings for device (CuPy) buffers
    launcher.py  find the mpich wheel's mpiexec and start N ranks of a script

Groups take contiguous arrays and return Request objects; framework.distributed turns tensors
into such arrays and requests into PyTorch's Work handles. Every wait polls against a deadline,
so a rank whose peer died raises DistBackendError instead of blocking forever.
"""


class DistError(RuntimeError):
    """torch.distributed.DistError: a distributed operation failed."""


class DistBackendError(DistError):
    """torch.distributed.DistBackendError: the backend (MPI, NCCL) failed or timed out."""


# ReduceOp codes shared by the backends and framework.distributed.ReduceOp
SUM, PRODUCT, MIN, MAX, BAND, BOR, BXOR, AVG = range(8)
OP_NAMES = ("SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR", "AVG")
