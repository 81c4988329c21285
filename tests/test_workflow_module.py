"""Workflow checks from scripts that build, inspect, save and modify models: global module
hooks (backward and registration), state_dict hooks' contracts, deprecation warnings users see,
parametrize helpers, lazy modules before their first call, nn.init.sparse_'s streams and the
PackedSequence helpers' grad_fn names. References are NumPy float64 or hand-derived values."""
import collections
import copy
import pickle
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.nn.modules import module as M
from framework.nn.utils import parametrize as P, parametrizations as PZ, rnn as R
from conftest import to_np


def _linear(w, b):
    m = nn.Linear(len(w[0]), len(w))
    with torch.no_grad():
        m.weight.copy_(torch.tensor(w))
        m.bias.copy_(torch.tensor(b))
    return m


# ---- global backward and registration hooks ------------------------------------------------

def test_global_full_backward_and_pre_hooks_run_before_the_modules_own():
    m = _linear([[1., 2.], [3., 4.]], [0., 0.])
    log = []
    hs = [M.register_module_full_backward_pre_hook(
              lambda mod, go: log.append(("gpre", [g.tolist() for g in go]))),
          M.register_module_full_backward_hook(
              lambda mod, gi, go: log.append(("gbw", [g.tolist() for g in gi]))),
          m.register_full_backward_hook(lambda mod, gi, go: log.append(("own", None)))]
    try:
        x = torch.tensor([[1., 1.]], requires_grad=True)
        m(x).sum().backward()
    finally:
        for h in hs:
            h.remove()
    # grad_output is ones(1, 2); grad_input = ones @ W = [[4, 6]]
    assert log == [("gpre", [[[1., 1.]]]), ("gbw", [[[4., 6.]]]), ("own", None)]
    np.testing.assert_array_equal(to_np(x.grad), [[4., 6.]])
    log.clear()
    m2 = _linear([[1., 0.]], [0.])
    m2(torch.ones(1, 2, requires_grad=True)).sum().backward()
    assert log == []           # removed: no global hook left


def test_global_backward_hook_replaces_grad_input():
    h = M.register_module_full_backward_hook(
        lambda mod, gi, go: tuple(None if g is None else g * 10 for g in gi))
    try:
        x = torch.tensor([[1., 1.]], requires_grad=True)
        _linear([[1., 2.]], [0.])(x).sum().backward()
    finally:
        h.remove()
    np.testing.assert_array_equal(to_np(x.grad), [[10., 20.]])


def test_global_full_and_legacy_backward_hooks_do_not_mix():
    h = M.register_module_full_backward_hook(lambda *a: None)
    try:
        with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full "
                                               "backward hooks as a global Module hook"):
            M.register_module_backward_hook(lambda *a: None)
    finally:
        h.remove()
        M._global_is_full_backward_hook = None     # (the flag outlives the handle, as in torch)


def test_registration_hooks_see_and_may_replace_what_is_registered():
    seen = []

    def on_buffer(mod, name, t):
        seen.append(("buffer", name))
        return t * 2

    def on_param(mod, name, p):
        seen.append(("param", name))

    def on_module(mod, name, sub):
        seen.append(("module", name))
        return nn.Tanh() if isinstance(sub, nn.ReLU) else None

    hs = [M.register_module_buffer_registration_hook(on_buffer),
          M.register_module_parameter_registration_hook(on_param),
          M.register_module_module_registration_hook(on_module)]
    try:
        m = nn.Module()
        m.register_buffer("b", torch.ones(2))
        m.p = nn.Parameter(torch.zeros(1))
        m.act = nn.ReLU()
        m.add_module("lin", nn.Identity())
    finally:
        for h in hs:
            h.remove()
    assert seen == [("buffer", "b"), ("param", "p"), ("module", "act"), ("module", "lin")]
    np.testing.assert_array_equal(to_np(m.b), [2., 2.])
    assert isinstance(m.act, nn.Tanh)
    m.register_buffer("c", torch.ones(1))          # hooks removed: stored as given
    np.testing.assert_array_equal(to_np(m.c), [1.])


def test_non_full_backward_hook_warns_when_its_grad_input_cannot_be_the_modules():
    m = nn.Linear(3, 2)
    m.register_backward_hook(lambda *a: None)
    with pytest.warns(FutureWarning, match="non-full backward hook when the forward contains "
                                           "multiple autograd Nodes"):
        m(torch.ones(4, 3, requires_grad=True))


