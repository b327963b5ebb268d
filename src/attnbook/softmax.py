"""Softmax, log-softmax, log-sum-exp and entropy, as taught in chapter 2.

Every function works on a ``numpy.ndarray`` or a ``torch.Tensor`` (and returns the
same kind), over any ``axis`` (default: the last one, the keys of a (T, S) score
matrix), and is numerically stable: the row maximum is subtracted before ``exp``,
so logits of +-1e4 give finite weights where the naive formula gives ``nan``.

Conventions, chosen once for the whole book:

- ``-inf`` entries (masked positions) get weight exactly 0.
- A row whose entries are *all* ``-inf`` (every key masked) has no distribution;
  its softmax is all zeros, not ``nan`` -- the same rule as
  ``attnbook.attention.masked_softmax`` -- its ``log_softmax`` is all ``-inf``
  (the log of those zeros) and its ``logsumexp`` is ``-inf`` (the log of an empty sum).
  Gradients through such a row are 0, never ``nan``. An axis of length 0 gives
  an empty softmax and a ``logsumexp`` of ``-inf`` (nothing to sum).
- ``nan`` or ``+inf`` logits raise ``ValueError``: they are bugs upstream, and
  passing them on would fill the weights with ``nan`` without a word.
- ``entropy`` uses ``0 log 0 = 0`` and takes the base of the logarithm
  (``math.e`` -> nats, ``2`` -> bits).
"""

import math

import numpy as np
import torch

from attnbook.shapes import check_float

Array = np.ndarray | torch.Tensor


def _check_logits(x, axis: int, name: str) -> None:
    check_float(x, name)
    if x.ndim == 0:
        raise ValueError(f"{name} should have at least 1 dimension to normalise over, got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"axis should be an int, got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for {name} of shape {tuple(x.shape)}")
    bad = (x != x) | (x == math.inf)  # nan or +inf, in one pass for NumPy and torch alike
    if bad.any():
        bad = bad.cpu().numpy() if isinstance(bad, torch.Tensor) else bad
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} contains nan or +inf (first at index {where}); softmax is "
                         "undefined there -- look for an overflow or a division by zero upstream")


def _shifted(x, axis: int):
    """``x - m`` and ``m``, with ``m`` the maximum along ``axis`` (0 for an all--inf row)."""
    if x.shape[axis] == 0:  # no entries: nothing to shift, m = 0 like an all -inf row
        m = x.sum(axis, keepdims=True) if isinstance(x, np.ndarray) else x.sum(axis, True)
        return x, m
    if isinstance(x, torch.Tensor):
        m = x.amax(dim=axis, keepdim=True)  # (..., 1, ...)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    else:
        m = x.max(axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype)
    return x - m, m


def _sum_exp(shifted, axis: int):
    """``sum(exp(shifted))`` along ``axis`` (keepdim): >= 1 unless the row is all -inf (then 0)."""
    if isinstance(shifted, torch.Tensor):
        return shifted.exp().sum(dim=axis, keepdim=True)
    return np.exp(shifted).sum(axis=axis, keepdims=True)


def _nonzero(s):
    """``s`` with zeros replaced by ones, so that ``0 / s`` and ``log s`` stay finite."""
    if isinstance(s, torch.Tensor):
        return torch.where(s > 0, s, torch.ones_like(s))
    return np.where(s > 0, s, 1.0).astype(s.dtype)


def _scale(x, temperature: float):
    if not isinstance(temperature, int | float) or isinstance(temperature, bool) \
            or not 0 < temperature < math.inf:
        raise ValueError(f"temperature should be a positive finite number, got {temperature!r}")
    return x if temperature == 1 else x / temperature


def softmax(x: Array, axis: int = -1, temperature: float = 1.0) -> Array:
    """``exp(x / temperature)`` normalised along ``axis``: weights >= 0 that sum to 1.

    x (..., S) -> weights (..., S) for the default ``axis=-1``. Stable for any finite
    logits; an all ``-inf`` row gives all zeros (see the module docstring).
    """
    _check_logits(x, axis, "x")
    shifted, _ = _shifted(_scale(x, temperature), axis)
    e = shifted.exp() if isinstance(shifted, torch.Tensor) else np.exp(shifted)
    return e / _nonzero(_sum_exp(shifted, axis))


