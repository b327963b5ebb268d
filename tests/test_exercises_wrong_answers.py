"""A catalogue of wrong answers of the kinds learners write, for the checkers of chapters 1-12
(those of chapters 7-12 are in ``wrong_answers_ch07_12.py``).

Each entry is a plausible wrong implementation, written here (not taken from the checkers'
own ``Mistake`` implementations), with what the checker must say about it: the mistake's
name, or the structural fault (shape, dtype, axis, an input changed in place, nan from
overflow ...). Every entry must be refused; the test fails if one is accepted or the
message does not say what is really wrong. ``python tests/test_exercises_wrong_answers.py``
prints the measurement: how many are accepted, how many refusals name the mistake or the
structural fault, and which ones say only where the values differ.
"""

import importlib
import math
import re
import sys
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import wrong_answers_ch07_12

from attnbook.exercises import ExerciseError, ch01, ch02, ch03, ch04, ch05, ch06, ch11, ch12

NAMED = r"This looks like: [^\n]*?"  # then (part of) the mistake's name

# What counts as naming a structural fault in a message (besides a named mistake).
STRUCTURAL = re.compile(
    r"returned None|shape|dtype|boolean|a bool|whole number|NumPy|you returned a (list|tuple|"
    r"float|dict)|return values|transposed|extra dimension|axis|axes|in place|nan at|inf at|"
    r"sums? to|times [-\d.e]+ everywhere|plus [-\d.e]+ everywhere|sign flipped|0 everywhere|"
    r"off by one|opposite mask|raised .* — |different sample each time|no gradient|"
    r"carries a gradient|another order")


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


def _learner_reinforce(logits, actions, rewards, *, detach=True, log=True, reduce="mean",
                       sign=-1.0, own=False):
    lp = torch.log_softmax(logits, -1) if log else torch.softmax(logits, -1).log()
    chosen = lp.gather(1, actions.unsqueeze(1)).squeeze(1)
    B = len(rewards)
    base = rewards.mean() if own else (rewards.sum() - rewards) / (B - 1)
    adv = (rewards - base).detach() if detach else rewards - base
    per = sign * adv * chosen
    return per.mean() if reduce == "mean" else per.sum() if reduce == "sum" else per


def _learner_topk(logits, uniform, k, *, noise=True, sign=1.0, log2=True):
    g = -torch.log(-torch.log(uniform)) if log2 else -torch.log(uniform)
    z = logits + sign * g if noise else logits
    return torch.topk(z, k, dim=-1).indices


def _learner_local_m(scores, D, *, clip=False, half=None, after=False, naive=False):
    T, S = scores.shape[1:]
    half = D if half is None else half
    t = torch.arange(T)
    if clip:
        inside = (torch.arange(S)[None] - t[:, None]).abs() <= half
    else:
        start = (t - half).clamp(0, S - 2 * half - 1)
        off = torch.arange(S)[None] - start[:, None]
        inside = (off >= 0) & (off <= 2 * half)
    if after:
        return torch.softmax(scores, -1) * inside
    if naive:
        e = scores.exp() * inside
        return e / e.sum(-1, keepdim=True)
    return torch.softmax(scores.masked_fill(~inside, float("-inf")), -1)


def _learner_dot_step(emb, s_prev, ann, src_len, W_q, W_k, cell, *, keep_fn=None,
                      scale=True, dim=-1, naive=False, order="ec", ret=(0, 1, 2)):
    S = ann.shape[1]
    q, k = s_prev @ W_q, ann @ W_k
    scores = (k @ q.unsqueeze(-1)).squeeze(-1)  # (B, S)
    if scale:
        scores = scores / q.shape[-1] ** 0.5
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


def _learner_corpus(hyps, refs, n, *, clip="max", pooled=True, guard=True):
    matched = total = 0
    ratios = []
    for h, rs in zip(hyps, refs, strict=True):
        H = _grams(h, n)
        if clip == "max":
            lim = Counter()
            for r in rs:
                lim |= _grams(r, n)
        elif clip == "sum":
            lim = sum((_grams(r, n) for r in rs), Counter())
        elif clip == "first":
            lim = _grams(rs[0], n)
        else:
            lim = None
        m = sum(c if lim is None and any(g in _grams(r, n) for r in rs) else
                0 if lim is None else min(c, lim[g]) for g, c in H.items())
        matched, total = matched + m, total + sum(H.values())
        if H:
            ratios.append(m / sum(H.values()))
    if not pooled:
        return sum(ratios) / len(ratios)
    return matched / total if (total or not guard) else 0.0


