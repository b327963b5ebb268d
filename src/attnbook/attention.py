"""Attention as taught in chapter 4: masks, masked softmax, scaled dot-product attention.

Shapes (``book/notation.md``): queries (..., T, d), keys (..., S, d),
values (..., S, d_v), scores and weights (..., T, S). A boolean ``mask`` is
True where a query may attend to a key, as in PyTorch's
``scaled_dot_product_attention``.
"""

import torch

from attnbook.shapes import check_float, check_shape


def causal_mask(T: int, S: int | None = None, device=None) -> torch.Tensor:
    """(T, S) boolean mask, True where key j <= query i: nobody looks into the future."""
    S = T if S is None else S
    return torch.ones(T, S, dtype=torch.bool, device=device).tril()


def padding_mask(valid_lens: torch.Tensor, S: int) -> torch.Tensor:
    """(..., S) boolean mask from valid lengths (...,): True at key positions < valid_len."""
    if valid_lens.is_floating_point() or valid_lens.dtype == torch.bool:
        raise TypeError(f"valid_lens should hold integers, got dtype {valid_lens.dtype}")
    if (valid_lens < 0).any() or (valid_lens > S).any():
        raise ValueError(f"valid_lens must lie in [0, {S}], got {valid_lens.tolist()}")
    positions = torch.arange(S, device=valid_lens.device)
    return positions < valid_lens[..., None]


def _keep_mask(scores, valid_lens, mask):
    """Combine valid lengths and a boolean mask into one mask broadcastable to ``scores``."""
    keep = None
    if valid_lens is not None:
        lead = scores.shape[:-1]
        if valid_lens.shape != lead[: valid_lens.dim()]:
            raise ValueError(f"valid_lens should have shape {tuple(lead[:1])} or "
                             f"{tuple(lead)} (leading dimensions of scores {tuple(scores.shape)}),"
                             f" got {tuple(valid_lens.shape)}")
        pad = padding_mask(valid_lens, scores.shape[-1])  # (*lead[:k], S)
        extra = len(lead) - valid_lens.dim()
        keep = pad.reshape(*valid_lens.shape, *([1] * extra), scores.shape[-1])
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask should be boolean (True = may attend), got {mask.dtype}")
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
    query contributes nothing and its gradient stays finite.
    """
    check_float(scores, "scores")
    keep = _keep_mask(scores, valid_lens, mask)
    if keep is None:
        return torch.softmax(scores, dim=-1)
    # A finite fill (not -inf): a fully-masked row then gives a finite softmax that we zero.
    filled = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1).masked_fill(~keep, 0.0)


def scaled_dot_product_attention(queries: torch.Tensor, keys: torch.Tensor,
                                 values: torch.Tensor, mask: torch.Tensor | None = None,
                                 valid_lens: torch.Tensor | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d)) V with optional masks; returns ``(output, weights)``.

    queries (..., T, d), keys (..., S, d), values (..., S, d_v) ->
    output (..., T, d_v), weights (..., T, S).
    """
    for x, name in ((queries, "queries"), (keys, "keys"), (values, "values")):
        check_float(x, name)
        if x.dim() < 2:
            raise ValueError(f"{name} should have at least 2 dimensions (length, features), "
                             f"got shape {tuple(x.shape)}")
    lead = (None,) * (queries.dim() - 2)
    dims = check_shape(queries, (*lead, "T", "d"), "queries")
    dims = check_shape(keys, (*lead, "S", "d"), "keys", dims)
    check_shape(values, (*lead, "S", None), "values", dims)
    if queries.shape[:-2] != keys.shape[:-2] or keys.shape[:-2] != values.shape[:-2]:
        raise ValueError(f"queries, keys and values should share their batch dimensions; got "
                         f"{tuple(queries.shape)}, {tuple(keys.shape)}, {tuple(values.shape)}")
    d = queries.shape[-1]
    scores = queries @ keys.transpose(-2, -1) / d**0.5  # (..., T, d) @ (..., d, S) -> (..., T, S)
    weights = masked_softmax(scores, valid_lens=valid_lens, mask=mask)  # rows sum to 1
    return weights @ values, weights  # (..., T, d_v), (..., T, S)
