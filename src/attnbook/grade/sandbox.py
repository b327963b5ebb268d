"""Limits for learners' code: ``python sandbox.py [LIMITS] -- COMMAND...``.

The grader starts every kernel and every checking process through this small launcher.
It sets the resource limits, gives the working folder to the user the code runs as,
drops root's rights (when started as root, the code runs as ``nobody``), and then
replaces itself with COMMAND, which keeps the limits:

- ``RLIMIT_AS``: memory (address space); an allocation past it raises ``MemoryError``;
- ``RLIMIT_CPU``: CPU seconds; past it the process is killed (SIGXCPU, then SIGKILL);
- ``RLIMIT_NPROC``: processes and threads of the user, counted now plus an allowance, so
  that a fork bomb is refused by the OS. Root is exempt from this limit: as root the
  code runs as ``nobody`` when ``nobody`` can run this Python, and in a ``pids`` control
  group of its own (``process_group``) where the system lets root make one; the group
  also lets the grader kill every process the code started, even one that left its
  process group;
- ``RLIMIT_FSIZE``: the size of any one file written; ``RLIMIT_CORE``: no core dumps.

The environment is not set here: the grader passes a minimal one (``minimal_env``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one notebook's code may use; the grader's command line sets these."""

    memory_mb: int = 4096      # address space of each process
    cpu_s: int = 1200          # CPU seconds of the kernel (the checks get their own)
    processes: int = 64        # processes and threads beyond those the user runs now
    file_mb: int = 256         # the largest file the code may write
    output_mb: float = 2.0     # text and images a notebook may print, in all
    user: str = "nobody"       # whom the code runs as when the grader runs as root


def drop_to(user: str) -> tuple[int, int] | None:
    """(uid, gid) to run as: ``user``'s when this process is root, else None (stay)."""
    if os.geteuid() != 0 or not user:
        return None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


_USABLE: dict[str, str] = {}
_PROBING = threading.Lock()  # -j: notebooks graded in threads ask at once


def usable_user(user: str) -> str:
    """``user`` if this process is root and ``user`` can run this Python and the grader's
    imports; "" otherwise (the code then runs as this process's user)."""
    if os.geteuid() != 0 or not user:
        return ""
    with _PROBING:
        return _probe(user)


def _probe(user: str) -> str:
    if user not in _USABLE:
        probe = [sys.executable, "-I", "-c", "import cloudpickle, ipykernel, importlib.util as u;"
                 "assert u.find_spec('torch') and u.find_spec('attnbook')"]
        limits = Limits(user=user)
        folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"attnbook-probe-{uuid.uuid4().hex}"
        folder.mkdir(mode=0o700)
        try:
            done = subprocess.run(command(limits, folder, probe, cpu_s=60), cwd=folder,
                                  capture_output=True, timeout=120, env=minimal_env(folder))
            _USABLE[user] = user if done.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            _USABLE[user] = ""
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if not _USABLE[user]:
            print(f"grade: running as root, and user {user!r} cannot run {sys.executable} "
                  "with the grader's packages: learners' code runs as root (use --user, or a "
                  "container)", file=sys.stderr)
    return _USABLE[user]


def _pids_root() -> Path | None:
    """Where root can make a ``pids`` control group (cgroup v1 or v2), if anywhere."""
    if os.geteuid() != 0:
        return None
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "cgroup.procs").is_file() and os.access(v1, os.W_OK):
        return v1
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
        path = next(line.split("::", 1)[1] for line in own if line.startswith("0::"))
    except (OSError, StopIteration):
        return None
    v2 = Path("/sys/fs/cgroup") / path.lstrip("/")
    control = v2 / "cgroup.subtree_control"
    if control.is_file() and "pids" in control.read_text() and os.access(v2, os.W_OK):
        return v2
    return None


# What the grader started and has not cleaned up yet, so that an interrupted grader
# (Ctrl-C) can kill it all: process group ids, control groups, temporary folders.
LIVE: dict[str, set] = {"pgids": set(), "groups": set(), "folders": set()}


