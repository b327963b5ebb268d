"""Kernel start-up hook: check every figure the kernel shows (tests/figure_checks.py).

A Jupyter kernel runs this file at start when ``PYTHONSTARTUP`` names it; it does
nothing unless ``ATTNBOOK_CHECK_FIGURES`` is ``raise`` (a bad figure fails its cell) or
``report`` (problems are printed to stderr, for ``tests/figure_checks.py``). It runs in
the notebook's namespace, so it leaves no names behind.
"""


def _attnbook_install_figure_checks():
    import os
    import sys

    mode = os.environ.get("ATTNBOOK_CHECK_FIGURES", "")
    try:
        shell = get_ipython()  # noqa: F821  (defined in an IPython kernel only)
    except NameError:
        return
    if mode not in ("raise", "report") or shell is None:
        return
    here = os.path.dirname(os.path.abspath(os.environ["PYTHONSTARTUP"]))
    sys.path.insert(0, here)
    try:
        import figure_checks
    finally:
        sys.path.remove(here)
    figure_checks.install(shell, mode)


_attnbook_install_figure_checks()
del _attnbook_install_figure_checks
