"""The pytest plugin: outcomes, observations, references, the leak check, and the report.

Registered through the `pytest11` entry point (and by the project's root conftest.py in a plain checkout).
Under pytest-xdist each worker classifies its own cases and ships the result in the test reports'
user_properties; the controller collects every worker's reports and writes the one report.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from . import expectations as expectations_mod
from . import stress
from .harness import deadlines, leaks
from .outcomes import OUTCOMES, HarnessError, Unsupported
from .platforms import os_name

CASES_PACKAGE = "conformance.cases"
# A test module outside CASES_PACKAGE is a conformance case module too if it sets this to its area name.
AREA_VARIABLE = "CONFORMANCE_AREA"
AREA_PATTERN = re.compile(r"[a-z0-9_]+")
PROP_CASE = "conformance.case"
PROP_OUTCOME = "conformance.outcome"
PROP_OBSERVATION = "conformance.observation"
PROP_REFERENCES = "conformance.references"

# Worst first: a case's outcome is the worst of its phases.
_SEVERITY = ("error", "fail", "unexpected-pass", "deviation", "unsupported", "pass")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--conformance-dir", metavar="DIR", default=os.environ.get("CONFORMANCE_DIR") or None,
                    help="directory on the filesystem under test where cases make their files "
                         "(default: $CONFORMANCE_DIR, else $TMPDIR)")
    group.addoption("--conformance-report", metavar="DIR", default=None,
                    help="write <platform-id>.json, .md and .html into DIR at the end of the run")
    group.addoption("--conformance-strict", action="store_true", default=False,
                    help="an unexpected-pass fails the run (the expectation file needs updating)")
    group.addoption("--conformance-os", metavar="NAME", default=None,
                    help="load this OS's expectation file instead of the running OS's (for checking the files)")
    group.addoption("--conformance-expectations", metavar="FILE", default=None,
                    help="load this expectation file instead of the OS's (for trying a file out, and self-tests)")
    group.addoption("--conformance-stress", metavar="N", type=int, default=0,
                    help="run only the race-prone cases (@pytest.mark.race), each N times, and name every "
                         "iteration that differs from the first")
    group.addoption("--conformance-stress-seconds", metavar="S", type=float, default=120.0,
                    help="with --conformance-stress: skip the iterations left after S seconds (default 120)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "refs(*references): the standard text, man page or anchor test a case mirrors")
    config.addinivalue_line("markers", "race(what): a race-prone case, repeated by --conformance-stress N")
    if stress.iterations(config) < 0:
        raise pytest.UsageError("--conformance-stress N: N must be 0 (off) or more")
    if stress.iterations(config):
        config.pluginmanager.register(stress.Stress(config), "conformance-stress")
    name = config.getoption("conformance_os") or os_name()
    file = config.getoption("conformance_expectations")
    if file and not os.path.isfile(file):
        raise pytest.UsageError(f"--conformance-expectations {file}: no such file")
    if not file and config.getoption("conformance_os") and not expectations_mod.path_for(name).exists():
        raise pytest.UsageError(f"--conformance-os {name}: no expectation file {expectations_mod.path_for(name)}")
    try:
        if file:
            config._conformance_expectations = expectations_mod.Expectations(expectations_mod.load_file(Path(file)))
        else:
            config._conformance_expectations = expectations_mod.load(name)
    except expectations_mod.ExpectationError as e:
        raise pytest.UsageError(f"malformed expectation file: {e}") from None
    try:
        deadlines.parse_scale(os.environ.get(deadlines.ENV))
    except deadlines.BadScale as e:
        raise pytest.UsageError(str(e)) from None
    base = config.getoption("conformance_dir") or tempfile.gettempdir()
    if not os.path.isdir(base):
        raise pytest.UsageError(f"--conformance-dir {base}: not a directory")
    config._conformance_base = os.path.realpath(base)
    if not hasattr(config, "workerinput"):
        from .report.collect import ReportCollector

        collector = ReportCollector(config)
        config.pluginmanager.register(collector, "conformance-report")


# ---- case identity -------------------------------------------------------------------------------------------

def _declared_area(module) -> str | None:
    area = getattr(module, AREA_VARIABLE, None)
    return area if isinstance(area, str) else None


def is_case(item: pytest.Item) -> bool:
    """A test in CASES_PACKAGE, or in any module that declares its area with CONFORMANCE_AREA = "<area>"."""
    module = getattr(item, "module", None)
    if module is None:
        return False
    return module.__name__.startswith(CASES_PACKAGE + ".") or _declared_area(module) is not None


def case_parts(item: pytest.Item) -> tuple[str, str, str]:
    """(area, name, params): area from CONFORMANCE_AREA or the module test_<area>.py, params from the
    parametrisation id."""
    area = _declared_area(item.module)
    if area is None:
        area = item.module.__name__.rsplit(".", 1)[-1]
        area = area[len("test_"):] if area.startswith("test_") else area
    callspec = getattr(item, "callspec", None)
    return area, getattr(item, "originalname", item.name), callspec.id if callspec else ""


def case_id(item: pytest.Item) -> str:
    area, name, params = case_parts(item)
    return f"{area}/{name}[{params}]" if params else f"{area}/{name}"


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    cases = [item for item in items if is_case(item)]
    bad_areas = sorted({area for area, _, _ in map(case_parts, cases) if not AREA_PATTERN.fullmatch(area)})
    if bad_areas:
        raise pytest.UsageError("conformance areas must be lower_case words: " + ", ".join(map(repr, bad_areas)))
    missing = [item.nodeid for item in cases if not _references(item)]
    if missing:
        raise pytest.UsageError("conformance cases without @pytest.mark.refs(...): " + ", ".join(missing))


def _references(item: pytest.Item) -> list:
    refs = []
    for mark in item.iter_markers("refs"):
        refs.extend(str(r) for r in mark.args)
    return refs


# ---- fixtures ---------------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def conformance_stress_iteration(request: pytest.FixtureRequest) -> int | None:
    """Which repetition of a race-prone case this is under --conformance-stress (parametrised there), else None."""
    return getattr(request, "param", None)


class _SessionDirs:
    """A private directory per pytest process: `tmp` (becomes tempfile's directory) and `cases`."""

    def __init__(self, base: str) -> None:
        self.root = tempfile.mkdtemp(prefix="conformance-", dir=base)
        self.tmp = os.path.join(self.root, "tmp")
        self.cases = os.path.join(self.root, "cases")
        os.mkdir(self.tmp)
        os.mkdir(self.cases)
        # Traversable by any uid (not listable): a case's child that dropped privileges must reach the socket or
        # file its case made for it; each of those sets its own permissions.
        for path in (self.root, self.tmp, self.cases):
            os.chmod(path, 0o711)


@pytest.fixture(scope="session")
def _conformance_dirs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    # pytest's own tmp_path root is fixed first, so it is not made inside the directory the leak check watches.
    tmp_path_factory.getbasetemp()
    dirs = _SessionDirs(request.config._conformance_base)
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


@pytest.fixture(autouse=True)
def _conformance_leak_check(request: pytest.FixtureRequest, _conformance_dirs: _SessionDirs):
    """Set up first and torn down last, around every test: nothing may outlive it."""
    tmp_before = leaks.snapshot(_conformance_dirs.tmp)
    cases_before = frozenset(os.listdir(_conformance_dirs.cases))
    yield
    problems = leaks.check(tmp_before, _conformance_dirs.tmp)
    for name in sorted(set(os.listdir(_conformance_dirs.cases)) - cases_before):
        problems.append(f"case directory left behind: {name} (removed)")
        shutil.rmtree(os.path.join(_conformance_dirs.cases, name), ignore_errors=True)
    if problems:
        raise LeakError("the test left things behind:\n  " + "\n  ".join(problems))


class LeakError(HarnessError):
    pass


@pytest.fixture
def workdir(request: pytest.FixtureRequest, _conformance_dirs: _SessionDirs) -> Path:
    """An empty directory of the case's own on the filesystem under test, removed afterwards."""
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60] + "-"
    path = tempfile.mkdtemp(prefix=prefix, dir=_conformance_dirs.cases)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def observe(request: pytest.FixtureRequest):
    """observe(name, value): record what the platform showed, as `<area>.<name>[params]` in the report."""
    item = request.node
    if not is_case(item):
        raise HarnessError("observe is for conformance cases")
    area, _, params = case_parts(item)

    def record(name: str, value) -> None:
        if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", name):
            raise HarnessError(f"observation name {name!r}: use lower_case words separated by dots")
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise HarnessError(f"observation {name}: {value!r} is not a JSON scalar")
        key = f"{area}.{name}[{params}]" if params else f"{area}.{name}"
        item.user_properties.append((PROP_OBSERVATION, (key, value)))

    return record


