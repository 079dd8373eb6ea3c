"""The fault layer as this machine builds and loads it: compiled from layer.c at run time, preloaded through the
environment the platform's facts name, and checked to be in the interpreter's own calls before any fault runs."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

from .. import native
from ..platforms import constants, pidfd_getfd_number
from ..unavailable import Unavailable

SOURCE_DIR = Path(__file__).resolve().parent
CHECK_TIMEOUT = 60.0
# What layer-check makes close(987654) answer, so that a run can tell the layer is loaded and interposes.
_CHECK = ("import os\ntry:\n    os.close(987654)\nexcept OSError as e:\n    print(e.errno)\nelse:\n    print(0)\n")


class NoLayer(Unavailable):
    """The layer cannot be built or loaded here: every fault is `unsupported`, with this reason."""


def _defines() -> list[str]:
    """Values the headers may lack, from the suite's own platform data (the layer compares against them)."""
    facts = constants()
    defines = []
    if facts.SO_PASSRIGHTS is not None:
        defines.append(f"-DCONFORMANCE_SO_PASSRIGHTS={facts.SO_PASSRIGHTS}")
    number = pidfd_getfd_number()
    if number is not None:
        defines.append(f"-DCONFORMANCE_SYS_PIDFD_GETFD={number}")
    return defines


def build(dest_dir: Path) -> Path:
    """The layer's shared library, compiled into dest_dir (reused while the source and command are the same)."""
    facts = constants()
    if not facts.PRELOAD_ENVIRONMENT:
        raise NoLayer(f"no way to preload a library is known for {facts.NAME}")
    try:
        return native.build("layer", dest_dir, SOURCE_DIR, (*facts.SHARED_LIBRARY_FLAGS, *_defines()),
                            facts.SHARED_LIBRARY_LDLIBS)
    except native.NoCompiler as e:
        raise NoLayer(str(e)) from None


def environment(library: Path, fault: str | None, base: dict | None = None) -> dict:
    """The environment of a process with the layer loaded and `fault` planted (None: loaded, no fault)."""
    env = dict(os.environ if base is None else base)
    for name, value in constants().PRELOAD_ENVIRONMENT.items():
        value = value.format(library=library)
        if name in ("LD_PRELOAD", "DYLD_INSERT_LIBRARIES") and env.get(name):
            value = f"{value}:{env[name]}"  # a library preloaded already (a sanitizer) stays, after the layer
        env[name] = value
    env.pop("CONFORMANCE_FAULT", None)
    if fault is not None:
        env["CONFORMANCE_FAULT"] = fault
    return env


def check(library: Path) -> None:
    """NoLayer unless this interpreter, started with the layer, really sees its calls replaced: an interpreter that
    drops the variables (macOS System Integrity Protection) or a linker that ignores them would otherwise make every
    fault look survived."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", _CHECK], env=environment(library, "layer-check"),
                          capture_output=True, text=True, timeout=CHECK_TIMEOUT)
    answer = done.stdout.strip()
    if done.returncode != 0 or answer != str(errno.EDOM):
        detail = (done.stderr.strip().splitlines() or [f"close() answered errno {answer or '?'}"])[-1]
        raise NoLayer(f"{sys.executable} started with the fault layer does not run through it ({detail})")


def known_faults(library: Path) -> list[str]:
    """The fault names the built layer knows (the catalogue's self-test compares them with its own)."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c",
                           "import ctypes, sys; f = ctypes.CDLL(sys.argv[1]).conformance_fault_names; "
                           "f.restype = ctypes.c_char_p; print(f().decode(), end='')", str(library)],
                          capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=True)
    return done.stdout.split()
