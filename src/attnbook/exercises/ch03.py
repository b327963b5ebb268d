"""Checkers for chapter 3: Gaussian-kernel attention weights, the Nadaraya–Watson
prediction, and choosing the bandwidth by leave-one-out cross-validation."""

import torch

from attnbook.data.regression import make_regression_data
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sq_dist(q, k):
    return (q[:, None] - k[None, :]) ** 2  # (T, 1) - (1, S) -> (T, S)


def _has_nan(got, expected, case) -> bool:
    return bool(torch.isnan(torch.as_tensor(got)).any()) and not torch.isnan(expected).any()


# --- 1. Gaussian-kernel attention weights ------------------------------------------

def _gaussian_weights(queries, keys, bandwidth):
    return torch.softmax(-_sq_dist(queries, keys) / (2 * bandwidth**2), dim=-1)  # (T, S)


_WEIGHT_CASES = [
    Case((torch.tensor([0.0, 1.0, 2.5]), torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0]), 0.7),
         label="T=3 queries, S=5 keys, bandwidth 0.7"),
    Case((5 * torch.rand(4, generator=_gen(1)), 5 * torch.rand(4, generator=_gen(2)), 1.5),
         label="T=S=4 random points, bandwidth 1.5"),
    Case((5 * torch.rand(6, generator=_gen(3)), 5 * torch.rand(9, generator=_gen(4)), 0.3),
         label="T=6, S=9 random points, bandwidth 0.3"),
    Case((torch.tensor([1.0, 9.0]), torch.tensor([0.0, 1.5, 2.0, 3.0]), 0.1),
         label="a query far from every key (9.0) with a narrow bandwidth 0.1"),
    Case((torch.tensor([-30.0, 2.0, 40.0]), torch.tensor([0.0, 1.0, 2.5]), 0.5),
         label="queries far on both sides of the keys, bandwidth 0.5"),
    Case((torch.tensor([0.3]), torch.tensor([2.0]), 1.0), label="one query, one key"),
    Case((torch.tensor([50.0, 51.0]), torch.tensor([0.0, 1.0, 2.0]), 1.0),
         label="every query far from every key (50 and 51 vs 0 .. 2), bandwidth 1"),
]

_WEIGHT_MISTAKES = [
    Mistake("normalised over the queries (wrong axis)", "each row belongs to one query and "
            "must sum to 1 over the keys: softmax (or divide by the sum) along dim=-1.",
            wrong=lambda q, k, h: torch.softmax(-_sq_dist(q, k) / (2 * h**2), dim=0)),
    Mistake("did not normalise the kernel values", "the weights are the kernel values divided "
            "by their sum over the keys, so that every row sums to 1.",
            wrong=lambda q, k, h: torch.exp(-_sq_dist(q, k) / (2 * h**2))),
    Mistake("forgot to square the distance", "the Gaussian kernel uses (x - x_i)^2, not "
            "|x - x_i|.",
            wrong=lambda q, k, h: torch.softmax(-_sq_dist(q, k).sqrt() / (2 * h**2), dim=-1)),
    Mistake("did not square the bandwidth", "divide the squared distance by 2 h^2, not 2 h.",
            wrong=lambda q, k, h: torch.softmax(-_sq_dist(q, k) / (2 * h), dim=-1)),
    Mistake("dropped the factor 2", "the exponent is -(x - x_i)^2 / (2 h^2).",
            wrong=lambda q, k, h: torch.softmax(-_sq_dist(q, k) / h**2, dim=-1)),
    Mistake("subtracted the largest exponent of the whole matrix, not of each row",
            "a query far from every key has all its exponents far below the matrix's "
            "largest, so they still underflow to 0 and 0/0 = nan: take the max over each "
            "row (dim=-1, keepdim=True), or use torch.softmax(..., dim=-1).",
            wrong=lambda q, k, h: (lambda e: e / e.sum(-1, keepdim=True))(
                torch.exp(-_sq_dist(q, k) / (2 * h**2) + (_sq_dist(q, k) / (2 * h**2)).min()))),
    Mistake("0 / 0 after exp underflowed", "far from every key all exp(...) values round to "
            "0 and the division gives nan. Subtract the row's largest exponent before exp "
            "(torch.softmax does that for you).",
            wrong=lambda q, k, h: (lambda e: e / e.sum(-1, keepdim=True))(
                torch.exp(-_sq_dist(q, k) / (2 * h**2)))),
    Mistake("nan where the answer is a number", "look for 0/0 (every exp(...) underflowed "
            "to 0) or inf/inf; subtract each row's largest exponent before exp.",
            detect=_has_nan),
]


