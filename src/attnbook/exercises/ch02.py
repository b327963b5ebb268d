"""Checkers for the exercises of chapter 2: softmax, probability and entropy.

Each ``check_*`` runs the reader's function on several seeded cases, prints ✓
when all pass, returns False for an unattempted stub and otherwise raises
``ExerciseError`` naming the mistake it recognises.
"""

import math

import torch

from attnbook.exercises.checker import (
    Case,
    CheckResult,
    Mistake,
    check_function,
    make_compare,
    to_numpy,
)
from attnbook.softmax import entropy as _entropy


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _same(got, wrong_value, atol=1e-5, rtol=1e-4) -> bool:
    return make_compare(atol, rtol)(got, wrong_value) is None


def _any_of(*wrongs):
    """A ``detect`` that recognises the mistake if the answer equals any of ``wrongs``
    that differs from the right answer on this case."""
    def detect(got, expected, case):
        candidates = [case.call(w) for w in wrongs]
        return any(_same(got, c) and not _same(c, expected) for c in candidates)

    return detect


# ---------------------------------------------------------------- 1. stable softmax

def _softmax_reference(scores):
    return torch.softmax(scores, dim=-1)  # (T, S), rows sum to 1


def _softmax_naive(scores):
    return scores.exp() / scores.exp().sum(-1, keepdim=True)


def _softmax_global_max(scores):
    e = (scores - scores.max()).exp()
    return e / e.sum(-1, keepdim=True)


def _softmax_max_no_keepdim(scores):
    e = (scores - scores.max(-1).values).exp()  # (T, S) - (S,): subtracts column-wise
    return e / e.sum(-1, keepdim=True)


def _softmax_sum_no_keepdim(scores):
    e = (scores - scores.max(-1, keepdim=True).values).exp()
    return e / e.sum(-1)  # (T, S) / (T,) -> divides column j by the sum of row j


