"""Multi-head attention as taught in chapter 8: split and merge heads, the fused module,
grouped keys and values (MQA, GQA), and the weight mapping from ``nn.MultiheadAttention``.

Shapes (``book/notation.md``): queries (B, T, d), keys (B, S, d_k), values (B, S, d_v);
h heads of width d_h = d / h; g key/value heads (groups), each serving r = h / g query
heads. A boolean ``mask`` is True where a query may attend to a key (as in
``F.scaled_dot_product_attention``), broadcastable to (B, h, T, S), e.g.
``attnbook.attention.causal_mask(T)`` (T, S) or a padding mask (B, 1, 1, S).

    >>> mha = MultiHeadAttention(d_model=64, num_heads=4)
    >>> x = torch.randn(2, 10, 64)
    >>> out, weights = mha(x, x, x, need_weights=True)
    >>> out.shape, weights.shape
    (torch.Size([2, 10, 64]), torch.Size([2, 4, 10, 10]))
"""

import torch
import torch.nn.functional as F
from torch import nn

from attnbook.attention import masked_softmax
from attnbook.shapes import (
    check_copy_options,
    check_module_input,
    check_nonempty,
    check_number,
    check_positive_int,
    check_shape,
    check_tensor,
)


def _check_heads(d: int, num_heads: int, what: str = "d") -> None:
    check_positive_int(d, what)
    check_positive_int(num_heads, "num_heads")
    if d % num_heads:
        raise ValueError(f"{what} = {d} is not divisible by num_heads = {num_heads}: "
                         f"every head needs the same width {what} / num_heads")


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, d) -> (B, h, T, d_h): cut each feature vector into h pieces, one per head.

    The reshape cuts the last axis, d -> (h, d_h); the transpose then moves the head
    axis in front of the positions, so each head sees a (T, d_h) matrix.
    """
    check_tensor(x, "x")
    B, T, d = check_shape(x, ("B", "T", "d"), "x").values()
    if d == 0:
        raise ValueError(f"x has no features to split (shape {tuple(x.shape)}); "
                         f"expected (B, T, d) with d >= 1")
    _check_heads(d, num_heads)
    return x.reshape(B, T, num_heads, d // num_heads).transpose(1, 2)  # (B, h, T, d_h)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, T, d_h) -> (B, T, h * d_h): the inverse of ``split_heads``.

    Transpose back first (positions before heads), then glue the heads' pieces.
    """
    check_tensor(x, "x")
    B, h, T, d_h = check_shape(x, ("B", "h", "T", "d_h"), "x").values()
    return x.transpose(1, 2).reshape(B, T, h * d_h)  # (B, T, h, d_h) -> (B, T, d)


