"""Self-tests of the report subcommands as a user runs them: output, exit status, and bad input."""

from __future__ import annotations

import json
import os

import pytest
from commands import conformance, refused
from reportdata import sample_report

from conformance.cli import main
from conformance.report.load import MAX_REPORT_BYTES


def _save(tmp_path, report, name):
    path = tmp_path / name
    path.write_text(json.dumps(report), encoding="utf-8")
    return str(path)


@pytest.fixture
def reports(tmp_path):
    """An old and a new report of one platform (one regression), and another platform's report."""
    old, new, other = sample_report(), sample_report(), sample_report()
    new["cases"][0]["outcome"] = "fail"
    other["platform"]["id"] = "freebsd-15.0-amd64-py311-root-ufs"
    return {name: _save(tmp_path, report, f"{name}.json") for name, report in
            (("old", old), ("new", new), ("other", other))}


def test_diff_exits_1_on_a_regression_and_0_without(reports):
    done = conformance("diff", reports["old"], reports["new"])
    assert (done.status, done.err) == (1, "")
    assert ("regressions (a case now fails or errors) (1):\n"
            "  rights/test_per_message_maximum[stream]: pass -> fail\n") in done.out
    done = conformance("diff", reports["old"], reports["old"])
    assert done.status == 0 and done.out.endswith("result: no differences\n")


@pytest.mark.parametrize("form", ["markdown", "json"])
def test_diff_formats(reports, capsys, form):
    assert main(["diff", reports["old"], reports["new"], "--format", form]) == 1
    out = capsys.readouterr().out
    if form == "json":
        assert json.loads(out)["regressions"] == ["rights/test_per_message_maximum[stream]"]
    else:
        assert out.startswith("# Conformance diff\n") and "| rights/test\\_per\\_message\\_maximum" in out


def test_diff_can_fail_on_observation_changes(tmp_path, reports, capsys):
    changed = sample_report()
    changed["cases"][0]["observations"]["rights.max_fds_per_message[stream]"] = 252
    path = _save(tmp_path, changed, "changed.json")
    assert main(["diff", reports["old"], path]) == 0
    assert main(["diff", reports["old"], path, "--fail-on-observations"]) == 1
    assert "observation changes (1):\n  rights.max_fds_per_message[stream] 253 -> 252\n" in capsys.readouterr().out


def test_matrix_writes_its_pages_and_names_them(tmp_path, reports, capsys):
    out = tmp_path / "matrix"
    assert main(["matrix", reports["old"], reports["other"], "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{kind}: {out / name}" for kind, name in
                                                    (("markdown", "matrix.md"), ("html", "matrix.html"),
                                                     ("json", "matrix.json"))]
    assert "| Platform id | linux-6.18.44-fc-v669-x86\\_64-py311-root | freebsd-15.0-amd64-py311-root-ufs |" in (
        (out / "matrix.md").read_text(encoding="utf-8"))


def test_ktap_prints_the_report(reports, capsys):
    assert main(["ktap", reports["old"]]) == 0
    assert capsys.readouterr().out.startswith("KTAP version 1\n1..3\n")


BAD_INPUT = [
    ("matrix without reports", ["matrix"], "no report given"),
    ("matrix of one platform twice", ["matrix", "{old}", "{new}"], "is also the id of"),
    ("matrix of a missing file", ["matrix", "{old}", "{missing}"], "missing.json: no such file"),
    ("diff of a truncated report", ["diff", "{truncated}", "{new}"], "truncated.json: not valid JSON (truncated"),
    ("diff of a directory", ["diff", "{old}", "{dir}"], "is a directory"),
    ("ktap of a report of another schema version", ["ktap", "{other_version}"], "schema version 1; this tool reads"),
    ("render of an unknown outcome", ["render", "{unknown}"], "'maybe' is not one of"),
    ("ktap of a FIFO", ["ktap", "{fifo}"], "fifo: not a regular file: a FIFO"),
    ("ktap of a character device", ["ktap", "/dev/zero"], "/dev/zero: not a regular file: a character device"),
    ("diff of a file over the size limit", ["diff", "{old}", "{huge}"], f"huge.json: {MAX_REPORT_BYTES + 1} bytes, "
                                                                         "more than the 64 MiB allowed"),
    ("matrix of a FIFO", ["matrix", "{old}", "{fifo}"], "fifo: not a regular file: a FIFO"),
]


@pytest.mark.parametrize(("argv", "fragment"), [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path, reports, argv, fragment):
    text = json.dumps(sample_report())
    other_version, unknown = sample_report(), sample_report()
    other_version["schema_version"] = 1
    unknown["cases"][0]["outcome"] = "maybe"
    paths = dict(reports, missing=str(tmp_path / "missing.json"), dir=str(tmp_path),
                 truncated=_save_text(tmp_path, "truncated.json", text[: len(text) // 3]),
                 other_version=_save(tmp_path, other_version, "other_version.json"),
                 unknown=_save(tmp_path, unknown, "unknown.json"), fifo=str(tmp_path / "fifo"),
                 huge=str(tmp_path / "huge.json"))
    os.mkfifo(paths["fifo"])  # no writer: reading it would block forever
    with open(paths["huge"], "wb") as huge:  # sparse: no disk space taken
        huge.truncate(MAX_REPORT_BYTES + 1)
    out_dir = tmp_path / "out"
    message = refused(conformance(*(arg.format(**paths) for arg in argv), *(
        ["--out", str(out_dir)] if argv[0] in ("matrix", "render") else [])), argv[0])
    assert fragment in message, message
    assert not out_dir.exists()


def _save_text(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_run_with_ktap_keeps_standard_output_for_ktap(tmp_path):
    # The inner run's temporary files go under tmp_path, not into the directory this test's leak check watches.
    env = dict(os.environ, TMPDIR=str(tmp_path))
    done = conformance("run", "--ktap", "-n", "0", "--report-dir", str(tmp_path), "--",
                       "-k", "test_per_message_maximum", env=env)
    assert done.status == 0, done.err[-2000:]
    assert done.out.startswith("KTAP version 1\n") and "ok 1 rights\n" in done.out, done.out
    assert "passed" in done.err  # pytest's own summary went to standard error
    assert len(list(tmp_path.glob("*.ktap"))) == 1


def test_render_refuses_to_replace_another_report_of_the_same_platform_unless_forced(tmp_path, reports):
    out = tmp_path / "out"
    assert conformance("render", reports["new"], "--out", out).status == 0
    written = out / f"{sample_report()['platform']['id']}.json"
    before = written.read_bytes()
    message = refused(conformance("render", reports["old"], "--out", out), "render")
    assert message == f"{written} holds another report of this platform id; --force replaces it"
    assert written.read_bytes() == before
    done = conformance("render", reports["old"], "--out", out, "--force")
    assert done.status == 0, done.err
    assert json.loads(written.read_text()) == json.loads(open(reports["old"]).read())


def test_render_again_in_place_or_over_the_same_report_is_fine(tmp_path, reports):
    assert conformance("render", reports["old"]).status == 0  # beside itself: <platform id>.json is written
    rendered = tmp_path / f"{sample_report()['platform']['id']}.json"
    done = conformance("render", rendered)  # the same file, in place
    assert done.status == 0, done.err
    copy = tmp_path / "copy" / "report.json"
    copy.parent.mkdir()
    copy.write_text(json.dumps(sample_report(), separators=(",", ":")))  # the same report, written another way
    done = conformance("render", copy, "--out", tmp_path)
    assert done.status == 0, done.err
