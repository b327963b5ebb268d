"""Numbers in a chapter's prose that its own page does not print.

A run's numbers move with the CPU (instruction set, thread count) and the seed, so a
sentence that quotes "98.3%" is true only where it was written. The book's rule: a number
in the prose is either printed on the page (an output, or a constant in the code shown),
or is a range "A–B" that held over seeds and instruction sets. This module finds the
numbers that are neither; `tests/test_prose_numbers.py` applies it to every executed
notebook of the built book.

What is not read as a quoted result: mathematics (`$...$`), inline code, citations and
glossary roles, link targets, section and exercise numbers ("9.3"), chapter numbers,
years, the integers 0-10 (counts in words: "two heads", "3 layers" and the like), ranges
("97.5–99.0%", "between 31 and 36"), and the numbers a cell declares not to come from a
run, in a comment that neither JupyterLab nor the book shows:

    <!-- not from a run: 65504, 1,797 -->
"""

from __future__ import annotations

import re

import nbformat

HIDDEN_TAGS = {"remove-cell", "remove-output"}  # outputs the page does not show
NUMBER = re.compile(r"(?<![\w.\-−])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s?%)?(?![\w])")
RANGE = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?%?\s?(?:–|--|-)\s?−?\d[\d,]*(?:\.\d+)?%?")
SECTION = re.compile(r"^\d{1,2}\.\d{1,2}$")
BETWEEN = re.compile(r"\bbetween\s+\d[\d,.]*%?\s+and\s+\d[\d,.]*%?")
CHAPTER = re.compile(r"\b(?:[Cc]hapters?|[Pp]arts?)\s+\d+(?:\s*(?:,|and|or|–)\s*\d+)*")
DECLARED = re.compile(r"<!--\s*not from a run:(.*?)-->", flags=re.S)


def _strip_markup(text: str) -> str:
    """Markdown without mathematics, code, roles, link targets and HTML."""
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", " ", text, flags=re.S)
    text = re.sub(r"(?<!\\)\$[^$]*\$", " ", text)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\{(cite|cite:p|cite:t|term|ref|numref|doc|download)\}`[^`]*`", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # [text](target) -> [text]
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"https?://\S+", " ", text)
    return text


def _value(number: str) -> tuple[float, int, bool]:
    """(value, decimals, is_percent) of a number as written."""
    percent = number.endswith("%")
    digits = number.rstrip("%").strip().replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return float(digits), decimals, percent


def numbers_in(text: str) -> list[str]:
    """Every number of a text as written ("98.3%", "0.988", "1,000")."""
    return ["".join(m.groups(default="")).replace(" ", "") for m in NUMBER.finditer(text)]


def section_numbers(notebooks: list[nbformat.NotebookNode]) -> set[str]:
    """Section and exercise numbers the book uses ("9.3", "11.2")."""
    found = set()
    for nb in notebooks:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                found.update(re.findall(r"^#+\s+(?:Exercise\s+)?(\d{1,2}\.\d{1,2})\b",
                                        cell.source, flags=re.M))
                found.update(re.findall(r"\*\*(?:Exercise\s+)?(\d{1,2}\.\d{1,2})\b",
                                        cell.source))
    return found


def page_text(nb: nbformat.NotebookNode) -> str:
    """What the page prints: shown outputs and the code shown."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "remove-cell" in tags:
            continue
        if "remove-input" not in tags:
            parts.append(cell.source)
        if tags & HIDDEN_TAGS:
            continue
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append(out["text"])
            for mime in ("text/plain", "text/markdown", "text/html"):
                if mime in out.get("data", {}):
                    parts.append(out["data"][mime])
    return "\n".join(parts)


def _printed(number: str, printed: list[tuple[float, int, bool]]) -> bool:
    value, decimals, percent = _value(number)
    half = 0.5 * 10.0 ** -decimals + 1e-9
    for other, other_decimals, other_percent in printed:
        if other_decimals < decimals:
            continue  # the page printed it less precisely than the prose claims
        candidates = [other]
        if percent and not other_percent:
            candidates.append(100 * other)  # 0.988 printed, 98.8% written
        if not percent and other_percent:
            candidates.append(other / 100)
        if any(abs(c - value) <= half for c in candidates):
            return True
    return False


def unprinted_numbers(nb: nbformat.NotebookNode, sections: set[str]) -> list[str]:
    """Numbers in the prose of an executed notebook that its page does not print."""
    printed = [_value(n) for n in numbers_in(page_text(nb))]
    missing = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        declared = {n for m in DECLARED.finditer(cell.source) for n in numbers_in(m.group(1))}
        text = _strip_markup(DECLARED.sub(" ", cell.source))
        text = CHAPTER.sub(" ", text)
        text = BETWEEN.sub(" ", RANGE.sub(" ", text))  # a range states what held everywhere
        for match in NUMBER.finditer(text):
            number = "".join(match.groups(default="")).replace(" ", "")
            value, decimals, percent = _value(number)
            if number in declared or (SECTION.match(number) and number in sections):
                continue
            if decimals == 0 and not percent and (value <= 10 or 1900 <= value <= 2030):
                continue
            if not _printed(number, printed):
                context = text[max(0, match.start() - 40):match.end() + 20]
                missing.append(f"{number!r} in '...{' '.join(context.split())}...'")
    return missing


if __name__ == "__main__":
    # python tests/prose_numbers.py EXECUTED.ipynb ...: the unprinted numbers of notebooks
    # that carry their outputs (e.g. from `jupyter nbconvert --to notebook --execute`).
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "notebooks"
    sections = section_numbers([nbformat.read(p, as_version=4)
                                for p in sorted(root.glob("**/*.ipynb"))])
    status = 0
    for name in sys.argv[1:]:
        missing = unprinted_numbers(nbformat.read(name, as_version=4), sections)
        print(f"{name}: {len(missing)} unprinted", *missing, sep="\n  ")
        status |= bool(missing)
    sys.exit(status)
