"""Checkers for chapter 4: masks and scaled scores applied to cases the chapter did not show.

1. A sliding-window (banded) mask.
2. Attention over a batch whose queries and keys are both padded.
3. A mask given in the 1 = keep convention of common TensorFlow code.
4. Find the bugs: scaled by d instead of sqrt(d), and the queries' axis masked.

Shapes: queries (B, T, d), keys (B, S, d), values (B, S, d_v), weights (B, T, S), lengths
(B,). In this book a boolean mask is True where attending is allowed.
"""

import torch

from attnbook.attention import scaled_dot_product_attention
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function, make_compare


def _randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _lens_mask(lens: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n): True at positions below each sequence's length."""
    return torch.arange(n) < lens[:, None]


_MASK_WHY = ("in this book a mask is boolean, True where attending is allowed: masked_fill "
             "and the book's attention functions refuse a 0/1 float mask, and torch's "
             "scaled_dot_product_attention would *add* a float mask to the scores instead of "
             "masking. Build it with a comparison such as (i - j).abs() <= w")


# Exercise 1: sliding-window mask ----------------------------------------------------------


def _offsets(T: int) -> torch.Tensor:
    return torch.arange(T)[:, None] - torch.arange(T)[None, :]  # (T, T): i - j


def sliding_window_reference(T: int, w: int) -> torch.Tensor:
    """(T, T) boolean, True where |i - j| <= w: each position sees w neighbours each side."""
    return _offsets(T).abs() <= w


SLIDING_MISTAKES = [
    Mistake("off by one: the window is one too narrow",
            "|i - j| <= w keeps w neighbours on each side; with < w the window w = 0 "
            "masks even the diagonal and leaves every query with nothing to attend to.",
            wrong=lambda T, w: _offsets(T).abs() < w),
    Mistake("True marks the forbidden positions",
            "True means 'may attend' (as in torch's scaled_dot_product_attention); you "
            "returned the opposite mask.", wrong=lambda T, w: _offsets(T).abs() > w),
    Mistake("only the past side of the window",
            "the band is symmetric: query i sees keys i - w .. i + w. You built the causal "
            "sliding window (i - w .. i).",
            wrong=lambda T, w: (_offsets(T) >= 0) & (_offsets(T) <= w)),
    Mistake("forgot the absolute value",
            "i - j <= w alone lets every query see the whole future; take |i - j|.",
            wrong=lambda T, w: _offsets(T) <= w),
    Mistake("forgot the absolute value",
            "j - i <= w alone (e.g. tril(w)) lets every query see the whole past; take "
            "|i - j|.", wrong=lambda T, w: -_offsets(T) <= w),
]


def check_sliding_window_mask(fn) -> CheckResult:
    """``fn(T, w) -> (T, T)`` boolean mask, True where |i - j| <= w."""
    cases = [Case((6, 1), label="T=6, w=1"), Case((7, 2), label="T=7 (odd), w=2"),
             Case((1, 0), label="T=1, w=0"), Case((5, 0), label="T=5, w=0 (the diagonal)"),
             Case((4, 10), label="T=4, w=10 (a window wider than the sequence)")]
    return check_function(fn, exercise="sliding-window mask",
                          reference=sliding_window_reference, cases=cases,
                          mistakes=SLIDING_MISTAKES, compare=make_compare(bool_why=_MASK_WHY))


# Exercise 2: queries and keys both padded -------------------------------------------------


def padded_attention_reference(queries, keys, values, query_lens, key_lens):
    """Padded keys get weight 0; a padded query's row of weights and its output are 0."""
    T, S = queries.shape[1], keys.shape[1]
    mask = _lens_mask(query_lens, T)[:, :, None] & _lens_mask(key_lens, S)[:, None, :]
    return scaled_dot_product_attention(queries, keys, values, mask=mask)  # (B, T, S)


def _keys_only(q, k, v, ql, kl):
    return scaled_dot_product_attention(q, k, v, valid_lens=kl)


def _queries_only(q, k, v, ql, kl):
    return scaled_dot_product_attention(q, k, v, mask=_lens_mask(ql, q.shape[1])[:, :, None])


def _swapped_lens(q, k, v, ql, kl):
    mask = _lens_mask(kl, q.shape[1])[:, :, None] & _lens_mask(ql, k.shape[1])[:, None, :]
    return scaled_dot_product_attention(q, k, v, mask=mask)


def _minus_inf(q, k, v, ql, kl):
    mask = _lens_mask(ql, q.shape[1])[:, :, None] & _lens_mask(kl, k.shape[1])[:, None, :]
    scores = (q @ k.transpose(1, 2) / q.shape[-1] ** 0.5).masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def _mask_after(q, k, v, ql, kl):
    mask = _lens_mask(ql, q.shape[1])[:, :, None] & _lens_mask(kl, k.shape[1])[:, None, :]
    weights = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1) * mask
    return weights @ v, weights


