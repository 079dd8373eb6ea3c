"""The suite as FreeBSD, macOS, illumos and an unknown OS would run it, simulated on this Linux machine.

tests/simulate_os.py holds each OS's view as data (sys.platform, the socket/fcntl/os names its CPython lacks or
adds, each with its source). Here it is applied in this process (monkeypatched, so undone afterwards) to check
the platform layer, and in whole nested pytest runs, where it is in effect from interpreter start in every
process, to check that the suite collects, runs and reports without a harness crash and that what the OS lacks
is `unsupported`. The kernel is still Linux: passes and fails in the nested runs say nothing about the OS.

Cost, measured on 2 cores: the four nested runs go concurrently (FreeBSD: the whole suite through two
pytest-xdist workers; macOS: the whole suite in one process; illumos and the unknown OS: full collection, then a
handful of cases from every area, because the unknown OS's brute-force descriptor scan makes its full run twice
as slow) and take about 7 s together; the in-process checks take about 1 s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import typing
from pathlib import Path

import pytest
import simulate_os

from conformance import native, platforms
from conformance.harness import fds, leaks
from conformance.harness.barriers import Event
from conformance.harness.children import Child
from conformance.harness.privileges import NOBODY
from conformance.platforms import (
    constants,
    descriptors,
    detect,
    os_name,
    probes,
    process,
    socket_paths,
    socket_table,
)
from conformance.platforms.facts import Facts
from conformance.report.load import read_report

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
OSES = list(simulate_os.SIMULATIONS)

# conformance.platforms module each simulated sys.platform must select.
MODULE_FOR = {"freebsd": "freebsd", "darwin": "darwin", "illumos": "illumos", "haiku": "generic"}
# Every OS module: those os_name() maps a sys.platform to, and the fallback for any other OS.
OS_MODULES = sorted({*platforms._MODULES.values(), "generic"})


@pytest.fixture
def simulated(monkeypatch):
    """simulated(os): this process sees that OS's sys.platform and Python names until the test ends."""

    def apply(name: str) -> simulate_os.Simulation:
        simulation = simulate_os.SIMULATIONS[name]
        sysconfig.get_config_vars()  # cached under the real sys.platform (see simulate_os.apply)
        monkeypatch.setattr(sys, "platform", simulation.platform)
        for entry in simulation.entries:
            module = simulate_os.MODULES[entry.module]
            if entry.value is simulate_os.ABSENT:
                monkeypatch.delattr(module, entry.name, raising=False)
            else:
                monkeypatch.setattr(module, entry.name, entry.value, raising=False)
        probes.probe.cache_clear()
        return simulation

    yield apply
    probes.probe.cache_clear()


# ---- the simulation table itself ---------------------------------------------------------------------------------

def test_every_simulated_difference_names_its_source():
    for name, simulation in simulate_os.SIMULATIONS.items():
        assert os_name(simulation.platform) == simulation.os, name
        assert simulation.entries, name
        for entry in simulation.entries:
            assert entry.module in ("socket", "fcntl", "os"), entry
            assert entry.name.isidentifier() and entry.source.strip(), entry
            if entry.value is not simulate_os.ABSENT:
                assert isinstance(entry.value, int), entry


# ---- (a) the platform facts under each OS --------------------------------------------------------------------------

# The type of every field, from its annotation in the record.
FIELD_TYPES = typing.get_type_hints(Facts)
PATHS = {"FD_DIR", "FD_LINKS", "UNIX_SOCKET_TABLE", "CHILDREN_FILE", "PROC_ROOT", "MOUNTINFO", "MNTTAB", "PROC_LOCKS",
         "PIDFD_FDINFO"}


def _of_type(value, hint) -> bool:
    """Whether value is of the annotated type (Optional, Tuple[X, ...] and Dict[K, V] looked into; no bool for int)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return any(_of_type(value, arg) for arg in args)
    if origin is tuple:
        return isinstance(value, tuple) and all(_of_type(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(_of_type(k, args[0]) and _of_type(v, args[1]) for k, v in value.items())
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _sane(name: str, value) -> bool:
    """Of the field's annotated type, and what that kind of fact must look like (None: the OS has no such thing)."""
    if not _of_type(value, FIELD_TYPES[name]):
        return False
    if name == "NAME":
        return value.isidentifier()
    if value is None:
        return True
    if name in PATHS:
        return value.startswith("/")
    if name.endswith("_FORMAT"):
        return struct.calcsize(value) > 0
    if name == "FLOCK_FIELDS":
        return all(f.startswith("l_") for f in value)
    if name == "NATIVE_LDLIBS":
        return all(a.startswith("-l") for a in value)
    return True


