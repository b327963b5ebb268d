"""Grade learners' notebooks: ``python -m attnbook.grade PATH... [--json | --csv]``.

Each notebook (or every ``.ipynb`` under a folder) runs top to bottom in a fresh kernel
with a time limit, as "Run all" would. The verdict of every exercise is read from its
cell: the checker's ✓ line (passed), its ``ExerciseError`` "✗ ..." (wrong, with the hint),
its "not attempted yet" line, any other exception in the cell (error: the learner's code
raised outside the checker), or a cell that never finished (timed out). Exercises are
the chapter's ``check_*`` functions (``attnbook.exercises.chNN``, found from the
notebook's imports or its ``NN_`` file name), so an exercise whose cell was deleted is
reported as missing. A notebook that crashes, loops or has lost its cells gets rows
that say so; the command itself does not stop.

Exit code: 0 when every exercise of every notebook passed; 1 when all notebooks were
graded but some exercise did not pass; 2 when a path could not be graded (missing,
not a notebook, unreadable) or the command line was wrong.

The notebooks' code runs with your permissions: grade work you do not trust in a
container or as an unprivileged user.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import csv
import importlib
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PASSED, WRONG, NOT_ATTEMPTED, ERROR, TIMED_OUT, MISSING = (
    "passed", "wrong", "not attempted", "error", "timed out", "missing")
STATUSES = (PASSED, WRONG, NOT_ATTEMPTED, ERROR, TIMED_OUT, MISSING)
EXERCISE_MODULE = re.compile(r"^attnbook\.exercises\.(ch\d\d)$")
CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")
NOT_CHECKERS = {"check_shape", "check_float", "check_function"}  # attnbook helpers


@dataclass
class Row:
    """One line of the gradebook: a notebook's exercise and its verdict."""

    notebook: str
    exercise: str     # the checker's name without ``check_`` ("" for the whole notebook)
    status: str       # one of STATUSES
    detail: str = ""  # the hint, the error, or what happened to the notebook


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
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%",
                                                                                        "!")))


