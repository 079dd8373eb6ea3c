"""The pytest plugin: outcomes, observations, references, the leak check, and the report.

Registered through the `pytest11` entry point (and by the project's root conftest.py in a plain checkout); it watches
the suite's cases only, never another project's tests (`scope`). Each part has one job: `options` (command line and
configuration), `identity` (which tests are cases and their ids), `scope` (which tests are watched), `collection`
(checks before the run), `fixtures` (session directories, the leak check, observe, expected, documented),
`classify` (a phase's outcome, as pure functions), `results` (each phase's outcome into its test report), `collector`
(the report, on the controller), `junit` (each case's final outcome in --junitxml's file) and `ktap_stream` (KTAP as
the cases finish, on the controller). Under pytest-xdist each worker classifies its own cases and ships the result in
the test reports' user_properties; the controller collects every worker's reports and writes the one report.
"""

import pytest

from .. import stress
from ..harness import leaks
from . import interrupts, junit, ktap_stream, options, rundir
from .collection import pytest_collection_finish, pytest_collection_modifyitems, pytest_deselected
from .collector import ReportCollector
from .fixtures import (
    _conformance_dirs,
    _conformance_leak_check,
    conformance_stress_iteration,
    documented,
    expected,
    observe,
    workdir,
)
from .identity import case_id, is_case
from .options import pytest_addoption, target_dir
from .results import pytest_runtest_makereport
from .workers import WorkerStart


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    rundir.remove(config)  # the collector removed it already, unless the session never got that far


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    options.configure(config)
    rundir.make(config, target_dir(config))
    workers = None
    if not hasattr(config, "workerinput"):  # the controller, or the only process
        leaks.become_subreaper()  # before anything is orphaned: the last sweep finds it then
        config.pluginmanager.register(ReportCollector(config), "conformance-report")
        config.pluginmanager.register(junit.JunitOutcomes(config), "conformance-junit")
        ktap_stream.register(config)
        if getattr(config.option, "numprocesses", None):
            config.pluginmanager.register(rundir.WorkerInput(config), "conformance-run-dir")
            config.pluginmanager.register(WorkerStart(config), "conformance-worker-start")
            workers = leaks.child_pids
    config.pluginmanager.register(interrupts.InterruptRecorder(config, workers), "conformance-interrupts")
    if stress.iterations(config):
        config.pluginmanager.register(stress.Stress(config), "conformance-stress")


__all__ = [
    "_conformance_dirs",
    "_conformance_leak_check",
    "case_id",
    "conformance_stress_iteration",
    "documented",
    "expected",
    "is_case",
    "observe",
    "pytest_addoption",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
    "pytest_deselected",
    "pytest_unconfigure",
    "pytest_configure",
    "pytest_runtest_makereport",
    "target_dir",
    "workdir",
]