def _learner_map_aer(w, T, S, sure, possible, *, rows=True, cols=True, use_p=True,
                     swap=False):
    links = {(t, int(w[t, :S if cols else None].argmax())) for t in range(T if rows
                                                                      else w.shape[0])}
    if swap:
        links = {(s, t) for t, s in links}
    hits = len(links & sure) + len(links & (possible if use_p else sure))
    return 1 - hits / (len(links) + len(sure))


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
     lambda Q, Kc, W: torch.einsum("btq,kq,bks->bts", Q, W, Kc), NAMED + "W transposed"),
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
     lambda s, k: torch.logsumexp(s.masked_fill(~k, -math.inf), 0),
     NAMED + "logsumexp over the wrong axis"),
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
         z.exp() / z.exp().sum(-1, keepdim=True)), NAMED + "exp without subtracting"),
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
     r"nan at.*\n.*This looks like: (exp without|.*inf / inf)"),
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
     lambda q, k, v, n: _learner_fixed(q, k, v, n)[::-1], r"another order"),
    (C4.check_fixed_scaled_attention, "scaled by sqrt(d_v)",
     lambda q, k, v, n: _learner_fixed(q, k, v, n, scale=lambda d: v.shape[-1] ** 0.5),
     r"entries differ|This looks like"),
    # chapter 5: REINFORCE with a leave-one-out baseline
    (C5.check_reinforce_loo, "mean of all rewards",
     lambda lg, a, r: _learner_reinforce(lg, a, r, own=True), NAMED + "own reward"),
    (C5.check_reinforce_loo, "divided by B",
     lambda lg, a, r: -((r - (r.sum() - r) / len(r)).detach()
                        * torch.log_softmax(lg, -1)[range(len(a)), a]).mean(),
     NAMED + "instead of B - 1"),
    (C5.check_reinforce_loo, "not detached",
     lambda lg, a, r: _learner_reinforce(lg, a, r, detach=False), NAMED + "not detached"),
    (C5.check_reinforce_loo, "no baseline",
     lambda lg, a, r: -(r.detach() * torch.log_softmax(lg, -1)[range(len(a)), a]).mean(),
     NAMED + "baseline ignored"),
    (C5.check_reinforce_loo, "plus sign",
     lambda lg, a, r: _learner_reinforce(lg, a, r, sign=1.0), NAMED + "wrong sign"),
    (C5.check_reinforce_loo, "log of softmax",
     lambda lg, a, r: _learner_reinforce(lg, a, r, log=False), NAMED + "log of the softmax"),
    (C5.check_reinforce_loo, "sum",
     lambda lg, a, r: _learner_reinforce(lg, a, r, reduce="sum"), NAMED + "sum instead"),
    (C5.check_reinforce_loo, "per example",
     lambda lg, a, r: _learner_reinforce(lg, a, r, reduce="none"), r"shape|single number"),
    (C5.check_reinforce_loo, ".item()",
     lambda lg, a, r: _learner_reinforce(lg, a, r).item(), "no gradient can flow"),
    (C5.check_reinforce_loo, "detached loss",
     lambda lg, a, r: _learner_reinforce(lg, a, r).detach(), "carries no gradient"),
    (C5.check_reinforce_loo, "in-place centring of the rewards",
     lambda lg, a, r: _learner_reinforce(lg, a, r.sub_(r.mean().detach())), "in place"),
    # chapter 5: Gumbel top-k
    (C5.check_gumbel_top_k, "no noise",
     lambda lg, u, k: _learner_topk(lg, u, k, noise=False), NAMED + "noise forgotten"),
    (C5.check_gumbel_top_k, "one log",
     lambda lg, u, k: _learner_topk(lg, u, k, log2=False), NAMED + "missing a log"),
    (C5.check_gumbel_top_k, "noise sign",
     lambda lg, u, k: _learner_topk(lg, u, k, sign=-1.0), NAMED + "wrong sign"),
    (C5.check_gumbel_top_k, "smallest",
     lambda lg, u, k: (lg - torch.log(-torch.log(u))).argsort(-1)[:, :k],
     NAMED + "k smallest"),
    (C5.check_gumbel_top_k, "sorted indices",
     lambda lg, u, k: _learner_topk(lg, u, k).sort(-1).values, NAMED + "ascending order"),
    (C5.check_gumbel_top_k, "argmax repeated",
     lambda lg, u, k: (lg - torch.log(-torch.log(u))).argmax(-1)[:, None].repeat(1, k),
     NAMED + "one position k times"),
    (C5.check_gumbel_top_k, "values not indices",
     lambda lg, u, k: torch.topk(lg - torch.log(-torch.log(u)), k, -1).values,
     r"dtype|integer|floating"),
    (C5.check_gumbel_top_k, "multinomial with own randomness",
     lambda lg, u, k: torch.multinomial(torch.softmax(lg, -1), k), r"entries differ|This looks"),
    # chapter 5: local-m
    (C5.check_local_m_weights, "clipped window",
     lambda s, D: _learner_local_m(s, D, clip=True), NAMED + "cut at the edges"),
    (C5.check_local_m_weights, "no window", lambda s, D: torch.softmax(s, -1),
     NAMED + "not zeroed"),
    (C5.check_local_m_weights, "softmax then cut",
     lambda s, D: _learner_local_m(s, D, after=True), NAMED + "then cut"),
    (C5.check_local_m_weights, "half-width D-1",
     lambda s, D: _learner_local_m(s, D, half=max(D - 1, 0)), r"This looks|entries differ"),
    (C5.check_local_m_weights, "naive exp",
     lambda s, D: _learner_local_m(s, D, naive=True), r"nan at|inf at"),
    (C5.check_local_m_weights, "bool weights",
     lambda s, D: _learner_local_m(s, D) > 0, r"bool|boolean"),
    # chapter 6: a Bahdanau step with a dot score
    (C6.check_dot_bahdanau_step, "no mask", lambda *a: _learner_dot_step(
        *a, keep_fn=lambda S, n: torch.ones(len(n), S, dtype=torch.bool)),
     NAMED + "padding received"),
    (C6.check_dot_bahdanau_step, "off by one", lambda *a: _learner_dot_step(
        *a, keep_fn=lambda S, n: torch.arange(S) <= n[:, None]), NAMED + "off by one"),
    (C6.check_dot_bahdanau_step, "not scaled",
     lambda *a: _learner_dot_step(*a, scale=False), NAMED + "not scaled"),
    (C6.check_dot_bahdanau_step, "batch axis",
     lambda *a: _learner_dot_step(*a, dim=0), NAMED + "batch axis"),
    (C6.check_dot_bahdanau_step, "order",
     lambda *a: _learner_dot_step(*a, order="ce"), NAMED + "wrong order"),
    (C6.check_dot_bahdanau_step, "naive exp",
     lambda *a: _learner_dot_step(*a, naive=True), r"nan at|inf at"),
    (C6.check_dot_bahdanau_step, "outputs in another order",
     lambda *a: _learner_dot_step(*a, ret=(1, 0, 2)), r"another order|shape"),
    # chapter 6: corpus clipped precision
    (C6.check_corpus_precision, "not clipped",
     lambda h, r, n: _learner_corpus(h, r, n, clip=None), NAMED + "not clipped"),
    (C6.check_corpus_precision, "sum of references",
     lambda h, r, n: _learner_corpus(h, r, n, clip="sum"), NAMED + "sum over the references"),
    (C6.check_corpus_precision, "first reference",
     lambda h, r, n: _learner_corpus(h, r, n, clip="first"), NAMED + "first reference"),
    (C6.check_corpus_precision, "average of ratios",
     lambda h, r, n: _learner_corpus(h, r, n, pooled=False), r"This looks|raised .* — "),
    (C6.check_corpus_precision, "no empty guard",
     lambda h, r, n: _learner_corpus(h, r, n, guard=False), r"raised .* — "),
    (C6.check_corpus_precision, "matches, not the ratio",
     lambda h, r, n: _learner_corpus(h, r, n) * sum(sum(_grams(x, n).values()) for x in h),
     r"you have"),
    # chapter 6: AER of an attention map
    (C6.check_attention_aer, "padded rows",
     lambda *a: _learner_map_aer(*a, rows=False), NAMED + "padded target rows"),
    (C6.check_attention_aer, "padded columns",
     lambda *a: _learner_map_aer(*a, cols=False), NAMED + "padded source columns"),
    (C6.check_attention_aer, "P ignored",
     lambda *a: _learner_map_aer(*a, use_p=False), NAMED + "ignored the possible"),
    (C6.check_attention_aer, "agreement",
     lambda *a: 1 - _learner_map_aer(*a), NAMED + "agreement"),
    (C6.check_attention_aer, "(s, t) links",
     lambda *a: _learner_map_aer(*a, swap=True), NAMED + r"\(source, target\)"),
    (C6.check_attention_aer, "a tensor, not a float",
     lambda *a: torch.tensor([_learner_map_aer(*a)]), r"shape|single number|extra"),
]


