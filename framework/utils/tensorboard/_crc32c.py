"""CRC32C (Castagnoli), the checksum of TFRecord framing, with a byte table in NumPy.

Short inputs run a plain table loop. Long ones (images, graphs) are cut into K equal lanes
whose CRCs are computed side by side, one vectorised table step per byte column, then
combined: the raw CRC register is affine over GF(2), so crc(A || B) = shift_|B|(crc(A)) ^
crc0(B), where shift_L (L zero bytes through the register) is a fixed 32x32 bit matrix applied
with four 256-entry tables. That keeps a megabyte at a few tens of milliseconds.
"""
import functools

import numpy as np

_POLY = 0x82F63B78          # reflected Castagnoli polynomial


def _make_table():
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(_POLY), t >> 1).astype(np.uint32)
    return t


_TABLE = _make_table()
_TABLE_L = _TABLE.tolist()
_LANES_FROM = 4096           # below this many bytes the Python loop is faster


def _update_py(crc, data):
    t = _TABLE_L
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


@functools.lru_cache(maxsize=16)
def _shift_tables(n):
    """Four byte tables applying 'feed n zero bytes' to a 32-bit register (a linear map)."""
    s = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)   # basis states
    for _ in range(n):
        s = _TABLE[s & 0xFF] ^ (s >> 8)
    cols = s.tolist()                   # image of bit i
    tables = []
    for k in range(4):
        tab = [0] * 256
        for b in range(256):
            v = 0
            for i in range(8):
                if b >> i & 1:
                    v ^= cols[8 * k + i]
            tab[b] = v
        tables.append(tab)
    return tables


def _update_lanes(crc, buf):
    n = len(buf)
    L = 1 << max(6, (n.bit_length() + 1) // 2)      # lane length ~ sqrt(n), a power of two
    K = n // L
    head = n - K * L
    crc = _update_py(crc, buf[:head])
    cols = np.ascontiguousarray(np.frombuffer(buf, np.uint8, offset=head).reshape(K, L).T)
    s = np.zeros(K, np.uint32)
    t = _TABLE
    for j in range(L):
        s = t[(s ^ cols[j]) & 0xFF] ^ (s >> 8)
    t0, t1, t2, t3 = _shift_tables(L)
    for g in s.tolist():                 # Horner: crc = shift_L(crc) ^ lane
        crc = t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ \
            t3[crc >> 24] ^ g
    return crc


def crc32c(data, crc=0):
    """CRC32C of `data` (bytes-like); `crc` continues an earlier value (crc32c(a + b) ==
    crc32c(b, crc32c(a)))."""
    buf = memoryview(data).cast("B")
    reg = crc ^ 0xFFFFFFFF
    reg = _update_lanes(reg, buf) if len(buf) >= _LANES_FROM else _update_py(reg, buf)
    return reg ^ 0xFFFFFFFF


def masked_crc32c(data):
    """TFRecord's masked CRC: rotate right by 15 and add a constant (a CRC of data that
    itself holds CRCs is then not degenerate)."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
