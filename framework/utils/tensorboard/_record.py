"""TFRecord framing and the event file writer (TensorBoard's EventFileWriter, without
TensorFlow): each record is

    uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)

(little endian), data being one serialized Event. Records are queued in memory and written
when max_queue are pending, by flush()/close(), and every flush_secs by a daemon thread.
"""
import atexit
import itertools
import os
import socket
import struct
import threading
import time
import weakref

from . import _proto as pb
from ._crc32c import masked_crc32c

_uid = itertools.count()        # the <n> of event file names, unique within the process
_uid_lock = threading.Lock()


def frame(data):
    """One TFRecord for `data` (bytes)."""
    header = struct.pack("<Q", len(data))
    return (header + struct.pack("<I", masked_crc32c(header)) + data +
            struct.pack("<I", masked_crc32c(data)))


class EventFileWriter:
    def __init__(self, logdir, max_queue=10, flush_secs=120, filename_suffix=""):
        self._logdir = str(logdir)
        os.makedirs(self._logdir, exist_ok=True)
        with _uid_lock:
            n = next(_uid)
        # TensorBoard's name: events.out.tfevents.<10-digit time>.<host>.<pid>.<n><suffix>
        name = "events.out.tfevents.%010d.%s.%s.%s%s" % (
            time.time(), socket.gethostname(), os.getpid(), n, filename_suffix)
        self._path = os.path.join(self._logdir, name)
        self._file = open(self._path, "wb")
        self._max_queue = max(1, int(max_queue))
        self._flush_secs = flush_secs
        self._pending = []
        self._lock = threading.Lock()
        self._closed = False
        # the first record names the format; written at once so a reader sees a valid file
        self._file.write(frame(pb.event(time.time(), file_version="brain.Event:2")))
        self._file.flush()
        self._stop = threading.Event()
        self._thread = None
        if flush_secs and flush_secs > 0:
            # the thread holds only a weak reference, so an unclosed writer can still be freed
            self._thread = threading.Thread(target=_flush_loop, args=(weakref.ref(self),
                                            self._stop, float(flush_secs)),
                                            name="kiln-tensorboard-flush", daemon=True)
            self._thread.start()
        _LIVE.add(self)

    def get_logdir(self):
        return self._logdir

    @property
    def path(self):
        return self._path

    def add_event(self, event_bytes):
        with self._lock:
            if self._closed:
                raise RuntimeError("add_event on a closed event file writer")
            self._pending.append(frame(event_bytes))
            full = len(self._pending) >= self._max_queue
        if full:
            self.flush()

    def flush(self):
        with self._lock:
            if self._closed:
                return
            if self._pending:
                self._file.write(b"".join(self._pending))
                self._pending.clear()
            self._file.flush()

    def close(self):
        self.flush()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._file.close()
        self._stop.set()
        _LIVE.discard(self)

    def __del__(self):
        # an unclosed writer that is garbage collected still writes what it queued
        try:
            self.close()
        except Exception:
            pass


def _flush_loop(ref, stop, secs):
    while not stop.wait(secs):
        w = ref()
        if w is None:
            return
        try:
            w.flush()
        except (OSError, ValueError):
            return
        del w


_LIVE = weakref.WeakSet()


@atexit.register
def _flush_all():
    # a script that never calls close() still gets its queued events on disk (the flush
    # thread is a daemon and may not get another turn)
    for w in list(_LIVE):
        try:
            w.flush()
        except (OSError, ValueError):
            pass
