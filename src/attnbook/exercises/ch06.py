"""Checkers for chapter 6: a Bahdanau decoder step with a scaled dot-product score, BLEU's
clipped n-gram precision over a corpus with several references, and the alignment error
rate of an attention map."""

import math
from collections import Counter

import torch

from attnbook.attention import masked_softmax
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- 1. a Bahdanau step with a dot-product score ----------------------------------

def _dot_step(emb, s_prev, annotations, src_len, W_q, W_k, cell, *, mask=True, scale="sqrt",
              order="emb_first", keep_extra=0):
    A = W_q.shape[1]
    q = s_prev @ W_q                                   # (B, H) @ (H, A) -> (B, A)
    k = annotations @ W_k                              # (B, S, D) @ (D, A) -> (B, S, A)
    div = {"sqrt": math.sqrt(A), "none": 1.0, "A": float(A)}[scale]
    scores = (k @ q[:, :, None]).squeeze(-1) / div     # (B, S)
    lengths = (src_len + keep_extra).clamp(max=scores.shape[-1])
    weights = masked_softmax(scores, lengths) if mask else torch.softmax(scores, dim=-1)
    context = (weights[:, None] @ annotations).squeeze(1)  # (B, 1, S) @ (B, S, D) -> (B, D)
    x = torch.cat([emb, context] if order == "emb_first" else [context, emb], dim=-1)
    return cell(x, s_prev), context, weights


def dot_step_reference(emb, s_prev, annotations, src_len, W_q, W_k, cell):
    """Look, then step, with score(s, h_j) = (s W_q) . (h_j W_k) / sqrt(A)."""
    return _dot_step(emb, s_prev, annotations, src_len, W_q, W_k, cell)


def _step_case(seed, B, S, E, H, A, src_len, big=1.0):
    g = _gen(seed)
    torch.manual_seed(seed)  # the GRU cell's own initialisation
    cell = torch.nn.GRUCell(E + 2 * H, H)
    args = (torch.randn(B, E, generator=g), torch.randn(B, H, generator=g),
            torch.randn(B, S, 2 * H, generator=g), torch.tensor(src_len),
            big * torch.randn(H, A, generator=g), torch.randn(2 * H, A, generator=g), cell)
    label = f"B={B}, S={S}, E={E}, H={H}, A={A}, src_len={src_len}"
    return Case(args, label=label + (", scores of several hundred" if big > 1 else ""))


_STEP_CASES = [
    _step_case(0, 3, 5, 4, 3, 6, [5, 2, 4]),
    _step_case(1, 2, 6, 3, 4, 5, [1, 6]),
    _step_case(2, 4, 4, 6, 2, 3, [4, 4, 3, 2]),
    _step_case(4, 1, 1, 2, 2, 3, [1]),
    _step_case(3, 2, 5, 3, 2, 4, [5, 3], big=120.0),
]

_STEP_MISTAKES = [
    Mistake("padding received attention", "the source positions at or beyond src_len are "
            "padding and must get weight exactly 0: use masked_softmax(scores, src_len), or "
            "fill their scores with a very negative number before the softmax.",
            wrong=lambda *a: _dot_step(*a, mask=False)),
    Mistake("dot product not scaled", "divide the dot product by sqrt(A), the size of the "
            "projected query and key, as in scaled dot-product attention.",
            wrong=lambda *a: _dot_step(*a, scale="none")),
    Mistake("divided by A instead of sqrt(A)", "the dot product of two A-dimensional "
            "vectors of unit-variance entries has standard deviation sqrt(A): divide by "
            "sqrt(A).", wrong=lambda *a: _dot_step(*a, scale="A")),
    Mistake("softmax over the batch axis", "each sentence distributes its own attention "
            "over its source positions: the softmax runs over the last axis (S).",
            detect=lambda got, exp, case: got[2].shape[0] > 1 and torch.allclose(
                got[2].sum(0), torch.ones(got[2].shape[1]), atol=1e-4)),
    Mistake("off by one in the padding mask", "positions 0 .. src_len-1 are real words: "
            "mask the positions s >= src_len, not s > src_len.",
            wrong=lambda *a: _dot_step(*a, keep_extra=1)),
    Mistake("concatenated [context; embedding] in the wrong order", "the GRU cell expects "
            "its input as torch.cat([emb, context], dim=-1): the embedding first.",
            wrong=lambda *a: _dot_step(*a, order="context_first")),
]


