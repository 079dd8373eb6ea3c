"""Native peers, compiled from C at test time.

Interoperation cases need a C implementation of the protocol on the other end of the socket: a Python
peer only shows that Python agrees with itself. The sources are compiled when a test first asks for them,
because every CI platform (Linux, FreeBSD, macOS) has a C compiler; nothing is compiled at install time,
so `pip install` stays pure Python and works where no compiler is installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path

from ..platforms import constants
from ..unavailable import Unavailable

SOURCE_DIR = Path(__file__).resolve().parent
FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")
BUILD_TIMEOUT = 120.0
# What macOS's /usr/bin/cc shim prints when no developer tools are installed ("xcrun: error: invalid active
# developer path (...), missing xcrun at: ...").
_XCRUN_SHIM = re.compile(r"^xcrun: error: (invalid active developer path|unable to find utility)", re.MULTILINE)


class NoCompiler(Unavailable):
    """No C compiler here: the cases that need a native peer are unsupported, not failed."""


class BuildFailed(RuntimeError):
    """The compiler ran and rejected the source: a real error in the suite, never 'unsupported'."""

    def __init__(self, command: list[str], returncode: int | None, stderr: str) -> None:
        status = "timed out" if returncode is None else f"exit status {returncode}"
        super().__init__(f"{shlex.join(command)}: {status}\n{stderr}")
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


def compiler() -> str | None:
    """$CC if set (it may carry arguments), else the first of cc, gcc, clang on PATH."""
    cc = os.environ.get("CC", "").strip()
    if cc:
        return cc
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


def build(name: str, dest_dir: Path, source_dir: Path | None = None, flags: tuple[str, ...] = (),
          libraries: tuple[str, ...] | None = None) -> Path:
    """Compile <source_dir>/<name>.c (default: this package's) into dest_dir and return the program's path.

    `flags`: more compiler arguments (a shared library's, -D values); `libraries`: what to link instead of the
    platform's NATIVE_LDLIBS. The file name carries a hash of the source and the compiler command, so an existing
    file is reused as is, and a changed source or compiler never picks up a stale binary.
    """
    cc = compiler()
    if cc is None:
        raise NoCompiler("no C compiler: $CC is unset and none of cc, gcc, clang is on PATH")
    cc_argv = shlex.split(cc)
    if not cc_argv or shutil.which(cc_argv[0]) is None:
        raise NoCompiler(f"C compiler {cc!r} (from $CC) not found")

    source = Path(source_dir or SOURCE_DIR) / f"{name}.c"
    text = source.read_bytes()
    base_command = [*cc_argv, *FLAGS, *flags]
    # Libraries come after the source on the command line (illumos: -lsocket -lnsl for sendmsg/recvmsg).
    libraries = list(constants().NATIVE_LDLIBS if libraries is None else libraries)
    digest = hashlib.sha256(text + "\0".join(base_command + libraries).encode()).hexdigest()[:12]
    dest_dir = Path(dest_dir)
    out = dest_dir / f"{name}-{digest}"
    if out.exists():
        return out

    dest_dir.mkdir(parents=True, exist_ok=True)
    # A private name, then an atomic rename: parallel builders (xdist workers) never run a half-written file.
    tmp = dest_dir / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    command = [*base_command, "-o", str(tmp), str(source), *libraries]
    try:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        except FileNotFoundError as exc:
            raise NoCompiler(f"C compiler {cc_argv[0]!r} could not be run: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise BuildFailed(command, None, stderr) from exc
        if done.returncode != 0:
            if _XCRUN_SHIM.search(done.stderr):
                # macOS: /usr/bin/cc is a shim that runs the Command Line Tools' compiler, and only says so when
                # they are not installed (xcode-select(1)): no compiler here, not a bug in the source.
                raise NoCompiler(f"C compiler {cc_argv[0]!r} is the xcrun shim without developer tools: "
                                 + done.stderr.strip().splitlines()[0])
            raise BuildFailed(command, done.returncode, done.stderr + done.stdout)
        if not tmp.exists():
            raise BuildFailed(command, done.returncode, f"the compiler wrote no {tmp}\n{done.stderr}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    return out
