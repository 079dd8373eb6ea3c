"""Fault injection: every way a case's child or barrier can go wrong becomes an `error` that names the fault,
within its deadline, and leaves nothing behind. Real processes, in nested pytest runs of crafted cases.

Each fault is one crafted case, run alone in a nested pytest (the project's plugin and harness, its report, TMPDIR
under the test's directory, harness deadlines scaled to 1 s, pytest-timeout's signal method). From the report:
the outcome, the reason, the deadline the case used and how long the fault took to become an error (measured in
the case around the wait, and the case's duration). From outside the run: no process of the run survives
(nested_run.survivors), the leak check found nothing it did not have to (its findings are in the report), and no
file is left under the run's temporary directory.

Cost, measured on 2 cores: each nested run takes about 2 s, most of it the interpreter and pytest starting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import nested_run
import pytest

SCALE = 0.1  # CONFORMANCE_DEADLINE_SCALE: the harness's 10 s deadlines become 1 s
HARNESS_DEADLINE = 10.0 * SCALE
PYTEST_TIMEOUT = 1.0  # -o timeout for the pytest-timeout faults
BACKSTOP = 5.0  # -o timeout for the others: a harness hang would show as a Timeout, not as the fault
SLACK = 1.5  # what killing, reaping and tearing down may add to a deadline on a loaded machine
WALL = 60.0  # the whole nested run, interpreter start included; beyond it the run is killed and the test fails

CASES = '''
import faulthandler
import os
import resource
import signal
import tempfile
import time

import pytest

from conformance.harness import deadlines
from conformance.harness.barriers import Event
from conformance.harness.children import Child

CONFORMANCE_AREA = "fault"
PYTEST_TIMEOUT = {pytest_timeout!r}


def record_pid(pid):
    """The outer test checks afterwards that no process has this pid."""
    with open(os.path.join({pid_dir!r}, str(pid)), "w"):
        pass


@pytest.fixture
def timed(observe):
    """timed(deadline, fn, ...): fn(...), recording the deadline and how long fn took to return or raise."""
    def run(deadline, fn, *args, **kwargs):
        observe("deadline", deadline)
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            observe("elapsed", round(time.monotonic() - started, 3))
    return run


# ---- what the children do ----

def stop_myself():
    os.kill(os.getpid(), signal.SIGSTOP)


def spin_forever():
    while True:
        pass


def no_core():
    faulthandler.disable()  # pytest's handler would print a traceback first; the signal is the fault
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # and no core file in the run's directory


def segfault():
    no_core()
    os.kill(os.getpid(), signal.SIGSEGV)


def abort():
    no_core()
    os.abort()


def exit_without_reporting():
    os._exit(3)


def pause_forever():
    while True:
        signal.pause()  # until the case's cleanup or the leak check kills it


def die_without_signalling():
    os.kill(os.getpid(), signal.SIGKILL)


# ---- a child's faults, while the case waits in Child.join ----

@pytest.mark.refs("self-test: fault injection")
@pytest.mark.parametrize("fault", [stop_myself, spin_forever, segfault, abort, exit_without_reporting],
                         ids=["hang-sigstop", "hang-busy-loop", "crash-sigsegv", "crash-abort",
                              "exit-without-reporting"])
def test_child(timed, fault):
    with Child(fault) as child:
        record_pid(child.pid)
        timed(deadlines.DEFAULT_DEADLINE, child.join)


# ---- pytest-timeout expires while the case holds a live child, an open pipe and a temporary file ----

@pytest.mark.refs("self-test: fault injection")
def test_pytest_timeout(timed):
    with tempfile.NamedTemporaryFile() as held, Child(pause_forever) as child:
        record_pid(child.pid)
        held.write(b"data")
        r, w = os.pipe()
        try:
            timed(PYTEST_TIMEOUT, os.read, r, 1)  # nobody writes: only the timeout ends this
        finally:
            os.close(r)
            os.close(w)


@pytest.mark.refs("self-test: fault injection")
def test_pytest_timeout_unmanaged(timed):
    """The same, held without context managers: the leak check must find and clean up each."""
    child = Child(pause_forever)
    record_pid(child.pid)
    tempfile.mkstemp()
    r, w = os.pipe()
    timed(PYTEST_TIMEOUT, os.read, r, 1)


# ---- a barrier whose other side never signals, or dies ----

@pytest.mark.refs("self-test: fault injection")
def test_barrier_never_signalled(timed):
    with Event() as ready, Child(pause_forever) as child:
        record_pid(child.pid)
        timed(deadlines.DEFAULT_DEADLINE, ready.wait)


@pytest.mark.refs("self-test: fault injection")
@pytest.mark.parametrize("watched", [True, False], ids=["peer-watched", "unwatched"])
def test_barrier_peer_dies(timed, watched):
    with Event() as ready, Child(die_without_signalling) as child:
        record_pid(child.pid)
        timed(deadlines.DEFAULT_DEADLINE, ready.wait, peer=child if watched else None)
'''


@dataclass
class Fault:
    case: str  # the crafted case's node id in the module
    reason: str  # a regular expression the reason must match; {pid} is the child's pid
    exception: str  # the exception that the nested run's output must name
    deadline: float
    waits_out: bool  # the fault is a hang: it ends at the deadline, not before
    caught: dict = field(default_factory=dict)  # what the leak check must find (and clean up), by kind

    @property
    def timeout(self) -> float:
        """-o timeout for the run: short where pytest-timeout is the fault, else a backstop past the deadline."""
        return PYTEST_TIMEOUT if self.exception == PYTEST_TIMEOUT_EXCEPTION else BACKSTOP


PYTEST_TIMEOUT_EXCEPTION = "Failed: Timeout"
TIMEOUT_REASON = re.escape(f"Failed: Timeout (>{PYTEST_TIMEOUT}s) from pytest-timeout.")
FAULTS = {
    "hang-sigstop": Fault("test_child[hang-sigstop]", r"child {pid} did not finish within its deadline",
                          "ChildTimeout", HARNESS_DEADLINE, True),
    "hang-busy-loop": Fault("test_child[hang-busy-loop]", r"child {pid} did not finish within its deadline",
                            "ChildTimeout", HARNESS_DEADLINE, True),
    "crash-sigsegv": Fault("test_child[crash-sigsegv]", r"child {pid} killed by SIGSEGV before reporting",
                           "ChildCrashed", HARNESS_DEADLINE, False),
    "crash-abort": Fault("test_child[crash-abort]", r"child {pid} killed by SIGABRT before reporting",
                         "ChildCrashed", HARNESS_DEADLINE, False),
    "exit-without-reporting": Fault("test_child[exit-without-reporting]",
                                    r"child {pid} ended \(exit status 3\) without reporting",
                                    "ChildDidNotReport", HARNESS_DEADLINE, False),
    "pytest-timeout": Fault("test_pytest_timeout", TIMEOUT_REASON, PYTEST_TIMEOUT_EXCEPTION, PYTEST_TIMEOUT, True),
    "pytest-timeout-unmanaged": Fault(
        "test_pytest_timeout_unmanaged", TIMEOUT_REASON + r"; the test left things behind:", PYTEST_TIMEOUT_EXCEPTION,
        PYTEST_TIMEOUT, True,
        {"processes": [r"child process {pid} was still alive or unreaped \(killed and reaped\)"],
         "descriptors": [r"descriptor leaked: fd \d+ \(file .*/tmp\w+\) \(closed\)",
                         r"descriptor leaked: fd \d+ \(pipe .*\) \(closed\)",
                         r"descriptor leaked: fd \d+ \(pipe .*\) \(closed\)"],
         "files": [r"temporary file left behind: .*/tmp\w+ \(removed\)"]}),
    "barrier-never-signalled": Fault("test_barrier_never_signalled", rf"no signal within {HARNESS_DEADLINE:g}s",
                                     "BarrierTimeout", HARNESS_DEADLINE, True),
    "barrier-peer-dies": Fault("test_barrier_peer_dies[peer-watched]", r"child {pid} ended without signalling",
                               "BarrierBroken", HARNESS_DEADLINE, False),
    # Without the peer named, a dead peer is only a silence: it costs the deadline, but still nothing more.
    "barrier-peer-dies-unwatched": Fault("test_barrier_peer_dies[unwatched]",
                                         rf"no signal within {HARNESS_DEADLINE:g}s", "BarrierTimeout",
                                         HARNESS_DEADLINE, True),
}


@pytest.mark.timeout(120)  # about 2 s alone; WALL bounds the nested run, the margin is for a loaded machine
@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_is_an_error_within_its_deadline_and_leaves_nothing(name, tmp_path):
    fault = FAULTS[name]
    work, tmpdir, pid_dir, report_dir = (tmp_path / d for d in ("work", "tmp", "pids", "report"))
    for d in (work, tmpdir, pid_dir):
        d.mkdir()
    (work / "pytest.ini").write_text("[pytest]\n")  # the run's rootdir: no ini file of an enclosing directory
    module = work / "test_faults.py"
    module.write_text(CASES.format(pid_dir=str(pid_dir), pytest_timeout=PYTEST_TIMEOUT))
    marker = f"{tmp_path}{os.sep}"  # in its argv and environment, not in a sibling's
    env = nested_run.environment(tmpdir, marker, CONFORMANCE_DEADLINE_SCALE=str(SCALE))
    status, wall = nested_run.run(
        nested_run.pytest_command(f"{module}::{fault.case}", "-o", f"timeout={fault.timeout:g}",
                                  "-o", "timeout_method=signal", "--basetemp", str(tmp_path / "basetemp"),
                                  "--conformance-report", str(report_dir)),
        cwd=work, env=env, output=tmp_path / "output.txt", timeout=WALL)
    output = (tmp_path / "output.txt").read_text(errors="replace")

    # What was left, measured before anything is asserted, then cleaned up, so that a failure spoils nothing else.
    alive = nested_run.survivors(marker)
    nested_run.kill(alive)
    pids = sorted(int(p.name) for p in pid_dir.iterdir())
    files = nested_run.files_under(tmpdir)
    stray = sorted(set(nested_run.files_under(work)) - {"pytest.ini", "test_faults.py"})  # a core dump, bytecode
    assert not alive and not files and not stray, (
        f"{name}: left over: {len(alive)} processes {alive}, files {files}, stray files {stray}")

    assert status == 1, f"nested run exited {status}:\n{output[-3000:]}"
    (case,) = nested_run.report_of(report_dir).cases
    assert len(pids) == 1, f"the case started {pids} children, not one:\n{output[-3000:]}"
    (pid,) = pids
    observed = {key.split("[")[0]: value for key, value in case.observations.items()}
    deadline, elapsed, duration = observed.get("fault.deadline"), observed.get("fault.elapsed"), case.duration
    caught = nested_run.leak_findings([case])
    timing = (f"{name}: became an error after {elapsed} s in the case ({duration:.3f} s with setup and teardown, "
              f"{wall:.2f} s for the whole nested run) against a deadline of {deadline} s")

    assert case.outcome == "error", f"{name}: {case.outcome}: {case.reason}"
    assert re.match(fault.reason.format(pid=pid), case.reason), f"{name}: reason {case.reason!r}"
    assert fault.exception in output, f"{name}: the output does not name {fault.exception}:\n{output[-3000:]}"
    assert deadline == pytest.approx(fault.deadline), f"{name}: the case used a deadline of {deadline} s"
    assert duration <= fault.deadline + SLACK, timing
    if fault.waits_out:
        assert elapsed >= 0.9 * fault.deadline, timing  # pytest-timeout's clock starts with setup, before the case
    else:
        assert elapsed < fault.deadline, timing  # seen as soon as it happened, not at the deadline
    for kind in nested_run.LEAK_KINDS:
        expected = [pattern.format(pid=pid) for pattern in fault.caught.get(kind, [])]
        found = sorted(line.split(": ", 1)[1] for line in caught[kind])
        unmatched = [line for line in found if not any(re.fullmatch(p, line) for p in expected)]
        assert len(found) == len(expected) and not unmatched, (
            f"{name}: the leak check found {kind} {found}, expected {expected}")
    caught_count = sum(map(len, caught.values()))
    print(f"{timing}; the leak check caught {caught_count}; left over: 0 processes, 0 descriptors, 0 files")
