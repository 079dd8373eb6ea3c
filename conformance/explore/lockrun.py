"""Random lock histories run on the real kernel and checked, step by step, against the model (lockmodel.py).

A history is a list of steps (actor, operation, args): actors are processes (harness Helpers), each with its own
descriptors of one file, named by the history ("a", "b", ...). After every step the step's own answer (granted,
or the error) is compared with the model's, then an outsider process probes: the query of every available fcntl
family (F_GETLK, F_OFD_GETLK) for the whole file and for the byte at every boundary the locks have, for read
and write, must be one of the answers the model allows, and a non-blocking flock of each kind must be granted
exactly when the model says. The first difference ends the history: a Finding, with the history up to that step.

After every step each waiter the model grants must answer (within a deadline: the kernel wakes it, it retakes),
each it does not must not have answered, and where the kernel has a lock table (platforms/lock_table.py) the
waiters it lists must become those of the model, (class, type, range) and a classic waiter's pid.
"""

from __future__ import annotations

import copy
import shutil
import socket
import time
from collections import Counter
from dataclasses import dataclass

from conformance import locks
from conformance.harness import rights
from conformance.harness.children import ChildTimeout, ForeignHelper, Helper
from conformance.harness.deadlines import deadline
from conformance.platforms import lock_table
from conformance.platforms.socket_paths import new_directory

from . import lockactor, lockreproducer
from .collector import beside_the_report
from .lockhistory import Step, advance, predict, valid
from .lockmodel import FAMILIES, Model

# What the platform answers for a conflict: POSIX fcntl allows both EACCES and EAGAIN for F_SETLK; flock's
# EWOULDBLOCK is EAGAIN.
CONFLICT_ERRNOS = {"EAGAIN", "EACCES", "EWOULDBLOCK"}


@dataclass(frozen=True)
class Finding:
    history: tuple  # the steps up to the one where the kernel and the model differ
    problem: str
    # What differed, for a reproducer: ("answer", conflict expected), ("flock", kind, granted expected),
    # ("query", family, kind, start, length, [allowed answers, a posix holder named by its actor's number]),
    # ("granted", actor) or ("waiting", actor) for a waiter, ("table", [waiters as lock_table lists them, a posix
    # waiter's pid named by its actor's number]), ("kept", [the names an exec keeps])
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