def expand_kv(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, g, S, d_h) -> (B, h, S, d_h): key/value head i serves query heads i*r .. i*r+r-1.

    ``repeat_interleave`` (k0 k0 k1 k1), not ``repeat`` (k0 k1 k0 k1): neighbouring
    query heads share a group, as in Ainslie et al. and PyTorch's ``enable_gqa``.
    """
    check_tensor(x, "x")
    g = check_shape(x, ("B", "g", "S", "d_h"), "x")["g"]
    check_positive_int(num_heads, "num_heads")
    if num_heads % g:
        raise ValueError(f"num_heads = {num_heads} is not divisible by the number of "
                         f"key/value heads g = {g} (x.shape[1])")
    return x.repeat_interleave(num_heads // g, dim=1)  # (B, h, S, d_h)


def _check_mask(mask, shape: tuple[int, ...], name: str = "mask") -> torch.Tensor | None:
    """None, or a boolean mask broadcastable to ``shape`` = (B, h, T, S), else a clear
    error naming the argument ``name`` (the Transformer's layers check theirs here too)."""
    if mask is None:
        return None
    check_tensor(mask, name, "bool")  # True = may attend
    ok = 2 <= mask.dim() <= 4  # at least (T, S): a 1-D mask is ambiguous
    if ok:
        try:
            ok = torch.broadcast_shapes(mask.shape, shape) == torch.Size(shape)
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(f"{name} of shape {tuple(mask.shape)} does not broadcast to the "
                         f"attention weights' shape (B, h, T, S) = {tuple(shape)}; e.g. "
                         f"(T, S) for a causal mask or (B, 1, 1, S) for padding")
    return mask


class MultiHeadAttention(nn.Module):
    """h heads of scaled dot-product attention side by side, with one fused projection each.

    ``num_kv_heads``: None = h (multi-head), 1 = multi-query, else grouped-query
    (must divide ``num_heads``). ``kdim``/``vdim``: feature sizes of keys and values
    (default ``d_model``). Parameters: ``W_q`` (d -> d), ``W_k`` (d_k -> d_kv),
    ``W_v`` (d_v -> d_kv), ``W_o`` (d -> d), with d_kv = num_kv_heads * d_h.

    ``forward`` returns ``(output (B, T, d), weights (B, h, T, S) or None)``. Without
    ``need_weights`` it calls the fused ``F.scaled_dot_product_attention``; with it, it
    computes the weights explicitly; the two agree. A query with every key masked gets
    zero weights and a zero context vector, so its output is ``W_o``'s bias, never nan.
    """

    def __init__(self, d_model: int, num_heads: int, num_kv_heads: int | None = None,
                 kdim: int | None = None, vdim: int | None = None, bias: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        _check_heads(d_model, num_heads, "d_model")
        d_model, num_heads = int(d_model), int(num_heads)  # a NumPy int as a plain int
        num_kv_heads = num_heads if num_kv_heads is None else check_positive_int(
            num_kv_heads, "num_kv_heads")
        if num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads = {num_kv_heads!r} should be a positive int that "
                             f"divides num_heads = {num_heads}")
        dropout = check_number(dropout, "dropout")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout should lie in [0, 1), got {dropout}")
        self.d_model, self.num_heads, self.num_kv_heads = d_model, num_heads, num_kv_heads
        self.d_head = d_model // num_heads  # d_h
        self.kdim = d_model if kdim is None else check_positive_int(kdim, "kdim")
        self.vdim = d_model if vdim is None else check_positive_int(vdim, "vdim")
        self.dropout = dropout
        d_kv = num_kv_heads * self.d_head
        self.W_q = nn.Linear(d_model, d_model, bias=bias)
        self.W_k = nn.Linear(self.kdim, d_kv, bias=bias)
        self.W_v = nn.Linear(self.vdim, d_kv, bias=bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, num_heads={self.num_heads}, "
                f"num_kv_heads={self.num_kv_heads}, kdim={self.kdim}, vdim={self.vdim}")

    def _check_inputs(self, queries, keys, values) -> None:
        for x, name, size, built in ((queries, "queries", self.d_model, "d_model"),
                                     (keys, "keys", self.kdim, "kdim"),
                                     (values, "values", self.vdim, "vdim")):
            check_tensor(x, name, "float")
            if x.dim() != 3:
                raise ValueError(f"{name} should have 3 dimensions (B, length, features), "
                                 f"got shape {tuple(x.shape)}")
            check_module_input(x, name, self, size, built)
        dims = check_shape(queries, ("B", "T", None), "queries")
        dims = check_shape(keys, ("B", "S", None), "keys", dims)
        check_shape(values, ("B", "S", None), "values", dims)
        check_nonempty(keys, "keys", dim=1, what="positions (S = 0)",
                       why="attention needs at least one key to put its weight on")

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor | None = None, need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check_inputs(queries, keys, values)
        B, T, _ = queries.shape
        S = keys.shape[1]
        h = self.num_heads
        q = split_heads(self.W_q(queries), h)  # (B, T, d) -> (B, h, T, d_h)
        k = split_heads(self.W_k(keys), self.num_kv_heads)  # (B, g, S, d_h)
        v = split_heads(self.W_v(values), self.num_kv_heads)  # (B, g, S, d_h)
        k, v = expand_kv(k, h), expand_kv(v, h)  # (B, h, S, d_h): groups shared
        dead = None  # (B|1, h|1, T, 1): queries that may attend to no key at all
        if mask is not None:
            mask = _check_mask(mask, (B, h, T, S))
            dead = ~mask.any(dim=-1, keepdim=True)
        p = self.dropout if self.training else 0.0
        if need_weights:
            scores = q @ k.transpose(-2, -1) / self.d_head**0.5  # (B, h, T, S)
            weights = masked_softmax(scores, mask=mask)  # dead rows: all zero
            context = F.dropout(weights, p) @ v  # (B, h, T, d_h)
        else:
            weights = None
            # A dead row would be softmax over nothing; let it attend everywhere, then zero it.
            safe = None if mask is None else mask | dead
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, dropout_p=p)
            if dead is not None:
                context = context.masked_fill(dead, 0.0)  # (B, h, T, d_h)
        return self.W_o(merge_heads(context)), weights  # (B, T, d), (B, h, T, S)


