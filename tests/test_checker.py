"""The exercise-checker framework: right answers pass, wrong ones are explained, stubs wait."""

import numpy as np
import pytest
import torch

from attnbook.exercises import Case, ExerciseError, Mistake, check_function
from attnbook.exercises.checker import make_compare


def reference(x):
    return torch.softmax(x, dim=-1)


MISTAKES = [
    Mistake("softmax over the wrong axis", "normalise over the last axis (dim=-1).",
            wrong=lambda x: torch.softmax(x, dim=0)),
    Mistake("rows do not sum to 1", "divide by the sum.",
            detect=lambda got, exp, case: not torch.allclose(got.sum(-1), torch.ones(()))),
]
CASES = [Case((torch.randn(3, 4, generator=torch.Generator().manual_seed(i)),)) for i in range(3)]


def check(fn):
    return check_function(fn, exercise="softmax", reference=reference, cases=CASES,
                          mistakes=MISTAKES)


def test_right_answer_passes_and_prints_a_tick(capsys):
    assert check(lambda x: x.exp() / x.exp().sum(-1, keepdim=True)).passed is True
    assert "✓ softmax: all 3 cases pass" in capsys.readouterr().out


def test_stub_is_not_attempted_and_does_not_raise(capsys):
    def stub(x):
        raise NotImplementedError

    assert check(stub).passed is False
    assert "not attempted yet" in capsys.readouterr().out


def test_known_mistake_is_named():
    with pytest.raises(ExerciseError, match="wrong axis.*dim=-1"):
        check(lambda x: torch.softmax(x, dim=0))
    with pytest.raises(ExerciseError, match="rows do not sum to 1"):
        check(lambda x: x.exp())


@pytest.mark.parametrize("answer, message", [
    (lambda x: None, "returned None: did you forget the `return`"),
    (lambda x: reference(x).tolist(), "returned a list.*torch.tensor"),
    (lambda x: reference(x).T, r"shape \(4, 3\), expected \(3, 4\) \(transposed\?\)"),
    (lambda x: reference(x) * float("nan"), "nan at 12 place"),
    (lambda x: "softmax", "returned a str"),
])
def test_wrong_type_or_shape_gets_a_hint_not_a_traceback(answer, message):
    with pytest.raises(ExerciseError, match=message):
        check(answer)


def test_an_error_inside_the_readers_function_is_reported_with_its_cause():
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError") as info:
        check(lambda x: 1 / 0)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_function_that_modifies_its_input_does_not_spoil_the_reference():
    def in_place(x):
        x.exp_()
        return x / x.sum(-1, keepdim=True)

    assert check(in_place)


def test_not_a_function():
    with pytest.raises(ExerciseError, match="pass your function itself"):
        check(torch.ones(3))


def test_compare_walks_tuples_and_accepts_numpy_for_tensors():
    compare = make_compare()
    assert compare((np.ones(2), 1.0), (torch.ones(2), 1.0)) is None
    assert "return value 1" in compare((torch.ones(2), 2.0), (torch.ones(2), 1.0))
    assert "expected 2 return values" in compare(torch.ones(2), (torch.ones(2), 1.0))
    assert compare(True, True) is None and "you returned False" in compare(False, True)


def test_mistake_needs_exactly_one_recogniser():
    with pytest.raises(ValueError, match="exactly one"):
        Mistake("x", "y")


def test_result_is_truthy_only_when_passed_and_displays_nothing_more():
    passed = check(reference)
    assert passed and passed.passed is True
    result = check(lambda x: (_ for _ in ()).throw(NotImplementedError))
    assert not result and result.passed is False
    assert passed._ipython_display_() is None and "passed=True" in repr(passed)
