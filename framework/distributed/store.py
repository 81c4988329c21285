"""torch.distributed key-value stores, in the standard library only.

    HashStore    in this process (threads share it)
    FileStore    a file that every process opening it shares; each operation holds an flock
                 on it, and the file is an append-only log of set/delete records
    TCPStore     a small TCP server (a thread of the process created with is_master=True)
                 and a client per store object; get/wait block on the server until the key
                 exists or the client's timeout passes
    PrefixStore  another store with "prefix/" before every key

Values are bytes (str values are UTF-8 encoded); add() keeps decimal integers as torch does.
Timeouts raise DistStoreError (FileStore: RuntimeError) with PyTorch's messages.
"""
import fcntl
import os
import socket
import socketserver
import struct
import threading
import time
import weakref
from datetime import timedelta

from runtime.distributed import DistError

__all__ = ["Store", "HashStore", "FileStore", "TCPStore", "PrefixStore", "DistStoreError",
           "DistNetworkError", "QueueEmptyError"]

_DEFAULT_TIMEOUT = timedelta(seconds=300)


class DistStoreError(DistError):
    """torch.distributed.DistStoreError: a store operation failed or timed out."""


class DistNetworkError(DistError):
    """torch.distributed.DistNetworkError: a socket to a store failed."""


class QueueEmptyError(DistStoreError):
    """torch.distributed.QueueEmptyError: queue_pop(block=False) on an empty queue."""


def _key(k, fn):
    if not isinstance(k, str):
        raise TypeError(f"{fn}(): key must be a str, got {type(k).__name__}")
    return k


def _val(v, fn):
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    raise TypeError(f"{fn}(): value must be a str or bytes, got {type(v).__name__}")


def _secs(t):
    return t.total_seconds() if isinstance(t, timedelta) else float(t)


def _as_int(b):
    try:
        return int(b.decode())
    except (UnicodeDecodeError, ValueError):
        raise ValueError("stoll") from None       # what PyTorch's std::stoll reports


class _KV:
    """The dictionary behind HashStore and the TCPStore server: every operation under one
    condition variable, blocking reads wait on it."""

    def __init__(self):
        self.d = {}
        self.q = {}
        self.cv = threading.Condition()

    def set(self, k, v):
        with self.cv:
            self.d[k] = v
            self.cv.notify_all()

    def wait(self, keys, timeout):
        """True once every key exists; False after timeout seconds."""
        end = time.monotonic() + timeout
        with self.cv:
            while not all(k in self.d for k in keys):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(left)
            return True

    def get(self, k):
        with self.cv:
            return self.d.get(k)

    def add(self, k, n):
        with self.cv:
            v = _as_int(self.d[k]) + n if k in self.d else n
            self.d[k] = str(v).encode()
            self.cv.notify_all()
            return v

    def compare_set(self, k, expected, desired):
        with self.cv:
            cur = self.d.get(k)
            if (cur is None and expected == b"") or (cur is not None and cur == expected):
                self.d[k] = desired
                self.cv.notify_all()
                return desired
            return expected if cur is None else cur

    def append(self, k, v):
        with self.cv:
            self.d[k] = self.d.get(k, b"") + v
            self.cv.notify_all()

    def delete(self, k):
        with self.cv:
            return self.d.pop(k, None) is not None

    def num_keys(self):
        with self.cv:
            return len(self.d)

    def check(self, keys):
        with self.cv:
            return all(k in self.d for k in keys)

    def queue_push(self, k, v):
        with self.cv:
            self.q.setdefault(k, []).append(v)
            self.cv.notify_all()

    def queue_pop(self, k, block, timeout):
        end = time.monotonic() + timeout
        with self.cv:
            while not self.q.get(k):
                left = end - time.monotonic()
                if not block:
                    return None, "empty"
                if left <= 0:
                    return None, "timeout"
                self.cv.wait(left)
            return self.q[k].pop(0), None

    def queue_len(self, k):
        with self.cv:
            return len(self.q.get(k, ()))


