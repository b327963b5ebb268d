"""Figures that read at page width: checks on every matplotlib figure a notebook shows.

A figure fails for any of these problems, each reported in words:

- **overlapping text**: two texts (tick labels, titles, axis labels, legend entries,
  annotations, the suptitle) whose boxes overlap by more than ``TOLERANCE_PT`` points
  each way. Rotated text is measured along its rotation, so slanted tick labels that
  only share a corner of their axis-aligned boxes do not count.
- **text outside the figure**: a text that runs past the edge of the image the reader
  gets. Jupyter saves a figure with a tight box (``bbox_inches="tight"``), which grows
  the image to hold every text, so in a notebook this catches only text kept out of the
  layout; without a tight box it is any text past the figure's edge.
- **text too small at page width**: an image wider than the page column
  (``PAGE_WIDTH_PX``, the book's column at a 1280-px window) is shrunk to fit, and its
  text with it; every text must stay at least ``MIN_TEXT_PX`` pixels high (7 pt at the
  figure's 100 dpi). A figure grown by a tight box counts at its grown width.
- **an unlabelled axis**: an axes that plots data (lines, markers, bars, patches,
  collections, images) and shows tick labels on an axis without naming that axis.
  Exempt: an axis without visible tick labels (an image with its ticks turned off, the
  inner panels of a grid with shared axes, an axis switched off as in the diagrams of
  ``attnbook.diagrams``), colour bars, and an axis named by the figure's
  ``supxlabel``/``supylabel``.
- **a colour-mapped image without a scale**: an ``imshow``/``matshow``/``pcolormesh``
  of numbers through a colour map with neither a colour bar for it (a colour bar of the
  same colour map and limits counts, as in a grid of maps with one shared bar) nor a
  stated scale. A figure states a scale by writing the values in at least half of the
  cells, or by giving the image a ``gid`` that starts with ``"scale:"`` and says where
  the scale is stated (``ax.imshow(img, gid="scale: a picture; dark is ink")``, or
  ``attnbook.plotting.state_scale``). RGB images are pictures and need no scale.
- **a legend over the data**: a legend inside the axes whose box crosses a plotted
  line, holds a marker, or covers a bar, patch or image.

Two ways to use it:

- ``python tests/figure_checks.py notebooks/03_queries_keys_values.ipynb ...`` executes
  each notebook and prints notebook, cell, figure and problem; exit status 1 on any.
- ``ATTNBOOK_CHECK_FIGURES=raise PYTHONSTARTUP=tests/figure_hook.py`` in the
  environment of a Jupyter kernel (``make test-notebooks`` sets both): a figure with a
  problem raises ``FigureProblem`` in the cell that drew it, so nbval fails that cell.

In a kernel a figure is checked when ``plt.show()`` shows it and, for figures left
open, at the end of the cell that drew them (before the inline backend shows them).
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
import weakref
from pathlib import Path

import numpy as np

TOLERANCE_PT = 1.5  # overlaps of a pixel or two are invisible
PAGE_WIDTH_PX = 690  # the book's page column at a 1280-px window (images: 1 px per px)
MIN_TEXT_PX = 9.7  # 7 pt at 100 dpi: smaller than this is hard to read on the page
MARKER = "FIGURE PROBLEM: "  # how a problem is printed in "report" mode


class FigureProblem(AssertionError):
    """A figure that does not read at page width; the message lists its problems."""

    def _render_traceback_(self):  # IPython: the problems, not a traceback
        return [f"FigureProblem: {line}" if i == 0 else line
                for i, line in enumerate(str(self).split("\n"))]


# ---------------------------------------------------------------------------- geometry

def _text_corners(text, renderer) -> np.ndarray:
    """The four display-space corners of a text's box, along its rotation."""
    from matplotlib.transforms import Affine2D
    try:
        _, _, ((x_box, y_box), (w, h)) = text._get_layout(renderer)
        x, y = text.get_transform().transform(
            (float(text.convert_xunits(text._x)), float(text.convert_yunits(text._y))))
        corners = Affine2D().rotate_deg(text.get_rotation()).translate(x + x_box, y + y_box)
        return corners.transform([(0, 0), (w, 0), (w, h), (0, h)])
    except Exception:  # private layout changed: fall back to the axis-aligned box
        b = text.get_window_extent(renderer)
        return np.array([(b.x0, b.y0), (b.x1, b.y0), (b.x1, b.y1), (b.x0, b.y1)])


