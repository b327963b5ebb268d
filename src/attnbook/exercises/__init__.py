"""Exercise checkers, one module per chapter (``attnbook.exercises.ch01`` ...).

Every checker runs the reader's function on several cases and compares it with a
reference. It prints a ✓ line when all pass; when one fails it raises
``ExerciseError`` with a message that names the mistake in plain words. A stub that
still raises ``NotImplementedError`` is reported as "not attempted yet" and the
notebook goes on. The framework (``checker.py``) also refuses inputs changed in place,
compares types strictly (a mask must be boolean, a tensor must not be a NumPy array),
diagnoses shapes before values, and names a mistake only when it really explains the
answer; ``spec_of`` and ``generic_wrong_answers`` let one test cover every checker.
"""

from attnbook.exercises.checker import (
    Case,
    CheckResult,
    ExerciseError,
    Finding,
    Mistake,
    check_function,
    generic_wrong_answers,
    make_compare,
    spec_of,
)

__all__ = ["Case", "CheckResult", "ExerciseError", "Finding", "Mistake", "check_function",
           "generic_wrong_answers", "make_compare", "spec_of"]