# ---------------------------------------------------------------- chapter 12, as a learner


def _learner_rollout(weights, residual, *, identity=True, divide=True, left=True,
                     heads="mean"):
    L, h, T, _ = weights.shape
    R = torch.eye(T)
    for layer in range(L):
        w = weights[layer]
        A = w.mean(0) if heads == "mean" else w.max(0).values
        if identity:
            A = A + residual[layer] * torch.eye(T)
        if divide:
            A = A / (1 + residual[layer]) if identity else A
        R = A @ R if left else R @ A
    return R


def _learner_occlusion(model, tokens, labels, filler, *, log=True, fresh=True,
                       predicted=False, in_place=False):
    B, T = tokens.shape
    rows = torch.arange(B)
    with torch.no_grad():
        out = model(tokens)
        target = out.argmax(-1) if predicted else labels
        score = (out.log_softmax(-1) if log else out.softmax(-1))[rows, target]
        x = tokens if in_place else tokens.clone()
        cols = []
        for j in range(T):
            if fresh and not in_place:
                x = tokens.clone()
            keep = x[:, j].clone()
            x[:, j] = filler
            o = model(x)
            cols.append(score - (o.log_softmax(-1) if log else o.softmax(-1))[rows, target])
            if in_place and fresh:
                x[:, j] = keep
        if in_place:
            x[:, 0] = filler  # left a filler behind
    return torch.stack(cols, 1)


