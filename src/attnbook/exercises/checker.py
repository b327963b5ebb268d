"""The exercise-checker framework shared by every chapter.

A checker calls ``check_function(fn, exercise=..., reference=..., cases=..., mistakes=...)``.
Every checker gets these properties from the framework (tested once for all checkers in
``tests/test_exercises.py``):

- **Inputs changed in place are refused.** The reader's function gets its own copy of
  each case's arguments; after the call the copy is compared with the original (inside
  lists, tuples and dicts too, down to a replaced token of a token list), and a
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
    (a Python int) is expected, a float is refused;
  * where the reference returns a tensor that carries a gradient (a loss on inputs
    that require one), a Python number or a detached tensor is refused.

- **Shapes are diagnosed before values**: transposed, an extra or a missing dimension of
  size 1, the right numbers with their axes in another order (``yours.permute(...)``),
  the right return values in another order. A reading that may be chance on one case
  (a square result equal to the answer transposed) is given only if every case agrees.
- **A named mistake is only named when it really matches**: the reader's answer must
  equal the mistaken implementation on every case where that implementation gives a
  finite answer, and on at least one case where the mistake differs from the right
  answer. A ``detect=`` recogniser must not fire on the right answer itself.
- **A failing case is described**: which case, the first differing element, and where
  possible a structural fault (rows that do not sum to 1, the wrong axis, a constant
  factor or shift, a flipped sign, nan from overflow). An exception in the reader's
  code is quoted with the reader's own line and a gloss in words.
- **Mistakes every checker knows, without declaring them** (``derived_mistakes``): the
  reference is run again with one torch function changed, so a softmax, log_softmax or
  logsumexp (or a sort, argsort or topk) over another axis, an exp without subtracting
  the maximum and log(softmax) for log_softmax are named in any checker whose reference
  calls them. A declared mistake is still named when the answer has nan exactly where
  it gives 0 (a -inf fill on top of it), with a note saying so.
- **Every softmax meets large scores**: ``generic_wrong_answers`` includes the reference
  with an exp that does not subtract the maximum; the test of every checker requires it
  to be refused, so each checker whose reference calls a softmax has a case whose scores
  overflow float32's exp (above about 88.7).
- **A wrong answer shows only its verdict and hint in Jupyter** (see ``ExerciseError``).

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
import itertools
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

from attnbook import attention as _attention

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
    Give one of the two. ``everywhere=True`` says that the mistake spoils every case, so
    its ``detect`` must fire on each of them, not only on the failing one (a recogniser of
    a symptom that other faults share on some cases, e.g. a search stuck at an end).
    """

    name: str
    hint: str
    wrong: Callable[..., Any] | None = None
    detect: Callable[[Any, Any, Case], bool] | None = None
    everywhere: bool = False

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

    def __new__(cls, text: str, kind: str = "value", path: tuple = (),
                plain: str | None = None, reading: tuple | None = None):
        prefix = "".join(f"return value {i}: " for i in path)
        self = super().__new__(cls, prefix + text)
        self.kind, self.path, self.text = kind, path, text
        # a reading "the answer with its axes in the order ``reading``" may be chance on
        # one case (a square matrix): ``plain`` is the text without it
        self.plain, self.reading = plain, reading
        return self

    def inside(self, i: int) -> Problem:
        return Problem(self.text, self.kind, (i, *self.path), self.plain, self.reading)

    def without_reading(self) -> Problem:
        return Problem(self.plain or self.text, self.kind, self.path)

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
        perm = _axes_order(have, want, same)
        if perm is not None:
            return (f"{base}: the right numbers with the axes in another order: "
                    f"yours.permute{perm} is the answer (check your permute, transpose or "
                    "the order of your reshape)")
        return (f"{base}: the right number of entries arranged differently (a reshape or "
                "view that mixed the axes?)")
    return base


def _axes_order(have, want, same, skip=()) -> tuple | None:
    """The order of axes ``perm`` with ``have.transpose(perm)`` equal to ``want`` (up to 5
    axes; not the identity nor the orders in ``skip``), or None."""
    if not 2 <= have.ndim <= 5 or have.ndim != want.ndim or have.size <= 1:
        return None
    for perm in itertools.permutations(range(have.ndim)):
        if perm == tuple(range(have.ndim)) or perm in skip:
            continue
        if tuple(have.shape[i] for i in perm) == tuple(want.shape) and same(
                np.transpose(have, perm), want):
            return perm
    return None


