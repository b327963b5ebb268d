"""Checkers for chapter 7: sinusoidal encodings at any positions, RoPE scores against a
key cache, a sliding-window causal mask, self-attention written with plain matrices.

Shapes: x (B, T, d), queries (B, T, d), keys (B, S, d), projections W_q, W_k (d, d_k)
and W_v (d, d_v), scores and weights (B, T, S). A boolean mask is True where a query
may attend to a key.
"""

import torch

from attnbook.attention import masked_softmax
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function, make_compare
from attnbook.positional import apply_rope


def _randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# Exercise 1: the sinusoidal encoding at any positions -----------------------------------


def _sin_cos(positions, d, base, exponent):
    """(T, d) with PE[:, 2i] = sin(p w_i), PE[:, 2i+1] = cos(p w_i), w_i = base**(-exp_i)."""
    angles = positions.double()[:, None] * base ** (-exponent)  # (T, d/2)
    return torch.stack([angles.sin(), angles.cos()], -1).flatten(-2).float()  # interleave


def sinusoidal_at_reference(positions: torch.Tensor, d: int, base: float) -> torch.Tensor:
    """positions (T,) float -> (T, d): PE[p, 2i] = sin(p / base**(2i/d)), PE[p, 2i+1] = cos."""
    two_i = torch.arange(0, d, 2, dtype=torch.float64)  # 0, 2, ..., d-2
    return _sin_cos(positions, d, base, two_i / d)


def _cos_sin(positions, d, base):
    two_i = torch.arange(0, d, 2, dtype=torch.float64)
    angles = positions.double()[:, None] * base ** (-two_i / d)
    return torch.stack([angles.cos(), angles.sin()], -1).flatten(-2).float()


def _sines_then_cosines(positions, d, base):
    two_i = torch.arange(0, d, 2, dtype=torch.float64)
    angles = positions.double()[:, None] * base ** (-two_i / d)
    return torch.cat([angles.sin(), angles.cos()], -1).float()


