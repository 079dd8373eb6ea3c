"""What `conformance bench` runs: pytest on the perf cases with the suite's plugin and this package's, in one
process (the benchmarks must not compete with each other), writing an ordinary report; then the figures table."""

from __future__ import annotations

from pathlib import Path

from ..cli import QUIET_REWRITE
from ..harness.deadlines import deadline
from . import CASES_FILE
from .table import figures, render_text

# The backstop for a benchmark that hangs; the suite runs carry a longer one of their own.
CASE_TIMEOUT = deadline(120.0)


class _Report:
    """Keeps the report the suite's plugin built at the end of the session."""

    report: dict | None = None

    def pytest_unconfigure(self, config) -> None:
        collector = config.pluginmanager.get_plugin("conformance-report")
        self.report = getattr(collector, "report", None)


def run_bench(report_dir: Path, test_dir: str | None, quick: bool, suite_args) -> tuple[int, str | None]:
    """Run the benchmarks; pytest's exit status and the figures table (None if no report was written)."""
    import pytest

    pytest_args = [
        str(CASES_FILE),
        "-p", "conformance.bench.plugin",
        "--conformance-report", str(report_dir),
        "-p", "no:cacheprovider",
        "-p", "no:randomly",
        "-n", "0",
        "-o", f"timeout={CASE_TIMEOUT:g}",
        "-o", "timeout_method=signal",
        *QUIET_REWRITE,
        "-q",
    ]
    if test_dir:
        pytest_args += ["--conformance-dir", test_dir]
    if quick:
        pytest_args.append("--bench-quick")
    pytest_args += [f"--bench-suite-arg={arg}" for arg in suite_args]
    kept = _Report()
    status = int(pytest.main(pytest_args, plugins=[kept]))
    if kept.report is None:
        return status or 2, None
    return status, render_text(*figures(kept.report))
