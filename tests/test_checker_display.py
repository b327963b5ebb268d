"""How a wrong answer looks in a notebook: the verdict and the hint alone, not a traceback.

JupyterLab, classic Notebook, Colab and the book all draw an error output from its
``traceback`` lines, which ipykernel takes from the exception's ``_render_traceback_``.
This runs a tiny notebook in a real kernel and reads the error output they would draw.
"""

import re

import nbformat
import pytest
from nbclient import NotebookClient

ANSI = re.compile(r"\x1b\[[0-9;]*m")

CELLS = [
    "from attnbook.exercises.ch01 import check_safe_cosine",
    "check_safe_cosine(lambda Q, K: Q @ K.T)",  # dot products: wrong, a named mistake
    "%tb",  # the full traceback, one step away
    "def raises(Q, K):\n    return Q @ K  # shapes do not fit\ncheck_safe_cosine(raises)",
]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=120,
                   resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}}
                   ).execute()
    return [cell.outputs for cell in nb.cells]


def _error(cell_outputs):
    errors = [o for o in cell_outputs if o.output_type == "error"]
    assert len(errors) == 1, cell_outputs
    return errors[0]


def test_a_wrong_answer_shows_only_its_verdict_and_hint(outputs):
    error = _error(outputs[1])
    assert error.ename == "ExerciseError"  # what the grader reads is unchanged
    assert error.evalue.startswith("✗ cosine with zero vectors")
    lines = [ANSI.sub("", line) for line in error.traceback]
    assert lines == error.evalue.split("\n")  # the message's lines and nothing else
    assert "This looks like: " in lines[-1] or any("This looks like: " in x for x in lines)
    text = "\n".join(lines)
    assert "Traceback" not in text and "checker.py" not in text and "File " not in text


def test_percent_tb_shows_the_full_traceback(outputs):
    text = ANSI.sub("", "\n".join(
        line for o in outputs[2] for line in o.get("traceback", []) + [o.get("text", "")]))
    assert "checker.py" in text and "ExerciseError" in text


def test_an_error_in_the_readers_code_names_its_line_and_points_to_tb(outputs):
    error = _error(outputs[3])
    lines = [ANSI.sub("", line) for line in error.traceback]
    assert lines[0].startswith("✗ cosine with zero vectors: your function raised RuntimeError")
    assert "return Q @ K" in lines[0]  # the reader's own line, quoted
    assert lines[-1].strip() == "(run %tb in a new cell to see the full traceback)"
    assert not any("checker.py" in line for line in lines)
