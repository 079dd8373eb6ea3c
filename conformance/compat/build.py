"""A Debian userland (i386 for `conformance compat`, arm64 or s390x for `conformance arch`): built once with
debootstrap into the cache, then the suite installed into it from this checkout. A foreign architecture's programs
run in the chroot through QEMU's user-mode emulation (binfmt_misc), which only the build and the install use.

The build goes into `<name>.partial` and is renamed when every step has worked, so an interrupted or failed build
is never taken for a finished one. debootstrap marks the partial tree once it has finished, so that a later step
that failed (PyPI out of reach for a while) costs the next run only the steps after it; a tree without the mark, or
with another recipe's, is removed (after undoing any mount under it) and built again. The recipe's text is written
into the finished root: a changed recipe builds anew, from debootstrap's packages when its first line, the
debootstrap command, is the same.

pip inside reaches PyPI as pip does here: through this machine's proxy settings, trusting this machine's certificate
authorities (a copy of its bundle, where an intercepting proxy has its own authority).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..kernels import console
from ..plugin import revision
from . import mounts
from .tools import Tools

SUITE = "bookworm"
# What the suite needs inside: the interpreter and venv, and a C compiler with the C library's headers for the C
# peer and the fault layer.
PACKAGES = ("python3", "python3-venv", "gcc", "libc6-dev")
# wheel: the setuptools of bookworm's venv (66) builds the suite's wheel only with it.
PIP_PACKAGES = ("pytest", "pytest-xdist", "pytest-timeout", "wheel")
PIP_TRIES = 3  # whole pip runs, each with pip's own --retries: PyPI or a proxy may fail for a moment
VENV = "/opt/conformance/venv"
SOURCE = "/opt/conformance/src"
BUILT_MARK = ".conformance-built"
BOOTSTRAPPED_MARK = ".conformance-debootstrapped"
HOST_CA = "/opt/conformance/host-ca-certificates.crt"
# Where this machine's pip and Python find their certificate authorities, in the order pip reads them, then Debian's
# bundle; and the proxy settings pip honours.
CA_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
BUILD_TIMEOUT = 3600.0
STEP_TIMEOUT = 1200.0


@dataclass(frozen=True)
class Target:
    """A Debian userland to build: its architecture (Debian's name), the packages beyond PACKAGES, and the
    personality (setarch's name) a command inside runs with, where the kernel runs it through its compat layer."""
    arch: str
    extra: tuple = ()
    personality: str | None = None

    @property
    def packages(self) -> tuple:
        return PACKAGES + self.extra

    @property
    def name(self) -> str:
        return f"{SUITE}-{self.arch}"


I386 = Target("i386", personality="i686")


class BuildError(Exception):
    """A build step failed; one line, with where its log is."""


@dataclass(frozen=True)
class Userland:
    root: Path
    built_in: float | None  # seconds this run spent building it; None when the cache had it


def recipe(mirror: str, target: Target = I386) -> str:
    return "\n".join([f"debootstrap --arch={target.arch} --variant=minbase --include={','.join(target.packages)} "
                      f"{SUITE} {mirror}", f"venv {VENV}: pip install {' '.join(PIP_PACKAGES)}", ""])


def debootstrap_command(tools: Tools, directory: Path, mirror: str, target: Target = I386) -> list[str]:
    return [tools.debootstrap, f"--arch={target.arch}", "--variant=minbase", f"--include={','.join(target.packages)}",
            SUITE, str(directory), mirror]


def in_chroot(tools: Tools, root: Path, argv: list[str], user: str | None = None,
              personality: str | None = I386.personality) -> list[str]:
    """argv run inside root, with ``personality`` if given (i686: PER_LINUX32, uname says i686, as a 32-bit x86
    machine); ``user``: a name or a number, whose group of the same name or number it runs with."""
    userspec = [f"--userspec={user}:{user}"] if user else []
    setarch = ["/usr/bin/setarch", personality] if personality else []
    return [tools.chroot, *userspec, str(root), *setarch, *argv]


def pip_command() -> list[str]:
    return [f"{VENV}/bin/pip", "install", "--disable-pip-version-check", "--retries", "10", "--timeout", "60",
            *PIP_PACKAGES]


def userland(tools: Tools, cache: Path, mirror: str, logs: Path, say: Callable[[str], None],
             target: Target = I386) -> Userland:
    """The cached userland, built first if the cache has none of this recipe."""
    root = cache / target.name
    wanted = recipe(mirror, target)
    mark = root / BUILT_MARK
    if mark.is_file() and mark.read_text(encoding="utf-8") == wanted:
        return Userland(root, None)
    begin = time.monotonic()
    partial = cache / f"{target.name}.partial"
    bootstrapped = partial / BOOTSTRAPPED_MARK
    command = debootstrap_command(tools, partial, mirror, target)
    if mark.is_file() and mark.read_text(encoding="utf-8").splitlines()[:1] == wanted.splitlines()[:1]:
        mounts.remove_tree(partial, tools)  # the finished root of another recipe with the same packages
        mark.unlink()
        root.rename(partial)
        bootstrapped.write_text(" ".join(command[1:]), encoding="utf-8")
    mounts.remove_tree(root, tools)
    if bootstrapped.is_file() and bootstrapped.read_text(encoding="utf-8") == " ".join(command[1:]):
        say(f"the {SUITE} {target.arch} userland in {partial} has its packages: the steps after debootstrap again")
    else:
        mounts.remove_tree(partial, tools)
        partial.mkdir(parents=True)
        say(f"building the {SUITE} {target.arch} userland in {partial} (debootstrap; log {logs / 'build.log'})")
        _step(command, logs / "build.log", "debootstrap")
        bootstrapped.write_text(" ".join(command[1:]), encoding="utf-8")
    shutil.copyfile("/etc/resolv.conf", partial / "etc" / "resolv.conf")  # pip reaches PyPI from inside
    environment = pip_environment(partial)
    with mounts.mounted(mounts.plan(partial), tools):
        _step(in_chroot(tools, partial, ["/usr/bin/python3", "-m", "venv", VENV], personality=target.personality),
              logs / "venv.log", "venv")
        for attempt in range(1, PIP_TRIES + 1):
            say(f"pip install {' '.join(PIP_PACKAGES)} inside (try {attempt} of {PIP_TRIES})")
            try:
                _step(in_chroot(tools, partial, pip_command(), personality=target.personality), logs / "pip.log",
                      "pip install", environment)
                break
            except BuildError:
                if attempt == PIP_TRIES:
                    raise
                time.sleep(5 * attempt)
    bootstrapped.unlink()
    (partial / BUILT_MARK).write_text(wanted, encoding="utf-8")
    partial.rename(root)
    return Userland(root, time.monotonic() - begin)


def install_suite(tools: Tools, root: Path, checkout: Path, logs: Path, target: Target = I386) -> None:
    """This checkout's package, copied in and installed into the venv without its dependencies (already there);
    the mounts must be in place."""
    source = root / SOURCE.lstrip("/")
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    shutil.copytree(checkout / "conformance", source / "conformance",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.o"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(checkout / name, source / name)
    commit = revision.this_suite().commit  # the checkout's, recorded in the copy that has no .git
    if commit:
        (source / "conformance" / revision.COMMIT_FILE).write_text(commit + "\n", encoding="ascii")
    _step(in_chroot(tools, root, [f"{VENV}/bin/pip", "install", "--disable-pip-version-check", "--no-deps",
                                  "--no-build-isolation", "--no-index", SOURCE], personality=target.personality),
          logs / "install.log",
          "installing the suite")


def pip_environment(root: Path, host: dict | None = None) -> dict:
    """The chroot's environment for pip: this machine's proxy settings, and its certificate authorities copied into
    root (the first bundle its variables name, else Debian's, where it exists)."""
    host = dict(os.environ) if host is None else host
    environment = mounts.chroot_environment()
    environment.update({name: host[name] for name in PROXY_VARIABLES if host.get(name)})
    bundles = [host[name] for name in CA_VARIABLES if host.get(name)] + [CA_BUNDLE]
    bundle = next((path for path in bundles if os.path.isfile(path)), None)
    if bundle is not None:
        copy = root / HOST_CA.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle, copy)
        environment["PIP_CERT"] = HOST_CA
    return environment


def _step(argv: list[str], log: Path, what: str, environment: dict | None = None) -> None:
    watched = console.watch(argv, env=environment or mounts.chroot_environment(), log_path=log, marker=None,
                            start_deadline=BUILD_TIMEOUT, finish_deadline=STEP_TIMEOUT if what != "debootstrap"
                            else BUILD_TIMEOUT)
    if watched.status != 0:
        why = "did not finish in time" if watched.timed_out else f"exited with status {watched.status}"
        raise BuildError(f"{what} {why}: {watched.last_lines(2)} (log {log})")
