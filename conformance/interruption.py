"""What stops a process of the run: the first SIGINT or SIGTERM raises, later ones are only noted.

SIGTERM's default action ends a process where it stands: no case unwinds, no child is killed, nothing is cleaned up,
no report is written. An `Interruption` raises `Terminated`, a KeyboardInterrupt, instead, so that the process unwinds
as it would for Ctrl-C. Kept free of pytest: `conformance run` installs one before pytest is even imported.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, TypeVar

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESEND_AFTER = 0.001  # seconds: a signal raised where Python had to drop it comes again, once that code has returned
MAX_POSTPONED = 1000  # signals sent again because they landed in pluggy (see handle), at most: then one raises there
T = TypeVar("T")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process was, so that the run unwinds as for Ctrl-C."""


class Interruption:
    """What stopped this process, if anything: the first SIGINT or SIGTERM raises, later ones are only noted."""

    def __init__(self, deferring: bool = True) -> None:
        self.signal: str | None = None  # the first signal's name
        self.stopping = False  # the run is being interrupted: a signal no longer raises
        # While pytest starts up (its plugins half made, its logging half set up), a signal waits: it is raised at
        # resume(), when the session can end cleanly with its report.
        self.deferring = deferring
        self.cleaning_up = False  # the run is ending anyway: a signal is noted, and must not cut the clean-up short
        self.previous: dict[int, object] = {}
        self.postponed = 0  # signals sent again because they landed where raising is unsafe
        self.in_hook = False  # inside the unraisable hook of _catch_if_lost, where a raise is dropped again

    def handle(self, number: int, frame) -> None:
        self.signal = self.signal or signal.Signals(number).name
        if self.stopping or self.cleaning_up or self.deferring:
            return  # let the clean-up finish, or the start-up reach a point where stopping is clean
        if (self.in_hook or _unsafe_to_interrupt(frame)) and self.postponed < MAX_POSTPONED:
            # pluggy's hook loop names a local it assigns after its `try` began: an exception raised in between
            # ends pytest with "UnboundLocalError: local variable 'teardowns'" (seen once in 80 random signals).
            # Inside the unraisable hook, an exception is dropped once more: the signal sent again from there can
            # land before the hook has returned, on a loaded machine (seen in 5 of 30 runs under Python 3.10).
            # The same signal comes again a moment later, to land somewhere that can unwind.
            self.postponed += 1
            self._resend_soon(number)
            return
        self._stop()

    def resume(self) -> None:
        """Signals raise from now on; one that arrived while they were deferred raises here."""
        self.deferring = False
        if self.signal and not (self.stopping or self.cleaning_up):
            self._stop()

    def start(self, start: Callable[[], T]) -> T:
        """start() (a Popen) with signals held back: one that lands inside Popen, after the fork, would leave a process
        that no one stops or waits for. The caller calls resume() once the process is where its clean-up will find
        it; a signal that came meanwhile raises there."""
        self.deferring = True
        try:
            return start()
        except BaseException:
            self.deferring = False
            raise

    def _stop(self) -> None:
        self.stopping = True
        error = Terminated() if self.signal == "SIGTERM" else KeyboardInterrupt()
        self._catch_if_lost(error)
        raise error

    def _catch_if_lost(self, error: KeyboardInterrupt) -> None:
        """Where the signal landed in a weakref callback or a finaliser (an import's module lock, a generator that the
        collector closes), Python can only print the exception and drop it: then the same signal is sent again, to be
        raised from the next ordinary frame, and nothing is printed. It is sent from a thread a moment later: sent
        here, its handler would run inside this hook, where the exception would be dropped again."""
        previous = sys.unraisablehook

        def hook(unraisable) -> None:
            if unraisable.exc_value is not error:
                previous(unraisable)
                return
            sys.unraisablehook = previous
            self.stopping = False
            self.in_hook = True
            try:
                self._resend_soon(signal.Signals[self.signal])
            finally:
                self.in_hook = False

        sys.unraisablehook = hook

    def _resend_soon(self, number: int) -> None:
        threading.Thread(target=self._resend_later, args=(number,), name="conformance-resend").start()

    def _resend_later(self, number: int) -> None:
        """The resending thread blocks both signals first: the kernel gives a signal sent to the process to a thread
        that does not block it when the main thread does (interrupts_held), and Python then runs the handler in the
        main thread, inside the step the mask was to protect (seen: the directory probe left behind). Blocked here,
        the signal waits for the main thread to unblock it."""
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPT_SIGNALS)
        time.sleep(RESEND_AFTER)
        self._resend(number)

    def _resend(self, number: int) -> None:
        """The signal again, unless it has been raised meanwhile or this Interruption no longer handles it."""
        if not self.stopping and getattr(signal.getsignal(number), "__self__", None) is self:
            os.kill(os.getpid(), number)

    @classmethod
    def of_this_process(cls) -> Interruption:
        """The Interruption that handles SIGINT here already, or a new one (not yet installed)."""
        current = signal.getsignal(signal.SIGINT)
        return current.__self__ if _is_interruption(current) else cls()

    def install(self) -> None:
        """Handle both signals in this process, from its main thread (the only one Python lets set handlers), over the
        default handlers or another Interruption's; a handler someone else installed is left alone, and so is this
        Interruption's own."""
        if threading.current_thread() is not threading.main_thread():
            return
        for number in INTERRUPT_SIGNALS:
            current = signal.getsignal(number)
            if getattr(current, "__self__", None) is self:
                continue
            if current in (signal.SIG_DFL, signal.default_int_handler, None) or _is_interruption(current):
                self.previous[number] = current
                signal.signal(number, self.handle)

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous.clear()

    def exit_status(self) -> int | None:
        """The shell's status for a process that a signal stopped: 128 + its number (130 SIGINT, 143 SIGTERM)."""
        return None if self.signal is None else 128 + int(signal.Signals[self.signal])