class Store:
    """Base class of the stores (torch.distributed.Store). Subclasses implement the
    underscore methods; the public ones check arguments and apply the timeout."""

    def __init__(self, timeout=_DEFAULT_TIMEOUT):
        self._timeout = timeout if isinstance(timeout, timedelta) else timedelta(seconds=timeout)

    @property
    def timeout(self):
        return self._timeout

    def set_timeout(self, timeout):
        self._timeout = timeout if isinstance(timeout, timedelta) else timedelta(seconds=timeout)

    def _not_impl(self, *a, **k):
        raise RuntimeError(f"{type(self).__name__}: Not implemented.")

    _set = _get = _add = _compare_set = _append = _delete = _num_keys = _check = _wait = \
        _not_impl

    def set(self, key, value):
        self._set(_key(key, "set"), _val(value, "set"))

    def get(self, key):
        """The value of key, waiting up to the store's timeout for another rank to set it."""
        return self._get(_key(key, "get"))

    def add(self, key, amount):
        """Add `amount` to the integer at key (0 when missing); returns the new value."""
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError(f"add(): amount must be an int, got {type(amount).__name__}")
        return self._add(_key(key, "add"), amount)

    def compare_set(self, key, expected_value, desired_value):
        """Set key to desired_value if it holds expected_value (or is missing and expected is
        empty); returns the value the key holds afterwards (expected_value when missing)."""
        return self._compare_set(_key(key, "compare_set"), _val(expected_value, "compare_set"),
                                 _val(desired_value, "compare_set"))

    def append(self, key, value):
        self._append(_key(key, "append"), _val(value, "append"))

    def multi_get(self, keys):
        return [self.get(k) for k in keys]

    def multi_set(self, keys, values):
        if len(keys) != len(values):
            raise ValueError(f"multi_set(): {len(keys)} keys but {len(values)} values")
        for k, v in zip(keys, values):
            self.set(k, v)

    def delete_key(self, key):
        return self._delete(_key(key, "delete_key"))

    def num_keys(self):
        return self._num_keys()

    def check(self, keys):
        return self._check([_key(k, "check") for k in keys])

    def wait(self, keys, timeout=None):
        """Block until every key exists (timeout: the store's by default)."""
        self._wait([_key(k, "wait") for k in keys], self._timeout if timeout is None else timeout)

    def has_extended_api(self):
        return True

    def queue_push(self, key, value):
        raise NotImplementedError("queue support is not implemented.")

    def queue_pop(self, key, block=True):
        raise NotImplementedError("queue support is not implemented.")

    def queue_len(self, key):
        raise NotImplementedError("queue support is not implemented.")


class HashStore(Store):
    """A store in this process's memory, shared by its threads."""

    def __init__(self):
        super().__init__()
        self._kv = _KV()

    def _set(self, k, v):
        self._kv.set(k, v)

    def _wait(self, keys, timeout):
        if not self._kv.wait(keys, _secs(timeout)):
            raise DistStoreError("Wait timeout")

    def _get(self, k):
        self._wait([k], self._timeout)
        return self._kv.get(k)

    def _add(self, k, n):
        return self._kv.add(k, n)

    def _compare_set(self, k, e, d):
        return self._kv.compare_set(k, e, d)

    def _append(self, k, v):
        self._kv.append(k, v)

    def _delete(self, k):
        return self._kv.delete(k)

    def _num_keys(self):
        return self._kv.num_keys()

    def _check(self, keys):
        return self._kv.check(keys)

    def queue_push(self, key, value):
        self._kv.queue_push(_key(key, "queue_push"), _val(value, "queue_push"))

    def queue_pop(self, key, block=True):
        v, err = self._kv.queue_pop(_key(key, "queue_pop"), block, _secs(self._timeout))
        if err == "empty":
            raise QueueEmptyError("queue is empty")
        if err == "timeout":
            raise DistStoreError("Wait timeout")
        return v

    def queue_len(self, key):
        return self._kv.queue_len(_key(key, "queue_len"))


# ---- FileStore -------------------------------------------------------------------------------
_REFCOUNT_KEY, _CLEANUP_KEY = "refcount/", "cleanup/"


