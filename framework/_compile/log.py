"""KILN_LOGS=graphs,fusion,recompiles,graph_breaks (or all): print what compile() does as it
happens. Read once per process; tests may call enable() to switch topics on."""
import os
import sys

TOPICS = ("graphs", "fusion", "recompiles", "graph_breaks", "kernels", "cache")
_on = set()


def _read_env():
    v = os.environ.get("KILN_LOGS", "")
    for t in v.replace(" ", "").split(","):
        if t == "all":
            _on.update(TOPICS)
        elif t:
            _on.add(t.lstrip("+"))


_read_env()


def enable(*topics):
    _on.update(topics)


def disable(*topics):
    for t in topics:
        _on.discard(t)


def enabled(topic):
    return topic in _on


def emit(topic, msg):
    if topic in _on:
        print(f"[kiln:{topic}] {msg}", file=sys.stderr)
