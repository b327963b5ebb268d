"""Checkers for chapter 6: a Bahdanau decoder step, BLEU's modified n-gram precision,
the brevity penalty and the alignment error rate."""

import math
from collections import Counter

import torch

from attnbook.attention import masked_softmax
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- 1. one Bahdanau decoder step -------------------------------------------------

def _bahdanau(emb, s_prev, annotations, src_len, W_q, W_k, v, cell, *, mask=True, tanh=True,
              order="emb_first", keep_extra=0):
    pre = s_prev[:, None] @ W_q + annotations @ W_k  # (B, 1, A) + (B, S, A) -> (B, S, A)
    scores = (torch.tanh(pre) if tanh else pre) @ v  # (B, S, A) @ (A,) -> (B, S)
    lengths = (src_len + keep_extra).clamp(max=scores.shape[-1])
    weights = masked_softmax(scores, lengths) if mask else torch.softmax(scores, dim=-1)
    context = (weights[:, None] @ annotations).squeeze(1)  # (B, 1, S) @ (B, S, D) -> (B, D)
    x = torch.cat([emb, context] if order == "emb_first" else [context, emb], dim=-1)
    return cell(x, s_prev), context, weights


def _step_case(seed, B, S, E, H, A, src_len):
    g = _gen(seed)
    torch.manual_seed(seed)  # the GRU cell's own initialisation
    cell = torch.nn.GRUCell(E + 2 * H, H)
    args = (torch.randn(B, E, generator=g), torch.randn(B, H, generator=g),
            torch.randn(B, S, 2 * H, generator=g), torch.tensor(src_len),
            torch.randn(H, A, generator=g), torch.randn(2 * H, A, generator=g),
            torch.randn(A, generator=g), cell)
    return Case(args, label=f"B={B}, S={S}, E={E}, H={H}, A={A}, src_len={src_len}")


def _large_score_case():
    # A long v: scores of several hundred, so an exp without the max subtracted overflows.
    case = _step_case(3, 2, 5, 3, 2, 4, [5, 3])
    args = list(case.args)
    args[6] = 200 * args[6]
    return Case(tuple(args), label="B=2, S=5, scores of several hundred, src_len=[5, 3]")


_STEP_CASES = [
    _step_case(0, 3, 5, 4, 3, 6, [5, 2, 4]),
    _step_case(1, 2, 6, 3, 4, 5, [1, 6]),
    _step_case(2, 4, 4, 6, 2, 3, [4, 4, 3, 2]),
    _step_case(4, 1, 1, 2, 2, 3, [1]),
    _large_score_case(),
]

_STEP_MISTAKES = [
    Mistake("padding received attention", "the source positions at or beyond src_len are "
            "padding and must get weight exactly 0: use masked_softmax(scores, src_len), or fill "
            "their scores with a very negative number before the softmax.",
            wrong=lambda *a: _bahdanau(*a, mask=False)),
    Mistake("forgot the tanh", "additive attention is v^T tanh(W_q s + W_k h): without the "
            "tanh it is just a linear function of h and s.", wrong=lambda *a: _bahdanau(*a,
                                                                                tanh=False)),
    Mistake("softmax over the batch axis", "each sentence distributes its own attention over "
            "its source positions: the softmax runs over the last axis (S), not over the batch.",
            detect=lambda got, exp, case: torch.allclose(
                got[2].sum(0), torch.ones(got[2].shape[1]), atol=1e-4)),
    Mistake("off by one in the padding mask", "positions 0 .. src_len-1 are real words: "
            "mask the positions s >= src_len (keep s < src_len), not s > src_len.",
            wrong=lambda *a: _bahdanau(*a, keep_extra=1)),
    Mistake("concatenated [context; embedding] in the wrong order", "the GRU cell expects its "
            "input as torch.cat([emb, context], dim=-1): the embedding of y_{t-1} first.",
            wrong=lambda *a: _bahdanau(*a, order="context_first")),
]


