"""Drives headless Chromium over a page of interactive figures; prints what they show.

Run by tests/test_interactive_browser.py in a process of its own (Playwright's sync API
cannot start twice in one process, and the book's browser tests hold it open). Reads a
JSON job on stdin: {"page": file path, "screenshot": path, "steps": [{"figure": i,
"controls": [[label, kind, value], ...]}, ...]}. Opens the page from file:// with every
other request blocked, waits for every figure, and for each step moves the figure's
controls -- the input elements a reader uses -- then reads the data of every named mark
of the figure's Vega view. Prints one JSON object: console errors, blocked requests, the
controls' labels per figure, and per step {mark name: [datum, ...]}.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_book_browser import CHROMIUM_ARGS, _system_chromium  # noqa: E402

READY_JS = """async () => {
  await window.attnbookFigures;
  return [...document.querySelectorAll('div.attnbook-vega')].map(div => ({
    rendered: div.dataset.rendered === 'true',
    alt: div.getAttribute('aria-label'),
    fallback_left: div.querySelectorAll('img').length,
    labels: [...div.querySelectorAll('.vega-bind')].map(b => ({
      text: b.querySelector('.vega-bind-name').textContent.trim(),
      labelled: !!b.querySelector('label input, label select')})),
    scroll: div.scrollWidth, client: div.clientWidth,
  }));
}"""

STEP_JS = """async ([index, controls]) => {
  const div = document.querySelectorAll('div.attnbook-vega')[index];
  for (const [label, kind, value] of controls) {
    const bind = [...div.querySelectorAll('.vega-bind')].find(
      b => b.querySelector('.vega-bind-name').textContent.trim() === label);
    if (!bind) throw new Error(`figure ${index}: no control labelled ${label}`);
    if (kind === 'range') {
      const el = bind.querySelector('input[type=range]');
      el.value = value; el.dispatchEvent(new Event('input', {bubbles: true}));
    } else if (kind === 'select') {
      const el = bind.querySelector('select');
      el.selectedIndex = [...el.options].findIndex(o => o.value === String(value));
      el.dispatchEvent(new Event('change', {bubbles: true}));
    } else {
      const el = bind.querySelector('input[type=checkbox]');
      el.checked = value; el.dispatchEvent(new Event('change', {bubbles: true}));
    }
  }
  const view = div.vegaView;
  await view.runAsync();
  const marks = {};
  const walk = (mark) => {
    if (mark.name && mark.name.endsWith('_marks')) {
      marks[mark.name.slice(0, -6)] = mark.items.map(item => {
        const d = {};
        for (const [k, v] of Object.entries(item.datum || {})) {
          if (['number', 'string', 'boolean'].includes(typeof v)) d[k] = v;
        }
        return d;
      });
    }
    (mark.items || []).forEach(item => (item.items || []).forEach(walk));
  };
  walk(view.scenegraph().root);
  return marks;
}"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    job = json.load(sys.stdin)
    report = {"errors": [], "blocked": [], "figures": [], "steps": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_system_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def route(r):
            if r.request.url.startswith(("file:", "data:")):
                r.continue_()
            else:
                report["blocked"].append(r.request.url)
                r.abort("blockedbyclient")

        page.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and report["errors"].append(m.text))
        page.on("pageerror", lambda e: report["errors"].append(str(e)))
        page.goto(Path(job["page"]).as_uri())
        page.wait_for_function("window.attnbookFigures !== undefined")
        report["figures"] = page.evaluate(READY_JS)
        for step in job["steps"]:
            report["steps"].append(page.evaluate(STEP_JS, [step["figure"], step["controls"]]))
        if job.get("screenshot"):
            page.screenshot(path=job["screenshot"], full_page=True)
        browser.close()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
