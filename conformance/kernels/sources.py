"""What a kernel argument names, and the image virtme-ng boots for it.

  path          a kernel image (vmlinuz, bzImage) or a kernel build tree, booted as it is
  6.1           the newest Debian kernel of that series in the host's apt sources
  6.1.0-50      a Debian kernel ABI (6.12 and later: 6.12.107+deb12)
  linux-image-… a Debian kernel package name
  v6.6.17       an upstream tag: virtme-ng fetches Ubuntu's mainline build of it (needs kernel.ubuntu.com)

A Debian kernel is fetched with `apt-get download` and unpacked into a cache with `dpkg-deb -x`; nothing is
installed, so the host's /boot and /lib/modules stay as they are. virtme-ng finds the modules beside the image
(<root>/boot/vmlinuz-R and <root>/lib/modules/R) and loads the ones the guest needs from its initramfs.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..interruption import run_reaped
from .images import build_tree_problem, image_problem

# Debian's name for the machine, in its kernel package names (linux-image-<abi>-<flavour>).
DEBIAN_FLAVOUR = {"x86_64": "amd64", "aarch64": "arm64"}
UPSTREAM_TAG = re.compile(r"v\d+(\.\d+)*(-rc\d+)?\Z")  # the form vng itself accepts for a mainline download
SERIES = re.compile(r"\d+\.\d+\Z")
ABI = re.compile(r"\d+\.\d+\.\d+(-\d+|\+deb\d+)\Z")  # 6.1.0-50, 6.12.107+deb12
PACKAGE = re.compile(r"linux-image-[a-z0-9.+-]+\Z")
APT_TIMEOUT = 600


class KernelSourceError(Exception):
    """A kernel argument that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Kernel:
    spec: str    # what the user asked for
    image: str   # the path (or upstream tag) given to `vng --run`
    label: str   # a short name for progress lines and file names


def _is_local(spec: str) -> bool:
    return os.sep in spec or os.path.exists(spec)


def needs_cache(spec: str) -> bool:
    """The argument names a Debian kernel, which is unpacked into the cache."""
    return not _is_local(spec) and bool(SERIES.match(spec) or ABI.match(spec) or PACKAGE.match(spec))


def check(spec: str) -> None:
    """Refuse an argument that names no kernel, before anything is fetched or booted."""
    if _is_local(spec):
        _local(spec)
    elif not (UPSTREAM_TAG.match(spec) or needs_cache(spec)):
        raise _unknown(spec)


def resolve(spec: str, cache: Path, note: Callable[[str], None] = lambda text: None) -> Kernel:
    if _is_local(spec):
        return _local(spec)
    if UPSTREAM_TAG.match(spec):
        return Kernel(spec, spec, spec)
    if needs_cache(spec):
        return _debian(spec, cache, note)
    raise _unknown(spec)


def _unknown(spec: str) -> KernelSourceError:
    return KernelSourceError(f"{spec}: not a kernel image or build tree, a Debian kernel series (6.1), ABI (6.1.0-50) "
                            "or package (linux-image-…), nor an upstream tag (v6.6.17)")


def _local(spec: str) -> Kernel:
    path = Path(spec)
    if not path.exists():
        raise KernelSourceError(f"{spec}: no such file or directory")
    if path.is_file() and not os.access(path, os.R_OK):
        raise KernelSourceError(f"{spec}: not readable (distribution images in /boot are often mode 0600)")
    problem = build_tree_problem(spec) if path.is_dir() else image_problem(spec)
    if problem:
        raise KernelSourceError(f"{spec}: {problem}")
    name = path.name if path.is_file() else path.resolve().name
    return Kernel(spec, str(path.resolve()), re.sub(r"^(vmlinuz|bzImage|Image)-?", "", name) or name)


def _flavour() -> str:
    machine = platform.machine()
    if machine not in DEBIAN_FLAVOUR:
        raise KernelSourceError(f"no Debian kernel flavour known for {machine}; give a kernel image path instead")
    return DEBIAN_FLAVOUR[machine]


