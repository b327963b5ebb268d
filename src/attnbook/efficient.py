"""Attention without the T x T matrix, as taught in chapter 11: naive attention (the
quadratic wall), the online softmax (Milakov & Gimelshein 2018), tiled attention in the
manner of FlashAttention (Dao et al. 2022), masks for a cache and for a sliding window,
banded attention that scores only the window, and a measurement of the memory a call
allocates.

Shapes (``book/notation.md``): queries (..., T, d_k), keys (..., S, d_k), values
(..., S, d_v); any leading dimensions, e.g. (B, h). Boolean masks are True where a query
may attend to a key, as in ``F.scaled_dot_product_attention``.

- ``naive_attention``: softmax(Q K^T / sqrt(d_k)) V, forming the (T, S) scores;
- ``online_softmax``: softmax over the last axis in one pass for the normaliser: a
  running maximum and a running sum, rescaled whenever the maximum grows;
- ``tiled_attention``: query blocks against key blocks with the online-softmax
  rescaling; the largest intermediate is (block, block), never (T, S);
- ``causal_mask_end``: the causal mask for T queries that are the *last* T of S
  positions (a cache holds the first S - T);
- ``sliding_window_mask`` / ``sliding_window_attention``: each query sees itself and
  the ``window - 1`` keys before it; the second computes only those T x window scores;
- ``peak_extra_memory``: the largest amount of memory a call holds at once beyond its
  inputs, from the allocation records of PyTorch's profiler (``profile_memory=True``).
"""

import math
import os

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from attnbook.shapes import check_device, check_positive_int, check_same_dtype, check_tensor
from attnbook.softmax import _check_logits


def _check_qkv(q, k, v) -> None:
    """q (..., T, d_k), k (..., S, d_k), v (..., S, d_v): float tensors of one dtype."""
    for x, name in ((q, "q"), (k, "k"), (v, "v")):
        check_tensor(x, name, "float")
        if x.dim() < 2:
            raise ValueError(f"{name} should have shape (..., length, features), "
                             f"got shape {tuple(x.shape)}")
    check_same_dtype((q, "q"), (k, "k"), (v, "v"))
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k should have the same number of features d_k, got "
                         f"q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"k (..., S, d_k) and v (..., S, d_v) should agree on every axis but "
                         f"the last, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"q and k should have the same leading axes (e.g. B, h), got "
                         f"q {tuple(q.shape)} and k {tuple(k.shape)}")
    if 0 in q.shape or 0 in k.shape:
        raise ValueError(f"q, k and v should not be empty, got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}")


def _check_causal(causal, T: int, S: int) -> None:
    if not isinstance(causal, bool):
        raise TypeError(f"causal should be True or False, got {causal!r}")
    if causal and T > S:
        raise ValueError(f"causal attention needs at most as many queries as keys (the "
                         f"queries are the last T of S positions), got T = {T}, S = {S}")


def causal_mask_end(T: int, S: int, device=None) -> torch.Tensor:
    """(T, S) boolean mask for T queries at positions S - T .. S - 1 of S keys: query i
    sees key j when j <= i + S - T. With T = S it is the usual lower triangle; with one
    query (a cache of S - 1 keys) the single row is all True."""
    check_positive_int(T, "T")
    check_positive_int(S, "S")
    if T > S:
        raise ValueError(f"T = {T} queries cannot be the last T of S = {S} positions")
    return torch.ones(T, S, dtype=torch.bool, device=check_device(device)).tril(S - T)


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    causal: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_k)) v with the (..., T, S) scores formed in full.
    ``causal``: the queries are the last T of the S positions (``causal_mask_end``)."""
    _check_qkv(q, k, v)
    T, S = q.shape[-2], k.shape[-2]
    _check_causal(causal, T, S)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, S)
    if causal:
        scores = scores.masked_fill(~causal_mask_end(T, S, q.device), float("-inf"))
    return scores.softmax(-1) @ v  # (..., T, S) @ (..., S, d_v) -> (..., T, d_v)


def _shift(m: torch.Tensor) -> torch.Tensor:
    """The running maximum to subtract, 0 where it is still -inf: exp(-inf - (-inf)) would
    be nan, and with nothing but -inf seen so far there is nothing to rescale."""
    return torch.where(m == -torch.inf, torch.zeros_like(m), m)


def online_softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis; the normaliser comes from one pass over the entries,
    keeping a running maximum m and a running sum l of exp(x - m).

    The package's rules for masked entries hold: -inf gets weight 0, wherever it stands
    in the row (a row that *starts* with -inf still has m = -inf after its first entry),
    and a row of all -inf gets all zeros, as ``attnbook.softmax.softmax`` and
    ``masked_softmax`` give. A ``nan`` or ``+inf`` is refused, as chapter 2's softmax
    refuses it."""
    check_tensor(x, "x", "float")
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"x should have at least one entry on its last axis, got shape "
                         f"{tuple(x.shape)}")
    _check_logits(x, -1, "x")  # nan or +inf
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype, device=x.device)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)  # noqa: E741
    for j in range(x.shape[-1]):
        m_new = torch.maximum(m, x[..., j])
        shift = _shift(m_new)  # m_new, or 0 while the row has shown only -inf
        l = l * torch.exp(m - shift) + torch.exp(x[..., j] - shift)  # noqa: E741
        m = m_new
    l = torch.where(l > 0, l, torch.ones_like(l))  # noqa: E741 -- all -inf: 0 / 1, not 0 / 0
    return torch.exp(x - _shift(m)[..., None]) / l[..., None]


