"""framework.cpu (torch.cpu): the device-agnostic stand-ins torch.cpu offers (streams and events
that do nothing, one device) and the deprecated torch.cpu.amp spellings."""
from .amp._deprecated import cpu_amp as amp  # noqa: F401


def is_available():
    return True


def is_initialized():
    return True


def synchronize(device=None):
    """cpu work has finished when its call returns: nothing to wait for."""


def device_count():
    return 1


def current_device():
    return "cpu"


def set_device(device):
    """There is one cpu device: nothing to set."""


class Stream:
    """torch.cpu.Stream: a placeholder for device-agnostic code (not a torch.Stream)."""

    def __init__(self, priority=-1):
        pass

    def wait_stream(self, stream):
        pass

    def record_event(self):
        pass

    def wait_event(self, event):
        pass


class Event:
    def query(self):
        return True

    def record(self, stream=None):
        pass

    def synchronize(self):
        pass

    def wait(self, stream=None):
        pass


_default_cpu_stream = Stream()
_current_stream = _default_cpu_stream


def current_stream(device=None):
    return _current_stream


class StreamContext:
    """Makes `stream` torch.cpu's current stream inside the block; None is a no-op."""

    def __init__(self, stream):
        self.stream = stream
        self.prev_stream = _default_cpu_stream

    def __enter__(self):
        global _current_stream
        if self.stream is None:
            return
        self.prev_stream = _current_stream
        _current_stream = self.stream

    def __exit__(self, *exc):
        global _current_stream
        if self.stream is None:
            return
        _current_stream = self.prev_stream


def stream(stream):
    return StreamContext(stream)
