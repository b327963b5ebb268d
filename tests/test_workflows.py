"""The CI files for the public repository: valid YAML, and they call only documented targets.

- .github/workflows/ci.yml: `make test` on CPU (through .ci/run) for pushes and pull requests;
- .github/workflows/gpu.yml: run by hand on a GPU runner, `make test-notebooks` with CUDA;
- .github/workflows/pages.yml: `make book`, then _build/html to GitHub Pages.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
CI_RUN = ROOT / ".ci" / "run"
# Targets the README documents: in `make x` spans and at the start of code-block lines.
DOCUMENTED = set(re.findall(r"`make ([\w-]+)`", README)) | set(
    re.findall(r"^make ([\w-]+)", README, flags=re.M))
DEFINED = set(re.findall(r"^([\w-]+):", MAKEFILE, flags=re.M))
MAKE_CALL = re.compile(r"(?<![\w-])make\s+([\w-]+)")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (GitHub would silently keep the last one)."""


def _mapping(loader, node, deep=False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}",
                                                node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)


def _triggers(workflow: dict) -> dict:
    """The `on:` block (YAML 1.1 reads the bare key `on` as True)."""
    on = workflow.get("on", workflow.get(True))
    return {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) \
        else on


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _runs(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for step in _steps(workflow))


def _uses(workflow: dict) -> list[str]:
    return [step["uses"] for step in _steps(workflow) if "uses" in step]


def _workflow(name: str) -> dict:
    path = ROOT / ".github" / "workflows" / name
    assert path.is_file(), f"missing {path.relative_to(ROOT)}"
    return _load(path)


def test_the_three_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "gpu.yml", "pages.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_well_formed(path):
    workflow = _load(path)
    assert isinstance(workflow.get("name"), str), f"{path.name}: give it a name"
    assert _triggers(workflow), f"{path.name}: no `on:` triggers"
    assert workflow.get("jobs"), f"{path.name}: no jobs"
    for job_id, job in workflow["jobs"].items():
        assert "runs-on" in job, f"{path.name}: job {job_id} has no runs-on"
        assert job.get("steps"), f"{path.name}: job {job_id} has no steps"
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step), (
                f"{path.name}: a step needs exactly one of run/uses: {step}")
    for action in _uses(workflow):
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", action), (
            f"{path.name}: pin {action} to a major version (@v4) or a commit")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_calls_only_documented_make_targets(path):
    targets = MAKE_CALL.findall(_runs(_load(path)))
    for target in targets:
        assert target in DEFINED, f"{path.name}: `make {target}` is not a Makefile target"
        assert target in DOCUMENTED, f"{path.name}: `make {target}` is not in the README"


def test_ci_runs_make_test_on_cpu_for_pushes_and_pull_requests():
    workflow = _workflow("ci.yml")
    assert {"push", "pull_request"} <= set(_triggers(workflow))
    runs = _runs(workflow)
    assert ".ci/run" in runs or re.search(r"\bmake test\s*$", runs, flags=re.M), runs
    assert "test" in DOCUMENTED


def test_ci_entry_point_only_runs_make_test():
    text = CI_RUN.read_text(encoding="utf-8")
    assert os.access(CI_RUN, os.X_OK), ".ci/run must be executable"
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert MAKE_CALL.findall(code) == ["test"], ".ci/run must run `make test` and only that"
    assert code.rstrip().endswith("make test")
    assert "apt-get" not in code and "playwright" not in code, "make test provisions Chromium"


def test_make_test_provisions_chromium_first():
    """`make test` (not only CI) finds or installs Chromium before anything else runs."""
    assert re.search(r"^test: browser\b", MAKEFILE, flags=re.M), "make test must start with browser"
    assert re.search(r"^test-browser:.*\bbrowser\b", MAKEFILE, flags=re.M)
    recipe = re.search(r"^browser:.*\n((?:\t.*\n)+)", MAKEFILE, flags=re.M).group(1)
    script = ROOT / re.search(r"(tests/[\w.-]+\.sh)", recipe).group(1)
    assert os.access(script, os.X_OK), f"{script.name} must be executable"
    text = script.read_text(encoding="utf-8")
    steps = ["command -v chromium", "apt-get install -y -q chromium fonts-wqy-microhei",
             "playwright\" install chromium"]
    positions = [text.find(step) for step in steps]
    assert -1 not in positions, dict(zip(steps, positions, strict=True))
    assert positions == sorted(positions), "system Chromium, then apt-get, then Playwright"
    assert 'id -u)" = 0' in text, "apt-get only as root"
    assert text.rstrip().endswith("exit 1"), "when all fail, make stops"
    assert "browser" in DOCUMENTED


def test_gpu_workflow_is_manual_and_runs_the_notebooks_with_cuda():
    workflow = _workflow("gpu.yml")
    assert set(_triggers(workflow)) == {"workflow_dispatch"}, "run by hand only"
    runs = _runs(workflow)
    assert MAKE_CALL.findall(runs) == ["test-notebooks"]
    assert "download.pytorch.org/whl/" in runs, "install a CUDA build of torch first"
    envs = [job.get("env", {}) for job in workflow["jobs"].values()]
    assert any(env.get("ATTNBOOK_DEVICE") == "cuda" for env in envs), (
        "set ATTNBOOK_DEVICE=cuda so a missing GPU fails instead of falling back to the CPU")
    labels = [job["runs-on"] for job in workflow["jobs"].values()]
    assert all("self-hosted" in label for label in labels), labels


def test_pages_workflow_builds_the_book_and_deploys_build_html():
    workflow = _workflow("pages.yml")
    assert workflow["permissions"].get("pages") == "write"
    assert workflow["permissions"].get("id-token") == "write"
    assert MAKE_CALL.findall(_runs(workflow)) in (["book"], ["test-book"])
    uploads = [s for s in _steps(workflow)
               if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert [s["with"]["path"] for s in uploads] == ["_build/html"]
    assert any(u.startswith("actions/deploy-pages@") for u in _uses(workflow))
    triggers = _triggers(workflow)
    assert "workflow_dispatch" in triggers
    if "workflow_run" in triggers:   # publish only what CI has tested
        assert triggers["workflow_run"]["workflows"] == [_workflow("ci.yml")["name"]]
