"""Read report files for the tools (render, matrix, diff, ktap), refusing anything that is not a whole,
valid report of the schema version they understand.

Every problem becomes one ``ReportError`` whose message names the file and the problem, so the command
line can print one line and exit 2 instead of a traceback or a silently partial result. Only a regular file of at
most MAX_REPORT_BYTES is read, so that a FIFO, a device or a huge file is refused at once (conformance.files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import FileProblem, read_regular
from ..model import ERROR, SCHEMA_VERSION, Completeness, Report
from .schema import validate

# A report of the whole suite is about 0.9 MB (1,160 cases); one of a --stress run at its bound (200 iterations of the
# ~180 race-prone cases) about 25 MB. Anything larger is not a report, and parsing it would take gigabytes.
MAX_REPORT_BYTES = 64 << 20


class ReportError(Exception):
    """A report file that cannot be used; the message is one line naming the file."""


def read_report(path: str | Path) -> Report:
    """Return the report stored at ``path``, checked against the schema and the rules it cannot express."""
    if str(path) == "":
        raise ReportError("an empty string is not a report path")
    path = Path(path)
    text = _read_text(path)
    document = _parse(path, text)
    problem = _first_problem(document)
    if problem:
        raise ReportError(f"{path}: {problem}")
    return Report.from_json(document)


def read_reports(paths: list[str]) -> list[tuple[str, Report]]:
    """Read several reports, for tools that put them side by side; platform ids must be distinct."""
    if not paths:
        raise ReportError("no report given")
    loaded: list[tuple[str, Report]] = []
    seen: dict[str, str] = {}
    for path in paths:
        report = read_report(path)
        platform_id = report.platform.id
        if platform_id in seen:
            raise ReportError(f"{path}: platform id {_show(platform_id)} is also the id of {seen[platform_id]}")
        seen[platform_id] = str(path)
        loaded.append((str(path), report))
    return loaded


def _read_text(path: Path) -> str:
    try:
        data = read_regular(path, MAX_REPORT_BYTES)
    except FileProblem as e:
        raise ReportError(f"{path}: {e}") from None
    if not data.strip():
        raise ReportError(f"{path}: empty file, not a report")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReportError(f"{path}: not UTF-8 text (byte {e.start}), not a report") from None


def _parse(path: Path, text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        # A writer that died mid-file leaves a document that does not close.
        hint = " (truncated: the document does not end with '}')" if not text.rstrip().endswith("}") else ""
        raise ReportError(f"{path}: not valid JSON{hint}: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except _Refused as e:
        raise ReportError(f"{path}: not valid JSON: {e}") from None
    except RecursionError:
        raise ReportError(f"{path}: JSON nested too deeply to be a report") from None
    except ValueError as e:
        # Python refuses integers of more than 4300 digits with a plain ValueError.
        raise ReportError(f"{path}: not a usable JSON document: {e}") from None


class _Refused(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    # Python keeps the last of two equal keys; a report with both is ambiguous, so refuse it.
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"the key {_show(key)} appears twice in one object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _first_problem(report: Any) -> str:
    if not isinstance(report, dict):
        return f"not a report: a JSON object is expected, this is a JSON {_json_type(report)}"
    if "schema_version" not in report:
        return "not a report: it has no schema_version"
    version = report["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        return f"schema version {_show(version)}; this tool reads schema version {SCHEMA_VERSION}"
    problems = validate(report)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"invalid report: {problems[0]}{more}"
    return _consistency_problem(report)


def _consistency_problem(report: dict) -> str:
    """What the schema cannot say: ids are unique and agree with their parts, observation keys are unique."""
    cases: set[str] = set()
    keys: dict[str, str] = {}
    for index, case in enumerate(report["cases"]):
        case_id = case["id"]
        expected = f"{case['area']}/{case['name']}" + (f"[{case['params']}]" if case["params"] else "")
        if case_id != expected:
            return f"invalid report: cases[{index}].id {_show(case_id)} does not match its area, name and params"
        if case_id in cases:
            return f"invalid report: case {_show(case_id)} appears twice"
        cases.add(case_id)
        for key in case["observations"]:
            if key in keys:
                return f"invalid report: observation {_show(key)} is recorded by both {keys[key]} and {case_id}"
            keys[key] = case_id
    return _completeness_problem(report)


def _completeness_problem(report: dict) -> str:
    """The completeness section agrees with itself and with the cases: its verdict follows from its counts, and
    every unfinished case is listed, as an error."""
    completeness = Completeness.from_json(report["completeness"])
    if report["completeness"]["complete"] != completeness.complete:
        return "invalid report: completeness.complete does not follow from the rest of completeness"
    if completeness.finished + len(completeness.unfinished) > completeness.collected:
        return "invalid report: completeness counts more finished and unfinished cases than it collected"
    outcomes = {case["id"]: case["outcome"] for case in report["cases"]}
    for case_id in completeness.unfinished:
        if outcomes.get(case_id) != ERROR:
            return f"invalid report: unfinished case {_show(case_id)} is not listed as an error"
    return ""


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if isinstance(value, (str, int, float, bool, type(None))) else "?"
    return text if len(text) <= 80 else text[:77] + "..."
