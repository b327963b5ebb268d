"""Execute the book's notebooks into its execution cache, side by side, before the build.

`jupyter-book build` (MyST-NB's `cache` mode) executes the notebooks one after the other
while it reads them. Run first, this fills the same cache (`.jupyter_cache`, jupyter-cache's
format) with every notebook that is out of date, one per core, the longest first; the build
then finds each one in the cache and only renders it. It uses jupyter-cache's own worker
(`ExecutionWorkerLocalMProc`: the notebook's folder as working directory, as MyST-NB
runs it); a notebook that fails is left out of the cache, so the build executes it again
and reports its error there.

    .venv/bin/python book/_ext/execute_notebooks.py --timeout 1200 notebooks/*.ipynb ...
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
import time
from pathlib import Path

from jupyter_cache import get_cache
from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData


def benchmarked() -> dict[Path, float]:
    """Each notebook's seconds in the last `make bench` (bench/notebooks.md): longest first,
    so that no long notebook starts last."""
    table = Path(__file__).resolve().parents[2] / "bench" / "notebooks.md"
    if not table.is_file():
        return {}
    rows = re.findall(r"^\| (\S+\.ipynb) \| ([\d.]+)", table.read_text(), flags=re.M)
    return {(table.parents[1] / name).resolve(): float(s) for name, s in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path(".jupyter_cache"))
    parser.add_argument("--timeout", type=int, default=0, help="seconds per cell")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--order", action="store_true",
                        help="only print the notebooks, longest first (for nbval's workers)")
    args = parser.parse_args(argv)
    seconds = benchmarked()
    if args.order:
        print(*sorted(args.notebooks, key=lambda p: -seconds.get(p.resolve(), 0.0)))
        return 0
    cache = get_cache(args.cache)
    records = [cache.add_nb_to_project(str(p.resolve())) for p in args.notebooks]
    stale = [r for r in records if cache.get_cached_project_nb(r.pk) is None]
    stale.sort(key=lambda r: -seconds.get(Path(r.uri).resolve(), 0.0))
    print(f"executing {len(stale)} of {len(records)} notebooks, {args.jobs} at a time",
          flush=True)
    start = time.perf_counter()
    data = [ProcessData(r.pk, r.uri, cache, args.timeout, False) for r in stale]
    failed = []
    with multiprocessing.Pool(args.jobs) as pool:
        for status, uri in pool.imap_unordered(ExecutionWorkerLocalMProc(), data, chunksize=1):
            print(f"  {'ok' if status == 0 else 'FAILED'} {os.path.relpath(uri)} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            if status:
                failed.append(uri)
    if failed:
        print(f"{len(failed)} notebook(s) failed; the build will run them again and show "
              "the error", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
