"""bench/ch09_seeds.py must train chapter 9's two models with the chapter's settings, or
the seed study that backs the chapter's checks describes some other training run."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import ch09_seeds  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "09_transformer.ipynb"


def _code() -> str:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_same_translation_schedule_as_the_chapter():
    code = _code()
    s = ch09_seeds
    assert f"WARMUP, FACTOR, STEPS, COOL = {s.WARMUP}, {s.FACTOR}, {s.STEPS}, {s.COOL}" in code
    assert f"BATCH = {s.BATCH}" in code
    assert "cool = min(1.0, (STEPS - step + 1) / COOL)" in code
    for d_model in (64, 512):  # the same rate at every step as the chapter's ours_lr
        for step in (1, s.WARMUP, s.STEPS - s.COOL, s.STEPS):
            want = s.tfm.warmup_lr(step, d_model, s.WARMUP, s.FACTOR) * min(
                1.0, (s.STEPS - step + 1) / s.COOL)
            assert s.ours_lr(step, d_model) == want


def test_same_language_model_settings_as_the_chapter():
    code = _code()
    assert f"LM_STEPS, LM_BATCH = {ch09_seeds.LM_STEPS}, {ch09_seeds.LM_BATCH}" in code
    assert "def train_lm(seed=0, steps=LM_STEPS, lr=5e-3)" in code
    assert ch09_seeds.LM_LR == 5e-3
    assert "d_ff=128" in code and "num_layers=2, norm_first=True, max_len=64" in code
    # each step: LM_BATCH random sentences, run as two halves sorted by length
    assert "loss = sum(lm_loss(lm, half, n_targets) for half in halves(batch))" in code
    assert "batch = sorted(batch, key=len)" in code
