"""BLEU against sacreBLEU, and the alignment error rate."""

import random

import pytest
import sacrebleu
import torch

from attnbook.metrics import (
    alignment_error_rate,
    attention_links,
    brevity_penalty,
    corpus_bleu,
    gold_links,
    modified_precision_counts,
    token_accuracy,
)


def _sacre(hyps, refs):
    return sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]],
                                 tokenize="none", smooth_method="none")


def _noisy_pairs(seed, n=40):
    rng = random.Random(seed)
    words = "a b c d e f g h".split()
    refs = [[rng.choice(words) for _ in range(rng.randint(4, 25))] for _ in range(n)]
    hyps = []
    for r in refs:
        h = [w if rng.random() < 0.8 else rng.choice(words) for w in r]
        hyps.append(h[: rng.randint(max(1, len(h) - 6), len(h) + 2)])
    return hyps, refs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bleu_equals_sacrebleu(seed):
    hyps, refs = _noisy_pairs(seed)
    ours, theirs = corpus_bleu(hyps, refs), _sacre(hyps, refs)
    assert ours.score == pytest.approx(theirs.score, abs=1e-6)
    assert ours.precisions == pytest.approx(theirs.precisions, abs=1e-6)
    assert ours.bp == pytest.approx(theirs.bp, abs=1e-9)
    assert 0 < ours.score < 100


def test_fixed_pairs_match_sacrebleu():
    hyps = [["the", "cat", "sat", "on", "the", "mat"], ["a", "dog", "ran", "home", "now"]]
    refs = [["the", "cat", "sat", "on", "a", "mat"], ["the", "dog", "ran", "home", "quickly"]]
    assert corpus_bleu(hyps, refs).score == pytest.approx(_sacre(hyps, refs).score, abs=1e-6)


def test_perfect_translation_scores_100():
    refs = [["x", "y", "z", "w", "v"], ["p", "q", "r", "s"]]
    result = corpus_bleu(refs, refs)
    assert result.score == pytest.approx(100.0) and result.bp == 1.0


def test_short_hypothesis_is_penalised_and_no_4gram_gives_zero():
    assert brevity_penalty(5, 10) == pytest.approx(2.718281828 ** (1 - 2))
    assert brevity_penalty(12, 10) == 1.0 and brevity_penalty(0, 3) == 0.0
    assert corpus_bleu([["a", "b", "c"]], [["a", "b", "c"]]).score == 0.0  # no 4-grams at all


def test_clipping():
    assert modified_precision_counts(["the"] * 7, "the cat is on the mat".split(), 1) == (2, 7)
    with pytest.raises(TypeError, match="list of tokens, not a string"):
        corpus_bleu(["a b c"], ["a b c"])


def test_token_accuracy_is_positional():
    assert token_accuracy(list("abcd"), list("abcd")) == 1.0
    assert token_accuracy(list("bcd"), list("abcd")) == 0.0  # a dropped first word shifts all
    assert token_accuracy(list("ab"), list("abcd")) == 0.5


def test_alignment_error_rate():
    sure = {(0, 0), (1, 2)}
    possible = sure | {(1, 1)}
    assert alignment_error_rate(sure, sure) == 0.0
    assert alignment_error_rate({(0, 1), (1, 0)}, sure) == 1.0
    assert alignment_error_rate({(0, 0), (1, 1)}, sure, possible) == pytest.approx(1 - 3 / 4)
    assert alignment_error_rate({(0, 0)}, sure) == pytest.approx(1 - 2 / 3)


def test_attention_links_use_argmax():
    w = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    assert attention_links(w) == {(0, 1), (1, 0), (2, 2)}
    assert attention_links(w, length=2) == {(0, 1), (1, 0)}
    assert gold_links([1, 0]) == {(0, 1), (1, 0)}
