"""A catalogue of wrong answers of the kinds learners write, for the checkers of chapters 1-6.

Each entry is a plausible wrong implementation, written here (not taken from the checkers'
own ``Mistake`` implementations), with what the checker must say about it: the mistake's
name, or the structural fault (shape, dtype, axis, an input changed in place, nan from
overflow ...). Every entry must be refused; the test fails if one is accepted or the
message does not say what is really wrong. ``python tests/test_exercises_wrong_answers.py``
prints the measurement: how many are accepted, how many refusals name the mistake or the
structural fault, and which ones say only where the values differ.
"""

import math
import re
import sys
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnbook.exercises import ExerciseError, ch01, ch02, ch03, ch04, ch05, ch06

NAMED = r"This looks like: [^\n]*?"  # then (part of) the mistake's name

# What counts as naming a structural fault in a message (besides a named mistake).
STRUCTURAL = re.compile(
    r"returned None|shape|dtype|boolean|a bool|whole number|NumPy|you returned a (list|tuple|"
    r"float|dict)|return values|transposed|extra dimension|axis|axes|in place|nan at|inf at|"
    r"sums? to|times [-\d.e]+ everywhere|plus [-\d.e]+ everywhere|sign flipped|0 everywhere|"
    r"off by one|opposite mask|raised .* — |different sample each time|no gradient")


# ---------------------------------------------------------------- helpers written as a learner


def _cos(a, b):
    return (a @ b) / (a.norm() * b.norm())


def _rows_softmax(x):
    return torch.softmax(x, dim=-1)


def _sq(q, k):
    return (q[:, None] - k[None, :]) ** 2


def _keep(valid_lens, S):
    return (torch.arange(S)[None, :] < valid_lens[:, None])[:, None, :]  # (B, 1, S)


def _learner_loo(x, y, hs, fill=-torch.inf, naive=False, after=False):
    eye = torch.eye(len(x), dtype=torch.bool)
    errors = []
    for h in hs:
        scores = -_sq(x, x) / (2 * h**2)
        if naive:
            e = scores.exp().masked_fill(eye, 0.0)
            w = e / e.sum(-1, keepdim=True)
        elif after:
            w = torch.softmax(scores, -1).masked_fill(eye, 0.0)
        else:
            w = torch.softmax(scores.masked_fill(eye, fill), -1)
        errors.append(((w @ y - y) ** 2).mean())
    errors = torch.stack(errors)
    return hs[int(errors.argmin())], errors


def _learner_attention(q, k, v, valid_lens, *, fill=-1e9, scale=True, naive=False,
                       after=False):
    d = q.shape[-1]
    scores = q @ k.transpose(1, 2) / (d**0.5 if scale else 1.0)
    keep = _keep(valid_lens, k.shape[1])
    if after:
        w = torch.softmax(scores, -1) * keep
    elif naive:
        e = scores.exp() * keep
        w = e / e.sum(-1, keepdim=True).clamp_min(1e-30)
    else:
        w = torch.softmax(scores.masked_fill(~keep, fill), -1) * keep
    return w @ v, w


def _learner_reinforce(logits, actions, rewards, baseline, *, detach=True, log=True,
                       reduce="mean", sign=-1.0):
    lp = torch.log_softmax(logits, -1) if log else torch.softmax(logits, -1)
    chosen = lp.gather(1, actions.unsqueeze(1)).squeeze(1)
    adv = (rewards - baseline).detach() if detach else rewards - baseline
    per = sign * adv * chosen
    return per.mean() if reduce == "mean" else per.sum() if reduce == "sum" else per


def _learner_gumbel(logits, uniform, tau, *, noise=True, sign=1.0, st=True, naive=False,
                    dim=-1, div=True):
    g = -torch.log(-torch.log(uniform))
    z = logits + sign * g if noise else logits
    z = z / tau if div else z * tau
    if naive:
        e = z.exp()
        soft = e / e.sum(dim, keepdim=True)
    else:
        soft = torch.softmax(z, dim)
    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return hard + soft - soft.detach() if st else hard


def _learner_local(scores, centre, D, *, centre_of_window=torch.round, sigma=None,
                   gauss=True, window=True, naive=False, gauss_centre=None):
    pos = torch.arange(scores.shape[-1]).float()
    inside = (pos - centre_of_window(centre)[:, None]).abs() <= D
    if window and naive:
        e = scores.exp() * inside
        a = e / e.sum(-1, keepdim=True)
    elif window:
        a = torch.softmax(scores.masked_fill(~inside, float("-inf")), -1)
    else:
        a = torch.softmax(scores, -1)
    sig = D / 2 if sigma is None else sigma
    c = centre if gauss_centre is None else gauss_centre(centre)
    return a * torch.exp(-(pos - c[:, None]) ** 2 / (2 * sig**2)) if gauss else a


def _learner_step(emb, s_prev, ann, src_len, W_q, W_k, v, cell, *, keep_fn=None, tanh=True,
                  dim=-1, naive=False, order="ec", ret=(0, 1, 2)):
    S = ann.shape[1]
    pre = (s_prev @ W_q).unsqueeze(1) + ann @ W_k
    scores = (torch.tanh(pre) if tanh else pre) @ v  # (B, S)
    keep = (torch.arange(S) < src_len[:, None]) if keep_fn is None else keep_fn(S, src_len)
    if naive:
        e = scores.exp() * keep
        weights = e / e.sum(-1, keepdim=True)
    else:
        weights = torch.softmax(scores.masked_fill(~keep, -1e9), dim)
    context = torch.einsum("bs,bsd->bd", weights, ann)
    x = torch.cat([emb, context] if order == "ec" else [context, emb], -1)
    out = (cell(x, s_prev), context, weights)
    return tuple(out[i] for i in ret)


