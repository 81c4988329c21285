"""The eager op suites and the compiled-model equivalence tests, run a second time with the
'interpret' device as the default device (torch.set_default_device): every factory call in
those tests makes interpret tensors, so every op runs its generated Triton kernel through
Triton's interpreter (or its counted host fallback) and must give the cpu results.

tests/test_interpret_suite.py runs this file as a child process; by hand:

    .venv/bin/python tests/_interp_suite.py [-x] [more pytest arguments]

The child blocks `import torch` (tests/_interp.py; conftest.py blocks it in every xdist worker
too) and sets TRITON_INTERPRET=1 and KILN_TEST_DEVICE=interpret, which conftest.py reads.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FILES = ["test_math.py", "test_reductions.py", "test_shape.py", "test_indexing.py",
         "test_creation.py", "test_views.py", "test_sort.py", "test_linalg.py",
         "test_autograd.py", "test_compile_models.py", "test_compile_models_device.py",
         # nn layers, losses, init, attention, rnn utilities and optimizers on the device
         "test_nn_layers_basic.py", "test_nn_losses.py", "test_nn_norm.py", "test_nn_init.py",
         "test_nn_conv.py", "test_nn_pool_pad.py", "test_nn_module.py", "test_nn_utils.py",
         "test_nn_attention.py", "test_nn_rnn.py", "test_optim.py", "test_nn_ctc.py",
         # compiled replays of modules and whole training steps on the device
         "test_compile_replay.py", "test_compile_step_replay.py",
         # random programs through the Triton kernels (the cpu run fuzzes the NumPy programs)
         "test_compile_fuzz.py",
         "test_gradcheck.py", "test_lr_scheduler.py", "test_serialization.py"]

_PRINTS = ("compares the printed text with PyTorch's cpu printing; on a device PyTorch appends "
           "device='...' (test_interpret_device.py checks that suffix); the values were checked "
           "to agree with the suffix stripped")
_CPU_RNG = ("the cpu generator's semantics (get_rng_state, torch.Generator() arguments): on a "
            "device PyTorch draws only from that device's generator, and passing a cpu one "
            "raises; test_random_device.py checks the device generators")
_SHARES = ("NumPy interop that only cpu tensors have: .numpy() of a device tensor raises "
           "TypeError as PyTorch's does, and device memory is not shared with NumPy arrays")

_CPU_LAYOUT = ("the result strides PyTorch's TensorIterator picks, which the cpu device's NumPy "
               "buffers follow; device buffers keep their own (row-major) layout, with the "
               "same values (the README's known limits)")

# node id prefix (as pytest's --deselect takes it) -> why it does not run on interpret
DESELECT = {
    "test_nn_pool_pad.py::test_interpolate_uint8_channels_last": _CPU_LAYOUT,
    "test_math.py::test_seed_inplace_chain_add_alpha": _PRINTS,
    "test_reductions.py::test_max_min_with_dim_return_named_values_indices": _PRINTS,
    "test_reductions.py::test_argmax_argmin_seed_T8": _PRINTS,
    "test_reductions.py::test_norm_seed_T6": _PRINTS,
    "test_shape.py::test_flip_seed_t7": _PRINTS,
    "test_shape.py::test_cat_stack_seed_002": _PRINTS,
    "test_shape.py::test_tril_seed_t8": _PRINTS,
    "test_indexing.py::test_nonzero_seed_t7": _PRINTS,
    "test_indexing.py::test_scatter_seed_t5": _PRINTS,
    "test_creation.py::test_tensor_infers_dtype": _PRINTS,
    "test_creation.py::test_arange_values_and_dtypes": _PRINTS,
    "test_creation.py::test_linspace_logspace": _PRINTS,
    "test_creation.py::test_legacy_constructors": _PRINTS,
    "test_creation.py::test_bernoulli": _PRINTS,
    "test_creation.py::test_seed_reproducibility_and_initial_seed": _CPU_RNG,
    "test_creation.py::test_generator_argument_is_independent_of_the_global_stream": _CPU_RNG,
    "test_sort.py::test_seed_t8_argmax_argsort_var_numel": _PRINTS,
    "test_linalg.py::test_mm_bmm_mv_dot_outer": _PRINTS,
    "test_linalg.py::test_norm_seed_t6": _PRINTS,
    "test_math.py::test_seed_numpy_view_sees_inplace_add": _SHARES,
    "test_math.py::test_inplace_operators_write_into_the_same_tensor": _SHARES,
    "test_creation.py::test_numpy_and_clone_sharing": _SHARES,
    "test_creation.py::test_as_tensor_and_asarray":
        _SHARES + " (as_tensor(ndarray) on a non-cpu default device copies, as in PyTorch)",
    "test_indexing.py::test_advanced_index_layout_of_a_non_contiguous_input": _CPU_LAYOUT,
    "test_indexing.py::test_result_layouts_of_a_permuted_input": _CPU_LAYOUT,
    "test_views.py::test_unfold_of_a_non_contiguous_tensor_is_a_view": _CPU_LAYOUT,
    "test_math.py::test_integer_division_by_zero_raises_and_leaves_data":
        "PyTorch raises ZeroDivisionError for integer division by zero on cpu only; a GPU "
        "kernel does not check (no host sync per op), and the interpret device runs the GPU "
        "kernels",
}
for _t in ("test_nn_layers_basic.py::test_softmax_seed_example",
           "test_nn_module.py::test_parameter_repr_and_identity",
           "test_optim.py::test_eval_does_not_block_updates_T3",
           "test_optim.py::test_sgd_quadratic_seed_oracle"):
    DESELECT[_t] = _PRINTS
DESELECT["test_serialization.py::test_seed_list_of_tensors"] = _PRINTS
for _t in ("test_optim.py::test_lbfgs_minimises_rosenbrock_as_pytorch",
           "test_optim.py::test_lbfgs_against_pytorch"):
    DESELECT[_t] = ("its start point and evaluation counts are PyTorch's cpu stream's; on a "
                    "device randn draws from the device's own Philox stream, as in PyTorch")
DESELECT["test_serialization.py::test_map_location_forms"] = (
    "checks the location string a map_location function sees for cpu tensors; a saved device "
    "tensor reports its own device there, as in PyTorch")
DESELECT["test_serialization.py::test_whole_module_needs_weights_only_false"] = (
    "loads the module with map_location='cpu' on purpose, then calls it with a default-device "
    "input")
_LEGACY = ("mixes torch.Tensor(data), which stays on the cpu under set_default_device as in "
           "PyTorch, with modules built on the default device")
DESELECT["test_nn_module.py::test_T1_forward_and_full_backward_hooks"] = _LEGACY
DESELECT["test_nn_module.py::test_grad_fn_names_without_hooks"] = _LEGACY
DESELECT["test_nn_module.py::test_to_double_keeps_parameter_identity"] = (
    "moves the module to the cpu on purpose, then calls it with a default-device input")
DESELECT["test_optim.py::test_foreach_flag_selects_the_multi_tensor_path"] = (
    "checks the cpu default (foreach=None: the loop); parameters on a device take the "
    "multi-tensor path by default, as PyTorch's GPU default does (test_interpret_device.py "
    "checks that)")
DESELECT["test_nn_pool_pad.py::test_padding_modules_and_seed_shapes"] = (
    "the seed's 64x3x220x220 input takes minutes through the interpreter; the padding modes' "
    "values on the device are checked by test_pad_modes")
DESELECT["test_autograd.py::test_graph_freed_after_backward_no_growth"] = (
    "1,020 training steps under tracemalloc: about 80 s through the interpreter, past the CI "
    "budget; what it checks (the autograd engine frees graphs) is device-independent and runs "
    "in the cpu suite")
DESELECT["test_linalg.py::test_ormqr_gradcheck"] = (
    "finite differences rerun the reflector product about a hundred times, each op through the "
    "interpreter (20 s); ormqr is composed of ops (matmul, tril, narrow, conj) whose gradients "
    "the interpret run checks, and test_ormqr_matches_lapack checks its values there")
_LINALG_GG = ("cholesky and solve_triangular run as host library calls on the device (counted as "
              "'library' in _device_ops.STATS); finite differences of second derivatives through "
              "them, each surrounding op through the interpreter, took 30-70 s, the longest tests "
              "of the interpret run; the cpu suite runs them, and the device checks the ops their "
              "gradients are composed of")
DESELECT["test_linalg.py::test_solve_triangular_gradcheck_and_gradgradcheck"] = _LINALG_GG
DESELECT["test_linalg.py::test_cholesky_gradcheck_and_gradgradcheck"] = _LINALG_GG
# Adam turns the rounding noise of gradients that are zero in exact arithmetic (a conv bias
# before BatchNorm in DigitsCNN, the attention key bias in Encoder) into +-lr steps, so after
# five steps the parameters differ between any two summation orders (eager Triton kernels vs
# compiled fused kernels). Per-step outputs and gradients still agree; these two models' compiled
# equivalence runs with SGD in test_compile_models_device.py instead.
_ADAM_NOISE = "Adam amplifies the rounding noise of exactly-zero gradients (see _ADAM_NOISE)"
_BN_BIAS = ("the conv bias before BatchNorm has a gradient that is zero in exact arithmetic: "
            "its rounding noise differs between eager kernels and compiled kernels, and the "
            "optimizer turns it into visible steps (see _ADAM_NOISE); the other parameters and "
            "the outputs agree")
for _t in ("test_compile_replay.py::test_digits_cnn_without_dropout_replays_with_batchnorm_"
           "stats_equal_eager",
           "test_compile_replay.py::test_dropout_in_train_mode_replays_drawing_masks_as_eager",
           "test_compile_step_replay.py::test_cnn_step_with_batchnorm_buffers_replays_and_"
           "equals_eager",
           "test_compile_step_replay.py::test_dropout_masks_are_drawn_again_by_replays_as_"
           "eager_draws_them"):
    DESELECT[_t] = _BN_BIAS
for _m in ("DigitsCNN", "Encoder"):
    DESELECT[f"test_compile_models.py::test_compiled_forward_gradients_and_five_steps_equal_eager"
             f"[{_m}]"] = _ADAM_NOISE
    DESELECT[f"test_compile_models.py::test_whole_compiled_training_step_equals_eager[{_m}]"] = \
        _ADAM_NOISE


def args(extra=()):
    """pytest arguments of the interpret run (FILES unless `extra` names test paths)."""
    extra = list(extra)
    named = [x for x in extra if x.startswith("tests" + os.sep) or x.startswith("tests/")]
    a = [] if named else [os.path.join("tests", f) for f in FILES]
    for nodeid in DESELECT:
        a += ["--deselect", "tests/" + nodeid]
    return a + ["-p", "no:cacheprovider", "-rfE"] + extra


def main(extra):
    sys.path.insert(0, HERE)
    from _interp import become_interpreter_worker
    become_interpreter_worker(ROOT)
    os.environ["KILN_TEST_DEVICE"] = "interpret"    # read by conftest.py (and xdist workers)
    os.chdir(ROOT)
    import pytest
    return pytest.main(args(extra))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
