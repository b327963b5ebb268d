"""A small training loop shared by the chapters: progress bar and history, nothing hidden.

The chapter writes the step (forward, loss, backward, update) where the reader
sees it; ``train_steps`` only repeats it, shows progress and records the metrics.
"""

import math
from collections.abc import Callable

import matplotlib.pyplot as plt
from tqdm import tqdm  # plain text bar: renders the same in a notebook, a terminal and the book

from attnbook.shapes import check_positive_int

History = dict[str, list[float]]


def train_steps(step: Callable[[int], dict[str, float]], num_steps: int,
                desc: str = "training", log_every: int = 1,
                progress: bool = True) -> History:
    """Call ``step(i)`` for ``i`` in ``range(num_steps)``; it returns its metrics as floats.

    Returns the history: a list per metric, one entry every ``log_every`` steps
    (plus ``"step"``, the step numbers). Every list lines up with ``"step"``: a metric
    that ``step`` returns only on some logged steps (an evaluation every so often) is
    ``nan`` on the others, which plots as a gap.
    """
    if not callable(step):
        raise TypeError(f"step should be a function step(i) -> dict of metrics, "
                        f"got {type(step).__name__}")
    check_positive_int(num_steps, "num_steps")
    check_positive_int(log_every, "log_every")
    history: History = {"step": []}
    bar = tqdm(range(num_steps), desc=desc, disable=not progress, mininterval=1.0)
    for i in bar:
        metrics = step(i)
        if not isinstance(metrics, dict):
            raise TypeError(f"step() should return a dict of metrics, got {type(metrics).__name__}")
        if i % log_every == 0 or i == num_steps - 1:
            if "step" in metrics:
                raise ValueError("step() should not return a metric named 'step': the "
                                 "history keeps the step numbers under that name")
            logged = len(history["step"])
            history["step"].append(i)
            for key, value in metrics.items():  # a new metric: nan on the earlier steps
                history.setdefault(key, [math.nan] * logged).append(float(value))
            for values in history.values():  # a missing one: nan on this step
                if len(values) == logged:
                    values.append(math.nan)
            bar.set_postfix({k: f"{float(v):.3g}" for k, v in metrics.items()}, refresh=False)
    return history


def plot_history(histories: dict[str, History], metric: str = "loss", ax=None,
                 logy: bool = False):
    """Plot one metric of several runs against the step, one line per run."""
    if not isinstance(histories, dict) or not all(isinstance(h, dict)
                                                  for h in histories.values()):
        raise TypeError("histories should be a dict {run name: history}, e.g. "
                        "{'adam': train_steps(...)}")
    if not histories:
        raise ValueError("histories is empty: give at least one run")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for name, history in histories.items():
        if metric not in history:
            raise ValueError(f"metric {metric!r} is not in run {name!r}; it has "
                             f"{sorted(history)}")
        ax.plot(history["step"], history[metric], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax
