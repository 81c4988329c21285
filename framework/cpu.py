"""framework.cpu (torch.cpu): the deprecated torch.cpu.amp spellings."""
from .amp._deprecated import cpu_amp as amp  # noqa: F401


def is_available():
    return True
