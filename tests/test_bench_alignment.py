"""bench/alignment_seeds.py and bench/ch06_bottleneck.py must train chapter 6's models the
way the chapter does, or the seed ranges the chapter quotes from them describe some other
model."""

import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import alignment_seeds  # noqa: E402
import ch06_bottleneck  # noqa: E402


def _chapter_code() -> str:
    nb = json.loads((ROOT / "notebooks" / "06_seq2seq_attention.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _squash(code: str) -> str:
    """Code without white space or trailing commas: the same call however it is wrapped."""
    return re.sub(r",\)", ")", re.sub(r"\s+", "", code))


def test_same_training_constants_as_the_chapter():
    line = next(ln for ln in _chapter_code().splitlines() if ln.startswith("STEPS, BATCH, LR ="))
    steps, batch, lr = ast.literal_eval(line.split("=", 1)[1].strip())
    assert (steps, batch, lr) == (alignment_seeds.STEPS, alignment_seeds.BATCH, alignment_seeds.LR)


def test_same_corpus_model_and_schedule_as_the_chapter():
    chapter = _squash(_chapter_code())
    bench = _squash((ROOT / "bench" / "alignment_seeds.py").read_text())
    for snippet in ["make_corpus(n_train=20000, n_val=500, n_test=1000, max_len=30, seed=0)",
                    "embed_dim=32", "hidden_dim=64", "pct_start=0.1",
                    "clip_grad_norm_(model.parameters(), 1.0)", "seed=seed)"]:
        assert _squash(snippet) in chapter and _squash(snippet) in bench, snippet


def test_the_chapter_configuration_is_in_the_study():
    assert ("bahdanau", True, True) in alignment_seeds.CONFIGS
    assert ("luong", True, True) in alignment_seeds.CONFIGS


def test_the_bottleneck_study_trains_the_plain_model_as_the_chapter_does():
    line = next(ln for ln in _chapter_code().splitlines() if ln.startswith("STEPS, BATCH, LR ="))
    steps, batch, lr = ast.literal_eval(line.split("=", 1)[1].strip())
    assert (steps, batch, lr) == (ch06_bottleneck.STEPS, ch06_bottleneck.BATCH,
                                  ch06_bottleneck.LR)
    chapter = _squash(_chapter_code())
    bench = _squash((ROOT / "bench" / "ch06_bottleneck.py").read_text())
    for snippet in ["make_corpus(n_train=20000, n_val=500, n_test=1000, max_len=30, seed=0)",
                    "embed_dim=32", "pct_start=0.1", "clip_grad_norm_(model.parameters(), 1.0)",
                    "seed=seed)", "BUCKETS = [(5, 9), (10, 14), (15, 19), (20, 24), (25, 30)]"]:
        assert _squash(snippet) in chapter and _squash(snippet) in bench, snippet
    assert "hidden_dim=64" in chapter
    assert ch06_bottleneck.CONFIGS[0] == ("chapter", 64, ch06_bottleneck.STEPS)
