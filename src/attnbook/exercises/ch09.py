"""Checkers for chapter 9: LayerNorm on channels-first input, a gated (SwiGLU)
feed-forward network, one incremental decoder-layer step with cross-attention, one
beam-search step with GNMT's length penalty, the warm-up schedule by its peak.

Shapes: B batch, T target positions, S source positions, d model size, k beams, V
vocabulary size.
"""

import math

import torch
import torch.nn.functional as F

from attnbook.attention import causal_mask, padding_mask
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function, make_compare
from attnbook.transformer import DecoderLayer


def _randn(*shape, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return shift + scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --- 1. LayerNorm on channels-first input ---------------------------------------------

def _layer_norm_cf(x, weight, bias, eps, *, axis=1, unbiased=False, eps_outside=False):
    """x (B, d, T): normalise the d features of each (b, t) position."""
    mean = x.mean(axis, keepdim=True)
    var = x.var(axis, unbiased=unbiased, keepdim=True)
    std = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
    return (x - mean) / std * weight[:, None] + bias[:, None]


def _ln_case(seed, B, d, T, *, scale=1.0, shift=0.0, eps=1e-5, const=False, label=""):
    # float64: features near 1000 would lose digits to float32 rounding, not to a mistake
    x = _randn(B, d, T, seed=seed, scale=scale, shift=shift).double()
    if const:
        x[0, :, 0] = 3.0  # one position whose features are all equal: variance 0
    return Case((x, _randn(d, seed=seed + 100, shift=1.0).double(),
                 _randn(d, seed=seed + 200).double(), eps),
                label=label or f"x of shape {(B, d, T)}")


_LN_CASES = [
    _ln_case(0, 3, 4, 5, label="x (B, d, T) = (3, 4, 5)"),
    _ln_case(1, 2, 6, 3, scale=0.01, eps=1e-3, label="tiny features (std 0.01), eps = 1e-3"),
    _ln_case(2, 4, 3, 2, scale=0.1, shift=1000.0, label="features near 1000"),
    _ln_case(3, 2, 5, 4, const=True, eps=1e-2,
             label="one position with all d features equal (variance 0), eps = 1e-2"),
    _ln_case(4, 1, 8, 1, label="B = T = 1"),
]

_BOOK = ("nn.LayerNorm, as in the book: per position, mean and *biased* variance (divide "
         "by d) over the d features, and eps inside the root, (x - mean) / sqrt(var + eps).")

_LN_MISTAKES = [
    Mistake("normalised over the batch axis", "that is batch normalisation: LayerNorm "
            "normalises each example's position on its own, over the features (axis 1 "
            "here, the axis of size d). " + _BOOK,
            wrong=lambda x, w, b, e: _layer_norm_cf(x, w, b, e, axis=0)),
    Mistake("normalised over the positions (the last axis)", "in a (B, d, T) layout the "
            "features are axis 1, not the last axis. " + _BOOK,
            wrong=lambda x, w, b, e: _layer_norm_cf(x, w, b, e, axis=2)),
    Mistake("unbiased variance (divided by d - 1)", "torch.var divides by d - 1 unless "
            "you pass unbiased=False (or correction=0). " + _BOOK,
            wrong=lambda x, w, b, e: _layer_norm_cf(x, w, b, e, unbiased=True)),
    Mistake("eps outside the square root", "(x - mean) / (std + eps) differs from "
            "(x - mean) / sqrt(var + eps), most when the variance is small. " + _BOOK,
            wrong=lambda x, w, b, e: _layer_norm_cf(x, w, b, e, eps_outside=True)),
]


def check_layer_norm_channels_first(fn) -> CheckResult:
    """Check ``fn(x, weight, bias, eps)`` for x (B, d, T), weight and bias (d,)
    -> (B, d, T): LayerNorm over the d features of each position."""
    return check_function(fn, exercise="layer_norm_channels_first", reference=_layer_norm_cf,
                          cases=_LN_CASES, mistakes=_LN_MISTAKES)


# --- 2. a gated feed-forward network (SwiGLU) -----------------------------------------

def _swiglu(x, W, V, W2, *, gate="silu", gated=True, both=False, swap=False):
    """x (B, T, d), W and V (d, d_ff), W2 (d_ff, d) -> (B, T, d)."""
    act = {"silu": F.silu, "relu": F.relu, "sigmoid": torch.sigmoid, "gelu": F.gelu}[gate]
    if swap:
        W, V = V, W
    hidden = act(x @ W)  # (B, T, d_ff)
    if gated:
        hidden = hidden * (act(x @ V) if both else x @ V)
    return hidden @ W2


def _ffn_case(seed, B, T, d, d_ff, scale=1.0, label=""):
    return Case((_randn(B, T, d, seed=seed, scale=scale), _randn(d, d_ff, seed=seed + 1),
                 _randn(d, d_ff, seed=seed + 2), _randn(d_ff, d, seed=seed + 3)),
                label=label or f"B={B}, T={T}, d={d}, d_ff={d_ff}")


_FFN_CASES = [_ffn_case(0, 2, 3, 4, 6), _ffn_case(1, 1, 5, 3, 8, scale=3.0,
                                                   label="large inputs (std 3)"),
              _ffn_case(2, 3, 1, 5, 2, label="T = 1, d_ff smaller than d")]

_FFN_MISTAKES = [
    Mistake("no gate", "SwiGLU multiplies Swish(x W) element-wise by a second, linear "
            "projection x V before W_2.", wrong=lambda *a: _swiglu(*a, gated=False)),
    Mistake("Swish on both branches", "only the first branch goes through Swish; the "
            "gate x V stays linear.", wrong=lambda *a: _swiglu(*a, both=True)),
    Mistake("ReLU instead of Swish (that is ReGLU)", "Swish(z) = z * sigmoid(z), "
            "F.silu in PyTorch.", wrong=lambda *a: _swiglu(*a, gate="relu")),
    Mistake("sigmoid instead of Swish (that is the original GLU)", "Swish(z) = z * "
            "sigmoid(z), F.silu in PyTorch.", wrong=lambda *a: _swiglu(*a, gate="sigmoid")),
    Mistake("GELU instead of Swish (that is GEGLU)", "Swish(z) = z * sigmoid(z), F.silu "
            "in PyTorch.", wrong=lambda *a: _swiglu(*a, gate="gelu")),
    Mistake("Swish on the wrong branch", "Swish goes on x W; the gate x V stays linear: "
            "F.silu(x @ W) * (x @ V).", wrong=lambda *a: _swiglu(*a, swap=True)),
]


def check_swiglu_ffn(fn) -> CheckResult:
    """Check ``fn(x, W, V, W2)`` -> (Swish(x W) * (x V)) W2 for x (B, T, d)."""
    return check_function(fn, exercise="swiglu_ffn", reference=_swiglu, cases=_FFN_CASES,
                          mistakes=_FFN_MISTAKES)


# --- 3. one decoder-layer step with cross-attention -----------------------------------

def _decoder_step(layer, prefix, memory, src_len, *, mask_source=True, swap_norm=False,
                  residual=True, past=True, norm_first=None, invert_source=False):
    """The layer's output at the last position of ``prefix`` (B, t, d) -> (B, d), computing
    one query only: the newest position attends to the whole prefix and to the source."""
    keep = padding_mask(src_len, memory.shape[1])[:, None, None] if mask_source else None
    keep = ~keep if invert_source and keep is not None else keep
    x, context = prefix[:, -1:], (prefix if past else prefix[:, -1:])
    pre = (layer.norm_first if norm_first is None else norm_first) != swap_norm

    def block(y, sub, norm, kv=None, norm_kv=False, **kw):
        z = norm(y) if pre else y
        if kv is None:
            out = sub(z)
        else:
            kv = norm(kv) if pre and norm_kv else kv  # pre-LN normalises the whole prefix
            out, _ = sub(z, kv, kv, **kw)
        y = y + out if residual else out
        return y if pre else norm(y)

    x = block(x, layer.self_attn, layer.norm1, context, norm_kv=True)
    x = block(x, layer.cross_attn, layer.norm2, memory, norm_kv=False, mask=keep)
    x = block(x, layer.ff, layer.norm3)
    return x[:, 0]


def _step_case(seed, B, t, S, d, h, src_len, norm_first):
    torch.manual_seed(seed)
    layer = DecoderLayer(d, h, 2 * d, norm_first=norm_first).eval()
    with torch.no_grad():  # LayerNorm weights away from 1 and 0 so misplaced norms show
        for norm in (layer.norm1, layer.norm2, layer.norm3):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0, 0.3)
    return Case((layer, _randn(B, t, d, seed=seed), _randn(B, S, d, seed=seed + 1),
                 torch.tensor(src_len)),
                label=f"{'pre' if norm_first else 'post'}-LN layer, B={B}, t={t}, S={S}, "
                      f"d={d}, h={h}, src_len={src_len}")


