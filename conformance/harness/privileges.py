"""Running part of a case as an unprivileged user."""

from __future__ import annotations

import os
import random

# The uid a root case's child becomes to act as an ordinary user: the traditional nobody of Linux and the BSDs. It
# needs no entry in the password database: the kernel checks permissions by number.
NOBODY = 65534


def drop_privileges(uid: int = NOBODY) -> None:
    """In a child run as root: become an unprivileged user, uid and gid both, with no supplementary groups."""
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


# Where fresh_uid draws from: far above any uid a system hands out, below 2**31 - 1 so that no tool reads it as
# negative, and never (uid_t) -1.
_FRESH_UIDS = range(1_900_000_000, 2_100_000_000)


def fresh_uid() -> int:
    """A uid no account has and, in all likelihood, no process ever had on this machine: one drawn at random from a
    range no system allocates. The kernel keeps some accounts per uid for as long as it runs (Linux charges the
    sockets a user has in flight to that user, and slows and finally refuses the passing of more), so a case whose
    descriptors the kernel may never release sends them as such a uid: whatever is left is charged to no one, and
    every run starts from nothing."""
    return random.SystemRandom().choice(_FRESH_UIDS)