def check_gaussian_weights(fn) -> CheckResult:
    """Check ``fn(queries, keys, bandwidth)``: (T,), (S,), a number -> weights (T, S)."""
    return check_function(fn, exercise="gaussian_weights", reference=_gaussian_weights,
                          cases=_WEIGHT_CASES, mistakes=_WEIGHT_MISTAKES)


# --- 2. the Nadaraya–Watson prediction --------------------------------------------

def _nw_predict(x_query, x_train, y_train, bandwidth):
    return _gaussian_weights(x_query, x_train, bandwidth) @ y_train  # (T, S) @ (S,) -> (T,)


def _nw_case(seed: int, T: int, S: int, h: float) -> Case:
    g = _gen(seed)
    x_train = torch.sort(5 * torch.rand(S, generator=g)).values
    y_train = torch.sin(x_train) + 0.3 * torch.randn(S, generator=g)
    return Case((5 * torch.rand(T, generator=g), x_train, y_train, h),
                label=f"T={T} queries, S={S} training points, bandwidth {h}")


def _far_nw_case() -> Case:
    # Queries far outside the training inputs (0 .. 5) with a narrow bandwidth: every
    # exp(-(x - x_i)^2 / (2 h^2)) underflows to 0 unless the row's largest exponent is
    # subtracted first; the right prediction is the target of the nearest training point.
    case = _nw_case(13, 4, 9, 0.2)
    _, x_train, y_train, h = case.args
    return Case((torch.tensor([-6.0, 2.5, 11.0, 40.0]), x_train, y_train, h),
                label="queries far outside the data (-6, 11, 40), bandwidth 0.2")


_NW_CASES = [_nw_case(10, 5, 8, 0.5), _nw_case(11, 7, 7, 1.2), _nw_case(12, 3, 20, 0.25),
             _far_nw_case(), _nw_case(14, 1, 1, 0.7)]

_NW_MISTAKES = [
    Mistake("averaged the keys instead of the values", "the prediction is a weighted average "
            "of the training targets y_train (the values), not of the inputs x_train.",
            wrong=lambda q, x, y, h: _gaussian_weights(q, x, h) @ x),
    Mistake("did not normalise the weights", "divide the kernel values by their sum over the "
            "training points; otherwise it is a weighted sum, not an average.",
            wrong=lambda q, x, y, h: torch.exp(-_sq_dist(q, x) / (2 * h**2)) @ y),
    Mistake("normalised over the queries (wrong axis)", "every query's weights must sum to 1 "
            "over the training points: softmax along dim=-1 of the (T, S) scores.",
            wrong=lambda q, x, y, h: torch.softmax(-_sq_dist(q, x) / (2 * h**2), dim=0) @ y),
    Mistake("predicted the plain mean of the targets", "the weights should depend on how far "
            "each training point is from the query; a plain mean ignores the query.",
            detect=lambda got, exp, case: torch.allclose(
                torch.as_tensor(got, dtype=torch.float32),
                case.args[2].mean().expand_as(exp), atol=1e-5)),
    Mistake("0 / 0 after exp underflowed", "far from every training point all exp(...) "
            "values round to 0 and the division gives nan. Subtract each row's largest "
            "exponent before exp (torch.softmax does that for you).",
            wrong=lambda q, x, y, h: (lambda e: (e @ y) / e.sum(-1))(
                torch.exp(-_sq_dist(q, x) / (2 * h**2)))),
    Mistake("nan where the answer is a number", "look for 0/0 (every exp(...) underflowed "
            "to 0) or inf/inf; subtract each row's largest exponent before exp.",
            detect=_has_nan),
]


def check_nw_predict(fn) -> CheckResult:
    """Check ``fn(x_query, x_train, y_train, bandwidth)``: (T,), (S,), (S,), h -> (T,)."""
    return check_function(fn, exercise="nw_predict", reference=_nw_predict, cases=_NW_CASES,
                          mistakes=_NW_MISTAKES)


# --- 3. leave-one-out choice of the bandwidth -------------------------------------

