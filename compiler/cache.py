"""Disk cache of generated programs (and the shared helpers the Triton kernel cache uses).

Location: $KILN_CACHE_DIR, else the user cache directory ($XDG_CACHE_HOME or ~/.cache)/kiln.
A program entry is <dir>/programs/<backend>/<hash>.py, where hash = sha256 of the backend, the
code generator's version, a digest of the compiler's own source files (a compiler change must
not load stale programs) and Graph.key(). The file starts with a header naming the hash; an
entry whose header, hash or Python syntax is wrong is reported as corrupt (logged) and the
caller regenerates and overwrites it. Writes go to a temporary file then os.replace, so a
reader sees either no file or a whole one, and two processes compiling the same graph at once
both write identical bytes.
"""
import hashlib
import logging
import os
import tempfile

log = logging.getLogger("kiln.cache")

HEADER = "# kiln generated program"
_COMPILER_DIGEST = []


def base_dir():
    d = os.environ.get("KILN_CACHE_DIR")
    if d:
        return d
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "kiln")


def digest(text, n=16):
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def atomic_write(path, text):
    """Write text to path via a temporary file in the same directory and os.replace."""
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def compiler_digest():
    """Digest of the compiler's source files and the dtype table (computed once)."""
    if not _COMPILER_DIGEST:
        here = os.path.dirname(os.path.abspath(__file__))
        files = []
        for root, dirs, names in os.walk(here):
            dirs.sort()
            files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".py")]
        files.append(os.path.join(os.path.dirname(here), "runtime", "dtypes.py"))
        h = hashlib.sha256()
        for f in files:
            try:
                with open(f, "rb") as fh:
                    h.update(os.path.relpath(f, here).encode() + b"\0" + fh.read())
            except OSError:
                pass
        _COMPILER_DIGEST.append(h.hexdigest()[:16])
    return _COMPILER_DIGEST[0]


def program_key(graph_key, backend, version):
    return digest(f"{backend}\n{version}\n{compiler_digest()}\n{graph_key}", 32)


def program_path(key, backend):
    return os.path.join(base_dir(), "programs", backend, key + ".py")


def _header(key, body):
    return f"{HEADER} {key} {digest(body)}\n"


def load_program(key, backend):
    """(source, code object) cached for key, or None when absent or corrupt (a corrupt entry:
    wrong header, key or body hash, or bad syntax; it is logged and the caller regenerates)."""
    path = program_path(key, backend)
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        log.warning("kiln cache: unreadable entry %s (%s); regenerating", path, e)
        return None
    head, _, body = text.partition("\n")
    if head + "\n" != _header(key, body):
        log.warning("kiln cache: corrupt entry %s (wrong header or hash); regenerating", path)
        return None
    try:
        code = compile(body, path, "exec")
    except (SyntaxError, ValueError) as e:
        log.warning("kiln cache: corrupt entry %s (%s); regenerating", path, e)
        return None
    _RECORDED.setdefault((backend, key), text)
    return body, code


def store_program(key, backend, source):
    path = program_path(key, backend)
    text = _header(key, source) + source
    _RECORDED.setdefault((backend, key), text)
    try:
        atomic_write(path, text)
    except OSError as e:          # a read-only or full disk only costs the next process time
        log.warning("kiln cache: cannot write %s (%s)", path, e)
        return None
    return path


# every program entry this process wrote or read: (backend, key) -> file text, for
# torch.compiler.save_cache_artifacts
_RECORDED = {}


def recorded_programs():
    """[(backend, key, file text)] of the entries written or read by this process."""
    return [(b, k, t) for (b, k), t in _RECORDED.items()]


def install_program(key, backend, text):
    """Write an entry saved by another process (load_cache_artifacts); False, logged, when its
    header does not match its key and body (nothing written)."""
    head, _, body = text.partition("\n")
    if not (key.isalnum() and backend.isalnum()) or head + "\n" != _header(key, body):
        log.warning("kiln cache: artifact %r/%r does not match its header; skipped", backend,
                    key)
        return False
    try:
        atomic_write(program_path(key, backend), text)
    except OSError as e:
        log.warning("kiln cache: cannot write %s (%s)", program_path(key, backend), e)
        return False
    _RECORDED.setdefault((backend, key), text)
    return True
