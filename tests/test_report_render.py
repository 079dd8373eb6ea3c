"""Self-tests for the report schema, validator, renderers and writer, on crafted data only."""

from __future__ import annotations

import copy
import json
import os
import random
import re
import time
from pathlib import Path

import pytest
from reportdata import hostile_report, markdown_tables, model, sample_report

from conformance.model import OUTCOMES, SCHEMA_VERSION
from conformance.report import write as write_module
from conformance.report.gfm import md_escape
from conformance.report.html import FILTER_SCRIPT, render_html
from conformance.report.ktap import render_ktap
from conformance.report.markdown import render_markdown
from conformance.report.page import script_hash
from conformance.report.schema import (
    ANNOTATION_KEYWORDS,
    SCHEMA_PATH,
    SUPPORTED_KEYWORDS,
    load_schema,
    validate,
)
from conformance.report.write import write_report


def _jsonschema_errors(document):
    jsonschema = pytest.importorskip("jsonschema")
    return list(jsonschema.Draft202012Validator(load_schema()).iter_errors(document))


# --- schema and validator -------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA_PATH.name == "schema.json"


def test_schema_uses_only_keywords_the_validator_enforces():
    unknown = set()

    def walk(node):
        if isinstance(node, dict):
            unknown.update(set(node) - SUPPORTED_KEYWORDS - ANNOTATION_KEYWORDS)
            for keyword in ("items", "additionalProperties"):
                if isinstance(node.get(keyword), dict):
                    walk(node[keyword])
            for child in (*node.get("properties", {}).values(), *node.get("$defs", {}).values()):
                walk(child)
            for child in (*node.get("anyOf", ()), *node.get("oneOf", ())):
                walk(child)

    walk(load_schema())
    assert unknown == set()


def test_every_object_in_the_schema_is_closed():
    open_objects = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object" or "object" in node.get("type", []):
                extra = node.get("additionalProperties")
                if extra is not False and not isinstance(extra, dict):
                    open_objects.append(where)
            for key, child in node.items():
                if isinstance(child, dict):
                    for name, grandchild in child.items() if key in ("properties", "$defs") else [(key, child)]:
                        walk(grandchild, f"{where}/{name}")

    walk(load_schema(), "#")
    assert open_objects == []


def test_outcome_order_matches_the_schema_enum():
    schema = load_schema()
    assert list(OUTCOMES) == schema["$defs"]["outcome"]["enum"]
    assert list(OUTCOMES) == schema["properties"]["summary"]["required"]


def test_sample_report_is_valid_for_both_validators():
    report = sample_report()
    assert validate(report) == []
    assert _jsonschema_errors(report) == []


def test_hostile_report_is_still_valid():
    report = hostile_report()
    assert validate(report) == []
    assert _jsonschema_errors(report) == []


def _delete(path):
    def mutate(report):
        *parents, last = path
        node = report
        for key in parents:
            node = node[key]
        del node[last]
        return report

    return mutate


def _set(path, value):
    def mutate(report):
        *parents, last = path
        node = report
        for key in parents:
            node = node[key]
        node[last] = value
        return report

    return mutate