def _softmax_shift_mean(scores):
    e = (scores - scores.mean(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def _softmax_shift_min(scores):
    e = (scores - scores.min(-1, keepdim=True).values).exp()
    return e / e.sum(-1, keepdim=True)


def _softmax_unnormalised(scores):
    return (scores - scores.max(-1, keepdim=True).values).exp()


SOFTMAX_MISTAKES = (
    Mistake("softmax over the wrong axis",
            "Each row (one query) must sum to 1: normalise over the last axis, dim=-1, "
            "the keys.", wrong=lambda s: torch.softmax(s, dim=0)),
    Mistake("max or sum without keepdim=True",
            "Here s.max(-1).values has shape (T,), which broadcasts against (T, S) along the "
            "wrong axis; use s.max(dim=-1, keepdim=True).values and .sum(-1, keepdim=True).",
            detect=_any_of(_softmax_max_no_keepdim, _softmax_sum_no_keepdim)),
    Mistake("forgot to divide by the sum",
            "The exp gives positive numbers; the softmax divides them by their row sum.",
            wrong=_softmax_unnormalised),
    Mistake("no max-subtraction (overflow)",
            "In float32 exp(1000) is inf, and inf/inf is nan; exp(-1000) is 0, and 0/0 is "
            "nan too. Subtract each row's maximum first: softmax(z) = softmax(z - max z).",
            wrong=_softmax_naive),
    Mistake("subtracted the maximum of the whole matrix, not of each row",
            "A row far below the global maximum then underflows to exp(...) = 0 everywhere "
            "and 0/0 = nan; take the max over dim=-1 with keepdim=True.",
            wrong=_softmax_global_max),
    Mistake("shifted by the mean, not the maximum",
            "Any shift leaves the softmax unchanged mathematically, but only the row maximum "
            "makes every exponent <= 0: with scores far apart, exp(score - mean) still "
            "overflows (float32's exp overflows above about 88.7). Subtract the row maximum.",
            wrong=_softmax_shift_mean),
    Mistake("shifted by the minimum, not the maximum",
            "Subtracting the minimum makes every exponent >= 0, so the largest ones overflow "
            "sooner (float32's exp overflows above about 88.7). Subtract the row maximum.",
            wrong=_softmax_shift_min),
)


def _softmax_cases():
    return [
        Case((torch.randn(4, 4, generator=_gen(0)),), label="a square 4x4 score matrix"),
        Case((torch.randn(3, 5, generator=_gen(1)) * 2,), label="3 queries, 5 keys"),
        Case((torch.tensor([[1000.0, 999.0, 998.0], [1.0, 2.0, 3.0]]),),
             label="logits around 1000"),
        Case((torch.tensor([[1.0, 0.0, -1.0], [-1000.0, -999.0, -1001.0]]),),
             label="a row around -1000"),
        Case((torch.tensor([[0.0, 400.0, -400.0, 5.0, 1.0]]),),
             label="one query, scores spread from -400 to 400"),
        Case((torch.tensor([[3.0, float("-inf"), 1.0], [-2.0, 0.0, float("-inf")]]),),
             label="some scores -inf (keys masked out)"),
        Case((torch.tensor([[7.0]]),), label="one query, one key (T=S=1)"),
    ]


def check_stable_softmax(fn) -> CheckResult:
    """Exercise: ``fn(scores)`` (T, S) -> weights (T, S), a stable softmax over the keys."""
    return check_function(fn, exercise="stable softmax", reference=_softmax_reference,
                          cases=_softmax_cases(), mistakes=SOFTMAX_MISTAKES)


# ---------------------------------------------------------------- 2. entropy

def _entropy_reference(p, base):
    return _entropy(p, axis=-1, base=base)  # (T,)


ENTROPY_MISTAKES = (
    Mistake("0 log 0 gives nan",
            "0 * log(0) is 0 * (-inf) = nan in floating point, but its limit is 0. Use "
            "torch.special.entr(p) (which is -p log p, and 0 where p = 0) or "
            "torch.xlogy(p, p), or take the log of torch.where(p > 0, p, 1.0).",
            wrong=lambda p, base: -(p * p.log()).sum(-1) / math.log(base)),
    Mistake("forgot the minus sign",
            "Since log p <= 0 for probabilities, -sum p log p >= 0: entropy is never negative.",
            wrong=lambda p, base: _entropy(p, base=base).neg()),
    Mistake("log base mixed up",
            "The natural log gives nats; for base b divide by ln(b) (not multiply), e.g. "
            "bits = nats / ln 2.",
            detect=_any_of(lambda p, base: _entropy(p),
                           lambda p, base: _entropy(p) * math.log(base),
                           lambda p, base: _entropy(p, base=2),
                           lambda p, base: _entropy(p, base=10))),
    Mistake("summed over the wrong axis",
            "Each row is one distribution; sum over its entries, dim=-1.",
            wrong=lambda p, base: _entropy(p, axis=0, base=base)),
    Mistake("averaged instead of summed",
            "Entropy is the sum -sum_i p_i log p_i over a row's entries, not their mean.",
            wrong=lambda p, base: _entropy(p, base=base) / p.shape[-1]),
)


def _entropy_cases():
    uniform_onehot = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.0, 1.0, 0.0, 0.0]])
    with_zeros = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.0, 0.8], [0.1, 0.3, 0.6]])
    return [
        Case((uniform_onehot, 2), label="uniform and one-hot rows, in bits"),
        Case((torch.softmax(torch.randn(3, 3, generator=_gen(2)), -1), math.e),
             label="3 random rows, in nats"),
        Case((torch.softmax(torch.randn(2, 6, generator=_gen(3)) * 2, -1), 2),
             label="2 random rows, in bits"),
        Case((with_zeros, math.e), label="rows with zeros, in nats"),
        Case((torch.tensor([[1.0]]), 2), label="a single key (S=1), in bits"),
        Case((torch.tensor([[1 - 2e-30, 1e-30, 1e-30], [0.0, 0.0, 1.0]]), 10),
             label="nearly one-hot rows (probabilities of 1e-30), in base 10"),
    ]


def check_entropy(fn) -> CheckResult:
    """Exercise: ``fn(p, base)`` p (T, S) rows of probabilities -> (T,) entropies."""
    return check_function(fn, exercise="entropy", reference=_entropy_reference,
                          cases=_entropy_cases(), mistakes=ENTROPY_MISTAKES)


# ---------------------------------------------------------------- 3. temperature for an entropy

def _entropy_at(scores, temperature) -> float:
    """Entropy in nats of softmax(scores / temperature), scores (S,)."""
    p = torch.softmax(scores.double() / float(temperature), dim=-1)
    return float(torch.special.entr(p).sum())


