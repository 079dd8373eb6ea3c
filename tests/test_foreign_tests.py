"""Installed, the plugin loads into every pytest session of its environment; another project's tests must run as if it
were not there (plugin/scope.py). A foreign test module keeps a descriptor, a child process and a temporary file
from one test to the next and looks at its own $TMPDIR, SIGTERM handler and timeout: all of it must pass, and the
child and the file must outlive the session, serially and through pytest-xdist. The same module declared a
conformance area, or run with `conformance_scope = all`, is watched again: its leaks are errors."""

from __future__ import annotations

import os
import signal

import pytest

pytest_plugins = ["pytester"]

FOREIGN = '''
import os
import signal
import subprocess
import sys
import tempfile

import pytest

KEPT = {}


def test_keeps_a_descriptor_a_child_and_a_file():
    KEPT["fd"] = os.open(os.devnull, os.O_RDONLY)
    KEPT["child"] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    fd, KEPT["file"] = tempfile.mkstemp(prefix="foreign-", dir=os.environ["FOREIGN_DIR"])
    os.close(fd)
    with open(os.path.join(os.environ["FOREIGN_DIR"], "child.pid"), "w") as f:
        f.write(str(KEPT["child"].pid))


def test_finds_them_still_there():
    os.fstat(KEPT["fd"])
    assert KEPT["child"].poll() is None
    assert os.path.exists(KEPT["file"])


def test_sees_its_own_environment(request):
    assert os.environ.get("TMPDIR") == os.environ["FOREIGN_TMPDIR"]
    assert tempfile.gettempdir() == os.environ["FOREIGN_TMPDIR"]
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert request.node.get_closest_marker("timeout") is None
    assert not [p for p in request.node.user_properties if "conformance" in str(p)]
'''

WATCHED = FOREIGN.replace("KEPT = {}", 'KEPT = {}\nCONFORMANCE_AREA = "foreign"').replace(
    "def test_", '@pytest.mark.refs("self-test")\ndef test_')


@pytest.fixture
def foreign(pytester, monkeypatch, tmp_path):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    kept, tmpdir = tmp_path / "kept", tmp_path / "tmp"
    kept.mkdir()
    tmpdir.mkdir()
    monkeypatch.setenv("FOREIGN_DIR", str(kept))
    monkeypatch.setenv("FOREIGN_TMPDIR", str(tmpdir))
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    yield pytester, kept
    pid_file = kept / "child.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)  # orphaned when the inner session ended, it was adopted by this (subreaper) process
        except (ProcessLookupError, ChildProcessError):
            pass


def _child_alive(kept) -> bool:
    try:
        os.kill(int((kept / "child.pid").read_text()), 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["serial", "xdist"])
def test_another_projects_tests_run_as_without_the_plugin(foreign, workers):
    pytester, kept = foreign
    pytester.makepyfile(test_foreign=FOREIGN)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *workers, timeout=120)
    output = "\n".join(result.outlines + result.errlines)
    assert "plugins:" in output and "conformance" in output, "the plugin was not loaded"
    result.assert_outcomes(passed=3)
    assert "conformance on" not in output and "timeout:" not in output, output
    assert _child_alive(kept), "the plugin killed a foreign test's child"
    assert [p.name for p in kept.glob("foreign-*")], "the plugin removed a foreign test's file"


@pytest.mark.parametrize("how", ["area", "scope-all"])
def test_a_declared_area_or_scope_all_is_watched(foreign, how):
    pytester, kept = foreign
    if how == "area":
        pytester.makepyfile(test_foreign=WATCHED)
        extra = []
    else:
        pytester.makepyfile(test_foreign=FOREIGN)
        extra = ["-o", "conformance_scope=all"]
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *extra, timeout=120)
    output = "\n".join(result.outlines + result.errlines)
    assert "the test left things behind" in output, output
    assert "descriptor leaked" in output and "not started through the harness" in output, output
    assert not _child_alive(kept), "a watched test's child outlived its session"


def test_a_scope_that_is_not_known_is_one_line(pytester):
    result = pytester.runpytest_subprocess("-o", "conformance_scope=some", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "conformance_scope = 'some': use one of cases, all" in "\n".join(result.errlines)