def _exponent_i(positions, d, base):
    return _sin_cos(positions, d, base, torch.arange(d // 2, dtype=torch.float64) / d)


def _frequency_per_feature(positions, d, base):
    j = torch.arange(d, dtype=torch.float64)  # one frequency for every feature j
    angles = positions.double()[:, None] * base ** (-j / d)  # (T, d)
    even = (j % 2 == 0)
    return torch.where(even, angles.sin(), angles.cos()).float()


SINUSOIDAL_CASES = [
    Case((torch.arange(6.0), 4, 10000.0), label="positions 0..5, d=4, base 10000"),
    Case((torch.tensor([37.0, 38.0, 39.5, 50.0]), 8, 10000.0),
         label="positions 37, 38, 39.5, 50 (a second segment), d=8"),
    Case((torch.tensor([0.0, 1.0, 2.0, 3.0, 10.0]), 6, 100.0), label="base 100, d=6"),
    Case((torch.tensor([3.0]), 2, 10000.0), label="one position, d=2 (one frequency)"),
    Case((torch.tensor([0.0, 5.0, 9.0]), 16, 10.0), label="base 10, d=16"),
]

SINUSOIDAL_MISTAKES = [
    Mistake("sin and cos swapped",
            "the book puts the sine at the even feature 2i and the cosine at 2i+1; your "
            "table has them the other way round.", wrong=_cos_sin),
    Mistake("not interleaved: all the sines, then all the cosines",
            "features come in pairs (2i, 2i+1) with one frequency each: interleave them, "
            "e.g. torch.stack([sin, cos], -1).flatten(-2), rather than torch.cat.",
            wrong=_sines_then_cosines),
    Mistake("frequency exponent i/d instead of 2i/d",
            "pair i has frequency base**(-2i/d): the exponent runs over the even numbers "
            "0, 2, ..., d-2 divided by d, so the slowest wavelength is close to base.",
            wrong=_exponent_i),
    Mistake("one frequency per feature instead of one per pair",
            "the sine at feature 2i and the cosine at 2i+1 share the frequency "
            "base**(-2i/d); with arange(d) in the exponent the cosine gets a different one, "
            "and PE(p + k) is no longer a rotation of PE(p).", wrong=_frequency_per_feature),
    Mistake("positions rounded to whole numbers",
            "positions may be fractions (39.5 here): keep them as floats; .long() or "
            "integer arithmetic drops the fraction.",
            wrong=lambda positions, d, base: sinusoidal_at_reference(
                positions.long().float(), d, base)),
    Mistake("base fixed at 10000",
            "use the base you are given: 10000 is only the paper's choice.",
            wrong=lambda positions, d, base: sinusoidal_at_reference(positions, d, 10000.0)),
    Mistake("frequency base**(2i/d) instead of base**(-2i/d)",
            "the frequencies fall from 1 to about 1/base: divide the position by "
            "base**(2i/d), do not multiply.",
            wrong=lambda positions, d, base: _sin_cos(
                positions, d, base, -torch.arange(0, d, 2, dtype=torch.float64) / d)),
    Mistake("the positions were ignored",
            "use the positions you are given, not 0, 1, ..., T-1.",
            wrong=lambda positions, d, base: sinusoidal_at_reference(
                torch.arange(len(positions), dtype=torch.float32), d, base)),
]


def check_sinusoidal_at(fn) -> CheckResult:
    """``fn(positions (T,), d, base) -> (T, d)`` sinusoidal encodings, interleaved."""
    return check_function(fn, exercise="sinusoidal encoding at given positions",
                          reference=sinusoidal_at_reference, cases=SINUSOIDAL_CASES,
                          mistakes=SINUSOIDAL_MISTAKES, compare=make_compare(atol=1e-4))


# Exercise 2: RoPE scores of new queries against cached keys ------------------------------


def rope_scores_reference(queries: torch.Tensor, keys: torch.Tensor,
                          q_positions: torch.Tensor, k_positions: torch.Tensor
                          ) -> torch.Tensor:
    """(R q) . (R k) / sqrt(d): queries (B, T, d) at q_positions (T,), keys (B, S, d) at
    k_positions (S,) -> scores (B, T, S)."""
    q = apply_rope(queries, q_positions)  # (B, T, d), pair i turned by p * base**(-2i/d)
    k = apply_rope(keys, k_positions)  # (B, S, d)
    return q @ k.transpose(1, 2) / queries.shape[-1] ** 0.5  # (B, T, S)


def _halves_rope(x, positions):
    d = x.shape[-1]
    omega = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    angles = positions.float()[:, None] * omega  # (T, d/2)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * angles.cos() - x2 * angles.sin(),
                      x2 * angles.cos() + x1 * angles.sin()], dim=-1)


def _halves(queries, keys, q_positions, k_positions):
    q, k = _halves_rope(queries, q_positions), _halves_rope(keys, k_positions)
    return q @ k.transpose(1, 2) / queries.shape[-1] ** 0.5


def _same_rotation(queries, keys, q_positions, k_positions):
    return queries @ keys.transpose(1, 2) / queries.shape[-1] ** 0.5  # rotations cancel


def _queries_from_zero(queries, keys, q_positions, k_positions):
    return rope_scores_reference(queries, keys, torch.arange(queries.shape[1]), k_positions)


def _wrong_direction(queries, keys, q_positions, k_positions):
    return rope_scores_reference(queries, keys, -q_positions, -k_positions)


def _rope_unscaled(queries, keys, q_positions, k_positions):
    return rope_scores_reference(queries, keys, q_positions, k_positions) \
        * queries.shape[-1] ** 0.5


def _rope_case(seed, B, T, S, d, q_positions, label, k_start=0):
    return Case((_randn(B, T, d, seed=seed), _randn(B, S, d, seed=seed + 1),
                 torch.tensor(q_positions), torch.arange(S) + k_start), label=label)


