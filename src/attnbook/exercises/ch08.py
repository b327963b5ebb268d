"""Checkers for chapter 8: heads for the sequence-first layout (split and merge), a
multi-head forward pass from weight matrices, grouped keys expanded to every head,
and head ablation.

Shapes: x (B, T, d) batch-first or (T, B, d) sequence-first; heads (B, h, T, d_h);
grouped keys (B, S, g * d_h) from the key projection; weight matrices act as
``x @ W`` (d_in, d_out). A boolean mask is True where a query may attend.
"""

import copy

import torch

from attnbook.attention import masked_softmax
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function
from attnbook.multihead import MultiHeadAttention


def _randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# Exercise 1: split heads for the sequence-first layout ----------------------------------


def split_heads_seq_first_reference(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """x (T, B, d) -> (B, h, T, d_h): head i gets features i*d_h .. (i+1)*d_h - 1."""
    T, B, d = x.shape
    x = x.reshape(T, B, num_heads, d // num_heads)  # (T, B, h, d_h): cut the features
    return x.permute(1, 2, 0, 3)  # (B, h, T, d_h)


def _split_no_transpose(x, h):
    T, B, d = x.shape
    return x.reshape(B, h, T, d // h)


def _split_as_batch_first(x, h):
    T, B, d = x.shape  # read as (B, T, d): batch and positions swapped
    return x.reshape(T, B, h, d // h).transpose(1, 2)


def _split_batch_first_no_transpose(x, h):
    T, B, d = x.shape
    return x.transpose(0, 1).reshape(B, h, T, d // h)  # (B, T, d) read as (B, h, T, d_h)


def _split_strided(x, h):
    T, B, d = x.shape
    return x.reshape(T, B, d // h, h).permute(1, 3, 0, 2)


SPLIT_CASES = [
    Case((_randn(5, 2, 8, seed=0), 2), label="T=5, B=2, d=8, h=2"),
    Case((torch.arange(4 * 4 * 6.0).reshape(4, 4, 6), 3), label="T=B=4, d=6, h=3 (arange)"),
    Case((_randn(1, 3, 12, seed=1), 4), label="one position (T=1), d=12, h=4"),
    Case((_randn(3, 2, 5, seed=2), 5), label="heads of width 1 (d=5, h=5)"),
    Case((_randn(3, 2, 6, seed=3), 1), label="one head (h=1)"),
]

SPLIT_MISTAKES = [
    Mistake("reshape without transpose",
            "x.reshape(B, h, T, d_h) keeps the numbers in memory order, so each 'head' is a "
            "slab of consecutive memory that mixes positions (and batch items). Cut the last "
            "axis first, (T, B, d) -> (T, B, h, d_h), then move the axes with permute.",
            wrong=_split_no_transpose),
    Mistake("transpose(0, 1), then reshape without moving the heads",
            "x.transpose(0, 1) gives (B, T, d), the right start; but reshaping (B, T, d) "
            "straight to (B, h, T, d_h) glues features of consecutive positions into one "
            "head. Reshape to (B, T, h, d_h) first, then transpose(1, 2).",
            wrong=_split_batch_first_no_transpose),
    Mistake("input read as batch-first",
            "this tensor is sequence-first, (T, B, d), like nn.MultiheadAttention's default; "
            "axis 0 holds positions, axis 1 the batch.", wrong=_split_as_batch_first),
    Mistake("features dealt out round-robin",
            "reshaping d into (d_h, h) gives head i the features i, i+h, i+2h, ...; each head "
            "should own one contiguous block: reshape d into (h, d_h).", wrong=_split_strided),
]


def check_split_heads_seq_first(fn) -> CheckResult:
    """``fn(x (T, B, d), num_heads) -> (B, h, T, d_h)``."""
    return check_function(fn, exercise="split heads (sequence-first)",
                          reference=split_heads_seq_first_reference, cases=SPLIT_CASES,
                          mistakes=SPLIT_MISTAKES)


# Exercise 2: merge heads back to the sequence-first layout ------------------------------


def merge_heads_seq_first_reference(x: torch.Tensor) -> torch.Tensor:
    """(B, h, T, d_h) -> (T, B, h * d_h): the inverse of exercise 1."""
    B, h, T, d_h = x.shape
    return x.permute(2, 0, 1, 3).reshape(T, B, h * d_h)  # (T, B, h, d_h) -> (T, B, d)


def _merge_no_transpose(x):
    B, h, T, d_h = x.shape
    return x.reshape(T, B, h * d_h)


def _merge_wrong_order(x):
    B, h, T, d_h = x.shape
    return x.permute(2, 0, 3, 1).reshape(T, B, h * d_h)  # (T, B, d_h, h): interleaved


def _merge_batch_first(x):
    B, h, T, d_h = x.shape
    return x.transpose(1, 2).reshape(B, T, h * d_h)


MERGE_CASES = [
    Case((_randn(2, 3, 4, 2, seed=10),), label="B=2, h=3, T=4, d_h=2"),
    Case((torch.arange(3 * 2 * 3 * 2.0).reshape(3, 2, 3, 2),), label="B=T=3, h=2, d_h=2 (arange)"),
    Case((_randn(1, 4, 1, 3, seed=11),), label="one position (T=1)"),
    Case((_randn(2, 5, 3, 1, seed=12),), label="heads of width 1"),
]

MERGE_MISTAKES = [
    Mistake("reshape without transpose",
            "the heads axis sits before the positions; reshaping straight to (T, B, d) glues "
            "pieces of different positions together. Permute to (T, B, h, d_h) first.",
            wrong=_merge_no_transpose),
    Mistake("heads merged in the wrong order",
            "permuting to (T, B, d_h, h) before the reshape interleaves the heads' features; "
            "head i's d_h numbers must stay together, at features i*d_h .. (i+1)*d_h - 1, so "
            "that W_o sees what split_heads cut.", wrong=_merge_wrong_order),
    Mistake("merged to batch-first (B, T, d)",
            "the layout asked for is sequence-first, (T, B, d).", wrong=_merge_batch_first),
]


def check_merge_heads_seq_first(fn) -> CheckResult:
    """``fn(x (B, h, T, d_h)) -> (T, B, h * d_h)``."""
    return check_function(fn, exercise="merge heads (sequence-first)",
                          reference=merge_heads_seq_first_reference, cases=MERGE_CASES,
                          mistakes=MERGE_MISTAKES)


# Exercise 3: a multi-head forward pass from weight matrices -----------------------------


def _mh_forward(x, W_q, W_k, W_v, W_o, num_heads, mask, *, scale_by="d_h", split="ok",
                invert_mask=False, merge="ok", output=True, transposed=False):
    B, T, d = x.shape
    d_h = d // num_heads

    def heads(y):  # (B, T, d) -> (B, h, T, d_h)
        if split == "no_transpose":
            return y.reshape(B, num_heads, T, d_h)
        return y.reshape(B, T, num_heads, d_h).transpose(1, 2)

    if transposed:  # weights read as nn.Linear's (d_out, d_in)
        W_q, W_k, W_v, W_o = W_q.T, W_k.T, W_v.T, W_o.T
    q, k, v = heads(x @ W_q), heads(x @ W_k), heads(x @ W_v)
    scale = {"d_h": d_h**0.5, "d": d**0.5, "none": 1.0}[scale_by]
    scores = q @ k.transpose(-2, -1) / scale  # (B, h, T, T)
    if mask is not None and invert_mask:
        mask = ~mask
    weights = masked_softmax(scores, mask=mask)
    context = weights @ v  # (B, h, T, d_h)
    if merge == "no_transpose":
        context = context.reshape(B, T, d)
    else:
        context = context.transpose(1, 2).reshape(B, T, d)  # (B, T, d)
    return context @ W_o if output else context


def multihead_forward_reference(x, W_q, W_k, W_v, W_o, num_heads, mask=None):
    """Self-attention with h heads: x (B, T, d), W_* (d, d) used as x @ W, mask (T, T)
    boolean (True = may attend) or None -> output (B, T, d). A query that may attend
    nowhere gets a zero context vector."""
    return _mh_forward(x, W_q, W_k, W_v, W_o, num_heads, mask)


def _forward_case(seed, B, T, d, h, mask, label, scale=1.0):
    Ws = tuple(_randn(d, d, seed=seed + i, scale=scale / d**0.5) for i in range(4))
    return Case((_randn(B, T, d, seed=seed + 9), *Ws, h, mask), label=label)


_window = torch.ones(6, 6, dtype=torch.bool).tril().triu(-1)  # self and one step back
_blind = torch.ones(4, 4, dtype=torch.bool).tril()
_blind[2] = False  # query 2 may attend nowhere

FORWARD_CASES = [
    _forward_case(20, 2, 5, 8, 2, None, "B=2, T=5, d=8, h=2, no mask"),
    _forward_case(30, 2, 6, 12, 3, _window, "d=12, h=3, a window mask (self and one back)"),
    _forward_case(40, 1, 4, 6, 6, _blind, "heads of width 1; query 2 may attend nowhere"),
    _forward_case(50, 3, 1, 4, 2, None, "one position (T=1)"),
    _forward_case(60, 2, 5, 8, 4, None, "large weights (scores of hundreds)", scale=8.0),
]

FORWARD_MISTAKES = [
    Mistake("scaled by sqrt(d) instead of sqrt(d_h)",
            "each head computes dot products of d_h numbers, so it divides by sqrt(d_h), "
            "the width of one head, not of the whole model.",
            wrong=lambda *a: _mh_forward(*a, scale_by="d")),
    Mistake("no 1/sqrt(d_h) scaling",
            "divide each head's scores by sqrt(d_h) before the softmax.",
            wrong=lambda *a: _mh_forward(*a, scale_by="none")),
    Mistake("reshape without transpose when splitting heads",
            "y.reshape(B, h, T, d_h) mixes positions into heads; reshape to (B, T, h, d_h) "
            "and transpose(1, 2).", wrong=lambda *a: _mh_forward(*a, split="no_transpose")),
    Mistake("heads merged without the transpose",
            "the context is (B, h, T, d_h): transpose(1, 2) to (B, T, h, d_h) before the "
            "reshape to (B, T, d), or positions and heads get mixed.",
            wrong=lambda *a: _mh_forward(*a, merge="no_transpose")),
    Mistake("W_o left out",
            "after merging the heads, the output projection W_o mixes them: context @ W_o.",
            wrong=lambda *a: _mh_forward(*a, output=False)),
    Mistake("weights used as x @ W.T",
            "here the matrices act as x @ W (shape (d_in, d_out)); nn.Linear stores "
            "(d_out, d_in) and computes x @ W.T.",
            wrong=lambda *a: _mh_forward(*a, transposed=True)),
    Mistake("mask read as True = ignore",
            "in this book (and F.scaled_dot_product_attention) True means *may attend*; "
            "nn.MultiheadAttention's masks use the opposite convention.",
            wrong=lambda *a: _mh_forward(*a, invert_mask=True)),
    Mistake("nan for a query that may attend nowhere",
            "a row of -inf scores gives 0/0 in the softmax. Fill masked scores with a large "
            "finite negative number and zero the weights of a fully masked row.",
            detect=lambda got, exp, case: "nowhere" in case.label
            and bool(torch.isnan(got).any())),
]


def check_multihead_forward(fn) -> CheckResult:
    """``fn(x (B, T, d), W_q, W_k, W_v, W_o (d, d), num_heads, mask (T, T) or None)
    -> (B, T, d)``."""
    return check_function(fn, exercise="multi-head forward pass",
                          reference=multihead_forward_reference, cases=FORWARD_CASES,
                          mistakes=FORWARD_MISTAKES)


# Exercise 4: grouped keys to every head -------------------------------------------------


def grouped_keys_to_heads_reference(k: torch.Tensor, num_kv_heads: int,
                                    num_heads: int) -> torch.Tensor:
    """k (B, S, g * d_h), the key projection's output -> (B, h, S, d_h), where key head j
    serves query heads j*r .. j*r + r - 1 (r = h / g)."""
    B, S, d_kv = k.shape
    k = k.reshape(B, S, num_kv_heads, d_kv // num_kv_heads).transpose(1, 2)  # (B, g, S, d_h)
    return k.repeat_interleave(num_heads // num_kv_heads, dim=1)  # (B, h, S, d_h)


def _kv_repeat(k, g, h):
    B, S, d_kv = k.shape
    return k.reshape(B, S, g, d_kv // g).transpose(1, 2).repeat(1, h // g, 1, 1)


def _kv_no_transpose(k, g, h):
    B, S, d_kv = k.shape
    return k.reshape(B, g, S, d_kv // g).repeat_interleave(h // g, dim=1)


def _kv_split_into_h(k, g, h):
    B, S, d_kv = k.shape  # cut into h narrower heads instead of g heads of width d_h
    return k.reshape(B, S, h, d_kv // h).transpose(1, 2)


GQA_CASES = [
    Case((_randn(2, 5, 8, seed=70), 4, 4), label="g = h = 4 (plain multi-head)"),
    Case((_randn(2, 3, 8, seed=74), 2, 4), label="g = 2 groups for h = 4 heads, d_h = 4"),
    Case((_randn(2, 5, 3, seed=71), 1, 4), label="g = 1 (multi-query), d_h = 3"),
    Case((_randn(2, 5, 8, seed=72), 2, 6), label="g = 2 groups for h = 6 heads, d_h = 4"),
    Case((_randn(1, 1, 6, seed=73), 3, 6), label="one key (S = 1), g = 3, h = 6"),
    Case((torch.arange(2 * 4 * 6.0).reshape(2, 4, 6), 3, 9), label="g = 3, h = 9 (arange)"),
]

GQA_MISTAKES = [
    Mistake("repeat instead of repeat_interleave",
            "x.repeat(1, r, 1, 1) tiles the groups (k0 k1 k0 k1); query heads 0 .. r-1 must "
            "all share key head 0 (k0 k0 k1 k1): repeat_interleave(r, dim=1).",
            wrong=_kv_repeat),
    Mistake("reshape without transpose",
            "k.reshape(B, g, S, d_h) mixes positions into key heads; reshape to "
            "(B, S, g, d_h) and transpose(1, 2).", wrong=_kv_no_transpose),
    Mistake("keys cut into h heads",
            "the key projection makes only g heads of width d_h = d_kv / g; cut into g "
            "pieces, then give each to r = h / g query heads.", wrong=_kv_split_into_h),
]


def check_grouped_keys_to_heads(fn) -> CheckResult:
    """``fn(k (B, S, g * d_h), num_kv_heads g, num_heads h) -> (B, h, S, d_h)``."""
    return check_function(fn, exercise="grouped keys to every head",
                          reference=grouped_keys_to_heads_reference, cases=GQA_CASES,
                          mistakes=GQA_MISTAKES)


# Exercise 5: head ablation --------------------------------------------------------------


def ablate_head_reference(mha: MultiHeadAttention, x: torch.Tensor, head: int) -> torch.Tensor:
    """Self-attention output of ``mha`` on x (B, T, d) with head ``head`` removed: its
    context vector no longer reaches W_o. ``mha`` itself is left unchanged."""
    d_h = mha.d_head
    ablated = copy.deepcopy(mha)  # a copy: the caller's model keeps all its heads
    with torch.no_grad():
        ablated.W_o.weight[:, head * d_h:(head + 1) * d_h] = 0.0  # columns that read head i
        out, _ = ablated(x, x, x)
    return out


def _ablate_rows(mha, x, head):
    d_h, mha = mha.d_head, copy.deepcopy(mha)
    with torch.no_grad():
        mha.W_o.weight[head * d_h:(head + 1) * d_h] = 0.0
        return mha(x, x, x)[0]


def _ablate_queries(mha, x, head):
    d_h, mha = mha.d_head, copy.deepcopy(mha)
    with torch.no_grad():
        mha.W_q.weight[head * d_h:(head + 1) * d_h] = 0.0
        mha.W_q.bias[head * d_h:(head + 1) * d_h] = 0.0
        return mha(x, x, x)[0]


def _ablate_with_bias(mha, x, head):
    d_h, mha = mha.d_head, copy.deepcopy(mha)
    with torch.no_grad():
        mha.W_o.weight[:, head * d_h:(head + 1) * d_h] = 0.0
        mha.W_o.bias.zero_()
        return mha(x, x, x)[0]


def _ablate_values_weight_only(mha, x, head):
    d_h, mha = mha.d_head, copy.deepcopy(mha)
    with torch.no_grad():
        mha.W_v.weight[head * d_h:(head + 1) * d_h] = 0.0  # the bias still gives a value
        return mha(x, x, x)[0]


def _ablate_output_slice(mha, x, head):
    with torch.no_grad():
        full = mha(x, x, x)[0].clone()
    d_h = mha.d_head
    full[..., head * d_h:(head + 1) * d_h] = 0.0
    return full


def _ablate_next(mha, x, head):
    return ablate_head_reference(mha, x, (head + 1) % mha.num_heads)


def _mha(seed, d, h, kv=None):
    torch.manual_seed(seed)
    mha = MultiHeadAttention(d, h, num_kv_heads=kv).eval()
    with torch.no_grad():
        mha.W_o.bias.normal_()
    return mha


ABLATE_CASES = [
    Case((_mha(80, 8, 2), _randn(2, 5, 8, seed=81), 0), label="d=8, h=2, head 0"),
    Case((_mha(82, 12, 3), _randn(2, 4, 12, seed=83), 1), label="d=12, h=3, the middle head"),
    Case((_mha(84, 8, 4), _randn(1, 6, 8, seed=85), 3), label="d=8, h=4, the last head"),
    Case((_mha(86, 8, 4, kv=2), _randn(2, 3, 8, seed=87), 2),
         label="grouped keys (g=2, h=4), head 2"),
]

ABLATE_MISTAKES = [
    Mistake("zeroed rows of W_o instead of columns",
            "W_o.weight has shape (d_out, d_in); head i's context enters through the *input* "
            "columns [:, i*d_h:(i+1)*d_h]. Zeroing rows removes output features instead.",
            wrong=_ablate_rows),
    Mistake("zeroed the head's queries",
            "with zero queries the head's scores are all equal: it still attends, uniformly, "
            "and its (averaged) values still reach the output. Remove its context instead.",
            wrong=_ablate_queries),
    Mistake("W_o's bias removed too",
            "the bias belongs to no head; ablating one head keeps it.", wrong=_ablate_with_bias),
    Mistake("zeroed the head's value weights but not their bias",
            "with W_v's weight rows at 0 every value of the head is W_v's bias, and the "
            "weighted mean of equal vectors is that bias: it still reaches W_o. Zero the "
            "context instead (the columns of W_o that read it), or the bias too.",
            wrong=_ablate_values_weight_only),
    Mistake("zeroed the head's slice of the output",
            "the output features i*d_h .. (i+1)*d_h - 1 are not head i's: W_o mixes every "
            "head into every output feature. Zero W_o's input columns for the head.",
            wrong=_ablate_output_slice),
    Mistake("off by one head",
            "head i owns columns i*d_h .. (i+1)*d_h - 1, counting from 0.", wrong=_ablate_next),
]


def check_ablate_head(fn) -> CheckResult:
    """``fn(mha: MultiHeadAttention, x (B, T, d), head) -> (B, T, d)``, self-attention
    output with that head's context removed."""
    return check_function(fn, exercise="head ablation", reference=ablate_head_reference,
                          cases=ABLATE_CASES, mistakes=ABLATE_MISTAKES)