class Bench:
    """The processes a history runs in: `actors` Helpers and an outsider that probes, made here and ended by close()
    (or leaving the context); every actor's descriptors are closed between histories. An actor that exits is
    replaced by a new process; one that sleeps in a wait at its exit, or at a history's end, is killed."""

    def __init__(self, actors: int, path: str, families: tuple, flock_vs_fcntl: str, merges: bool = True,
                 wakes: bool = True) -> None:
        self.path, self.families, self.flock_vs_fcntl = path, families, flock_vs_fcntl
        self.merges, self.wakes = merges, wakes  # False: a planted fault in the model (self-tests)
        self.helpers: list = []
        self.prober = None
        self.inboxes, _ = new_directory("in4294967295")  # the inboxes of passed descriptors: in<pid>
        self.table = lock_table.blocked(path) is not None  # whether the kernel lists this file's waiters
        try:
            self.helpers = [Helper() for _ in range(actors)]
            self.prober = Helper()
        except BaseException:
            self.close()
            raise
        self.pids = {actor: helper.pid for actor, helper in enumerate(self.helpers)}
        self.parents: dict = {}  # actor -> the actor whose process forked its process

    def close(self) -> None:
        """End every process, children first, even where ending one fails (the first failure is raised after)."""
        failed = None
        for helper in [*(self.helpers[actor] for actor in self._children_first()), self.prober]:
            try:
                if helper is not None:
                    helper.close(kill=True)  # a waiter left asleep would hold the close for its whole deadline
            except Exception as e:
                failed = failed or e
        shutil.rmtree(self.inboxes, ignore_errors=True)
        if failed is not None:
            raise failed

    def _children_first(self) -> list:
        """The actors, each after every process it forked (a forked process must end before its parent)."""
        def depth(actor: int) -> int:
            return 0 if actor not in self.parents else 1 + depth(self.parents[actor])
        return sorted(range(len(self.helpers)), key=depth, reverse=True)

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def model(self) -> Model:
        """A new model as this bench's histories start from it (with its planted faults, if any)."""
        return Model(self.flock_vs_fcntl, self.merges, self.wakes)

    def _replace(self, actor: int, by=Helper) -> None:
        """End the actor's process (killed if it sleeps in a wait: it would never read its channel's end) and put
        `by()` in its place, a new Helper by default."""
        self.helpers[actor].close(kill=self.helpers[actor].pending)
        self.parents.pop(actor, None)
        self.helpers[actor] = by()
        self.pids[actor] = self.helpers[actor].pid

    def _fork(self, actor: int, to: int) -> ForeignHelper:
        """The actor forks (lockactor.fork); its child serves a channel passed to the actor through its inbox."""
        address = self.helpers[actor].call(lockactor.inbox, self.inboxes)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with mine, theirs, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendmsg([b"c"], [rights.rights_cmsg([theirs.fileno()])], 0, address)
            pid = self.helpers[actor].call(lockactor.fork)
            self.parents[to] = actor
            return ForeignHelper(pid, mine.detach())

    def _act(self, step: Step, expected: str | None) -> str | None:
        """Carry the step out in its processes: None, or the errno name (or what went wrong) of its call; a wait the
        model says sleeps is only asked, its answer taken when the model grants it."""
        helper = self.helpers[step.actor]
        if step.operation == "exit":
            self._replace(step.actor)
            return None
        if step.operation == "fork":
            to = step.args[0]
            self._replace(to, by=lambda: self._fork(step.actor, to))
            return None
        if step.operation == "send":
            name, to, new = step.args
            address = self.helpers[to].call(lockactor.inbox, self.inboxes)
            return helper.call(lockactor.send, address, name) or self.helpers[to].call(lockactor.take, new)
        if step.operation == "wait":
            helper.request(lockactor.step, self.path, step.operation, step.args)
            if expected == "blocked":
                return "blocked"
            try:
                return helper.answer()
            except ChildTimeout:
                return "no answer (it sleeps)"
        return helper.call(lockactor.step, self.path, step.operation, step.args)

    def run(self, history: tuple) -> tuple:
        """(steps checked, Finding or None). Every actor's descriptors are closed afterwards."""
        model = self.model()
        try:
            for number, step in enumerate(history):
                problem = self._step(model, step)
                if problem:
                    return number + 1, Finding(history[:number + 1], *problem)
            return len(history), None
        finally:
            for actor in self._children_first():
                helper = self.helpers[actor]
                if helper.pending or not helper.alive or actor in self.parents:
                    self._replace(actor)
                else:
                    helper.call(lockactor.reset)

    def _step(self, model: Model, step: Step) -> tuple | None:
        """None where the kernel answered as the model says, else (what differed, the check to repeat)."""
        expected = predict(model, step)
        granted = model.settle()
        if model.raced:
            raise ValueError(f"{step.text()}: a history may not leave the scheduler to decide (see valid())")
        got = self._act(step, expected)
        if expected == "blocked":
            pass  # what a sleeping waiter answers is checked below, with the other waiters
        elif step.operation == "exec":
            if got != expected:
                return (f"after the exec the process has descriptors {_names(got)}, the model {_names(expected)}",
                        ("kept", expected))
        elif (expected is None) != (got is None) or (got is not None and got not in CONFLICT_ERRNOS):
            return (f"the call answered {got or 'success'}, the model {expected or 'success'}",
                    ("answer", expected is not None))
        return self._waiters(model, granted) or self._probes(model)

    def _waiters(self, model: Model, granted: list) -> tuple | None:
        """Every waiter the step granted has answered success, no other has answered, and the lock table (where
        there is one) comes to list exactly the model's waiters."""
        for actor in granted:
            try:
                got = self.helpers[actor].answer()
            except ChildTimeout:
                got = "nothing"
            if got is not None:
                return (f"P{actor}'s wait answered {got} after this step, the model grants it", ("granted", actor))
        for waiter in model.waiters:
            if self.helpers[waiter.actor].answered():
                got = self.helpers[waiter.actor].answer(0)
                return (f"P{waiter.actor}'s wait answered {got or 'success'} after this step, the model says it "
                        f"still waits for {_blocker(model, waiter)}", ("waiting", waiter.actor))
        if self.table and (model.waiters or granted):  # else none slept before the step, and none could since
            expected = Counter(_listed(waiter, self.pids) for waiter in model.waiters)
            seen = _settled_table(self.path, expected)
            if seen != expected:
                by_actor = sorted(_listed(waiter, {a: a for a in self.pids}) for waiter in model.waiters)
                return (f"the kernel's lock table lists waiters {_rows(seen)}, the model {_rows(expected)}",
                        ("table", [list(row) for row in by_actor]))
        return None

    def _probes(self, model: Model) -> tuple | None:
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


TABLE_CLASSES = {"posix": "POSIX", "ofd": "OFDLCK", "flock": "FLOCK"}  # fs/locks.c lock_get_status
# How long a waiter the kernel woke may take to sleep again, or one asked to sleep to reach its call.
TABLE_SETTLES = deadline(5.0)


