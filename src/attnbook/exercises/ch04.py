"""Checkers for chapter 4: masked softmax, additive scores, a causal mask, find the bug.

Shapes: scores and weights (B, T, S), queries (B, T, d), keys (B, S, d), values
(B, S, d_v), valid lengths (B,). A boolean mask is True where attending is allowed.
"""

import torch

from attnbook.attention import masked_softmax, scaled_dot_product_attention
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function, make_compare


def _randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _keep(valid_lens: torch.Tensor, S: int) -> torch.Tensor:
    """(B, 1, S): True at key positions below each sequence's valid length."""
    return (torch.arange(S) < valid_lens[:, None])[:, None, :]


# Exercise 1: masked softmax -------------------------------------------------------------


def masked_softmax_reference(scores: torch.Tensor, valid_lens: torch.Tensor) -> torch.Tensor:
    """scores (B, T, S), valid_lens (B,) -> weights (B, T, S); masked keys get exactly 0."""
    return masked_softmax(scores, valid_lens=valid_lens)


def _softmax_then_mask(scores, valid_lens):
    return torch.softmax(scores, dim=-1) * _keep(valid_lens, scores.shape[-1])


def _fill_zero(scores, valid_lens):
    return torch.softmax(scores.masked_fill(~_keep(valid_lens, scores.shape[-1]), 0.0), dim=-1)


def _fill_minus_inf(scores, valid_lens):
    keep = _keep(valid_lens, scores.shape[-1])
    return torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)


def _off_by_one(scores, valid_lens):
    keep = (torch.arange(scores.shape[-1]) <= valid_lens[:, None])[:, None, :]
    return torch.softmax(scores.masked_fill(~keep, -1e9), dim=-1).masked_fill(~keep, 0.0)


def _max_over_padding_too(scores, valid_lens):
    keep = _keep(valid_lens, scores.shape[-1])
    e = (scores - scores.max(-1, keepdim=True).values).exp() * keep  # max includes padding
    return e / e.sum(-1, keepdim=True)


def _padded_with_large_scores() -> Case:
    # Padding keys carry scores of 1000: a maximum taken over every key (padding included)
    # makes exp(score - max) underflow to 0 on every real key, and 0/0 = nan.
    scores = _randn(2, 3, 5, seed=4)
    scores[:, :, 3:] = 1000.0
    return Case((scores, torch.tensor([3, 2])), label="padding keys with scores of 1000")


def _wrong_axis(scores, valid_lens):
    keep = _keep(valid_lens, scores.shape[-1])
    return torch.softmax(scores.masked_fill(~keep, -1e9), dim=-2).masked_fill(~keep, 0.0)


MASKED_SOFTMAX_CASES = [
    Case((_randn(2, 3, 5, seed=0), torch.tensor([5, 2])), label="two sequences, lengths 5 and 2"),
    Case((_randn(3, 4, 6, seed=1), torch.tensor([1, 6, 3])), label="three sequences"),
    Case((_randn(2, 2, 4, seed=2, scale=100.0), torch.tensor([3, 4])),
         label="large scores (about ±100)"),
    Case((_randn(2, 3, 4, seed=3), torch.tensor([0, 3])),
         label="a sequence of valid length 0 (every key masked)"),
    Case((torch.tensor([[[0.0, 400.0, -400.0, 3.0, 9.0]]]), torch.tensor([4])),
         label="one query, real scores spread from -400 to 400"),
    _padded_with_large_scores(),
    Case((_randn(1, 1, 1, seed=5), torch.tensor([1])), label="B=T=S=1"),
]

MASKED_SOFTMAX_MISTAKES = [
    Mistake("mask applied after the softmax",
            "the softmax already spread weight over the padding; zeroing it afterwards leaves "
            "rows that sum to less than 1. Mask the *scores* (to a very negative number) "
            "before the softmax.", wrong=_softmax_then_mask),
    Mistake("masked scores set to 0 instead of a very negative number",
            "a score of 0 still gets weight e^0 = 1 in the softmax. Fill masked scores with "
            "torch.finfo(scores.dtype).min (or -1e9) so their weight vanishes.", wrong=_fill_zero),
    Mistake("-inf fill gives nan on a fully masked row",
            "when every score in a row is -inf the softmax computes 0/0. Fill with a large "
            "finite negative number and set the masked weights to 0 after the softmax.",
            wrong=_fill_minus_inf),
    Mistake("off by one in the padding mask",
            "positions 0 .. valid_len-1 are real, so keep `arange(S) < valid_len`, not `<=`.",
            wrong=_off_by_one),
    Mistake("softmax over the wrong axis",
            "each query's weights run over the keys, the last axis: softmax(..., dim=-1).",
            wrong=_wrong_axis),
    Mistake("the maximum was taken over the padding too",
            "subtract the maximum of the *real* scores only: fill the padding first "
            "(masked_fill), then take the max, or use torch.softmax on the filled scores. A "
            "padding score far above the real ones makes every real exp(...) underflow to 0.",
            wrong=_max_over_padding_too),
    Mistake("no max-subtraction: the exponential overflowed",
            "float32's exp overflows above about 88.7 (exp(89) is inf, and inf/inf is nan); "
            "subtract each row's maximum before exp, or use torch.softmax, which does it "
            "for you.",
            detect=lambda got, exp, case: isinstance(got, torch.Tensor)
            and bool(case.args[0].abs().max() > 88.7) and not bool(torch.isfinite(got).all())),
]


