"""Running part of a case as an unprivileged user."""

from __future__ import annotations

import os

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