# ---- outcome classification (runs where the test ran: worker or serial process) ---------------------------------

def _timeout_failure(excinfo) -> bool:
    return excinfo.errisinstance(pytest.fail.Exception) and str(excinfo.value).startswith("Timeout")


def classify(rep: pytest.TestReport, excinfo, deviation) -> tuple[str, str]:
    """The phase's outcome and reason, before expectations are applied to a pass or a fail."""
    if rep.passed:
        return "pass", ""
    if rep.skipped:
        reason = excinfo.value.reason if excinfo and isinstance(excinfo.value, Unsupported) else _skip_reason(rep)
        return "unsupported", reason
    message = _first_line(excinfo) if excinfo else "failed"
    if excinfo is None or excinfo.errisinstance(HarnessError) or _timeout_failure(excinfo):
        return "error", message
    if rep.when != "call":
        return "error", f"{rep.when} failed: {message}"
    return "fail", message


def _skip_reason(rep: pytest.TestReport) -> str:
    if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
        return str(rep.longrepr[2]).removeprefix("Skipped: ").removeprefix("unsupported: ")
    return "skipped"


def _first_line(excinfo) -> str:
    text = str(excinfo.value).strip()
    name = excinfo.type.__name__
    if not text:
        return name
    first = text.splitlines()[0]
    if excinfo.errisinstance(AssertionError) or excinfo.errisinstance(HarnessError):
        return first if len(text.splitlines()) == 1 else text[:2000]
    return f"{name}: {first}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    if not is_case(item):
        return
    cid = case_id(item)
    deviation = item.config._conformance_expectations.lookup(cid)
    kind, reason = classify(rep, call.excinfo, deviation)
    expectation = None
    if deviation is not None:
        expectation = {"outcome": "deviation", "reason": deviation.reason, "references": list(deviation.references)}
    if rep.when == "call" and deviation is not None:
        if kind == "fail":
            # A documented deviation: reported like an xfail, so CI stays green.
            kind, reason = "deviation", f"{deviation.reason} (observed: {reason})"
            rep.outcome, rep.wasxfail = "skipped", f"deviation: {deviation.reason}"
        elif kind == "pass":
            kind, reason = "unexpected-pass", f"documented deviation did not happen: {deviation.reason}"
            if item.config.getoption("conformance_strict"):
                rep.outcome, rep.longrepr = "failed", f"[unexpected-pass] {reason} ({deviation.source})"
            else:
                rep.wasxfail = f"deviation: {deviation.reason}"
    rep.user_properties.append((PROP_CASE, cid))
    rep.user_properties.append((PROP_OUTCOME, {"outcome": kind, "reason": reason, "expectation": expectation}))
    if rep.when == "setup":
        rep.user_properties.append((PROP_REFERENCES, _references(item)))


def worst(outcomes) -> str:
    present = set(outcomes)
    return next((o for o in _SEVERITY if o in present), "pass")


assert set(_SEVERITY) == set(OUTCOMES)
