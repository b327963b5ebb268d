"""Nadaraya–Watson kernel regression as taught in chapter 3: attention pooling with a kernel.

The prediction at a query x is a weighted average of the training targets y_i,

    f(x) = sum_i alpha(x, x_i) y_i,   alpha(x, x_i) = K((x - x_i) / h) / sum_j K((x - x_j) / h),

with a kernel K and a bandwidth h. In the words of attention: the query is x, the
keys are the training inputs x_i, the values are the targets y_i, and alpha are
the attention weights.

Shapes (``book/notation.md``): scalar inputs are queries (T,) and keys (S,); vector
inputs are queries (..., T, d) and keys (..., S, d). Values are (..., S) (one number
per key) or (..., S, d_v). Weights are (..., T, S); predictions have the values'
shape with S replaced by T.

A query with no training point inside a compact kernel's window (boxcar or
Epanechnikov with a small h) would give 0 / 0. Here it gets weight 1 on its nearest
training point (shared equally on a tie): the estimate at the smallest bandwidth
whose window is not empty. The same holds for the Gaussian where h is so small that
h**2 underflows to 0 (every key at distance > 0 is then infinitely far), and a query
on a training point stays at distance 0 for any h. No ``nan`` ever comes out of
finite inputs.

Arguments are ``torch.Tensor``s of one floating-point dtype (NumPy arrays and lists are
refused with a ``TypeError`` naming the argument). A ``nan`` or ``inf`` in the queries
or keys, and a ``nan`` in the squared distances, raises ``ValueError`` (a compact
kernel's window would silently drop it); so do negative squared distances and an empty
set of keys (no training point to average). A ``nan`` in the values is passed on to
the predictions it touches.
"""

import torch

from attnbook.attention import masked_softmax
from attnbook.shapes import (
    check_float,
    check_not_nan,
    check_same_dtype,
    check_shape,
    check_tensor,
)

KERNELS = ("gaussian", "boxcar", "epanechnikov")


def kernel_values(u2: torch.Tensor, kernel: str = "gaussian") -> torch.Tensor:
    """K(u) from the squared scaled distance u^2 = |x - x_i|^2 / h^2 (taking u^2 avoids a sqrt).

    gaussian: exp(-u^2 / 2) / sqrt(2 pi); boxcar: 1/2 for |u| <= 1; epanechnikov:
    3/4 (1 - u^2) for |u| <= 1. The constants make each a density on the line; they
    cancel in the Nadaraya–Watson weights.
    """
    _check_squared(u2, "u2")
    if kernel == "gaussian":
        return torch.exp(-u2 / 2) / (2 * torch.pi) ** 0.5
    if kernel == "boxcar":
        return 0.5 * (u2 <= 1).to(u2.dtype)
    if kernel == "epanechnikov":
        return 0.75 * (1 - u2).clamp(min=0)
    raise ValueError(f"kernel should be one of {KERNELS}, got {kernel!r}")


