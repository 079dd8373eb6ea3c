"""A pytest session of the suite in this process, and the report it built, handed back through the config's stash
(as pytest's own plugins keep their state): nothing is read back from the report directory."""

from __future__ import annotations

from .model import Report

# This package is imported before pytest loads it as a plugin, so pytest cannot rewrite its asserts and would say
# so in a warning on every run; the plugin's asserts need no rewriting.
QUIET_REWRITE = ("-W", "ignore::pytest.PytestAssertRewriteWarning")


class _Keeper:
    """Takes the report out of the session's stash as the session ends."""

    report: Report | None = None

    def pytest_unconfigure(self, config) -> None:
        from .plugin.collector import REPORT

        self.report = config.stash.get(REPORT, None)


def run_pytest(args: list[str]) -> tuple[int, Report | None]:
    """pytest's exit status for `args`, and the report the suite's plugin built (None if it built none)."""
    import pytest

    keeper = _Keeper()
    status = int(pytest.main([*args, *QUIET_REWRITE], plugins=[keeper]))
    return status, keeper.report
