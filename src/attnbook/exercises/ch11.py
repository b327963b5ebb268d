"""Checkers for chapter 11: the online-softmax update for a block of scores, one tile of
tiled attention under a sliding window, appending grouped keys to a KV cache, and the
recurrence of causal linear attention with a decay.

Shapes: running maximum m and sum l (R,), scores (R, n); a tile's queries (b_q, d_k),
keys (b_k, d_k), values (b_k, d_v), accumulator (b_q, d_v); a cache (B, g, S, d_h) and
new projected keys (B, t, g d_h); q, k (B, T, d_k), v (B, T, d_v).
"""

import math

import torch
import torch.nn.functional as F

from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function


def _randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# Exercise 1: the online-softmax update for a whole block of scores --------------------


def online_update_reference(m: torch.Tensor, l: torch.Tensor, scores: torch.Tensor):  # noqa: E741
    """m, l (R,): the running maximum and the running sum of exp(x - m) over the scores
    seen so far (m = -inf, l = 0 before any); scores (R, n): the next block.
    Returns the new (m, l) after the block."""
    m_new = torch.maximum(m, scores.amax(-1))
    l_new = l * torch.exp(m - m_new) + torch.exp(scores - m_new[:, None]).sum(-1)
    return m_new, l_new


def _update_not_rescaled(m, l, scores):  # noqa: E741
    m_new = torch.maximum(m, scores.amax(-1))
    return m_new, l + torch.exp(scores - m_new[:, None]).sum(-1)


def _update_factor_inverted(m, l, scores):  # noqa: E741
    m_new = torch.maximum(m, scores.amax(-1))
    return m_new, l * torch.exp(m_new - m) + torch.exp(scores - m_new[:, None]).sum(-1)


def _update_score_by_score(m, l, scores, rescale=True, flip=False):  # noqa: E741
    for j in range(scores.shape[-1]):  # the per-score update, one column at a time
        m_new = torch.maximum(m, scores[:, j])
        factor = torch.exp(m_new - m) if flip else torch.exp(m - m_new)
        l = (l * factor if rescale else l) + torch.exp(scores[:, j] - m_new)  # noqa: E741
        m = m_new
    return m, l


def _update_not_rescaled_loop(m, l, scores):  # noqa: E741
    return _update_score_by_score(m, l, scores, rescale=False)


def _update_factor_inverted_loop(m, l, scores):  # noqa: E741
    return _update_score_by_score(m, l, scores, flip=True)


def _update_block_max_only(m, l, scores):  # noqa: E741
    m_new = scores.amax(-1)
    return m_new, l * torch.exp(m - m_new) + torch.exp(scores - m_new[:, None]).sum(-1)


def _state(R, seed, m_scale=1.0):
    m = _randn(R, seed=seed, scale=m_scale)
    l = 1 + _randn(R, seed=seed + 1).abs() * 3  # noqa: E741 - at least 1: the max itself
    return m, l


ONLINE_CASES = [
    Case((*_state(3, 0), _randn(3, 4, seed=2, scale=3)),
         label="3 rows, a block of 4 scores that raises the maximum in some rows"),
    Case((torch.full((2,), float("-inf")), torch.zeros(2), _randn(2, 5, seed=3)),
         label="the first block (m = -inf, l = 0)"),
    Case((*_state(2, 4, m_scale=10), _randn(2, 3, seed=5)),
         label="a block whose scores are all below the running maximum"),
    Case((*_state(3, 6), _randn(3, 1, seed=7, scale=4)), label="a block of one score"),
    Case((*_state(2, 8, m_scale=500), _randn(2, 4, seed=9, scale=900)),
         label="scores in the hundreds (exp(900) overflows)"),
]

