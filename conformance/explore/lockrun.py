"""Random lock histories run on the real kernel and checked, step by step, against the model (lockmodel.py).

A history is a list of steps (actor, operation, args): actors are processes (harness Helpers), each with its own
descriptors of one file, named by the history ("a", "b", ...). After every step the step's own answer (granted,
or the error) is compared with the model's, then an outsider process probes: the query of every available fcntl
family (F_GETLK, F_OFD_GETLK) for the whole file and for the byte at every boundary the locks have, for read
and write, must be one of the answers the model allows, and a non-blocking flock of each kind must be granted
exactly when the model says. The first difference ends the history: a Finding, with the history up to that step.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass

from conformance import locks
from conformance.harness.children import Helper
from conformance.platforms.socket_paths import new_directory

from . import lockactor, lockreproducer
from .collector import beside_the_report
from .lockmodel import FAMILIES, Model

# What the platform answers for a conflict: POSIX fcntl allows both EACCES and EAGAIN for F_SETLK; flock's
# EWOULDBLOCK is EAGAIN.
CONFLICT_ERRNOS = {"EAGAIN", "EACCES", "EWOULDBLOCK"}


@dataclass(frozen=True)
class Step:
    actor: int
    operation: str  # open, dup, close, lock, unlock
    args: tuple

    def text(self) -> str:
        return f"P{self.actor} {self.operation}({', '.join(map(str, self.args))})"


@dataclass(frozen=True)
class Finding:
    history: tuple  # the steps up to the one where the kernel and the model differ
    problem: str
    # What differed, for a reproducer: ("answer", conflict expected), ("flock", kind, granted expected), or
    # ("query", family, kind, start, length, [allowed answers, a posix holder named by its actor's number])
    check: tuple = ()

    def text(self) -> str:
        return "; ".join(step.text() for step in self.history) + f": {self.problem}"


def available_families() -> tuple:
    """The lock families this platform has, by their probes' own checks."""
    return tuple(name for name in FAMILIES if locks.family(name).check()[0] and _defined(name))


def _defined(name: str) -> bool:
    try:
        locks.family(name).available()
    except locks.LockFamilyUnavailable:
        return False
    return True


def random_history(rng: random.Random, actors: int, length: int, families: tuple) -> tuple:
    """A history that each actor starts by opening a description, then `length` random steps."""
    steps = [Step(actor, "open", ("a",)) for actor in range(actors)]
    names = {actor: ["a"] for actor in range(actors)}
    made = {actor: 1 for actor in range(actors)}
    for _ in range(length):
        actor = rng.randrange(actors)
        mine = names[actor]
        roll = rng.random()
        if not mine or roll < 0.08:
            made[actor] += 1
            name = chr(ord("a") + made[actor] - 1)
            steps.append(Step(actor, "open", (name,)))
            mine.append(name)
        elif roll < 0.16:
            made[actor] += 1
            name = chr(ord("a") + made[actor] - 1)
            steps.append(Step(actor, "dup", (rng.choice(mine), name)))
            mine.append(name)
        elif roll < 0.24:
            name = rng.choice(mine)
            steps.append(Step(actor, "close", (name,)))
            mine.remove(name)
        elif roll < 0.30 and actors > 1:
            to = rng.choice([other for other in range(actors) if other != actor])
            made[to] += 1
            name = chr(ord("a") + made[to] - 1)
            steps.append(Step(actor, "send", (rng.choice(mine), to, name)))
            names[to].append(name)
        elif roll < 0.32:
            steps.append(Step(actor, "exit", ()))
            mine.clear()
        elif roll < 0.42:
            steps.append(Step(actor, "unlock", (rng.choice(mine), rng.choice(families), rng.randrange(8),
                                                rng.choice((0, 1, 2, 3)))))
        else:
            steps.append(Step(actor, "lock", (rng.choice(mine), rng.choice(families), rng.choice(locks.KINDS),
                                              rng.randrange(8), rng.choice((0, 1, 2, 3, 4)))))
    return tuple(steps)


