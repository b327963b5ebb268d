"""The interactive figures in the HTML book: a MyST-NB renderer and a Sphinx extension.

MyST-NB does not draw Vega-Lite itself. ``VegaLiteRenderer`` (registered under the
entry point group ``myst_nb.mime_renderers`` in pyproject.toml) turns a cell's
``application/vnd.vegalite.v5+json`` output into a ``<div class="attnbook-vega">`` that
holds the PNG fallback, followed by the spec as JSON. ``setup`` (listed in _config.yml
under ``sphinx.extra_extensions``) copies ``book/_static`` into the build and, on the
pages that hold such a div and only there, loads the vendored Vega, Vega-Lite and
vega-embed (``book/_static/vega``) and ``attnbook-interactive.js``, which draws them.
Nothing comes from a CDN: the book works offline.
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

from attnbook.interactive.figure import VEGALITE_MIME

STATIC = "book/_static"  # relative to the book's root (Sphinx's confdir)
SCRIPTS = ("vega/vega.min.js", "vega/vega-lite.min.js", "vega/vega-embed.min.js",
           "attnbook-interactive.js")
MARKER = 'class="attnbook-vega"'


def figure_html(spec: dict, alt_text: str = "", png_src: str | None = None) -> str:
    """The HTML of one figure: the fallback image (``png_src``, a URL or data: URI) inside
    the div that attnbook-interactive.js draws into, and the spec as JSON beside it."""
    text = json.dumps(spec, separators=(",", ":"), sort_keys=True)
    uid = "attnbook-spec-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    text = text.replace("</", "<\\/")  # a "</script>" inside a string must not end the tag
    alt_attr = html.escape(alt_text, quote=True)
    img = f'<img src="{html.escape(png_src)}" alt="{alt_attr}">' if png_src else ""
    return (f'<div {MARKER} data-spec="{uid}" role="figure" aria-label="{alt_attr}">{img}'
            f'</div>\n<script type="application/json" id="{uid}">{text}</script>\n')


class VegaLiteRenderer:
    """MyST-NB mime renderer plugin: Vega-Lite outputs become live figures in HTML.

    Other builders (LaTeX, text) keep their own choice: the PNG that the same output holds.
    """

    mime_priority_overrides = [(builder, VEGALITE_MIME, 5)
                               for builder in ("html", "dirhtml", "singlehtml")]

    @staticmethod
    def handle_mime(renderer, data, inline: bool):
        if inline or data.mime_type != VEGALITE_MIME:
            return None
        from docutils import nodes

        spec = data.content if isinstance(data.content, dict) else json.loads(data.string)
        extra = data.output_metadata.get(VEGALITE_MIME, {}).get("attnbook", {})
        png = extra.get("png")
        src = f"data:image/png;base64,{png}" if png else None
        body = figure_html(spec, extra.get("alt") or spec.get("description", ""), src)
        return [nodes.raw("", body, format="html", classes=["output", "attnbook-figure"])]


def _add_static_path(app, config) -> None:
    path = Path(app.confdir) / STATIC
    if path.is_dir():
        config.html_static_path.append(str(path))


def _load_scripts(app, pagename, templatename, context, doctree) -> None:
    """Only pages with a figure get the ~0.8 MB of JavaScript, and each file once."""
    if MARKER in context.get("body", ""):
        for i, script in enumerate(SCRIPTS):  # "defer": in order, after the page is parsed
            app.builder.add_js_file(script, priority=600 + i, defer="defer")


def setup(app) -> dict:
    app.connect("config-inited", _add_static_path)
    app.connect("html-page-context", _load_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