PADDED_MISTAKES = [
    Mistake("masked only the keys", "a padded query is not a real position: its row of "
            "weights and its output must be 0. Combine the query mask (B, T, 1) with the "
            "key mask (B, 1, S).", wrong=_keys_only),
    Mistake("masked only the queries", "padded keys must get weight 0 too: the key mask has "
            "shape (B, 1, S).", wrong=_queries_only),
    Mistake("swapped the query and key lengths", "query_lens counts the rows (axis T), "
            "key_lens the columns (axis S).", wrong=_swapped_lens),
    Mistake("nan on a fully masked row (-inf fill)", "a padded query masks its whole row, "
            "and softmax of a row of -inf is 0/0. Fill with a large finite negative number "
            "and zero the masked weights after the softmax.", wrong=_minus_inf),
    Mistake("masked after the softmax", "the padded keys took their share of the softmax "
            "before they were zeroed: rows sum to less than 1. Mask the scores.",
            wrong=_mask_after),
]


def _padded_case(seed, B, T, S, d, dv, qlens, klens, label, scale=1.0):
    return Case((_randn(B, T, d, seed=seed, scale=scale), _randn(B, S, d, seed=seed + 1),
                 _randn(B, S, dv, seed=seed + 2), torch.tensor(qlens), torch.tensor(klens)),
                label=label)


PADDED_CASES = [
    _padded_case(0, 2, 4, 5, 4, 3, [4, 2], [3, 5], "queries of lengths 4, 2; keys 3, 5"),
    _padded_case(10, 3, 3, 6, 5, 2, [1, 3, 2], [6, 2, 4], "three sequences, T=3, S=6"),
    _padded_case(20, 2, 5, 3, 4, 2, [5, 3], [0, 3], "a sequence with no real key"),
    _padded_case(30, 1, 1, 1, 3, 2, [1], [1], "B=T=S=1"),
    _padded_case(40, 2, 3, 4, 4, 2, [2, 3], [4, 1], "large scores (queries times 250)",
                 scale=250.0),
]


def check_padded_attention(fn) -> CheckResult:
    """``fn(queries, keys, values, query_lens, key_lens) -> (output, weights)``."""
    return check_function(fn, exercise="queries and keys padded",
                          reference=padded_attention_reference, cases=PADDED_CASES,
                          mistakes=PADDED_MISTAKES,
                          output_names=("the output (B, T, d_v)", "the weights (B, T, S)"))


# Exercise 3: a mask in the 1 = keep convention --------------------------------------------


def keep_mask_attention_reference(queries, keys, values, keep):
    """``keep`` (B, T, S) of 0.0 / 1.0, 1 = may attend -> (output, weights)."""
    return scaled_dot_product_attention(queries, keys, values, mask=keep == 1)


def _scores(q, k):
    return q @ k.transpose(1, 2) / q.shape[-1] ** 0.5  # (B, T, S)


KEEP_MISTAKES = [
    Mistake("added the 0/1 mask to the scores", "a float mask passed to torch's "
            "scaled_dot_product_attention is *added* to the scores: +1 on the kept keys "
            "masks nothing. Turn it into a boolean mask first (keep == 1).",
            wrong=lambda q, k, v, m: (lambda w: (w @ v, w))(torch.softmax(_scores(q, k) + m,
                                                                          -1))),
    Mistake("the mask read the wrong way round (1 = ignore)", "in this convention 1 means "
            "keep: nn.MultiheadAttention's key_padding_mask is the one where True = ignore.",
            wrong=lambda q, k, v, m: scaled_dot_product_attention(q, k, v, mask=m == 0)),
    Mistake("multiplied the scores by the mask", "a score of 0 is not 'no attention': "
            "exp(0) = 1 still gets weight. Set the masked scores to a large negative number.",
            wrong=lambda q, k, v, m: (lambda w: (w @ v, w))(torch.softmax(_scores(q, k) * m,
                                                                          -1))),
    Mistake("added keep * -1e9 instead of (1 - keep) * -1e9", "the large negative number "
            "goes where keep is 0, i.e. (1 - keep) * -1e9.",
            wrong=lambda q, k, v, m: (lambda w: (w @ v, w))(torch.softmax(
                _scores(q, k) + m * -1e9, -1))),
]


def _keep_case(seed, B, T, S, d, dv, label, keep=None, scale=1.0):
    g = torch.Generator().manual_seed(seed + 3)
    if keep is None:
        keep = (torch.rand(B, T, S, generator=g) < 0.6).float()
        keep[..., 0] = 1.0  # every query keeps at least its first key
    return Case((_randn(B, T, d, seed=seed, scale=scale), _randn(B, S, d, seed=seed + 1),
                 _randn(B, S, dv, seed=seed + 2), keep), label=label)