def predict(model: Model, step: Step) -> str | None:
    """Apply the step to the model: None, or "EAGAIN" for a conflict the call must report."""
    operation, args = step.operation, step.args
    if operation == "open":
        model.open(step.actor, args[0])
    elif operation == "dup":
        model.dup(step.actor, *args)
    elif operation == "close":
        model.close(step.actor, args[0])
    elif operation == "lock":
        return model.lock(step.actor, *args)
    elif operation == "unlock":
        model.unlock(step.actor, *args)
    elif operation == "send":
        model.passed(step.actor, *args)
    elif operation == "exit":
        model.exit(step.actor)
    return None


def valid(history: tuple) -> bool:
    """Whether every step names a descriptor its actor holds then (a shrunk history may not)."""
    held: set = set()
    for step in history:
        if step.operation == "open":
            held.add((step.actor, step.args[0]))
            continue
        if step.operation == "exit":
            held = {key for key in held if key[0] != step.actor}
            continue
        if (step.actor, step.args[0]) not in held:
            return False
        if step.operation == "dup":
            held.add((step.actor, step.args[1]))
        elif step.operation == "send":
            held.add((step.args[1], step.args[2]))
        elif step.operation == "close":
            held.discard((step.actor, step.args[0]))
    return True


class Bench:
    """The processes a history runs in: `actors` Helpers and an outsider that probes, made here and ended by close()
    (or leaving the context); every actor's descriptors are closed between histories. An actor that exits is
    replaced by a new process."""

    def __init__(self, actors: int, path: str, families: tuple, flock_vs_fcntl: str, merges: bool = True) -> None:
        self.path, self.families, self.flock_vs_fcntl, self.merges = path, families, flock_vs_fcntl, merges
        self.helpers: list = []
        self.prober = None
        self.inboxes, _ = new_directory("in4294967295")  # the inboxes of passed descriptors: in<pid>

        try:
            self.helpers = [Helper() for _ in range(actors)]
            self.prober = Helper()
        except BaseException:
            self.close()
            raise
        self.pids = {actor: helper.pid for actor, helper in enumerate(self.helpers)}

    def close(self) -> None:
        for helper in [*self.helpers, self.prober]:
            if helper is not None:
                helper.close()
        shutil.rmtree(self.inboxes, ignore_errors=True)

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _act(self, step: Step) -> str | None:
        """Carry the step out in its processes: None, or the errno name (or what went wrong) of its call."""
        if step.operation == "exit":
            self.helpers[step.actor].close()
            self.helpers[step.actor] = Helper()
            self.pids[step.actor] = self.helpers[step.actor].pid
            return None
        if step.operation == "send":
            name, to, new = step.args
            address = self.helpers[to].call(lockactor.inbox, self.inboxes)
            return self.helpers[step.actor].call(lockactor.send, address, name) or \
                self.helpers[to].call(lockactor.take, new)
        return self.helpers[step.actor].call(lockactor.step, self.path, step.operation, step.args)

    def run(self, history: tuple) -> tuple:
        """(steps checked, Finding or None). Every actor's descriptors are closed afterwards."""
        model = Model(self.flock_vs_fcntl, self.merges)
        try:
            for number, step in enumerate(history):
                problem = self._step(model, step)
                if problem:
                    return number + 1, Finding(history[:number + 1], *problem)
            return len(history), None
        finally:
            for helper in self.helpers:
                helper.call(lockactor.reset)

    def _step(self, model: Model, step: Step) -> tuple | None:
        """None where the kernel answered as the model says, else (what differed, the check to repeat)."""
        expected = predict(model, step)
        got = self._act(step)
        if (expected is None) != (got is None) or (got is not None and got not in CONFLICT_ERRNOS):
            return (f"the call answered {got or 'success'}, the model {expected or 'success'}",
                    ("answer", expected is not None))
        points = model.boundaries()
        answers = self.prober.call(lockactor.probe, self.path, points, self.families)
        for key, answer in answers.items():
            if key[0] == "flock":
                allowed = model.flock_free(key[1])
                if answer != allowed:
                    return (f"a new description's flock({key[1]}) was {_granted(answer)}, the model says "
                            f"{_granted(allowed)}", ("flock", key[1], allowed))
                continue
            family, kind, point, length = key
            allowed = model.query(family, kind, point, length, self.pids)
            if answer not in allowed:
                by_actor = model.query(family, kind, point, length, {a: a for a in self.pids})
                return (f"{locks.family(family).query_command} {kind} at {point} length {length} answered "
                        f"{_held(answer)}, the model allows {' or '.join(sorted(map(_held, allowed)))}",
                        ("query", family, kind, point, length, sorted((list(x) if x else None for x in by_actor),
                                                                      key=repr)))
        return None


