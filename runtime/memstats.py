"""Allocator statistics per device, under the names torch.cuda.memory_stats() uses.

The one place the counters live: runtime.cuda feeds them from a CuPy memory hook (pool
mallocs and frees, driver allocations), runtime.interpret from the life of interpret-device
buffers. framework._cuda_memory turns them into torch's dictionaries.

Like torch's caching allocator, a block counts in the "large_pool" when it is 1 MiB or more,
else in the "small_pool". Each statistic has current, peak, allocated (total increase) and
freed (total decrease). Kiln never splits a cached block, so "active" equals "allocation" and
the inactive_split figures are 0. Only currents, running totals and peaks are kept (freed is
derived), in one list updated inline: the interpret device updates it for every buffer.
"""

LARGE = 1 << 20          # torch's small/large pool boundary
POOLS = ("all", "large_pool", "small_pool")
_KEYS = ("current", "peak", "allocated", "freed")
# per pool, for each kind: (current, total increase, peak) at 3 * kind
_B, _N, _R, _SB, _SN = 0, 3, 6, 9, 12       # bytes, blocks, requested, segment bytes, segments
_W = 15
_KIND_OF = {"allocated_bytes": _B, "active_bytes": _B, "allocation": _N, "active": _N,
            "requested_bytes": _R, "reserved_bytes": _SB, "segment": _SN,
            "inactive_split": None, "inactive_split_bytes": None}


class DeviceStats:
    def __init__(self, segments_are_blocks=False):
        # segments_are_blocks: host memory is not cached, so each block is its own segment
        # and the reserved figures are the allocated ones
        self.same = segments_are_blocks
        self.v = [0] * (3 * _W)
        self.base = [0] * (3 * _W)      # (total increase, freed) at reset_accumulated
        self.num_alloc_retries = 0
        self.num_ooms = 0
        self.num_device_alloc = 0
        self.num_device_free = 0

    def malloc(self, nbytes, requested=None):
        """A block handed to a tensor."""
        v = self.v
        r = nbytes if requested is None else requested
        for o in (0, _W if nbytes >= LARGE else 2 * _W):
            c = v[o] + nbytes
            v[o] = c
            v[o + 1] += nbytes
            if c > v[o + 2]:
                v[o + 2] = c
            c = v[o + 3] + 1
            v[o + 3] = c
            v[o + 4] += 1
            if c > v[o + 5]:
                v[o + 5] = c
            c = v[o + 6] + r
            v[o + 6] = c
            v[o + 7] += r
            if c > v[o + 8]:
                v[o + 8] = c

    def free(self, nbytes, requested=None, seeded=False):
        """A block given back; seeded: one from before counting began (see seed())."""
        v = self.v
        r = nbytes if requested is None else requested
        if seeded:
            v[0] = max(v[0] - nbytes, 0)
            v[6] = max(v[6] - r, 0)
            return
        for o in (0, _W if nbytes >= LARGE else 2 * _W):
            # (never below zero: a block made before counting began)
            v[o] = max(v[o] - nbytes, 0)
            v[o + 3] = max(v[o + 3] - 1, 0)
            v[o + 6] = max(v[o + 6] - r, 0)

    def reserve(self, nbytes):
        """A segment obtained from the driver."""
        v = self.v
        self.num_device_alloc += 1
        for o in (0, _W if nbytes >= LARGE else 2 * _W):
            c = v[o + 9] + nbytes
            v[o + 9] = c
            v[o + 10] += nbytes
            if c > v[o + 11]:
                v[o + 11] = c
            c = v[o + 12] + 1
            v[o + 12] = c
            v[o + 13] += 1
            if c > v[o + 14]:
                v[o + 14] = c

    def release_unsized(self, nbytes):
        """Segments of unknown sizes and count, `nbytes` in all, went back to the driver
        (CuPy's free_all_blocks): taken from the large pool first, then the small one."""
        v = self.v
        large = min(nbytes, v[_W + 9])
        v[9] = max(v[9] - nbytes, 0)
        v[_W + 9] -= large
        v[2 * _W + 9] = max(v[2 * _W + 9] - (nbytes - large), 0)

    def seed(self, allocated, reserved):
        """Counting starts while `allocated` / `reserved` bytes already exist (sizes and count
        unknown: they count as bytes of the "all" pool only)."""
        v = self.v
        v[0] = v[1] = v[2] = allocated
        v[6] = v[7] = v[8] = allocated      # (requested: their sizes, as their frees report)
        v[9] = v[10] = v[11] = reserved

    def _read(self, o, k):
        """(current, peak, allocated, freed) of kind k in pool block o."""
        v, b = self.v, self.base
        cur, tot, peak = v[o + k], v[o + k + 1], v[o + k + 2]
        return (cur, peak, tot - b[o + k + 1], (tot - cur) - b[o + k])

    def reset_peak(self):
        v = self.v
        for i in range(0, len(v), 3):
            v[i + 2] = v[i]

    def reset_accumulated(self):
        v, b = self.v, self.base
        for i in range(0, len(v), 3):
            b[i + 1] = v[i + 1]             # the total increase so far
            b[i] = v[i + 1] - v[i]          # the total decrease so far
        self.num_alloc_retries = self.num_ooms = 0
        self.num_device_alloc = self.num_device_free = 0

    def nested(self):
        """torch.cuda.memory_stats_as_nested_dict()'s shape."""
        out = {}
        for name, k in _KIND_OF.items():
            if k is not None and self.same:
                k = {_SB: _B, _SN: _N}.get(k, k)
            out[name] = {p: dict(zip(_KEYS, (0, 0, 0, 0) if k is None else
                                     self._read(j * _W, k)))
                         for j, p in enumerate(POOLS)}
        for name in ("oversize_allocations", "oversize_segments"):
            out[name] = dict.fromkeys(_KEYS, 0)
        seg = out["segment"]["all"]
        out.update(num_alloc_retries=self.num_alloc_retries, num_ooms=self.num_ooms,
                   num_device_alloc=seg["allocated"] if self.same else self.num_device_alloc,
                   num_device_free=seg["freed"] if self.same else self.num_device_free,
                   num_sync_all_streams=0, max_split_size=-1)
        return out


_DEVICES = {}


def device_stats(kind, index=0):
    """The counters of device (kind, index); kind is 'cuda' or 'interpret'."""
    key = (kind, int(index))
    d = _DEVICES.get(key)
    if d is None:
        d = _DEVICES.setdefault(key, DeviceStats(segments_are_blocks=kind == "interpret"))
    return d
