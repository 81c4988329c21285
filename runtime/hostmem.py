"""Host memory for long-lived buffers, backed by transparent huge pages when large.

A compiled NumPy program's planned buffers are allocated once and streamed through on every
call (an optimizer update passes over a few parameter-sized scratch buffers a dozen times).
With 4 KiB pages those passes keep missing the TLB, and inside a virtual machine every miss
walks two page tables. arena() backs such a buffer with 2 MiB pages (Linux transparent huge
pages in "madvise" mode, the common default): measured on a 2-core VM, an AdamW update over
400k float32 parameters ran about 15% faster with its scratch buffers on huge pages
(bench/compile_cpu.py shows the whole step). Requests under one huge page, platforms without
MADV_HUGEPAGE and KILN_HUGEPAGES=0 get plain NumPy memory.
"""
import mmap
import os

import numpy as np

HUGE = 2 << 20                  # the x86-64 / arm64 (4 KiB base) transparent huge page size
ENABLED = os.environ.get("KILN_HUGEPAGES", "1") != "0" and hasattr(mmap, "MADV_HUGEPAGE")


def arena(nbytes):
    """A writable uint8 array of `nbytes`: 2 MiB-aligned anonymous memory advised to use huge
    pages when nbytes is at least one huge page, else np.empty. The memory is returned to the
    system when the last array viewing it is gone."""
    if not ENABLED or nbytes < HUGE:
        return np.empty(nbytes, np.uint8)
    size = -(-nbytes // HUGE) * HUGE
    try:        # one huge page extra, so that an aligned run of `size` bytes fits
        mm = mmap.mmap(-1, size + HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError, AttributeError):
        return np.empty(nbytes, np.uint8)
    buf = np.frombuffer(mm, np.uint8)
    off = -buf.ctypes.data % HUGE
    try:
        mm.madvise(mmap.MADV_HUGEPAGE, off, size)
    except OSError:             # (THP off in the kernel: ordinary pages, still correct)
        pass
    return buf[off:off + nbytes]
