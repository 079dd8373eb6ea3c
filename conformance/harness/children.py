"""Forked children that always end with os._exit, report back over a pipe, and are reaped within a deadline.

`Child(fn, *args)` forks at once; the child runs fn(*args) and sends back either its return value or
the exception it raised (pickled), then calls os._exit. `join()` waits for that report until the deadline,
kills the child after it, and always reaps it. Exceptions raised in the child are raised again in the parent
with the child's traceback attached, so an AssertionError in a child is a `fail` like one in the parent.
Every live child is in a registry that the leak check empties after each case.

A child's fn may end in a new program instead (`return Exec(path, argv)`), and `Helper` is one forked process
that runs fn after fn on request, for a fixture that asks many questions of "another process" (a fork of a big
process such as pytest's costs milliseconds).
"""

from __future__ import annotations

import errno
import gc
import io
import json
import os
import pickle
import signal
import socket
import struct
import sys
import time
import traceback
import warnings
from typing import Any, Callable

from ..platforms import descriptors
from .deadlines import DEFAULT_DEADLINE
from .errors import HarnessError
from .waiting import readable

# The reaping poll after the report pipe closed: 50 us doubling to 1 ms (a fixed 1 ms cost most joins a whole 1 ms).
REAP_FIRST_PAUSE = 0.00005
REAP_MAX_PAUSE = 0.001

# pid -> Child, so that kill_all() goes through Child.kill (which records the status and closes the pipe).
_live: dict[int, Child] = {}
# pid -> Child or Helper made to outlive the case that made it (a module-scoped fixture's): kill_all() leaves them to
# their owner, and the leak check does not count them as left behind.
_kept: dict[int, Any] = {}


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


def _reap(pid: int) -> int:
    """waitpid(pid, 0)'s status; 0 when someone else reaped it first (the run's last sweep, after an interrupt): its
    status is lost, and no ECHILD may escape from a clean-up."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


class ExitWith:
    """What a child's fn returns to end with a chosen exit status: join() returns `value` as usual, and the child
    then ends with os._exit(status), for a case that reads the status another way than wait() (a pidfd's exit
    information)."""

    def __init__(self, value: Any, status: int) -> None:
        self.value, self.status = value, status


class Exec:
    """What a child's fn returns to replace the child's program with execv(path, argv) once fn has returned: the
    same process (its pid, its locks, its descriptors without FD_CLOEXEC) goes on as the new program. The signals
    Python ignores (SIGPIPE, SIGXFSZ) get their default action back first, as subprocess gives them. join() waits
    for the new program to exit (within its deadline, else ChildTimeout) and returns its exit status as
    os.waitstatus_to_exitcode gives it (-N for signal N); a failed execv is raised again in the parent."""

    def __init__(self, path: str, argv: list[str]) -> None:
        self.path, self.argv = path, list(argv)


# What the child's pickled report says: fn returned, raised, or replaced its program (an "exec" report, then
# nothing more if the execv succeeded, the "raise" report of its error if it failed).
_OK, _RAISE, _EXEC = "ok", "raise", "exec"
# Signals Python sets to SIG_IGN at start-up; an ignored disposition outlives execv.
_IGNORED_BY_PYTHON = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))


def _pickled(payload: tuple) -> bytes:
    try:
        return pickle.dumps(payload)
    except Exception:
        kind, value, text = payload
        what = repr(value) if kind == _OK else f"{type(value).__name__}: {value}"
        return pickle.dumps((_RAISE, HarnessError(f"child result could not be pickled: {what}"), text))


def _report_of(fn: Callable, args: tuple, kwargs: dict) -> tuple[bytes, Any]:
    """Run fn(*args, **kwargs): (the pickled report for the parent, what fn returned, None if it raised)."""
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:  # report everything, including SystemExit and KeyboardInterrupt
        return _pickled((_RAISE, e, traceback.format_exc())), None
    if isinstance(result, Exec):
        return _pickled((_EXEC, None, "")), result
    return _pickled((_OK, result.value if isinstance(result, ExitWith) else result, "")), result


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _as_forked_child(mask: set) -> None:
    """In a new child: its parent's children are not its to kill or reap, and SIGINT and SIGTERM end it."""
    _live.clear()
    _kept.clear()
    for number in _BLOCKED_ACROSS_FORK:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _child_main(fd: int, fn: Callable, args: tuple, kwargs: dict, mask: set) -> None:
    """Runs in the child: never returns, never raises."""
    status = 0
    try:
        _as_forked_child(mask)
        data, result = _report_of(fn, args, kwargs)
        if isinstance(result, ExitWith):
            status = result.status
        _write_all(fd, data)
        if isinstance(result, Exec):
            status = 127
            try:
                for number in _IGNORED_BY_PYTHON:
                    signal.signal(number, signal.SIG_DFL)
                os.execv(result.path, result.argv)  # the report pipe is close-on-exec: the parent sees its end
            except BaseException as e:
                _write_all(fd, _pickled((_RAISE, e, traceback.format_exc())))
    finally:
        os._exit(status)


