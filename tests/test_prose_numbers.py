"""The prose never quotes a number its own page does not print.

The unit tests below hold `prose_numbers` to its rules on small notebooks. The `book`
test reads every chapter and solutions notebook as the book build executed it (from the
execution cache that `make test-book` fills, on whatever machine builds the book) and
fails, naming the sentence, when the prose quotes a number that none of the page's
outputs or shown code prints. Run it after the book: `pytest tests -m book`.
"""

from pathlib import Path

import nbformat
import pytest
from prose_numbers import numbers_in, section_numbers, unprinted_numbers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def notebook(prose: str, code: str = "", output: str = "", tags=()):
    cell = nbformat.v4.new_code_cell(code, metadata={"tags": list(tags)})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    return nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell(prose)])


def test_numbers_as_written():
    assert numbers_in("98.3% of 1,000 words, 0.988 and 12 %") == [
        "98.3%", "1,000", "0.988", "12%"]


def test_a_printed_number_passes_and_an_unprinted_one_fails():
    page = notebook("The model gets 98.8% of the words right, the RNN 97.0%.",
                    output="accuracy 0.988 vs 0.945")
    missing = unprinted_numbers(page, set())
    assert len(missing) == 1 and "'97.0%'" in missing[0]


def test_rounding_is_allowed_only_to_fewer_digits():
    assert unprinted_numbers(notebook("a loss of 0.31", output="0.3135"), set()) == []
    assert unprinted_numbers(notebook("a loss of 0.3135", output="0.31"), set()) != []


def test_ranges_constants_sections_and_math_are_not_quotes():
    prose = ("Over six seeds, 97.5–99.0% (section 9.3, 2017); we train for 300 steps "
             "with two heads, $p = 0.731$, `lr=0.01`.")
    assert unprinted_numbers(notebook(prose, code="steps = 300"), {"9.3"}) == []
    missing = unprinted_numbers(notebook(prose), {"9.3"})
    assert len(missing) == 1 and missing[0].startswith("'300' in")


def test_chapters_between_and_declared_constants_are_not_quotes():
    prose = ("<!-- not from a run: 65504 -->\nfloat16 tops out at 65504; chapters 12 and 13; "
             "the gap was between 31 and 36 points")
    assert unprinted_numbers(notebook(prose), set()) == []
    assert unprinted_numbers(notebook(prose.split("\n")[1]), set()) != []


def test_hidden_outputs_do_not_count():
    page = notebook("the gap is 4.2 points", output="gap 4.2", tags=["remove-output"])
    assert unprinted_numbers(page, set()) != []


def executed(path: Path):
    """The notebook with the outputs the book build gave it (from the execution cache)."""
    from jupyter_cache import get_cache

    nb = nbformat.read(path, as_version=4)
    cache = get_cache(ROOT / ".jupyter_cache")
    try:
        _, merged = cache.merge_match_into_notebook(nb)
    except KeyError:
        pytest.fail(f"{path.name} is not in the execution cache: build the book first")
    return merged


@pytest.mark.book
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_quotes_only_what_its_page_prints(path):
    sections = section_numbers([nbformat.read(p, as_version=4) for p in NOTEBOOKS])
    missing = unprinted_numbers(executed(path), sections)
    assert not missing, (f"{path.name}: the prose quotes numbers its page does not print "
                         "(quote the printed number, or the range that held over seeds and "
                         "CPUs):\n" + "\n".join(missing))