def _grams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _in_place_softmax(s):
    s -= s.max(-1, keepdim=True).values
    s.exp_()
    return s / s.sum(-1, keepdim=True)


def _entropy_learner(p, base, *, minus=True, reduce="sum", log=torch.log, divide=True):
    terms = torch.where(p > 0, p * log(torch.where(p > 0, p, 1.0)), 0.0)
    total = terms.sum(-1) if reduce == "sum" else terms.mean(-1) if reduce == "mean" \
        else terms.sum()
    total = -total if minus else total
    return total / math.log(base) if divide else total * math.log(base)


def _entropy_at(scores, t, naive=False):
    z = scores / t
    p = z.exp() / z.exp().sum() if naive else torch.softmax(z, -1)
    return float(-(torch.where(p > 0, p * p.clamp_min(1e-300).log(), 0.0)).sum())


def _bisect(scores, target, lo=0.01, hi=100.0, steps=60, flip=False, h=_entropy_at,
            temp=lambda m: m):
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        if (h(scores, temp(mid)) < target) != flip:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _p(z):
    return torch.softmax(z, -1)


# ---------------------------------------------------------------- the catalogue
# (checker, short description, wrong answer, what the message must say)

C1, C2, C3, C4, C5, C6 = ch01, ch02, ch03, ch04, ch05, ch06

