"""fx.replace_pattern: find each occurrence of a pattern graph in a GraphModule and replace it
with a replacement graph (torch.fx.subgraph_rewriter, with its SubgraphMatcher's rules:
pattern placeholders match any value, other nodes match op, target and arguments, and a
matched inner node may have no users outside the match; overlapping matches are dropped)."""
import copy
import itertools
from typing import NamedTuple

from .graph_module import GraphModule
from .node import Node

__all__ = ["Match", "replace_pattern"]


class Match(NamedTuple):
    anchor: Node          # the pattern's node that anchored the match (as torch)
    nodes_map: dict       # pattern node -> matched graph node


def _flat_nodes(a):
    if isinstance(a, (tuple, list)):
        return [n for e in a for n in _flat_nodes(e)]
    return [a] if isinstance(a, Node) else []


class _Matcher:
    def __init__(self, pattern):
        self.pattern = pattern
        self.placeholders = [n for n in pattern.nodes if n.op == "placeholder"]
        self.returning = _flat_nodes(pattern.output_node.args[0])

    @staticmethod
    def _same(pn, gn):
        return pn.op == gn.op and pn.target == gn.target and pn.op not in ("placeholder",
                                                                          "output")

    def _match_arg(self, pa, ga, nmap):
        if isinstance(pa, Node):
            if pa.op == "placeholder" and not isinstance(ga, Node):
                if pa in nmap:
                    return nmap[pa] == ga
                nmap[pa] = ga                 # a placeholder also stands for a literal
                return True
            return isinstance(ga, Node) and self._match_node(pa, ga, nmap)
        if isinstance(pa, (tuple, list)):
            return isinstance(ga, (tuple, list)) and len(pa) == len(ga) and \
                all(self._match_arg(a, b, nmap) for a, b in zip(pa, ga))
        if isinstance(pa, dict):
            return isinstance(ga, dict) and pa.keys() == ga.keys() and \
                all(self._match_arg(pa[k], ga[k], nmap) for k in pa)
        return type(pa) is type(ga) and pa == ga

    def _match_node(self, pn, gn, nmap):
        if pn in nmap:
            return nmap[pn] is gn
        if pn.op == "placeholder":
            nmap[pn] = gn
            return True
        if any(v is gn for v in nmap.values()) or not self._same(pn, gn):
            return False
        saved = dict(nmap)
        nmap[pn] = gn
        if self._match_arg(pn.args, gn.args, nmap) and \
                self._match_arg(pn.kwargs, gn.kwargs, nmap):
            return True
        nmap.clear()
        nmap.update(saved)
        return False

    def _contained(self, nmap):
        inner = {gn for pn, gn in nmap.items()
                 if pn.op != "placeholder" and pn not in self.returning}
        matched = {gn for pn, gn in nmap.items() if pn.op != "placeholder"}
        return all(u in matched for gn in inner for u in gn.users)

    def match(self, graph):
        candidates = [[gn for gn in graph.nodes if self._same(pn, gn)] for pn in self.returning]
        matches, seen = [], set()
        for combo in itertools.product(*candidates):
            nmap = {}
            if not all(self._match_node(pn, gn, nmap) for pn, gn in zip(self.returning, combo)):
                continue
            if not self._contained(nmap):
                continue
            compute = {id(gn) for pn, gn in nmap.items() if pn.op != "placeholder"}
            if compute & seen:
                continue
            seen |= compute
            matches.append(Match(anchor=self.returning[0], nodes_map=nmap))
        return matches


def _as_graph(obj):
    from ._symbolic_trace import symbolic_trace
    return obj if isinstance(obj, GraphModule) else symbolic_trace(obj)


def replace_pattern(gm, pattern, replacement):
    """Replace every non-overlapping match of pattern (a function or Module, traced) in gm's
    graph with replacement; returns the list of Matches. gm is recompiled."""
    pattern_gm, replacement_gm = _as_graph(pattern), _as_graph(replacement)
    graph = gm.graph
    matcher = _Matcher(pattern_gm.graph)
    matches = matcher.match(graph)
    rep_graph = replacement_gm.graph
    rep_placeholders = [n for n in rep_graph.nodes if n.op == "placeholder"]
    for node in rep_graph.nodes:          # attributes the replacement reads
        if node.op in ("get_attr", "call_module") and not hasattr(gm, node.target):
            obj = replacement_gm
            for atom in node.target.split("."):
                obj = getattr(obj, atom)
            gm.add_submodule(node.target, obj) if node.op == "call_module" else \
                setattr(gm, node.target, copy.copy(obj))
    for match in matches:
        nmap = match.nodes_map
        val_map = {rp: nmap[pp] for rp, pp in zip(rep_placeholders, matcher.placeholders)}
        returning = [nmap[pn] for pn in matcher.returning]
        users = {u for n in returning for u in n.users}
        first_user = next((n for n in graph.nodes if n in users), None)
        with graph.inserting_before(first_user):
            copied = graph.graph_copy(rep_graph, val_map)
        copied = _flat_nodes(copied) if isinstance(copied, (tuple, list)) else [copied]
        for old, new in zip(returning, copied):
            old.replace_all_uses_with(new)
        for pn in reversed(list(pattern_gm.graph.nodes)):
            if pn.op not in ("placeholder", "output") and pn in nmap:
                gn = nmap[pn]
                if not gn.users and not gn._erased:
                    graph.erase_node(gn)
    gm.recompile()
    return matches
