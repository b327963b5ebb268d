"""Rendering checks that fail today on known pages (issue 16, section 4), marked one by one.

Each entry is a strict expected failure: the check still runs on that page, and once the
page is fixed the test fails as XPASS until its line here is removed. Every other page is
held to the check in full.
"""

import pytest

KNOWN_RENDERING_FAILURES = {
    # long printed lines or code wider than the code column
    "test_no_code_cell_or_output_scrolls_sideways[notebooks/05_hard_soft_local]",
    "test_no_code_cell_or_output_scrolls_sideways[notebooks/06_seq2seq_attention]",
    "test_no_code_cell_or_output_scrolls_sideways[notebooks/10_beyond_language]",
    # display equations wider than the page column
    "test_no_display_equation_is_clipped[notebooks/05_hard_soft_local]",
    "test_no_display_equation_is_clipped[notebooks/06_seq2seq_attention]",
    "test_no_display_equation_is_clipped[notebooks/07_self_attention]",
    "test_no_display_equation_is_clipped[notebooks/08_multihead_attention]",
    "test_no_display_equation_is_clipped[notebooks/10_beyond_language]",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.name in KNOWN_RENDERING_FAILURES:
            item.add_marker(pytest.mark.xfail(
                strict=True, reason="known rendering fault of this page (issue 16, section 4)"))