def _listed(waiter, pids: dict) -> tuple:
    """A waiter as platforms/lock_table.blocked() lists it: class, type, pid (a classic waiter's only), range."""
    return (TABLE_CLASSES[waiter.family], waiter.kind.upper(), str(pids[waiter.actor]) if waiter.family == "posix"
            else "", str(waiter.start), "EOF" if waiter.end is None else str(waiter.end - 1))


def _settled_table(path: str, expected: Counter) -> Counter:
    """The waiters the table lists, looked at again until they are the expected ones or TABLE_SETTLES passes: a
    waiter asked to sleep may not have reached its call yet, and one the kernel woke to retry (it wakes every waiter
    of a lock that goes) is off the list until it sleeps again."""
    end, pause = time.monotonic() + TABLE_SETTLES, 0.0002
    while True:
        rows = lock_table.blocked(path) or []
        seen = Counter((c, t, pid if c == "POSIX" else "", start, stop) for c, t, pid, start, stop in rows)
        if seen == expected or time.monotonic() >= end:
            return seen
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def _names(names) -> str:
    return "[" + ", ".join(names) + "]" if isinstance(names, list) else str(names)


def _rows(rows: Counter) -> str:
    return "[" + ", ".join(" ".join(filter(None, row)) for row in sorted(rows.elements())) + "]"


def _blocker(model: Model, waiter) -> str:
    found = model.conflicting(waiter.family, waiter.owner, waiter.kind, waiter.start, waiter.end)
    return " or ".join(sorted({f"{lock.kind} {lock.family} {lock.start}+{lock.length}" for lock in found})) \
        or "nothing"


def _granted(granted: bool) -> str:
    return "granted" if granted else "refused"


def _held(answer) -> str:
    if answer is None:
        return "F_UNLCK"
    kind, start, length, pid = answer
    return f"{kind} {start}+{length} pid {pid}"


# Shrinking one finding stops after this many seconds (scaled) with the shortest history found so far: where every
# try waits for a deadline (a waiter the platform never wakes), 200 tries would take many minutes.
SHRINK_SECONDS = 30.0


def shrink(bench: Bench, finding: Finding, tries: int = 200, seconds: float | None = None) -> Finding:
    """The shortest history found by dropping steps one at a time while it still fails (any way); a step that made
    a descriptor may go with its later uses renamed to another descriptor of that actor. At most `tries` runs and
    `seconds` (default SHRINK_SECONDS, scaled)."""
    current, left = finding, tries
    stop_at = time.monotonic() + (deadline(SHRINK_SECONDS) if seconds is None else seconds)
    progress = True
    while progress and left > 0:
        progress = False
        for candidate in _smaller(current.history, bench.flock_vs_fcntl):
            if left <= 0 or time.monotonic() > stop_at:
                left = 0
                break
            left -= 1
            _, found = bench.run(candidate)
            if found is not None:
                current, progress = found, True
                break
    return current


def _smaller(history: tuple, flock_vs_fcntl: str):
    """Valid shorter histories, the last steps dropped first: one step dropped; or one step dropped with every
    later step that is no longer valid without it (a close, and the open that reused its name)."""
    for index in range(len(history) - 1, -1, -1):
        removed = history[index]
        rest = history[:index] + history[index + 1:]
        if rest and valid(rest, flock_vs_fcntl):
            yield rest
        else:
            repaired = _repaired(history, index, flock_vs_fcntl)
            if repaired:
                yield repaired
        if removed.operation not in ("open", "dup"):
            continue
        made = removed.args[-1]
        others = {s.args[-1] for s in history[:index] if s.actor == removed.actor and s.operation in ("open", "dup")}
        for other in sorted(others - {made}):
            renamed = history[:index] + tuple(_renamed(s, removed.actor, made, other) for s in history[index + 1:])
            if valid(renamed, flock_vs_fcntl):
                yield renamed


def _repaired(history: tuple, index: int, flock_vs_fcntl: str) -> tuple:
    """The history without step `index` and without each later step the model no longer allows."""
    kept, model = [], Model(flock_vs_fcntl)
    for number, step in enumerate(history):
        if number == index:
            continue
        trial = copy.deepcopy(model)
        if advance(trial, step) is not None:
            kept.append(step)
            model = trial
    return tuple(kept)


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
        path = lockreproducer.write(reproducers, minimal.history, minimal.check, minimal.problem, origin,
                                    bench.model()) \
            if reproducers is not None else None
        result.failures.append(Failure(finding, minimal, path))
    return result