# ---- state_dict hooks and arguments --------------------------------------------------------

def test_public_state_dict_post_hook_must_return_none():
    m = nn.Linear(1, 1)
    hook = lambda mod, sd, prefix, md: {"x": 1}    # noqa: E731
    m.register_state_dict_post_hook(hook)
    with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
        m.state_dict()
    with pytest.raises(RuntimeError, match="Cannot register the same function as the state dict "
                                           "post hook"):
        nn.Linear(1, 1)._register_state_dict_hook(hook)


def test_private_state_dict_hook_may_return_a_new_dict():
    m = nn.Linear(1, 1)
    m._register_state_dict_hook(lambda mod, sd, prefix, md: {"only": torch.ones(1)})
    assert list(m.state_dict().keys()) == ["only"]


def test_state_dict_positional_arguments_warn_and_keep_their_meaning():
    m = _linear([[2.]], [3.])
    with pytest.warns(FutureWarning, match="Positional args are being deprecated"):
        sd = m.state_dict(None, "p.")
    assert list(sd.keys()) == ["p.weight", "p.bias"]
    assert to_np(sd["p.bias"]).tolist() == [3.]


# ---- warnings and messages users meet --------------------------------------------------------

def test_container_and_complex_module_warnings():
    with pytest.warns(FutureWarning, match="`nn.Container` is deprecated"):
        nn.Container(a=nn.ReLU())
    with pytest.warns(UserWarning, match="Complex modules are a new feature"):
        m = nn.Linear(2, 2).to(torch.complex64)
    assert m.weight.dtype == torch.complex64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.Linear(2, 2).to(torch.float64)          # a real dtype: no warning


def test_extra_state_default_messages():
    with pytest.raises(RuntimeError, match=r"get_extra_state\(\) that should never be called\. "
                                           "Please file an issue"):
        nn.Linear(1, 1).get_extra_state()


def test_deepcopy_of_a_non_leaf_tensor_names_weight_norm():
    x = torch.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="this may be because of a torch.nn.utils.weight_norm"):
        copy.deepcopy(x)


def test_skip_init_refuses_a_non_module_class():
    with pytest.raises(RuntimeError, match="Expected a Module; got <class 'int'>"):
        torch.nn.utils.skip_init(int, 3)


def test_fold_unfold_and_fusion_messages():
    F = nn.functional
    with pytest.raises(RuntimeError, match=r"Expected 3D or 4D \(batch mode\) tensor with possibly "
                                           r"0 batch size .* but got: \[1, 1, 1, 3, 3\]"):
        F.unfold(torch.ones(1, 1, 1, 3, 3), 2)
    with pytest.raises(RuntimeError, match=r"Expected 2D or 3D \(batch mode\) tensor .* but got: "
                                           r"\[1, 4, 4, 4, 4\]"):
        F.fold(torch.ones(1, 4, 4, 4, 4), (3, 3), 2)
    with pytest.raises(RuntimeError, match=r"input.size\(1\)=5 and kernel_size=\(2, 2\)\.$"):
        F.fold(torch.ones(1, 5, 4), (3, 3), 2)
    from framework.nn.utils.fusion import fuse_linear_bn_eval
    with pytest.raises(AssertionError, match="got linear.out_features=3 and bn.num_features=4"):
        fuse_linear_bn_eval(nn.Linear(2, 3).eval(), nn.BatchNorm1d(4).eval())


# ---- nn.init.sparse_ -----------------------------------------------------------------------

def test_sparse_init_draws_values_from_the_generator_and_zeros_from_the_default_stream():
    def run(gen_seed):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(gen_seed)
        t = torch.nn.init.sparse_(torch.empty(4, 3), 0.5, generator=g)
        return to_np(t), to_np(torch.rand(2))
    a, after_a = run(5)
    b, after_b = run(7)
    # ceil(0.5 * 4) = 2 zeros in each column, at rows chosen by the default generator only
    assert ((a == 0).sum(0) == 2).all()
    np.testing.assert_array_equal(a == 0, b == 0)
    assert not np.array_equal(a, b)                 # the values follow the given generator
    np.testing.assert_array_equal(after_a, after_b)
    torch.manual_seed(0)
    assert not np.array_equal(to_np(torch.rand(2)), after_a)   # the permutations used it


