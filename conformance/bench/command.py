"""What `conformance bench` runs: pytest on the perf cases with the suite's plugin and this package's, in one
process (the benchmarks must not compete with each other), writing an ordinary report; then the figures table."""

from __future__ import annotations

from pathlib import Path

from ..session import run_pytest
from . import CASES_FILE
from .table import figures, render_text


def run_bench(report_dir: Path, test_dir: str | None, quick: bool, suite_args) -> tuple[int, str | None]:
    """Run the benchmarks; pytest's exit status and the figures table (None if no report was written)."""
    pytest_args = [
        str(CASES_FILE),
        "-p", "conformance.bench.plugin",
        "--conformance-report", str(report_dir),
        "-p", "no:cacheprovider",
        "-p", "no:randomly",
        "-n", "0",
        "-q",
    ]
    if test_dir:
        pytest_args += ["--conformance-dir", test_dir]
    if quick:
        pytest_args.append("--bench-quick")
    pytest_args += [f"--bench-suite-arg={arg}" for arg in suite_args]
    status, report = run_pytest(pytest_args)
    if report is None:
        return status or 2, None
    return status, render_text(*figures(report))
