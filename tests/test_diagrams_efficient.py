"""Chapter 11's schematic diagrams: each returns a Figure with its labels, fits the page,
and nothing in it overlaps (the same layout rules as tests/test_diagrams.py)."""

import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from attnbook import diagrams_efficient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_diagrams import _layout_problems, _texts  # noqa: E402

EXPECTED = {
    diagrams_efficient.draw_tiled_attention: [
        "scores (T, S), in (b, b) tiles", "tile (b, b)", "Q3", "K1", "now", "done",
        "m (b,): largest score so far", "acc (b, d_v): Σ exp(s − m) v",
        "output = acc / l   (b, d_v)", "hatched: future keys, skipped"],
    diagrams_efficient.draw_kv_cache: [
        "new token\nat position S", r"$q$ (1, d_h)", "k (1, d_h)", "K, V: (S + 1, d_h)",
        "output (1, d_h)", "attention of q\nto all S + 1 keys"],
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_every_diagram_is_tested():
    assert set(EXPECTED) == set(diagrams_efficient.DIAGRAMS.values())


@pytest.mark.parametrize("draw", list(EXPECTED), ids=lambda f: f.__name__)
def test_labels_page_width_and_layout(draw):
    fig = draw()
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in _texts(fig)}
    missing = [label for label in EXPECTED[draw] if label not in texts]
    assert not missing, f"{draw.__name__} lacks {missing}"
    width, height = fig.get_size_inches()
    assert 5 <= width <= 7.01 and height <= 5.5
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    assert len(buf.getvalue()) > 5_000
    assert _layout_problems(fig) == []