def _keys_from_zero(queries, keys, q_positions, k_positions):
    return rope_scores_reference(queries, keys, q_positions, torch.arange(keys.shape[1]))


def _queries_only_rotated(queries, keys, q_positions, k_positions):
    return apply_rope(queries, q_positions) @ keys.transpose(1, 2) / queries.shape[-1] ** 0.5


ROPE_CASES = [
    _rope_case(0, 2, 5, 5, 4, [0, 1, 2, 3, 4], "self-attention, T = S = 5, d = 4"),
    _rope_case(10, 2, 1, 7, 8, [6], "one new query at position 6, keys at 0..6"),
    _rope_case(20, 1, 3, 7, 6, [4, 5, 6], "three new queries at 4..6, keys at 0..6"),
    _rope_case(30, 2, 2, 12, 2, [10, 11], "d = 2 (a single pair), queries at 10, 11"),
    _rope_case(40, 1, 2, 4, 4, [9, 10], "a window cache: keys at 5..8, queries at 9, 10",
               k_start=5),
]

ROPE_MISTAKES = [
    Mistake("rotated the halves (j, j + d/2) instead of the pairs (2i, 2i+1)",
            "that is the GPT-NeoX/LLaMA layout; this book rotates interleaved pairs: "
            "x[..., 0::2] with x[..., 1::2].", wrong=_halves),
    Mistake("keys rotated by the query's position (or nothing rotated at all)",
            "when a query and a key turn by the same angle the rotations cancel in the dot "
            "product and the score forgets every position. Rotate each key by *its own* "
            "position, k_positions.", wrong=_same_rotation),
    Mistake("queries rotated as if they started at position 0",
            "the new queries sit at q_positions (after the cached keys), not at 0, 1, ...; "
            "their offsets to the keys come out wrong.", wrong=_queries_from_zero),
    Mistake("rotation in the wrong direction (angle -p instead of p)",
            "turn pair i by +p * base**(-2i/d): (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 "
            "cos). With the sign flipped the score depends on n - m instead of m - n.",
            wrong=_wrong_direction),
    Mistake("the 1/sqrt(d) scale went missing", "divide the scores by sqrt(d) as before.",
            wrong=_rope_unscaled),
    Mistake("keys placed at 0, 1, ... instead of k_positions",
            "a cache need not start at position 0 (a sliding window drops the oldest keys): "
            "rotate each key by its position in k_positions.", wrong=_keys_from_zero),
    Mistake("only the queries rotated",
            "RoPE turns both: the score of (R_m q) . (R_n k) depends on m - n only because "
            "the key turns too.", wrong=_queries_only_rotated),
]


def check_rope_scores(fn) -> CheckResult:
    """``fn(queries (B, T, d), keys (B, S, d), q_positions (T,), k_positions (S,))
    -> scores (B, T, S)``."""
    return check_function(fn, exercise="RoPE scores against cached keys",
                          reference=rope_scores_reference, cases=ROPE_CASES,
                          mistakes=ROPE_MISTAKES)


# Exercise 3: a sliding-window causal mask -------------------------------------------------


def window_mask_reference(T: int, S: int, window: int) -> torch.Tensor:
    """(T, S) boolean: query i, at position S - T + i, sees keys p - window < j <= p."""
    p = torch.arange(T)[:, None] + (S - T)  # (T, 1) positions of the queries
    j = torch.arange(S)[None, :]  # (1, S)
    return (j <= p) & (j > p - window)


def _window(T, S, window, first, last, offset=True):
    p = torch.arange(T)[:, None] + ((S - T) if offset else 0)
    j = torch.arange(S)[None, :]
    return (j <= p + last) & (j >= p - first)


WINDOW_CASES = [Case((T, S, w), label=f"T={T}, S={S}, window={w}")
                for T, S, w in [(5, 5, 2), (1, 6, 3), (3, 7, 7), (4, 4, 1), (2, 9, 4), (6, 6, 6)]]