CATALOGUE = [
    # chapter 1: cosine similarity
    (C1.check_cosine_similarity, "divided by the sum of the norms",
     lambda a, b: (a * b).sum() / (a.norm() + b.norm()), NAMED + "divided by the sum"),
    (C1.check_cosine_similarity, "squared norms with @",
     lambda a, b: (a @ b) / ((a @ a) * (b @ b)), NAMED + "divided by the squared norms"),
    (C1.check_cosine_similarity, "absolute value", lambda a, b: _cos(a, b).abs(),
     NAMED + "took the absolute value"),
    (C1.check_cosine_similarity, "F.cosine_similarity on rows, shape (1,)",
     lambda a, b: F.cosine_similarity(a[None], b[None]), "extra dimension"),
    (C1.check_cosine_similarity, "no sum: element-wise", lambda a, b: a * b / (a.norm() * b.norm()),
     "single number is expected"),
    (C1.check_cosine_similarity, "normalised only a", lambda a, b: (a / a.norm()) @ b,
     NAMED + "divided by only one norm"),
    (C1.check_cosine_similarity, "degrees", lambda a, b: torch.rad2deg(torch.arccos(_cos(a, b))),
     r"you have|sign flipped"),
    (C1.check_cosine_similarity, "dot product", lambda a, b: torch.dot(a, b),
     NAMED + "returned the plain dot product"),
    # chapter 1: score matrix
    (C1.check_score_matrix, "K @ Q.T", lambda Q, K: K @ Q.T, "transposed"),
    (C1.check_score_matrix, "Q.T @ K", lambda Q, K: Q.T @ K, "matrix product of mismatched"),
    (C1.check_score_matrix, "scaled by sqrt(d)", lambda Q, K: Q @ K.T / Q.shape[1] ** 0.5,
     "times .* everywhere"),
    (C1.check_score_matrix, "NumPy", lambda Q, K: Q.numpy() @ K.numpy().T, "NumPy array"),
    (C1.check_score_matrix, "einsum st", lambda Q, K: torch.einsum("td,sd->st", Q, K),
     "transposed"),
    (C1.check_score_matrix, "a list", lambda Q, K: (Q @ K.T).tolist(), "you returned a list"),
    (C1.check_score_matrix, "cosine",
     lambda Q, K: F.normalize(Q, dim=-1) @ F.normalize(K, dim=-1).T,
     NAMED + "normalised the vectors"),
    # chapter 1: batched scores
    (C1.check_batched_scores, "einsum bst", lambda Q, K: torch.einsum("btd,bsd->bst", Q, K),
     "transposed"),
    (C1.check_batched_scores, "bmm K Q", lambda Q, K: torch.bmm(K, Q.transpose(1, 2)),
     NAMED + "keys × queries"),
    (C1.check_batched_scores, "summed over the batch", lambda Q, K: (Q @ K.transpose(1, 2)).sum(0),
     "shape"),
    (C1.check_batched_scores, "scaled", lambda Q, K: Q @ K.transpose(1, 2) / Q.shape[-1] ** 0.5,
     "times .* everywhere"),
    (C1.check_batched_scores, "first element's keys for all",
     lambda Q, K: torch.stack([Q[b] @ K[0].T for b in range(len(Q))]), r"entries differ"),
    (C1.check_batched_scores, "transpose(0, 1)", lambda Q, K: Q @ K.transpose(0, 1),
     r"raised|shape"),
    # chapter 1: nearest neighbour
    (C1.check_nearest_neighbour, "dot product argmax", lambda q, t: int((t @ q).argmax()),
     NAMED + "ranked by dot product"),
    (C1.check_nearest_neighbour, "1-based",
     lambda q, t: int(F.cosine_similarity(t, q[None], dim=1).argmax()) + 1,
     NAMED + "counted rows from 1"),
    (C1.check_nearest_neighbour, "argmin of cosine",
     lambda q, t: int(F.cosine_similarity(t, q[None], dim=1).argmin()), NAMED + "argmin"),
    (C1.check_nearest_neighbour, "returned the similarity",
     lambda q, t: F.cosine_similarity(t, q[None], dim=1).max(), "whole number"),
    (C1.check_nearest_neighbour, "returned the row",
     lambda q, t: t[F.cosine_similarity(t, q[None], dim=1).argmax()], "you returned a tensor"),
    (C1.check_nearest_neighbour, "cdist", lambda q, t: int(torch.cdist(t, q[None]).argmin()),
     NAMED + "Euclidean"),
    # chapter 2: stable softmax
    (C2.check_stable_softmax, "shift by the mean",
     lambda s: _rows_softmax(s) if False else (lambda e: e / e.sum(-1, keepdim=True))(
         (s - s.mean(-1, keepdim=True)).exp()), NAMED + "shifted by the mean"),
    (C2.check_stable_softmax, "shift by the min",
     lambda s: (lambda e: e / e.sum(-1, keepdim=True))((s - s.min(-1, keepdim=True)[0]).exp()),
     NAMED + "shifted by the minimum"),
    (C2.check_stable_softmax, "shift by the first score",
     lambda s: (lambda e: e / e.sum(-1, keepdim=True))((s - s[:, :1]).exp()), r"nan at|inf at"),
    (C2.check_stable_softmax, "naive", lambda s: torch.exp(s) / torch.exp(s).sum(1, keepdim=True),
     NAMED + "no max-subtraction"),
    (C2.check_stable_softmax, "naive float64",
     lambda s: (s.double().exp() / s.double().exp().sum(-1, keepdim=True)), r"nan at"),
    (C2.check_stable_softmax, "dim=0", lambda s: F.softmax(s, dim=0), NAMED + "wrong axis"),
    (C2.check_stable_softmax, "global max",
     lambda s: (lambda e: e / e.sum(-1, keepdim=True))((s - s.max()).exp()),
     NAMED + "maximum of the whole matrix"),
    (C2.check_stable_softmax, "divided by the total",
     lambda s: (lambda e: e / e.sum())((s - s.max(-1, keepdim=True).values).exp()),
     r"sums to"),
    (C2.check_stable_softmax, "log-softmax", lambda s: torch.log_softmax(s, -1), r"entries differ"),
    (C2.check_stable_softmax, "in place", _in_place_softmax, "changed its input `scores` in place"),
    (C2.check_stable_softmax, "max without keepdim",
     lambda s: (lambda e: e / e.sum(-1, keepdim=True))((s - s.max(-1).values).exp()),
     NAMED + "without keepdim"),
    (C2.check_stable_softmax, "NumPy", lambda s: torch.softmax(s, -1).numpy(), "NumPy array"),
    (C2.check_stable_softmax, "unnormalised",
     lambda s: torch.exp(s - s.max(dim=-1, keepdim=True).values), NAMED + "forgot to divide"),
    # chapter 2: entropy
    (C2.check_entropy, "0 log 0", lambda p, b: -(p * p.log()).sum(-1) / math.log(b),
     NAMED + "0 log 0 gives nan"),
    (C2.check_entropy, "base ignored (nats)", lambda p, b: torch.special.entr(p).sum(-1),
     NAMED + "log base mixed up"),
    (C2.check_entropy, "always bits",
     lambda p, b: -(p * torch.log2(p.clamp_min(1e-12))).sum(-1), NAMED + "log base mixed up"),
    (C2.check_entropy, "mean", lambda p, b: _entropy_learner(p, b, reduce="mean"),
     NAMED + "averaged instead of summed"),
    (C2.check_entropy, "sum over everything", lambda p, b: _entropy_learner(p, b, reduce="all"),
     "shape"),
    (C2.check_entropy, "no minus", lambda p, b: _entropy_learner(p, b, minus=False),
     NAMED + "forgot the minus sign"),
    (C2.check_entropy, "multiplied by ln b", lambda p, b: _entropy_learner(p, b, divide=False),
     NAMED + "log base mixed up"),
    (C2.check_entropy, "sum over axis 0",
     lambda p, b: torch.special.entr(p).sum(0) / math.log(b), NAMED + "wrong axis"),
    (C2.check_entropy, "a Python list",
     lambda p, b: [float(x) for x in _entropy_learner(p, b)], "you returned a list"),
    # chapter 2: temperature
    (C2.check_temperature_for_entropy, "wrong end", lambda s, t: _bisect(s, t, flip=True),
     NAMED + r"an end of the interval"),
    (C2.check_temperature_for_entropy, "10 steps", lambda s, t: _bisect(s, t, steps=10),
     NAMED + "stopped too early"),
    (C2.check_temperature_for_entropy, "multiplied, bisection kept",
     lambda s, t: _bisect(s, t, temp=lambda m: 1 / m), NAMED + "an end of the interval"),
    (C2.check_temperature_for_entropy, "multiplied, bisection flipped",
     lambda s, t: _bisect(s, t, temp=lambda m: 1 / m, flip=True), NAMED + "multiplied the scores"),
    (C2.check_temperature_for_entropy, "bits",
     lambda s, t: _bisect(s, t, h=lambda s, m: _entropy_at(s, m) / math.log(2)),
     NAMED + "bits instead of nats"),
    (C2.check_temperature_for_entropy, "wrapped in a tensor of shape (1,)",
     lambda s, t: torch.tensor([_bisect(s, t)]), "extra dimension"),
    (C2.check_temperature_for_entropy, "interval [0.1, 10]",
     lambda s, t: _bisect(s, t, lo=0.1, hi=10.0), r"you have"),
    (C2.check_temperature_for_entropy, "negative temperature", lambda s, t: -_bisect(s, t),
     NAMED + "not positive"),
    # chapter 2: Jacobian
    (C2.check_softmax_jacobian, "sign flipped",
     lambda z: torch.outer(_p(z), _p(z)) - torch.diag(_p(z)), "sign flipped"),
    (C2.check_softmax_jacobian, "dot instead of outer",
     lambda z: torch.diag(_p(z)) - _p(z) @ _p(z), r"entries differ"),
    (C2.check_softmax_jacobian, "naive softmax",
     lambda z: (lambda p: torch.diag(p) - torch.outer(p, p))(z.exp() / z.exp().sum()),
     r"nan at"),
    (C2.check_softmax_jacobian, "diagonal only",
     lambda z: torch.diag(_p(z) - _p(z) ** 2), NAMED + "only the diagonal"),
    (C2.check_softmax_jacobian, "no diag term", lambda z: -_p(z)[:, None] * _p(z)[None],
     NAMED + "forgot the diag"),
    (C2.check_softmax_jacobian, "logits", lambda z: torch.diag(z) - torch.outer(z, z),
     NAMED + "logits instead"),
    (C2.check_softmax_jacobian, "diag(p) only", lambda z: torch.diag_embed(_p(z)),
     NAMED + "forgot the -p p"),
    (C2.check_softmax_jacobian, "plus", lambda z: torch.diag(_p(z)) + torch.outer(_p(z), _p(z)),
     NAMED + "wrong sign of the outer product"),
    # chapter 2: KL
    (C2.check_kl_divergence, "swapped",
     lambda p, q: torch.where(q > 0, q * (q / p).log(), 0.0).sum(-1), NAMED + "swapped"),
    (C2.check_kl_divergence, "upside down",
     lambda p, q: torch.where(p > 0, p * (q / p).log(), 0.0).sum(-1), NAMED + "upside down"),
    (C2.check_kl_divergence, "0 log 0", lambda p, q: (p * torch.log(p / q)).sum(-1),
     NAMED + "0 log 0"),
    (C2.check_kl_divergence, "cross-entropy", lambda p, q: -(p * q.log()).sum(-1),
     NAMED + "cross-entropy"),
    (C2.check_kl_divergence, "summed over everything",
     lambda p, q: torch.where(p > 0, p * (p / q).log(), 0.0).sum(), "shape"),
    (C2.check_kl_divergence, "mean over keys",
     lambda p, q: torch.where(p > 0, p * (p / q).log(), 0.0).mean(-1), r"times|entries differ"),
    # chapter 3: Gaussian weights
    (C3.check_gaussian_weights, "naive exp",
     lambda q, k, h: (lambda e: e / e.sum(1, keepdim=True))(torch.exp(-_sq(q, k) / (2 * h * h))),
     NAMED + "0 / 0 after exp underflowed"),
    (C3.check_gaussian_weights, "global max",
     lambda q, k, h: (lambda s: (lambda e: e / e.sum(-1, keepdim=True))((s - s.max()).exp()))(
         -_sq(q, k) / (2 * h**2)), NAMED + "whole matrix"),
    (C3.check_gaussian_weights, "softmax over queries",
     lambda q, k, h: torch.softmax(-_sq(q, k) / (2 * h**2), 0), NAMED + "wrong axis"),
    (C3.check_gaussian_weights, "precedence /2*h**2",
     lambda q, k, h: torch.softmax(-_sq(q, k) / 2 * h**2, -1), r"entries differ"),
    (C3.check_gaussian_weights, "absolute distance",
     lambda q, k, h: torch.softmax(-(q[:, None] - k).abs() / (2 * h**2), -1),
     NAMED + "forgot to square"),
    (C3.check_gaussian_weights, "keys by queries",
     lambda q, k, h: torch.softmax(-_sq(k, q) / (2 * h**2), 0), "transposed"),
    (C3.check_gaussian_weights, "kernel values", lambda q, k, h: torch.exp(-_sq(q, k) / (2 * h**2)),
     NAMED + "did not normalise"),
    (C3.check_gaussian_weights, "unsqueeze_ in place",
     lambda q, k, h: torch.softmax(-(q.unsqueeze_(1) - k) ** 2 / (2 * h**2), -1),
     "changed its input `queries` in place"),
    (C3.check_gaussian_weights, "2h not 2h^2",
     lambda q, k, h: torch.softmax(-_sq(q, k) / (2 * h), -1), NAMED + "did not square the band"),
    # chapter 3: Nadaraya-Watson
    (C3.check_nw_predict, "naive exp",
     lambda xq, x, y, h: (lambda e: (e @ y) / e.sum(-1))(torch.exp(-_sq(xq, x) / (2 * h**2))),
     NAMED + "0 / 0 after exp underflowed"),
    (C3.check_nw_predict, "averaged inputs",
     lambda xq, x, y, h: torch.softmax(-_sq(xq, x) / (2 * h**2), -1) @ x,
     NAMED + "averaged the keys"),
    (C3.check_nw_predict, "sum over queries",
     lambda xq, x, y, h: (torch.softmax(-_sq(xq, x) / (2 * h**2), -1) * y).sum(0), "shape"),
    (C3.check_nw_predict, "unnormalised",
     lambda xq, x, y, h: torch.exp(-_sq(xq, x) / (2 * h**2)) @ y, NAMED + "did not normalise"),
    (C3.check_nw_predict, "plain mean", lambda xq, x, y, h: y.mean().repeat(len(xq)),
     NAMED + "plain mean"),
    (C3.check_nw_predict, "returned weights too",
     lambda xq, x, y, h: (lambda w: (w @ y, w))(torch.softmax(-_sq(xq, x) / (2 * h**2), -1)),
     "you returned a tuple"),
    (C3.check_nw_predict, "axis 0",
     lambda xq, x, y, h: torch.softmax(-_sq(xq, x) / (2 * h**2), 0) @ y, NAMED + "wrong axis"),
    # chapter 3: leave-one-out
    (C3.check_loo_bandwidth, "not left out", lambda x, y, hs: _learner_loo(x, y, hs, fill=0.0),
     NAMED + "kept each point"),
    (C3.check_loo_bandwidth, "after the softmax",
     lambda x, y, hs: _learner_loo(x, y, hs, after=True),
     NAMED + "after the softmax"),
    (C3.check_loo_bandwidth, "naive exp",
     lambda x, y, hs: _learner_loo(x, y, hs, naive=True), NAMED + "0 / 0 for an isolated point"),
    (C3.check_loo_bandwidth, "argmax",
     lambda x, y, hs: (lambda b, e: (hs[int(e.argmax())], e))(*_learner_loo(x, y, hs)),
     NAMED + "largest error"),
    (C3.check_loo_bandwidth, "index",
     lambda x, y, hs: (lambda b, e: (int(e.argmin()), e))(*_learner_loo(x, y, hs)),
     NAMED + "index of the best"),
    (C3.check_loo_bandwidth, "errors as a list",
     lambda x, y, hs: (lambda b, e: (b, e.tolist()))(*_learner_loo(x, y, hs)),
     "you returned a list"),
    (C3.check_loo_bandwidth, "summed",
     lambda x, y, hs: (lambda b, e: (b, e * len(x)))(*_learner_loo(x, y, hs)), NAMED + "summed"),
    (C3.check_loo_bandwidth, "errors only", lambda x, y, hs: _learner_loo(x, y, hs)[1],
     "return values"),
    # chapter 4: masked softmax
    (C4.check_masked_softmax, "mask after",
     lambda s, n: torch.softmax(s, -1) * _keep(n, s.shape[-1]),
     NAMED + "mask applied after"),
    (C4.check_masked_softmax, "fill 0",
     lambda s, n: torch.softmax(s.masked_fill(~_keep(n, s.shape[-1]), 0), -1),
     NAMED + "set to 0"),
    (C4.check_masked_softmax, "fill -inf",
     lambda s, n: torch.softmax(s.masked_fill(~_keep(n, s.shape[-1]), -math.inf), -1),
     NAMED + "-inf fill"),
    (C4.check_masked_softmax, "<=",
     lambda s, n: (lambda keep: torch.softmax(s.masked_fill(~keep, -1e9), -1) * keep)(
         torch.arange(s.shape[-1]) <= n[:, None, None]), NAMED + "off by one"),
    (C4.check_masked_softmax, "max over padding",
     lambda s, n: (lambda e: e / e.sum(-1, keepdim=True))(
         (s - s.amax(-1, keepdim=True)).exp() * _keep(n, s.shape[-1])),
     NAMED + "over the padding too"),
    (C4.check_masked_softmax, "naive exp",
     lambda s, n: (lambda e: e / e.sum(-1, keepdim=True))(s.exp() * _keep(n, s.shape[-1])),
     r"nan at"),
    (C4.check_masked_softmax, "dim 1",
     lambda s, n: torch.softmax(s.masked_fill(~_keep(n, s.shape[-1]), -1e9), 1)
     * _keep(n, s.shape[-1]), NAMED + "wrong axis"),
    (C4.check_masked_softmax, "masked_fill_ in place",
     lambda s, n: torch.softmax(s.masked_fill_(~_keep(n, s.shape[-1]), -1e9), -1)
     * _keep(n, s.shape[-1]), "changed its input `scores` in place"),
    (C4.check_masked_softmax, "mask (B, S) without the T axis",
     lambda s, n: torch.softmax(s.masked_fill(
         ~(torch.arange(s.shape[-1]) < n[:, None]), -1e9), -1), r"raised .* — |entries differ"),
    # chapter 4: additive scores
    (C4.check_additive_scores, "no tanh",
     lambda q, k, Wq, Wk, w: ((q @ Wq)[:, :, None] + (k @ Wk)[:, None]) @ w,
     NAMED + "tanh forgotten"),
    (C4.check_additive_scores, "no broadcast",
     lambda q, k, Wq, Wk, w: torch.tanh(q @ Wq + k @ Wk) @ w, r"raised .* — "),
    (C4.check_additive_scores, "tanh by hand",
     lambda q, k, Wq, Wk, w: (lambda x: ((torch.exp(2 * x) - 1) / (torch.exp(2 * x) + 1)) @ w)(
         (q @ Wq)[:, :, None] + (k @ Wk)[:, None]), r"nan at"),
    (C4.check_additive_scores, "bst einsum",
     lambda q, k, Wq, Wk, w: torch.einsum("btsh,h->bst", torch.tanh(
         (q @ Wq)[:, :, None] + (k @ Wk)[:, None]), w), "transposed"),
    (C4.check_additive_scores, "separate tanh",
     lambda q, k, Wq, Wk, w: (torch.tanh(q @ Wq).unsqueeze(2) + torch.tanh(k @ Wk).unsqueeze(1))
     @ w, NAMED + "separately"),
    (C4.check_additive_scores, "w_v inside",
     lambda q, k, Wq, Wk, w: torch.tanh((q @ Wq @ w)[:, :, None] + (k @ Wk @ w)[:, None]),
     NAMED + "w_v applied inside"),
    # chapter 4: causal mask
    (C4.check_causal_mask, "float tril", lambda T: torch.tril(torch.ones(T, T)), "boolean tensor"),
    (C4.check_causal_mask, "int tril", lambda T: torch.ones(T, T, dtype=torch.int64).tril(),
     "boolean tensor"),
    (C4.check_causal_mask, "diagonal masked",
     lambda T: torch.arange(T)[None] < torch.arange(T)[:, None], NAMED + "diagonal is masked"),
    (C4.check_causal_mask, "upper", lambda T: torch.arange(T)[None] >= torch.arange(T)[:, None],
     NAMED + "future is allowed"),
    (C4.check_causal_mask, "True forbidden",
     lambda T: torch.arange(T)[None] > torch.arange(T)[:, None],
     NAMED + "True marks the forbidden"),
    (C4.check_causal_mask, "NumPy", lambda T: np.tril(np.ones((T, T), dtype=bool)), "NumPy array"),
    (C4.check_causal_mask, "batched", lambda T: torch.ones(1, T, T, dtype=torch.bool).tril(),
     "extra dimension"),
    # chapter 4: find the bug
    (C4.check_fixed_attention, "unchanged", lambda q, k, v, n: _learner_attention(q, k, v, n,
                                                                                  after=True),
     NAMED + "still masking after"),
    (C4.check_fixed_attention, "-inf fill",
     lambda q, k, v, n: _learner_attention(q, k, v, n, fill=-math.inf), NAMED + "nan on a fully"),
    (C4.check_fixed_attention, "unscaled",
     lambda q, k, v, n: _learner_attention(q, k, v, n, scale=False), NAMED + "1/sqrt"),
    (C4.check_fixed_attention, "naive exp",
     lambda q, k, v, n: _learner_attention(q, k, v, n, naive=True), r"nan at|inf at"),
    (C4.check_fixed_attention, "output only",
     lambda q, k, v, n: _learner_attention(q, k, v, n)[0], "expected 2 return values"),
    (C4.check_fixed_attention, "swapped outputs",
     lambda q, k, v, n: _learner_attention(q, k, v, n)[::-1], "shape"),
    # chapter 5: REINFORCE
    (C5.check_reinforce, "not detached",
     lambda lg, a, r, b: _learner_reinforce(lg, a, r, b, detach=False), NAMED + "neither"),
    (C5.check_reinforce, "log of softmax",
     lambda lg, a, r, b: -((r - b).detach() * torch.softmax(lg, 1).log()[range(len(a)), a]).mean(),
     NAMED + "log of the softmax"),
    (C5.check_reinforce, "sum", lambda lg, a, r, b: _learner_reinforce(lg, a, r, b, reduce="sum"),
     NAMED + "sum instead of mean"),
    (C5.check_reinforce, "per example",
     lambda lg, a, r, b: _learner_reinforce(lg, a, r, b, reduce="none"), NAMED + "per-example"),
    (C5.check_reinforce, "plus sign",
     lambda lg, a, r, b: _learner_reinforce(lg, a, r, b, sign=1.0), NAMED + "wrong sign"),
    (C5.check_reinforce, ".item()",
     lambda lg, a, r, b: _learner_reinforce(lg, a, r, b).item(), "no gradient can flow"),
    (C5.check_reinforce, "detached loss",
     lambda lg, a, r, b: _learner_reinforce(lg, a, r, b).detach(), "carries no gradient"),
    (C5.check_reinforce, "Categorical, rewards kept",
     lambda lg, a, r, b: -((r - b.detach()) * torch.distributions.Categorical(logits=lg)
                           .log_prob(a)).mean(), NAMED + "rewards not detached"),
    (C5.check_reinforce, "gather without [:, None]",
     lambda lg, a, r, b: -((r - b).detach() * torch.log_softmax(lg, -1).gather(-1, a)).mean(),
     r"raised .* — "),
    (C5.check_reinforce, "probability",
     lambda lg, a, r, b: _learner_reinforce(lg, a, r, b, log=False),
     NAMED + "used the probability"),
    (C5.check_reinforce, "in-place centring of the logits",
     lambda lg, a, r, b: _learner_reinforce(lg.sub_(lg.mean()), a, r, b), "in place"),
    # chapter 5: Gumbel-softmax
    (C5.check_gumbel_softmax, "soft",
     lambda lg, u, t: torch.softmax((lg - (-u.log()).log()) / t, -1),
     NAMED + "soft sample returned"),
    (C5.check_gumbel_softmax, "no straight-through",
     lambda lg, u, t: _learner_gumbel(lg, u, t, st=False), NAMED + "without the straight-through"),
    (C5.check_gumbel_softmax, "long one-hot",
     lambda lg, u, t: F.one_hot(((lg - (-u.log()).log()) / t).argmax(-1), lg.shape[-1]),
     "integer dtype"),
    (C5.check_gumbel_softmax, "F.gumbel_softmax",
     lambda lg, u, t: F.gumbel_softmax(lg, tau=t, hard=True), "noise of its own"),
    (C5.check_gumbel_softmax, "naive softmax",
     lambda lg, u, t: _learner_gumbel(lg, u, t, naive=True), r"nan at|inf at"),
    (C5.check_gumbel_softmax, "noise sign", lambda lg, u, t: _learner_gumbel(lg, u, t, sign=-1.0),
     NAMED + "wrong sign"),
    (C5.check_gumbel_softmax, "no noise", lambda lg, u, t: _learner_gumbel(lg, u, t, noise=False),
     NAMED + "noise forgotten"),
    (C5.check_gumbel_softmax, "times tau", lambda lg, u, t: _learner_gumbel(lg, u, t, div=False),
     NAMED + "multiplied instead of divided"),
    (C5.check_gumbel_softmax, "dim 0", lambda lg, u, t: _learner_gumbel(lg, u, t, dim=0),
     NAMED + "wrong axis"),
    # chapter 5: local-p
    (C5.check_local_p_weights, "floor", lambda s, p, D: _learner_local(s, p, D,
                                                                      centre_of_window=torch.floor),
     NAMED + "floor"),
    (C5.check_local_p_weights, "sigma D", lambda s, p, D: _learner_local(s, p, D, sigma=D),
     NAMED + "sigma = D"),
    (C5.check_local_p_weights, "no Gaussian", lambda s, p, D: _learner_local(s, p, D, gauss=False),
     NAMED + "Gaussian forgotten"),
    (C5.check_local_p_weights, "no window", lambda s, p, D: _learner_local(s, p, D, window=False),
     NAMED + "not zeroed"),
    (C5.check_local_p_weights, "naive exp", lambda s, p, D: _learner_local(s, p, D, naive=True),
     r"nan at|inf at"),
    (C5.check_local_p_weights, "rounded Gaussian centre",
     lambda s, p, D: _learner_local(s, p, D, gauss_centre=torch.round), NAMED + "rounded position"),
    (C5.check_local_p_weights, "window not rounded",
     lambda s, p, D: _learner_local(s, p, D, centre_of_window=lambda c: c), r"entries differ"),
    # chapter 6: Bahdanau step
    (C6.check_bahdanau_step, "no mask", lambda *a: _learner_step(
        *a, keep_fn=lambda S, n: torch.ones(len(n), S, dtype=torch.bool)),
     NAMED + "padding received"),
    (C6.check_bahdanau_step, "off by one", lambda *a: _learner_step(
        *a, keep_fn=lambda S, n: torch.arange(S) <= n[:, None]), NAMED + "off by one"),
    (C6.check_bahdanau_step, "no tanh", lambda *a: _learner_step(*a, tanh=False),
     NAMED + "forgot the tanh"),
    (C6.check_bahdanau_step, "batch axis", lambda *a: _learner_step(*a, dim=0),
     NAMED + "batch axis"),
    (C6.check_bahdanau_step, "order", lambda *a: _learner_step(*a, order="ce"),
     NAMED + "wrong order"),
    (C6.check_bahdanau_step, "naive exp", lambda *a: _learner_step(*a, naive=True),
     r"nan at|inf at"),
    (C6.check_bahdanau_step, "outputs in another order",
     lambda *a: _learner_step(*a, ret=(1, 0, 2)),
     "shape"),
    # chapter 6: modified precision
    (C6.check_modified_precision, "not clipped",
     lambda h, r, n: (lambda H, R: sum(c for g, c in H.items() if g in R)
                      / max(sum(H.values()), 1))(
         _grams(h, n), _grams(r, n)), NAMED + "not clipped"),
    (C6.check_modified_precision, "sets",
     lambda h, r, n: (lambda H, R: len(set(H) & set(R)) / max(sum(H.values()), 1))(
         _grams(h, n), _grams(r, n)), NAMED + "distinct"),
    (C6.check_modified_precision, "reference length",
     lambda h, r, n: (lambda H, R: sum(min(c, R[g]) for g, c in H.items()) / max(sum(R.values()),
                                                                                 1))(
         _grams(h, n), _grams(r, n)), NAMED + "reference's n-grams"),
    (C6.check_modified_precision, "range(len - n)",
     lambda h, r, n: (lambda H, R: sum(min(c, R[g]) for g, c in H.items()) / max(sum(H.values()),
                                                                                 1))(
         Counter(tuple(h[i:i + n]) for i in range(len(h) - n)),
         Counter(tuple(r[i:i + n]) for i in range(len(r) - n))), NAMED + "off by one"),
    (C6.check_modified_precision, "no empty guard",
     lambda h, r, n: (lambda H, R: sum(min(c, R[g]) for g, c in H.items()) / sum(H.values()))(
         _grams(h, n), _grams(r, n)), r"raised .* — "),
    (C6.check_modified_precision, "count not ratio",
     lambda h, r, n: (lambda H, R: sum(min(c, R[g]) for g, c in H.items()))(
         _grams(h, n), _grams(r, n)), r"you have"),
    # chapter 6: brevity penalty
    (C6.check_brevity_penalty, "always", lambda c, r: math.exp(1 - r / c) if c else 0.0,
     NAMED + "long hypotheses too"),
    (C6.check_brevity_penalty, "inverted",
     lambda c, r: 1.0 if c >= r else math.exp(1 - c / r), NAMED + "inverted"),
    (C6.check_brevity_penalty, "no 1 -",
     lambda c, r: 1.0 if c >= r else math.exp(-r / c), r"raised .* — |1 - is missing"),
    (C6.check_brevity_penalty, "no zero guard",
     lambda c, r: 1.0 if c >= r else math.exp(1 - r / c), r"raised .* — "),
    (C6.check_brevity_penalty, "a bool", lambda c, r: c >= r, "a bool"),
    # chapter 6: AER
    (C6.check_alignment_error_rate, "P ignored",
     lambda a, s, p: 1 - 2 * len(a & s) / (len(a) + len(s)), NAMED + "ignored the possible"),
    (C6.check_alignment_error_rate, "agreement",
     lambda a, s, p: (len(a & s) + len(a & p)) / (len(a) + len(s)), NAMED + "agreement"),
    (C6.check_alignment_error_rate, "|A| + |P|",
     lambda a, s, p: 1 - (len(a & s) + len(a & p)) / (len(a) + len(p)), NAMED + r"\|A\| \+ \|P\|"),
    (C6.check_alignment_error_rate, "precision", lambda a, s, p: len(a & s) / max(len(a), 1),
     r"you have"),
]

