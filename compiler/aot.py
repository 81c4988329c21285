"""Ahead-of-time compilation of generated Triton kernels for a named GPU, without a GPU.

    k = codegen.generate(graph)
    art = aot.compile_kernel(k, arch=90)
    art.ptx, art.cubin, art.registers, art.shared

Triton lowers TTIR -> TTGIR -> LLVM IR -> PTX in-process and assembles PTX to a cubin with
the `ptxas` shipped inside its wheel, so nothing here touches a driver. Register and spill
counts come from `cuobjdump --dump-resource-usage` on the cubin (also shipped in the wheel);
shared memory comes from Triton's metadata.
"""
import os
import re
import subprocess
import tempfile

STAGES = ("ttir", "ttgir", "llir", "ptx", "cubin")


class AOTError(RuntimeError):
    pass


class Artifact:
    """Everything one compilation produced, with the numbers people ask about."""

    def __init__(self, name, asm, metadata, arch):
        self.name, self.asm, self.metadata, self.arch = name, asm, metadata, arch
        self.shared = int(getattr(metadata, "shared", 0) or 0)
        self.num_warps = int(getattr(metadata, "num_warps", 0) or 0)
        self._usage = None

    @property
    def ttir(self):
        return self.asm.get("ttir", "")

    @property
    def ttgir(self):
        return self.asm.get("ttgir", "")

    @property
    def llir(self):
        return self.asm.get("llir", "")

    @property
    def ptx(self):
        return self.asm.get("ptx", "")

    @property
    def cubin(self):
        return self.asm.get("cubin", b"")

    @property
    def usage(self):
        """{'REG': n, 'STACK': n, 'SHARED': n, 'LOCAL': n, ...} from cuobjdump, or {}."""
        if self._usage is None:
            self._usage = resource_usage(self.cubin, self.name)
        return self._usage

    @property
    def registers(self):
        return self.usage.get("REG")

    def summary(self):
        return (f"{self.name}: sm_{self.arch} ptx {len(self.ptx)} chars, cubin {len(self.cubin)} "
                f"bytes, registers {self.registers}, shared {self.shared} B, "
                f"spill(local) {self.usage.get('LOCAL')} B, warps {self.num_warps}")


def _triton():
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    return triton, GPUTarget, ASTSource


def _source(ASTSource, fn, signature, constexprs, attrs=None):
    """Version differences live here. Triton 3.2+ (and 3.6..3.9, checked) take
    ASTSource(fn, signature, constexprs=..., attrs=...) with constexprs keyed by name and
    attrs keyed by (argument index,); older releases took `constants=` instead."""
    try:
        if attrs:
            return ASTSource(fn, signature=signature, constexprs=constexprs, attrs=attrs)
        return ASTSource(fn, signature=signature, constexprs=constexprs)
    except TypeError:
        return ASTSource(fn, signature=signature, constants=constexprs)


def specialize_like_launch(arg_names, signature, constexprs, values):
    """The specialisation Triton's JIT gives a launch with these argument values (what the
    GPU runs): an integer equal to 1 becomes the constant 1, an integer divisible by 16 and a
    16-byte-aligned pointer get the divisibility attribute (vectorised loads follow from
    them). values: {parameter name: int, or True/False for a pointer's 16-byte alignment}.
    arg_names: the kernel's parameters in order. Returns (signature, constexprs, attrs)."""
    sig, consts, attrs = dict(signature), dict(constexprs), {}
    for i, name in enumerate(arg_names):
        v = values.get(name)
        if v is None or sig.get(name) == "constexpr":
            continue
        if sig[name].startswith("*"):
            if v is True:
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif type(v) is int and sig[name][0] in "iu":
            if v == 1:
                sig[name], consts[name] = "constexpr", 1
            elif v % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    return sig, consts, attrs


def compile_fn(fn, signature, constexprs, arch=90, num_warps=4, name=None, num_stages=None,
               attrs=None):
    """triton.compile for GPUTarget('cuda', arch, 32): returns an Artifact."""
    triton, GPUTarget, ASTSource = _triton()
    if getattr(fn, "__class__", type(fn)).__name__ != "JITFunction":
        raise AOTError(f"aot: {name or fn}: needs a @triton.jit function compiled with "
                       "TRITON_INTERPRET unset (got an interpreted function)")
    src = _source(ASTSource, fn, signature, constexprs, attrs)
    # enable_fp_fusion=False: no a*b+c contraction, so results round like the NumPy lowering
    opts = {"num_warps": num_warps, "enable_fp_fusion": False}
    if num_stages is not None:
        opts["num_stages"] = num_stages
    try:
        ck = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=opts)
    except Exception as e:
        raise AOTError(f"aot: compiling {name or fn.__name__} for sm_{arch} failed: "
                       f"{type(e).__name__}: {e}") from e
    return Artifact(name or fn.__name__, dict(ck.asm), ck.metadata, arch)


def compile_kernel(kernel, arch=90, block=1024, num_warps=4):
    """AOT-compile a generated kernel (its JIT form) for sm_<arch>: a PointwiseKernel, or a
    group kernel (triton_group.GroupKernel: reduction, matmul, gather), which brings its own
    block sizes and warps (matmul: its first autotuning config)."""
    fn = kernel.function(interpret=False)
    sig, consts = kernel.signature(block)
    opts = kernel.aot_options() if hasattr(kernel, "aot_options") else {"num_warps": num_warps}
    attrs = None
    typical = getattr(kernel, "typical_args", None)
    if typical is not None:         # specialised as a launch on contiguous buffers would be
        sig, consts, attrs = specialize_like_launch(fn.arg_names, sig, consts, typical())
    return compile_fn(fn, sig, consts, arch=arch, name=kernel.name, attrs=attrs, **opts)


def tool(name):
    """Path of a CUDA tool shipped in Triton's wheel (ptxas, cuobjdump, nvdisasm), or None."""
    try:
        import triton
    except ImportError:
        return None
    p = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
    return p if os.path.exists(p) else None


def resource_usage(cubin, name=None):
    """Parse `cuobjdump --dump-resource-usage` for the kernel in `cubin`."""
    exe = tool("cuobjdump")
    if exe is None or not cubin:
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
        path = f.name
    try:
        out = subprocess.run([exe, "--dump-resource-usage", path], capture_output=True,
                             text=True, timeout=60).stdout
    finally:
        os.unlink(path)
    usage = {}
    for line in out.splitlines():
        if "REG:" in line:
            for k, v in re.findall(r"([A-Z_\[\]0-9]+):(\d+)", line):
                usage[k] = int(v)
    return usage


def sass(cubin):
    """SASS text of a cubin via the shipped nvdisasm ('' when unavailable)."""
    exe = tool("nvdisasm")
    if exe is None or not cubin:
        return ""
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
        path = f.name
    try:
        return subprocess.run([exe, "-c", path], capture_output=True, text=True, timeout=60).stdout
    finally:
        os.unlink(path)