def _granted(granted: bool) -> str:
    return "granted" if granted else "refused"


def _held(answer) -> str:
    if answer is None:
        return "F_UNLCK"
    kind, start, length, pid = answer
    return f"{kind} {start}+{length} pid {pid}"


def shrink(bench: Bench, finding: Finding, tries: int = 200) -> Finding:
    """The shortest history found by dropping steps one at a time while it still fails (any way); a step that made
    a descriptor may go with its later uses renamed to another descriptor of that actor."""
    current, left = finding, tries
    progress = True
    while progress and left > 0:
        progress = False
        for candidate in _smaller(current.history):
            if left <= 0:
                break
            left -= 1
            _, found = bench.run(candidate)
            if found is not None:
                current, progress = found, True
                break
    return current


def _smaller(history: tuple):
    """Valid histories one step shorter, the last steps dropped first."""
    for index in range(len(history) - 1, -1, -1):
        removed = history[index]
        rest = history[:index] + history[index + 1:]
        if rest and valid(rest):
            yield rest
        if removed.operation not in ("open", "dup"):
            continue
        made = removed.args[-1]
        others = {s.args[-1] for s in history[:index] if s.actor == removed.actor and s.operation in ("open", "dup")}
        for other in sorted(others - {made}):
            renamed = history[:index] + tuple(_renamed(s, removed.actor, made, other) for s in history[index + 1:])
            if valid(renamed):
                yield renamed


def _renamed(step: Step, actor: int, old: str, new: str) -> Step:
    if step.actor != actor:
        return step
    return Step(actor, step.operation, tuple(new if arg == old and i < 2 else arg for i, arg in enumerate(step.args)))


FAILURES_KEPT = 3  # failing histories shrunk and written, after which an exploration stops


@dataclass
class Failure:
    found: Finding
    minimal: Finding
    reproducer: object = None  # the file's Path, where one was written


@dataclass
class LockExploration:
    """What running a set of histories found."""

    histories: int = 0  # run to their end or to their first difference
    steps: int = 0  # steps checked
    failed: int = 0
    failures: list = None

    def summary(self) -> str:
        head = f"{self.histories} lock histories, {self.steps} steps checked against the model"
        if not self.failed:
            return head + ", all as the references say"
        lines = [f"{head}; {self.failed} differed" + (", the first shrunk" if self.failures else "")]
        for failure in self.failures or []:
            where = f" (reproducer: {beside_the_report(failure.reproducer)})" if failure.reproducer else ""
            shrunk = "" if failure.minimal.history == failure.found.history else \
                f" (shrunk from {len(failure.found.history)} steps)"
            lines.append("minimal: " + failure.minimal.text() + shrunk + where)
        return "; ".join(lines)  # one line: a report's reason is the failure's first line


def explore(histories, bench: Bench, reproducers, origin: str, stop_at: float | None = None) -> LockExploration:
    """Run the histories until they run out, FAILURES_KEPT have differed, or time.monotonic() passes stop_at; shrink
    each that differed and write its reproducer into `reproducers` (a Path, if given)."""
    result = LockExploration(failures=[])
    found = []
    for history in histories:
        if len(found) >= FAILURES_KEPT or (stop_at is not None and time.monotonic() > stop_at):
            break
        steps, finding = bench.run(history)
        result.histories += 1
        result.steps += steps
        if finding is not None:
            found.append(finding)
    result.failed = len(found)
    for finding in found:
        minimal = shrink(bench, finding)
        path = lockreproducer.write(reproducers, minimal.history, minimal.check, minimal.problem, origin) \
            if reproducers is not None else None
        result.failures.append(Failure(finding, minimal, path))
    return result