def _keep_cases():
    fully = torch.ones(2, 3, 4)
    fully[1, 2] = 0.0  # the last query of the second sequence keeps nothing
    causal = torch.ones(5, 5).tril().expand(1, 5, 5).clone()
    return [
        _keep_case(50, 2, 3, 4, 4, 2, "a random 0/1 mask, B=2, T=3, S=4"),
        _keep_case(60, 1, 5, 5, 3, 2, "a causal mask in 0/1 form", keep=causal),
        _keep_case(70, 2, 3, 4, 4, 3, "a query that keeps no key", keep=fully),
        _keep_case(80, 2, 3, 5, 4, 2, "large scores (queries times 100)", scale=100.0),
        _keep_case(90, 1, 1, 1, 2, 2, "B=T=S=1", keep=torch.ones(1, 1, 1)),
    ]


KEEP_CASES = _keep_cases()


def check_keep_mask_attention(fn) -> CheckResult:
    """``fn(queries, keys, values, keep (B, T, S) of 0/1) -> (output, weights)``."""
    return check_function(fn, exercise="a 1 = keep mask", reference=keep_mask_attention_reference,
                          cases=KEEP_CASES, mistakes=KEEP_MISTAKES,
                          output_names=("the output (B, T, d_v)", "the weights (B, T, S)"))


# Exercise 4: find the bugs ----------------------------------------------------------------


def buggy_scaled_attention(queries, keys, values, valid_lens):
    """Scaled dot-product attention with two bugs. (B, T, d), (B, S, d), (B, S, d_v), (B,)."""
    d, T = queries.shape[-1], queries.shape[1]
    scores = queries @ keys.transpose(1, 2) / d  # (B, T, S)
    keep = torch.arange(T)[None, :, None] < valid_lens[:, None, None]  # (B, T, 1)
    weights = torch.softmax(scores.masked_fill(~keep, -1e9), dim=-1) * keep  # (B, T, S)
    return weights @ values, weights  # (B, T, d_v), (B, T, S)


def fixed_scaled_attention_reference(queries, keys, values, valid_lens):
    """The fixed version: scale by sqrt(d), mask the keys' axis."""
    return scaled_dot_product_attention(queries, keys, values, valid_lens=valid_lens)


def _attention(q, k, v, n, scale, key_axis):
    d, T, S = q.shape[-1], q.shape[1], k.shape[1]
    scores = q @ k.transpose(1, 2) / scale(d)
    keep = (torch.arange(S)[None, None, :] if key_axis else torch.arange(T)[None, :, None]) \
        < n[:, None, None]
    weights = torch.softmax(scores.masked_fill(~keep, -1e9), dim=-1) * keep
    return weights @ v, weights


def _sqrt(d):
    return d**0.5


FIXED_MISTAKES = [
    Mistake("still scaling by d", "the scale is 1/sqrt(d): it keeps the scores' spread near "
            "1 when q and k have unit-variance entries; 1/d flattens the weights as d grows.",
            wrong=lambda q, k, v, n: _attention(q, k, v, n, float, True)),
    Mistake("still masking the queries' axis", "valid_lens says which *keys* are real: the "
            "mask has shape (B, 1, S), not (B, T, 1).",
            wrong=lambda q, k, v, n: _attention(q, k, v, n, _sqrt, False)),
    Mistake("unchanged: both bugs are still there", "two things are wrong: the scale and "
            "the axis of the mask.", wrong=buggy_scaled_attention),
    Mistake("no scale at all", "divide the scores by sqrt(d).",
            wrong=lambda q, k, v, n: _attention(q, k, v, n, lambda d: 1.0, True)),
]


def _attention_case(seed, B, T, S, d, dv, valid, label, scale=1.0):
    return Case((_randn(B, T, d, seed=seed, scale=scale), _randn(B, S, d, seed=seed + 1),
                 _randn(B, S, dv, seed=seed + 2), torch.tensor(valid)), label=label)


FIXED_CASES = [
    _attention_case(40, 2, 3, 5, 16, 2, [5, 2], "lengths 5 and 2, d = 16"),
    _attention_case(50, 3, 4, 6, 9, 3, [6, 1, 3], "three sequences, d = 9, T < S"),
    _attention_case(60, 2, 5, 3, 4, 2, [0, 3], "a sequence of valid length 0, T > S"),
    _attention_case(70, 1, 1, 1, 3, 2, [1], "B=T=S=1"),
    _attention_case(80, 2, 3, 4, 4, 2, [4, 3], "large scores (queries times 100)",
                    scale=100.0),
]


def check_fixed_scaled_attention(fn) -> CheckResult:
    """``fn(queries, keys, values, valid_lens) -> (output (B, T, d_v), weights (B, T, S))``."""
    return check_function(fn, exercise="find the bugs",
                          reference=fixed_scaled_attention_reference, cases=FIXED_CASES,
                          mistakes=FIXED_MISTAKES,
                          output_names=("the output (B, T, d_v)", "the weights (B, T, S)"))
