"""The `conformance` command run as a user runs it, for the self-tests of its behaviour: exit status, output, and how
fast bad input is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # a command that should finish; one that should refuse its input must do so within BAD_INPUT_SECONDS
BAD_INPUT_SECONDS = 1.0


@dataclass
class Done:
    status: int
    out: str
    err: str
    seconds: float


def environment(**changes: str | None) -> dict:
    """This process's environment without the suite's settings, with ``changes`` (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "PYTEST_XDIST_"))}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _run(argv: list, env: dict | None, timeout: float) -> Done:
    started = time.monotonic()
    done = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, errors="backslashreplace",
                          timeout=timeout, check=False, env=environment() if env is None else env, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    return Done(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def conformance(*args, env: dict | None = None, timeout: float = TIMEOUT) -> Done:
    """``python -m conformance ARGS``."""
    return _run([sys.executable, "-m", "conformance", *args], env, timeout)


def refused(done: Done, subcommand: str | None) -> str:
    """Assert that the command refused its input as it must: exit status 2, nothing on standard output, one line on
    standard error, within BAD_INPUT_SECONDS; that line's message, after ``conformance: <subcommand>: ``."""
    prefix = f"conformance: {subcommand}: " if subcommand else "conformance: "
    assert (done.status, done.out) == (2, ""), (done.status, done.out, done.err)
    assert done.err.count("\n") == 1 and done.err.endswith("\n") and done.err.startswith(prefix), done.err
    assert "Traceback" not in done.err
    assert done.seconds < BAD_INPUT_SECONDS, f"{done.seconds:.2f} s to refuse: {done.err}"
    return done.err[len(prefix):-1]
