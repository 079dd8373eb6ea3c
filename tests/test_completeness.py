"""A report is the whole truth of its run: crafted case modules run in pytest processes of their own, with a worker
killed in the middle of a case, a run stopped early, and selections of the suite; each report must say what it lacks,
never call an unfinished case a pass, and be named so that it cannot replace a complete report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

CASES = '''
import os
import signal

import pytest

CONFORMANCE_AREA = "whole"


@pytest.mark.refs("self-test")
def test_fails_when_asked():
    assert not os.environ.get("FAIL_ONE"), "failing on purpose"


@pytest.mark.refs("self-test")
@pytest.mark.parametrize("n", range(6))
def test_passes(n):
    pass


@pytest.mark.refs("self-test")
def test_kills_its_own_worker():
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("KILL_THE_WORKER"):
        os.kill(os.getpid(), signal.SIGKILL)

'''


@pytest.fixture
def inner(pytester, monkeypatch):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_whole=CASES)
    return pytester


def run(pytester, *args, report="report", **env):
    for name, value in env.items():
        os.environ[name] = value
    try:
        result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider",
                                               "--conformance-report", report, *args, timeout=120)
    finally:
        for name in env:
            del os.environ[name]
    paths = sorted((pytester.path / report).glob("*.json"))
    assert len(paths) == 1, result.outlines + result.errlines
    return result, paths[0], json.loads(paths[0].read_text())


def by_id(report) -> dict:
    return {case["id"]: case for case in report["cases"]}


def test_a_complete_run_says_so_and_is_named_for_its_platform(inner):
    result, path, report = run(inner)
    assert result.ret == 0
    assert report["completeness"] == {"complete": True, "ended": "finished", "why": "", "selection": [],
                                      "collected": 8, "finished": 8, "unfinished": []}
    assert path.name == report["platform"]["id"] + ".json"
    result.stdout.fnmatch_lines(["the report is complete: all 8 cases of the suite ran to their end"])


def test_a_case_whose_worker_was_killed_is_an_error_and_the_run_is_incomplete(inner, tmp_path):
    _, full_path, _ = run(inner, "-n", "2", report="full")
    result, path, report = run(inner, "-n", "2", report="crashed", KILL_THE_WORKER="1")
    assert result.ret == 1, result.outlines
    case = by_id(report)["whole/test_kills_its_own_worker"]
    assert case["outcome"] == "error", case  # its setup said pass; it never finished
    assert case["reason"].startswith("did not finish: worker 'gw") and "crashed while running" in case["reason"]
    completeness = report["completeness"]
    assert completeness["unfinished"] == ["whole/test_kills_its_own_worker"] and not completeness["complete"]
    assert completeness["collected"] == 8 and completeness["finished"] == 7
    assert path.name.endswith(".partial.json")  # never in place of the complete one
    assert report["summary"]["error"] == 1 and report["summary"]["pass"] == 7
    diff = subprocess.run([sys.executable, "-m", "conformance", "diff", str(full_path), str(path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "whole/test_kills_its_own_worker: pass -> error" in diff.stdout
    assert "the new report is incomplete:" in diff.stdout


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_run_stopped_early_says_why_and_how_far_it_got(inner, workers):
    result, path, report = run(inner, "-x", *workers, report="stopped", FAIL_ONE="1")
    assert result.ret == (2 if workers else 1)  # pytest-xdist ends a stopped session as interrupted
    completeness = report["completeness"]
    assert completeness["ended"] == "stopped" and "stopping after 1 failures" in completeness["why"], completeness
    assert not completeness["complete"] and path.name.endswith(".partial.json")
    assert completeness["finished"] == len(report["cases"]) and completeness["collected"] == 8
    if not workers:  # the first case failed: nothing after it ran
        assert completeness["finished"] == 1


@pytest.mark.parametrize(("args", "selection"), [
    (["-k", "passes"], ["-k passes"]),
    (["-m", "not nothing"], ["-m not nothing"]),
    (["test_whole.py::test_fails_when_asked"], ["only test_whole.py::test_fails_when_asked"]),
], ids=["keyword", "marker", "named-test"])
def test_a_selection_is_named_and_its_report_is_partial(inner, args, selection):
    result, path, report = run(inner, *args, report="selected")
    assert result.ret == 0
    completeness = report["completeness"]
    assert completeness["selection"] == selection and completeness["ended"] == "finished"
    assert completeness["finished"] == completeness["collected"] == len(report["cases"])
    assert not completeness["complete"] and path.name.endswith(".partial.json")
