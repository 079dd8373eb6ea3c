"""The settings of a run that several entry points share (`conformance run`, `conformance bench`, `conformance
kernels`, ci/soak, the pytest plugin), each defined once with its bounds, and the one place that checks them: a bad
value is a BadSetting whose message is one line naming the option (or the environment variable) and what to fix.

Every check is cheap (a parse, a stat, at most one file made and removed at once), so that bad input is found in
milliseconds, before any work starts.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import tempfile
from pathlib import Path

from .harness import deadlines
from .interruption import interrupts_held

CASES_DIR = Path(__file__).resolve().parent / "cases"
DEFAULT_REPORT_DIR = "reports/runs"
TARGET_DIR_VARIABLE = "CONFORMANCE_DIR"  # the filesystem under test, for CI jobs that cannot pass --dir
# The variables Python's tempfile consults, in its order; it silently skips an unusable one.
TEMP_DIR_VARIABLES = ("TMPDIR", "TEMP", "TMP")

# The backstop (pytest-timeout, signal method) for a case that hangs despite the harness's own deadlines: the
# exception unwinds through the case, whose context managers kill and reap its children. Stretched like every
# deadline by CONFORMANCE_DEADLINE_SCALE.
CASE_TIMEOUT = 120.0
CASE_TIMEOUT_METHOD = "signal"

# pytest-xdist workers: each is an interpreter of its own, so a typo such as -n 100000 would start that many.
# More than four per CPU only makes the cases compete; at least 8 so that a small machine can still oversubscribe.
WORKERS_PER_CPU = 4
MIN_WORKERS_LIMIT = 8
WORKER_WORDS = ("auto", "logical")  # pytest-xdist's own: one per CPU, one per logical CPU

# --stress N: each of the ~180 race-prone cases becomes N tests, and pytest holds every collected test in memory: at
# 200 that is 36,600 tests, collected in about 4 s and ~170 MB (measured); five times more takes most of a gigabyte.
MAX_STRESS_ITERATIONS = 200
# --stress-seconds: a day, a generous overnight hunt; the budget must be a finite time.
MAX_STRESS_SECONDS = 86400.0
DEFAULT_STRESS_SECONDS = 120.0
MAX_EXPLORE_SECONDS = 86400.0
DEFAULT_EXPLORE_SECONDS = 60.0
MAX_SEED = 10**18 - 1  # whole_number reads at most 18 digits


_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")  # ASCII digits only (int() would take "1_000" and other scripts' digits)


class BadSetting(ValueError):
    """A setting that cannot be used; the message is one line naming it."""


def deadline_scale() -> float:
    """CONFORMANCE_DEADLINE_SCALE, checked."""
    try:
        return deadlines.parse_scale(os.environ.get(deadlines.ENV))
    except deadlines.BadScale as e:
        raise BadSetting(str(e)) from None


def case_timeout() -> float:
    return CASE_TIMEOUT * deadline_scale()


# ---- numbers ----------------------------------------------------------------------------------------------------

def whole_number(value: object, option: str, low: int, high: int) -> int:
    """``value`` (text or a number) as an integer from ``low`` to ``high``."""
    text = str(value).strip()
    number = int(text) if _WHOLE.fullmatch(text) else None
    if number is None or not low <= number <= high:
        raise BadSetting(f"{option} {value}: not a whole number from {low} to {high}")
    return number


def seconds(value: object, option: str, high: float) -> float:
    """``value`` as a number of seconds above 0 and at most ``high``; nan and inf are refused."""
    try:
        number = float(str(value).strip())
    except ValueError:
        number = math.nan
    if not 0 < number <= high:  # also refuses nan
        raise BadSetting(f"{option} {value}: not a number of seconds above 0 and at most {high:g}")
    return number


def workers_limit(cpus: int | None = None) -> int:
    """The most pytest-xdist workers a run may ask for on a machine of ``cpus`` CPUs (default: this one's)."""
    return max(MIN_WORKERS_LIMIT, WORKERS_PER_CPU * (cpus or os.cpu_count() or 1))


def workers(value: object, option: str = "-n", cpus: int | None = None) -> str:
    """pytest-xdist's -n: auto, logical, 0 (one process) or 1 to workers_limit(cpus); returned as pytest takes it."""
    text = str(value).strip()
    if text in WORKER_WORDS:
        return text
    limit = workers_limit(cpus)
    try:
        return str(whole_number(text, option, 0, limit))
    except BadSetting:
        raise BadSetting(f"{option} {value}: not auto, logical, 0 (one process) or a number of workers from 1 to "
                         f"{limit} (4 per CPU, at least 8)") from None


def stress_iterations(value: object, option: str) -> int:
    """--stress N: how many times each race-prone case runs; 0 is off."""
    return whole_number(value, option, 0, MAX_STRESS_ITERATIONS)


def stress_seconds(value: object, option: str) -> float:
    """--stress-seconds S: the time budget of a stress run."""
    return seconds(value, option, MAX_STRESS_SECONDS)


def explore_seconds(value: object, option: str) -> float:
    """--seconds N of `conformance explore`: the time budget of its random part; 0 (the plugin's default) is the
    fixed part only, as in every run."""
    if str(value).strip() in ("0", "0.0"):
        return 0.0
    return seconds(value, option, MAX_EXPLORE_SECONDS)


def explore_seed(value: object, option: str) -> int:
    """--seed S of `conformance explore`: what its random graphs are drawn from."""
    return whole_number(value, option, 0, MAX_SEED)


# ---- directories ------------------------------------------------------------------------------------------------

def _named(option: str, path: str) -> str:
    # "--dir /x" for an option, "CONFORMANCE_DIR=/x" for an environment variable.
    return f"{option} {path}" if option.startswith("-") else f"{option}={path}"


def _usable_problem(path: str) -> str:
    """Why no file can be made in the directory ``path``, or "" if one can. Making one (and removing it at once) is
    the only test that every cause answers: modes, ACLs, a read-only mount, root on a pseudo-filesystem."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such directory"
    except OSError as e:
        return f"cannot be used: {e.strerror}"
    if not stat.S_ISDIR(mode):
        return "not a directory"
    with interrupts_held():  # a command stopped while it probes must not leave the probe behind
        try:
            fd, probe = tempfile.mkstemp(dir=path, prefix=".conformance-probe-")
        except OSError as e:
            return f"not writable: {e.strerror}"
        try:
            os.close(fd)
        finally:  # a default handler can still raise here, if another thread took the signal
            with contextlib.suppress(OSError):
                os.unlink(probe)
    return ""


def writable_dir(path: str, option: str, create: bool = False) -> Path:
    """``path`` as an absolute directory in which files can be made; with ``create``, made first if it is
    missing (as the writer would make it at the end)."""
    if path == "":
        raise BadSetting(f"{_named(option, path)}: an empty path names no directory")
    if "\0" in path:
        raise BadSetting(f"{_named(option, path)}: a path cannot hold a NUL byte")
    if create and not os.path.lexists(path):
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise BadSetting(f"{_named(option, path)}: cannot be made: {e.strerror}") from None
    problem = _usable_problem(path)
    if problem:
        raise BadSetting(f"{_named(option, path)}: {problem}")
    return Path(os.path.abspath(path))


def target_dir(path: str | None, option: str) -> str | None:
    """The directory of the filesystem under test, resolved: ``path`` (given as ``option``), else CONFORMANCE_DIR;
    None when neither is set (the cases then use the temporary directory). The message names where the value came
    from."""
    if path is None:
        path, option = os.environ.get(TARGET_DIR_VARIABLE) or None, TARGET_DIR_VARIABLE
    if path is None:
        return None
    return os.path.realpath(writable_dir(path, option))


def report_dir(path: str, option: str) -> Path:
    """Where a report goes: a writable directory, made now if it is missing, so that a run never ends unable to
    write what it measured."""
    return writable_dir(path, option, create=True)


def temp_dir() -> None:
    """The temporary directory the environment names must be usable: Python would silently use /tmp instead, and
    the run's files, and the filesystem under test by default, would move with it."""
    for variable in TEMP_DIR_VARIABLES:
        value = os.environ.get(variable)
        if value:  # tempfile skips an empty one too
            problem = _usable_problem(value)
            if problem:
                raise BadSetting(f"{variable}={value}: {problem} (Python would silently use another directory)")
            return
