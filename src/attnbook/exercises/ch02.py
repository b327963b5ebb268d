"""Checkers for the exercises of chapter 2: the log-sum-exp of a masked row, the
temperature that gives the top weight a chosen value, the softmax Jacobian-vector
product, and the Jensen-Shannon divergence between attention rows with zeros.

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


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


NEG_INF = float("-inf")

# ---------------------------------------------------------------- 1. masked log-sum-exp


def _masked_lse_reference(scores, keep):
    return torch.logsumexp(scores.masked_fill(~keep, NEG_INF), dim=-1)  # (T,)


def _lse_max_over_all(scores, keep):
    m = scores.amax(-1, keepdim=True)  # the maximum of the masked keys too
    return (m + torch.log((torch.exp(scores - m) * keep).sum(-1, keepdim=True))).squeeze(-1)


def _nan_on_empty_row(got, expected, case):
    got = torch.as_tensor(got)
    empty = ~case.args[1].any(-1)  # (T,) rows with no key kept
    return bool(got.shape == expected.shape and empty.any() and got[empty].isnan().any())


MASKED_LSE_MISTAKES = (
    Mistake("masked scores set to 0 instead of -inf",
            "A masked key must add nothing to the sum: exp(-inf) = 0, but exp(0) = 1 adds one "
            "for every masked key. Fill with -inf (scores.masked_fill(~keep, -inf)).",
            wrong=lambda s, keep: torch.logsumexp(s.masked_fill(~keep, 0.0), -1)),
    Mistake("took the maximum over the masked keys too",
            "A masked key with a large score sets the shift m, every kept key's exp(z - m) "
            "underflows to 0, and log 0 = -inf. Take the maximum of the kept keys only.",
            wrong=_lse_max_over_all),
    Mistake("no max-subtraction (overflow)",
            "exp(1000) is inf in float32: shift by the row maximum of the kept keys, "
            "log sum exp z = m + log sum exp(z - m).",
            wrong=lambda s, keep: torch.log((s.exp() * keep).sum(-1))),
    Mistake("mask read the wrong way round",
            "Here True means attend (as in F.scaled_dot_product_attention): keep the keys "
            "where the mask is True, drop the others.",
            wrong=lambda s, keep: torch.logsumexp(s.masked_fill(keep, NEG_INF), -1)),
    Mistake("a row with no key kept gives nan",
            "With every key masked, the row maximum is -inf and -inf - (-inf) is nan. The "
            "log of an empty sum is log 0 = -inf: return -inf for such a row (for example "
            "replace a -inf maximum by 0 before subtracting it).",
            detect=_nan_on_empty_row),
    Mistake("filled with a large negative number instead of -inf",
            "-1e9 is not -inf: a row with every key masked then gets about -1e9 instead of "
            "log 0 = -inf. Fill with float('-inf') and handle the empty row.",
            detect=lambda got, expected, case: bool(
                ((torch.as_tensor(got) < -1e8) & torch.isfinite(torch.as_tensor(got))
                 & torch.isneginf(expected)).any())),
)


def _masked_lse_cases():
    g = _gen(0)
    s1 = torch.randn(3, 5, generator=g) * 2
    k1 = torch.tensor([[True, False, True, True, False], [True] * 5,
                       [False, False, False, True, False]])
    return [
        Case((s1, k1), label="3 queries, 5 keys, some masked"),
        Case((torch.tensor([[1000.0, 0.0, 1.0], [-1000.0, -999.0, -998.0]]),
              torch.tensor([[False, True, True], [True, True, True]])),
             label="a masked key scoring 1000, kept keys near 0; a row near -1000"),
        Case((torch.tensor([[2.0, 3.0, -1.0], [0.5, 0.0, 4.0]]),
              torch.tensor([[True, False, True], [False, False, False]])),
             label="a row with every key masked"),
        Case((torch.tensor([[7.0], [3.0]]), torch.tensor([[True], [False]])),
             label="a single key (S=1), kept in one row, masked in the other"),
        Case((torch.randn(2, 7, generator=g) * 300,
              torch.tensor([[True, True, False, True, False, True, True],
                            [False, True, True, False, False, False, True]])),
             label="7 keys with scores of several hundred"),
    ]


def check_masked_logsumexp(fn) -> CheckResult:
    """Exercise: ``fn(scores, keep)`` scores (T, S), keep (T, S) bool, True = attend ->
    (T,) log sum_{j kept} exp(scores_j); -inf for a row with no key kept."""
    return check_function(fn, exercise="masked log-sum-exp", reference=_masked_lse_reference,
                          cases=_masked_lse_cases(), mistakes=MASKED_LSE_MISTAKES)


# ---------------------------------------------------------------- 2. temperature for a top weight

def _top_weight(scores, tau):
    return float(torch.softmax(scores.double() / tau, dim=-1).max())


def _temperature_reference(scores, target):
    lo, hi = math.log(1e-8), math.log(1e8)  # bisection on log tau
    for _ in range(200):
        mid = (lo + hi) / 2
        if _top_weight(scores, math.exp(mid)) > target:  # too sharp: hotter
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def _top_two(scores, target):
    if target <= 0.5:  # two keys cannot give the top one less than half
        raise ValueError("no temperature gives two keys a top weight <= 1/2")
    z = scores.double().sort(descending=True).values
    return float((z[0] - z[1]) / math.log(target / (1 - target)))


def _near_target(got, expected, case):
    s, target = case.args
    tau = float(to_numpy(got))
    off = abs(tau / float(expected) - 1) > 1e-4 if tau > 0 else False
    room = min(target - 1 / len(s), 1 - target)  # how far the ends 1/S and 1 are
    return off and abs(_top_weight(s, tau) - target) < 0.1 * room


def _at_an_end(got, expected, case):
    s, target = case.args
    tau = float(to_numpy(got))
    if not tau > 0:
        return False
    w = _top_weight(s, tau)
    return abs(w - target) > 1e-3 and (w > 1 - 1e-4 or w < 1 / len(s) + 1e-4)


def _overflowed(got, expected, case):
    """Stuck at an end where exp(scores / tau) overflows float32."""
    s, target = case.args
    tau = float(to_numpy(got))
    return _at_an_end(got, expected, case) and float(s.max()) / tau > 88.7


TEMPERATURE_MISTAKES = (
    Mistake("temperature not positive",
            "A temperature is a positive number: softmax(scores / tau) with tau > 0.",
            detect=lambda got, expected, case: float(to_numpy(got)) <= 0),
    Mistake("multiplied the scores by the temperature",
            "Temperature divides the scores: softmax(scores / tau). Multiplying gives the "
            "reciprocal temperature.",
            wrong=lambda s, target: 1 / _temperature_reference(s, target)),
    Mistake("returned log tau",
            "Bisecting on log tau is a good idea (tau spans many orders of magnitude), but "
            "return tau itself: math.exp of the midpoint.",
            wrong=lambda s, target: math.log(_temperature_reference(s, target))),
    Mistake("bisection moved the wrong end",
            "Your temperature makes the top weight 1 or 1/S on every case: the bisection "
            "always moved the same end. The top weight *falls* as tau grows (unlike the "
            "entropy): if the top weight at the midpoint is above the target, the answer is "
            "hotter, so raise the lower end.", detect=_at_an_end, everywhere=True),
    Mistake("exp overflowed during the search",
            "For a small tau, exp(scores / tau) is inf (in float32 above about 88.7), "
            "inf / inf is nan, a comparison with nan is False, and the bisection drifts to "
            "one end. Compute the weights with torch.softmax (it subtracts the maximum) or "
            "subtract the largest score yourself.", detect=_overflowed),
    Mistake("kept only the two largest scores",
            "With two keys, p = 1 / (1 + exp(-(z1 - z2) / tau)) can be solved for tau, but "
            "every other key takes weight too: solve for the top weight of all S keys "
            "(bisection works: it falls steadily as tau grows).", wrong=_top_two),
    Mistake("bisection stopped too early",
            "Your top weight is near the target but not within 4 digits: each step halves "
            "the interval, so run more steps (60 or so) or until hi / lo is close to 1.",
            detect=_near_target),
)


def _temperature_cases():
    s1 = torch.randn(6, generator=_gen(4)) * 2
    return [
        Case((torch.tensor([1.0, -0.5]), 0.8), label="2 scores, target 0.8"),
        Case((s1, 0.6), label="6 scores, target 0.6"),
        Case((s1, 0.99), label="6 scores, target 0.99 (cold)"),
        Case((s1, 1 / 6 + 0.01), label="6 scores, target just above 1/6 (very hot)"),
        Case((torch.tensor([300.0, 0.0, -300.0, 200.0]), 0.9),
             label="4 scores spread over 600, target 0.9"),
        Case((torch.tensor([1000.0, 999.0, 997.0, 990.0, 998.5, 996.0, 999.5]), 0.3),
             label="7 scores around 1000, target 0.3"),
    ]


def check_temperature_for_top_weight(fn) -> CheckResult:
    """Exercise: ``fn(scores, target)`` scores (S,) with one largest score, 1/S < target < 1
    -> the temperature tau > 0 with max softmax(scores / tau) == target, to 4 digits."""
    return check_function(fn, exercise="temperature for a top weight",
                          reference=_temperature_reference, cases=_temperature_cases(),
                          mistakes=TEMPERATURE_MISTAKES, compare=make_compare(atol=0, rtol=1e-4))


# ---------------------------------------------------------------- 3. Jacobian-vector product

def _p(z):
    return torch.softmax(z, dim=-1)


def _jvp_reference(z, v):
    p = _p(z)  # (T, S)
    return p * (v - (p * v).sum(-1, keepdim=True))  # (T, S): row t is J_t v_t


JVP_MISTAKES = (
    Mistake("forgot the -p p^T term",
            "J = diag(p) - p p^T: besides p * v, subtract p times the p-weighted average of "
            "v, (p * v).sum(-1, keepdim=True).", wrong=lambda z, v: _p(z) * v),
    Mistake("subtracted the plain sum of v",
            "p p^T v = p (p . v): the sum of v is weighted by p, (p * v).sum(-1, "
            "keepdim=True), not v.sum(-1).",
            wrong=lambda z, v: _p(z) * (v - v.sum(-1, keepdim=True))),
    Mistake("subtracted the mean of v",
            "The average that is subtracted is weighted by p: (p * v).sum(-1, keepdim=True), "
            "not v.mean(-1).", wrong=lambda z, v: _p(z) * (v - v.mean(-1, keepdim=True))),
    Mistake("sum without keepdim=True",
            "(p * v).sum(-1) has shape (T,), which broadcasts against (T, S) along the wrong "
            "axis; keep the axis: .sum(-1, keepdim=True).",
            wrong=lambda z, v: _p(z) * (v - (_p(z) * v).sum(-1))),
    Mistake("used the logits instead of the probabilities",
            "The formula is in terms of p = softmax(z), not z.",
            wrong=lambda z, v: z * (v - (z * v).sum(-1, keepdim=True))),
    Mistake("wrong sign of the p p^T term",
            "Raising one score lowers every other weight: J v = p * v - p (p . v) (minus).",
            wrong=lambda z, v: _p(z) * (v + (_p(z) * v).sum(-1, keepdim=True))),
)


def _jvp_cases():
    g = _gen(5)
    return [
        Case((torch.randn(4, 4, generator=g) * 3, torch.randn(4, 4, generator=g)),
             label="T=S=4"),
        Case((torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)),
             label="3 rows of 5 logits"),
        Case((torch.randn(2, 6, generator=g), torch.ones(2, 6)),
             label="v all ones (shifting every score changes nothing)"),
        Case((torch.tensor([[1000.0, 0.0, -1000.0, 999.0]]), torch.tensor([[1.0, 2.0, 3.0, -1.0]])),
             label="logits around ±1000"),
        Case((torch.tensor([[0.3], [-2.0]]), torch.tensor([[1.5], [-4.0]])),
             label="a single logit per row (S=1)"),
        Case((torch.randn(2, 7, generator=g), torch.randn(2, 7, generator=g)),
             label="2 rows of 7 logits"),
    ]


def check_softmax_jvp(fn) -> CheckResult:
    """Exercise: ``fn(z, v)`` logits z (T, S), directions v (T, S) -> (T, S), row t equal to
    J(z_t) v_t with J = diag(p) - p p^T, without forming J."""
    return check_function(fn, exercise="softmax Jacobian-vector product",
                          reference=_jvp_reference, cases=_jvp_cases(), mistakes=JVP_MISTAKES,
                          compare=make_compare(atol=1e-6, rtol=1e-5))


# ---------------------------------------------------------------- 4. Jensen-Shannon divergence

def _kl_terms(p, m):
    ratio = torch.where(p > 0, p / torch.where(p > 0, m, 1.0), 1.0)  # 0 log(0/m) = 0
    return (p * ratio.log()).sum(-1)


def _js_reference(P, Q):
    M = (P + Q) / 2  # (B, T, S), > 0 wherever P or Q is
    return (_kl_terms(P, M) + _kl_terms(Q, M)) / 2 / math.log(2)  # (B, T), bits


def _kl_bits(p, q):
    ratio = torch.where(p > 0, p / q, torch.ones_like(p))
    return (p * ratio.log()).sum(-1) / math.log(2)


JS_MISTAKES = (
    Mistake("KL(P || Q) instead of the Jensen-Shannon divergence",
            "KL(P || Q) is inf wherever Q is 0 and P is not, and it is not symmetric. The "
            "Jensen-Shannon divergence compares both with their average M = (P + Q) / 2.",
            wrong=_kl_bits),
    Mistake("symmetrised KL instead of the Jensen-Shannon divergence",
            "(KL(P || Q) + KL(Q || P)) / 2 is still inf with zeros: compare each with the "
            "mixture M = (P + Q) / 2 instead, which is positive wherever P or Q is.",
            wrong=lambda P, Q: (_kl_bits(P, Q) + _kl_bits(Q, P)) / 2),
    Mistake("nats instead of bits",
            "Divide by ln 2 (or use log2): in bits the divergence lies between 0 and 1.",
            wrong=lambda P, Q: _js_reference(P, Q) * math.log(2)),
    Mistake("forgot the halves",
            "JS = (KL(P || M) + KL(Q || M)) / 2 with M = (P + Q) / 2.",
            wrong=lambda P, Q: 2 * _js_reference(P, Q)),
    Mistake("0 log 0 gives nan",
            "Where P is 0, the term P log(P / M) is 0 (its limit), not 0 * (-inf) = nan; "
            "use torch.where(P > 0, ..., 0) or torch.xlogy.",
            wrong=lambda P, Q: ((P * (2 * P / (P + Q)).log()).sum(-1)
                                + (Q * (2 * Q / (P + Q)).log()).sum(-1)) / 2 / math.log(2)),
)


def _js_cases():
    g = _gen(7)
    P = torch.softmax(torch.randn(2, 3, 5, generator=g), -1)
    Q = torch.softmax(torch.randn(2, 3, 5, generator=g), -1)
    disjoint_p = torch.tensor([[[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]])
    disjoint_q = torch.tensor([[[0.0, 0.0, 0.3, 0.7], [0.0, 0.25, 0.25, 0.5]]])
    zeros_p = torch.tensor([[[0.2, 0.0, 0.3, 0.0, 0.5, 0.0, 0.0]]])
    zeros_q = torch.tensor([[[0.0, 0.1, 0.3, 0.0, 0.1, 0.5, 0.0]]])
    return [
        Case((P, Q), label="B=2, T=3, S=5, no zeros"),
        Case((disjoint_p, disjoint_q), label="rows with no key in common (1 bit)"),
        Case((zeros_p, zeros_q), label="S=7, zeros in both, some in the same places"),
        Case((torch.tensor([[[0.0, 1.0, 0.0]], [[0.2, 0.3, 0.5]]]),
              torch.tensor([[[0.0, 1.0, 0.0]], [[1 / 3, 1 / 3, 1 / 3]]])),
             label="identical one-hot rows (0 bits); a row against uniform"),
        Case((torch.ones(2, 1, 1), torch.ones(2, 1, 1)), label="a single key (S=1)"),
        Case((torch.tensor([[[1.0 - 1e-30, 1e-30]]]), torch.tensor([[[1e-30, 1.0 - 1e-30]]])),
             label="weights of 1e-30 where the other row has nearly 1"),
    ]


def check_js_divergence(fn) -> CheckResult:
    """Exercise: ``fn(P, Q)`` attention weights P, Q (B, T, S), rows summing to 1, zeros
    allowed -> (B, T) Jensen-Shannon divergences in bits."""
    return check_function(fn, exercise="Jensen-Shannon divergence", reference=_js_reference,
                          cases=_js_cases(), mistakes=JS_MISTAKES)


__all__ = ["check_js_divergence", "check_masked_logsumexp", "check_softmax_jvp",
           "check_temperature_for_top_weight"]
