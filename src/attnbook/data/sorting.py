"""The sorting task of chapter 10's pointer network: n numbers drawn uniformly from
[0, 1); the answer is the list of their positions in increasing order of value.

    >>> batch = make_sort_batch(2, length=4, seed=0)
    >>> batch.values.shape, batch.order.shape
    (torch.Size([2, 4]), torch.Size([2, 4]))
    >>> bool((batch.values.gather(1, batch.order).diff(dim=1) > 0).all())
    True
"""

from dataclasses import dataclass

import torch

from attnbook.data._random import _generator
from attnbook.shapes import check_positive_int


@dataclass(frozen=True)
class SortBatch:
    """values (B, n) float; order (B, n) long: position of the smallest, then the next..."""

    values: torch.Tensor
    order: torch.Tensor


def make_sort_batch(batch_size: int, length: int = 10, seed: int | None = None,
                    generator: torch.Generator | None = None) -> SortBatch:
    """``batch_size`` sequences of ``length`` numbers uniform in [0, 1) and their sorting
    order. Pass ``seed`` for a fixed set or ``generator`` for fresh training batches."""
    check_positive_int(batch_size, "batch_size")
    check_positive_int(length, "length")
    generator = _generator(seed, generator)
    values = torch.rand(batch_size, length, generator=generator)  # (B, n)
    return SortBatch(values, values.argsort(dim=1))
