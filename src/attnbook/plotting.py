"""Pictures of attention weights."""

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.cm import ScalarMappable

from attnbook.shapes import check_number, check_positive_int


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"weights should be a torch.Tensor or numpy.ndarray (or a list of them), "
                    f"got {type(x).__name__}")


def _as_maps(weights) -> list[np.ndarray]:
    """Accept one (T, S) map, a stack (n, T, S), a grid (r, c, T, S) or a list of maps."""
    if isinstance(weights, list | tuple):
        maps = [_to_numpy(w) for w in weights]
    else:
        w = _to_numpy(weights)
        if w.size == 0:
            raise ValueError(f"weights holds no numbers (shape {tuple(w.shape)}): there is "
                             f"nothing to draw")
        if w.ndim < 2 or w.ndim > 4:
            raise ValueError(f"weights should be a (T, S) matrix, a stack (n, T, S) or a grid "
                             f"(rows, cols, T, S); got shape {tuple(w.shape)}")
        maps = list(w.reshape(-1, *w.shape[-2:]))
    for i, m in enumerate(maps):
        if m.ndim != 2:
            raise ValueError(f"map {i} should be a (T, S) matrix, got shape {tuple(m.shape)}")
    return maps


def show_heatmaps(weights, xlabels: Sequence[str] | None = None,
                  ylabels: Sequence[str] | None = None, titles: Sequence[str] | None = None,
                  xlabel: str = "keys", ylabel: str = "queries", ncols: int | None = None,
                  cmap: str = "Reds", vmin: float | None = 0.0, vmax: float | None = None,
                  cell_size: float = 0.35, max_figsize: float = 7.0,
                  colorbar_label: str = "attention weight"):
    """Draw attention weights as heatmaps in a grid with one shared colour bar.

    ``weights``: one (T, S) map, a stack (n, T, S), a grid (rows, cols, T, S), or a
    list of (T, S) maps. ``xlabels`` name the S keys (tokens), ``ylabels`` the T
    queries. Returns the matplotlib ``Figure``. A ``nan`` weight is drawn as a blank cell.
    ``max_figsize`` caps the width in inches (7 in fills the book's page column), and
    ``colorbar_label`` names what the colours mean.
    """
    maps = _as_maps(weights)
    if not maps or any(m.size == 0 for m in maps):
        raise ValueError("weights holds no numbers (no map, or a map with 0 rows or columns): "
                         "there is nothing to draw")
    if ncols is not None:
        check_positive_int(ncols, "ncols")
    vmin = None if vmin is None else check_number(vmin, "vmin")
    vmax = None if vmax is None else check_number(vmax, "vmax")
    if vmin is not None and vmax is not None and not vmin < vmax:
        raise ValueError(f"vmin should be below vmax (the colour scale's ends), got vmin={vmin}, "
                         f"vmax={vmax}")
    check_number(cell_size, "cell_size", above=0)
    check_number(max_figsize, "max_figsize", above=0)
    T, S = maps[0].shape
    if any(m.shape != (T, S) for m in maps):
        raise ValueError(f"all maps should share one shape; got {[m.shape for m in maps]}")
    for labels, n, what in ((xlabels, S, "xlabels (keys)"), (ylabels, T, "ylabels (queries)")):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{what}: expected {n} labels, one per column/row, got {len(labels)}")
    if titles is not None and len(titles) != len(maps):
        raise ValueError(f"titles: expected {len(maps)} titles, one per map, got {len(titles)}")
    if ncols is None:
        ncols = np.asarray(weights).shape[1] if _is_grid(weights) else min(len(maps), 4)
    nrows = math.ceil(len(maps) / ncols)
    w = min(max(2.5, cell_size * S + 1.2), (max_figsize - 1.0) / ncols)
    h = min(max(2.2, cell_size * T + 1.0), max_figsize / ncols * max(1.0, T / max(S, 1)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols + 1.0, h * nrows),
                             squeeze=False, sharex=True, sharey=True)
    top = vmax if vmax is not None else max(float(np.nanmax(m)) for m in maps)
    for i, ax in enumerate(axes.flat):
        if i >= len(maps):
            ax.axis("off")
            continue
        im = ax.imshow(maps[i], cmap=cmap, vmin=vmin, vmax=top, aspect="auto")
        _label_axes(ax, xlabels, ylabels, i, ncols, nrows, xlabel, ylabel)
        if titles is not None:
            ax.set_title(titles[i])
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=colorbar_label)
    return fig


def state_scale(image, where: str):
    """Say where a reader finds the scale of a colour-mapped ``image`` drawn without a
    colour bar: ``where`` in words ("values written in the caption", "a picture: dark is
    ink"). Stored as the image's ``gid``, which the book's figure checks read. Returns
    ``image``."""
    if not isinstance(image, ScalarMappable):
        raise TypeError(f"image should be what imshow, matshow or pcolormesh returned (a "
                        f"colour-mapped artist), got {type(image).__name__}")
    if not isinstance(where, str) or not where.strip():
        raise ValueError(f"where should say in words where the scale is stated, got {where!r}")
    image.set_gid(f"scale: {where}")
    return image


def _is_grid(weights) -> bool:
    return isinstance(weights, torch.Tensor | np.ndarray) and weights.ndim == 4


def _label_axes(ax, xlabels, ylabels, i, ncols, nrows, xlabel, ylabel):
    row, col = divmod(i, ncols)
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), xlabels, rotation=90)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), ylabels)
    if row == nrows - 1:
        ax.set_xlabel(xlabel)
    if col == 0:
        ax.set_ylabel(ylabel)
