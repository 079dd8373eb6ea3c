"""A pytest session of the suite in this process, and the report it built, handed back through the config's stash
(as pytest's own plugins keep their state): nothing is read back from the report directory."""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import time
from pathlib import Path

from .interruption import Interruption
from .model import Report

# This package is imported before pytest loads it as a plugin, so pytest cannot rewrite its asserts and would say
# so in a warning on every run; the plugin's asserts need no rewriting.
QUIET_REWRITE = ("-W", "ignore::pytest.PytestAssertRewriteWarning")


def _keeper():
    """A plugin that takes the report out of the session's stash as the session ends (pytest is imported by then)."""
    import pytest

    class Keeper:
        report: Report | None = None

        @pytest.hookimpl(trylast=True)  # after the collector, which reports a run that could not start at this point
        def pytest_unconfigure(self, config) -> None:
            from .plugin.collector import REPORT

            self.report = config.stash.get(REPORT, None)

    return Keeper()


def run_pytest(args: list[str], target: str | None = None, report_dir: str | None = None) -> tuple[int, Report | None]:
    """pytest's exit status for `args`, and the report the suite's plugin built (None if it built none).

    pytest's own temporary directory (tmp_path's) lives in one of this run's, removed afterwards, so that the run
    leaves nothing in $TMPDIR, however it ended; a --basetemp among `args` is left to pytest. SIGINT and SIGTERM are
    handled from the start, as the plugin handles them in the session, and stay handled (only noted) after it: a
    signal at any moment ends the run with 128 + its number; one that stops pytest before its session began leaves a
    report that says so in `report_dir`, if one is given (`target`: the directory under test, whose filesystem the
    report names).
    """
    interruption = Interruption.of_this_process()
    interruption.install()
    started, clock = datetime.datetime.now(datetime.timezone.utc), time.monotonic()
    basetemp = None if any(str(arg).startswith("--basetemp") for arg in args) else tempfile.mkdtemp(prefix="pytest-")
    keeper = None
    try:
        import pytest

        keeper = _keeper()
        extra = ["--basetemp", os.path.join(basetemp, "base")] if basetemp else []
        status = int(pytest.main([*args, *extra, *QUIET_REWRITE], plugins=[keeper]))
    except KeyboardInterrupt:
        status = 2  # pytest's own status for an interrupt, replaced below by the signal's
    finally:
        interruption.cleaning_up = True  # from now on a signal is noted: the process ends soon, with its status
        if basetemp:
            shutil.rmtree(basetemp, ignore_errors=True)
    report = keeper.report if keeper is not None else None
    if interruption.signal and report is None and report_dir is not None:
        from .plugin.collector import report_of_an_interrupted_start
        from .report.write import write_report

        report = report_of_an_interrupted_start(target or tempfile.gettempdir(), interruption.signal,
                                                [str(arg) for arg in args], started, time.monotonic() - clock)
        write_report(report, Path(report_dir))
    if interruption.signal:
        status = interruption.exit_status()
    return status, report
