"""Self-tests of `conformance arch` without a foreign guest: its options and missing tools (one line, exit status 2),
the binfmt_misc entry it needs (crafted entries), the userland it builds and the kernel it finds there, the guest's
command line, and the whole runner through a stand-in for vng that runs the guest's command here. The real run
(debootstrap under QEMU's user-mode emulation, an emulated arm64 or s390x guest) is `ci/arch arm64`, as root."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import nested_run
import pytest
from commands import conformance, refused

from conformance.arches import machines, runner
from conformance.arches import tools as arch_tools
from conformance.cli import main
from conformance.compat import build
from conformance.kernels import guest
from conformance.kernels.sources import Kernel

ARM64 = machines.MACHINES["arm64"]
FAKE_CHROOT_TOOLS = types.SimpleNamespace(mount="mount", umount="umount", chroot="chroot", debootstrap="debootstrap")


# ---- options and tools --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["arch", "mips"], "unknown architecture 'mips': arm64, s390x is what this command boots"),
    (["arch", "arm64", "--mirror", "ftp://example.org/debian"],
     "--mirror ftp://example.org/debian: not an http://, https:// or file:// URL"),
    (["arch", "arm64", "--timeout", "0"], "--timeout 0: not a number of seconds above 0 and at most 86400"),
    (["arch", "arm64", "--cpus", "0"], "--cpus 0: not a whole number from 1 to"),
    (["arch", "arm64", "--memory", "12"], "--memory 12: not a size such as 2G or 1536M"),
    (["arch"], "the following arguments are required: ARCH"),
    (["arch", "arm64", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_a_bad_option_is_one_line_and_exit_2(argv, message, tmp_path):
    said = refused(conformance(*argv, "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")), "arch")
    assert said.startswith(message)


def test_a_path_virtme_ng_would_misread_is_refused(tmp_path):
    said = refused(conformance("arch", "arm64", "--out", str(tmp_path / "o,ut"), "--cache", str(tmp_path)), "arch")
    assert said.startswith(f"--out {tmp_path / 'o,ut'}: virtme-ng cannot pass")


def binfmt(tmp_path: Path, entry: str | None, status: bool = True) -> Path:
    directory = tmp_path / "binfmt_misc"
    directory.mkdir()
    if status:
        (directory / "status").write_text("enabled\n")
    if entry is not None:
        (directory / ARM64.binfmt).write_text(entry)
    return directory


@pytest.mark.parametrize(("entry", "status", "problem"), [
    ("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n", True, ""),
    (None, False, "binfmt_misc is not mounted at"),
    (None, True, "no binfmt_misc entry qemu-aarch64, so arm64 programs cannot run here"),
    ("disabled\ninterpreter /usr/bin/qemu-aarch64\nflags: F\n", True, "is disabled (update-binfmts --enable"),
    ("enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: OC\n", True, "lacks the F flag"),
])
def test_the_binfmt_misc_entry_must_exist_be_enabled_and_fixed(tmp_path, entry, status, problem):
    found = arch_tools.binfmt_problem(ARM64, binfmt(tmp_path, entry, status))
    assert (problem in found) if problem else found == ""


def test_a_missing_tool_is_named_with_its_package(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(arch_tools.shutil, "which",  # the same shutil as compat.tools'
                        lambda name, path=None: None if name == "qemu-system-aarch64" else f"/b/{name}")
    with pytest.raises(arch_tools.MissingTools) as e:
        arch_tools.find_tools(ARM64)
    assert str(e.value) == ("missing qemu-system-aarch64 (apt package qemu-system-arm). ci/install-arch-tools "
                            "installs the apt packages")


def test_without_its_binfmt_entry_a_foreign_architecture_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(arch_tools.shutil, "which", lambda name, path=None: f"/b/{name}")
    with pytest.raises(arch_tools.MissingTools, match="no binfmt_misc entry qemu-aarch64"):
        arch_tools.find_tools(ARM64, binfmt(tmp_path, None))
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")  # native: nothing to emulate
    assert arch_tools.find_tools(ARM64, tmp_path / "no-binfmt_misc").vng == "/b/vng"


def test_not_root_is_refused(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(arch_tools.MissingTools, match="conformance arch needs root"):
        arch_tools.find_tools(ARM64)


# ---- the userland and the guest -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(machines.MACHINES))
def test_the_userland_has_the_suites_packages_a_kernel_busybox_and_udev(name):
    machine = machines.MACHINES[name]
    command = build.debootstrap_command(FAKE_CHROOT_TOOLS, Path("/c/x.partial"), "http://m/debian", machine.target)
    assert command[:3] == ["debootstrap", f"--arch={name}", "--variant=minbase"]
    included = command[3].split("=", 1)[1].split(",")
    assert set(included) >= {*build.PACKAGES, "busybox-static", "udev", "kmod", f"linux-image-{name}"}
    assert machine.target.name == f"bookworm-{name}"
    assert build.recipe("http://m/debian", machine.target) != build.recipe("http://m/debian")


def test_a_foreign_userland_runs_its_programs_without_a_personality():
    argv = build.in_chroot(FAKE_CHROOT_TOOLS, Path("/c/root"), ["/opt/python"], personality=ARM64.target.personality)
    assert argv == ["chroot", "/c/root", "/opt/python"]


def fake_userland(root: Path, releases: dict) -> Path:
    """A tree with /boot/vmlinuz-R for each release, and /lib/modules/R for those whose value is true."""
    (root / "boot").mkdir(parents=True)
    for release, modules in releases.items():
        (root / "boot" / f"vmlinuz-{release}").write_bytes(b"MZ")
        if modules:
            (root / "lib" / "modules" / release).mkdir(parents=True)
    return root


def test_the_kernel_is_the_userlands_newest_with_its_modules(tmp_path):
    root = fake_userland(tmp_path / "r", {"6.1.0-9-arm64": True, "6.1.0-50-arm64": True, "6.1.0-57-arm64": False})
    kernel = runner.userland_kernel(root)
    assert kernel == Kernel("6.1.0-50-arm64", str(root / "boot" / "vmlinuz-6.1.0-50-arm64"), "6.1.0-50-arm64")
    with pytest.raises(runner.Failed, match="has no /boot/vmlinuz-R with its /lib/modules/R"):
        runner.userland_kernel(fake_userland(tmp_path / "empty", {"6.1.0-57-arm64": False}))


def test_what_virtme_ngs_init_runs_and_the_userland_lacks_is_taken_from_busybox(tmp_path):
    root = tmp_path / "r"
    (root / "usr" / "sbin").mkdir(parents=True)
    (root / "usr" / "sbin" / "poweroff").write_text("")
    assert runner.busybox_applets(root) == ["ip"]
    assert os.readlink(root / "usr" / "sbin" / "ip") == "/bin/busybox"
    assert runner.busybox_applets(root) == [], "a second run links nothing"


def test_the_guest_boots_on_the_userland_with_the_report_directory_inside_it():
    root = guest.GuestRoot(arch="arm64", path="/c/bookworm-arm64", python="/opt/conformance/venv/bin/python",
                           shared=runner.SHARED)
    kernel = Kernel("6.1.0-50-arm64", "/c/bookworm-arm64/boot/vmlinuz-6.1.0-50-arm64", "6.1.0-50-arm64")
    argv = guest.vng_command(types.SimpleNamespace(vng="/v/vng"), kernel, kvm=False, cpus=2, memory="2G", user=None,
                             shared_dir="/o/.run-x", command="true", root=root)
    assert argv == ["/v/vng", "--disable-kvm", "--verbose", "--run", kernel.image, "--cpus", "2", "--memory", "2G",
                    "--rwdir", f"{runner.SHARED}=/o/.run-x", "--exec", "true", "--arch", "arm64", "--root",
                    "/c/bookworm-arm64"]


# ---- the runner, with a stand-in for vng --------------------------------------------------------------------------

FAKE_VNG = """\
#!{python}
# Stands in for vng on a foreign root: the guest's paths (its interpreter, the shared directory) become this
# machine's, then the guest's command runs here.
import subprocess, sys
args = sys.argv[1:]
if args[args.index("--arch") + 1] not in ("amd64", "arm64", "armhf", "ppc64el", "s390x", "riscv64"):  # vng's names
    print("unsupported architecture", args[args.index("--arch") + 1])
    sys.exit(1)