class FileStore(Store):
    """A store in a file: every process (or FileStore object) opening the same path shares it.
    Each operation takes an exclusive flock, replays the log and appends to it. With
    world_size > 0 the last FileStore object closed, once world_size of them were, removes
    the file (as PyTorch's)."""

    def __init__(self, file_name, world_size=-1):
        super().__init__()
        self.path = os.fspath(file_name)
        self._world = int(world_size)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        os.close(fd)
        self._add(_REFCOUNT_KEY, 1)
        weakref.finalize(self, FileStore._cleanup, self.path, self._world)

    @staticmethod
    def _cleanup(path, world):
        try:
            with open(path, "r+b") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                d = FileStore._replay(f.read())
                done = _as_int(d.get(_CLEANUP_KEY, b"0")) + 1
                left = _as_int(d.get(_REFCOUNT_KEY, b"1")) - 1
                f.write(FileStore._rec(b"S", _CLEANUP_KEY, str(done).encode())
                        + FileStore._rec(b"S", _REFCOUNT_KEY, str(left).encode()))
                if 0 < world <= done and left == 0:
                    os.unlink(path)
        except (OSError, ValueError):
            pass

    @staticmethod
    def _rec(op, k, v=b""):
        kb = k.encode()
        return op + struct.pack("<IQ", len(kb), len(v)) + kb + v

    @staticmethod
    def _replay(data):
        d, o = {}, 0
        while o + 13 <= len(data):
            op = data[o:o + 1]
            kl, vl = struct.unpack_from("<IQ", data, o + 1)
            o += 13
            k = data[o:o + kl].decode()
            v = data[o + kl:o + kl + vl]
            o += kl + vl
            if op == b"S":
                d[k] = v
            else:
                d.pop(k, None)
        return d

    def _locked(self, fn):
        """fn(current dict) -> (result, records to append), under the file's lock."""
        with open(self.path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                res, recs = fn(self._replay(f.read()))
                if recs:
                    f.seek(0, os.SEEK_END)
                    f.write(b"".join(recs))
                    f.flush()
                return res
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _set(self, k, v):
        self._locked(lambda d: (None, [self._rec(b"S", k, v)]))

    def _poll(self, keys, timeout):
        end = time.monotonic() + _secs(timeout)
        while True:
            got = self._locked(lambda d: ([d.get(k) for k in keys], None))
            if all(v is not None for v in got):
                return got
            if time.monotonic() >= end:
                return None
            time.sleep(0.01)

    def _get(self, k):
        got = self._poll([k], self._timeout)
        if got is None:
            ms = int(_secs(self._timeout) * 1000)
            raise RuntimeError(f"Timeout waiting for key: {k} after {ms} ms")
        return got[0]

    def _wait(self, keys, timeout):
        if self._poll(keys, timeout) is None:
            raise RuntimeError("Wait timeout")

    def _add(self, k, n):
        def f(d):
            v = (_as_int(d[k]) if k in d else 0) + n
            return v, [self._rec(b"S", k, str(v).encode())]
        return self._locked(f)

    def _compare_set(self, k, e, want):
        def f(d):
            cur = d.get(k)
            if (cur is None and e == b"") or (cur is not None and cur == e):
                return want, [self._rec(b"S", k, want)]
            return (e if cur is None else cur), None
        return self._locked(f)

    def _append(self, k, v):
        self._locked(lambda d: (None, [self._rec(b"S", k, d.get(k, b"") + v)]))

    def _delete(self, k):
        self._locked(lambda d: (None, [self._rec(b"D", k)]))
        return True                 # as PyTorch's FileStore, whether or not the key existed

    def _num_keys(self):
        return self._locked(lambda d: (len(d), None))

    def _check(self, keys):
        return self._locked(lambda d: (all(k in d for k in keys), None))

    def has_extended_api(self):
        return False


# ---- TCPStore --------------------------------------------------------------------------------
# wire format: a frame is u32 count, then count fields of (u64 length, bytes); requests are
# [command, args...], replies [status, values...]
def _send_frame(sock, fields):
    out = [struct.pack("<I", len(fields))]
    for f in fields:
        out.append(struct.pack("<Q", len(f)))
        out.append(f)
    sock.sendall(b"".join(out))


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("Failed to recv, got 0 bytes. Connection was likely closed. "
                                  "Did the remote server shutdown or crash?")
        buf += chunk
    return bytes(buf)


def _recv_frame(sock):
    (n,) = struct.unpack("<I", _recv_exact(sock, 4))
    fields = []
    for _ in range(n):
        (k,) = struct.unpack("<Q", _recv_exact(sock, 8))
        fields.append(_recv_exact(sock, k))
    return fields


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        kv = self.server.kv
        while True:
            try:
                req = _recv_frame(self.request)
            except (ConnectionError, OSError):
                return
            cmd, args = req[0], req[1:]
            try:
                rep = self._do(kv, cmd, args)
            except ValueError as e:
                rep = [b"err", str(e).encode()]
            try:
                _send_frame(self.request, rep)
            except OSError:
                return

    @staticmethod
    def _do(kv, cmd, a):
        s = lambda b: b.decode()            # noqa: E731
        if cmd == b"set":
            kv.set(s(a[0]), a[1])
            return [b"ok"]
        if cmd == b"wait":                  # args: timeout seconds, keys...
            keys = [s(k) for k in a[1:]]
            if not kv.wait(keys, float(a[0])):
                return [b"timeout"]
            return [b"ok"] + [kv.get(k) for k in keys]
        if cmd == b"add":
            return [b"ok", str(kv.add(s(a[0]), int(a[1]))).encode()]
        if cmd == b"cas":
            return [b"ok", kv.compare_set(s(a[0]), a[1], a[2])]
        if cmd == b"append":
            kv.append(s(a[0]), a[1])
            return [b"ok"]
        if cmd == b"del":
            return [b"ok", b"1" if kv.delete(s(a[0])) else b"0"]
        if cmd == b"num":
            return [b"ok", str(kv.num_keys()).encode()]
        if cmd == b"check":
            return [b"ok", b"1" if kv.check([s(k) for k in a]) else b"0"]
        if cmd == b"qpush":
            kv.queue_push(s(a[0]), a[1])
            return [b"ok"]
        if cmd == b"qpop":
            v, err = kv.queue_pop(s(a[0]), a[1] == b"1", float(a[2]))
            return [b"ok", v] if err is None else [err.encode()]
        if cmd == b"qlen":
            return [b"ok", str(kv.queue_len(s(a[0]))).encode()]
        return [b"err", b"unknown command " + cmd]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host, port):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.address_family = fam
        super().__init__((host, port), _Handler)
        self.kv = _KV()


