"""Starting pytest-xdist's workers, on the controller.

They start with SIGINT and SIGTERM blocked, which they inherit across exec: a Ctrl-C meant for the run then waits for
each worker's handler (plugin/interrupts.py unblocks them) instead of killing its interpreter's startup with a
traceback, and the controller's own arrives the moment the workers have started. Workers that cannot start (the system
refuses the threads or processes they need, under RLIMIT_NPROC; a worker that dies starting) end the run in one line
naming why, not in pytest's internal error, and the collector still writes its report.
"""

from __future__ import annotations

import atexit
import resource
import signal

import pytest

from ..interruption import INTERRUPT_SIGNALS
from . import interrupts
from .classify import refused_resource

START_FAILED = pytest.StashKey[str]()
INTERRUPTED_WORKER = "keyboard-interrupt"  # the error pytest-xdist gives pytest_testnodedown for a stopped worker


class WorkerStart:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_testnodedown(self, node, error) -> None:
        """A worker that went down while the run is being stopped is not replaced. pytest-xdist replaces a crashed
        worker, and one that a signal stopped counts as crashed: its replacement would be started only to be shut down
        with the run, and execnet's bootstrap, cut off mid-way, prints a SyntaxError traceback (seen under Python
        3.9). Instead the run is shut down, as it is once the last worker is gone."""
        if error is None or not (error == INTERRUPTED_WORKER or interrupts.stopping(self.config)):
            return
        dsession = self.config.pluginmanager.get_plugin("dsession")
        if dsession is not None and hasattr(dsession, "_clone_node") and hasattr(dsession, "triggershutdown"):
            dsession._clone_node = lambda node: dsession.triggershutdown()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionstart(self, session: pytest.Session):
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPT_SIGNALS)
        try:
            outcome = yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        error = outcome.exception
        if isinstance(error, Exception):
            message = f"pytest-xdist could not start its workers: {type(error).__name__}: {error}"
            why = refused_resource(error) or _process_limit()
            self.config.stash[START_FAILED] = message + (f"; {why}" if why else "")
            outcome.force_exception(pytest.exit.Exception(self.config.stash[START_FAILED],
                                                           returncode=pytest.ExitCode.TESTS_FAILED))


def _process_limit() -> str:
    """The limit on this user's processes and threads where one is set: the likely reason a worker died starting."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft == resource.RLIM_INFINITY:
        return ""
    return f"this user may have no process or thread left under its limit (RLIMIT_NPROC {soft})"


def forget_unstarted(config: pytest.Config) -> None:
    """The workers that started before one could not: killed by the controller's sweep, and kept from execnet's exit
    handler, which would need the very threads the system refuses and print a traceback for each."""
    group = getattr(getattr(config.pluginmanager.get_plugin("dsession"), "nodemanager", None), "group", None)
    cleanup = getattr(group, "_cleanup_atexit", None)
    if cleanup is not None:
        atexit.unregister(cleanup)


def start_failure(config: pytest.Config) -> str | None:
    return config.stash.get(START_FAILED, None)