# (name, mutation, a fragment our validator's message must contain)
CORRUPTIONS = [
    ("missing top-level field", _delete(["summary"]), "missing required field 'summary'"),
    ("missing platform field", _delete(["platform", "uid"]), "platform: missing required field 'uid'"),
    ("missing case field", _delete(["cases", 2, "outcome"]), "cases[2]: missing required field 'outcome'"),
    ("another schema_version", _set(["schema_version"], 1), f"schema_version: 1 is not {SCHEMA_VERSION}"),
    ("schema_version string", _set(["schema_version"], "1"), "schema_version"),
    ("schema_version true", _set(["schema_version"], True), "schema_version"),
    ("unknown outcome", _set(["cases", 3, "outcome"], "maybe"), "cases[3].outcome: 'maybe' is not one of pass, fail"),
    ("unknown expectation outcome", _set(["cases", 2, "expectation", "outcome"], "skip"), "expectation.outcome"),
    ("extra top-level key", _set(["extra"], 1), "unexpected field 'extra'"),
    ("extra case key", _set(["cases", 0, "colour"], "red"), "cases[0]: unexpected field 'colour'"),
    ("extra summary key", _set(["summary", "skipped"], 0), "summary: unexpected field 'skipped'"),
    ("extra capability key", _set(["platform", "capabilities", "scm_rights", "x"], 1), "scm_rights"),
    ("extra expectation key", _set(["cases", 2, "expectation", "x"], 1), "expectation: unexpected field 'x'"),
    ("missing summary outcome", _delete(["summary", "unexpected-pass"]), "'unexpected-pass'"),
    ("empty references", _set(["cases", 0, "references"], []), "cases[0].references: has 0 item(s)"),
    ("empty reference string", _set(["cases", 0, "references"], [""]), "cases[0].references[0]"),
    ("non-scalar observation list", _set(["cases", 0, "observations", "x.y"], [1]), "is not of type string"),
    ("non-scalar observation object", _set(["cases", 0, "observations", "x.y"], {}), "observations['x.y']"),
    ("negative case duration", _set(["cases", 1, "duration"], -0.5), "cases[1].duration: -0.5 is less than"),
    ("negative run duration", _set(["run", "duration"], -1), "run.duration"),
    ("negative summary count", _set(["summary", "fail"], -1), "summary.fail"),
    ("negative workers", _set(["run", "workers"], -1), "run.workers"),
    ("fractional summary count", _set(["summary", "pass"], 1.5), "summary.pass: 1.5 is not of type integer"),
    ("boolean count", _set(["summary", "pass"], True), "summary.pass: True is not of type integer"),
    ("string duration", _set(["cases", 0, "duration"], "0.1"), "cases[0].duration"),
    ("privileged as string", _set(["platform", "privileged"], "yes"), "platform.privileged"),
    ("uid as string", _set(["platform", "uid"], "0"), "platform.uid"),
    ("commit as number", _set(["suite", "commit"], 1234), "suite.commit"),
    ("argv not a list", _set(["run", "argv"], "-n 2"), "run.argv"),
    ("argv item not a string", _set(["run", "argv"], ["-n", 2]), "run.argv[1]"),
    ("exit_status null", _set(["run", "exit_status"], None), "run.exit_status"),
    ("cases not a list", _set(["cases"], {}), "cases: {} is not of type array"),
    ("case not an object", _set(["cases", 0], "rights/x"), "cases[0]"),
    ("capabilities a list", _set(["platform", "capabilities"], []), "platform.capabilities"),
    ("capability supported string", _set(["platform", "capabilities", "scm_rights", "supported"], "true"), "supported"),
    ("expectation a string", _set(["cases", 2, "expectation"], "deviation"), "cases[2].expectation"),
    ("expectation missing reason", _delete(["cases", 2, "expectation", "reason"]), "'reason'"),
    ("case id without area", _set(["cases", 0, "id"], "test_x"), "cases[0].id"),
    ("case id with space", _set(["cases", 0, "id"], "rights/test x"), "cases[0].id"),
    ("case id with trailing text", _set(["cases", 0, "id"], "rights/test_x[a]b"), "cases[0].id"),
    ("case id upper-case area", _set(["cases", 0, "id"], "Rights/test_x"), "cases[0].id"),
    ("empty platform id", _set(["platform", "id"], ""), "platform.id"),
    ("platform not an object", _set(["platform"], None), "platform: None is not of type object"),
]


@pytest.mark.parametrize(("mutation", "fragment"), [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS])
def test_corruption_is_rejected_by_both_validators(mutation, fragment):
    report = mutation(sample_report())
    problems = validate(report)
    assert problems, "our validator accepted a corrupt report"
    assert any(fragment in problem for problem in problems), problems
    assert _jsonschema_errors(report), "jsonschema accepted a corrupt report"


@pytest.mark.parametrize(
    "document",
    [None, [], [sample_report()], "report", 1, 1.5, True, {}],
    ids=["null", "empty list", "list of report", "string", "int", "float", "bool", "empty"],
)
def test_non_report_documents_are_rejected_by_both_validators(document):
    problems = validate(document)
    assert problems and all(problem.startswith("report: ") for problem in problems)
    assert _jsonschema_errors(document)


