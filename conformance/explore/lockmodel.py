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

Conflicts: two locks conflict when their owners differ, their ranges overlap, at least one is a write lock and the
families meet. `posix` and `ofd` always meet (POSIX.1-2024: OFD and process-associated locks conflict with each
other). Whether `flock` meets the fcntl families is the platform's choice (`flock_vs_fcntl`: "independent" on
Linux's local filesystems, "conflicting" on FreeBSD and macOS), a parameter of the model, never a branch on the OS.

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


def end_of(start: int, length: int) -> int | None:
    return EOF if length == 0 else start + length


@dataclass
class Model:
    """What every lock on one file must be after each step of a history, and what each call must answer."""

    flock_vs_fcntl: str = "independent"  # the platform's choice; see the module's text
    merges: bool = True  # False: a planted fault, a lock table that forgets to merge (self-tests)
    locks: list = field(default_factory=list)
    descriptors: dict = field(default_factory=dict)  # (actor, name) -> description id
    next_description: int = 0

    # ---- descriptors ------------------------------------------------------------------------------------------

    def open(self, actor: int, name: str) -> None:
        self.descriptors[actor, name] = self.next_description
        self.next_description += 1

    def dup(self, actor: int, name: str, new: str) -> None:
        self.descriptors[actor, new] = self.descriptors[actor, name]

    def passed(self, actor: int, name: str, to: int, new: str) -> None:
        """SCM_RIGHTS: the receiver's new descriptor refers to the sender's open file description (unix(7)), so an OFD
        or flock lock on it is the same owner's in both processes."""
        self.descriptors[to, new] = self.descriptors[actor, name]

    def exit(self, actor: int) -> None:
        """The process ends: every descriptor it has is closed (POSIX _exit), and with them its classic locks."""
        for held_by, name in [key for key in self.descriptors if key[0] == actor]:
            self.close(held_by, name)
        self.locks = [lock for lock in self.locks if lock.owner != ("process", actor)]

    def close(self, actor: int, name: str) -> None:
        description = self.descriptors.pop((actor, name))
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
