"""Code generation: IR graphs -> kernel source text (Triton for GPUs and the interpreter)."""
from .triton_pointwise import PointwiseKernel, generate, TritonCodegenError  # noqa: F401
