"""Grade learners' notebooks: ``python -m attnbook.grade PATH... [--out DIR]``.

How one notebook is graded (``grade``):

1. Its exercises are the chapter's ``check_*`` functions (``attnbook.exercises.chNN``,
   found from the notebook's imports or its ``NN_`` file name) and any other checker a
   cell calls; an exercise whose call was deleted is *missing*.
2. The notebook runs top to bottom in a fresh kernel, as *Run All* would, in a temporary
   folder holding only its copy, with a minimal environment and limits on memory, CPU
   time, processes, file and output size (``attnbook.grade.sandbox``), a time limit per
   cell and one for the whole notebook. Every call of a checker is routed to the
   grader's recorder, which saves the function it was given (``attnbook.grade.run``):
   what the notebook prints decides nothing.
3. A fresh process imports the package's checkers, then checks each saved function in a
   child of its own with a time limit per exercise (``attnbook.grade.checks``). An
   answer must be a function written in a notebook cell that does not use the checkers'
   code; one taken from the package is *not own code*.
4. Cells outside the exercises that raised, ran past their limit or printed too much
   make the notebook not *ran clean*.

The verdicts (``STATUSES``): passed, wrong (with the checker's hint), not attempted,
error (the cell raised before the check, or the check crashed), timed out, missing,
not own code. ``attnbook.grade.cli`` is the command line; ``attnbook.grade.gradebook``
turns the verdicts into a gradebook and feedback for learners.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from attnbook.grade import sandbox
from attnbook.grade.sandbox import Limits, minimal_env, usable_user

PASSED, WRONG, NOT_ATTEMPTED, ERROR, TIMED_OUT, MISSING, INVALID = (
    "passed", "wrong", "not attempted", "error", "timed out", "missing", "not own code")
STATUSES = (PASSED, WRONG, NOT_ATTEMPTED, ERROR, TIMED_OUT, MISSING, INVALID)
CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")
NOT_CHECKERS = {"check_shape", "check_float", "check_function"}  # attnbook helpers
CHECKER_NAME = re.compile(r"^check_\w+$")


@dataclass
class Row:
    """One line of the gradebook: a notebook's exercise and its verdict."""

    notebook: str
    exercise: str       # the checker's name without ``check_`` ("" for the whole notebook)
    status: str         # one of STATUSES
    detail: str = ""    # the hint, the error, or what happened to the notebook
    learner: str = ""
    chapter: str = ""   # "01" for attnbook.exercises.ch01
    points: float = 0.0
    max_points: float = 0.0


@dataclass
class Settings:
    """How notebooks are run and checked (the command line's options)."""

    # Seconds for a whole notebook, and for one cell: the book's slowest cell takes 60 s
    # on an idle 2-core laptop and took over 180 s on a busy one; a cell that loops
    # costs its limit, and the cells after it still run.
    timeout: float = 1200
    cell_timeout: float = 600
    exercise_timeout: float = 60   # seconds for checking one exercise
    kernel: str = "python3"
    limits: Limits = field(default_factory=Limits)
    points: dict[str, float] = field(default_factory=dict)  # exercise -> points (default 1)


@dataclass
class Graded:
    """One notebook, graded."""

    notebook: str
    learner: str
    rows: list[Row]
    ran_clean: bool | None = None          # None: it did not run
    problems: list[str] = field(default_factory=list)  # why it did not run clean
    feedback: object = None                # the executed notebook with every verdict
    seconds: float = 0.0

    @property
    def chapters(self) -> list[str]:
        return list(dict.fromkeys(r.chapter for r in self.rows if r.chapter))


# ---------------------------------------------------------------------------------------
# What a notebook's exercises are
# ---------------------------------------------------------------------------------------