ONLINE_MISTAKES = [
    Mistake("running sum not rescaled when the maximum grows",
            "l holds terms exp(x - m_old); when the block raises the maximum to m_new they "
            "must become exp(x - m_new): multiply l by exp(m_old - m_new) before adding the "
            "block's exp(s - m_new).", wrong=_update_not_rescaled),
    Mistake("rescaling factor upside down",
            "the old terms shrink when the maximum grows: exp(m_old - m_new) <= 1, not "
            "exp(m_new - m_old).", wrong=_update_factor_inverted),
    Mistake("running sum not rescaled when the maximum grows (score by score)",
            "going through the block one score at a time is fine, but each time a score "
            "raises the maximum, multiply l by exp(m_old - m_new) first.",
            wrong=_update_not_rescaled_loop),
    Mistake("rescaling factor upside down (score by score)",
            "the old terms shrink when the maximum grows: multiply l by exp(m_old - m_new) "
            "<= 1 at each new maximum, not exp(m_new - m_old).",
            wrong=_update_factor_inverted_loop),
    Mistake("new maximum taken over the block only",
            "the running maximum is the largest score seen so far: max(m, block max). A "
            "block of small scores must not lower it.", wrong=_update_block_max_only),
]


def check_online_update(fn) -> CheckResult:
    """``fn(m (R,), l (R,), scores (R, n)) -> (m_new (R,), l_new (R,))``."""
    return check_function(fn, exercise="online-softmax update for a block",
                          reference=online_update_reference, cases=ONLINE_CASES,
                          mistakes=ONLINE_MISTAKES,
                          output_names=("the new running maximum m",
                                        "the new running sum l"))


# Exercise 2: one tile of tiled attention under a sliding window ------------------------


def _window_scores(q, k, q_start, k_start, window, local=False, wider=False):
    s = q @ k.T / math.sqrt(q.shape[-1])  # (b_q, b_k)
    rows, cols = torch.arange(q.shape[0]), torch.arange(k.shape[0])
    if not local:
        rows, cols = rows + q_start, cols + k_start
    offset = rows[:, None] - cols[None, :]  # query position - key position
    seen = (offset >= 0) & ((offset <= window) if wider else (offset < window))
    return s.masked_fill(~seen, float("-inf"))


def window_tile_reference(acc, m, l, q, k, v, q_start: int, k_start: int,  # noqa: E741
                          window: int):
    """Fold one tile into the running state of its queries. acc (b_q, d_v) unnormalised
    output, m, l (b_q,); q (b_q, d_k) at positions q_start ..; k (b_k, d_k), v (b_k, d_v)
    at positions k_start ..; query p sees key j when 0 <= p - j < window.
    Returns the new (acc, m, l); a row that sees no key of the tile keeps its state."""
    s = _window_scores(q, k, q_start, k_start, window)
    m_new = torch.maximum(m, s.amax(-1))
    safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)  # nothing seen
    p = torch.exp(s - safe[:, None])  # (b_q, b_k); 0 where masked
    alpha = torch.exp(m - safe)  # 0 when m = -inf
    return acc * alpha[:, None] + p @ v, m_new, l * alpha + p.sum(-1)


def _tile_local_positions(acc, m, l, q, k, v, q_start, k_start, window):  # noqa: E741
    return window_tile_reference(acc, m, l, q, k, v, 0, 0, window)


def _tile_acc_not_rescaled(acc, m, l, q, k, v, q_start, k_start, window):  # noqa: E741
    _, m_new, l_new = window_tile_reference(acc, m, l, q, k, v, q_start, k_start, window)
    safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
    p = torch.exp(_window_scores(q, k, q_start, k_start, window) - safe[:, None])
    return acc + p @ v, m_new, l_new


def _tile_window_too_wide(acc, m, l, q, k, v, q_start, k_start, window):  # noqa: E741
    s = _window_scores(q, k, q_start, k_start, window, wider=True)
    m_new = torch.maximum(m, s.amax(-1))
    safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
    p = torch.exp(s - safe[:, None])
    alpha = torch.exp(m - safe)
    return acc * alpha[:, None] + p @ v, m_new, l * alpha + p.sum(-1)


