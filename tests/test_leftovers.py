"""The whole conformance suite, run once through two pytest-xdist workers in random order (conftest.py's parallel
run, whose report test_real_report.py checks too), leaves nothing behind: no process that descends from the run, no
descriptor in this process, no file under the run's TMPDIR, no leak the plugin's check had to clean up, and (Linux,
as root) no UNIX socket in the fresh network namespace the run had to itself.

Cost, measured on 2 cores: about 3.5 s, the suite's 3 s plus the interpreters starting, for a run that
test_real_report.py uses too.
"""

from __future__ import annotations

import re

import nested_run
import pytest

from conformance.cases._graphs import LEFT_LISTED


@pytest.mark.timeout(900)  # its setup may wait for the serial run and then make this one: conftest.WALL bounds each
def test_the_whole_suite_leaves_no_process_descriptor_file_or_unix_socket(parallel_run):
    run = parallel_run
    alive, changed, files = run.survivors, run.descriptors, run.files
    assert not alive and not changed and not files, (
        f"left over after {run.wall:.1f} s: {len(alive)} processes {alive}, descriptors of this process that "
        f"changed {changed}, files under TMPDIR {files}")

    report = nested_run.report_of(run.report_dir)
    caught = nested_run.leak_findings(report.cases)
    assert not any(caught.values()), f"the leak check had to clean up after cases: {caught}"
    errors = {case.id: case.reason for case in report.cases if case.outcome == "error"}
    assert not errors and nested_run.status_explained(run.status, report), (
        f"exit status {run.status}, errors {errors}:\n{run.output[-3000:]}")

    if run.no_namespace is not None:
        pytest.skip(f"processes, descriptors and files checked; UNIX sockets not counted: {run.no_namespace}")
    sockets = run.unix_sockets
    # A collector that misses a graph leaves its sockets in the kernel whatever the suite does; the case that found it
    # failed and said how many, and those are the only ones that may remain.
    left = re.compile(re.escape(LEFT_LISTED).replace(r"\{\}", r"(\d+)"))
    leaked = sum(int(found) for case in report.cases if case.outcome == "fail" for found in left.findall(case.reason))
    remaining = {name: sockets["after"][name] - sockets["before"][name] for name in sockets["before"]}
    # Only the table's count is exact: a leaked socket keeps its closed peer's memory, which the protocols count.
    assert remaining["/proc/net/unix"] == leaked and (leaked or not any(remaining.values())), (
        f"UNIX sockets of the suite remain: {sockets}; the kernel's missed collections account for {leaked}")
    print(f"the suite took {run.wall:.1f} s; left over: 0 processes, 0 descriptors, 0 files; UNIX sockets in its "
          f"network namespace before {sockets['before']}, after {sockets['after']} ({leaked} left by the kernel)")
