"""Chapter 6's checkers pass the reference answers and name the classic mistakes."""

import math
from collections import Counter

import pytest
import torch

from attnbook.exercises import ExerciseError
from attnbook.exercises.ch06 import (
    check_alignment_error_rate,
    check_bahdanau_step,
    check_brevity_penalty,
    check_modified_precision,
)


def _step(emb, s_prev, annotations, src_len, W_q, W_k, v, cell, *, mask=True, tanh=True,
          softmax_dim=-1, emb_first=True):
    S = annotations.shape[1]
    pre = (s_prev @ W_q)[:, None, :] + torch.einsum("bsk,ka->bsa", annotations, W_k)
    scores = (torch.tanh(pre) if tanh else pre) @ v  # (B, S)
    if mask:
        scores = scores.masked_fill(torch.arange(S)[None] >= src_len[:, None], -1e9)
    weights = scores.softmax(softmax_dim)
    context = torch.einsum("bs,bsk->bk", weights, annotations)
    parts = [emb, context] if emb_first else [context, emb]
    return cell(torch.cat(parts, -1), s_prev), context, weights


def test_bahdanau_step():
    assert check_bahdanau_step(_step)
    wrong = {
        "padding received attention": lambda *a: _step(*a, mask=False),
        "forgot the tanh": lambda *a: _step(*a, tanh=False),
        "softmax over the batch axis": lambda *a: _step(*a, softmax_dim=0),
        "wrong order": lambda *a: _step(*a, emb_first=False),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_bahdanau_step(fn)
    with pytest.raises(ExerciseError, match="shape"):  # returned only the weights' row sums
        check_bahdanau_step(lambda *a: tuple(x.sum(-1) for x in _step(*a)))


def _prec(hyp, ref, n, *, clip=True, use_set=False, by_ref=False, off_by_one=False):
    k = 0 if off_by_one else 1
    h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + k))
    r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + k))
    if use_set:
        m = len(set(h) & set(r))
    else:
        m = sum(min(c, r[g]) if clip else c * (g in r) for g, c in h.items())
    total = sum((r if by_ref else h).values())
    return m / total if total else 0.0


def test_modified_precision():
    assert check_modified_precision(_prec)
    wrong = {
        "not clipped": lambda h, r, n: _prec(h, r, n, clip=False),
        "distinct n-grams": lambda h, r, n: _prec(h, r, n, use_set=True),
        "reference's n-grams": lambda h, r, n: _prec(h, r, n, by_ref=True),
        "off by one": lambda h, r, n: _prec(h, r, n, off_by_one=True),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_modified_precision(fn)


def test_brevity_penalty():
    assert check_brevity_penalty(
        lambda c, r: 1.0 if c >= r else (math.exp(1 - r / c) if c else 0.0))
    with pytest.raises(ExerciseError, match="long hypotheses too"):
        check_brevity_penalty(lambda c, r: math.exp(1 - r / c) if c else 0.0)
    with pytest.raises(ExerciseError, match="inverted"):
        check_brevity_penalty(lambda c, r: 1.0 if c >= r else math.exp(1 - c / r))


def test_alignment_error_rate():
    def aer(a, s, p):
        return 1 - (len(a & s) + len(a & p)) / (len(a) + len(s))

    assert check_alignment_error_rate(aer)
    with pytest.raises(ExerciseError, match="ignored the possible links"):
        check_alignment_error_rate(lambda a, s, p: 1 - 2 * len(a & s) / (len(a) + len(s)))
    with pytest.raises(ExerciseError, match="agreement, not the error"):
        check_alignment_error_rate(lambda a, s, p: 1 - aer(a, s, p))
    with pytest.raises(ExerciseError, match=r"\|A\| \+ \|P\|"):
        check_alignment_error_rate(
            lambda a, s, p: 1 - (len(a & s) + len(a & p)) / (len(a) + len(p)))