def _nan_in_hidden_rows(got, expected, case) -> bool:
    return bool(torch.isnan(got[0]).any() or torch.isnan(got[2]).any()) and not bool(
        torch.isnan(expected[0]).any())


def _tile_case(b_q, b_k, q_start, k_start, window, seed, fresh=False, label=""):
    d_k, d_v = 4, 3
    if fresh:  # the first tile these queries meet
        m, l = torch.full((b_q,), float("-inf")), torch.zeros(b_q)  # noqa: E741
        acc = torch.zeros(b_q, d_v)
    else:
        m, l = _state(b_q, seed)  # noqa: E741
        acc = _randn(b_q, d_v, seed=seed + 2)
    q, k, v = (_randn(b, d, seed=seed + i) for i, (b, d) in
               enumerate(((b_q, d_k), (b_k, d_k), (b_k, d_v)), start=3))
    return Case((acc, m, l, q, k, v, q_start, k_start, window), label=label)


TILE_CASES = [
    _tile_case(4, 4, 8, 4, 6, seed=0, label="queries 8-11, keys 4-7, window 6 (a band "
                                             "crosses the tile)"),
    _tile_case(4, 4, 4, 4, 3, seed=10, label="a tile on the diagonal (queries and keys "
                                               "4-7), window 3"),
    _tile_case(3, 4, 4, 0, 5, seed=20, fresh=True,
               label="the first tile of queries 4-6 (m = -inf), keys 0-3, window 5"),
    _tile_case(4, 2, 12, 0, 4, seed=30, fresh=True,
               label="queries 12-15 against keys 0-1, window 4: no key visible"),
    _tile_case(2, 3, 6, 3, 8, seed=40, label="queries 6-7, keys 3-5, a window wider "
                                               "than the tile"),
]

TILE_MISTAKES = [
    Mistake("mask built from positions inside the tile",
            "the window is about positions in the sequence: query q_start + i and key "
            "k_start + j, not i and j. A tile away from the diagonal needs the offsets.",
            wrong=_tile_local_positions),
    Mistake("accumulator not rescaled",
            "acc holds sum exp(s - m_old) v; when the maximum grows, multiply it by "
            "exp(m_old - m_new) as you do l, before adding the tile's p @ v.",
            wrong=_tile_acc_not_rescaled),
    Mistake("window one key too wide",
            "a window of w covers the query itself and the w - 1 keys before it: "
            "0 <= p - j < w, not <= w.", wrong=_tile_window_too_wide),
    Mistake("nan for a query that sees no key",
            "a row whose keys are all masked has max -inf, and exp(-inf - (-inf)) is nan. "
            "When m_new is -inf, subtract 0 instead: the row's p is 0 and its state stays "
            "as it was.", detect=_nan_in_hidden_rows),
]


def check_window_tile(fn) -> CheckResult:
    """``fn(acc, m, l, q, k, v, q_start, k_start, window) -> (acc, m, l)``."""
    return check_function(fn, exercise="one tile under a sliding window",
                          reference=window_tile_reference, cases=TILE_CASES,
                          mistakes=TILE_MISTAKES,
                          output_names=("the accumulated output acc", "the running maximum m",
                                        "the running sum l"))


# Exercise 3: appending grouped keys to a KV cache ------------------------------------


def append_kv_reference(cache: torch.Tensor, k_proj: torch.Tensor, num_kv_heads: int
                        ) -> torch.Tensor:
    """cache (B, g, S, d_h); k_proj (B, t, g d_h), the output of W_k for t new tokens
    -> (B, g, S + t, d_h): the new keys split into g heads and put after the old ones."""
    B, t, _ = k_proj.shape
    new = k_proj.reshape(B, t, num_kv_heads, -1).transpose(1, 2)  # (B, g, t, d_h)
    return torch.cat([cache, new], dim=2)


