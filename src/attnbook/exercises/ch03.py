"""Checkers for chapter 3: attention pooling applied to cases the chapter did not show.

1. Nadaraya–Watson regression with vector inputs and one bandwidth per dimension.
2. The bandwidth sigma at which the nearest training point gets a share p of the weight.
3. Gaussian-kernel weights computed from dot products when the keys have unequal norms.

The Gaussian kernel is K(u) = exp(-u^2 / (2 sigma^2)): the softmax temperature is 2 sigma^2.
"""

import math

import torch

from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function, make_compare


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _naive_softmax(scores):
    e = scores.exp()
    return e / e.sum(-1, keepdim=True)


# --- 1. Nadaraya-Watson with vector inputs and a bandwidth per dimension -------------


def _vector_scores(xq, xt, sigma, power=2.0, factor=2.0):
    diff = xq[:, None, :] - xt[None, :, :]  # (T, 1, d) - (1, S, d) -> (T, S, d)
    return -(diff**2 / sigma**power).sum(-1) / factor  # (T, S)


def _nw_vector(x_query, x_train, y_train, sigma):
    weights = torch.softmax(_vector_scores(x_query, x_train, sigma), dim=-1)  # (T, S)
    return weights @ y_train  # (T,)


def _vec_case(seed, T, S, sigma, label, shift=0.0):
    g = _gen(seed)
    d = len(sigma)
    x_train = 4 * torch.rand(S, d, generator=g)
    y_train = torch.sin(x_train[:, 0]) + 0.2 * torch.randn(S, generator=g)
    x_query = 4 * torch.rand(T, d, generator=g) + shift
    return Case((x_query, x_train, y_train, torch.tensor(sigma)), label=label)


_VEC_CASES = [
    _vec_case(0, 4, 7, [0.5, 3.0], "d=2, sigma = (0.5, 3.0): one narrow, one wide dimension"),
    _vec_case(1, 5, 9, [0.4, 0.8, 1.5], "d=3, T=5, S=9"),
    _vec_case(2, 3, 6, [0.7], "d=1: the chapter's one-dimensional case"),
    _vec_case(3, 3, 8, [0.2, 100.0], "a second dimension with sigma = 100 (almost ignored)"),
    _vec_case(4, 3, 5, [0.1, 0.1], "queries far from every key (shifted by 30), sigma 0.1",
              shift=30.0),
    _vec_case(5, 1, 1, [0.5, 2.0], "one query, one training point"),
]

_VEC_MISTAKES = [
    Mistake("divided by sigma, not sigma^2", "each dimension's squared difference is "
            "divided by that dimension's sigma squared: (x_j - x_ij)^2 / sigma_j^2.",
            wrong=lambda q, x, y, s: torch.softmax(_vector_scores(q, x, s, 1.0), -1) @ y),
    Mistake("dropped the factor 2", "the exponent is -sum_j (x_j - x_ij)^2 / (2 sigma_j^2): "
            "the temperature of the softmax is 2 sigma^2, not sigma^2.",
            wrong=lambda q, x, y, s: torch.softmax(_vector_scores(q, x, s, 2.0, 1.0), -1) @ y),
    Mistake("normalised over the queries (wrong axis)", "each query's weights sum to 1 over "
            "the training points: softmax along dim=-1 of the (T, S) scores.",
            wrong=lambda q, x, y, s: torch.softmax(_vector_scores(q, x, s), 0) @ y),
    Mistake("one bandwidth for every dimension", "sigma has one entry per dimension: divide "
            "dimension j by sigma_j (broadcast sigma over the last axis), not by one number.",
            wrong=lambda q, x, y, s: torch.softmax(
                _vector_scores(q, x, s[:1].expand_as(s)), -1) @ y),
    Mistake("did not normalise the weights", "divide the kernel values by their sum over "
            "the training points: the prediction is an average, not a sum.",
            wrong=lambda q, x, y, s: _vector_scores(q, x, s).exp() @ y),
    Mistake("0 / 0 after exp underflowed", "far from every training point every exp(...) "
            "rounds to 0. Subtract each row's largest score before exp (torch.softmax "
            "does that for you).",
            wrong=lambda q, x, y, s: _naive_softmax(_vector_scores(q, x, s)) @ y),
]


def check_nw_vector(fn) -> CheckResult:
    """``fn(x_query (T, d), x_train (S, d), y_train (S,), sigma (d,)) -> (T,)``."""
    return check_function(fn, exercise="NW with a bandwidth per dimension",
                          reference=_nw_vector, cases=_VEC_CASES, mistakes=_VEC_MISTAKES)


# --- 2. the bandwidth at which the nearest point gets a share p ----------------------


def _nearest_share(query, x_train, sigma, distance=lambda d: d**2):
    d = distance((torch.as_tensor(query, dtype=torch.float64) - x_train.double()).abs())
    weights = torch.softmax(-d / (2 * sigma**2), dim=-1)  # (S,)
    return float(weights[int(d.argmin())])


def _bisect_sigma(query, x_train, p, distance=lambda d: d**2):
    lo, hi = 1e-6, 1e6  # the share falls from 1 (sigma -> 0) to 1/S (sigma -> infinity)
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if _nearest_share(query, x_train, mid, distance) > p:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _half_weight_sigma(query, x_train, p):
    return _bisect_sigma(query, x_train, p)