# ---- weight_norm and parametrize ----------------------------------------------------------

def test_hook_weight_norm_warns_and_its_state_dict_loads_into_the_parametrization():
    with pytest.warns(FutureWarning, match="`torch.nn.utils.weight_norm` is deprecated"):
        old = torch.nn.utils.weight_norm(_linear([[3., 4.], [0., 2.]], [1., 1.]))
    sd = old.state_dict()
    np.testing.assert_allclose(to_np(sd["weight_g"]).ravel(), [5., 2.])
    new = PZ.weight_norm(nn.Linear(2, 2))
    res = new.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    np.testing.assert_allclose(to_np(new.weight), [[3., 4.], [0., 2.]], rtol=1e-6)
    with pytest.raises(ValueError, match="can't have uninitialized parameters"), \
            pytest.warns(FutureWarning):
        torch.nn.utils.weight_norm(nn.LazyLinear(2))


class _Sym(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(-1, -2)


def test_type_before_parametrizations_and_transfer():
    a = _linear([[1., 2.], [3., 4.]], [0., 0.])
    assert P.type_before_parametrizations(a) is nn.Linear
    P.register_parametrization(a, "weight", _Sym())
    assert P.type_before_parametrizations(a) is nn.Linear
    assert type(a).__name__ == "ParametrizedLinear"
    b = nn.Linear(2, 2)
    assert P.transfer_parametrizations_and_params(a, b) is b
    assert type(b).__name__ == "ParametrizedLinear"
    assert b.parametrizations.weight.original is a.parametrizations.weight.original
    np.testing.assert_array_equal(to_np(b.weight), [[1., 2.], [2., 4.]])
    c = nn.Linear(2, 2)
    assert P.transfer_parametrizations_and_params(nn.Linear(2, 2), c) is c   # nothing to move
    assert type(c) is nn.Linear


# ---- lazy modules before the first call ------------------------------------------------------

def test_lazy_module_deepcopy_pickle_state_dict_and_numel():
    m = nn.LazyLinear(3)
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert type(c.weight).__name__ == "UninitializedParameter"
        y = c(torch.ones(2, 4))
        assert tuple(y.shape) == (2, 3) and tuple(c.weight.shape) == (3, 4)
    sd = m.state_dict()
    assert [type(v).__name__ for v in sd.values()] == ["UninitializedParameter"] * 2
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
        sum(p.numel() for p in m.parameters())
    bn = copy.deepcopy(nn.LazyBatchNorm1d())
    assert type(bn.running_mean).__name__ == "UninitializedBuffer"
    with pytest.raises(RuntimeError, match=r"input to LazyConv2d, but got input of size: "
                                           r"torch.Size\(\[2, 4\]\)"):
        nn.LazyConv2d(2, 3)(torch.ones(2, 4))


# ---- PackedSequence helpers ------------------------------------------------------------------

def test_packed_sequence_helpers_grad_fn_names_and_values():
    x = torch.tensor([[[1.], [4.]], [[2.], [5.]], [[3.], [0.]]], requires_grad=True)  # T=3, B=2
    pk = R.pack_padded_sequence(x, [3, 2])
    assert type(pk.data.grad_fn).__name__ == "PackPaddedSequenceBackward0"
    np.testing.assert_array_equal(to_np(pk.data).ravel(), [1., 4., 2., 5., 3.])
    out, lens = R.pad_packed_sequence(pk)
    assert out.grad_fn.name() == "torch::autograd::CopySlices"
    assert R.pad_sequence([x[:, 0], x[:2, 1]]).grad_fn.name() == "torch::autograd::CopySlices"
    # unsorted: the batch comes back in its order through index_select, after batch_first
    pk2 = R.pack_padded_sequence(x, [2, 3], enforce_sorted=False)
    o2, l2 = R.pad_packed_sequence(pk2, batch_first=True)
    assert type(o2.grad_fn).__name__ == "IndexSelectBackward0"
    np.testing.assert_array_equal(to_np(o2)[..., 0], [[1., 2., 0.], [4., 5., 0.]])
    assert to_np(l2).tolist() == [2, 3]
    # unpad_sequence returns copies (a boolean-mask index), not views of the padded batch
    seqs = R.unpad_sequence(out, lens)
    assert type(seqs[1].grad_fn).__name__ == "IndexBackward0"
    np.testing.assert_array_equal(to_np(seqs[1]).ravel(), [4., 5.])
    with torch.no_grad():
        seqs[1].zero_()
    np.testing.assert_array_equal(to_np(out)[:2, 1, 0], [4., 5.])
    out.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad)[..., 0], [[1., 1.], [1., 1.], [1., 0.]])