# Wrong answers that only the cases at the edges and extremes catch: each must be refused on
# the case named (a label fragment), so that case is what stands between it and a ✓.
REGIMES = [
    ("a softmax shifted by the mean (large spreads)", C2.check_stable_softmax,
     lambda s: (lambda e: e / e.sum(-1, keepdim=True))((s - s.mean(-1, keepdim=True)).exp()),
     "spread from -400 to 400"),
    ("a softmax shifted by the min (large spreads)", C2.check_stable_softmax,
     lambda s: (lambda e: e / e.sum(-1, keepdim=True))((s - s.min(-1, keepdim=True)[0]).exp()),
     "spread from -400 to 400"),
    ("a softmax that squeezes its input (length 1)", C2.check_stable_softmax,
     lambda s: torch.softmax(s.squeeze(), -1), "one query"),
    ("kernel weights with no stabilisation (far queries)", C3.check_gaussian_weights,
     lambda q, k, h: (lambda e: e / e.sum(-1, keepdim=True))(torch.exp(-_sq(q, k) / (2 * h**2))),
     "far from every key"),
    ("kernel regression with no stabilisation (far queries)", C3.check_nw_predict,
     lambda xq, x, y, h: (lambda e: (e @ y) / e.sum(-1))(torch.exp(-_sq(xq, x) / (2 * h**2))),
     "far outside the data"),
    ("leave-one-out with no stabilisation (an isolated point)", C3.check_loo_bandwidth,
     lambda x, y, hs: _learner_loo(x, y, hs, naive=True), "isolated"),
    ("masked softmax whose max includes the padding", C4.check_masked_softmax,
     lambda s, n: (lambda e: e / e.sum(-1, keepdim=True).clamp_min(1e-30))(
         (s - s.amax(-1, keepdim=True)).exp() * _keep(n, s.shape[-1])), "padding keys with"),
    ("masked softmax with -inf (a fully masked row)", C4.check_masked_softmax,
     lambda s, n: torch.softmax(s.masked_fill(~_keep(n, s.shape[-1]), -math.inf), -1),
     "valid length 0"),
    ("attention without stabilisation (large scores)", C4.check_fixed_attention,
     lambda q, k, v, n: _learner_attention(q, k, v, n, naive=True), "large scores"),
    ("log(softmax) in REINFORCE (logits far apart)", C5.check_reinforce,
     lambda lg, a, r, b: _learner_reinforce(lg, a, r, b) if lg.abs().max() < 50 else
     -((r - b).detach() * torch.softmax(lg, 1).log()[range(len(a)), a]).mean(), "400 apart"),
    ("a Gumbel softmax without stabilisation (cold tau)", C5.check_gumbel_softmax,
     lambda lg, u, t: _learner_gumbel(lg, u, t, naive=True), "cold tau"),
    ("local-p without stabilisation (large scores)", C5.check_local_p_weights,
     lambda s, p, D: _learner_local(s, p, D, naive=True), "scores ±300"),
    ("a Bahdanau step without stabilisation (large scores)", C6.check_bahdanau_step,
     lambda *a: _learner_step(*a, naive=True), "several hundred"),
    ("nearest neighbour that squeezes the table (one row)", C1.check_nearest_neighbour,
     lambda q, t: int(F.cosine_similarity(t.squeeze(), q[None], dim=-1).argmax())
     if len(t) > 1 else int(F.cosine_similarity(t.squeeze(), q, dim=0).argmax()) + 1,
     "one row"),
    ("a causal mask counting from 1 (T = 1)", C4.check_causal_mask,
     lambda T: torch.ones(T, T, dtype=torch.bool).tril() if T > 1 else
     torch.zeros(1, 1, dtype=torch.bool), "T=1"),
    ("an AER that assumes predictions (empty set)", C6.check_alignment_error_rate,
     lambda a, s, p: 1 - (len(a & s) + len(a & p)) / (len(a) + len(s)) if a else 0.0,
     "no predicted link"),
]


