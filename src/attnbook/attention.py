"""Attention as taught in chapter 4: masks, masked softmax, scaled dot-product attention
and the scoring functions (dot, scaled dot, cosine, general, additive, location-based).

Shapes (``book/notation.md``): queries (..., T, d), keys (..., S, d),
values (..., S, d_v), scores and weights (..., T, S). A boolean ``mask`` is
True where a query may attend to a key, as in PyTorch's
``scaled_dot_product_attention``.

Arguments are ``torch.Tensor``s of one floating-point dtype (NumPy arrays, lists and
float32/float64 mixes are refused with a ``TypeError`` naming the argument). A ``nan``
in the queries, keys or values is passed on: every row it touches comes out ``nan``.
"""

import torch
from torch import nn

from attnbook.shapes import (
    check_device,
    check_module_input,
    check_nonempty,
    check_number,
    check_positive_int,
    check_same_dtype,
    check_shape,
    check_tensor,
)


def causal_mask(T: int, S: int | None = None, device=None) -> torch.Tensor:
    """(T, S) boolean mask, True where key j <= query i: nobody looks into the future.

    ``T = 0`` or ``S = 0`` gives an empty mask."""
    check_positive_int(T, "T", minimum=0)
    S = T if S is None else check_positive_int(S, "S", minimum=0)
    return torch.ones(T, S, dtype=torch.bool, device=check_device(device)).tril()


def padding_mask(valid_lens: torch.Tensor, S: int) -> torch.Tensor:
    """(..., S) boolean mask from valid lengths (...,): True at key positions < valid_len."""
    check_tensor(valid_lens, "valid_lens", "int")
    check_positive_int(S, "S", minimum=0)
    if (valid_lens < 0).any() or (valid_lens > S).any():
        raise ValueError(f"valid_lens must lie in [0, {S}], got {valid_lens.tolist()}")
    positions = torch.arange(S, device=valid_lens.device)
    return positions < valid_lens[..., None]


def _keep_mask(scores, valid_lens, mask):
    """Combine valid lengths and a boolean mask into one mask broadcastable to ``scores``."""
    keep = None
    if valid_lens is not None:
        check_tensor(valid_lens, "valid_lens", "int")
        lead = scores.shape[:-1]
        if valid_lens.shape != lead[: valid_lens.dim()]:
            raise ValueError(f"valid_lens should have shape {tuple(lead[:1])} or "
                             f"{tuple(lead)} (leading dimensions of scores {tuple(scores.shape)}),"
                             f" got {tuple(valid_lens.shape)}")
        pad = padding_mask(valid_lens, scores.shape[-1])  # (*lead[:k], S)
        extra = len(lead) - valid_lens.dim()
        keep = pad.reshape(*valid_lens.shape, *([1] * extra), scores.shape[-1])
    if mask is not None:
        check_tensor(mask, "mask")
        if mask.dtype != torch.bool:
            raise TypeError(f"mask should be boolean (True = may attend), got dtype {mask.dtype}; "
                            f"convert it with mask.bool() or build it with a comparison")
        try:
            torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to scores "
                             f"of shape {tuple(scores.shape)}") from None
        keep = mask if keep is None else keep & mask
    return keep


