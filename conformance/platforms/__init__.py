"""Everything OS-specific: which OS this is, what the suite knows about it, detection and probes.

Nothing outside this package branches on the operating system. What the suite knows about an OS is one record,
`facts.Facts`, whose every field defaults to "this OS has no such thing"; each OS module (linux.py, freebsd.py,
darwin.py, illumos.py) sets only what its OS has, and `generic.py` (any other OS) sets nothing but its name.

Every value an OS module sets names its source beside it, marked:
  seen  observed on a running system of that OS (the module says which);
  src   read in the OS's source tree (kernel or C library code and headers), at the path cited;
  doc   from documentation at the place cited: a manual page, a kernel document, a published header or table;
  ?     not settled by any source: a probe tries it, or a case reports it, before anything relies on it.
"""

from __future__ import annotations

import importlib
import sys

from .facts import Facts

# sys.platform prefix -> module name
_MODULES = {"linux": "linux", "freebsd": "freebsd", "darwin": "darwin", "sunos": "illumos"}


def os_name(platform: str | None = None) -> str:
    """A lower-case OS name: linux, freebsd, darwin, illumos, or sys.platform for anything else."""
    platform = platform or sys.platform
    for prefix, name in _MODULES.items():
        if platform.startswith(prefix):
            return name
    return platform


def constants(name: str | None = None) -> Facts:
    """The facts of an OS (this one by default); unknown systems get `generic`'s. One record per OS for the life
    of the process, so what a self-test sets on it is what every caller reads."""
    name = name or os_name()
    module = name if name in _MODULES.values() else "generic"
    return importlib.import_module(f"{__name__}.{module}").FACTS


def machine_entry(table: dict, machine: str | None = None):
    """The entry of a table keyed by platform.machine() prefix, the longest prefix that matches ("" matches every
    machine); None where none does."""
    import platform

    machine = machine if machine is not None else platform.machine()
    prefixes = [prefix for prefix in table if machine.startswith(prefix)]
    return table[max(prefixes, key=len)] if prefixes else None


def pidfd_getfd_number(machine: str | None = None) -> int | None:
    """pidfd_getfd's syscall number on this machine (or ``machine``), None where the platform knows none."""
    return machine_entry(constants().SYSCALL_PIDFD_GETFD, machine)


def lookup(name: str, *modules) -> int | None:
    """A constant from the first module that has it (Python's own socket, fcntl or os), then from the platform's
    facts: Python lacks names that the OS has where its build predates them."""
    for module in modules:
        value = getattr(module, name, None)
        if value is not None:
            return value
    return getattr(constants(), name, None)
