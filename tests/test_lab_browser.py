"""The way learners work: `make lab`, chapter 1 in JupyterLab, Run ▸ Run All Cells.

Starts JupyterLab with `make lab` (so its root handling and printed URL are tested too)
on a free localhost port with a token, over a copy of the notebooks (JupyterLab saves
what it runs), opens chapter 1 in headless Chromium, runs all cells from the Run menu
and waits for the kernel to be idle. Then every exercise must say "not attempted yet"
and no cell may show an error or anything on stderr. The server is stopped at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_book_browser import book_browser  # noqa: F401  (Chromium, launched as there)

from attnbook.grade import _checker_calls

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "01_vectors_and_similarity.ipynb"
START_TIMEOUT = 120   # s for JupyterLab to answer
RUN_TIMEOUT = 300     # s for the whole notebook to run in the browser


PROMPTS_JS = """() => [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim()).join(' ')"""
IDLE_JS = """(n) => {
    const prompts = [...document.querySelectorAll(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
    return prompts.length === n
        && prompts.every(p => /\\[\\d+\\]/.test(p.textContent))
        && document.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']") !== null;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


def _kernel_state(base: str, token: str) -> str | None:
    """The execution state of chapter 1's kernel ("idle", "busy", ...), None if none yet."""
    request = urllib.request.Request(f"{base}/api/sessions",
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        sessions = json.load(response)
    states = [s["kernel"].get("execution_state") for s in sessions
              if s.get("path", "").endswith(CHAPTER) and s.get("kernel")]
    return states[0] if states else None


def _stop(server: subprocess.Popen, base: str, token: str) -> None:
    """Shut JupyterLab down (and its kernels) by its API; signals if it does not go."""
    if server.poll() is None:
        try:
            request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=10).close()
            server.wait(timeout=30)
        except Exception:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if server.poll() is not None:
            break
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`make lab` on a copy of notebooks/: yields (base URL, token, folder)."""
    folder = tmp_path_factory.mktemp("lab") / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    state = folder.parent / "state"
    port, token = _free_port(), os.urandom(16).hex()
    env = dict(os.environ, JUPYTER_TOKEN=token,
               JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(state / "runtime"))
    log = open(folder.parent / "lab.log", "w+", encoding="utf-8")  # noqa: SIM115
    # The environment these tests run in, as it is (-o: never reinstall it from here).
    venv = Path(sys.prefix)
    server = subprocess.Popen(
        ["make", "-s", f"VENV={venv}", "-o", f"{venv}/.installed", "lab",
         f"NOTEBOOKS={folder}", f"LAB_PORT={port}"], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"make lab exited with {server.returncode}:\n{log.read()[-3000:]}")
            try:
                if _get(f"{base}/api/status?token={token}") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"JupyterLab did not answer in {START_TIMEOUT} s:\n"
                            f"{log.read()[-3000:]}")
            time.sleep(0.5)
        log.seek(0)
        printed = log.read()
        yield base, token, folder, printed
    finally:
        _stop(server, base, token)
        log.close()


def test_make_lab_prints_the_url_to_open(lab):
    base, token, _, printed = lab
    port = base.rsplit(":", 1)[1]
    assert f"open http://localhost:{port}/lab?token={token}" in printed, printed


def test_chapter_1_runs_in_jupyterlab_with_every_exercise_not_attempted(lab, book_browser):  # noqa: F811
    base, token, folder, _ = lab
    source = json.loads((folder / CHAPTER).read_text(encoding="utf-8"))
    code_cells = [c for c in source["cells"] if c["cell_type"] == "code"]
    exercises = [n for c in code_cells for n in _checker_calls("".join(c["source"]))]
    assert len(exercises) >= 3, exercises  # chapter 1 has three exercises

    context = book_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}")
        notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        notebook.locator(".jp-Cell").first.wait_for()
        # Wait for the kernel, as a learner would; a fresh JupyterLab may first ask which
        # kernel to start ("Select Kernel", Python 3 preselected): accept, as they would.
        deadline = time.monotonic() + START_TIMEOUT
        while _kernel_state(base, token) != "idle":
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count() and dialog.first.is_visible():
                dialog.first.click()
            assert time.monotonic() < deadline, f"no idle kernel after {START_TIMEOUT} s"
            time.sleep(0.5)

        page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()  # Run All Cells

        # Idle: every code cell has its number ([12]), none is queued or running ([*]).
        try:
            page.wait_for_function(IDLE_JS, arg=len(code_cells), timeout=RUN_TIMEOUT * 1000)
        except PlaywrightTimeout:
            page.screenshot(path=str(folder.parent / "timeout.png"))
            pytest.fail(f"chapter 1 did not finish in {RUN_TIMEOUT} s; prompts: "
                        f"{page.evaluate(PROMPTS_JS)}; screenshot {folder.parent}/timeout.png")

        assert _kernel_state(base, token) == "idle"
        outputs = notebook.locator(".jp-OutputArea-output")
        texts = outputs.all_inner_texts()
        stderr = notebook.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert stderr.count() == 0, "error or stderr output:\n" + "\n---\n".join(
            stderr.all_inner_texts())[:3000]
        not_attempted = [t for t in texts if re.search(r"… .+: not attempted yet", t)]
        assert len(not_attempted) == len(exercises), texts[-8:]
        assert not any(t.lstrip().startswith(("✓", "✗")) for t in texts)
        assert not errors, errors
        page.screenshot(path=str(folder.parent / "chapter1-in-jupyterlab.png"))
    finally:
        context.close()
