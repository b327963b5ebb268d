"""Run a learner's notebook, as *Run All* would, in a kernel under the sandbox's limits.

Every call of an exercise's checker (``check_safe_cosine(my_cos)``) is routed to the
grader's recorder before the cell runs: the cell calls ``__attnbook_grader__(
"check_safe_cosine", 12)(my_cos)`` instead, which saves the function it is given (with
cloudpickle, the state it uses at that moment) into ``answers/``, with where its code was
compiled (cloudpickle does not keep that), and checks nothing.
Whatever the notebook prints, and whatever it does to the ``attnbook`` it imported,
therefore decides nothing: the grader checks the saved functions afterwards, in a fresh
process (``attnbook.grade.checks``).

Each cell has a time limit of its own (a cell that loops is interrupted and the next one
runs), the notebook a limit in all, and each cell's text and images a size limit (a cell
past it is interrupted, its further output dropped).
"""

from __future__ import annotations

import ast
import asyncio
import copy
import logging
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from attnbook.grade import sandbox

RECORDER = "__attnbook_grader__"
_QUIET = logging.getLogger("attnbook.grade.nbclient")  # time-outs are verdicts, not log lines
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
CELL_TIMEOUT_ERROR = "CellTimeLimit"  # the error a cell stopped at its time limit shows

# Runs first, in the learner's kernel. The recorder keeps the last function each checker
# was given, pickled at the moment of the call, as the learner's own run would check it.
SETUP = '''\
def __attnbook_grader__(checker, cell, _folder={folder!r}):
    """The grader: keeps the function a cell gives to a checker, to check it later."""
    def take(answer=None, *args, **kwargs):
        import json
        import os
        code = getattr(answer, "__code__", None)
        record = {{"checker": checker, "cell": cell,
                  "file": str(getattr(code, "co_filename", "")),
                  "module": str(getattr(answer, "__module__", ""))}}
        path = os.path.join(_folder, checker + ".pkl")
        try:
            import cloudpickle

            with open(path, "wb") as f:
                f.write(cloudpickle.dumps(answer))
        except BaseException as err:  # too large, cannot be pickled, ...
            record["error"] = (type(err).__name__ + ": " + str(err))[:500]
            if os.path.exists(path):
                os.remove(path)
        with open(os.path.join(_folder, checker + ".json"), "w") as f:
            json.dump(record, f)
    return take
'''


def route_checks(source: str, checkers: set[str], cell: int) -> str | None:
    """The cell's code with every call of a checker routed to the recorder.

    None when the cell calls no checker, or does not parse (it then runs as it is, and
    the learner's error shows). IPython syntax (``%time``, ``!ls``) is translated first.
    """
    if not any(name in source for name in checkers):
        return None
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        code = TransformerManager().transform_cell(source)
        tree = ast.parse(code)
    except Exception:
        return None
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if name in checkers:
                spans.append((f.lineno, f.col_offset, f.end_lineno, f.end_col_offset, name))
    if not spans:
        return None
    lines = code.encode().splitlines(keepends=True)  # ast's columns count UTF-8 bytes
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    data = b"".join(lines)
    edits, end = [], -1
    for l0, c0, l1, c1, name in sorted(spans):
        a, b = starts[l0 - 1] + c0, starts[l1 - 1] + c1
        if a >= end:  # a call inside another routed call's callee is left alone
            edits.append((a, b, f"{RECORDER}({name!r}, {cell})".encode()))
            end = b
    for a, b, text in reversed(edits):
        data = data[:a] + text + data[b:]
    return data.decode()


class _KernelManager(AsyncKernelManager):
    """A kernel started through the sandbox launcher, with the notebook's limits."""

    limits: sandbox.Limits
    workdir: Path
    group: Path | None = None

    def format_kernel_cmd(self, extra_arguments=None):
        return sandbox.command(self.limits, self.workdir, super().format_kernel_cmd(
            extra_arguments), group=self.group)


class _Client(NotebookClient):
    """nbclient's client, with a cap on the size of each cell's outputs."""

    max_output_bytes = 2_000_000
    capped_cells: set
    _sizes: dict

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(
            len(str(v)) for v in (content.get("data") or {}).values())
        if msg.get("msg_type") != "error":
            self._sizes[cell_index] = self._sizes.get(cell_index, 0) + size
            if self._sizes[cell_index] > self.max_output_bytes:
                if cell_index not in self.capped_cells:  # stop the flood: interrupt the cell
                    self.capped_cells.add(cell_index)
                    asyncio.ensure_future(self.km.interrupt_kernel())
                return None
        return super().output(outs, msg, display_id, cell_index)


@dataclass
class KernelRun:
    """What happened when the notebook ran (indices are the learner's cell indices)."""

    nb: object                                   # the notebook with this run's outputs
    started: set[int] = field(default_factory=set)
    timed_out: dict[int, str] = field(default_factory=dict)   # cell -> which limit
    capped: set[int] = field(default_factory=set)  # cells whose output was cut
    stopped_at: int | None = None  # the cell that was running when the notebook stopped
    status: str = ""               # "timed out" or "error" when it stopped early
    problem: str = ""              # why it stopped early, in words
    seconds: float = 0.0


def execute(nb, workdir: Path, answers: Path, checkers: set[str], *, kernel: str,
            timeout: float, cell_timeout: float, limits: sandbox.Limits) -> KernelRun:
    """Run ``nb``'s cells in ``workdir`` (the learner's sources, checker calls routed).

    Returns the run, with the original sources and this run's outputs in ``run.nb``.
    """
    if not any(c.cell_type == "code" and c.source.strip() for c in nb.cells):
        return KernelRun(nb=copy.deepcopy(nb))  # nothing to run: no kernel
    with sandbox.process_group(limits) as group:
        return _execute(nb, workdir, answers, checkers, kernel=kernel, timeout=timeout,
                        cell_timeout=cell_timeout, limits=limits, group=group)


