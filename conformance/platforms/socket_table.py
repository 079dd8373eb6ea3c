"""The kernel's table of UNIX sockets, where the OS has one: which sockets still exist."""

from __future__ import annotations

from . import constants


def listed_inodes() -> set[int] | None:
    """The inode of every UNIX socket the kernel lists; None where the OS has no such table.

    Linux /proc/net/unix: a header line, then a line per socket with its inode in the seventh column
    (net/unix/af_unix.c unix_seq_show).
    """
    table = constants().UNIX_SOCKET_TABLE
    if not table:
        return None
    with open(table, "rb") as f:
        lines = f.read().splitlines()[1:]
    # Each line split once, and no further than the inode: a table of thousands of sockets is read in a few ms.
    fields = [line.split(None, 7) for line in lines]
    return {int(row[6]) for row in fields if len(row) > 6}
