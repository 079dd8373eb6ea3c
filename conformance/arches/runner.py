"""`conformance arch`: the suite on another architecture, its Debian kernel booted under QEMU's emulation on a
Debian userland of that architecture.

The userland (compat.build, with the kernel, busybox and udev in it) is built once into the cache; the suite is
installed into it from this checkout on every run (through QEMU's user-mode emulation, in a chroot); then virtme-ng
boots the userland's own kernel with the userland as the guest's root (read-only, over 9p or virtiofs) and the
report directory shared writable, and the guest runs the suite, as `conformance kernels` runs it in its guests.

Exit status: that of `conformance kernels`: 0 the suite ran and nothing failed (with --reference-dir: it fails only
where its family's reference does); 1 a case failed; 3 the userland could not be built or mounted, or the guest did
not boot or wrote no report (its console log is kept); 2 bad input, found before anything is built.
"""

from __future__ import annotations

from pathlib import Path

import conformance

from ..compat import build, mounts
from ..kernels.guest import GuestRoot
from ..kernels.runner import Run, exit_status, kernel_run, loaded_reports, say
from ..kernels.sources import Kernel, release_key
from ..report.gfm import md_escape, table
from ..report.matrix import build_matrix
from ..report.write import write_matrix
from .machines import BUSYBOX_APPLETS, MACHINES, Machine
from .options import BadInput, Options
from .tools import MissingTools, Tools, find_tools

SHARED = "/opt/conformance/run"  # where the guest sees the report directory: a directory of the userland


class Failed(Exception):
    """The userland has no kernel to boot; one line."""


def main(options: Options) -> int:
    machine = MACHINES[options.arch]
    try:
        tools = find_tools(machine)
    except MissingTools as e:
        raise BadInput(str(e)) from None
    logs = options.out / "logs"
    logs.mkdir(exist_ok=True)
    try:
        root, built = _prepared(tools, machine, options, logs)
        kernel = userland_kernel(root)
    except (build.BuildError, mounts.MountError, Failed) as e:
        say(f"conformance arch: {e}")
        return 3
    say(f"{machine.name}: kernel {kernel.image}")
    guest_root = GuestRoot(arch=machine.name, path=str(root), python=f"{build.VENV}/bin/python", shared=SHARED)
    run, _ = kernel_run(tools, kernel, options, False, f"[1/1] {machine.name}", root=guest_root)
    return _conclude(machine, run, built, options)


def _prepared(tools: Tools, machine: Machine, options: Options, logs: Path) -> tuple[Path, float | None]:
    """The userland, built if the cache has none, with this checkout's suite installed and the shared directory's
    mount point made."""
    userland = build.userland(tools.chroot, options.cache, options.mirror, logs, say, machine.target)
    say(f"userland {'from the cache' if userland.built_in is None else f'built in {userland.built_in:.0f} s'}: "
        f"{userland.root}")
    with mounts.mounted(mounts.plan(userland.root), tools.chroot):
        say(f"installing the suite into the {machine.name} userland (log {logs / 'install.log'})")
        build.install_suite(tools.chroot, userland.root, Path(conformance.__file__).resolve().parent.parent, logs,
                            machine.target)
    (userland.root / SHARED.lstrip("/")).mkdir(parents=True, exist_ok=True)
    busybox_applets(userland.root)
    return userland.root, userland.built_in


def busybox_applets(root: Path) -> list[str]:
    """Each of BUSYBOX_APPLETS the userland has no program of, made a link to its busybox; the names linked."""
    linked = []
    for name in BUSYBOX_APPLETS:
        if any((root / directory / name).exists() or (root / directory / name).is_symlink()
               for directory in ("usr/sbin", "usr/bin", "sbin", "bin")):
            continue
        (root / "usr" / "sbin").mkdir(parents=True, exist_ok=True)
        (root / "usr" / "sbin" / name).symlink_to("/bin/busybox")
        linked.append(name)
    return linked


def userland_kernel(root: Path) -> Kernel:
    """The newest kernel the userland has installed, with its modules beside it (<root>/lib/modules/R), as virtme-ng
    finds them."""
    images = sorted((path for path in (root / "boot").glob("vmlinuz-*")
                     if (root / "lib" / "modules" / path.name[len("vmlinuz-"):]).is_dir()),
                    key=lambda path: release_key(path.name))
    if not images:
        raise Failed(f"the userland {root} has no /boot/vmlinuz-R with its /lib/modules/R: was its kernel package "
                     "installed?")
    release = images[-1].name[len("vmlinuz-"):]
    return Kernel(spec=release, image=str(images[-1]), label=release)


def _conclude(machine: Machine, run: Run, built: float | None, options: Options) -> int:
    loaded = loaded_reports([run])
    rows = [[md_escape(cell) for cell in (run.label, "" if run.boot is None else f"{run.boot:.0f} s",
                                          "" if run.suite is None else f"{run.suite:.0f} s",
                                          run.report.name if run.report else run.problem or "")]]
    sections = [f"# The suite on {machine.name} ({machine.byte_order}-endian), under QEMU's emulation", "",
                "userland: " + ("from the cache" if built is None else f"built in {built:.0f} s"), "",
                *table(["kernel", "boot", "suite", "report or problem"], rows), ""]
    if loaded:
        matrix = build_matrix([(r.report.name, report) for r, report in loaded])
        print(f"matrix: {write_matrix(matrix, options.out)['markdown']}")
    (options.out / "arch.md").write_text("\n".join(sections), encoding="utf-8")
    print(f"summary: {options.out / 'arch.md'}")
    return exit_status([run], loaded, options.reference_dirs)
