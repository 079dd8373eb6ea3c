"""Everything OS-specific: which OS this is, its constants and layouts, detection and probes.

Nothing outside this package branches on the operating system. Each OS module exports the same
names (see `linux.py` for the list); a value of None means the OS has no such thing.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

# sys.platform prefix -> module name
_MODULES = {"linux": "linux", "freebsd": "freebsd", "darwin": "darwin", "sunos": "illumos"}


def os_name(platform: str | None = None) -> str:
    """A lower-case OS name: linux, freebsd, darwin, illumos, or sys.platform for anything else."""
    platform = platform or sys.platform
    for prefix, name in _MODULES.items():
        if platform.startswith(prefix):
            return name
    return platform


def constants(name: str | None = None) -> ModuleType:
    """The constants module for an OS (this one by default); unknown systems get `generic`."""
    name = name or os_name()
    module = name if name in _MODULES.values() else "generic"
    return importlib.import_module(f"{__name__}.{module}")


def lookup(name: str, *modules) -> int | None:
    """A constant from the first module that has it (Python's own socket, fcntl or os), then from the platform's
    constants: Python lacks names that the OS has where its build predates them."""
    for module in modules:
        value = getattr(module, name, None)
        if value is not None:
            return value
    return getattr(constants(), name, None)
