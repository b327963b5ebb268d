"""``python -m attnbook.grade``: grade a class's notebooks, write a gradebook and feedback.

Exit code: 0 when every exercise of every notebook passed; 1 when all paths were graded
but some exercise did not pass (work not handed in included); 2 when a path or the
roster could not be read, or the command line was wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from attnbook.grade import PASSED, Graded, Settings, grade
from attnbook.grade import gradebook as gb
from attnbook.grade.feedback import write
from attnbook.grade.sandbox import Limits, stop_all


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m attnbook.grade",
        description="Run learners' notebooks in a sandbox, check every exercise with the "
                    "package's own checkers, and report verdicts, points and feedback.",
        epilog="Exit code: 0 every exercise passed; 1 some did not; 2 a path could not be "
               "graded. Learner names: the sub-folder of a folder given (class/alice/...), "
               "else the file name before the chapter number (alice_01_....ipynb).")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a class folder (one sub-folder per learner), notebooks (.ipynb) or "
                        "folders holding them")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print everything as JSON")
    out.add_argument("--csv", action="store_true",
                     help="print one CSV row per learner and exercise")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write gradebook.csv (one row per learner), exercises.csv, "
                        "grades.json and feedback/LEARNER/NOTEBOOK.ipynb and .html here")
    p.add_argument("--no-html", action="store_true", help="feedback as notebooks only")
    p.add_argument("--roster", type=Path, metavar="FILE",
                   help="learners, one a line (a CSV's first column): who handed nothing "
                        "in gets rows too")
    p.add_argument("--expect", nargs="+", metavar="NN", default=None,
                   help="chapters every learner must hand in (default: every chapter "
                        "someone handed in)")
    p.add_argument("--points", nargs="+", metavar="EXERCISE=N", default=[],
                   help="points of an exercise (default 1 each), e.g. safe_cosine=2")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="notebooks graded side by side (default 1; each runs one thread)")
    limits = p.add_argument_group("time limits (seconds)")
    limits.add_argument("--timeout", type=float, default=Settings.timeout,
                        help=f"per notebook, all its cells (default {Settings.timeout:g})")
    limits.add_argument("--cell-timeout", type=float, default=Settings.cell_timeout,
                        help="per cell; a cell past it is interrupted and the next one runs "
                             f"(default {Settings.cell_timeout:g})")
    limits.add_argument("--exercise-timeout", type=float, default=Settings.exercise_timeout,
                        help=f"per exercise's check (default {Settings.exercise_timeout:g})")
    box = p.add_argument_group("what the learners' code may use")
    d = Limits()
    box.add_argument("--memory-mb", type=int, default=d.memory_mb,
                     help=f"memory of each process (default {d.memory_mb})")
    box.add_argument("--cpu-s", type=int, default=d.cpu_s,
                     help=f"CPU seconds of a notebook's kernel (default {d.cpu_s})")
    box.add_argument("--max-processes", type=int, default=d.processes,
                     help=f"processes and threads it may add (default {d.processes})")
    box.add_argument("--max-file-mb", type=int, default=d.file_mb,
                     help=f"size of a file it writes (default {d.file_mb})")
    box.add_argument("--max-output-mb", type=float, default=d.output_mb,
                     help=f"output a notebook may print (default {d.output_mb:g})")
    box.add_argument("--user", default=d.user,
                     help="when run as root, the user the code runs as (default nobody)")
    p.add_argument("--kernel", default="python3",
                   help="Jupyter kernel to run the notebooks in (default: python3)")
    return p


def _settings(args, parser) -> Settings:
    for name in ("timeout", "cell_timeout", "exercise_timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if args.jobs < 1:
        parser.error("-j must be at least 1")
    points = {}
    for item in args.points:
        name, _, value = item.partition("=")
        try:
            points[name.strip()] = float(value)
        except ValueError:
            parser.error(f"--points {item!r}: expected EXERCISE=N, e.g. safe_cosine=2")
    limits = Limits(memory_mb=args.memory_mb, cpu_s=args.cpu_s, processes=args.max_processes,
                    file_mb=args.max_file_mb, output_mb=args.max_output_mb, user=args.user)
    return Settings(timeout=args.timeout, cell_timeout=args.cell_timeout,
                    exercise_timeout=args.exercise_timeout, kernel=args.kernel,
                    limits=limits, points=points)


def main(argv: list[str] | None = None) -> int:
    if isinstance(argv, str):
        raise TypeError("main() takes a list of arguments, e.g. main(['class/'])")
    parser = _parser()
    args = parser.parse_args(argv)
    settings = _settings(args, parser)

    submissions, bad = gb.collect(args.paths)
    roster: list[str] = []
    if args.roster is not None:
        try:
            roster = gb.read_roster(args.roster)
        except (OSError, UnicodeDecodeError) as err:
            print(f"grade: --roster {args.roster}: {err}", file=sys.stderr)
            return 2
    for row in bad:
        print(f"grade: {row.notebook}: {row.detail}", file=sys.stderr)
    for learner in sorted({s.learner for s in submissions} - set(roster)) if roster else ():
        print(f"grade: {learner}: not on the roster (graded all the same)", file=sys.stderr)

    todo = [s for s in submissions if s.path is not None]
    started = time.monotonic()

    def one(s) -> Graded:
        print(f"grading {s.path} ({s.learner}) ...", file=sys.stderr, flush=True)
        g = grade(s.path, settings, learner=s.learner)
        if args.out is not None and g.feedback is not None:  # now: executed notebooks are big
            name = gb.safe_name(Path(g.notebook).stem) + ".ipynb"
            write(g.feedback, args.out / "feedback" / gb.safe_name(g.learner) / name,
                  html=not args.no_html)
        g.feedback = None
        return g

    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        graded = list(pool.map(one, todo))
    except KeyboardInterrupt:  # Ctrl-C: kill every kernel and check, leave no folder
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        print("grade: interrupted; every notebook's processes were stopped", file=sys.stderr)
        os._exit(130)
    pool.shutdown()
    print(f"graded {len(graded)} notebook(s) in {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    unreadable = [g for g in graded if g.ran_clean is None]  # not a notebook after all
    for g in unreadable:
        print(f"grade: {g.notebook}: {g.rows[0].detail}", file=sys.stderr)

    learners = list(dict.fromkeys([*roster, *sorted({s.learner for s in submissions})]))
    chapters = [c.zfill(2) for c in args.expect] if args.expect else \
        sorted({c for g in graded for c in g.chapters})
    graded += gb.missing_work(graded, learners, chapters, settings.points)
    rows = [r for g in graded for r in g.rows]

    if args.out is not None:
        _write_out(args.out, graded, learners, bad, settings)
    if args.json:
        print(gb.to_json(graded, learners, bad, settings))
    elif args.csv:
        print(gb.csv_text(graded), end="")
    else:
        print(gb.format_table(rows + bad, graded, learners))
    if bad or unreadable:
        return 2
    return 0 if rows and all(r.status == PASSED for r in rows) else 1


def _write_out(folder: Path, graded: list[Graded], learners: list[str], bad,
               settings) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gradebook.csv").write_text(gb.gradebook_csv(graded, learners), encoding="utf-8")
    (folder / "exercises.csv").write_text(gb.csv_text(graded), encoding="utf-8")
    (folder / "grades.json").write_text(gb.to_json(graded, learners, bad, settings),
                                        encoding="utf-8")
    print(f"wrote {folder}/gradebook.csv, exercises.csv, grades.json and feedback/",
          file=sys.stderr)