def test_validator_agrees_with_jsonschema_on_random_mutations():
    pytest.importorskip("jsonschema")
    rng = random.Random(20261122)
    pool = [None, True, False, 0, -1, 7, 2.5, -0.5, "", "x", "pass", "rights/test_x", [], ["x"], [1], {}, {"a": 1}]
    for _ in range(400):
        report = sample_report()
        path = _random_path(report, rng)
        _mutate(report, path, rng, pool)
        ours = validate(report) == []
        theirs = _jsonschema_errors(report) == []
        assert ours == theirs, (path, json.dumps(report)[:300])


def _random_path(node, rng):
    path = []
    while isinstance(node, (dict, list)) and node and rng.random() < 0.8:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append(key)
        node = node[key]
    return path


def _mutate(report, path, rng, pool):
    if not path:
        report["unexpected"] = 1
        return
    parent = report
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.3:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(pool))


class _BadRepr:
    def __repr__(self):
        raise RuntimeError("hostile repr")


@pytest.mark.parametrize(
    "document",
    [
        float("nan"),
        {"schema_version": float("inf")},
        {1: 2, None: 3},
        [[[[[]]]]] * 50,
        {"cases": [{"observations": {"k": _BadRepr()}}]},
        {"cases": [{"id": "a/b" + "[" * 10000}] * 3},
        {"summary": {"pass": 10**400}},
        {"platform": {"id": "x" * 100000}},
        _set(["cases", 0, "id"], "rights/test_x\n")(sample_report()),
    ],
    ids=[
        "nan",
        "inf",
        "non-string keys",
        "nested lists",
        "bad repr",
        "long pattern input",
        "huge int",
        "long string",
        "id with trailing newline",
    ],
)
def test_validator_never_raises_and_reports_problems(document):
    problems = validate(document)
    assert problems
    assert all(isinstance(problem, str) and len(problem) < 1000 for problem in problems)


def test_problem_list_is_capped():
    report = sample_report()
    report["cases"] = [{"bad": 1}] * 500
    problems = validate(report)
    assert 1 < len(problems) <= 101
    assert problems[-1].startswith("... stopped after")


def test_validator_alternatives():
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert validate(None, schema) == []
    assert validate(1, schema) and validate(1, schema)[0].startswith("report: matches none")
    one_of = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    assert validate(1.5, one_of) == []
    assert validate(1, one_of) == ["report: matches 2 of the allowed forms, exactly one required"]


# --- Markdown -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a|b", "a\\|b"),
        ("a\\", "a\\\\"),
        ("a\\|b", "a\\\\\\|b"),
        ("<b>&</b>", "&lt;b&gt;&amp;&lt;/b&gt;"),
        ("x`y`", "x\\`y\\`"),
        ("one\ntwo\r\nthree\rfour", "one<br>two<br>three<br>four"),
        ("nul\0bell\a", "nul\\x00bell\\x07"),
        ("csi\x9b2J\u202e", "csi\\x9b2J\\u202e"),
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (0.25, "0.25"),
    ],
)
def test_md_escape(value, expected):
    assert md_escape(value) == expected


def test_markdown_of_sample_report():
    report = sample_report()
    text = render_markdown(model(report))
    assert text.startswith("# Conformance report: linux-6.18.44-fc-v669-x86\\_64-py311-root\n")
    for fact in ("glibc 2.36", "CPython 3.11.7", "ext4 at /tmp", "yes (uid 0)", "2026-11-22T01:00:00Z", "12.50 s"):
        assert fact in text
    assert "rights.max\\_fds\\_per\\_message\\[stream\\] = 253" in text
    assert "locks.upgrade\\_errno = null" in text
    assert "locks.ofd\\_supported = false" in text
    assert "**fail**" in text and "**unexpected-pass**" in text and "**pass**" not in text
    assert "Expected deviation: documented in flock(2)" in text
    assert "Linux flock(2): NOTES" in text
    # Areas are sorted; the Warning appears only when counts disagree.
    assert text.index("### gc") < text.index("### locks") < text.index("### rights")
    assert "Warning" not in text


def test_markdown_tables_have_consistent_rows_even_when_hostile():
    report = hostile_report()
    text = render_markdown(model(report))
    assert not re.search(r"<\s*(script|img)", text, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "\"'&amp;\\|\\\\ first<br>second" in text
    # A raw newline from the report would start a line of its own.
    assert not any(line.startswith("second") for line in text.split("\n"))
    tables = markdown_tables(text)
    facts, anchors, capabilities, *case_tables = tables
    for table in tables:
        widths = {len(row) for row in table}
        assert len(widths) == 1, table
    assert len(facts[0]) == 2 and len(facts) == 2 + 14
    assert len(anchors[0]) == 8 and len(anchors) == 2 + len(report["anchors"])
    assert len(capabilities[0]) == 3 and len(capabilities) == 2 + 1
    assert all(len(table[0]) == 5 for table in case_tables)
    assert sum(len(table) - 2 for table in case_tables) == len(report["cases"])


def test_markdown_counts_match_summary():
    report = sample_report()
    report["summary"] = {"pass": 40, "fail": 0, "deviation": 1, "unexpected-pass": 0, "unsupported": 3, "error": 0}
    report["cases"] = [c for c in sample_report()["cases"] if c["outcome"] in ("pass", "deviation", "unsupported")]
    report["cases"] += [dict(report["cases"][0], id=f"rights/test_n[{i}]", params=str(i)) for i in range(39)]
    report["cases"] += [dict(report["cases"][2], id=f"rights/test_u[{i}]", params=str(i)) for i in range(2)]
    text = render_markdown(model(report))
    line = next(line for line in text.split("\n") if line.startswith("**Summary:**"))
    for outcome, count in report["summary"].items():
        assert re.search(rf"(^|\s){count} {re.escape(outcome)}(\s|$)", line), (outcome, line)
    assert "(44 cases)" in line
    outcome_cells = [row[1] for table in markdown_tables(text)[3:] for row in table[2:]]
    assert outcome_cells.count("pass") == 40
    assert outcome_cells.count("**deviation**") == 1
    assert outcome_cells.count("**unsupported**") == 3
    assert "Warning" not in text


def test_renderers_flag_a_summary_that_disagrees_with_the_cases():
    report = sample_report()
    report["summary"]["fail"] = 5
    assert "Warning:** summary counts disagree with the listed cases for: fail" in render_markdown(model(report))
    assert "Summary counts disagree with the listed cases for: fail" in render_html(model(report))


# --- HTML -----------------------------------------------------------------------------------


def test_html_of_sample_report():
    report = sample_report()
    page = render_html(model(report))
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert "<title>Conformance report: linux-6.18.44-fc-v669-x86_64-py311-root</title>" in page
    # Self-contained: nothing is fetched.
    assert "http:" not in page and "https:" not in page and "src=" not in page and "<link" not in page
    assert_only_our_script(page)
    assert '<td class="outcome o-fail">fail</td>' in page
    assert '<td class="outcome o-unexpected-pass">unexpected-pass</td>' in page
    assert "<code>rights.max_fds_per_message[stream]</code> = <code>253</code>" in page
    assert "<code>locks.upgrade_errno</code> = <code>null</code>" in page
    for css in (".o-pass { background: #1f883d", ".o-fail { background: #cf222e", ".o-error { background: #3d0a0a"):
        assert css in page


def assert_only_our_script(page):
    """The page's one script is the renderer's fixed filter, and the content security policy lets only it run."""
    assert re.findall(r"<\s*script[^>]*>", page, re.IGNORECASE) == ["<script>"]
    assert f"<script>{FILTER_SCRIPT}</script>" in page
    assert f"script-src {script_hash(FILTER_SCRIPT)}\"" in page and "default-src 'none'" in page


def test_html_escapes_everything_from_a_hostile_report():
    report = hostile_report()
    page = render_html(model(report))
    assert_only_our_script(page)
    assert not re.search(r"<\s*img", page, re.IGNORECASE)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt; &quot;&#x27;&amp;|\\ first"
    assert escaped in page
    # The hostile text appears in the title, facts, capability, and every case's fields.
    assert page.count(escaped) >= 10
    assert f"<title>Conformance report: {escaped}\nsecond</title>" in page


def test_html_counts_match_summary():
    report = sample_report()
    page = render_html(model(report))
    for outcome in OUTCOMES:
        assert page.count(f'<td class="outcome o-{outcome}">') == report["summary"][outcome]
        assert f'<span class="o-{outcome}"><b class="count">1</b> {outcome}</span>' in page
    assert "(6 cases)" in page


def test_html_lists_failures_first_and_a_quoted_expectation_once():
    report = sample_report()
    deviation = report["cases"][2]
    deviation["reason"] = f"{deviation['expectation']['reason']} (observed: upgrade took 0.25 s)"
    page = render_html(model(report))
    rows = re.findall(r'<tr class="case is-([\w-]+) a-\d+">', page)
    assert rows == ["error", "fail", "unexpected-pass", "deviation", "unsupported", "pass"]
    assert page.count("documented in flock(2)") == 1
    assert '<div class="expectation">Expected deviation</div>' in page
    # An expectation the reason does not quote is spelled out.
    assert '<div class="expectation">Expected deviation: old kernel</div>' in page


def test_html_summary_grid_comes_first_and_escapes_area_names():
    report = sample_report()
    for case in report["cases"][:2]:
        case["area"] = "<b>area"
        case["id"] = f"<b>area/{case['id'].partition('/')[2]}"
    page = render_html(model(report))
    grid = page[page.index("<svg"):page.index("</svg>")]
    assert page.index("<svg") < page.index('<nav class="filters">') < page.index('<table class="cases">')
    assert "<b>area" not in page and "&lt;b&gt;area" in grid
    # One row per area and one cell per outcome, in the outcome's colour only where some case had it.
    assert grid.count("<rect") == 4 * len(OUTCOMES)
    assert grid.count('fill="#cf222e"') == 1


# --- writing --------------------------------------------------------------------------------


def test_write_report_writes_four_files(tmp_path):
    report = sample_report()
    target = tmp_path / "reports" / "nested"
    paths = write_report(model(report), target)
    stem = report["platform"]["id"]
    assert paths == {
        "json": target / f"{stem}.json",
        "markdown": target / f"{stem}.md",
        "html": target / f"{stem}.html",
        "ktap": target / f"{stem}.ktap",
    }
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in paths.values())
    raw = paths["json"].read_text(encoding="utf-8")
    assert raw.endswith("}\n") and raw.startswith(f'{{\n  "schema_version": {SCHEMA_VERSION},\n  "suite"')
    assert json.loads(raw) == report
    assert paths["markdown"].read_text(encoding="utf-8") == render_markdown(model(report))
    assert paths["html"].read_text(encoding="utf-8") == render_html(model(report))
    assert paths["ktap"].read_text(encoding="utf-8") == render_ktap(model(report))


