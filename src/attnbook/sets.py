"""Attention over sets (chapter 10): the Set Transformer's blocks (Lee et al. 2019) and
the odd-one-out model for sets of digit images.

Shapes (``book/notation.md``): B sets of N elements, d model size, k seed vectors.
Self-attention without position embeddings is permutation equivariant: permuting the
elements of a set permutes the outputs the same way. Pooling by attention (``PMA``)
lets k learned seed vectors attend over the set, so the pooled result is permutation
invariant, like a mean, but it can weigh the elements.

- ``MAB``: multihead attention block, H = LN(X + MHA(X, Y, Y)), out = LN(H + FFN(H));
  ``SAB`` (self-attention, X = Y) is chapter 9's post-LN ``EncoderLayer``;
- ``PMA``: pooling by multihead attention, MAB(S, Z) with learned seeds S (k, d);
- ``OddOneOut``: embeds each 8 x 8 image alone, then ``kind="attention"`` (two SABs and
  a PMA) or ``kind="mean"`` (a mean-pool, no attention), then points at the element
  that matches the pooled summary least: logits (B, N) over the set.
"""

import torch
from torch import nn

from attnbook.multihead import MultiHeadAttention
from attnbook.shapes import check_positive_int, check_tensor
from attnbook.transformer import EncoderLayer, FeedForward


def _check_set(x: torch.Tensor, name: str = "x", d: int | None = None) -> None:
    """A batch of sets (B, N, d) with at least one element, else a clear error."""
    check_tensor(x, name, "float")
    if x.dim() != 3:
        raise ValueError(f"{name} should have 3 dimensions (B, N, d), got shape "
                         f"{tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} is an empty set (N = 0, shape {tuple(x.shape)}): there is "
                         f"nothing to attend to or pool")
    if d is not None and x.shape[2] != d:
        raise ValueError(f"{name} has {x.shape[2]} features, but this module was built for "
                         f"d_model={d}")
    if x.dtype != torch.float32:
        raise TypeError(f"{name} should be float32 like the module's weights, got {x.dtype}; "
                        f"convert it with {name}.float()")


def _check_sizes(d_model, num_heads, d_ff) -> None:
    for value, name in ((d_model, "d_model"), (num_heads, "num_heads"), (d_ff, "d_ff")):
        check_positive_int(value, name)
    if d_model % num_heads:
        raise ValueError(f"d_model = {d_model} is not divisible by num_heads = {num_heads}")


class MAB(nn.Module):
    """Multihead attention block: queries X (B, T, d) attend over Y (B, S, d)."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int):
        super().__init__()
        _check_sizes(d_model, num_heads, d_ff)
        self.d_model = d_model
        self.attn = MultiHeadAttention(d_model, num_heads)
        self.ff = FeedForward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, y: torch.Tensor, need_weights: bool = False):
        """x (B, T, d), y (B, S, d) -> (B, T, d), weights (B, h, T, S) or None."""
        _check_set(x, "x", self.d_model)
        _check_set(y, "y", self.d_model)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y should hold the same number of sets B, got x "
                             f"{tuple(x.shape)} and y {tuple(y.shape)}")
        a, w = self.attn(x, y, y, need_weights=need_weights)
        h = self.norm1(x + a)
        return self.norm2(h + self.ff(h)), w


class PMA(nn.Module):
    """Pooling by multihead attention: k learned seeds attend over the set (B, N, d)
    -> (B, k, d), weights (B, h, k, N)."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, num_seeds: int = 1):
        super().__init__()
        _check_sizes(d_model, num_heads, d_ff)
        check_positive_int(num_seeds, "num_seeds")
        self.seeds = nn.Parameter(0.1 * torch.randn(1, num_seeds, d_model))
        self.mab = MAB(d_model, num_heads, d_ff)

    def forward(self, z: torch.Tensor, need_weights: bool = False):
        _check_set(z, "z", self.mab.d_model)
        return self.mab(self.seeds.expand(z.shape[0], -1, -1), z, need_weights)


class OddOneOut(nn.Module):
    """Point at the odd image of a set: images (B, N, H, W) -> logits (B, N).

    Each image is embedded alone by a small MLP; ``kind="attention"``: two
    self-attention blocks let the elements compare themselves with one another and a
    PMA pools the set; ``kind="mean"``: the summary is the mean of the embeddings. The
    logit of element i is the scaled dot product of the summary's query with i's key.
    """

    def __init__(self, pixels: int = 64, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 128, kind: str = "attention"):
        super().__init__()
        if kind not in ("attention", "mean"):
            raise ValueError(f"kind should be 'attention' or 'mean', got {kind!r}")
        check_positive_int(pixels, "pixels")
        _check_sizes(d_model, num_heads, d_ff)
        self.pixels, self.kind, self.d_model = pixels, kind, d_model
        self.embed = nn.Sequential(nn.Linear(pixels, d_model), nn.ReLU(),
                                   nn.Linear(d_model, d_model))
        if kind == "attention":
            self.blocks = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff)
                                        for _ in range(2))  # SAB = post-LN encoder layer
            self.pool = PMA(d_model, num_heads, d_ff)
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_tensor(images, "images", "float")
        if images.dim() != 4:
            raise ValueError(f"images should have 4 dimensions (B, N, H, W), got shape "
                             f"{tuple(images.shape)}")
        if images.shape[1] == 0:
            raise ValueError("images is an empty set (N = 0): there is no element to point at")
        B, N = images.shape[:2]
        if images.dtype != torch.float32:
            raise TypeError(f"images should be float32 like the model's weights, got "
                            f"{images.dtype}; convert them with images.float()")
        if images.shape[2] * images.shape[3] != self.pixels:
            raise ValueError(f"images have {images.shape[2]} x {images.shape[3]} pixels, but "
                             f"this model was built for pixels={self.pixels}")
        z = self.embed(images.flatten(2))  # (B, N, d): each image alone
        if self.kind == "attention":
            for block in self.blocks:
                z, _ = block(z)  # (B, N, d): no positions, so permutation equivariant
            summary, _ = self.pool(z)  # (B, 1, d)
        else:
            summary = z.mean(1, keepdim=True)  # (B, 1, d)
        q, k = self.W_q(summary), self.W_k(z)  # (B, 1, d), (B, N, d)
        return -(q @ k.transpose(1, 2)).squeeze(1) / self.d_model**0.5  # (B, N): least alike
