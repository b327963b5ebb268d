"""Chapter 9's checkers pass the reference answers and name the classic mistakes."""

import math

import pytest
import torch
import torch.nn.functional as F

from attnbook.exercises import ExerciseError
from attnbook.exercises.ch09 import (
    check_beam_step,
    check_decoder_step,
    check_layer_norm_channels_first,
    check_swiglu_ffn,
    check_warmup_by_peak,
)


def _ln(x, weight, bias, eps, *, dim=1, correction=0, eps_outside=False):
    mean = x.mean(dim, keepdim=True)
    var = ((x - mean) ** 2).sum(dim, keepdim=True) / (x.shape[dim] - correction)
    denom = var.sqrt() + eps if eps_outside else torch.sqrt(var + eps)
    return (x - mean) / denom * weight.view(1, -1, 1) + bias.view(1, -1, 1)


def test_layer_norm_channels_first():
    assert check_layer_norm_channels_first(_ln)
    # the same thing through nn.functional.layer_norm on a transposed view
    assert check_layer_norm_channels_first(
        lambda x, w, b, eps: F.layer_norm(x.transpose(1, 2), (x.shape[1],), w, b,
                                          eps).transpose(1, 2))
    wrong = {
        "over the batch axis": lambda *a: _ln(*a, dim=0),
        "over the positions": lambda *a: _ln(*a, dim=2),
        "unbiased variance": lambda *a: _ln(*a, correction=1),
        "eps outside the square root": lambda *a: _ln(*a, eps_outside=True),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_layer_norm_channels_first(fn)


def _swiglu(x, W, V, W2, *, act=F.silu, gate=True, both=False):
    a = act(torch.einsum("btd,df->btf", x, W))
    if gate:
        lin = torch.einsum("btd,df->btf", x, V)
        a = a * (act(lin) if both else lin)
    return torch.einsum("btf,fd->btd", a, W2)


def test_swiglu_ffn():
    assert check_swiglu_ffn(_swiglu)
    wrong = {
        "no gate": lambda *a: _swiglu(*a, gate=False),
        "Swish on both branches": lambda *a: _swiglu(*a, both=True),
        "ReLU instead of Swish": lambda *a: _swiglu(*a, act=F.relu),
        "sigmoid instead of Swish": lambda *a: _swiglu(*a, act=torch.sigmoid),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_swiglu_ffn(fn)


def _step(layer, prefix, memory, src_len, *, mask=True, pre=None, residual=True,
          past=True):
    S = memory.shape[1]
    keep = (torch.arange(S)[None] < src_len[:, None])[:, None, None] if mask else None
    pre = layer.norm_first if pre is None else pre
    x = prefix[:, -1:]
    kv = prefix if past else x
    sub = [
        lambda z, kv_: layer.self_attn(z, kv_, kv_)[0],
        lambda z, _: layer.cross_attn(z, memory, memory, mask=keep)[0],
        lambda z, _: layer.ff(z),
    ]
    norms = [layer.norm1, layer.norm2, layer.norm3]
    for i, (f, norm) in enumerate(zip(sub, norms, strict=True)):
        if pre:
            out = f(norm(x), norm(kv) if i == 0 else None)
            x = x + out if residual else out
        else:
            out = f(x, kv)
            x = norm(x + out if residual else out)
    return x[:, 0]


def test_decoder_step():
    assert check_decoder_step(_step)
    wrong = {
        "source padding received attention": lambda *a: _step(*a, mask=False),
        "LayerNorm in the wrong place": lambda *a: _step(*a, pre=not a[0].norm_first),
        "forgot the residual": lambda *a: _step(*a, residual=False),
        "attended only to itself": lambda *a: _step(*a, past=False),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_decoder_step(fn)


def _beam(scores, lengths, finished, log_probs, eos, alpha, *, penalty="gnmt",
          extend=False, grow_all=False):
    k, V = log_probs.shape
    cand_scores, cand_len, cand_parent, cand_word = [], [], [], []
    for b in range(k):
        for w in range(V):
            if finished[b] and not extend:
                if w != eos:
                    continue
                lp, n = 0.0, lengths[b] + (1 if grow_all else 0)
            else:
                lp, n = log_probs[b, w], lengths[b] + 1
            cand_scores.append(scores[b] + lp)
            cand_len.append(n)
            cand_parent.append(b)
            cand_word.append(w)

    def rank(i):
        n = float(cand_len[i])
        lp = {"gnmt": ((5 + n) / 6) ** alpha, "plain": n**alpha, "none": 1.0}[penalty]
        return float(cand_scores[i]) / lp

    order = sorted(range(len(cand_scores)), key=rank, reverse=True)[:k]
    words = torch.tensor([cand_word[i] for i in order])
    return (torch.stack([torch.as_tensor(cand_scores[i]) for i in order]),
            torch.tensor([int(cand_len[i]) for i in order]),
            torch.stack([finished[cand_parent[i]] for i in order]) | (words == eos),
            torch.tensor([cand_parent[i] for i in order]), words)


def test_beam_step():
    assert check_beam_step(_beam)
    wrong = {
        "raw log-probability": lambda *a: _beam(*a, penalty="none"),
        "n \\*\\* alpha instead of GNMT": lambda *a: _beam(*a, penalty="plain"),
        "extended a finished beam": lambda *a: _beam(*a, extend=True),
        "length grew": lambda *a: _beam(*a, grow_all=True),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_beam_step(fn)


def _warm(step, peak, warmup, *, power=0.5, take=min, offset=0):
    return peak * take((step - offset) / warmup, (warmup / step) ** power)


def test_warmup_by_peak():
    assert check_warmup_by_peak(_warm)
    # the paper's formula with d_model chosen to give the same peak
    assert check_warmup_by_peak(
        lambda s, p, w: p * math.sqrt(w) * min(s**-0.5, s * w**-1.5))
    wrong = {
        "1/step, not 1/sqrt": lambda *a: _warm(*a, power=1.0),
        "max instead of min": lambda *a: _warm(*a, take=max),
        "counted steps from 0": lambda *a: _warm(*a, offset=1),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_warmup_by_peak(fn)
