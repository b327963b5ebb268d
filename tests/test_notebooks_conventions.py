"""The book's notebook conventions (README, "Contributing a chapter"), checked on every notebook."""

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
REPO_PATH = REPO_URL.removeprefix("https://github.com/")


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return files


def test_there_is_at_least_one_chapter():
    assert NOTEBOOKS, "no chapter notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_committed_without_outputs_and_with_python3_kernel(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: strip outputs before committing"
            assert cell["execution_count"] is None, f"{path.name}: strip execution counts"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_first_code_cells_install_then_set_up(path):
    """Cell 1 installs attnbook where it is missing (Colab) and is hidden in the book
    (a reader of the page has nothing to install); cell 2 imports, seeds, picks the device."""
    code = [c for c in _load(path)["cells"] if c["cell_type"] == "code"]
    install, setup = _source(code[0]), _source(code[1])
    assert 'importlib.util.find_spec("attnbook") is None' in install, \
        f"{path.name}: the first code cell must install attnbook only when it is missing"
    joined = ast.unparse(ast.parse(install))  # "a" "b" -> "ab": a URL split over lines
    assert f"git+{REPO_URL}" in joined, f"{path.name}: setup cell must install from {REPO_URL}"
    assert "remove-cell" in code[0].get("metadata", {}).get("tags", []), \
        f"{path.name}: tag the install cell remove-cell, so the book does not show it"
    assert "set_seed(" in setup and "get_device()" in setup, \
        f"{path.name}: the second code cell imports, calls set_seed(0) and get_device()"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_no_nbval_markers(path):
    """The notebooks run under --nbval-lax, which compares no output: a marker would only
    show on the page."""
    marked = [i for i, c in enumerate(_load(path)["cells"]) if "NBVAL_" in _source(c)]
    assert not marked, f"{path.name}: cells {marked} carry an NBVAL_ comment; drop it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_skeleton(path):
    cells = _load(path)["cells"]
    first = _source(cells[0])
    number = int(path.name[:2])
    assert re.match(rf"# {number}\. \S", first), f"{path.name}: must open with '# {number}. Title'"
    badge = f"https://colab.research.google.com/github/{REPO_PATH}/blob/main/notebooks/{path.name}"
    assert badge in first, f"{path.name}: the first cell needs the Open-in-Colab badge {badge}"
    headings = [line for c in cells if c["cell_type"] == "markdown"
                for line in _source(c).splitlines() if line.startswith("## ")]
    assert "## Summary" in headings and "## Exercises" in headings, headings


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_has_a_solutions_notebook(path):
    solution = ROOT / "notebooks" / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solution.exists(), f"missing {solution.relative_to(ROOT)}"


def test_every_toc_entry_exists_and_every_notebook_is_in_the_toc():
    files = _toc_files()
    for entry in files:
        found = [p for p in (ROOT / f"{entry}.md", ROOT / f"{entry}.ipynb", ROOT / entry)
                 if p.is_file()]
        assert found, f"_toc.yml lists {entry}, which does not exist"
    listed = {str(Path(f).with_suffix("")) for f in files}
    for path in NOTEBOOKS + SOLUTIONS:
        rel = str(path.relative_to(ROOT).with_suffix(""))
        assert rel in listed, f"{rel} is not in _toc.yml"
