"""The pointer network of chapter 10 (Vinyals et al. 2015): the attention weights over
the input positions *are* the output. Trained here to sort numbers.

Shapes (``book/notation.md``): B sequences of n numbers, d model size; at step t the
decoder scores every input position, ``scores`` (B, T, n), T = n output steps.

The encoder embeds each number and reads the set with chapter 9's encoder (no
positions: the order of the input does not matter for sorting). The decoder's query at
step t comes from the element pointed at in step t - 1 (a learned start vector at t = 0);
additive scores u_tj = v . tanh(W_1 e_j + W_2 q_t) as in the paper; positions already
chosen are masked, so every answer is a permutation.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from attnbook.shapes import check_positive_int, check_tensor
from attnbook.transformer import Encoder


@dataclass
class PointerConfig:
    """Settings of the pointer network."""

    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 2

    def __post_init__(self):
        for name in ("d_model", "num_heads", "d_ff", "num_layers"):
            check_positive_int(getattr(self, name), name)
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model = {self.d_model} is not divisible by num_heads = "
                             f"{self.num_heads}")


def _check_values(values) -> None:
    check_tensor(values, "values", "float")
    if values.dim() != 2 or values.shape[1] == 0:
        raise ValueError(f"values should have shape (B, n) with n >= 1 numbers, got "
                         f"{tuple(values.shape)}")
    if values.dtype != torch.float32:
        raise TypeError(f"values should be float32 like the model's weights, got "
                        f"{values.dtype}; convert them with values.float()")
    if values.isnan().any():
        raise ValueError("values contains nan: a nan has no place in a sorted order")


class PointerNetwork(nn.Module):
    """``forward(values, order)`` (teacher forcing) -> scores (B, n, n) over the input
    positions; ``decode(values)`` (greedy) -> order (B, n), scores (B, n, n)."""

    def __init__(self, cfg: PointerConfig):
        super().__init__()
        if not isinstance(cfg, PointerConfig):
            raise TypeError(f"cfg should be a PointerConfig, got {type(cfg).__name__}")
        d = cfg.d_model
        self.embed = nn.Sequential(nn.Linear(1, d), nn.ReLU(), nn.Linear(d, d))
        self.encoder = Encoder(cfg.num_layers, d, cfg.num_heads, cfg.d_ff, norm_first=True)
        self.start = nn.Parameter(torch.zeros(d))
        self.query = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.W1, self.W2 = nn.Linear(d, d, bias=False), nn.Linear(d, d)
        self.v = nn.Linear(d, 1, bias=False)

    def _encode(self, values: torch.Tensor) -> torch.Tensor:
        """values (B, n) -> e (B, n, d)."""
        _check_values(values)
        e, _ = self.encoder(self.embed(values[..., None]))
        return e

    def _point(self, e: torch.Tensor, prev: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """Scores (B, T, n) for queries built from ``prev`` (B, T, d); ``chosen`` (B, T, n)
        True where a position is already taken (scored -inf)."""
        q = self.query(prev)  # (B, T, d)
        u = self.v(torch.tanh(self.W1(e)[:, None] + self.W2(q)[:, :, None])).squeeze(-1)
        return u.masked_fill(chosen, float("-inf"))  # (B, T, n)

    def forward(self, values: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: step t is told the true previous choices. -> scores (B, n, n)."""
        e = self._encode(values)
        B, n, d = e.shape
        check_tensor(order, "order", "int")
        if order.shape != (B, n) or (order.sort(1).values != torch.arange(n)).any():
            raise ValueError(f"order should hold a permutation of 0..{n - 1} per row, shape "
                             f"{(B, n)}, got shape {tuple(order.shape)}")
        picked = e.gather(1, order[..., None].expand(B, n, d))  # (B, n, d) in output order
        prev = torch.cat([self.start.expand(B, 1, d), picked[:, :-1]], dim=1)  # (B, n, d)
        taken = F.one_hot(order, n).bool().cumsum(1) > 0  # (B, T, n) taken after step t
        chosen = torch.cat([torch.zeros(B, 1, n, dtype=torch.bool), taken[:, :-1]], dim=1)
        return self._point(e, prev, chosen)

    @torch.no_grad()
    def decode(self, values: torch.Tensor):
        """Greedy: point at the best free position, n times. -> order (B, n), scores."""
        e = self._encode(values)
        B, n, d = e.shape
        prev = self.start.expand(B, 1, d)
        chosen = torch.zeros(B, 1, n, dtype=torch.bool)
        order, scores = [], []
        for _ in range(n):
            s = self._point(e, prev, chosen)  # (B, 1, n)
            j = s.argmax(-1)  # (B, 1)
            order.append(j)
            scores.append(s)
            chosen = chosen | F.one_hot(j, n).bool()
            prev = e.gather(1, j[..., None].expand(B, 1, d))
        return torch.cat(order, 1), torch.cat(scores, 1)


def pointer_loss(scores: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the right input position at every step, averaged over steps and
    sequences: scores (B, T, n) (-inf where masked), order (B, T) long -> scalar."""
    check_tensor(scores, "scores", "float")
    check_tensor(order, "order", "int")
    if scores.dim() != 3 or order.shape != scores.shape[:2]:
        raise ValueError(f"scores should be (B, T, n) and order (B, T), got "
                         f"{tuple(scores.shape)} and {tuple(order.shape)}")
    if order.numel() and (order.min() < 0 or order.max() >= scores.shape[2]):
        raise ValueError(f"order should hold positions in 0..{scores.shape[2] - 1}")
    return F.cross_entropy(scores.flatten(0, 1), order.flatten())