def test_every_default_is_of_its_type_and_means_no_such_thing():
    unnamed = Facts(NAME="generic")
    for name, hint in FIELD_TYPES.items():
        if name != "NAME":
            default = getattr(unnamed, name)
            assert _of_type(default, hint), f"{name}: default {default!r} is not a {hint}"
            assert default in (None, (), {}), f"{name}: the default must be 'no such thing', not {default!r}"


@pytest.mark.parametrize("name", OSES)
def test_platform_record_is_chosen_under_each_os(simulated, name):
    simulated(name)
    assert MODULE_FOR[name] == constants().NAME
    assert constants() is constants(MODULE_FOR[name])


@pytest.mark.parametrize("name", OS_MODULES)
def test_platform_record_holds_sane_values(name):
    facts = constants(name)
    assert type(facts) is Facts
    values = {f.name: getattr(facts, f.name) for f in dataclasses.fields(facts)}
    insane = {field: value for field, value in values.items() if not _sane(field, value)}
    assert not insane, insane
    if facts.FLOCK_FORMAT:
        layout_items = len(struct.unpack(facts.FLOCK_FORMAT, bytes(struct.calcsize(facts.FLOCK_FORMAT))))
        assert layout_items == len(facts.FLOCK_FIELDS)
        assert {"l_type", "l_whence", "l_start", "l_len", "l_pid"} <= set(facts.FLOCK_FIELDS)
        assert len({facts.F_RDLCK, facts.F_WRLCK, facts.F_UNLCK}) == 3


# The size of each structure on LP64, from the OS's header (and golang.org/x/sys unix/ztypes_<os>_amd64.go, made by
# cgo from the same headers): the layouts must match byte for byte, or the kernel reads fields from the wrong place
# (and writes past a short buffer).
STRUCT_SIZES = [
    ("linux", "FLOCK_FORMAT", 32, "Linux include/uapi/asm-generic/fcntl.h struct flock"),
    ("linux", "UCRED_FORMAT", 12, "Linux include/linux/socket.h struct ucred"),
    ("linux", "PIDFD_INFO_FORMAT", 64, "Linux include/uapi/linux/pidfd.h struct pidfd_info to exit_code (SIZE_VER0)"),
    ("linux", "MQ_ATTR_FORMAT", 64, "glibc bits/types/struct_mq_attr.h struct mq_attr (four longs, four reserved)"),
    ("freebsd", "FLOCK_FORMAT", 32, "FreeBSD sys/sys/fcntl.h struct flock (l_sysid last, padded to 8)"),
    ("freebsd", "CMSGCRED_FORMAT", 84, "FreeBSD sys/sys/socket.h struct cmsgcred (CMGROUP_MAX 16)"),
    ("freebsd", "XUCRED_FORMAT", 88, "FreeBSD sys/sys/ucred.h struct xucred (union with cr_pid, LP64)"),
    ("freebsd", "SOCKCRED_FORMAT", 20, "FreeBSD sys/sys/socket.h struct sockcred, before sc_groups[]"),
    ("freebsd", "SOCKCRED2_FORMAT", 28, "FreeBSD sys/sys/socket.h struct sockcred2, before sc_groups[]"),
    ("darwin", "FLOCK_FORMAT", 24, "XNU bsd/sys/fcntl.h struct flock"),
    ("darwin", "XUCRED_FORMAT", 76, "XNU bsd/sys/ucred.h struct xucred (no pid)"),
    ("illumos", "FLOCK_FORMAT", 64, "illumos usr/src/uts/common/sys/fcntl.h struct flock (long l_pad[4])"),
    ("illumos", "STRBUF_FORMAT", 16, "illumos usr/src/uts/common/sys/stropts.h struct strbuf (int, int, caddr_t)"),
    ("illumos", "STRRECVFD_FORMAT", 20, "illumos usr/src/uts/common/sys/stropts.h struct strrecvfd (fill[8])"),
    ("linux", "IOVEC_FORMAT", 16, "Linux include/uapi/linux/uio.h struct iovec"),
    ("linux", "MSGHDR_FORMAT", 56, "glibc bits/socket.h struct msghdr (size_t msg_iovlen and msg_controllen)"),
    ("linux", "CMSGHDR_FORMAT", 16, "glibc bits/socket.h struct cmsghdr (size_t cmsg_len)"),
    ("freebsd", "IOVEC_FORMAT", 16, "FreeBSD sys/sys/_iovec.h struct iovec"),
    ("freebsd", "MSGHDR_FORMAT", 48, "FreeBSD sys/sys/socket.h struct msghdr (int msg_iovlen, socklen_t controllen)"),
    ("freebsd", "CMSGHDR_FORMAT", 12, "FreeBSD sys/sys/socket.h struct cmsghdr (socklen_t cmsg_len)"),
    ("darwin", "IOVEC_FORMAT", 16, "XNU bsd/sys/_types/_iovec_t.h struct iovec"),
    ("darwin", "MSGHDR_FORMAT", 48, "XNU bsd/sys/socket.h struct msghdr (int msg_iovlen, socklen_t controllen)"),
    ("darwin", "CMSGHDR_FORMAT", 12, "XNU bsd/sys/socket.h struct cmsghdr (socklen_t cmsg_len)"),
    ("illumos", "IOVEC_FORMAT", 16, "illumos usr/src/uts/common/sys/uio.h struct iovec"),
    ("illumos", "MSGHDR_FORMAT", 48, "illumos usr/src/uts/common/sys/socket.h struct msghdr under _XPG4_2"),
    ("illumos", "CMSGHDR_FORMAT", 12, "illumos usr/src/uts/common/sys/socket.h struct cmsghdr"),
]


