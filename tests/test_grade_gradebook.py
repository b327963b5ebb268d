"""What a teacher gets from `python -m attnbook.grade`: learners, missing work, points,
a gradebook, feedback per learner; graded side by side (-j).

The pure parts (learner names, the roster, the tables) are tested on hand-made verdicts;
one class is graded for real: alice solved chapter 1, bob got one exercise wrong and
left an error outside the exercises, carol's folder is empty, dave is only on the
roster, and everyone owes chapter 2 as well.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from attnbook.grade import ERROR, MISSING, PASSED, WRONG, Graded, Row
from attnbook.grade import gradebook as gb

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS_1 = ROOT / "notebooks" / "solutions" / "01_vectors_and_similarity_solutions.ipynb"
EXERCISES_1 = ["safe_cosine", "top_k_keys", "bilinear_scores"]
EXERCISES_2 = ["masked_logsumexp", "temperature_for_top_weight", "softmax_jvp",
               "js_divergence"]


def test_learner_names_come_from_the_folder_or_the_file_name(tmp_path):
    (tmp_path / "class" / "alice" / "week1").mkdir(parents=True)
    (tmp_path / "class" / "bob").mkdir()
    (tmp_path / "class" / ".ipynb_checkpoints").mkdir()
    nb = nbformat.v4.new_notebook()
    for path in ["class/alice/week1/01_vectors.ipynb", "class/erin_01_vectors.ipynb",
                 "class/.ipynb_checkpoints/01_vectors-checkpoint.ipynb",
                 "loose/01_vectors.ipynb"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, tmp_path / path)
    (tmp_path / "nothing").mkdir()
    found, bad = gb.collect([str(tmp_path / "class"), str(tmp_path / "loose" / "01_vectors.ipynb"),
                             str(tmp_path / "nothing"), str(tmp_path / "nowhere")])
    got = sorted((s.learner, s.path.name if s.path else None) for s in found)
    assert got == [("alice", "01_vectors.ipynb"), ("bob", None),
                   ("erin", "erin_01_vectors.ipynb"), ("loose", "01_vectors.ipynb")]
    assert [(Path(r.notebook).name, r.detail) for r in bad] == [
        ("nothing", "folder holds no .ipynb notebook and no learner's folder"),
        ("nowhere", "no such file or folder")]


def test_roster_one_learner_a_line_or_a_csv_first_column(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("# class of 2026\nalice,Alice A.\n\n bob \nalice\ncarol,x\n",
                      encoding="utf-8")
    assert gb.read_roster(roster) == ["alice", "bob", "carol"]


def _graded(learner, chapter, statuses, clean=True, problems=()):
    rows = [Row(f"{learner}/{chapter}.ipynb", e, s, "", learner, chapter,
                1.0 if s == PASSED else 0.0, 1.0) for e, s in statuses.items()]
    return Graded(f"{learner}/{chapter}.ipynb", learner, rows, ran_clean=clean,
                  problems=list(problems))


def test_gradebook_has_a_row_per_learner_and_a_column_per_exercise():
    graded = [_graded("alice", "01", dict.fromkeys(EXERCISES_1, PASSED)),
              _graded("bob", "01", {"safe_cosine": PASSED, "top_k_keys": WRONG,
                                    "bilinear_scores": ERROR}, clean=False,
                      problems=["code cell 5: NameError"])]
    learners = ["alice", "bob", "carol"]
    graded += gb.missing_work(graded, learners, ["01", "02"], {})
    missing = [(r.learner, r.chapter) for g in graded for r in g.rows if r.status == MISSING]
    assert missing == [("alice", "02")] * 4 + [("bob", "02")] * 4 + \
        [("carol", "01")] * 3 + [("carol", "02")] * 4
    table = list(csv.reader(io.StringIO(gb.gradebook_csv(graded, learners))))
    assert table[0] == ["learner", *(f"ch01 {e}" for e in EXERCISES_1), "ch01 total",
                        *(f"ch02 {e}" for e in EXERCISES_2), "ch02 total", "total", "out of",
                        "ran clean"]
    assert table[1] == ["(out of)", "1", "1", "1", "3", "1", "1", "1", "1", "4", "7", "", ""]
    assert table[2] == ["alice", "1", "1", "1", "3", "0", "0", "0", "0", "0", "3", "7", "yes"]
    assert table[3] == ["bob", "1", "0", "0", "1", "0", "0", "0", "0", "0", "1", "7", "no"]
    assert table[4] == ["carol"] + ["0"] * 10 + ["7", ""]


def test_points_per_exercise_and_the_best_of_two_notebooks():
    first = _graded("alice", "01", {"safe_cosine": WRONG, "top_k_keys": PASSED})
    again = _graded("alice", "01", dict.fromkeys(["safe_cosine", "top_k_keys"], PASSED))
    again.rows[0].points = again.rows[0].max_points = 2.0
    s = gb.summary([first, again], ["alice"])
    assert s["learners"][0]["points"] == 3.0 and s["learners"][0]["max_points"] == 3.0


def test_a_class_graded_side_by_side_with_roster_gradebook_and_feedback(tmp_path):
    cls = tmp_path / "class"
    (cls / "alice").mkdir(parents=True)
    (cls / "bob").mkdir()
    (cls / "carol").mkdir()  # handed nothing in
    shutil.copy(SOLUTIONS_1, cls / "alice" / "01_vectors_and_similarity.ipynb")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in [
        "import torch\nfrom attnbook.exercises.ch01 import check_bilinear_scores",
        "print(not_defined)",
        "def my_scores(Q, K_cols, W):\n    return Q @ W.T @ K_cols\n\n\n"
        "check_bilinear_scores(my_scores)"]]
    nbformat.write(nb, cls / "bob" / "01_vectors_and_similarity.ipynb")
    roster = tmp_path / "roster.txt"
    roster.write_text("alice\nbob\ncarol\ndave\n", encoding="utf-8")
    out = tmp_path / "grades"
    done = subprocess.run(
        [sys.executable, "-m", "attnbook.grade", str(cls), "-j", "2", "--roster", str(roster),
         "--expect", "1", "2", "--out", str(out), "--timeout", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr

    book = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    assert [r["learner"] for r in book] == ["(out of)", "alice", "bob", "carol", "dave"]
    alice, bob, carol, dave = book[1:]
    assert (alice["ch01 total"], alice["ch02 total"], alice["total"], alice["out of"],
            alice["ran clean"]) == ("3", "0", "3", "7", "yes")
    assert (bob["ch01 bilinear_scores"], bob["ch01 total"], bob["ran clean"]) == ("0", "0", "no")
    assert carol["total"] == dave["total"] == "0" and carol["ran clean"] == ""

    rows = list(csv.DictReader(io.StringIO((out / "exercises.csv").read_text())))
    bob_rows = {r["exercise"]: r for r in rows if r["learner"] == "bob" and r["chapter"] == "01"}
    assert bob_rows["bilinear_scores"]["status"] == WRONG
    assert "used W transposed" in bob_rows["bilinear_scores"]["detail"]
    assert bob_rows["safe_cosine"]["status"] == MISSING
    assert sum(r["learner"] == "dave" and r["status"] == MISSING for r in rows) == 7

    report = json.loads((out / "grades.json").read_text())
    assert report["summary"]["learners"] == 4 and report["summary"]["notebooks"] == 2
    bob_nb = next(n for n in report["notebooks"] if n["learner"] == "bob")
    assert bob_nb["problems"] == ["code cell 2 (`print(not_defined)`): NameError: name "
                                  "'not_defined' is not defined"]

    page = (out / "feedback" / "bob" / "01_vectors_and_similarity.html").read_text()
    assert "Grader: ✗ bilinear scores: wrong" in page and "used W transposed" in page
    feedback = nbformat.read(out / "feedback" / "alice" / "01_vectors_and_similarity.ipynb", 4)
    assert "**3 of 3 points**" in feedback.cells[0].source
    # The table printed: a row per learner and exercise, totals, and a count of verdicts.
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["learner", "notebook", "exercise", "verdict", "points",
                                "detail"]
    assert any(line.split()[:4] == ["alice", str(cls / "alice" / "01_vectors_and_similarity"
                                                 ".ipynb"), "safe_cosine", "passed"]
               for line in lines)
    assert lines[-1] == ("4 learner(s), 2 notebook(s) graded, 28 exercise(s): 3 passed, "
                         "1 wrong, 24 missing")
    assert "grading" in done.stderr and "dave" not in done.stderr  # dave is on the roster


def test_feedback_page_keeps_the_notebook_readable_and_drops_its_scripts(tmp_path):
    from attnbook.grade.feedback import write

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n\nText <script>alert(1)</script> "
                                              "<img src=x onerror=alert(2)> **bold**"),
                nbformat.v4.new_code_cell("show()")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": "<script>alert(3)</script><p onclick='steal()'>hi</p>",
        "text/plain": "hi"})]
    write(nb, tmp_path / "fb.ipynb")
    page = (tmp_path / "fb.html").read_text(encoding="utf-8")
    assert "<h1" in page and "<strong>bold</strong>" in page and "<p>hi</p>" in page
    assert "<script>alert" not in page and "onerror" not in page and "onclick" not in page
