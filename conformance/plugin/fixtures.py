"""The fixtures every conformance case gets: a private session directory, the leak check around every case, a
directory of the case's own on the filesystem under test, and `observe` and `expected` for what the platform shows."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from ..harness import leaks
from ..harness.errors import HarnessError
from ..model import observation_property
from ..outcomes import Unsupported
from . import interrupts, rundir, scope
from .identity import case_parts, is_case
from .options import EXPECTATIONS

OBSERVATION_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")


@pytest.fixture(autouse=True)
def conformance_stress_iteration(request: pytest.FixtureRequest) -> int | None:
    """Which repetition of a race-prone case this is under --conformance-stress (parametrised there), else None."""
    return getattr(request, "param", None)


class _SessionDirs:
    """A private directory per pytest process, in the run's directory: `tmp` (becomes tempfile's directory) and
    `cases`."""

    def __init__(self, run_dir: str, name: str) -> None:
        self.root = tempfile.mkdtemp(prefix=f"{name}-", dir=run_dir)
        self.tmp = os.path.join(self.root, "tmp")
        self.cases = os.path.join(self.root, "cases")
        os.mkdir(self.tmp)
        os.mkdir(self.cases)
        # Traversable by any uid (not listable): a case's child that dropped privileges must reach the socket or
        # file its case made for it; each of those sets its own permissions.
        for path in (self.root, self.tmp, self.cases):
            os.chmod(path, 0o711)


@pytest.fixture(scope="session", autouse=True)
def _conformance_dirs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Made before any other fixture of a session that watches a test (plugin/scope), so that what a case module's
    fixtures make is in them; a session of other tests only gets None, and its $TMPDIR stays as it was."""
    if not scope.watching(request.config):
        yield None
        return
    # pytest's own tmp_path root is fixed first, so it is not made inside the directory the leak check watches.
    tmp_path_factory.getbasetemp()
    dirs = _SessionDirs(rundir.of(request.config), os.environ.get("PYTEST_XDIST_WORKER", "main"))
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = dirs.tmp
    os.environ["TMPDIR"] = dirs.tmp
    leaks.become_subreaper()
    yield dirs
    tempfile.tempdir = saved_tempdir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env
    shutil.rmtree(dirs.root, ignore_errors=True)


class LeakError(HarnessError):
    pass


@pytest.fixture(autouse=True)
def _conformance_leak_check(request: pytest.FixtureRequest, _conformance_dirs: _SessionDirs | None):
    """Set up first and torn down last, around every watched test (plugin/scope): nothing may outlive it. Any other
    test runs as if the plugin were not there."""
    if _conformance_dirs is None or not scope.watched(request.node):
        yield
        return
    tmp_before = leaks.snapshot(_conformance_dirs.tmp)
    cases_before = frozenset(os.listdir(_conformance_dirs.cases))
    yield
    interrupted = interrupts.stopping(request.config)
    problems = leaks.check(tmp_before, _conformance_dirs.tmp, descriptors=not interrupted)
    for name in sorted(set(os.listdir(_conformance_dirs.cases)) - cases_before):
        problems.append(f"case directory left behind: {name} (removed)")
        shutil.rmtree(os.path.join(_conformance_dirs.cases, name), ignore_errors=True)
    # An interrupted case is torn down at the session's end, where an exception is no one's to report: what it left
    # is cleaned up all the same, and the case is already an error for not finishing.
    if problems and not interrupted:
        raise LeakError("the test left things behind:\n  " + "\n  ".join(problems))


@pytest.fixture
def workdir(request: pytest.FixtureRequest, _conformance_dirs: _SessionDirs | None) -> Path:
    """An empty directory of the case's own on the filesystem under test, removed afterwards."""
    if _conformance_dirs is None:
        raise HarnessError("workdir is for conformance cases (see plugin/scope.py)")
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60] + "-"
    path = tempfile.mkdtemp(prefix=prefix, dir=_conformance_dirs.cases)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def _keys_of(request: pytest.FixtureRequest):
    """keys(name) -> (`<area>.<name>[params]`, `<area>.<name>`) for the requesting case."""
    if not is_case(request.node):
        raise HarnessError("observe and expected are for conformance cases")
    area, _, params = case_parts(request.node)

    def keys(name: str) -> tuple[str, str]:
        if not OBSERVATION_NAME.fullmatch(name):
            raise HarnessError(f"observation name {name!r}: use lower_case words separated by dots")
        return (f"{area}.{name}[{params}]" if params else f"{area}.{name}"), f"{area}.{name}"

    return keys


@pytest.fixture
def observe(request: pytest.FixtureRequest):
    """observe(name, value): record what the platform showed, as `<area>.<name>[params]` in the report."""
    keys = _keys_of(request)

    def record(name: str, value) -> None:
        key, _ = keys(name)
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise HarnessError(f"observation {name}: {value!r} is not a JSON scalar")
        request.node.user_properties.append(observation_property(key, value))

    return record


@pytest.fixture
def documented(request: pytest.FixtureRequest):
    """documented(key, default): the value the expectation files give the observation `key` (`<area>.<name>`, of any
    area) here, the filesystem's over the OS's, else default (the OS's, from platforms/). For a choice that a case's
    model takes as a parameter, such as whether flock and fcntl locks meet, which a network filesystem may decide
    otherwise than the OS's local ones."""
    expectations = request.config.stash[EXPECTATIONS]

    def value(key: str, default):
        entry = expectations.expected(key)
        return default if entry is None else entry.value

    return value


@pytest.fixture
def expected(request: pytest.FixtureRequest):
    """expected(name): the value this platform's expectation file says the observation `name` must have, where the
    references leave the choice to the platform (`[[expected]]`, for the case's parameters or for all of them). The
    case is `unsupported` where the file documents none: nothing says what this platform should show."""
    expectations, keys = request.config.stash[EXPECTATIONS], _keys_of(request)

    def value(name: str):
        exact, general = keys(name)
        entry = expectations.expected(exact) or expectations.expected(general)
        if entry is None:
            raise Unsupported(f"the expectation file documents no value of {general} for this platform")
        return entry.value

    return value