@pytest.mark.parametrize("what, check, answer, case", REGIMES, ids=[r[0] for r in REGIMES])
def test_a_wrong_answer_of_each_regime_is_caught_by_its_edge_case(what, check, answer, case):
    message = refusal(check, answer)
    assert message is not None, f"accepted: {what}"
    assert case in message.splitlines()[0], message


IDS = [f"{check.__module__.rsplit('.', 1)[1]}.{check.__name__[6:]}: {what}"
       for check, what, _, _ in CATALOGUE]


def refusal(check, answer) -> str | None:
    """The checker's message for ``answer``, or None if it was accepted."""
    try:
        check(answer)
    except ExerciseError as err:
        return str(err)
    return None


@pytest.mark.parametrize("check, what, answer, says", CATALOGUE, ids=IDS)
def test_a_learners_wrong_answer_is_refused_and_explained(check, what, answer, says, capsys):
    message = refusal(check, answer)
    assert message is not None, f"accepted: {what}"
    assert re.search(says, message), message


def test_the_catalogue_is_large_and_covers_every_checker_of_chapters_1_to_6():
    assert len(CATALOGUE) >= 100
    covered = {check for check, *_ in CATALOGUE}
    for module in (ch01, ch02, ch03, ch04, ch05, ch06):
        for name in dir(module):
            if name.startswith("check_") and name != "check_function":
                assert getattr(module, name) in covered, name