def log_softmax(x: Array, axis: int = -1, temperature: float = 1.0) -> Array:
    """``log(softmax(x))`` computed without forming the softmax: ``x - logsumexp(x)``.

    Exact where ``softmax`` underflows to 0 (a logit 1000 below the maximum gives
    -1000, not -inf). An all ``-inf`` row gives all ``-inf``.
    """
    _check_logits(x, axis, "x")
    shifted, _ = _shifted(_scale(x, temperature), axis)
    s = _nonzero(_sum_exp(shifted, axis))
    return shifted - (s.log() if isinstance(s, torch.Tensor) else np.log(s))


def logsumexp(x: Array, axis: int = -1) -> Array:
    """``log(sum(exp(x)))`` along ``axis`` (removed), as ``m + log(sum(exp(x - m)))``.

    x (..., S) -> (...). ``-inf`` for an all ``-inf`` row.
    """
    _check_logits(x, axis, "x")
    shifted, m = _shifted(x, axis)
    s = _sum_exp(shifted, axis)
    if isinstance(x, torch.Tensor):
        out = m + torch.where(s > 0, _nonzero(s).log(), torch.full_like(s, -math.inf))
        return out.squeeze(axis)
    out = m + np.where(s > 0, np.log(_nonzero(s)), -np.inf)
    return out.squeeze(axis)


def entropy(p: Array, axis: int = -1, base: float = math.e) -> Array:
    """Entropy ``-sum p log p`` along ``axis`` (removed), in units set by ``base``.

    p (..., S) -> (...). ``base=math.e`` gives nats, ``base=2`` bits. Uses
    ``0 log 0 = 0``, so a one-hot row has entropy 0 and a uniform row over S
    entries has ``log S``. ``p`` is not renormalised: pass weights that sum to 1
    (an all-zero row, from a fully masked softmax, has entropy 0; a row summing to
    less than 1 is taken as it is). Negative, ``nan`` or above-1 entries raise
    ``ValueError`` -- did you pass scores or counts instead of weights? The gradient
    is finite everywhere, 0 at an entry that is exactly 0.
    """
    check_float(p, "p")
    if p.ndim == 0:
        raise ValueError("p should have at least 1 dimension (a distribution), got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"axis should be an int, got {axis!r}")
    if not -p.ndim <= axis < p.ndim:
        raise ValueError(f"axis {axis} is out of range for p of shape {tuple(p.shape)}")
    if not isinstance(base, int | float) or isinstance(base, bool) \
            or not 0 < base < math.inf or base == 1:
        raise ValueError(f"base should be a positive number other than 1 (e.g. 2 or math.e), "
                         f"got {base!r}")
    if not (p >= 0).all():
        raise ValueError("p has negative or nan entries; entropy needs probabilities "
                         "(softmax the scores first)")
    if (p > 1 + 1e-6).any():
        raise ValueError(f"p has entries above 1 (largest {float(p.max()):.4g}); entropy needs "
                         "probabilities -- counts? divide them by their sum first")
    if isinstance(p, torch.Tensor):
        # xlogy(p, p) with log(1) = 0 where p = 0: 0 log 0 = 0, and the gradient at an
        # exact 0 is 0, not nan (torch.special.entr's gradient there is nan)
        safe = torch.where(p > 0, p, torch.ones_like(p))
        h = -torch.special.xlogy(p, safe).sum(dim=axis)
    else:
        safe = np.where(p > 0, p, 1.0)  # log(1) = 0 puts the 0 log 0 = 0 rule in place
        h = -(p * np.log(safe)).sum(axis=axis)
    return h if base == math.e else h / math.log(base)


__all__ = ["entropy", "log_softmax", "logsumexp", "softmax"]
