"""Graph passes, each a small module; run_all applies them in order and returns a log."""
from .dce import dce


def run_all(graph):
    log = []
    g = dce(graph)
    log.append(("dce", len(graph.nodes) - len(g.nodes)))
    return g, log
