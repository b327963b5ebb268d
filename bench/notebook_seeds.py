"""A chapter notebook itself over training seeds and CPU instruction sets.

A trained number depends on the seed and on the CPU: PyTorch picks its vectorised
kernels by instruction set (AVX-512, AVX2, or none), and their rounding differs in the
last bit, which training amplifies. `ATEN_CPU_CAPABILITY` makes one machine run the
kernels of another. This script executes the notebook unchanged but for its seed (every
`SEED = ...` line and `set_seed(0)` call; fixed data seeds stay), once for every seed and
instruction set, in a fresh kernel each, and tabulates the values named by `--report` as
they stand at the end of the run, and every cell that failed (an assert that did not hold).

    .venv/bin/python bench/notebook_seeds.py notebooks/05_hard_soft_local.ipynb \\
        --report acc_global acc_local ratio_plain --output bench/ch05_seeds.md

The notebooks run one thread each (the book's `set_seed` sets it), two at a time.

The seed reaches only what `SEED` and `set_seed` seed: a notebook that seeds its data or
its models with other constants (chapter 6 does) gives the same row for every seed, and
then says only how the instruction sets differ; its seed study is `bench/chNN_seeds.py`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Stand-ins for other CPUs: PyTorch's own kernels (ATEN_CPU_CAPABILITY), MKL's code path
# (MKL_CBWR) and oneDNN's (ONEDNN_MAX_CPU_ISA). An AVX2 laptop runs "avx2-all".
CAPABILITIES = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "avx2-all": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
    "compatible": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
                   "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
SEED_LINE = re.compile(r"^SEED = \d+", flags=re.M)


def with_seed(nb, seed: int):
    """The notebook with every `SEED = ...` line and every `set_seed(0)` call given `seed`."""
    changed = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            source = SEED_LINE.sub(f"SEED = {seed}", cell.source)
            source = source.replace("set_seed(0)", f"set_seed({seed})")
            changed += source != cell.source
            cell.source = source
    if not changed and seed != 0:
        raise ValueError("no `SEED = ...` line and no set_seed(0) to replace")
    return nb


def run(path: str, seed: int, capability: str, report: list[str]) -> dict:
    """Execute one copy in a fresh kernel; the reported values and the failed cells."""
    # The kernel inherits the environment; a pool worker runs several jobs.
    for name in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA"):
        os.environ.pop(name, None)
    os.environ.update(CAPABILITIES[capability])
    import nbformat
    from nbclient import NotebookClient

    nb = with_seed(nbformat.read(path, as_version=4), seed)
    probe = f"""\
import json as _json
_values = {{}}
for _k in {report!r}:
    try:
        _values[_k] = float(eval(_k))
    except Exception:
        _values[_k] = None
print(_json.dumps(_values))
"""
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    client = NotebookClient(nb, timeout=1200, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(Path(path).parent)}})
    start = time.perf_counter()
    client.execute()
    failed = []
    for index, cell in enumerate(nb.cells[:-1]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                # the failing line: the traceback marks it with an arrow
                marked = [re.sub(r"\x1b\[[0-9;]*m", "", t) for t in out.get("traceback", [])]
                lines = [ln.split("---->", 1)[1].strip(" 0123456789")
                         for t in marked for ln in t.splitlines() if "---->" in ln]
                failed.append(f"cell {index} {out['ename']}"
                              + (f" ({lines[-1][:80]})" if lines else ""))
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    values = json.loads(text.strip().splitlines()[-1]) if text.strip() else {}
    return dict(seed=seed, capability=capability, values=values, failed=failed,
                seconds=time.perf_counter() - start)


def table(results: list[dict], report: list[str]) -> str:
    lines = ["| instruction set | seed | " + " | ".join(report) + " | failed cells | s |",
             "|---|---:|" + "---:|" * len(report) + "---|---:|"]
    for r in sorted(results, key=lambda r: (list(CAPABILITIES).index(r["capability"]), r["seed"])):
        values = " | ".join("?" if r["values"].get(k) is None else f"{r['values'][k]:.4g}"
                            for k in report)
        lines.append(f"| {r['capability']} | {r['seed']} | {values} | "
                     f"{'; '.join(r['failed']) or 'none'} | {r['seconds']:.0f} |")
    lines.append("| **min** | | " + " | ".join(
        f"{min(v):.4g}" if (v := [r['values'][k] for r in results
                                  if r['values'].get(k) is not None]) else "?"
        for k in report) + " | | |")
    lines.append("| **max** | | " + " | ".join(
        f"{max(v):.4g}" if (v := [r['values'][k] for r in results
                                  if r['values'].get(k) is not None]) else "?"
        for k in report) + " | | |")
    return "\n".join(lines)


def native() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--report", nargs="+", required=True,
                        help="expressions to tabulate, e.g. acc_local 'acc[\"none\"]'")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--capabilities", nargs="+", default=list(CAPABILITIES),
                        choices=list(CAPABILITIES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    jobs = [(str(args.notebook.resolve()), s, c, args.report)
            for c in args.capabilities for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:  # a fresh process per job: its own env
        results = list(pool.map(run, *zip(*jobs, strict=True)))
    held = all(not r["failed"] for r in results)
    text = f"""# {args.notebook.stem}: over seeds and instruction sets

`bench/notebook_seeds.py` on {dt.date.today().isoformat()}: the notebook executed unchanged
but for its seed, in a fresh kernel per run, one PyTorch thread. Instruction sets: `native`
is this machine's ({native()}); the others make it run the kernels of another CPU:
{"; ".join(f"`{k}` " + ", ".join(f"{n}={v}" for n, v in e.items())
           for k, e in CAPABILITIES.items() if e)}. The values are the
notebook's variables at the end of the run. Every assert of the notebook held on every
run: **{'yes' if held else 'no'}**.

{table(results, args.report)}
"""
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
