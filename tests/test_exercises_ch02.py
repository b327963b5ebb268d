"""The chapter-2 checkers: right answers pass, mistakes are named (stubs: test_exercises.py)."""

import math

import pytest
import torch

from attnbook.exercises import ExerciseError, ch02

# ---------------------------------------------------------------- right answers


def good_masked_lse(scores, keep):
    z = scores.masked_fill(~keep, -math.inf)             # (T, S)
    m = z.amax(-1, keepdim=True)                         # (T, 1), -inf for an empty row
    m = torch.where(torch.isinf(m), 0.0, m)
    return (m + torch.exp(z - m).sum(-1, keepdim=True).log()).squeeze(-1)


def top_weight(scores, tau):
    return float(torch.softmax(scores.double() / tau, dim=-1).max())


def good_temperature(scores, target, lo=1e-4, hi=1e4, steps=80, flip=False, mul=False):
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        w = top_weight(scores, 1 / mid if mul else mid)
        if (w > target) != flip:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def good_jvp(z, v):
    p = torch.softmax(z, dim=-1)
    return p * (v - (p * v).sum(-1, keepdim=True))


def autograd_jvp(z, v):
    return torch.func.jvp(lambda x: torch.softmax(x, dim=-1), (z,), (v,))[1]


def kl_bits(p, q):
    return torch.where(p > 0, p * torch.log2(torch.where(p > 0, p / q, 1.0)), 0.0).sum(-1)


def good_js(P, Q):
    M = (P + Q) / 2
    return (kl_bits(P, M) + kl_bits(Q, M)) / 2


CHECKERS = {
    "masked lse": (ch02.check_masked_logsumexp, good_masked_lse),
    "temperature": (ch02.check_temperature_for_top_weight, good_temperature),
    "jvp": (ch02.check_softmax_jvp, good_jvp),
    "jvp by autograd": (ch02.check_softmax_jvp, autograd_jvp),
    "js": (ch02.check_js_divergence, good_js),
}


@pytest.mark.parametrize("name", CHECKERS)
def test_a_right_answer_passes(name, capsys):
    check, answer = CHECKERS[name]
    assert check(answer).passed is True
    assert "✓" in capsys.readouterr().out


# ---------------------------------------------------------------- named mistakes

def _p(z):
    return torch.softmax(z, -1)


WRONG = [
    ("masked lse", lambda s, k: torch.logsumexp(s.masked_fill(~k, 0.0), -1),
     "set to 0 instead of -inf"),
    ("masked lse", lambda s, k: (lambda m: (m + ((s - m).exp() * k).sum(-1, keepdim=True)
                                            .log()).squeeze(-1))(s.amax(-1, keepdim=True)),
     "maximum over the masked keys too"),
    ("masked lse", lambda s, k: ((s.exp() * k).sum(-1)).log(), "no max-subtraction"),
    ("masked lse", lambda s, k: torch.logsumexp(s.masked_fill(k, -math.inf), -1),
     "wrong way round"),
    ("masked lse", lambda s, k: (lambda z: (z.amax(-1, keepdim=True) + (
        z - z.amax(-1, keepdim=True)).exp().sum(-1, keepdim=True).log()).squeeze(-1))(
        s.masked_fill(~k, -math.inf)), "no key kept gives nan"),
    ("masked lse", lambda s, k: torch.logsumexp(s.masked_fill(~k, -1e9), -1),
     "large negative number"),
    ("temperature", lambda s, t: good_temperature(s, t, flip=True), "moved the wrong end"),
    ("temperature", lambda s, t: good_temperature(s, t, mul=True, flip=True),
     "multiplied the scores"),
    ("temperature", lambda s, t: good_temperature(s.sort(descending=True).values[:2], t),
     "two largest scores"),
    ("temperature", lambda s, t: good_temperature(s, t, steps=12), "stopped too early"),
    ("jvp", lambda z, v: _p(z) * v, "forgot the -p p"),
    ("jvp", lambda z, v: _p(z) * (v - v.sum(-1, keepdim=True)), "plain sum of v"),
    ("jvp", lambda z, v: _p(z) * (v - v.mean(-1, keepdim=True)), "mean of v"),
    ("jvp", lambda z, v: _p(z) * (v - (_p(z) * v).sum(-1)), "without keepdim"),
    ("jvp", lambda z, v: z * (v - (z * v).sum(-1, keepdim=True)), "logits instead"),
    ("jvp", lambda z, v: _p(z) * v + _p(z) * (_p(z) * v).sum(-1, keepdim=True), "wrong sign"),
    ("js", kl_bits, r"KL\(P \|\| Q\) instead"),
    ("js", lambda P, Q: (kl_bits(P, Q) + kl_bits(Q, P)) / 2, "symmetrised KL"),
    ("js", lambda P, Q: good_js(P, Q) * math.log(2), "nats instead of bits"),
    ("js", lambda P, Q: 2 * good_js(P, Q), "forgot the halves"),
    ("js", lambda P, Q: ((P * torch.log2(2 * P / (P + Q))).sum(-1)
                         + (Q * torch.log2(2 * Q / (P + Q))).sum(-1)) / 2, "0 log 0"),
]


@pytest.mark.parametrize("name, answer, mistake", WRONG, ids=[w[2] for w in WRONG])
def test_a_classic_mistake_is_named(name, answer, mistake):
    check, _ = CHECKERS[name]
    with pytest.raises(ExerciseError, match=mistake):
        check(answer)


def test_a_temperature_that_is_not_a_positive_number_is_explained():
    with pytest.raises(ExerciseError, match="temperature not positive"):
        ch02.check_temperature_for_top_weight(lambda s, t: -good_temperature(s, t))


def test_the_jvp_reference_is_autograds():
    for case in ch02._jvp_cases():
        z, v = case.args
        torch.testing.assert_close(ch02._jvp_reference(z, v), autograd_jvp(z, v))
