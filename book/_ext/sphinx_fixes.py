"""Small fixes for the pinned Sphinx 7.4 / Jupyter Book 1.0 stack (loaded from _config.yml).

Sphinx 7.4 writes an inline script twice when an extension adds it after the builder
started (it keeps it once with filename None, once with ""). sphinx-thebe adds its
settings that way as `const THEBE_JS_URL = ...`; the second copy is a SyntaxError in
every page's console. We give such scripts the "" filename at once, so the copies are
equal and Sphinx keeps one. tests/test_book_browser.py fails if the error comes back.
"""

from sphinx.application import Sphinx


def _unify_inline_scripts(app: Sphinx, *_args) -> None:
    try:
        from sphinx.builders.html._assets import _JavaScript
    except ImportError:  # another Sphinx: nothing to fix
        return
    files = getattr(app.builder, "_js_files", None)
    if files is None:
        return
    unified = []
    for js in files:
        if isinstance(js, _JavaScript) and js.filename is None:
            js = _JavaScript("", priority=js.priority, **js.attributes)
        if js not in unified:
            unified.append(js)
    files[:] = unified


def setup(app: Sphinx) -> dict:
    # After every extension's env-before-read-docs handler (sphinx-thebe's runs at 500).
    app.connect("env-before-read-docs", _unify_inline_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