def test_write_report_overwrites_previous_files(tmp_path):
    report = sample_report()
    write_report(model(report), tmp_path)
    report["run"]["exit_status"] = 0
    paths = write_report(model(report), tmp_path)
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["run"]["exit_status"] == 0
    assert len(list(tmp_path.iterdir())) == 4


def test_write_report_refuses_an_invalid_report_and_writes_nothing(tmp_path):
    report = sample_report()
    report["cases"][0]["outcome"] = "maybe"
    target = tmp_path / "reports"
    with pytest.raises(ValueError, match=r"(?s)invalid report.*cases\[0\]\.outcome"):
        write_report(model(report), target)
    assert not target.exists()


@pytest.mark.parametrize("platform_id", ["../escape", "a/b", ".hidden", "."])
def test_write_report_refuses_unsafe_platform_ids(tmp_path, platform_id):
    report = sample_report()
    report["platform"]["id"] = platform_id
    with pytest.raises(ValueError, match="not usable as a file name"):
        write_report(model(report), tmp_path / "reports")
    assert not (tmp_path / "reports").exists()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    report = sample_report()
    paths = write_report(model(report), tmp_path)
    before = {kind: path.read_bytes() for kind, path in paths.items()}

    def crash(source, destination):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(write_module.os, "replace", crash)
    report["run"]["exit_status"] = 3
    with pytest.raises(OSError, match="simulated crash"):
        write_report(model(report), tmp_path)
    monkeypatch.undo()
    assert {kind: path.read_bytes() for kind, path in paths.items()} == before
    assert sorted(os.listdir(tmp_path)) == sorted(path.name for path in paths.values())


