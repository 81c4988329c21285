"""torch.fx for Kiln: symbolic tracing to a readable Graph, GraphModule, Interpreter and
Transformer. Kiln has no __torch_function__, so while tracing the public functions of
framework, nn.functional, special, linalg and fft are patched to record call_function nodes
when given Proxies (restored afterwards, errors included)."""
from .node import Node, map_arg, map_aggregate
from .graph import Graph, PythonCode, CodeGen
from .proxy import Proxy, Attribute, TraceError
from ._symbolic_trace import Tracer, symbolic_trace, wrap, PH
from .graph_module import GraphModule
from .interpreter import Interpreter, Transformer
from . import passes  # noqa: F401
from .subgraph_rewriter import replace_pattern

__all__ = ["symbolic_trace", "Tracer", "wrap", "Graph", "GraphModule", "Interpreter",
           "Transformer", "Node", "Proxy", "Attribute", "TraceError", "PH", "map_arg",
           "map_aggregate", "PythonCode", "CodeGen", "replace_pattern"]
