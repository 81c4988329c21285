"""DDP communication hooks: GradBucket (what a hook receives) and the built-in hooks
(torch.distributed.algorithms.ddp_comm_hooks.default_hooks); a hook returns a
torch.futures.Future."""
from ..futures import Future  # noqa: F401  (what hooks return; Work.get_future makes them)


class BuiltinCommHookType:
    __slots__ = ("name", "value")
    __members__ = {}

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __repr__(self):
        return f"<BuiltinCommHookType.{self.name}: {self.value}>"


for _v, _n in ((1, "ALLREDUCE"), (2, "FP16_COMPRESS")):
    setattr(BuiltinCommHookType, _n, BuiltinCommHookType(_n, _v))
    BuiltinCommHookType.__members__[_n] = getattr(BuiltinCommHookType, _n)


class GradBucket:
    """One DDP bucket: buffer() is the flat gradient (a view of the bucket's memory: in-place
    changes reach it), gradients() its per-parameter views."""

    def __init__(self, index, buffer, params, offsets, is_last):
        self._index, self._buffer, self._params = index, buffer, params
        self._offsets, self._last = offsets, is_last

    def index(self):
        return self._index

    def buffer(self):
        return self._buffer

    def set_buffer(self, buffer):
        self._buffer = buffer

    def gradients(self):
        return [self._buffer[o:o + p.numel()].view(p.shape)
                for o, p in zip(self._offsets, self._params)]

    def parameters(self):
        return list(self._params)

    def is_last(self):
        return self._last


def allreduce_hook(process_group, bucket):
    """The default: average the bucket over the group (divide first, then all-reduce)."""
    from . import all_reduce, get_world_size
    t = bucket.buffer()
    t.div_(get_world_size(process_group))
    return all_reduce(t, group=process_group, async_op=True).get_future().then(
        lambda fut: fut.value()[0])


def fp16_compress_hook(process_group, bucket):
    """All-reduce the bucket as float16 (half the bytes), then cast back."""
    from . import all_reduce, get_world_size
    from .. import float16
    buf = bucket.buffer()
    comp = buf.to(float16).div_(get_world_size(process_group))

    def decompress(fut):
        buf.copy_(fut.value()[0])
        return buf
    return all_reduce(comp, group=process_group, async_op=True).get_future().then(decompress)
