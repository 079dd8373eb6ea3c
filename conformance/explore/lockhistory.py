"""Lock histories: their steps, the random ones, and what the model (lockmodel.py) says each step answers.

A history is a list of steps (actor, operation, args): actors are processes, each with its own descriptors of one
file, named by the history ("a", "b", ...); `fork(n)` forks a child that takes the place of process n, which exits
first, and a process may not exit while a process it forked lives. A `wait` step is a blocking request (F_SETLKW,
F_OFD_SETLKW, flock without LOCK_NB) that the model may say sleeps; its process then takes no step but its exit (a
kill) until the model grants it. A history never makes a state where the scheduler decides (Model.raced) or a waiter
that could never wake (Model.stuck): random_history and valid() refuse them.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

from conformance import locks

from .lockmodel import Model


@dataclass(frozen=True)
class Step:
    actor: int
    operation: str  # open, dup, close, lock, unlock, wait (a blocking lock), send, exit, exec, fork
    args: tuple

    def text(self) -> str:
        return f"P{self.actor} {self.operation}({', '.join(map(str, self.args))})"


def random_history(rng: random.Random, actors: int, length: int, families: tuple,
                   flock_vs_fcntl: str = "independent") -> tuple:
    """A history that each actor starts by opening a description, then up to `length` random steps, each one the
    model allows (see the module's text): a sleeping actor's only step is its exit."""
    model = Model(flock_vs_fcntl)
    steps = [Step(actor, "open", ("a",)) for actor in range(actors)]
    for step in steps:
        advance(model, step)
    for _ in range(length * 20):  # a step refused is drawn again; a few histories end short
        if len(steps) >= actors + length:
            break
        step = _random_step(rng, model, actors, families)
        trial = copy.deepcopy(model)
        if advance(trial, step) is not None:
            model = trial
            steps.append(step)
    return tuple(steps)


NAMES = "abcdefghijklmnopqrstuvwxyz"


def _fresh(model: Model, actor: int) -> str:
    """The first name the actor holds no descriptor by (a forked child holds its parent's names)."""
    held = {name for held_by, name in model.descriptors if held_by == actor}
    return next((name for name in NAMES if name not in held), f"d{len(held)}")


def _random_step(rng: random.Random, model: Model, actors: int, families: tuple) -> Step:
    awake = [actor for actor in range(actors) if not model.blocked(actor)]
    actor = rng.choice(awake)
    others = [other for other in range(actors) if other != actor]
    roll = rng.random()
    if len(awake) < actors and roll < 0.05:
        return Step(rng.choice([a for a in range(actors) if a not in awake]), "exit", ())
    mine = sorted(name for held_by, name in model.descriptors if held_by == actor)
    if not mine or roll < 0.08:
        return Step(actor, "open", (_fresh(model, actor), "cloexec") if rng.random() < 0.3 else
                    (_fresh(model, actor),))
    if roll < 0.15:
        return Step(actor, "dup", (rng.choice(mine), _fresh(model, actor)))
    if roll < 0.22:
        return Step(actor, "close", (rng.choice(mine),))
    if roll < 0.28 and others:
        to = rng.choice(others)
        return Step(actor, "send", (rng.choice(mine), to, _fresh(model, to)))
    if roll < 0.29:
        return Step(actor, "exit", ())
    if roll < 0.293:  # rare: a new interpreter takes tens of milliseconds to start
        return Step(actor, "exec", ())
    if roll < 0.31 and others:  # the child takes the place of another process, which exits
        return Step(actor, "fork", (rng.choice(others),))
    if roll < 0.40:
        return Step(actor, "unlock", (rng.choice(mine), rng.choice(families), rng.randrange(8),
                                      rng.choice((0, 1, 2, 3))))
    operation = "wait" if roll < 0.55 else "lock"
    return Step(actor, operation, (rng.choice(mine), rng.choice(families), rng.choice(locks.KINDS),
                                   rng.randrange(8), rng.choice((0, 1, 2, 3, 4))))


def advance(model: Model, step: Step) -> tuple | None:
    """Apply the step to the model, then grant the waiters it frees: (the step's own answer: None, "EAGAIN" for a
    conflict the call must report, or "blocked"; the actors whose waits it granted). None, with the model left
    half-changed, when a history may not take this step: its actor sleeps (and the step is not its exit), it names
    a descriptor its actor does not hold, its wait could never end, or it leaves the scheduler to decide."""
    operation, args = step.operation, step.args
    if operation not in ("open", "exit", "exec", "fork") and (step.actor, args[0]) not in model.descriptors:
        return None
    if operation != "exit" and model.blocked(step.actor):
        return None
    if operation == "send" and (args[1] == step.actor or model.blocked(args[1])):
        return None  # a sleeping receiver cannot take what is passed to it
    if operation == "wait" and model.stuck(step.actor, *args):
        return None
    if _made(step) in model.descriptors:
        return None  # a name in use: the process would lose its descriptor by that name
    if operation == "exit" and model.children(step.actor):
        return None  # its forked processes would be left to init, which may never reap them
    if operation == "fork" and (args[0] == step.actor or model.blocked(args[0]) or model.children(args[0])):
        return None
    expected = predict(model, step)
    granted = model.settle()
    return None if model.raced else (expected, granted)


def _made(step: Step) -> tuple | None:
    """(actor, name) of the descriptor the step makes, if it makes one."""
    if step.operation in ("open", "dup"):
        return step.actor, step.args[0 if step.operation == "open" else 1]
    if step.operation == "send":
        return step.args[1], step.args[2]
    return None


def predict(model: Model, step: Step) -> str | None:
    """Apply the step to the model: None, "EAGAIN" for a conflict the call must report, "blocked", or for an exec
    the names of the descriptors the process keeps."""
    operation, args = step.operation, step.args
    if operation == "open":
        model.open(step.actor, args[0], "cloexec" in args[1:])
    elif operation == "dup":
        model.dup(step.actor, *args)
    elif operation == "close":
        model.close(step.actor, args[0])
    elif operation == "lock":
        return model.lock(step.actor, *args)
    elif operation == "wait":
        return model.wait(step.actor, *args)
    elif operation == "unlock":
        model.unlock(step.actor, *args)
    elif operation == "send":
        model.passed(step.actor, *args)
    elif operation == "exit":
        model.exit(step.actor)
    elif operation == "exec":
        return model.exec(step.actor)
    elif operation == "fork":
        model.fork(step.actor, args[0])
    return None


def valid(history: tuple, flock_vs_fcntl: str = "independent") -> bool:
    """Whether a history may be run: every step allowed by advance() (a shrunk history may not be)."""
    model = Model(flock_vs_fcntl)
    return all(advance(model, step) is not None for step in history)
