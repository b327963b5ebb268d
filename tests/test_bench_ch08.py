"""bench/ch08_seeds.py must train chapter 8's look-up reader the way the chapter does, or
the seed study that backs the chapter's checks describes some other model."""

import inspect
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import ch08_seeds  # noqa: E402

NOTEBOOKS = [ROOT / "notebooks" / "08_multihead_attention.ipynb",
             ROOT / "notebooks" / "solutions" / "08_multihead_attention_solutions.ipynb"]


def _code(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_same_model_training_and_evaluation_as_the_notebooks(path):
    code = _code(path)
    for fn in (ch08_seeds.LookupReader, ch08_seeds.train_reader, ch08_seeds.evaluate):
        assert inspect.getsource(fn) in code, fn.__name__
    assert "V, T, D, H = 10, 12, 32, 4" in code
    assert "STEPS, BATCH, LR = 300, 128, 3e-3" in code
    assert f"make_lookup_batch(1000, T, V, seed={ch08_seeds.TEST_SEED})" in code


def test_same_ablation_and_constants_as_the_chapter():
    code = _code(NOTEBOOKS[0])
    assert inspect.getsource(ch08_seeds.ablated_accuracy) in code
    assert (ch08_seeds.V, ch08_seeds.T, ch08_seeds.D, ch08_seeds.H) == (10, 12, 32, 4)
    assert (ch08_seeds.STEPS, ch08_seeds.BATCH, ch08_seeds.LR) == (300, 128, 3e-3)
