"""Translation metrics for chapter 6: BLEU (Papineni et al. 2002) and alignment error rate.

Sentences are lists of tokens (already tokenised). ``corpus_bleu`` pools n-gram
counts over the whole corpus, as sacreBLEU does; with ``smooth_method="none"`` and
``tokenize="none"`` sacreBLEU gives the same number on whitespace-joined tokens.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

Sentence = Sequence[str]
Link = tuple[int, int]  # (target position, source position)


def ngrams(tokens: Sentence, n: int) -> Counter:
    """How often each n-gram (a tuple of n tokens) occurs in ``tokens``."""
    if n < 1:
        raise ValueError(f"n should be >= 1, got {n}")
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def modified_precision_counts(hypothesis: Sentence, reference: Sentence, n: int):
    """(clipped matches, hypothesis n-grams): each hypothesis n-gram counts at most as
    often as it occurs in the reference ("the the the" earns one "the", not three)."""
    hyp, ref = ngrams(hypothesis, n), ngrams(reference, n)
    matches = sum(min(count, ref[gram]) for gram, count in hyp.items())
    return matches, sum(hyp.values())


def brevity_penalty(hyp_len: int, ref_len: int) -> float:
    """1 if the hypothesis is at least as long as the reference, else exp(1 - r / c)."""
    if hyp_len >= ref_len:
        return 1.0
    return math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0


@dataclass
class BleuScore:
    """BLEU in [0, 100], the n-gram precisions (in %), the brevity penalty and the lengths."""

    score: float
    precisions: list[float]
    bp: float
    hyp_len: int
    ref_len: int

    def __str__(self) -> str:
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        return (f"BLEU = {self.score:.2f} {p} (BP = {self.bp:.3f} "
                f"ratio = {self.hyp_len / max(self.ref_len, 1):.3f})")


def corpus_bleu(hypotheses: Sequence[Sentence], references: Sequence[Sentence],
                max_n: int = 4) -> BleuScore:
    """Corpus BLEU: BP * exp(mean_n log p_n), p_n = pooled clipped n-gram precision.

    One reference per hypothesis; no smoothing (an order without any match gives 0).
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    for sent in (*hypotheses[:1], *references[:1]):
        if isinstance(sent, str):
            raise TypeError("sentences should be lists of tokens, not strings: "
                            "use sentence.split()")
    matches, totals = [0] * max_n, [0] * max_n
    for hyp, ref in zip(hypotheses, references, strict=True):
        for n in range(1, max_n + 1):
            m, t = modified_precision_counts(hyp, ref, n)
            matches[n - 1] += m
            totals[n - 1] += t
    hyp_len = sum(len(h) for h in hypotheses)
    ref_len = sum(len(r) for r in references)
    bp = brevity_penalty(hyp_len, ref_len)
    precisions = [100.0 * m / t if t else 0.0 for m, t in zip(matches, totals, strict=True)]
    if min(precisions) == 0.0:
        return BleuScore(0.0, precisions, bp, hyp_len, ref_len)
    score = bp * math.exp(sum(math.log(p) for p in precisions) / max_n)
    return BleuScore(score, precisions, bp, hyp_len, ref_len)


def token_accuracy(hypothesis: Sentence, reference: Sentence) -> float:
    """Fraction of reference positions where the hypothesis has the same token.

    Position by position: a dropped or extra word shifts everything after it,
    so this is a strict measure (a missing tail counts as wrong).
    """
    if len(reference) == 0:
        raise ValueError("the reference is empty")
    same = sum(1 for h, r in zip(hypothesis, reference, strict=False) if h == r)
    return same / len(reference)


def alignment_error_rate(predicted: set[Link], sure: set[Link],
                         possible: set[Link] | None = None) -> float:
    """AER (Och & Ney 2003) = 1 - (|A & S| + |A & P|) / (|A| + |S|), with S <= P.

    ``possible`` defaults to ``sure``; sure links are always possible too.
    0 is perfect agreement, 1 none at all.
    """
    possible = set(sure) if possible is None else set(possible) | set(sure)
    predicted, sure = set(predicted), set(sure)
    if not predicted and not sure:
        raise ValueError("both the predicted and the sure alignment are empty")
    hits = len(predicted & sure) + len(predicted & possible)
    return 1.0 - hits / (len(predicted) + len(sure))


def attention_links(weights: torch.Tensor, length: int | None = None) -> set[Link]:
    """Argmax alignment from attention weights (T, S): target word t -> its top source word."""
    if weights.dim() != 2:
        raise ValueError(f"weights should be one (T, S) map, got shape {tuple(weights.shape)}")
    top = weights[:length].argmax(-1)
    return {(t, int(s)) for t, s in enumerate(top)}


def gold_links(alignment: Sequence[int]) -> set[Link]:
    """Gold alignment as links: ``alignment[t]`` is the source position of target word t."""
    return {(t, int(s)) for t, s in enumerate(alignment)}
