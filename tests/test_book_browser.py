"""The built book in a real browser: headless Chromium, every page of _toc.yml, network blocked.

Run by `make test-browser` (last step of `make test`). It uses the `_build/html` that
`make test-book` has just built when that is up to date, and builds the book otherwise. It
serves the HTML on a localhost port, blocks every request that leaves localhost (the book
must read offline: MathJax, fonts and figures all ship inside `_build/html`), loads each
page once and saves a full-page screenshot of it under `_build/screenshots/`. The tests
below then check what a reader sees: HTTP 200 and no console errors, figures that loaded,
typeset math, the Colab launch link, previous/next and sidebar navigation, citations
and glossary links; and, at the 1280-px window, how the pages render for a reader: no code
cell or output that scrolls sideways, no clipped display equation, no progress bar (dead
widget box or frozen text bar), no `NBVAL_` or `# noqa` marker in sight.

$ATTNBOOK_BOOK_DIR: test an HTML book built elsewhere instead (e.g. a clone's
`_build/html`). It is used as it is, never rebuilt nor compared with this tree's sources;
its screenshots go next to it (`$ATTNBOOK_BOOK_DIR/../screenshots`).

Chromium: the system one (`chromium`, `chromium-browser`, `google-chrome`, or the path in
$CHROMIUM), else Playwright's own. With neither the tests fail and say how to install one.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BOOK_DIR_ENV = os.environ.get("ATTNBOOK_BOOK_DIR")
HTML = Path(BOOK_DIR_ENV).resolve() if BOOK_DIR_ENV else ROOT / "_build" / "html"
SCREENSHOTS = HTML.parent / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
REPO_PATH = REPO_URL.removeprefix("https://github.com/")
BRANCH = CONFIG["repository"].get("branch", "main")
BOOK_PREFIX = (CONFIG["repository"].get("path_to_book") or "").strip("/")
# Files whose change makes every page stale (the pages themselves are compared one by one).
BOOK_WIDE_SOURCES = ["_config.yml", "_toc.yml", "book/references.bib"]

INSTALL_CHROMIUM = (
    "No Chromium for the browser tests. Install one: as root on Debian/Ubuntu "
    "`apt-get update && apt-get install -y chromium`, or Playwright's own with "
    "`.venv/bin/playwright install chromium` (or point $CHROMIUM at a Chrome/Chromium binary)."
)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage",   # Docker's 64 MB /dev/shm crashes tabs with long pages
]
# The only thing the book may fetch from outside: the decorative "Open in Colab" badge
# image at the top of each chapter (offline its alt text shows). Anything else is a bug.
ALLOWED_EXTERNAL = {"https://colab.research.google.com/assets/colab-badge.svg"}
VIEWPORT = {"width": 1280, "height": 900}


# ---------------------------------------------------------------------------------------
# What the book contains, from _toc.yml and the sources (so the tests grow with the book)
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    docname: str   # e.g. "notebooks/01_vectors_and_similarity"
    source: Path

    @property
    def is_notebook(self) -> bool:
        return self.source.suffix == ".ipynb"

    @property
    def is_chapter(self) -> bool:
        """A numbered chapter (not front matter, not a solutions notebook)."""
        return self.is_notebook and re.fullmatch(r"notebooks/\d\d_\w+", self.docname) is not None

    @property
    def html(self) -> Path:
        return HTML / f"{self.docname}.html"

    @property
    def colab_url(self) -> str:
        path = "/".join(p for p in (BOOK_PREFIX, f"{self.docname}.ipynb") if p)
        return f"https://colab.research.google.com/github/{REPO_PATH}/blob/{BRANCH}/{path}"


def _toc_docnames() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return [str(Path(n).with_suffix("")) if Path(n).suffix in (".md", ".ipynb") else n
            for n in names]


def _pages() -> list[Page]:
    pages = []
    for name in _toc_docnames():
        sources = [ROOT / f"{name}{ext}" for ext in (".ipynb", ".md")]
        source = next((s for s in sources if s.is_file()), sources[-1])
        pages.append(Page(name, source))
    return pages


PAGES = _pages()
ROOT_DOC = PAGES[0].docname
CHAPTERS = [p for p in PAGES if p.is_chapter]
NOTEBOOK_PAGES = [p for p in PAGES if p.is_notebook]
GLOSSARY = next((p.docname for p in PAGES if p.docname.endswith("glossary")), "book/glossary")
BIBLIOGRAPHY = next((p.docname for p in PAGES if p.docname.endswith("bibliography")),
                    "book/bibliography")


def _prose(page: Page) -> str:
    """The page's markdown (markdown cells of a notebook) without code blocks or code spans."""
    if page.is_notebook:
        cells = json.loads(page.source.read_text(encoding="utf-8"))["cells"]
        text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = page.source.read_text(encoding="utf-8")
    # Code blocks (not directives such as ```{note}, whose content is prose).
    text = re.sub(r"^(```+|~~~+)(?!\s*\{).*?^\1\s*$", "", text, flags=re.S | re.M)
    # Keep roles ({cite}`key`), drop inline code spans (`code`), scanning left to right.
    return re.sub(r"(\{[\w:-]+\}`[^`]*`)|(`+)[^`]+?\2",
                  lambda m: m.group(1) or "", text)


