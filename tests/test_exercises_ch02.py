"""The chapter-2 checkers: the reference passes, mistakes are named (stubs: test_exercises.py)."""

import math

import pytest
import torch

from attnbook.exercises import ExerciseError, ch02

# ---------------------------------------------------------------- right answers


def good_softmax(scores):
    shifted = scores - scores.max(dim=-1, keepdim=True).values
    e = shifted.exp()
    return e / e.sum(dim=-1, keepdim=True)


def good_entropy(p, base):
    terms = torch.where(p > 0, p * torch.log(torch.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(-1) / math.log(base)


def entropy_at(scores, t):
    p = good_softmax(scores / t)
    return float(good_entropy(p, math.e))


def good_temperature(scores, target, lo=0.01, hi=100.0, steps=50):
    for _ in range(steps):
        mid = (lo + hi) / 2
        if entropy_at(scores, mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def good_jacobian(z):
    p = torch.softmax(z, dim=-1)
    return torch.diag(p) - p[:, None] * p[None, :]


def good_kl(p, q):
    return torch.where(p > 0, p * (p / q).log(), 0.0).sum(-1)


CHECKERS = {
    "softmax": (ch02.check_stable_softmax, good_softmax),
    "entropy": (ch02.check_entropy, good_entropy),
    "temperature": (ch02.check_temperature_for_entropy, good_temperature),
    "jacobian": (ch02.check_softmax_jacobian, good_jacobian),
    "kl": (ch02.check_kl_divergence, good_kl),
}


@pytest.mark.parametrize("name", CHECKERS)
def test_a_right_answer_passes(name, capsys):
    check, answer = CHECKERS[name]
    assert check(answer).passed is True
    assert "✓" in capsys.readouterr().out


def test_the_package_versions_pass_the_checkers():
    from attnbook.softmax import entropy, softmax

    assert ch02.check_stable_softmax(softmax)
    assert ch02.check_entropy(lambda p, base: entropy(p, base=base))


# ---------------------------------------------------------------- named mistakes

def _bisect(h, scores, target, lo=0.01, hi=100.0, steps=50, wrong_end=False):
    for _ in range(steps):
        mid = (lo + hi) / 2
        if (h(scores, mid) < target) != wrong_end:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


WRONG = [
    ("softmax", lambda s: torch.softmax(s, dim=0), "softmax over the wrong axis"),
    ("softmax", lambda s: (s - s.max(-1).values).exp() / (s - s.max(-1).values).exp()
     .sum(-1, keepdim=True), "without keepdim"),
    ("softmax", lambda s: s.exp() / s.exp().sum(-1, keepdim=True), "no max-subtraction"),
    ("softmax", lambda s: (s - s.max()).exp() / (s - s.max()).exp().sum(-1, keepdim=True),
     "maximum of the whole matrix"),
    ("softmax", lambda s: (s - s.max(-1, keepdim=True).values).exp(), "forgot to divide"),
    ("entropy", lambda p, base: -(p * p.log()).sum(-1) / math.log(base), "0 log 0 gives nan"),
    ("entropy", lambda p, base: (p * p.log()).nan_to_num().sum(-1) / math.log(base),
     "forgot the minus sign"),
    ("entropy", lambda p, base: torch.special.entr(p).sum(-1), "log base mixed up"),
    ("entropy", lambda p, base: torch.special.entr(p).sum(-1) * math.log(base),
     "log base mixed up"),
    ("entropy", lambda p, base: torch.special.entr(p).sum(-1) / math.log(2),
     "log base mixed up"),
    ("entropy", lambda p, base: torch.special.entr(p).sum(0) / math.log(base),
     "summed over the wrong axis"),
    ("temperature", lambda s, t: _bisect(lambda s, m: entropy_at(s, 1 / m), s, t,
                                         wrong_end=True),
     "multiplied the scores by the temperature"),
    ("temperature", lambda s, t: _bisect(lambda s, m: entropy_at(s, m) / math.log(2), s, t),
     "entropy in bits instead of nats"),
    ("temperature", lambda s, t: _bisect(entropy_at, s, t, wrong_end=True),
     "an end of the interval"),
    ("temperature", lambda s, t: _bisect(entropy_at, s, t, steps=12),
     "bisection stopped too early"),
    ("jacobian", lambda z: torch.diag(torch.softmax(z, -1) * (1 - torch.softmax(z, -1))),
     "only the diagonal"),
    ("jacobian", lambda z: -torch.outer(torch.softmax(z, -1), torch.softmax(z, -1)),
     "forgot the diag"),
    ("jacobian", lambda z: torch.diag(torch.softmax(z, -1))
     + torch.outer(torch.softmax(z, -1), torch.softmax(z, -1)), "wrong sign"),
    ("jacobian", lambda z: torch.diag(z) - torch.outer(z, z), "logits instead"),
    ("jacobian", lambda z: torch.diag(torch.softmax(z, -1)), "differentiated the numerator only"),
    ("kl", lambda p, q: good_kl(q, p), "arguments swapped"),
    ("kl", lambda p, q: -good_kl(p, q), "log ratio upside down"),
    ("kl", lambda p, q: (p * (p / q).log()).sum(-1), "0 log 0 gives nan"),
    ("kl", lambda p, q: -(p * q.log()).sum(-1), "cross-entropy instead of KL"),
]


@pytest.mark.parametrize("name, answer, mistake", WRONG, ids=[w[2] for w in WRONG])
def test_a_classic_mistake_is_named(name, answer, mistake):
    check, _ = CHECKERS[name]
    with pytest.raises(ExerciseError, match=mistake):
        check(answer)


def test_a_temperature_that_is_not_a_positive_number_is_explained():
    with pytest.raises(ExerciseError, match="temperature not positive"):
        ch02.check_temperature_for_entropy(lambda s, t: -good_temperature(s, t))
