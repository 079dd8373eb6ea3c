"""Self-tests of conformance.locks with each OS's constants simulated: struct flock packing per layout, command
numbers from the platform module where Python lacks them, a missing family as LockFamilyUnavailable, and the request
cache behind a family's lock and unlock. (The registry itself: tests/test_lock_families.py.)"""

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
        monkeypatch.setattr("conformance.platforms.constants", lambda name=None: constants(os_name))
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


# ---- the request cache of set_lock and unlock ----------------------------------------------------------------------

@pytest.fixture
def recorded(monkeypatch):
    """fcntl.fcntl and fcntl.flock record their arguments instead of calling the kernel (the requests of a
    simulated OS would not work here)."""
    calls: list = []
    monkeypatch.setattr(fcntl, "fcntl", lambda fd, command, arg=0: calls.append((command, arg)) or arg)
    monkeypatch.setattr(fcntl, "flock", lambda fd, operation: calls.append(operation))
    return calls


def expected_request(family: str, kind: str, start: int = 0, length: int = 0, whence: int = os.SEEK_SET,
                     wait: bool = False) -> tuple:
    """What set_lock passes to fcntl, built now by the uncached functions."""
    _, setlk, setlkw = locks.commands(family)
    return setlkw if wait else setlk, locks.pack_flock(kind, start, length, whence)


def lock_and_unlock(name: str) -> None:
    family = locks.family(name)
    family.lock(3, "write")
    family.lock(3, "read", 5, 10, whence=os.SEEK_CUR)
    family.lock(3, "write", wait=True)
    family.unlock(3)
    family.unlock(3, 5, 10)


def expected_lock_and_unlock(family: str) -> list:
    return [expected_request(family, "write"), expected_request(family, "read", 5, 10, os.SEEK_CUR),
            expected_request(family, "write", wait=True), expected_request(family, "unlock"),
            expected_request(family, "unlock", 5, 10)]


def test_cached_requests_never_cross_simulated_platforms(simulate, recorded):
    """Each OS's requests, whatever was cached before under another: the cache is keyed on the constants."""
    for os_name in ("linux", "darwin", "freebsd", "linux", "darwin"):
        simulate(os_name)
        for _ in range(2):  # built, then from the cache
            recorded.clear()
            lock_and_unlock("posix")
            assert recorded == expected_lock_and_unlock("posix"), os_name
    assert len(recorded[0][1]) == 24  # darwin's struct flock, not linux's 32 bytes


def test_a_changed_sys_platform_is_a_changed_platform(monkeypatch, recorded):
    lock_and_unlock("posix")  # cached for this platform
    monkeypatch.setattr(sys, "platform", "darwin")  # conformance.platforms.constants() now answers darwin
    for _ in range(2):
        recorded.clear()
        lock_and_unlock("posix")
        assert recorded == expected_lock_and_unlock("posix")
    assert len(recorded[0][1]) == 24


def test_a_missing_family_raises_on_every_call_even_after_it_worked(simulate, recorded):
    ofd = locks.family("ofd")
    simulate("linux", keep=FCNTL_NAMES)
    ofd.lock(3, "write")  # cached as working here
    simulate("freebsd")
    for _ in range(3):
        with pytest.raises(locks.LockFamilyUnavailable, match="F_OFD_GETLK/SETLK/SETLKW are not defined on freebsd"):
            ofd.lock(3, "write")
        with pytest.raises(locks.LockFamilyUnavailable, match="F_OFD_GETLK/SETLK/SETLKW are not defined on freebsd"):
            ofd.unlock(3)
    simulate("generic")
    for _ in range(2):
        with pytest.raises(locks.LockFamilyUnavailable, match="F_GETLK/SETLK/SETLKW are not defined on generic"):
            locks.family("posix").lock(3, "write")


def test_clear_cache_after_changing_names_in_place(monkeypatch, recorded):
    """The cache cannot see a name removed from the same constants module; clear_cache() makes it look again."""
    ofd = locks.family("ofd")
    ofd.lock(3, "write")
    for name in ("F_OFD_GETLK", "F_OFD_SETLK", "F_OFD_SETLKW"):
        monkeypatch.delattr(fcntl, name, raising=False)
        monkeypatch.setattr(constants(), name, None)
    locks.clear_cache()
    with pytest.raises(locks.LockFamilyUnavailable, match="F_OFD_GETLK"):
        ofd.lock(3, "write")


def test_arguments_struct_refuses_are_refused_after_a_cached_equal_int(recorded):
    posix = locks.family("posix")
    posix.lock(3, "write")
    posix.lock(3, "write", 0, 10)
    for start, length in ((0.0, 0), (0, 0.0), (0.0, 10)):  # equal to cached int keys, but no ints
        with pytest.raises(struct.error):
            posix.lock(3, "write", start, length)


def test_the_cache_is_bounded(monkeypatch, recorded):
    posix = locks.family("posix")
    monkeypatch.setattr(locks, "_REQUESTS_MAX", 8)
    for start in range(40):
        posix.lock(3, "write", start, 1)
        assert len(posix.operations._requests) <= 8
    assert recorded[-1] == expected_request("posix", "write", 39, 1)


def test_the_module_functions_take_a_family_or_its_name(recorded):
    posix = locks.family("posix")
    locks.set_lock(3, "posix", "read", 5, 10, whence=os.SEEK_CUR)
    locks.set_lock(3, posix, "read", 5, 10, whence=os.SEEK_CUR)
    locks.unlock(3, "posix")
    locks.unlock(3, posix)
    assert recorded == [expected_request("posix", "read", 5, 10, os.SEEK_CUR)] * 2 + [
        expected_request("posix", "unlock")] * 2
    with pytest.raises(LookupError, match="no lock family 'fcntl' is registered"):
        locks.set_lock(3, "fcntl", "write")


@pytest.mark.parametrize(("kind", "wait", "operation"), [
    ("read", False, fcntl.LOCK_SH | fcntl.LOCK_NB), ("write", False, fcntl.LOCK_EX | fcntl.LOCK_NB),
    ("unlock", False, fcntl.LOCK_UN), ("read", True, fcntl.LOCK_SH), ("write", True, fcntl.LOCK_EX),
    ("unlock", True, fcntl.LOCK_UN)])
def test_flock_operations(recorded, kind, wait, operation):
    flock = locks.family("flock")
    flock.lock(3, kind, wait=wait)
    flock.unlock(3)
    assert recorded == [operation, fcntl.LOCK_UN]


def test_cached_requests_lock_for_real(tmp_path):
    """Through the cache, on this kernel: a whole-file and a range lock conflict with another description's."""
    path = tmp_path / "locked"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDWR)
    try:
        posix, flock = locks.family("posix"), locks.family("flock")
        for family in (posix, flock):
            for _ in range(3):
                family.lock(fd, "write")
                assert locks.holder(path, family) is not None
                family.unlock(fd)
                assert locks.holder(path, family) is None
        for _ in range(3):
            posix.lock(fd, "write", 5, 10)
            assert locks.holder(path, posix, start=9, length=1) is not None
            posix.unlock(fd, 5, 10)
            assert locks.holder(path, posix, start=9, length=1) is None
    finally:
        os.close(fd)