def _learner_js(p, q, *, log=torch.log2, root=True, guard=True):
    m = (p + q) / 2

    def kl(a, b):
        if guard:
            return torch.where(a > 0, a * log(torch.where(a > 0, a, 1) / b), 0).sum(-1)
        return (a * log(a / b)).sum(-1)

    js = (kl(p, m) + kl(q, m)) / 2
    return js.sqrt() if root else js


CATALOGUE += [
    (ch12.check_rollout_residual, "R = R @ A'",
     lambda w, r: _learner_rollout(w, r, left=False), NAMED + "wrong order"),
    (ch12.check_rollout_residual, "no identity",
     lambda w, r: _learner_rollout(w, r, identity=False), NAMED + "identity forgotten"),
    (ch12.check_rollout_residual, "A + rI, not divided",
     lambda w, r: _learner_rollout(w, r, divide=False), NAMED + "not re-normalised"),
    (ch12.check_rollout_residual, "the strongest head instead of the mean",
     lambda w, r: _learner_rollout(w, r, heads="max"), r"sums? to"),
    (ch12.check_occlusion, "softmax probabilities",
     lambda *a: _learner_occlusion(*a, log=False), NAMED + "probabilities instead"),
    (ch12.check_occlusion, "one copy for the whole loop",
     lambda *a: _learner_occlusion(*a, fresh=False), NAMED + "not put back"),
    (ch12.check_occlusion, "the model's own prediction",
     lambda *a: _learner_occlusion(*a, predicted=True), NAMED + "predicted class"),
    (ch12.check_occlusion, "occluded the caller's tokens",
     lambda *a: _learner_occlusion(*a, in_place=True), "in place"),
    (ch12.check_js_distance, "natural log",
     lambda p, q: _learner_js(p, q, log=torch.log), NAMED + "natural logarithm"),
    (ch12.check_js_distance, "the divergence",
     lambda p, q: _learner_js(p, q, root=False), NAMED + "no square root"),
    (ch12.check_js_distance, "KL(p || q)",
     lambda p, q: torch.where(p > 0, p * torch.log2(p / q), 0).sum(-1).sqrt(),
     NAMED + "KL divergence"),
    (ch12.check_js_distance, "0 log 0 not guarded",
     lambda p, q: _learner_js(p, q, guard=False), r"nan at"),
]