inside, outside = args[args.index("--rwdir") + 1].split("=", 1)
command = args[args.index("--exec") + 1].replace(inside, outside).replace({venv!r}, {python!r})
sys.exit(subprocess.call(["sh", "-c", command]))
"""


@pytest.fixture
def fake_arch(tmp_path, monkeypatch):
    vng = tmp_path / "bin" / "vng"
    vng.parent.mkdir()
    vng.write_text(FAKE_VNG.format(python=sys.executable, venv=f"{build.VENV}/bin/python"))
    vng.chmod(0o755)
    root = fake_userland(tmp_path / "cache" / "bookworm-arm64", {"6.1.0-fake-arm64": True})
    monkeypatch.setattr(runner, "find_tools", lambda machine: arch_tools.Tools(None, str(vng), os.environ["PATH"]))
    monkeypatch.setattr(runner, "_prepared", lambda tools, machine, options, logs: (root, 12.0))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    return tmp_path


def test_an_arch_run_writes_its_report_matrix_summary_and_log(fake_arch, capsys):
    out = fake_arch / "out"
    status = main(["arch", "arm64", "--out", str(out), "--cache", str(fake_arch / "cache"), "-n", "0", "--",
                   "-p", "no:randomly", "-k", "test_locks_across_execve and posix"])
    assert status == 0, capsys.readouterr()
    reports = [path for path in out.glob("*.json") if path.name != "matrix.json"]
    assert len(reports) == 1
    assert {path.name for path in out.iterdir()} >= {"matrix.md", "arch.md", "logs"}
    assert not list(out.glob(".run-*")), "a staging directory was left behind"
    summary = (out / "arch.md").read_text()
    assert "# The suite on arm64 (little-endian)" in summary and "userland: built in 12 s" in summary
    assert "| 6.1.0-fake-arm64 | " in summary and "root-tmpfs.partial.json |" in summary
    assert "conformance-kernels: booted" in (out / "logs" / "6.1.0-fake-arm64.console.log").read_text()


DRIVER = """
import os, sys
from pathlib import Path
from conformance.arches import runner
from conformance.arches import tools as arch_tools
from conformance.cli import main
vng, root = sys.argv[1], Path(sys.argv[2])
runner.find_tools = lambda machine: arch_tools.Tools(None, vng, os.environ["PATH"])
runner._prepared = lambda tools, machine, options, logs: (root, None)
sys.exit(main(["arch", "arm64", "--out", sys.argv[3], "--cache", str(root.parent)]))
"""

SLEEPING_VNG = """#!/bin/sh
# Stands in for a guest that runs for long: it says where it is, with a job of its own, then waits.
sleep 600 &
echo $$ $! > {pids}
wait
"""


@pytest.mark.skipif(sys.platform != "linux", reason="finds the guest's processes through /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_guest_ends_it_and_the_command_in_one_line(tmp_path, sig):
    pids = tmp_path / "pids"
    vng = tmp_path / "vng"
    vng.write_text(SLEEPING_VNG.format(pids=pids))
    vng.chmod(0o755)
    root = fake_userland(tmp_path / "cache" / "bookworm-arm64", {"6.1.0-fake-arm64": True})
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(vng), str(root), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=nested_run.ROOT)
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and len(pids.read_text().split()) == 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + sig, err
    assert err.splitlines()[-1] == f"conformance: arch: stopped by {sig.name}"
    for pid in map(int, pids.read_text().split()):
        assert not os.path.exists(f"/proc/{pid}"), f"the guest's process {pid} was left behind"
    assert not list(out.glob(".run-*")), "the guest's staging directory was left behind"
