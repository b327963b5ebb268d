"""The Vision Transformer (Dosovitskiy et al. 2021) of chapter 10, for small grey images.

An image (H, W) is cut into N = (H / p)(W / p) square patches of p x p pixels, each
flattened to a vector of p^2 pixels; a linear layer embeds each patch into d features; a
learned class token is put in front; learned position embeddings are added; chapter 9's
encoder (pre-LN) reads the N + 1 tokens; the class token's output is classified.

Shapes (``book/notation.md``): B images, H x W pixels, p patch size, N patches,
d model size, h heads, C classes.

    >>> vit = ViT(ViTConfig(image_size=8, patch_size=2, num_classes=10))
    >>> logits, weights = vit(torch.rand(5, 8, 8), need_weights=True)
    >>> logits.shape, weights[-1].shape          # last layer's weights (B, h, N+1, N+1)
    (torch.Size([5, 10]), torch.Size([5, 4, 17, 17]))
"""

from dataclasses import dataclass

import torch
from torch import nn

from attnbook.shapes import check_positive_int, check_tensor
from attnbook.transformer import Encoder


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, H, W) -> (B, N, p^2): patches in reading order (left to right, then down),
    the pixels of each patch in reading order too.

    A plain ``images.reshape(B, -1, p * p)`` would be wrong: it takes p^2 consecutive
    pixels of one *row*. The rows must first be split into (H/p, p) and the columns
    into (W/p, p), and the two patch-grid axes moved in front of the in-patch axes.
    """
    check_tensor(images, "images", "float")
    p = check_positive_int(patch_size, "patch_size")
    if images.dim() != 3:
        raise ValueError(f"images should have 3 dimensions (B, H, W), got shape "
                         f"{tuple(images.shape)}")
    B, H, W = images.shape
    if H % p or W % p:
        raise ValueError(f"images of {H} x {W} pixels cannot be cut into patches of "
                         f"patch_size = {p}: H and W must both be divisible by {p}")
    x = images.reshape(B, H // p, p, W // p, p)  # (B, rows of patches, p, cols, p)
    x = x.permute(0, 1, 3, 2, 4)  # (B, H/p, W/p, p, p): the patch grid first
    return x.reshape(B, (H // p) * (W // p), p * p)  # (B, N, p^2)


@dataclass
class ViTConfig:
    """Settings of the Vision Transformer."""

    image_size: int = 8
    patch_size: int = 2
    num_classes: int = 10
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 2
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("image_size", "patch_size", "num_classes", "d_model", "num_heads",
                     "d_ff", "num_layers"):
            check_positive_int(getattr(self, name), name)
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size = {self.image_size} is not divisible by "
                             f"patch_size = {self.patch_size}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model = {self.d_model} is not divisible by num_heads = "
                             f"{self.num_heads}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout should lie in [0, 1), got {self.dropout!r}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class ViT(nn.Module):
    """Patch embedding, class token, learned positions, chapter 9's pre-LN encoder, and a
    linear head on the class token. ``forward(images)`` -> logits (B, C), weights."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        if not isinstance(cfg, ViTConfig):
            raise TypeError(f"cfg should be a ViTConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        d, N = cfg.d_model, cfg.num_patches
        self.patch_embed = nn.Linear(cfg.patch_size**2, d)  # p^2 pixels -> d
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, N + 1, d))  # learned
        self.encoder = Encoder(cfg.num_layers, d, cfg.num_heads, cfg.d_ff, cfg.dropout,
                               norm_first=True)
        self.head = nn.Linear(d, cfg.num_classes)

    def forward(self, images: torch.Tensor, need_weights: bool = False):
        """images (B, H, W) -> logits (B, C), list of L weights (B, h, N+1, N+1) or Nones.
        Token 0 is the class token; token 1 + k is patch k in reading order."""
        s = self.cfg.image_size
        check_tensor(images, "images", "float")
        if images.dim() != 3 or images.shape[1:] != (s, s):
            raise ValueError(f"images should have shape (B, {s}, {s}) for this ViT, got "
                             f"{tuple(images.shape)}")
        if images.dtype != torch.float32:
            raise TypeError(f"images should be float32 like the model's weights, got "
                            f"{images.dtype}; convert them with images.float()")
        x = self.patch_embed(patchify(images, self.cfg.patch_size))  # (B, N, d)
        cls = self.cls_token.expand(x.shape[0], 1, -1)  # (B, 1, d)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, N+1, d)
        x, weights = self.encoder(x, need_weights=need_weights)
        return self.head(x[:, 0]), weights  # the class token's output -> (B, C)