WINDOW_MISTAKES = [
    Mistake("window off by one: window + 1 keys",
            "a window of w keys is the query itself and the w - 1 before it: keep "
            "j > p - window, not j >= p - window.",
            wrong=lambda T, S, w: _window(T, S, w, first=w, last=0)),
    Mistake("window off by one: window - 1 keys",
            "the query itself counts as one of the w keys it sees; keep j > p - window.",
            wrong=lambda T, S, w: _window(T, S, w, first=w - 2, last=0)),
    Mistake("queries aligned with the first keys instead of the last",
            "the T queries are the newest T of the S positions: query i is at position "
            "S - T + i (tril(diagonal=S - T) for a plain causal mask).",
            wrong=lambda T, S, w: _window(T, S, w, first=w - 1, last=0, offset=False)),
    Mistake("the diagonal is masked",
            "a position may attend to itself (j = p).",
            wrong=lambda T, S, w: _window(T, S, w, first=w - 1, last=-1)),
    Mistake("the window looks ahead instead of back",
            "a causal window covers the query's own position and the window - 1 keys "
            "*before* it (p - window < j <= p); keys after the query are the future.",
            wrong=lambda T, S, w: _window(T, S, w, first=0, last=w - 1)),
    Mistake("no window: a plain causal mask",
            "the window keeps only the last `window` keys up to the query (j > p - window), "
            "not every earlier key.",
            wrong=lambda T, S, w: _window(T, S, w, first=S, last=0)),
    Mistake("True marks the forbidden positions",
            "in this book True means 'may attend'; you returned the opposite mask.",
            wrong=lambda T, S, w: ~window_mask_reference(T, S, w)),
]


def check_window_mask(fn) -> CheckResult:
    """``fn(T, S, window) -> (T, S)`` boolean sliding-window causal mask."""
    return check_function(fn, exercise="sliding-window causal mask",
                          reference=window_mask_reference, cases=WINDOW_CASES,
                          mistakes=WINDOW_MISTAKES,
                          compare=make_compare(bool_why="attention masks are boolean "
                                                        "(True = may attend)"))


# Exercise 4: self-attention with plain matrices -----------------------------------------


