"""The order task of chapter 7: does token A come before token B?

Every sequence holds token A (id 0) once, token B (id 1) once, and ``length - 2``
filler tokens (ids ``2 .. num_tokens-1``). The label is 1 when A comes first.
Sequences come in pairs: rows 2k and 2k+1 are the same sequence with A and B
swapped, so they hold the same multiset of tokens with opposite labels (row 2k is
the positive). A model that ignores order gives both rows of a pair the same
answer and is right on exactly half of any set of pairs: chance, by construction.

    >>> batch = make_order_batch(4, length=6, num_tokens=5, seed=0)
    >>> batch.tokens.shape, batch.labels.tolist()
    (torch.Size([4, 6]), [1, 0, 1, 0])
"""

from dataclasses import dataclass

import torch

from attnbook.data._random import _generator

TOKEN_A, TOKEN_B = 0, 1


@dataclass(frozen=True)
class OrderBatch:
    """tokens (B, T) long, labels (B,) long (1: A before B), pos_a and pos_b (B,) long."""

    tokens: torch.Tensor
    labels: torch.Tensor
    pos_a: torch.Tensor
    pos_b: torch.Tensor

    def to(self, device) -> "OrderBatch":
        return OrderBatch(self.tokens.to(device), self.labels.to(device),
                          self.pos_a.to(device), self.pos_b.to(device))


def make_order_batch(n: int, length: int = 8, num_tokens: int = 8, seed: int | None = None,
                     generator: torch.Generator | None = None) -> OrderBatch:
    """``n`` sequences (n even: n/2 pairs) of ``length`` tokens; label: A before B.

    The two special positions of a pair are uniform over the ordered pairs of
    distinct positions; fillers are uniform over ids 2 .. num_tokens-1.
    Pass ``seed`` for a fixed set (e.g. the test set) or ``generator`` to draw
    fresh batches from one stream during training.
    """
    for value, name in ((n, "n"), (length, "length"), (num_tokens, "num_tokens")):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be an int, got {type(value).__name__}")
    if n < 2 or n % 2:
        raise ValueError(f"n should be even and >= 2 (sequences come in pairs), got {n}")
    if length < 2:
        raise ValueError(f"length should be >= 2 (room for A and B), got {length}")
    if num_tokens < 3:
        raise ValueError(f"num_tokens should be >= 3 (A, B and a filler), got {num_tokens}")
    generator = _generator(seed, generator)
    pairs = n // 2
    tokens = torch.randint(2, num_tokens, (pairs, length), generator=generator)  # (n/2, T)
    # Two distinct positions, first < second, uniform over the length*(length-1)/2 choices.
    order = torch.rand(pairs, length, generator=generator).argsort(dim=1)[:, :2]
    first, second = order.min(dim=1).values, order.max(dim=1).values  # (n/2,)
    rows = torch.arange(pairs)
    positive, negative = tokens.clone(), tokens.clone()
    positive[rows, first], positive[rows, second] = TOKEN_A, TOKEN_B
    negative[rows, first], negative[rows, second] = TOKEN_B, TOKEN_A
    tokens = torch.stack([positive, negative], dim=1).reshape(n, length)  # rows 2k, 2k+1
    labels = torch.tensor([1, 0]).repeat(pairs)
    pos_a = torch.stack([first, second], dim=1).reshape(n)
    pos_b = torch.stack([second, first], dim=1).reshape(n)
    return OrderBatch(tokens, labels, pos_a, pos_b)
