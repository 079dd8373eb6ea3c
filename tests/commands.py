"""The `conformance` command run as a user runs it, for the self-tests of its behaviour: exit status and output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120


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