# chapter 11: written as learners write them, loops and all


def _learner_online(m, l, scores, *, rescale=True, flip=False, keep_max=True):  # noqa: E741
    m, l = m.clone(), l.clone()  # noqa: E741
    for j in range(scores.shape[1]):
        x = scores[:, j]
        new = torch.maximum(m, x) if keep_max else torch.maximum(x, scores.amax(1))
        factor = torch.exp(new - m) if flip else torch.exp(m - new)
        l = (l * factor if rescale else l) + torch.exp(x - new)  # noqa: E741
        m = new
    return m, l


def _learner_tile(acc, m, l, q, k, v, q_start, k_start, window, *,  # noqa: E741
                  offsets=True, guard=True):
    i = torch.arange(q.shape[0]) + (q_start if offsets else 0)
    j = torch.arange(k.shape[0]) + (k_start if offsets else 0)
    diff = i[:, None] - j[None, :]
    s = (q @ k.T) / q.shape[1] ** 0.5
    s[(diff < 0) | (diff >= window)] = float("-inf")
    m2 = torch.max(m, s.max(dim=1).values)
    sub = torch.where(m2 == float("-inf"), 0.0, m2) if guard else m2
    p = torch.exp(s - sub[:, None])
    a = torch.exp(m - sub)
    return a[:, None] * acc + p @ v, m2, a * l + p.sum(1)


def _learner_decay(q, k, v, gamma, *, decay_z=True, phi=True):
    fq, fk = (F.elu(q) + 1, F.elu(k) + 1) if phi else (q, k)
    outs = []
    S = torch.zeros(q.shape[0], q.shape[2], v.shape[2])
    z = torch.zeros(q.shape[0], q.shape[2])
    for t in range(q.shape[1]):
        S = gamma * S + torch.einsum("bi,bj->bij", fk[:, t], v[:, t])
        z = (gamma * z if decay_z else z) + fk[:, t]
        outs.append(torch.einsum("bi,bij->bj", fq[:, t], S)
                    / torch.einsum("bi,bi->b", fq[:, t], z)[:, None])
    return torch.stack(outs, 1)


CATALOGUE += [
    (ch11.check_online_update, "sum not rescaled (a loop over the block)",
     lambda m, l, s: _learner_online(m, l, s, rescale=False),  # noqa: E741
     NAMED + "not rescaled"),
    (ch11.check_online_update, "exp(m_new - m)",
     lambda m, l, s: _learner_online(m, l, s, flip=True),  # noqa: E741
     NAMED + "upside down"),
    (ch11.check_online_update, "max over the whole batch of rows",
     lambda m, l, s: (torch.maximum(m, s.max()),  # noqa: E741
                      l * torch.exp(m - torch.maximum(m, s.max()))
                      + torch.exp(s - torch.maximum(m, s.max())[:, None]).sum(1)),
     r"wrong on|differ"),
    (ch11.check_window_tile, "positions of the tile, not of the sequence",
     lambda *a: _learner_tile(*a, offsets=False), NAMED + "inside the tile"),
    (ch11.check_window_tile, "no guard for a hidden row",
     lambda *a: _learner_tile(*a, guard=False), NAMED + "nan for a query that sees no key"),
    (ch11.check_append_kv, "torch.cat(..., dim=1)",
     lambda c, kp, g: torch.cat([c, kp.view(kp.shape[0], kp.shape[1], g, -1)
                                 .permute(0, 2, 1, 3)], dim=1), NAMED + "head axis"),
    (ch11.check_append_kv, "view straight to (B, g, t, d_h)",
     lambda c, kp, g: torch.cat([c, kp.view(kp.shape[0], g, kp.shape[1], -1)], dim=2),
     NAMED + "without the transpose"),
    (ch11.check_decayed_linear_attention, "z without the decay",
     lambda q, k, v, g: _learner_decay(q, k, v, g, decay_z=False), NAMED + "normaliser"),
    (ch11.check_decayed_linear_attention, "no feature map",
     lambda q, k, v, g: _learner_decay(q, k, v, g, phi=False), NAMED + "feature map"),
]