def _loo_errors(x, y, bandwidths, leave_out=True):
    errors = []
    for h in bandwidths:
        scores = -_sq_dist(x, x) / (2 * h**2)  # (S, S)
        if leave_out:
            scores = scores.masked_fill(torch.eye(len(x), dtype=torch.bool), -torch.inf)
        predictions = torch.softmax(scores, dim=-1) @ y  # (S,): each from the others
        errors.append(((predictions - y) ** 2).mean())
    return torch.stack(errors)  # (K,)


def _loo_bandwidth(x, y, bandwidths):
    errors = _loo_errors(x, y, bandwidths)
    return float(bandwidths[int(errors.argmin())]), errors


def _loo_case(seed: int, n: int, bandwidths: list[float]) -> Case:
    data = make_regression_data(n_train=n, n_test=1, seed=seed)
    return Case((data.x_train, data.y_train, bandwidths),
                label=f"{n} training points (seed {seed}), bandwidths {bandwidths}")


def _isolated_case() -> Case:
    # One point far from the others (x = 20): left out, its prediction comes from points
    # 15 away; with h = 0.1 every exp(...) underflows unless the row max is subtracted.
    data = make_regression_data(n_train=12, n_test=1, seed=4)
    x = torch.cat([data.x_train, torch.tensor([20.0])])
    y = torch.cat([data.y_train, torch.tensor([0.5])])
    return Case((x, y, [0.1, 0.5, 2.0]), label="13 points, one isolated far away (x = 20)")


_LOO_CASES = [
    _loo_case(1, 40, [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]),
    _loo_case(2, 60, [0.03, 0.3, 3.0]),
    _loo_case(3, 30, [1.0, 0.5, 0.25, 0.125, 0.0625]),
    _isolated_case(),
    Case((torch.tensor([0.0, 1.0, 3.0]), torch.tensor([1.0, -1.0, 2.0]), [0.7]),
         label="3 points, a single bandwidth"),
]

_LOO_MISTAKES = [
    Mistake("kept each point in its own average (not leave-one-out)", "when you predict y_i, "
            "training point i must get weight 0 (set its score to -inf before the softmax); "
            "otherwise the tiniest bandwidth just copies y_i and always looks best.",
            wrong=lambda x, y, hs: (float(hs[int(_loo_errors(x, y, hs, False).argmin())]),
                                    _loo_errors(x, y, hs, False))),
    Mistake("picked the bandwidth with the largest error", "the best bandwidth has the "
            "smallest leave-one-out error: argmin, not argmax.",
            wrong=lambda x, y, hs: (float(hs[int(_loo_errors(x, y, hs).argmax())]),
                                    _loo_errors(x, y, hs))),
    Mistake("returned the index of the best bandwidth", "return the bandwidth itself, "
            "bandwidths[i], not its position i.",
            wrong=lambda x, y, hs: (int(_loo_errors(x, y, hs).argmin()), _loo_errors(x, y, hs))),
    Mistake("summed the squared errors instead of averaging them", "the LOO error is the mean "
            "of the S squared errors (divide by S).",
            wrong=lambda x, y, hs: (_loo_bandwidth(x, y, hs)[0],
                                    _loo_errors(x, y, hs) * len(x))),
    Mistake("left the point out after the softmax", "zeroing point i's weight after the "
            "softmax leaves the other weights summing to less than 1; set its *score* to "
            "-inf before the softmax so the others are renormalised.",
            wrong=lambda x, y, hs: _loo_after_softmax(x, y, hs)),
    Mistake("0 / 0 for an isolated point", "left out, a point far from all others has every "
            "exp(...) underflow to 0, and 0/0 = nan. Subtract each row's largest exponent "
            "before exp (torch.softmax of the masked scores does that for you).",
            detect=lambda got, exp, case: _has_nan(got[1], exp[1], case)),
]


def _loo_after_softmax(x, y, bandwidths):
    errors = []
    for h in bandwidths:
        weights = torch.softmax(-_sq_dist(x, x) / (2 * h**2), dim=-1) * (1 - torch.eye(len(x)))
        errors.append(((weights @ y - y) ** 2).mean())
    errors = torch.stack(errors)
    return float(bandwidths[int(errors.argmin())]), errors


def check_loo_bandwidth(fn) -> CheckResult:
    """Check ``fn(x, y, bandwidths)``: (S,), (S,), K numbers -> (best bandwidth, errors (K,))."""
    return check_function(fn, exercise="loo_bandwidth", reference=_loo_bandwidth,
                          cases=_LOO_CASES, mistakes=_LOO_MISTAKES,
                          output_names=("the best bandwidth", "the leave-one-out errors"))
