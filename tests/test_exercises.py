"""What every chapter's checkers share, tested once for all of them.

Discovers every ``check_*`` function in ``attnbook.exercises.chNN``, so a new chapter's
checkers are covered without a line here: an untouched stub is "not attempted yet"; the
reference passes; generic wrong answers built from the reference (None, transposed, an
extra dimension, the wrong dtype, an input changed in place, a result cut from the
gradient, a softmax without max-subtraction, a softmax or sort over another axis) are
refused with a message that names the fault; and every mistake with an implementation
is named when that implementation is the answer. What else each checker accepts and names is tested
per chapter, in ``tests/test_exercises_chNN.py``.
"""

import importlib
import inspect
import pkgutil
import re

import pytest

import attnbook.exercises
from attnbook.exercises import ExerciseError
from attnbook.exercises.checker import generic_wrong_answers, spec_of

CHAPTERS = [m.name for m in pkgutil.iter_modules(attnbook.exercises.__path__)
            if re.fullmatch(r"ch\d\d", m.name)]
MODULES = [importlib.import_module(f"attnbook.exercises.{name}") for name in CHAPTERS]
CHECKERS = [(f"{module.__name__.rsplit('.', 1)[1]}.{name}", fn) for module in MODULES
            for name, fn in inspect.getmembers(module, inspect.isfunction)
            if name.startswith("check_") and fn.__module__ == module.__name__]


def stub(*args, **kwargs):
    raise NotImplementedError


def test_every_chapter_module_has_checkers():
    assert len(MODULES) >= 6
    for module in MODULES:
        assert any(name.startswith(module.__name__.rsplit(".", 1)[1]) for name, _ in CHECKERS)


@pytest.mark.parametrize("name, check", CHECKERS, ids=[name for name, _ in CHECKERS])
def test_a_stub_is_not_attempted_and_does_not_raise(name, check, capsys):
    assert check(stub).passed is False
    assert "not attempted yet" in capsys.readouterr().out


# ---------------------------------------------------------------- properties of every checker

SPECS = {name: spec_of(check) for name, check in CHECKERS}
GENERIC = [(name, check, wrong) for name, check in CHECKERS
           for wrong in generic_wrong_answers(SPECS[name])]
NAMED = [(name, check, mistake) for name, check in CHECKERS
         for mistake in SPECS[name].mistakes if mistake.wrong is not None]


@pytest.mark.parametrize("name, check", CHECKERS, ids=[name for name, _ in CHECKERS])
def test_the_reference_passes_its_own_checker(name, check, capsys):
    assert check(SPECS[name].reference).passed is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name, check", CHECKERS, ids=[name for name, _ in CHECKERS])
def test_every_checker_has_several_cases_and_names_two_mistakes(name, check):
    spec = SPECS[name]
    assert len(spec.cases) >= 3 and len(spec.mistakes) >= 2


@pytest.mark.parametrize("name, check, wrong", GENERIC,
                         ids=[f"{name}-{wrong.kind}" for name, _, wrong in GENERIC])
def test_a_generic_wrong_answer_is_refused_with_a_structural_message(name, check, wrong):
    """None, transposed, an extra dimension, the wrong dtype, an input changed in place,
    no gradient, an exp without the maximum (so every softmax meets scores above exp's
    overflow), a softmax or sort over another axis (named in every checker)."""
    if wrong.fn is None:
        pytest.skip(f"{name}: {wrong.kind}: {wrong.skip}")
    with pytest.raises(ExerciseError, match=wrong.message) as info:
        check(wrong.fn)
    assert "Traceback" not in str(info.value) and "could not be compared" not in str(info.value)


@pytest.mark.parametrize("name, check, mistake", NAMED,
                         ids=[f"{name}-{m.name}" for name, _, m in NAMED])
def test_every_mistake_implementation_is_refused_and_named(name, check, mistake):
    """A mistake that no case tells apart from the right answer could never be named."""
    with pytest.raises(ExerciseError, match="This looks like: ") as info:
        check(mistake.wrong)
    assert f"This looks like: {mistake.name}." in str(info.value), str(info.value)