_INIT_KEY = "init/"


class TCPStore(Store):
    """A store served over TCP by the process that creates it with is_master=True (in a
    daemon thread); every TCPStore object, the master's included, is a client of it. With
    world_size given and wait_for_workers=True the master's constructor waits until
    world_size clients have connected."""

    def __init__(self, host_name, port, world_size=None, is_master=False,
                 timeout=_DEFAULT_TIMEOUT, wait_for_workers=True, multi_tenant=False,
                 master_listen_fd=None, use_libuv=True):
        super().__init__(timeout)
        self.host = host_name
        self._server = None
        if is_master:
            try:
                self._server = _Server(host_name, int(port))
            except OSError as e:
                raise DistNetworkError(f"The server socket has failed to listen on any local "
                                       f"network address. port: {port}, useIpv6: "
                                       f"{':' in host_name}, code: -{e.errno}, name: "
                                       f"{os.strerror(e.errno or 0)}, message: {e}") from None
            port = self._server.server_address[1]
            threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                             name="kiln-tcpstore").start()
            weakref.finalize(self, _Server.shutdown_close, self._server)
        self.port = int(port)
        self._lock = threading.Lock()
        self._sock = self._connect()
        weakref.finalize(self, self._sock.close)
        if world_size is not None and wait_for_workers:
            self._add(_INIT_KEY, 1)
            if is_master:
                self._wait_workers(int(world_size))

    def _connect(self):
        t = _secs(self._timeout)
        end = time.monotonic() + t
        while True:
            try:
                s = socket.create_connection((self.host, self.port),
                                             timeout=max(end - time.monotonic(), 0.01))
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
                return s
            except OSError:
                if time.monotonic() >= end:
                    raise DistNetworkError(
                        f"The client socket has timed out after {int(t * 1000)}ms while trying "
                        f"to connect to ({self.host}, {self.port}).") from None
                time.sleep(0.05)

    def _wait_workers(self, n):
        t = _secs(self._timeout)
        end = time.monotonic() + t
        while True:
            have = int(self._call(b"add", _INIT_KEY.encode(), b"0")[1])
            if have >= n:
                return
            if time.monotonic() >= end:
                raise DistStoreError(f"Timed out after {int(round(t))} seconds waiting for "
                                     f"clients. {have}/{n} clients joined.")
            time.sleep(0.01)

    def _call(self, *fields):
        with self._lock:
            try:
                _send_frame(self._sock, list(fields))
                rep = _recv_frame(self._sock)
            except (ConnectionError, OSError) as e:
                raise DistNetworkError(str(e) or type(e).__name__) from None
        if rep[0] == b"err":
            raise ValueError(rep[1].decode())
        return rep

    def _wait_keys(self, keys, timeout):
        t = _secs(timeout)
        rep = self._call(b"wait", repr(t).encode(), *[k.encode() for k in keys])
        if rep[0] == b"timeout":
            raise DistStoreError(f"wait timeout after {int(t * 1000)}ms, keys: "
                                 + ", ".join("/" + k for k in keys))
        return rep[1:]

    def _set(self, k, v):
        self._call(b"set", k.encode(), v)

    def _get(self, k):
        return self._wait_keys([k], self._timeout)[0]

    def _wait(self, keys, timeout):
        self._wait_keys(keys, timeout)

    def _add(self, k, n):
        return int(self._call(b"add", k.encode(), str(n).encode())[1])

    def _compare_set(self, k, e, d):
        return self._call(b"cas", k.encode(), e, d)[1]

    def _append(self, k, v):
        self._call(b"append", k.encode(), v)

    def _delete(self, k):
        return self._call(b"del", k.encode())[1] == b"1"

    def _num_keys(self):
        return int(self._call(b"num")[1])

    def _check(self, keys):
        return self._call(b"check", *[k.encode() for k in keys])[1] == b"1"

    def queue_push(self, key, value):
        self._call(b"qpush", _key(key, "queue_push").encode(), _val(value, "queue_push"))

    def queue_pop(self, key, block=True):
        t = _secs(self._timeout)
        rep = self._call(b"qpop", _key(key, "queue_pop").encode(), b"1" if block else b"0",
                         repr(t).encode())
        if rep[0] == b"empty":
            raise QueueEmptyError("queue is empty")
        if rep[0] == b"timeout":
            raise DistStoreError(f"wait timeout after {int(t * 1000)}ms, keys: /{key}")
        return rep[1]

    def queue_len(self, key):
        return int(self._call(b"qlen", _key(key, "queue_len").encode())[1])

    @property
    def libuvBackend(self):
        return False

    def __repr__(self):
        role = f", server=TCPServer(port={self.port})" if self._server is not None else ""
        return f"TCPStore(client=TCPClient({self.host}:{self.port}){role})"