def copy_from_torch(ours: MultiHeadAttention, theirs: nn.MultiheadAttention
                    ) -> MultiHeadAttention:
    """Copy ``theirs`` (PyTorch's module) into ``ours`` so both compute the same function.

    PyTorch keeps the three input projections in one (3d, d) matrix ``in_proj_weight``
    (rows: queries, then keys, then values) when keys and values have size d, and in
    ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` when ``kdim``/``vdim``
    differ; the biases are always ``in_proj_bias`` (3d,). ``out_proj`` is ``W_o``.
    Returns ``ours``. Options that are not weights must already agree: sizes, bias,
    ``dropout`` and ``batch_first=True`` (ours takes (B, T, d)); a difference is refused
    (``attnbook.shapes.check_copy_options``) rather than copied into a different function.
    """
    if not isinstance(ours, MultiHeadAttention):
        raise TypeError(f"ours should be a MultiHeadAttention, got {type(ours).__name__}")
    if not isinstance(theirs, nn.MultiheadAttention):
        raise TypeError(f"theirs should be an nn.MultiheadAttention, got {type(theirs).__name__}")
    if theirs.bias_k is not None or theirs.add_zero_attn:
        raise ValueError("add_bias_kv and add_zero_attn have no counterpart in MultiHeadAttention")
    mine = (ours.d_model, ours.num_heads, ours.num_heads, ours.kdim, ours.vdim,
            ours.W_q.bias is not None)
    other = (theirs.embed_dim, theirs.num_heads, ours.num_kv_heads, theirs.kdim, theirs.vdim,
             theirs.in_proj_bias is not None)
    if mine != other:
        raise ValueError(f"modules differ: ours has (d_model, num_heads, num_kv_heads, kdim, "
                         f"vdim, bias) = {mine}, theirs {other}")
    check_copy_options(ours, theirs, {"dropout": (ours.dropout, float(theirs.dropout)),
                                      "batch_first": (True, theirs.batch_first)})
    d = theirs.embed_dim
    with torch.no_grad():
        if theirs.in_proj_weight is not None:  # one stacked matrix: rows [0:d] W_q, ...
            w_q, w_k, w_v = theirs.in_proj_weight.split(d, dim=0)
        else:
            w_q, w_k, w_v = theirs.q_proj_weight, theirs.k_proj_weight, theirs.v_proj_weight
        for layer, w in ((ours.W_q, w_q), (ours.W_k, w_k), (ours.W_v, w_v)):
            layer.weight.copy_(w)
        if theirs.in_proj_bias is not None:
            for layer, b in zip((ours.W_q, ours.W_k, ours.W_v),
                                theirs.in_proj_bias.split(d), strict=True):
                layer.bias.copy_(b)
            ours.W_o.bias.copy_(theirs.out_proj.bias)
        ours.W_o.weight.copy_(theirs.out_proj.weight)
    return ours


def num_parameters(module: nn.Module) -> int:
    """Number of trainable numbers in ``module``."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module should be a torch.nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def kv_cache_numbers(num_layers: int, num_kv_heads: int, d_head: int) -> int:
    """Numbers a decoder keeps per token of context: a key and a value per kv head and layer."""
    n = [check_positive_int(value, name) for value, name in (
        (num_layers, "num_layers"), (num_kv_heads, "num_kv_heads"), (d_head, "d_head"))]
    return 2 * n[0] * n[1] * n[2]