def _fork() -> tuple[int, set]:
    """fork() with SIGINT and SIGTERM blocked: (pid, the signal mask to restore on both sides)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED_ACROSS_FORK)
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns when forking a threaded process (pytest-xdist workers have an I/O thread).
            # The child runs only fn and os._exit; a lock it inherits held ends at the deadline, not in a hang.
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            return os.fork(), mask
    except OSError as e:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise ForkFailed(f"fork() failed: {errno.errorcode.get(e.errno, e.errno)} ({e.strerror}): the system "
                         "refused another process (RLIMIT_NPROC, the pid or memory limits)") from None


class Child:
    """One forked child running fn(*args, **kwargs). Use as a context manager so it is always reaped."""

    def __init__(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        r, w = os.pipe()
        try:
            pid, mask = _fork()
        except ForkFailed:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:
            os.close(r)
            _child_main(w, fn, args, kwargs, mask)
        try:
            os.close(w)
            self.pid = pid
            self._fd: int | None = r
            self._status: int | None = None
            self._timed_out = False
            _live[pid] = self
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _read_report(self, deadline: float) -> bytes:
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildTimeout(f"child {self.pid} did not finish within its deadline")
            if not readable(self._fd, left):
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
                _kept.pop(self.pid, None)
                break
            if time.monotonic() >= deadline:
                self._timed_out = True
                self.kill()
            else:
                # The child closed its report pipe and is exiting (closing its other descriptors, releasing its
                # locks): a short poll, not synchronisation, that starts short because the rest takes microseconds.
                time.sleep(pause)
                pause = min(pause * 2, REAP_MAX_PAUSE)
        return self._status

    def join(self, timeout: float = DEFAULT_DEADLINE) -> Any:
        """The child's return value; its exception raised again; HarnessError if it hung, crashed or went silent.
        For a child whose fn returned Exec: the new program's exit status, once it has exited."""
        deadline = time.monotonic() + timeout
        try:
            data = self._read_report(deadline)
        except BaseException:
            self.kill()
            raise
        finally:
            self._close_pipe()
        report = io.BytesIO(data)
        try:
            kind, value, text = pickle.load(report) if data else (None, None, "")
            if kind == _EXEC and report.tell() < len(data):  # the execv failed and said why
                kind, value, text = pickle.load(report)
        except Exception as e:
            self._reap(deadline + 1.0)
            raise ChildDidNotReport(f"child {self.pid} sent a report that could not be read: {e}") from None
        if kind == _EXEC:  # the new program runs on: it has what is left of the deadline to exit
            status = self._reap(deadline)
            if self._timed_out:
                raise ChildTimeout(f"child {self.pid} did not exit from its new program within its deadline")
            return os.waitstatus_to_exitcode(status)
        status = self._reap(deadline + 1.0)
        if not data:
            if os.WIFSIGNALED(status):
                raise ChildCrashed(f"child {self.pid} {_wait_status(status)} before reporting")
            raise ChildDidNotReport(f"child {self.pid} ended ({_wait_status(status)}) without reporting")
        if kind == _OK:
            return value
        raise value from RemoteTraceback(text)

    def keep_across_cases(self) -> Child:
        """Let this child outlive the case that made it (a module-scoped fixture's helper, made before the case's
        leak check takes its snapshot): the check after each case neither kills it nor counts it as left behind.
        Its owner joins or kills it. Returns the child."""
        if self._status is None:
            _kept[self.pid] = _live.pop(self.pid, self)
        return self

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
            self._status = _reap(self.pid)
            _live.pop(self.pid, None)
            _kept.pop(self.pid, None)
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


