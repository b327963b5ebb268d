"""One click to Colab: every notebook's badge, launch button and setup cell agree with _config.yml.

The repository URL and the ref live once, in _config.yml (`repository.url`,
`repository.branch`). Jupyter Book builds the "Launch on Colab" button from them; the
notebooks repeat them in two places this test checks:

- the Open-in-Colab badge: `https://colab.research.google.com/github/OWNER/NAME/blob/REF/PATH`,
  where PATH is the notebook's own path in the repository;
- the setup cell: `pip install git+https://github.com/OWNER/NAME@REF`, run only when
  `attnbook` is missing (Colab), with the kernel's own interpreter.

Badge, launch button and setup cell use the same REF, so a notebook opened on Colab
installs the package from the same commit as the notebook itself: a notebook from `main`
gets the `main` package, one from a release tag gets that tag's. To publish a frozen
edition, tag it, set `repository.branch` to the tag and this test lists what to update.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = CONFIG["repository"]["url"]
REF = str(CONFIG["repository"].get("branch", "main"))
BOOK_PREFIX = (CONFIG["repository"].get("path_to_book") or "").strip("/")
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
NOTEBOOKS = CHAPTERS + SOLUTIONS
BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'<>\]]+")
GIT_URL = re.compile(r"git\+https?://[^\s\"']+")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _repo_path(path: Path) -> str:
    """The notebook's path inside the repository (what GitHub and Colab see)."""
    rel = path.relative_to(ROOT).as_posix()
    return f"{BOOK_PREFIX}/{rel}" if BOOK_PREFIX else rel


def _expected_colab(path: Path) -> str:
    repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/{REF}/{_repo_path(path)}"


def test_config_names_one_github_repository_and_a_ref():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPO_URL), (
        f"repository.url must be https://github.com/OWNER/NAME (no slash, no .git): {REPO_URL}")
    assert not REPO_URL.endswith(".git")
    assert re.fullmatch(r"[\w./-]+", REF), f"repository.branch is not a git ref: {REF!r}"
    assert CONFIG["launch_buttons"]["colab_url"].rstrip("/") == "https://colab.research.google.com"


def test_the_repository_root_is_the_pip_installable_package():
    """`pip install git+URL@REF` builds the pyproject.toml at the repository root."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "attnbook"
    pinned = [d for d in project.get("dependencies", []) if "==" in d]
    assert not pinned, (
        f"exact pins {pinned} would make pip replace Colab's preinstalled packages (torch!)")


def test_there_are_notebooks():
    assert CHAPTERS, "no chapter notebooks in notebooks/"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_opens_with_the_badge_to_itself(path):
    first = _source(_cells(path)[0])
    badge = f"[![Open In Colab]({BADGE_SVG})]({_expected_colab(path)})"
    assert badge in first, f"{path.name}: the first cell needs exactly\n{badge}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_colab_link_points_to_this_notebook_at_the_configured_ref(path):
    links = [link for cell in _cells(path) if cell["cell_type"] == "markdown"
             for link in COLAB_LINK.findall(_source(cell))]
    wrong = sorted({link for link in links if link != _expected_colab(path)})
    assert not wrong, f"{path.name}: Colab links {wrong}, expected {_expected_colab(path)}"


def _setup_cell(path: Path) -> str:
    """The first code cell, as Python reads it: adjacent string literals joined (a long URL
    may be split over two lines), IPython's ! and % lines left out."""
    source = next(_source(c) for c in _cells(path) if c["cell_type"] == "code")
    code = "\n".join(line for line in source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    return ast.unparse(ast.parse(code))


def _is_attnbook_missing(test: ast.expr) -> bool:
    """`importlib.util.find_spec("attnbook") is None`."""
    return (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Is)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
            and isinstance(test.left, ast.Call)
            and ast.unparse(test.left.func) == "importlib.util.find_spec"
            and [ast.literal_eval(a) for a in test.left.args] == ["attnbook"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_this_repository_at_the_ref_only_when_missing(path):
    setup = _setup_cell(path)
    urls = GIT_URL.findall(setup)
    assert urls == [f"git+{REPO_URL}@{REF}"], (
        f"{path.name}: the setup cell installs {urls}; expected exactly git+{REPO_URL}@{REF} "
        "(the repository of _config.yml at the ref its badge opens)")
    tree = ast.parse("\n".join(line for line in setup.splitlines()
                               if not line.lstrip().startswith(("%", "!"))))
    guarded = [node for node in ast.walk(tree)
               if isinstance(node, ast.If) and _is_attnbook_missing(node.test)]
    assert guarded, f"{path.name}: no `if importlib.util.find_spec(\"attnbook\") is None:`"
    installs = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and any(isinstance(a, ast.List) and urls[0] in ast.unparse(a) for a in node.args)]
    assert len(installs) == 1, f"{path.name}: expected one pip install call"
    inside = {id(n) for g in guarded for n in ast.walk(g)}
    assert id(installs[0]) in inside, f"{path.name}: the pip install must sit under the guard"
    command = ast.unparse(installs[0].args[0])
    assert command.startswith("[sys.executable, '-m', 'pip', 'install'"), (
        f"{path.name}: install with the kernel's interpreter (sys.executable -m pip), "
        f"not {command}")


def test_all_setup_cells_install_the_same_thing():
    installs = {path.name: GIT_URL.findall(_setup_cell(path)) for path in NOTEBOOKS}
    assert len({tuple(v) for v in installs.values()}) <= 1, installs