def _checker_calls(source: str) -> list[str]:
    """The ``check_*`` functions a cell calls, in order (a regex when it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        names = CHECK_CALL.findall(_strip_magics(source))
    else:
        names = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
                if name.startswith("check_"):
                    names.append(name)
    return [n for n in dict.fromkeys(names) if n not in NOT_CHECKERS]


def _strip_magics(source: str) -> str:
    return "\n".join(line for line in source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))


def _chapter_modules(nb, path: Path) -> list:
    """``attnbook.exercises.chNN`` modules the notebook imports, else the one its name gives."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        found += re.findall(r"\battnbook\.exercises\.(ch\d\d)\b", cell.source)
        found += [f"ch{n}" for n in re.findall(r"from\s+attnbook\.exercises\s+import\s+ch(\d\d)",
                                                cell.source)]
    if not found:
        match = re.match(r"(\d\d)_", path.name) or re.search(r"(?:^|[^0-9])(\d\d)_[a-z]",
                                                              path.name)
        if match:
            found.append(f"ch{match.group(1)}")
    modules = []
    for chapter in dict.fromkeys(found):
        try:
            modules.append(importlib.import_module(f"attnbook.exercises.{chapter}"))
        except ImportError:
            continue
    return modules


def _checkers(module) -> dict[str, object]:
    """The ``check_*`` functions a chapter module defines, in source order."""
    return {name: fn for name, fn in vars(module).items()
            if name.startswith("check_") and callable(fn)
            and getattr(fn, "__module__", None) == module.__name__}


