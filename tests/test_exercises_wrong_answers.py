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


def _sq_vec(q, x, s):
    return -(((q[:, None] - x) / s) ** 2).sum(-1) / 2  # (T, S)


def _learner_half(q, x, p, *, two=2.0, dist=None, naive=False, first=False, lo=1e-3):
    d = (q - x).abs() if dist is abs else (q - x) ** 2
    i = 0 if first else int(d.argmin())
    hi = 1e4
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        if naive:
            e = torch.exp(-d / (two * mid**2))
            share = e[i] / e.sum()
        else:
            share = torch.softmax(-d / (two * mid**2), 0)[i]
        if share > p:
            lo = mid
        else:
            hi = mid
    return mid


def _off(T):
    return torch.arange(T)[:, None] - torch.arange(T)[None, :]  # (T, T): i - j


def _learner_padded(q, k, v, ql, kl, *, queries=True, keys=True, fill=-1e9, after=False,
                    naive=False):
    T, S = q.shape[1], k.shape[1]
    keep = torch.ones(q.shape[0], T, S, dtype=torch.bool)
    if queries:
        keep = keep & (torch.arange(T)[None, :, None] < ql[:, None, None])
    if keys:
        keep = keep & (torch.arange(S)[None, None, :] < kl[:, None, None])
    scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
    if after:
        w = torch.softmax(scores, -1) * keep
    elif naive:
        e = scores.exp() * keep
        w = e / e.sum(-1, keepdim=True).clamp_min(1e-30)
    else:
        w = torch.softmax(scores.masked_fill(~keep, fill), -1)
        w = w * keep if fill != -math.inf else w
    return w @ v, w


def _learner_keep(q, k, v, m, *, how="bool", fill=-1e9):
    scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
    if how == "add":
        w = torch.softmax(scores + m, -1)
    elif how == "mul":
        w = torch.softmax(scores * m, -1)
    elif how == "keep":
        w = torch.softmax(scores + m * -1e9, -1)
    elif how == "fill":
        w = torch.softmax(scores.masked_fill(m, -1e9), -1)
    else:
        w = torch.softmax(scores.masked_fill(~m, fill), -1)
        w = w * m if fill != -math.inf else w
    return w @ v, w


def _learner_fixed(q, k, v, n, *, scale=math.sqrt, key_axis=True, naive=False, fill=-1e9):
    T, S = q.shape[1], k.shape[1]
    scores = q @ k.transpose(1, 2) / scale(q.shape[-1])
    if key_axis:
        keep = torch.arange(S)[None, None, :] < n[:, None, None]  # (B, 1, S)
    else:
        keep = torch.arange(T)[None, :, None] < n[:, None, None]  # (B, T, 1)
    if naive:
        e = scores.exp() * keep
        w = e / e.sum(-1, keepdim=True).clamp_min(1e-30)
    else:
        w = torch.softmax(scores.masked_fill(~keep, fill), -1)
        w = w * keep if fill != -math.inf else w
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


def _unit(X, dim=-1):
    n = X.norm(dim=dim, keepdim=True)
    return torch.where(n > 0, X / torch.where(n > 0, n, 1.0), 0.0)


def _stable_top(Q, K, k):
    return torch.sort(Q @ K.transpose(1, 2), dim=-1, descending=True, stable=True).indices[..., :k]


def _in_place_cosine(Q, K):
    Q /= Q.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return Q @ _unit(K).T


def _lse_learner(s, keep, fill=-math.inf, guard=True):
    z = s.masked_fill(~keep, fill)
    m = z.amax(-1, keepdim=True)
    if guard:
        m = torch.where(torch.isinf(m), 0.0, m)
    return (m + torch.exp(z - m).sum(-1, keepdim=True).log()).squeeze(-1)


def _top_w(scores, tau):
    return float(torch.softmax(scores.double() / tau, -1).max())


def _bisect_top(scores, target, lo=1e-4, hi=1e4, steps=70, flip=False, mul=False):
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        if (_top_w(scores, 1 / mid if mul else mid) > target) != flip:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _jvp_learner(z, v):
    p = torch.softmax(z, -1)
    return p * (v - (p * v).sum(-1, keepdim=True))


def _in_place_jvp(z, v):
    p = torch.softmax(z, -1)
    v -= (p * v).sum(-1, keepdim=True)
    return p * v


