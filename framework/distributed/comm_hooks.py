"""DDP communication hooks: GradBucket (what a hook receives), the Future a hook returns, and
the built-in hooks (torch.distributed.algorithms.ddp_comm_hooks.default_hooks)."""


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


class Future:
    """torch.futures.Future as far as comm hooks use it: wait() runs what is pending (the
    collective's wait, then the then() callbacks in order) once, value() after that."""

    def __init__(self, run=None):
        self._run, self._done, self._value = run, run is None, None

    def set_result(self, result):
        self._value, self._done, self._run = result, True, None

    def wait(self):
        if not self._done:
            self._value = self._run()
            self._done, self._run = True, None
        return self._value

    def value(self):
        return self.wait()

    def done(self):
        return self._done

    def then(self, callback):
        return Future(lambda: callback(self._ready()))

    def _ready(self):
        self.wait()
        return self


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
