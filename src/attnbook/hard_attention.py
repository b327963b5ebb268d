"""Hard and local attention as taught in chapter 5.

- ``hard_attention``: sample (or pick) one position from softmax(scores); the output is
  that position's value. Not differentiable in the choice: train it with
- ``reinforce_loss``: the score-function (REINFORCE) surrogate loss, with a baseline
  (e.g. ``MovingAverageBaseline``) that lowers the variance without adding bias;
- ``gumbel_softmax``: a one-hot sample in the forward pass whose gradient is that of
  the soft (relaxed) sample -- the straight-through Gumbel-softmax estimator;
- ``local_p_weights``, ``gaussian_window``, ``window_positions``: Luong's local-p
  attention, a softmax inside a window of half-width D around a predicted centre,
  times a Gaussian of standard deviation D/2.

Shapes (``book/notation.md``): scores (B, S), values (B, S, d_v), one query per example.

Arguments are ``torch.Tensor``s (NumPy arrays and lists are refused with a ``TypeError``
naming the argument). These functions choose a position, so a ``nan`` in the scores,
logits, centres or rewards raises ``ValueError`` instead of being hidden by the choice.
"""

import torch

from attnbook.attention import masked_softmax
from attnbook.shapes import (
    check_log_probs,
    check_not_nan,
    check_positive_int,
    check_shape,
    check_tensor,
)


def _check_choosable(scores, name: str) -> None:
    """Float scores with a non-empty last axis, no nan or +inf, no all--inf row."""
    check_tensor(scores, name, "float")
    if scores.dim() == 0 or scores.shape[-1] == 0:
        raise ValueError(f"{name} should have at least one position to choose from (S >= 1), "
                         f"got shape {tuple(scores.shape)}")
    check_not_nan(scores, name)
    if (scores == torch.inf).any():
        raise ValueError(f"{name} contains +inf; a softmax is undefined there")
    if scores.numel() and (scores == -torch.inf).all(-1).any():
        raise ValueError(f"a row of {name} is all -inf (every position masked): there is "
                         f"nothing to choose")


def _check_number(x, name: str, low: float = 0.0) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not low < x < torch.inf:
        raise ValueError(f"{name} should be a finite number > {low}, got {x!r}")
    return float(x)