def _execute(nb, workdir, answers, checkers, *, kernel, timeout, cell_timeout, limits,
             group) -> KernelRun:
    from nbformat.v4 import new_code_cell

    run_nb = copy.deepcopy(nb)
    setup = new_code_cell(SETUP.format(folder=str(answers)))
    for index, cell in enumerate(run_nb.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            routed = route_checks(cell.source, checkers, index)
            if routed is not None:
                cell.source = routed
    run_nb.cells.insert(0, setup)
    run = KernelRun(nb=run_nb)

    km = _KernelManager(kernel_name=kernel, connection_file=str(workdir / "kernel.json"))
    km.limits, km.workdir, km.group = limits, workdir, group
    deadline = [float("inf")]
    stopped_by_limit: set[int] = set()

    def cell_limit(cell) -> float:
        return max(0.5, min(cell_timeout, deadline[0] - time.monotonic()))

    def on_cell_executed(cell, cell_index, execute_reply):
        if (execute_reply or {}).get("content", {}).get("ename") == CELL_TIMEOUT_ERROR:
            stopped_by_limit.add(cell_index - 1)

    client = _Client(run_nb, km=km, allow_errors=True, timeout_func=cell_limit,
                     interrupt_on_timeout=True, raise_on_iopub_timeout=True,
                     iopub_timeout=15, startup_timeout=120, shutdown_kernel="immediate",
                     error_on_timeout={"ename": CELL_TIMEOUT_ERROR, "evalue": "",
                                       "traceback": []},
                     on_cell_executed=on_cell_executed, log=_QUIET,
                     resources={"metadata": {"path": str(workdir)}})
    client.capped_cells, client._sizes = set(), {}
    client.max_output_bytes = int(limits.output_mb * 1_000_000)
    started = time.monotonic()
    process = None
    try:
        # The kernel's own output (its log, and what the code writes to the file
        # descriptors, os.system's say) goes nowhere: only the notebook's outputs count.
        with client.setup_kernel(env=sandbox.minimal_env(workdir), cwd=str(workdir),
                                 cleanup_kc=True, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL):
            process = getattr(km.provisioner, "process", None)
            if process is not None:
                sandbox.LIVE["pgids"].add(process.pid)  # its own session: pgid == pid
            client.execute_cell(setup, 0)
            errors = [o for o in setup.outputs if o.get("output_type") == "error"]
            if errors:
                run.status = "error"
                run.problem = f"the grader's setup failed in the kernel: {_error_text(errors[0])}"
                return run
            deadline[0] = time.monotonic() + timeout
            for index, cell in enumerate(run_nb.cells[1:]):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                if deadline[0] - time.monotonic() <= 0.5:
                    run.status = "timed out"
                    run.problem = f"the notebook ran out of its time limit of {timeout:g} s"
                    return run
                run.started.add(index)
                run.stopped_at = index
                limit = cell_limit(cell)
                client.execute_cell(cell, index + 1)
                if index in stopped_by_limit:
                    which = (f"the cell time limit of {cell_timeout:g} s" if limit >= cell_timeout
                             else f"the notebook's time limit of {timeout:g} s")
                    run.timed_out[index] = which
                    cell.outputs = [o for o in cell.outputs
                                    if o.get("ename") != "KeyboardInterrupt"]
                    cell.outputs.append(_error_output(CELL_TIMEOUT_ERROR, f"stopped after {which}"))
            run.stopped_at = None
    except CellTimeoutError:
        run.status = "timed out"
        run.problem = "a cell ran past its time limit and could not be interrupted"
    except DeadKernelError:
        run.status, run.problem = "error", _death(process, limits)
    except Exception as err:  # the kernel did not start, ...
        run.status = "error"
        run.problem = f"could not run: {type(err).__name__}: {one_line(str(err))}"
    finally:
        run.seconds = time.monotonic() - started
        run.capped = {i - 1 for i in client.capped_cells}
        for index in run.capped:
            run_nb.cells[index + 1].outputs.append(_error_output(
                "OutputLimit", f"the cell printed more than {limits.output_mb:g} MB: the rest "
                "was cut and the cell interrupted"))
        _kill_group(process)
        if process is not None:
            sandbox.LIVE["pgids"].discard(process.pid)
        del run_nb.cells[0]  # the grader's setup
        for ran, source in zip(run_nb.cells, nb.cells, strict=True):
            ran.source = source.source  # the learner's code, not the routed one
            if ran.cell_type == "code" and ran.get("execution_count"):
                ran.execution_count -= 1  # numbered as if the setup had not run
                for out in ran.outputs:
                    if out.get("execution_count"):
                        out.execution_count -= 1
    return run


def _error_output(ename: str, evalue: str):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _error_text(output) -> str:
    return one_line(f"{output.get('ename')}: {output.get('evalue')}")


def _death(process, limits: sandbox.Limits) -> str:
    """Why the kernel died, from its exit status where it can be had."""
    import signal

    code = process.poll() if process is not None else None
    if code == -signal.SIGXCPU:
        return f"the kernel exceeded its CPU time limit of {limits.cpu_s} s"
    if code is not None and code >= 0:
        return f"the kernel died: the code exited Python (exit status {code})"
    if code is not None:
        return (f"the kernel died ({signal.Signals(-code).name}): it crashed, or ran out of "
                "memory")
    return "the kernel died (the code exited Python, crashed or ran out of memory)"


def _kill_group(process) -> None:
    """Kill what is left of the kernel's process group (processes it forked, say)."""
    import os
    import signal

    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, without ANSI colours, at most ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
