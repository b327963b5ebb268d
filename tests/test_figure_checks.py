"""The figure checks (tests/figure_checks.py) can fail a figure and can pass one, and a
figure with a problem fails its cell in a real kernel under nbval."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from figure_checks import check_notebook, figure_problems

from attnbook import diagrams
from attnbook.plotting import show_heatmaps, state_scale

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def labelled_line(**kw):
    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained", **kw)
    ax.plot([0, 1, 2], [0, 1, 4])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return fig, ax


def one(problems, words):
    assert len(problems) == 1 and words in problems[0], problems


def test_a_clean_figure_passes():
    fig, ax = labelled_line()
    ax.set_title("a short title")
    assert figure_problems(fig) == []


def test_titles_that_collide_fail():
    fig, axes = plt.subplots(1, 3, figsize=(5, 2), layout="constrained", sharey=True)
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.set_title("kernel regression, bandwidth 0.1")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    problems = figure_problems(fig)
    assert len(problems) == 2, problems
    assert all("overlaps text 'kernel regression, bandwidth 0.1'" in p for p in problems)


def test_crowded_tick_labels_fail_and_slanted_ones_that_clear_pass():
    fig, ax = labelled_line()
    ticks = np.arange(0, 2.01, 0.1)
    ax.set_xticks(ticks, [f"{t:.3f}" for t in ticks])
    one(figure_problems(fig), "tick labels of the x axis of an axes overlap")
    ax.set_xticks(ticks[::4], [f"{t:.3f}" for t in ticks[::4]], rotation=45)
    assert figure_problems(fig) == []


def test_an_unlabelled_axis_fails_unless_its_ticks_are_off():
    fig, ax = labelled_line()
    ax.set_ylabel("")
    one(figure_problems(fig), "its y axis has no label")
    ax.set_yticks([])
    assert figure_problems(fig) == []


def test_a_figure_label_names_the_axes_of_every_panel():
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.5), layout="constrained")
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("step")
    assert len(figure_problems(fig)) == 2
    fig.supylabel("loss")
    assert figure_problems(fig) == []


def test_a_colour_mapped_image_needs_a_colour_bar_or_a_stated_scale():
    fig, ax = plt.subplots(figsize=(3, 3), layout="constrained")
    image = ax.imshow(np.arange(9.0).reshape(3, 3), cmap="Blues")
    ax.set_xlabel("keys")
    ax.set_ylabel("queries")
    one(figure_problems(fig), "no colour bar and no stated scale")
    fig.colorbar(image, ax=ax)
    assert figure_problems(fig) == []


def test_written_values_or_a_declared_scale_state_the_scale():
    def heatmap():
        fig, ax = plt.subplots(figsize=(3, 3), layout="constrained")
        ax.set_xticks([])
        ax.set_yticks([])
        return fig, ax, ax.imshow(np.arange(4.0).reshape(2, 2), cmap="Blues")

    fig, ax, _ = heatmap()
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{2 * i + j:.1f}", ha="center", va="center")
    assert figure_problems(fig) == []
    fig, _, image = heatmap()
    assert len(figure_problems(fig)) == 1
    state_scale(image, "a picture: dark is ink")
    assert figure_problems(fig) == []


def test_a_picture_in_rgb_needs_no_scale():
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(np.random.default_rng(0).random((4, 4, 3)))
    ax.axis("off")
    assert figure_problems(fig) == []


def test_maps_on_different_scales_do_not_share_one_colour_bar():
    maps = np.random.default_rng(0).random((2, 3, 3)) * np.array([1, 5])[:, None, None]
    assert figure_problems(show_heatmaps(maps, titles=["a", "b"])) == []  # shared vmin, vmax
    problems = figure_problems(show_heatmaps(maps, titles=["a", "b"], vmin=None))
    one(problems, "axes 'a' shows a colour-mapped image")


def test_a_legend_over_a_line_fails_and_one_beside_the_axes_passes():
    fig, ax = labelled_line()
    ax.lines[0].set_label("growth")
    ax.legend(loc="center")
    one(figure_problems(fig), "the legend of an axes covers data: line 'growth'")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    assert figure_problems(fig) == []


def test_a_wide_figure_shrinks_its_text_below_reading_size():
    fig, ax = labelled_line()
    fig.set_size_inches(14, 3)
    one(figure_problems(fig), "shrunk to")
    fig.set_size_inches(6, 3)
    assert figure_problems(fig) == []


def test_text_past_the_edge_fails():
    fig, ax = labelled_line()
    ax.text(1.5, 0.5, "a note far to the right", transform=ax.transAxes)
    assert figure_problems(fig) == []  # a tight box grows the image to hold it
    one(figure_problems(fig, tight=False), "runs off the figure (right by")


@pytest.mark.parametrize("draw", [diagrams.draw_transformer, diagrams.draw_score_matrix,
                                  diagrams.draw_local_p_window])
def test_the_books_diagrams_pass(draw):
    assert figure_problems(draw()) == []


BAD = ("fig, ax = plt.subplots(layout='constrained')\n"
       "ax.imshow([[0.0, 1.0], [1.0, 0.0]])\n"
       "ax.set_xlabel('keys'); ax.set_ylabel('queries')\n")
GOOD = BAD + "fig.colorbar(ax.images[0])\n"
CELLS = ["import matplotlib.pyplot as plt", BAD + "plt.show()", BAD, GOOD + "plt.show()",
         GOOD + "fig", "print('still running')"]


def test_in_a_kernel_a_bad_figure_fails_its_cell_under_nbval(tmp_path):
    path = tmp_path / "figures.ipynb"
    nbformat.write(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in CELLS]), path)
    env = dict(os.environ, ATTNBOOK_CHECK_FIGURES="raise",
               PYTHONSTARTUP=str(ROOT / "tests" / "figure_hook.py"))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "--nbval-current-env",
         "-p", "no:cacheprovider", "-p", "no:xdist", "-rf", str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout
    assert "2 failed, 4 passed" in out, out
    assert "figures.ipynb::Cell 1 - " in out and "figures.ipynb::Cell 2 - " in out, out
    assert "FigureProblem: figure 1 does not read at page width" in out
    assert "no colour bar and no stated scale" in out


def test_the_standalone_checker_names_the_cells(tmp_path):
    path = tmp_path / "figures.ipynb"
    nbformat.write(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in CELLS]), path)
    found = check_notebook(path, timeout=120)
    assert [cell for cell, _ in found] == [1, 2], found
    assert all("no colour bar and no stated scale" in p for _, p in found)


def test_a_figure_legend_outside_the_axes_passes_and_one_over_them_fails():
    fig, ax = labelled_line()
    ax.lines[0].set_label("growth")
    fig.legend(loc="outside lower center")
    assert figure_problems(fig) == []
    fig.legends[0].remove()
    fig.legend(loc="center")
    one(figure_problems(fig), "a legend over an axes covers data: line 'growth'")
