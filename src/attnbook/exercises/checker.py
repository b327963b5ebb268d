"""The exercise-checker framework shared by every chapter.

A checker calls ``check_function(fn, exercise=..., reference=..., cases=..., mistakes=...)``.
Every checker gets these properties from the framework (tested once for all checkers in
``tests/test_exercises.py``):

- **Inputs changed in place are refused.** The reader's function gets its own copy of
  each case's arguments; after the call the copy is compared with the original, and a
  change is reported by the parameter's name ("your function changed its input `scores`
  in place"). The reference always sees the untouched inputs.
- **Types are compared strictly where they matter** (the policy, in words):

  * where a torch tensor is expected, a NumPy array or a list is refused: the book's
    functions take and return tensors;
  * float32 and float64 are both accepted (values are compared at the checker's
    tolerance), but an integer or boolean tensor where floating-point values are
    expected is refused: integer tensors round, carry no gradient and divide wrongly;
  * where a boolean tensor is expected (a mask), a 0/1 float or integer tensor is
    refused: ``masked_fill``, indexing and the book's attention functions treat it
    differently;
  * where a single number is expected, a Python int or float, a NumPy scalar or a
    0-dim tensor is accepted (``1`` equals ``1.0``), a bool is not; where an index
    (a Python int) is expected, a float is refused.

- **Shapes are diagnosed before values**: transposed, an extra or a missing dimension of
  size 1, the right numbers arranged differently.
- **A named mistake is only named when it really matches**: the reader's answer must
  equal the mistaken implementation on every case where that implementation gives a
  finite answer, and on at least one case where the mistake differs from the right
  answer. A ``detect=`` recogniser must not fire on the right answer itself.
- **A failing case is described**: which case, the first differing element, and where
  possible a structural fault (rows that do not sum to 1, the wrong axis, a constant
  factor or shift, a flipped sign, nan from overflow).

``probe=`` lets a checker compare what a function *does* rather than only what it
returns (chapter 5 differentiates the reader's loss): the framework runs ``probe(fn)``
and ``probe(reference)``, and ``output_names`` says in words what each part of the
probe's result is.

``spec_of(checker)`` returns what a checker passes to ``check_function`` without running
anything, and ``generic_wrong_answers(spec)`` builds the wrong answers every checker
must refuse; together they let one test cover every chapter's checkers.
"""

from __future__ import annotations

import copy
import inspect
import linecache
import os
import re
import sysconfig
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

FULL_TRACEBACK_ENV = "ATTNBOOK_FULL_TRACEBACK"


class ExerciseError(AssertionError):
    """An answer is wrong; the message says what is wrong and how to look for it.

    In Jupyter (JupyterLab, classic Notebook, Colab, the book's executed pages) the error
    shows as its message alone, the verdict and the hint: IPython asks an exception for
    ``_render_traceback_`` and ipykernel puts what it returns in the error output, so the
    twenty lines of the checker's own traceback (which say nothing about the answer) are
    left out. The output's ``ename`` and ``evalue`` are unchanged ("ExerciseError",
    "✗ ..."), which is what the grader reads.

    The full traceback is one step away:

    - run ``%tb`` in the next cell: a second display of the same error is complete;
    - or ``%xmode Verbose`` before running the checker;
    - or start Jupyter with the environment variable ``ATTNBOOK_FULL_TRACEBACK=1``.
    """

    def _render_traceback_(self) -> list[str]:
        shown = getattr(self, "_shown", 0)
        self._shown = shown + 1
        shell = _ipython()
        full = (shown > 0 or os.environ.get(FULL_TRACEBACK_ENV, "") not in ("", "0")
                or getattr(getattr(shell, "InteractiveTB", None), "mode", "") == "Verbose")
        if full and shell is not None:
            return shell.InteractiveTB.structured_traceback(type(self), self,
                                                            self.__traceback__)
        lines = str(self).split("\n")
        if self.__cause__ is not None:  # the reader's own code raised: where is one step away
            lines.append("  (run %tb in a new cell to see the full traceback)")
        return lines


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return None
    return get_ipython()


class Finding(Exception):  # noqa: N818 - not an error of the checker: what a probe found
    """Raised by a ``probe`` to report, in words, something wrong it found in an answer
    (e.g. "your function gives a different sample each time")."""


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

    ``wrong(*args)`` computes what the mistaken code returns; the mistake is named when
    the reader's answer equals it on every case where it is finite, and it differs from
    the right answer on at least one of them. ``detect(got, expected, case)`` recognises
    it from the outputs of the failing case instead (it must not accept the right answer).
    Give one of the two.
    """

    name: str
    hint: str
    wrong: Callable[..., Any] | None = None
    detect: Callable[[Any, Any, Case], bool] | None = None

    def __post_init__(self):
        if (self.wrong is None) == (self.detect is None):
            raise ValueError(f"Mistake {self.name!r}: give exactly one of wrong= or detect=")

    def matches(self, got, expected, case: Case, compare) -> bool:
        """Whether this one case's answer looks like the mistake (and the right one does not)."""
        if self.detect is not None:
            try:
                fires = bool(self.detect(got, expected, case))
            except Exception:  # a recogniser that cannot apply to this answer does not match
                return False
            try:
                on_the_answer = bool(self.detect(expected, expected, case))
            except Exception:
                on_the_answer = False
            return fires and not on_the_answer
        try:
            wrong = case.call(self.wrong)
            return compare(got, wrong) is None and compare(wrong, expected) is not None
        except Exception:  # a recogniser that cannot apply to this answer does not match
            return False