def _chapter_modules(nb, path: Path) -> list[str]:
    """``attnbook.exercises.chNN`` modules the notebook imports, else the one its name gives."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        found += re.findall(r"\battnbook\.exercises\.(ch\d\d)\b", cell.source)
        found += [f"ch{n}" for n in re.findall(r"from\s+attnbook\.exercises\s+import\s+ch(\d\d)",
                                                cell.source)]
    if not found:
        match = re.match(r"(\d\d)_", path.name)
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


def _label(name: str, fn=None) -> str:
    """The exercise name a checker prints ("stable softmax" for check_stable_softmax).

    Found by giving the checker a stub: it prints "… <name>: not attempted yet".
    """
    if name in _LABELS:
        return _LABELS[name]
    label = name.removeprefix("check_")
    if fn is not None:
        def stub(*args, **kwargs):
            raise NotImplementedError

        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                fn(stub)
        except Exception:  # a checker that cannot take a stub: keep the function's name
            pass
        match = re.match(r"… (.+?): not attempted yet", out.getvalue().strip())
        if match:
            label = match.group(1)
    _LABELS[name] = label
    return label


# ---------------------------------------------------------------------------------------
# Running a notebook
# ---------------------------------------------------------------------------------------

@dataclass
class _Run:
    started: set           # indices of the cells that started
    stopped_at: int | None  # the cell that was running when the notebook stopped
    problem: str = ""       # why the notebook stopped early ("" if it ran to the end)
    status: str = ""        # TIMED_OUT or ERROR when it stopped early


def _execute(nb, path: Path, timeout: float, kernel: str) -> _Run:
    """Run every cell of ``nb`` in place (errors do not stop it); at most ``timeout`` s."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = _Run(started=set(), stopped_at=None)
    deadline = []

    def on_cell_start(cell, cell_index):
        run.started.add(cell_index)
        run.stopped_at = cell_index

    def remaining(cell):
        if not deadline:
            deadline.append(time.monotonic() + timeout)
        return max(1, round(deadline[0] - time.monotonic()))

    client = NotebookClient(
        nb, kernel_name=kernel, allow_errors=True, timeout_func=remaining,
        interrupt_on_timeout=False, startup_timeout=120, shutdown_kernel="immediate",
        on_cell_start=on_cell_start, resources={"metadata": {"path": str(path.parent)}})
    try:
        # The kernel's own log (not the notebook's output) would clutter the table. One
        # thread that sleeps when idle: graded notebooks run beside other work, and
        # spinning OpenMP threads of several PyTorch processes starve each other.
        client.execute(stderr=subprocess.DEVNULL, env=dict(
            os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE"))
        run.stopped_at = None
    except CellTimeoutError:
        run.status = TIMED_OUT
        run.problem = f"stopped after the time limit of {timeout:g} s"
    except DeadKernelError:
        run.status = ERROR
        run.problem = "the kernel died (the code exited Python or ran out of memory)"
    except Exception as err:  # kernel did not start, a broken cell, ...
        run.status = ERROR
        run.problem = f"could not run: {type(err).__name__}: {_one_line(str(err))}"
    return run


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # ANSI colours of tracebacks
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cell_verdicts(cell, labels: dict[str, str], ran: bool, stopped_here: bool,
                   run: _Run) -> dict[str, tuple[str, str]]:
    """The verdict of each exercise a cell checks: {checker name: (status, detail)}."""
    verdicts: dict[str, tuple[str, str]] = {}
    stdout = "".join(o.get("text", "") for o in cell.get("outputs", [])
                     if o.get("output_type") == "stream")
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    for name, label in labels.items():
        for line in stdout.splitlines():
            if line.startswith(f"✓ {label}:"):
                verdicts[name] = (PASSED, "")
            elif line.startswith(f"… {label}: not attempted yet"):
                verdicts[name] = (NOT_ATTEMPTED, "")
    for err in errors:
        value = err.get("evalue", "")
        owner = next((n for n, label in labels.items() if value.startswith(f"✗ {label}:")), None)
        if err.get("ename") == "ExerciseError" and owner is not None:
            verdicts[owner] = (WRONG, _one_line(value.removeprefix(f"✗ {labels[owner]}:"), 2000))
    calls = [n for n in _checker_calls(cell.source) if n in labels]
    for name in calls:
        if name in verdicts:
            continue
        if stopped_here:
            verdicts[name] = (run.status, run.problem)
        elif not ran:
            verdicts[name] = (run.status or ERROR, "not reached: the notebook " + (
                run.problem or "stopped before this cell"))
        elif errors:
            err = errors[0]
            verdicts[name] = (ERROR, _one_line(f"{err.get('ename')}: {err.get('evalue')}"))
        else:
            verdicts[name] = (NOT_ATTEMPTED, "the checker printed no verdict")
    return verdicts


def read_notebook(path: Path):
    """The notebook at ``path``, or a Row saying why it cannot be read."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:
        return Row(str(path), "", ERROR, f"not a readable notebook: {type(err).__name__}: "
                   f"{_one_line(str(err), 200)}")


def grade_notebook(path: Path | str, timeout: float = 300,
                   kernel: str = "python3") -> list[Row]:
    """Run one notebook and return one Row per exercise (one Row if it cannot be graded)."""
    path = Path(path)
    nb = read_notebook(path)
    if isinstance(nb, Row):
        return [nb]
    shown = str(path)
    modules = _chapter_modules(nb, path)
    checkers = {n: fn for m in modules for n, fn in _checkers(m).items()}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for n in _checker_calls(cell.source):
                checkers.setdefault(n, _find_checker(n))
    if not checkers:
        return [Row(shown, "", MISSING, "no exercises: no cell calls a check_... function "
                    "and the file name does not start with a chapter number (NN_)")]
    labels = {n: _label(n, fn) for n, fn in checkers.items()}
    if not any(_checker_calls(c.source) for c in nb.cells if c.cell_type == "code"):
        return [Row(shown, n.removeprefix("check_"), MISSING,
                    "no cell calls a checker: the exercise cells were deleted")
                for n in checkers]

    nb_run = copy.deepcopy(nb)
    for cell in nb_run.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    run = _execute(nb_run, path, timeout, kernel)

    verdicts: dict[str, tuple[str, str]] = {}
    for index, cell in enumerate(nb_run.cells):
        if cell.cell_type != "code":
            continue
        found = _cell_verdicts(cell, labels, ran=index in run.started,
                               stopped_here=run.stopped_at == index and bool(run.status),
                               run=run)
        for n, verdict in found.items():
            # A later check of the same exercise replaces an earlier one, unless it never ran.
            if n not in verdicts or verdict[0] not in (TIMED_OUT, ERROR) or \
                    verdicts[n][0] in (TIMED_OUT, ERROR):
                verdicts[n] = verdict
    rows = []
    for n in checkers:
        status, detail = verdicts.get(n, (MISSING, f"no cell calls {n} (deleted?)"))
        rows.append(Row(shown, n.removeprefix("check_"), status, detail))
    if run.status and not any(r.status == run.status for r in rows):
        rows.append(Row(shown, "", run.status, run.problem))
    return rows


# ---------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------

def _notebooks(paths: list[str]) -> tuple[list[Path], list[Row]]:
    """The notebooks named or under the folders named, and a Row for each bad path."""
    found, bad = [], []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            nbs = sorted(p for p in path.rglob("*.ipynb")
                         if ".ipynb_checkpoints" not in p.parts)
            if not nbs:
                bad.append(Row(arg, "", ERROR, "folder holds no .ipynb notebook"))
            found += nbs
        elif not path.exists():
            bad.append(Row(arg, "", ERROR, "no such file or folder"))
        elif path.suffix != ".ipynb":
            bad.append(Row(arg, "", ERROR, "not a notebook (expected a .ipynb file or a folder)"))
        else:
            found.append(path)
    return list(dict.fromkeys(found)), bad


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table with a one-line summary."""
    head = Row("notebook", "exercise", "verdict", "detail")
    widths = [max(len(getattr(r, f)) for r in [head, *rows])
              for f in ("notebook", "exercise", "status")]
    lines = []
    for r in [head, *rows]:
        cells = [r.notebook.ljust(widths[0]), (r.exercise or "-").ljust(widths[1]),
                 r.status.ljust(widths[2]), r.detail]
        lines.append("  ".join(cells).rstrip())
    counts = {s: sum(r.status == s for r in rows if r.exercise) for s in STATUSES}
    graded = len({r.notebook for r in rows})
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append(f"\n{graded} notebook(s), {sum(counts.values())} exercise(s): "
                 f"{summary or 'none'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m attnbook.grade",
        description="Run learners' notebooks and report every exercise's verdict: passed, "
                    "wrong (with the hint), not attempted, error, timed out, missing.",
        epilog="Exit code: 0 every exercise passed; 1 some did not; 2 a path could not be "
               "graded.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="notebooks (.ipynb) or folders to search for them")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the rows as JSON")
    out.add_argument("--csv", action="store_true", help="print the rows as CSV")
    parser.add_argument("--timeout", type=float, default=300, metavar="SECONDS",
                        help="time limit per notebook (default: 300)")
    parser.add_argument("--kernel", default="python3",
                        help="Jupyter kernel to run the notebooks in (default: python3)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")

    notebooks, rows = _notebooks(args.paths)
    for path in notebooks:
        nb = read_notebook(path)
        if isinstance(nb, Row):
            rows.append(nb)
    bad = list(rows)  # paths that cannot be graded
    for row in bad:
        print(f"grade: {row.notebook}: {row.detail}", file=sys.stderr)
    for path in notebooks:
        if any(r.notebook == str(path) for r in bad):
            continue
        print(f"grading {path} ...", file=sys.stderr, flush=True)
        rows += grade_notebook(path, timeout=args.timeout, kernel=args.kernel)

    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=["notebook", "exercise", "status",
                                                        "detail"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    else:
        print(format_table(rows))
    if bad:
        return 2
    return 0 if rows and all(r.status == PASSED for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