_STEP_CASES = [
    _step_case(0, 2, 4, 5, 8, 2, [5, 3], norm_first=False),
    _step_case(1, 3, 3, 6, 12, 3, [2, 6, 4], norm_first=True),
    _step_case(2, 2, 1, 4, 8, 4, [4, 1], norm_first=False),
]

_STEP_MISTAKES = [
    Mistake("source padding received attention", "cross-attention must not look at <pad>: "
            "pass mask=padding_mask(src_len, S)[:, None, None] (True = may attend).",
            wrong=lambda *a: _decoder_step(*a, mask_source=False)),
    Mistake("source mask read the wrong way round", "padding_mask is True at the real "
            "words (True = may attend); with the mask inverted the new position attends only "
            "to <pad>.", wrong=lambda *a: _decoder_step(*a, invert_source=True)),
    Mistake("LayerNorm in the wrong place", "read layer.norm_first: False (post-LN) is "
            "x = norm(x + sublayer(x)); True (pre-LN) is x = x + sublayer(norm(x)).",
            wrong=lambda *a: _decoder_step(*a, swap_norm=True)),
    Mistake("always post-LN (layer.norm_first ignored)", "this layer is pre-LN "
            "(norm_first=True): x = x + sublayer(norm(x)), the prefix normalised too. Read "
            "layer.norm_first and follow it; the book's decoder can be either.",
            wrong=lambda *a: _decoder_step(*a, norm_first=False)),
    Mistake("always pre-LN (layer.norm_first ignored)", "this layer is post-LN "
            "(norm_first=False): x = norm(x + sublayer(x)). Read layer.norm_first and "
            "follow it; the book's decoder can be either.",
            wrong=lambda *a: _decoder_step(*a, norm_first=True)),
    Mistake("forgot the residual connection", "each sublayer's output is *added* to its "
            "input, x + sublayer(...), before (post-LN) or without (pre-LN) the norm.",
            wrong=lambda *a: _decoder_step(*a, residual=False)),
    Mistake("the new position attended only to itself", "its keys and values in "
            "self-attention are the whole prefix (every position up to and including the "
            "new one), not just the newest position.",
            wrong=lambda *a: _decoder_step(*a, past=False)),
]