def _last_two_swapped(ndim: int) -> tuple:
    return (*range(ndim - 2), ndim - 1, ndim - 2)


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
    perm = _axes_order(have, want, lambda a, b: np.allclose(a, b, atol=atol, rtol=rtol),
                       skip=(_last_two_swapped(have.ndim),))
    if perm is not None:
        return (f"{_REORDERED}: yours.permute{perm} equals the answer (check your permute, "
                "transpose or the order of your reshape)")
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
            return Problem(text + " (your mask is the answer transposed: rows are queries, "
                           "columns keys)", "value", plain=text,
                           reading=_last_two_swapped(have.ndim))
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
    reading = None  # an order of axes that may be chance: checked on every case
    if diagnosis.startswith(_TRANSPOSED):
        reading = _last_two_swapped(have.ndim)
    elif diagnosis.startswith(_REORDERED):
        reading = tuple(int(i) for i in re.findall(r"\d+", diagnosis.split("permute")[1]
                                                   .split(")")[0]))
    return Problem(text + (f" — {diagnosis}" if diagnosis else ""), "value",
                   plain=text if reading else None, reading=reading)


_TRANSPOSED = "your result is the answer transposed"
_REORDERED = "your result is the answer with its axes in another order"


def _leaf(out, path):
    for i in path:
        out = out[i]
    return out


def _reordered(x, perm):
    if isinstance(x, torch.Tensor) and x.dim() == len(perm):
        return x.permute(perm)
    if isinstance(x, np.ndarray) and x.ndim == len(perm):
        return np.transpose(x, perm)
    return None


def _reading_everywhere(problem: Problem, run, run_reference, cases, compare) -> bool:
    """Whether the answer is the reference's result with its axes in the order
    ``problem.reading`` on every case: on one case it may be chance (a look-ahead mask is
    the transpose of a look-back one only when T = S)."""
    for case in cases:
        (ok, got), (ok_ref, want) = _run_quietly(run, case), _run_quietly(run_reference, case)
        if not (ok and ok_ref):
            continue
        try:
            got, want = _leaf(got, problem.path), _leaf(want, problem.path)
        except (IndexError, TypeError, KeyError):
            return False
        turned = _reordered(got, problem.reading)
        if turned is None or _reordered(want, problem.reading) is None:
            continue
        if _safe_compare(compare, turned, want) is not None:
            return False
    return True


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
    if isinstance(expected, torch.Tensor) and expected.requires_grad and (
            _is_number(got) or isinstance(got, torch.Tensor) and got.is_floating_point()
            and not got.requires_grad):
        problem = _compare_tensor(got, expected, atol, rtol, bool_why)
        if problem is not None and problem.kind not in ("value", "nan"):
            return problem  # a wrong type or shape first
        what = ("a tensor cut from the graph (no requires_grad)"
                if isinstance(got, torch.Tensor) else _type_name(got))
        return Problem(f"you returned {what}, but the answer is a tensor that carries a "
                       "gradient (training calls .backward() through it): keep the result "
                       "in torch, without float(...), .item(), .tolist(), .detach(), "
                       "torch.no_grad() or torch.tensor(...) of a value", "type")
    if isinstance(expected, torch.Tensor | np.ndarray):
        return _compare_tensor(got, expected, atol, rtol, bool_why)
    if got == expected:
        return None
    return Problem(f"you returned {got!r}, the answer is {expected!r}")


def _compare_tensor(got, expected, atol, rtol, bool_why):
    """A result compared with a tensor or array: type, dtype and shape, then values."""
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
                    order = _order_of(got, expected, compare)
                    if order is not None:
                        return Problem("your return values are the right ones in another "
                                       f"order: yours are the answer's values {order} (return "
                                       "them in the order the exercise asks)", "type")
                    return problem.inside(i)
            return None
        try:
            return _compare_one(got, expected, atol, rtol, bool_why)
        except Exception:  # the checker must never crash on an odd answer
            return Problem(f"your result ({_type_name(got)}) could not be compared with the "
                           f"answer ({_type_name(expected)})", "type")

    return compare


