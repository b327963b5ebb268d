"""Rendering checks that fail today on known pages (issue 16, section 4), marked one by one.

Each entry is a strict expected failure: the check still runs on that page, and once the
page is fixed the test fails as XPASS until its line here is removed. Every other page is
held to the check in full.
"""

import pytest

# Test ids, e.g. "test_no_display_equation_is_clipped[notebooks/05_hard_soft_local]". None
# today: the eight faults of issue 16 (chapters 5-8 and 10) are fixed.
KNOWN_RENDERING_FAILURES: set[str] = set()


def pytest_collection_modifyitems(items):
    for item in items:
        if item.name in KNOWN_RENDERING_FAILURES:
            item.add_marker(pytest.mark.xfail(
                strict=True, reason="known rendering fault of this page (issue 16, section 4)"))