# ------------------------------------------------------------------ problems, in words

class Problem(str):
    """A comparison's verdict in words, with the kind of fault and where it is.

    ``kind`` is one of: "none" (returned None), "type", "dtype", "shape", "nan", "value";
    ``path`` the position inside a tuple of results (empty for a single result).
    """

    kind: str
    path: tuple
    text: str

    def __new__(cls, text: str, kind: str = "value", path: tuple = ()):
        prefix = "".join(f"return value {i}: " for i in path)
        self = super().__new__(cls, prefix + text)
        self.kind, self.path, self.text = kind, path, text
        return self

    def inside(self, i: int) -> Problem:
        return Problem(self.text, self.kind, (i, *self.path))

    def render(self, names: Sequence[str] | None) -> str:
        if not self.path or not names or self.path[0] >= len(names):
            return str(self)
        rest = "".join(f"return value {i}: " for i in self.path[1:])
        return f"{names[self.path[0]]}: {rest}{self.text}"


STRUCTURAL_KINDS = ("none", "type", "dtype", "shape", "nan")

_BOOL_WHY = ("True/False values, e.g. from a comparison such as `a < b`: 0/1 numbers are "
             "not booleans to torch (indexing with them picks rows 0 and 1, and masked_fill "
             "refuses them)")


def to_numpy(x) -> np.ndarray | None:
    """A tensor, array or number as a NumPy array; ``None`` for anything else."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().resolve_conj().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    if isinstance(x, int | float) and not isinstance(x, bool):
        return np.asarray(x)
    return None


def _is_number(x) -> bool:
    if isinstance(x, bool | np.bool_):
        return False
    return isinstance(x, int | float | np.integer | np.floating)


def _family(dtype) -> str:
    """'bool', 'int', 'float' or 'complex' for a torch or NumPy dtype."""
    if dtype in (torch.bool, np.bool_) or dtype == np.dtype(bool):
        return "bool"
    if isinstance(dtype, torch.dtype):
        if dtype.is_floating_point:
            return "float"
        return "complex" if dtype.is_complex else "int"
    kind = np.dtype(dtype).kind
    return {"b": "bool", "i": "int", "u": "int", "f": "float", "c": "complex"}.get(kind, "other")


def _idx(index) -> str:
    return "(" + ", ".join(str(int(i)) for i in index) + (",)" if len(index) == 1 else ")")


def _fmt(v) -> str:
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    return f"{float(v):.6g}"


def _type_name(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"a NumPy array of shape {x.shape}"
    if isinstance(x, bool | np.bool_):
        return f"a bool ({bool(x)})"
    return f"a {type(x).__name__}"


def _shape_problem(have: np.ndarray, want: np.ndarray, atol, rtol, noun="your result") -> str:
    """What is wrong with the shape, with a diagnosis when the right numbers are there."""
    got_s, want_s = tuple(have.shape), tuple(want.shape)
    base = f"{noun} has shape {got_s}, expected {want_s}"

    def same(a, b):
        try:
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape:
                return False
            if a.dtype == bool or b.dtype == bool:
                return bool(np.array_equal(a, b))
            return bool(np.allclose(a.astype(np.float64), b.astype(np.float64), atol=atol,
                                    rtol=rtol, equal_nan=True))
        except (TypeError, ValueError):
            return False

    if have.ndim >= 2 and got_s == want_s[:-2] + want_s[-1:] + want_s[-2:-1]:
        if same(np.swapaxes(have, -1, -2), want):
            return (f"{base}: your result is the answer transposed (its last two axes "
                    "swapped); check the order of the matrix product or of the axes")
        return f"{base}: the last two axes are swapped (transposed?)"
    if have.size == want.size and have.squeeze().shape == want.squeeze().shape:
        if want.ndim == 0:
            return (f"{base}: a single number is expected, yours is wrapped in an extra "
                    "dimension (take .item() or index it with [0])")
        if have.ndim > want.ndim:
            return (f"{base}: an extra dimension of size 1 (remove it with .squeeze(dim) or "
                    "by indexing it away)")
        return (f"{base}: a dimension of size 1 is missing (keep it with keepdim=True, or "
                "add it back with .unsqueeze(dim))")
    if want.ndim == 0:
        return (f"{base}: a single number is expected (did you forget to sum or average "
                "over an axis?)")
    if have.ndim == want.ndim + 1 and got_s[1:] == want_s and got_s[0] != 1:
        return (f"{base}: an extra leading dimension of size {got_s[0]} (a broadcast that "
                "went wrong? check your [:, None] and keepdim=True)")
    if have.ndim == want.ndim + 1 and got_s[:-1] == want_s:
        return (f"{base}: an extra dimension of size {got_s[-1]} at the end (a sum or a "
                "product over that axis missing?)")
    if have.ndim + 1 == want.ndim and any(got_s == want_s[:k] + want_s[k + 1:]
                                          for k in range(want.ndim)):
        return f"{base}: one axis too few (did a sum, max or index remove it?)"
    if have.size == want.size:
        return (f"{base}: the right number of entries arranged differently (a reshape or "
                "view that mixed the axes?)")
    return base


def _value_diagnosis(have: np.ndarray, want: np.ndarray, atol, rtol) -> str:
    """A structural reading of a same-shaped float difference, or ''."""
    finite = np.isfinite(want) & np.isfinite(have)
    if not finite.all() or have.size == 0:
        return ""
    scale = max(float(np.abs(want).max()), 1e-12)
    if have.ndim >= 2 and have.shape[-1] == have.shape[-2] > 1 and np.allclose(
            np.swapaxes(have, -1, -2), want, atol=atol, rtol=rtol):
        return ("your result is the answer transposed (its last two axes swapped); check "
                "the order of the matrix product or of the axes")
    if have.size > 1 or want.ndim == 0:
        if np.allclose(have, -want, atol=atol, rtol=rtol) and scale > 10 * atol:
            return "your result is the answer with its sign flipped everywhere (a minus sign)"
    if have.size > 1:
        if (np.allclose(have, 0, atol=atol) and scale > 10 * atol):
            return "your result is 0 everywhere"
        big = np.abs(want) > 1e-6 * scale + atol
        if big.sum() >= 2:
            ratio = have[big] / want[big]
            c = float(np.median(ratio))
            if abs(c - 1) > 1e-3 and np.allclose(have, c * want, atol=atol, rtol=rtol):
                return (f"your result is the answer times {c:.4g} everywhere (a constant "
                        "factor: a division or a scale missing or extra?)")
        shift = float(np.median(have - want))
        if abs(shift) > atol and np.allclose(have, want + shift, atol=atol, rtol=rtol):
            return f"your result is the answer plus {shift:.4g} everywhere (a constant shift)"
    if want.ndim >= 1 and want.shape[-1] > 1 and (want >= -atol).all():
        rows = want.sum(-1)
        ones = np.isclose(rows, 1, atol=1e-4)
        if ones.any():
            got_rows = have.sum(-1)
            bad = ones & ~np.isclose(got_rows, 1, atol=1e-3)
            if bad.any():
                first = tuple(np.argwhere(bad)[0])
                where = f" {_idx(first)}" if len(first) else ""
                cols_ok = (have.ndim >= 2 and np.allclose(have.sum(-2), 1, atol=1e-3)
                           and have.shape[-2] > 1)
                if cols_ok:
                    return ("your columns sum to 1 instead of your rows: you normalised over "
                            "the wrong axis (each row, over the last axis, should sum to 1)")
                return (f"each row of the answer sums to 1 over the last axis, but your "
                        f"row{where} sums to {float(got_rows[first]):.4g}")
            zero_rows = np.isclose(rows, 0, atol=1e-6) & (np.abs(want).max(-1) <= atol)
            bad_zero = zero_rows & (np.abs(have).max(-1) > atol)
            if bad_zero.any():
                first = tuple(np.argwhere(bad_zero)[0])
                return (f"row {_idx(first)} of the answer is all 0 (nothing to attend to), "
                        "but yours is not")
    return ""


def _compare_arrays(have: np.ndarray, want: np.ndarray, atol, rtol, bool_why) -> Problem | None:
    """Compare two arrays of known-compatible kinds; dtype and shape first."""
    fh, fw = _family(have.dtype), _family(want.dtype)
    if fw == "bool" and fh != "bool":
        return Problem(f"your result has dtype {_dtype_name(have)}, but a boolean tensor "
                       f"(dtype torch.bool) is expected: {bool_why}", "dtype")
    if fw == "float" and fh != "float":
        if fh == "bool":
            return Problem("your result is a boolean tensor (dtype torch.bool), but numbers "
                           "(floating point) are expected: compute the values, not a "
                           "comparison", "dtype")
        return Problem(f"your result has integer dtype {_dtype_name(have)}, but floating-point "
                       "values are expected (integer tensors round, carry no gradient and "
                       "divide wrongly): did you build it from integers, e.g. "
                       "torch.tensor([1, 2]), or use //? Use floats", "dtype")
    if fw == "int" and fh != "int":
        return Problem(f"your result has dtype {_dtype_name(have)}, but whole numbers "
                       "(indices, an integer dtype) are expected: use .long() or int(...)",
                       "dtype")
    if have.shape != want.shape:
        return Problem(_shape_problem(have, want, atol, rtol), "shape")
    if fw == "bool":
        diff = have != want
        if not diff.any():
            return None
        first = tuple(np.argwhere(diff)[0]) if diff.ndim else ()
        text = (f"{int(diff.sum())} of {diff.size} entries differ; first at index "
                f"{_idx(first)}: you have {bool(have[first])}, expected {bool(want[first])}")
        if (have == ~want).all():
            text += " (True and False are swapped everywhere: the opposite mask)"
        elif have.ndim >= 2 and have.shape[-1] == have.shape[-2] and (
                np.swapaxes(have, -1, -2) == want).all():
            text += " (your mask is the answer transposed: rows are queries, columns keys)"
        return Problem(text, "value")
    if fh == "complex":
        return Problem("your result has complex numbers, but real ones are expected", "dtype")
    have64, want64 = have.astype(np.float64), want.astype(np.float64)
    for bad_name, bad in (("nan", np.isnan(have64) & ~np.isnan(want64)),
                          ("inf", np.isinf(have64) & ~np.isinf(want64))):
        if bad.any():
            first = tuple(np.argwhere(bad)[0]) if bad.ndim else ()
            limit = ("float64's exp overflows above about 709.8" if have.dtype == np.float64
                     else "float32's exp overflows above about 88.7")
            cause = (f"0/0, inf - inf or inf/inf: an exp that overflowed ({limit}) or "
                     "underflowed to 0 everywhere" if bad_name == "nan" else
                     f"an exp that overflowed ({limit}), a division by 0 or log(0)")
            return Problem(f"your result has {bad_name} at {int(bad.sum())} place(s) where "
                           f"the answer is a number (first at index {_idx(first)}); "
                           f"{bad_name} comes from {cause}", "nan")
    close = np.isclose(have64, want64, atol=atol, rtol=rtol, equal_nan=True)
    if close.all():
        return None
    first = tuple(np.argwhere(~close)[0]) if close.ndim else ()
    where = f"at index {_idx(first)}: " if close.ndim else ""
    text = (f"{int((~close).sum())} of {close.size} entries differ; first {where}"
            if close.ndim else "")
    text += f"you have {_fmt(have64[first])}, expected {_fmt(want64[first])}"
    diagnosis = _value_diagnosis(have64, want64, atol, rtol)
    if not diagnosis and fw == "int" and close.ndim == 0 and abs(have64 - want64) == 1:
        diagnosis = "off by one (counting from 1 instead of 0?)"
    return Problem(text + (f" — {diagnosis}" if diagnosis else ""), "value")


def _dtype_name(a: np.ndarray) -> str:
    try:
        return str(torch.from_numpy(np.zeros(0, dtype=a.dtype)).dtype)
    except TypeError:
        return str(a.dtype)


def _compare_one(got, expected, atol: float, rtol: float, bool_why: str = _BOOL_WHY):
    """None if ``got`` equals ``expected`` (within tolerance), else a ``Problem``."""
    if got is None:
        return Problem("your function returned None: did you forget the `return` statement?",
                       "none")
    if isinstance(expected, bool | np.bool_):
        if isinstance(got, torch.Tensor) and got.dim() == 0 and got.dtype == torch.bool:
            got = bool(got)
        if not isinstance(got, bool | np.bool_):
            return Problem(f"you returned {_type_name(got)}, but a bool (True or False) is "
                           "expected", "type")
        return None if bool(got) == bool(expected) else Problem(
            f"you returned {bool(got)}, the answer is {bool(expected)}")
    if isinstance(expected, str):
        if not isinstance(got, str):
            return Problem(f"you returned {_type_name(got)}, but a string is expected", "type")
        return None if got == expected else Problem(f"you returned {got!r}, the answer is "
                                                    f"{expected!r}")
    if isinstance(expected, set | frozenset | dict):
        if not isinstance(got, type(expected)):
            return Problem(f"you returned {_type_name(got)}, but a {type(expected).__name__} "
                           "is expected", "type")
        return None if got == expected else Problem(f"you returned {got!r}, the answer is "
                                                    f"{expected!r}")
    if _is_number(expected):
        return _compare_number(got, expected, atol, rtol)
    if isinstance(expected, torch.Tensor | np.ndarray):
        kind = "a torch tensor" if isinstance(expected, torch.Tensor) else "a NumPy array"
        shape = f" of shape {tuple(expected.shape)}"
        if isinstance(expected, torch.Tensor) and isinstance(got, np.ndarray):
            return Problem(f"you returned a NumPy array, but {kind}{shape} is expected (the "
                           "book's functions take and return tensors): compute it with torch, "
                           "or wrap it with torch.from_numpy(...)", "type")
        if isinstance(expected, np.ndarray) and isinstance(got, torch.Tensor):
            return Problem(f"you returned a tensor, but {kind}{shape} is expected: use "
                           ".numpy()", "type")
        if isinstance(got, list | tuple):
            return Problem(f"you returned a {type(got).__name__}, but {kind}{shape} is "
                           "expected: build it with torch.tensor(...) or torch.stack(...)",
                           "type")
        if _is_number(got) or isinstance(got, bool | np.bool_):
            if expected.ndim == 0 and not isinstance(got, bool | np.bool_):
                return _compare_number(got, expected, atol, rtol)
            return Problem(f"you returned {_type_name(got)}, but {kind}{shape} is expected",
                           "type")
        have = to_numpy(got)
        if have is None:
            return Problem(f"you returned {_type_name(got)}, but {kind}{shape} is expected",
                           "type")
        return _compare_arrays(have, to_numpy(expected), atol, rtol, bool_why)
    if got == expected:
        return None
    return Problem(f"you returned {got!r}, the answer is {expected!r}")


def _compare_number(got, expected, atol, rtol):
    """``expected`` is a Python/NumPy number or a 0-dim tensor."""
    want = to_numpy(expected)
    is_index = isinstance(expected, int | np.integer) or _family(want.dtype) == "int"
    noun = "an index (a whole number, int)" if is_index else "a single number"
    if isinstance(got, bool | np.bool_) or (isinstance(got, torch.Tensor)
                                             and got.dtype == torch.bool):
        return Problem(f"you returned {_type_name(got)}, but {noun} is expected (True and "
                       "False are not numbers here)", "dtype")
    if isinstance(got, list | tuple):
        return Problem(f"you returned a {type(got).__name__}, but {noun} is expected", "type")
    have = to_numpy(got)
    if have is None:
        return Problem(f"you returned {_type_name(got)}, but {noun} is expected", "type")
    if have.ndim != 0:
        extra = (" (an extra dimension: take .item() or index it with [0])"
                 if have.size == 1 else "")
        return Problem(f"you returned {_type_name(got)}, but {noun} is expected{extra}",
                       "shape")
    if is_index and _family(have.dtype) != "int":
        return Problem(f"you returned {float(have):g} (a float), but {noun} is expected: "
                       "return int(...)", "dtype")
    if _family(have.dtype) not in ("int", "float"):
        return Problem(f"you returned {_type_name(got)}, but {noun} is expected", "type")
    return _compare_arrays(have.astype(np.float64) if not is_index else have,
                           want.astype(np.float64) if not is_index else want, atol, rtol,
                           _BOOL_WHY)


def make_compare(atol: float = 1e-5, rtol: float = 1e-4,
                 bool_why: str = _BOOL_WHY) -> Callable[[Any, Any], Problem | None]:
    """A comparison that also walks tuples and lists of outputs (e.g. ``(output, weights)``).

    ``bool_why`` says why a boolean result must be boolean (e.g. "attention masks are
    boolean"); it ends the message that refuses a 0/1 float or integer tensor.
    """

    def compare(got, expected) -> Problem | None:
        if isinstance(expected, tuple | list) and not _is_token_list(expected):
            if not isinstance(got, tuple | list) or len(got) != len(expected):
                what = (f"{type(got).__name__} of length {len(got)}"
                        if isinstance(got, tuple | list) else _type_name(got))
                if got is None:
                    return Problem("your function returned None: did you forget the `return` "
                                   f"statement? {len(expected)} return values are expected",
                                   "none")
                return Problem(f"expected {len(expected)} return values "
                               f"({type(expected).__name__}), got {what}",
                               "none" if got is None else "type")
            for i, (g, e) in enumerate(zip(got, expected, strict=True)):
                problem = compare(g, e)
                if problem is not None:
                    return problem.inside(i)
            return None
        try:
            return _compare_one(got, expected, atol, rtol, bool_why)
        except Exception:  # the checker must never crash on an odd answer
            return Problem(f"your result ({_type_name(got)}) could not be compared with the "
                           f"answer ({_type_name(expected)})", "type")

    return compare


def _is_token_list(x) -> bool:
    return isinstance(x, list) and bool(x) and all(isinstance(t, str) for t in x)


# ------------------------------------------------------------------ inputs changed in place

def _differs(before, after) -> bool:
    """Whether ``after`` (an argument after the call) is no longer equal to ``before``."""
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape \
                or before.dtype != after.dtype:
            return True
        a, b = before.detach(), after.detach()
        if a.is_floating_point():
            return not bool(((a == b) | (a.isnan() & b.isnan())).all())
        return not torch.equal(a, b)
    if isinstance(before, np.ndarray):
        return not (isinstance(after, np.ndarray) and before.shape == after.shape
                    and np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
    if isinstance(before, torch.nn.Module):
        sb, sa = before.state_dict(), after.state_dict()
        return sb.keys() != sa.keys() or any(_differs(sb[k], sa[k]) for k in sb)
    if isinstance(before, list | tuple):
        return (type(before) is not type(after) or len(before) != len(after)
                or any(_differs(b, a) for b, a in zip(before, after, strict=True)))
    if isinstance(before, dict):
        return (not isinstance(after, dict) or before.keys() != after.keys()
                or any(_differs(before[k], after[k]) for k in before))
    if isinstance(before, set | frozenset):
        return before != after
    return False  # numbers, strings: immutable


def _param_names(fn) -> list[str]:
    try:
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


def _changed_input(case: Case, args, kwargs, names) -> str | None:
    for i, (before, after) in enumerate(zip(case.args, args, strict=False)):
        if _differs(before, after):
            name = f"`{names[i]}`" if i < len(names) else f"number {i + 1}"
            return _mutation_text(name)
    for key, before in case.kwargs.items():
        if _differs(before, kwargs.get(key)):
            return _mutation_text(f"`{key}`")
    return None


def _mutation_text(name: str) -> str:
    return (f"your function changed its input {name} in place (with `+=`, `-=`, `/=`, an "
            "assignment into it, or a method ending in `_` such as `.exp_()`, "
            "`.masked_fill_()`, or `.append()`/`.add()` on a list or set): the caller's data "
            "changes too, a real bug in a model. Compute a new value instead, e.g. "
            "`x = x - m`, or work on `x.clone()`")


_ERROR_GLOSSES = [
    (r"leaf Variable that requires grad is being used in an in-place|modified by an inplace",
     "your function changed one of its inputs in place, which torch refuses for a tensor "
     "that needs gradients. Compute a new tensor instead (`x = x - m`, not `x -= m`)"),
    (r"mat1 and mat2 shapes cannot be multiplied|size mismatch|shapes cannot be multiplied",
     "a matrix product of mismatched shapes: check which axis you transpose"),
    (r"must match the size of tensor b|operands could not be broadcast",
     "two tensors of shapes that do not broadcast: add an axis with [:, None] or "
     "keepdim=True"),
    (r"only supports boolean masks|expected a boolean", "masks must be boolean tensors"),
    (r"not implemented for '(Long|Int)'|expected scalar type Float but found Long|"
     r"result type Float can't be cast to the desired output type Long",
     "an integer tensor where floats are needed"),
    (r"Dimension out of range", "an axis that this tensor does not have"),
    (r"Index tensor must have the same number of dimensions",
     "gather needs an index with as many axes as the tensor, e.g. actions[:, None]"),
    (r"ZeroDivisionError", "a division by zero: a denominator in that line is 0 on this "
     "case (print it)"),
]

_LIBRARY_DIRS = tuple({os.path.dirname(os.path.abspath(m.__file__))
                       for m in (np, torch, os, copy)}
                      | {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
                      | {sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")})


def _readers_line(err: BaseException) -> str:
    """The innermost line of the reader's own code in ``err``'s traceback, or ''.

    The reader's code is every frame outside the Python library, NumPy, torch and this
    package (a notebook cell, a file of theirs); the line is the one that raised or that
    called the library function that did.
    """
    line = ""
    tb = err.__traceback__
    while tb is not None:
        filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if not filename.startswith(_LIBRARY_DIRS) and not filename.startswith("<frozen"):
            text = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno,
                                     tb.tb_frame.f_globals).strip()
            line = text or line
        tb = tb.tb_next
    return line if len(line) <= 100 else line[:97] + "..."


def _raised_text(err: Exception) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    first_line = text.splitlines()[0] if text else type(err).__name__
    line = _readers_line(err)
    where = f", in the line `{line}`" if line else ""
    for pattern, gloss in _ERROR_GLOSSES:
        if re.search(pattern, text):
            if gloss.startswith("your function changed"):
                return gloss
            return f"your function raised {first_line}{where} — {gloss}"
    return f"your function raised {first_line}{where}"


# ------------------------------------------------------------------ the checker

@dataclass
class CheckSpec:
    """What a checker passes to ``check_function``: enough to check any answer again."""

    exercise: str
    reference: Callable
    cases: list[Case]
    mistakes: Sequence[Mistake] = ()
    compare: Callable | None = None
    validate: Callable | None = None
    probe: Callable[[Callable], Callable] | None = None
    output_names: Sequence[str] | None = None

    def check(self, fn) -> CheckResult:
        return check_function(fn, exercise=self.exercise, reference=self.reference,
                              cases=self.cases, mistakes=self.mistakes, compare=self.compare,
                              validate=self.validate, probe=self.probe,
                              output_names=self.output_names)


_RECORDING: list[list[CheckSpec]] = []


@contextmanager
def recording():
    """Within this block, ``check_function`` records its arguments and runs nothing."""
    specs: list[CheckSpec] = []
    _RECORDING.append(specs)
    try:
        yield specs
    finally:
        _RECORDING.pop()


def spec_of(checker: Callable) -> CheckSpec:
    """The exercise, reference, cases and mistakes a ``check_*`` function uses."""
    with recording() as specs:
        checker(lambda *args, **kwargs: None)
    if len(specs) != 1:
        raise ValueError(f"{checker!r} did not call check_function exactly once")
    return specs[0]


def check_function(fn, *, exercise: str, reference: Callable, cases: list[Case],
                   mistakes: tuple[Mistake, ...] | list[Mistake] = (),
                   compare: Callable[[Any, Any], str | None] | None = None,
                   validate: Callable[[Any, Case], str | None] | None = None,
                   probe: Callable[[Callable], Callable] | None = None,
                   output_names: Sequence[str] | None = None) -> CheckResult:
    """Check ``fn`` against ``reference`` on ``cases``.

    Returns a truthy ``CheckResult`` (and prints ✓) when every case passes, a falsy
    one when ``fn`` is an unattempted stub; raises ``ExerciseError`` naming the
    fault (and the mistake, when one really matches) otherwise.
    ``validate(got, case)`` may add a check of its own (a message, or None).
    ``probe(f)`` wraps both ``fn`` and ``reference`` (and every ``Mistake.wrong``) to
    compare what they do, e.g. their gradients; ``output_names`` names the parts of a
    tuple result in words ("the gradient of your loss w.r.t. the logits").
    """
    if _RECORDING:
        _RECORDING[-1].append(CheckSpec(exercise, reference, list(cases), tuple(mistakes),
                                        compare, validate, probe, output_names))
        return CheckResult(False)
    compare = compare or make_compare()
    if not callable(fn):
        raise ExerciseError(f"✗ {exercise}: pass your function itself, e.g. check(my_fn), "
                            f"not {type(fn).__name__}")
    run = probe(fn) if probe else fn
    run_reference = probe(reference) if probe else reference
    names = _param_names(reference)
    for n, case in enumerate(cases, 1):
        label = case.label or f"case {n}"
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        try:
            got = run(*args, **kwargs)
        except NotImplementedError:
            print(f"… {exercise}: not attempted yet.\n  Replace `raise NotImplementedError` "
                  "with your code and run this cell again.")
            return CheckResult(False)
        except Finding as finding:
            raise ExerciseError(f"✗ {exercise}: wrong on {label}: {finding}.") from None
        except Exception as err:
            raise ExerciseError(f"✗ {exercise}: {_raised_text(err)} (on {label}).") from err
        changed = _changed_input(case, args, kwargs, names)
        if changed is not None:
            raise ExerciseError(f"✗ {exercise}: {changed} (seen on {label}).")
        expected = case.call(run_reference)
        problem = _safe_compare(compare, got, expected)
        if problem is None and validate is not None:
            try:
                problem = validate(got, case)
            except Exception:
                problem = f"your result ({_type_name(got)}) is not what this exercise expects"
        if problem is not None:
            raise ExerciseError(_explain(exercise, label, problem, got, expected, n - 1, cases,
                                         mistakes, compare, run, run_reference, probe,
                                         output_names))
    print(f"✓ {exercise}: all {len(cases)} cases pass.")
    return CheckResult(True)


def _safe_compare(compare, got, expected):
    try:
        return compare(got, expected)
    except Exception:
        return Problem(f"your result ({_type_name(got)}) could not be compared with the "
                       f"answer ({_type_name(expected)})", "type")


def _run_quietly(fn, case: Case):
    try:
        return True, case.call(fn)
    except Exception:
        return False, None


def _explain(exercise, label, problem, got, expected, failed, cases, mistakes, compare, run,
             run_reference, probe, output_names) -> str:
    text = problem.render(output_names) if isinstance(problem, Problem) else str(problem)
    message = f"✗ {exercise}: wrong on {label}: {text}."
    if isinstance(problem, Problem) and problem.kind in ("none", "type", "dtype"):
        return message  # a missing result or a wrong type is the fault to fix first
    # A wrong shape is reported as such: only a mistake whose implementation gives exactly
    # this answer on every case is named with it, never a test of the output.
    structural = isinstance(problem, Problem) and problem.kind == "shape"
    named = _matching_mistake(got, expected, failed, cases,
                              [m for m in mistakes if not (structural and m.detect)],
                              compare, run, run_reference, probe)
    if named is not None:
        return f"{message}\n  This looks like: {named.name}. {named.hint}"
    return message


def _matching_mistake(got, expected, failed, cases, mistakes, compare, run, run_reference,
                      probe):
    """The mistake the answer really shows (see ``Mistake``), or None.

    Of the mistakes whose implementation the answer agrees with wherever that
    implementation differs from the right answer (and on the failing case), and that
    explain more of the answer's failing cases than they leave unexplained, the one that
    leaves the fewest unexplained is named; failing that, the
    first ``detect=`` recogniser that fires on the failing case.
    """
    answers = references = None
    best, best_score = None, None
    for order, mistake in enumerate(mistakes):
        if mistake.detect is not None:
            continue
        if answers is None:  # the reader's and the reference's answers on every case
            answers = [_run_quietly(run, c) for c in cases]
            references = [_run_quietly(run_reference, c) for c in cases]
        wrong = probe(mistake.wrong) if probe else mistake.wrong
        explained = unexplained = 0
        for i, case in enumerate(cases):
            ok, w = _run_quietly(wrong, case)
            if not (ok and answers[i][0] and references[i][0]):
                if i == failed:
                    explained = 0
                    break
                continue
            agrees = _safe_compare(compare, answers[i][1], w) is None
            if i == failed and not agrees:
                explained = 0
                break
            if _safe_compare(compare, w, references[i][1]) is None:
                # the mistake gives the right answer here; does the reader's answer?
                unexplained += _safe_compare(compare, answers[i][1], references[i][1]) is not None
                continue
            if not agrees:
                explained = 0
                break
            explained += 1
        if explained > unexplained:
            score = (unexplained, -explained, order)
            if best_score is None or score < best_score:
                best, best_score = mistake, score
    if best is not None:
        return best
    for mistake in mistakes:  # then the recognisers that test the failing case's output
        if mistake.detect is not None and mistake.matches(got, expected, cases[failed],
                                                          compare):
            return mistake
    return None


# ------------------------------------------------------------------ generic wrong answers

@dataclass
class GenericWrong:
    """A wrong answer built from a checker's reference, which every checker must refuse."""

    kind: str  # "none", "transposed", "extra dimension", "mutates input", "dtype ..."
    fn: Callable | None
    message: str  # a regular expression the refusal must match
    skip: str = ""  # why this checker cannot tell it apart (then fn is None)


def _leaves(out, path=()):
    if isinstance(out, tuple | list) and not _is_token_list(out):
        for i, v in enumerate(out):
            yield from _leaves(v, (*path, i))
    else:
        yield path, out


def _replace(out, path, value):
    if not path:
        return value
    items = list(out)
    items[path[0]] = _replace(items[path[0]], path[1:], value)
    return type(out)(items) if isinstance(out, tuple) else items


def _map_first(transform):
    """A function of the reference's output: transform its first leaf it applies to."""

    def apply(out):
        for path, leaf in _leaves(out):
            new = transform(leaf)
            if new is not None:
                return _replace(out, path, new)
        raise LookupError

    return apply


def _transpose(x):
    if isinstance(x, torch.Tensor) and x.dim() >= 2:
        return x.transpose(-1, -2)
    return None


def _extra_dim(x):
    if isinstance(x, torch.Tensor):
        return x.unsqueeze(0)
    if _is_number(x):
        return torch.tensor([float(x)])
    return None


def _retype(family_from: str, to):
    def transform(x):
        if isinstance(x, torch.Tensor) and _family(x.dtype) == family_from:
            return to(x)
        return None

    return transform


def _python_retype(x):
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return float(x)
    if isinstance(x, float):
        return bool(x)
    return None


def _mutate_first(args) -> bool:
    """Change the first mutable argument in place, as a careless function would."""
    for a in args:
        if isinstance(a, torch.Tensor) and a.numel() > 0:
            if a.dtype == torch.bool:
                a.logical_not_()
            else:
                a.add_(1)
            return True
        if isinstance(a, np.ndarray) and a.size > 0:
            a += 1
            return True
        if isinstance(a, list):
            a.append(a[-1] if a else 0)
            return True
        if isinstance(a, set):
            a.add(("changed", len(a)))
            return True
        if isinstance(a, dict):
            a["changed"] = True
            return True
    return False


def _clone(out):
    if isinstance(out, torch.Tensor):
        return out.clone()
    if isinstance(out, tuple | list):
        return type(out)(_clone(v) for v in out)
    return copy.copy(out)


def generic_wrong_answers(spec: CheckSpec) -> list[GenericWrong]:
    """The wrong answers every checker must refuse, built from its reference.

    A kind that this checker cannot tell apart from the right answer (a scalar cannot be
    transposed, a symmetric result equals its transpose, a function of integers has no
    input to change) comes with ``skip`` saying why instead of a function.
    """
    reference = spec.reference
    outputs, ok = [], True
    for case in spec.cases:  # the reference's answers, seen through the probe if any
        seen = []

        def capture(*args, _seen=seen, **kwargs):
            out = reference(*args, **kwargs)
            _seen.append(_clone(out))
            return out

        try:
            case.call(spec.probe(capture) if spec.probe else capture)
            outputs.append(seen[0])
        except Exception:
            ok = False
    compare = spec.compare or make_compare()

    def from_output(kind, transform, message, nothing: str) -> GenericWrong:
        mapped = []
        for out in outputs:
            try:
                mapped.append(transform(out))
            except LookupError:
                mapped.append(None)
        if not ok or all(m is None for m in mapped):
            return GenericWrong(kind, None, message, nothing)
        if all(m is None or _safe_compare(compare, m, o) is None
               for m, o in zip(mapped, outputs, strict=True)):
            return GenericWrong(kind, None, message,
                                "the reference's result equals this on every case")

        def wrong(*args, **kwargs):
            return transform(reference(*args, **kwargs))

        return GenericWrong(kind, wrong, message)

    answers = [GenericWrong("returns None", lambda *a, **k: None, r"returned None")]
    answers.append(from_output("transposed", _map_first(_transpose), r"transposed",
                               "no result has two axes to swap"))
    answers.append(from_output("extra leading dimension", _map_first(_extra_dim),
                               r"extra dimension", "no tensor or number in the result"))
    dtype_message = r"dtype|bool|boolean|whole number|a float"
    retyped = [from_output(kind, transform, dtype_message, "")
               for kind, transform in [
                   ("int where float", _map_first(_retype("float", lambda x: x.long()))),
                   ("bool where float", _map_first(_retype("float", lambda x: x != 0))),
                   ("float where bool", _map_first(_retype("bool", lambda x: x.float()))),
                   ("int where bool", _map_first(_retype("bool", lambda x: x.long()))),
                   ("float where int", _map_first(_retype("int", lambda x: x.float()))),
                   ("Python number of the wrong kind", _map_first(_python_retype))]]
    applicable = [w for w in retyped if w.fn is not None or w.skip]
    answers.extend(applicable or [GenericWrong(
        "wrong dtype", None, dtype_message,
        "the result holds no tensor and no Python number whose type could be changed")])

    mutable = any(isinstance(a, torch.Tensor | np.ndarray | list | set | dict)
                  for case in spec.cases for a in case.args)

    def mutates(*args, **kwargs):
        out = _clone(reference(*args, **kwargs))
        _mutate_first(args)
        return out

    answers.append(GenericWrong("mutates its first input", mutates if mutable else None,
                                r"in place", "" if mutable else "no input can be changed "
                                "in place (numbers only)"))
    return answers