def check_bahdanau_step(fn) -> CheckResult:
    """Check ``fn(emb, s_prev, annotations, src_len, W_q, W_k, v, cell)``
    -> ``(s_new (B, H), context (B, D), weights (B, S))`` for annotations (B, S, D)."""
    return check_function(fn, exercise="bahdanau_step", reference=_bahdanau, cases=_STEP_CASES,
                          mistakes=_STEP_MISTAKES,
                          output_names=("s_new (B, H)", "the context (B, D)",
                                        "the weights (B, S)"))


# --- 2. BLEU's modified n-gram precision ------------------------------------------

def _grams(tokens, n, drop_last=False):
    stop = len(tokens) - n + (0 if drop_last else 1)
    return Counter(tuple(tokens[i:i + n]) for i in range(max(stop, 0)))


def _precision(hypothesis, reference, n, *, clip=True, distinct=False, by_ref=False,
               drop_last=False):
    hyp, ref = _grams(hypothesis, n, drop_last), _grams(reference, n, drop_last)
    if distinct:
        matches = len(set(hyp) & set(ref))
    elif clip:
        matches = sum(min(c, ref[g]) for g, c in hyp.items())
    else:
        matches = sum(c for g, c in hyp.items() if g in ref)
    total = sum((ref if by_ref else hyp).values())
    return matches / total if total else 0.0


_PREC_CASES = [  # the first case tells every mistake below apart
    Case(("a b a b a b c".split(), "a b c a b d e f".split(), 2), label="bigrams, n=2"),
    Case(("the the the the the the the".split(), "the cat is on the mat".split(), 1),
         label="Papineni's example: 'the' x 7 against 'the cat is on the mat', n=1"),
    Case(("the cat the cat on the mat".split(), "the cat is on the mat".split(), 2),
         label="a repeated bigram, n=2"),
    Case(("a b a b a b c".split(), "a b c a b".split(), 1), label="unigrams, n=1"),
    Case(("x y z x y z".split(), "x y z w".split(), 3), label="trigrams, n=3"),
    Case(("a b".split(), "a b c d".split(), 3), label="hypothesis shorter than n (no n-grams)"),
    Case(("a b c d e".split(), "a b c d e".split(), 4), label="hypothesis = reference, n=4"),
    Case(("x y".split(), "a b c".split(), 1), label="no word in common, n=1"),
]

_PREC_MISTAKES = [
    Mistake("counts are not clipped", "an n-gram may be credited at most as often as it "
            "occurs in the reference: min(count in hypothesis, count in reference).",
            wrong=lambda h, r, n: _precision(h, r, n, clip=False)),
    Mistake("counted distinct n-grams only", "a set forgets how often an n-gram occurs: use "
            "collections.Counter and clip each count.",
            wrong=lambda h, r, n: _precision(h, r, n, distinct=True)),
    Mistake("divided by the reference's n-grams", "precision asks how much of the "
            "*hypothesis* is right: divide by the number of n-grams in the hypothesis.",
            wrong=lambda h, r, n: _precision(h, r, n, by_ref=True)),
    Mistake("missed the last n-gram (off by one)", "a sentence of L tokens has L - n + 1 "
            "n-grams: range(len(tokens) - n + 1).",
            wrong=lambda h, r, n: _precision(h, r, n, drop_last=True)),
]


def check_modified_precision(fn) -> CheckResult:
    """Check ``fn(hypothesis, reference, n)`` -> clipped n-gram precision, a float in [0, 1]."""
    return check_function(fn, exercise="modified_precision", reference=_precision,
                          cases=_PREC_CASES, mistakes=_PREC_MISTAKES)


# --- 3. the brevity penalty -------------------------------------------------------

def _bp(hyp_len, ref_len, *, always=False, inverted=False):
    if hyp_len >= ref_len and not always:
        return 1.0
    if hyp_len == 0:
        return 0.0
    return math.exp(1 - (hyp_len / ref_len if inverted else ref_len / hyp_len))


