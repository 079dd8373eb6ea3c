"""One process watched to its end: its output logged, its progress read, its two deadlines kept, its group killed.

The process runs in a session of its own, so that at a deadline (or an interrupt) the whole group goes: vng,
virtme-run and QEMU, or a chroot and the suite's workers inside it. This process adopts the group's orphans (a
subreaper where the OS has one), so that every member is reaped here before watch() returns, not left to init or to
whoever else adopts them. The first deadline runs until the marker line appears (the guest booted), on the output or
in a file the guest writes; the second until the process ends. The guest's file is the sign that does not depend
on its output reaching us: on a loaded machine a guest has booted and run with nothing on the console.
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
from ..platforms import process
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
    output: int = 0          # bytes of output read
    marker_seen: bool = False  # the marker came on the output, not only in the file

    def last_lines(self, count: int = 3) -> str:
        # A console's output holds terminal escapes (colours, cursor moves): shown, never passed on to ours.
        lines = [visible(line.strip()) for line in self.tail.splitlines() if line.strip()]
        return " | ".join(lines[-count:]) if lines else "no output"


def watch(argv: list[str], *, env: dict, log_path: Path, marker: bytes | None, start_deadline: float,
          finish_deadline: float, on_event: Callable[[str, float], None] = lambda kind, value: None,
          marker_file: Path | None = None) -> Watched:
    """Run argv to its end or a deadline. on_event("started", seconds) and on_event("progress", percent). The
    output is appended to log_path, flushed as it comes. The marker counts on the output or, once marker_file
    exists and holds it, there."""
    begin = time.monotonic()
    # In a session of its own, which no signal from a terminal reaches: SIGINT and SIGTERM raise here (the command
    # installs an Interruption), and the finally below ends the group.
    interruption = Interruption.of_this_process()
    process.become_subreaper()  # never raises; without it, init reaps the group's orphans instead
    proc = interruption.start(lambda: subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                       stderr=subprocess.STDOUT, env=env, start_new_session=True))
    started = None if marker else 0.0
    timed_out = None
    tail = b""
    output = 0
    marker_seen = False
    percent = None
    ended = False

    def in_file() -> None:
        nonlocal started
        if started is None and marker_file is not None and _holds(marker_file, marker):
            started = time.monotonic() - begin
            on_event("started", started)

    try:
        interruption.resume()  # a signal that came while the command was starting ends it from here
        with open(log_path, "ab") as log:
            while True:
                now = time.monotonic() - begin
                in_file()
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
                output += len(chunk)
                window = tail[-256:] + chunk  # a marker may straddle two reads
                tail = (tail + chunk)[-KEEP:]
                if marker and not marker_seen and marker in window:
                    marker_seen = True
                    if started is None:
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
            in_file()  # written just before the end, or with the output gone
    finally:
        if not ended:
            _end_group(proc)
        _sweep_group(proc.pid)
        proc.stdout.close()
    return Watched(None if timed_out else proc.returncode, started, time.monotonic() - begin, timed_out,
                   tail.decode("utf-8", "replace"), output, marker_seen)


def _holds(path: Path, marker: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return marker in f.read(4096)
    except OSError:
        return False


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


def _sweep_group(pgid: int, deadline: float = GRACE) -> None:
    """Kill what is left of the group once its leader is reaped (a shell's background job, the workers of a suite
    inside a chroot) and reap those that came to this process. Bounded: a member stuck in the kernel is left to
    whoever reaps it after we are gone."""
    end = time.monotonic() + deadline
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)  # a zombie still counts as a member until it is reaped
        except (ProcessLookupError, PermissionError):
            return
        try:
            while os.waitpid(-pgid, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return  # none of them is ours to reap (no subreaper here): init reaps them
        if time.monotonic() > end:
            return
        time.sleep(0.01)  # a killed member dies, and its orphans come to us, within moments