def check_dot_bahdanau_step(fn) -> CheckResult:
    """Check ``fn(emb, s_prev, annotations, src_len, W_q, W_k, cell)``
    -> ``(s_new (B, H), context (B, D), weights (B, S))`` for annotations (B, S, D)."""
    return check_function(fn, exercise="a Bahdanau step with a dot score",
                          reference=dot_step_reference, cases=_STEP_CASES,
                          mistakes=_STEP_MISTAKES,
                          output_names=("s_new (B, H)", "the context (B, D)",
                                        "the weights (B, S)"))


# --- 2. clipped precision over a corpus with several references -------------------

def _grams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(max(len(tokens) - n + 1, 0)))


def _corpus_precision(hypotheses, references, n, *, clip="max", pooled=True):
    matched, total, ratios = 0, 0, []
    for hyp, refs in zip(hypotheses, references, strict=True):
        h = _grams(hyp, n)
        ref_counts = [_grams(r, n) for r in refs]
        if clip == "max":
            limit = Counter()
            for rc in ref_counts:
                limit |= rc  # the largest count in any one reference
        elif clip == "sum":
            limit = sum(ref_counts, Counter())
        elif clip == "first":
            limit = ref_counts[0]
        m = sum(min(c, limit[g]) if clip else (c if any(g in rc for rc in ref_counts) else 0)
                for g, c in h.items())
        matched, total = matched + m, total + sum(h.values())
        if sum(h.values()):
            ratios.append(m / sum(h.values()))
    if not pooled:
        return sum(ratios) / len(ratios) if ratios else 0.0
    return matched / total if total else 0.0


def corpus_precision_reference(hypotheses, references, n):
    """BLEU's p_n over a corpus: hypotheses (list of token lists), references (one list of
    reference token lists per hypothesis), n -> float in [0, 1].

    Each hypothesis n-gram is credited at most as often as it occurs in the one reference
    where it occurs most; matches and totals are summed over the corpus, then divided.
    """
    return _corpus_precision(hypotheses, references, n)


def _t(text):
    return text.split()


_PREC_CASES = [  # the first case tells every mistake below apart
    Case(([_t("the the the cat"), _t("a cat sat on the mat mat mat")],
          [[_t("the cat is here"), _t("the the cat")], [_t("a cat sat on the mat")]], 1),
         label="two sentences, two references for the first, n=1"),
    Case(([_t("the the the the the the the")],
          [[_t("the cat is on the mat"), _t("there is a cat on the mat")]], 1),
         label="Papineni's example: 'the' x 7 against two references, n=1"),
    Case(([_t("on the mat on the mat"), _t("x y")],
          [[_t("the cat is on the mat"), _t("on the mat sat the cat")], [_t("x y z")]], 2),
         label="a repeated bigram and a short sentence, n=2"),
    Case(([_t("a b"), _t("a b c d")], [[_t("a b c")], [_t("a b c d"), _t("d c b a")]], 3),
         label="a hypothesis shorter than n, n=3"),
    Case(([_t("x y")], [[_t("a b c")]], 1), label="no word in common, n=1"),
    Case(([_t("a b")], [[_t("a b c")]], 3), label="no n-gram at all in the corpus, n=3"),
]

_PREC_MISTAKES = [
    Mistake("counts are not clipped", "an n-gram may be credited at most as often as it "
            "occurs in a reference: min(count in hypothesis, max count over the references).",
            wrong=lambda h, r, n: _corpus_precision(h, r, n, clip=None)),
    Mistake("clipped by the sum over the references", "the clip is the largest count in "
            "any *one* reference (max over references), not the counts added up.",
            wrong=lambda h, r, n: _corpus_precision(h, r, n, clip="sum")),
    Mistake("clipped against the first reference only", "every reference counts: clip by "
            "the largest count over all of a sentence's references.",
            wrong=lambda h, r, n: _corpus_precision(h, r, n, clip="first")),
    Mistake("averaged the sentence precisions", "corpus BLEU adds the clipped matches and "
            "the n-gram totals over all sentences, then divides once; an average of ratios "
            "gives a short sentence as much say as a long one.",
            wrong=lambda h, r, n: _corpus_precision(h, r, n, pooled=False)),
]


