"""A sequence classifier built from chapter 9's encoder: a class token, learned positions,
L encoder layers, and a linear layer reading the class token (chapter 12 reads its
attention maps).

Shapes (``book/notation.md``): B batch, T input positions, d model size, h heads,
L layers, C classes. The class token is position 0, so the attention maps are
(B, L, h, T + 1, T + 1).

``forward(tokens, keep=None, need_weights=False)``: ``keep`` (B, T) boolean, False at
input positions the model must not see -- they are removed from every layer's keys,
which is how leave-one-out occlusion deletes a token without replacing it by another.
``classify(x, keep, need_weights)`` starts from the token embeddings ``embed(tokens)``
(B, T, d), for gradients with respect to them.
"""

from dataclasses import dataclass

import torch
from torch import nn

from attnbook.shapes import check_positive_int, check_shape, check_tensor
from attnbook.transformer import Encoder, check_tokens


@dataclass
class ClsEncoderConfig:
    """Settings of the class-token encoder (pre-LN by default)."""

    vocab_size: int
    num_classes: int
    d_model: int = 32
    num_heads: int = 2
    d_ff: int = 64
    num_layers: int = 3
    max_len: int = 16
    norm_first: bool = True


def _check_config(cfg) -> None:
    if not isinstance(cfg, ClsEncoderConfig):
        raise TypeError(f"cfg should be a ClsEncoderConfig, e.g. ClsEncoderConfig("
                        f"vocab_size=12, num_classes=10), got {type(cfg).__name__}")
    for name in ("vocab_size", "num_classes", "d_model", "num_heads", "d_ff", "num_layers",
                 "max_len"):
        check_positive_int(getattr(cfg, name), f"cfg.{name}")
    if cfg.d_model % cfg.num_heads:
        raise ValueError(f"cfg.d_model = {cfg.d_model} is not divisible by cfg.num_heads = "
                         f"{cfg.num_heads}")
    if not isinstance(cfg.norm_first, bool):
        raise TypeError(f"cfg.norm_first should be True or False, got {cfg.norm_first!r}")


class ClsEncoder(nn.Module):
    """tokens (B, T) -> logits (B, C) and, with ``need_weights``, (B, L, h, T+1, T+1)."""

    def __init__(self, cfg: ClsEncoderConfig):
        super().__init__()
        _check_config(cfg)
        self.cfg = cfg
        d = cfg.d_model
        self.tokens = nn.Embedding(cfg.vocab_size, d)
        self.cls = nn.Parameter(torch.randn(1, 1, d))
        self.pos = nn.Parameter(torch.randn(cfg.max_len + 1, d))  # class token: 0
        self.encoder = Encoder(cfg.num_layers, d, cfg.num_heads, cfg.d_ff,
                               norm_first=cfg.norm_first)
        self.out = nn.Linear(d, cfg.num_classes)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> token embeddings (B, T, d), without positions."""
        check_tokens(tokens, self.cfg.vocab_size, self.cfg.max_len)
        return self.tokens(tokens)

    def classify(self, x: torch.Tensor, keep: torch.Tensor | None = None,
                 need_weights: bool = False):
        """x (B, T, d) token embeddings, keep (B, T) bool or None -> logits (B, C),
        weights (B, L, h, T+1, T+1) or None."""
        check_tensor(x, "x", "float")
        dims = check_shape(x, ("B", "T", self.cfg.d_model), "x")
        if x.shape[1] > self.cfg.max_len:
            raise ValueError(f"x has {x.shape[1]} positions, but the model was built for "
                             f"max_len = {self.cfg.max_len}")
        mask = None
        if keep is not None:
            check_tensor(keep, "keep", "bool")
            check_shape(keep, ("B", "T"), "keep", dims)
            cls_col = torch.ones_like(keep[:, :1])  # the class token is always there
            mask = torch.cat([cls_col, keep], 1)[:, None, None, :]  # (B, 1, 1, T+1)
        B, T, _ = x.shape
        z = torch.cat([self.cls.expand(B, 1, -1), x], 1) + self.pos[: T + 1]  # (B, T+1, d)
        z, weights = self.encoder(z, mask, need_weights)
        logits = self.out(z[:, 0])  # the class token's output -> (B, C)
        return logits, (torch.stack(weights, 1) if need_weights else None)

    def forward(self, tokens: torch.Tensor, keep: torch.Tensor | None = None,
                need_weights: bool = False):
        """tokens (B, T) -> logits (B, C), weights (B, L, h, T+1, T+1) or None."""
        return self.classify(self.embed(tokens), keep, need_weights)
