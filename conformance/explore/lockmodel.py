"""A reference model of the three lock families, written from the documents, for checking random histories.

Owners (POSIX.1-2024 fcntl, "Record locking"; Linux fcntl(2) "Open file description locks"; flock(2)):
- a classic POSIX lock (`posix`) belongs to a process: any close by that process of any descriptor of the file
  releases all its locks on the file (POSIX fcntl: "All locks associated with a file for a given process shall be
  removed when a file descriptor for that file is closed by that process");
- an OFD lock (`ofd`) and a flock lock (`flock`) belong to an open file description: they go when its last
  descriptor is closed, and a close of another descriptor of the file leaves them (Linux fcntl(2), flock(2)).

Ranges (POSIX fcntl): a lock covers [start, start + length), length 0 meaning "to the end of the file, however far
it grows". An owner's new lock replaces, over its range, what that owner held of the same family (splitting a lock
it cuts into); an unlock removes that range; the owner's locks of one type that overlap or touch are then one lock
(Linux fs/locks.c posix_lock_inode merges them; FreeBSD kern_lockf.c lf_setlock does too): F_GETLK reports the
merged segment. A flock lock covers the whole file; taking it in the other mode first removes the old one, so a
conversion that fails leaves none (flock(2): "the existing lock is first removed").

Processes (POSIX fork, exec): a forked child's descriptors refer to its parent's open file descriptions, so it
shares their OFD and flock locks, and "File locks set by the parent process shall not be inherited by the child
process", so it has no classic lock; exec closes the descriptors marked FD_CLOEXEC (open with O_CLOEXEC; not those
of dup or received with SCM_RIGHTS without MSG_CMSG_CLOEXEC) and keeps the others, and the process keeps its classic
locks (Linux fcntl(2): "preserved across an execve(2)"), save that a close-on-exec close is a close like any other.

Conflicts: two locks conflict when their owners differ, their ranges overlap, at least one is a write lock and the
families meet. `posix` and `ofd` always meet (POSIX.1-2024: OFD and process-associated locks conflict with each
other). Whether `flock` meets the fcntl families is the platform's choice (`flock_vs_fcntl`: "independent" on
Linux's local filesystems, "conflicting" on FreeBSD and macOS), a parameter of the model, never a branch on the OS.

Waiters (POSIX fcntl F_SETLKW: "if a shared or exclusive lock is blocked by other locks, the thread shall wait until
the request can be satisfied"; flock(2) without LOCK_NB): a request that conflicts leaves its process asleep,
holding nothing new; a flock conversion has already removed the old lock (flock(2)). After every step each waiter
whose request no longer conflicts is granted, as if it were taken then, the earliest first; a waiter whose process
ends is gone. Which of two waiters that conflict with each other gets the lock when both become grantable at once
(or which of one description's two waiters, of different types over a common byte, is granted last and so decides
the type there) is the scheduler's choice, not a rule: `raced` marks that state, and histories avoid it. A request
whose wait could never end (its blocker's owner is asleep itself) is `stuck()`, and histories avoid it too: only
classic locks detect such a cycle (EDEADLK, POSIX "may"), OFD and flock waiters would sleep for good.

A query (F_GETLK, F_OFD_GETLK) from another owner reports one lock that conflicts with the asked one, as merged,
with l_pid the holder's pid for a `posix` lock and -1 for an `ofd` lock (Linux fcntl(2)), or F_UNLCK when none
does; where several conflict, any of them may be reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAMILIES = ("posix", "ofd", "flock")
FCNTL_FAMILIES = ("posix", "ofd")
EOF = None  # the end of a range that runs to the end of the file


@dataclass(frozen=True)
class Lock:
    family: str
    owner: tuple  # ("process", actor) or ("description", id)
    kind: str  # "read" or "write"
    start: int
    end: int | None  # exclusive; EOF: to the end of the file

    def overlaps(self, start: int, end: int | None) -> bool:
        return (end is EOF or self.start < end) and (self.end is EOF or start < self.end)

    def touches(self, other: Lock) -> bool:
        """Overlapping or adjacent: merged when both are one owner's, of one family and one type."""
        return (other.end is EOF or self.start <= other.end) and (self.end is EOF or other.start <= self.end)

    @property
    def length(self) -> int:
        """As struct flock's l_len: 0 to the end of the file."""
        return 0 if self.end is EOF else self.end - self.start


