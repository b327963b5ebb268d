"""The grader's checks, in a fresh process: ``python -m attnbook.grade.checks SPEC``.

SPEC (JSON) lists the exercises: ``[{"checker": "check_safe_cosine", "module":
"attnbook.exercises.ch01", "answer": "/.../answers/check_safe_cosine.pkl", "origin":
"/tmp/ipykernel_7/123.py"}, ...]`` (origin: where the kernel compiled the function) and
``"timeout"``, the time limit of one exercise in seconds. This process imports the
chapters' checkers before it sees any of the learner's code; then, for each exercise, a
forked child loads the learner's function, makes sure it is the learner's own (a function
written in a notebook cell, not one taken from the package), and calls the package's
checker on it. The child reports its verdict through a pipe; the parent kills it at the
time limit, so one exercise that loops costs only its own verdict. The verdicts are
printed as one JSON object, by checker name.

The grader runs this process through the sandbox launcher, like the kernel.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import json
import os
import re
import resource
import select
import signal
import sys
import time
import types

PASSED, WRONG, NOT_ATTEMPTED, ERROR, TIMED_OUT, INVALID = (
    "passed", "wrong", "not attempted", "error", "timed out", "not own code")
# Where IPython compiles a cell: "/tmp/ipykernel_123/4567.py" (ipykernel 6+) or
# "<ipython-input-3-ab12>" (older IPython).
CELL_FILE = re.compile(r"(^<ipython-input-\d+-[0-9a-f]+>$)|([/\\]ipykernel_\d+[/\\]\d+\.py$)")
PACKAGE = "attnbook.exercises"


def _codes(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _from_package(obj, names: set[str]) -> str | None:
    """The package object ``obj`` is (or leads to with the attribute ``names``), if any."""
    if isinstance(obj, types.ModuleType):
        if obj.__name__ == "attnbook" and "exercises" in names:
            obj = importlib.import_module(PACKAGE)
        if not obj.__name__.startswith(PACKAGE):
            return None
        used = sorted(n for n in names if not n.startswith("__") and hasattr(obj, n))
        return ", ".join(f"{obj.__name__}.{n}" for n in used) or obj.__name__
    try:
        module = getattr(obj, "__module__", None) or ""
    except Exception:
        return None
    if isinstance(module, str) and module.startswith(PACKAGE):
        return f"{module}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    return None


def uses_the_package(fn, seen: set[int] | None = None) -> list[str]:
    """The parts of ``attnbook.exercises`` (the checkers and their references) that ``fn``
    uses, through the names its code reads, its closure and defaults, and the functions
    and classes of the notebook it calls. Found by reading, not running: a determined
    detour (``importlib`` with a computed name) is not seen."""
    seen = set() if seen is None else seen
    if id(fn) in seen:
        return []
    seen.add(id(fn))
    found: list[str] = []
    if isinstance(fn, type):
        for value in vars(fn).values():
            value = getattr(value, "__func__", value)
            if isinstance(value, types.FunctionType):
                found += uses_the_package(value, seen)
        return found
    if not isinstance(fn, types.FunctionType):
        return found
    names = set().union(*(c.co_names for c in _codes(fn.__code__)))
    values = [fn.__globals__[n] for n in names if n in fn.__globals__]
    values += [c.cell_contents for c in fn.__closure__ or () if _filled(c)]
    values += list(fn.__defaults__ or ()) + list((fn.__kwdefaults__ or {}).values())
    for value in values:
        hit = _from_package(value, names)
        if hit:
            found.append(hit)
        elif getattr(value, "__module__", None) == "__main__" and \
                isinstance(value, types.FunctionType | type):
            found += uses_the_package(value, seen)
    return list(dict.fromkeys(found))


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises ValueError
    except ValueError:
        return False
    return True


def not_own_code(fn, origin: str = "") -> str | None:
    """Why ``fn`` is not the learner's own answer, or None if it is.

    ``origin``: the file its code was compiled from, as the recorder saw it in the kernel
    (cloudpickle replaces it by "<dynamic-code>").
    """
    if not isinstance(fn, types.FunctionType):
        return (f"the answer is a {type(fn).__name__}, not a function written in the "
                "notebook (def ... or lambda)")
    if fn.__module__ != "__main__":
        return (f"the answer is {fn.__module__}.{fn.__qualname__}, a function from a package, "
                "not one written in the notebook")
    if not CELL_FILE.search(origin):
        return (f"the answer's code was not written in a notebook cell (it comes from "
                f"{origin or 'nowhere known'})")
    used = uses_the_package(fn)
    if used:
        return (f"the answer uses the checker's own code ({', '.join(used[:3])}): "
                "write the function yourself")
    return None


def _snapshot() -> dict[tuple[str, str], int]:
    """The identity of every function and class in the checkers, builtins, torch and numpy."""
    names = [n for n in sys.modules if n.startswith(PACKAGE)] + ["builtins", "torch", "numpy"]
    snap = {}
    for name in names:
        module = sys.modules.get(name)
        for key, value in list(vars(module).items()) if module else ():
            if callable(value):
                snap[(name, key)] = id(value)
    return snap


def _tampered(before: dict, after: dict) -> list[str]:
    return [f"{m}.{k}" for (m, k), v in before.items() if after.get((m, k)) != v]


def check_one(checker, path: str, origin: str = "") -> dict:
    """Load the answer saved at ``path`` and check it (in the child process)."""
    import cloudpickle

    from attnbook.exercises import ExerciseError

    before = _snapshot()
    started = time.monotonic()
    try:
        with open(path, "rb") as f:
            fn = cloudpickle.loads(f.read())
    except BaseException as err:
        return {"status": ERROR, "detail": "the grader could not load the function from the "
                f"notebook: {type(err).__name__}: {str(err)[:300]}"}
    reason = not_own_code(fn, origin)
    if reason:
        return {"status": INVALID, "detail": reason}
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            result = checker(fn)
    except ExerciseError as err:
        verdict = {"status": WRONG, "detail": str(err)}
    except MemoryError:
        verdict = {"status": ERROR, "detail": "exceeded the memory limit while checking"}
    except BaseException as err:  # the checker itself failed on this answer
        verdict = {"status": ERROR, "detail": f"the check failed: {type(err).__name__}: "
                                              f"{str(err)[:300]}"}
    else:
        verdict = {"status": PASSED if result else NOT_ATTEMPTED, "detail": ""}
    changed = _tampered(before, _snapshot())
    if changed:
        verdict = {"status": ERROR, "detail": "the answer changed the grader's code while "
                   f"it was checked ({', '.join(changed[:3])}): not graded"}
    verdict["seconds"] = round(time.monotonic() - started, 2)
    return verdict


def _in_child(checker, path: str, origin: str, timeout: float) -> dict:
    """``check_one`` in a forked child, killed at ``timeout`` seconds."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own process group, no terminal output, a CPU limit
        try:
            os.close(read)
            os.setpgid(0, 0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            cpu = int(timeout) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            verdict = check_one(checker, path, origin)
            os.write(write, json.dumps(verdict).encode())
        finally:
            os._exit(0)
    os.close(write)
    with contextlib.suppress(OSError):  # whichever of the two runs first
        os.setpgid(pid, pid)
    deadline = time.monotonic() + timeout
    data, timed_out = b"", False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read], [], [], left)
        if ready:
            chunk = os.read(read, 65536)
            if not chunk or len(data) > 1_000_000:
                break
            data += chunk
    os.close(read)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"status": TIMED_OUT, "detail": f"the check ran past the exercise time limit "
                                               f"of {timeout:g} s (a loop that never ends?)"}
    try:
        verdict = json.loads(data)
        assert verdict["status"] in (PASSED, WRONG, NOT_ATTEMPTED, ERROR, INVALID)
        return verdict
    except Exception:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        if sig == signal.SIGXCPU:
            return {"status": TIMED_OUT, "detail": "the check used more CPU time than the "
                                                   f"exercise time limit of {timeout:g} s"}
        what = f"signal {signal.Signals(sig).name}" if sig else f"exit status {status >> 8}"
        return {"status": ERROR, "detail": f"the check crashed ({what}): the answer exited "
                                           "Python, crashed or ran out of memory"}


def main(argv: list[str] | None = None) -> None:
    spec = json.loads((argv or sys.argv[1:])[0])
    checkers = {}
    for item in spec["exercises"]:
        module = importlib.import_module(item["module"])
        checkers[item["checker"]] = getattr(module, item["checker"])
    import cloudpickle  # noqa: F401 - imported once here, before any fork

    verdicts = {item["checker"]: _in_child(checkers[item["checker"]], item["answer"],
                                           item.get("origin", ""), spec["timeout"])
                for item in spec["exercises"]}
    builtins.print(json.dumps(verdicts))


if __name__ == "__main__":
    main()