def check_masked_softmax(fn) -> CheckResult:
    """``fn(scores (B, T, S), valid_lens (B,)) -> weights (B, T, S)``."""
    return check_function(fn, exercise="masked softmax", reference=masked_softmax_reference,
                          cases=MASKED_SOFTMAX_CASES, mistakes=MASKED_SOFTMAX_MISTAKES)


# Exercise 2: additive scores ------------------------------------------------------------


def additive_scores_reference(queries, keys, W_q, W_k, w_v):
    """w_v^T tanh(W_q q + W_k k) for every pair: queries (B, T, d_q), keys (B, S, d_k),
    W_q (d_q, h), W_k (d_k, h), w_v (h,) -> scores (B, T, S)."""
    q = (queries @ W_q)[:, :, None, :]  # (B, T, 1, h)
    k = (keys @ W_k)[:, None, :, :]  # (B, 1, S, h)
    return torch.tanh(q + k) @ w_v  # (B, T, S, h) @ (h,) -> (B, T, S)


def _additive_case(seed, B, T, S, d_q, d_k, h):
    args = (_randn(B, T, d_q, seed=seed), _randn(B, S, d_k, seed=seed + 1),
            _randn(d_q, h, seed=seed + 2), _randn(d_k, h, seed=seed + 3),
            _randn(h, seed=seed + 4))
    return Case(args, label=f"B={B}, T={T}, S={S}, d_q={d_q}, d_k={d_k}, h={h}")


def _saturated_additive_case():
    # Large projections: the tanh saturates at ±1 (a tanh written as (e^2x - 1)/(e^2x + 1)
    # overflows here).
    q, k, W_q, W_k, w_v = _additive_case(40, 2, 2, 3, 3, 3, 4).args
    return Case((q, k, 60 * W_q, 60 * W_k, w_v), label="large projections (tanh saturates)")


ADDITIVE_CASES = [_additive_case(10, 2, 3, 5, 4, 6, 8), _additive_case(20, 1, 4, 2, 3, 3, 5),
                  _additive_case(30, 3, 2, 6, 5, 2, 4), _additive_case(50, 1, 1, 1, 2, 3, 1),
                  _saturated_additive_case()]

ADDITIVE_MISTAKES = [
    Mistake("tanh forgotten",
            "without the tanh the score is w_v·W_q q + w_v·W_k k: a query part plus a key part, "
            "and the query part cancels in the softmax. Apply tanh to the sum before w_v.",
            wrong=lambda q, k, Wq, Wk, wv: (q @ Wq)[:, :, None] @ wv + (k @ Wk)[:, None] @ wv),
    Mistake("tanh applied to each projection separately",
            "tanh(W_q q) + tanh(W_k k) again splits into a query part plus a key part; add the "
            "projections first, then take one tanh of the sum.",
            wrong=lambda q, k, Wq, Wk, wv: (torch.tanh(q @ Wq)[:, :, None]
                                            + torch.tanh(k @ Wk)[:, None]) @ wv),
    Mistake("queries and keys swapped",
            "the result should be (B, T, S): one row per query. Broadcast the queries along a "
            "new key axis, (B, T, 1, h) + (B, 1, S, h).",
            wrong=lambda *a: additive_scores_reference(*a).transpose(1, 2)),
    Mistake("w_v applied inside the tanh",
            "the order is: add the projections, tanh, then the dot product with w_v.",
            wrong=lambda q, k, Wq, Wk, wv: torch.tanh((q @ Wq)[:, :, None] @ wv
                                                      + (k @ Wk)[:, None] @ wv)),
]


def check_additive_scores(fn) -> CheckResult:
    """``fn(queries, keys, W_q, W_k, w_v) -> scores (B, T, S)``."""
    return check_function(fn, exercise="additive scores", reference=additive_scores_reference,
                          cases=ADDITIVE_CASES, mistakes=ADDITIVE_MISTAKES)


# Exercise 3: causal mask ----------------------------------------------------------------


def causal_mask_reference(T: int) -> torch.Tensor:
    """(T, T) boolean, True where key j <= query i."""
    return torch.ones(T, T, dtype=torch.bool).tril()


_MASK_WHY = ("in this book a mask is boolean, True where attending is allowed: masked_fill "
             "and the book's attention functions refuse a 0/1 float mask, and "
             "torch's scaled_dot_product_attention would *add* a float mask to the scores "
             "instead of masking. Build it with dtype=torch.bool or a comparison (j <= i)")


