"""What a reader of the book sees in the notebooks' sources: cheap checks, no kernel, no browser.

- no code line wider than 80 columns in any cell the book shows, in every chapter and
  solutions notebook (a cell tagged ``remove-cell`` or ``remove-input`` does not show its
  input, so its lines may be longer);
- no talk about the book's tooling (make targets, bench/, nbval, CI, "asserted", seed
  studies, threads) in a chapter's markdown cells: a page is about attention and the
  reader's code (STYLE.md, "A page is for the reader"). The pattern is the one the
  developers' before-stop hook uses.

The browser tests (tests/test_book_browser.py) check the built pages themselves: code and
outputs that scroll sideways at 1280 px, clipped equations, empty progress-bar widgets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))

MAX_COLUMNS = 80
HIDDEN_INPUT_TAGS = {"remove-cell", "remove-input"}
TOOLING = re.compile(r"make (bench|test)|bench/|\bnbval\b|\bCI\b|\basserted\b|one thread"
                     r"|seed study", re.I)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def wide_code_lines(path: Path) -> list[str]:
    """`cell N, line L (C cols): text` for every shown code line over MAX_COLUMNS."""
    found = []
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code" or _tags(cell) & HIDDEN_INPUT_TAGS:
            continue
        for number, line in enumerate(_source(cell).splitlines(), start=1):
            if len(line) > MAX_COLUMNS:
                found.append(f"cell {index}, line {number} ({len(line)} cols): {line}")
    return found


def tooling_talk(path: Path) -> list[str]:
    """`cell N: 'word' in "...context..."` for every tooling word in a markdown cell."""
    found = []
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "markdown":
            continue
        text = _source(cell)
        for match in TOOLING.finditer(text):
            start, end = max(0, match.start() - 40), min(len(text), match.end() + 40)
            context = " ".join(text[start:end].split())
            found.append(f"cell {index}: {match.group(0)!r} in \"...{context}...\"")
    return found


def test_the_checks_see_notebooks():
    assert CHAPTERS and SOLUTIONS, "no chapter or solutions notebooks found"


def test_the_checks_catch_what_they_look_for(tmp_path):
    """Each check fails on a notebook built to break it, and spares hidden cells."""
    long = "x = " + "1 + " * 30 + "1"
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "source": long},
        {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": long},
        {"cell_type": "code", "metadata": {"tags": ["remove-input"]}, "source": [long]},
        {"cell_type": "code", "metadata": {"tags": ["hide-input"]}, "source": [long]},
        {"cell_type": "markdown", "metadata": {}, "source": "Run `make test`; nbval checks it."},
        {"cell_type": "markdown", "metadata": {}, "source": "A circle is a curve."},
    ]}
    path = tmp_path / "99_probe.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    assert [w.split(",")[0] for w in wide_code_lines(path)] == ["cell 0", "cell 3"]
    assert [t.split(":")[0] for t in tooling_talk(path)] == ["cell 4", "cell 4"]


@pytest.mark.parametrize("path", CHAPTERS + SOLUTIONS, ids=lambda p: p.name)
def test_no_shown_code_line_is_wider_than_the_code_column(path):
    wide = wide_code_lines(path)
    if wide:
        pytest.fail(f"{_rel(path)}: {len(wide)} shown code lines over {MAX_COLUMNS} columns "
                    "(the book clips them):\n  " + "\n  ".join(wide), pytrace=False)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_prose_does_not_talk_about_tooling(path):
    talk = tooling_talk(path)
    if talk:
        pytest.fail(f"{_rel(path)}: the prose talks about the book's tooling, not about "
                    "attention:\n  " + "\n  ".join(talk), pytrace=False)