# more of chapters 1-6: axes, in-place edits of token lists, the issue-27 misnamings


def _two_point_sigma(q, x, p):
    d = (x - q).abs().sort().values  # the two nearest points, as for two points
    return math.sqrt(float(d[1] ** 2 - d[0] ** 2) / (2 * math.log(p / (1 - p))))


def _unk_in_place(hyps, refs, n):
    vocab = {w for rs in refs for r in rs for w in r}
    for h in hyps:
        for i, w in enumerate(h):
            if w not in vocab:
                h[i] = "<unk>"  # an unknown word matches nothing anyway
    return _learner_corpus(hyps, refs, n)


def _masked_scores(q, k, v, keep, dim=-1, scale=None):
    s = q @ k.transpose(1, 2) / (scale or math.sqrt(q.shape[-1]))
    w = torch.softmax(s.masked_fill(~keep, -1e9), dim) * keep
    return w @ v, w


def _pad_keep(q, k, ql, kl):
    T, S = q.shape[1], k.shape[1]
    return (torch.arange(T)[None, :, None] < ql[:, None, None]) & (
        torch.arange(S)[None, None, :] < kl[:, None, None])


CATALOGUE += [
    (C1.check_top_k_keys, "sorted over the queries",
     lambda Q, K, k: torch.sort(Q @ K.mT, dim=1, descending=True, stable=True).indices[..., :k],
     NAMED + "sort over the wrong axis"),
    (C1.check_top_k_keys, "argsort of the negated scores over dim 1",
     lambda Q, K, k: torch.argsort(-(Q @ K.mT), dim=1, stable=True)[..., :k],
     NAMED + "sort over the wrong axis"),
    (C2.check_temperature_for_top_weight, "returned log tau",
     lambda s, t: math.log(_bisect_top(s, t)), NAMED + "returned log tau"),
    (C2.check_temperature_for_top_weight, "exp without the maximum in float32",
     lambda s, t: _bisect_top_naive(s, t), NAMED + "exp overflowed during the search"),
    (C2.check_softmax_jvp, "softmax over the rows",
     lambda z, v: (lambda p: p * (v - (p * v).sum(-1, keepdim=True)))(torch.softmax(z, 0)),
     NAMED + "softmax over the wrong axis"),
    (C2.check_masked_logsumexp, "log of a masked softmax's normaliser, no shift",
     lambda s, k: torch.log(torch.where(k, s.exp(), 0.0).sum(-1)),
     NAMED + "(no max-subtraction|exp without subtracting)"),
    (C3.check_half_weight_bandwidth, "the two-point closed form everywhere",
     _two_point_sigma, r"division by zero.*denominator"),
    (C3.check_weights_from_dots, "normalised over the keys' norms axis",
     lambda dots, n, s: torch.softmax((dots - n / 2) / s**2, 0), NAMED + "wrong axis"),
    (C4.check_padded_attention, "softmax over the queries",
     lambda q, k, v, ql, kl: _masked_scores(q, k, v, _pad_keep(q, k, ql, kl), dim=1),
     NAMED + "softmax over the wrong axis"),
    (C4.check_keep_mask_attention, "softmax over the queries",
     lambda q, k, v, m: _masked_scores(q, k, v, m == 1, dim=1),
     NAMED + "softmax over the wrong axis"),
    (C4.check_fixed_scaled_attention, "softmax over the batch",
     lambda q, k, v, n: _masked_scores(q, k, v, (torch.arange(k.shape[1]) < n[:, None])[:, None],
                                       dim=0), NAMED + "softmax over the wrong axis"),
    (C5.check_gumbel_top_k, "top-k over the batch",
     lambda lg, u, k: torch.topk(lg - torch.log(-torch.log(u)), k, dim=0).indices,
     NAMED + "topk over the wrong axis|shape"),
    (C5.check_local_m_weights, "softmax over the steps",
     lambda s, D: torch.softmax(s.masked_fill(~_local_inside(s, D), -math.inf), 1),
     NAMED + "softmax over the wrong axis"),
    (C6.check_corpus_precision, "unknown words replaced in place", _unk_in_place,
     "changed its input `hypotheses` in place"),
    (C1.check_safe_cosine, "F.cosine_similarity with eps=0",
     lambda Q, K: F.cosine_similarity(Q[:, None], K[None], dim=-1, eps=0.0),
     r"nan at|This looks like"),
    (C1.check_top_k_keys, "values and indices", lambda Q, K, k: torch.sort(
        Q @ K.mT, dim=-1, descending=True, stable=True)[:2], r"you returned a tuple|shape"),
    (C2.check_masked_logsumexp, "fill by arithmetic with -1e9",
     lambda s, k: torch.logsumexp(s * k + (~k) * -1e9, -1), NAMED + "large negative number"),
    (C2.check_js_divergence, "F.kl_div against the mixture (nats)",
     lambda P, Q: (F.kl_div(((P + Q) / 2).log(), P, reduction="none").sum(-1)
                   + F.kl_div(((P + Q) / 2).log(), Q, reduction="none").sum(-1)) / 2,
     r"times 0.6931 everywhere|" + NAMED + "nats instead of bits"),
    (C2.check_js_divergence, "averaged over the keys, not summed",
     lambda P, Q: _js_learner(P, Q) / P.shape[-1], r"differ|This looks like"),
    (C3.check_nw_vector, "cdist divided by sigma once",
     lambda q, x, y, s: torch.softmax(-((q[:, None] - x) ** 2 / s).sum(-1) / 2, -1) @ y,
     NAMED + "divided by sigma, not"),
    (C3.check_nw_vector, "the mean of y", lambda q, x, y, s: y.mean().expand(q.shape[0]),
     r"differ"),
    (C4.check_sliding_window_mask, "|i - j| < w",
     lambda T, w: (torch.arange(T)[:, None] - torch.arange(T)[None]).abs() < w,
     NAMED + "one too narrow"),
    (C4.check_sliding_window_mask, "0/1 floats",
     lambda T, w: ((torch.arange(T)[:, None] - torch.arange(T)[None]).abs() <= w).float(),
     r"boolean"),
    (C4.check_keep_mask_attention, "-inf where keep is 0",
     lambda q, k, v, m: (lambda w: (w @ v, w))(torch.softmax(
         (q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])).masked_fill(m == 0, -math.inf), -1)),
     r"nan at|This looks like"),
    (C5.check_local_m_weights, "half-width D + 1",
     lambda s, D: _learner_local_m(s, D, half=D + 1), r"differ|This looks like|raised"),
    (C6.check_corpus_precision, "the corpus as one long sentence",
     lambda h, r, n: _learner_corpus([sum(h, [])], [[sum((rs[0] for rs in r), [])]], n),
     r"differ|you have|This looks like"),
    (C6.check_attention_aer, "links from the source side (argmax over targets)",
     lambda w, T, S, s, p: 1 - (len({(int(w[:T, j].argmax()), j) for j in range(S)} & s)
                                + len({(int(w[:T, j].argmax()), j) for j in range(S)} & p))
     / (S + len(s)), r"you have|This looks like"),
    (C5.check_gumbel_top_k, "noise added to the probabilities",
     lambda lg, u, k: torch.topk(torch.softmax(lg, -1) - torch.log(-torch.log(u)), k,
                                 dim=-1).indices, r"differ|This looks like"),
    (C5.check_gumbel_top_k, "indices as a list",
     lambda lg, u, k: torch.topk(lg - torch.log(-torch.log(u)), k, dim=-1).indices.tolist(),
     r"you returned a list"),
    (C3.check_half_weight_bandwidth, "a search on sigma^2, returned as it is",
     lambda q, x, p: _learner_half(q, x, p) ** 2, NAMED + r"returned sigma\^2"),
    (C6.check_dot_bahdanau_step, "softmax over the batch",
     lambda *a: _learner_dot_step(*a, dim=0), NAMED + "softmax over the batch axis"),
]


