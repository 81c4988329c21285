"""torch.distributed.algorithms.ddp_comm_hooks.default_hooks."""
from ...comm_hooks import allreduce_hook, fp16_compress_hook  # noqa: F401
