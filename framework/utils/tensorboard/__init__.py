"""torch.utils.tensorboard: SummaryWriter writing TensorBoard event files, dependency-free
(TFRecord framing with CRC32C, a small protobuf encoder and PNG writer of its own)."""
from .writer import FileWriter, SummaryWriter  # noqa: F401

__all__ = ["SummaryWriter", "FileWriter"]
