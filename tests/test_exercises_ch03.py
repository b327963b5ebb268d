"""Chapter 3's checkers pass right answers (written differently from the reference) and name
the classic mistakes."""

import math
import re

import pytest
import torch

from attnbook.exercises import ExerciseError, ch03


def _fails(check, fn, name):
    with pytest.raises(ExerciseError, match=re.escape(name)):
        check(fn)


# --- NW with a bandwidth per dimension ------------------------------------------------

def _nw_vector_loop(xq, x, y, sigma):
    out = torch.empty(len(xq))
    for t in range(len(xq)):
        scaled = (xq[t] - x) / sigma  # (S, d): each dimension in units of its sigma
        out[t] = torch.softmax(-0.5 * (scaled**2).sum(-1), dim=0) @ y
    return out


def test_nw_vector_written_as_a_loop_and_with_cdist_pass():
    assert ch03.check_nw_vector(_nw_vector_loop)

    def with_cdist(xq, x, y, sigma):  # rescale the inputs, then the chapter's distance
        d2 = torch.cdist(xq / sigma, x / sigma) ** 2  # (T, S)
        return torch.softmax(-d2 / 2, dim=-1) @ y

    assert ch03.check_nw_vector(with_cdist)


def test_nw_vector_naive_exp_fails_on_far_queries():
    def naive(xq, x, y, sigma):
        e = torch.exp(-0.5 * (((xq[:, None] - x[None]) / sigma) ** 2).sum(-1))
        return (e @ y) / e.sum(-1)

    with pytest.raises(ExerciseError, match="far from every key"):
        ch03.check_nw_vector(naive)


# --- the bandwidth for a share p ------------------------------------------------------

def _bisection_float32(query, x, p):
    d2 = (query - x) ** 2  # (S,) float32
    nearest = int(d2.argmin())
    lo, hi = 1e-4, 1e4
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if torch.softmax(-d2 / (2 * mid**2), 0)[nearest] > p:
            lo = mid
        else:
            hi = mid
    return mid


def test_half_weight_by_float32_bisection_passes():
    assert ch03.check_half_weight_bandwidth(_bisection_float32)


def test_half_weight_two_points_closed_form():
    # Two points at distances a < b: p = 1 / (1 + exp(-(b^2 - a^2) / (2 sigma^2))).
    q, x, p = ch03._HALF_CASES[1].args
    a2, b2 = sorted(((q - x) ** 2).tolist())
    sigma = math.sqrt((b2 - a2) / (2 * math.log(p / (1 - p))))
    assert math.isclose(ch03._half_weight_sigma(q, x, p), sigma, rel_tol=1e-6)
    assert ch03.check_half_weight_bandwidth(
        lambda q, x, p: math.sqrt((b2 - a2) / (2 * math.log(p / (1 - p)))) if len(x) == 2
        else _bisection_float32(q, x, p))


def test_half_weight_naive_exp_fails_on_the_far_query():
    def naive(query, x, p):
        d2 = (query - x) ** 2
        nearest = int(d2.argmin())
        lo, hi = 1e-4, 1e4
        for _ in range(100):
            mid = math.sqrt(lo * hi)
            e = torch.exp(-d2 / (2 * mid**2))
            if (e / e.sum())[nearest] > p:
                lo = mid
            else:
                hi = mid
        return mid

    # exp(-d^2 / (2 sigma^2)) underflows to 0 for small trial sigmas (and, far from the
    # data, for every sigma): 0 / 0 = nan compares as False and the search runs off.
    with pytest.raises(ExerciseError, match="expected"):
        ch03.check_half_weight_bandwidth(naive)


# --- kernel weights from dot products ---------------------------------------------------

def test_weights_from_dots_with_log_softmax_passes():
    def by_log_softmax(dots, n, sigma):
        return torch.log_softmax((2 * dots - n) / (2 * sigma**2), dim=1).exp()

    assert ch03.check_weights_from_dots(by_log_softmax)


def test_weights_from_dots_plain_dot_product_is_named():
    _fails(ch03.check_weights_from_dots, lambda dots, n, s: torch.softmax(dots / s**2, 1),
           "ignored the key norms")
