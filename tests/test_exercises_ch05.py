"""Chapter 5's checkers: references pass, mistakes are named (stubs: test_exercises.py)."""

import re

import pytest
import torch

from attnbook.exercises import ExerciseError, ch05

CHECKERS = [
    (ch05.check_reinforce, ch05.reinforce_reference, ch05.REINFORCE_MISTAKES),
    (ch05.check_gumbel_softmax, ch05.gumbel_softmax_reference, ch05.GUMBEL_MISTAKES),
    (ch05.check_local_p_weights, ch05.local_p_reference, ch05.LOCAL_MISTAKES),
]
IDS = ["reinforce", "gumbel", "local_p"]


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


def test_reinforce_per_example_losses_are_named():
    def per_example(logits, actions, rewards, baseline):
        log_probs = torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)
        return -(rewards - baseline).detach() * log_probs

    with pytest.raises(ExerciseError, match="per-example losses returned"):
        ch05.check_reinforce(per_example)


def test_reinforce_other_correct_forms_pass():
    def with_categorical(logits, actions, rewards, baseline):
        log_probs = torch.distributions.Categorical(logits=logits).log_prob(actions)
        return -((rewards.detach() - baseline.detach()) * log_probs).mean()

    assert ch05.check_reinforce(with_categorical)


def test_gumbel_with_one_hot_helper_passes():
    def with_one_hot(logits, uniform, tau):
        soft = torch.softmax((logits - torch.log(-torch.log(uniform))) / tau, dim=-1)
        hard = torch.nn.functional.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
        return (hard - soft).detach() + soft

    assert ch05.check_gumbel_softmax(with_one_hot)


def test_local_p_written_by_hand_passes():
    def by_hand(scores, centre, D):
        positions = torch.arange(scores.shape[-1]).float()
        inside = (positions - centre.round()[:, None]).abs() <= D
        weights = torch.softmax(scores.masked_fill(~inside, float("-inf")), dim=-1)
        return weights * torch.exp(-(positions - centre[:, None]) ** 2 / (D**2 / 2))

    assert ch05.check_local_p_weights(by_hand)
