"""bench/gpu_check.py runs a notebook's code without Jupyter and reports its first error."""

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402


def write(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A")] + [
        nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, path)
    return path


def test_a_passing_and_a_failing_notebook(tmp_path):
    good = write(tmp_path / "good.ipynb",
                 "import matplotlib.pyplot as plt\nfrom attnbook import get_device",
                 "device = get_device()\nplt.plot([1, 2])\nplt.show()",
                 "assert str(device) == 'cpu'")
    bad = write(tmp_path / "bad.ipynb", "x = 1", "assert x == 2, 'x is not 2'", "y = 1")
    output = tmp_path / "gpu.md"
    status = gpu_check.main(["--device", "cpu", "--output", str(output), str(good), str(bad)])
    table = output.read_text()
    assert status == 1
    assert "| good.ipynb | passed |" in table
    assert "| bad.ipynb | failed |" in table
    assert "code cell 1: AssertionError: x is not 2" in table
    assert "1 of 2 notebooks passed" in table
