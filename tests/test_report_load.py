"""Self-tests for reading report files: every unusable file is one clear error naming it."""

from __future__ import annotations

import json
import os

import pytest
from reportdata import sample_report

from conformance.model import SCHEMA_VERSION
from conformance.report import load
from conformance.report.load import ReportError, read_report, read_reports


def _write(tmp_path, content, name="report.json"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def _with(mutate):
    report = sample_report()
    mutate(report)
    return report


GOOD = json.dumps(sample_report())

# (name, file content, a fragment the message must contain)
BAD_FILES = [
    ("empty", b"", "empty file"),
    ("whitespace", b"  \n", "empty file"),
    ("not utf-8", b'{"schema_version": 2, "x": "\xff"}', "not UTF-8"),
    ("truncated", GOOD[: len(GOOD) // 2], "truncated"),
    ("truncated at a brace", GOOD[: GOOD.index("}") + 1], "not valid JSON"),
    ("trailing garbage", GOOD + "x", "not valid JSON"),
    ("NaN", GOOD.replace('"duration": 12.5', '"duration": NaN'), "NaN is not a JSON number"),
    ("Infinity", GOOD.replace('"duration": 12.5', '"duration": Infinity'), "Infinity"),
    ("duplicate key", GOOD.replace(f'"schema_version": {SCHEMA_VERSION}', f'"schema_version": {SCHEMA_VERSION}, '
                                   f'"schema_version": {SCHEMA_VERSION}'), "twice"),
    ("deep nesting", "[" * 100000 + "]" * 100000, "nested too deeply"),
    ("array", "[]", "a JSON object is expected, this is a JSON array"),
    ("string", '"report"', "this is a JSON string"),
    ("no schema version", {"cases": []}, "no schema_version"),
    ("an older schema version", _with(lambda r: r.update(schema_version=1)),
     f"schema version 1; this tool reads schema version {SCHEMA_VERSION}"),
    ("schema version true", _with(lambda r: r.update(schema_version=True)), "schema version true"),
    ("schema version 1.5", _with(lambda r: r.update(schema_version=1.5)), "schema version 1.5"),
    ("unknown outcome", _with(lambda r: r["cases"][0].update(outcome="maybe")), "'maybe' is not one of"),
    ("missing field", _with(lambda r: r.pop("summary")), "missing required field 'summary'"),
    ("id disagrees", _with(lambda r: r["cases"][0].update(params="dgram")), "does not match its area, name and params"),
    ("duplicate case", _with(lambda r: r["cases"].append(r["cases"][0])), "appears twice"),
    (
        "duplicate observation",
        _with(lambda r: r["cases"][1]["observations"].update({"rights.max_fds_per_message[stream]": 1})),
        "is recorded by both",
    ),
]


@pytest.mark.parametrize(("content", "fragment"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_an_unusable_file_is_one_line_naming_it(tmp_path, content, fragment):
    path = _write(tmp_path, content)
    with pytest.raises(ReportError) as raised:
        read_report(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    assert fragment in message, message
    assert "\n" not in message


def test_a_missing_file_and_a_directory_are_named(tmp_path):
    with pytest.raises(ReportError, match=r"absent\.json: no such file$"):
        read_report(tmp_path / "absent.json")
    with pytest.raises(ReportError, match="is a directory"):
        read_report(tmp_path)
    with pytest.raises(ReportError, match="empty string"):
        read_report("")


def test_an_unreadable_file_is_named(tmp_path):
    path = _write(tmp_path, GOOD)
    path.chmod(0)
    try:
        try:
            path.read_bytes()
            pytest.skip("root reads a file without permissions")
        except PermissionError:
            pass
        with pytest.raises(ReportError, match="cannot read: Permission denied"):
            read_report(path)
    finally:
        path.chmod(0o644)


def test_a_valid_report_is_returned_whole(tmp_path):
    assert read_report(_write(tmp_path, GOOD)).to_json() == sample_report()


def test_several_reports_need_distinct_platform_ids(tmp_path):
    first = _write(tmp_path, GOOD, "a.json")
    second = _write(tmp_path, GOOD, "b.json")
    with pytest.raises(ReportError, match=r"b\.json: platform id .* is also the id of .*a\.json"):
        read_reports([str(first), str(second)])
    other = sample_report()
    other["platform"]["id"] = "freebsd-15.0-amd64-py311-root-ufs"
    third = _write(tmp_path, other, "c.json")
    assert [path for path, _ in read_reports([str(first), str(third)])] == [str(first), str(third)]


def test_an_empty_list_of_reports_is_refused():
    with pytest.raises(ReportError, match="no report given"):
        read_reports([])


def test_only_a_regular_file_is_read_and_never_blocks(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # no writer: an ordinary open would wait for one forever
    with pytest.raises(ReportError, match=r"fifo\.json: not a regular file: a FIFO$"):
        read_report(fifo)
    with pytest.raises(ReportError, match=r"^/dev/zero: not a regular file: a character device$"):
        read_report("/dev/zero")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "MAX_REPORT_BYTES", len(GOOD))
    assert read_report(_write(tmp_path, GOOD)).to_json() == sample_report()
    path = _write(tmp_path, GOOD + " ", "big.json")
    with pytest.raises(ReportError, match=rf"big\.json: {len(GOOD) + 1} bytes, more than the {len(GOOD)} bytes "
                                          "allowed$"):
        read_report(path)

