"""Checkers for chapter 12: attention rollout with a residual of given weight per layer,
leave-one-out occlusion with a filler token, and the Jensen--Shannon distance between
attention distributions.

Shapes: attention maps of one sequence (L, h, T, T) and residual weights (L,); a model
maps tokens (B, T) to logits (B, C), labels (B,); distributions p, q (B, S).
"""

import math

import numpy as np
import torch
from torch import nn

from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function


def _randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _maps(L, h, T, seed, sharp=1.0):
    return torch.softmax(_randn(L, h, T, T, seed=seed, scale=sharp), -1)


# Exercise 1: rollout with a residual of a given weight in each layer ------------------


def rollout_residual_reference(weights: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """weights (L, h, T, T) of one sequence, residual (L,) >= 0 -> R (T, T):
    A'_l = (mean over heads of A_l + r_l I) / (1 + r_l), R = A'_L @ ... @ A'_1."""
    L, h, T, _ = weights.shape
    R = torch.eye(T, dtype=weights.dtype)
    for layer in range(L):
        A = weights[layer].mean(0) + residual[layer] * torch.eye(T, dtype=weights.dtype)
        R = (A / (1 + residual[layer])) @ R  # rows sum to 1 again; this layer on top
    return R


def _rollout_no_identity(weights, residual):
    return rollout_residual_reference(weights, torch.zeros_like(residual))


def _rollout_not_normalised(weights, residual):
    R = torch.eye(weights.shape[-1], dtype=weights.dtype)
    for layer in range(weights.shape[0]):
        R = (weights[layer].mean(0) + residual[layer] * torch.eye(weights.shape[-1])) @ R
    return R


def _rollout_wrong_order(weights, residual):
    T = weights.shape[-1]
    R = torch.eye(T, dtype=weights.dtype)
    for layer in range(weights.shape[0]):
        A = weights[layer].mean(0) + residual[layer] * torch.eye(T, dtype=weights.dtype)
        R = R @ (A / (1 + residual[layer]))  # the first layer ends up on top
    return R


def _rollout_residual_one(weights, residual):
    return rollout_residual_reference(weights, torch.ones_like(residual))


def _rollout_heads_summed(weights, residual):
    return rollout_residual_reference(weights * weights.shape[1], residual)


ROLLOUT_CASES = [
    Case((_maps(2, 2, 3, seed=0), torch.tensor([1.0, 1.0])),
         label="2 layers, 2 heads, T=3, r = 1 in both layers (the chapter's (A + I) / 2)"),
    Case((_maps(3, 2, 4, seed=1, sharp=3.0), torch.tensor([2.0, 0.5, 1.0])),
         label="3 layers, T=4, residual weights 2, 0.5, 1"),
    Case((_maps(2, 4, 5, seed=2), torch.tensor([3.0, 0.25])),
         label="2 layers, 4 heads, T=5, residual weights 3 and 0.25"),
    Case((_maps(1, 1, 3, seed=3), torch.tensor([0.5])), label="a single layer and head"),
]

ROLLOUT_MISTAKES = [
    Mistake("residual identity forgotten",
            "each layer adds its input back (x + attention(x)), so some of every position "
            "stays where it is: add r_l times the identity matrix to the head-averaged "
            "weights before multiplying.", wrong=_rollout_no_identity),
    Mistake("rows not re-normalised",
            "after adding r_l I the rows sum to 1 + r_l; divide by 1 + r_l so that each "
            "layer's matrix is again a distribution over positions, or the products grow "
            "layer after layer.", wrong=_rollout_not_normalised),
    Mistake("layers multiplied in the wrong order",
            "the first layer acts first, so it is the rightmost factor: R = A'_L ... A'_1 "
            "(in a loop, R = A' @ R, with the new layer on the left).",
            wrong=_rollout_wrong_order),
    Mistake("heads summed instead of averaged",
            "mean over the heads: a sum of h rows that each sum to 1 sums to h.",
            wrong=_rollout_heads_summed),
    Mistake("residual weights ignored: (A + I) / 2 in every layer",
            "the chapter's (A + I) / 2 is the case r = 1; here layer l weighs its residual by "
            "r_l: (A_l + r_l I) / (1 + r_l).", wrong=_rollout_residual_one),
]


def check_rollout_residual(fn) -> CheckResult:
    """``fn(weights (L, h, T, T), residual (L,)) -> R (T, T)``."""
    return check_function(fn, exercise="rollout with residual weights",
                          reference=rollout_residual_reference, cases=ROLLOUT_CASES,
                          mistakes=ROLLOUT_MISTAKES)


# Exercise 2: leave-one-out occlusion with a filler token -------------------------------


class TinyClassifier(nn.Module):
    """A fixed small model for the checker: tokens (B, T) -> logits (B, C), each token
    embedded with its position and weighed by a softmax over the positions."""

    def __init__(self, vocab_size: int = 8, num_classes: int = 4, max_len: int = 8,
                 seed: int = 0, confidence: float = 1.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Parameter(torch.randn(vocab_size, num_classes, generator=g) * 2
                                  * confidence)  # larger: logits far apart
        self.pos = nn.Parameter(torch.randn(max_len, num_classes, generator=g))
        self.score = nn.Parameter(torch.randn(vocab_size, generator=g) * 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        weights = torch.softmax(self.score[tokens], -1)  # (B, T)
        x = self.embed[tokens] + self.pos[:T]  # (B, T, C)
        return (weights[..., None] * x).sum(1)  # (B, C)


def occlusion_reference(model, tokens: torch.Tensor, labels: torch.Tensor,
                        filler: int) -> torch.Tensor:
    """model: tokens (B, T) -> logits (B, C); tokens (B, T), labels (B,), filler an id
    -> (B, T): log p(label | x) - log p(label | x with token j replaced by filler)."""
    B, T = tokens.shape
    with torch.no_grad():
        base = model(tokens).log_softmax(-1)[torch.arange(B), labels]  # (B,)
        drops = []
        for j in range(T):
            occluded = tokens.clone()
            occluded[:, j] = filler
            lp = model(occluded).log_softmax(-1)[torch.arange(B), labels]
            drops.append(base - lp)
    return torch.stack(drops, 1)  # (B, T)


def _occ_probabilities(model, tokens, labels, filler):
    B, T = tokens.shape
    with torch.no_grad():
        base = model(tokens).softmax(-1)[torch.arange(B), labels]
        out = []
        for j in range(T):
            occluded = tokens.clone()
            occluded[:, j] = filler
            out.append(base - model(occluded).softmax(-1)[torch.arange(B), labels])
    return torch.stack(out, 1)


def _occ_not_restored(model, tokens, labels, filler):
    B, T = tokens.shape
    occluded = tokens.clone()  # one copy for the whole loop: the fillers pile up
    with torch.no_grad():
        base = model(tokens).log_softmax(-1)[torch.arange(B), labels]
        out = []
        for j in range(T):
            occluded[:, j] = filler
            out.append(base - model(occluded).log_softmax(-1)[torch.arange(B), labels])
    return torch.stack(out, 1)


def _occ_logits(model, tokens, labels, filler):
    B, T = tokens.shape
    with torch.no_grad():
        base = model(tokens)[torch.arange(B), labels]
        out = []
        for j in range(T):
            occluded = tokens.clone()
            occluded[:, j] = filler
            out.append(base - model(occluded)[torch.arange(B), labels])
    return torch.stack(out, 1)


def _occ_rise(model, tokens, labels, filler):
    return -occlusion_reference(model, tokens, labels, filler)


def _occ_predicted_class(model, tokens, labels, filler):
    with torch.no_grad():
        predicted = model(tokens).argmax(-1)
    return occlusion_reference(model, tokens, predicted, filler)


def _occ_case(B, T, seed, label, confidence=1.0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 8, (B, T), generator=g)
    labels = torch.randint(0, 4, (B,), generator=g)
    return Case((TinyClassifier(seed=seed, confidence=confidence), tokens, labels, 0),
                label=label)


OCCLUSION_CASES = [
    _occ_case(3, 5, seed=0, label="3 sequences of 5 tokens, filler 0"),
    _occ_case(2, 8, seed=1, label="2 sequences of 8 tokens"),
    _occ_case(4, 3, seed=2, label="4 sequences of 3 tokens"),
    _occ_case(1, 1, seed=3, label="a single token"),
    _occ_case(2, 4, seed=4, confidence=100.0,
              label="a very confident model (logits hundreds apart)"),
]

OCCLUSION_MISTAKES = [
    Mistake("probabilities instead of log-probabilities",
            "the importance asked for is the drop in log p(label): take log_softmax of the "
            "logits, not softmax (a drop from 0.9 to 0.5 and one from 0.01 to 0.0001 are "
            "very different in probability, similar in log-probability).",
            wrong=_occ_probabilities),
    Mistake("raw logits instead of log-probabilities",
            "a logit alone says little: the other classes' logits move too. Take "
            "log_softmax(-1) of the logits before picking the label's entry.",
            wrong=_occ_logits),
    Mistake("occluded tokens not put back",
            "occlude one position at a time: start each position from a fresh copy of the "
            "tokens (tokens.clone() inside the loop); with one copy the fillers pile up and "
            "position j is measured with all positions before it occluded too.",
            wrong=_occ_not_restored),
    Mistake("the rise instead of the drop",
            "importance is log p(label | x) minus log p(label | occluded x): positive when "
            "hiding the token hurts.", wrong=_occ_rise),
    Mistake("the predicted class instead of the label",
            "measure the log-probability of the given label, not of the class the model "
            "predicts (they differ when the model is wrong).", wrong=_occ_predicted_class),
]


def check_occlusion(fn) -> CheckResult:
    """``fn(model, tokens (B, T), labels (B,), filler int) -> (B, T)``."""
    return check_function(fn, exercise="leave-one-out occlusion",
                          reference=occlusion_reference, cases=OCCLUSION_CASES,
                          mistakes=OCCLUSION_MISTAKES)


# Exercise 3: the Jensen--Shannon distance ----------------------------------------------


def _kl(p, q, log):
    safe_q = torch.where(p > 0, q, 1)
    return torch.where(p > 0, p * log(torch.where(p > 0, p, 1) / safe_q), 0).sum(-1)


def js_distance_reference(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """p, q (B, S) distributions (zeros allowed) -> (B,): the square root of
    JS(p, q) = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2, logarithms base 2."""
    m = (p + q) / 2
    js = (_kl(p, m, torch.log2) + _kl(q, m, torch.log2)) / 2
    return js.clamp(min=0).sqrt()


def _js_natural_log(p, q):
    m = (p + q) / 2
    return ((_kl(p, m, torch.log) + _kl(q, m, torch.log)) / 2).clamp(min=0).sqrt()


def _js_no_sqrt(p, q):
    return js_distance_reference(p, q) ** 2


def _looks_like_kl(got, expected, case):
    p, q = case.args
    have = np.asarray(got.detach() if isinstance(got, torch.Tensor) else got, dtype=float)
    for a, b in ((p, q), (q, p)):
        for log in (torch.log2, torch.log):
            kl = _kl(a, b.clamp(min=1e-30), log)
            kl = torch.where(((a > 0) & (b == 0)).any(-1), math.inf, kl)
            for cand in (kl, kl.clamp(min=0).sqrt()):
                if have.shape == tuple(cand.shape) and np.allclose(
                        have, cand.double().numpy(), atol=1e-5, rtol=1e-4):
                    return True
    return False


def _looks_like_symmetrised_kl(got, expected, case):
    p, q = case.args
    have = np.asarray(got.detach() if isinstance(got, torch.Tensor) else got, dtype=float)
    for log in (torch.log2, torch.log):
        both = [torch.where(((a > 0) & (b == 0)).any(-1), math.inf, _kl(a, b.clamp(min=1e-30),
                                                                         log))
                for a, b in ((p, q), (q, p))]
        for sym in ((both[0] + both[1]) / 2, both[0] + both[1]):
            for cand in (sym, sym.clamp(min=0).sqrt()):
                if have.shape == tuple(cand.shape) and np.allclose(
                        have, cand.double().numpy(), atol=1e-5, rtol=1e-4):
                    return True
    return False


def _dist(*rows):
    return torch.tensor(rows, dtype=torch.float32)


JS_CASES = [
    Case((_dist([0.7, 0.2, 0.1], [0.1, 0.1, 0.8]), _dist([0.5, 0.3, 0.2], [0.3, 0.3, 0.4])),
         label="two pairs of distributions over 3 positions"),
    Case((torch.softmax(_randn(5, 6, seed=0), -1), torch.softmax(_randn(5, 6, seed=1), -1)),
         label="5 pairs of distributions over 6 positions"),
    Case((_dist([1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]),
          _dist([0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25])),
         label="zeros: disjoint supports (distance 1) and a one-sided zero"),
    Case((_dist([0.25, 0.75]), _dist([0.25, 0.75])), label="equal distributions (distance 0)"),
]

JS_MISTAKES = [
    Mistake("KL divergence instead of Jensen-Shannon",
            "KL(p || q) is not symmetric and is infinite where q = 0 < p; JS compares each "
            "distribution with their mixture m = (p + q) / 2, which is never 0 where p or q "
            "is not.", detect=_looks_like_kl),
    Mistake("symmetrised KL instead of Jensen-Shannon",
            "(KL(p || q) + KL(q || p)) / 2 is symmetric but still infinite where one "
            "distribution is 0 and the other is not; JS compares each with the mixture "
            "m = (p + q) / 2, which is positive wherever p or q is.",
            detect=_looks_like_symmetrised_kl),
    Mistake("natural logarithm",
            "with log base e the distance tops out at sqrt(ln 2) = 0.83; use log2 so that "
            "disjoint distributions are at distance 1.", wrong=_js_natural_log),
    Mistake("no square root (the divergence, not the distance)",
            "the JS divergence is not a metric; its square root, the JS distance, is: take "
            ".sqrt() at the end.", wrong=_js_no_sqrt),
]


def check_js_distance(fn) -> CheckResult:
    """``fn(p (B, S), q (B, S)) -> (B,)``."""
    return check_function(fn, exercise="Jensen-Shannon distance",
                          reference=js_distance_reference, cases=JS_CASES,
                          mistakes=JS_MISTAKES)


__all__ = ["check_rollout_residual", "check_occlusion", "check_js_distance",
           "rollout_residual_reference", "occlusion_reference", "js_distance_reference",
           "TinyClassifier"]