def _order_of(got, expected, compare) -> tuple | None:
    """The order ``p`` with got[i] equal to expected[p[i]] for every i, if there is one
    other than the identity."""
    n = len(got)
    if n > 6:
        return None
    same = [[compare(got[i], expected[j]) is None for j in range(n)] for i in range(n)]
    for perm in itertools.permutations(range(n)):
        if perm != tuple(range(n)) and all(same[i][j] for i, j in enumerate(perm)):
            return perm
    return None


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
    if isinstance(before, str | bytes | int | float | complex | np.generic) or before is None:
        # immutable themselves, but an element of a list can be replaced: tokens[0] = "x"
        try:
            same = bool(before == after) or bool(before != before and after != after)  # nan
        except Exception:
            same = False
        return not same or type(before) is not type(after)
    return False


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
    (r"view size is not compatible", "view needs numbers that lie one after another in "
     "memory, which a transpose or permute breaks: use .reshape(...)"),
    (r"Given normalized_shape", "F.layer_norm and nn.LayerNorm normalise the *last* "
     "axes: move the axis to normalise to the end first"),
    (r"Sizes of tensors must match except in dimension", "torch.cat needs every other axis "
     "of the same size: check the axis you concatenate along and the shapes of the parts"),
    (r"tensors used as indices must be", "an index must hold whole numbers (.long()) or "
     "booleans"),
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
        if isinstance(problem, Problem) and problem.reading is not None and \
                not _reading_everywhere(problem, run, run_reference, cases, compare):
            problem = problem.without_reading()
        if problem is not None:
            raise ExerciseError(_explain(exercise, label, problem, got, expected, n - 1, cases,
                                         mistakes, compare, run, run_reference, probe,
                                         output_names, reference))
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
             run_reference, probe, output_names, reference=None) -> str:
    text = problem.render(output_names) if isinstance(problem, Problem) else str(problem)
    message = f"✗ {exercise}: wrong on {label}: {text}."
    if isinstance(problem, Problem) and problem.kind in ("none", "type", "dtype"):
        return message  # a missing result or a wrong type is the fault to fix first
    # A wrong shape is reported as such: only a mistake whose implementation gives exactly
    # this answer on every case is named with it, never a test of the output.
    structural = isinstance(problem, Problem) and problem.kind == "shape"
    found = _matching_mistake(got, expected, failed, cases,
                              [m for m in mistakes if not (structural and m.detect)],
                              compare, run, run_reference, probe)
    if found is None and reference is not None:  # then the mistakes every checker knows
        found = _matching_mistake(got, expected, failed, cases,
                                  derived_mistakes(reference, cases[failed]), compare, run,
                                  run_reference, probe, unique=True)
    if found is not None:
        named, with_nan = found
        note = f" {_NAN_NOTE}" if with_nan else ""
        return f"{message}\n  This looks like: {named.name}. {named.hint}{note}"
    return message


_NAN_NOTE = ("Besides, your answer has nan where this mistake gives 0: a softmax over a row "
             "whose scores are all -inf is 0/0 (a row with nothing to attend to); fill with a "
             "large finite negative number and zero that row, as masked_softmax does.")


def _nan_where_zero(answer, wrong):
    """``answer`` with its nan set to 0 where ``wrong`` is exactly 0; None if that changes
    nothing or a nan sits where ``wrong`` is not 0."""
    if isinstance(answer, tuple | list) and isinstance(wrong, tuple | list) \
            and len(answer) == len(wrong) and not _is_token_list(answer):
        parts, changed = [], False
        for a, w in zip(answer, wrong, strict=True):
            fixed = _nan_where_zero(a, w)
            changed |= fixed is not None
            parts.append(a if fixed is None else fixed)
        return type(answer)(parts) if changed else None
    if not (isinstance(answer, torch.Tensor) and isinstance(wrong, torch.Tensor)
            and answer.shape == wrong.shape and answer.is_floating_point()):
        return None
    nan = torch.isnan(answer.detach())
    if not nan.any() or bool((wrong.detach()[nan] != 0).any()):
        return None
    return answer.detach().masked_fill(nan, 0.0)


def _agrees(compare, answer, wrong) -> tuple[bool, bool]:
    """(the answer equals the mistake's, only once its nan are read as the mistake's 0)."""
    if _safe_compare(compare, answer, wrong) is None:
        return True, False
    fixed = _nan_where_zero(answer, wrong)
    if fixed is not None and _safe_compare(compare, fixed, wrong) is None:
        return True, True
    return False, False


