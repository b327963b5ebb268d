"""The core of attnbook.attention that later chapters import (chapter 4 tests the rest)."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnbook.attention import causal_mask, masked_softmax, scaled_dot_product_attention


def _qkv(*lead, T=5, S=7, d=8, dv=3):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(*lead, T, d, generator=g), torch.randn(*lead, S, d, generator=g),
            torch.randn(*lead, S, dv, generator=g))


@pytest.mark.parametrize("lead", [(), (2,), (2, 4)])
def test_sdpa_matches_pytorch_without_mask(lead):
    q, k, v = _qkv(*lead)
    out, w = scaled_dot_product_attention(q, k, v)
    assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    assert_close(w.sum(-1), torch.ones(*lead, 5))


def test_sdpa_matches_pytorch_with_causal_and_padding_masks():
    q, k, v = _qkv(3, T=6, S=6)
    valid = torch.tensor([6, 3, 1])
    keep = causal_mask(6)[None] & (torch.arange(6) < valid[:, None, None])
    out, w = scaled_dot_product_attention(q, k, v, mask=causal_mask(6), valid_lens=valid)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=keep))
    assert (w[~keep.expand_as(w)] == 0).all()


def test_fully_masked_row_gives_zeros_and_finite_gradient():
    scores = torch.randn(2, 3, 4, requires_grad=True)
    w = masked_softmax(scores, valid_lens=torch.tensor([0, 2]))
    assert torch.equal(w[0], torch.zeros(3, 4))
    assert_close(w[1].sum(-1), torch.ones(3))
    w.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_valid_lens_per_query_and_with_head_dimension():
    scores = torch.randn(2, 4, 3, 5)  # (B, h, T, S)
    w = masked_softmax(scores, valid_lens=torch.tensor([2, 5]))
    assert (w[0, ..., 2:] == 0).all() and (w[1] > 0).all()
    w2 = masked_softmax(scores[:, 0], valid_lens=torch.tensor([[1, 2, 3], [5, 5, 5]]))
    assert (w2[0, 0, 1:] == 0).all() and (w2[0, 2, 3:] == 0).all()


@pytest.mark.parametrize("bad, message", [
    (dict(keys=torch.randn(2, 7, 9)), "keys should have shape"),
    (dict(values=torch.randn(2, 6, 3)), "values should have shape"),
    (dict(keys=torch.randn(3, 7, 8)), "share their batch"),
    (dict(queries=torch.randint(0, 3, (2, 5, 8))), "floating-point"),
])
def test_sdpa_rejects_bad_input(bad, message):
    q, k, v = _qkv(2)
    args = dict(queries=q, keys=k, values=v) | bad
    with pytest.raises((ValueError, TypeError), match=message):
        scaled_dot_product_attention(**args)


def test_masked_softmax_rejects_bad_masks():
    scores = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match="boolean"):
        masked_softmax(scores, mask=torch.ones(3, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_softmax(scores, mask=torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid_lens"):
        masked_softmax(scores, valid_lens=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="lie in"):
        masked_softmax(scores, valid_lens=torch.tensor([1, 9]))