# ---- in-place ops on what a custom Function returned as a view -------------------------------

class _Id(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g * 3


def test_inplace_on_an_input_returned_as_is_is_refused_under_grad_mode():
    x = torch.tensor([1., -2.], requires_grad=True)
    y = _Id.apply(x * 1)
    with pytest.raises(RuntimeError, match="Output 0 of _Id is a view and is being modified "
                                           "inplace. This view was created inside a custom "
                                           "Function"):
        y.add_(1)
    with pytest.raises(RuntimeError, match="Output 0 of View is a view .* custom Function"):
        y.view(2).relu_()
    np.testing.assert_array_equal(to_np(y), [1., -2.])       # refused before any write
    with torch.no_grad():
        y.add_(1)                                             # no history to break: allowed
    np.testing.assert_array_equal(to_np(y), [2., -1.])
    z = _Id.apply(torch.ones(2))                              # no grad needed: allowed
    z.add_(1)
    np.testing.assert_array_equal(to_np(z), [2., 2.])
    # a full backward hook passes the module's input through such a Function (as torch)
    m = nn.ReLU(inplace=True)
    m.register_full_backward_hook(lambda *a: None)
    with pytest.raises(RuntimeError, match="of BackwardHookFunction is a view"):
        m(x * 1)
    w = _Id.apply(x * 2)
    w.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [6., 6.])


def test_module_hook_dicts_print_as_ordered_dicts():
    m = nn.Linear(1, 1)
    assert repr(m._forward_pre_hooks) == "OrderedDict()"
    h = lambda *a: None    # noqa: E731
    m.register_forward_hook(h)
    hid = next(iter(m._forward_hooks))
    assert repr(m._forward_hooks) == repr(collections.OrderedDict([(hid, h)]))


# ---- whole-module checkpoints and weights_only's allowlist ---------------------------------

class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = _linear([[1., 2.], [3., 4.]], [0.5, -0.5])
        self.bn = nn.BatchNorm1d(2)


def test_safe_globals_allow_a_pickled_module_with_weights_only(tmp_path):
    import io
    from framework import serialization as ser
    p = tmp_path / "whole.pt"
    with pytest.warns(UserWarning, match="pickling the object"):
        torch.save(_Net(), p)
    assert ser.get_unsafe_globals_in_checkpoint(p) == [
        "framework.nn.modules.linear.Linear", "framework.nn.modules.normalization.BatchNorm1d",
        "test_workflow_module._Net"]
    with pytest.raises(pickle.UnpicklingError, match=r"Unsupported global: GLOBAL "
                                                     r"test_workflow_module\._Net was not an "
                                                     r"allowed global by default"):
        torch.load(p)
    with ser.safe_globals([_Net, nn.Linear]):         # BatchNorm1d still missing
        with pytest.raises(pickle.UnpicklingError, match="GLOBAL framework.nn.modules."
                                                         "normalization.BatchNorm1d"):
            torch.load(p)
        assert ser.get_safe_globals() == [_Net, nn.Linear]
    assert ser.get_safe_globals() == []
    with ser.safe_globals([_Net, nn.Linear, nn.BatchNorm1d]):
        assert ser.get_unsafe_globals_in_checkpoint(p) == []
        m = torch.load(p)
    assert type(m) is _Net and type(m.fc.weight) is nn.Parameter and m.fc.weight.requires_grad
    y = m.fc(torch.tensor([[1., 1.]]))
    np.testing.assert_array_equal(to_np(y), [[3.5, 6.5]])    # [1+2+0.5, 3+4-0.5]
    ser.add_safe_globals([(_Net, "test_workflow_module._Net")])
    try:
        assert ser.get_unsafe_globals_in_checkpoint(p) == [
            "framework.nn.modules.linear.Linear", "framework.nn.modules.normalization.BatchNorm1d"]
    finally:
        ser.clear_safe_globals()
    # a state_dict needs no pickling at all
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    assert list(torch.load(buf).keys())[:2] == ["fc.weight", "fc.bias"]