def _local_inside(scores, D):
    T, S = scores.shape[1:]
    start = (torch.arange(T) - D).clamp(0, S - 2 * D - 1)
    off = torch.arange(S)[None] - start[:, None]
    return (off >= 0) & (off <= 2 * D)


def _bisect_top_naive(scores, target, lo=1e-4, hi=1e4, steps=70):
    s = scores.float()
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        e = torch.exp(s / mid)
        if float((e / e.sum()).max()) > target:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


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
    ("log(softmax) in REINFORCE (logits far apart)", C5.check_reinforce_loo,
     lambda lg, a, r: _learner_reinforce(lg, a, r, log=lg.abs().max() < 50), "400 apart"),
    ("local-m without stabilisation (large scores)", C5.check_local_m_weights,
     lambda s, D: _learner_local_m(s, D, naive=True), "scores ±300"),
    ("a dot-score step without stabilisation (large scores)", C6.check_dot_bahdanau_step,
     lambda *a: _learner_dot_step(*a, naive=True), "several hundred"),
    ("top-k by torch.topk (tied scores)", C1.check_top_k_keys,
     lambda Q, K, k: torch.topk(Q @ K.mT, min(k, K.shape[1]), dim=-1).indices, "tied scores"),
    ("a cosine with eps on the norms (very short vectors)", C1.check_safe_cosine,
     lambda Q, K: (Q / (Q.norm(dim=-1, keepdim=True) + 1e-8))
     @ (K / (K.norm(dim=-1, keepdim=True) + 1e-8)).T, "norms near 1e-15"),
    ("a band summed from diagonals (a window wider than T)", C4.check_sliding_window_mask,
     lambda T, w: sum(torch.ones(T - abs(o)).diag(o) for o in range(-w, w + 1)) > 0,
     "wider than the sequence"),
    ("an AER that counts padded rows only when tgt_len=1", C6.check_attention_aer,
     lambda w, T, S, s, p: _learner_map_aer(w, T, S, s, p, rows=T > 1), "one target word"),
]


