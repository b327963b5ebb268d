"""Learners' wrong answers for the checkers of chapters 7-12 (imported by
``test_exercises_wrong_answers.py``, which runs and measures the whole catalogue).

Each answer is written here as a learner would write it, not taken from the checkers' own
``Mistake`` implementations: loops, ``view``/``reshape``, ``einsum``, ``F.layer_norm``,
``nn.Linear`` habits. Each comes with what the refusal must say: the planted mistake's
name (``NAMED + ...``) or the structural fault.
"""

import copy
import math

import torch
import torch.nn.functional as F

from attnbook.attention import padding_mask
from attnbook.exercises import ch07, ch08, ch09, ch10, ch11, ch12

NAMED = r"This looks like: [^\n]*?"


# ---------------------------------------------------------------- chapter 7


def _pe(positions, d, base, *, order="sincos", exponent="2i", cat=False, mult=False,
        whole=False, flat=True):
    pos = positions.long().float() if whole else positions.float()
    i = torch.arange(d // 2).float()
    power = (2 * i / d) if exponent == "2i" else (i / d)
    freq = base ** power if mult else 1.0 / base ** power
    angle = pos[:, None] * freq  # (T, d/2)
    a, b = (angle.sin(), angle.cos()) if order == "sincos" else (angle.cos(), angle.sin())
    if cat:
        return torch.cat([a, b], dim=1)
    pe = torch.stack([a, b], dim=2)  # (T, d/2, 2)
    return pe.reshape(len(positions), d) if flat else pe


def _pe_loop(positions, d, base):
    pe = torch.zeros(len(positions), d)
    for t, p in enumerate(positions.tolist()):
        for j in range(d):  # one frequency per feature j
            w = 1 / base ** (j / d)
            pe[t, j] = math.sin(p * w) if j % 2 == 0 else math.cos(p * w)
    return pe


def _rotate(x, positions, *, sign=1.0, halves=False):
    d = x.shape[-1]
    theta = 10000.0 ** (-torch.arange(0, d, 2).float() / d)
    ang = sign * positions.float()[:, None] * theta  # (T, d/2)
    cos, sin = ang.cos(), ang.sin()
    if halves:
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out


def _rope(q, k, qp, kp, *, scale=True, sign=1.0, halves=False, kpos=None, qpos=None,
          rotate_keys=True, divide=None):
    qr = _rotate(q, qp if qpos is None else qpos, sign=sign, halves=halves)
    kr = _rotate(k, kp if kpos is None else kpos, sign=sign, halves=halves) if rotate_keys \
        else k
    s = torch.einsum("btd,bsd->bts", qr, kr)
    if divide is not None:
        return s / divide
    return s / math.sqrt(q.shape[-1]) if scale else s


def _band(T, S, w, *, lo=None, hi=0, offset=True):
    i = torch.arange(T).unsqueeze(1) + (S - T if offset else 0)
    j = torch.arange(S).unsqueeze(0)
    lo = w - 1 if lo is None else lo
    return (j - i <= hi) & (i - j <= lo)


def _sa(x, Wq, Wk, Wv, mask, *, scale="dk", dim=-1, fill=-1e9, after=False, use_mask=True,
        values="Wv", zero=True):
    q, k, v = x @ Wq, x @ Wk, (x @ Wv if values == "Wv" else x)
    div = {"dk": math.sqrt(Wq.shape[1]), "d": math.sqrt(x.shape[-1]), "none": 1.0}[scale]
    s = torch.bmm(q, k.transpose(1, 2)) / div
    if mask is not None and use_mask and not after:
        s = s.masked_fill(mask == 0, fill)
    w = F.softmax(s, dim=dim)
    if mask is not None and use_mask and (after or zero):
        w = w * mask
    return torch.bmm(w, v), w


CATALOGUE = [
    (ch07.check_sinusoidal_at, "cos at the even features", lambda p, d, b: _pe(p, d, b,
                                                                               order="cossin"),
     NAMED + "sin and cos swapped"),
    (ch07.check_sinusoidal_at, "torch.cat of sines and cosines",
     lambda p, d, b: _pe(p, d, b, cat=True), NAMED + "not interleaved"),
    (ch07.check_sinusoidal_at, "exponent i/d", lambda p, d, b: _pe(p, d, b, exponent="i"),
     NAMED + "exponent i/d"),
    (ch07.check_sinusoidal_at, "a loop with one frequency per feature", _pe_loop,
     NAMED + "one frequency per feature"),
    (ch07.check_sinusoidal_at, "range(T) as positions",
     lambda p, d, b: _pe(torch.arange(len(p)), d, b), NAMED + "positions were ignored"),
    (ch07.check_sinusoidal_at, "positions as integers",
     lambda p, d, b: _pe(p, d, b, whole=True), NAMED + "rounded to whole numbers"),
    (ch07.check_sinusoidal_at, "10000 written in", lambda p, d, b: _pe(p, d, 10000.0),
     NAMED + "base fixed at 10000"),
    (ch07.check_sinusoidal_at, "multiplied by base ** (2i/d)",
     lambda p, d, b: _pe(p, d, b, mult=True), NAMED + r"base\*\*\(2i/d\) instead"),
    (ch07.check_sinusoidal_at, "(T, d/2, 2), not flattened",
     lambda p, d, b: _pe(p, d, b, flat=False), r"shape"),
    (ch07.check_sinusoidal_at, "(d, T)", lambda p, d, b: _pe(p, d, b).T, r"transposed"),
    # RoPE scores against a cache
    (ch07.check_rope_scores, "rotated halves (LLaMA layout)",
     lambda q, k, qp, kp: _rope(q, k, qp, kp, halves=True), NAMED + "rotated the halves"),
    (ch07.check_rope_scores, "nothing rotated",
     lambda q, k, qp, kp: torch.einsum("btd,bsd->bts", q, k) / math.sqrt(q.shape[-1]),
     NAMED + r"keys rotated by the query's position \(or nothing rotated"),
    (ch07.check_rope_scores, "queries from position 0",
     lambda q, k, qp, kp: _rope(q, k, qp, kp, qpos=torch.arange(q.shape[1])),
     NAMED + "queries rotated as if they started at position 0"),
    (ch07.check_rope_scores, "sin with the wrong sign",
     lambda q, k, qp, kp: _rope(q, k, qp, kp, sign=-1.0), NAMED + "wrong direction"),
    (ch07.check_rope_scores, "no 1/sqrt(d)", lambda q, k, qp, kp: _rope(q, k, qp, kp,
                                                                        scale=False),
     NAMED + "scale went missing"),
    (ch07.check_rope_scores, "keys at arange(S)",
     lambda q, k, qp, kp: _rope(q, k, qp, kp, kpos=torch.arange(k.shape[1])),
     NAMED + "keys placed at 0, 1"),
    (ch07.check_rope_scores, "only the queries turned",
     lambda q, k, qp, kp: _rope(q, k, qp, kp, rotate_keys=False), NAMED + "only the queries"),
    (ch07.check_rope_scores, "keys by queries",
     lambda q, k, qp, kp: _rope(q, k, qp, kp).transpose(1, 2), r"transposed"),
    (ch07.check_rope_scores, "divided by d", lambda q, k, qp, kp: _rope(q, k, qp, kp,
                                                                        divide=q.shape[-1]),
     r"times [\d.]+ everywhere"),
    # a sliding-window causal mask
    (ch07.check_window_mask, "j >= p - window", lambda T, S, w: _band(T, S, w, lo=w),
     NAMED + r"window \+ 1 keys"),
    (ch07.check_window_mask, "window - 1 keys", lambda T, S, w: _band(T, S, w, lo=w - 2),
     NAMED + r"window - 1 keys"),
    (ch07.check_window_mask, "queries at 0..T-1", lambda T, S, w: _band(T, S, w, offset=False),
     NAMED + "aligned with the first keys"),
    (ch07.check_window_mask, "strictly before the query",
     lambda T, S, w: _band(T, S, w, lo=w - 1, hi=-1), NAMED + "diagonal is masked"),
    (ch07.check_window_mask, "True = blocked", lambda T, S, w: ~_band(T, S, w),
     NAMED + "True marks the forbidden"),
    (ch07.check_window_mask, "the window looks ahead",
     lambda T, S, w: _band(T, S, w, lo=0, hi=w - 1), NAMED + "looks ahead"),
    (ch07.check_window_mask, "only causal, no window",
     lambda T, S, w: torch.ones(T, S, dtype=torch.bool).tril(S - T),
     NAMED + "plain causal mask"),
    (ch07.check_window_mask, "a 0/1 mask", lambda T, S, w: _band(T, S, w).long(),
     r"boolean"),
    (ch07.check_window_mask, "an additive -inf mask",
     lambda T, S, w: torch.zeros(T, S).masked_fill(~_band(T, S, w), -math.inf), r"boolean"),
    (ch07.check_window_mask, "(S, T)", lambda T, S, w: _band(T, S, w).T,
     r"transposed|shape"),
    # self-attention with plain matrices
    (ch07.check_self_attention, "no scale", lambda *a: _sa(*a, scale="none"),
     NAMED + "no 1/sqrt"),
    (ch07.check_self_attention, "sqrt(d)", lambda *a: _sa(*a, scale="d"),
     NAMED + r"sqrt\(d\) instead"),
    (ch07.check_self_attention, "softmax over dim 1", lambda *a: _sa(*a, dim=1),
     NAMED + "softmax over the queries axis"),
    (ch07.check_self_attention, "values = x", lambda *a: _sa(*a, values="x"),
     NAMED + "values are x itself"),
    (ch07.check_self_attention, "mask after the softmax", lambda *a: _sa(*a, after=True),
     NAMED + "mask applied after"),
    (ch07.check_self_attention, "-inf fill", lambda *a: _sa(*a, fill=-math.inf, zero=False),
     NAMED + "-inf fill"),
    (ch07.check_self_attention, "fill 0", lambda *a: _sa(*a, fill=0.0, zero=False),
     NAMED + "masked scores set to 0"),
    (ch07.check_self_attention, "mask ignored", lambda *a: _sa(*a, use_mask=False),
     NAMED + "mask ignored"),
    (ch07.check_self_attention, "output only", lambda *a: _sa(*a)[0],
     r"return values|you returned"),
    (ch07.check_self_attention, "(weights, output)", lambda *a: _sa(*a)[::-1],
     r"another order|shape"),
]


# ---------------------------------------------------------------- chapter 8


def _split(x, h, *, how="ok"):
    T, B, d = x.shape
    if how == "view":
        return x.view(B, h, T, d // h)
    if how == "t01":
        return x.transpose(0, 1).reshape(B, h, T, d // h)
    if how == "strided":
        return x.view(T, B, d // h, h).permute(1, 3, 0, 2)
    if how == "batch_first":
        return x.view(T, B, h, d // h).permute(0, 2, 1, 3)
    if how == "no_move":
        return x.view(T, B, h, d // h).permute(1, 0, 2, 3)  # (B, T, h, d_h)
    if how == "heads_first":
        return x.view(T, B, h, d // h).permute(2, 1, 0, 3)  # (h, B, T, d_h)
    return x.view(T, B, h, d // h).permute(1, 2, 0, 3)


def _merge(x, *, how="ok"):
    B, h, T, d_h = x.shape
    if how == "view":
        return x.reshape(T, B, h * d_h)
    if how == "interleave":
        return x.permute(2, 0, 3, 1).reshape(T, B, h * d_h)
    if how == "batch_first":
        return x.transpose(1, 2).reshape(B, T, h * d_h)
    if how == "no_flat":
        return x.permute(2, 0, 1, 3)
    if how == "view_noncontig":
        return x.permute(2, 0, 1, 3).view(T, B, h * d_h)
    if how == "mean":
        return x.mean(1).transpose(0, 1)
    return x.permute(2, 0, 1, 3).reshape(T, B, h * d_h)


def _mha(x, Wq, Wk, Wv, Wo, h, mask, *, scale="dh", split="ok", merge="ok", out=True,
         invert=False, fill=-1e9, linear=False, dim=-1):
    B, T, d = x.shape
    dh = d // h
    lin = (lambda y, W: y @ W.T) if linear else (lambda y, W: y @ W)

    def heads(y):
        return y.reshape(B, h, T, dh) if split == "view" else y.reshape(B, T, h, dh
                                                                         ).transpose(1, 2)

    q, k, v = heads(lin(x, Wq)), heads(lin(x, Wk)), heads(lin(x, Wv))
    s = q @ k.transpose(-1, -2) / {"dh": math.sqrt(dh), "d": math.sqrt(d), "none": 1.0}[scale]
    if mask is not None:
        keep = ~mask if invert else mask
        s = s.masked_fill(~keep, fill)
    w = torch.softmax(s, dim=dim)
    if mask is not None and fill != -math.inf:
        w = w * (~mask if invert else mask)
    c = w @ v
    c = c.reshape(B, T, d) if merge == "view" else c.transpose(1, 2).reshape(B, T, d)
    return lin(c, Wo) if out else c


def _gqa(k, g, h, *, how="ok"):
    B, S, dkv = k.shape
    dh = dkv // g
    if how == "tile":
        return k.view(B, S, g, dh).transpose(1, 2).repeat(1, h // g, 1, 1)
    if how == "view":
        return k.view(B, g, S, dh).repeat_interleave(h // g, 1)
    if how == "h_heads":
        return k.view(B, S, h, dkv // h).transpose(1, 2)
    if how == "positions":
        return k.view(B, S, g, dh).transpose(1, 2).repeat_interleave(h // g, 2)
    if how == "no_expand":
        return k.view(B, S, g, dh).transpose(1, 2)
    return k.view(B, S, g, dh).transpose(1, 2)[:, :, None].expand(B, g, h // g, S, dh
                                                                    ).reshape(B, h, S, dh)


def _ablate(mha, x, head, *, what="Wo_cols", copy_it=True, bias=False, which=None):
    m = copy.deepcopy(mha) if copy_it else mha
    dh = m.d_head
    i = head if which is None else which
    sl = slice(i * dh, (i + 1) * dh)
    with torch.no_grad():
        if what == "Wo_cols":
            m.W_o.weight[:, sl] = 0
        elif what == "Wo_rows":
            m.W_o.weight[sl, :] = 0
        elif what == "Wq":
            m.W_q.weight[sl] = 0
            m.W_q.bias[sl] = 0
        elif what == "Wv":
            m.W_v.weight[sl] = 0
        if bias:
            m.W_o.bias.zero_()
        return m(x, x, x)[0]


def _ablate_out_slice(mha, x, head):
    with torch.no_grad():
        y = mha(x, x, x)[0]
    dh = mha.d_head
    mask = torch.ones(y.shape[-1])
    mask[head * dh:(head + 1) * dh] = 0
    return y * mask


CATALOGUE += [
    (ch08.check_split_heads_seq_first, "view(B, h, T, d_h)", lambda x, h: _split(x, h, how="view"),
     NAMED + "reshape without transpose"),
    (ch08.check_split_heads_seq_first, "transpose(0, 1) then view(B, h, T, d_h)",
     lambda x, h: _split(x, h, how="t01"), NAMED + r"transpose\(0, 1\), then reshape"),
    (ch08.check_split_heads_seq_first, "view(T, B, d_h, h)",
     lambda x, h: _split(x, h, how="strided"), NAMED + "round-robin"),
    (ch08.check_split_heads_seq_first, "permute(0, 2, 1, 3)",
     lambda x, h: _split(x, h, how="batch_first"), NAMED + "batch-first"),
    (ch08.check_split_heads_seq_first, "heads not moved: (B, T, h, d_h)",
     lambda x, h: _split(x, h, how="no_move"), r"shape"),
    (ch08.check_split_heads_seq_first, "heads first: (h, B, T, d_h)",
     lambda x, h: _split(x, h, how="heads_first"), r"axes in another order|shape"),
    (ch08.check_split_heads_seq_first, "torch.chunk into a list",
     lambda x, h: list(_split(x, h).unbind(1)), r"you returned a list"),
    (ch08.check_merge_heads_seq_first, "reshape straight away",
     lambda x: _merge(x, how="view"), NAMED + "reshape without transpose"),
    (ch08.check_merge_heads_seq_first, "(T, B, d_h, h)", lambda x: _merge(x, how="interleave"),
     NAMED + "wrong order"),
    (ch08.check_merge_heads_seq_first, "batch-first result",
     lambda x: _merge(x, how="batch_first"), NAMED + "batch-first"),
    (ch08.check_merge_heads_seq_first, "no final reshape", lambda x: _merge(x, how="no_flat"),
     r"shape"),
    (ch08.check_merge_heads_seq_first, "view after permute",
     lambda x: _merge(x, how="view_noncontig"), r"raised .* — .*reshape"),
    (ch08.check_merge_heads_seq_first, "heads averaged", lambda x: _merge(x, how="mean"),
     r"shape"),
    # multi-head forward
    (ch08.check_multihead_forward, "sqrt(d)", lambda *a: _mha(*a, scale="d"),
     NAMED + r"sqrt\(d\) instead"),
    (ch08.check_multihead_forward, "no scale", lambda *a: _mha(*a, scale="none"),
     NAMED + "no 1/sqrt"),
    (ch08.check_multihead_forward, "heads by a plain reshape", lambda *a: _mha(*a, split="view"),
     NAMED + "reshape without transpose when splitting"),
    (ch08.check_multihead_forward, "mask inverted", lambda *a: _mha(*a, invert=True),
     NAMED + "True = ignore"),
    (ch08.check_multihead_forward, "-inf fill", lambda *a: _mha(*a, fill=-math.inf),
     NAMED + "nan for a query"),
    (ch08.check_multihead_forward, "merged by a plain reshape",
     lambda *a: _mha(*a, merge="view"), NAMED + "merged without the transpose"),
    (ch08.check_multihead_forward, "no W_o", lambda *a: _mha(*a, out=False),
     NAMED + "W_o left out"),
    (ch08.check_multihead_forward, "x @ W.T as in nn.Linear",
     lambda *a: _mha(*a, linear=True), NAMED + r"x @ W\.T"),
    (ch08.check_multihead_forward, "softmax over the queries",
     lambda *a: _mha(*a, dim=-2), NAMED + "softmax over the wrong axis"),
    (ch08.check_multihead_forward, "heads averaged, not concatenated",
     lambda x, Wq, Wk, Wv, Wo, h, m: _mha(x, Wq, Wk, Wv, Wo, h, m, out=False).reshape(
         *x.shape[:2], h, -1).mean(2), r"shape"),
    # grouped keys
    (ch08.check_grouped_keys_to_heads, ".repeat", lambda k, g, h: _gqa(k, g, h, how="tile"),
     NAMED + "repeat instead of repeat_interleave"),
    (ch08.check_grouped_keys_to_heads, "view(B, g, S, d_h)",
     lambda k, g, h: _gqa(k, g, h, how="view"), NAMED + "reshape without transpose"),
    (ch08.check_grouped_keys_to_heads, "cut into h heads",
     lambda k, g, h: _gqa(k, g, h, how="h_heads"), NAMED + "cut into h heads"),
    (ch08.check_grouped_keys_to_heads, "repeated along the positions",
     lambda k, g, h: _gqa(k, g, h, how="positions"), r"shape"),
    (ch08.check_grouped_keys_to_heads, "not expanded",
     lambda k, g, h: _gqa(k, g, h, how="no_expand"), r"shape"),
    # head ablation
    (ch08.check_ablate_head, "rows of W_o", lambda m, x, i: _ablate(m, x, i, what="Wo_rows"),
     NAMED + "zeroed rows"),
    (ch08.check_ablate_head, "queries zeroed", lambda m, x, i: _ablate(m, x, i, what="Wq"),
     NAMED + "zeroed the head's queries"),
    (ch08.check_ablate_head, "bias zeroed too", lambda m, x, i: _ablate(m, x, i, bias=True),
     NAMED + "bias removed too"),
    (ch08.check_ablate_head, "heads counted from 1",
     lambda m, x, i: _ablate(m, x, i, which=(i + 1) % m.num_heads), NAMED + "off by one head"),
    (ch08.check_ablate_head, "value weights zeroed", lambda m, x, i: _ablate(m, x, i, what="Wv"),
     NAMED + "value weights but not their bias"),
    (ch08.check_ablate_head, "the output slice zeroed", _ablate_out_slice,
     NAMED + "slice of the output"),
    (ch08.check_ablate_head, "ablated the caller's model",
     lambda m, x, i: _ablate(m, x, i, copy_it=False), r"in place"),
    (ch08.check_ablate_head, "(output, weights)",
     lambda m, x, i: (_ablate(m, x, i), None), r"you returned a tuple"),
]


# ---------------------------------------------------------------- chapter 9


def _ln(x, w, b, eps, *, dim=1, unbiased=False, outside=False, affine=True):
    mu = x.mean(dim=dim, keepdim=True)
    var = ((x - mu) ** 2).sum(dim, keepdim=True) / (x.shape[dim] - (1 if unbiased else 0))
    y = (x - mu) / (var.sqrt() + eps if outside else torch.sqrt(var + eps))
    return y * w.view(1, -1, 1) + b.view(1, -1, 1) if affine else y


def _ffn(x, W, V, W2, *, act=F.silu, gate=True, both=False, swap=False, add=False):
    a, g = (x @ V, x @ W) if swap else (x @ W, x @ V)
    h = act(a)
    if gate:
        h = h + (act(g) if both else g) if add else h * (act(g) if both else g)
    return h @ W2


def _step(layer, prefix, memory, src_len, *, pre=None, mask=True, invert=False, res=True,
          keys="prefix", where=-1):
    pre = layer.norm_first if pre is None else pre
    keep = padding_mask(src_len, memory.shape[1])[:, None, None]
    keep = ~keep if invert else keep
    x = prefix[:, where:][:, :1] if where == -1 else prefix[:, where:where + 1]
    kv = prefix if keys == "prefix" else x

    def sub(y, f, norm):
        if pre:
            return y + f(norm(y)) if res else f(norm(y))
        return norm(y + f(y)) if res else norm(f(y))

    kv_n = layer.norm1(kv) if pre else kv
    x = sub(x, lambda z: layer.self_attn(z, kv_n, kv_n)[0], layer.norm1)
    x = sub(x, lambda z: layer.cross_attn(z, memory, memory, mask=keep if mask else None)[0],
            layer.norm2)
    x = sub(x, layer.ff, layer.norm3)
    return x[:, 0]


def _beam(scores, lengths, finished, log_probs, eos, alpha, *, norm=True, plain=False,
          extend=False, grow_all=False, old=False, ranked=False, flat=True):
    k, V = log_probs.shape
    lp = log_probs.clone()
    if not extend:
        for b in range(k):
            if finished[b]:
                lp[b] = -math.inf
                lp[b, eos] = 0.0
    total = scores.unsqueeze(1) + lp
    new = lengths + (1 if (grow_all or extend) else (~finished).long())
    n = (lengths if old else new).double()
    pen = n ** alpha if plain else ((5 + n) / 6) ** alpha
    r = total / pen.unsqueeze(1) if norm else total
    top = torch.topk(r.view(-1), k).indices
    parent, word = torch.div(top, V, rounding_mode="floor"), top % V
    s = (r if ranked else total).view(-1)[top]
    out = (s, new[parent], finished[parent] | (word == eos), parent, word)
    return out if flat else tuple(o.tolist() for o in out)


def _lr(step, peak, warmup, *, power=0.5, use_max=False, zero=False, scaled=True):
    s = step - 1 if zero else step
    up = s / warmup
    down = (warmup / step) ** power if scaled else step ** -power
    return peak * (max(up, down) if use_max else min(up, down))


CATALOGUE += [
    (ch09.check_layer_norm_channels_first, "over the batch", lambda x, w, b, e: _ln(x, w, b, e,
                                                                                   dim=0),
     NAMED + "batch axis"),
    (ch09.check_layer_norm_channels_first, "over the last axis",
     lambda x, w, b, e: _ln(x, w, b, e, dim=-1), NAMED + "positions"),
    (ch09.check_layer_norm_channels_first, "divided by d - 1",
     lambda x, w, b, e: _ln(x, w, b, e, unbiased=True), NAMED + "unbiased variance"),
    (ch09.check_layer_norm_channels_first, "std + eps",
     lambda x, w, b, e: _ln(x, w, b, e, outside=True), NAMED + "eps outside"),
    (ch09.check_layer_norm_channels_first, "F.layer_norm on (B, d, T)",
     lambda x, w, b, e: F.layer_norm(x, (x.shape[1],), w, b, e), r"raised .* — .*last"),
    (ch09.check_layer_norm_channels_first, "transposed and not back",
     lambda x, w, b, e: F.layer_norm(x.transpose(1, 2), (x.shape[1],), w, b, e),
     r"transposed|shape"),
    (ch09.check_layer_norm_channels_first, "weight broadcast on the last axis",
     lambda x, w, b, e: _ln(x, w, b, e, affine=False) * w + b, r"raised .* — |shape"),
    # SwiGLU
    (ch09.check_swiglu_ffn, "no gate", lambda *a: _ffn(*a, gate=False), NAMED + "no gate"),
    (ch09.check_swiglu_ffn, "silu on both", lambda *a: _ffn(*a, both=True),
     NAMED + "Swish on both"),
    (ch09.check_swiglu_ffn, "relu", lambda *a: _ffn(*a, act=torch.relu), NAMED + "ReGLU"),
    (ch09.check_swiglu_ffn, "sigmoid", lambda *a: _ffn(*a, act=torch.sigmoid),
     NAMED + "original GLU"),
    (ch09.check_swiglu_ffn, "gelu", lambda *a: _ffn(*a, act=F.gelu), NAMED + "GEGLU"),
    (ch09.check_swiglu_ffn, "silu on x V", lambda *a: _ffn(*a, swap=True),
     NAMED + "wrong branch"),
    (ch09.check_swiglu_ffn, "x W.T", lambda x, W, V, W2: _ffn(x, W.T, V.T, W2.T),
     r"raised .* — "),
    # the decoder step
    (ch09.check_decoder_step, "no source mask", lambda *a: _step(*a, mask=False),
     NAMED + "source padding received attention"),
    (ch09.check_decoder_step, "norms swapped", lambda L, *a: _step(L, *a, pre=not L.norm_first),
     NAMED + "LayerNorm in the wrong place"),
    (ch09.check_decoder_step, "always post-LN", lambda *a: _step(*a, pre=False),
     NAMED + "always post-LN"),
    (ch09.check_decoder_step, "always pre-LN", lambda *a: _step(*a, pre=True),
     NAMED + "always pre-LN"),
    (ch09.check_decoder_step, "no residual", lambda *a: _step(*a, res=False),
     NAMED + "residual"),
    (ch09.check_decoder_step, "attended only to itself", lambda *a: _step(*a, keys="self"),
     NAMED + "only to itself"),
    (ch09.check_decoder_step, "source mask inverted", lambda *a: _step(*a, invert=True),
     NAMED + "wrong way round"),
    (ch09.check_decoder_step, "(B, 1, d)", lambda *a: _step(*a)[:, None], r"extra dimension"),
    # a beam step
    (ch09.check_beam_step, "raw log-probabilities", lambda *a: _beam(*a, norm=False),
     NAMED + "raw log-probability"),
    (ch09.check_beam_step, "n ** alpha", lambda *a: _beam(*a, plain=True),
     NAMED + r"n \*\* alpha"),
    (ch09.check_beam_step, "finished beams extended", lambda *a: _beam(*a, extend=True),
     NAMED + "extended a finished beam"),
    (ch09.check_beam_step, "every length grows", lambda *a: _beam(*a, grow_all=True),
     NAMED + "length grew"),
    (ch09.check_beam_step, "old lengths in the penalty", lambda *a: _beam(*a, old=True),
     NAMED + "length before this step"),
    (ch09.check_beam_step, "normalised scores returned", lambda *a: _beam(*a, ranked=True),
     NAMED + "returned the normalised scores"),
    (ch09.check_beam_step, "lists", lambda *a: _beam(*a, flat=False), r"you returned a list"),
    (ch09.check_beam_step, "lengths as floats",
     lambda *a: (lambda o: (o[0], o[1].float(), *o[2:]))(_beam(*a)), r"whole numbers|dtype"),
    # warm-up
    (ch09.check_warmup_by_peak, "1/step", lambda *a: _lr(*a, power=1.0),
     NAMED + "decays like 1/step"),
    (ch09.check_warmup_by_peak, "max", lambda *a: _lr(*a, use_max=True),
     NAMED + "max instead of min"),
    (ch09.check_warmup_by_peak, "steps from 0", lambda *a: _lr(*a, zero=True),
     NAMED + "counted steps from 0"),
    (ch09.check_warmup_by_peak, "step ** -0.5 alone", lambda *a: _lr(*a, scaled=False),
     NAMED + "decay not scaled by warmup"),
    (ch09.check_warmup_by_peak, "a list of one rate", lambda *a: [_lr(*a)],
     r"you returned a list"),
]


# ---------------------------------------------------------------- chapter 10


def _patches(images, p, *, order="ok"):
    B, C, H, W = images.shape
    x = images.view(B, C, H // p, p, W // p, p)
    perm = {"ok": (0, 2, 4, 1, 3, 5), "last": (0, 2, 4, 3, 5, 1), "cols": (0, 4, 2, 1, 3, 5),
            "pix": (0, 2, 4, 1, 5, 3)}[order]
    return x.permute(*perm).reshape(B, -1, C * p * p)


def _pointer(scores, targets, lengths, *, mask_pos=True, mean="steps", dim=-1, naive=False):
    B, T, n = scores.shape
    losses = []
    for b in range(B):
        L = int(lengths[b])
        s = scores[b, :L, :L] if mask_pos else scores[b, :L]
        if dim == 0:
            s = scores[b, :L, :L].T if mask_pos else scores[b, :, :L].T[:L]
        lp = (s.softmax(-1).log() if naive else torch.log_softmax(s, -1))
        losses.append(-lp[torch.arange(L), targets[b, :L]])
    if mean == "steps":
        return torch.cat(losses).mean()
    if mean == "all":
        return torch.cat(losses).sum() / (B * T)
    if mean == "sum":
        return torch.cat(losses).sum()
    return torch.stack([x.mean() for x in losses]).mean()


def _gat(scores, adj, *, self_loop=True, fill=-1e9, transpose=False, after=False, mask=True,
         dim=-1):
    a = adj.T if transpose else adj
    if self_loop:
        a = a | torch.eye(len(adj), dtype=torch.bool)
    if not mask:
        return torch.softmax(scores, dim)
    if after:
        return torch.softmax(scores, dim) * a
    w = torch.softmax(scores.masked_fill(~a, fill), dim)
    return w * a if fill != -math.inf else w


def _pool(x, seed, valid, *, scale=True, mask=True, naive=False, dim=-1, weights=False):
    s = torch.einsum("bnd,d->bn", x, seed) / (math.sqrt(x.shape[-1]) if scale else 1.0)
    if naive:
        e = s.exp() * valid
        w = e / e.sum(1, keepdim=True)
    else:
        w = torch.softmax(s.masked_fill(~valid, -1e9) if mask else s, dim)
    return w if weights else torch.einsum("bn,bnd->bd", w, x)


CATALOGUE += [
    (ch10.check_patchify_channels, "one reshape",
     lambda im, p: im.reshape(im.shape[0], -1, im.shape[1] * p * p), NAMED + "mixes rows"),
    (ch10.check_patchify_channels, "channels last", lambda im, p: _patches(im, p, order="last"),
     NAMED + "channels last"),
    (ch10.check_patchify_channels, "column order", lambda im, p: _patches(im, p, order="cols"),
     NAMED + "column order"),
    (ch10.check_patchify_channels, "pixels by column", lambda im, p: _patches(im, p,
                                                                              order="pix"),
     NAMED + "read down the columns"),
    (ch10.check_patchify_channels, "unfold without the transpose",
     lambda im, p: F.unfold(im, p, stride=p), r"transposed"),
    (ch10.check_patchify_channels, "the grid kept",
     lambda im, p: _patches(im, p).reshape(im.shape[0], im.shape[2] // p, im.shape[3] // p, -1),
     r"shape"),
    (ch10.check_patchify_channels, "unfold with stride 1",
     lambda im, p: F.unfold(im, p).transpose(1, 2), r"shape"),
    # the pointer loss
    (ch10.check_pointer_loss_padded, "padded steps as zeros", lambda *a: _pointer(*a, mean="all"),
     NAMED + "padded steps counted"),
    (ch10.check_pointer_loss_padded, "padding in the softmax",
     lambda *a: _pointer(*a, mask_pos=False), NAMED + "padding positions left"),
    (ch10.check_pointer_loss_padded, "softmax over the steps", lambda *a: _pointer(*a, dim=0),
     NAMED + "softmax over the output steps"),
    (ch10.check_pointer_loss_padded, "float(loss)", lambda *a: float(_pointer(*a)),
     r"carries a gradient"),
    (ch10.check_pointer_loss_padded, "loss.item() in a tensor",
     lambda *a: torch.tensor(_pointer(*a).item()), r"carries a gradient"),
    (ch10.check_pointer_loss_padded, "summed", lambda *a: _pointer(*a, mean="sum"),
     NAMED + "summed instead of averaged"),
    (ch10.check_pointer_loss_padded, "mean of sequence means",
     lambda *a: _pointer(*a, mean="seq"), NAMED + "averaged per sequence"),
    (ch10.check_pointer_loss_padded, "log(softmax)", lambda *a: _pointer(*a, naive=True),
     r"inf at|nan at"),
    # GAT
    (ch10.check_gat_neighbour_softmax, "no mask", lambda s, a: _gat(s, a, mask=False),
     NAMED + "softmax over all nodes"),
    (ch10.check_gat_neighbour_softmax, "no self-loop", lambda s, a: _gat(s, a, self_loop=False),
     NAMED + "no self-loop"),
    (ch10.check_gat_neighbour_softmax, "no self-loop, -inf fill",
     lambda s, a: _gat(s, a, self_loop=False, fill=-math.inf),
     NAMED + r"no self-loop.*nan where this mistake gives 0"),
    (ch10.check_gat_neighbour_softmax, "adj.T", lambda s, a: _gat(s, a, transpose=True),
     NAMED + "wrong way round"),
    (ch10.check_gat_neighbour_softmax, "zeroed after", lambda s, a: _gat(s, a, after=True),
     NAMED + "zeroed after the softmax"),
    (ch10.check_gat_neighbour_softmax, "softmax over dim 1", lambda s, a: _gat(s, a, dim=1),
     NAMED + "softmax over the wrong axis"),
    (ch10.check_gat_neighbour_softmax, "averaged over the heads",
     lambda s, a: _gat(s, a).mean(0), r"shape"),
    # attention pooling
    (ch10.check_attention_pool, "mean of the valid elements",
     lambda x, s, v: (x * v[..., None]).sum(1) / v.sum(1)[:, None], NAMED + "mean pooling"),
    (ch10.check_attention_pool, "no scale", lambda *a: _pool(*a, scale=False),
     NAMED + "no 1/sqrt"),
    (ch10.check_attention_pool, "padding not masked", lambda *a: _pool(*a, mask=False),
     NAMED + "padding not masked"),
    (ch10.check_attention_pool, "exp without the maximum", lambda *a: _pool(*a, naive=True),
     r"nan at.*\n.*This looks like: exp without subtracting"),
    (ch10.check_attention_pool, "softmax over the batch", lambda *a: _pool(*a, dim=0),
     NAMED + "softmax over the wrong axis"),
    (ch10.check_attention_pool, "softmax of x * seed over the features",
     lambda x, s, v: (torch.softmax(x * s / math.sqrt(x.shape[-1]), -1) * x
                      * v[..., None]).sum(1), NAMED + "softmax over the features"),
    (ch10.check_attention_pool, "returned the weights", lambda *a: _pool(*a, weights=True),
     r"shape"),
]


# ---------------------------------------------------------------- chapter 11


def _online(m, l, scores, *, rescale=True, old_max=False, swap=False):  # noqa: E741
    block_max = scores.max(dim=1).values
    m_new = torch.max(m, block_max)
    shift = m if old_max else m_new
    l_new = (l * torch.exp(m - m_new) if rescale else l) + torch.exp(scores - shift[:, None]
                                                                      ).sum(1)
    return (l_new, m_new) if swap else (m_new, l_new)


def _decay(q, k, v, g, *, phi="elu", causal=True):
    f = {"elu": lambda x: F.elu(x) + 1, "relu": F.relu}[phi]
    fq, fk = f(q), f(k)
    T = q.shape[1]
    t = torch.arange(T)
    w = g ** (t[:, None] - t[None, :]).float()  # (T, T) gamma^(t - s)
    if causal:
        w = w.tril()
    a = torch.einsum("btd,bsd->bts", fq, fk) * w
    return (a @ v) / a.sum(-1, keepdim=True)


def _tile(acc, m, l, q, k, v, qs, ks, w, *, rescale=True, wide=False, scale=True,  # noqa
          normalise=False, order="aml", ahead=False):
    i = torch.arange(q.shape[0])[:, None] + qs
    j = torch.arange(k.shape[0])[None, :] + ks
    seen = ((j - i >= 0) & (j - i < w)) if ahead else (
        (i - j >= 0) & ((i - j <= w) if wide else (i - j < w)))
    s = (q @ k.T) / (math.sqrt(q.shape[1]) if scale else 1.0)
    s = torch.where(seen, s, torch.full_like(s, -math.inf))
    m2 = torch.maximum(m, s.max(1).values)
    m_safe = torch.where(torch.isinf(m2), torch.zeros_like(m2), m2)
    p = torch.exp(s - m_safe[:, None])
    a = torch.exp(m - m_safe)
    acc2 = (a[:, None] * acc if rescale else acc) + p @ v
    l2 = a * l + p.sum(1)
    if normalise:
        acc2 = acc2 / l2.clamp(min=1e-30)[:, None]
    out = {"aml": (acc2, m2, l2), "alm": (acc2, l2, m2)}[order]
    return out


def _decay_matrix(q, k, v, g, *, decay_z=True, decay=True):
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    t = torch.arange(q.shape[1])
    w = ((g if decay else 1.0) ** (t[:, None] - t[None, :]).float()).tril()
    a = torch.einsum("btd,bsd->bts", fq, fk)
    num = (a * w) @ v
    den = (a * (w if decay_z else (w > 0).float())).sum(-1, keepdim=True)
    return num / den


CATALOGUE += [
    (ch11.check_window_tile, "acc not rescaled", lambda *a: _tile(*a, rescale=False),
     NAMED + "accumulator not rescaled"),
    (ch11.check_window_tile, "p - j <= window", lambda *a: _tile(*a, wide=True),
     NAMED + "one key too wide"),
    (ch11.check_window_tile, "no 1/sqrt(d)", lambda *a: _tile(*a, scale=False),
     r"differ|This looks like"),
    (ch11.check_window_tile, "normalised inside the tile", lambda *a: _tile(*a, normalise=True),
     r"differ"),
    (ch11.check_window_tile, "(acc, l, m)", lambda *a: _tile(*a, order="alm"),
     r"another order"),
    (ch11.check_window_tile, "the window looks ahead", lambda *a: _tile(*a, ahead=True),
     r"differ|nan"),
    (ch11.check_decayed_linear_attention, "matrix form, z without the decay",
     lambda q, k, v, g: _decay_matrix(q, k, v, g, decay_z=False), NAMED + "normaliser"),
    (ch11.check_decayed_linear_attention, "matrix form, no decay",
     lambda q, k, v, g: _decay_matrix(q, k, v, g, decay=False), NAMED + "decay ignored"),
    (ch11.check_append_kv, "on the batch axis",
     lambda c, kp, g: torch.cat([c, kp.view(kp.shape[0], kp.shape[1], g, -1).transpose(1, 2)],
                                0), r"shape"),
    (ch11.check_append_kv, "view(B, g, t, d_h)",
     lambda c, kp, g: torch.cat([c, kp.view(kp.shape[0], g, kp.shape[1], -1)], 2),
     NAMED + "without the transpose"),
    (ch11.check_online_update, "running sum not rescaled",
     lambda m, l, s: _online(m, l, s, rescale=False), NAMED + "not rescaled"),  # noqa: E741
    (ch11.check_online_update, "block terms shifted by the old maximum",
     lambda m, l, s: _online(m, l, s, old_max=True), r"inf at|nan at|differ"),  # noqa: E741
    (ch11.check_online_update, "(l, m)", lambda m, l, s: _online(m, l, s, swap=True),  # noqa
     r"return values are the right ones in another order"),
    (ch11.check_online_update, "m only", lambda m, l, s: _online(m, l, s)[0],  # noqa: E741
     r"return values"),
    (ch11.check_append_kv, "cat on the feature axis",
     lambda c, kp, g: torch.cat([c, kp.view(kp.shape[0], kp.shape[1], g, -1).transpose(1, 2)],
                                -1), NAMED + "feature axis"),
    (ch11.check_append_kv, "new keys first",
     lambda c, kp, g: torch.cat([kp.view(kp.shape[0], kp.shape[1], g, -1).transpose(1, 2), c],
                                2), NAMED + "in front"),
    (ch11.check_append_kv, "only the new keys",
     lambda c, kp, g: kp.view(kp.shape[0], kp.shape[1], g, -1).transpose(1, 2), r"shape"),
    (ch11.check_decayed_linear_attention, "a matrix of gamma powers, future included",
     lambda q, k, v, g: _decay(q, k, v, g, causal=False), NAMED + "not causal"),
    (ch11.check_decayed_linear_attention, "relu feature map",
     lambda q, k, v, g: _decay(q, k, v, g, phi="relu"), r"nan at|differ"),
]


# ---------------------------------------------------------------- chapter 12


def _roll(weights, residual, *, add_i=True, renorm=True, left=True, heads="mean", r_one=False):
    L, h, T, _ = weights.shape
    R = torch.eye(T)
    for layer in range(L):
        r = 1.0 if r_one else float(residual[layer])
        A = weights[layer].mean(0) if heads == "mean" else weights[layer].sum(0)
        if add_i:
            A = A + r * torch.eye(T)
            if renorm:
                A = A / (1 + r)
        R = A @ R if left else R @ A
    return R


def _occ(model, tokens, labels, filler, *, how="log", fresh=True, target="label"):
    B, T = tokens.shape
    idx = torch.arange(B)
    with torch.no_grad():
        logits = model(tokens)
        y = logits.argmax(1) if target == "pred" else labels

        def score(out):
            return {"log": out.log_softmax(1), "prob": out.softmax(1), "logit": out,
                    "naive": out.softmax(1).log()}[how][idx, y]

        base = score(logits)
        x = tokens.clone()
        out = torch.zeros(B, T)
        for j in range(T):
            if fresh:
                x = tokens.clone()
            x[:, j] = filler
            out[:, j] = base - score(model(x))
    return out


def _js(p, q, *, log=torch.log2, root=True, half=True):
    m = (p + q) / 2 if half else p + q

    def kl(a, b):
        return torch.where(a > 0, a * log(a / b), torch.zeros_like(a)).sum(-1)

    d = (kl(p, m) + kl(q, m)) / 2
    return d.sqrt() if root else d


CATALOGUE += [
    (ch12.check_rollout_residual, "no residual", lambda w, r: _roll(w, r, add_i=False),
     NAMED + "identity forgotten"),
    (ch12.check_rollout_residual, "A + rI not renormalised",
     lambda w, r: _roll(w, r, renorm=False), NAMED + "not re-normalised"),
    (ch12.check_rollout_residual, "R @ A", lambda w, r: _roll(w, r, left=False),
     NAMED + "wrong order"),
    (ch12.check_rollout_residual, "heads summed", lambda w, r: _roll(w, r, heads="sum"),
     NAMED + "heads summed"),
    (ch12.check_rollout_residual, "(A + I) / 2 always", lambda w, r: _roll(w, r, r_one=True),
     NAMED + "residual weights ignored"),
    (ch12.check_occlusion, "softmax", lambda *a: _occ(*a, how="prob"),
     NAMED + "probabilities instead"),
    (ch12.check_occlusion, "logits", lambda *a: _occ(*a, how="logit"),
     NAMED + "raw logits"),
    (ch12.check_occlusion, "one copy", lambda *a: _occ(*a, fresh=False), NAMED + "not put back"),
    (ch12.check_occlusion, "the prediction", lambda *a: _occ(*a, target="pred"),
     NAMED + "predicted class"),
    (ch12.check_occlusion, "log of the softmax (a confident model)",
     lambda *a: _occ(*a, how="naive"), NAMED + r"log\(softmax\(z\)\) instead"),
    (ch12.check_occlusion, "the rise", lambda *a: -_occ(*a), NAMED + "rise instead"),
    (ch12.check_js_distance, "natural log", lambda p, q: _js(p, q, log=torch.log),
     NAMED + "natural logarithm"),
    (ch12.check_js_distance, "no square root", lambda p, q: _js(p, q, root=False),
     NAMED + "no square root"),
    (ch12.check_js_distance, "symmetrised KL",
     lambda p, q: (torch.where(p > 0, p * torch.log2(p / q), 0).sum(-1)
                   + torch.where(q > 0, q * torch.log2(q / p), 0).sum(-1)) / 2,
     NAMED + "symmetrised KL"),
    (ch12.check_js_distance, "mixture p + q", lambda p, q: _js(p, q, half=False),
     r"differ|nan"),
    (ch12.check_js_distance, "a Python list", lambda p, q: _js(p, q).tolist(),
     r"you returned a list"),
]

CATALOGUE += [
    (ch08.check_grouped_keys_to_heads, "expanded, not flattened",
     lambda k, g, h: k.view(k.shape[0], k.shape[1], g, -1).transpose(1, 2)[:, :, None].expand(
         -1, -1, h // g, -1, -1), r"shape"),
    (ch08.check_grouped_keys_to_heads, "heads tiled with expand on a new front axis",
     lambda k, g, h: k.view(k.shape[0], k.shape[1], g, -1).transpose(1, 2)[:, None].expand(
         -1, h // g, -1, -1, -1).reshape(k.shape[0], h, k.shape[1], -1),
     NAMED + "repeat instead of repeat_interleave"),
    (ch08.check_merge_heads_seq_first, "permute(2, 1, 0, 3)",
     lambda x: x.permute(2, 1, 0, 3).reshape(x.shape[2], x.shape[0], -1),
     r"differ|shape|This looks like"),
    (ch09.check_warmup_by_peak, "no decay after the peak",
     lambda s, p, w: p * min(s, w) / w, r"you have"),
    (ch09.check_warmup_by_peak, "a 1-element tensor", lambda *a: torch.tensor([_lr(*a)]),
     r"extra dimension"),
    (ch09.check_swiglu_ffn, "silu(x W) + x V", lambda *a: _ffn(*a, add=True), r"differ"),
    (ch09.check_layer_norm_channels_first, "no weight and bias",
     lambda x, w, b, e: _ln(x, w, b, e, affine=False), r"differ"),
    (ch10.check_patchify_channels, "unfold twice, channels moved last",
     lambda im, p: im.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 4, 5, 1).reshape(
         im.shape[0], -1, im.shape[1] * p * p), NAMED + "channels last"),
    (ch10.check_gat_neighbour_softmax, "the 0/1 adjacency added to the scores",
     lambda s, a: torch.softmax(s + (a | torch.eye(len(a), dtype=torch.bool)).float(), -1),
     r"differ|This looks like: softmax over all nodes"),
    (ch10.check_attention_pool, "divided by d", lambda x, s, v: _pool(x, s * math.sqrt(
        x.shape[-1]) / x.shape[-1], v), r"differ"),
    (ch12.check_rollout_residual, "layers averaged, not multiplied",
     lambda w, r: ((w.mean(1) + r[:, None, None] * torch.eye(w.shape[-1]))
                   / (1 + r[:, None, None])).mean(0), r"differ"),
    (ch12.check_js_distance, "KL against the mixture, one side only",
     lambda p, q: torch.where(p > 0, p * torch.log2(2 * p / (p + q)), 0).sum(-1).sqrt(),
     r"differ"),
]

def _rope_complex_halves(q, k, qp, kp):
    def turn(x, pos):  # pairs (j, j + d/2) as complex numbers
        d = x.shape[-1]
        z = torch.view_as_complex(x.reshape(*x.shape[:-1], 2, d // 2).transpose(-1, -2)
                                  .contiguous())
        theta = 10000.0 ** (-torch.arange(0, d, 2).float() / d)
        z = z * torch.polar(torch.ones(len(pos), d // 2), pos.float()[:, None] * theta)
        return torch.view_as_real(z).transpose(-1, -2).reshape(x.shape)

    return turn(q, qp) @ turn(k, kp).transpose(1, 2) / math.sqrt(q.shape[-1])


def _mha_sdpa(x, Wq, Wk, Wv, Wo, h, mask):
    B, T, d = x.shape

    def heads(y):
        return y.view(B, T, h, d // h).transpose(1, 2)

    c = F.scaled_dot_product_attention(heads(x @ Wq), heads(x @ Wk), heads(x @ Wv),
                                       attn_mask=mask)
    return c.transpose(1, 2).reshape(B, T, d) @ Wo


CATALOGUE += [
    (ch07.check_rope_scores, "complex numbers, pairs (j, j + d/2)", _rope_complex_halves,
     NAMED + "rotated the halves"),
    (ch08.check_multihead_forward, "F.scaled_dot_product_attention, mask inverted",
     lambda x, Wq, Wk, Wv, Wo, h, m: _mha_sdpa(x, Wq, Wk, Wv, Wo, h,
                                               None if m is None else ~m),
     NAMED + "True = ignore|nan"),
    (ch09.check_decoder_step, "cross-attention to the prefix",
     lambda L, pre, mem, n: _step(L, pre, pre, torch.full_like(n, pre.shape[1])),
     r"differ|raised|This looks like"),
    (ch10.check_gat_neighbour_softmax, "softmax over the heads",
     lambda s, a: _gat(s, a, dim=0), NAMED + "softmax over the wrong axis"),
    (ch12.check_rollout_residual, "identity added once, after the product",
     lambda w, r: (_roll(w, r, add_i=False) + torch.eye(w.shape[-1])) / 2, r"differ"),
    (ch10.check_pointer_loss_padded, "cross_entropy on unmasked scores",
     lambda s, t, n: F.cross_entropy(s.transpose(1, 2), t, ignore_index=-1),
     NAMED + "padding positions left"),
    (ch10.check_pointer_loss_padded, "cross_entropy over all steps, targets clamped",
     lambda s, t, n: F.cross_entropy(s.masked_fill(~(torch.arange(s.shape[2]) < n[:, None])[
         :, None], -math.inf).transpose(1, 2), t.clamp(min=0)), r"you have|nan"),
    (ch09.check_beam_step, "lengths + 1 for every beam, raw scores ranked",
     lambda *a: _beam(*a, norm=False, grow_all=True), r"This looks like|differ"),
    (ch12.check_occlusion, "filler at every position at once",
     lambda m, t, y, f: (lambda base, occ: (base - occ)[:, None].expand(t.shape).clone())(
         m(t).log_softmax(-1)[torch.arange(len(y)), y].detach(),
         m(torch.full_like(t, f)).log_softmax(-1)[torch.arange(len(y)), y].detach()),
     r"differ"),
]

REGIMES = [
    ("a pooled softmax without max-subtraction (features of 90)", ch10.check_attention_pool,
     lambda *a: _pool(*a, naive=True), "large features"),
    ("occlusion with log(softmax) (a confident model)", ch12.check_occlusion,
     lambda *a: _occ(*a, how="naive"), "very confident model"),
    ("RoPE keys placed at 0 (a cache starting at 5)", ch07.check_rope_scores,
     lambda q, k, qp, kp: _rope(q, k, qp, kp, kpos=torch.arange(k.shape[1])),
     "window cache"),
]
