"""Translation metrics for chapter 6: BLEU (Papineni et al. 2002) and alignment error rate.

Sentences are lists of tokens (already tokenised). ``corpus_bleu`` pools n-gram
counts over the whole corpus, as sacreBLEU does; with ``smooth_method="none"`` and
``tokenize="none"`` sacreBLEU gives the same number on whitespace-joined tokens.

A token is a ``str`` or an ``int`` (compared by value). A plain string where a list of
tokens is expected, a tensor of token ids (whose elements would be compared by
identity, so identical corpora would score 0), several references per sentence and an
empty corpus are refused with an error that says what is accepted.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from attnbook.shapes import check_not_nan, check_positive_int, check_tensor

Sentence = Sequence[str]
Link = tuple[int, int]  # (target position, source position)


def _check_sentence(sent, name: str) -> None:
    """A sentence is a list or tuple of str/int tokens."""
    if isinstance(sent, str):
        raise TypeError(f"{name} should be a list of tokens, not a string (it would be read "
                        f"letter by letter): use {name}.split()")
    if isinstance(sent, torch.Tensor):
        raise TypeError(f"{name} is a torch.Tensor of token ids; BLEU compares tokens by "
                        f"value: convert it with vocab.decode(ids) or ids.tolist()")
    if not isinstance(sent, list | tuple):
        raise TypeError(f"{name} should be a list of tokens, got {type(sent).__name__}")
    for token in sent:
        if isinstance(token, list | tuple):
            raise TypeError(f"{name} holds a list where a token should be: one reference "
                            f"per hypothesis is accepted, as a list of tokens (several "
                            f"references per sentence are not supported)")
        if isinstance(token, bool) or not isinstance(token, str | int):
            raise TypeError(f"{name} should hold tokens (str or int), got "
                            f"{type(token).__name__}; convert ids with .tolist()")


def ngrams(tokens: Sentence, n: int) -> Counter:
    """How often each n-gram (a tuple of n tokens) occurs in ``tokens``."""
    _check_sentence(tokens, "tokens")
    check_positive_int(n, "n")
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def modified_precision_counts(hypothesis: Sentence, reference: Sentence, n: int):
    """(clipped matches, hypothesis n-grams): each hypothesis n-gram counts at most as
    often as it occurs in the reference ("the the the" earns one "the", not three)."""
    _check_sentence(hypothesis, "hypothesis")
    _check_sentence(reference, "reference")
    hyp, ref = ngrams(hypothesis, n), ngrams(reference, n)
    matches = sum(min(count, ref[gram]) for gram, count in hyp.items())
    return matches, sum(hyp.values())


def brevity_penalty(hyp_len: int, ref_len: int) -> float:
    """1 if the hypothesis is at least as long as the reference, else exp(1 - r / c)."""
    check_positive_int(hyp_len, "hyp_len", minimum=0)
    check_positive_int(ref_len, "ref_len", minimum=0)
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

    One reference per hypothesis, each a list of tokens; no smoothing (an order without
    any match gives 0).
    """
    for corpus, name in ((hypotheses, "hypotheses"), (references, "references")):
        if isinstance(corpus, str | torch.Tensor) or not isinstance(corpus, Sequence):
            raise TypeError(f"{name} should be a list of sentences (lists of tokens), got "
                            f"{type(corpus).__name__}")
    check_positive_int(max_n, "max_n")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("hypotheses and references are empty: BLEU needs at least one pair")
    for i, (hyp, ref) in enumerate(zip(hypotheses, references, strict=True)):
        _check_sentence(hyp, f"hypotheses[{i}]")
        _check_sentence(ref, f"references[{i}]")
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
    _check_sentence(hypothesis, "hypothesis")
    _check_sentence(reference, "reference")
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
    for links, name in ((predicted, "predicted"), (sure, "sure"), (possible, "possible")):
        if links is None and name == "possible":
            continue
        if isinstance(links, str | torch.Tensor) or not hasattr(links, "__iter__"):
            raise TypeError(f"{name} should be a set of links, tuples like (t, s), got "
                            f"{type(links).__name__}")
        for link in links:
            if not isinstance(link, tuple):
                raise TypeError(f"{name} should hold links as tuples like (t, s), got "
                                f"{link!r}")
    possible = set(sure) if possible is None else set(possible) | set(sure)
    predicted, sure = set(predicted), set(sure)
    if not predicted and not sure:
        raise ValueError("both the predicted and the sure alignment are empty")
    hits = len(predicted & sure) + len(predicted & possible)
    return 1.0 - hits / (len(predicted) + len(sure))


def attention_links(weights: torch.Tensor, length: int | None = None) -> set[Link]:
    """Argmax alignment from attention weights (T, S): target word t -> its top source word.

    ``length`` keeps the first ``length`` target words (1 .. T). A ``nan`` weight raises
    ``ValueError`` (the argmax would pick an arbitrary word).
    """
    check_tensor(weights, "weights", "float")
    if weights.dim() != 2:
        raise ValueError(f"weights should be one (T, S) map, got shape {tuple(weights.shape)}")
    if weights.shape[1] == 0:
        raise ValueError("weights has no source words (S = 0): nothing to align to")
    check_not_nan(weights, "weights")
    if length is not None:
        check_positive_int(length, "length")
        if length > weights.shape[0]:
            raise ValueError(f"length = {length} is longer than the {weights.shape[0]} "
                             f"target words of weights")
    top = weights[:length].argmax(-1)
    return {(t, int(s)) for t, s in enumerate(top)}


def gold_links(alignment: Sequence[int]) -> set[Link]:
    """Gold alignment as links: ``alignment[t]`` is the source position of target word t.

    Positions are ints >= 0 (a tensor row is fine); a -1 (``<eos>`` or padding in
    ``Batch.align``) raises ``ValueError``: cut the row to the sentence's length first.
    """
    if isinstance(alignment, str) or not hasattr(alignment, "__iter__"):
        raise TypeError(f"alignment should be a list of source positions, got "
                        f"{type(alignment).__name__}")
    if isinstance(alignment, torch.Tensor):
        check_tensor(alignment, "alignment", "int")
        alignment = alignment.tolist()
    for s in alignment:
        check_positive_int(s, "each position in alignment", minimum=0)
    return {(t, int(s)) for t, s in enumerate(alignment)}