def _split(k_proj, g):
    B, t, _ = k_proj.shape
    return k_proj.reshape(B, t, g, -1).transpose(1, 2)


def _append_head_axis(cache, k_proj, num_kv_heads):
    return torch.cat([cache, _split(k_proj, num_kv_heads)], dim=1)


def _append_feature_axis(cache, k_proj, num_kv_heads):
    return torch.cat([cache, _split(k_proj, num_kv_heads)], dim=-1)


def _append_no_transpose(cache, k_proj, num_kv_heads):
    B, t, _ = k_proj.shape
    return torch.cat([cache, k_proj.reshape(B, num_kv_heads, t, -1)], dim=2)


def _append_in_front(cache, k_proj, num_kv_heads):
    return torch.cat([_split(k_proj, num_kv_heads), cache], dim=2)


APPEND_CASES = [
    Case((_randn(2, 2, 3, 4, seed=0), _randn(2, 3, 8, seed=1), 2),
         label="B=2, g=2 heads of 4, a cache of 3 positions, 3 new tokens"),
    Case((_randn(1, 2, 5, 3, seed=2), _randn(1, 1, 6, seed=3), 2),
         label="one new token (t=1) after 5 cached"),
    Case((_randn(2, 1, 4, 4, seed=4), _randn(2, 2, 4, seed=5), 1),
         label="multi-query: one key head (g=1), 2 new tokens"),
    Case((torch.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2),
          100 + torch.arange(2 * 4 * 6.0).reshape(2, 4, 6), 3),
         label="arange: g=3 heads of 2, 2 cached, 4 new (t > S)"),
]

APPEND_MISTAKES = [
    Mistake("concatenated on the head axis",
            "the cache grows along the positions, axis 2 of (B, g, S, d_h): "
            "torch.cat([cache, new], dim=2), not dim=1 (that adds heads).",
            wrong=_append_head_axis),
    Mistake("concatenated on the feature axis",
            "dim=-1 makes each key longer instead of adding positions; the positions are "
            "axis 2 of (B, g, S, d_h).", wrong=_append_feature_axis),
    Mistake("heads split without the transpose",
            "k_proj is (B, t, g d_h): reshape it to (B, t, g, d_h) and then transpose to "
            "(B, g, t, d_h). Reshaping straight to (B, g, t, d_h) mixes positions and "
            "heads (it only looks right when t = 1).", wrong=_append_no_transpose),
    Mistake("new positions put in front of the cache",
            "the new tokens come after the cached ones: cat([cache, new]), so position i of "
            "the sequence stays index i of the cache.", wrong=_append_in_front),
]


def check_append_kv(fn) -> CheckResult:
    """``fn(cache (B, g, S, d_h), k_proj (B, t, g d_h), num_kv_heads) -> (B, g, S+t, d_h)``."""
    return check_function(fn, exercise="append to a KV cache", reference=append_kv_reference,
                          cases=APPEND_CASES, mistakes=APPEND_MISTAKES)


# Exercise 4: causal linear attention with a decay, as a recurrence ------------------


def decayed_linear_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                       gamma: float) -> torch.Tensor:
    """q, k (B, T, d_k), v (B, T, d_v), 0 < gamma <= 1 -> (B, T, d_v): with
    phi(x) = elu(x) + 1, S_t = gamma S_{t-1} + phi(k_t) v_t^T,
    z_t = gamma z_{t-1} + phi(k_t), y_t = phi(q_t)^T S_t / phi(q_t)^T z_t."""
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    B, T, d_k = q.shape
    state = q.new_zeros(B, d_k, v.shape[-1])  # (B, d_k, d_v)
    z = q.new_zeros(B, d_k)
    out = []
    for t in range(T):
        state = gamma * state + fk[:, t, :, None] * v[:, t, None, :]
        z = gamma * z + fk[:, t]
        out.append((fq[:, t, None] @ state).squeeze(1) / (fq[:, t] * z).sum(-1, keepdim=True))
    return torch.stack(out, 1)


