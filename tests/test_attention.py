"""Chapter 4's attention: SDPA against PyTorch and a loop, masks, and the scoring functions."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnbook.attention import (
    AdditiveScore,
    GeneralScore,
    LocationScore,
    causal_mask,
    cosine_scores,
    dot_scores,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
    scaled_dot_scores,
)

SHAPES = [  # (lead, T, S, d, d_v)
    ((), 4, 4, 8, 8),
    ((3,), 5, 7, 8, 3),
    ((3,), 7, 2, 16, 5),
    ((2, 4), 6, 9, 4, 6),  # (B, h, ...)
    ((2, 3, 2), 3, 5, 2, 1),
]


def _qkv(lead, T, S, d, dv, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*lead, T, d, generator=g), torch.randn(*lead, S, d, generator=g),
            torch.randn(*lead, S, dv, generator=g))


def _masks(lead, T, S, kind):
    """A boolean mask broadcastable to (*lead, T, S) and the same mask at full shape."""
    g = torch.Generator().manual_seed(1)
    if kind == "padding":
        valid = torch.randint(1, S + 1, lead[:1] or (1,), generator=g)
        mask = padding_mask(valid, S).reshape(*(lead[:1] or ()), *[1] * (len(lead) - 1), 1, S)
    elif kind == "causal":
        mask = causal_mask(T, S)
    else:  # random, with every row keeping at least its first key
        mask = torch.rand(*lead, T, S, generator=g) < 0.6
        mask[..., 0] = True
    return mask, mask.expand(*lead, T, S)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", [None, "padding", "causal", "random"])
def test_sdpa_matches_pytorch(shape, kind):
    q, k, v = _qkv(*shape)
    lead, T, S = shape[:3]
    mask, full = _masks(lead, T, S, kind) if kind else (None, None)
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                 atol=1e-5, rtol=1e-5)
    assert w.shape == (*lead, T, S)
    if mask is not None:
        assert (w[~full] == 0).all(), "masked keys must get weight exactly 0"
    assert_close(w.sum(-1), torch.ones(*lead, T))


def test_sdpa_gradients_match_pytorch():
    q, k, v = (x.requires_grad_() for x in _qkv((2, 3), 5, 6, 8, 4))
    mask = causal_mask(5, 6)
    ours = scaled_dot_product_attention(q, k, v, mask=mask)[0]
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    upstream = torch.randn_like(ours)
    g_ours = torch.autograd.grad((ours * upstream).sum(), (q, k, v))
    g_theirs = torch.autograd.grad((theirs * upstream).sum(), (q, k, v))
    for a, b in zip(g_ours, g_theirs, strict=True):
        assert_close(a, b, atol=1e-5, rtol=1e-5)


def _loop_attention(q, k, v, valid_lens):
    """One query at a time, one key at a time: the definition, slowly. q (B, T, d)."""
    B, T, d = q.shape
    out = torch.zeros(B, T, v.shape[-1])
    for b in range(B):
        n = int(valid_lens[b])
        for t in range(T):
            scores = torch.stack([q[b, t] @ k[b, s] / d**0.5 for s in range(n)])
            weights = torch.exp(scores - scores.max())
            weights = weights / weights.sum()
            out[b, t] = sum(weights[s] * v[b, s] for s in range(n))
    return out


def test_sdpa_matches_a_per_query_loop_with_valid_lens():
    q, k, v = _qkv((3,), 4, 6, 5, 2)
    valid = torch.tensor([6, 2, 1])
    out, w = scaled_dot_product_attention(q, k, v, valid_lens=valid)
    assert_close(out, _loop_attention(q, k, v, valid), atol=1e-5, rtol=1e-5)
    assert (w[1, :, 2:] == 0).all() and (w[2, :, 0] == 1).all()


def test_causal_mask_is_lower_triangular_with_the_diagonal():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.diagonal().all()
    assert m.sum() == 4 * 5 // 2 and not m[0, 1] and m[3, 0]
    assert causal_mask(2, 3).tolist() == [[True, False, False], [True, True, False]]


def test_masked_softmax_with_mask_and_valid_lens_combined():
    scores = torch.randn(2, 4, 4)
    w = masked_softmax(scores, valid_lens=torch.tensor([4, 2]), mask=causal_mask(4))
    expected = torch.softmax(scores.masked_fill(~(causal_mask(4) & torch.tensor(
        [[True] * 4, [True, True, False, False]])[:, None]), float("-inf")), dim=-1)
    assert_close(w, expected)


@pytest.mark.parametrize("bad, message", [
    (dict(mask=torch.ones(5, 6, dtype=torch.bool)), "does not broadcast"),
    (dict(mask=torch.ones(5, 7)), "boolean"),
    (dict(valid_lens=torch.tensor([1, 2, 3])), "valid_lens"),
    (dict(values=torch.randn(2, 6, 3)), "values should have shape"),
    (dict(queries=torch.randn(2, 5, 9)), r"keys should have shape .*'d': 9"),
    (dict(queries=torch.randn(5, 8)), "same number of dimensions"),
    (dict(keys=torch.randn(2, 7, 8, 1)), "same number of dimensions"),
])
def test_sdpa_bad_masks_and_shapes_raise_clear_errors(bad, message):
    q, k, v = _qkv((2,), 5, 7, 8, 3)
    args = dict(queries=q, keys=k, values=v) | bad
    with pytest.raises((ValueError, TypeError), match=message):
        scaled_dot_product_attention(**args)


# Scoring functions


def test_dot_and_scaled_dot_scores():
    q, k, _ = _qkv((2, 3), 4, 6, 16, 1)
    assert_close(dot_scores(q, k), torch.einsum("bhtd,bhsd->bhts", q, k))
    assert_close(scaled_dot_scores(q, k), dot_scores(q, k) / 4)


def test_cosine_scores_match_pytorch_and_lie_in_range():
    q, k, _ = _qkv((2,), 3, 5, 8, 1)
    got = cosine_scores(q, k)
    assert_close(got, F.cosine_similarity(q[:, :, None], k[:, None], dim=-1))
    assert got.abs().max() <= 1 + 1e-6
    assert torch.isfinite(cosine_scores(torch.zeros(1, 2, 8), k[:1])).all()


def test_general_score_is_bilinear_and_reduces_to_dot_with_identity():
    torch.manual_seed(0)
    score = GeneralScore(query_size=4, key_size=6)
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 6)
    W = score.W.weight  # (d_q, d_k)
    assert_close(score(q, k), torch.einsum("btq,qk,bsk->bts", q, W, k))
    same = GeneralScore(8, 8)
    with torch.no_grad():
        same.W.weight.copy_(torch.eye(8))
    q, k, _ = _qkv((2,), 3, 5, 8, 1)
    assert_close(same(q, k), dot_scores(q, k))


def test_additive_score_matches_a_loop():
    torch.manual_seed(0)
    score = AdditiveScore(query_size=3, key_size=5, hidden_size=7)
    q, k = torch.randn(2, 4, 3), torch.randn(2, 6, 5)
    got = score(q, k)
    assert got.shape == (2, 4, 6)
    Wq, Wk, wv = score.W_q.weight, score.W_k.weight, score.w_v.weight[0]
    for b, t, s in [(0, 0, 0), (1, 3, 5), (0, 2, 4)]:
        assert_close(got[b, t, s], wv @ torch.tanh(Wq @ q[b, t] + Wk @ k[b, s]))
    heads = score(torch.randn(2, 2, 4, 3), torch.randn(2, 2, 6, 5))  # (B, h, T, S)
    assert heads.shape == (2, 2, 4, 6)


def test_location_score_ignores_key_content_and_checks_length():
    torch.manual_seed(0)
    score = LocationScore(query_size=4, max_len=10)
    q = torch.randn(2, 3, 4)
    a = score(q, torch.randn(2, 6, 5))
    assert a.shape == (2, 3, 6)
    assert_close(a, score(q, torch.randn(2, 6, 5)))  # other keys, same scores
    with pytest.raises(ValueError, match="at most 10"):
        score(q, torch.randn(2, 11, 5))


@pytest.mark.parametrize("fn", [dot_scores, scaled_dot_scores, cosine_scores])
def test_score_functions_reject_bad_shapes(fn):
    with pytest.raises(ValueError, match="same feature size"):
        fn(torch.randn(2, 3, 4), torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="batch dimensions"):
        fn(torch.randn(2, 3, 4), torch.randn(3, 5, 4))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fn(torch.randn(4), torch.randn(5, 4))
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.ones(2, 3, dtype=torch.long), torch.randn(5, 3))


def test_learned_scores_reject_bad_batch_shapes():
    with pytest.raises(ValueError, match="batch dimensions"):
        AdditiveScore(3, 5, 7)(torch.randn(2, 4, 3), torch.randn(3, 6, 5))
    with pytest.raises(ValueError, match="batch dimensions"):
        GeneralScore(3, 5)(torch.randn(2, 4, 3), torch.randn(1, 6, 5))
