"""The random stream a data function draws from: one rule for every task generator."""

import torch

from attnbook.shapes import check_positive_int


def _generator(seed, generator) -> torch.Generator:
    """``generator`` if given (it must be a ``torch.Generator``), else a new one seeded with
    ``seed`` (an int >= 0; 0 when both are None). Giving both is an error."""
    if seed is not None and generator is not None:
        raise ValueError("give seed or generator, not both")
    if generator is None:
        seed = 0 if seed is None else check_positive_int(seed, "seed", minimum=0)
        return torch.Generator().manual_seed(seed)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator should be a torch.Generator, got {type(generator).__name__}")
    return generator
