"""Self-tests of conformance.locks with each OS's constants simulated: struct flock packing per layout, command
numbers from the platform module where Python lacks them, and a missing family as LockFamilyUnavailable."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import locks
from conformance.platforms import constants

FCNTL_NAMES = ("F_OFD_GETLK", "F_OFD_SETLK", "F_OFD_SETLKW", "F_RDLCK", "F_WRLCK", "F_UNLCK", "F_GETLK",
               "F_SETLK", "F_SETLKW")


@pytest.fixture
def simulate(monkeypatch):
    """simulate(os, keep=()): locks.py sees that OS's constants; Python's fcntl keeps only the names in keep."""

    def apply(os_name: str, keep=()) -> None:
        monkeypatch.setattr(locks, "constants", lambda: constants(os_name))
        monkeypatch.setattr("conformance.platforms.probes.constants", lambda name=None: constants(os_name))
        for name in FCNTL_NAMES:
            if name not in keep:
                monkeypatch.delattr(fcntl, name, raising=False)

    return apply


@pytest.mark.parametrize(("os_name", "size", "write"), [("linux", 32, 1), ("freebsd", 32, 3), ("darwin", 24, 3)])
def test_struct_flock_is_packed_in_each_platforms_order(simulate, os_name, size, write):
    simulate(os_name)
    data = locks.pack_flock("write", start=100, length=7, whence=1, pid=0)
    assert len(data) == size
    fields = locks.unpack_flock(data)
    assert (fields["l_type"], fields["l_start"], fields["l_len"], fields["l_whence"]) == (write, 100, 7, 1)
    layout = constants(os_name).FLOCK_FORMAT
    assert struct.unpack(layout, data) == tuple(fields[name] for name in constants(os_name).FLOCK_FIELDS)


def test_macos_ofd_commands_come_from_the_platform_module(simulate):
    simulate("darwin")
    assert locks.commands("ofd") == (92, 90, 91)
    assert locks.commands("posix") == (7, 8, 9)


def test_freebsd_has_no_ofd_locks(simulate):
    simulate("freebsd")
    with pytest.raises(locks.LockFamilyUnavailable, match="F_OFD_GETLK"):
        locks.available("ofd")
    locks.available("posix")


def test_an_unknown_os_has_no_fcntl_families(simulate):
    simulate("generic")
    for family in ("posix", "ofd"):
        with pytest.raises(locks.LockFamilyUnavailable):
            locks.available(family)


def test_flock_without_fcntl_flock_is_unavailable(monkeypatch):
    monkeypatch.delattr(fcntl, "flock")
    with pytest.raises(locks.LockFamilyUnavailable, match="flock"):
        locks.available("flock")


def test_lock_cases_without_ofd_locks_are_unsupported_not_failed(tmp_path):
    """The whole lock area on a simulated FreeBSD-like platform: every OFD case unsupported, the rest still pass."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "no_ofd.py").write_text(
        "import fcntl\n"
        "from conformance.platforms import constants\n"
        "for name in ('F_OFD_GETLK', 'F_OFD_SETLK', 'F_OFD_SETLKW'):\n"
        "    if hasattr(fcntl, name):\n"
        "        delattr(fcntl, name)\n"
        "    setattr(constants(), name, None)\n")
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]), TMPDIR=str(tmp_path / "tmp"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(root / "conformance" / "cases" / "test_locks.py"), "-q", "-p", "no_ofd",
         "-p", "no:cacheprovider", "-p", "no:randomly", "--conformance-report", str(tmp_path / "report")],
        cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    (path,) = (tmp_path / "report").glob("*.json")
    cases = json.loads(path.read_text())["cases"]
    wrong = [(c["id"], c["outcome"]) for c in cases
             if c["outcome"] != ("unsupported" if "ofd" in c["id"] else "pass")]
    assert not wrong, wrong[:10]
    assert all("F_OFD" in c["reason"] for c in cases if c["outcome"] == "unsupported")
