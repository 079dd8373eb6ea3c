"""SIGINT and SIGTERM end a run within a bounded time, in every process of it, as Ctrl-C would.

SIGTERM raises `Terminated` (conformance/interruption.py), a KeyboardInterrupt, so that pytest handles it as it
handles Ctrl-C: the case under way unwinds (its context managers kill and reap its children), the session's fixtures
are torn down, and the collector writes the report, marked interrupted. The first signal is remembered; any later one
is only noted, so that a second Ctrl-C cannot cut the clean-up short (the clean-up is bounded: xdist gives its workers
10 s, and the last sweep kills what is left). On the controller, the signal is passed on to the workers at once, so that
they stop the case they are running instead of finishing their share of the suite.

`conformance run` installs the same handling before it starts pytest (see `Interruption`), so that a signal that lands
while pytest starts up is handled the same way; the plugin takes over for the session and gives it back afterwards.
"""

from __future__ import annotations

import os
import signal
import types

import pytest

from ..interruption import INTERRUPT_SIGNALS, Interruption, Terminated, _is_interruption
from . import scope

WORKER_OUTPUT = "conformance_signal"  # where a pytest-xdist worker tells the controller which signal stopped it


INTERRUPTION = pytest.StashKey[Interruption]()
STOPPED_BECAUSE = pytest.StashKey[str]()  # pytest-xdist stopped the session early (-x, --maxfail): its words


def of(config: pytest.Config) -> Interruption:
    return config.stash[INTERRUPTION]


def stopping(config: pytest.Config) -> bool:
    """The session is being interrupted (a signal here, or a worker's under pytest-xdist)."""
    return INTERRUPTION in config.stash and of(config).stopping


def stopped_because(config: pytest.Config) -> str | None:
    return config.stash.get(STOPPED_BECAUSE, None)


def pass_on(name: str, pids) -> None:
    """Send the signal to these processes (the controller's workers), ignoring any already gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.Signals[name])
        except ProcessLookupError:
            pass


class InterruptRecorder:
    """Registered in every process for the session: handles the signals, notes the interruption, and in a
    pytest-xdist worker tells the controller which signal it was."""

    def __init__(self, config: pytest.Config, workers=None) -> None:
        self.config = config
        self.workers = workers  # on a pytest-xdist controller: a function that lists the workers' pids
        # Under `conformance run` the process handles the signals already: the session shares that record, so that
        # a signal which stops pytest before the session began is known to the command afterwards.
        current = signal.getsignal(signal.SIGINT)
        self.shared = _is_interruption(current)
        config.stash[INTERRUPTION] = current.__self__ if self.shared else Interruption()
        of(config).install()
        if hasattr(config, "workerinput"):
            # The controller started this worker with both signals blocked (plugin/workers.py): one that arrived
            # while the interpreter started is delivered now, to the handler, not as a traceback from an import.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPT_SIGNALS)

    @pytest.hookimpl(tryfirst=True)  # before the terminal reporter formats the traceback
    def pytest_keyboard_interrupt(self, excinfo) -> None:
        mend_line_numbers(excinfo.value)
        interruption = of(self.config)
        interruption.stopping = True
        if not isinstance(excinfo.value, KeyboardInterrupt):
            return  # pytest.exit(): the run stops itself, and says why
        if _xdist_stop(excinfo.value):
            self.config.stash[STOPPED_BECAUSE] = str(excinfo.value)
            return
        # A KeyboardInterrupt that did not come through the handler (xdist's Interrupted on the controller when a
        # worker was stopped) leaves the signal to the worker's word (from_worker); one raised the default way, by
        # a handler that is not ours, is SIGINT.
        if interruption.signal is None and not _from_a_worker(excinfo.value):
            interruption.signal = "SIGTERM" if isinstance(excinfo.value, Terminated) else "SIGINT"
        if self.workers is not None:
            pass_on(interruption.signal or "SIGINT", self.workers())

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """The session has begun: from here an interrupt ends it cleanly, with the collector's report."""
        of(self.config).resume()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """A process that collected nothing the plugin watches (plugin/scope) gives the signals back to the handlers
        it found: another project's tests see SIGTERM as they would without the plugin. (A pytest-xdist controller
        collects nothing and keeps them, to pass them on to its workers.)"""
        controller = self.workers is not None
        if not controller and not self.shared and not scope.watching(self.config):
            of(self.config).restore()

    @pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker sends its workeroutput
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The session's end is clean-up (fixtures torn down, workers stopped, the last sweep, the report): a signal
        that lands now is noted, and the report says so, but it does not cut that short."""
        interruption = of(self.config)
        interruption.cleaning_up = True
        if interruption.signal and hasattr(self.config, "workerinput"):
            self.config.workeroutput[WORKER_OUTPUT] = interruption.signal

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if not self.shared:  # the command that installed a shared one keeps it to its end
            of(config).restore()


def _from_a_worker(error: BaseException) -> bool:
    # xdist's DSession raises xdist.dsession.Interrupted("<node> received keyboard-interrupt") on the controller.
    return type(error).__name__ == "Interrupted" and "keyboard-interrupt" in str(error)


def _xdist_stop(error: BaseException) -> bool:
    # The same exception ends a session that -x or --maxfail stopped ("stopping after 1 failures"): no signal.
    return type(error).__name__ == "Interrupted" and "keyboard-interrupt" not in str(error)


def from_worker(node) -> str | None:
    """The signal that stopped a finished pytest-xdist worker, if one did."""
    return getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)


def mend_line_numbers(exception: BaseException) -> None:
    """Give every entry of the exception's tracebacks (and of those it was raised from or during) a line number.

    A signal handler's exception can enter a frame at an instruction that has no line number, and Python (3.11 and
    later) then records the entry with tb_lineno None, printed as "line -1". pytest formats the KeyboardInterrupt's
    traceback assuming a number, and its TypeError would end the run with status 1 and a traceback instead of 130 and
    the report's one line. Such an entry is replaced by one that names the frame's current line, or its function's
    first; the traceback stays whole. The first entry cannot be replaced (nothing points to it) and is left as is.
    """
    seen = set()
    while exception is not None and id(exception) not in seen:
        seen.add(id(exception))
        entry = exception.__traceback__
        while entry is not None and entry.tb_next is not None:
            following = entry.tb_next
            if following.tb_lineno is None:
                frame = following.tb_frame
                line = frame.f_lineno if frame.f_lineno is not None else frame.f_code.co_firstlineno
                entry.tb_next = types.TracebackType(following.tb_next, frame, following.tb_lasti, line)
            entry = entry.tb_next
        exception = exception.__cause__ or exception.__context__
