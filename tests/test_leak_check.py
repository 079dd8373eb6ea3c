"""The automatic per-test leak check catches each kind of leak, in an inner pytest process of its own.

The inner sessions load the plugin through its pytest11 entry point (no -p), exactly as an installed suite does.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

PID_DIR = "CONFORMANCE_SELFTEST_PID_DIR"

RECORD = f'''
import os


def record(name, pid):
    with open(os.path.join(os.environ["{PID_DIR}"], name), "w") as f:
        f.write(str(pid))
'''

LEAKY = RECORD + '''
import tempfile
import time

import pytest

from conformance.harness.children import Child

CONFORMANCE_AREA = "selftest"
pytestmark = pytest.mark.refs("self-test")


def test_leaks_a_descriptor():
    os.pipe()


def test_leaks_a_forked_child():
    pid = os.fork()
    if pid == 0:
        try:
            time.sleep(60)
        finally:
            os._exit(0)
    record("forked", pid)


def test_leaks_a_zombie():
    pid = os.posix_spawnp("true", ["true"], os.environ)
    if hasattr(os, "waitid"):  # not on macOS, where the child may still be running: a leftover all the same
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped
    record("zombie", pid)


def test_leaks_a_harness_child():
    record("harness", Child(time.sleep, 60).pid)


def test_leaks_a_temporary_file():
    fd, path = tempfile.mkstemp()
    os.close(fd)


def test_leaks_a_temporary_directory():
    tempfile.mkdtemp()


def test_is_clean():
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    fd, path = tempfile.mkstemp()
    os.close(fd)
    os.unlink(path)
'''

OVERRUN = RECORD + '''
import time

import pytest

from conformance.harness.children import Child

CONFORMANCE_AREA = "selftest"


@pytest.mark.refs("self-test")
@pytest.mark.timeout(1)
def test_overruns_with_a_live_child():
    child = Child(time.sleep, 60)
    record("overrun", child.pid)
    child.join(timeout=120)
'''

KEPT = RECORD + '''
import time

import pytest

from conformance.harness.children import Child, Helper

CONFORMANCE_AREA = "selftest"
pytestmark = pytest.mark.refs("self-test")


@pytest.fixture(scope="module")
def kept():
    """Made before the first case's leak check looks, ended after the last one's."""
    with Helper() as helper, Child(time.sleep, 60) as child:
        child.keep_across_cases()
        record("helper", helper.pid)
        record("kept", child.pid)
        yield helper


@pytest.mark.parametrize("n", range(3))
def test_uses_what_is_kept(kept, n):
    assert kept.call(os.getpid) == kept.pid
'''


@pytest.fixture
def pid_dir(tmp_path, monkeypatch):
    """Where the inner tests record the pids of the processes they start (outside the inner run's directory)."""
    path = tmp_path / "pids"
    path.mkdir()
    monkeypatch.setenv(PID_DIR, str(path))
    return path


@pytest.fixture
def inner(pytester, monkeypatch, pid_dir):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def recorded_pid(pid_dir, name) -> int:
    return int((pid_dir / name).read_text())


def assert_no_such_process(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # succeeds for a live process and for an unreaped zombie alike


def test_plugin_is_registered_through_the_entry_point():
    points = importlib.metadata.entry_points()
    group = points.select(group="pytest11") if hasattr(points, "select") else points.get("pytest11", [])
    assert any(p.name == "conformance.plugin" and p.value == "conformance.plugin" for p in group)


def test_leak_check_catches_every_kind_of_leak_and_leaves_no_process(inner, pid_dir):
    inner.makepyfile(test_leaky=LEAKY)
    result = inner.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "--junitxml=junit.xml")
    assert "conformance" in "\n".join(result.outlines[:6]), "plugin not loaded without -p"
    result.assert_outcomes(passed=7, errors=6)

    errors = {}
    for case in ET.parse(inner.path / "junit.xml").getroot().iter("testcase"):
        error = case.find("error")
        if error is not None:
            errors[case.get("name")] = error.get("message", "")  # the exception text, without the traceback
    expected = {
        "test_leaks_a_descriptor": "descriptor leaked: fd ",
        "test_leaks_a_forked_child": f"child process {recorded_pid(pid_dir, 'forked')} not started through the harness",
        "test_leaks_a_zombie": f"child process {recorded_pid(pid_dir, 'zombie')} not started through the harness",
        "test_leaks_a_harness_child": f"child process {recorded_pid(pid_dir, 'harness')} was still alive",
        "test_leaks_a_temporary_file": "temporary file left behind: ",
        "test_leaks_a_temporary_directory": "temporary file left behind: ",
    }
    assert set(errors) == set(expected), sorted(errors)
    for name, message in expected.items():
        assert "the test left things behind" in errors[name] and message in errors[name], (name, errors[name])
    assert "(pipe" in errors["test_leaks_a_descriptor"]
    if sys.platform == "linux":  # /proc names the leftover: its command line, or a zombie's name
        assert errors["test_leaks_a_zombie"].rstrip().endswith(": a zombie (true)"), errors["test_leaks_a_zombie"]
    # one leak each: the harness child's report pipe is not a second, confusing, descriptor leak
    assert "descriptor leaked" not in errors["test_leaks_a_harness_child"]

    assert_no_such_process(recorded_pid(pid_dir, "forked"))
    assert_no_such_process(recorded_pid(pid_dir, "harness"))
    assert_no_such_process(recorded_pid(pid_dir, "zombie"))


def test_timeout_with_a_live_child_is_an_error_and_leaves_no_process(inner, pid_dir):
    inner.makepyfile(test_overrun=OVERRUN)
    result = inner.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-o", "timeout_method=signal",
                                        "--conformance-report", "report", timeout=30)
    # The timeout ends the call; the join's cleanup killed the child, so teardown's leak check finds nothing.
    result.assert_outcomes(failed=1, errors=0)
    result.stdout.fnmatch_lines(["*Timeout*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (path,) = (inner.path / "report").glob("*.json")
    (case,) = json.loads(path.read_text())["cases"]
    assert case["id"] == "selftest/test_overruns_with_a_live_child"
    assert case["outcome"] == "error"
    assert "Timeout" in case["reason"]
    assert_no_such_process(recorded_pid(pid_dir, "overrun"))


def test_what_a_module_keeps_across_its_cases_is_no_leak_and_ends_with_it(inner, pid_dir):
    inner.makepyfile(test_kept=KEPT)
    result = inner.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=0)
    assert_no_such_process(recorded_pid(pid_dir, "helper"))
    assert_no_such_process(recorded_pid(pid_dir, "kept"))
