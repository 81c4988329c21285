"""torch.utils.data: datasets, samplers, DataLoader (with worker processes), collation."""
from .dataset import (Dataset, IterableDataset, TensorDataset, StackDataset,  # noqa: F401
                      ConcatDataset, ChainDataset, Subset, random_split)
from .sampler import (Sampler, SequentialSampler, RandomSampler, SubsetRandomSampler,  # noqa: F401
                      WeightedRandomSampler, BatchSampler, DistributedSampler)
from ._utils.collate import default_collate, default_convert  # noqa: F401
from ._utils.worker import get_worker_info  # noqa: F401
from .dataloader import DataLoader  # noqa: F401
from . import distributed  # noqa: F401
