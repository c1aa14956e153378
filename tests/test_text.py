"""People's text is normalised: visible, one line for titles, nothing hidden or reordered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.text import clean_line, clean_text


@pytest.mark.parametrize(
    "title",
    ["", "   ", "\u200b\u200b", "\t\n\r", "\u202e", "\x00\x07\x1b", "\ufeff \u2060", "\u200d"],
)
def test_a_title_with_nothing_visible_is_refused(title: str) -> None:
    with pytest.raises(ValueError, match="must contain visible text"):
        clean_line(title)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("  Checkout   failing  ", "Checkout failing"),
        ("Checkout\nfailing\r\nagain", "Checkout failing again"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),
        ("zero\u200bwidth", "zerowidth"),
        ("bell\x07 and escape\x1b[31m", "bell and escape[31m"),
        ("cafe\u0301", "café"),
        ("family 👩\u200d👩\u200d👧 ok", "family 👩\u200d👩\u200d👧 ok"),
        ("nbsp\u00a0and\u2003em", "nbsp and em"),
        ("lone \ud800surrogate", "lone surrogate"),
    ],
)
def test_titles_become_one_line_of_visible_text(given: str, expected: str) -> None:
    assert clean_line(given) == expected


def test_free_text_keeps_line_breaks_but_not_hidden_characters() -> None:
    text = "Rolled back\r\n\r\n\r\n\r\n  the deploy\u200b.\n\x00Watching\u202e errors."
    assert clean_text(text) == "Rolled back\n\nthe deploy.\nWatching errors."


@given(st.text())
def test_cleaning_is_idempotent_and_leaves_no_control_or_format_characters(value: str) -> None:
    import unicodedata

    cleaned = clean_text(value)
    assert clean_text(cleaned) == cleaned
    cleaned.encode()  # always valid UTF-8, whatever came in
    for char in cleaned:
        assert unicodedata.category(char) not in ("Cc", "Cf") or char in "\n\u200d"
