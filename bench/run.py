"""Time every notebook: `make bench` -> bench/notebooks.md.

Each notebook (chapters, then solutions) runs once, top to bottom, in a fresh Jupyter
kernel, the way a reader runs it. For each we record the seconds its cells take (kernel
start-up excluded) and the peak resident memory of the kernel process (`ru_maxrss`, read
inside the kernel after the last cell), then write a Markdown table with the total, the
machine's core count, the load average at the start (other work inflates the times) and
the date.

    .venv/bin/python bench/run.py                     # all notebooks -> bench/notebooks.md
    .venv/bin/python bench/run.py notebooks/01_*.ipynb --output /tmp/bench.md

Exit status 1 when a notebook fails (the table still lists it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "bench" / "notebooks.md"
CELL_TIMEOUT = 600  # seconds per cell
# Time budgets per chapter on 2 CPU cores (book plan); other chapters: DEFAULT_BUDGET.
BUDGETS = {5: 120, 6: 180, 9: 180, 10: 180, 11: 120, 12: 120}
DEFAULT_BUDGET = 60

# Runs in the kernel after the notebook: its peak memory in bytes and the device it used.
PROBE = """\
import sys as _sys
try:
    import resource as _resource
    _peak = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
    _peak *= 1 if _sys.platform == "darwin" else 1024   # bytes on macOS, KiB on Linux
except ImportError:  # Windows
    import psutil as _psutil
    _peak = _psutil.Process().memory_info().peak_wset
print(_peak, globals().get("device", "?"))
"""


def notebooks() -> list[Path]:
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    solutions = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
    return chapters + solutions


def budget(path: Path) -> int | None:
    """The chapter's budget in seconds; None for solutions notebooks."""
    if path.parent.name == "solutions" or not path.name[:2].isdigit():
        return None
    return BUDGETS.get(int(path.name[:2]), DEFAULT_BUDGET)


def run(path: Path) -> dict:
    """Execute one notebook in a fresh kernel; seconds, peak bytes, device, error."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    result = {"seconds": None, "peak": None, "device": "?", "error": None}
    with client.setup_kernel():
        start = time.perf_counter()
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except CellExecutionError as error:
            last = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()[-1]
            result["error"] = f"cell {index}: {last[:120]}"
        result["seconds"] = time.perf_counter() - start
        probe = nbformat.v4.new_code_cell(PROBE)
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
        text = "".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout")
        peak, device = text.split()[:2]
        result["peak"], result["device"] = int(peak), device
    return result


def shown(path: Path) -> str:
    """The path as the table shows it: relative to the repository when inside it."""
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "not installed"
    return (f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, torch {torch}")


def table(rows: list[tuple[Path, dict]], started: dt.datetime, load: float | None,
          wall: float) -> str:
    devices = sorted({r["device"] for _, r in rows})
    load_text = f"; load average {load:.1f} at the start" if load is not None else ""
    lines = [
        "# Notebook benchmark",
        "",
        f"`make bench` ({Path(__file__).relative_to(ROOT)}) on "
        f"{started:%Y-%m-%d %H:%M} UTC: every notebook once, top to bottom, in a fresh kernel.",
        f"Machine: {machine()}; device {', '.join(devices)}{load_text}.",
        "Seconds: the notebook's cells (kernel start-up excluded). Peak memory: maximum",
        "resident set size of the kernel process. Budget: the chapter's limit on 2 cores.",
        "",
        "| notebook | seconds | peak memory (MiB) | budget (s) |",
        "|---|---:|---:|---:|",
    ]
    for path, r in rows:
        limit = budget(path)
        flag = "" if limit is None or r["seconds"] <= limit else " over budget"
        seconds = f"{r['seconds']:.1f}" + (f" (failed: {r['error']})" if r["error"] else "")
        lines.append(f"| {shown(path)} | {seconds} | "
                     f"{r['peak'] / 2**20:.0f} | {limit if limit else ''}{flag} |")
    total = sum(r["seconds"] for _, r in rows)
    peak = max(r["peak"] for _, r in rows)
    lines.append(f"| **total ({len(rows)} notebook{'s' * (len(rows) != 1)})** | **{total:.1f}** "
                 f"(= {total / 60:.1f} min) | max {peak / 2**20:.0f} | |")
    lines += ["", f"Wall time of the whole run, kernel start-ups included: {wall:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.paths] or notebooks()
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    started = dt.datetime.now(dt.timezone.utc)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = []
    begin = time.perf_counter()
    for path in paths:
        print(f"{shown(path)} ...", end=" ", flush=True)
        result = run(path)
        rows.append((path, result))
        status = f"FAILED {result['error']}" if result["error"] else "ok"
        print(f"{result['seconds']:.1f} s, {result['peak'] / 2**20:.0f} MiB, {status}", flush=True)
    text = table(rows, started, load, time.perf_counter() - begin)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"\n{text}\nwritten to {args.output}")
    return 1 if any(r["error"] for _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
