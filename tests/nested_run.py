"""Nested pytest runs for the self-tests that prove the harness never hangs and never leaks: a bounded run, and
what it left behind (processes, the leak check's findings, files), measured from outside the run.

A nested run's processes are found two ways. Its command line carries a marker (a path unique to the test) and
its environment too: every forked child keeps both. A child that exec'd another program with another environment
loses them, but the suite is a subreaper (Linux, FreeBSD), so once orphaned it is adopted by the nested run and,
when that ends, by this test process (the outer suite is a subreaper too): it is a descendant of this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.harness import leaks
from conformance.model import FAILING, CaseResult, Report
from conformance.report.load import read_report

ROOT = Path(__file__).resolve().parents[1]
MARKER_VARIABLE = "CONFORMANCE_SELFTEST_MARKER"

# How each line of the leak check ("the test left things behind:") begins, by kind of leftover.
LEAK_KINDS = {"processes": ("child process",), "descriptors": ("descriptor leaked",),
              "files": ("temporary file left behind", "case directory left behind")}


def environment(tmpdir: Path, marker: str, **extra: str) -> dict:
    """This process's environment for a nested run: no xdist worker's or suite setting of ours, TMPDIR under the
    test's own directory, the marker, and no bytecode written next to a crafted case module."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "CONFORMANCE_")) and k != "PYTEST_ADDOPTS"}
    env.update(extra, TMPDIR=str(tmpdir), PYTHONDONTWRITEBYTECODE="1")
    env[MARKER_VARIABLE] = marker
    return env


def run(command: list, *, cwd: Path, env: dict, output: Path, timeout: float) -> tuple[int, float]:
    """Run command in a session of its own, its output into output; (exit status, wall seconds). A run that
    outlives timeout is killed with its whole process group and fails the test: the outer test never hangs."""
    started = time.monotonic()
    with open(output, "w") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the nested run did not end within {timeout:g} s:\n{output.read_text()[-3000:]}")
    finally:
        if proc.returncode is None:  # timed out, or this test was interrupted (its own pytest-timeout)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, time.monotonic() - started


def pytest_command(*args: str) -> list:
    return [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args]


def _processes() -> dict:
    """pid -> (parent pid, what identifies it: command line, and environment where /proc shows it)."""
    found = {}
    if os.path.isdir("/proc/self"):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if fields.get("State", "").split()[:1] == ["Z"]:
                    # A zombie holds nothing but its pid, and shows no command line or environment to tell whose it
                    # is: an orphan of any earlier test that this (subreaper) process adopted would count as this
                    # run's. Zombies are reaped by the leak check; a live process is what a run must not leave.
                    continue
                ppid = int(fields["PPid"].split()[0])
                text = Path(f"/proc/{name}/cmdline").read_bytes()
                try:
                    text += b"\0" + Path(f"/proc/{name}/environ").read_bytes()
                except OSError:  # another user's process: its command line still shows the marker
                    pass
            except (OSError, KeyError):  # ended meanwhile
                continue
            found[int(name)] = (ppid, text.replace(b"\0", b" ").decode(errors="replace"))
        return found
    out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "args="], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    for line in out.splitlines():
        pid, ppid, *args = line.split(None, 2)
        found[int(pid)] = (int(ppid), " ".join(args))
    return found


def survivors(marker: str) -> dict:
    """Every process other than this one that carries the marker or descends from this process: pid -> text."""
    table = _processes()
    me = os.getpid()

    def descends(pid: int) -> bool:
        seen = set()
        while pid > 1 and pid not in seen:
            seen.add(pid)
            pid = table.get(pid, (0, ""))[0]
            if pid == me:
                return True
        return False

    return {pid: text[:300] for pid, (_, text) in table.items()
            if pid != me and (marker in text or descends(pid))}


def kill(pids) -> None:
    """Clean up after a failed check, so that one broken run does not spoil the tests after it."""
    for pid in pids:
        leaks.kill_and_reap(pid)


def files_under(path: Path) -> list:
    """Every file and directory below path, relative to it."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def report_of(directory: Path) -> Report:
    """The one report a nested run wrote, validated."""
    found = sorted(directory.glob("*.json"))
    assert len(found) == 1, f"{len(found)} reports in {directory}"
    return read_report(found[0])


def status_explained(status: int, report: Report) -> bool:
    """The whole suite's exit status is what its report calls for: 0, or 1 with a case that failed. Whether such a
    case is news is the reference's to say (test_real_report.py), not the status's."""
    failing = any(case.outcome in FAILING for case in report.cases)
    return status == 0 or (status == 1 and failing and report.complete)


def leak_findings(cases: list[CaseResult]) -> dict:
    """What the nested run's leak check found, by kind: {"processes": [line, ...], "descriptors": ..., "files": ...}."""
    found = {kind: [] for kind in LEAK_KINDS}
    for case in cases:
        if "the test left things behind:" not in case.reason:
            continue
        for line in case.reason.split("the test left things behind:", 1)[1].splitlines():
            line = line.strip()
            for kind, starts in LEAK_KINDS.items():
                if line.startswith(starts):
                    found[kind].append(f"{case.id}: {line}")
    return found
