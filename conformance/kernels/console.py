"""One process watched to its end: its output logged, its progress read, its two deadlines kept, its group killed.

The process runs in a session of its own, so that at a deadline (or an interrupt) the whole group goes: vng,
virtme-run and QEMU. The first deadline runs until the marker line appears (the guest booted); the second
until the process ends.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..interruption import Interruption
from ..report.text import visible

PROGRESS = re.compile(rb"\[\s*(\d{1,3})%\]")  # pytest's progress column
KEEP = 1 << 16  # bytes of output kept for error messages
GRACE = 10.0  # seconds between SIGTERM and SIGKILL, and for an exit after the output closed


@dataclass
class Watched:
    status: int | None       # exit status; None when killed at a deadline
    started: float | None    # seconds until the marker; None if it never came
    elapsed: float           # seconds until the end
    timed_out: str | None    # "start" or "finish" when that deadline passed
    tail: str                # the end of the output, for messages

    def last_lines(self, count: int = 3) -> str:
        # A console's output holds terminal escapes (colours, cursor moves): shown, never passed on to ours.
        lines = [visible(line.strip()) for line in self.tail.splitlines() if line.strip()]
        return " | ".join(lines[-count:]) if lines else "no output"


def watch(argv: list[str], *, env: dict, log_path: Path, marker: bytes | None, start_deadline: float,
          finish_deadline: float, on_event: Callable[[str, float], None] = lambda kind, value: None) -> Watched:
    """Run argv to its end or a deadline. on_event("started", seconds) and on_event("progress", percent)."""
    begin = time.monotonic()
    # In a session of its own, which no signal from a terminal reaches: SIGINT and SIGTERM raise here (the command
    # installs an Interruption), and the finally below ends the group.
    interruption = Interruption.of_this_process()
    proc = interruption.start(lambda: subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                       stderr=subprocess.STDOUT, env=env, start_new_session=True))
    started = None if marker else 0.0
    timed_out = None
    tail = b""
    percent = None
    ended = False
    try:
        interruption.resume()  # a signal that came while the command was starting ends it from here
        with open(log_path, "wb") as log:
            while True:
                now = time.monotonic() - begin
                left = (start_deadline if started is None else finish_deadline) - now
                if left <= 0:
                    timed_out = "start" if started is None else "finish"
                    break
                ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
                if not ready:
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                window = tail[-256:] + chunk  # a marker may straddle two reads
                tail = (tail + chunk)[-KEEP:]
                if started is None and marker in window:
                    started = now
                    on_event("started", now)
                    window = window[window.index(marker):]
                if started is not None:
                    seen = [int(m.group(1)) for m in PROGRESS.finditer(window)]
                    if seen and seen[-1] != percent:
                        percent = seen[-1]
                        on_event("progress", percent)
        if timed_out is None:
            try:
                proc.wait(GRACE)
                ended = True
            except subprocess.TimeoutExpired:
                timed_out = "finish"
    finally:
        if not ended:
            _end_group(proc)
        proc.stdout.close()
    return Watched(None if timed_out else proc.returncode, started, time.monotonic() - begin, timed_out,
                   tail.decode("utf-8", "replace"))


def _end_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(GRACE)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.wait()  # after SIGKILL of the group this returns
