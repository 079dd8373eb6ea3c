"""CONFORMANCE_DEADLINE_SCALE: every harness deadline stretches by it, the report records it, bad values are refused
with one line, and a window that must pass before a case concludes something is left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.harness import deadlines

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("value", "scale"), [(None, 1.0), ("", 1.0), ("2", 2.0), (" 0.5 ", 0.5), ("100", 100.0)])
def test_usable_scales(value, scale):
    assert deadlines.parse_scale(value) == scale


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "101", "abc", "1e400", "2s"])
def test_unusable_scales_are_refused_with_the_variable_named(value):
    with pytest.raises(deadlines.BadScale, match=r"^CONFORMANCE_DEADLINE_SCALE="):
        deadlines.parse_scale(value)


def test_deadline_multiplies_and_an_unusable_value_counts_as_one(monkeypatch):
    monkeypatch.setenv(deadlines.ENV, "4")
    assert deadlines.deadline(10) == 40
    monkeypatch.setenv(deadlines.ENV, "zero")
    assert deadlines.deadline(10) == 10


def test_harness_deadlines_are_scaled_and_the_blocking_window_is_not():
    code = ("import inspect\n"
            "from conformance.harness import barriers, children, deadlines\n"
            "from conformance.cases import _support, test_locks\n"
            "join = inspect.signature(children.Child.join).parameters['timeout'].default\n"
            "wait = inspect.signature(barriers.Event.wait).parameters['timeout'].default\n"
            "print(deadlines.DEFAULT_DEADLINE, join, wait, _support.RELEASE_WAIT, test_locks.BLOCK_WINDOW)")
    env = dict(os.environ, CONFORMANCE_DEADLINE_SCALE="3", PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert [float(x) for x in out] == [30.0, 30.0, 30.0, 15.0, 0.2]


def _run(tmp_path: Path, scale: str) -> subprocess.CompletedProcess:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"), CONFORMANCE_DEADLINE_SCALE=scale)
    return subprocess.run(
        [sys.executable, "-m", "conformance", "run", "-n", "0", "--report-dir", str(tmp_path / "report"),
         "--", "-p", "no:randomly", "-k", "test_locks_across_execve and posix"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_run_records_its_scale_and_stretches_the_case_timeout(tmp_path):
    done = _run(tmp_path, "3")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = (tmp_path / "report").glob("*.json")
    report = json.loads(path.read_text())
    assert report["run"]["deadline_scale"] == 3.0
    assert report["run"]["case_timeout"] == 360  # the per-case backstop, 120 s unscaled
    assert {c["outcome"] for c in report["cases"]} == {"pass"} and len(report["cases"]) == 2


def test_a_run_refuses_an_unusable_scale_in_one_line(tmp_path):
    done = _run(tmp_path, "fast")
    assert done.returncode == 2
    assert done.stderr == ("conformance: run: CONFORMANCE_DEADLINE_SCALE='fast': "
                           "not a number above 0 and at most 100\n")
    assert not (tmp_path / "report").exists()


def test_pytest_refuses_an_unusable_scale_as_a_usage_error(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path), CONFORMANCE_DEADLINE_SCALE="-2")
    done = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "conformance" / "cases"), "-q",
                           "-p", "no:cacheprovider", "--collect-only"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "CONFORMANCE_DEADLINE_SCALE='-2': not a number above 0 and at most 100" in done.stderr
    assert "Traceback" not in done.stderr
