"""Self-tests for conformance.harness.children: real forks and pipes, with faults injected into the children."""

from __future__ import annotations

import errno
import faulthandler
import os
import resource
import signal
import time

import pytest

from conformance.harness import fds as fdlist
from conformance.harness.barriers import Event
from conformance.harness.children import (
    Child,
    ChildCrashed,
    ChildDidNotReport,
    ChildTimeout,
    RemoteTraceback,
    kill_all,
    live_children,
    run_in_child,
)
from conformance.outcomes import HarnessError


def assert_gone(pid: int) -> None:
    """The child was reaped: it is not our child any more and no process has its pid."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert pid not in live_children()


# ---- functions run in the children (module level, so tracebacks name them) ----------------------------------

def fail_an_assertion() -> None:
    assert 1 + 1 == 3, "arithmetic broke in the child"


def close_a_bad_descriptor() -> None:
    os.close(-1)


def open_a_missing_file() -> None:
    os.open("/nonexistent/conformance-self-test", os.O_RDONLY)


def return_a_lambda():
    return lambda: None


def stop_myself() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)


def spin_forever() -> None:
    while True:
        pass


def die_by(sig: int) -> None:
    faulthandler.disable()  # pytest's handler would print a traceback before re-raising the signal
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # and leave no core file behind
    os.kill(os.getpid(), sig)


def exit_silently(status: int) -> None:
    os._exit(status)


def announce_and_block(event: Event) -> None:
    event.set(b"up")
    time.sleep(60)  # killed long before this ends


# ---- results and exceptions --------------------------------------------------------------------------------------

def test_run_in_child_returns_the_value_computed_in_the_child():
    parent = os.getpid()
    pid, value = run_in_child(lambda x: (os.getpid(), {"x": [x, x * 2]}), 21)
    assert pid != parent
    assert value == {"x": [21, 42]}
    assert_gone(pid)


def test_assertion_error_in_child_is_raised_again_with_the_child_traceback():
    with pytest.raises(AssertionError, match="arithmetic broke in the child") as info:
        run_in_child(fail_an_assertion)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "Traceback (most recent call last)" in cause.text
    assert "fail_an_assertion" in cause.text
    assert "AssertionError: arithmetic broke in the child" in cause.text
    assert "Traceback in the child process:" in str(cause)


def test_oserror_in_child_keeps_its_errno_and_class():
    with pytest.raises(OSError) as info:
        run_in_child(close_a_bad_descriptor)
    assert info.value.errno == errno.EBADF
    with pytest.raises(FileNotFoundError) as info:
        run_in_child(open_a_missing_file)
    assert info.value.errno == errno.ENOENT
    assert isinstance(info.value.__cause__, RemoteTraceback)


def test_unpicklable_return_value_is_a_harness_error():
    with pytest.raises(HarnessError, match="could not be pickled") as info:
        run_in_child(return_a_lambda)
    assert type(info.value) is HarnessError  # not mistaken for a crash, a timeout or silence


# ---- fault injection ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hang", [stop_myself, spin_forever], ids=["sigstop", "busy-loop"])
def test_hung_child_times_out_within_its_deadline_and_is_reaped(hang):
    child = Child(hang)
    started = time.monotonic()
    with pytest.raises(ChildTimeout, match=str(child.pid)):
        child.join(timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 3, f"join took {elapsed:.2f}s for a 0.5s deadline"
    assert_gone(child.pid)


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL], ids=["SIGSEGV", "SIGKILL"])
def test_child_killed_by_a_signal_is_reported_as_crashed(sig):
    child = Child(die_by, sig)
    with pytest.raises(ChildCrashed) as info:
        child.join(timeout=5)
    assert f"killed by {signal.Signals(sig).name}" in str(info.value)
    assert type(info.value) is ChildCrashed
    assert_gone(child.pid)


def test_child_that_exits_without_reporting():
    child = Child(exit_silently, 3)
    with pytest.raises(ChildDidNotReport, match="exit status 3"):
        child.join(timeout=5)
    assert_gone(child.pid)


# ---- cleanup -----------------------------------------------------------------------------------------------------

def test_context_manager_kills_a_child_still_running():
    with Event() as started:
        with Child(announce_and_block, started) as child:
            assert started.wait(5) == b"up"
            os.kill(child.pid, 0)  # still running here
            assert child.pid in live_children()
        assert_gone(child.pid)
        assert os.WIFSIGNALED(child._status) and os.WTERMSIG(child._status) == signal.SIGKILL


def test_kill_all_kills_and_reaps_a_child_left_in_the_registry():
    before = set(fdlist.open_fds())
    with Event() as started:
        child = Child(announce_and_block, started)
        assert started.wait(5) == b"up"
        assert live_children() == {child.pid}
        assert kill_all() == [child.pid]
        assert_gone(child.pid)
        assert live_children() == set()
        assert kill_all() == []
        child.kill()  # the owner cleaning up afterwards must not fail, nor signal a pid that may be reused
    assert set(fdlist.open_fds()) == before, "kill_all left the child's report pipe open"
