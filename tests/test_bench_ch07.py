"""bench/ch07_seeds.py must train chapter 7's order classifier the way the chapter does,
or the seed table that backs the chapter's headline describes some other model."""

import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import ch07_seeds  # noqa: E402


def _chapter_code() -> str:
    nb = json.loads((ROOT / "notebooks" / "07_self_attention.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _constants(line_start: str):
    line = next(ln for ln in _chapter_code().splitlines() if ln.startswith(line_start))
    return ast.literal_eval(line.split("=", 1)[1].strip())


def test_same_training_constants_as_the_chapter():
    assert _constants("STEPS, BATCH, LR =") == (ch07_seeds.STEPS, ch07_seeds.BATCH,
                                                ch07_seeds.LR)
    assert _constants("LENGTH, NUM_TOKENS =") == (ch07_seeds.LENGTH, ch07_seeds.NUM_TOKENS)


def test_same_model_and_test_set_as_the_chapter():
    chapter = _chapter_code()
    bench = (ROOT / "bench" / "ch07_seeds.py").read_text()
    assert "d_model=32, num_layers=1" in chapter
    assert (ch07_seeds.D_MODEL, ch07_seeds.NUM_LAYERS) == (32, 1)
    for snippet in ["make_order_batch(2000, LENGTH, NUM_TOKENS, seed=1000)",
                    "torch.Generator().manual_seed(seed)",
                    "make_order_batch(BATCH, LENGTH, NUM_TOKENS, generator=stream)",
                    "torch.optim.Adam(model.parameters(), lr=LR)"]:
        assert snippet in chapter and snippet in bench, snippet
    assert "embed_std" not in chapter  # the chapter uses the default, as the study's rows
    assert ("none", 0.3) in ch07_seeds.VARIANTS
    assert all((e, 0.3) in ch07_seeds.VARIANTS for e in ["sinusoidal", "learned", "rope"])


def test_the_default_embedding_std_is_the_studied_one():
    from attnbook.self_attention import OrderClassifierConfig

    assert OrderClassifierConfig(8, 8).embed_std == 0.3
