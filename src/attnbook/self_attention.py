"""Self-attention as taught in chapter 7: one sequence supplies queries, keys and values.

``SelfAttention`` projects the input three ways (W_q, W_k, W_v) and runs chapter 4's
masked scaled dot-product attention on the results; ``causal=True`` adds chapter 4's
causal mask, ``rope=True`` rotates queries and keys by their positions (RoPE).
``OrderClassifier`` is the chapter's small classifier: embeddings, an optional
positional encoding, self-attention layers with residual connections, mean pooling.

Shapes (``book/notation.md``): x (B, T, d), queries and keys (B, T, d_k),
values (B, T, d_v), weights (B, T, T). A boolean ``mask`` is True where a query may
attend, as in PyTorch's ``scaled_dot_product_attention``.
"""

from dataclasses import dataclass

import torch
from torch import nn

from attnbook.attention import causal_mask, scaled_dot_product_attention
from attnbook.positional import LearnedPositionalEmbedding, apply_rope, sinusoidal_encoding
from attnbook.shapes import (
    check_ids,
    check_module_input,
    check_nonempty,
    check_positive_int,
    check_tensor,
)


def _check_size(value, name: str) -> None:
    check_positive_int(value, name)


class SelfAttention(nn.Module):
    """Single-head self-attention: softmax(x W_q (x W_k)^T / sqrt(d_k)) x W_v.

    forward(x (B, T, d_model), mask=None) -> (output (B, T, d_v), weights (B, T, T)).
    ``mask`` is boolean and broadcastable to (B, T, T), True where attending is
    allowed; with ``causal=True`` it is combined with the causal mask.
    """

    def __init__(self, d_model: int, d_k: int | None = None, d_v: int | None = None,
                 causal: bool = False, bias: bool = False, rope: bool = False):
        super().__init__()
        d_k = d_model if d_k is None else d_k
        d_v = d_model if d_v is None else d_v
        for value, name in ((d_model, "d_model"), (d_k, "d_k"), (d_v, "d_v")):
            _check_size(value, name)
        if rope and d_k % 2:
            raise ValueError(f"rope=True needs an even d_k (features rotate in pairs), "
                             f"got d_k = {d_k}")
        self.d_model, self.d_k, self.d_v = d_model, d_k, d_v
        self.causal, self.rope = causal, rope
        self.W_q = nn.Linear(d_model, d_k, bias=bias)
        self.W_k = nn.Linear(d_model, d_k, bias=bias)
        self.W_v = nn.Linear(d_model, d_v, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor(x, "x", "float")
        if x.dim() != 3:
            raise ValueError(f"x should have shape (B, T, d_model) = (B, T, {self.d_model}), "
                             f"got shape {tuple(x.shape)}")
        check_module_input(x, "x", self, self.d_model, "d_model")
        check_nonempty(x, "x", dim=1, what="positions (T = 0)",
                       why="self-attention needs at least one token to attend to")
        if mask is not None:
            check_tensor(mask, "mask", "bool")  # True = may attend; before combining it
        q, k, v = self.W_q(x), self.W_k(x), self.W_v(x)  # (B, T, d_k), (B, T, d_k), (B, T, d_v)
        if self.rope:
            q, k = apply_rope(q), apply_rope(k)  # rotate by positions 0 .. T-1
        if self.causal:
            future = causal_mask(x.shape[1], device=x.device)  # (T, T), True on and below diag
            mask = future if mask is None else mask & future
        return scaled_dot_product_attention(q, k, v, mask=mask)  # (B, T, d_v), (B, T, T)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_k={self.d_k}, d_v={self.d_v}, "
                f"causal={self.causal}, rope={self.rope}")


ENCODINGS = ("none", "sinusoidal", "learned", "rope")


@dataclass(frozen=True)
class OrderClassifierConfig:
    """Settings of ``OrderClassifier``; ``encoding`` is one of ``ENCODINGS``."""

    num_tokens: int
    max_len: int
    d_model: int = 32
    num_layers: int = 1
    encoding: str = "none"
    embed_std: float = 0.3  # small token embeddings: an added position signal is not drowned
    causal: bool = False  # causal self-attention layers (position i sees 0 .. i)


class OrderClassifier(nn.Module):
    """Token embeddings (+ positions) -> self-attention layers -> mean pool -> 2 logits.

    Each layer is x + SelfAttention(x). The positions enter in one of four ways:
    not at all, a sinusoidal table or a learned one added to the embeddings, or RoPE
    inside every layer. forward(tokens (B, T)) -> (logits (B, 2), [weights (B, T, T)
    per layer]).
    """

    def __init__(self, config: OrderClassifierConfig):
        super().__init__()
        if not isinstance(config, OrderClassifierConfig):
            raise TypeError(f"config should be an OrderClassifierConfig, e.g. "
                            f"OrderClassifierConfig(num_tokens=8, max_len=6), "
                            f"got {type(config).__name__}")
        check_positive_int(config.num_tokens, "config.num_tokens")
        check_positive_int(config.max_len, "config.max_len")
        check_positive_int(config.d_model, "config.d_model")
        check_positive_int(config.num_layers, "config.num_layers")
        if config.encoding not in ENCODINGS:
            raise ValueError(f"encoding should be one of {ENCODINGS}, got {config.encoding!r}")
        self.config = config
        d = config.d_model
        self.embed = nn.Embedding(config.num_tokens, d)
        nn.init.normal_(self.embed.weight, std=config.embed_std)
        if config.encoding == "sinusoidal":
            self.register_buffer("pe", sinusoidal_encoding(config.max_len, d))
        elif config.encoding == "learned":
            self.learned = LearnedPositionalEmbedding(config.max_len, d, init_std=1.0)
        rope = config.encoding == "rope"
        self.layers = nn.ModuleList(SelfAttention(d, causal=config.causal, rope=rope)
                                    for _ in range(config.num_layers))
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 2))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        check_tensor(tokens, "tokens", "int")
        if tokens.dim() != 2:
            raise ValueError(f"tokens should be integer ids of shape (B, T), got "
                             f"{tokens.dtype} of shape {tuple(tokens.shape)}")
        check_ids(tokens, "tokens", self.config.num_tokens)
        check_nonempty(tokens, "tokens", dim=1, what="positions (T = 0)",
                       why="the classifier averages over at least one token")
        x = self.embed(tokens)  # (B, T) -> (B, T, d)
        if self.config.encoding == "sinusoidal":
            if tokens.shape[1] > self.pe.shape[0]:
                raise ValueError(f"T = {tokens.shape[1]} exceeds max_len = {self.pe.shape[0]}")
            x = x + self.pe[: tokens.shape[1]]  # (B, T, d) + (T, d)
        elif self.config.encoding == "learned":
            x = self.learned(x)
        weights = []
        for layer in self.layers:
            out, w = layer(x)  # (B, T, d), (B, T, T)
            x = x + out
            weights.append(w)
        return self.head(x.mean(dim=1)), weights  # (B, d) -> (B, 2)