CATALOGUE += wrong_answers_ch07_12.CATALOGUE
REGIMES += wrong_answers_ch07_12.REGIMES


@pytest.mark.parametrize("what, check, answer, case", REGIMES, ids=[r[0] for r in REGIMES])
def test_a_wrong_answer_of_each_regime_is_caught_by_its_edge_case(what, check, answer, case):
    message = refusal(check, answer)
    assert message is not None, f"accepted: {what}"
    assert case in message.splitlines()[0], message


IDS = [f"{check.__module__.rsplit('.', 1)[1]}.{check.__name__[6:]}: {what}"
       for check, what, _, _ in CATALOGUE]


_SEEN: dict[tuple, str | None] = {}  # refusals already computed in this process


def refusal(check, answer) -> str | None:
    """The checker's message for ``answer``, or None if it was accepted."""
    key = (id(check), id(answer))
    if key in _SEEN:
        return _SEEN[key]
    try:
        check(answer)
        message = None
    except ExerciseError as err:
        message = str(err)
    _SEEN[key] = message
    return message


@pytest.mark.parametrize("check, what, answer, says", CATALOGUE, ids=IDS)
def test_a_learners_wrong_answer_is_refused_and_explained(check, what, answer, says, capsys):
    message = refusal(check, answer)
    assert message is not None, f"accepted: {what}"
    assert re.search(says, message), message
    # not misleading: a refusal names a mistake only where one was planted
    assert "This looks like: " not in message or "This looks" in says, message


def test_the_catalogue_is_large_and_covers_every_checker_several_times():
    counts = Counter(check for check, *_ in CATALOGUE)
    modules = [importlib.import_module(f"attnbook.exercises.ch{n:02d}") for n in range(1, 13)]
    checkers = [fn for module in modules for name, fn in vars(module).items()
                if name.startswith("check_") and getattr(fn, "__module__", "") ==
                module.__name__]
    assert len(checkers) >= 45
    assert len(CATALOGUE) >= 400
    for check in checkers:
        assert counts[check] >= 4, f"{check.__module__}.{check.__name__}: {counts[check]}"


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
    for part, chapters in (("chapters 1-6", range(1, 7)), ("chapters 7-12", range(7, 13))):
        labels = [label for label in IDS if int(label[2:4]) in chapters]
        values_only = sum(label in labels for label, _ in bare)
        print(f"  {part}: {len(labels)} wrong answers, "
              f"{100 * (len(labels) - values_only) / len(labels):.1f}% specific")
    for label in accepted:
        print("ACCEPTED:", label)
    for label, message in bare:
        print("VALUES ONLY:", label, "|", message.splitlines()[0][:150])


if __name__ == "__main__":
    sys.exit(measure())
