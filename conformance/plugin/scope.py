"""Which tests of a session the plugin watches: the suite's own cases, and no one else's tests unless asked.

Installed, the plugin loads into every pytest session of its environment (the `pytest11` entry point). A watched test
gets the leak check around it (plugin/fixtures.py: a descriptor, child or temporary file it leaves is an `error`, and
is removed or killed), the case timeout (pytest-timeout's, settings.CASE_TIMEOUT, where the run sets none) and the
session's last sweep of child processes. Another project's tests get none of that: they run as they would without
the plugin. A test is watched when it is a conformance case (plugin/identity.is_case: the suite's package, or a module
that declares CONFORMANCE_AREA), or when the session's configuration asks for every test with the ini option
`conformance_scope = all` (as this project's own self-tests do).
"""

from __future__ import annotations

import os

import pytest

from .. import settings
from .identity import is_case

SCOPE_OPTION = "conformance_scope"
SCOPES = ("cases", "all")
WATCHING = pytest.StashKey[bool]()  # this process collected a watched test
WORKER_OUTPUT = "conformance_watching"  # a pytest-xdist worker's word to its controller, which collects nothing


def add_option(parser: pytest.Parser) -> None:
    parser.addini(SCOPE_OPTION, default="cases",
                  help="which tests get the conformance plugin's leak check, case timeout and last sweep of child "
                       "processes: 'cases' (the conformance cases only, the default) or 'all'")


def check(config: pytest.Config) -> None:
    if config.getini(SCOPE_OPTION) not in SCOPES:
        raise pytest.UsageError(f"{SCOPE_OPTION} = {config.getini(SCOPE_OPTION)!r}: use one of {', '.join(SCOPES)}")


def watched(item: pytest.Item) -> bool:
    return is_case(item) or item.config.getini(SCOPE_OPTION) == "all"


def watching(config: pytest.Config) -> bool:
    """This process collected a watched test, or watches every test. A pytest-xdist controller collects nothing: it
    learns from its workers (worker_watching) and from the cases' reports."""
    return config.stash.get(WATCHING, False) or config.getini(SCOPE_OPTION) == "all"


def worker_watching(node) -> bool:
    return bool(getattr(node, "workeroutput", {}).get(WORKER_OUTPUT))


def global_timeout(config: pytest.Config) -> bool:
    """The command line, PYTEST_TIMEOUT or an ini file sets pytest-timeout's timeout for every test."""
    return config.getoption("timeout", None) is not None or bool(os.environ.get("PYTEST_TIMEOUT")) \
        or bool(config.getini("timeout"))


def mark_watched(config: pytest.Config, items: list) -> None:
    """Note whether anything is watched, and give each watched test without a timeout of its own the case timeout
    (scaled), with the signal method, where the run sets no timeout for every test."""
    chosen = [item for item in items if watched(item)]
    config.stash[WATCHING] = bool(chosen)
    if hasattr(config, "workeroutput"):
        config.workeroutput[WORKER_OUTPUT] = bool(chosen)
    if not config.pluginmanager.has_plugin("timeout") or global_timeout(config):
        return
    mark = pytest.mark.timeout(settings.case_timeout(), method=settings.CASE_TIMEOUT_METHOD)
    for item in chosen:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(mark)
