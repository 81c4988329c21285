"""NumPy's `axis` / `keepdims` keywords, which PyTorch's argument parser takes for `dim` /
`keepdim` in every native function and Tensor method (framework/_numpy_aliases.py)."""
import numpy as np
import pytest

from conftest import assert_close, to_np
import framework as torch


A = np.arange(12.0).reshape(3, 4)


def test_reductions_take_axis_and_keepdims():
    x = torch.tensor(A)
    assert_close(x.sum(axis=0), A.sum(axis=0))
    assert_close(torch.sum(x, axis=1, keepdims=True), A.sum(axis=1, keepdims=True))
    assert_close(torch.mean(x, axis=-1), A.mean(axis=-1))
    assert_close(x.std(axis=0, keepdims=True), A.std(axis=0, ddof=1, keepdims=True))
    assert_close(torch.amax(x, axis=(0, 1)), A.max())
    v, i = torch.max(x, axis=1)
    assert_close(v, A.max(axis=1))
    assert to_np(i).tolist() == [3, 3, 3]
    assert to_np(x.argmax(axis=0)).tolist() == [2, 2, 2, 2]
    assert_close(x.cumsum(axis=1), A.cumsum(axis=1))
    assert_close(torch.logsumexp(x, axis=0), np.log(np.exp(A).sum(axis=0)))


def test_joining_splitting_and_namespaces_take_axis():
    x = torch.tensor(A)
    assert torch.cat([x, x], axis=0).shape == (6, 4)
    assert torch.stack([x, x], axis=1).shape == (3, 2, 4)
    assert [t.shape for t in x.unbind(axis=1)] == [(3,)] * 4
    assert x.size(axis=1) == 4
    assert x.unsqueeze(axis=0).shape == (1, 3, 4)
    assert_close(x.softmax(axis=1), np.exp(A) / np.exp(A).sum(axis=1, keepdims=True))
    assert_close(torch.linalg.vector_norm(x, axis=0), np.linalg.norm(A, axis=0))
    assert_close(torch.fft.fft(x, axis=0).abs(), np.abs(np.fft.fft(A, axis=0)))
    assert_close(torch.special.softmax(x, axis=0), np.exp(A) / np.exp(A).sum(axis=0))


def test_alias_and_name_together_is_a_type_error_and_signatures_are_kept():
    x = torch.tensor(A)
    with pytest.raises(TypeError, match="multiple values for argument 'dim'"):
        torch.sum(x, dim=0, axis=1)
    with pytest.raises(TypeError, match="multiple values"):
        x.sum(0, axis=1)                   # positional dim and the alias: Python's own error
    with pytest.raises(TypeError):
        torch.sum(x, axes=0)               # not an alias
    import inspect
    assert list(inspect.signature(torch.sum).parameters)[:3] == ["input", "dim", "keepdim"]
    assert torch.sum.__name__ == "sum" and torch.Tensor.sum is torch.sum
