"""Forked children that always end with os._exit, report back over a pipe, and are reaped within a deadline.

`Child(fn, *args)` forks at once; the child runs fn(*args) and sends back either its return value or
the exception it raised (pickled), then calls os._exit. `join()` waits for that report until the deadline,
kills the child after it, and always reaps it. Exceptions raised in the child are raised again in the parent
with the child's traceback attached, so an AssertionError in a child is a `fail` like one in the parent.
Every live child is in a registry that the leak check empties after each case.
"""

from __future__ import annotations

import errno
import os
import pickle
import select
import signal
import time
import traceback
import warnings
from typing import Any, Callable

from .deadlines import DEFAULT_DEADLINE
from .errors import HarnessError

# The reaping poll after the report pipe closed: 50 us doubling to 1 ms (a fixed 1 ms cost most joins a whole 1 ms).
REAP_FIRST_PAUSE = 0.00005
REAP_MAX_PAUSE = 0.001

# pid -> Child, so that kill_all() goes through Child.kill (which records the status and closes the pipe).
_live: dict[int, Child] = {}


class ChildTimeout(HarnessError):
    pass


class ChildCrashed(HarnessError):
    pass


class ChildDidNotReport(HarnessError):
    pass


class ForkFailed(HarnessError):
    """The system refused a new process: the case could not be carried out, whatever the platform does."""


class RemoteTraceback(Exception):
    """The child's traceback, attached as the __cause__ of the exception raised again in the parent."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\nTraceback in the child process:\n" + self.text


def _wait_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exit status {os.WEXITSTATUS(status)}"


# Blocked across fork(): a SIGINT or SIGTERM that lands while a child is being made waits until the parent has
# registered the child (so that it is killed and reaped) and the child has its own handlers (the default ones: the
# signal ends it, instead of raising KeyboardInterrupt into a copy of the parent's pytest session).
_BLOCKED_ACROSS_FORK = {signal.SIGINT, signal.SIGTERM}


class ExitWith:
    """What a child's fn returns to end with a chosen exit status: join() returns `value` as usual, and the child
    then ends with os._exit(status), for a case that reads the status another way than wait() (a pidfd's exit
    information)."""

    def __init__(self, value: Any, status: int) -> None:
        self.value, self.status = value, status


def _child_main(fd: int, fn: Callable, args: tuple, kwargs: dict, mask: set) -> None:
    """Runs in the child: never returns, never raises."""
    status = 0
    try:
        for number in _BLOCKED_ACROSS_FORK:
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        try:
            result = fn(*args, **kwargs)
            if isinstance(result, ExitWith):
                result, status = result.value, result.status
            payload = ("ok", result, "")
        except BaseException as e:  # report everything, including SystemExit and KeyboardInterrupt
            payload = ("raise", e, traceback.format_exc())
        try:
            data = pickle.dumps(payload)
        except Exception:
            kind, value, text = payload
            what = repr(value) if kind == "ok" else f"{type(value).__name__}: {value}"
            data = pickle.dumps(("raise", HarnessError(f"child result could not be pickled: {what}"), text))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os._exit(status)


class Child:
    """One forked child running fn(*args, **kwargs). Use as a context manager so it is always reaped."""

    def __init__(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        r, w = os.pipe()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED_ACROSS_FORK)
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns when forking a threaded process (pytest-xdist workers have an I/O thread).
                # The child runs only fn and os._exit; a lock it inherits held ends at the deadline, not in a hang.
                warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
                pid = os.fork()
        except OSError as e:
            os.close(r)
            os.close(w)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise ForkFailed(f"fork() failed: {errno.errorcode.get(e.errno, e.errno)} ({e.strerror}): the system "
                             "refused another process (RLIMIT_NPROC, the pid or memory limits)") from None
        if pid == 0:
            os.close(r)
            _live.clear()  # the parent's children are not this process's to kill or reap
            _child_main(w, fn, args, kwargs, mask)
        try:
            os.close(w)
            self.pid = pid
            self._fd: int | None = r
            self._status: int | None = None
            _live[pid] = self
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _read_report(self, deadline: float) -> bytes:
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildTimeout(f"child {self.pid} did not finish within its deadline")
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _reap(self, deadline: float) -> int:
        pause = REAP_FIRST_PAUSE
        while self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = status
                _live.pop(self.pid, None)
                break
            if time.monotonic() >= deadline:
                self.kill()
            else:
                # The child closed its report pipe and is exiting (closing its other descriptors, releasing its
                # locks): a short poll, not synchronisation, that starts short because the rest takes microseconds.
                time.sleep(pause)
                pause = min(pause * 2, REAP_MAX_PAUSE)
        return self._status

    def join(self, timeout: float = DEFAULT_DEADLINE) -> Any:
        """The child's return value; its exception raised again; HarnessError if it hung, crashed or went silent."""
        deadline = time.monotonic() + timeout
        try:
            data = self._read_report(deadline)
        except BaseException:
            self.kill()
            raise
        finally:
            self._close_pipe()
        status = self._reap(deadline + 1.0)
        if not data:
            if os.WIFSIGNALED(status):
                raise ChildCrashed(f"child {self.pid} {_wait_status(status)} before reporting")
            raise ChildDidNotReport(f"child {self.pid} ended ({_wait_status(status)}) without reporting")
        try:
            kind, value, text = pickle.loads(data)
        except Exception as e:
            raise ChildDidNotReport(f"child {self.pid} sent a report that could not be read: {e}") from None
        if kind == "ok":
            return value
        raise value from RemoteTraceback(text)

    def fileno(self) -> int:
        """The report pipe, readable once the child has reported or ended: select() takes the Child itself."""
        if self._fd is None:
            raise ValueError(f"child {self.pid} was already joined or killed")
        return self._fd

    def kill(self) -> None:
        """SIGKILL and reap, whatever state the child is in."""
        if self._status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, self._status = os.waitpid(self.pid, 0)
            _live.pop(self.pid, None)
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def run_in_child(fn: Callable, *args: Any, timeout: float = DEFAULT_DEADLINE, **kwargs: Any) -> Any:
    """Run fn in a forked child and return its result (or raise its exception)."""
    with Child(fn, *args, **kwargs) as child:
        return child.join(timeout)


def live_children() -> set[int]:
    return set(_live)


def kill_all() -> list[int]:
    """Kill and reap every child the harness started and nobody reaped; returns their pids."""
    leftover = sorted(_live)
    for pid in leftover:
        _live[pid].kill()
    return leftover
