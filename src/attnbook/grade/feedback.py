"""Feedback for a learner: their notebook as the grader ran it, with every verdict.

The first cell says what was graded and how it went (a table of the exercises and the
problems outside them); each cell that checks an exercise gets the grader's verdict as
its last output, with the checker's hint. ``write`` also makes a page of it whose HTML is
sanitised (``clean_html``): a learner's notebook may display any HTML, scripts included.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

MARK = {"passed": "✓", "wrong": "✗", "not attempted": "…", "error": "✗",
        "timed out": "⏱", "missing": "?", "not own code": "✗"}


def escape_md(text: str) -> str:
    """``text`` shown as it is in Markdown (no emphasis, links or HTML from it)."""
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~-])", r"\\\1", text)


def _points(points: float) -> str:
    return f"{points:g}"


def feedback_notebook(nb, graded, calls: dict[str, list[int]], labels: dict[str, str]):
    """A copy of ``nb`` (this run's outputs) with the verdicts of ``graded`` added."""
    import copy

    from nbformat.v4 import new_markdown_cell, new_output

    out = copy.deepcopy(nb)
    rows = {f"check_{r.exercise}": r for r in graded.rows if r.exercise}
    last_call = {name: cells[-1] for name, cells in calls.items() if cells}
    for name, index in last_call.items():
        row = rows.get(name)
        if row is None:
            continue
        mark = MARK.get(row.status, "")
        text = (f"Grader: {mark} {labels.get(name, row.exercise)}: {row.status} "
                f"({_points(row.points)} of {_points(row.max_points)})")
        md = f"**{escape_md(text)}**"
        if row.detail:
            text += f"\n{row.detail}"
            md += f"  \n{escape_md(row.detail)}"
        out.cells[index].outputs.append(new_output(
            "display_data", data={"text/plain": text, "text/markdown": md}))

    earned = sum(r.points for r in graded.rows)
    worth = sum(r.max_points for r in graded.rows)
    lines = [f"# Feedback: {escape_md(Path(graded.notebook).name)}", "",
             f"Learner: **{escape_md(graded.learner or '-')}** · graded "
             f"{time.strftime('%Y-%m-%d %H:%M')} with `python -m attnbook.grade` · "
             f"**{_points(earned)} of {_points(worth)} points**", "",
             "| exercise | verdict | points | what the grader found |", "|---|---|---:|---|"]
    for r in graded.rows:
        detail = escape_md(r.detail[:300] + ("…" if len(r.detail) > 300 else ""))
        lines.append(f"| {escape_md(r.exercise or '(notebook)')} | {MARK.get(r.status, '')} "
                     f"{r.status} | {_points(r.points)} / {_points(r.max_points)} | {detail} |")
    lines.append("")
    if graded.ran_clean:
        lines.append("The notebook ran clean: no cell outside the exercises raised an error.")
    elif graded.problems:
        lines.append("The notebook did not run clean:")
        lines += [f"- {escape_md(p)}" for p in graded.problems]
    lines += ["", "Each exercise's verdict is also under the cell that checks it. The "
              "outputs below are those of the grader's run."]
    out.cells.insert(0, new_markdown_cell("\n".join(lines)))
    return out


# What a learner's notebook may show in the feedback page: text, tables, images, links.
# No scripts, styles, frames, forms or event handlers (nbconvert's own list of tags is
# too short for a notebook: it would show headings and paragraphs as escaped tags).
TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd",
        "del", "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3",
        "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "samp",
        "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "u", "ul"}
ATTRIBUTES = {"*": ["class", "id", "title"], "a": ["href"], "img": ["src", "alt", "width",
              "height"], "td": ["align", "colspan", "rowspan"], "th": ["align", "colspan",
                                                                      "rowspan"]}


def clean_html(element) -> str:
    """``element`` (HTML) with every tag and attribute not in TAGS/ATTRIBUTES removed."""
    import bleach

    text = element.decode() if isinstance(element, bytes) else str(element)
    return bleach.clean(text, tags=TAGS, attributes=ATTRIBUTES, strip=True,
                        protocols={"http", "https", "mailto", "data"}, strip_comments=True)


def write(nb, path: Path, html: bool = True) -> list[Path]:
    """Write the feedback notebook to ``path`` (.ipynb) and, if ``html``, beside it (.html)."""
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    written = [path]
    if html:
        from nbconvert import HTMLExporter

        exporter = HTMLExporter(sanitize_html=True, filters={"clean_html": clean_html})
        body, _ = exporter.from_notebook_node(nb)
        page = path.with_suffix(".html")
        page.write_text(body, encoding="utf-8")
        written.append(page)
    return written
