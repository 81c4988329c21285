"""torch.utils.data.distributed"""
from .sampler import DistributedSampler  # noqa: F401
