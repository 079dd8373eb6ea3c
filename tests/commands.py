"""The `conformance` command (and plain pytest) run as a user runs them, for the self-tests of their behaviour: exit
status, output, and how fast bad input is refused.

"Fast" is the processor time the command took (its user and system time, as the kernel counts it for a reaped
child), not the wall time: refusing without doing the work (collecting the suite, starting workers) costs a fraction
of a second of processor time however busy the machine is, while the wall time on a loaded 2-core machine was seen
at 1.6 to 2.9 s for the same refusal."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # a command that should finish; one that should refuse its input must do so within BAD_INPUT_SECONDS
BAD_INPUT_SECONDS = 1.0  # of processor time


@dataclass
class Done:
    status: int
    out: str
    err: str
    seconds: float  # processor time: user and system
    wall: float


def environment(**changes: str | None) -> dict:
    """This process's environment without the suite's settings, with ``changes`` (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "PYTEST_XDIST_"))}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _children_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list, env: dict | None, timeout: float) -> Done:
    started, spent = time.monotonic(), _children_time()
    done = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, errors="backslashreplace",
                          timeout=timeout, check=False, env=environment() if env is None else env, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    return Done(done.returncode, done.stdout, done.stderr, _children_time() - spent, time.monotonic() - started)


def conformance(*args, env: dict | None = None, timeout: float = TIMEOUT, prefix: tuple = (),
                module: str = "conformance") -> Done:
    """``python -m conformance ARGS`` (or another ``module``: conformance.soak); ``prefix`` runs it under another
    program (unshare, for a read-only mount)."""
    return _run([*prefix, sys.executable, "-m", module, *args], env, timeout)


def pytest_run(*args, env: dict | None = None, prefix: tuple = ()) -> Done:
    """Plain ``python -m pytest ARGS`` on the suite's cases, as a user runs it."""
    return _run([*prefix, sys.executable, "-m", "pytest", str(ROOT / "conformance" / "cases"), "-q",
                 "-p", "no:cacheprovider", "-p", "no:randomly", *args], env, TIMEOUT)


def refused(done: Done, subcommand: str | None) -> str:
    """Assert that the command refused its input as it must: exit status 2, nothing on standard output, one line on
    standard error, within BAD_INPUT_SECONDS of processor time; that line's message, after
    ``conformance: <subcommand>: ``."""
    prefix = f"conformance: {subcommand}: " if subcommand else "conformance: "
    assert (done.status, done.out) == (2, ""), (done.status, done.out, done.err)
    assert done.err.count("\n") == 1 and done.err.endswith("\n") and done.err.startswith(prefix), done.err
    assert "Traceback" not in done.err
    assert done.seconds < BAD_INPUT_SECONDS, f"{done.seconds:.2f} s of processor time to refuse: {done.err}"
    return done.err[len(prefix):-1]


def pytest_refused(done: Done) -> str:
    """Assert that plain pytest refused its input as a usage error: exit status 4 (pytest's convention), one line
    of message; that message, after ``ERROR: ``."""
    lines = done.err.strip().splitlines()
    assert done.status == 4 and len(lines) == 1 and lines[0].startswith("ERROR: "), (done.status, done.err)
    assert "Traceback" not in done.err
    return lines[0][len("ERROR: "):]


def read_only_dir(path: Path) -> tuple:
    """Make ``path`` a directory no file can be made in, for this process's uid; the prefix a command must run
    under to see it so. Unprivileged, a mode of 0555 does; root ignores modes, so it gets a read-only tmpfs mounted
    over ``path`` in a mount namespace of the command's own (Linux, where root may unshare one)."""
    path.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        return ()
    unshare = shutil.which("unshare")
    prefix = (unshare, "--mount", "--propagation", "private", "--", "sh", "-c",
              'mount -t tmpfs -o ro conformance-selftest "$0" && exec "$@"', str(path)) if unshare else ()
    if not prefix or subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("root, and no mount namespace with a read-only tmpfs here")
    return prefix
