"""The 8x8 digits bundled with scikit-learn (1,797 images, nothing is downloaded), a
fixed train/test split, and the digit sets of chapter 10: nine images of one class and
one of another, where the task is to point at the odd one out.

    >>> split = load_digits_split(seed=0)
    >>> split.train_images.shape, split.test_images.shape
    (torch.Size([1347, 8, 8]), torch.Size([450, 8, 8]))
"""

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from attnbook.shapes import check_positive_int, check_shape, check_tensor


@dataclass(frozen=True)
class DigitsSplit:
    """Images (N, 8, 8) float in [0, 1] and labels (N,) long, split into train and test."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


@functools.cache
def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The file behind ``sklearn.datasets.load_digits``, read without importing
    scikit-learn (which takes seconds): 1,797 rows of 64 pixels (0..16) and the label."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the digits come with scikit-learn: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    data = np.loadtxt(path, delimiter=",", dtype=np.float32)  # (N, 65)
    images = torch.from_numpy(data[:, :-1]).reshape(-1, 8, 8) / 16.0  # (N, 8, 8)
    return images, torch.from_numpy(data[:, -1]).long()  # (N,)


def load_digits_split(test_size: int = 450, seed: int = 0) -> DigitsSplit:
    """The bundled digits, pixels scaled from 0..16 to [0, 1], with ``test_size`` images
    held out at random (a fixed permutation drawn from ``seed``)."""
    check_positive_int(test_size, "test_size")
    check_positive_int(seed, "seed", minimum=0)
    images, labels = _load_digits()
    if test_size >= len(labels):
        raise ValueError(f"test_size should be below the {len(labels)} images, got {test_size}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    test, train = order[:test_size], order[test_size:]
    return DigitsSplit(images[train], labels[train], images[test], labels[test])


@dataclass(frozen=True)
class DigitSets:
    """sets (n, N, 8, 8): N images each; odd (n,) long: the position of the odd image;
    classes (n, 2) long: the majority class and the odd image's class."""

    sets: torch.Tensor
    odd: torch.Tensor
    classes: torch.Tensor


def make_digit_sets(images: torch.Tensor, labels: torch.Tensor, n: int, set_size: int = 10,
                    seed: int = 0) -> DigitSets:
    """``n`` sets of ``set_size`` images drawn from ``images``/``labels``: ``set_size - 1``
    of one class and one of another class, at a random position.

    Draw the training sets from the training images and the test sets from the test
    images, so that no test image was seen in training.
    """
    check_tensor(images, "images", "float")
    check_tensor(labels, "labels", "int")
    dims = check_shape(images, ("M", "H", "W"), "images")
    check_shape(labels, ("M",), "labels", dims)
    check_positive_int(n, "n")
    check_positive_int(set_size, "set_size", minimum=2)
    check_positive_int(seed, "seed", minimum=0)
    if labels.numel() and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"labels should be digit classes 0..9, got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    classes = labels.unique()
    by_class = {int(c): (labels == c).nonzero().squeeze(1) for c in classes}
    if len(classes) < 2 or min(len(v) for v in by_class.values()) < set_size - 1:
        raise ValueError(f"images/labels need at least two classes with {set_size - 1} images "
                         f"each to build sets of size {set_size}")
    g = torch.Generator().manual_seed(seed)
    sets, odd, pairs = [], torch.randint(set_size, (n,), generator=g), []
    for i in range(n):
        pick = torch.randperm(len(classes), generator=g)[:2]
        major, minor = int(classes[pick[0]]), int(classes[pick[1]])
        pool = by_class[major]
        members = pool[torch.randperm(len(pool), generator=g)[: set_size - 1]].tolist()
        other = by_class[minor]
        members.insert(int(odd[i]), int(other[torch.randint(len(other), (1,), generator=g)]))
        sets.append(images[members])
        pairs.append((major, minor))
    return DigitSets(torch.stack(sets), odd, torch.tensor(pairs))
