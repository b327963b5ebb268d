"""The exercise-checker framework shared by every chapter."""

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


class ExerciseError(AssertionError):
    """An answer is wrong; the message says what is wrong and how to look for it."""


class CheckResult:
    """What a checker returns: truthy when every case passed, falsy for a stub.

    The checker has already printed its verdict, so a notebook cell that ends with
    ``check_...(my_fn)`` shows that line alone, not an extra ``True`` or ``False``.
    """

    def __init__(self, passed: bool):
        self.passed = passed

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        pass  # the verdict was printed already


@dataclass
class Case:
    """One call of the reader's function: ``fn(*args, **kwargs)``."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def call(self, fn):
        # Deep copies: a function that modifies its input must not spoil the next call.
        return fn(*copy.deepcopy(self.args), **copy.deepcopy(self.kwargs))


@dataclass
class Mistake:
    """A classic mistake, recognised by a wrong implementation or by a test of the output.

    ``wrong(*args)`` computes what the mistaken code returns; if the reader's
    answer equals it, this mistake is named. ``detect(got, expected, case)``
    recognises it from the outputs instead. Give one of the two.
    """

    name: str
    hint: str
    wrong: Callable[..., Any] | None = None
    detect: Callable[[Any, Any, Case], bool] | None = None

    def __post_init__(self):
        if (self.wrong is None) == (self.detect is None):
            raise ValueError(f"Mistake {self.name!r}: give exactly one of wrong= or detect=")

    def matches(self, got, expected, case: Case, compare) -> bool:
        try:
            if self.detect is not None:
                return bool(self.detect(got, expected, case))
            return compare(got, case.call(self.wrong)) is None
        except Exception:  # a recogniser that cannot apply to this answer does not match
            return False


def to_numpy(x) -> np.ndarray | None:
    """A tensor, array or number as a NumPy array; ``None`` for anything else."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, int | float | np.number) and not isinstance(x, bool):
        return np.asarray(x)
    return None


def _compare_one(got, expected, atol: float, rtol: float) -> str | None:
    """None if ``got`` equals ``expected`` within tolerance, else what differs, in words."""
    if got is None:
        return "your function returned None: did you forget the `return` statement?"
    if isinstance(expected, bool | str):
        if got == expected:
            return None
        return f"you returned {got!r}, the answer is {expected!r}"
    want = to_numpy(expected)
    have = to_numpy(got)
    if have is None:
        kind = "a tensor" if isinstance(expected, torch.Tensor) else "an array or a number"
        extra = " (wrap it: torch.tensor(...))" if isinstance(got, list | tuple) else ""
        return f"you returned a {type(got).__name__}, but the answer is {kind}{extra}"
    if have.shape != want.shape:
        hint = " (transposed?)" if have.shape == want.shape[::-1] and have.ndim > 1 else ""
        return f"your result has shape {tuple(have.shape)}, expected {tuple(want.shape)}{hint}"
    have = have.astype(np.float64) if have.dtype != bool else have
    want = want.astype(np.float64) if want.dtype != bool else want
    bad = np.isnan(have) & ~np.isnan(want)
    if bad.any():
        return (f"your result has nan at {int(bad.sum())} place(s) where the answer is a "
                f"number (first at index {tuple(int(i) for i in np.argwhere(bad)[0])})")
    if np.allclose(have, want, atol=atol, rtol=rtol, equal_nan=True):
        return None
    diff = np.abs(np.nan_to_num(have - want, nan=np.inf))
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    return (f"values differ: at index {tuple(int(i) for i in idx)} you have "
            f"{float(have[idx]):.6g}, expected {float(want[idx]):.6g}")


def make_compare(atol: float = 1e-5, rtol: float = 1e-4) -> Callable[[Any, Any], str | None]:
    """A comparison that also walks tuples and lists of outputs (e.g. ``(output, weights)``)."""

    def compare(got, expected) -> str | None:
        if isinstance(expected, tuple | list):
            if not isinstance(got, tuple | list) or len(got) != len(expected):
                return (f"expected {len(expected)} return values "
                        f"({type(expected).__name__}), got {type(got).__name__}"
                        + (f" of length {len(got)}" if isinstance(got, tuple | list) else ""))
            for i, (g, e) in enumerate(zip(got, expected, strict=True)):
                problem = compare(g, e)
                if problem is not None:
                    return f"return value {i}: {problem}"
            return None
        try:
            return _compare_one(got, expected, atol, rtol)
        except Exception as err:  # the checker must never crash on an odd answer
            return f"your result could not be compared with the answer ({err})"

    return compare


def check_function(fn, *, exercise: str, reference: Callable, cases: list[Case],
                   mistakes: tuple[Mistake, ...] | list[Mistake] = (),
                   compare: Callable[[Any, Any], str | None] | None = None,
                   validate: Callable[[Any, Case], str | None] | None = None) -> CheckResult:
    """Check ``fn`` against ``reference`` on ``cases``.

    Returns a truthy ``CheckResult`` (and prints ✓) when every case passes, a falsy
    one when ``fn`` is an unattempted stub; raises ``ExerciseError`` naming the
    mistake otherwise.
    ``validate(got, case)`` may add a check of its own (a message, or None).
    """
    compare = compare or make_compare()
    if not callable(fn):
        raise ExerciseError(f"✗ {exercise}: pass your function itself, e.g. check(my_fn), "
                            f"not {type(fn).__name__}")
    for n, case in enumerate(cases, 1):
        label = case.label or f"case {n}"
        try:
            got = case.call(fn)
        except NotImplementedError:
            print(f"… {exercise}: not attempted yet — replace `raise NotImplementedError` "
                  "with your code and run this cell again.")
            return CheckResult(False)
        except Exception as err:
            raise ExerciseError(f"✗ {exercise}: your function raised {type(err).__name__}: "
                                f"{err} (on {label})") from err
        expected = case.call(reference)
        problem = compare(got, expected)
        if problem is None and validate is not None:
            problem = validate(got, case)
        if problem is not None:
            raise ExerciseError(_explain(exercise, label, problem, got, expected, case,
                                         mistakes, compare))
    print(f"✓ {exercise}: all {len(cases)} cases pass.")
    return CheckResult(True)


def _explain(exercise, label, problem, got, expected, case, mistakes, compare) -> str:
    message = f"✗ {exercise}: wrong on {label}: {problem}."
    for mistake in mistakes:
        if mistake.matches(got, expected, case, compare):
            return f"{message}\n  This looks like: {mistake.name}. {mistake.hint}"
    return message
