"""The marker task of chapter 5: the answer lives at exactly one position.

A sequence of ``length`` random content tokens (ids ``0 .. num_tokens-1``) holds one
marker (id ``num_tokens``); the target is the token right after the marker. A model
that looks at the right position is done; one that averages over all of them is lost.

The longer variant for local attention adds a coarse *hint*: the index of the block
of ``block`` positions that holds the marker, the way a translation decoder roughly
knows where in the source it is.

    >>> batch = make_marker_batch(4, length=8, num_tokens=5, seed=0)
    >>> batch.tokens.shape, batch.targets.shape
    (torch.Size([4, 8]), torch.Size([4]))
"""

from dataclasses import dataclass

import torch

from attnbook.data._random import _generator
from attnbook.shapes import check_positive_int


@dataclass(frozen=True)
class MarkerBatch:
    """One batch: tokens (B, T) long, targets (B,) long, marker_pos (B,) long, hint (B,) or None."""

    tokens: torch.Tensor
    targets: torch.Tensor
    marker_pos: torch.Tensor
    hint: torch.Tensor | None = None

    def to(self, device) -> "MarkerBatch":
        hint = None if self.hint is None else self.hint.to(device)
        return MarkerBatch(self.tokens.to(device), self.targets.to(device),
                           self.marker_pos.to(device), hint)


def marker_id(num_tokens: int) -> int:
    """The marker's token id: the first id after the content tokens."""
    check_positive_int(num_tokens, "num_tokens")
    return num_tokens


def make_marker_batch(n: int, length: int = 16, num_tokens: int = 10,
                      block: int | None = None, seed: int | None = None,
                      generator: torch.Generator | None = None) -> MarkerBatch:
    """``n`` sequences of ``length`` tokens with one marker each; predict the token after it.

    The marker sits uniformly at positions ``0 .. length-2`` (so a token follows it).
    With ``block`` set, ``hint`` = marker position // block (the longer variant).
    Pass ``seed`` for a fixed set (e.g. the test set) or ``generator`` to draw
    fresh batches from one stream during training.
    """
    for value, name in ((n, "n"), (length, "length"), (num_tokens, "num_tokens")):
        check_positive_int(value, name)
    if block is not None:
        check_positive_int(block, "block")
    if n < 1 or length < 2 or num_tokens < 2:
        raise ValueError(f"need n >= 1, length >= 2, num_tokens >= 2; "
                         f"got n={n}, length={length}, num_tokens={num_tokens}")
    if block is not None and not 1 <= block <= length:
        raise ValueError(f"block should lie in [1, length={length}], got {block}")
    generator = _generator(seed, generator)
    tokens = torch.randint(num_tokens, (n, length), generator=generator)  # (B, T)
    marker_pos = torch.randint(length - 1, (n,), generator=generator)     # (B,)
    rows = torch.arange(n)
    targets = tokens[rows, marker_pos + 1].clone()                       # (B,)
    tokens[rows, marker_pos] = marker_id(num_tokens)
    hint = None if block is None else marker_pos // block
    return MarkerBatch(tokens, targets, marker_pos, hint)
