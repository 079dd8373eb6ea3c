"""Self-tests of what a report says about a 32-bit userland on a 64-bit kernel (`conformance compat`): its
architecture, the pidfd_getfd number of every machine the shared syscall table numbers, and the filesystem of a path
that no mount listed holds (a chroot's own files)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from conformance.platforms import constants, detect, pidfd_getfd_number


@pytest.fixture
def kernel_x86_64(tmp_path, monkeypatch):
    arch = tmp_path / "arch"
    arch.write_text("x86_64\n")
    monkeypatch.setattr(constants(), "KERNEL_MACHINE", str(arch))


@pytest.mark.parametrize(("machine", "bits", "expected"), [
    ("i686", "32bit", "i686 on x86_64"),     # setarch i686 (PER_LINUX32) and a 32-bit interpreter
    ("x86_64", "32bit", "i686 on x86_64"),   # a 32-bit interpreter without the personality
    ("i686", "64bit", "x86_64"),             # a 64-bit interpreter under setarch i686 is no 32-bit userland
    ("x86_64", "64bit", "x86_64"),
])
def test_the_architecture_says_a_32_bit_userland_on_a_64_bit_kernel(kernel_x86_64, monkeypatch, machine, bits,
                                                                     expected):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(platform, "architecture", lambda *a, **k: (bits, "ELF"))
    assert detect.arch() == expected
    assert f"-{expected.replace(' ', '-')}-py" in detect.platform_id("linux", "ext4")


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="setarch i686 on x86_64")
def test_a_64_bit_interpreter_under_setarch_i686_still_says_x86_64():
    code = "from conformance.platforms import detect; print(detect.arch(), detect.platform.machine())"
    done = subprocess.run(["setarch", "i686", sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["x86_64", "i686"]


@pytest.mark.parametrize(("machine", "number"), [("x86_64", 438), ("i686", 438), ("aarch64", 438), ("armv8l", 438),
                                                 ("riscv64", 438), ("alpha", 548), ("mips64", None)])
def test_pidfd_getfd_has_its_number_wherever_the_shared_table_numbers_it(machine, number):
    assert constants("linux") is constants() or sys.platform != "linux"
    assert pidfd_getfd_number(machine) == (number if sys.platform == "linux" else None)


@pytest.mark.skipif(sys.platform != "linux", reason="statfs f_type names are Linux's")
def test_a_path_no_listed_mount_holds_is_named_by_statfs(tmp_path, monkeypatch):
    listed = detect.filesystem_type(str(tmp_path))
    assert listed != "unknown"
    assert detect.statfs_type(str(tmp_path)) == listed
    assert detect.statfs_type("/proc") == "proc"
    monkeypatch.setattr(detect, "mount_table", lambda: [("/proc", "proc")])  # a chroot's view: no line for its root
    assert detect.filesystem_type(str(tmp_path)) == listed
    monkeypatch.setattr(constants(), "STATFS_MAGIC", {})
    assert detect.filesystem_type(str(tmp_path)).startswith("0x")