def _matching_mistake(got, expected, failed, cases, mistakes, compare, run, run_reference,
                      probe, unique=False):
    """The mistake the answer really shows (see ``Mistake``) and whether the answer has nan
    where the mistake gives 0 (a -inf fill on top of it), or None.

    Of the mistakes whose implementation the answer agrees with wherever that
    implementation differs from the right answer (and on the failing case), and that
    explain more of the answer's failing cases than they leave unexplained, the one that
    leaves the fewest unexplained is named; failing that, the
    first ``detect=`` recogniser that fires on the failing case. With ``unique``, two
    mistakes that explain the answer equally well are a guess: neither is named.
    """
    answers = references = None
    best, best_score, best_nan, tied = None, None, False, False
    order_of_cases = [failed] + [i for i in range(len(cases)) if i != failed]
    for order, mistake in enumerate(mistakes):
        if mistake.detect is not None:
            continue
        if answers is None:  # the reader's and the reference's answers on every case
            answers = [_run_quietly(run, c) for c in cases]
            references = [_run_quietly(run_reference, c) for c in cases]
        wrong = probe(mistake.wrong) if probe else mistake.wrong
        explained = unexplained = 0
        with_nan = False
        # the mistakes every checker knows rerun the reference with one torch function
        # changed, which may differ from the reader's code on an edge row (a fully masked
        # one): a case they do not explain counts against them instead of ruling them out
        loose = getattr(mistake, "loose", False)
        for i in order_of_cases:
            ok, w = _run_quietly(wrong, cases[i])
            if not (ok and answers[i][0] and references[i][0]):
                if i == failed:
                    explained = 0
                    break
                continue
            agrees, nan_read = _agrees(compare, answers[i][1], w)
            if i == failed and not agrees:
                explained = 0
                break
            if _safe_compare(compare, w, references[i][1]) is None:
                # the mistake gives the right answer here; does the reader's answer?
                unexplained += _safe_compare(compare, answers[i][1], references[i][1]) is not None
                continue
            if not agrees:
                if loose:
                    unexplained += 1
                    continue
                explained = 0
                break
            explained += 1
            with_nan |= nan_read
        if explained > (2 * unexplained if loose else unexplained):
            score = (unexplained, -explained, order)
            if unique and best_score is not None and score[:2] == best_score[:2]:
                tied = True
            elif best_score is None or score < best_score:
                best, best_score, best_nan, tied = mistake, score, with_nan, False
    if best is not None:
        return None if unique and tied else (best, best_nan)
    for mistake in mistakes:  # then the recognisers that test the failing case's output
        if mistake.detect is not None and mistake.matches(got, expected, cases[failed],
                                                          compare):
            if mistake.everywhere:
                if answers is None:
                    answers = [_run_quietly(run, c) for c in cases]
                    references = [_run_quietly(run_reference, c) for c in cases]
                if not all(mistake.matches(a, r, case, compare)
                           for (ok, a), (ok_ref, r), case in zip(answers, references, cases,
                                                                 strict=True)
                           if ok and ok_ref):
                    continue
            return mistake, False
    return None


# ------------------------------------------------------------------ mistakes every checker knows
# A softmax (or log-softmax, log-sum-exp) over the wrong axis, a sort or top-k over the wrong
# axis, and a softmax without max-subtraction are recognised in any checker whose reference
# calls these torch functions: the reference is run again with the function changed.

_FAMILIES = {  # (owner, name, position of dim after the input, default dim)
    "softmax": [(torch, "softmax", 0, None), (torch, "log_softmax", 0, None),
                (torch.nn.functional, "softmax", 0, None),
                (torch.nn.functional, "log_softmax", 0, None),
                (torch.Tensor, "softmax", 0, None), (torch.Tensor, "log_softmax", 0, None),
                (torch, "logsumexp", 0, None), (torch.Tensor, "logsumexp", 0, None),
                # the book's masked softmax, changed as a reader's own would be (no mending
                # of rows with nothing to attend to, which only the last axis has)
                (_attention, "_masked_softmax", None, -1)],
    "sort": [(torch, "sort", 0, -1), (torch, "argsort", 0, -1), (torch, "topk", 1, -1),
             (torch.Tensor, "sort", 0, -1), (torch.Tensor, "argsort", 0, -1),
             (torch.Tensor, "topk", 1, -1)],
}
_MISSING = object()
_INSIDE: list[bool] = [False]  # F.softmax calls Tensor.softmax: change only the outer call