def stop_all() -> None:
    """Kill every process the grader started and remove its temporary folders."""
    for pgid in list(LIVE["pgids"]):
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for group in list(LIVE["groups"]):
        kill_group(group)
    for folder in list(LIVE["folders"]):
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def process_group(limits: Limits):
    """A fresh ``pids`` control group of at most ``limits.processes`` tasks (None where
    none can be made); on exit every process in it is killed and the group removed."""
    root = _pids_root()
    group = None
    if root is not None:
        try:
            group = root / f"attnbook-grade-{uuid.uuid4().hex[:12]}"
            group.mkdir()
            (group / "pids.max").write_text(str(limits.processes))
        except OSError:
            group = None
    if group is not None:
        LIVE["groups"].add(group)
    try:
        yield group
    finally:
        if group is not None:
            kill_group(group)
            LIVE["groups"].discard(group)


def kill_group(group: Path) -> None:
    """Kill every process in the control group ``group`` and remove it."""
    for _ in range(50):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        group.rmdir()


def _tasks_of(uid: int) -> int:
    """How many processes and threads ``uid`` runs now (what RLIMIT_NPROC counts)."""
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:  # the process ended meanwhile
            continue
    return count


def minimal_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The only environment learners' code sees: no tokens, keys or credentials.

    PATH and the locale are kept; HOME and TMPDIR are the notebook's own folder; PyTorch,
    OpenMP and BLAS run one thread each that sleeps when idle (graded notebooks run side
    by side, and spinning OpenMP threads of several processes starve each other).
    ``ATEN_CPU_CAPABILITY`` and ``ATTNBOOK_DEVICE`` pass through when the grader has them.
    """
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "ATEN_CPU_CAPABILITY",
                                      "ATTNBOOK_DEVICE") if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(HOME=str(home), TMPDIR=str(home), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE",
               PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def command(limits: Limits, workdir: Path, cmd: list[str], cpu_s: int | None = None,
            group: Path | None = None) -> list[str]:
    """``cmd`` prefixed by this launcher with ``limits`` (``cpu_s`` replaces the CPU limit),
    in the control group ``group`` if one is given."""
    # Run as a script (-I: standard library only): ``-m attnbook...`` would import the
    # package, and with it PyTorch, for every process the grader starts.
    return [sys.executable, "-I", str(Path(__file__).resolve()),
            "--memory-mb", str(limits.memory_mb), "--cpu-s", str(cpu_s or limits.cpu_s),
            "--processes", str(limits.processes), "--file-mb", str(limits.file_mb),
            "--user", limits.user, "--workdir", str(workdir),
            *(["--group", str(group)] if group else []), "--", *cmd]


def _give(folder: Path, uid: int, gid: int) -> None:
    """Make ``folder`` and everything in it belong to uid:gid (so the code can write there)."""
    for root, dirs, files in os.walk(folder):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, uid, gid, follow_symlinks=False)


def apply(memory_mb: int, cpu_s: int, processes: int, file_mb: int, user: str,
          workdir: Path | None, group: Path | None = None) -> None:
    """Set the limits on this process and become ``user`` if root (the order matters)."""
    if group is not None:  # while still root
        (group / "cgroup.procs").write_text(str(os.getpid()))
    target = drop_to(user)
    uid = target[0] if target else os.getuid()
    if workdir is not None and target:
        _give(workdir, *target)
    nproc = _tasks_of(uid) + processes
    for limit, value in ((resource.RLIMIT_AS, memory_mb * MB),
                         (resource.RLIMIT_CPU, (cpu_s, cpu_s + 5)),
                         (resource.RLIMIT_NPROC, nproc),
                         (resource.RLIMIT_FSIZE, file_mb * MB),
                         (resource.RLIMIT_CORE, 0)):
        soft, hard = value if isinstance(value, tuple) else (value, value)
        resource.setrlimit(limit, (soft, hard))
    if target:
        os.setgroups([])
        os.setgid(target[1])
        os.setuid(target[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sandbox.py")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--cpu-s", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--file-mb", type=int, required=True)
    parser.add_argument("--user", default="nobody")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--group", type=Path)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command to run")
    apply(args.memory_mb, args.cpu_s, args.processes, args.file_mb, args.user, args.workdir,
          args.group)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
