"""`python -m attnbook.grade`: verdicts for solutions, untouched chapters and broken notebooks.

Each test runs real notebooks in a fresh kernel (a few seconds each). The broken notebooks
are written here, with chapter 1's checkers: a wrong answer, a syntax error, code that
raises outside the checker, an infinite loop, a kernel that exits, deleted cells, and
files that are not notebooks. The tricks that fooled the grader when it read the
notebook's printout are in tests/test_grade_tricks.py; hostile notebooks in
tests/test_grade_sandbox.py; the gradebook in tests/test_grade_gradebook.py.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from attnbook.grade import (
    ERROR,
    INVALID,
    MISSING,
    NOT_ATTEMPTED,
    PASSED,
    TIMED_OUT,
    WRONG,
    format_table,
    grade,
    grade_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_1 = ROOT / "notebooks" / "01_vectors_and_similarity.ipynb"
SOLUTIONS_1 = ROOT / "notebooks" / "solutions" / "01_vectors_and_similarity_solutions.ipynb"
EXERCISES_1 = ["safe_cosine", "top_k_keys", "bilinear_scores"]

IMPORTS = """\
import torch

from attnbook.exercises.ch01 import (
    check_bilinear_scores,
    check_safe_cosine,
    check_top_k_keys,
)"""
RIGHT = {
    "safe_cosine": "def unit(X):\n    n = X.norm(dim=-1, keepdim=True)\n"
                   "    return torch.where(n > 0, X / torch.where(n > 0, n, 1), 0)\n\n\n"
                   "def my_cos(Q, K):\n    return unit(Q) @ unit(K).T\n\n\n"
                   "check_safe_cosine(my_cos)",
    "bilinear_scores": "def my_scores(Q, K_cols, W):\n    return Q @ W @ K_cols\n\n\n"
                       "check_bilinear_scores(my_scores)",
    "top_k_keys": "def my_top(Q, K, k):\n    scores = Q @ K.transpose(-2, -1)\n"
                  "    order = torch.sort(scores, dim=-1, descending=True, stable=True)\n"
                  "    return order.indices[..., :k]\n\n\ncheck_top_k_keys(my_top)",
}


def _write(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A learner's chapter 1")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "some-kernel-the-teacher-lacks", "language": "python",
                                 "display_name": "Python (learner)"}
    nbformat.write(nb, path)
    return path


def _verdicts(rows) -> dict[str, tuple[str, str]]:
    return {r.exercise: (r.status, r.detail) for r in rows}


def _settings(**kwargs):
    from attnbook.grade import Settings

    return Settings(**kwargs)


def _grade_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnbook.grade", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_solutions_notebook_passes_every_exercise_and_exits_0():
    result = _grade_cli("--json", str(SOLUTIONS_1.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [r["exercise"] for r in rows] == EXERCISES_1
    assert {r["status"] for r in rows} == {PASSED}, rows
    assert all(r["notebook"].endswith(SOLUTIONS_1.name) for r in rows)
    assert {r["ran_clean"] for r in rows} == {"yes"}


def test_chapter_notebook_is_not_attempted_everywhere_and_runs_clean():
    graded = grade(CHAPTER_1)
    assert [r.exercise for r in graded.rows] == EXERCISES_1
    assert {r.status for r in graded.rows} == {NOT_ATTEMPTED}, format_table(graded.rows)
    assert graded.ran_clean, graded.problems


def test_wrong_answer_syntax_error_and_code_raising_outside_the_checker(tmp_path):
    nb = _write(
        tmp_path / "01_alice.ipynb", IMPORTS,
        # a syntax error: the cell never defines the function nor calls the checker
        "def my_cos(Q, K)\n    return Q @ K.T\n\n\ncheck_safe_cosine(my_cos)",
        # a classic wrong answer: W transposed
        "def my_scores(Q, K_cols, W):\n    return Q @ W.T @ K_cols\n\n\n"
        "check_bilinear_scores(my_scores)",
        # the learner's code raises before the checker is called
        "def my_top(Q, K, k):\n    return (Q @ K.mT).topk(k).indices\n\n\n"
        "sizes = {}\nsizes['d'] += 1\ncheck_top_k_keys(my_top)",
        # outside the exercises: a name not defined
        "print(undefined_name)")
    graded = grade(nb, _settings(timeout=120))
    verdicts = _verdicts(graded.rows)
    assert list(verdicts) == EXERCISES_1
    assert verdicts["safe_cosine"][0] == ERROR
    assert verdicts["safe_cosine"][1].startswith("SyntaxError"), verdicts
    status, hint = verdicts["bilinear_scores"]
    assert status == WRONG
    assert "used W transposed" in hint, hint   # the checker's hint
    assert not hint.startswith("✗")
    assert verdicts["top_k_keys"] == (ERROR, "KeyError: 'd'")
    # Only the cell outside the exercises makes the notebook not run clean.
    assert not graded.ran_clean
    assert graded.problems == ["code cell 5 (`print(undefined_name)`): NameError: name "
                               "'undefined_name' is not defined"], graded.problems


def test_a_looping_cell_is_stopped_and_the_later_exercises_still_graded(tmp_path):
    """One loop costs its own cell (the cell limit), not the rest of the notebook."""
    nb = _write(tmp_path / "01_bob.ipynb",
                "while True:  # the learner's loop never ends\n    pass\n\n"
                "check_bilinear_scores(my_scores)",
                IMPORTS, RIGHT["safe_cosine"], RIGHT["top_k_keys"])
    # 30 s: the cell limit must leave `import torch` time on a busy machine.
    graded = grade(nb, _settings(timeout=240, cell_timeout=30))
    verdicts = _verdicts(graded.rows)
    assert verdicts["bilinear_scores"] == (TIMED_OUT, "the cell stopped after the cell time "
                                                      "limit of 30 s, before the check")
    assert verdicts["safe_cosine"] == (PASSED, "")
    assert verdicts["top_k_keys"] == (PASSED, "")
    table = format_table(graded.rows)
    assert "2 passed, 1 timed out" in table, table


def test_the_notebook_time_limit_stops_the_rest(tmp_path):
    nb = _write(tmp_path / "01_bob.ipynb",
                "while True:  # the learner's loop never ends\n    pass\n\n"
                "check_bilinear_scores(my_scores)",
                IMPORTS, RIGHT["safe_cosine"])
    verdicts = _verdicts(grade_notebook(nb, timeout=5))
    assert verdicts["bilinear_scores"] == (
        TIMED_OUT, "the cell stopped after the notebook's time limit of 5 s, before the check")
    assert verdicts["safe_cosine"] == (TIMED_OUT, "not reached: the notebook ran out of its "
                                                  "time limit of 5 s"), verdicts


def test_kernel_that_dies_gets_an_error_row_and_earlier_answers_count(tmp_path):
    # Passing the package's own reference is not an answer (issue 27's third trick).
    nb = _write(tmp_path / "01_carol.ipynb", IMPORTS, RIGHT["safe_cosine"],
                "import attnbook.exercises.ch01 as ch01\n\ncheck_top_k_keys(ch01._top_k)",
                "import os\nos._exit(3)", RIGHT["bilinear_scores"])
    graded = grade(nb, _settings(timeout=120))
    verdicts = _verdicts(graded.rows)
    assert verdicts["safe_cosine"] == (PASSED, "")
    assert verdicts["top_k_keys"] == (INVALID, "the answer is attnbook.exercises.ch01._top_k, "
                                               "a function from a package, not one written in "
                                               "the notebook")
    status, detail = verdicts["bilinear_scores"]
    assert status == ERROR and "exit status 3" in detail, verdicts
    assert not graded.ran_clean and "exit status 3" in graded.problems[-1]


def test_notebook_whose_exercise_cells_were_deleted(tmp_path):
    """All cells cleared: every exercise of the chapter (from the file name) is missing."""
    empty = nbformat.v4.new_notebook()
    nbformat.write(empty, tmp_path / "01_dave.ipynb")
    verdicts = _verdicts(grade_notebook(tmp_path / "01_dave.ipynb"))
    assert list(verdicts) == EXERCISES_1
    assert {v[0] for v in verdicts.values()} == {MISSING}
    # Some cells deleted: the chapter comes from the imports, the rest is missing.
    partial = _write(tmp_path / "renamed.ipynb", IMPORTS, RIGHT["bilinear_scores"])
    verdicts = _verdicts(grade_notebook(partial, timeout=120))
    assert verdicts["bilinear_scores"] == (PASSED, "")
    assert verdicts["safe_cosine"] == (MISSING, "no cell calls check_safe_cosine (deleted?)")
    assert len(verdicts) == 3


def test_command_on_a_folder_with_bad_paths_exits_2_with_clear_messages(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), folder / "01_erin.ipynb")
    (folder / "02_frank.ipynb").write_text("{ this is not json", encoding="utf-8")
    (folder / "notes.txt").write_text("not a notebook", encoding="utf-8")
    result = _grade_cli("--csv", str(folder), str(tmp_path / "nowhere.ipynb"),
                        str(folder / "notes.txt"))
    assert result.returncode == 2, result.stdout + result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    by_path = {}
    for row in rows:
        by_path.setdefault(Path(row["notebook"]).name, []).append(row)
    assert [r["status"] for r in by_path["01_erin.ipynb"]] == [MISSING] * 3
    assert by_path["02_frank.ipynb"][0]["status"] == ERROR
    assert "not a readable notebook" in by_path["02_frank.ipynb"][0]["detail"]
    for name in ("02_frank.ipynb", "nowhere.ipynb", "notes.txt"):
        assert name in result.stderr, result.stderr
    assert "no such file or folder" in result.stderr
    assert "not a notebook (expected a .ipynb file or a folder)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [[], ["--timeout", "0", "x.ipynb"],
                                  ["--json", "--csv", "x.ipynb"], ["-j", "0", "x.ipynb"],
                                  ["--points", "safe_cosine", "x.ipynb"]])
def test_bad_command_lines_exit_2(args):
    result = _grade_cli(*args)
    assert result.returncode == 2
    assert "usage: python -m attnbook.grade" in result.stderr


def test_main_refuses_a_string_instead_of_a_list():
    """main("class/") once walked the file system from / (argparse iterated the string)."""
    from attnbook.grade import main

    with pytest.raises(TypeError, match="list of arguments"):
        main("class/")