_LENGTH = struct.Struct("!Q")  # a Helper's messages: this length, then that many bytes of pickle


def _send_message(fd: int, data: bytes) -> None:
    _write_all(fd, _LENGTH.pack(len(data)) + data)


def _receive_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    """n bytes from fd; None at end-of-file; ChildTimeout once the deadline (None: none) has passed."""
    chunks, got = [], 0
    while got < n:
        if deadline is not None and not readable(fd, deadline - time.monotonic()):
            raise ChildTimeout("no answer within the deadline")
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _receive_message(fd: int, deadline: float | None = None) -> bytes | None:
    header = _receive_exact(fd, _LENGTH.size, deadline)
    return None if header is None else _receive_exact(fd, _LENGTH.unpack(header)[0], deadline)


def _helper_main(channel: int, mask: set) -> None:
    """Runs in the helper: never returns, never raises. Answers requests until its channel ends."""
    try:
        _as_forked_child(mask)
        # Objects of the parent's that own a descriptor closed below must never close its number again, now
        # another file's: no cyclic collection here (what a request leaves in cycles dies with the helper).
        gc.disable()
        highest = max([channel, *descriptors.candidates()])
        os.closerange(3, channel)
        os.closerange(channel + 1, highest + 1)
        _write_all(channel, b"R")
        _serve(channel)
    finally:
        os._exit(0)


_serving: list = []  # in a helper: the channel it answers on


def _serve(channel: int) -> None:
    _serving[:] = [channel]
    while True:
        request = _receive_message(channel)
        if request is None:
            break
        try:
            fn, args, kwargs = pickle.loads(request)
        except BaseException as e:
            data = _pickled((_RAISE, e, traceback.format_exc()))
        else:
            data, _ = _report_of(fn, args, kwargs)
        _send_message(channel, data)


# The new image replace_image() starts: the parent's module path first, then the rest in the harness.
_AFTER_EXEC = ("import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
               "from conformance.harness.children import _serve_after_exec; _serve_after_exec()")