def _temperature_reference(scores, target, lo=1e-2, hi=1e2, steps=60):
    for _ in range(steps):  # bisection on log(temperature): entropy grows with temperature
        mid = math.sqrt(lo * hi)
        if _entropy_at(scores, mid) < target:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _wrong_end(got, expected, case) -> bool:
    scores, target = case.args
    t = float(to_numpy(got))
    h = _entropy_at(scores, t)
    at_an_end = (h < 0.02 or h > math.log(len(scores)) - 0.02 or abs(t - 0.01) < 1e-3
                 or abs(t - 100) < 0.1)
    return at_an_end and abs(h - target) > 0.01


def _too_early(got, expected, case) -> bool:
    rel = abs(float(to_numpy(got)) - expected) / expected
    return 1e-4 < rel < 0.05


TEMPERATURE_MISTAKES = (
    Mistake("temperature not positive",
            "A temperature is a positive number: softmax(scores / T) with T > 0.",
            detect=lambda got, expected, case: float(to_numpy(got)) <= 0),
    Mistake("multiplied the scores by the temperature",
            "Temperature divides the scores: softmax(scores / T). Multiplying gives the "
            "reciprocal temperature.",
            wrong=lambda s, target: 1 / _temperature_reference(s, target)),
    Mistake("entropy in bits instead of nats",
            "The target is in nats: use the natural log (torch.log), not log2.",
            wrong=lambda s, target: _temperature_reference(s, target * math.log(2))),
    Mistake("bisection ran to an end of the interval",
            "Your temperature sits at an end of [0.01, 100] (or where the entropy is at its "
            "least or most), so the bisection always moved the same end. Entropy grows with "
            "the temperature: if the entropy at the midpoint is below the target, the "
            "answer is hotter, so raise the lower end (lo = mid); otherwise lower the upper "
            "end. Check too that you divide the scores by the temperature.",
            detect=_wrong_end),
    Mistake("bisection stopped too early",
            "Each step halves the interval; run more steps (40 or so) or until hi - lo is "
            "tiny.", detect=_too_early),
)


def _temperature_cases():
    s1 = torch.randn(6, generator=_gen(4)) * 2
    s2 = torch.tensor([3.0, 1.0, 0.0, -1.0, 2.5, 0.5, -2.0, 1.5])
    return [
        Case((s1, 1.0), label="6 scores, target 1.0 nat"),
        Case((s1, 0.3), label="6 scores, target 0.3 nat"),
        Case((s2, 1.8), label="8 scores, target 1.8 nats"),
        Case((s1, math.log(6) - 0.001), label="6 scores, target just below log 6 (very hot)"),
        Case((s1, 0.005), label="6 scores, target 0.005 nat (very cold)"),
        Case((torch.tensor([300.0, 0.0, -300.0, 200.0]), 0.3),
             label="4 scores spread over 600, target 0.3 nat"),
    ]


def check_temperature_for_entropy(fn) -> CheckResult:
    """Exercise: ``fn(scores, target)`` scores (S,) -> the temperature T > 0 with
    entropy(softmax(scores / T)) == target nats, to 4 significant digits."""
    return check_function(fn, exercise="temperature for a target entropy",
                          reference=_temperature_reference, cases=_temperature_cases(),
                          mistakes=TEMPERATURE_MISTAKES, compare=make_compare(atol=0, rtol=1e-4))


# ---------------------------------------------------------------- 4. softmax Jacobian

def _jacobian_reference(z):
    p = torch.softmax(z, dim=-1)  # (S,)
    return torch.diag(p) - torch.outer(p, p)  # (S, S), J[i, j] = dp_i / dz_j


def _p(z):
    return torch.softmax(z, dim=-1)