def _full_layer(layer, prefix, memory, src_len):
    keep = padding_mask(src_len, memory.shape[1])[:, None, None]
    with torch.no_grad():
        out, _, _ = layer(prefix, memory, causal_mask(prefix.shape[1]), keep)
    return out[:, -1]


def check_decoder_step(fn) -> CheckResult:
    """Check ``fn(layer, prefix, memory, src_len)`` -> (B, d): a ``DecoderLayer``'s output at
    the last position of ``prefix`` (B, t, d), given the encoder output ``memory`` (B, S, d)
    and the source lengths (B,)."""
    with torch.no_grad():
        return check_function(fn, exercise="decoder_step", reference=_full_layer,
                              cases=_STEP_CASES, mistakes=_STEP_MISTAKES)


# --- 4. one beam-search step with GNMT's length penalty -------------------------------

def _gnmt_penalty(length, alpha, *, plain=False):
    length = length.to(torch.float64)
    return length**alpha if plain else ((5 + length) / 6) ** alpha


def _beam_step(scores, lengths, finished, log_probs, eos, alpha, *, normalise=True,
               plain=False, extend_finished=False, count_finished=False, old_length=False,
               return_ranked=False):
    """One sentence, k beams: scores (k,), lengths (k,), finished (k,), log_probs (k, V)
    -> (scores, lengths, finished, parent, word), each (k,), best first."""
    k, V = log_probs.shape
    if not extend_finished:
        carry = torch.full((V,), -math.inf, dtype=log_probs.dtype)
        carry[eos] = 0.0
        log_probs = torch.where(finished[:, None], carry, log_probs)
    total = scores[:, None] + log_probs  # (k, V)
    grows = torch.ones_like(finished) if count_finished or extend_finished else ~finished
    new_len = lengths + grows.long()  # (k,)
    penalty = _gnmt_penalty(lengths if old_length else new_len, alpha, plain=plain)
    ranked = total / penalty[:, None] if normalise else total
    best = ranked.reshape(-1).topk(k).indices
    parent, word = best // V, best % V
    kept = (ranked if return_ranked else total).reshape(-1)[best]
    return (kept, new_len[parent], finished[parent] | (word == eos), parent, word)


def _beam_case(seed, k, V, eos, alpha, finished, lengths, label):
    g = torch.Generator().manual_seed(seed)
    scores = -torch.rand(k, generator=g, dtype=torch.float64) * 6
    log_probs = torch.log_softmax(2 * torch.randn(k, V, generator=g, dtype=torch.float64), -1)
    return Case((scores, torch.tensor(lengths), torch.tensor(finished), log_probs, eos, alpha),
                label=label)


