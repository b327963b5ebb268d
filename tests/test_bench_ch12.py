"""bench/ch12_seeds.py must train chapter 12's models with the chapter's settings, or the
seed study that backs the chapter's checks describes some other training run."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import ch12_seeds  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "12_interpreting_attention.ipynb"


def _code() -> str:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_same_encoder_settings_as_the_chapter():
    code, s = _code(), ch12_seeds
    assert f"T, K = {s.T}, {s.K}" in code
    assert "STEPS, BATCH, LR = 400, 64, 5e-3" in code
    assert (s.STEPS, s.BATCH, s.LR) == (400, 64, 5e-3)
    assert "ClsEncoderConfig(vocab_size=K + 1, num_classes=K,\n" in code
    assert f"make_marker_batch({s.N_TEST}, length=T, num_tokens=K, seed=1)" in code
    assert f"attention_flow(weights[:{s.N_FLOW}])" in code


def test_same_jain_wallace_settings_as_the_chapter():
    code, s = _code(), ch12_seeds
    assert "JW_T, JW_STEPS, JW_LR = 15, 600, 1e-2" in code
    assert (s.JW_T, s.JW_STEPS, s.JW_LR) == (15, 600, 1e-2)
    assert f"EPS = {s.EPS}" in code
    assert f"m, x = models[task, \"attention\"], data[task][0][:{s.N_ADV}]" in code
    assert f"def permuted_tvd(m, x, num_perms={s.JW_PERMS})" in code
    assert "jw_batch(task, 500, seed=1)" in code
