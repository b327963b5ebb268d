"""Toy word embeddings for chapter 1: a handful of words whose dimensions mean something.

Real embeddings (word2vec, GloVe) are learned from billions of words; these are
made by hand so that a reader can see *why* two vectors are close. Each word gets
a score on seven named features, plus a little seeded noise in extra dimensions so
that no two words are exactly alike.
"""

import math

import torch

from attnbook.shapes import check_positive_int

FEATURES = ("royal", "female", "person", "animal", "young", "food", "vehicle")

_WORDS = {
    #           royal female person animal young food vehicle
    "king":      (1, 0, 1, 0, 0, 0, 0),
    "queen":     (1, 1, 1, 0, 0, 0, 0),
    "prince":    (1, 0, 1, 0, 1, 0, 0),
    "princess":  (1, 1, 1, 0, 1, 0, 0),
    "man":       (0, 0, 1, 0, 0, 0, 0),
    "woman":     (0, 1, 1, 0, 0, 0, 0),
    "boy":       (0, 0, 1, 0, 1, 0, 0),
    "girl":      (0, 1, 1, 0, 1, 0, 0),
    "cat":       (0, 0, 0, 1, 0, 0, 0),
    "kitten":    (0, 0, 0, 1, 1, 0, 0),
    "dog":       (0, 0, 0, 1, 0, 0, 0),
    "puppy":     (0, 0, 0, 1, 1, 0, 0),
    "apple":     (0, 0, 0, 0, 0, 1, 0),
    "bread":     (0, 0, 0, 0, 0, 1, 0),
    "car":       (0, 0, 0, 0, 0, 0, 1),
    "bus":       (0, 0, 0, 0, 0, 0, 1),
}


def toy_word_embeddings(extra_dims: int = 4, noise: float = 0.05, seed: int = 0
                        ) -> tuple[list[str], torch.Tensor]:
    """Return ``(words, E)``: 16 words and their embeddings E of shape (16, 7 + extra_dims).

    The first seven columns are the named ``FEATURES`` (0 or 1, plus N(0, noise^2)
    jitter); ``extra_dims`` columns of pure noise follow. Deterministic given ``seed``.
    """
    check_positive_int(extra_dims, "extra_dims", minimum=0)
    check_positive_int(seed, "seed", minimum=0)
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not math.isfinite(noise):
        raise ValueError(f"noise should be a finite number >= 0, got {noise!r}")
    if extra_dims < 0 or noise < 0:
        raise ValueError(f"extra_dims and noise must be >= 0, got {extra_dims}, {noise}")
    words = list(_WORDS)
    features = torch.tensor([_WORDS[w] for w in words], dtype=torch.float32)  # (n, 7)
    g = torch.Generator().manual_seed(seed)
    padded = torch.cat([features, torch.zeros(len(words), extra_dims)], dim=1)
    return words, padded + noise * torch.randn(padded.shape, generator=g)
