"""Helpers VJP rules share. `b` is the emitter: eager tensor ops or graph-building ops."""


def sum_to(b, g, shape):
    """Sum a broadcast gradient back to `shape` (the input's shape before broadcasting)."""
    gs = tuple(g.shape)
    shape = tuple(shape)
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and gs[i + lead] != 1)
    if dims:
        g = b.sum(g, dims=dims, keepdim=True)
    if tuple(g.shape) != shape:
        g = b.reshape(g, shape=shape)
    return g


def unreduce(b, g, in_shape, dims, keepdim):
    """Broadcast a reduction's gradient back over the reduced dims."""
    if not keepdim:
        kshape = tuple(1 if i in dims else s for i, s in enumerate(in_shape))
        g = b.reshape(g, shape=kshape)
    return b.expand(g, shape=tuple(in_shape))


def wants(b, i):
    """Whether input i of the primitive being differentiated needs a gradient. The eager engine
    sets `b.needs` per node (inputs that are constants or prune away need none), so a rule can
    skip a matmul nobody reads; a graph emitter has no `needs` and gets every gradient."""
    n = getattr(b, "needs", None)
    return n is None or n[i]
