"""Kiln's IR: the primitive registry (registry.py) and graphs (graph.py)."""
from .registry import REGISTRY, Prim, AVal, get, register, prim  # noqa: F401
