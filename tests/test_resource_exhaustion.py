"""When the system refuses the suite a process or a thread (RLIMIT_NPROC), the case is an `error` that names that, not
a `fail` and not a leak; when pytest-xdist cannot start its workers, the run ends in one line naming the likely limit;
and the run writes its report either way. Real runs, as an unprivileged user with a small RLIMIT_NPROC (root's is not
enforced), of crafted cases that need more processes or threads than the limit leaves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nested_run
import pytest

NOBODY = 65534
WALL = 120.0

CASES = '''
import threading

import pytest

from conformance.harness.children import Child

CONFORMANCE_AREA = "starved"
MANY = 40


def _wait(event):
    event.wait(30)


@pytest.mark.refs("self-test")
def test_needs_many_processes():
    children = []
    try:
        for _ in range(MANY):
            children.append(Child(sum, ()))
    finally:
        for child in children:
            child.kill()


@pytest.mark.refs("self-test")
def test_needs_many_threads():
    release, threads = threading.Event(), []
    try:
        for _ in range(MANY):
            thread = threading.Thread(target=_wait, args=(release,))
            thread.start()
            threads.append(thread)
    finally:
        release.set()
        for thread in threads:
            thread.join()


@pytest.mark.refs("self-test")
def test_needs_nothing():
    pass
'''


def _processes_of(uid: int) -> int:
    """How many processes and threads the uid has now: what RLIMIT_NPROC counts (Linux /proc)."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid == uid:
                count += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            continue
    return count


def _site_paths() -> str:
    return os.pathsep.join([str(nested_run.ROOT), *(p for p in sys.path if p.endswith("site-packages"))])


def _interpreter_for(uid: int) -> str | None:
    """An interpreter of this Python's version that `uid` can run with this environment's packages (this one may sit
    under a directory only root may enter, as pyenv's does under /root)."""
    for candidate in (sys.executable, shutil.which(f"python{sys.version_info[0]}.{sys.version_info[1]}"),
                      "/usr/bin/python3"):
        if not candidate:
            continue
        try:
            check = f"import sys, pytest, xdist, conformance; assert sys.version_info[:2] == {sys.version_info[:2]}"
            done = subprocess.run(["runuser", "-u", "nobody", "--", candidate, "-c", check],
                                  env=dict(os.environ, PYTHONPATH=_site_paths()), capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return candidate
    return None


@pytest.fixture
def starved():
    """run(limit, *args): the crafted cases as nobody with RLIMIT_NPROC at what nobody has now plus `limit`."""
    if not sys.platform.startswith("linux"):
        pytest.skip("counts a user's processes through /proc")
    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root and runuser(1) to run the nested suite as an unprivileged user")
    python = _interpreter_for(NOBODY)
    if python is None:
        pytest.skip(f"no interpreter of Python {sys.version_info[0]}.{sys.version_info[1]} that nobody can run here")
    # Not under tmp_path, whose root only root may enter: in the session's temporary directory, which any uid may.
    tmp_path = Path(tempfile.mkdtemp(prefix="starved-"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "test_starved.py").write_text(CASES)
    (work / "pytest.ini").write_text("[pytest]\n")
    for path in (tmp_path, work):
        path.chmod(0o777)

    def run(limit: int, *args: str) -> tuple[int, str, dict]:
        report_dir, tmpdir = tmp_path / f"report-{limit}", tmp_path / f"tmp-{limit}"
        tmpdir.mkdir(mode=0o777)
        tmpdir.chmod(0o777)
        processes = _processes_of(NOBODY) + limit
        limited = ("import os, resource, sys; "
                   f"resource.setrlimit(resource.RLIMIT_NPROC, ({processes}, {processes})); "
                   "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
        command = ["runuser", "-u", "nobody", "--", python, "-c", limited, "-m", "pytest", "-p", "no:randomly",
                   "-p", "no:cacheprovider", "--conformance-report", str(report_dir), *args,
                   str(work / "test_starved.py")]
        output = tmp_path / f"output-{limit}.txt"
        env = nested_run.environment(tmpdir, f"{tmp_path}{os.sep}", PYTHONPATH=_site_paths())
        status, _ = nested_run.run(command, cwd=work, env=env, output=output, timeout=WALL)
        nested_run.kill(nested_run.survivors(f"{tmp_path}{os.sep}"))
        reports = sorted(report_dir.glob("*.json"))
        assert len(reports) == 1, output.read_text(errors="replace")[-3000:]
        (report,) = reports
        return status, output.read_text(errors="replace"), json.loads(report.read_text())

    yield run
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.timeout(300)
def test_a_refused_process_or_thread_is_an_error_naming_the_limit_and_the_run_reports(starved):
    status, output, report = starved(12)
    cases = {case["id"]: case for case in report["cases"]}
    assert status == 1, output[-3000:]
    processes, threads = cases["starved/test_needs_many_processes"], cases["starved/test_needs_many_threads"]
    assert processes["outcome"] == "error" and processes["reason"].startswith("fork() failed: EAGAIN"), processes
    assert threads["outcome"] == "error", threads
    assert threads["reason"].startswith("the system refused a new thread (its limit on processes and threads"), threads
    assert "left things behind" not in processes["reason"] + threads["reason"]  # the cause, not a leak
    assert cases["starved/test_needs_nothing"]["outcome"] == "pass"
    assert report["completeness"]["finished"] == 3


@pytest.mark.timeout(300)
def test_workers_that_cannot_start_end_the_run_in_one_line_with_its_report(starved):
    status, output, report = starved(1, "-n", "2")
    assert status == 1, output[-3000:]
    assert "INTERNALERROR" not in output
    completeness = report["completeness"]
    assert completeness["ended"] == "stopped" and completeness["why"].startswith(
        "pytest-xdist could not start its workers"), completeness
    assert "RLIMIT_NPROC" in completeness["why"]
