"""Self-tests for conformance.harness.children: real forks and pipes, with faults injected into the children."""

from __future__ import annotations

import errno
import faulthandler
import os
import resource
import select
import signal
import socket
import time

import pytest

from conformance.harness import fds as fdlist
from conformance.harness import rights
from conformance.harness.barriers import Event
from conformance.harness.children import (
    Child,
    ChildCrashed,
    ChildDidNotReport,
    ChildTimeout,
    Exec,
    ForeignHelper,
    Helper,
    RemoteTraceback,
    kept_children,
    kill_all,
    live_children,
    replace_image,
    run_in_child,
    serve_forked,
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


# ---- a child that ends in a new program ----------------------------------------------------------------------------

SHELL = "/bin/sh"


def become(script: str, report: int = -1) -> Exec:
    """Say this process's pid on `report`, then become a shell running script."""
    if report >= 0:
        os.write(report, str(os.getpid()).encode() + b"\n")
        os.dup2(report, 1)  # the new program's standard output
    return Exec(SHELL, ["sh", "-c", script])


def test_exec_returns_the_new_programs_exit_status_and_keeps_the_pid():
    r, w = os.pipe()
    try:
        with Child(become, "echo $$; exit 3", w) as child:
            os.close(w)
            w = -1
            assert child.join(timeout=5) == 3
            said = b""
            while True:
                chunk = os.read(r, 100)
                if not chunk:
                    break
                said += chunk
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    before, after = said.split()
    assert int(before) == int(after) == child.pid, "the new program is not the same process"
    assert_gone(child.pid)


def test_exec_of_a_signalled_program_is_minus_the_signal():
    with Child(become, "kill -TERM $$") as child:
        assert child.join(timeout=5) == -signal.SIGTERM


def test_a_failed_exec_is_raised_again():
    with Child(lambda: Exec("/nonexistent/conformance-self-test", ["x"])) as child, \
            pytest.raises(FileNotFoundError) as info:
        child.join(timeout=5)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert_gone(child.pid)


def test_a_new_program_that_does_not_exit_times_out_and_is_reaped():
    child = Child(become, "exec sleep 60")
    started = time.monotonic()
    with pytest.raises(ChildTimeout, match=str(child.pid)):
        child.join(timeout=0.5)
    assert time.monotonic() - started < 3
    assert_gone(child.pid)


# ---- a helper that answers request after request ---------------------------------------------------------------

def test_a_helper_answers_from_one_process_and_raises_again():
    with Helper() as helper:
        first, second = helper.call(os.getpid), helper.call(os.getpid)
        assert first == second == helper.pid != os.getpid()
        assert helper.call(lambda: 1) == 1  # does not pickle: run in a child of its own
        with pytest.raises(AssertionError, match="arithmetic broke") as info:
            helper.call(fail_an_assertion)
        assert "fail_an_assertion" in info.value.__cause__.text
        assert helper.call(os.getpid) == helper.pid, "an exception ended the helper"
        assert helper.pid in kept_children() and helper.pid not in live_children()
    assert_gone(helper.pid)
    assert helper.pid not in kept_children()


def test_a_helper_keeps_none_of_its_parents_descriptors():
    r, w = os.pipe()
    try:
        with Helper() as helper:
            os.close(w)
            w = -1
            ready, _, _ = select.select([r], [], [], 5)
            assert ready and os.read(r, 1) == b"", "the helper kept the pipe's write end open"
            helper.call(os.getpid)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def ask_the_helper(helper: Helper) -> tuple[int, int]:
    return os.getpid(), helper.call(os.getpid)


def test_a_helper_called_from_another_process_forks_instead():
    with Helper() as helper:
        me, answered = run_in_child(ask_the_helper, helper)
        assert answered not in (me, helper.pid)
        assert helper.call(os.getpid) == helper.pid


def test_a_helper_that_hangs_is_killed_and_the_next_calls_fork():
    with Helper() as helper:
        with pytest.raises(ChildTimeout, match=str(helper.pid)):
            helper.call(time.sleep, 60, timeout=0.5)
        assert_gone(helper.pid)
        assert not helper.alive
        assert helper.call(os.getpid) not in (helper.pid, os.getpid())


def test_a_helper_that_dies_is_reported_as_crashed():
    with Helper() as helper:
        with pytest.raises(ChildCrashed, match="exit status 3 before answering"):
            helper.call(os._exit, 3)
        assert_gone(helper.pid)


def test_a_helper_killed_between_calls_is_reported_as_crashed_and_the_next_calls_fork():
    with Helper() as helper:
        os.kill(helper.pid, signal.SIGKILL)
        with pytest.raises(ChildCrashed, match="killed by SIGKILL before answering"):
            helper.call(os.getpid)
        assert_gone(helper.pid)
        assert helper.call(os.getpid) not in (helper.pid, os.getpid())


def test_a_child_kept_across_cases_is_left_to_its_owner():
    with Event() as started:
        with Child(announce_and_block, started) as child:
            assert child.keep_across_cases() is child
            assert started.wait(5) == b"up"
            assert kill_all() == [] and child.pid in kept_children()
            os.kill(child.pid, 0)  # still running
        assert_gone(child.pid)
        assert child.pid not in kept_children()


def test_killing_a_child_that_someone_else_reaped_raises_nothing():
    """After an interrupt the run's last sweep reaps every child; the clean-up that kills a Child later must not end
    in ECHILD ("No child processes" was once the whole run's last word)."""
    child = Child(time.sleep, 30)
    try:
        os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)  # the sweep's doing
    finally:
        child.kill()