@dataclass(frozen=True)
class Waiter:
    """A blocked request: the lock `actor` asked for with its descriptor `name`, and whose it will be."""

    actor: int
    name: str
    family: str
    kind: str
    start: int
    end: int | None
    owner: tuple

    @property
    def length(self) -> int:
        return 0 if self.end is EOF else self.end - self.start


def _any_conflict(waiters: list, meet) -> bool:
    """Whether the order in which these waiters are granted changes what is held: two owners' requests that
    conflict, or one owner's requests of one family over a common byte in different types (the later one replaces
    the earlier there: two processes that share a description may wait for OFD or flock locks on it)."""
    def order_matters(a: Waiter, b: Waiter) -> bool:
        if not Lock(a.family, a.owner, a.kind, a.start, a.end).overlaps(b.start, b.end):
            return False
        if a.owner == b.owner:
            return a.family == b.family and a.kind != b.kind
        return meet(a.family, b.family) and "write" in (a.kind, b.kind)
    return any(order_matters(a, b) for i, a in enumerate(waiters) for b in waiters[i + 1:])


def end_of(start: int, length: int) -> int | None:
    return EOF if length == 0 else start + length


@dataclass
class Model:
    """What every lock on one file must be after each step of a history, and what each call must answer."""

    flock_vs_fcntl: str = "independent"  # the platform's choice; see the module's text
    merges: bool = True  # False: a planted fault, a lock table that forgets to merge (self-tests)
    wakes: bool = True  # False: a planted fault, waiters never granted (self-tests)
    locks: list = field(default_factory=list)
    descriptors: dict = field(default_factory=dict)  # (actor, name) -> description id
    waiters: list = field(default_factory=list)  # Waiter, the earliest first
    cloexec: set = field(default_factory=set)  # (actor, name) of the descriptors marked close-on-exec
    parents: dict = field(default_factory=dict)  # actor -> the actor whose process forked its process
    raced: bool = False  # two waiters that conflict with each other were grantable at once
    next_description: int = 0

    # ---- descriptors ------------------------------------------------------------------------------------------

    def open(self, actor: int, name: str, cloexec: bool = False) -> None:
        self.descriptors[actor, name] = self.next_description
        self.next_description += 1
        if cloexec:
            self.cloexec.add((actor, name))

    def dup(self, actor: int, name: str, new: str) -> None:
        """POSIX dup: the new descriptor's FD_CLOEXEC is clear."""
        self.descriptors[actor, new] = self.descriptors[actor, name]

    def fork(self, actor: int, to: int) -> None:
        """POSIX fork, its child taking the place of process `to`, which exits first: the child's descriptors are
        copies of the parent's, each referring to the same open file description (so OFD and flock locks are
        shared) with the same FD_CLOEXEC mark; "File locks set by the parent process shall not be inherited by the
        child process" (POSIX fork: classic locks)."""
        self.exit(to)
        for (held_by, name), description in list(self.descriptors.items()):
            if held_by == actor:
                self.descriptors[to, name] = description
                if (actor, name) in self.cloexec:
                    self.cloexec.add((to, name))
        self.parents[to] = actor

    def children(self, actor: int) -> list:
        return [child for child, parent in self.parents.items() if parent == actor]

    def exec(self, actor: int) -> list:
        """POSIX exec: descriptors marked FD_CLOEXEC are closed (and a close ends the process's classic locks on the
        file), the others stay open; the process keeps its classic locks otherwise (Linux fcntl(2): "preserved
        across an execve(2)"). The names it keeps, sorted."""
        for key in sorted(self.cloexec):
            if key[0] == actor:
                self.close(*key)
        return sorted(name for held_by, name in self.descriptors if held_by == actor)

    def passed(self, actor: int, name: str, to: int, new: str) -> None:
        """SCM_RIGHTS: the receiver's new descriptor refers to the sender's open file description (unix(7)), so an OFD
        or flock lock on it is the same owner's in both processes; received without MSG_CMSG_CLOEXEC, it is not
        close-on-exec."""
        self.descriptors[to, new] = self.descriptors[actor, name]

    def exit(self, actor: int) -> None:
        """The process ends: every descriptor it has is closed (POSIX _exit), and with them its classic locks."""
        self.waiters = [w for w in self.waiters if w.actor != actor]  # a sleeping process may be killed
        self.parents.pop(actor, None)
        for held_by, name in [key for key in self.descriptors if key[0] == actor]:
            self.close(held_by, name)
        self.locks = [lock for lock in self.locks if lock.owner != ("process", actor)]

    def close(self, actor: int, name: str) -> None:
        description = self.descriptors.pop((actor, name))
        self.cloexec.discard((actor, name))
        self.locks = [lock for lock in self.locks if lock.owner != ("process", actor) or lock.family != "posix"]
        if description not in self.descriptors.values():
            self.locks = [lock for lock in self.locks if lock.owner != ("description", description)]

    def owner(self, family: str, actor: int, name: str) -> tuple:
        return ("process", actor) if family == "posix" else ("description", self.descriptors[actor, name])

    # ---- locks ------------------------------------------------------------------------------------------------

    def meet(self, a: str, b: str) -> bool:
        if a == b or (a in FCNTL_FAMILIES and b in FCNTL_FAMILIES):
            return True
        return self.flock_vs_fcntl == "conflicting"

    def conflicting(self, family: str, owner: tuple, kind: str, start: int, end: int | None) -> list:
        return [lock for lock in self.locks
                if lock.owner != owner and self.meet(lock.family, family) and lock.overlaps(start, end)
                and "write" in (kind, lock.kind)]

    def lock(self, actor: int, name: str, family: str, kind: str, start: int = 0, length: int = 0) -> str | None:
        """Take a lock without waiting: None, or the error the call must fail with ("EAGAIN")."""
        owner = self.owner(family, actor, name)
        if family == "flock":
            start, length = 0, 0
            held = [lock for lock in self.locks if lock.family == "flock" and lock.owner == owner]
            if held and held[0].kind == kind:
                return None
            self.locks = [lock for lock in self.locks if lock not in held]  # removed first (flock(2))
        end = end_of(start, length)
        if self.conflicting(family, owner, kind, start, end):
            return "EAGAIN"
        self._cut(family, owner, start, end)
        self.locks.append(Lock(family, owner, kind, start, end))
        self._merge(family, owner)
        return None

    def wait(self, actor: int, name: str, family: str, kind: str, start: int = 0, length: int = 0) -> str | None:
        """Take a lock, waiting for it: None when granted at once, "blocked" when the actor now sleeps."""
        if self.lock(actor, name, family, kind, start, length) is None:
            return None
        # refused: a flock conversion has dropped the old lock all the same (flock(2)); the request now sleeps
        if family == "flock":
            start, length = 0, 0
        self.waiters.append(Waiter(actor, name, family, kind, start, end_of(start, length),
                                   self.owner(family, actor, name)))
        return "blocked"

    def blocked(self, actor: int) -> bool:
        return any(w.actor == actor for w in self.waiters)

    def _grantable(self) -> list:
        return [w for w in self.waiters if not self.conflicting(w.family, w.owner, w.kind, w.start, w.end)]

    def settle(self) -> list:
        """Grant every waiter whose request no longer conflicts, as many rounds as grants free others (a granted
        classic lock replaces its owner's write lock over its range with a read one); the actors granted. Sets
        `raced` where two waiters grantable at once conflict with each other (see the module's text)."""
        granted = []
        while self.wakes:
            ready = self._grantable()
            if not ready:
                return granted
            self.raced = self.raced or _any_conflict(ready, self.meet)
            for waiter in ready:
                if self.conflicting(waiter.family, waiter.owner, waiter.kind, waiter.start, waiter.end):
                    continue  # only in a raced state: an earlier waiter now holds what this one needs
                self.waiters.remove(waiter)
                self.lock(waiter.actor, waiter.name, waiter.family, waiter.kind, waiter.start, waiter.length)
                granted.append(waiter.actor)
        return granted

    def stuck(self, actor: int, name: str, family: str, kind: str, start: int = 0, length: int = 0) -> bool:
        """Whether a wait for this lock would sleep behind an owner that only a sleeping process can release."""
        owner = self.owner(family, actor, name)
        if family == "flock":
            start, length = 0, 0
        sleeping = {w.actor for w in self.waiters} | {actor}
        for lock in self.conflicting(family, owner, kind, start, end_of(start, length)):
            if lock.owner[0] == "process":
                holders = {lock.owner[1]}
            else:
                holders = {a for (a, _), d in self.descriptors.items() if d == lock.owner[1]}
            if holders & sleeping:
                return True
        return False

    def unlock(self, actor: int, name: str, family: str, start: int = 0, length: int = 0) -> None:
        owner = self.owner(family, actor, name)
        if family == "flock":
            start, length = 0, 0
        self._cut(family, owner, start, end_of(start, length))
        self._merge(family, owner)

    def _cut(self, family: str, owner: tuple, start: int, end: int | None) -> None:
        """Remove [start, end) from the owner's locks of the family, keeping what lies outside it."""
        kept = []
        for lock in self.locks:
            if lock.family != family or lock.owner != owner or not lock.overlaps(start, end):
                kept.append(lock)
                continue
            if lock.start < start:
                kept.append(Lock(family, owner, lock.kind, lock.start, start))
            if end is not EOF and (lock.end is EOF or end < lock.end):
                kept.append(Lock(family, owner, lock.kind, end, lock.end))
        self.locks = kept

    def _merge(self, family: str, owner: tuple) -> None:
        if not self.merges:
            return
        mine = sorted((lock for lock in self.locks if lock.family == family and lock.owner == owner),
                      key=lambda lock: lock.start)
        others = [lock for lock in self.locks if lock.family != family or lock.owner != owner]
        merged: list = []
        for lock in mine:
            last = merged[-1] if merged else None
            if last is not None and last.kind == lock.kind and last.touches(lock):
                end = EOF if EOF in (last.end, lock.end) else max(last.end, lock.end)
                merged[-1] = Lock(family, owner, lock.kind, last.start, end)
            else:
                merged.append(lock)
        self.locks = others + merged

    # ---- what another process sees ---------------------------------------------------------------------------

    def query(self, family: str, kind: str, start: int, length: int, pids: dict) -> set:
        """Every answer a query by a new owner may get: {None} when nothing conflicts, else one (kind, start,
        length, pid) per conflicting lock; pids maps an actor to its process id."""
        found = self.conflicting(family, ("outside",), kind, start, end_of(start, length))
        if not found:
            return {None}
        return {(lock.kind, lock.start, lock.length, pids[lock.owner[1]] if lock.owner[0] == "process" else -1)
                for lock in found}

    def flock_free(self, kind: str) -> bool:
        """Whether a new description's non-blocking flock of this kind is granted."""
        return not self.conflicting("flock", ("outside",), kind, 0, EOF)

    def boundaries(self) -> list:
        """Every offset where some lock starts or ends, and 0: the probes' positions."""
        points = {0}
        for lock in self.locks:
            points.add(lock.start)
            if lock.end is not EOF:
                points.add(lock.end)
        return sorted(points)