def test_weights_only_refuses_building_state_on_a_class():
    # a BUILD opcode aimed at an allowlisted class (not an instance) would rewrite it for the
    # whole process: refused, the class left unchanged
    from framework import serialization as ser
    blob = (b"\x80\x02c" + b"collections\nOrderedDict\n" + b"}q\x00X\x01\x00\x00\x00aK\x01sb.")
    with pytest.raises(pickle.UnpicklingError, match="Can only build"):
        ser._load_pickle(blob, "<bytes>", True, "test")
    assert not hasattr(collections.OrderedDict, "a")


def test_full_backward_hook_on_a_dict_output_warns_and_is_not_called():
    class D(nn.Module):
        def forward(self, x):
            return {"a": x * 2}
    d = D()
    calls = []
    d.register_full_backward_hook(lambda *a: calls.append(a))
    x = torch.ones(2, requires_grad=True)
    with pytest.warns(UserWarning, match="module output should be a Tensor or a tuple of Tensors "
                                         "but received <class 'dict'>"):
        out = d(x)
    out["a"].sum().backward()
    assert calls == []
    np.testing.assert_array_equal(to_np(x.grad), [2., 2.])


def test_embedding_bag_repr_lists_its_non_default_options():
    assert repr(nn.EmbeddingBag(4, 3, max_norm=1.0)) == \
        "EmbeddingBag(4, 3, max_norm=1.0, mode='mean')"
    assert repr(nn.EmbeddingBag(4, 3, norm_type=1.0, scale_grad_by_freq=True, mode="sum",
                                padding_idx=1)) == \
        "EmbeddingBag(4, 3, norm_type=1.0, scale_grad_by_freq=True, mode='sum', padding_idx=1)"


# ---- a half-precision module fed float32 input (module.half() without converting x) --------

def test_norm_and_prelu_refuse_mixed_parameter_dtypes():
    F = nn.functional
    x = torch.tensor([[1., 2., 3.], [3., 5., 4.]])
    for m in (nn.LayerNorm(3), nn.GroupNorm(1, 2), nn.InstanceNorm1d(2, affine=True),
              nn.BatchNorm1d(2)):
        m.half()
        inp = x if isinstance(m, nn.LayerNorm) else x.unsqueeze(0)
        with pytest.raises(RuntimeError, match=r"mixed dtype \(CPU\): expect parameter to have "
                                               r"scalar type of Float"):
            m(inp)
    with pytest.raises(RuntimeError, match=r"mixed dtype \(CPU\): all inputs must share same "
                                           r"datatype\."):
        F.layer_norm(x.double(), (3,), torch.ones(3))
    # allowed: the input's dtype, or float32 parameters for a float16 input
    y = F.layer_norm(x.half(), (3,), torch.ones(3), torch.zeros(3))
    assert y.dtype == torch.float16
    xv = x.numpy().astype(np.float64)
    ref = (xv - xv.mean(1, keepdims=True)) / np.sqrt(xv.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(to_np(y).astype(np.float64), ref, rtol=2e-3, atol=2e-3)
    # instance_norm's running statistics may keep another dtype
    rm, rv = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    F.instance_norm(x.unsqueeze(0), rm, rv, momentum=1.0)
    np.testing.assert_allclose(to_np(rm), xv.mean(1))
    with pytest.raises(RuntimeError, match="prelu: Type promoting not supported. Got Float and "
                                           "Half"):
        nn.PReLU().half()(x)
    with pytest.raises(RuntimeError, match="Got Double and Float"):
        F.prelu(x.double(), torch.ones(1))


def test_half_attention_fed_float_input_names_the_projection_dtypes():
    m = nn.MultiheadAttention(4, 2).half()
    x = torch.ones(3, 1, 4)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got Float "
                                           "and Half"):
        m(x, x, x)


def test_hook_spectral_norm_records_its_version_in_the_state_dict_metadata():
    m = nn.Sequential(torch.nn.utils.spectral_norm(nn.Linear(2, 2)))
    for _ in range(2):           # (a second state_dict() builds fresh metadata)
        md = m.state_dict()._metadata
        assert md["0"] == {"version": 1, "spectral_norm": {"weight.version": 1}}
    torch.nn.utils.remove_spectral_norm(m[0])
    assert m.state_dict()._metadata["0"] == {"version": 1}
    assert list(m.state_dict().keys()) == ["0.bias", "0.weight"]     # (re-registered last)
