"""torch.func: composable function transforms (vmap, grad, vjp, jvp, jacrev, jacfwd, hessian)
and functional_call / stack_module_state for using modules as functions."""
from .vmap import vmap
from .api import (grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, functional_call,
                  stack_module_state, linearize, replace_all_batch_norm_modules_)
from .functionalize import functionalize, debug_unwrap

__all__ = ["vmap", "grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian",
           "linearize", "functional_call", "stack_module_state", "replace_all_batch_norm_modules_",
           "functionalize", "debug_unwrap"]
