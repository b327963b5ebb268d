"""attnbook.hard_attention: REINFORCE, Gumbel-softmax and local-p windows (chapter 5)."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnbook.attention import masked_softmax
from attnbook.hard_attention import (
    MovingAverageBaseline,
    gaussian_window,
    gumbel_softmax,
    hard_attention,
    local_p_weights,
    reinforce_loss,
    window_positions,
)

# A small problem with a known gradient: J(theta) = sum_a softmax(theta)_a f(a), so
# dJ/dtheta = p * (f - J) exactly. The REINFORCE surrogate's gradient is -(estimate of it).
THETA = torch.tensor([0.5, -1.0, 0.0, 1.5])
F_OF_A = torch.tensor([1.0, 3.0, -2.0, 0.5])
N = 200_000
# The per-sample estimate (f(a) - b) * grad log p(a) has a standard deviation of at most 2.7
# per coordinate for the baselines below, so the mean of N = 200k samples has a standard error
# of at most 2.7 / sqrt(N) ~ 0.006; we allow 0.03 (5 standard errors).
TOLERANCE = 0.03


def _exact_gradient() -> torch.Tensor:
    p = torch.softmax(THETA, 0)
    return p * (F_OF_A - (p * F_OF_A).sum())


def _reinforce_estimate(baseline) -> torch.Tensor:
    theta = THETA.clone().requires_grad_()
    g = torch.Generator().manual_seed(0)
    actions = torch.multinomial(torch.softmax(THETA, 0), N, replacement=True, generator=g)
    log_probs = torch.log_softmax(theta, 0)[actions]  # (N,)
    reinforce_loss(log_probs, F_OF_A[actions], baseline).backward()
    return -theta.grad  # minus: the loss is minus the objective


@pytest.mark.parametrize("baseline", [0.0, 1.0, -5.0], ids=["no baseline", "b=1", "b=-5"])
def test_reinforce_is_unbiased_with_any_constant_baseline(baseline):
    assert_close(_reinforce_estimate(baseline), _exact_gradient(), atol=TOLERANCE, rtol=0)


def test_reinforce_detaches_rewards_and_baseline():
    log_probs = (-torch.rand(5)).requires_grad_()  # log-probabilities are <= 0
    rewards = torch.randn(5, requires_grad=True)
    baseline = torch.randn(5, requires_grad=True)
    reinforce_loss(log_probs, rewards, baseline).backward()
    assert rewards.grad is None and baseline.grad is None
    assert_close(log_probs.grad, -(rewards - baseline).detach() / 5)


def test_reinforce_rejects_log_probs_without_gradient_and_bad_shapes():
    with pytest.raises(ValueError, match="no gradient"):
        reinforce_loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="rewards"):
        reinforce_loss(torch.randn(4, requires_grad=True), torch.randn(3))


def test_moving_average_baseline():
    b = MovingAverageBaseline(momentum=0.5)
    assert b.value is None
    assert b.update(torch.tensor([2.0, 4.0])) == 3.0  # the first batch sets it
    assert b.update(torch.tensor([1.0])) == 2.0


def test_hard_attention_returns_one_value_and_its_log_probability():
    scores = torch.randn(3, 5, requires_grad=True)
    values = torch.randn(3, 5, 2)
    output, weights, log_prob = hard_attention(scores, values, generator=torch.Generator())
    chosen = weights.argmax(-1)
    assert_close(weights.sum(-1), torch.ones(3))
    assert ((weights == 0) | (weights == 1)).all()
    assert_close(output, values[torch.arange(3), chosen])
    assert_close(log_prob, torch.log_softmax(scores, -1)[torch.arange(3), chosen])
    assert log_prob.requires_grad
    _, greedy, _ = hard_attention(scores, values, sample=False)
    assert torch.equal(greedy.argmax(-1), scores.argmax(-1))


def test_hard_attention_samples_from_the_softmax():
    scores = torch.tensor([[1.0, 0.0, -1.0, 2.0]]).expand(20_000, 4)
    values = torch.zeros(20_000, 4, 1)
    _, weights, _ = hard_attention(scores, values, generator=torch.Generator().manual_seed(0))
    assert_close(weights.mean(0), torch.softmax(scores[0], 0), atol=0.015, rtol=0)


def test_gumbel_softmax_matches_pytorch_with_the_same_noise():
    logits = torch.randn(4, 6)
    for hard in (False, True):
        torch.manual_seed(3)
        theirs = F.gumbel_softmax(logits, tau=0.7, hard=hard)
        torch.manual_seed(3)
        assert_close(gumbel_softmax(logits, tau=0.7, hard=hard), theirs)


def test_gumbel_softmax_is_one_hot_forward_with_soft_gradients():
    logits = torch.randn(4, 6, requires_grad=True)
    g = torch.Generator().manual_seed(1)
    sample = gumbel_softmax(logits, tau=0.5, generator=g)
    assert ((sample == 0) | (sample == 1)).all() and (sample.sum(-1) == 1).all()
    weights = torch.randn(6)
    (sample * weights).sum().backward()
    # The gradient is the soft sample's: the same noise without the straight-through step.
    soft_logits = logits.detach().clone().requires_grad_()
    same_noise = torch.Generator().manual_seed(1)
    soft = gumbel_softmax(soft_logits, tau=0.5, hard=False, generator=same_noise)
    (soft * weights).sum().backward()
    assert_close(logits.grad, soft_logits.grad)
    assert (logits.grad != 0).sum(-1).min() > 1  # more than the chosen entry gets a gradient
    assert torch.equal(sample.argmax(-1), soft.argmax(-1))


def test_gumbel_max_samples_follow_the_softmax():
    logits = torch.tensor([0.0, 1.0, -0.5]).expand(20_000, 3)
    sample = gumbel_softmax(logits, generator=torch.Generator().manual_seed(2))
    assert_close(sample.mean(0), torch.softmax(logits[0], 0), atol=0.015, rtol=0)


def test_window_positions_are_centred_and_stay_inside():
    centre = torch.tensor([10.4, 10.6, 0.0, 19.0])
    pos = window_positions(centre, D=2, S=20)
    assert pos.tolist() == [[8, 9, 10, 11, 12], [9, 10, 11, 12, 13],
                            [0, 1, 2, 3, 4], [15, 16, 17, 18, 19]]
    with pytest.raises(ValueError, match="half-width"):
        window_positions(centre, D=10, S=20)


def test_local_p_weights_are_zero_outside_the_window():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 30, generator=g)
    centre = torch.rand(6, generator=g) * 30
    D = 4
    weights = local_p_weights(scores, centre, D)
    window = window_positions(centre, D, 30)
    inside = torch.zeros(6, 30, dtype=torch.bool).scatter_(-1, window, True)
    assert (weights[~inside] == 0).all()
    assert (weights[inside] > 0).all()
    assert (inside.sum(-1) == 2 * D + 1).all()
    # Inside: the window's softmax times a Gaussian of sigma = D/2 around the real centre.
    gauss = torch.exp(-(torch.arange(30.0) - centre[:, None]) ** 2 / (2 * (D / 2) ** 2))
    assert_close(weights, masked_softmax(scores, mask=inside) * gauss)


def test_local_p_weights_gathered_window_equals_full_length():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(3, 25, generator=g)
    centre = torch.tensor([3.2, 12.7, 24.0], requires_grad=True)
    full = local_p_weights(scores, centre, D=3)
    pos = window_positions(centre, 3, 25)
    window = torch.softmax(scores.gather(1, pos), -1) * gaussian_window(pos, centre, 3)
    assert_close(full.gather(1, pos), window)
    window.sum().backward()
    assert centre.grad is not None and (centre.grad != 0).all()  # the centre learns
