"""Kiln's compiler: IR, primitives and their rules, graph transformations, code generation."""
from . import ops  # noqa: F401  (fills the registry)
from .ir import REGISTRY  # noqa: F401
