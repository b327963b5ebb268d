"""Chapter 4's checkers: references pass, mistakes are named (stubs: test_exercises.py)."""

import re

import pytest
import torch

from attnbook.exercises import ExerciseError, ch04

CHECKERS = [
    (ch04.check_masked_softmax, ch04.masked_softmax_reference, ch04.MASKED_SOFTMAX_MISTAKES),
    (ch04.check_additive_scores, ch04.additive_scores_reference, ch04.ADDITIVE_MISTAKES),
    (ch04.check_causal_mask, ch04.causal_mask_reference, ch04.CAUSAL_MISTAKES),
    (ch04.check_fixed_attention, ch04.fixed_attention_reference, ch04.FIXED_ATTENTION_MISTAKES),
]
IDS = ["masked_softmax", "additive", "causal", "find_the_bug"]


@pytest.mark.parametrize("check, reference, mistakes", CHECKERS, ids=IDS)
def test_reference_passes(check, reference, mistakes, capsys):
    assert check(reference).passed is True
    assert "✓" in capsys.readouterr().out
    assert len(mistakes) >= 2


@pytest.mark.parametrize("check, reference, mistakes", CHECKERS, ids=IDS)
def test_every_mistake_with_a_wrong_implementation_is_named(check, reference, mistakes):
    for mistake in mistakes:
        if mistake.wrong is None:
            continue
        with pytest.raises(ExerciseError, match=re.escape(mistake.name)):
            check(mistake.wrong)


def _masked_softmax_naive_exp(scores, valid_lens):
    keep = (torch.arange(scores.shape[-1]) < valid_lens[:, None])[:, None, :]
    e = scores.exp() * keep  # no max-subtraction
    return e / e.sum(-1, keepdim=True)


def test_masked_softmax_overflow_is_detected():
    with pytest.raises(ExerciseError, match="no max-subtraction"):
        ch04.check_masked_softmax(_masked_softmax_naive_exp)


def test_masked_softmax_written_by_hand_passes():
    def by_hand(scores, valid_lens):
        keep = torch.arange(scores.shape[-1]) < valid_lens[:, None, None]
        filled = scores.masked_fill(~keep, -1e9)
        e = (filled - filled.max(-1, keepdim=True).values).exp() * keep
        return e / e.sum(-1, keepdim=True).clamp_min(1e-30)

    assert ch04.check_masked_softmax(by_hand)


def test_causal_mask_float_and_other_correct_forms():
    with pytest.raises(ExerciseError, match="boolean tensor .* expected: in this book a mask"):
        ch04.check_causal_mask(lambda T: torch.ones(T, T).tril())
    with pytest.raises(ExerciseError, match="boolean tensor"):
        ch04.check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.long).tril())
    assert ch04.check_causal_mask(lambda T: torch.arange(T)[None, :] <= torch.arange(T)[:, None])


def test_additive_scores_with_einsum_passes():
    def with_einsum(q, k, Wq, Wk, wv):
        hidden = torch.tanh(torch.einsum("btd,dh->bth", q, Wq)[:, :, None]
                            + torch.einsum("bsd,dh->bsh", k, Wk)[:, None])
        return torch.einsum("btsh,h->bts", hidden, wv)

    assert ch04.check_additive_scores(with_einsum)


def test_fixed_attention_must_return_weights_too():
    with pytest.raises(ExerciseError, match="expected 2 return values"):
        ch04.check_fixed_attention(lambda *a: ch04.fixed_attention_reference(*a)[0])


def test_the_buggy_attention_really_is_buggy():
    q, k, v, valid = ch04.FIXED_ATTENTION_CASES[0].args
    _, weights = ch04.buggy_attention(q, k, v, valid)
    assert (weights[1].sum(-1) < 1 - 1e-3).all()  # rows of the padded sequence leak mass
