"""The grader cannot be fooled: every trick of issue 27 is planted here and fails.

When the grader read the verdicts from what a notebook printed, each of these passed:
a fake "✓" line after a stub; a ``check_...`` redefined in the notebook; the package's
own reference given as the answer (tests/test_grade.py: chapter 1's ``_top_k``) or
called from a wrapper; ``check_function`` monkeypatched before the import, every
exercise a stub; a wrong answer in ``try/except`` that prints "✓". Now each checker call
hands the function to the grader, which checks it in a fresh process with the package's
checkers. Also here: an answer that loops costs only its own exercise, and the unit
tests of the pieces (routing the calls, recognising the learner's own code).
"""

from __future__ import annotations

import types

import nbformat
import pytest

from attnbook.grade import INVALID, NOT_ATTEMPTED, PASSED, TIMED_OUT, WRONG, Settings, grade
from attnbook.grade.checks import not_own_code, uses_the_package
from attnbook.grade.run import RECORDER, route_checks

CELL = "/tmp/ipykernel_41/2871.py"  # where ipykernel compiles a cell


def _write(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def _verdicts(graded):
    return {r.exercise: (r.status, r.detail) for r in graded.rows}


def test_fake_tick_redefined_checker_and_a_wrapper_around_the_reference(tmp_path):
    nb = _write(
        tmp_path / "01_mallory.ipynb",
        "import torch\nimport attnbook.exercises.ch01 as ch01\n"
        "from attnbook.exercises.ch01 import check_bilinear_scores, check_safe_cosine",
        # 1. a stub, then the ✓ line the checker prints for a right answer
        "def my_cos(Q, K):\n    raise NotImplementedError\n\n\ncheck_safe_cosine(my_cos)\n"
        "print('✓ cosine with zero vectors: all 6 cases pass.')",
        # 2. a checker of the learner's own that always says ✓
        "def check_top_k_keys(fn):\n    print('✓ top-k keys: all 6 cases pass.')\n\n\n"
        "def my_top(Q, K, k):\n    raise NotImplementedError\n\n\ncheck_top_k_keys(my_top)",
        # 3. the package's reference, wrapped in a function of the notebook
        "def my_scores(Q, K_cols, W):\n    return ch01._bilinear(Q, K_cols, W)\n\n\n"
        "check_bilinear_scores(my_scores)")
    verdicts = _verdicts(grade(nb, Settings(timeout=120)))
    assert verdicts["safe_cosine"] == (NOT_ATTEMPTED, "")
    assert verdicts["top_k_keys"] == (NOT_ATTEMPTED, "")
    assert verdicts["bilinear_scores"] == (
        INVALID, "the answer uses the checker's own code (attnbook.exercises.ch01._bilinear): "
                 "write the function yourself")


def test_monkeypatched_checker_try_except_tick_and_a_looping_answer(tmp_path):
    nb = _write(
        tmp_path / "02_mallory.ipynb",
        # 4. every checker of the kernel's attnbook says ✓, before the chapter's import
        "import math\nimport torch\nimport attnbook.exercises.checker as checker\n\n\n"
        "def always(fn, *, exercise, **kwargs):\n"
        "    print(f'✓ {exercise}: all cases pass.')\n    return True\n\n\n"
        "checker.check_function = always\n"
        "import attnbook.exercises.ch02 as ch02\n\nch02.check_function = always\n"
        "from attnbook.exercises.ch02 import (check_js_divergence, check_masked_logsumexp,\n"
        "    check_softmax_jvp, check_temperature_for_top_weight)",
        "def my_lse(scores, keep):\n    raise NotImplementedError\n\n\n"
        "check_masked_logsumexp(my_lse)",
        # 5. a wrong answer (no centring) whose ✗ is caught and replaced by a ✓
        "def my_jvp(z, v):\n    return torch.softmax(z, dim=-1) * v\n\n\ntry:\n"
        "    check_softmax_jvp(my_jvp)\nexcept Exception:\n"
        "    print('✓ softmax JVP: all cases pass.')",
        # an answer that never returns: only this exercise times out ...
        "def my_tau(scores, target, lo=1e-4, hi=1e4):\n    while True:\n        pass\n\n\n"
        "check_temperature_for_top_weight(my_tau)",
        # ... and the right answer after it still passes
        "def kl_bits(p, m):\n    safe_m = torch.where(p > 0, m, 1.0)\n"
        "    return (p * torch.log2(torch.where(p > 0, p / safe_m, 1.0))).sum(-1)\n\n\n"
        "def my_js(P, Q):\n    M = (P + Q) / 2\n    return (kl_bits(P, M) + kl_bits(Q, M)) / 2"
        "\n\n\ncheck_js_divergence(my_js)")
    verdicts = _verdicts(grade(nb, Settings(timeout=120, exercise_timeout=8)))
    assert verdicts["masked_logsumexp"] == (NOT_ATTEMPTED, "")
    assert verdicts["softmax_jvp"][0] == WRONG, verdicts
    assert verdicts["temperature_for_top_weight"] == (
        TIMED_OUT, "the check ran past the exercise time limit of 8 s (a loop that never ends?)")
    assert verdicts["js_divergence"] == (PASSED, "")


# ------------------------------------------------------------------ the pieces, no kernel

def test_route_checks_routes_every_call_of_a_checker_and_nothing_else():
    source = ("%time x = 1\n"
              "check_safe_cosine(my_cos)  # café\n"
              "ok = ch01.check_top_k_keys(\n    my_top)\n"
              "check_shape(x, ('T',))\n"
              "for f in (a, b):\n    check_safe_cosine(f)\n")
    routed = route_checks(source, {"check_safe_cosine", "check_top_k_keys"}, 7)
    assert routed.count(f"{RECORDER}('check_safe_cosine', 7)(my_cos)  # café") == 1
    assert f"ok = {RECORDER}('check_top_k_keys', 7)(\n    my_top)" in routed
    assert f"{RECORDER}('check_safe_cosine', 7)(f)" in routed
    assert "check_shape(x, ('T',))" in routed
    assert "get_ipython().run_line_magic('time', 'x = 1')" in routed
    assert route_checks("print(1)", {"check_safe_cosine"}, 0) is None
    # A cell that does not parse runs as it is: the learner sees their SyntaxError.
    assert route_checks("def f(:\n    check_safe_cosine(f)", {"check_safe_cosine"}, 0) is None


def _from_cell(source: str, name: str, **extra):
    namespace = {"__name__": "__main__", **extra}
    exec(compile(source, CELL, "exec"), namespace)  # noqa: S102 - a notebook cell, as ipykernel does
    return namespace[name]


def test_own_code_is_a_function_written_in_a_cell_that_does_not_use_the_checkers():
    import attnbook
    import attnbook.exercises.ch01 as ch01

    own = _from_cell("def my(Q, K, W):\n    return Q @ W @ K\n", "my")
    assert not_own_code(own, CELL) is None
    assert "a function from a package" in not_own_code(ch01._bilinear, CELL)
    copied = types.FunctionType(ch01._bilinear.__code__, {"__name__": "__main__"})
    assert "not written in a notebook cell" in not_own_code(copied, ch01.__file__)
    assert "not a function" in not_own_code(len, CELL)
    # Uses of the checkers' code, however reached by name:
    for source, extra in [
        ("def my(Q, K, W):\n    return ch01._bilinear(Q, K, W)\n", {"ch01": ch01}),
        ("def my(Q, K, W):\n    return attnbook.exercises.ch01._bilinear(Q, K, W)\n",
         {"attnbook": attnbook}),
        ("def helper(Q, K, W):\n    return ref(Q, K, W)\n\n\n"
         "def my(Q, K, W):\n    return helper(Q, K, W)\n", {"ref": ch01._bilinear}),
        ("def my(Q, K, W, ref=ref):\n    return ref(Q, K, W)\n", {"ref": ch01._bilinear}),
    ]:
        fn = _from_cell(source, "my", **extra)
        assert uses_the_package(fn), source
        assert "uses the checker's own code" in not_own_code(fn, CELL)
    # attnbook's other modules are fine to use (later chapters import earlier ones).
    fn = _from_cell("def my(x):\n    return attnbook.softmax.softmax(x)\n", "my",
                    attnbook=attnbook)
    assert not_own_code(fn, CELL) is None


@pytest.mark.parametrize("origin", ["<ipython-input-3-ab12cd>", CELL])
def test_cell_file_names_of_ipython_and_ipykernel(origin):
    own = _from_cell("f = lambda x: x\n", "f")
    assert not_own_code(own, origin) is None


def test_an_answer_that_patches_the_checker_while_checked_is_not_graded(tmp_path):
    """The crude attack on the grader itself: patch the checker from inside the answer."""
    import cloudpickle

    import attnbook.exercises.ch01 as ch01
    from attnbook.grade.checks import ERROR, _in_child

    patch = _from_cell(
        "def my(Q, K_cols, W):\n"
        "    import attnbook.exercises.checker as checker\n"
        "    checker.make_compare = lambda *a, **k: (lambda got, expected: None)\n"
        "    return Q\n", "my")
    saved = tmp_path / "answer.pkl"
    saved.write_bytes(cloudpickle.dumps(patch))
    verdict = _in_child(ch01.check_bilinear_scores, str(saved), CELL, timeout=60)
    assert verdict["status"] == ERROR, verdict
    assert "changed the grader's code while it was checked (attnbook.exercises.checker." \
           "make_compare)" in verdict["detail"]
