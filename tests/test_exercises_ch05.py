"""Chapter 5's checkers, beyond the generic tests in test_exercises.py (every reference passes,
every named mistake is caught, stubs are "not attempted yet")."""

import torch

from attnbook.exercises import ch05
from attnbook.hard_attention import window_positions


def test_reinforce_loo_written_another_way_passes():
    def with_categorical(logits, actions, rewards):
        B = len(rewards)
        others = (rewards.sum() - rewards) / (B - 1)
        log_probs = torch.distributions.Categorical(logits=logits).log_prob(actions)
        return -((rewards - others).detach() * log_probs).mean()

    assert ch05.check_reinforce_loo(with_categorical)


def test_gumbel_top_k_with_sort_passes():
    def with_sort(logits, uniform, k):
        perturbed = logits - torch.log(-torch.log(uniform))
        return perturbed.argsort(dim=-1, descending=True)[:, :k]

    assert ch05.check_gumbel_top_k(with_sort)


def test_gumbel_top_k_frequencies_match_sampling_without_replacement():
    z = torch.tensor([1.0, 0.0, -1.0])
    u = torch.rand(40_000, 3, generator=torch.Generator().manual_seed(0))
    pairs = ch05.gumbel_top_k_reference(z.expand(40_000, 3), u, 2)
    p = torch.softmax(z, 0)
    first = (pairs[:, 0] == 0) & (pairs[:, 1] == 1)
    assert abs(first.float().mean() - p[0] * p[1] / (1 - p[0])) < 0.01


def test_local_m_by_hand_with_clamp_passes():
    def by_hand(scores, D):
        T, S = scores.shape[1:]
        start = (torch.arange(T) - D).clamp(0, S - 2 * D - 1)  # (T,)
        offset = torch.arange(S)[None] - start[:, None]  # (T, S)
        inside = (offset >= 0) & (offset <= 2 * D)
        return torch.softmax(scores.masked_fill(~inside, float("-inf")), -1)

    assert ch05.check_local_m_weights(by_hand)


def test_local_m_window_agrees_with_the_package_window():
    w = ch05.local_m_reference(torch.zeros(1, 7, 7), 2)[0]  # uniform scores
    for t in range(7):
        window = window_positions(torch.tensor([float(t)]), 2, 7)[0]
        assert set(w[t].nonzero().flatten().tolist()) == set(window.tolist())
        assert torch.allclose(w[t, window], torch.full((5,), 0.2))
