"""Time every notebook: `make bench` -> bench/notebooks.md.

Each notebook (chapters, then solutions) runs once, top to bottom, in a fresh Jupyter
kernel, the way a reader runs it. For each we record the seconds its cells take (kernel
start-up excluded) and the peak resident memory of the kernel process (`ru_maxrss`, read
inside the kernel after the last cell), then write a Markdown table with the total, the
machine's core count, the load average at the start (other work inflates the times) and
the date.

    .venv/bin/python bench/run.py                     # all notebooks -> bench/notebooks.md
    .venv/bin/python bench/run.py notebooks/01_*.ipynb --output /tmp/bench.md

With `--load N` (`make bench` passes 2) each notebook then runs a second time beside N
other PyTorch processes that train a small network with PyTorch's default settings (all
cores, spinning OpenMP threads: what a second notebook, parallel tests or grading look
like), started before and stopped after it; the table gains the loaded seconds and their
ratio to the idle ones. A fair share of 2 cores among 3 busy programs is 1.5x, so 3x is
the bar; a notebook whose threads spin against the others' would be 10-70x.

Exit status 1 when a notebook fails (the table still lists it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import re
import subprocess
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


# A background PyTorch process with default settings: a small network trained forever.
LOADER = """\
import torch
net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64))
opt = torch.optim.Adam(net.parameters())
x = torch.randn(512, 64)
while True:
    loss = net(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


@contextlib.contextmanager
def loaders(count: int):
    """`count` background PyTorch processes with PyTorch's default threads and wait policy."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY")}
    # Each in a session of its own, like a second notebook kernel (which Jupyter starts in
    # one): where the scheduler groups by session, each gets its share as a program would.
    procs = [subprocess.Popen([sys.executable, "-c", LOADER], env=env, start_new_session=True)
             for _ in range(count)]
    try:
        time.sleep(2)  # torch imported, training
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


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
    ]
    loaded = any("loaded" in r for _, r in rows)
    if loaded:
        lines += [f"Loaded: the same notebook beside {rows[0][1]['load']} PyTorch processes "
                  "training with default settings (`--load`); x idle: loaded / idle seconds.",
                  ""]
    lines += [
        "| notebook | seconds | peak memory (MiB) | budget (s) |"
        + (" loaded (s) | x idle |" if loaded else ""),
        "|---|---:|---:|---:|" + ("---:|---:|" if loaded else ""),
    ]
    for path, r in rows:
        limit = budget(path)
        flag = "" if limit is None or r["seconds"] <= limit else " over budget"
        seconds = f"{r['seconds']:.1f}" + (f" (failed: {r['error']})" if r["error"] else "")
        line = (f"| {shown(path)} | {seconds} | "
                f"{r['peak'] / 2**20:.0f} | {limit if limit else ''}{flag} |")
        if loaded:
            line += f" {r['loaded']:.1f} | {r['loaded'] / r['seconds']:.1f} |"
        lines.append(line)
    total = sum(r["seconds"] for _, r in rows)
    peak = max(r["peak"] for _, r in rows)
    line = (f"| **total ({len(rows)} notebook{'s' * (len(rows) != 1)})** | **{total:.1f}** "
            f"(= {total / 60:.1f} min) | max {peak / 2**20:.0f} | |")
    if loaded:
        total_loaded = sum(r["loaded"] for _, r in rows)
        worst = max(r["loaded"] / r["seconds"] for _, r in rows)
        line += f" **{total_loaded:.1f}** | {total_loaded / total:.1f} (worst {worst:.1f}) |"
    lines.append(line)
    lines += ["", f"Wall time of the whole run, kernel start-ups included: {wall:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--load", type=int, default=0,
                        help="also run each notebook beside this many busy PyTorch processes")
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
        print(f"{result['seconds']:.1f} s, {result['peak'] / 2**20:.0f} MiB, {status}", end="",
              flush=True)
        if args.load:
            with loaders(args.load):
                result["loaded"], result["load"] = run(path)["seconds"], args.load
            print(f"; loaded {result['loaded']:.1f} s", end="")
        print(flush=True)
    text = table(rows, started, load, time.perf_counter() - begin)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"\n{text}\nwritten to {args.output}")
    return 1 if any(r["error"] for _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
