"""Self-tests for the escaping of report text on line-based outputs (diff text, KTAP)."""

from __future__ import annotations

import pytest

from conformance.report.text import one_line


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("a\\b", "a\\\\b"),
        ("one\ntwo\r\nthree", "one\\ntwo\\r\\nthree"),
        ("tab\there", "tab\\there"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("\u2028\u2029\u202e\ufeff", "\\u2028\\u2029\\u202e\\ufeff"),
        ("\U000e0001", "\\U000e0001"),
        ("\ud800", "\\ud800"),
        ("café ✓ 中文", "café ✓ 中文"),
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (0.25, "0.25"),
    ],
    ids=lambda value: repr(value)[:20],
)
def test_one_line(value, expected):
    assert one_line(value) == expected


def test_one_line_escapes_extra_characters_and_shortens():
    assert one_line("a # b", also="#") == "a \\x23 b"
    assert one_line("x" * 10, limit=5) == "xxxx…"
    assert one_line("short", limit=5) == "short"