@pytest.mark.parametrize(("os", "name", "size", "source"), STRUCT_SIZES,
                         ids=[f"{o}-{n}" for o, n, _, _ in STRUCT_SIZES])
def test_struct_layouts_have_the_headers_sizes(os, name, size, source):
    assert FIELD_TYPES[name] == typing.Optional[str], f"{name} is no layout field of the record"
    assert struct.calcsize(getattr(constants(os), name)) == size, source


# Linux's struct flock as CPython passes it: built with 64-bit file offsets, so that F_GETLK and F_SETLK are the
# flock64 commands on a 32-bit machine. Its layout on each architecture's C ABI, where a 64-bit integer inside a
# struct is aligned to 4 bytes on i386 (System V i386 ABI) and to 8 elsewhere; a 32-bit userland on a 64-bit kernel
# (conformance compat) runs the first.
LINUX_FLOCK_TARGETS = {"x86_64-linux-gnu": 8, "x86-linux-gnu": 4, "aarch64-linux-gnu": 8, "arm-linux-gnueabihf": 8,
                       "s390x-linux-gnu": 8, "riscv64-linux-gnu": 8, "powerpc64le-linux-gnu": 8}


def _native_layout(fmt: str, int64_alignment: int) -> tuple[list, int]:
    """The offset of each item of a native struct format (h, i, q and x only) and its size, as the struct module lays
    it out on a machine whose 64-bit integers have that alignment."""
    sizes = {"h": 2, "i": 4, "q": 8, "x": 1}
    offsets, at = [], 0
    for count, code in re.findall(r"(\d*)([a-z])", fmt):
        size = sizes[code]
        align = 1 if code == "x" else min(size, int64_alignment)
        at = -(-at // align) * align
        for _ in range(1 if count == "" else int(count)):
            if code != "x":
                offsets.append(at)
            at += size
    return offsets, at


@pytest.mark.parametrize("target", sorted(LINUX_FLOCK_TARGETS))
def test_linux_struct_flock_layout_is_the_c_librarys_on_each_architecture(target, tmp_path):
    pytest.importorskip("ziglang")
    facts = constants("linux")
    offsets, size = _native_layout(facts.FLOCK_FORMAT, LINUX_FLOCK_TARGETS[target])
    checks = [f"_Static_assert(sizeof(struct flock) == {size}, \"sizeof\");"]
    checks += [f"_Static_assert(offsetof(struct flock, {name}) == {offset}, \"{name}\");"
               for name, offset in zip(facts.FLOCK_FIELDS, offsets)]
    source = tmp_path / "flock.c"
    source.write_text("#define _FILE_OFFSET_BITS 64\n#include <fcntl.h>\n#include <stddef.h>\n"
                      + "\n".join(checks) + "\n")
    done = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", target, "-c", "-o",
                           str(tmp_path / "flock.o"), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("name", OS_MODULES)
def test_every_layout_an_os_sets_has_its_size_checked(name):
    facts = constants(name)
    layouts = {f.name for f in dataclasses.fields(facts) if f.name.endswith("_FORMAT") and getattr(facts, f.name)}
    checked = {field for os, field, _, _ in STRUCT_SIZES if os == name}
    assert layouts == checked, f"{name}: no size from a header for {sorted(layouts - checked)}"


@pytest.mark.parametrize("name", OSES)
def test_platform_facts_under_each_os(simulated, name, tmp_path):
    simulation = simulated(name)
    facts = detect.facts(str(tmp_path))
    assert facts.os == simulation.os
    assert facts.id.startswith(detect._slug(simulation.os) + "-")
    assert facts.libc_name and isinstance(facts.libc_version, str)
    assert facts.filesystem_type not in ("", None)


# ---- (b) every probe answers under each OS -------------------------------------------------------------------------

# What each simulated OS lacks, as the probes must say. (Kernel-side answers differ here: Linux's kernel is
# underneath, so only names Python or the platform module lacks are certain.)
ABSENT_EVERYWHERE = {"so_passcred", "so_peercred", "scm_credentials", "so_passpidfd", "so_peerpidfd", "so_passrights",
                     "pidfd_open", "pidfd_getfd", "ofd_locks", "posix_mqueue"}
ABSENT = {
    "freebsd": ABSENT_EVERYWHERE | {"local_peerpid", "streams_sendfd"},
    "darwin": ABSENT_EVERYWHERE | {"msg_cmsg_cloexec", "local_creds", "local_creds_persistent", "streams_sendfd"},
    "illumos": ABSENT_EVERYWHERE | {"msg_cmsg_cloexec", "scm_creds", "local_peercred", "local_peerpid",
                                    "local_creds", "local_creds_persistent"},
    "haiku": ABSENT_EVERYWHERE | {"msg_cmsg_cloexec", "scm_creds", "local_peercred", "local_peerpid",
                                  "local_creds", "local_creds_persistent", "posix_locks", "streams_sendfd"},
}


@pytest.mark.parametrize("name", OSES)
def test_every_probe_answers_under_each_os(simulated, name):
    simulated(name)
    answers = {}
    for probe_name, probe in probes.PROBES.items():
        result = probe()  # the raw probe: run_probe's safety net would hide a raise
        assert isinstance(result, tuple) and len(result) == 2, probe_name
        supported, reason = result
        assert isinstance(supported, bool) and isinstance(reason, str) and reason.strip(), probe_name
        answers[probe_name] = supported
    wrongly_supported = sorted(p for p in ABSENT[name] if answers[p])
    assert not wrongly_supported, wrongly_supported
    assert answers["sock_stream"] and answers["scm_rights"] and answers["flock"]


# ---- the harness's OS-specific paths -------------------------------------------------------------------------------

def test_fd_listing_without_a_trustworthy_fd_directory(monkeypatch, tmp_path):
    """FreeBSD without fdescfs: /dev/fd shows only 0-2, so the harness must notice and scan instead."""
    fake = tmp_path / "fd"
    fake.mkdir()
    for n in ("0", "1", "2"):
        (fake / n).touch()
    real = fds.open_fds()
    monkeypatch.setattr(constants(), "FD_DIR", str(fake))
    monkeypatch.setattr(descriptors, "_TRUSTED", {})
    scanned = fds.open_fds()
    assert {str(fake): False} == descriptors._TRUSTED
    assert scanned == real


def test_a_descriptor_is_named_only_where_the_os_links_it(simulated, tmp_path):
    path = tmp_path / "named"
    with open(path, "w") as f:
        if constants().FD_LINKS:  # Linux: /proc/self/fd links
            assert fds.describe(f.fileno()) == f"fd {f.fileno()} (file {path})"
        simulated("darwin")  # /dev/fd lists descriptors but links to nothing
        assert fds.describe(f.fileno()) == f"fd {f.fileno()} (file)"


# How long a socket path may be under each OS: its sun_path less the margin (platforms.socket_paths); an OS the
# suite knows nothing of gets POSIX's smallest typical sun_path.
SOCKET_PATH_ROOM = {"linux": 100, "freebsd": 96, "darwin": 96, "illumos": 100, "haiku": 84}


@pytest.mark.parametrize("name", OSES)
def test_socket_path_room_comes_from_each_oss_sun_path(simulated, name):
    simulated(name)
    assert socket_paths.room() == SOCKET_PATH_ROOM[name]


@pytest.mark.skipif(constants().NAME != "linux", reason="Linux's room")
def test_socket_path_room_on_linux_is_what_it_always_was():
    assert socket_paths.room() == SOCKET_PATH_ROOM["linux"]


def test_a_socket_directory_too_deep_for_sun_path_moves_to_the_short_tmp(monkeypatch, tmp_path):
    deep = tmp_path / ("d" * socket_paths.room())
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    directory, path = socket_paths.new_directory("sock")
    try:
        assert os.path.dirname(directory) == socket_paths.SHORT_TMP
        assert path == os.path.join(directory, "sock") and socket_paths.fits(path)
        assert not list(deep.iterdir()), "the directory that did not fit is left behind"
    finally:
        os.rmdir(directory)


def test_the_unix_socket_table_lists_a_live_socket_only_where_the_os_has_one(simulated):
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        if constants().UNIX_SOCKET_TABLE:  # Linux /proc/net/unix
            assert {os.fstat(a.fileno()).st_ino, os.fstat(b.fileno()).st_ino} <= socket_table.listed_inodes()
        simulated("freebsd")
        assert socket_table.listed_inodes() is None


# A ps that reads -o as POSIX.1-2024 XCU ps says, as the BSDs', macOS's and illumos's do: "pid=,ppid=" is the pid
# column with the header ",ppid=". It takes its rows from the real ps.
STRICT_PS = """#!{python}
import subprocess, sys
args, columns, headers = sys.argv[1:], [], []
for flag, value in zip(args, args[1:]):
    if flag == "-o":  # names separated by commas; the first "=" starts the last name's header, to the end
        names, _, header = value.partition("=")
        columns += names.split(",")
        headers += [""] * (len(names.split(",")) - 1) + [header]
rows = subprocess.run(["{ps}", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True).stdout
if any(headers):
    print(" ".join(headers))
for row in rows.splitlines():
    values = dict(zip(("pid", "ppid"), row.split()))
    print(" ".join(values[c] for c in columns))
"""


def test_leak_check_finds_a_running_child_with_a_posix_ps(simulated, monkeypatch, tmp_path):
    simulated("darwin")  # no /proc children file: the check asks ps
    real_ps = subprocess.run(["sh", "-c", "command -v ps"], capture_output=True, text=True).stdout.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ps").write_text(STRICT_PS.format(python=sys.executable, ps=real_ps))
    (bin_dir / "ps").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with Event() as go, Child(go.wait) as child:
        try:
            assert child.pid in leaks.child_pids()
        finally:
            go.set()
        child.join()


def test_a_process_of_another_uid_is_found_in_the_process_directory(simulated, monkeypatch, tmp_path):
    for name in ("12", "7", "self"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(constants(), "PROC_ROOT", str(tmp_path))
    assert process.process_of_another_uid() is None, "every entry is this uid's"
    if os.geteuid() == 0:
        os.chown(tmp_path / "12", NOBODY, NOBODY)
        assert process.process_of_another_uid() == 12
    simulated("darwin")  # no process directory recorded: nothing to find, nothing raised
    assert process.process_of_another_uid() is None


def test_becoming_a_reaper_never_raises_under_each_os(simulated):
    for name in OSES:
        simulated(name)
        assert leaks.become_subreaper() is False  # FreeBSD's procctl is not in this libc; the others have none


# Canned mount(8) listings (crafted data): FreeBSD, macOS, util-linux, illumos `mount -v`.
MOUNT_OUTPUT = {
    "freebsd": ("/dev/ada0p2 on / (ufs, local, soft-updates)\nzroot/tmp on /tmp (zfs, local, nosuid)\n"
                "tmpfs on /var/run (tmpfs, local)\n", {"/": "ufs", "/tmp": "zfs", "/var/run": "tmpfs"}),
    "darwin": ("/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)\n"
               "/dev/disk3s5 on /System/Volumes/Data (apfs, local, journaled, nobrowse)\n"
               "map auto_home on /System/Volumes/Data/home (autofs, automounted, nobrowse)\n",
               {"/": "apfs", "/System/Volumes/Data": "apfs", "/System/Volumes/Data/home": "autofs"}),
    "linux": ("/dev/vda on / type ext4 (rw,relatime)\ntmpfs on /dev/shm type tmpfs (rw,nosuid,nodev)\n",
              {"/": "ext4", "/dev/shm": "tmpfs"}),
    "illumos": ("rpool/ROOT/omnios on / type zfs read/write/setuid/devices/dev=4410002 on Thu Jan  1 00:00:00 2026\n"
                "swap on /tmp type tmpfs read/write/setuid/devices/xattr/dev=5a40001 on Thu Jan  1 00:00:00 2026\n",
                {"/": "zfs", "/tmp": "tmpfs"}),
}


@pytest.mark.parametrize("name", list(MOUNT_OUTPUT))
def test_mount_listings_of_each_os_are_parsed(name):
    text, expected = MOUNT_OUTPUT[name]
    assert dict(detect._parse_mount_output(text)) == expected


def test_filesystem_type_from_illumos_mnttab(simulated, monkeypatch, tmp_path):
    simulated("illumos")
    mnttab = tmp_path / "mnttab"
    mnttab.write_text(f"rpool/ROOT/omnios\t/\tzfs\trw,dev=4410002\t1767225600\n"
                      f"swap\t{tmp_path}\ttmpfs\txattr,dev=5a40001\t1767225600\n")
    monkeypatch.setattr(constants(), "MNTTAB", str(mnttab))
    assert detect.filesystem_type(str(tmp_path / "x")) == "tmpfs"
    assert detect.filesystem_type("/usr") == "zfs"


# ---- (d) the C peer's build under other OSes (no compiler: tests/test_native.py) ------------------------------------

def test_macos_cc_shim_without_developer_tools_is_no_compiler(monkeypatch, tmp_path):
    shim = tmp_path / "cc"
    shim.write_text("#!/bin/sh\necho 'xcrun: error: invalid active developer path (/Library/Developer/"
                    "CommandLineTools), missing xcrun at: /Library/Developer/CommandLineTools/usr/bin/xcrun' >&2\n"
                    "exit 1\n")
    shim.chmod(0o755)
    monkeypatch.setenv("CC", str(shim))
    with pytest.raises(native.NoCompiler, match="xcrun"):
        native.build("apue_fd", tmp_path / "out")


def test_illumos_build_links_libsocket(simulated, monkeypatch, tmp_path):
    simulated("illumos")
    commands = []

    def fake_compiler(command, **kwargs):
        commands.append(command)
        Path(command[command.index("-o") + 1]).write_bytes(b"")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(native.subprocess, "run", fake_compiler)
    native.build("apue_fd", tmp_path)
    (command,) = commands
    assert command[-3:] == [str(native.SOURCE_DIR / "apue_fd.c"), "-lsocket", "-lnsl"]


# The C peer's other credential branches, compiled here against this libc's headers plus shims that give them each
# OS's view (crafted from the headers named). Only the branch selection and the field names are checked; the
# real builds happen on the OSes themselves.
C_SHIMS = {
    "freebsd": ([], {"sys/socket.h": """
        #include_next <sys/socket.h>
        #undef SCM_CREDENTIALS
        /* FreeBSD sys/sys/socket.h */
        #define SCM_CREDS 0x03
        #define CMGROUP_MAX 16
        struct cmsgcred { pid_t cmcred_pid; uid_t cmcred_uid; uid_t cmcred_euid; gid_t cmcred_gid;
                          short cmcred_ngroups; gid_t cmcred_groups[CMGROUP_MAX]; };
        """}),
    "darwin": (["-D__APPLE__"], {"sys/socket.h": """
        #include_next <sys/socket.h>
        #undef SCM_CREDENTIALS
        #define SCM_CREDS 0x03 /* XNU bsd/sys/socket.h: defined, but no struct cmsgcred */
        """, "sys/un.h": """
        #include_next <sys/un.h>
        #define SOL_LOCAL 0 /* XNU bsd/sys/un.h */
        #define LOCAL_PEERCRED 0x001
        """, "sys/ucred.h": """
        #include <sys/types.h>
        #define XUCRED_VERSION 0 /* XNU bsd/sys/ucred.h */
        struct xucred { unsigned int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]; };
        """}),
    "illumos": (["-D__sun"], {"sys/socket.h": """
        #include_next <sys/socket.h>
        #undef SCM_CREDENTIALS /* illumos: ucred_t via SCM_UCRED, which the peer does not use */
        """}),
}


@pytest.mark.parametrize("name", list(C_SHIMS))
def test_the_c_peer_compiles_with_each_oss_credential_branch(name, tmp_path):
    cc = native.compiler()
    if cc is None:
        pytest.skip("no C compiler")
    flags, headers = C_SHIMS[name]
    for header, text in headers.items():
        (tmp_path / header).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / header).write_text(textwrap.dedent(text))
    done = subprocess.run([*shlex.split(cc), *native.FLAGS, *flags, "-I", str(tmp_path), "-c", "-o",
                           str(tmp_path / "apue_fd.o"), str(native.SOURCE_DIR / "apue_fd.c")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# ---- (c) the whole suite under each OS, in nested runs ---------------------------------------------------------------

# A few cases from every area, for the runs that only collect everything and run a sample.
SAMPLE = " or ".join([
    "test_passed_descriptor_is_the_same_file", "test_msg_cmsg_cloexec_sets_close_on_exec",
    "test_truncated_control_data_closes_what_does_not_fit and stream", "test_send_fd_delivers_the_same_open_file",
    "test_c_send_fd_to_python_recv_fd", "test_recv_ufd_returns_the_descriptor_and_a_uid",
    "test_peer_credentials_name_the_connecting_process", "test_unprivileged_sender_cannot_state_another_identity",
    "test_receiver_sees_the_identity_of_the_sending_child", "test_a_waiting_lock_blocks_while_held_and_is_granted",
    "test_description_lock_travels_with_a_passed_descriptor",
    "test_token_through_the_channel_gives_the_senders_open_file_description",
])

RUNS = {
    "freebsd": {"args": ["-n", "2"], "env": {}},  # through pytest-xdist workers: separate interpreters
    "darwin": {"args": [], "env": {}},
    "illumos": {"args": ["-k", SAMPLE], "env": {"CC": "/nonexistent/cc"}},  # OmniOS without gcc installed
    "haiku": {"args": ["-k", SAMPLE], "env": {}},
}

# What each OS lacks, as cases that must come out `unsupported` (case ids; only * is a wildcard, as in the
# expectation files).
NO_LINUX_CREDENTIALS = ["credentials/test_unprivileged_sender_cannot_state_another_identity[*]",
                        "credentials/test_a_nonexistent_pid_is_refused[*]", "credentials/test_root_stating_another_pid",
                        "credentials/test_scm_pidfd_*", "credentials/test_so_peerpidfd_*"]
NO_OFD = ["locks/*[*ofd*]"]
NO_PIDFD_GETFD_OR_STREAMS = ["duplication/*", "streams/*"]  # and no STREAMS: a Linux pipe refuses I_NREAD
MUST_BE_UNSUPPORTED = {
    "freebsd": NO_LINUX_CREDENTIALS + NO_OFD + NO_PIDFD_GETFD_OR_STREAMS + [
        "rights/test_unprivileged_sender_is_limited_by_its_inflight_count"],
    "darwin": NO_LINUX_CREDENTIALS + NO_OFD + NO_PIDFD_GETFD_OR_STREAMS + [
        "rights/test_unprivileged_sender_is_limited_by_its_inflight_count", "rights/test_msg_cmsg_cloexec_*",
        "credentials/test_every_message_carries_credentials_when_the_receiver_asks[*]",
        "credentials/test_local_creds_*", "credentials/test_receiver_sees_the_identity_of_the_sending_child[*]"],
    "illumos": NO_LINUX_CREDENTIALS + NO_OFD + NO_PIDFD_GETFD_OR_STREAMS + [
        "rights/test_msg_cmsg_cloexec_*", "credentials/test_peer_credentials_name_the_connecting_process[*]",
        "credentials/test_receiver_sees_the_identity_of_the_sending_child[*]",
        "protocol/test_recv_ufd_returns_the_descriptor_and_a_uid[*]", "protocol/test_c_*"],
    "haiku": NO_LINUX_CREDENTIALS + NO_OFD + NO_PIDFD_GETFD_OR_STREAMS + [
        "locks/*[*posix*]", "rights/test_msg_cmsg_cloexec_*",
        "credentials/test_peer_credentials_name_the_connecting_process[*]"],
}

# How an exception a case did not expect from the OS begins: the harness or the suite crashed on a missing name.
CRASHES = ("AttributeError", "ImportError", "ModuleNotFoundError", "NameError", "TypeError", "KeyError",
           "IndexError", "UnboundLocalError", "error:")


def _start(name: str, tmp_path: Path) -> dict:
    run = RUNS[name]
    work = tmp_path / name
    (work / "tmp").mkdir(parents=True)
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text("import simulate_os  # noqa: F401 (applies CONFORMANCE_SIMULATE_OS)\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "CONFORMANCE_")) and k != "PYTEST_ADDOPTS"}
    env.update(run["env"], TMPDIR=str(work / "tmp"), CONFORMANCE_SIMULATE_OS=name,
               CONFORMANCE_SIMULATE_LOG=str(work / "log.jsonl"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), str(TESTS), os.environ.get("PYTHONPATH")])))
    output = open(work / "output.txt", "w")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", str(ROOT / "conformance" / "cases"), "-q", "-p", "simulate_os",
             "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "timeout=60",
             "--conformance-report", str(work / "report"), *run["args"]],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        output.close()
    return {"name": name, "proc": proc, "work": work}