CAUSAL_MISTAKES = [
    Mistake("off by one: the diagonal is masked",
            "a position may attend to itself (j = i); use tril(), not tril(-1). With T = 1 "
            "your mask leaves the only query with no key at all.",
            wrong=lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1)),
    Mistake("the future is allowed and the past masked",
            "query i (row) may see keys j <= i (columns): the *lower* triangle, tril().",
            wrong=lambda T: torch.ones(T, T, dtype=torch.bool).triu()),
    Mistake("True marks the forbidden positions",
            "in this book (and in torch's scaled_dot_product_attention) True means 'may "
            "attend'; you returned the opposite mask.",
            wrong=lambda T: torch.ones(T, T, dtype=torch.bool).triu(1)),
    Mistake("the mask has one row too many or too few",
            "the mask is (T, T): one row per query position and one column per key position.",
            wrong=lambda T: torch.ones(T + 1, T + 1, dtype=torch.bool).tril()),
]


def check_causal_mask(fn) -> CheckResult:
    """``fn(T) -> (T, T)`` boolean mask."""
    cases = [Case((T,), label=f"T={T}") for T in (4, 1, 2, 7)]
    return check_function(fn, exercise="causal mask", reference=causal_mask_reference,
                          cases=cases, mistakes=CAUSAL_MISTAKES,
                          compare=make_compare(bool_why=_MASK_WHY))


# Exercise 4: find the bug ---------------------------------------------------------------


def buggy_attention(queries, keys, values, valid_lens):
    """Scaled dot-product attention with a bug. (B, T, d), (B, S, d), (B, S, d_v), (B,)."""
    d = queries.shape[-1]
    scores = queries @ keys.transpose(1, 2) / d**0.5  # (B, T, S)
    weights = torch.softmax(scores, dim=-1)  # (B, T, S)
    keep = torch.arange(keys.shape[1]) < valid_lens[:, None, None]  # (B, 1, S)
    weights = weights * keep  # (B, T, S)
    return weights @ values, weights  # (B, T, d_v), (B, T, S)


def fixed_attention_reference(queries, keys, values, valid_lens):
    """The fixed version: mask the scores, then the softmax."""
    return scaled_dot_product_attention(queries, keys, values, valid_lens=valid_lens)


def _renormalised(queries, keys, values, valid_lens):
    _, weights = buggy_attention(queries, keys, values, valid_lens)
    weights = weights / weights.sum(-1, keepdim=True)
    return weights @ values, weights


def _unscaled(queries, keys, values, valid_lens):
    return scaled_dot_product_attention(queries * queries.shape[-1] ** 0.5, keys, values,
                                        valid_lens=valid_lens)


def _masks_queries(queries, keys, values, valid_lens):
    d, T = queries.shape[-1], queries.shape[1]
    keep = (torch.arange(T) < valid_lens[:, None])[:, :, None]  # (B, T, 1)
    scores = (queries @ keys.transpose(1, 2) / d**0.5).masked_fill(~keep, -1e9)
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights


def _attention_case(seed, B, T, S, d, dv, valid, label):
    return Case((_randn(B, T, d, seed=seed), _randn(B, S, d, seed=seed + 1),
                 _randn(B, S, dv, seed=seed + 2), torch.tensor(valid)), label=label)


FIXED_ATTENTION_CASES = [
    _attention_case(40, 2, 3, 5, 4, 2, [5, 2], "lengths 5 and 2"),
    _attention_case(50, 3, 4, 6, 8, 3, [6, 1, 3], "three sequences, d = 8"),
    _attention_case(60, 2, 2, 3, 4, 2, [0, 3], "a sequence of valid length 0"),
    _attention_case(70, 1, 1, 1, 3, 2, [1], "B=T=S=1"),
]


def _large_attention_case():
    # Scores of several hundred: an exp without the max subtracted overflows in float32.
    case = _attention_case(80, 2, 3, 4, 4, 2, [4, 3], "large scores (queries scaled by 100)")
    q, k, v, valid = case.args
    return Case((100 * q, k, v, valid), label=case.label)


FIXED_ATTENTION_CASES.append(_large_attention_case())

FIXED_ATTENTION_MISTAKES = [
    Mistake("still masking after the softmax",
            "this is the bug: the padded keys took their share of the softmax before they were "
            "zeroed, so rows sum to less than 1 and depend on the padding. Mask the scores.",
            wrong=buggy_attention),
    Mistake("nan on a fully masked row",
            "dividing the masked weights by their row sum, or filling scores with -inf, gives "
            "0/0 when every key is masked. Fill with a large finite negative number before the "
            "softmax and zero the masked weights after it.", wrong=_renormalised),
    Mistake("the 1/sqrt(d) scale went missing", "divide the scores by sqrt(d) as before.",
            wrong=_unscaled),
    Mistake("masked the queries instead of the keys",
            "valid_lens says which *keys* (columns, axis S) are real; the mask has shape "
            "(B, 1, S), not (B, T, 1).", wrong=_masks_queries),
]


def check_fixed_attention(fn) -> CheckResult:
    """``fn(queries, keys, values, valid_lens) -> (output (B, T, d_v), weights (B, T, S))``."""
    return check_function(fn, exercise="find the bug", reference=fixed_attention_reference,
                          cases=FIXED_ATTENTION_CASES, mistakes=FIXED_ATTENTION_MISTAKES,
                          output_names=("the output (B, T, d_v)", "the weights (B, T, S)"))