def check_corpus_precision(fn) -> CheckResult:
    """Check ``fn(hypotheses, references, n)`` -> corpus clipped n-gram precision."""
    return check_function(fn, exercise="corpus clipped precision",
                          reference=corpus_precision_reference, cases=_PREC_CASES,
                          mistakes=_PREC_MISTAKES)


# --- 3. the alignment error rate of an attention map ------------------------------

def _map_aer(weights, tgt_len, src_len, sure, possible, *, rows="valid", cols="valid",
             use_p=True, agreement=False, swap=False):
    T = tgt_len if rows == "valid" else weights.shape[0]
    S = src_len if cols == "valid" else weights.shape[1]
    links = {(t, int(weights[t, :S].argmax())) for t in range(T)}
    if swap:
        links = {(s, t) for t, s in links}
    hits = len(links & sure) + len(links & (possible if use_p else sure))
    agree = hits / (len(links) + len(sure))
    return agree if agreement else 1.0 - agree


def attention_aer_reference(weights, tgt_len, src_len, sure, possible):
    """AER of the argmax links of an attention map: weights (T, S) padded, valid lengths
    tgt_len and src_len, sure <= possible sets of (t, s) -> float in [0, 1]."""
    return _map_aer(weights, tgt_len, src_len, sure, possible)


def _map_case(seed, T, S, tgt_len, src_len, label):
    g = _gen(seed)
    w = torch.softmax(2 * torch.randn(T, S, generator=g), -1)
    w[:, src_len:] += 0.6  # padding columns that an unmasked argmax would pick
    gold = [min(t * src_len // max(tgt_len, 1), src_len - 1) for t in range(tgt_len)]
    for t in range(0, tgt_len, 2):
        w[t, gold[t]] += 0.3
    sure = {(t, gold[t]) for t in range(0, tgt_len, 2)}
    possible = sure | {(t, gold[t]) for t in range(tgt_len)} | {
        (t, min(gold[t] + 1, src_len - 1)) for t in range(tgt_len)}
    return Case((w, tgt_len, src_len, sure, possible), label=label)


_MAP_CASES = [
    _map_case(0, 7, 6, 5, 4, "T=7, S=6, tgt_len=5, src_len=4"),
    _map_case(1, 6, 6, 6, 6, "no padding, T=S=6"),
    _map_case(2, 4, 5, 1, 3, "one target word (tgt_len=1)"),
    _map_case(3, 9, 7, 8, 5, "T=9, S=7, tgt_len=8, src_len=5"),
]

_MAP_MISTAKES = [
    Mistake("padded target rows counted", "rows t >= tgt_len are padding of the target: "
            "they are not words and make no links.",
            wrong=lambda *a: _map_aer(*a, rows="all")),
    Mistake("argmax over the padded source columns", "a target word may only link to a real "
            "source word: take the argmax over weights[t, :src_len].",
            wrong=lambda *a: _map_aer(*a, cols="all")),
    Mistake("ignored the possible links", "AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|): the "
            "second term uses P, so a link that is only 'possible' still earns credit.",
            wrong=lambda *a: _map_aer(*a, use_p=False)),
    Mistake("returned the agreement, not the error rate", "AER is 1 minus the agreement: "
            "0 means perfect.", wrong=lambda *a: _map_aer(*a, agreement=True)),
    Mistake("links written as (source, target)", "the gold links are (t, s) pairs: "
            "target position first.", wrong=lambda *a: _map_aer(*a, swap=True)),
]


def check_attention_aer(fn) -> CheckResult:
    """Check ``fn(weights (T, S), tgt_len, src_len, sure, possible)`` -> AER, a float."""
    return check_function(fn, exercise="AER of an attention map",
                          reference=attention_aer_reference, cases=_MAP_CASES,
                          mistakes=_MAP_MISTAKES)