def squared_distances(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """|q_t - k_s|^2 for every pair: (..., T, d), (..., S, d) -> (..., T, S)."""
    for x, name in ((queries, "queries"), (keys, "keys")):
        check_tensor(x, name, "float")
        if x.dim() < 2:
            raise ValueError(f"{name} should have at least 2 dimensions (length, features); "
                             f"for numbers use {name}[:, None]; got shape {tuple(x.shape)}")
    check_same_dtype((queries, "queries"), (keys, "keys"))
    if queries.shape[:-2] != keys.shape[:-2] or queries.shape[-1] != keys.shape[-1]:
        raise ValueError(f"queries (..., T, d) and keys (..., S, d) should share their batch "
                         f"dimensions and d; got shapes {tuple(queries.shape)} and "
                         f"{tuple(keys.shape)}")
    diff = queries[..., :, None, :] - keys[..., None, :, :]  # (..., T, S, d)
    return (diff**2).sum(-1)  # exact (no cancellation as in |q|^2 + |k|^2 - 2 q.k)


def _check_squared(d2, name: str) -> None:
    """Squared distances: a float tensor, no nan, nothing negative."""
    check_tensor(d2, name, "float")
    check_not_nan(d2, name)
    if (d2 < 0).any():
        raise ValueError(f"{name} holds negative values (smallest {float(d2.min()):.3g}); "
                         f"squared distances are >= 0 -- compute them with "
                         f"squared_distances(queries, keys)")


def _as_vectors(queries, keys, values, names=("queries", "keys", "values")):
    """Scalar inputs (T,), (S,) become (T, 1), (S, 1); check every shape."""
    for x, name in zip((queries, keys, values), names, strict=True):
        check_tensor(x, name, "float")
    check_same_dtype(*zip((queries, keys, values), names, strict=True))
    for x, name in ((queries, names[0]), (keys, names[1])):
        if not torch.isfinite(x).all():
            check_not_nan(x, name)  # says where the nan is
            raise ValueError(f"{name} contains inf: a point at infinity has no distance "
                             f"to the others")
    if queries.dim() == 1 and keys.dim() == 1:
        queries, keys = queries[:, None], keys[:, None]
    if queries.dim() < 2 or queries.dim() != keys.dim():
        raise ValueError(f"{names[0]} and {names[1]} should be (T,) and (S,) numbers or "
                         f"(..., T, d) and "
                         f"(..., S, d) vectors; got shapes {tuple(queries.shape)} and "
                         f"{tuple(keys.shape)}")
    lead = (None,) * (queries.dim() - 2)
    dims = check_shape(queries, (*lead, "T", "d"), names[0])
    dims = check_shape(keys, (*lead, "S", "d"), names[1], dims)
    if values.dim() not in (keys.dim() - 1, keys.dim()):
        raise ValueError(f"{names[2]} should be (..., S) or (..., S, d_v) for {names[1]} of "
                         f"shape {tuple(keys.shape)}, got shape {tuple(values.shape)}")
    scalar_values = values.dim() == keys.dim() - 1
    check_shape(values, (*lead, "S") if scalar_values else (*lead, "S", None), names[2], dims)
    if dims["S"] == 0:
        raise ValueError(f"{names[1]} is empty (S = 0): a prediction needs at least one "
                         f"training point")
    return queries, keys, values, scalar_values


def _check_bandwidth(bandwidth) -> torch.Tensor | float:
    if isinstance(bandwidth, torch.Tensor):
        check_float(bandwidth, "bandwidth")
        if not (bandwidth > 0).all():
            raise ValueError(f"bandwidth must be > 0, got {bandwidth.detach().flatten()[:5]}")
        return bandwidth
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, int | float):
        raise TypeError(f"bandwidth should be a number or a tensor, got {type(bandwidth).__name__}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    return float(bandwidth)


def _nearest(d2, allowed):
    """Weight 1 on each row's nearest allowed key, shared equally on a tie."""
    closest = d2.masked_fill(~allowed, torch.inf).amin(-1, keepdim=True)
    nearest = ((d2 == closest) & allowed).to(d2.dtype)
    return nearest / nearest.sum(-1, keepdim=True).clamp(min=1)


def kernel_weights(d2: torch.Tensor, bandwidth, kernel: str = "gaussian",
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention weights (..., T, S) from squared distances (..., T, S); rows sum to 1.

    ``bandwidth``: a number, or a tensor broadcastable to (..., T, S) (e.g. (T, 1), one
    per query), which may require grad. ``mask``: boolean, True where a query may use
    a key (e.g. ``~eye`` to leave each point out). Rows where every key is masked get
    all-zero weights.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel should be one of {KERNELS}, got {kernel!r}")
    _check_squared(d2, "d2")
    if d2.dim() == 0 or d2.shape[-1] == 0:
        raise ValueError(f"d2 should be (..., T, S) squared distances with S >= 1 keys, "
                         f"got shape {tuple(d2.shape)}")
    if mask is not None:
        check_tensor(mask, "mask", "bool")
        try:
            torch.broadcast_to(mask, d2.shape)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to d2 of "
                             f"shape {tuple(d2.shape)}") from None
    h = _check_bandwidth(bandwidth)
    allowed = torch.ones_like(d2, dtype=torch.bool) if mask is None else mask.expand_as(d2)
    zero = torch.zeros((), dtype=d2.dtype, device=d2.device)
    if kernel == "gaussian":  # a softmax of -d^2 / (2 h^2): stable even for a tiny h
        # d2 = 0 stays 0 when h**2 underflows to 0 (else 0 / 0); d2 > 0 becomes -inf
        logits = torch.where(d2 == 0, zero, -d2 / (2 * h**2))
        weights = masked_softmax(logits, mask=mask)  # a row with no key in reach: zeros
        empty = weights.sum(-1, keepdim=True) == 0  # small: look before mending
        if bool(empty.any()):
            weights = torch.where(empty, _nearest(d2, allowed), weights)
        return weights
    raw = kernel_values(torch.where(d2 == 0, zero, d2 / h**2), kernel)  # (..., T, S)
    raw = raw * allowed
    empty = raw.sum(-1, keepdim=True) == 0  # no key inside the window: fall back to the nearest
    closest = d2.masked_fill(~allowed, torch.inf).amin(-1, keepdim=True)
    nearest = (d2 == closest) & allowed
    raw = torch.where(empty, nearest.to(raw.dtype), raw)
    return raw / raw.sum(-1, keepdim=True).clamp(min=torch.finfo(raw.dtype).tiny)


def nadaraya_watson(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                    bandwidth=1.0, kernel: str = "gaussian",
                    mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nadaraya–Watson predictions at every query at once; returns ``(predictions, weights)``.

    queries (T,) or (..., T, d); keys (S,) or (..., S, d); values (..., S) or
    (..., S, d_v) -> predictions (..., T) or (..., T, d_v), weights (..., T, S).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel should be one of {KERNELS}, got {kernel!r}")
    q, k, v, scalar_values = _as_vectors(queries, keys, values)
    weights = kernel_weights(squared_distances(q, k), bandwidth, kernel, mask)  # (..., T, S)
    if scalar_values:
        return (weights @ v[..., None]).squeeze(-1), weights  # (..., T), (..., T, S)
    return weights @ v, weights  # (..., T, S) @ (..., S, d_v) -> (..., T, d_v)


def loo_predictions(x: torch.Tensor, y: torch.Tensor, bandwidth=1.0,
                    kernel: str = "gaussian") -> tuple[torch.Tensor, torch.Tensor]:
    """Leave-one-out: predict each training point from all the others.

    x (S,) or (..., S, d), y (..., S) or (..., S, d_v); the weights (..., S, S) have a
    zero diagonal. Returns ``(predictions, weights)``.
    """
    check_tensor(x, "x", "float")
    check_tensor(y, "y", "float")
    if x.dim() == 0:
        raise ValueError("x should be (S,) numbers or (..., S, d) vectors, got a scalar")
    S = x.shape[0] if x.dim() == 1 else x.shape[-2]
    if S < 2:
        raise ValueError(f"x has {S} points; leave-one-out needs at least 2")
    others = ~torch.eye(S, dtype=torch.bool, device=x.device)  # (S, S): not yourself
    if kernel not in KERNELS:
        raise ValueError(f"kernel should be one of {KERNELS}, got {kernel!r}")
    q, k, v, scalar_values = _as_vectors(x, x, y, names=("x", "x", "y"))
    weights = kernel_weights(squared_distances(q, k), bandwidth, kernel, others)  # (..., S, S)
    if scalar_values:
        return (weights @ v[..., None]).squeeze(-1), weights  # (..., S), (..., S, S)
    return weights @ v, weights


def loo_error(x: torch.Tensor, y: torch.Tensor, bandwidth=1.0,
              kernel: str = "gaussian") -> torch.Tensor:
    """Mean squared leave-one-out error (a scalar tensor, differentiable in the bandwidth)."""
    predictions, _ = loo_predictions(x, y, bandwidth, kernel)
    return ((predictions - y) ** 2).mean()


def select_bandwidth_loo(x: torch.Tensor, y: torch.Tensor, bandwidths,
                         kernel: str = "gaussian") -> tuple[float, torch.Tensor]:
    """The bandwidth with the smallest LOO error, and the errors (K,) for all K candidates."""
    if isinstance(bandwidths, str) or not hasattr(bandwidths, "__iter__"):
        raise TypeError(f"bandwidths should be a list (or tensor) of candidate numbers, "
                        f"got {bandwidths!r}")
    candidates = []
    for h in bandwidths:
        if isinstance(h, bool) or not isinstance(h, int | float | torch.Tensor):
            raise TypeError(f"bandwidths should hold numbers, got {h!r}")
        candidates.append(float(h))
    if not candidates:
        raise ValueError("bandwidths is empty: give at least one candidate")
    errors = torch.stack([loo_error(x, y, h, kernel).detach() for h in candidates])  # (K,)
    return candidates[int(torch.argmin(errors))], errors