# ---- a request answered later, a new image in a helper, a helper's own child -----------------------------------

def test_a_request_is_answered_when_it_is_taken():
    with Helper() as helper:
        helper.request(time.sleep, 0.3)
        assert helper.pending and not helper.answered()
        with pytest.raises(RuntimeError, match="pending"):
            helper.call(os.getpid)
        with pytest.raises(ChildTimeout):
            helper.answer(0.01)
        assert helper.pending  # a late answer is still this request's
        assert helper.answer(5) is None and not helper.pending
        assert helper.call(os.getpid) == helper.pid
        helper.request(time.sleep, 60)
        helper.close(kill=True)  # asleep: it would never read the end of its channel
    assert_gone(helper.pid)


_kept_open: list = []


def open_a_pipe_and_exec():
    r, w = os.pipe()  # close-on-exec, as Python makes them
    os.set_inheritable(w, True)
    _kept_open[:] = [r, w]
    replace_image(after_the_exec, (r, w))


def after_the_exec(fds):
    def is_open(fd):
        try:
            os.fstat(fd)
        except OSError:
            return False
        return True
    r, w = fds
    open_now = (is_open(r), is_open(w))
    if open_now[1]:
        os.close(w)
    return os.getpid(), open(f"/proc/{os.getpid()}/cmdline").read().split("\0")[1:3] if \
        os.path.exists("/proc/self/cmdline") else None, open_now


def test_a_helper_replaced_by_a_new_image_keeps_its_pid_and_what_is_not_close_on_exec():
    with Helper() as helper:
        pid, arguments, open_now = helper.call(open_a_pipe_and_exec)
        assert pid == helper.pid and open_now == (False, True)
        assert arguments in (None, ["-I", "-S"])
        assert helper.call(os.getpid) == helper.pid  # it serves the same channel
    assert_gone(helper.pid)


def test_replace_image_runs_only_in_a_helper():
    with pytest.raises(RuntimeError, match="only in a Helper"):
        replace_image(after_the_exec, (-1, -1))


def fork_a_helper(address: str) -> int:
    """In a helper: fork a child that serves one end of a new channel, and send the other end to address."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the child
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        mine.close()
        serve_forked(theirs.detach())
    with mine, theirs, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.sendmsg([b"c"], [rights.rights_cmsg([mine.fileno()])], 0, address)
    return pid


@pytest.mark.parametrize("kill", [False, True], ids=["ended", "killed"])
def test_a_helpers_own_child_is_reached_and_ends_before_its_parent(tmp_path, kill):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as inbox, Helper() as parent:
        inbox.bind(str(tmp_path / "in"))
        pid = parent.call(fork_a_helper, str(tmp_path / "in"))
        _, fds, _, _ = socket.recv_fds(inbox, 1, 1)
        child = ForeignHelper(pid, fds[0])
        assert child.call(os.getpid) == pid and child.call(os.getppid) == parent.pid
        if kill:
            child.request(time.sleep, 60)
        child.close(kill=kill)
        assert not child.alive
        with pytest.raises(ProcessLookupError):  # reaped by the kernel for its parent, still alive
            os.kill(pid, 0)
        assert parent.call(os.getpid) == parent.pid