def _kl2(p, q):
    return torch.where(p > 0, p * torch.log2(torch.where(p > 0, p / q, 1.0)), 0.0).sum(-1)


def _js_learner(P, Q, half=True):
    M = (P + Q) / 2 if half else P + Q
    return (_kl2(P, M) + _kl2(Q, M)) / 2


# ---------------------------------------------------------------- the catalogue
# (checker, short description, wrong answer, what the message must say)

C1, C2, C3, C4, C5, C6 = ch01, ch02, ch03, ch04, ch05, ch06

CATALOGUE = [
    # chapter 1: cosine similarity with zero vectors
    (C1.check_safe_cosine, "the formula as written (0/0)",
     lambda Q, K: (Q @ K.T) / (Q.norm(dim=1, keepdim=True) * K.norm(dim=1)),
     NAMED + "0 / 0 for a zero vector"),
    (C1.check_safe_cosine, "eps = 1e-8 on the norms",
     lambda Q, K: (Q / (Q.norm(dim=-1, keepdim=True) + 1e-8))
     @ (K / (K.norm(dim=-1, keepdim=True) + 1e-8)).T, NAMED + "added a small eps"),
    (C1.check_safe_cosine, "F.cosine_similarity broadcast",
     lambda Q, K: F.cosine_similarity(Q[:, None, :], K[None, :, :], dim=-1),
     NAMED + "added a small eps"),
    (C1.check_safe_cosine, "dot products", lambda Q, K: torch.einsum("td,sd->ts", Q, K),
     NAMED + "returned dot products"),
    (C1.check_safe_cosine, "nan replaced by 1",
     lambda Q, K: ((Q @ K.T) / (Q.norm(dim=1, keepdim=True) * K.norm(dim=1))).nan_to_num(1.0),
     NAMED + "zero vector cosine 1"),
    (C1.check_safe_cosine, "normalised the columns",
     lambda Q, K: (_unit(Q, 0) @ _unit(K, 0).T), NAMED + "wrong axis"),
    (C1.check_safe_cosine, "keys against queries", lambda Q, K: _unit(K) @ _unit(Q).T,
     "transposed"),
    (C1.check_safe_cosine, "NumPy", lambda Q, K: (_unit(Q) @ _unit(K).T).numpy(), "NumPy array"),
    (C1.check_safe_cosine, "normalised Q in place", _in_place_cosine,
     "changed its input `Q` in place"),
    # chapter 1: top-k keys
    (C1.check_top_k_keys, "ascending argsort",
     lambda Q, K, k: torch.argsort(Q @ K.mT, dim=-1)[..., :k], NAMED + "lowest scores"),
    (C1.check_top_k_keys, "torch.topk (ties in any order)",
     lambda Q, K, k: torch.topk(Q @ K.mT, min(k, K.shape[1]), dim=-1).indices,
     NAMED + "ties not broken"),
    (C1.check_top_k_keys, "cosine ranking",
     lambda Q, K, k: _stable_top(F.normalize(Q, dim=-1), F.normalize(K, dim=-1), k),
     NAMED + "cosine similarity instead"),
    (C1.check_top_k_keys, "k > S not handled",
     lambda Q, K, k: _stable_top(Q, K, k) if k <= K.shape[1] else
     torch.topk(Q @ K.mT, k, dim=-1).indices, r"raised .* — |raised"),
    (C1.check_top_k_keys, "returned the scores",
     lambda Q, K, k: torch.sort(Q @ K.mT, dim=-1, descending=True).values[..., :k],
     r"dtype|whole number"),
    (C1.check_top_k_keys, "indices as floats", lambda Q, K, k: _stable_top(Q, K, k).float(),
     r"dtype|whole number|a float"),
    (C1.check_top_k_keys, "every key, not k", lambda Q, K, k: _stable_top(Q, K, K.shape[1]),
     "shape"),
    (C1.check_top_k_keys, "one batch for all",
     lambda Q, K, k: torch.sort(torch.einsum("btd,csd->bts", Q, K), dim=-1, descending=True,
                                stable=True).indices[..., :k], NAMED + "mixed the batch"),
    # chapter 1: bilinear scores with keys as columns
    (C1.check_bilinear_scores, "W.T", lambda Q, Kc, W: Q @ W.T @ Kc, NAMED + "W transposed"),
    (C1.check_bilinear_scores, "einsum with W's letters swapped",
     lambda Q, Kc, W: torch.einsum("btq,kq,bks->bts", Q, W, Kc), r"W transposed|raised"),
    (C1.check_bilinear_scores, "keys transposed again",
     lambda Q, Kc, W: Q @ W @ Kc.mT, NAMED + "transposed the stored keys again"),
    (C1.check_bilinear_scores, "no W", lambda Q, Kc, W: torch.bmm(Q, Kc), NAMED + "left out W"),
    (C1.check_bilinear_scores, "keys by queries", lambda Q, Kc, W: Kc.mT @ W.T @ Q.mT,
     "transposed"),
    (C1.check_bilinear_scores, "summed over the batch", lambda Q, Kc, W: (Q @ W @ Kc).sum(0),
     "shape"),
    (C1.check_bilinear_scores, "NumPy",
     lambda Q, Kc, W: Q.numpy() @ W.numpy() @ Kc.numpy(), "NumPy array"),
    # chapter 2: masked log-sum-exp
    (C2.check_masked_logsumexp, "fill 0", lambda s, k: torch.logsumexp(s.masked_fill(~k, 0), 1),
     NAMED + "set to 0 instead of -inf"),
    (C2.check_masked_logsumexp, "scores times mask", lambda s, k: torch.logsumexp(s * k, -1),
     NAMED + "set to 0 instead of -inf"),
    (C2.check_masked_logsumexp, "max over every key",
     lambda s, k: (lambda m: m + ((s - m[:, None]).exp() * k).sum(-1).log())(s.max(-1).values),
     NAMED + "maximum over the masked keys too"),
    (C2.check_masked_logsumexp, "no shift", lambda s, k: (s.exp() * k).sum(-1).log(),
     NAMED + "no max-subtraction"),
    (C2.check_masked_logsumexp, "True = ignore",
     lambda s, k: torch.logsumexp(s.masked_fill(k, -math.inf), -1), NAMED + "wrong way round"),
    (C2.check_masked_logsumexp, "no guard for an empty row",
     lambda s, k: _lse_learner(s, k, guard=False), NAMED + "no key kept gives nan"),
    (C2.check_masked_logsumexp, "fill -1e9", lambda s, k: _lse_learner(s, k, fill=-1e9),
     NAMED + "large negative number"),
    (C2.check_masked_logsumexp, "kept the axis",
     lambda s, k: torch.logsumexp(s.masked_fill(~k, -math.inf), -1, keepdim=True),
     "extra dimension"),
    (C2.check_masked_logsumexp, "over the queries",
     lambda s, k: torch.logsumexp(s.masked_fill(~k, -math.inf), 0), r"shape|entries differ"),
    # chapter 2: temperature for a top weight
    (C2.check_temperature_for_top_weight, "bisection as for the entropy",
     lambda s, t: _bisect_top(s, t, flip=True), NAMED + "moved the wrong end"),
    (C2.check_temperature_for_top_weight, "multiplied, bisection flipped",
     lambda s, t: _bisect_top(s, t, mul=True, flip=True), NAMED + "multiplied the scores"),
    (C2.check_temperature_for_top_weight, "two-key formula",
     lambda s, t: float((lambda z: (z[0] - z[1]) / math.log(t / (1 - t)))(
         s.sort(descending=True).values)), NAMED + "two largest scores"),
    (C2.check_temperature_for_top_weight, "12 steps", lambda s, t: _bisect_top(s, t, steps=12),
     NAMED + "stopped too early"),
    (C2.check_temperature_for_top_weight, "wrapped, shape (1,)",
     lambda s, t: torch.tensor([_bisect_top(s, t)]), "extra dimension"),
    (C2.check_temperature_for_top_weight, "negative", lambda s, t: -_bisect_top(s, t),
     NAMED + "not positive"),
    # chapter 2: softmax Jacobian-vector product
    (C2.check_softmax_jvp, "p * v", lambda z, v: torch.softmax(z, -1) * v,
     NAMED + "forgot the -p p"),
    (C2.check_softmax_jvp, "minus the sum of v",
     lambda z, v: torch.softmax(z, -1) * (v - v.sum(-1, keepdim=True)), NAMED + "plain sum"),
    (C2.check_softmax_jvp, "minus the mean of v",
     lambda z, v: torch.softmax(z, -1) * (v - v.mean(-1, keepdim=True)), NAMED + "mean of v"),
    (C2.check_softmax_jvp, "no keepdim",
     lambda z, v: (lambda p: p * (v - (p * v).sum(-1)))(torch.softmax(z, -1)),
     NAMED + "without keepdim"),
    (C2.check_softmax_jvp, "logits for p", lambda z, v: z * (v - (z * v).sum(-1, keepdim=True)),
     NAMED + "logits instead"),
    (C2.check_softmax_jvp, "plus", lambda z, v: (lambda p: p * (v + (p * v).sum(-1,
                                                                           keepdim=True)))(
        torch.softmax(z, -1)), NAMED + "wrong sign"),
    (C2.check_softmax_jvp, "formed J, kept the last axis",
     lambda z, v: (lambda p: (torch.diag_embed(p) - p[..., :, None] * p[..., None, :])
                   @ v[..., None])(torch.softmax(z, -1)), "extra dimension"),
    (C2.check_softmax_jvp, "naive softmax",
     lambda z, v: (lambda p: p * (v - (p * v).sum(-1, keepdim=True)))(
         z.exp() / z.exp().sum(-1, keepdim=True)), r"nan at"),
    (C2.check_softmax_jvp, "changed v in place", _in_place_jvp, "changed its input `v` in place"),
    # chapter 2: Jensen-Shannon divergence
    (C2.check_js_divergence, "KL(P || Q)", lambda P, Q: _kl2(P, Q), NAMED + "KL\\(P"),
    (C2.check_js_divergence, "symmetric KL", lambda P, Q: (_kl2(P, Q) + _kl2(Q, P)) / 2,
     NAMED + "symmetrised KL"),
    (C2.check_js_divergence, "natural log",
     lambda P, Q: _js_learner(P, Q) * math.log(2), NAMED + "nats instead of bits"),
    (C2.check_js_divergence, "no halves", lambda P, Q: 2 * _js_learner(P, Q),
     NAMED + "forgot the halves"),
    (C2.check_js_divergence, "0 log 0",
     lambda P, Q: ((P * torch.log2(2 * P / (P + Q))).sum(-1)
                   + (Q * torch.log2(2 * Q / (P + Q))).sum(-1)) / 2, NAMED + "0 log 0"),
    (C2.check_js_divergence, "xlogy with 0 / 0",
     lambda P, Q: (torch.xlogy(P, 2 * P / (P + Q)).sum(-1)
                   + torch.xlogy(Q, 2 * Q / (P + Q)).sum(-1)) / 2 / math.log(2), r"nan at"),
    (C2.check_js_divergence, "mixture P + Q", lambda P, Q: _js_learner(P, Q, half=False),
     r"plus -1 everywhere"),
    (C2.check_js_divergence, "summed over everything", lambda P, Q: _js_learner(P, Q).sum(),
     "shape"),
    # chapter 3: Nadaraya-Watson with a bandwidth per dimension
    (C3.check_nw_vector, "sigma not squared",
     lambda q, x, y, s: torch.softmax(-(((q[:, None] - x) ** 2) / s).sum(-1) / 2, -1) @ y,
     NAMED + "divided by sigma, not"),
    (C3.check_nw_vector, "no factor 2",
     lambda q, x, y, s: torch.softmax(-(((q[:, None] - x) / s) ** 2).sum(-1), -1) @ y,
     NAMED + "dropped the factor 2"),
    (C3.check_nw_vector, "cdist with the first sigma",
     lambda q, x, y, s: torch.softmax(-torch.cdist(q, x) ** 2 / (2 * s[0] ** 2), -1) @ y,
     NAMED + "one bandwidth"),
    (C3.check_nw_vector, "softmax over queries",
     lambda q, x, y, s: torch.softmax(_sq_vec(q, x, s), 0) @ y, NAMED + "wrong axis"),
    (C3.check_nw_vector, "naive exp",
     lambda q, x, y, s: (lambda e: (e @ y) / e.sum(-1))(_sq_vec(q, x, s).exp()),
     NAMED + "0 / 0 after exp"),
    (C3.check_nw_vector, "weights too",
     lambda q, x, y, s: (lambda w: (w @ y, w))(torch.softmax(_sq_vec(q, x, s), -1)),
     "you returned a tuple"),
    (C3.check_nw_vector, "div_ in place",
     lambda q, x, y, s: torch.softmax(-torch.cdist(q / s, x.div_(s)) ** 2 / 2, -1) @ y,
     "changed its input `x_train` in place"),
    (C3.check_nw_vector, "(T, 1) result",
     lambda q, x, y, s: torch.softmax(_sq_vec(q, x, s), -1) @ y[:, None], "extra dimension"),
    (C3.check_nw_vector, "summed before squaring",
     lambda q, x, y, s: torch.softmax(-((q[:, None] - x) / s).sum(-1) ** 2 / 2, -1) @ y,
     r"entries differ|This looks like"),
    # chapter 3: the bandwidth for a share p
    (C3.check_half_weight_bandwidth, "returned 2 sigma^2",
     lambda q, x, p: 2 * _learner_half(q, x, p) ** 2, NAMED + "temperature"),
    (C3.check_half_weight_bandwidth, "returned sigma^2",
     lambda q, x, p: _learner_half(q, x, p) ** 2, NAMED + "returned sigma\\^2"),
    (C3.check_half_weight_bandwidth, "kernel without the 2",
     lambda q, x, p: _learner_half(q, x, p, two=1.0), NAMED + "factor 2"),
    (C3.check_half_weight_bandwidth, "absolute distance",
     lambda q, x, p: _learner_half(q, x, p, dist=abs), NAMED + "\\|x - x_i\\|"),
    (C3.check_half_weight_bandwidth, "a tensor of shape (1,)",
     lambda q, x, p: torch.tensor([_learner_half(q, x, p)]), "extra dimension"),
    (C3.check_half_weight_bandwidth, "naive exp",
     lambda q, x, p: _learner_half(q, x, p, naive=True), "expected"),
    (C3.check_half_weight_bandwidth, "the first point, not the nearest",
     lambda q, x, p: _learner_half(q, x, p, first=True), r"expected|raised"),
    # chapter 3: kernel weights from dot products
    (C3.check_weights_from_dots, "plain dot-product softmax",
     lambda dots, n, s: torch.softmax(dots / s**2, -1), NAMED + "ignored the key norms"),
    (C3.check_weights_from_dots, "whole norm",
     lambda dots, n, s: torch.softmax((dots - n) / s**2, -1), NAMED + "the 1/2"),
    (C3.check_weights_from_dots, "2 sigma^2 kept",
     lambda dots, n, s: torch.softmax((dots - n / 2) / (2 * s**2), -1), NAMED + "2 sigma"),
    (C3.check_weights_from_dots, "naive exp",
     lambda dots, n, s: (lambda e: e / e.sum(-1, keepdim=True))(((dots - n / 2) / s**2).exp()),
     r"nan at|inf at"),
    (C3.check_weights_from_dots, "dim 0",
     lambda dots, n, s: torch.softmax((dots - n / 2) / s**2, 0), NAMED + "wrong axis"),
    (C3.check_weights_from_dots, "norms along the rows",
     lambda dots, n, s: torch.softmax((dots - n[:, None] / 2) / s**2, -1),
     r"raised .* — |entries differ"),
    (C3.check_weights_from_dots, "dots read as distances",
     lambda dots, n, s: torch.softmax(-dots / (2 * s**2), -1), r"entries differ"),
    (C3.check_weights_from_dots, "sub_ in place",
     lambda dots, n, s: torch.softmax(dots.sub_(n / 2) / s**2, -1),
     "changed its input `dots` in place"),
    # chapter 4: sliding-window mask
    (C4.check_sliding_window_mask, "< w", lambda T, w: _off(T).abs() < w, NAMED + "off by one"),
    (C4.check_sliding_window_mask, "> w", lambda T, w: _off(T).abs() > w,
     NAMED + "True marks the forbidden"),
    (C4.check_sliding_window_mask, "float band",
     lambda T, w: torch.ones(T, T).tril(w).triu(-w), "boolean tensor"),
    (C4.check_sliding_window_mask, "causal window",
     lambda T, w: torch.ones(T, T, dtype=torch.bool).tril() & (_off(T) <= w),
     NAMED + "only the past side"),
    (C4.check_sliding_window_mask, "no abs", lambda T, w: _off(T) <= w,
     NAMED + "absolute value"),
    (C4.check_sliding_window_mask, "tril(w) only",
     lambda T, w: torch.ones(T, T, dtype=torch.bool).tril(w), NAMED + "absolute value"),
    (C4.check_sliding_window_mask, "NumPy",
     lambda T, w: np.abs(np.subtract.outer(np.arange(T), np.arange(T))) <= w, "NumPy array"),
    (C4.check_sliding_window_mask, "batched", lambda T, w: (_off(T).abs() <= w)[None],
     "extra dimension"),
    # chapter 4: queries and keys padded
    (C4.check_padded_attention, "keys only",
     lambda *a: _learner_padded(*a, queries=False), NAMED + "masked only the keys"),
    (C4.check_padded_attention, "queries only",
     lambda *a: _learner_padded(*a, keys=False), NAMED + "masked only the queries"),
    (C4.check_padded_attention, "lengths swapped",
     lambda q, k, v, ql, kl: _learner_padded(q, k, v, kl, ql), NAMED + "swapped"),
    (C4.check_padded_attention, "-inf fill",
     lambda *a: _learner_padded(*a, fill=-math.inf), NAMED + "nan on a fully masked"),
    (C4.check_padded_attention, "mask after",
     lambda *a: _learner_padded(*a, after=True), NAMED + "masked after"),
    (C4.check_padded_attention, "output only", lambda *a: _learner_padded(*a)[0],
     "expected 2 return values"),
    (C4.check_padded_attention, "naive exp",
     lambda *a: _learner_padded(*a, naive=True), r"nan at|inf at"),
    # chapter 4: a mask in the 1 = keep convention
    (C4.check_keep_mask_attention, "added the mask",
     lambda q, k, v, m: _learner_keep(q, k, v, m, how="add"), NAMED + "added the 0/1"),
    (C4.check_keep_mask_attention, "1 = ignore",
     lambda q, k, v, m: _learner_keep(q, k, v, m == 0), NAMED + "wrong way round"),
    (C4.check_keep_mask_attention, "scores times mask",
     lambda q, k, v, m: _learner_keep(q, k, v, m, how="mul"), NAMED + "multiplied"),
    (C4.check_keep_mask_attention, "keep * -1e9",
     lambda q, k, v, m: _learner_keep(q, k, v, m, how="keep"), NAMED + "keep \\* -1e9"),
    (C4.check_keep_mask_attention, "masked_fill with the float mask",
     lambda q, k, v, m: _learner_keep(q, k, v, m, how="fill"), r"raised .* — "),
    (C4.check_keep_mask_attention, "-inf fill",
     lambda q, k, v, m: _learner_keep(q, k, v, m == 1, fill=-math.inf), r"nan at"),
    (C4.check_keep_mask_attention, "output only",
     lambda q, k, v, m: _learner_keep(q, k, v, m == 1)[0], "expected 2 return values"),
    # chapter 4: find the bugs
    (C4.check_fixed_scaled_attention, "still / d",
     lambda q, k, v, n: _learner_fixed(q, k, v, n, scale=lambda d: d), NAMED + "scaling by d"),
    (C4.check_fixed_scaled_attention, "still the queries' axis",
     lambda q, k, v, n: _learner_fixed(q, k, v, n, key_axis=False), NAMED + "queries' axis"),
    (C4.check_fixed_scaled_attention, "unchanged",
     lambda q, k, v, n: _learner_fixed(q, k, v, n, scale=lambda d: d, key_axis=False),
     NAMED + "unchanged"),
    (C4.check_fixed_scaled_attention, "no scale",
     lambda q, k, v, n: _learner_fixed(q, k, v, n, scale=lambda d: 1), NAMED + "no scale"),
    (C4.check_fixed_scaled_attention, "naive exp",
     lambda q, k, v, n: _learner_fixed(q, k, v, n, naive=True), r"nan at|inf at"),
    (C4.check_fixed_scaled_attention, "-inf fill",
     lambda q, k, v, n: _learner_fixed(q, k, v, n, fill=-math.inf), r"nan at"),
    (C4.check_fixed_scaled_attention, "swapped outputs",
     lambda q, k, v, n: _learner_fixed(q, k, v, n)[::-1], "shape"),
    (C4.check_fixed_scaled_attention, "scaled by sqrt(d_v)",
     lambda q, k, v, n: _learner_fixed(q, k, v, n, scale=lambda d: v.shape[-1] ** 0.5),
     r"entries differ|This looks like"),
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
    ("a masked log-sum-exp shifted by every key's maximum (a masked key at 1000)",
     C2.check_masked_logsumexp,
     lambda s, k: (lambda m: m + ((s - m[:, None]).exp() * k).sum(-1).log())(s.max(-1).values),
     "masked key scoring 1000"),
    ("a masked log-sum-exp with no guard (every key masked)", C2.check_masked_logsumexp,
     lambda s, k: _lse_learner(s, k, guard=False), "every key masked"),
    ("a Jacobian-vector product with no stabilisation (large logits)", C2.check_softmax_jvp,
     lambda z, v: (lambda p: p * (v - (p * v).sum(-1, keepdim=True)))(
         z.exp() / z.exp().sum(-1, keepdim=True)), "±1000"),
    ("a Jensen-Shannon divergence with 0 log 0 (rows with zeros)", C2.check_js_divergence,
     lambda P, Q: ((P * torch.log2(2 * P / (P + Q))).sum(-1)
                   + (Q * torch.log2(2 * Q / (P + Q))).sum(-1)) / 2, "no key in common"),
    ("kernel regression per dimension, no stabilisation (far queries)", C3.check_nw_vector,
     lambda q, x, y, s: (lambda e: (e @ y) / e.sum(-1))(_sq_vec(q, x, s).exp()),
     "far from every key"),
    ("a share-p bandwidth search with exp underflow (a far query)",
     C3.check_half_weight_bandwidth,
     lambda q, x, p: _learner_half(q, x, p, naive=True, lo=0.05), "far from the data"),
    ("kernel weights from dots with no stabilisation (long keys)", C3.check_weights_from_dots,
     lambda dots, n, s: (lambda e: e / e.sum(-1, keepdim=True))(((dots - n / 2) / s**2).exp()),
     "large scores"),
    ("padded attention without stabilisation (large scores)", C4.check_padded_attention,
     lambda *a: _learner_padded(*a, naive=True), "large scores"),
    ("a 1 = keep mask with -inf (a query that keeps nothing)", C4.check_keep_mask_attention,
     lambda q, k, v, m: _learner_keep(q, k, v, m == 1, fill=-math.inf), "keeps no key"),
    ("attention without stabilisation (large scores)", C4.check_fixed_scaled_attention,
     lambda q, k, v, n: _learner_fixed(q, k, v, n, naive=True), "large scores"),
    ("log(softmax) in REINFORCE (logits far apart)", C5.check_reinforce,
     lambda lg, a, r, b: _learner_reinforce(lg, a, r, b) if lg.abs().max() < 50 else
     -((r - b).detach() * torch.softmax(lg, 1).log()[range(len(a)), a]).mean(), "400 apart"),
    ("a Gumbel softmax without stabilisation (cold tau)", C5.check_gumbel_softmax,
     lambda lg, u, t: _learner_gumbel(lg, u, t, naive=True), "cold tau"),
    ("local-p without stabilisation (large scores)", C5.check_local_p_weights,
     lambda s, p, D: _learner_local(s, p, D, naive=True), "scores ±300"),
    ("a Bahdanau step without stabilisation (large scores)", C6.check_bahdanau_step,
     lambda *a: _learner_step(*a, naive=True), "several hundred"),
    ("top-k by torch.topk (tied scores)", C1.check_top_k_keys,
     lambda Q, K, k: torch.topk(Q @ K.mT, min(k, K.shape[1]), dim=-1).indices, "tied scores"),
    ("a cosine with eps on the norms (very short vectors)", C1.check_safe_cosine,
     lambda Q, K: (Q / (Q.norm(dim=-1, keepdim=True) + 1e-8))
     @ (K / (K.norm(dim=-1, keepdim=True) + 1e-8)).T, "norms near 1e-15"),
    ("a band summed from diagonals (a window wider than T)", C4.check_sliding_window_mask,
     lambda T, w: sum(torch.ones(T - abs(o)).diag(o) for o in range(-w, w + 1)) > 0,
     "wider than the sequence"),
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