def _cited_keys(page: Page) -> set[str]:
    keys = set()
    for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", _prose(page)):
        keys.update(k.strip() for k in group.split(","))
    return keys


def _term_roles(page: Page) -> list[str]:
    return re.findall(r"\{term\}`([^`]+)`", _prose(page))


def _ids(pages):
    return [p.docname for p in pages]


# ---------------------------------------------------------------------------------------
# The book, a localhost server, and one visit per page
# ---------------------------------------------------------------------------------------

def _stale_reason() -> str | None:
    """Why `_build/html` cannot be used as it is (None when it is up to date)."""
    built = []
    for page in PAGES:
        if not page.html.is_file():
            return f"{page.html.relative_to(ROOT)} is missing"
        if page.source.is_file() and page.html.stat().st_mtime < page.source.stat().st_mtime:
            return f"{page.source.relative_to(ROOT)} changed after it was built"
        built.append(page.html.stat().st_mtime)
    for name in BOOK_WIDE_SOURCES:
        path = ROOT / name
        if path.is_file() and path.stat().st_mtime > max(built):
            return f"{name} changed after the last build"
    return None


@pytest.fixture(scope="session")
def built_book(request) -> Path:
    """`_build/html`, reused when `make test-book` has just built it, built here otherwise."""
    if BOOK_DIR_ENV:
        if not (HTML / f"{ROOT_DOC}.html").is_file():
            pytest.fail(f"ATTNBOOK_BOOK_DIR={BOOK_DIR_ENV} holds no built book "
                        f"({ROOT_DOC}.html is missing)", pytrace=False)
        return HTML
    reason = _stale_reason()
    if reason is not None:
        exe = Path(sys.executable).with_name("jupyter-book")
        cmd = [str(exe) if exe.exists() else "jupyter-book", "build", ".", "--builder", "html"]
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\nbuilding the book first ({reason}): {' '.join(cmd)}", flush=True)
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"the book does not build:\n{(result.stdout + result.stderr)[-4000:]}")
        reason = _stale_reason()
        assert reason is None, f"after building the book: {reason}"
    return HTML


