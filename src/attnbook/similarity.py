"""Chapter 1: dot products, cosine similarity and score matrices."""

import torch

from attnbook.shapes import check_float, check_shape


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine of the angle between ``a`` and ``b`` along the last axis: (..., d), (..., d) -> (...).

    ``eps`` keeps a zero vector from dividing by zero (its similarity is then 0).
    """
    check_float(a, "a")
    check_float(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a and b should have the same last dimension d, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)


def score_matrix(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Every query against every key by dot product: (..., T, d), (..., S, d) -> (..., T, S)."""
    check_float(queries, "queries")
    check_float(keys, "keys")
    lead = tuple(f"batch{i}" for i in range(queries.dim() - 2))  # same batch dims for both
    dims = check_shape(queries, (*lead, "T", "d"), "queries")
    check_shape(keys, (*lead, "S", "d"), "keys", dims)
    return queries @ keys.transpose(-2, -1)  # (..., T, d) @ (..., d, S) -> (..., T, S)


def pairwise_cosine(queries: torch.Tensor, keys: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of every query with every key: (..., T, d), (..., S, d) -> (..., T, S)."""
    q = queries / queries.norm(dim=-1, keepdim=True).clamp_min(eps)
    k = keys / keys.norm(dim=-1, keepdim=True).clamp_min(eps)
    return score_matrix(q, k)


def nearest_neighbours(query: torch.Tensor, table: torch.Tensor, k: int = 1,
                       exclude: int | None = None) -> torch.Tensor:
    """Indices of the ``k`` rows of ``table`` (n, d) most cosine-similar to ``query`` (d,).

    ``exclude`` drops one row (e.g. the query's own word) from the candidates.
    """
    dims = check_shape(table, ("n", "d"), "table")
    check_shape(query, ("d",), "query", dims)
    if not 1 <= k <= dims["n"] - (exclude is not None):
        raise ValueError(f"k should be between 1 and the number of candidates, got {k}")
    sims = cosine_similarity(query[None, :], table)  # (n,)
    if exclude is not None:
        sims = sims.clone()
        sims[exclude] = -torch.inf
    return sims.topk(k).indices
