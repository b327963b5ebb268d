"""Associative recall (chapter 11): a sequence of key-value pairs, then one of the keys
again; the answer is the value that came with it.

Each position holds one pair (key, value); keys within a sequence are distinct, values
are drawn freely. A model must find the one pair whose key matches the query among
``num_pairs`` — a lookup that softmax attention does sharply and a fixed-size state
(linear attention) only approximately.
"""

from dataclasses import dataclass

import torch

from attnbook.data._random import _generator
from attnbook.shapes import check_positive_int


@dataclass
class RecallBatch:
    """keys, values (B, P) integers; query (B,) one of the row's keys; target (B,) the
    value paired with it; index (B,) the pair's position."""

    keys: torch.Tensor
    values: torch.Tensor
    query: torch.Tensor
    target: torch.Tensor
    index: torch.Tensor


def make_recall_batch(batch_size: int, num_pairs: int = 32, num_keys: int = 64,
                      num_values: int = 16, seed: int | None = None,
                      generator: torch.Generator | None = None) -> RecallBatch:
    """``batch_size`` sequences of ``num_pairs`` pairs (distinct keys from
    0 .. num_keys - 1, values from 0 .. num_values - 1) and a query key from each.
    Give ``seed`` for a fixed batch or ``generator`` to draw batch after batch."""
    check_positive_int(batch_size, "batch_size")
    check_positive_int(num_pairs, "num_pairs")
    check_positive_int(num_keys, "num_keys")
    check_positive_int(num_values, "num_values")
    if num_pairs > num_keys:
        raise ValueError(f"num_pairs = {num_pairs} distinct keys need num_keys >= "
                         f"{num_pairs}, got num_keys = {num_keys}")
    generator = _generator(seed, generator)
    keys = torch.rand(batch_size, num_keys, generator=generator).argsort(-1)[:, :num_pairs]
    values = torch.randint(num_values, (batch_size, num_pairs), generator=generator)
    index = torch.randint(num_pairs, (batch_size,), generator=generator)
    rows = torch.arange(batch_size)
    return RecallBatch(keys, values, keys[rows, index], values[rows, index], index)