def hard_attention(scores: torch.Tensor, values: torch.Tensor, sample: bool = True,
                   generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick one position per example; returns ``(output, weights, log_prob)``.

    scores (B, S), values (B, S, d_v) -> output (B, d_v) the chosen value, weights
    (B, S) one-hot, log_prob (B,) log-probability of the choice under softmax(scores)
    (differentiable in the scores: the input of ``reinforce_loss``). ``sample=False``
    takes the most probable position instead of sampling (for evaluation).
    """
    _check_choosable(scores, "scores")
    check_tensor(values, "values")
    dims = check_shape(scores, ("B", "S"), "scores")
    check_shape(values, ("B", "S", None), "values", dims)
    log_probs = torch.log_softmax(scores, dim=-1)                      # (B, S)
    if sample:
        choice = torch.multinomial(log_probs.exp().detach(), 1, generator=generator)  # (B, 1)
    else:
        choice = log_probs.argmax(dim=-1, keepdim=True)                # (B, 1)
    weights = torch.zeros_like(scores).scatter_(-1, choice, 1.0)       # (B, S), one-hot
    output = values.gather(1, choice[..., None].expand(-1, -1, values.shape[-1]))  # (B, 1, d_v)
    return output.squeeze(1), weights, log_probs.gather(-1, choice).squeeze(-1)


def reinforce_loss(log_probs: torch.Tensor, rewards: torch.Tensor,
                   baseline: torch.Tensor | float = 0.0) -> torch.Tensor:
    """The REINFORCE surrogate loss ``-mean((r - b) * log p(a))`` (a scalar to minimise).

    log_probs (B,) log-probability of each sampled action (<= 0: a probability is
    refused), with gradient; rewards (B,) and baseline (scalar or (B,)) are treated as
    constants (detached): the gradient of this loss is minus the score-function
    estimate of the gradient of E[r].
    """
    check_tensor(log_probs, "log_probs", "float")
    check_tensor(rewards, "rewards", "float")
    dims = check_shape(log_probs, ("B",), "log_probs")
    check_shape(rewards, ("B",), "rewards", dims)
    if dims["B"] == 0:
        raise ValueError("log_probs and rewards are empty: the loss needs at least one sample")
    check_not_nan(rewards, "rewards")
    if isinstance(baseline, torch.Tensor):
        check_tensor(baseline, "baseline", "float")
        if baseline.dim() != 0:
            check_shape(baseline, ("B",), "baseline", dims)  # (B, 1) would broadcast to (B, B)
        check_not_nan(baseline, "baseline")
    elif isinstance(baseline, bool) or not isinstance(baseline, int | float):
        raise TypeError(f"baseline should be a number or a tensor of shape () or (B,), "
                        f"got {type(baseline).__name__}")
    if not log_probs.requires_grad:
        raise ValueError("log_probs carries no gradient: pass the log-probability of the "
                         "sampled action as computed from the policy's parameters")
    check_log_probs(log_probs.detach(), "log_probs", dim=None, allow_nan=True)
    advantage = (rewards - baseline).detach()                          # (B,), a constant
    return -(advantage * log_probs).mean()


class MovingAverageBaseline:
    """b <- momentum * b + (1 - momentum) * mean(rewards): the average reward so far."""

    def __init__(self, momentum: float = 0.9):
        if isinstance(momentum, bool) or not isinstance(momentum, int | float) \
                or not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum should lie in [0, 1), got {momentum}")
        self.momentum = momentum
        self.value: float | None = None

    def update(self, rewards: torch.Tensor) -> float:
        """Fold a batch of rewards (B,) in and return the new baseline."""
        check_tensor(rewards, "rewards", "float")
        if rewards.numel() == 0:
            raise ValueError("rewards is empty: there is no reward to average")
        check_not_nan(rewards, "rewards")
        mean = float(rewards.detach().mean())
        self.value = mean if self.value is None else (
            self.momentum * self.value + (1 - self.momentum) * mean)
        return self.value


def gumbel_softmax(logits: torch.Tensor, tau: float = 1.0, hard: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample from softmax(logits) over the last axis, by the Gumbel-softmax trick.

    soft = softmax((logits + g) / tau) with g ~ Gumbel(0, 1). With ``hard=True``
    the forward value is the one-hot argmax of ``soft`` but the gradient is soft's
    (straight-through): ``hard - soft.detach() + soft``. Same shape as ``logits``;
    the same noise as ``torch.nn.functional.gumbel_softmax`` for the same seed.
    """
    _check_choosable(logits, "logits")
    _check_number(tau, "tau")
    noise = torch.empty_like(logits).exponential_(generator=generator)
    gumbels = -noise.log()                                             # Gumbel(0, 1)
    soft = torch.softmax((logits + gumbels) / tau, dim=-1)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft  # value: one_hot; gradient: soft's


def window_positions(centre: torch.Tensor, D: int, S: int) -> torch.Tensor:
    """The 2D+1 positions of each window, (B,) centres -> (B, 2D+1) long.

    The window is centred at round(centre) and shifted, if needed, to stay inside
    ``0 .. S-1``, so every window holds exactly 2D+1 real positions.
    """
    check_tensor(centre, "centre", "float")
    check_shape(centre, ("B",), "centre")
    if not torch.isfinite(centre).all():
        raise ValueError("centre contains nan or inf: a window needs a real position")
    check_positive_int(D, "D", minimum=0)
    check_positive_int(S, "S")
    if 2 * D + 1 > S:
        raise ValueError(f"half-width D must satisfy 0 <= D and 2D+1 <= S={S}, got D={D}")
    start = (centre.detach().round().long() - D).clamp(0, S - (2 * D + 1))  # (B,)
    return start[:, None] + torch.arange(2 * D + 1, device=centre.device)   # (B, 2D+1)


def gaussian_window(positions: torch.Tensor, centre: torch.Tensor, D: int) -> torch.Tensor:
    """exp(-(s - p)^2 / (2 sigma^2)) with sigma = D/2: positions (B, W), centre (B,) -> (B, W).

    Differentiable in the centre: this is how the centre predictor learns.
    """
    check_tensor(positions, "positions")
    check_tensor(centre, "centre", "float")
    check_positive_int(D, "D")  # sigma = D / 2 must be > 0
    dims = check_shape(centre, ("B",), "centre")
    check_shape(positions, ("B", None), "positions", dims)
    sigma = D / 2
    return torch.exp(-(positions.to(centre.dtype) - centre[:, None]) ** 2 / (2 * sigma**2))


def local_p_weights(scores: torch.Tensor, centre: torch.Tensor, D: int) -> torch.Tensor:
    """Luong's local-p weights over all S positions: zero outside the window.

    scores (B, S) content scores, centre (B,) predicted (real-valued) centre ->
    weights (B, S) = softmax of the scores inside the window of ``window_positions``
    times ``gaussian_window``. A model that wants the saving scores only the window
    (gather the 2D+1 keys); this full-length version is for teaching and testing.
    """
    check_tensor(scores, "scores", "float")
    check_tensor(centre, "centre", "float")
    dims = check_shape(scores, ("B", "S"), "scores")
    check_shape(centre, ("B",), "centre", dims)
    check_positive_int(D, "D")  # the Gaussian's sigma = D / 2 must be > 0
    S = scores.shape[-1]
    if S == 0:
        raise ValueError("scores has no positions (S = 0): there is no window to look at")
    window = window_positions(centre, D, S)                            # (B, 2D+1)
    inside = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, window, True)  # (B, S)
    positions = torch.arange(S, device=scores.device).expand_as(scores)
    return masked_softmax(scores, mask=inside) * gaussian_window(positions, centre, D)
