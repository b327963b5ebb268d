"""Every notebook's code, top to bottom, on a GPU, without Jupyter: `bench/gpu.md`.

A GPU machine is sometimes at hand for a few minutes, with PyTorch (CUDA), matplotlib,
scikit-learn and PyTorch Geometric but no Jupyter and no network. This script needs none
of the rest: it reads each notebook as JSON, runs its code cells in order in a fresh
Python process (one per notebook, `src/` on the path so `attnbook` needs no install, the
figures drawn off-screen), with `ATTNBOOK_DEVICE` set, and reports each notebook's
verdict, seconds and the first error (the failing cell and its last line).

    python bench/gpu_check.py                        # ATTNBOOK_DEVICE=cuda, all notebooks
    python bench/gpu_check.py --device cpu notebooks/05_*.ipynb --output /tmp/cpu.md

Exit status 1 when a notebook fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "bench" / "gpu.md"


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def run_cells(path: Path) -> int:
    """In this process: run the notebook's code cells; print the failing cell and exit 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.show = lambda *args, **kwargs: plt.close("all")  # figures drawn, never shown
    os.chdir(path.parent)
    namespace: dict = {"__name__": "__main__"}
    for index, source in enumerate(code_cells(path)):
        try:
            exec(compile(source, f"{path.name}, code cell {index}", "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 - reported, then exit 1
            print(f"code cell {index}: {type(error).__name__}: {error}"[:300],
                  file=sys.stderr)
            return 1
        plt.close("all")
    return 0


def run(path: Path, device: str, timeout: float) -> dict:
    """One notebook in a fresh process: verdict, seconds, error."""
    env = dict(os.environ, ATTNBOOK_DEVICE=device, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--one", str(path)], env=env,
                              capture_output=True, text=True, timeout=timeout)
        error = proc.stderr.strip().splitlines()[-1] if proc.returncode else ""
    except subprocess.TimeoutExpired:
        error = f"timed out after {timeout:.0f} s"
    return {"seconds": time.perf_counter() - start, "error": error}


def notebooks() -> list[Path]:
    return (sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
            + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb")))


def table(rows: list[tuple[Path, dict]], device: str) -> str:
    try:
        import torch

        name = (torch.cuda.get_device_name() if device.startswith("cuda")
                else f"{device} ({platform.machine()})")
        versions = f"torch {torch.__version__}"
    except Exception as error:  # noqa: BLE001 - the table says so
        name, versions = "?", f"torch not importable ({error})"
    passed = sum(not r["error"] for _, r in rows)
    lines = ["# The notebooks on a GPU", "",
             f"`bench/gpu_check.py` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC: "
             f"every notebook's code cells, top to bottom, without Jupyter, with "
             f"`ATTNBOOK_DEVICE={device}`.",
             f"Device: {name}; {versions}, Python {platform.python_version()}.", "",
             "| notebook | verdict | seconds | first error |", "|---|---|---:|---|"]
    for path, r in rows:
        error = r["error"].replace("|", "\\|")
        shown = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
        lines.append(f"| {shown} | "
                     f"{'failed' if r['error'] else 'passed'} | {r['seconds']:.1f} | {error} |")
    lines += ["", f"{passed} of {len(rows)} notebooks passed, "
              f"{sum(r['seconds'] for _, r in rows):.0f} s in all."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return run_cells(args.one.resolve())
    rows = []
    for path in [p.resolve() for p in args.paths] or notebooks():
        rows.append((path, run(path, args.device, args.timeout)))
        r = rows[-1][1]
        print(f"{path.name}: {'FAILED ' + r['error'] if r['error'] else 'passed'} "
              f"({r['seconds']:.0f} s)", flush=True)
    args.output.write_text(table(rows, args.device), encoding="utf-8")
    print(f"-> {args.output}")
    return 1 if any(r["error"] for _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