def replace_image(restore: Callable, state: Any) -> None:
    """In a helper, within a request: execve a new Python interpreter in this process (same pid, the descriptors
    that are not close-on-exec kept) that calls restore(state), answers the request with what that returns and
    serves the same channel from then on. Returns only by raising, where the exec failed."""
    if not _serving:
        raise RuntimeError("replace_image() runs only in a Helper, within a request")
    channel = _serving[0]
    # The directory this package is in first: an editable install finds it by a hook that -S leaves out.
    path = [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
    path += [os.path.abspath(entry) for entry in sys.path]
    argv = [sys.executable, "-I", "-S", "-c", _AFTER_EXEC, str(channel), json.dumps(path),
            pickle.dumps((restore, state)).hex()]
    os.set_inheritable(channel, True)
    try:
        for number in _IGNORED_BY_PYTHON:
            signal.signal(number, signal.SIG_DFL)
        os.execv(sys.executable, argv)
    finally:
        os.set_inheritable(channel, False)
        for number in _IGNORED_BY_PYTHON:
            signal.signal(number, signal.SIG_IGN)


def _restored(payload: str) -> Any:
    restore, state = pickle.loads(bytes.fromhex(payload))
    return restore(state)


def _serve_after_exec() -> None:
    """The new image of replace_image(): never returns."""
    try:
        channel = int(sys.argv[1])
        os.set_inheritable(channel, False)
        gc.disable()  # as in _helper_main
        data, _ = _report_of(_restored, (sys.argv[3],), {})
        _send_message(channel, data)
        _serve(channel)
    finally:
        os._exit(0)


class Helper:
    """One forked process that runs fn(*args, **kwargs) on request, one request after another: a fixture that asks
    many questions of "another process" pays for one fork, not one per question.

    It keeps nothing of its parent's alive: before it answers anything it closes every descriptor it inherited but
    0-2 (an open file description and the locks on it, a socket's peer), and the parent waits for that. A request's
    fn must leave the helper as it found it (close what it opens, hold no lock once it returns): the next request
    sees what it leaves. fn and its arguments are pickled (fn by name), its result or exception comes back as from a
    Child. `call()` runs fn in a Child of its own instead, as run_in_child would, where the helper cannot: its
    arguments do not pickle, it has ended (it hung and was killed at the deadline, raising ChildTimeout, or crashed,
    raising ChildCrashed), or the caller is not the process that made it (a forked child that inherited it).

    It is kept across cases (as Child.keep_across_cases()): the leak check after each case neither kills it nor
    counts it as left behind, and whoever makes it closes it (close(), or use it as a context manager), e.g. a
    module-scoped fixture, made before the per-case check takes its snapshot of the descriptors.
    """

    def __init__(self, timeout: float = DEFAULT_DEADLINE) -> None:
        parent_end, child_end = (s.detach() for s in socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM))
        try:
            pid, mask = _fork()
        except ForkFailed:
            os.close(parent_end)
            os.close(child_end)
            raise
        if pid == 0:
            _helper_main(child_end, mask)
        try:
            os.close(child_end)
            self.pid, self._fd, self._owner, self._status = pid, parent_end, os.getpid(), None
            self._pending = False
            _kept[pid] = self
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        try:
            ready = _receive_exact(self._fd, 1, time.monotonic() + timeout)
        except BaseException:
            self.close()
            raise
        if ready != b"R":
            self.close()
            raise ChildCrashed(f"helper {pid} ended ({_wait_status(self._status)}) before it was ready")

    @property
    def alive(self) -> bool:
        return self._fd is not None

    def call(self, fn: Callable, *args: Any, timeout: float = DEFAULT_DEADLINE, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) run in the helper: its return value, or its exception raised again."""
        if self._fd is None or os.getpid() != self._owner:
            return run_in_child(fn, *args, timeout=timeout, **kwargs)
        if self._pending:
            raise RuntimeError(f"helper {self.pid} has a request pending: take its answer first")
        try:
            request = pickle.dumps((fn, args, kwargs))
        except Exception:
            return run_in_child(fn, *args, timeout=timeout, **kwargs)
        try:
            _send_message(self._fd, request)
            data = _receive_message(self._fd, time.monotonic() + timeout)
        except ChildTimeout:
            self.close(kill=True)
            raise ChildTimeout(f"helper {self.pid} did not answer within its deadline") from None
        except (BrokenPipeError, ConnectionResetError):  # it ended before the question or the answer
            data = None
        except BaseException:  # an answer that never came, or came late, must not be the next question's
            self.close(kill=True)
            raise
        return self._unpacked(data)

    @property
    def pending(self) -> bool:
        """Whether a request() waits for its answer to be taken."""
        return self._pending

    def request(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        """Ask fn(*args, **kwargs) of the helper without waiting: answer() takes the answer, answered() says whether it
        has come. For a call that may sleep (a lock waiter); nothing else may be asked until the answer is taken."""
        if self._fd is None or os.getpid() != self._owner or self._pending:
            raise RuntimeError(f"helper {self.pid} cannot take a request now")
        _send_message(self._fd, pickle.dumps((fn, args, kwargs)))
        self._pending = True

    def answered(self) -> bool:
        """Whether the answer to request() has come (or the helper has ended)."""
        return self._pending and readable(self._fd, 0)

    def answer(self, timeout: float = DEFAULT_DEADLINE) -> Any:
        """The answer to request(), as call() returns it. ChildTimeout if none comes within timeout: the request is
        still pending then, and the helper is left as it is (close(kill=True) ends it)."""
        if not self._pending:
            raise RuntimeError(f"helper {self.pid} has no request pending")
        if not readable(self._fd, timeout):
            raise ChildTimeout(f"helper {self.pid} did not answer within {timeout:g} s")
        self._pending = False
        try:
            data = _receive_message(self._fd, time.monotonic() + DEFAULT_DEADLINE)
        except BaseException:
            self.close(kill=True)
            raise
        return self._unpacked(data)

    def _unpacked(self, data: bytes | None) -> Any:
        if data is None:
            self.close()
            raise ChildCrashed(f"helper {self.pid} {_wait_status(self._status)} before answering")
        kind, value, text = pickle.loads(data)
        if kind == _OK:
            return value
        raise value from RemoteTraceback(text)

    def close(self, kill: bool = False, timeout: float = DEFAULT_DEADLINE) -> None:
        """End the helper (its channel closed, it exits; killed at once with kill, or after timeout) and reap it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._pending = False
        if self._status is not None:
            return
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline, pause = time.monotonic() + timeout, REAP_FIRST_PAUSE
        while self._status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else (the run's last sweep): its status is lost
                pid, status = self.pid, 0
            if pid:
                self._status = status
            elif time.monotonic() >= deadline:
                os.kill(self.pid, signal.SIGKILL)
                self._status = _reap(self.pid)
            else:
                time.sleep(pause)
                pause = min(pause * 2, REAP_MAX_PAUSE)
        _kept.pop(self.pid, None)

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ForeignHelper(Helper):
    """A helper this process did not fork: one a Helper forked within a request (serve_forked), reached through a
    channel passed here. Its parent must ignore SIGCHLD, so that the kernel reaps it when it ends (POSIX XSI
    waitpid: children of a process that ignores SIGCHLD do not become zombies); close() waits until it has ended,
    seen as the end of its channel (no other process holds that), and must come before its parent's end, or it
    would be left to init. Never signalled once its channel has ended: its pid may be another process's by then."""

    def __init__(self, pid: int, channel: int, timeout: float = DEFAULT_DEADLINE) -> None:
        self.pid, self._fd, self._owner, self._status, self._pending = pid, channel, os.getpid(), None, False
        try:
            ready = _receive_exact(self._fd, 1, time.monotonic() + timeout)
        except BaseException:
            self.close(kill=True)
            raise
        if ready != b"R":
            self.close(kill=True)
            raise ChildCrashed(f"helper {pid} ended before it was ready")

    def close(self, kill: bool = False, timeout: float = DEFAULT_DEADLINE) -> None:
        if self._fd is None:
            return
        self._pending = False
        try:
            with socket.socket(fileno=os.dup(self._fd)) as end:
                end.shutdown(socket.SHUT_WR)  # it reads the end of its requests, and exits
            if kill or not self._ended(timeout):
                if not self._ended(0):
                    os.kill(self.pid, signal.SIGKILL)
                if not self._ended(timeout):
                    raise HarnessError(f"helper {self.pid} outlived SIGKILL")
        finally:
            os.close(self._fd)
            self._fd = None
        self._gone(timeout)
        self._status = 0  # reaped by the kernel for its parent: its status is not ours to know

    def _gone(self, timeout: float) -> None:
        """Wait until the kernel has reaped it: its channel ends when it closes its descriptors, a little before it
        exits, and a parent that ends first would leave it to init. Asked with signal 0 only: not a signal sent."""
        deadline, pause = time.monotonic() + timeout, REAP_FIRST_PAUSE
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(pause)
            pause = min(pause * 2, REAP_MAX_PAUSE)
        raise HarnessError(f"helper {self.pid} was not reaped: does its parent ignore SIGCHLD?")

    def _ended(self, timeout: float) -> bool:
        """Whether its channel ends within timeout (what it still sends is dropped)."""
        deadline = time.monotonic() + timeout
        while readable(self._fd, max(0.0, deadline - time.monotonic())):
            try:
                if not os.read(self._fd, 65536):
                    return True
            except ConnectionResetError:
                return True
        return False


def serve_forked(channel: int) -> None:
    """In a process a Helper just forked within a request: stop serving the parent's channel and serve `channel`
    instead, as a ForeignHelper's. Never returns."""
    try:
        if _serving:
            os.close(_serving[0])
        _write_all(channel, b"R")
        _serve(channel)
    finally:
        os._exit(0)


def live_children() -> set[int]:
    return set(_live)


def kept_children() -> set[int]:
    """The children made to outlive their case (Child.keep_across_cases(), Helper) and not reaped yet."""
    return set(_kept)


def kill_all() -> list[int]:
    """Kill and reap every child the harness started and nobody reaped; returns their pids."""
    leftover = sorted(_live)
    for pid in leftover:
        _live[pid].kill()
    return leftover