def _clip(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of convex polygon ``subject`` inside convex ``clipper``."""
    if _area(clipper) < 0:
        clipper = clipper[::-1]
    out = list(subject)
    for a, b in zip(clipper, np.roll(clipper, -1, axis=0), strict=True):
        inp, out = out, []
        if not inp:
            break

        def inside(p, a=a, b=b):
            return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0

        for p, q in zip(inp, inp[1:] + inp[:1], strict=True):
            if inside(q):
                if not inside(p):
                    out.append(_cross_point(p, q, a, b))
                out.append(q)
            elif inside(p):
                out.append(_cross_point(p, q, a, b))
    return np.array(out)


def _cross_point(p, q, a, b):
    d1, d2 = q - p, b - a
    denom = d1[0] * d2[1] - d1[1] * d2[0]
    t = ((a[0] - p[0]) * d2[1] - (a[1] - p[1]) * d2[0]) / denom
    return p + t * d1


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _min_width(poly: np.ndarray) -> float:
    """The smallest width of a convex polygon: how deep an overlap goes."""
    if len(poly) < 3 or abs(_area(poly)) < 1e-9:
        return 0.0
    widths = []
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        edge = b - a
        length = np.hypot(*edge)
        if length < 1e-9:
            continue
        normal = np.array([-edge[1], edge[0]]) / length
        widths.append(float(np.max(np.abs((poly - a) @ normal))))
    return min(widths) if widths else 0.0


def _overlap_depth(p: np.ndarray, q: np.ndarray) -> float:
    return _min_width(_clip(p, q))


# ------------------------------------------------------------------------------ checks

def _describe_text(text) -> str:
    s = " ".join(text.get_text().split())
    return repr(s if len(s) <= 40 else s[:37] + "...")


def _name_figure(fig) -> str:
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and sup.get_text():
        return f"figure {_describe_text(sup)}"
    titles = [ax.get_title() or ax.get_title("left") for ax in fig.axes]
    titles = [t for t in titles if t]
    number = getattr(fig, "number", None)
    name = "figure" if number is None else f"figure {number}"
    if titles:
        name += " (" + ", ".join(repr(t) for t in titles[:3]) + (", ..." if len(titles) > 3
                                                                 else "") + ")"
    return name


@contextlib.contextmanager
def _recording_drawn_texts():
    """Record every Text that draws itself (visible, non-empty, inside its axis' view)."""
    from matplotlib.text import Text
    drawn = {}
    original = Text.draw

    def draw(self, renderer):
        if self.get_visible() and self.get_text() and self.get_alpha() != 0:
            drawn[id(self)] = self
        return original(self, renderer)

    Text.draw = draw
    try:
        yield drawn
    finally:
        Text.draw = original


def _draw(fig):
    """Draw ``fig`` on an Agg canvas; return the renderer and the texts drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    old_canvas = fig.canvas
    canvas = old_canvas if isinstance(old_canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    try:
        with _recording_drawn_texts() as drawn:
            canvas.draw()
        renderer = canvas.get_renderer()
    finally:
        if canvas is not old_canvas:
            fig.set_canvas(old_canvas)
    return renderer, list(drawn.values())


def figure_problems(fig, tight: bool = True) -> list[str]:
    """Every problem of ``fig`` in words (an empty list: the figure reads).

    ``tight``: the figure is saved with ``bbox_inches="tight"``, as Jupyter saves it.
    """
    renderer, texts = _draw(fig)
    tol = TOLERANCE_PT * fig.dpi / 72
    image = _saved_area(fig, renderer, tight)
    problems = _overlaps(texts, renderer, tol)
    problems += _outside(image, texts, renderer, tol)
    problems += _too_small(fig, image, texts)
    for ax in fig.axes:
        problems += _unlabelled(fig, ax, texts)
        problems += _unscaled_images(fig, ax)
    return problems + _legends_over_data(fig, renderer, tol)


def _tick_axes(fig) -> dict:
    """id(tick label) -> a name for its axis, e.g. "the x axis of axes 'loss'"."""
    names = {}
    for ax in fig.axes:
        where = f"axes {ax.get_title()!r}" if ax.get_title() else "an axes"
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for label in (tick.label1, tick.label2):
                    names[id(label)] = f"the {name} axis of {where}"
    return names


def _overlaps(texts, renderer, tol) -> list[str]:
    if not texts:
        return []
    ticks = _tick_axes(texts[0].get_figure(root=True))
    corners = [_text_corners(t, renderer) for t in texts]
    lo = np.array([c.min(axis=0) for c in corners]).reshape(-1, 2)
    hi = np.array([c.max(axis=0) for c in corners]).reshape(-1, 2)
    problems, crowded = [], {}
    for i in range(len(texts)):
        # axis-aligned boxes first: only pairs that meet there can overlap
        meet = np.all((np.minimum(hi[i], hi[i + 1:]) - np.maximum(lo[i], lo[i + 1:])) > tol,
                      axis=1)
        for j in np.flatnonzero(meet) + i + 1:
            depth = _overlap_depth(corners[i], corners[j])
            if depth <= tol:
                continue
            a, b = texts[i], texts[j]
            axis = ticks.get(id(a))
            if axis is not None and axis == ticks.get(id(b)):  # one report per axis
                crowded.setdefault(axis, []).append((a, b, depth))
                continue
            problems.append(f"text {_describe_text(a)} overlaps text {_describe_text(b)} "
                            f"(by {depth:.0f} px)")
    for axis, pairs in crowded.items():
        a, b, depth = max(pairs, key=lambda p: p[2])
        problems.append(f"tick labels of {axis} overlap ({len(pairs)} pair(s), e.g. "
                        f"{_describe_text(a)} and {_describe_text(b)} by {depth:.0f} px): "
                        f"fewer ticks, smaller or rotated labels, or a wider panel")
    return problems


def _saved_area(fig, renderer, tight):
    """The part of the figure (display pixels) that the saved image shows."""
    if not tight:
        return fig.bbox
    import matplotlib as mpl
    pad = mpl.rcParams["savefig.pad_inches"] * fig.dpi
    return fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans).padded(pad)


def _outside(image, texts, renderer, tol) -> list[str]:
    problems = []
    for t in texts:
        c = _text_corners(t, renderer)
        past = {"left": image.x0 - c[:, 0].min(), "right": c[:, 0].max() - image.x1,
                "bottom": image.y0 - c[:, 1].min(), "top": c[:, 1].max() - image.y1}
        sides = [f"{side} by {d:.0f} px" for side, d in past.items() if d > tol]
        if sides:
            problems.append(f"text {_describe_text(t)} runs off the figure ("
                            + ", ".join(sides) + ")")
    return problems


def _too_small(fig, image, texts) -> list[str]:
    if not texts:
        return []
    width = image.width  # saved at the figure's dpi: one image pixel per page pixel
    shrink = min(1.0, PAGE_WIDTH_PX / width)
    smallest = min(texts, key=lambda t: t.get_fontsize())
    px = smallest.get_fontsize() * fig.dpi / 72 * shrink
    if px >= MIN_TEXT_PX:
        return []
    why = (f"the {width:.0f}-px-wide image is shrunk to {shrink:.0%} to fit the "
           f"{PAGE_WIDTH_PX}-px page, so " if shrink < 1 else "")
    return [f"text too small at page width: {why}text {_describe_text(smallest)} "
            f"({smallest.get_fontsize():g} pt) is {px:.1f} px high, under {MIN_TEXT_PX} px "
            f"(a narrower figure, fewer panels per row, or larger text)"]


def _plots_data(ax) -> bool:
    artists = [*ax.lines, *ax.collections, *ax.images, *ax.patches]
    return any(a.get_visible() for a in artists)


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def _unlabelled(fig, ax, texts) -> list[str]:
    if not ax.get_visible() or not ax.axison or _is_colorbar(ax) or not _plots_data(ax):
        return []
    drawn = {id(t) for t in texts}
    problems = []
    for name, axis, sup in (("x", ax.xaxis, "_supxlabel"), ("y", ax.yaxis, "_supylabel")):
        if not axis.get_visible():
            continue
        shown = [t for t in axis.get_majorticklabels() + axis.get_minorticklabels()
                 if id(t) in drawn]
        if not shown:
            continue  # no scale shown on this axis: nothing to name
        if id(axis.label) in drawn:
            continue
        figure_label = getattr(fig, sup, None)
        if figure_label is not None and id(figure_label) in drawn:
            continue
        where = f"axes {ax.get_title()!r}" if ax.get_title() else "an axes"
        problems.append(f"{where} plots data but its {name} axis has no label "
                        f"(set_{name}label)")
    return problems


def _colour_mapped(ax):
    from matplotlib.collections import QuadMesh
    from matplotlib.image import AxesImage
    for artist in [*ax.images, *ax.collections]:
        if not isinstance(artist, AxesImage | QuadMesh) or not artist.get_visible():
            continue
        data = artist.get_array()
        if data is None or (np.ndim(data) == 3 and np.shape(data)[-1] in (3, 4)):
            continue  # an RGB(A) picture: its colours are the data
        yield artist


def _same_scale(a, b) -> bool:
    na, nb = a.norm, b.norm
    return (a.get_cmap().name == b.get_cmap().name and type(na) is type(nb)
            and np.allclose([na.vmin, na.vmax], [nb.vmin, nb.vmax], equal_nan=True))


def _annotated_cells(ax, image) -> int:
    data = np.ma.masked_invalid(np.asarray(image.get_array(), dtype=float))
    if data.ndim != 2:
        return 0
    x0, x1, y0, y1 = (image.get_extent() if hasattr(image, "get_extent")
                      else (*ax.get_xlim(), *ax.get_ylim()))
    inside = 0
    for t in ax.texts:
        if not t.get_visible() or not t.get_text().strip():
            continue
        x, y = t.get_position()
        if t.get_transform() != ax.transData:
            continue
        if min(x0, x1) <= x <= max(x0, x1) and min(y0, y1) <= y <= max(y0, y1):
            inside += 1
    return inside if inside * 2 >= data.count() else 0


def _unscaled_images(fig, ax) -> list[str]:
    bars = [a._colorbar.mappable for a in fig.axes if _is_colorbar(a)]
    problems = []
    for image in _colour_mapped(ax):
        if any(bar is image or _same_scale(bar, image) for bar in bars):
            continue
        if str(image.get_gid() or "").startswith("scale:"):
            continue
        if _annotated_cells(ax, image):
            continue
        where = f"axes {ax.get_title()!r}" if ax.get_title() else "an axes"
        problems.append(f"{where} shows a colour-mapped image ({image.get_cmap().name}) "
                        f"with no colour bar and no stated scale (fig.colorbar, values "
                        f"written in the cells, or gid='scale: ...')")
    return problems


def _legends_over_data(fig, renderer, tol) -> list[str]:
    problems = []
    for ax in fig.axes:
        legends = [ax.get_legend(), *fig.legends]
        for legend in legends:
            if legend is not None and legend.get_visible():
                problems += _legend_over_data(ax, legend, renderer, tol)
    return problems


def _legend_over_data(ax, legend, renderer, tol) -> list[str]:
    from matplotlib.transforms import Bbox
    box = Bbox.intersection(legend.get_window_extent(renderer).padded(-tol), ax.bbox)
    if box is None or box.width <= 0 or box.height <= 0:
        return []  # the legend is outside these axes
    covered = []
    for line in ax.lines:
        if not line.get_visible() or len(line.get_xydata()) == 0:
            continue
        path = line.get_transform().transform_path(line.get_path())
        if line.get_linestyle() in ("None", "none", "", " "):
            hit = box.count_contains(path.vertices) > 0
        else:
            hit = path.intersects_bbox(box, filled=False)
        if hit:
            covered.append(f"line {line.get_label()!r}" if not line.get_label().startswith("_")
                           else "a line")
    from matplotlib.collections import PathCollection
    for coll in ax.collections:  # markers of scatter; fills and meshes are not checked
        if not isinstance(coll, PathCollection):
            continue
        offsets = coll.get_offsets()
        if coll.get_visible() and len(offsets):
            if box.count_contains(coll.get_offset_transform().transform(offsets)):
                covered.append("markers")
    for artist in [*ax.patches, *ax.images]:
        if artist.get_visible() and artist.get_window_extent(renderer).overlaps(box):
            covered.append("bars or patches" if artist in ax.patches else "an image")
    if not covered:
        return []
    covered = list(dict.fromkeys(covered))
    where = f"axes {ax.get_title()!r}" if ax.get_title() else "an axes"
    whose = f"the legend of {where}" if legend is ax.get_legend() else f"a legend over {where}"
    return [f"{whose} covers data: " + ", ".join(covered[:4])
            + (" ..." if len(covered) > 4 else "")]


# ----------------------------------------------------------------------- in a kernel

_checked = weakref.WeakSet()


def _jupyter_saves_tight() -> bool:
    try:
        from matplotlib_inline.config import InlineBackend
    except ImportError:
        return True
    return InlineBackend.instance().print_figure_kwargs.get("bbox_inches") == "tight"


def check_figure(fig, mode: str = "raise"):
    """Check ``fig``; raise ``FigureProblem`` (mode "raise") or print (mode "report")."""
    problems = figure_problems(fig, tight=_jupyter_saves_tight())
    _checked.add(fig)
    if not problems:
        return
    name = _name_figure(fig)
    if mode == "report":
        for p in problems:
            print(f"{MARKER}{name}: {p}", file=sys.stderr)
        return
    raise FigureProblem(f"{name} does not read at page width:\n"
                        + "\n".join(f"  - {p}" for p in problems))


def _open_figures():
    pyplot = sys.modules.get("matplotlib.pyplot")
    return [] if pyplot is None else [pyplot.figure(n) for n in pyplot.get_fignums()]


class _Checker:
    """What the kernel calls: before ``plt.show()`` shows figures and at a cell's end."""

    def __init__(self, mode: str):
        self.mode = mode
        self.wrapped_show = None

    def check_all(self, extra=None):
        figures = _open_figures()
        from matplotlib.figure import Figure
        if isinstance(extra, Figure) and extra not in figures:
            figures.append(extra)
        problems = []
        for fig in figures:
            try:
                check_figure(fig, self.mode)
            except FigureProblem as e:
                problems.append(str(e))
        if problems:
            raise FigureProblem("\n".join(problems))

    def at_cell_end(self, value=None):
        """Called with the cell's last expression (displayed as usual afterwards)."""
        self.wrap_show()
        self.check_all(value)
        return value

    def wrap_show(self):
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None or getattr(pyplot.show, "_checks_figures", False):
            return
        original = pyplot.show

        def show(*args, **kwargs):
            try:
                self.check_all()
            except FigureProblem:
                original(*args, **kwargs)  # the reader still sees the faulty figure
                raise
            return original(*args, **kwargs)

        show._checks_figures = True
        show.__wrapped__ = original
        pyplot.show = show


class _AppendCheck(ast.NodeTransformer):
    """Wrap a cell's last expression as ``_checker.at_cell_end(expr)``, or append the call."""

    def visit_Module(self, node):
        call = ast.Attribute(
            value=ast.Call(func=ast.Name("__import__", ast.Load()),
                           args=[ast.Constant(__name__)], keywords=[]),
            attr="_checker_at_cell_end", ctx=ast.Load())
        if node.body and isinstance(node.body[-1], ast.Expr):
            last = node.body[-1]
            last.value = ast.Call(func=call, args=[last.value], keywords=[])
        else:
            node.body.append(ast.Expr(ast.Call(func=call, args=[], keywords=[])))
        return ast.fix_missing_locations(node)


_checker: _Checker | None = None


def _checker_at_cell_end(value=None):
    return value if _checker is None else _checker.at_cell_end(value)


def install(shell, mode: str = "raise") -> None:
    """Check every figure ``shell`` (an IPython shell) shows; see the module docstring."""
    global _checker
    if mode not in ("raise", "report"):
        raise ValueError(f"mode should be 'raise' or 'report', got {mode!r}")
    _checker = _Checker(mode)
    import matplotlib.pyplot  # noqa: F401  (so plt.show is checked from the first cell)
    _checker.wrap_show()
    if not any(isinstance(t, _AppendCheck) for t in shell.ast_transformers):
        shell.ast_transformers.append(_AppendCheck())


# ------------------------------------------------------------------------ standalone

HOOK = Path(__file__).with_name("figure_hook.py")


def check_notebook(path: Path, timeout: int = 1200) -> list[tuple[int, str]]:
    """Execute ``path`` with the checks on; return (cell index, problem) pairs."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    env = dict(os.environ, ATTNBOOK_CHECK_FIGURES="report", PYTHONSTARTUP=str(HOOK.resolve()))
    nb = nbformat.read(path, 4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    found = []
    try:
        client.execute(env=env)
    except CellExecutionError as e:
        found.append((-1, f"the notebook stopped with an error: {str(e).splitlines()[-1]}"))
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                found += [(i, line[len(MARKER):]) for line in out["text"].splitlines()
                          if line.startswith(MARKER)]
    return sorted(found, key=lambda f: f[0])


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    bad = 0
    for name in argv:
        problems = check_notebook(Path(name))
        print(f"{name}: {len(problems)} problem(s)")
        for cell, problem in problems:
            print(f"  cell {cell}: {problem}")
        bad += len(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
