"""Chapter 6's checkers pass the reference answers and name the classic mistakes."""

import math
from collections import Counter

import pytest
import torch

from attnbook.exercises import ExerciseError, ch06
from attnbook.metrics import alignment_error_rate, modified_precision_counts


def _step(emb, s_prev, ann, src_len, W_q, W_k, cell, dim=-1):
    q, k = s_prev @ W_q, ann @ W_k  # (B, A), (B, S, A)
    scores = torch.einsum("ba,bsa->bs", q, k) / math.sqrt(q.shape[-1])
    pad = torch.arange(ann.shape[1])[None] >= src_len[:, None]
    weights = scores.masked_fill(pad, float("-inf")).softmax(dim)
    context = torch.einsum("bs,bsd->bd", weights, ann)
    return cell(torch.cat([emb, context], -1), s_prev), context, weights


def test_dot_step_by_hand_passes_and_batch_axis_is_named():
    assert ch06.check_dot_bahdanau_step(_step)
    with pytest.raises(ExerciseError, match="batch axis"):
        ch06.check_dot_bahdanau_step(lambda *a: _step(*a, dim=0))


def test_dot_step_matches_pytorch_sdpa():
    case = ch06._STEP_CASES[0]
    emb, s_prev, ann, src_len, W_q, W_k, cell = case.args
    _, context, _ = ch06.dot_step_reference(*case.args)
    keep = torch.arange(ann.shape[1])[None] < src_len[:, None]  # True = attend
    out = torch.nn.functional.scaled_dot_product_attention(
        (s_prev @ W_q)[:, None], ann @ W_k, ann, attn_mask=keep[:, None])
    torch.testing.assert_close(out[:, 0], context)


def test_corpus_precision_by_hand_passes():
    def by_hand(hypotheses, references, n):
        def grams(t):
            return Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1))

        matched = total = 0
        for hyp, refs in zip(hypotheses, references, strict=True):
            h = grams(hyp)
            best = Counter()
            for r in refs:
                best |= grams(r)
            matched += sum(min(c, best[g]) for g, c in h.items())
            total += sum(h.values())
        return matched / total if total else 0.0

    assert ch06.check_corpus_precision(by_hand)


def test_corpus_precision_of_one_reference_agrees_with_the_package_counts():
    hyps = [["a", "a", "b", "c"], ["the", "the", "cat"]]
    refs = [["a", "b", "c", "a"], ["the", "cat", "sat"]]
    for n in (1, 2):
        counts = [modified_precision_counts(h, r, n) for h, r in zip(hyps, refs, strict=True)]
        want = sum(m for m, _ in counts) / sum(t for _, t in counts)
        got = ch06.corpus_precision_reference(hyps, [[r] for r in refs], n)
        assert got == pytest.approx(want)


def test_attention_aer_agrees_with_the_package_aer():
    for case in ch06._MAP_CASES:
        w, T, S, sure, possible = case.args
        links = {(t, int(w[t, :S].argmax())) for t in range(T)}
        want = alignment_error_rate(links, sure, possible)
        assert ch06.attention_aer_reference(*case.args) == pytest.approx(want)
