"""The one sanitizer: what it shows for each class of dangerous character, and that JSON stays exact."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atdata_core.safe_text import UNSAFE, is_safe, safe_json, safe_line, safe_text

DANGEROUS_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]52;c;aGk=\x07", "␛]52;c;aGk=␇"),  # OSC 52: the clipboard
        ("\x1b]0;pwned\x07", "␛]0;pwned␇"),  # OSC 0: the window title
        ("\x1b[2J", "␛[2J"),  # clear the screen
        ("a\rb", "a␍b"),
        ("\x9b2J", "\\x9b2J"),  # C1 CSI
        ("\x7f", "␡"),
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
        ("ad\u200bmin", "ad\\u200bmin"),  # zero-width space
        ("\u2066x\u2069", "\\u2066x\\u2069"),  # bidi isolates
        ("\ufeffname", "\\ufeffname"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("plain text, ünïcödé, 漢字 ✓", "plain text, ünïcödé, 漢字 ✓"),
    ],
)
def test_safe_text_shows_every_dangerous_class_visibly(raw: str, shown: str) -> None:
    assert safe_text(raw) == shown


def test_safe_text_keeps_layout_whitespace_and_safe_line_folds_it() -> None:
    assert safe_text("a\n\tb") == "a\n\tb"
    assert safe_line("a\r\nb\nc\td") == "a↵b↵c d"
    assert safe_line("x" * 10, limit=4) == "xxxx…"
    assert safe_line(12) == "12"


def test_the_pattern_covers_exactly_the_dangerous_categories() -> None:
    """Exactly Cc/Cf/Zl/Zp/Cs of this Python's Unicode data (a newer Unicode may add to them)."""
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        dangerous = unicodedata.category(ch) in DANGEROUS_CATEGORIES and ch not in "\t\n"
        if unicodedata.unidata_version == "14.0.0":
            assert (UNSAFE.match(ch) is not None) == dangerous, hex(cp)
        elif dangerous:
            assert UNSAFE.match(ch) is not None, hex(cp)


@given(st.text())
def test_output_is_always_safe(text: str) -> None:
    assert is_safe(safe_text(text))
    out = safe_line(text)
    assert is_safe(out) and "\n" not in out and "\t" not in out


@given(
    st.recursive(st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c))
)
def test_safe_json_round_trips_exactly_and_prints_safely(value: object) -> None:
    text = safe_json(value)
    assert is_safe(text)
    assert json.loads(text) == value


def test_safe_json_escapes_c1_bidi_and_astral_format_characters() -> None:
    assert safe_json("\x9b\u202e\U000e0001") == '"\\u009b\\u202e\\udb40\\udc01"'