def masked_softmax(scores: torch.Tensor, valid_lens: torch.Tensor | None = None,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis (keys) that gives masked positions weight exactly 0.

    ``valid_lens``: integer lengths for the leading dimensions of ``scores``, e.g. (B,)
    or (B, T) for scores (B, T, S); keys at positions >= the length are masked.
    ``mask``: boolean, broadcastable to ``scores``, True where attending is allowed.
    A row with every key masked gets all-zero weights (not ``nan``), so a padded
    query contributes nothing and its gradient stays finite. A score of ``-inf`` counts
    as masked too: a row the caller masked with ``-inf`` throughout gets zeros as well.
    """
    check_tensor(scores, "scores", "float")
    if scores.dim() == 0:
        raise ValueError("scores should have at least 1 dimension (the keys), got a scalar")
    return _masked_softmax(scores, _keep_mask(scores, valid_lens, mask))


def _masked_softmax(scores, keep):
    """``masked_softmax`` once the mask ``keep`` (or None) is built and checked."""
    # A finite fill (not -inf): a fully-masked row then gives a finite softmax that we zero.
    low = torch.finfo(scores.dtype).min
    filled = scores if keep is None else scores.masked_fill(~keep, low)
    # A row whose largest entry is -inf (or the fill) has no key left. The caller's -inf
    # would make that row's softmax nan: zero it. Finding such rows takes one reduction
    # and one look at a (..., 1) tensor; mending them on every call would cost two
    # passes over the scores, so they are mended only when there are some.
    dead = filled.amax(-1, keepdim=True) <= low
    gone = None if keep is None else ~keep  # weights to set to 0
    if bool(dead.any()):
        filled = filled.masked_fill(dead, 0.0)  # a finite row: a finite gradient
        gone = dead if gone is None else gone | dead
    weights = torch.softmax(filled, dim=-1)
    return weights if gone is None else weights.masked_fill(gone, 0.0)


def scaled_dot_product_attention(queries: torch.Tensor, keys: torch.Tensor,
                                 values: torch.Tensor, mask: torch.Tensor | None = None,
                                 valid_lens: torch.Tensor | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d)) V with optional masks; returns ``(output, weights)``.

    queries (..., T, d), keys (..., S, d), values (..., S, d_v) ->
    output (..., T, d_v), weights (..., T, S). At least one key (S >= 1): a weighted
    average of nothing is refused. A key that no query may attend to (padding past
    ``valid_lens``) does not reach the output, even if its value holds ``nan``.
    """
    for x, name in ((queries, "queries"), (keys, "keys"), (values, "values")):
        check_tensor(x, name, "float")
        if x.dim() < 2:
            raise ValueError(f"{name} should have at least 2 dimensions (length, features), "
                             f"got shape {tuple(x.shape)}")
    check_same_dtype((queries, "queries"), (keys, "keys"), (values, "values"))
    if not queries.dim() == keys.dim() == values.dim():
        raise ValueError(f"queries, keys and values should have the same number of dimensions "
                         f"(..., length, features); got shapes {tuple(queries.shape)}, "
                         f"{tuple(keys.shape)}, {tuple(values.shape)}")
    lead = (None,) * (queries.dim() - 2)
    dims = check_shape(queries, (*lead, "T", "d"), "queries")
    dims = check_shape(keys, (*lead, "S", "d"), "keys", dims)
    check_shape(values, (*lead, "S", None), "values", dims)
    if queries.shape[:-2] != keys.shape[:-2] or keys.shape[:-2] != values.shape[:-2]:
        raise ValueError(f"queries, keys and values should share their batch dimensions; got "
                         f"{tuple(queries.shape)}, {tuple(keys.shape)}, {tuple(values.shape)}")
    check_nonempty(keys, "keys", dim=-2, what="positions (S = 0)",
                   why="attention needs at least one key to put its weight on")
    d = queries.shape[-1]
    scores = queries @ keys.transpose(-2, -1) / d**0.5  # (..., T, d) @ (..., d, S) -> (..., T, S)
    keep = _keep_mask(scores, valid_lens, mask)
    weights = _masked_softmax(scores, keep)  # (..., T, S), rows sum to 1 (0 if all masked)
    if keep is not None:  # a key no query may see: 0 * nan would still be nan
        seen = keep.any(-2) if keep.dim() >= 2 else keep  # (..., S): some query sees it
        unseen = ~seen.unsqueeze(-1)  # (..., S, 1), small: look before filling the values
        if bool(unseen.any()):
            values = values.masked_fill(unseen, 0.0)
    return weights @ values, weights  # (..., T, d_v), (..., T, S)


# Scoring functions: queries (..., T, d_q) and keys (..., S, d_k) -> scores (..., T, S).


def _check_queries_keys(queries, keys, same_features: bool = True) -> None:
    """Clear errors for queries (..., T, d_q) and keys (..., S, d_k) with one batch shape."""
    for x, name in ((queries, "queries"), (keys, "keys")):
        check_tensor(x, name, "float")
        if x.dim() < 2:
            raise ValueError(f"{name} should have at least 2 dimensions (length, features), "
                             f"got shape {tuple(x.shape)}")
    check_same_dtype((queries, "queries"), (keys, "keys"))
    if queries.shape[:-2] != keys.shape[:-2]:
        raise ValueError(f"queries and keys should share their batch dimensions; got "
                         f"{tuple(queries.shape)} and {tuple(keys.shape)}")
    if same_features and queries.shape[-1] != keys.shape[-1]:
        raise ValueError(f"queries and keys should have the same feature size d; got "
                         f"{queries.shape[-1]} and {keys.shape[-1]} (shapes "
                         f"{tuple(queries.shape)}, {tuple(keys.shape)})")


def dot_scores(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Luong's *dot*: q . k for every pair; (..., T, d), (..., S, d) -> (..., T, S)."""
    _check_queries_keys(queries, keys)
    return queries @ keys.transpose(-2, -1)  # (..., T, d) @ (..., d, S) -> (..., T, S)


def scaled_dot_scores(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """q . k / sqrt(d) (Vaswani et al.): unit variance for unit-variance q and k."""
    return dot_scores(queries, keys) / queries.shape[-1] ** 0.5


def cosine_scores(queries: torch.Tensor, keys: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Content-based (Graves et al.): cos(q, k) in [-1, 1]; (..., T, d), (..., S, d) -> (..., T, S).

    Multiply by a sharpening factor (the NTM's beta) before the softmax: cosines alone
    are too close together to make peaked weights.
    """
    _check_queries_keys(queries, keys)
    eps = check_number(eps, "eps", above=0)
    q = queries / queries.norm(dim=-1, keepdim=True).clamp_min(eps)  # (..., T, d), unit rows
    k = keys / keys.norm(dim=-1, keepdim=True).clamp_min(eps)  # (..., S, d), unit rows
    return q @ k.transpose(-2, -1)  # (..., T, S)


class GeneralScore(nn.Module):
    """Luong's *general* (bilinear): q^T W k, so queries and keys may differ in size."""

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        self.query_size = check_positive_int(query_size, "query_size")
        self.key_size = check_positive_int(key_size, "key_size")
        self.W = nn.Linear(key_size, query_size, bias=False)  # k -> W k, (d_k) -> (d_q)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        _check_queries_keys(queries, keys, same_features=False)
        check_module_input(queries, "queries", self, self.query_size, "query_size")
        check_module_input(keys, "keys", self, self.key_size, "key_size")
        projected = self.W(keys)  # (..., S, d_k) -> (..., S, d_q)
        return queries @ projected.transpose(-2, -1)  # (..., T, d_q) @ (..., d_q, S)


class AdditiveScore(nn.Module):
    """Bahdanau's additive (concat) score: w_v^T tanh(W_q q + W_k k), a one-hidden-layer MLP.

    Builds a (..., T, S, hidden) tensor: memory grows with T * S * hidden.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int):
        super().__init__()
        self.query_size = check_positive_int(query_size, "query_size")
        self.key_size = check_positive_int(key_size, "key_size")
        check_positive_int(hidden_size, "hidden_size")
        self.W_q = nn.Linear(query_size, hidden_size, bias=False)
        self.W_k = nn.Linear(key_size, hidden_size, bias=False)
        self.w_v = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        _check_queries_keys(queries, keys, same_features=False)
        check_module_input(queries, "queries", self, self.query_size, "query_size")
        check_module_input(keys, "keys", self, self.key_size, "key_size")
        q = self.W_q(queries).unsqueeze(-2)  # (..., T, 1, h)
        k = self.W_k(keys).unsqueeze(-3)  # (..., 1, S, h)
        return self.w_v(torch.tanh(q + k)).squeeze(-1)  # (..., T, S, h) -> (..., T, S)


class LocationScore(nn.Module):
    """Luong's *location-based* score: W_a q, one score per key position, keys unseen.

    The query alone decides where to look, so it can attend to at most ``max_len``
    positions; keys only set how many (S) are used.
    """

    def __init__(self, query_size: int, max_len: int):
        super().__init__()
        self.query_size = check_positive_int(query_size, "query_size")
        check_positive_int(max_len, "max_len")
        self.W_a = nn.Linear(query_size, max_len, bias=False)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        _check_queries_keys(queries, keys, same_features=False)
        check_module_input(queries, "queries", self, self.query_size, "query_size")
        S = keys.shape[-2]
        if S > self.W_a.out_features:
            raise ValueError(f"LocationScore was built for at most {self.W_a.out_features} "
                             f"keys, got S = {S}")
        return self.W_a(queries)[..., :S]  # (..., T, d_q) -> (..., T, max_len) -> (..., T, S)