def self_attention_reference(x: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor,
                             W_v: torch.Tensor, mask: torch.Tensor | None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, T, d), W_q and W_k (d, d_k), W_v (d, d_v), mask (T, T) boolean or None
    -> output (B, T, d_v), weights (B, T, T); a query with no key left gets zeros."""
    q, k, v = x @ W_q, x @ W_k, x @ W_v  # (B, T, d_k), (B, T, d_k), (B, T, d_v)
    scores = q @ k.transpose(1, 2) / W_q.shape[1] ** 0.5  # (B, T, T)
    weights = masked_softmax(scores, mask=mask)  # (B, T, T), masked keys get 0
    return weights @ v, weights


def _attend(x, W_q, W_k, W_v, mask, scale, dim=-1, values=None, after=False, fill=-1e9):
    scores = (x @ W_q) @ (x @ W_k).transpose(1, 2) / scale  # (B, T, T)
    if mask is not None and not after:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None:
        weights = weights * mask
    v = x @ W_v if values is None else values
    return weights @ v, weights


def _zero_filled(x, W_q, W_k, W_v, mask):
    scores = (x @ W_q) @ (x @ W_k).transpose(1, 2) / W_q.shape[1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)
    weights = torch.softmax(scores, dim=-1)
    return weights @ (x @ W_v), weights


SELF_ATTENTION_MISTAKES = [
    Mistake("no 1/sqrt(d_k) scale",
            "divide the scores by sqrt(d_k), the size of the queries and keys, before the "
            "softmax (chapter 4).",
            wrong=lambda x, Wq, Wk, Wv, m: _attend(x, Wq, Wk, Wv, m, 1.0)),
    Mistake("scaled by sqrt(d) instead of sqrt(d_k)",
            "the scores are dot products of d_k-dimensional queries and keys: divide by "
            "sqrt(d_k) = sqrt(W_q.shape[1]), not by the model size d.",
            wrong=lambda x, Wq, Wk, Wv, m: _attend(x, Wq, Wk, Wv, m, x.shape[-1] ** 0.5)),
    Mistake("softmax over the queries axis",
            "each query's weights run over the keys: softmax(scores, dim=-1), so every row "
            "of the weights sums to 1.",
            wrong=lambda x, Wq, Wk, Wv, m: _attend(x, Wq, Wk, Wv, m, Wq.shape[1] ** 0.5,
                                                   dim=-2)),
    Mistake("values are x itself (W_v unused)",
            "the values are a third projection of the same sequence: x @ W_v.",
            wrong=lambda x, Wq, Wk, Wv, m: _attend(x, Wq, Wk, Wv, m, Wq.shape[1] ** 0.5,
                                                   values=x)),
    Mistake("mask applied after the softmax",
            "the softmax already gave weight to the masked keys; mask the scores before it.",
            wrong=lambda x, Wq, Wk, Wv, m: _attend(x, Wq, Wk, Wv, m, Wq.shape[1] ** 0.5,
                                                   after=True)),
    Mistake("masked scores set to 0",
            "a score of 0 still gets weight exp(0) after the softmax: fill masked scores "
            "with a large negative number (or use masked_softmax), then zero their weights.",
            wrong=lambda x, Wq, Wk, Wv, m: _zero_filled(x, Wq, Wk, Wv, m)),
    Mistake("mask ignored",
            "where a mask is given, a query may only attend to the keys it marks True.",
            wrong=lambda x, Wq, Wk, Wv, m: self_attention_reference(x, Wq, Wk, Wv, None)),
    Mistake("-inf fill gives nan on a query with no key left",
            "a row whose keys are all masked is 0/0 after a -inf fill. Use chapter 4's "
            "masked softmax: a large finite negative fill, then zero the masked weights.",
            wrong=lambda x, Wq, Wk, Wv, m: _attend(x, Wq, Wk, Wv, m, Wq.shape[1] ** 0.5,
                                                   fill=float("-inf"))),
]


def _self_attention_case(seed, B, T, d, d_k, d_v, mask, label, scale=1.0):
    return Case((_randn(B, T, d, seed=seed, scale=scale), _randn(d, d_k, seed=seed + 1),
                 _randn(d, d_k, seed=seed + 2), _randn(d, d_v, seed=seed + 3), mask),
                label=label)


_no_key = torch.ones(4, 4, dtype=torch.bool).tril()
_no_key[2] = False  # query 2 may attend to nothing

SELF_ATTENTION_CASES = [
    _self_attention_case(0, 2, 4, 6, 4, 6, None, "no mask, d=6, d_k=4, d_v=6"),
    _self_attention_case(10, 2, 5, 8, 2, 3, torch.ones(5, 5, dtype=torch.bool).tril(),
                         "causal mask, d=8, d_k=2, d_v=3"),
    _self_attention_case(20, 1, 1, 4, 4, 4, None, "length 1"),
    _self_attention_case(30, 2, 4, 5, 3, 5, _no_key, "query 2 may attend to no key"),
    _self_attention_case(40, 1, 3, 4, 4, 2, None, "large inputs (scores in the hundreds)",
                         scale=8.0),
]


def check_self_attention(fn) -> CheckResult:
    """``fn(x (B, T, d), W_q (d, d_k), W_k (d, d_k), W_v (d, d_v), mask (T, T) or None)
    -> (output (B, T, d_v), weights (B, T, T))``."""
    return check_function(fn, exercise="self-attention with plain matrices",
                          reference=self_attention_reference, cases=SELF_ATTENTION_CASES,
                          mistakes=SELF_ATTENTION_MISTAKES,
                          output_names=("your output", "your weights"))