_HALF_CASES = [
    Case((1.0, torch.tensor([0.8, 2.0, 3.5, 4.0]), 0.5), label="query 1.0, S=4, p = 0.5"),
    Case((0.0, torch.tensor([1.0, -2.0]), 0.75), label="two points, p = 0.75 (a closed form)"),
    Case((2.5, torch.tensor([0.0, 1.0, 2.2, 3.0, 4.0, 5.0, 6.5]), 0.9),
         label="S=7 (odd), p = 0.9"),
    Case((3.0, torch.tensor([3.0, 3.4, 5.0]), 0.5), label="the query sits on a training point"),
    Case((1000.0, torch.tensor([0.0, 1.0, 2.5, 4.0, 5.0]), 0.5),
         label="a query far from the data (1000 vs 0 .. 5)"),
]

_HALF_MISTAKES = [
    Mistake("returned the temperature 2 sigma^2, not sigma",
            "the softmax temperature is 2 sigma^2; the exercise asks for sigma itself.",
            wrong=lambda q, x, p: 2 * _half_weight_sigma(q, x, p) ** 2),
    Mistake("returned sigma^2, not sigma", "take the square root: the bandwidth is a "
            "standard deviation, sigma, not the variance sigma^2.",
            wrong=lambda q, x, p: _half_weight_sigma(q, x, p) ** 2),
    Mistake("dropped the factor 2 in the kernel", "with exp(-d^2 / sigma^2) your sigma comes "
            "out sqrt(2) times too large: the kernel is exp(-d^2 / (2 sigma^2)).",
            wrong=lambda q, x, p: math.sqrt(2) * _half_weight_sigma(q, x, p)),
    Mistake("used |x - x_i| instead of its square", "the Gaussian kernel uses the squared "
            "distance (x - x_i)^2.",
            wrong=lambda q, x, p: _bisect_sigma(q, x, p, distance=lambda d: d)),
]


def check_half_weight_bandwidth(fn) -> CheckResult:
    """``fn(query (a number), x_train (S,), p (a number)) -> sigma (a number)``.

    The nearest point's share falls from 1 (sigma -> 0) to 1/S (sigma -> infinity), so
    for 1/S < p < 1 exactly one sigma gives it the share p."""
    return check_function(fn, exercise="bandwidth for a share p",
                          reference=_half_weight_sigma, cases=_HALF_CASES,
                          mistakes=_HALF_MISTAKES, compare=make_compare(atol=1e-4, rtol=2e-3))


# --- 3. Gaussian weights from dot products, keys of unequal norms --------------------


def _weights_from_dots(dots, key_sq_norms, sigma):
    # -(|q|^2 - 2 q.k + |k|^2) / (2 sigma^2): |q|^2 is the same for every key and cancels
    return torch.softmax((dots - key_sq_norms / 2) / sigma**2, dim=-1)  # (T, S)


def _dots_case(seed, T, S, d, sigma, label, scale=1.0):
    g = _gen(seed)
    queries = torch.randn(T, d, generator=g)
    keys = torch.randn(S, d, generator=g) * (scale * torch.rand(S, 1, generator=g) * 3 + 0.2)
    return Case((queries @ keys.T, (keys**2).sum(-1), sigma), label=label)


def _equal_norms_case():
    g = _gen(7)
    keys = torch.nn.functional.normalize(torch.randn(5, 3, generator=g), dim=-1) * 2.0
    queries = torch.randn(3, 3, generator=g)
    return Case((queries @ keys.T, (keys**2).sum(-1), 1.0),
                label="keys of equal norm 2 (the norm term is the same for all)")


_DOTS_CASES = [
    _dots_case(10, 3, 5, 4, 1.0, "T=3, S=5, keys of norms 0.2 .. 3, sigma 1"),
    _dots_case(11, 4, 7, 3, 0.7, "T=4, S=7 (odd), sigma 0.7"),
    _equal_norms_case(),
    _dots_case(12, 2, 4, 8, 0.3, "large scores: keys of norm up to 30, sigma 0.3",
               scale=10.0),
    _dots_case(13, 1, 1, 2, 1.0, "one query, one key"),
]

_DOTS_MISTAKES = [
    Mistake("ignored the key norms", "with unequal key norms, softmax(q.k / sigma^2) favours "
            "long keys: -|q - k|^2 = 2 q.k - |q|^2 - |k|^2, and only |q|^2 cancels. "
            "Subtract |k|^2 / 2 from each key's dot product.",
            wrong=lambda dots, n, s: torch.softmax(dots / s**2, -1)),
    Mistake("forgot the 1/2 on the key norm", "-|q - k|^2 / (2 sigma^2) = (q.k - |k|^2 / 2) "
            "/ sigma^2 + a constant: the key norm enters halved.",
            wrong=lambda dots, n, s: torch.softmax((dots - n) / s**2, -1)),
    Mistake("divided the dot product by 2 sigma^2", "the 2 in 2 sigma^2 cancels against the "
            "2 in 2 q.k: the dot-product form has temperature sigma^2.",
            wrong=lambda dots, n, s: torch.softmax((dots - n / 2) / (2 * s**2), -1)),
    Mistake("normalised over the queries (wrong axis)", "each row (one query) sums to 1 "
            "over the keys: softmax along dim=-1.",
            wrong=lambda dots, n, s: torch.softmax((dots - n / 2) / s**2, 0)),
    Mistake("exp overflowed (no max-subtraction)", "large scores make exp(...) inf and "
            "inf / inf = nan: subtract each row's largest score first (torch.softmax).",
            wrong=lambda dots, n, s: _naive_softmax((dots - n / 2) / s**2)),
]


def check_weights_from_dots(fn) -> CheckResult:
    """``fn(dots (T, S), key_sq_norms (S,), sigma) -> weights (T, S)``."""
    return check_function(fn, exercise="kernel weights from dot products",
                          reference=_weights_from_dots, cases=_DOTS_CASES,
                          mistakes=_DOTS_MISTAKES)