def _finish(run: dict) -> dict:
    work = run["work"]
    output = (work / "output.txt").read_text(errors="replace")
    reports = list((work / "report").glob("*.json"))
    log_file = work / "log.jsonl"
    log = [json.loads(line) for line in log_file.read_text().splitlines()] if log_file.exists() else []
    return {**run, "returncode": run["proc"].returncode, "output": output, "reports": reports, "log": log}


def _problems(result: dict) -> list:
    """Everything wrong with one OS's nested run, as sentences (empty when it is right)."""
    name, simulation = result["name"], simulate_os.SIMULATIONS[result["name"]]
    tail = result["output"][-3000:]
    if result["returncode"] not in (0, 1):  # 1: some cases failed, which the Linux kernel underneath explains
        return [f"pytest exited {result['returncode']}:\n{tail}"]
    if "ERROR collecting" in result["output"]:
        return ["a case module did not import:\n" + result["output"][:3000]]
    if len(result["reports"]) != 1:
        return [f"{len(result['reports'])} reports written:\n{tail}"]
    problems = []
    report = read_report(result["reports"][0])  # the schema validator: a bad report raises here
    platform = report.platform
    if platform.os != simulation.os or not platform.id.startswith(detect._slug(simulation.os) + "-"):
        problems.append(f"report names platform {platform.os!r} ({platform.id})")
    if set(platform.capabilities) != set(probes.PROBES):
        problems.append(f"capabilities {sorted(platform.capabilities)}")
    for case in report.cases:
        crashed = case.outcome in ("fail", "error") and case.reason.startswith(CRASHES)
        if case.outcome == "error" or crashed:
            problems.append(f"{case.id} is {case.outcome}: {case.reason[:300]}")
    outcomes = {case.id: case.outcome for case in report.cases}
    for pattern in MUST_BE_UNSUPPORTED[name]:
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
        matched = {cid: o for cid, o in outcomes.items() if regex.fullmatch(cid)}
        if not matched and RUNS[name]["args"][:1] != ["-k"]:
            problems.append(f"no case matches {pattern}")
        problems += [f"{cid} is {o}, not unsupported" for cid, o in matched.items() if o != "unsupported"]
    starts = [line for line in result["log"] if "conformance_imported_before" in line]
    if not starts or any(line["conformance_imported_before"] or line["platform"] != simulation.platform
                         for line in starts):
        problems.append(f"the simulation was not in effect before conformance was imported: {starts}")
    return problems


