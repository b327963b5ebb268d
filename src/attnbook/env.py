"""Reproducibility and device choice, in one place for every chapter."""

import os
import random

import numpy as np
import torch

from attnbook.shapes import check_device


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so a notebook repeats itself.

    It also runs PyTorch on one CPU thread. The book's models are small, so a second
    thread gains little, and one thread buys two things: results that do not depend on the
    machine's core count (two threads split sums differently, and training amplifies the
    last bit), and a proportionate slowdown on a busy machine. With several threads,
    OpenMP's workers spin while they wait, and beside other PyTorch processes (a second
    notebook, parallel tests or grading) training ran 10-70 times slower.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed should be a non-negative int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed should be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.set_num_threads(1)
    os.environ["PYTHONHASHSEED"] = str(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """The best device present: CUDA, then Apple's MPS, then the CPU.

    ``prefer="cpu"`` (or the environment variable ``ATTNBOOK_DEVICE=cpu``) forces a
    device, e.g. to compare a GPU run with a CPU one. A device this machine lacks
    (``"cuda"`` without a GPU, ``"mps"`` off a Mac) or an int (write ``"cuda:0"``) is
    refused in words: ``attnbook.shapes.check_device``.
    """
    if prefer is None:
        prefer = os.environ.get("ATTNBOOK_DEVICE") or None
        name = "ATTNBOOK_DEVICE"
    else:
        name = "prefer"
    if prefer is not None:
        return check_device(prefer, name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
