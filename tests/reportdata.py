"""Crafted reports for the self-tests of the report tools: a sample with every outcome, and a hostile one."""

from __future__ import annotations

import re

from conformance.model import OUTCOMES, SCHEMA_VERSION, Report

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(1)> \"'&|\\ first\nsecond"


def _case(area, name, params, outcome, observations, reason="", expectation=None):
    case_id = f"{area}/{name}" + (f"[{params}]" if params else "")
    return {
        "id": case_id,
        "area": area,
        "name": name,
        "params": params,
        "outcome": outcome,
        "reason": reason,
        "references": [f"FreeBSD tests/sys/kern/unix_passfd_test.c: {name}"],
        "observations": observations,
        "expectation": expectation,
        "duration": 0.012,
    }


def sample_report():
    """A valid report with every outcome, parameters, each scalar type and an expectation."""
    cases = [
        _case(
            "rights",
            "test_per_message_maximum",
            "stream",
            "pass",
            {"rights.max_fds_per_message[stream]": 253, "rights.max_plus_one_errno[stream]": "EINVAL"},
        ),
        _case(
            "rights", "test_truncation", "dgram", "fail", {"rights.truncated_flag[dgram]": True}, reason="assert 0 == 8"
        ),
        _case(
            "locks",
            "test_flock_upgrade",
            "",
            "deviation",
            {"locks.upgrade_seconds": 0.25, "locks.upgrade_errno": None},
            reason="upgrade is not atomic here",
            expectation={
                "outcome": "deviation",
                "reason": "documented in flock(2)",
                "references": ["Linux flock(2): NOTES"],
            },
        ),
        _case(
            "locks",
            "test_ofd_locks",
            "",
            "unexpected-pass",
            {"locks.ofd_supported": False},
            reason="expected deviation did not occur",
            expectation={"outcome": "deviation", "reason": "old kernel", "references": []},
        ),
        _case("rights", "test_scm_credentials", "", "unsupported", {}, reason="probe scm_creds: not available"),
        _case(
            "gc",
            "test_cycle_collected",
            "seqpacket",
            "error",
            {"gc.cycles": 3},
            reason="OSError: [Errno 24] Too many open files",
        ),
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": {"name": "conformance", "version": "0.1.0", "commit": "1a2b3c4"},
        "platform": {
            "id": "linux-6.18.44-fc-v669-x86_64-py311-root",
            "os": "linux",
            "release": "6.18.44-fc-v669",
            "kernel": "Linux 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC",
            "arch": "x86_64",
            "libc": {"name": "glibc", "version": "2.36"},
            "python": {"implementation": "CPython", "version": "3.11.7"},
            "filesystem": {"path": "/tmp", "type": "ext4"},
            "privileged": True,
            "uid": 0,
            "capabilities": {
                "scm_rights": {"supported": True, "reason": "SCM_RIGHTS round trip on a socketpair"},
                "scm_creds": {"supported": False, "reason": "not available"},
            },
        },
        "run": {
            "started": "2026-11-22T01:00:00Z",
            "duration": 12.5,
            "workers": 2,
            "argv": ["-n", "2"],
            "exit_status": 1,
            "deadline_scale": 1.0,
            "case_timeout": 120.0,
        },
        "summary": {outcome: 1 for outcome in OUTCOMES},
        "cases": cases,
        "expectations": {"unmatched": []},
        "completeness": {"complete": True, "ended": "finished", "why": "", "selection": [], "collected": len(cases),
                         "finished": len(cases), "unfinished": []},
        "anchors": [
            {"anchor": "FreeBSD tests/sys/kern/unix_passfd_test.c", "behaviours": 3, "out_of_scope": 1,
             "states": {"failing": 1, "deviating": 0, "checked": 1, "unsupported": 0, "not run": 0}},
        ],
    }


def hostile_report(hostile_id=True, text=HOSTILE):
    """A valid report whose every free-text field carries ``text``: by default markup, quotes, pipes and a newline.

    The writer refuses a platform id containing "/", so ``hostile_id=False`` keeps it plain.
    """
    report = sample_report()
    platform = report["platform"]
    if hostile_id:
        platform["id"] = text
    for key in ("os", "release", "kernel", "arch"):
        platform[key] = text
    for section in ("libc", "python", "filesystem"):
        for key in platform[section]:
            platform[section][key] = text
    platform["capabilities"] = {text: {"supported": False, "reason": text}}
    report["suite"]["commit"] = text
    report["anchors"][0]["anchor"] = text
    report["run"]["started"] = text
    report["run"]["argv"] = [text]
    for index, case in enumerate(report["cases"]):
        # The id pattern allows anything but a line terminator inside the brackets.
        case["params"] = re.sub("[\n\r\u2028\u2029]", " ", text)
        case["id"] = f"{case['area']}/{case['name']}[{case['params']}]"
        case["reason"] = text
        case["references"] = [text, "plain reference"]
        # Observation keys are unique in a report.
        case["observations"] = {f"{text}[{index}]": text, f"{case['area']}.number[{index}]": 1}
        if case["expectation"]:
            case["expectation"] = {"outcome": "deviation", "reason": text, "references": [text]}
    return report


def model(document):
    """The report a (crafted, valid) JSON document holds, as the tools take it."""
    return Report.from_json(document)


def models(pairs):
    """(source, document) pairs as (source, report)."""
    return [(source, model(document)) for source, document in pairs]


def table_cells(line):
    """Split a GFM table row the way GitHub does: a backslash escapes the next character."""
    cells, current, index = [], "", 0
    body = line.strip()
    assert body.startswith("|") and body.endswith("|") and not body.endswith("\\|"), line
    body = body[1:-1]
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            current += body[index : index + 2]
            index += 2
            continue
        if char == "|":
            cells.append(current)
            current = ""
        else:
            current += char
        index += 1
    return [cell.strip() for cell in (*cells, current)]


def markdown_tables(markdown):
    """Each table as a list of rows (lists of cells), in document order."""
    tables, current = [], None
    for line in markdown.split("\n"):
        if line.startswith("|"):
            current = current if current is not None else []
            current.append(table_cells(line))
        elif current is not None:
            tables.append(current)
            current = None
    if current is not None:
        tables.append(current)
    return tables
