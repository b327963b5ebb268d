"""Chapter 3's checkers pass right answers (written differently from the reference) and name
the classic mistakes."""

import re

import pytest
import torch

from attnbook.exercises import ExerciseError
from attnbook.exercises.ch03 import check_gaussian_weights, check_loo_bandwidth, check_nw_predict
from attnbook.kernel_regression import nadaraya_watson, select_bandwidth_loo


def _fails(check, fn, name):
    with pytest.raises(ExerciseError, match=re.escape(name)):
        check(fn)


# --- gaussian_weights -------------------------------------------------------------

def _scores(q, k, h):
    return -((q[:, None] - k[None, :]) ** 2) / (2 * h**2)  # (T, S)


def test_gaussian_weights_right_answers_pass():
    assert check_gaussian_weights(lambda q, k, h: torch.softmax(_scores(q, k, h), dim=1))
    assert check_gaussian_weights(lambda q, k, h: nadaraya_watson(q, k, k, h)[1])

    def by_hand(q, k, h):  # max-subtraction written out
        s = _scores(q, k, h)
        e = torch.exp(s - s.max(dim=1, keepdim=True).values)
        return e / e.sum(dim=1, keepdim=True)

    assert check_gaussian_weights(by_hand)


def test_gaussian_weights_mistakes_are_named():
    _fails(check_gaussian_weights, lambda q, k, h: torch.softmax(_scores(q, k, h), dim=0),
           "wrong axis")
    _fails(check_gaussian_weights, lambda q, k, h: torch.exp(_scores(q, k, h)),
           "did not normalise")
    _fails(check_gaussian_weights,
           lambda q, k, h: torch.softmax(-(q[:, None] - k[None]).abs() / (2 * h**2), dim=1),
           "forgot to square the distance")
    _fails(check_gaussian_weights,
           lambda q, k, h: torch.softmax(-((q[:, None] - k[None]) ** 2) / (2 * h), dim=1),
           "did not square the bandwidth")
    _fails(check_gaussian_weights,
           lambda q, k, h: torch.softmax(-((q[:, None] - k[None]) ** 2) / h**2, dim=1),
           "dropped the factor 2")

    def naive(q, k, h):  # right formula, but exp underflows far from every key
        e = torch.exp(_scores(q, k, h))
        return e / e.sum(dim=1, keepdim=True)

    _fails(check_gaussian_weights, naive, "underflow")


# --- nw_predict ---------------------------------------------------------------------

def _loop_predict(xq, x, y, h):
    out = torch.empty(len(xq))
    for t in range(len(xq)):
        w = torch.softmax(-((xq[t] - x) ** 2) / (2 * h**2), dim=0)  # (S,)
        out[t] = (w * y).sum()
    return out


def test_nw_predict_right_answers_pass():
    assert check_nw_predict(_loop_predict)
    assert check_nw_predict(lambda xq, x, y, h: nadaraya_watson(xq, x, y, h)[0])


def test_nw_predict_mistakes_are_named():
    w = lambda xq, x, h: torch.softmax(_scores(xq, x, h), dim=1)
    _fails(check_nw_predict, lambda xq, x, y, h: w(xq, x, h) @ x, "averaged the keys")
    _fails(check_nw_predict, lambda xq, x, y, h: torch.exp(_scores(xq, x, h)) @ y,
           "did not normalise")
    _fails(check_nw_predict, lambda xq, x, y, h: torch.softmax(_scores(xq, x, h), dim=0) @ y,
           "wrong axis")
    _fails(check_nw_predict, lambda xq, x, y, h: torch.full((len(xq),), y.mean().item()),
           "plain mean")
    with pytest.raises(ExerciseError, match="shape"):  # returned the weights
        check_nw_predict(lambda xq, x, y, h: w(xq, x, h))


# --- loo_bandwidth ------------------------------------------------------------------

def _loo_loop(x, y, hs, leave_out=True):
    errors = []
    for h in hs:
        total = 0.0
        for i in range(len(x)):
            keep = torch.arange(len(x)) != i if leave_out else torch.ones(len(x), dtype=bool)
            w = torch.softmax(-((x[i] - x[keep]) ** 2) / (2 * h**2), dim=0)
            total += ((w * y[keep]).sum() - y[i]) ** 2
        errors.append(total / len(x))
    errors = torch.stack(errors)
    return hs[int(errors.argmin())], errors


def test_loo_bandwidth_right_answers_pass():
    assert check_loo_bandwidth(_loo_loop)
    assert check_loo_bandwidth(select_bandwidth_loo)


def test_loo_bandwidth_mistakes_are_named():
    _fails(check_loo_bandwidth, lambda x, y, hs: _loo_loop(x, y, hs, leave_out=False),
           "not leave-one-out")

    def argmax(x, y, hs):
        errors = _loo_loop(x, y, hs)[1]
        return hs[int(errors.argmax())], errors

    def index(x, y, hs):
        errors = _loo_loop(x, y, hs)[1]
        return int(errors.argmin()), errors

    def summed(x, y, hs):
        best, errors = _loo_loop(x, y, hs)
        return best, errors * len(x)

    _fails(check_loo_bandwidth, argmax, "largest error")
    _fails(check_loo_bandwidth, index, "index of the best bandwidth")
    _fails(check_loo_bandwidth, summed, "summed the squared errors")
