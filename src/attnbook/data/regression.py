"""A 1-D regression task for chapter 3: a known smooth function plus Gaussian noise.

Nothing is downloaded: the data are drawn from a seeded generator, so every run
(and every reader) sees the same points.
"""

import math
from dataclasses import dataclass

import torch

from attnbook.shapes import check_positive_int, check_tensor


def true_function(x: torch.Tensor) -> torch.Tensor:
    """The smooth function behind the data, f(x) = 2 sin(x) + x^0.8.

    It is the example of the attention-pooling section of *Dive into Deep Learning*.

    Defined for x >= 0 (x^0.8 of a negative number is not real): a negative x is
    refused. The generator draws x in [0, 5].
    """
    check_tensor(x, "x", "float")
    if (x < 0).any():
        raise ValueError(f"x should be >= 0 (f(x) = 2 sin(x) + x^0.8 is not real below 0), "
                         f"got a smallest x of {float(x[x < 0].min()):.4g}")
    return 2 * torch.sin(x) + x.clamp(min=0) ** 0.8


@dataclass
class RegressionData:
    """Train and test splits, each sorted by x.

    Shapes: x_train, y_train (S,); x_test, y_test (T,).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    noise: float

    def f(self, x: torch.Tensor) -> torch.Tensor:
        """The noise-free function the data come from."""
        return true_function(x)


def make_regression_data(n_train: int = 100, n_test: int = 100, noise: float = 0.5,
                         low: float = 0.0, high: float = 5.0, seed: int = 0) -> RegressionData:
    """Draw ``n_train + n_test`` points x ~ Uniform(low, high), y = f(x) + N(0, noise^2).

    The points are split at random into a train and a test part (so both come from
    the same distribution); each part is sorted by x, which makes heatmaps over
    training points read left to right. The same ``seed`` gives the same data.
    """
    check_positive_int(n_train, "n_train")
    check_positive_int(n_test, "n_test")
    check_positive_int(seed, "seed", minimum=0)
    for value, name in ((noise, "noise"), (low, "low"), (high, "high")):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ValueError(f"{name} should be a finite number, got {value!r}")
    if n_train < 2 or n_test < 1:
        raise ValueError(f"need n_train >= 2 and n_test >= 1, got {n_train}, {n_test}")
    if noise < 0 or not low < high:
        raise ValueError(f"need noise >= 0 and low < high, got noise={noise}, [{low}, {high}]")
    if low < 0:
        raise ValueError(f"f(x) = 2 sin(x) + x^0.8 needs x >= 0, got low={low}")
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    x = low + (high - low) * torch.rand(n, generator=g)
    y = true_function(x) + noise * torch.randn(n, generator=g)
    order = torch.randperm(n, generator=g)
    train, test = order[:n_train], order[n_train:]
    train = train[torch.argsort(x[train])]
    test = test[torch.argsort(x[test])]
    return RegressionData(x[train], y[train], x[test], y[test], noise)
