"""Is attention an explanation? The experiments of Jain & Wallace (2019) and Wiegreffe &
Pinter (2019) on a one-layer attention classifier (chapter 12).

Shapes (``book/notation.md``): B batch, T positions, d features, C classes.

- ``AttentionClassifier``: x_t = E[token_t] + F[token_{t-1}] (a token and its left
  neighbour, added), additive scores s_t = v^T tanh(W x_t), weights a = softmax(s) --
  or uniform 1/T with ``uniform=True`` -- and a linear layer on the mix sum_t a_t x_t.
  ``forward(tokens, weights=None)``: pass ``weights`` (B, T) to impose an attention
  distribution instead of the model's own.
- ``js_distance``: the Jensen--Shannon distance (base 2, in [0, 1]) between two
  distributions; ``tv_distance``: the total variation distance (half the L1 norm). Both
  refuse what is not a distribution along the last axis (counts, scores, negative
  entries): ``attnbook.shapes.check_distribution``.
- ``adversarial_attention``: gradient descent for weights far from the model's own
  (large JS distance) whose output stays within ``eps`` of the model's (TVD).
"""

import math

import torch
from torch import nn

from attnbook.shapes import (
    check_distribution,
    check_module_input,
    check_nonempty,
    check_not_nan,
    check_positive_int,
    check_same_dtype,
    check_shape,
    check_tensor,
)
from attnbook.transformer import check_tokens


def _check_distributions(p, q) -> None:
    """p, q (..., S): distributions over the last axis (``check_distribution``), one shape."""
    for x, name in ((p, "p"), (q, "q")):
        check_tensor(x, name, "float")
        check_not_nan(x, name)
    if p.shape != q.shape:
        raise ValueError(f"p and q should have the same shape, got {tuple(p.shape)} and "
                         f"{tuple(q.shape)}")
    for x, name in ((p, "p"), (q, "q")):
        check_distribution(x, name)


def _kl2(p, m):
    """sum p log2(p / m) over the last axis, with 0 log 0 = 0."""
    ratio = torch.where(p > 0, p / torch.where(p > 0, m, 1), 1)
    return (p * torch.log2(ratio)).sum(-1)


def js_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """p, q (..., S) distributions -> (...): sqrt(JS(p, q)) with logarithms base 2,
    JS = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2; 0 for equal, 1 for disjoint."""
    _check_distributions(p, q)
    return _js(p, q)


def _js(p, q):
    m = (p + q) / 2
    js = (_kl2(p, m) + _kl2(q, m)) / 2
    return js.clamp(min=0).sqrt()


def tv_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """p, q (..., C) -> (...): total variation distance, sum |p - q| / 2, in [0, 1]."""
    _check_distributions(p, q)
    return _tv(p, q)


def _tv(p, q):
    return (p - q).abs().sum(-1) / 2


class AttentionClassifier(nn.Module):
    """tokens (B, T) -> logits (B, C), weights (B, T)."""

    def __init__(self, vocab_size: int, num_classes: int, d: int = 32,
                 uniform: bool = False):
        super().__init__()
        for value, name in ((vocab_size, "vocab_size"), (num_classes, "num_classes"),
                            (d, "d")):
            check_positive_int(value, name)
        if not isinstance(uniform, bool):
            raise TypeError(f"uniform should be True or False, got {uniform!r}")
        self.vocab_size, self.uniform = vocab_size, uniform
        self.token = nn.Embedding(vocab_size, d)
        self.left = nn.Embedding(vocab_size + 1, d)  # id vocab_size: before the start
        self.score = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))
        self.out = nn.Linear(d, num_classes)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> x (B, T, d): each token plus its left neighbour."""
        check_tokens(tokens, self.vocab_size, 10**6)
        start = torch.full_like(tokens[:, :1], self.vocab_size)
        return self.token(tokens) + self.left(torch.cat([start, tokens[:, :-1]], 1))

    def readout(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """x (B, T, d), weights (B, T) -> logits (B, C) of the mix sum_t a_t x_t."""
        check_tensor(x, "x", "float")
        dims = check_shape(x, ("B", "T", self.out.in_features), "x")
        check_module_input(x, "x", self, self.out.in_features, "d")
        check_tensor(weights, "weights", "float")
        check_shape(weights, ("B", "T"), "weights", dims)
        check_same_dtype((x, "x"), (weights, "weights"))
        return self.out((weights[..., None] * x).sum(1))  # (B, T, d) -> (B, d) -> (B, C)

    def forward(self, tokens: torch.Tensor, weights: torch.Tensor | None = None):
        """tokens (B, T), T >= 1, weights (B, T) or None (the model's own) -> logits,
        weights. Imposed ``weights`` are a distribution over the T positions of each row
        (>= 0, summing to 1)."""
        x = self.features(tokens)
        B, T, _ = x.shape
        check_nonempty(tokens, "tokens", dim=1, what="positions (T = 0)",
                       why="the classifier averages over at least one token")
        if weights is not None:
            check_tensor(weights, "weights", "float")
            check_shape(weights, (B, T), "weights")
            check_distribution(weights.detach(), "weights")
        elif self.uniform:
            weights = torch.full((B, T), 1 / T)
        else:
            weights = self.score(x).squeeze(-1).softmax(-1)  # (B, T)
        return self.readout(x, weights), weights


def adversarial_attention(model: AttentionClassifier, tokens: torch.Tensor,
                          eps: float = 0.01, steps: int = 300, lr: float = 0.1,
                          penalty: float = 100.0) -> torch.Tensor:
    """tokens (B, T) -> weights (B, T) that maximise the JS distance from the model's
    own while the output distribution stays within ``eps`` of the model's (TVD): Adam on
    the scores of the new weights, minimising -JS + penalty * max(0, TVD - eps)."""
    if not isinstance(model, AttentionClassifier):
        raise TypeError(f"model should be an AttentionClassifier, got {type(model).__name__}")
    check_positive_int(steps, "steps")
    for value, name in ((eps, "eps"), (lr, "lr"), (penalty, "penalty")):
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value > 0):
            raise ValueError(f"{name} should be a positive number, got {value!r}")
    with torch.no_grad():
        logits, own = model(tokens)
        x, probs = model.features(tokens), logits.softmax(-1)
    g = torch.Generator().manual_seed(0)
    z = (own.log() + torch.randn(own.shape, generator=g)).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        new = z.softmax(-1)
        # softmax outputs on both sides: distributions by construction, unchecked here
        moved = _tv(model.readout(x, new).softmax(-1), probs)
        loss = (-_js(new, own) + penalty * (moved - eps).clamp(min=0)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return z.detach().softmax(-1)
