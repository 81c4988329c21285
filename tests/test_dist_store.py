"""torch.distributed stores (framework/distributed/store.py) in one process, with threads and
with a second process: HashStore, FileStore (flock), TCPStore (a real TCP server), PrefixStore.
Expected values are torch's documented semantics, derived by hand."""
import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta

import pytest

import framework.distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORE_PY = os.path.join(ROOT, "framework", "distributed", "store.py")

# a child process loads store.py alone (it needs only the standard library and runtime/),
# which starts in a fraction of the time `import framework` takes
CHILD = f"""
import importlib.util, sys
sys.path.insert(0, {ROOT!r})
spec = importlib.util.spec_from_file_location("kiln_store", {STORE_PY!r})
st = importlib.util.module_from_spec(spec); spec.loader.exec_module(st)
from datetime import timedelta
"""


def _child(code, *args):
    return subprocess.Popen([sys.executable, "-c", CHILD + code, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _semantics(s):
    """The operations every store shares, from an empty store."""
    s.set("a", "x")
    s.set("b", b"\x00y")
    assert s.get("a") == b"x" and s.get("b") == b"\x00y"
    assert s.add("c", 3) == 3 and s.add("c", -1) == 2 and s.get("c") == b"2"
    with pytest.raises(ValueError, match="stoll"):
        s.add("a", 1)                               # not an integer: unchanged
    assert s.get("a") == b"x"
    assert s.compare_set("a", "x", "z") == b"z" and s.get("a") == b"z"
    assert s.compare_set("a", "wrong", "q") == b"z" and s.get("a") == b"z"
    assert s.compare_set("new", "", "v") == b"v"    # missing + empty expected: set
    assert s.compare_set("new2", "e", "v") == b"e" and not s.check(["new2"])
    assert s.check(["a", "b"]) and not s.check(["a", "nokey"])
    s.append("b", "z")
    s.append("fresh", "q")
    assert s.get("b") == b"\x00yz" and s.get("fresh") == b"q"
    s.multi_set(["m1", "m2"], ["1", b"2"])
    assert s.multi_get(["m1", "m2"]) == [b"1", b"2"]
    with pytest.raises(TypeError):
        s.set("i", 5)
    with pytest.raises(TypeError):
        s.get(5)


def test_hash_store_semantics_and_blocking_get():
    s = dist.HashStore()
    assert s.timeout == timedelta(minutes=5)
    _semantics(s)
    assert s.num_keys() == 7                        # a b c new fresh m1 m2: nothing hidden
    assert s.delete_key("a") is True and s.delete_key("a") is False
    s.set_timeout(timedelta(seconds=0.2))
    with pytest.raises(dist.DistStoreError, match="Wait timeout"):
        s.get("missing")
    with pytest.raises(dist.DistStoreError, match="Wait timeout"):
        s.wait(["b", "missing"], timedelta(seconds=0.05))
    # a get blocks until another thread sets the key
    s.set_timeout(timedelta(seconds=30))
    t = threading.Timer(0.1, lambda: s.set("late", "here"))
    t.start()
    assert s.get("late") == b"here"
    t.join()
    s.queue_push("q", "1")
    s.queue_push("q", "2")
    assert s.queue_len("q") == 2 and s.queue_pop("q") == b"1" and s.queue_pop("q") == b"2"
    with pytest.raises(dist.QueueEmptyError, match="queue is empty"):
        s.queue_pop("q", block=False)


def test_file_store_shared_by_objects_and_processes(tmp_path):
    path = str(tmp_path / "store")
    s = dist.FileStore(path, 1)
    _semantics(s)
    assert s.num_keys() == 8                        # 7 + the open-store count, as in torch
    other = dist.FileStore(path)                    # a second object sees the same keys
    assert other.get("m2") == b"2"
    other.set("from_other", "o")
    assert s.get("from_other") == b"o"
    assert s.delete_key("a") is True and s.delete_key("a") is True   # torch: always True
    assert not s.check(["a"])
    s.set_timeout(timedelta(seconds=0.1))
    with pytest.raises(RuntimeError, match="Timeout waiting for key: missing after 100 ms"):
        s.get("missing")
    with pytest.raises(NotImplementedError, match="queue support is not implemented"):
        s.queue_push("q", "1")
    # two processes adding at once: the lock makes every add count
    code = ("s = st.FileStore(sys.argv[1])\n"
            "for _ in range(200): s.add('n', 1)\n"
            "s.set('done' + sys.argv[2], '1')\n")
    kids = [_child(code, path, k) for k in range(2)]
    for _ in range(100):
        s.add("n", 1)
    for k in kids:
        _, err = k.communicate(timeout=60)
        assert k.returncode == 0, err
    s.set_timeout(timedelta(seconds=30))
    s.wait(["done0", "done1"])
    assert int(s.get("n")) == 500


def _free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def test_tcp_store_server_and_client_processes():
    port = _free_port()
    # the worker connects (retrying until the master listens), sets a key, waits for the
    # master's reply key (blocking on the server), and adds
    code = ("c = st.TCPStore('127.0.0.1', int(sys.argv[1]), 2, False, "
            "timeout=timedelta(seconds=30))\n"
            "c.set('worker', 'w')\n"
            "print(c.get('reply').decode(), c.add('n', 5), flush=True)\n"
            "c.wait(['bye'])\n")
    kid = _child(code, port)
    # the master's constructor returns once both clients (itself and the worker) joined
    m = dist.TCPStore("127.0.0.1", port, 2, True, timeout=timedelta(seconds=30))
    assert m.port == port and m.get("worker") == b"w"       # blocks until the worker set it
    assert m.add("n", 1) == 1          # the worker adds only after it got "reply"
    m.set("reply", "r")
    _semantics(m)
    assert m.num_keys() == 11          # worker reply n init/ + the 7 of _semantics
    m.set("bye", "")
    out, err = kid.communicate(timeout=60)
    assert kid.returncode == 0, err
    got, added = out.split()
    assert got == "r" and int(added) == 6
    assert int(m.get("n")) == 6
    m.set_timeout(timedelta(seconds=0.2))
    with pytest.raises(dist.DistStoreError, match=r"wait timeout after 200ms, keys: /missing"):
        m.get("missing")
    assert m.delete_key("worker") is True and m.delete_key("worker") is False
    m.queue_push("q", "1")
    assert m.queue_len("q") == 1 and m.queue_pop("q") == b"1"
    with pytest.raises(dist.QueueEmptyError):
        m.queue_pop("q", block=False)


def test_tcp_store_timeouts_and_prefix_store():
    port = _free_port()
    with pytest.raises(dist.DistStoreError, match="1/2 clients joined"):
        dist.TCPStore("127.0.0.1", port, 2, True, timeout=timedelta(seconds=0.3))
    with pytest.raises(dist.DistNetworkError, match="has timed out after 200ms while trying "
                                                    "to connect"):
        dist.TCPStore("127.0.0.1", _free_port(), None, False, timeout=timedelta(seconds=0.2))
    m = dist.TCPStore("127.0.0.1", 0, None, True, timeout=timedelta(seconds=5))
    assert m.port > 0 and m.num_keys() == 0           # no world_size: no init/ key
    for base in (m, dist.HashStore()):
        p = dist.PrefixStore("pre", base)
        p.set("k", "v")
        assert base.get("pre/k") == b"v" and p.get("k") == b"v"
        assert p.add("n", 2) == 2 and base.get("pre/n") == b"2"
        assert p.check(["k"]) and not p.check(["pre/k"]) and p.underlying_store is base
        nested = dist.PrefixStore("in", p)
        nested.set("x", "1")
        assert base.get("pre/in/x") == b"1"
    with pytest.raises(TypeError, match="must be a dist.Store"):
        dist.PrefixStore("p", {})


def test_file_store_removes_its_file_after_world_size_closes(tmp_path):
    import gc
    path = str(tmp_path / "s")
    a, b = dist.FileStore(path, 2), dist.FileStore(path, 2)
    a.set("k", "v")
    del a
    gc.collect()
    assert os.path.exists(path) and b.get("k") == b"v"      # one of two closed: kept
    del b
    gc.collect()
    assert not os.path.exists(path)
