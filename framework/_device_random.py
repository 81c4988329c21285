"""Random numbers on devices ('cuda', 'interpret'): one Philox generator per device, as in
PyTorch, whose cuda streams differ from its cpu stream.

A device generator is a (seed, offset) pair. A draw of n elements runs the Philox fill kernel
of compiler.codegen.triton_random at the current (seed, offset) and advances the offset by n,
so the same seed gives the same numbers whatever the launch geometry. A compiled device
program takes the state as an input and draws with the same counters (compiler/ops/random.py,
nn.functional's dropout while tracing), so its masks equal eager's. torch.manual_seed seeds
the cpu generator and every device generator (created or not yet); torch.cuda.manual_seed
only the current device's.

On the interpret device the kernel runs in Triton's interpreter when its library functions
can run there (Triton imported with TRITON_INTERPRET=1); otherwise the NumPy twin of the
kernel (the same Philox words, the same conversions) fills the buffer: a named fallback.
"""
import numpy as np

from compiler.codegen import triton_random
from compiler.codegen.triton_pointwise import TritonCodegenError
from runtime.device import canonical
from ._compile import log

_GENERATORS = {}                 # Device -> its default Generator
_seed_for_new = [None]           # a torch.manual_seed seen before the device's generator


def default_generator(dev):
    """The default generator of device `dev` (made on first use)."""
    g = _GENERATORS.get(dev)
    if g is None:
        from .creation import Generator
        g = _GENERATORS[dev] = Generator(dev)
        if _seed_for_new[0] is not None:
            g.manual_seed(_seed_for_new[0])
    return g


def seed_all(seed):
    """torch.manual_seed's device half: every device generator, made or future."""
    _seed_for_new[0] = seed
    for g in _GENERATORS.values():
        g.manual_seed(seed)


def generators():
    return dict(_GENERATORS)


def generator_for(dev, generator):
    """The generator a draw on `dev` uses: the one passed (it must be of dev's type) or dev's
    default."""
    if generator is None:
        return default_generator(dev)
    if generator.device.type != dev.type:
        raise RuntimeError(f"Expected a '{dev.type}' device type for generator but found "
                           f"'{generator.device.type}'")
    return generator


def draw(kind, shape, dtype, dev, params, generator=None, out=None):
    """A fresh contiguous device array of `shape` (or `out`, a contiguous device array, filled
    in place) drawn from `kind` with `params` (see triton_random.draw_numpy)."""
    from ._device_ops import STATS, _arg, _empty, note_device, to_device
    note_device(dev)
    gen = generator_for(dev, generator)
    shape = tuple(shape)
    n = int(np.prod(shape, dtype=np.int64))
    seed, offset = gen._seed, gen._offset
    gen._offset += n
    if out is None:
        out = _empty(shape, dtype, dev)
    interpret = dev.type == "interpret"
    try:
        k = triton_random.kernel(kind, dtype)
        if interpret:
            from runtime.interpret import library_interpretable
            if not library_interpretable():
                raise TritonCodegenError("Triton was imported without TRITON_INTERPRET=1, so "
                                         "tl.randint4x cannot run in its interpreter")
        k.draw(_arg(out, dtype, interpret), n, seed, offset, params, interpret)
        STATS["kernel", k.name] += 1
        if log.enabled("kernels"):
            log.emit("kernels", f"{dev}: {kind} draw -> Triton kernel {k.name} {list(shape)} "
                     f"(seed {seed}, offset {offset})")
    except TritonCodegenError as e:
        STATS["fallback", f"philox_{kind}"] += 1
        if log.enabled("kernels"):
            log.emit("kernels", f"{dev}: {kind} draw -> host fallback (NumPy Philox): {e}")
        host = triton_random.draw_numpy(kind, shape, dtype, seed, offset, params)
        out[...] = host if interpret else to_device(host, dev)
    return out


def fill_(t, kind, params, generator=None):
    """Draw into tensor t's own storage (a non-contiguous view gets a contiguous draw copied
    in, element for element in C order)."""
    a = t._data
    dev = t._device
    if dev.type == "meta":      # no values to draw into
        return t
    if a.flags.c_contiguous:
        draw(kind, a.shape, t._dtype, dev, params, generator, out=a)
    else:
        a[...] = draw(kind, a.shape, t._dtype, dev, params, generator)
    t._bump()
    return t


def on_device(device):
    """The device a factory call asked for, when it is not the cpu (else None)."""
    d = canonical(device)
    return d if d.type != "cpu" else None


def state_bytes(gen):
    """PyTorch's device generator state layout: seed and offset, 8 bytes each."""
    return np.array([gen._seed, gen._offset], np.uint64).view(np.uint8).copy()


def load_state(gen, blob):
    blob = np.asarray(blob, np.uint8)
    if blob.size != 16:
        raise RuntimeError(f"set_state: a {gen.device.type} generator state is 16 bytes "
                           f"(seed, offset), got {blob.size}")
    seed, offset = (int(x) for x in blob.view(np.uint64))
    gen._seed, gen._offset = seed, offset



def host_stream(dev, n, generator=None):
    """A host stream (_cpu_random.TorchStream) for a draw of n elements on `dev` whose number
    of raw words is data dependent (the rejection samplers: gamma, dirichlet, poisson,
    binomial), which no Philox fill kernel serves: seeded from the device generator's (seed,
    offset), after which the offset advances by n as a fill of n elements would. So a seed
    repeats the draw and successive draws differ; the numbers are not PyTorch's cuda ones."""
    from ._cpu_random import TorchStream
    gen = generator_for(dev, generator)
    words = [gen._seed & 0xFFFFFFFF, gen._seed >> 32 & 0xFFFFFFFF,
             gen._offset & 0xFFFFFFFF, gen._offset >> 32 & 0xFFFFFFFF]
    seed = int(np.random.SeedSequence(words).generate_state(1)[0])
    gen._offset += int(n)
    return TorchStream(seed)