def test_written_files_are_fsynced_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(write_module.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(write_module.os, "replace", lambda a, b: (events.append(Path(b).name), real_replace(a, b))[1])
    write_report(model(sample_report()), tmp_path)
    # Every file is written and fsync'ed before the first is renamed; the JSON, which readers read, last; then the
    # directory is synced.
    stem = sample_report()["platform"]["id"]
    assert events == ["fsync"] * 4 + [f"{stem}.md", f"{stem}.html", f"{stem}.ktap", f"{stem}.json", "fsync"]


def test_a_failure_between_renames_leaves_the_old_json_and_no_temporary(tmp_path, monkeypatch):
    report = sample_report()
    paths = write_report(model(report), tmp_path)
    old_json = paths["json"].read_bytes()
    real_replace, renamed = os.replace, []

    def crash_on_the_second(source, destination):
        if renamed:
            raise OSError("simulated crash between renames")
        renamed.append(destination)
        real_replace(source, destination)

    monkeypatch.setattr(write_module.os, "replace", crash_on_the_second)
    report["run"]["exit_status"] = 3
    with pytest.raises(OSError, match="between renames"):
        write_report(model(report), tmp_path)
    monkeypatch.undo()
    assert renamed == [paths["markdown"]]  # a page is new; the JSON, the authority, is whole and old
    assert paths["json"].read_bytes() == old_json
    assert sorted(os.listdir(tmp_path)) == sorted(path.name for path in paths.values())


def test_stale_temporary_files_of_the_writer_are_removed(tmp_path):
    stem = sample_report()["platform"]["id"]
    names = {
        f".{stem}.json.a1b2c3d4.tmp": True,  # left by a killed writer of this report
        ".linux-other-id.html.zz_9zz9z.tmp": True,  # of another report
        ".matrix.md.00000000.tmp": True,
        f".{stem}.json.fresh000.tmp": False,  # a concurrent writer's, still being written
        ".notes.txt.a1b2c3d4.tmp": False,  # not a name this writer makes
        f"{stem}.json.a1b2c3d4.tmp": False,
        ".unrelated.tmp": False,
    }
    old = time.time() - 3600
    for name, stale in names.items():
        (tmp_path / name).write_text("partial")
        if stale or "fresh" not in name:
            os.utime(tmp_path / name, (old, old))
    (tmp_path / f".{stem}.md.dirdir00.tmp").mkdir()  # a directory is never removed
    os.utime(tmp_path / f".{stem}.md.dirdir00.tmp", (old, old))
    paths = write_report(model(sample_report()), tmp_path)
    left = set(os.listdir(tmp_path)) - {path.name for path in paths.values()}
    assert left == {name for name, stale in names.items() if not stale} | {f".{stem}.md.dirdir00.tmp"}


def test_hostile_report_round_trips_through_the_writer(tmp_path):
    report = hostile_report(hostile_id=False)
    paths = write_report(model(report), tmp_path)
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == report
    assert_only_our_script(paths["html"].read_text(encoding="utf-8"))
    assert "<script" not in paths["markdown"].read_text(encoding="utf-8").lower()


@pytest.mark.parametrize("terminator", ["\n", "\r", "\u2028", "\u2029"], ids=["LF", "CR", "LS", "PS"])
def test_a_case_id_holds_no_line_terminator_as_json_schema_reads_its_pattern(terminator):
    # JSON Schema patterns are ECMA-262: "." matches no line terminator, while Python's matches all but "\n".
    report = sample_report()
    case = report["cases"][0]
    case["params"] = f"a{terminator}b"
    case["id"] = f"{case['area']}/{case['name']}[{case['params']}]"
    assert any("cases[0].id" in problem for problem in validate(report))
