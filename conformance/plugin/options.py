"""The plugin's command-line options, and what the run's configuration makes of them before any case runs: the
markers, the expectation file, the directory under test and which tests are watched."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from .. import expectations as expectations_mod
from .. import settings
from ..platforms import os_name
from ..platforms.detect import filesystem_type
from . import scope

EXPECTATIONS = pytest.StashKey[expectations_mod.Expectations]()
TARGET_DIR = pytest.StashKey[str]()  # where the cases make their files: the filesystem under test


def pytest_addoption(parser: pytest.Parser) -> None:
    scope.add_option(parser)
    group = parser.getgroup("conformance")
    group.addoption("--conformance-dir", metavar="DIR", default=None,
                    help="directory on the filesystem under test where cases make their files "
                         f"(default: ${settings.TARGET_DIR_VARIABLE}, else $TMPDIR)")
    group.addoption("--conformance-report", metavar="DIR", default=None,
                    help="write <platform-id>.json, .md, .html and .ktap into DIR at the end of the run")
    group.addoption("--conformance-ktap", metavar="FILE", default=None,
                    help="write KTAP version 1 to FILE as the cases finish, each line flushed (- for standard "
                         "output), so that a run that is stopped or killed leaves a log kernel CI can parse")
    group.addoption("--conformance-strict", action="store_true", default=False,
                    help="an unexpected-pass, or an expectation entry that matches no case, fails the run")
    group.addoption("--conformance-os", metavar="NAME", default=None,
                    help="load this OS's expectation file instead of the running OS's (for checking the files)")
    group.addoption("--conformance-expectations", metavar="FILE", default=None,
                    help="load this expectation file instead of the OS's (for trying a file out, and self-tests)")
    # Checked, and replaced by their numbers, in configure(): one definition of each bound, in settings.
    group.addoption("--conformance-stress", metavar="N", default=0,
                    help="run only the race-prone cases (@pytest.mark.race), each N times (at most "
                         f"{settings.MAX_STRESS_ITERATIONS}), and name every iteration that differs from the first")
    group.addoption("--conformance-stress-seconds", metavar="S", default=settings.DEFAULT_STRESS_SECONDS,
                    help="with --conformance-stress: skip the iterations left after S seconds (default "
                         f"{settings.DEFAULT_STRESS_SECONDS:g}, at most {settings.MAX_STRESS_SECONDS:g})")
    group.addoption("--conformance-explore-seconds", metavar="S", default=0,
                    help="the exploration cases also check random larger graphs for S seconds in all (default 0: "
                         "only their fixed part); see `conformance explore`")
    group.addoption("--conformance-explore-seed", metavar="N", default=None,
                    help="with --conformance-explore-seconds: the seed the random graphs are drawn from")


def target_dir(config: pytest.Config) -> str:
    """The directory where cases make their files (the filesystem under test), resolved."""
    return config.stash[TARGET_DIR]


def _expectations(config: pytest.Config, directory: str) -> expectations_mod.Expectations:
    """The OS's expectations, with those of the filesystem under test (``directory``'s) over them."""
    name = config.getoption("conformance_os") or os_name()
    file = config.getoption("conformance_expectations")
    if file and not os.path.isfile(file):
        raise pytest.UsageError(f"--conformance-expectations {file}: no such file")
    if not file and config.getoption("conformance_os") and not expectations_mod.path_for(name).exists():
        raise pytest.UsageError(f"--conformance-os {name}: no expectation file {expectations_mod.path_for(name)}")
    try:
        return expectations_mod.load_file(Path(file)) if file else \
            expectations_mod.load(name, filesystem_type(directory))
    except expectations_mod.ExpectationError as e:
        raise pytest.UsageError(f"malformed expectation file: {e}") from None


def case_timeout(config: pytest.Config) -> float | None:
    """The seconds pytest-timeout gives each case in this run, found as it finds them (a case's own mark aside); None
    without such a bound. Where the run sets none for every test, the cases get settings.CASE_TIMEOUT (plugin/scope)."""
    if not config.pluginmanager.has_plugin("timeout"):
        return None
    for value in (config.getoption("timeout", None), os.environ.get("PYTEST_TIMEOUT"), config.getini("timeout")):
        if value not in (None, ""):
            try:
                seconds = float(value)
            except ValueError:
                return None  # pytest-timeout itself refuses it
            return seconds if seconds > 0 else None
    return settings.case_timeout()


def _check_settings(config: pytest.Config) -> str | None:
    """The settings' own checks (as `conformance run` makes them), the stress numbers stored as numbers; the
    directory under test, if one is named."""
    option = config.option
    settings.deadline_scale()
    settings.temp_dir()
    option.conformance_stress = settings.stress_iterations(option.conformance_stress, "--conformance-stress")
    option.conformance_stress_seconds = settings.stress_seconds(option.conformance_stress_seconds,
                                                                "--conformance-stress-seconds")
    option.conformance_explore_seconds = settings.explore_seconds(option.conformance_explore_seconds,
                                                                  "--conformance-explore-seconds")
    if option.conformance_explore_seed is not None:
        option.conformance_explore_seed = settings.explore_seed(option.conformance_explore_seed,
                                                                "--conformance-explore-seed")
    directory = settings.target_dir(option.conformance_dir, "--conformance-dir")
    if option.conformance_report and not hasattr(config, "workerinput"):  # only the controller writes it; made last
        settings.report_dir(option.conformance_report, "--conformance-report")
    return directory


def configure(config: pytest.Config) -> None:
    """Check the options and keep what they select in the config's stash; a bad one is a one-line UsageError."""
    config.addinivalue_line("markers", "refs(*references): the standard text, man page or anchor test a case mirrors")
    config.addinivalue_line("markers", "race(what): a race-prone case, repeated by --conformance-stress N")
    try:
        directory = _check_settings(config)
    except settings.BadSetting as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[TARGET_DIR] = directory or os.path.realpath(tempfile.gettempdir())
    config.stash[EXPECTATIONS] = _expectations(config, config.stash[TARGET_DIR])
    scope.check(config)