def test_at_least_90_percent_of_refusals_name_the_mistake_or_the_structural_fault():
    messages = [refusal(check, answer) for check, _, answer, _ in CATALOGUE]
    explained = [m for m in messages
                 if m and ("This looks like: " in m or STRUCTURAL.search(m))]
    assert len(explained) >= 0.9 * len(messages)


def measure() -> None:
    accepted, named, structural, bare = [], 0, 0, []
    for (check, _, answer, _), label in zip(CATALOGUE, IDS, strict=True):
        message = refusal(check, answer)
        if message is None:
            accepted.append(label)
        elif "This looks like: " in message:
            named += 1
        elif STRUCTURAL.search(message):
            structural += 1
        else:
            bare.append((label, message))
    total = len(CATALOGUE)
    refused = total - len(accepted)
    print(f"{total} wrong answers: {len(accepted)} accepted, {refused} refused; of these "
          f"{named} name the mistake, {structural} name a structural fault "
          f"({100 * (named + structural) / max(refused, 1):.1f}%), {len(bare)} say only where "
          "the values differ")
    for label in accepted:
        print("ACCEPTED:", label)
    for label, message in bare:
        print("VALUES ONLY:", label, "|", message.splitlines()[0][:150])


if __name__ == "__main__":
    sys.exit(measure())