def _decay_normaliser_not_decayed(q, k, v, gamma):
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    state = q.new_zeros(q.shape[0], q.shape[2], v.shape[-1])
    z = q.new_zeros(q.shape[0], q.shape[2])
    out = []
    for t in range(q.shape[1]):
        state = gamma * state + fk[:, t, :, None] * v[:, t, None, :]
        z = z + fk[:, t]
        out.append((fq[:, t, None] @ state).squeeze(1) / (fq[:, t] * z).sum(-1, keepdim=True))
    return torch.stack(out, 1)


def _decay_not_causal(q, k, v, gamma):
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    t = torch.arange(q.shape[1])
    fade = gamma ** (t[:, None] - t[None, :]).to(q.dtype)  # no mask: the future too
    a = (fq @ fk.transpose(1, 2)) * fade
    return (a @ v) / a.sum(-1, keepdim=True)


def _decay_ignored(q, k, v, gamma):
    return decayed_linear_attention_reference(q, k, v, 1.0)


def _decay_no_feature_map(q, k, v, gamma):
    # the reference's recurrence with phi the identity: raw q and k
    state = q.new_zeros(q.shape[0], q.shape[2], v.shape[-1])
    z = q.new_zeros(q.shape[0], q.shape[2])
    out = []
    for t in range(q.shape[1]):
        state = gamma * state + k[:, t, :, None] * v[:, t, None, :]
        z = gamma * z + k[:, t]
        out.append((q[:, t, None] @ state).squeeze(1) / (q[:, t] * z).sum(-1, keepdim=True))
    return torch.stack(out, 1)


DECAY_CASES = [
    Case((_randn(2, 6, 4, seed=0), _randn(2, 6, 4, seed=1), _randn(2, 6, 3, seed=2), 0.9),
         label="B=2, T=6, gamma=0.9"),
    Case((_randn(1, 8, 3, seed=3), _randn(1, 8, 3, seed=4), _randn(1, 8, 2, seed=5), 0.5),
         label="T=8, gamma=0.5 (the past fades fast)"),
    Case((_randn(1, 5, 4, seed=6), _randn(1, 5, 4, seed=7), _randn(1, 5, 4, seed=8), 1.0),
         label="gamma=1: plain causal linear attention"),
    Case((_randn(2, 1, 2, seed=9), _randn(2, 1, 2, seed=10), _randn(2, 1, 3, seed=11), 0.7),
         label="a single position (T=1)"),
]

DECAY_MISTAKES = [
    Mistake("normaliser not decayed",
            "the weights of the past fade by gamma in the numerator; they must fade in the "
            "normaliser z too (z_t = gamma z_{t-1} + phi(k_t)), or the outputs shrink "
            "towards 0 instead of being a weighted mean.", wrong=_decay_normaliser_not_decayed),
    Mistake("not causal: the future is seen",
            "position t may only read the tokens up to t: the recurrence does that by "
            "itself; a matrix form needs the weights of later tokens set to 0.",
            wrong=_decay_not_causal),
    Mistake("decay ignored",
            "multiply the state and the normaliser by gamma before adding the new key: "
            "S_t = gamma S_{t-1} + phi(k_t) v_t^T.", wrong=_decay_ignored),
    Mistake("feature map left out",
            "apply phi(x) = elu(x) + 1 to q and k first: raw dot products can be negative, "
            "and the normaliser can pass through 0.", wrong=_decay_no_feature_map),
]


def check_decayed_linear_attention(fn) -> CheckResult:
    """``fn(q (B, T, d_k), k (B, T, d_k), v (B, T, d_v), gamma) -> (B, T, d_v)``."""
    return check_function(fn, exercise="causal linear attention with a decay",
                          reference=decayed_linear_attention_reference, cases=DECAY_CASES,
                          mistakes=DECAY_MISTAKES)