@contextlib.contextmanager
def interrupts_held():
    """SIGINT and SIGTERM held back for the body and raised after it, for a step that must not be cut in two (a file
    made and removed again). Two holds, because each covers what the other cannot:

    - The kernel's signal mask, for the default handlers. It is the calling thread's only: the kernel gives a signal
      sent to the process to another thread that does not block it, and Python runs the handler in the main thread
      all the same (seen: `conformance list`, stopped at its start, left its directory probe behind when the resend
      timer's thread took the signal).
    - So this process's Interruption, if it handles the signals, only notes one that comes meanwhile, wherever it is
      delivered, and raises it once the body is done (or leaves it deferred if it was deferring already)."""
    current = signal.getsignal(signal.SIGINT)
    interruption = current.__self__ if _is_interruption(current) else None
    was_deferring = interruption is not None and interruption.deferring
    if interruption is not None:
        interruption.deferring = True
    try:
        with _blocked(INTERRUPT_SIGNALS):
            yield
    finally:
        if interruption is not None and not was_deferring:
            interruption.resume()


@contextlib.contextmanager
def _blocked(signals):
    """``signals`` blocked in this thread for the body. The mask is read first, unchanged: pthread_sigmask runs the
    handlers of pending signals before it returns, so a raise from the call that blocks must find the mask restored."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# The standard library's lock wrappers cannot unwind from an exception raised inside them: raised in a Condition's
# __exit__ it leaves the lock released twice (seen once under Python 3.12: pytest-xdist's controller ended with
# "RuntimeError: release unlocked lock" in queue.put).
_LOCK_WRAPPERS = frozenset({threading.__file__, queue.__file__})


def run_reaped(argv: list, *, timeout: float | None = None, **popen) -> subprocess.CompletedProcess:
    """subprocess.run with its output captured as text, except that however it is left (a signal raised while it
    waits, a timeout) its child is killed and reaped before the exception goes on. run() itself, after a
    KeyboardInterrupt, kills the child and waits for it 0.25 s at most: a zombie is left until the Popen is collected,
    and a command interrupted on its way out leaves it to whoever adopts orphans."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()  # a killed child ends at once; a second signal here is only noted (see Interruption)
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _unsafe_to_interrupt(frame) -> bool:
    """Whether the frame a signal landed in is pluggy's own hook-calling code, which cannot unwind from an exception
    raised at any instruction (a raise there may find its locals unassigned), the standard library's threading and
    queue code, whose locks it would corrupt, or code that exec() runs from a string (see _in_exec_of_a_string)."""
    if frame is None:
        return False
    filename = frame.f_code.co_filename
    if filename in _LOCK_WRAPPERS or "/pluggy/" in filename.replace("\\", "/"):
        return True
    return _in_exec_of_a_string(frame)


def _in_exec_of_a_string(frame) -> bool:
    """Whether the frame is the top-level code of a string given to exec() or eval() (a namedtuple's or a dataclass's
    generated code, while it is made). A KeyboardInterrupt that leaves such a call marks the interpreter, which then
    ends by SIGINT at exit whoever catches the exception and whatever status it exits with (CPython's
    run_eval_code_obj sets _Py_UnhandledKeyboardInterrupt; seen under `python -m`: `conformance list` stopped by
    SIGINT ended killed by it, in 3 of 12 runs, instead of exiting with 130). Only the frame itself: an xdist worker
    runs its whole life under execnet's exec() of a string, and its signals must not all wait. A frame without a
    caller is `python -c`'s own program, which has the same name: a raise there is an ordinary one."""
    return (frame.f_code.co_filename == "<string>" and frame.f_code.co_name == "<module>"
            and frame.f_back is not None)


def _is_interruption(handler) -> bool:
    return isinstance(getattr(handler, "__self__", None), Interruption)