@contextmanager
def _patched(family: str, make: Callable):
    """Within this block, each function of ``family`` is ``make(original, name, pos,
    default)``."""
    saved = []
    try:
        for owner, name, pos, default in _FAMILIES[family]:
            saved.append((owner, name, vars(owner).get(name, _MISSING)))
            original = getattr(owner, name)
            inner = make(original, name, pos, default)

            def wrapper(*args, _inner=inner, _original=original, **kwargs):
                if _INSIDE[0]:
                    return _original(*args, **kwargs)
                _INSIDE[0] = True
                try:
                    return _inner(*args, **kwargs)
                finally:
                    _INSIDE[0] = False

            setattr(owner, name, wrapper)
        yield
    finally:
        for owner, name, old in reversed(saved):
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)


def _with_dim(change: Callable):
    """A ``make`` for ``_patched`` that calls the original with ``change(name, d, ndim)``
    as its axis (d counted from 0) when that is not None."""

    def make(original, name, pos, default):
        if name == "_masked_softmax":
            def masked(scores, keep):
                new = change("softmax", scores.dim() - 1, scores.dim())
                if new is None:
                    return original(scores, keep)
                low = torch.finfo(scores.dtype).min
                filled = scores if keep is None else scores.masked_fill(~keep, low)
                weights = torch.softmax(filled, dim=new)
                return weights if keep is None else weights.masked_fill(~keep, 0.0)

            return masked

        def call(x, *args, **kwargs):
            args = list(args)
            dim = kwargs.get("dim", args[pos] if len(args) > pos else default)
            if isinstance(x, torch.Tensor) and isinstance(dim, int) and x.dim() > 0:
                new = change(name, dim % x.dim(), x.dim())
                if new is not None:
                    if "dim" not in kwargs and len(args) > pos:
                        args[pos] = new
                    else:
                        kwargs["dim"] = new
            return original(x, *args, **kwargs)

        return call

    return make


def _naive(original, name, pos, default):
    """exp without subtracting the maximum, as a first softmax is often written."""
    if name == "_masked_softmax":
        def masked(scores, keep):
            e = scores.exp() if keep is None else scores.exp().masked_fill(~keep, 0.0)
            return e / e.sum(-1, keepdim=True)

        return masked

    def call(x, *args, **kwargs):
        args = list(args)
        dim = kwargs.pop("dim", args[pos] if len(args) > pos else default)
        dtype = kwargs.get("dtype", args[2] if name == "softmax" and len(args) > 2 else None)
        if not isinstance(x, torch.Tensor) or not isinstance(dim, int | tuple | list):
            return original(x, *args, **kwargs)
        x = x.to(dtype) if isinstance(dtype, torch.dtype) else x
        e = x.exp()
        if name == "softmax":
            return e / e.sum(dim, keepdim=True)
        if name == "log_softmax":
            return x - e.sum(dim, keepdim=True).log()
        keepdim = kwargs.get("keepdim", args[pos + 1] if len(args) > pos + 1 else False)
        return e.sum(dim, keepdim=bool(keepdim)).log()  # logsumexp

    return call


def _log_of_softmax(original, name, pos, default):
    """log(softmax(z)) for log_softmax(z): -inf where a probability underflows to 0."""
    if name != "log_softmax":
        return original

    def call(x, *args, **kwargs):
        args = list(args)
        dim = kwargs.pop("dim", args[pos] if len(args) > pos else default)
        return torch.softmax(x, dim=dim).log()

    return call


def calls_of(reference: Callable, case: Case) -> list[tuple[str, str, int, int]]:
    """The softmax-like and sorting calls ``reference`` makes on ``case``: (family, name,
    axis from 0, number of axes)."""
    seen: list[tuple[str, str, int, int]] = []
    for family in _FAMILIES:
        def record(name, d, ndim, _family=family):
            seen.append((_family, name, d, ndim))

        with _patched(family, _with_dim(record)):
            try:
                case.call(reference)
            except Exception:
                pass
    return seen