def _shutdown_close(server):
    server.shutdown()
    server.server_close()


_Server.shutdown_close = staticmethod(_shutdown_close)


# ---- PrefixStore -----------------------------------------------------------------------------
class PrefixStore(Store):
    """`store` with every key written as prefix + "/" + key."""

    def __init__(self, prefix, store):
        if not isinstance(store, Store):
            raise TypeError(f"PrefixStore(): store must be a dist.Store, got "
                            f"{type(store).__name__}")
        super().__init__(store.timeout)
        self._prefix = str(prefix)
        self.underlying_store = store

    def _k(self, k):
        return f"{self._prefix}/{k}"

    @property
    def timeout(self):
        return self.underlying_store.timeout

    def set_timeout(self, timeout):
        self.underlying_store.set_timeout(timeout)

    def set(self, key, value):
        self.underlying_store.set(self._k(_key(key, "set")), value)

    def get(self, key):
        return self.underlying_store.get(self._k(_key(key, "get")))

    def add(self, key, amount):
        return self.underlying_store.add(self._k(_key(key, "add")), amount)

    def compare_set(self, key, expected_value, desired_value):
        return self.underlying_store.compare_set(self._k(_key(key, "compare_set")),
                                                 expected_value, desired_value)

    def append(self, key, value):
        self.underlying_store.append(self._k(_key(key, "append")), value)

    def delete_key(self, key):
        return self.underlying_store.delete_key(self._k(_key(key, "delete_key")))

    def num_keys(self):
        return self.underlying_store.num_keys()

    def check(self, keys):
        return self.underlying_store.check([self._k(_key(k, "check")) for k in keys])

    def wait(self, keys, timeout=None):
        self.underlying_store.wait([self._k(_key(k, "wait")) for k in keys], timeout)

    def has_extended_api(self):
        return self.underlying_store.has_extended_api()

    def queue_push(self, key, value):
        self.underlying_store.queue_push(self._k(_key(key, "queue_push")), value)

    def queue_pop(self, key, block=True):
        return self.underlying_store.queue_pop(self._k(_key(key, "queue_pop")), block)

    def queue_len(self, key):
        return self.underlying_store.queue_len(self._k(_key(key, "queue_len")))
