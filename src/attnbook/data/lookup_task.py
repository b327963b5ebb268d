"""The two-look-up task of chapter 8: answer with the token after the marker AND the
token before it.

A sequence of ``length`` random content tokens (ids ``0 .. num_tokens-1``) holds one
marker (id ``num_tokens``) at a position ``p`` in ``1 .. length-2``; the targets are
``after`` = the token at ``p + 1`` and ``before`` = the token at ``p - 1``. Reading both
from the marker's position needs two look-ups at once, one a step ahead and one a step
back: a job for two heads.

    >>> batch = make_lookup_batch(4, length=10, num_tokens=6, seed=0)
    >>> batch.tokens.shape, batch.after.shape, batch.before.shape
    (torch.Size([4, 10]), torch.Size([4]), torch.Size([4]))
"""

from dataclasses import dataclass

import torch

from attnbook.data._random import _generator
from attnbook.shapes import check_positive_int


@dataclass(frozen=True)
class LookupBatch:
    """tokens (B, T) long; marker_pos, after, before (B,) long."""

    tokens: torch.Tensor
    marker_pos: torch.Tensor
    after: torch.Tensor
    before: torch.Tensor

    def to(self, device) -> "LookupBatch":
        return LookupBatch(*(t.to(device) for t in (self.tokens, self.marker_pos,
                                                    self.after, self.before)))


def lookup_marker_id(num_tokens: int) -> int:
    """The marker's token id: the first id after the content tokens."""
    return check_positive_int(num_tokens, "num_tokens", minimum=2)


def make_lookup_batch(n: int, length: int = 12, num_tokens: int = 10,
                      seed: int | None = None,
                      generator: torch.Generator | None = None) -> LookupBatch:
    """``n`` sequences with one marker each; targets: the tokens right after and before it.

    Pass ``seed`` for a fixed set (e.g. the test set) or ``generator`` to draw fresh
    batches from one stream during training.
    """
    for name, value in (("n", n), ("length", length), ("num_tokens", num_tokens)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be an int, got {type(value).__name__}")
    if n < 1 or length < 3 or num_tokens < 2:
        raise ValueError(f"need n >= 1, length >= 3 (a token on each side of the marker), "
                         f"num_tokens >= 2; got n={n}, length={length}, "
                         f"num_tokens={num_tokens}")
    generator = _generator(seed, generator)
    tokens = torch.randint(num_tokens, (n, length), generator=generator)  # (B, T)
    marker_pos = 1 + torch.randint(length - 2, (n,), generator=generator)  # (B,) in 1..T-2
    rows = torch.arange(n)
    after = tokens[rows, marker_pos + 1].clone()  # (B,)
    before = tokens[rows, marker_pos - 1].clone()  # (B,)
    tokens[rows, marker_pos] = lookup_marker_id(num_tokens)
    return LookupBatch(tokens, marker_pos, after, before)