_BP_CASES = [Case((10, 10), label="same length"), Case((8, 10), label="hypothesis shorter"),
             Case((12, 10), label="hypothesis longer"), Case((1, 4), label="much shorter"),
             Case((0, 5), label="empty hypothesis"), Case((1, 1), label="one word each"),
             Case((3, 7), label="hypothesis less than half as long")]

_BP_MISTAKES = [
    Mistake("penalised long hypotheses too", "the penalty only punishes hypotheses *shorter* "
            "than the reference; when c >= r it is exactly 1 (long ones already lose precision).",
            wrong=lambda c, r: _bp(c, r, always=True)),
    Mistake("the ratio is inverted", "BP = exp(1 - r / c) with r the reference length and c "
            "the hypothesis length: for c < r, r / c > 1 and BP < 1.",
            wrong=lambda c, r: _bp(c, r, inverted=True)),
    Mistake("the 1 - is missing", "BP = exp(1 - r / c): it is exactly 1 when c = r.",
            wrong=lambda c, r: 1.0 if c >= r else (math.exp(-r / c) if c else 0.0)),
]


def check_brevity_penalty(fn) -> CheckResult:
    """Check ``fn(hyp_len, ref_len)`` -> the brevity penalty, a float in [0, 1]."""
    return check_function(fn, exercise="brevity_penalty", reference=_bp, cases=_BP_CASES,
                          mistakes=_BP_MISTAKES)


# --- 4. the alignment error rate --------------------------------------------------

def _aer(predicted, sure, possible, *, sure_twice=False, agreement=False, by_p=False):
    hits = len(predicted & sure) + len(predicted & (sure if sure_twice else possible))
    rate = hits / (len(predicted) + len(possible if by_p else sure))
    return rate if agreement else 1.0 - rate


def _links(*pairs):
    return set(pairs)


_AER_CASES = [
    Case((_links((0, 0), (1, 1), (2, 2)), _links((0, 0), (1, 1), (2, 2)),
          _links((0, 0), (1, 1), (2, 2))), label="perfect agreement"),
    Case((_links((0, 0), (1, 2), (2, 1)), _links((0, 0), (2, 1)),
          _links((0, 0), (1, 1), (1, 2), (2, 1))), label="one link only 'possible'"),
    Case((_links((0, 1), (1, 0)), _links((0, 0), (1, 1)), _links((0, 0), (1, 1))),
         label="every link wrong"),
    Case((_links((0, 0), (1, 1), (2, 3), (3, 3)), _links((0, 0), (2, 2), (3, 3)),
          _links((0, 0), (1, 1), (2, 2), (2, 3), (3, 3), (1, 0))), label="a mixed case"),
    Case((set(), _links((0, 0), (1, 1)), _links((0, 0), (1, 1), (1, 2))),
         label="no predicted link at all"),
]

_AER_MISTAKES = [
    Mistake("ignored the possible links", "AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|): the "
            "second term uses P, so a link that is only 'possible' still earns credit.",
            wrong=lambda a, s, p: _aer(a, s, p, sure_twice=True)),
    Mistake("returned the agreement, not the error rate", "AER is 1 minus the agreement: 0 "
            "means perfect, 1 means no link agrees.",
            wrong=lambda a, s, p: _aer(a, s, p, agreement=True)),
    Mistake("divided by |A| + |P|", "the denominator is |A| + |S|, the predicted links plus "
            "the *sure* links.", wrong=lambda a, s, p: _aer(a, s, p, by_p=True)),
]


def check_alignment_error_rate(fn) -> CheckResult:
    """Check ``fn(predicted, sure, possible)`` (sets of (t, s) links, sure <= possible)
    -> the alignment error rate, a float in [0, 1]."""
    return check_function(fn, exercise="alignment_error_rate", reference=_aer, cases=_AER_CASES,
                          mistakes=_AER_MISTAKES)
