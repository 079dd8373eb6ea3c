"""A report full of control characters, through every command that shows it: no raw ESC, BEL or other control
character reaches a page (HTML, Markdown, KTAP) or the terminal (diff, ktap, messages); each is shown as a visible
escape such as \\x1b instead."""

from __future__ import annotations

import json
import unicodedata

import pytest
from commands import conformance, refused
from reportdata import hostile_report, sample_report

# Every C0 control but tab and newline, DEL, every C1 control, a bidirectional override, and a terminal's favourite
# sequences: clear the screen, set the window title, ring the bell.
CONTROLS = ("".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n") + "\x7f"
            + "".join(chr(c) for c in range(0x80, 0xA0)) + "\u202e \x1b[2J\x1b]0;owned\x07 end\nsecond line")
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _raw(text: str) -> list[str]:
    """The control characters (but tab and newline) and bidirectional controls in ``text``."""
    return sorted({char for char in text if (unicodedata.category(char) == "Cc" and char not in "\t\n")
                   or char in BIDI})


@pytest.fixture
def reports(tmp_path):
    controlled = hostile_report(hostile_id=False, text=CONTROLS)
    other = sample_report()
    other["platform"]["id"] = "freebsd-15.0-amd64-py311-root-ufs"
    paths = {"controlled": tmp_path / "controlled.json", "other": tmp_path / "other.json"}
    paths["controlled"].write_text(json.dumps(controlled), encoding="utf-8")
    paths["other"].write_text(json.dumps(other), encoding="utf-8")
    return paths


def test_pages_show_control_characters_as_escapes(tmp_path, reports):
    done = conformance("render", reports["controlled"], "--out", tmp_path / "pages")
    assert done.status == 0, done.err
    assert not _raw(done.out + done.err)
    pages = {path.suffix: path.read_text(encoding="utf-8") for path in (tmp_path / "pages").iterdir()}
    assert set(pages) == {".json", ".md", ".html", ".ktap"}
    for suffix in (".md", ".html", ".ktap"):
        assert not _raw(pages[suffix]), suffix
        assert all(escape in pages[suffix] for escape in ("\\x1b", "\\x07", "\\x9b")), suffix
    assert "\\u202e" in pages[".html"]


def test_the_matrix_pages_show_control_characters_as_escapes(tmp_path, reports):
    done = conformance("matrix", reports["controlled"], reports["other"], "--out", tmp_path / "matrix")
    assert done.status == 0, done.err
    for name in ("matrix.md", "matrix.html"):
        page = (tmp_path / "matrix" / name).read_text(encoding="utf-8")
        assert not _raw(page), name
        assert "\\x1b" in page and "\\x07" in page, name


@pytest.mark.parametrize("form", ["text", "markdown", "json"])
def test_the_diff_prints_no_control_character(reports, form):
    for old, new in ((reports["other"], reports["controlled"]), (reports["controlled"], reports["other"])):
        done = conformance("diff", old, new, "--format", form)
        assert done.status in (0, 1) and done.err == "", done.err
        assert not _raw(done.out)
        assert ("\\u001b" if form == "json" else "\\x1b") in done.out


def test_ktap_prints_no_control_character(reports):
    done = conformance("ktap", reports["controlled"])
    assert done.status == 0, done.err
    assert not _raw(done.out) and "\\x1b[2J\\x1b]0;owned\\x07" in done.out


def test_a_message_naming_such_a_path_prints_no_control_character(tmp_path):
    message = refused(conformance("ktap", tmp_path / "\x1b[2J\x07.json"), "ktap")
    assert message == f"{tmp_path}/\\x1b[2J\\x07.json: no such file"
