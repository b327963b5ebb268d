"""Chapter 1: dot products, cosine similarity and score matrices.

Every function takes ``torch.Tensor`` arguments (a NumPy array is refused with a
``TypeError`` that says to convert it with ``torch.as_tensor``).
"""

import torch

from attnbook.shapes import (
    check_nonempty,
    check_not_nan,
    check_positive_int,
    check_same_dtype,
    check_shape,
    check_tensor,
)


def _check_vectors(a, b, names=("a", "b"), min_dim: int = 1) -> None:
    for x, name in zip((a, b), names, strict=True):
        check_tensor(x, name, "float")
        if x.dim() < min_dim:
            what = "a vector" if min_dim == 1 else "(..., length, features)"
            raise ValueError(f"{name} should have at least {min_dim} dimension(s), "
                             f"{what}; got shape {tuple(x.shape)}")
    check_same_dtype((a, names[0]), (b, names[1]))


def _check_eps(eps) -> None:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0:
        raise ValueError(f"eps should be a small positive number, got {eps!r}")


def _check_features(x, name: str) -> None:
    check_nonempty(x, name, dim=-1, what="features (d = 0)",
                   why="a vector without entries has no direction, so no cosine")


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine of the angle between ``a`` and ``b`` along the last axis: (..., d), (..., d) -> (...).

    ``eps`` keeps a zero vector from dividing by zero (its similarity is then 0).
    Vectors with no entries (d = 0) have no angle: refused.
    """
    _check_vectors(a, b)
    _check_eps(eps)
    _check_features(a, "a")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a and b should have the same last dimension d, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ValueError(f"a and b should have shapes that broadcast, e.g. (n, d) and (d,); "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}") from None
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)


def score_matrix(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Every query against every key by dot product: (..., T, d), (..., S, d) -> (..., T, S)."""
    _check_vectors(queries, keys, ("queries", "keys"), min_dim=2)
    lead = tuple(f"batch{i}" for i in range(queries.dim() - 2))  # same batch dims for both
    dims = check_shape(queries, (*lead, "T", "d"), "queries")
    check_shape(keys, (*lead, "S", "d"), "keys", dims)
    return queries @ keys.transpose(-2, -1)  # (..., T, d) @ (..., d, S) -> (..., T, S)


def pairwise_cosine(queries: torch.Tensor, keys: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of every query with every key: (..., T, d), (..., S, d) -> (..., T, S)."""
    _check_vectors(queries, keys, ("queries", "keys"), min_dim=2)
    _check_eps(eps)
    _check_features(queries, "queries")
    q = queries / queries.norm(dim=-1, keepdim=True).clamp_min(eps)
    k = keys / keys.norm(dim=-1, keepdim=True).clamp_min(eps)
    return score_matrix(q, k)


def nearest_neighbours(query: torch.Tensor, table: torch.Tensor, k: int = 1,
                       exclude: int | None = None) -> torch.Tensor:
    """Indices of the ``k`` rows of ``table`` (n, d) most cosine-similar to ``query`` (d,).

    ``exclude`` drops one row (e.g. the query's own word) from the candidates. A ``nan``
    in ``query`` or ``table``, or a zero ``query`` (no direction: every cosine is 0),
    raises ``ValueError``: it would make the ranking arbitrary.
    """
    _check_vectors(query, table, ("query", "table"))
    dims = check_shape(table, ("n", "d"), "table")
    check_shape(query, ("d",), "query", dims)
    check_not_nan(query, "query")
    check_not_nan(table, "table")
    _check_features(query, "query")
    if not query.any():
        raise ValueError("query is the zero vector: it has no direction, so its cosine "
                         "with every row is 0 and any ranking would be arbitrary")
    check_positive_int(k, "k")
    if exclude is not None:
        check_positive_int(exclude, "exclude", minimum=0)
        if exclude >= dims["n"]:
            raise ValueError(f"exclude should be a row of table, 0 .. {dims['n'] - 1}, "
                             f"got {exclude}")
    if not k <= dims["n"] - (exclude is not None):
        raise ValueError(f"k should be between 1 and the number of candidates, got {k}")
    sims = cosine_similarity(query[None, :], table)  # (n,)
    if exclude is not None:
        sims = sims.clone()
        sims[exclude] = -torch.inf
    return sims.topk(k).indices
