"""From verdicts to a gradebook: learners, missing work, totals, CSV and JSON.

Who a notebook belongs to (``learner_of``): the name of the learner's folder directly
inside the folder given to the grader (``class/alice/01_vectors.ipynb`` -> ``alice``);
for a notebook lying directly in that folder, or named on its own, the part of its file
name before the chapter number (``alice_01_vectors.ipynb`` -> ``alice``), else the name
of the folder that holds it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from attnbook.grade import ERROR, MISSING, PASSED, STATUSES, Graded, Row


@dataclass
class Submission:
    """A notebook to grade, or (path None) a learner who handed nothing in."""

    learner: str
    path: Path | None


def _hidden(path: Path) -> bool:
    return path.name.startswith((".", "__")) or path.name == ".ipynb_checkpoints"


def _notebooks_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb")
                  if not any(_hidden(Path(part)) for part in p.relative_to(folder).parts)
                  and p.is_file())


def learner_from_file(path: Path) -> str:
    """``alice`` for ``alice_01_vectors.ipynb``; else the name of the folder holding it."""
    match = re.match(r"(.+?)[-_. ]+\d\d_", path.name)
    if match:
        return match.group(1)
    return path.resolve().parent.name or "-"


def collect(paths: list[str]) -> tuple[list[Submission], list[Row]]:
    """The submissions under ``paths`` and a Row for every path that cannot be graded.

    A sub-folder of a folder given is a learner's, even when it is empty (that learner
    then handed nothing in).
    """
    found: list[Submission] = []
    bad: list[Row] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            before = len(found)
            for entry in sorted(path.iterdir()):
                if _hidden(entry):
                    continue
                if entry.is_dir():
                    notebooks = _notebooks_under(entry)
                    found += [Submission(entry.name, p) for p in notebooks]
                    if not notebooks:
                        found.append(Submission(entry.name, None))
                elif entry.suffix == ".ipynb" and entry.is_file():
                    found.append(Submission(learner_from_file(entry), entry))
            if len(found) == before:
                bad.append(Row(arg, "", ERROR, "folder holds no .ipynb notebook and no "
                                               "learner's folder"))
        elif not path.exists():
            bad.append(Row(arg, "", ERROR, "no such file or folder"))
        elif path.suffix != ".ipynb" or not path.is_file():
            bad.append(Row(arg, "", ERROR, "not a notebook (expected a .ipynb file or a folder)"))
        else:
            found.append(Submission(learner_from_file(path), path))
    unique: dict[tuple, Submission] = {}
    for s in found:
        unique.setdefault((s.learner, s.path.resolve() if s.path else None), s)
    return list(unique.values()), bad


def read_roster(path: Path) -> list[str]:
    """Learners, one a line (a CSV's first column); blank lines and ``#`` comments skipped."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = next(csv.reader([line]))[0].strip()
        if name and name not in names:
            names.append(name)
    return names


def chapter_exercises(chapter: str) -> list[str]:
    """The exercise names of chapter ``chapter`` ("01"), in order; [] if there is none."""
    import importlib

    from attnbook.grade import _checkers

    try:
        module = importlib.import_module(f"attnbook.exercises.ch{chapter}")
    except ImportError:
        return []
    return [n.removeprefix("check_") for n in _checkers(module)]


def missing_work(graded: list[Graded], learners: list[str], chapters: list[str],
                 points: dict[str, float]) -> list[Graded]:
    """A Graded for every learner and expected chapter with no notebook of that chapter."""
    handed = {(g.learner, c) for g in graded for c in g.chapters}
    extra = []
    for learner in learners:
        rows = []
        for chapter in chapters:
            if (learner, chapter) in handed:
                continue
            for exercise in chapter_exercises(chapter):
                worth = float(points.get(exercise, 1))
                rows.append(Row("", exercise, MISSING, f"no notebook for chapter {chapter} was "
                                "handed in", learner, chapter, 0.0, worth))
        if not rows and not any(g.learner == learner for g in graded):
            rows.append(Row("", "", MISSING, "nothing handed in", learner))
        if rows:
            extra.append(Graded("", learner, rows, ran_clean=None))
    return extra


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------

FIELDS = ["learner", "chapter", "notebook", "exercise", "status", "points", "max_points",
          "ran_clean", "detail"]


def _clean(g: Graded) -> str:
    return "" if g.ran_clean is None else ("yes" if g.ran_clean else "no")


def long_rows(graded: list[Graded]) -> list[dict]:
    """One dict per learner and exercise (and per notebook problem), in FIELDS order."""
    out = []
    for g in graded:
        for r in g.rows:
            row = asdict(r)
            row["ran_clean"] = _clean(g)
            out.append({k: row[k] for k in FIELDS})
    return out


def best_per_chapter(graded: list[Graded]) -> dict[tuple[str, str], Graded]:
    """{(learner, chapter): the notebook that earned the most points in that chapter}."""
    best: dict[tuple[str, str], tuple[float, Graded]] = {}
    for g in graded:
        for chapter in g.chapters:
            earned = sum(r.points for r in g.rows if r.chapter == chapter)
            key = (g.learner, chapter)
            if key not in best or earned > best[key][0]:
                best[key] = (earned, g)
    return {k: v[1] for k, v in best.items()}


def summary(graded: list[Graded], learners: list[str]) -> dict:
    """Per learner: points per exercise and chapter, totals and whether it ran clean."""
    best = best_per_chapter(graded)
    chapters = sorted({c for _, c in best})
    columns = {c: list(dict.fromkeys(r.exercise for g in graded for r in g.rows
                                     if r.chapter == c and r.exercise)) for c in chapters}
    people = []
    for learner in learners:
        entry = {"learner": learner, "points": 0.0, "max_points": 0.0, "ran_clean": None,
                 "chapters": {}}
        for chapter in chapters:
            g = best.get((learner, chapter))
            if g is None:
                continue
            rows = [r for r in g.rows if r.chapter == chapter]
            earned, worth = sum(r.points for r in rows), sum(r.max_points for r in rows)
            entry["chapters"][chapter] = {
                "notebook": g.notebook, "points": earned, "max_points": worth,
                "ran_clean": g.ran_clean, "problems": g.problems,
                "exercises": {r.exercise: {"status": r.status, "points": r.points,
                                           "max_points": r.max_points, "detail": r.detail}
                              for r in rows}}
            entry["points"] += earned
            entry["max_points"] += worth
            if g.ran_clean is not None:
                entry["ran_clean"] = g.ran_clean and entry["ran_clean"] is not False
        people.append(entry)
    counts = {s: sum(r.status == s for g in graded for r in g.rows if r.exercise)
              for s in STATUSES}
    return {"learners": people, "columns": columns,
            "counts": {s: n for s, n in counts.items() if n},
            "notebooks": sum(1 for g in graded if g.notebook and g.ran_clean is not None)}


def gradebook_csv(graded: list[Graded], learners: list[str]) -> str:
    """One row per learner: points per exercise, per chapter and in all; then ran clean.

    The first data row, learner "(out of)", holds the points each column is out of.
    """
    s = summary(graded, learners)
    head = ["learner"]
    for chapter, exercises in s["columns"].items():
        head += [f"ch{chapter} {e}" for e in exercises] + [f"ch{chapter} total"]
    head += ["total", "out of", "ran clean"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    possible = ["(out of)"]
    for chapter, exercises in s["columns"].items():
        worth = {}
        for g in graded:
            for r in g.rows:
                if r.chapter == chapter and r.exercise:
                    worth[r.exercise] = r.max_points
        possible += [_num(worth.get(e, 0)) for e in exercises]
        possible.append(_num(sum(worth.get(e, 0) for e in exercises)))
    total_possible = sum(float(x) for x, h in zip(possible[1:], head[1:], strict=False)
                         if h.endswith(" total"))
    writer.writerow(possible + [_num(total_possible), "", ""])
    for entry in s["learners"]:
        line = [entry["learner"]]
        for chapter, exercises in s["columns"].items():
            got = entry["chapters"].get(chapter)
            marks = got["exercises"] if got else {}
            line += [_num(marks[e]["points"]) if e in marks else "0" for e in exercises]
            line.append(_num(got["points"]) if got else "0")
        clean = {None: "", True: "yes", False: "no"}[entry["ran_clean"]]
        line += [_num(entry["points"]), _num(total_possible), clean]
        writer.writerow(line)
    return out.getvalue()


def _num(x: float) -> str:
    return f"{float(x):g}"


def _aligned(table: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
            .rstrip() for row in table]


def format_table(rows: list[Row], graded: list[Graded] | None = None,
                 learners: list[str] | None = None) -> str:
    """The rows as an aligned text table; per-learner totals; a one-line summary."""
    table = [["learner", "notebook", "exercise", "verdict", "points", "detail"]]
    table += [[r.learner or "-", r.notebook or "-", r.exercise or "-", r.status,
               f"{r.points:g}/{r.max_points:g}" if r.max_points else "-", r.detail]
              for r in rows]
    lines = _aligned(table)
    if graded and learners:
        s = summary(graded, learners)
        totals = [["learner", *(f"ch{c}" for c in s["columns"]), "total", "ran clean"]]
        for e in s["learners"]:
            got = [e["chapters"].get(c) for c in s["columns"]]
            clean = {None: "-", True: "yes", False: "no"}[e["ran_clean"]]
            totals.append([e["learner"], *(f"{g['points']:g}/{g['max_points']:g}" if g
                                           else "-" for g in got),
                           f"{e['points']:g}/{e['max_points']:g}", clean])
        lines += ["", *_aligned(totals)]
    counts = {s: sum(r.status == s for r in rows if r.exercise) for s in STATUSES}
    if graded is not None:
        notebooks = sum(1 for g in graded if g.notebook and g.ran_clean is not None)
    else:
        notebooks = len({r.notebook for r in rows if r.exercise})
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    people = f"{len(learners)} learner(s), " if learners else ""
    lines.append(f"\n{people}{notebooks} notebook(s) graded, {sum(counts.values())} "
                 f"exercise(s): {text or 'none'}")
    return "\n".join(lines)


def to_json(graded: list[Graded], learners: list[str], bad: list[Row], settings) -> str:
    """Everything: per learner, per notebook (with why it did not run clean), every row,
    and the paths that could not be graded."""
    s = summary(graded, learners)
    limits = asdict(settings.limits)
    return json.dumps({
        "summary": {"learners": len(learners), "notebooks": s["notebooks"],
                    "verdicts": s["counts"],
                    "all_passed": all(r.status == PASSED for g in graded for r in g.rows)},
        "settings": {"timeout": settings.timeout, "cell_timeout": settings.cell_timeout,
                     "exercise_timeout": settings.exercise_timeout, "limits": limits},
        "learners": s["learners"],
        "notebooks": [{"notebook": g.notebook, "learner": g.learner, "chapters": g.chapters,
                       "points": sum(r.points for r in g.rows),
                       "max_points": sum(r.max_points for r in g.rows),
                       "ran_clean": g.ran_clean, "problems": g.problems,
                       "seconds": round(g.seconds, 1)}
                      for g in graded if g.notebook],
        "rows": long_rows(graded),
        "not_graded": [{"path": r.notebook, "detail": r.detail} for r in bad],
    }, indent=2, ensure_ascii=False)


def csv_text(graded: list[Graded]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(long_rows(graded))
    return out.getvalue()


def safe_name(name: str) -> str:
    """A learner's or notebook's name as one safe path component."""
    return re.sub(r"[^\w.@+-]", "_", name).lstrip(".") or "_"
