"""`python -m attnbook.grade`: verdicts for solutions, untouched chapters and broken notebooks.

Each test runs real notebooks in a fresh kernel (a few seconds each). The broken notebooks
are written here, with chapter 1's checkers: a wrong answer, a syntax error, code that
raises outside the checker, an infinite loop, a kernel that exits, deleted cells, and
files that are not notebooks.
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
    MISSING,
    NOT_ATTEMPTED,
    PASSED,
    TIMED_OUT,
    WRONG,
    format_table,
    grade_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_1 = ROOT / "notebooks" / "01_vectors_and_similarity.ipynb"
SOLUTIONS_1 = ROOT / "notebooks" / "solutions" / "01_vectors_and_similarity_solutions.ipynb"
EXERCISES_1 = ["cosine_similarity", "score_matrix", "batched_scores", "nearest_neighbour"]

IMPORTS = """\
import torch

from attnbook.exercises.ch01 import (
    check_batched_scores,
    check_cosine_similarity,
    check_nearest_neighbour,
    check_score_matrix,
)"""
RIGHT = {
    "cosine_similarity": "def my_cos(a, b):\n    return (a @ b) / (a.norm() * b.norm())\n\n\n"
                         "check_cosine_similarity(my_cos)",
    "score_matrix": "def my_scores(Q, K):\n    return Q @ K.T\n\n\ncheck_score_matrix(my_scores)",
    "batched_scores": "def my_batched(Q, K):\n    return Q @ K.transpose(-2, -1)\n\n\n"
                      "check_batched_scores(my_batched)",
    "nearest_neighbour": "def my_nn(query, table):\n    raise NotImplementedError\n\n\n"
                         "check_nearest_neighbour(my_nn)",
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


def _grade_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnbook.grade", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_solutions_notebook_passes_every_exercise_and_exits_0():
    result = _grade_cli("--json", str(SOLUTIONS_1.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)
    assert [r["exercise"] for r in rows] == EXERCISES_1
    assert {r["status"] for r in rows} == {PASSED}, rows
    assert all(r["notebook"].endswith(SOLUTIONS_1.name) for r in rows)


def test_chapter_notebook_is_not_attempted_everywhere():
    rows = grade_notebook(CHAPTER_1, timeout=300)
    assert [r.exercise for r in rows] == EXERCISES_1
    assert {r.status for r in rows} == {NOT_ATTEMPTED}, format_table(rows)


def test_wrong_answer_syntax_error_and_code_raising_outside_the_checker(tmp_path):
    nb = _write(
        tmp_path / "01_alice.ipynb", IMPORTS,
        # a syntax error: the cell never defines the function nor calls the checker
        "def my_cos(a, b)\n    return a @ b\n\n\ncheck_cosine_similarity(my_cos)",
        # a classic wrong answer: keys x queries
        "def my_scores(Q, K):\n    return K @ Q.T\n\n\ncheck_score_matrix(my_scores)",
        # the learner's code raises before the checker is called
        "def my_batched(Q, K):\n    return Q @ K.mT\n\n\nsizes = {}\nsizes['d'] += 1\n"
        "check_batched_scores(my_batched)",
        RIGHT["nearest_neighbour"])
    verdicts = _verdicts(grade_notebook(nb, timeout=120))
    assert list(verdicts) == EXERCISES_1
    assert verdicts["cosine_similarity"][0] == ERROR
    assert verdicts["cosine_similarity"][1].startswith("SyntaxError"), verdicts
    status, hint = verdicts["score_matrix"]
    assert status == WRONG
    assert "keys × queries instead of queries × keys" in hint, hint   # the checker's hint
    assert not hint.startswith("✗")
    assert verdicts["batched_scores"] == (ERROR, "KeyError: 'd'")
    assert verdicts["nearest_neighbour"][0] == NOT_ATTEMPTED


def test_infinite_loop_is_timed_out_and_later_exercises_not_reached(tmp_path):
    # The loop comes first, so that the verdicts do not depend on how fast the machine
    # imports torch within the limit (a busy machine takes seconds).
    nb = _write(tmp_path / "01_bob.ipynb",
                "while True:  # the learner's loop never ends\n    pass\n\n"
                "check_score_matrix(my_scores)",
                IMPORTS, RIGHT["cosine_similarity"], RIGHT["batched_scores"],
                RIGHT["nearest_neighbour"])
    rows = grade_notebook(nb, timeout=5)
    verdicts = _verdicts(rows)
    assert verdicts["score_matrix"] == (TIMED_OUT, "stopped after the time limit of 5 s")
    for name in ("cosine_similarity", "batched_scores", "nearest_neighbour"):
        assert verdicts[name] == (TIMED_OUT, "not reached: the notebook stopped after the "
                                             "time limit of 5 s"), verdicts
    table = format_table(rows)
    assert "score_matrix" in table and "4 timed out" in table, table


def test_kernel_that_dies_gets_an_error_row(tmp_path):
    nb = _write(tmp_path / "01_carol.ipynb", IMPORTS, RIGHT["cosine_similarity"],
                "import os\nos._exit(3)", RIGHT["score_matrix"])
    verdicts = _verdicts(grade_notebook(nb, timeout=120))
    assert verdicts["cosine_similarity"] == (PASSED, "")
    status, detail = verdicts["score_matrix"]
    assert status == ERROR and "kernel died" in detail, verdicts


def test_notebook_whose_exercise_cells_were_deleted(tmp_path):
    """All cells cleared: every exercise of the chapter (from the file name) is missing."""
    empty = nbformat.v4.new_notebook()
    nbformat.write(empty, tmp_path / "01_dave.ipynb")
    verdicts = _verdicts(grade_notebook(tmp_path / "01_dave.ipynb"))
    assert list(verdicts) == EXERCISES_1
    assert {v[0] for v in verdicts.values()} == {MISSING}
    # Some cells deleted: the chapter comes from the imports, the rest is missing.
    partial = _write(tmp_path / "renamed.ipynb", IMPORTS, RIGHT["score_matrix"])
    verdicts = _verdicts(grade_notebook(partial, timeout=120))
    assert verdicts["score_matrix"] == (PASSED, "")
    assert verdicts["cosine_similarity"] == (MISSING, "no cell calls check_cosine_similarity "
                                                      "(deleted?)")
    assert len(verdicts) == 4


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
    assert [r["status"] for r in by_path["01_erin.ipynb"]] == [MISSING] * 4
    assert by_path["02_frank.ipynb"][0]["status"] == ERROR
    assert "not a readable notebook" in by_path["02_frank.ipynb"][0]["detail"]
    assert by_path["nowhere.ipynb"][0]["detail"] == "no such file or folder"
    assert by_path["notes.txt"][0]["detail"].startswith("not a notebook")
    for name in ("02_frank.ipynb", "nowhere.ipynb", "notes.txt"):
        assert name in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_table_exit_code_1_when_some_exercise_did_not_pass(tmp_path):
    nb = _write(tmp_path / "01_gina.ipynb", IMPORTS, RIGHT["cosine_similarity"],
                RIGHT["nearest_neighbour"])
    result = _grade_cli("--timeout", "120", str(nb))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["notebook", "exercise", "verdict", "detail"]
    assert any("cosine_similarity" in line and "passed" in line for line in lines)
    assert any("nearest_neighbour" in line and "not attempted" in line for line in lines)
    assert "1 notebook(s), 4 exercise(s): 1 passed, 1 not attempted, 2 missing" in lines[-1]


@pytest.mark.parametrize("args", [[], ["--timeout", "0", "x.ipynb"],
                                  ["--json", "--csv", "x.ipynb"]])
def test_bad_command_lines_exit_2(args):
    result = _grade_cli(*args)
    assert result.returncode == 2
    assert "usage: python -m attnbook.grade" in result.stderr
