"""bench/ch11_seeds.py must train chapter 11's recall models with the chapter's settings,
or the seed study that backs the chapter's check describes some other training run."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import ch11_seeds  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "11_efficient_attention.ipynb"


def _code() -> str:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_same_recall_settings_as_the_chapter():
    code = _code()
    s = ch11_seeds
    assert f"RECALL_STEPS, RECALL_BATCH = {s.RECALL_STEPS}, {s.RECALL_BATCH}" in code
    assert "lr=3e-3" in code and s.RECALL_LR == 3e-3
    assert (f"RecallModel(num_keys={s.NUM_KEYS}, num_values={s.NUM_VALUES}, "
            f"d_model={s.D_MODEL},") in code
    assert f"make_recall_batch({s.TEST_SIZE}, seed={s.TEST_SEED})" in code
    assert "g = torch.Generator().manual_seed(seed)" in code
    assert "make_recall_batch(RECALL_BATCH, generator=g)" in code
    assert f"assert gap > {s.GAP}" in code


def test_the_recorded_study_backs_the_chapter():
    text = (ROOT / "bench" / "ch11_seeds.md").read_text(encoding="utf-8")
    gaps = next(line for line in text.splitlines() if line.startswith("| gap |"))
    values = [float(v) for v in gaps.strip("|").split("|")[1:-2]]
    assert len(values) >= 4 and min(values) > ch11_seeds.GAP