def _find_checker(name: str):
    """The checker called ``name`` in any chapter's module (None if there is none)."""
    import pkgutil

    import attnbook.exercises as package

    for info in pkgutil.iter_modules(package.__path__):
        if re.fullmatch(r"ch\d\d", info.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            if name in _checkers(module):
                return _checkers(module)[name]
    return None


_LABELS: dict[str, str] = {}


def _label(name: str, fn) -> str:
    """The exercise's name in words, as its checker prints it ("cosine with zero vectors")."""
    if name not in _LABELS:
        from attnbook.exercises import spec_of

        try:
            _LABELS[name] = spec_of(fn).exercise
        except Exception:  # a checker that does not go through check_function once
            _LABELS[name] = name.removeprefix("check_").replace("_", " ")
    return _LABELS[name]


def exercises_of(nb, path: Path) -> dict[str, object]:
    """The notebook's exercises: {checker name: checker}, the chapter's own first."""
    checkers = {n: fn for m in _chapter_modules(nb, path) for n, fn in _checkers(m).items()}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for name in _checker_calls(cell.source):
                if name not in checkers:
                    fn = _find_checker(name)
                    if fn is not None:
                        checkers[name] = fn
    return checkers


def chapter_of(checker) -> str:
    """ "01" for a checker of ``attnbook.exercises.ch01``."""
    return checker.__module__.rsplit(".ch", 1)[-1]


# ---------------------------------------------------------------------------------------
# One notebook
# ---------------------------------------------------------------------------------------

def read_notebook(path: Path):
    """The notebook at ``path``, or a Row saying why it cannot be read."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
        return nb
    except Exception as err:
        return Row(str(path), "", ERROR, f"not a readable notebook: {type(err).__name__}: "
                   f"{_one_line(str(err), 200)}")


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # ANSI colours of tracebacks
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _where(nb, index: int) -> str:
    """ "code cell 5 (`x = undefined + 1`)": how a teacher finds cell ``index``."""
    number = sum(c.cell_type == "code" for c in nb.cells[:index + 1])
    first = next((line.strip() for line in nb.cells[index].source.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")), "")
    return f"code cell {number} (`{_one_line(first, 40)}`)" if first else f"code cell {number}"


def _errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _error_text(output, limits: Limits) -> str:
    name, value = output.get("ename", ""), output.get("evalue", "")
    if name == "MemoryError" or re.search(r"can't allocate memory|DefaultCPUAllocator", value):
        return f"exceeded the memory limit of {limits.memory_mb} MB ({name})"
    return _one_line(f"{name}: {value}")


def _verdict_without_answer(name, cells, run, nb, limits) -> tuple[str, str]:
    """The verdict of an exercise whose checker was never given a function."""
    ran = [i for i in cells if i in run.started]
    if not ran:
        return (run.status or ERROR,
                "not reached: " + (run.problem or "the notebook stopped before this cell"))
    last = ran[-1]
    if last in run.timed_out:
        return TIMED_OUT, f"the cell stopped after {run.timed_out[last]}, before the check"
    if last == run.stopped_at and run.status:
        return run.status, run.problem
    errors = [o for o in _errors(nb.cells[last]) if o.get("ename") != "OutputLimit"]
    if errors:
        return ERROR, _error_text(errors[0], limits)
    return ERROR, f"the cell ran but never called {name} (the call is in code that did not run)"


def _run_checks(items: list[dict], workdir: Path, settings: Settings) -> dict[str, dict]:
    """The verdicts of the saved answers, from a fresh checking process (see checks.py)."""
    spec = json.dumps({"exercises": items, "timeout": settings.exercise_timeout})
    wall = 300 + settings.exercise_timeout * len(items)  # imports, then every exercise
    with sandbox.process_group(settings.limits) as group:
        # -I: neither the working folder (where the learner's code could leave a torch.py)
        # nor PYTHON* variables reach the checking process's imports.
        cmd = sandbox.command(settings.limits, workdir,
                              [sys.executable, "-I", "-m", "attnbook.grade.checks", spec],
                              cpu_s=int(120 + settings.exercise_timeout * len(items)),
                              group=group)
        with subprocess.Popen(cmd, env=minimal_env(workdir), cwd=workdir,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True) as process:
            sandbox.LIVE["pgids"].add(process.pid)
            try:
                out, err = process.communicate(timeout=wall)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                out, err = b"", f"it ran past {wall:g} s".encode()
            finally:
                sandbox.LIVE["pgids"].discard(process.pid)
    try:
        verdicts = json.loads(out)
        if isinstance(verdicts, dict):
            return verdicts
    except ValueError:
        pass
    why = _one_line(err.decode(errors="replace")[-500:]) or f"exit status {process.returncode}"
    return {item["checker"]: {"status": ERROR, "detail": "the grader's checking process "
                                                         f"failed: {why}"} for item in items}


def _verdict(name, fn, cells, checked, records, run, settings) -> tuple[str, str]:
    """One exercise's (status, detail): from the grader's check of the saved answer, or
    from the run when no answer was saved."""
    if not cells:
        return MISSING, f"no cell calls {name} (deleted?)"
    if name in checked:
        status, detail = str(checked[name].get("status")), str(checked[name].get("detail", ""))
        if status not in STATUSES:
            return ERROR, "the checking process gave no verdict"
        return status, detail.removeprefix(f"✗ {_label(name, fn)}:").strip()
    if name in records and records[name]["error"]:
        return ERROR, f"the grader could not take the function out of the notebook: " \
                      f"{records[name]['error']}"
    if name in records:
        return ERROR, "the function the notebook gave the checker was not saved"
    return _verdict_without_answer(name, cells, run, run.nb, settings.limits)


def _answers(folder: Path, checkers: dict) -> dict[str, dict]:
    """The records the recorder left: {checker: {"cell": int, "error": str?}} (untrusted)."""
    found = {}
    for name in checkers:
        path = folder / f"{name}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8")[:10_000])
            cell = int(record["cell"])
        except Exception:
            continue
        error = record.get("error")
        found[name] = {"cell": cell, "error": str(error)[:500] if error else None,
                       "file": str(folder / f"{name}.pkl"),
                       "origin": str(record.get("file", ""))[:500]}
    return found


def grade(path: Path | str, settings: Settings | None = None, learner: str = "") -> Graded:
    """Run and check one notebook (see the module's docstring)."""
    from attnbook.grade.feedback import feedback_notebook
    from attnbook.grade.run import execute

    settings = settings or Settings()
    settings = replace(settings, limits=replace(
        settings.limits, user=usable_user(settings.limits.user)))
    path = Path(path)
    shown = str(path)
    nb = read_notebook(path)
    if isinstance(nb, Row):
        nb.learner = learner
        return Graded(shown, learner, [nb], problems=[nb.detail])
    checkers = exercises_of(nb, path)
    calls: dict[str, list[int]] = {n: [] for n in checkers}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for name in _checker_calls(cell.source):
                if name in calls:
                    calls[name].append(index)

    # The notebook's folder is one level down in a temporary folder, so that its code's
    # "../" lands in that folder too; all of it is removed afterwards.
    base = Path(tempfile.mkdtemp(prefix="attnbook-grade-"))
    sandbox.LIVE["folders"].add(base)
    base.chmod(0o711)
    workdir = base / "notebook"
    workdir.mkdir()
    try:
        answers = workdir / "answers"
        answers.mkdir()
        shutil.copy(path, workdir / path.name)
        started = time.monotonic()
        run = execute(nb, workdir, answers, set(checkers), kernel=settings.kernel,
                      timeout=settings.timeout, cell_timeout=settings.cell_timeout,
                      limits=settings.limits)
        records = _answers(answers, checkers)
        to_check = [{"checker": n, "module": fn.__module__, "answer": records[n]["file"],
                     "origin": records[n]["origin"]}
                    for n, fn in checkers.items()
                    if n in records and not records[n]["error"]
                    and Path(records[n]["file"]).is_file()]
        checked = _run_checks(to_check, workdir, settings) if to_check else {}
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(base, ignore_errors=True)
        sandbox.LIVE["folders"].discard(base)

    rows = []
    for name, fn in checkers.items():
        exercise = name.removeprefix("check_")
        status, detail = _verdict(name, fn, calls[name], checked, records, run, settings)
        worth = float(settings.points.get(exercise, 1))
        rows.append(Row(shown, exercise, status, _one_line(detail, 2000), learner,
                        chapter_of(fn), worth if status == PASSED else 0.0, worth))
    if not checkers:
        rows.append(Row(shown, "", MISSING, "no exercises: no cell calls a check_... function "
                        "and the file name does not start with a chapter number (NN_)",
                        learner))
    elif run.status and not any(r.status == run.status for r in rows):
        rows.append(Row(shown, "", run.status, run.problem, learner))

    exercise_cells = {i for cells in calls.values() for i in cells}
    problems = _problems(run, exercise_cells, settings.limits)
    graded = Graded(shown, learner, rows, ran_clean=not problems, problems=problems,
                    seconds=seconds)
    graded.feedback = feedback_notebook(run.nb, graded, calls,
                                        {n: _label(n, fn) for n, fn in checkers.items()})
    return graded


def _problems(run, exercise_cells: set[int], limits: Limits) -> list[str]:
    """Why the notebook did not run clean: errors, time-outs and floods outside exercises."""
    problems = []
    for index in sorted(run.started):
        where = _where(run.nb, index)
        if index in run.capped:
            problems.append(f"{where}: printed more than {limits.output_mb:g} MB of output "
                            "(cut, and the cell interrupted)")
        elif index in exercise_cells:
            continue
        elif index in run.timed_out:
            problems.append(f"{where}: stopped after {run.timed_out[index]}")
        else:
            errors = [o for o in _errors(run.nb.cells[index]) if o.get("ename") != "OutputLimit"]
            if errors:
                problems.append(f"{where}: {_error_text(errors[0], limits)}")
    if run.status:
        problems.append(run.problem)
    return problems


def grade_notebook(path: Path | str, timeout: float = 1200, kernel: str = "python3",
                   **options) -> list[Row]:
    """Run one notebook and return one Row per exercise (one Row if it cannot be graded).

    ``options`` are the other fields of ``Settings`` (``cell_timeout``, ``limits``, ...).
    """
    return grade(path, Settings(timeout=timeout, kernel=kernel, **options)).rows


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table with a one-line summary."""
    from attnbook.grade.gradebook import format_table as table

    return table(rows)


def main(argv: list[str] | None = None) -> int:
    from attnbook.grade.cli import main as cli

    return cli(argv)