_BEAM_CASES = [
    _beam_case(0, 3, 6, 1, 0.6, [False, False, False], [4, 4, 4], "k=3, no beam finished"),
    _beam_case(9, 3, 5, 2, 1.0, [True, False, False], [1, 7, 7],
               "k=3, a short finished beam (alpha = 1)"),
    _beam_case(1, 4, 7, 1, 0.8, [True, True, False, False], [5, 3, 6, 6],
               "k=4, two finished beams of different lengths"),
    _beam_case(3, 2, 4, 0, 0.0, [False, True], [2, 2], "alpha = 0: plain log-probability"),
    _beam_case(4, 1, 5, 1, 0.7, [False], [0], "k = 1 (greedy), first step"),
]

_BEAM_MISTAKES = [
    Mistake("ranked by the raw log-probability", "rank candidates by score / lp(length) "
            "with lp(n) = ((5 + n) / 6) ** alpha; return the raw scores.",
            wrong=lambda *a: _beam_step(*a, normalise=False)),
    Mistake("length penalty n ** alpha instead of GNMT's", "GNMT's penalty is "
            "((5 + n) / 6) ** alpha, with n the length *after* this step.",
            wrong=lambda *a: _beam_step(*a, plain=True)),
    Mistake("extended a finished beam", "a beam that has produced <eos> is carried over "
            "as it is (its only continuation is <eos> with log-prob 0, its length unchanged): "
            "it must not grow new words.", wrong=lambda *a: _beam_step(*a, extend_finished=True)),
    Mistake("returned the normalised scores", "rank by score / lp(length), but carry the "
            "raw sum of log-probabilities forward: the penalty is applied afresh at every "
            "step, to the length at that step.",
            wrong=lambda *a: _beam_step(*a, return_ranked=True)),
    Mistake("penalty of the length before this step", "lp(n) uses the length *after* "
            "adding this step's word: lengths + 1 for an unfinished beam.",
            wrong=lambda *a: _beam_step(*a, old_length=True)),
    Mistake("a finished beam's length grew", "only unfinished beams get one token longer; "
            "a finished beam keeps its length (and so its normalised score).",
            wrong=lambda *a: _beam_step(*a, count_finished=True)),
]


def check_beam_step(fn) -> CheckResult:
    """Check ``fn(scores, lengths, finished, log_probs, eos, alpha)`` for one sentence with
    k beams -> ``(scores, lengths, finished, parent, word)``, each (k,), best first."""
    return check_function(fn, exercise="beam_step", reference=_beam_step, cases=_BEAM_CASES,
                          mistakes=_BEAM_MISTAKES)


# --- 5. the warm-up schedule, by its peak ---------------------------------------------

def _warmup(step, peak, warmup, *, decay_power=0.5, use_max=False, from_zero=False,
            unscaled_decay=False):
    s = step - 1 if from_zero else step
    rise, fall = s / warmup, (warmup / step) ** decay_power
    if unscaled_decay:
        fall = step ** -decay_power
    return peak * (max(rise, fall) if use_max else min(rise, fall))


_WARM_CASES = [Case((s, p, w), label=f"step={s}, peak={p}, warmup={w}")
               for s, p, w in [(1, 1e-3, 100), (50, 1e-3, 100), (100, 1e-3, 100),
                               (400, 1e-3, 100), (10_000, 5e-4, 4000), (3, 0.01, 1),
                               (4000, 5e-4, 4000)]]

_WARM_MISTAKES = [
    Mistake("decays like 1/step, not 1/sqrt(step)", "after the peak the rate falls like "
            "step ** -0.5: four times the steps, half the rate.",
            wrong=lambda s, p, w: _warmup(s, p, w, decay_power=1.0)),
    Mistake("max instead of min", "the rate is the *smaller* of the rising line and the "
            "falling curve; they meet at step = warmup, where the rate is the peak.",
            wrong=lambda s, p, w: _warmup(s, p, w, use_max=True)),
    Mistake("decay not scaled by warmup", "after the peak the rate is "
            "peak * (warmup / step) ** 0.5, equal to the peak at step = warmup; "
            "step ** -0.5 alone falls from the wrong height.",
            wrong=lambda s, p, w: _warmup(s, p, w, unscaled_decay=True)),
    Mistake("counted steps from 0", "steps count from 1 (the first update already gets "
            "peak / warmup); with 0 the first update is wasted at rate 0.",
            wrong=lambda s, p, w: _warmup(s, p, w, from_zero=True)),
]


def check_warmup_by_peak(fn) -> CheckResult:
    """Check ``fn(step, peak, warmup)`` -> the learning rate at ``step`` (from 1) of the
    paper's schedule, written with its peak rate instead of d_model."""
    # learning rates are small numbers: compare them relatively, not to an absolute 1e-5
    return check_function(fn, exercise="warmup_by_peak", reference=_warmup, cases=_WARM_CASES,
                          mistakes=_WARM_MISTAKES, compare=make_compare(atol=1e-12, rtol=1e-6))
