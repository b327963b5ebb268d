"""The interactive figures in a real browser: moved by their controls, checked against Python.

A page is built here from the helpers' own HTML (``attnbook.interactive.book.figure_html``,
what the book's pages hold) and a copy of ``book/_static`` (the vendored Vega and
``attnbook-interactive.js``), opened from file:// in headless Chromium with every other
request blocked. For every figure, every control is moved to at least two settings through
its input element, as a reader would, and the data of each named mark the figure then
shows is compared with ``figure.expected(settings)``, which the package computes. A
screenshot of the page goes to ``_build/screenshots/interactive_figures.png``.

Chromium runs in a process of its own (tests/interactive_driver.py): the book's browser
tests hold Playwright's sync API open in this one.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from interactive_examples import all_figures

from attnbook.interactive.book import SCRIPTS, figure_html

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "_build" / "screenshots" / "interactive_figures.png"
COLUMN = 688  # px: the book's output column at the browser tests' 1280-px window
FIGURES = all_figures()


def _steps(figure) -> list[dict]:
    """Full settings: each control in turn at two values other than its default (the others
    at their defaults), then every control at its first value at once."""
    settings = []
    for control in figure.controls:
        others = [v for v in control.values if v != control.value]
        for value in (others[0], others[len(others) // 2]) if len(others) > 1 else others:
            settings.append({**figure.defaults, control.name: value})
    settings.append({c.name: c.values[0] for c in figure.controls})
    return settings


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """Build the page, drive the browser; (report, [(name, settings)] per step)."""
    folder = tmp_path_factory.mktemp("interactive")
    shutil.copytree(ROOT / "book" / "_static", folder / "_static")
    body, steps, meta = "", [], []
    for index, (name, figure) in enumerate(FIGURES.items()):
        png = base64.b64encode(figure.png()).decode("ascii")
        body += f"<h2>{name}</h2>\n" + figure_html(figure.spec, figure.alt,
                                                    f"data:image/png;base64,{png}")
        controls = {c.name: c for c in figure.controls}
        for settings in _steps(figure):
            steps.append({"figure": index, "controls": [
                [controls[k].label, controls[k].kind, v] for k, v in settings.items()]})
            meta.append((name, settings))
    scripts = "".join(f'<script defer src="_static/{s}"></script>' for s in SCRIPTS)
    page = folder / "figures.html"
    page.write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{scripts}"
                    f"</head><body style='width: {COLUMN}px'>{body}</body></html>",
                    encoding="utf-8")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    job = {"page": str(page), "screenshot": str(SCREENSHOT), "steps": steps}
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "interactive_driver.py")],
                            input=json.dumps(job), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), meta


def test_every_figure_draws_offline_without_errors(shown):
    report, _ = shown
    assert report["blocked"] == [], "the figures asked for something outside the page"
    assert report["errors"] == []
    assert len(report["figures"]) == len(FIGURES)
    for name, fig in zip(FIGURES, report["figures"], strict=True):
        assert fig["rendered"], f"{name} was not drawn"
        assert fig["fallback_left"] == 0, f"{name}: the PNG fallback is still shown"
        assert fig["scroll"] <= fig["client"] == COLUMN, f"{name} is wider than the column"


def test_every_control_is_labelled_and_every_figure_has_alt_text(shown):
    report, _ = shown
    for (name, figure), fig in zip(FIGURES.items(), report["figures"], strict=True):
        assert [b["text"] for b in fig["labels"]] == [c.label for c in figure.controls] or \
            sorted(b["text"] for b in fig["labels"]) == sorted(c.label for c in figure.controls)
        assert all(b["labelled"] for b in fig["labels"]), f"{name}: an input without a label"
        assert fig["alt"] == figure.alt and "Try" in figure.alt  # the figure's accessible name


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-3, abs_tol=2e-4)


def _matches(shown_row: dict, want: dict) -> bool:
    return all(k in shown_row and _same(shown_row[k], v) for k, v in want.items())


def test_moving_the_controls_shows_the_packages_numbers(shown):
    report, meta = shown
    assert len(report["steps"]) == len(meta)
    moved = {name: set() for name in FIGURES}
    for (name, settings), marks in zip(meta, report["steps"], strict=True):
        figure = FIGURES[name]
        moved[name].update(k for k, v in settings.items() if v != figure.defaults[k])
        for mark, rows in figure.expected(settings).items():
            got = marks.get(mark)
            assert got is not None, f"{name}: no mark named {mark} (marks: {sorted(marks)})"
            assert len(got) == len(rows), (f"{name} at {settings}: {mark} shows {len(got)} "
                                           f"items, Python expects {len(rows)}")
            for want in rows:
                assert any(_matches(g, want) for g in got), (
                    f"{name} at {settings}: {mark} does not show {want}; it shows "
                    f"{[g for g in got][:8]}")
    for name, figure in FIGURES.items():  # every control moved, at two settings at least
        assert moved[name] == {c.name for c in figure.controls}, name
