"""Grading runs learners' code: a hostile notebook becomes rows, not a dead machine.

One notebook does all of it, under small limits so that it cannot hurt the machine the
tests run on: it reads the environment, writes to its home and above its folder,
allocates 40 GB, prints without end, loops, and forks without end (each child sleeps,
so that nothing spins). The grader runs in a child process, and the fork bomb is
bounded twice: by the sandbox (RLIMIT_NPROC, or as root a pids control group) and, as a
last resort, by the notebook itself, which stops at 300 children.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from attnbook.grade import sandbox

ROOT = Path(__file__).resolve().parents[1]
FORK_LIMIT = 16

HOSTILE = [
    "import os\nfrom pathlib import Path\n\n"
    "assert 'ATTNBOOK_TEST_SECRET' not in os.environ, 'the token leaked'\n"
    "print(Path.home())",
    "Path.home().joinpath('dropped.txt').write_text('x')\n"
    "Path('../escaped.txt').write_text('x')",
    "hog = bytearray(40 * 2**30)",
    "while True:\n    print('flood ' * 100)",
    "print('after the flood')",
    "import time\n\nwhile True:\n    time.sleep(0.05)",
    "print('after the loop')",
    "children = 0\ntry:\n    while children < 300:\n        if os.fork() == 0:\n"
    "            time.sleep(120)\n            os._exit(0)\n        children += 1\n"
    "except OSError as err:\n    print(f'refused after {children} children: {err}')\n"
    "assert children < 300, 'no process limit'",
]


def _process_limit_applies() -> bool:
    """Root is exempt from RLIMIT_NPROC: it needs a pids control group (or a user)."""
    return os.geteuid() != 0 or sandbox._pids_root() is not None or \
        bool(sandbox.usable_user("nobody"))


@pytest.mark.skipif(not _process_limit_applies(),
                    reason="running as root without a pids control group or a user to "
                           "run as: the OS puts no limit on root's processes")
def test_hostile_notebook_is_contained_and_reported(tmp_path):
    folder = tmp_path / "class" / "mallory"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in HOSTILE]
    nbformat.write(nb, folder / "hostile.ipynb")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, ATTNBOOK_TEST_SECRET="s3cret", TMPDIR=str(scratch), HOME=str(home))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "attnbook.grade", "--json", str(tmp_path / "class"),
         "--out", str(out), "--memory-mb", "1024", "--max-processes", str(FORK_LIMIT),
         "--max-output-mb", "0.2", "--timeout", "120", "--cell-timeout", "5"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 1, done.stdout + done.stderr
    ran = nbformat.read(out / "feedback" / "mallory" / "hostile.ipynb", 4)
    cells = [c for c in ran.cells if c.cell_type == "code"]

    def text(i):
        return "".join(o.get("text", "") for o in cells[i].outputs)

    def errors(i):
        return [o.ename for o in cells[i].outputs if o.output_type == "error"]

    # No inherited secret (the assert passed), and a home of its own.
    assert errors(0) == [] and str(home) not in text(0)
    # Nothing written outside the output folder: the notebook's folder, home and "../"
    # were temporary, and are gone.
    assert errors(1) == []
    assert sorted(p.name for p in folder.iterdir()) == ["hostile.ipynb"]
    assert not list(home.rglob("dropped.txt")) and list(scratch.iterdir()) == []
    # 40 GB: a MemoryError in its cell, the kernel lives on.
    assert errors(2) == ["MemoryError"]
    # The flood is cut and interrupted, the loop stopped; the next cells run.
    assert "OutputLimit" in errors(3) and len(text(3)) < 300_000
    assert text(4) == "after the flood\n"
    assert errors(5) == ["CellTimeLimit"] and text(6) == "after the loop\n"
    # The fork bomb is refused by the OS, well below the notebook's own stop.
    assert "refused after" in text(7) and errors(7) == [], text(7)
    assert int(text(7).split()[2]) < FORK_LIMIT
    problems = done.stdout
    for expected in ("exceeded the memory limit of 1024 MB (MemoryError)",
                     "printed more than 0.2 MB of output",
                     "stopped after the cell time limit of 5 s"):
        assert expected in problems, problems
    # Every process the notebook started is gone.
    left = subprocess.run(["pgrep", "-f", str(scratch)], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout


def test_kernel_sees_a_minimal_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    env = sandbox.minimal_env(tmp_path)
    assert "GITHUB_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["HOME"] == env["TMPDIR"] == str(tmp_path)
    assert env["OMP_NUM_THREADS"] == "1" and env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_sandbox_sets_the_limits_before_the_command_runs(tmp_path):
    limits = sandbox.Limits(memory_mb=700, cpu_s=30, processes=50, file_mb=1, user="")
    probe = ("import resource as r; print(r.getrlimit(r.RLIMIT_AS)[0] >> 20, "
             "r.getrlimit(r.RLIMIT_CPU)[0], r.getrlimit(r.RLIMIT_FSIZE)[0] >> 20, "
             "r.getrlimit(r.RLIMIT_CORE)[0]);"
             "open('big', 'wb').write(b'x' * 2**21)")
    done = subprocess.run(sandbox.command(limits, tmp_path, [sys.executable, "-c", probe]),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["700", "30", "1", "0"], done.stdout + done.stderr
    assert "File too large" in done.stderr  # a 2 MB file past the 1 MB limit