JACOBIAN_MISTAKES = (
    Mistake("only the diagonal",
            "Each p_i depends on every z_j through the sum in the denominator: the off-diagonal "
            "entries are -p_i p_j.", wrong=lambda z: torch.diag(_p(z) * (1 - _p(z)))),
    Mistake("forgot the diag(p) term",
            "The derivative of exp(z_i) in the numerator gives p_i on the diagonal: "
            "J = diag(p) - p p^T.", wrong=lambda z: -torch.outer(_p(z), _p(z))),
    Mistake("wrong sign of the outer product",
            "Raising z_j increases the denominator, so every other p_i goes down: "
            "J = diag(p) - p p^T (minus).",
            wrong=lambda z: torch.diag(_p(z)) + torch.outer(_p(z), _p(z))),
    Mistake("used the logits instead of the probabilities",
            "The formula is in terms of p = softmax(z), not z.",
            wrong=lambda z: torch.diag(z) - torch.outer(z, z)),
    Mistake("forgot the -p p^T term (differentiated the numerator only)",
            "The normalisation couples the entries, so the off-diagonal entries are -p_i p_j: "
            "J = diag(p) - p p^T.",
            wrong=lambda z: torch.diag(_p(z))),
)


def _jacobian_cases():
    return [
        Case((torch.randn(4, generator=_gen(5), dtype=torch.float64),), label="4 logits"),
        Case((torch.randn(6, generator=_gen(6), dtype=torch.float64) * 3,), label="6 logits"),
        Case((torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64),), label="3 logits"),
        Case((torch.tensor([1000.0, 0.0, -1000.0, 999.0], dtype=torch.float64),),
             label="logits around ±1000 (exp overflows even in float64)"),
        Case((torch.tensor([0.3], dtype=torch.float64),), label="a single logit (S=1)"),
    ]


def check_softmax_jacobian(fn) -> CheckResult:
    """Exercise: ``fn(z)`` logits (S,) -> J (S, S) with J[i, j] = d softmax(z)_i / d z_j."""
    return check_function(fn, exercise="softmax Jacobian", reference=_jacobian_reference,
                          cases=_jacobian_cases(), mistakes=JACOBIAN_MISTAKES,
                          compare=make_compare(atol=1e-6, rtol=1e-5))


# ---------------------------------------------------------------- 5. KL divergence

def _kl_reference(p, q):
    ratio = torch.where(p > 0, p / q, torch.ones_like(p))  # 0 log(0/q) = 0
    return (p * ratio.log()).sum(-1)  # (T,)


KL_MISTAKES = (
    Mistake("arguments swapped",
            "KL is not symmetric: D(p || q) = sum p log(p / q) weights the log-ratio by p.",
            wrong=lambda p, q: _kl_reference(q, p)),
    Mistake("log ratio upside down",
            "Sum p log(q / p) is minus the KL divergence; the KL divergence is >= 0.",
            wrong=lambda p, q: -_kl_reference(p, q)),
    Mistake("0 log 0 gives nan",
            "Where p_i = 0 the term p_i log(p_i / q_i) is 0 (its limit), not nan.",
            wrong=lambda p, q: (p * (p / q).log()).sum(-1)),
    Mistake("cross-entropy instead of KL",
            "D(p || q) = H(p, q) - H(p): subtract the entropy of p.",
            wrong=lambda p, q: -(p * q.log()).sum(-1)),
)


def _kl_cases():
    g = _gen(7)
    p = torch.softmax(torch.randn(3, 5, generator=g), -1)
    q = torch.softmax(torch.randn(3, 5, generator=g), -1)
    with_zero = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    return [
        Case((p, q), label="3 pairs of random distributions"),
        Case((with_zero, torch.full((2, 4), 0.25)), label="p with zeros, q uniform"),
        Case((torch.tensor([[0.5, 0.5, 0.0]]), torch.tensor([[0.5, 0.5, 0.0]])),
             label="p = q with a zero in both (KL = 0)"),
        Case((torch.tensor([[0.9, 0.1], [1.0, 0.0]]), torch.tensor([[1e-30, 1.0 - 1e-30],
                                                                    [0.5, 0.5]])),
             label="q nearly 0 where p is not (a large KL)"),
        Case((torch.tensor([[1.0]]), torch.tensor([[1.0]])), label="a single key (S=1)"),
    ]


def check_kl_divergence(fn) -> CheckResult:
    """Exercise: ``fn(p, q)`` p, q (T, S) rows of probabilities -> (T,) D_KL(p || q) in nats."""
    return check_function(fn, exercise="KL divergence", reference=_kl_reference,
                          cases=_kl_cases(), mistakes=KL_MISTAKES)


__all__ = ["check_entropy", "check_kl_divergence", "check_softmax_jacobian",
           "check_stable_softmax", "check_temperature_for_entropy"]
