"""A mount plan carried out, and every step it took undone, last first, on every path: when a later step fails, when
the run on the filesystem ends, and when SIGINT or SIGTERM lands meanwhile.

Each step runs with signals held back (the command's Interruption): a signal that lands while `losetup` attaches a
device would otherwise leave a device no one knows of. It is raised once the step's undo is recorded. Each command is
bounded by STEP_TIMEOUT, so a signal waits at most that long. Undoing is clean-up: a signal meanwhile is only noted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Callable, Iterator

from ..interruption import Interruption, run_reaped
from .plans import Plan, Step

STEP_TIMEOUT = 120.0  # seconds: mkfs of a 300 MB image takes about one
# PATH for the steps: mkfs.* and losetup live in /sbin and /usr/sbin, which a user's PATH may lack.
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"

# execute(argv) -> (exit status, standard output, standard error)
Execute = Callable[[tuple], "tuple[int, str, str]"]


class MountFailed(Exception):
    """A step of a plan failed: one line naming the filesystem, the step and the command's last words."""


def execute(argv: tuple) -> tuple[int, str, str]:
    """Run argv, its output captured; a program that cannot be started or does not end in time is status 127 or
    124, as a shell would say, with the reason as its error text."""
    env = dict(os.environ, LC_ALL="C", PATH=os.environ.get("PATH", "") + ":" + SBIN)
    try:
        done = run_reaped(list(argv), stdin=subprocess.DEVNULL, env=env, timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        return 124, "", f"did not end within {STEP_TIMEOUT:g} s"
    except OSError as e:
        return 127, "", e.strerror or str(e)
    return done.returncode, done.stdout, done.stderr


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class Mounting:
    """The steps of one plan taken so far, and what undoes them."""

    def __init__(self, plan: Plan, run: Execute = execute, interruption: Interruption | None = None) -> None:
        self.plan = plan
        self.run = run
        self.interruption = interruption or Interruption.of_this_process()
        self.values: dict[str, str] = {}
        self.undos: list[tuple] = []  # (what, its undo commands) of each step taken that has an undo, in order

    def mount(self) -> None:
        """Take every step in order; the first that fails is a MountFailed. What was done stays for undo()."""
        for step in self.plan.steps:
            self._take(step)

    def _take(self, step: Step) -> None:
        argv = step.command(self.values)
        interruption = self.interruption
        status, out, err = interruption.start(lambda: self.run(argv))
        try:
            if status != 0:
                raise MountFailed(f"{self.plan.name}: cannot {step.does}: {' '.join(argv)}: {last_line(err or out)}")
            if step.captures:
                captured = out.strip().splitlines()
                if not captured:
                    raise MountFailed(f"{self.plan.name}: {' '.join(argv)} printed nothing")
                self.values[step.captures] = captured[0].strip()
            if step.undo:
                self.undos.append((step.does, step.undoing(self.values)))
        finally:
            interruption.resume()  # a signal that came during the step is raised here, its undo recorded

    def undo(self) -> list[str]:
        """Undo every step taken, last first, each with its alternatives until one succeeds; a signal meanwhile is
        noted and not raised. The problems, one line each (empty when all was undone)."""
        problems = []
        cleaning = self.interruption.cleaning_up
        self.interruption.cleaning_up = True
        try:
            while self.undos:
                does, alternatives = self.undos.pop()
                tried = []
                for argv in alternatives:
                    status, out, err = self.run(argv)
                    if status == 0:
                        break
                    tried.append(f"{' '.join(argv)}: {last_line(err or out)}")
                else:
                    problems.append(f"cannot undo '{does}': " + "; ".join(tried))
        finally:
            self.interruption.cleaning_up = cleaning
        return problems


@contextlib.contextmanager
def mounted(plan: Plan, run: Execute = execute, interruption: Interruption | None = None,
            on_problem: Callable[[str], None] = lambda line: None) -> Iterator[str]:
    """The plan's target, mounted for the body; everything undone when the body ends however it ends. What could not
    be undone is passed to on_problem, a line each: the filesystem is then still mounted, and the line says where."""
    mounting = Mounting(plan, run, interruption)
    try:
        mounting.mount()
        yield plan.target
    finally:
        for problem in mounting.undo():
            on_problem(f"{plan.name}: {problem}")