@pytest.mark.timeout(240)  # about 7 s alone; the margin is for a loaded machine
def test_the_suite_collects_runs_and_reports_under_each_simulated_os(tmp_path):
    runs = []
    try:
        for name in OSES:  # all at once: together they take as long as the slowest alone
            runs.append(_start(name, tmp_path))
        for run in runs:
            run["proc"].wait(timeout=200)
    finally:
        for run in runs:
            if run["proc"].poll() is None:
                run["proc"].kill()
                run["proc"].wait()
    results = {run["name"]: _finish(run) for run in runs}
    problems = {name: _problems(result) for name, result in results.items()}
    assert not any(problems.values()), "\n".join(
        f"{name}: " + "\n  ".join(found) for name, found in problems.items() if found)

    # Every process that collected saw the same cases, whatever the OS: nothing is dropped at collection.
    collected = {(line["collected"], line["ids"]) for result in results.values() for line in result["log"]
                 if "collected" in line}
    assert len(collected) == 1, collected
    (count, _), = collected
    assert count == len(read_report(results["darwin"]["reports"][0]).cases)
    # FreeBSD ran through two pytest-xdist workers: each is an interpreter of its own, simulated from its start.
    # (execnet starts them as `python -c ...`, so their sys.argv is ["-c"]; a case's own `python -c` has more.)
    freebsd_starts = [line for line in results["freebsd"]["log"] if "conformance_imported_before" in line]
    assert sum(1 for line in freebsd_starts if line["argv"] == ["-c"]) == 2, freebsd_starts
    assert sum(1 for line in results["freebsd"]["log"] if "collected" in line) == 2
