"""Exercise checkers, one module per chapter (``attnbook.exercises.ch01`` ...).

Every checker runs the reader's function on several cases and compares it with a
reference. It prints a ✓ line when all pass; when one fails it raises
``ExerciseError`` with a message that names the mistake in plain words. A stub that
still raises ``NotImplementedError`` is reported as "not attempted yet" and the
notebook goes on.
"""

from attnbook.exercises.checker import Case, CheckResult, ExerciseError, Mistake, check_function

__all__ = ["Case", "CheckResult", "ExerciseError", "Mistake", "check_function"]
