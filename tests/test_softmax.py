"""attnbook.softmax: stable softmax, log-softmax, log-sum-exp and entropy (chapter 2)."""

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from attnbook.softmax import entropy, log_softmax, logsumexp, softmax


def _logits(*shape, scale=3.0, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_softmax_and_log_softmax_match_pytorch_on_any_axis(axis):
    x = _logits(3, 4, 5)
    assert_close(softmax(x, axis=axis), torch.softmax(x, dim=axis), atol=1e-6, rtol=0)
    assert_close(log_softmax(x, axis=axis), torch.log_softmax(x, dim=axis), atol=1e-6, rtol=1e-6)
    assert_close(logsumexp(x, axis=axis), torch.logsumexp(x, dim=axis), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("axis", [0, -1])
def test_numpy_in_numpy_out_and_same_numbers(axis):
    x = _logits(4, 6).double()
    for fn, ref in ((softmax, torch.softmax), (log_softmax, torch.log_softmax),
                    (logsumexp, torch.logsumexp)):
        out = fn(x.numpy(), axis=axis)
        assert isinstance(out, np.ndarray) and out.dtype == np.float64
        np.testing.assert_allclose(out, ref(x, dim=axis).numpy(), atol=1e-12, rtol=1e-12)
    assert softmax(x.numpy().astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("scale", [1e2, 1e3, 1e4, 1e30])
@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_extreme_logits_stay_finite_and_normalised(scale, kind):
    x = torch.tensor([[1.0, 0.5, -1.0], [-1.0, -0.5, -1.0]]) * scale
    x = x if kind == "torch" else x.numpy()
    p = softmax(x)
    assert np.isfinite(np.asarray(p)).all()
    np.testing.assert_allclose(np.asarray(p).sum(-1), 1.0, rtol=1e-6)
    expected = torch.softmax(torch.as_tensor(x, dtype=torch.float64), -1).numpy()
    np.testing.assert_allclose(np.asarray(p), expected, atol=1e-6)
    assert np.isfinite(np.asarray(log_softmax(x))).all()


def test_naive_formula_really_fails_where_ours_does_not():
    x = torch.tensor([1e4, 0.0, -1e4])
    naive = x.exp() / x.exp().sum()
    assert torch.isnan(naive).any()
    assert_close(softmax(x), torch.tensor([1.0, 0.0, 0.0]))


def test_log_softmax_is_exact_where_softmax_underflows():
    x = torch.tensor([0.0, -1000.0], dtype=torch.float64)
    assert softmax(x)[1] == 0.0
    assert_close(log_softmax(x), torch.tensor([0.0, -1000.0], dtype=torch.float64))


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_minus_inf_entries_get_exactly_zero_weight(kind):
    x = torch.tensor([[0.0, -math.inf, 1.0, -math.inf]])
    x = x if kind == "torch" else x.numpy()
    p = np.asarray(softmax(x))
    assert p[0, 1] == 0 and p[0, 3] == 0
    np.testing.assert_allclose(p[0, [0, 2]], [1 / (1 + math.e), math.e / (1 + math.e)], rtol=1e-6)
    assert np.asarray(log_softmax(x))[0, 1] == -math.inf


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_all_minus_inf_row_is_zeros_not_nan(kind):
    x = torch.tensor([[-math.inf] * 3, [0.0, 1.0, 2.0]])
    x = x if kind == "torch" else x.numpy()
    p = np.asarray(softmax(x))
    assert (p[0] == 0).all() and not np.isnan(p).any()
    np.testing.assert_allclose(p[1].sum(), 1.0, rtol=1e-6)
    assert (np.asarray(log_softmax(x))[0] == -math.inf).all()
    lse = np.asarray(logsumexp(x))
    assert lse[0] == -math.inf and np.isfinite(lse[1])
    assert np.asarray(entropy(softmax(x)))[0] == 0


def test_all_minus_inf_row_has_zero_not_nan_gradient():
    x = torch.tensor([[-math.inf] * 3, [0.0, 1.0, 2.0]], requires_grad=True)
    (softmax(x) * torch.arange(3.0)).sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[0] == 0).all()
    assert x.grad[1].abs().sum() > 0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_and_plus_inf_logits_raise_clear_error(bad):
    x = torch.tensor([[0.0, 1.0], [2.0, bad]])
    with pytest.raises(ValueError, match=r"nan or \+inf \(first at index \(1, 1\)\)"):
        softmax(x)
    with pytest.raises(ValueError, match="nan or"):
        log_softmax(x.numpy())


def test_temperature_divides_the_logits():
    x = _logits(2, 5)
    assert_close(softmax(x, temperature=0.5), torch.softmax(x / 0.5, -1))
    assert_close(log_softmax(x, temperature=4.0), torch.log_softmax(x / 4.0, -1))
    with pytest.raises(ValueError, match="temperature"):
        softmax(x, temperature=0.0)


def test_gradient_matches_pytorch():
    x = _logits(3, 4).double().requires_grad_()
    y = _logits(3, 4, seed=1).double()
    g_ours, = torch.autograd.grad((softmax(x) * y).sum(), x)
    g_ref, = torch.autograd.grad((torch.softmax(x, -1) * y).sum(), x)
    assert_close(g_ours, g_ref)


@pytest.mark.parametrize("bad, error, message", [
    (torch.tensor([1, 2, 3]), TypeError, "floating-point"),
    (torch.tensor(1.0), ValueError, "scalar"),
    ([1.0, 2.0], TypeError, "torch.Tensor or numpy.ndarray"),
])
def test_bad_input_is_rejected(bad, error, message):
    with pytest.raises(error, match=message):
        softmax(bad)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        softmax(torch.zeros(2, 3), axis=2)


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_entropy_uniform_is_log_n_and_one_hot_is_zero(kind):
    n = 7
    p = torch.stack([torch.full((n,), 1 / n), torch.eye(n)[2]]).double()
    p = p if kind == "torch" else p.numpy()
    h = np.asarray(entropy(p))
    np.testing.assert_allclose(h, [math.log(n), 0.0], atol=1e-12)
    np.testing.assert_allclose(np.asarray(entropy(p, base=2)), [math.log2(n), 0.0], atol=1e-12)


def test_entropy_matches_torch_special_entr_and_bits_are_nats_over_ln2():
    p = torch.softmax(_logits(4, 6), -1)
    assert_close(entropy(p), torch.special.entr(p).sum(-1), atol=1e-6, rtol=0)
    assert_close(entropy(p, base=2), entropy(p) / math.log(2))
    assert_close(entropy(p.T, axis=0), entropy(p))
    assert_close(torch.as_tensor(entropy(p.numpy())), entropy(p), atol=1e-6, rtol=0)
    assert_close(entropy(torch.tensor([0.5, 0.5]), base=2), torch.tensor(1.0))  # a fair coin


def test_entropy_rejects_scores_and_bad_bases():
    with pytest.raises(ValueError, match="softmax the scores first"):
        entropy(torch.tensor([0.5, -0.2, 0.7]))
    with pytest.raises(ValueError, match="base"):
        entropy(torch.tensor([0.5, 0.5]), base=1)
    with pytest.raises(TypeError, match="floating-point"):
        entropy(np.array([0, 1]))
