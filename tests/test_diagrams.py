"""The book's schematic diagrams: each returns a Figure, carries its labels, renders, and
nothing in it overlaps (text inside the figure, inside its box or clear of every box)."""

import io
import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from attnbook import diagrams

# The words and shapes a reader must find in each diagram (every shape on its arrows).
EXPECTED = {
    diagrams.draw_score_matrix: [r"$Q$   (T, d)", r"$K^\top$   (d, S)", r"$QK^\top$   (T, S)",
                                 "row i: query i", "column j: key j"],
    diagrams.draw_attention_pooling: ["softmax", "(d,)", "(S, d)", "(S,)", r"$\alpha$ (S,)",
                                      "(S, d_v)", "(d_v,)"],
    diagrams.draw_scaled_dot_product_attention: [
        "(B, T, d_k)", "(B, S, d_k)", "scores (B, T, S)", "weights (B, T, S)", "(B, S, d_v)",
        "output (B, T, d_v)", r"$+\ M$", "softmax"],
    diagrams.draw_hard_vs_soft: ["scores (B, S)", r"$\alpha$ (B, S)", r"$a \sim \alpha$",
                                 "(B, d)", "no gradient through the draw: REINFORCE"],
    diagrams.draw_local_p_window: ["D", "the 2D + 1 positions scored, around round(p)",
                                   "outside: not scored,\nweight 0"],
    diagrams.draw_seq2seq_bottleneck: ["encoder", "decoder", r"$\mathbf{c}$", "one vector\n(B, H)",
                                       "source words (B, S)"],
    diagrams.draw_bahdanau_vs_luong: ["Bahdanau: look, then step", "Luong: step, then look",
                                      "(B, H)", "(B, E)", "(B, S, 2H+E)",
                                      r"$\mathbf{c}_t$ (B, 2H+E)", r"$\mathbf{s}_t$ (B, H)",
                                      r"$\mathbf{h}_t$ (B, H)"],
    diagrams.draw_self_attention: ["(B, T, d)", "Q (B, T, d_k)", "K (B, T, d_k)",
                                   "V (B, T, d_v)", "(B, T, d_v)", r"$W_q$", r"$W_k$", r"$W_v$"],
    diagrams.draw_multihead_attention: ["X (B, T, d)", "Q, K, V (B, T, d)", "(B, h, T, d_h)",
                                        "(B, T, h·d_h) = (B, T, d)", "(B, T, d)", "head 1",
                                        "head h", r"$W_o$"],
    diagrams.draw_transformer: ["masked self-attention", "cross-attention", "Add & LayerNorm",
                                "feed-forward (FFN)", "source (B, S, d)", "target (B, T, d)",
                                "memory (B, S, d)", "(B, T, d)"],
    diagrams.draw_post_ln_vs_pre_ln: ["add: x + sublayer(x)", "add: x + sublayer(LN(x))",
                                      "LayerNorm", "sublayer"],
    diagrams.draw_attention_rollout: ["[CLS]", "layer 1: A′₁ = (A₁ + I) / 2   (T, T)",
                                      "layer 2: A′₂ = (A₂ + I) / 2   (T, T)",
                                      "output of the last layer"],
}
DRAW = list(diagrams.DIAGRAMS.values())


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig):
    return [t for ax in fig.axes for t in ax.texts if t.get_text().strip()]


def _overlap(a, b, tol=1.0):
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tol) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tol)


def test_every_diagram_is_tested():
    assert set(EXPECTED) == set(DRAW)


@pytest.mark.parametrize("draw", DRAW, ids=lambda f: f.__name__)
def test_returns_a_figure_with_its_labels_and_shows_nothing(draw, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("a diagram must not show"))
    fig = draw()
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in _texts(fig)}
    missing = [label for label in EXPECTED[draw] if label not in texts]
    assert not missing, f"{draw.__name__} lacks {missing}"


@pytest.mark.parametrize("draw", DRAW, ids=lambda f: f.__name__)
def test_renders_to_png_at_the_page_width(draw):
    fig = draw()
    width, height = fig.get_size_inches()
    assert 5 <= width <= 7.01 and height <= 5.5, "the book's column is about 700 px at 100 dpi"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(buf.getvalue()) > 5_000  # something was drawn


def _layout_problems(fig):
    """What a reader would stumble over: tiny text, text cut off, across a box's edge,
    or on top of other text."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = _texts(fig)
    extents = [t.get_window_extent(renderer) for t in texts]
    boxes = [p.get_window_extent(renderer) for ax in fig.axes for p in ax.patches
             if isinstance(p, FancyBboxPatch)]
    problems = []
    for t, e in zip(texts, extents, strict=True):
        label = repr(t.get_text())
        if t.get_fontsize() < 9:
            problems.append(f"{label} is smaller than 9 pt")
        if not (fig.bbox.x0 - 1 <= e.x0 and e.x1 <= fig.bbox.x1 + 1
                and fig.bbox.y0 - 1 <= e.y0 and e.y1 <= fig.bbox.y1 + 1):
            problems.append(f"{label} is cut off")
        for b in boxes:  # a text sits inside a box or clear of it, never across its edge
            inside = b.x0 + 2 <= e.x0 and e.x1 <= b.x1 - 2 and b.y0 <= e.y0 and e.y1 <= b.y1
            if _overlap(e, b) and not inside:
                problems.append(f"{label} crosses the edge of a box")
    for (t1, e1), (t2, e2) in itertools.combinations(zip(texts, extents, strict=True), 2):
        if _overlap(e1, e2):
            problems.append(f"{t1.get_text()!r} overlaps {t2.get_text()!r}")
    return problems


@pytest.mark.parametrize("draw", DRAW, ids=lambda f: f.__name__)
def test_text_is_legible_and_nothing_overlaps(draw):
    assert _layout_problems(draw()) == []


def test_the_layout_check_catches_what_it_should():
    fig = diagrams.draw_attention_pooling()
    ax = fig.axes[0]
    ax.text(7.6, 3.9, "a label dropped on the softmax box", fontsize=10)
    ax.text(14.9, 0.2, "off the edge", fontsize=8)
    problems = _layout_problems(fig)
    assert "'a label dropped on the softmax box' crosses the edge of a box" in problems
    assert "'softmax' overlaps 'a label dropped on the softmax box'" in problems
    assert "'off the edge' is smaller than 9 pt" in problems
    assert "'off the edge' is cut off" in problems


def test_mask_option_and_bad_arguments():
    without = {t.get_text() for t in _texts(diagrams.draw_scaled_dot_product_attention(False))}
    assert r"$+\ M$" not in without and "softmax" in without
    with pytest.raises(TypeError, match="mask"):
        diagrams.draw_scaled_dot_product_attention(mask="yes")
    with pytest.raises(ValueError, match="2D \\+ 1 <= S"):
        diagrams.draw_local_p_window(S=8, p=4.0, D=4)
    with pytest.raises(ValueError, match="p should lie"):
        diagrams.draw_local_p_window(S=20, p=25.0, D=4)
    with pytest.raises(TypeError, match="S should be an int"):
        diagrams.draw_local_p_window(S=20.0)
    fig, ax = diagrams.canvas(4, 2)
    with pytest.raises(ValueError, match="side should be one of"):
        diagrams.shape_label(ax, 1, 1, "(B, T)", side="middle")


def test_local_p_window_is_centred_on_round_p():
    fig = diagrams.draw_local_p_window(S=20, p=2.2, D=3)  # window pushed inside the source
    lit = [p for p in fig.axes[0].patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb(
        diagrams.COLOURS["attn"][0])]
    assert len(lit) == 2 * 3 + 1
