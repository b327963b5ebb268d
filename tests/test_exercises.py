"""What every chapter's checkers share: an untouched stub is "not attempted yet", not an error.

Discovers every ``check_*`` function in ``attnbook.exercises.chNN``, so a new chapter's
checkers are covered without a line here. What each checker accepts and which mistakes it
names is tested per chapter, in ``tests/test_exercises_chNN.py``.
"""

import importlib
import inspect
import pkgutil
import re

import pytest

import attnbook.exercises

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