def _run_patched(reference, family, make):
    def wrong(*args, **kwargs):
        with _patched(family, make):
            return reference(*args, **kwargs)

    return wrong


_AXIS_WORDS = {"softmax": "softmax", "log_softmax": "log_softmax", "logsumexp": "logsumexp",
               "sort": "sort", "argsort": "argsort", "topk": "topk"}


def derived_mistakes(reference: Callable, case: Case) -> list[Mistake]:
    """The mistakes every checker names without declaring them, built from what the
    reference calls on ``case``: its softmax (log_softmax, logsumexp) or its sort (argsort,
    topk) along each other axis, and a softmax without max-subtraction."""
    calls = calls_of(reference, case)
    mistakes = []
    for family in _FAMILIES:
        mine = [c for c in calls if c[0] == family]
        if not mine:
            continue
        names = sorted({name for _, name, _, _ in mine}, key=list(_AXIS_WORDS).index)
        what = " / ".join(_AXIS_WORDS[n] for n in names)
        right = {(d, ndim) for _, _, d, ndim in mine}
        widest = max(ndim for _, _, _, ndim in mine)
        for target in range(widest):
            if all(d == target or target >= ndim for d, ndim in right):
                continue

            def change(name, d, ndim, _target=target):
                return _target if _target < ndim and _target != d else None

            axes = ", ".join(f"dim={d - ndim} of {ndim} axes" for d, ndim in sorted(right))
            if family == "softmax":
                verb = "sums" if names == ["logsumexp"] else "normalises"
                hint = (f"{what} {verb} along the axis you give it. Here it must run along "
                        f"{axes} (dim=-1 is the last axis); yours runs along dim={target}. "
                        "Check which axis holds the keys (or classes) that the weights are "
                        "spread over.")
            else:
                hint = (f"{what} orders along the axis you give it (dim=-1, the last, by "
                        f"default). Here it must run along {axes}; yours runs along "
                        f"dim={target}.")
            mistakes.append(Mistake(f"{what} over the wrong axis (dim={target})", hint,
                                    wrong=_run_patched(reference, family, _with_dim(change))))
            mistakes[-1].loose = True
        if family == "softmax":
            mistakes.append(Mistake(
                "exp without subtracting the maximum (overflow)",
                "exp of a score above about 88.7 is inf in float32 (709.8 in float64), and "
                "inf / inf is nan: subtract each row's largest score before exp, "
                "softmax(z) = exp(z - max z) / sum exp(z - max z), or use torch.softmax, "
                "torch.log_softmax or torch.logsumexp, which do.",
                wrong=_run_patched(reference, "softmax", _naive)))
            mistakes[-1].loose = True
            if "log_softmax" in names:
                mistakes.append(Mistake(
                    "log(softmax(z)) instead of log_softmax(z)",
                    "where the logits are far apart a probability underflows to 0 and its log "
                    "is -inf; log_softmax computes z - logsumexp(z) and stays finite.",
                    wrong=_run_patched(reference, "softmax", _log_of_softmax)))
                mistakes[-1].loose = True
    return mistakes


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
    answers.append(from_output("no gradient", _map_first(_detached), r"gradient",
                               "no result carries a gradient"))
    calls = [c for case in spec.cases for c in calls_of(reference, case)]
    softmax = [c for c in calls if c[0] == "softmax"]
    answers.append(GenericWrong(
        "softmax without max-subtraction",
        _run_patched(reference, "softmax", _naive) if softmax else None,
        r"nan|inf|overflow|maximum",
        "" if softmax else "the reference calls no softmax, log_softmax or logsumexp"))
    for family, what in (("softmax", "softmax"), ("sort", "sort")):
        mine = [c for c in calls if c[0] == family]
        movable = any(ndim > 1 for *_, ndim in mine)

        def before(name, d, ndim):  # the axis before the right one (the last for axis 0)
            return (d - 1) % ndim if ndim > 1 else None

        answers.append(GenericWrong(
            f"{what} over another axis",
            _run_patched(reference, family, _with_dim(before)) if movable else None,
            r"wrong axis|over the \w+ axis|over the (queries|output steps|features)",
            "" if movable else f"the reference calls no {what} over a tensor of two axes or "
                               "more"))
    return answers


def _detached(x):
    if isinstance(x, torch.Tensor) and x.requires_grad:
        return x.detach()
    return None
