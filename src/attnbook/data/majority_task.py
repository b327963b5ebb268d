"""The majority task of chapter 12: is the sequence mostly small tokens or mostly large?

A sequence of ``length`` (odd) random tokens with ids ``0 .. num_tokens-1``; the label
is 1 when more than half of them are "small" (id < num_tokens // 2), else 0. Every
position counts the same: a mean of the token embeddings (a bag of words) is all a
model needs, and no single position decides the answer.

    >>> batch = make_majority_batch(4, length=9, num_tokens=6, seed=0)
    >>> batch.tokens.shape, batch.labels.shape
    (torch.Size([4, 9]), torch.Size([4]))
"""

from dataclasses import dataclass

import torch

from attnbook.data._random import _generator
from attnbook.shapes import check_positive_int


@dataclass(frozen=True)
class MajorityBatch:
    """tokens (B, T) long, labels (B,) long (1: mostly small ids)."""

    tokens: torch.Tensor
    labels: torch.Tensor


def make_majority_batch(n: int, length: int = 15, num_tokens: int = 10,
                        seed: int | None = None,
                        generator: torch.Generator | None = None) -> MajorityBatch:
    """``n`` sequences of ``length`` tokens (odd, so there is no tie) and their labels.

    Pass ``seed`` for a fixed set or ``generator`` to draw fresh batches from one stream.
    """
    check_positive_int(n, "n")
    check_positive_int(length, "length")
    check_positive_int(num_tokens, "num_tokens", minimum=2)
    if length % 2 == 0:
        raise ValueError(f"length should be odd (no tie between small and large), got "
                         f"{length}")
    generator = _generator(seed, generator)
    tokens = torch.randint(num_tokens, (n, length), generator=generator)  # (B, T)
    small = (tokens < num_tokens // 2).sum(1)  # (B,)
    return MajorityBatch(tokens, (2 * small > length).long())