@pytest.fixture(scope="session")
def server(built_book):
    """`_build/html` over HTTP on a free localhost port."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(Quiet, directory=str(built_book)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _system_chromium() -> str | None:
    candidates = [os.environ.get("CHROMIUM")]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser",
                                              "google-chrome", "google-chrome-stable")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="session")
def book_browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `.venv/bin/pip install -r requirements.txt`")
    with sync_playwright() as p:
        executable = _system_chromium()
        if executable is None and not Path(p.chromium.executable_path).is_file():
            pytest.fail(INSTALL_CHROMIUM, pytrace=False)
        try:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Error as error:
            pytest.fail(f"Chromium ({executable or p.chromium.executable_path}) does not start: "
                        f"{error}\n{INSTALL_CHROMIUM}", pytrace=False)
        yield browser
        browser.close()


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1",
                                                                            "localhost")


@dataclass
class Visit:
    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    render: dict = field(default_factory=dict)
    screenshot: Path | None = None


# Everything the tests need from a page, read from the live DOM after MathJax has finished.
FACTS_JS = """
async () => {
  const done = (img) => img.complete ? null : new Promise(r => {
    img.addEventListener('load', r); img.addEventListener('error', r); });
  document.querySelectorAll('img[loading="lazy"]').forEach(img => { img.loading = 'eager'; });
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await Promise.all([...document.images].map(done));
  const article = document.querySelector('article.bd-article') || document.body;
  const links = (root, sel) => [...root.querySelectorAll(sel)].map(a => a.href);
  const bare = article.cloneNode(true);
  bare.querySelectorAll('pre, code, script, style, mjx-container, .cell_output, .highlight')
      .forEach(e => e.remove());
  const sidebar = document.querySelector('.bd-sidebar-primary');
  return {
    mathjax: !!(window.MathJax && MathJax.startup),
    math: article.querySelectorAll('.math').length,
    math_typeset: [...article.querySelectorAll('.math')]
        .filter(e => e.querySelector('mjx-container') || e.tagName === 'MJX-CONTAINER').length,
    mjx: document.querySelectorAll('mjx-container').length,
    mjx_errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent),
    prose: bare.textContent,
    output_images: [...article.querySelectorAll('.cell_output img')].map(
        img => ({src: img.currentSrc || img.src, width: img.naturalWidth})),
    images: [...article.querySelectorAll('img')].map(
        img => ({src: img.currentSrc || img.src, width: img.naturalWidth})),
    // the launch button (Bootstrap turns its title into a tooltip, so find it by its link)
    launch_colab: [...document.querySelectorAll('a[href^="https://colab.research.google.com/"]')]
        .filter(a => !article.contains(a)).map(a => a.href),
    badges: links(article, 'a[href^="https://colab.research.google.com/github/"]'),
    prev: links(document, '.prev-next-area a.left-prev'),
    next: links(document, '.prev-next-area a.right-next'),
    sidebar_visible: !!sidebar && sidebar.getBoundingClientRect().width > 0,
    sidebar: sidebar ? links(sidebar, 'a[href]') : [],
    sidebar_visible_links: sidebar ? [...sidebar.querySelectorAll('a[href]')]
        .filter(a => a.getClientRects().length > 0).map(a => a.href) : [],
    cites: links(article, 'a[href*="bibliography.html#"]'),
    terms: [...article.querySelectorAll('a .std-term, a.std-term')]
        .map(e => e.closest('a').href),
    citation_ids: [...document.querySelectorAll('.citation[id]')].map(e => e.id),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    text: article.innerText,
  };
}
"""


# How the page renders at the 1280-px window, read after FACTS_JS (MathJax done, images in).
# Code cells are counted in page order, 1-based, as the reader meets them ("code cell 3").
RENDER_JS = r"""
() => {
  const article = document.querySelector('article.bd-article') || document.body;
  // Collapsed cells ("hide-input", "hide-output") are one click away: measure them open.
  article.querySelectorAll('details').forEach(d => { d.open = true; });
  const canvas = document.createElement('canvas').getContext('2d');
  const px = (v) => parseFloat(v) || 0;
  // The first line of a <pre> wider than its box (else its longest line).
  const firstWide = (pre) => {
    const cs = getComputedStyle(pre);
    canvas.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const room = pre.clientWidth - px(cs.paddingLeft) - px(cs.paddingRight);
    let longest = '';
    for (const line of pre.textContent.split('\n')) {
      if (canvas.measureText(line).width > room + 1) return line;
      if (line.length > longest.length) longest = line;
    }
    return longest;
  };
  const wide = (el) => el.scrollWidth > el.clientWidth + 1;
  const report = (el, where) => ({where, scroll: el.scrollWidth, client: el.clientWidth,
                                  line: el.tagName === 'PRE' ? firstWide(el)
                                        : (el.querySelector('pre') ? firstWide(
                                            el.querySelector('pre')) : '')});
  const cells = [...article.querySelectorAll('div.cell')];
  const scrolling = [], widgets = [], bars = [], empty = [];
  const tqdm = /\d+%\|.*\|\s*\d+\/\d+|\d+\/\d+ \[[\d:<?]+,/;
  cells.forEach((cell, i) => {
    const n = i + 1;
    cell.querySelectorAll('.cell_input pre').forEach(pre => {
      if (wide(pre)) scrolling.push({cell: n, ...report(pre, 'input')});
    });
    const out = cell.querySelector('.cell_output');
    if (!out) return;
    const boxes = [out, ...out.querySelectorAll('.output, pre, table')];
    const hit = boxes.find(wide);
    if (hit) scrolling.push({cell: n, ...report(hit, 'output')});
    out.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"], '
                         + '.jupyter-widgets, .widget-area, .widget-subarea')
       .forEach(() => widgets.push(n));
    out.querySelectorAll('pre').forEach(pre => {
      const line = pre.textContent.split('\n').find(l => tqdm.test(l));
      if (line !== undefined) bars.push({cell: n, line});
    });
    out.querySelectorAll(':scope > .output, :scope > div').forEach(box => {
      const bare = box.cloneNode(true);   // without the theme's copy button (an svg icon)
      bare.querySelectorAll('button').forEach(e => e.remove());
      const shows = bare.querySelector('img, svg, canvas, table, iframe, video, mjx-container');
      if (!shows && bare.textContent.trim() === '') empty.push(n);
    });
  });
  // Code blocks in the prose (not in a notebook cell) are code a reader reads too.
  const prosePre = [...article.querySelectorAll('pre')].filter(p => !p.closest('div.cell'));
  prosePre.forEach((pre, i) => {
    if (wide(pre)) scrolling.push({cell: null, block: i + 1, ...report(pre, 'prose code')});
  });
  const items = (window.MathJax && MathJax.startup && MathJax.startup.document)
      ? [...MathJax.startup.document.math] : [];
  const tex = (el) => { const m = items.find(it => it.typesetRoot === el);
                        return m ? m.math.trim() : el.textContent.trim(); };
  const clipped = [...article.querySelectorAll('mjx-container[display="true"]')]
      .map((el, i) => ({index: i + 1, scroll: el.scrollWidth,
                        client: el.parentElement.clientWidth, tex: tex(el)}))
      .filter(e => e.scroll > e.client + 1);
  const copy = article.cloneNode(true);
  copy.querySelectorAll('script, style').forEach(e => e.remove());
  const markers = copy.textContent.split('\n').map(l => l.trim())
      .filter(l => /NBVAL_|#\s*noqa/i.test(l));
  return {cells: cells.length, scrolling, widgets: [...new Set(widgets)], bars,
          empty: [...new Set(empty)], clipped, markers};
}
"""


@pytest.fixture(scope="session")
def visits(server, book_browser) -> dict[str, Visit]:
    """Load every page of _toc.yml once (network blocked), keep its facts, screenshot it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = book_browser.new_context(viewport=VIEWPORT)
    results: dict[str, Visit] = {}
    current: list[Visit] = []

    def route(r):
        if _is_local(r.request.url):
            r.continue_()
        else:
            current[-1].blocked.append(r.request.url)
            r.abort("blockedbyclient")

    context.route("**/*", route)
    for page_info in PAGES:
        visit = Visit()
        current.append(visit)
        page = context.new_page()

        def on_console(msg, visit=visit):
            if msg.type == "error" and msg.location.get("url") not in ALLOWED_EXTERNAL:
                visit.console_errors.append(f"{msg.text} ({msg.location.get('url')})")

        def on_response(resp, visit=visit):
            if _is_local(resp.url) and resp.status >= 400:
                visit.bad_responses.append(f"{resp.status} {resp.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc, visit=visit: visit.console_errors.append(str(exc)))
        page.on("response", on_response)
        response = page.goto(f"{server}/{page_info.docname}.html", wait_until="load")
        visit.status = response.status if response else None
        visit.facts = page.evaluate(FACTS_JS)
        visit.screenshot = SCREENSHOTS / f"{page_info.docname.replace('/', '__')}.png"
        page.screenshot(path=str(visit.screenshot), full_page=True)
        visit.render = page.evaluate(RENDER_JS)   # after the screenshot: it opens <details>
        page.close()
        results[page_info.docname] = visit
    context.close()
    return results


def _docname(url: str) -> str:
    """`http://127.0.0.1:port/notebooks/01_x.html#frag` -> `notebooks/01_x`."""
    path = urlsplit(url).path.lstrip("/")
    if path in ("", "index.html"):
        return ROOT_DOC
    return path.removesuffix(".html")


def _fragment(url: str) -> str:
    return urlsplit(url).fragment


# ---------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_page_loads_with_200_and_no_console_errors(page, visits):
    visit = visits[page.docname]
    assert visit.status == 200, f"{page.docname}: HTTP {visit.status}"
    assert not visit.bad_responses, f"{page.docname}: missing files {visit.bad_responses}"
    assert not visit.console_errors, f"{page.docname}: console errors {visit.console_errors}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_page_reads_offline(page, visits):
    """Nothing but the Colab badge image is fetched from outside localhost."""
    visit = visits[page.docname]
    outside = sorted(set(visit.blocked) - ALLOWED_EXTERNAL)
    assert not outside, f"{page.docname} needs the network for {outside}"


@pytest.mark.parametrize("page", CHAPTERS, ids=_ids(CHAPTERS))
def test_chapter_shows_its_executed_figures(page, visits):
    facts = visits[page.docname].facts
    figures = facts["output_images"]
    assert figures, f"{page.docname}: no figure in the executed outputs"
    broken = [img["src"] for img in figures if img["width"] == 0]
    assert not broken, f"{page.docname}: figures that did not load: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_local_image_loaded(page, visits):
    images = visits[page.docname].facts["images"]
    broken = [img["src"] for img in images if _is_local(img["src"]) and img["width"] == 0]
    assert not broken, f"{page.docname}: images that did not load: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_math_is_typeset(page, visits):
    facts = visits[page.docname].facts
    if facts["math"]:
        assert facts["mathjax"], f"{page.docname}: has math but MathJax did not load"
        assert facts["math_typeset"] == facts["math"], (
            f"{page.docname}: {facts['math'] - facts['math_typeset']} of {facts['math']} "
            "math elements were not typeset by MathJax")
    assert not facts["mjx_errors"], f"{page.docname}: TeX errors {facts['mjx_errors']}"
    raw = re.findall(r"\$\$?[^$\n]{1,80}\$\$?|\\\(.{1,80}?\\\)|\\\[.{1,80}?\\\]", facts["prose"])
    assert not raw, f"{page.docname}: raw TeX left in the page: {raw[:5]}"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES, ids=_ids(NOTEBOOK_PAGES))
def test_colab_launch_link_points_to_this_notebook(page, visits):
    facts = visits[page.docname].facts
    assert facts["launch_colab"], f"{page.docname}: no 'Launch on Colab' button"
    assert set(facts["launch_colab"]) == {page.colab_url}, (
        f"{page.docname}: launch button goes to {facts['launch_colab']}, "
        f"expected {page.colab_url}")
    if page.is_chapter:
        assert page.colab_url in facts["badges"], (
            f"{page.docname}: the Open-in-Colab badge goes to {facts['badges']}, "
            f"expected {page.colab_url}")


def test_next_and_previous_walk_the_whole_book_in_toc_order(visits):
    order = [p.docname for p in PAGES]
    walked, name = [], ROOT_DOC
    while name is not None and name not in walked:
        walked.append(name)
        nxt = visits[name].facts["next"] if name in visits else []
        name = _docname(nxt[0]) if nxt else None
    assert walked == order, f"'next' links walk {walked}, the table of contents is {order}"
    back, name = [], order[-1]
    while name is not None and name not in back:
        back.append(name)
        prev = visits[name].facts["prev"] if name in visits else []
        name = _docname(prev[0]) if prev else None
    assert back == order[::-1], f"'previous' links walk {back}"


def test_clicking_next_goes_to_the_next_page(server, book_browser, built_book):
    """The links above are real: a click on 'next' (network blocked) lands on page 2."""
    if len(PAGES) < 2:
        pytest.skip("a one-page book")
    page = book_browser.new_page(viewport=VIEWPORT)
    page.route("**/*", lambda r: r.continue_() if _is_local(r.request.url) else r.abort())
    page.goto(f"{server}/{ROOT_DOC}.html")
    page.click(".prev-next-area a.right-next")
    page.wait_for_url(f"**/{PAGES[1].docname}.html")
    assert page.title(), "the second page has no title"
    page.close()


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_sidebar_reaches_every_page(page, visits):
    facts = visits[page.docname].facts
    assert facts["sidebar_visible"], f"{page.docname}: the sidebar is hidden at 1280 px"
    listed = {_docname(url) for url in facts["sidebar"]}
    missing = [p.docname for p in PAGES if p.docname not in listed]
    assert not missing, f"{page.docname}: the sidebar has no link to {missing}"
    visible = {_docname(url) for url in facts["sidebar_visible_links"]}
    hidden = [p.docname for p in CHAPTERS if p.docname not in visible]
    assert not hidden, f"{page.docname}: chapters not visible in the sidebar: {hidden}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_citations_link_to_the_bibliography(page, visits):
    keys = _cited_keys(page)
    cites = visits[page.docname].facts["cites"]
    entries = set(visits[BIBLIOGRAPHY].facts["citation_ids"])
    targets = {_fragment(url) for url in cites if _docname(url) == BIBLIOGRAPHY}
    assert len(targets) >= len(keys), (
        f"{page.docname} cites {sorted(keys)} but links only {len(targets)} bibliography entries")
    dangling = sorted(targets - entries)
    assert not dangling, f"{page.docname}: citation links to missing entries {dangling}"


def test_bibliography_lists_every_cited_paper(visits):
    from pybtex.database import parse_file
    from pybtex.richtext import Text

    def norm(s: str) -> str:
        return "".join(ch for ch in s.lower() if ch.isalnum())

    database = parse_file(str(ROOT / "book" / "references.bib"))
    text = norm(visits[BIBLIOGRAPHY].facts["text"])
    cited = set().union(*(_cited_keys(p) for p in PAGES))
    unknown = sorted(cited - set(database.entries))
    assert not unknown, f"cited but not in book/references.bib: {unknown}"
    missing = [key for key in sorted(cited) if norm(Text.from_latex(
        database.entries[key].fields["title"]).render_as("text")) not in text]
    assert not missing, f"the bibliography page does not list {missing}"
    assert len(visits[BIBLIOGRAPHY].facts["citation_ids"]) >= len(cited)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_glossary_terms_link_to_the_glossary(page, visits):
    roles = _term_roles(page)
    terms = visits[page.docname].facts["terms"]
    if page.is_chapter:
        assert terms, f"{page.docname}: no glossary term linked ({{term}}`...`)"
    assert len(terms) >= len(roles), (
        f"{page.docname}: {len(roles)} {{term}} roles but {len(terms)} glossary links")
    glossary_ids = set(visits[GLOSSARY].facts["ids"])
    wrong = [url for url in terms
             if _docname(url) != GLOSSARY or _fragment(url) not in glossary_ids]
    assert not wrong, f"{page.docname}: term links that miss the glossary: {wrong}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_screenshot_saved(page, visits):
    shot = visits[page.docname].screenshot
    assert shot is not None and shot.is_file() and shot.stat().st_size > 10_000, shot


# ---------------------------------------------------------------------------------------
# How the pages render at 1280 px (issue 16, section 4)
# ---------------------------------------------------------------------------------------

# The sources the book under test was built from (a clone's, with $ATTNBOOK_BOOK_DIR).
BOOK_SOURCES = HTML.parents[1] if (HTML.parents[1] / "_toc.yml").is_file() else ROOT


@functools.cache
def _shown_code_cells(docname: str) -> list[int] | None:
    """Notebook cell index of each code cell the page shows, in order (None if unknown)."""
    path = BOOK_SOURCES / f"{docname}.ipynb"
    if not path.is_file():
        return None
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [i for i, c in enumerate(cells) if c["cell_type"] == "code"
            and "remove-cell" not in c.get("metadata", {}).get("tags", [])]


def _cell_label(page: Page, n: int | None, shown: int) -> str:
    if n is None:
        return "a code block in the prose"
    index = _shown_code_cells(page.docname)
    if index is not None and len(index) == shown:
        return f"code cell {n} (notebook cell {index[n - 1]})"
    return f"code cell {n} of the page"


def _loaded(page: Page, visits) -> dict:
    visit = visits[page.docname]
    assert visit.status == 200, f"{page.docname}: HTTP {visit.status}"
    return visit.render


@pytest.mark.parametrize("page", NOTEBOOK_PAGES, ids=_ids(NOTEBOOK_PAGES))
def test_no_code_cell_or_output_scrolls_sideways(page, visits):
    """Every code line and printed line fits the code column of a 1280-px window."""
    render = _loaded(page, visits)
    found = [f"{_cell_label(page, s['cell'], render['cells'])}, {s['where']} "
             f"({s['scroll']} px in {s['client']} px): {s['line']!r}"
             for s in render["scrolling"]]
    if found:
        pytest.fail(f"{page.docname}: {len(found)} code cells or outputs scroll sideways at "
                    f"{VIEWPORT['width']} px (first too-wide line shown):\n  "
                    + "\n  ".join(found), pytrace=False)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_no_display_equation_is_clipped(page, visits):
    render = _loaded(page, visits)
    found = [f"display equation {e['index']} ({e['scroll']} px in {e['client']} px): "
             f"{e['tex'][:200]}" for e in render["clipped"]]
    if found:
        pytest.fail(f"{page.docname}: display equations wider than the text column:\n  "
                    + "\n  ".join(found), pytrace=False)


@pytest.mark.parametrize("page", NOTEBOOK_PAGES, ids=_ids(NOTEBOOK_PAGES))
def test_no_progress_bar_or_empty_output_box(page, visits):
    """No tqdm widget (an empty box offline), no frozen text bar, no blank output box."""
    render = _loaded(page, visits)
    cells = render["cells"]
    found = [f"{_cell_label(page, n, cells)}: a widget (empty box in the book)"
             for n in render["widgets"]]
    found += [f"{_cell_label(page, b['cell'], cells)}: a progress bar {b['line'].strip()!r}"
              for b in render["bars"]]
    found += [f"{_cell_label(page, n, cells)}: an empty output box" for n in render["empty"]]
    if found:
        pytest.fail(f"{page.docname}: progress bars or empty boxes in the outputs "
                    "(pass progress=False to train_steps in the book):\n  "
                    + "\n  ".join(found), pytrace=False)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_no_tooling_marker_is_visible(page, visits):
    """`NBVAL_...` and `# noqa` are for the tools, not for a reader."""
    markers = _loaded(page, visits)["markers"]
    if markers:
        pytest.fail(f"{page.docname}: markers a reader sees:\n  " + "\n  ".join(markers),
                    pytrace=False)