def tiled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int = 128,
                    causal: bool = False) -> torch.Tensor:
    """Attention computed block by block: for each block of queries, run over the blocks
    of keys keeping a running maximum m, a running sum l and an unnormalised output acc,
    rescaled by exp(m_old - m_new) when the maximum grows. No (T, S) tensor is formed.
    ``causal``: the queries are the last T of the S positions; key blocks wholly in the
    future of a query block are skipped. Returns (..., T, d_v)."""
    _check_qkv(q, k, v)
    check_positive_int(block_size, "block_size")
    T, S = q.shape[-2], k.shape[-2]
    _check_causal(causal, T, S)
    scale = 1 / math.sqrt(q.shape[-1])
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
    for i in range(0, T, block_size):
        qb = q[..., i:i + block_size, :] * scale  # (..., b, d_k)
        rows = torch.arange(i, i + qb.shape[-2], device=q.device) + (S - T)  # positions
        m = torch.full(qb.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)
        l = torch.zeros_like(m)  # noqa: E741
        acc = torch.zeros(*qb.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
        last = int(rows[-1]) + 1 if causal else S
        for j in range(0, last, block_size):
            s = qb @ k[..., j:j + block_size, :].transpose(-2, -1)  # (..., b, b)
            if causal and j + s.shape[-1] - 1 > int(rows[0]):  # the tile crosses the diagonal
                cols = torch.arange(j, j + s.shape[-1], device=q.device)
                s = s.masked_fill(cols[None, :] > rows[:, None], float("-inf"))
            m_new = torch.maximum(m, s.amax(-1))
            shift = _shift(m_new)  # 0 while a row has seen only masked keys
            p = torch.exp(s - shift[..., None])  # (..., b, b)
            alpha = torch.exp(m - shift)  # rescales what was summed under the old maximum
            l = l * alpha + p.sum(-1)  # noqa: E741
            acc = acc * alpha[..., None] + p @ v[..., j:j + block_size, :]
            m = m_new
        out[..., i:i + block_size, :] = acc / l[..., None]
    return out


def sliding_window_mask(T: int, window: int, device=None) -> torch.Tensor:
    """(T, T) boolean band: query i sees keys i - window + 1 .. i (itself included)."""
    check_positive_int(T, "T")
    check_positive_int(window, "window")
    device = check_device(device)
    offset = torch.arange(T, device=device)[:, None] - torch.arange(T, device=device)
    return (offset >= 0) & (offset < window)


def sliding_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             window: int) -> torch.Tensor:
    """Causal attention within a window, computing only T x window scores: each query
    gets a view of its ``window`` keys (left-padded with masked slots).
    q, k (..., T, d_k), v (..., T, d_v) -> (..., T, d_v)."""
    _check_qkv(q, k, v)
    check_positive_int(window, "window")
    T = q.shape[-2]
    if k.shape[-2] != T:
        raise ValueError(f"self-attention with a window needs as many keys as queries, "
                         f"got T = {T} queries and S = {k.shape[-2]} keys")
    pad = window - 1
    k_win = F.pad(k, (0, 0, pad, 0)).unfold(-2, window, 1)  # (..., T, d_k, w): a view
    v_win = F.pad(v, (0, 0, pad, 0)).unfold(-2, window, 1)  # (..., T, d_v, w)
    scores = (q.unsqueeze(-2) @ k_win).squeeze(-2) / math.sqrt(q.shape[-1])  # (..., T, w)
    slot = torch.arange(T, device=q.device)[:, None] + torch.arange(window, device=q.device)
    scores = scores.masked_fill(slot < pad, float("-inf"))  # slots before position 0
    weights = scores.softmax(-1)  # (..., T, w)
    return (v_win @ weights.unsqueeze(-1)).squeeze(-1)  # (..., T, d_v, w) @ (w, 1)


def peak_extra_memory(fn, *args, **kwargs) -> int:
    """Bytes: the most memory ``fn(*args, **kwargs)`` holds at once beyond its inputs.

    Runs the call under ``torch.profiler.profile(profile_memory=True)`` and adds up, in
    the order they started, the memory each profiled event allocated and did not release
    itself (``self_cpu_memory_usage``: an operation's allocations, or a release between
    operations, negative); the peak of that running total is returned. The result is
    allocated inside the call, so it counts. Scratch memory that one operation allocates
    and frees inside itself does not show at this level.
    """
    if not callable(fn):
        raise TypeError(f"fn should be a function to call, got {type(fn).__name__}")
    # The profiler's C++ layer (Kineto) logs every start and stop to stderr unless its
    # log level is above its highest (5); it reads the level when it first starts.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*args, **kwargs)
    changes = [(e.time_range.start, e.self_cpu_memory_usage) for e in prof.events()]
    total = peak = 0
    for _, nbytes in sorted(changes):
        total += nbytes
        peak = max(peak, total)
    return peak


__all__ = ["causal_mask_end", "naive_attention", "online_softmax", "peak_extra_memory",
           "sliding_window_attention", "sliding_window_mask", "tiled_attention"]