def _apt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    program = shutil.which(args[0])
    if program is None:
        raise KernelSourceError(f"{args[0]} not found: a Debian kernel needs an apt host with Debian's archive in its "
                                "sources; give a kernel image path instead")
    try:
        return run_reaped([program, *args[1:]], cwd=cwd, timeout=APT_TIMEOUT, env=dict(os.environ, LC_ALL="C"))
    except subprocess.TimeoutExpired:
        raise KernelSourceError(f"{' '.join(args)} did not finish within {APT_TIMEOUT} s") from None


def release_key(release: str) -> tuple:
    """Orders kernel releases as versions: 6.1.0-53 after 6.1.0-50, 6.12.107 after 6.12.9, 6.12 after 6.1."""
    return tuple(int(n) for n in re.findall(r"\d+", release))


def package_for(spec: str, available: list[str], flavour: str) -> str:
    """The package a series, ABI or package name means, among the package names apt knows."""
    if PACKAGE.match(spec):
        candidates = [spec]
    elif ABI.match(spec):
        candidates = [f"linux-image-{spec}-{flavour}-unsigned", f"linux-image-{spec}-{flavour}"]
    else:
        pattern = re.compile(rf"linux-image-({re.escape(spec)}\.\d+(?:-\d+|\+deb\d+))-{flavour}(-unsigned)?\Z")
        found = {}
        for name in available:
            match = pattern.match(name)
            if match:  # prefer the unsigned package of an ABI: the same image without the signature wrapper
                abi = match.group(1)
                if match.group(2) or abi not in found:
                    found[abi] = name
        if not found:
            raise KernelSourceError(f"{spec}: no Debian {flavour} kernel of that series in this host's apt sources "
                                    "(is Debian's archive listed, and apt-get update run?)")
        return found[max(found, key=release_key)]
    for name in candidates:
        if name in available:
            return name
    raise KernelSourceError(f"{spec}: no package {candidates[0]} in this host's apt sources")


def _debian(spec: str, cache: Path, note: Callable[[str], None]) -> Kernel:
    flavour = _flavour()
    listed = _apt("apt-cache", "pkgnames", "linux-image-")
    if listed.returncode != 0:
        raise KernelSourceError(f"apt-cache pkgnames failed: {_last_line(listed.stderr)}")
    package = package_for(spec, listed.stdout.split(), flavour)
    root = cache / package
    image = _image_in(root)
    if image is None:
        note(f"fetching {package} with apt-get download, unpacking it into {root}")
        _unpack(package, cache, root)
        image = _image_in(root)
        if image is None:
            raise KernelSourceError(f"{package}: the package holds no boot/vmlinuz-* image")
    return Kernel(spec, str(image), image.name[len("vmlinuz-"):])


def _image_in(root: Path) -> Path | None:
    if not (root / ".unpacked").exists():
        return None
    images = sorted((root / "boot").glob("vmlinuz-*"))
    return images[0] if images else None


def _unpack(package: str, cache: Path, root: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as work:
        got = _apt("apt-get", "download", package, cwd=Path(work))
        debs = list(Path(work).glob("*.deb"))
        if got.returncode != 0 or len(debs) != 1:
            raise KernelSourceError(f"apt-get download {package} failed: {_last_line(got.stderr or got.stdout)}")
        tree = Path(work) / "tree"
        unpacked = _apt("dpkg-deb", "-x", str(debs[0]), str(tree))
        if unpacked.returncode != 0:
            raise KernelSourceError(f"dpkg-deb -x {debs[0].name} failed: {_last_line(unpacked.stderr)}")
        (tree / ".unpacked").write_text(debs[0].name + "\n")
        if root.exists():  # a partial tree from an interrupted run
            shutil.rmtree(root)
        tree.rename(root)  # atomic: a reader sees no tree or a whole one


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
