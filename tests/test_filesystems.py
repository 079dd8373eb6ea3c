"""Self-tests of `conformance filesystems`: the mount plans, a plan carried out by a stand-in for the commands (every
step taken undone on every path: a failed step, a failed undo, a signal), the options and the machine checks as one
line, the matrix and diffs of crafted reports of several filesystems, a filesystem's expectations, the committed
reports; as root, one real tmpfs mount interrupted while its cases run. A real run of every filesystem: README,
"Filesystems"."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from commands import conformance, environment, pytest_run, refused
from reportdata import sample_report

from conformance import expectations
from conformance.filesystems import in_guest, mounting, options, plans, runner, runs
from conformance.interruption import Interruption
from conformance.kernels import console
from conformance.platforms import constants, lock_table
from conformance.report.gfm import md_escape

BASE = "/tmp/conformance-fs-test"


class Commands:
    """Stands in for the system's commands: records each, answers losetup with a device, and fails the ones named."""

    def __init__(self, fail: tuple = (), on_run=None) -> None:
        self.ran: list[tuple] = []
        self.fail = fail  # a command fails when its words start with one of these tuples
        self.on_run = on_run

    def __call__(self, argv: tuple) -> tuple[int, str, str]:
        self.ran.append(argv)
        if self.on_run:
            self.on_run(argv)
        if any(argv[:len(prefix)] == prefix for prefix in self.fail):
            return 32, "", f"{argv[0]}: refused on purpose\n"
        if argv[:2] == ("losetup", "--find"):
            return 0, "/dev/loop7\n", ""
        return 0, "", ""

    def programs(self) -> list[str]:
        return [argv[0] for argv in self.ran]


# ---- plans ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", plans.FILESYSTEMS)
def test_every_plan_mounts_its_target_last_and_opens_it_to_every_user(name):
    plan = plans.plan(name, BASE)
    assert plan.target == f"{BASE}/{name}"
    assert plan.steps[-1].argv == ("chmod", "1777", plan.target)
    mounts = [step for step in plan.steps if step.undo]
    assert mounts[-1].undo[0] == ("umount", plan.target)  # the target is the last thing mounted
    assert all(program in plans.PACKAGES for program in plan.programs())


@pytest.mark.parametrize("name", ["ext4", "xfs", "btrfs"])
def test_a_loop_backed_plan_makes_attaches_and_mounts_in_that_order(name):
    plan = plans.plan(name, BASE)
    programs = [step.argv[0] for step in plan.steps]
    assert programs == ["truncate", f"mkfs.{name}", "losetup", "mkdir", "mount", "chmod"]
    attach = plan.steps[2]
    assert attach.captures and attach.undo == (("losetup", "--detach", f"{{{attach.captures}}}"),)
    assert plan.steps[4].argv[3] == f"{{{attach.captures}}}"


def test_overlay_lays_its_upper_layer_on_a_tmpfs_over_a_lower_one_on_ext4():
    plan = plans.plan("overlay", BASE)
    mount = plan.steps[-2].argv
    assert mount[:4] == ("mount", "-t", "overlay", "overlay")
    assert mount[5] == (f"lowerdir={BASE}/overlay-lower/lower,upperdir={BASE}/overlay-upper/upper,"
                        f"workdir={BASE}/overlay-upper/work")
    mounted = [step.argv[1:3] for step in plan.steps if step.argv[0] == "mount"]
    assert mounted == [("-t", "ext4"), ("-t", "tmpfs"), ("-t", "overlay")]


def test_the_two_bindfs_mounts_differ_in_lock_forwarding_and_in_their_type():
    plain, forwarding = (plans.plan(name, BASE).steps[-2].argv for name in ("bindfs", "bindfs-forwarding"))
    assert "--enable-lock-forwarding" not in plain and "subtype=bindfs" in plain[2]
    assert {"--enable-lock-forwarding", "--multithreaded"} <= set(forwarding)
    assert "subtype=bindfs-forwarding" in forwarding[2]


@pytest.mark.parametrize(("name", "fstype", "version", "path"), [("nfs3", "nfs", "vers=3,proto=tcp", "export"),
                                                                  ("nfs4.2", "nfs4", "vers=4.2", "/")])
def test_an_nfs_plan_serves_a_tmpfs_with_the_kernels_server_and_mounts_it_over_loopback(name, fstype, version, path):
    plan = plans.plan(name, BASE)
    export = f"{BASE}/{name}-export"
    programs = [step.argv[0] for step in plan.steps if step.argv[0] not in ("mkdir", "chmod", "touch")]
    # The server's state on a tmpfs of its own (the guest's / is read-only), the daemons before the export that
    # mountd answers for, nfsd's threads last before the client's mount.
    assert programs == ["mount", "mount", "mount", "rpcbind", "rpc.statd", "exportfs", "rpc.mountd", "rpc.nfsd",
                        "mount"]
    mounted = [step.argv[-1] for step in plan.steps if step.argv[0] == "mount"]
    assert mounted == [export, plans.NFS_STATE, plans.NFSD_FS, plan.target]
    source = f"127.0.0.1:{export if path == 'export' else path}"  # NFSv4 mounts the export as its root
    assert plan.steps[-2].argv == ("mount", "-t", fstype, "-o", version, source, plan.target)
    assert all(step.undo for step in plan.steps if step.argv[0] not in ("mkdir", "chmod", "touch")), "each is undone"
    assert ("exportfs", "-u", f"127.0.0.1:{export}") in [undo for step in plan.steps for undo in step.undo]
    assert "no_root_squash" in plans.EXPORT_OPTIONS  # the root run's cases lock and chown as root
    assert "mount.nfs" in plan.programs()


def test_an_nfs_plan_needs_the_servers_and_the_clients_drivers_and_loads_their_modules(tmp_path):
    plan = plans.plan("nfs3", BASE)
    assert runner.missing(plan, {"tmpfs", "nfs"}, which=lambda program, path: program) == \
        "this kernel has no nfsd driver (/proc/filesystems does not list it)"
    out = tmp_path / "out"
    out.mkdir()
    commands = Commands(fail=(("rpcbind",),))
    chosen = options.Options(filesystems=("nfs3",), out=out, in_guest=True)
    status = runner.main(chosen, execute=commands, types={"tmpfs"})
    assert commands.ran[0] == ("modprobe", "-a", "nfsd", "nfsv3")
    assert status == 0 and commands.ran == commands.ran[:1]  # the drivers did not come: nothing else is tried
    assert "this kernel has no nfsd or nfs driver" in (out / "filesystems.md").read_text()


def test_a_placeholder_not_captured_yet_is_an_error_not_a_literal():
    assert plans.fill(("mount", "{loop_ext4}"), {"loop_ext4": "/dev/loop3"}) == ("mount", "/dev/loop3")
    with pytest.raises(KeyError):
        plans.fill(("mount", "{loop_xfs}"), {})


# ---- carried out and undone -------------------------------------------------------------------------------------

def test_everything_mounted_is_undone_last_first_when_the_body_ends():
    commands = Commands()
    with mounting.mounted(plans.plan("ext4", BASE), commands, Interruption()) as target:
        assert target == f"{BASE}/ext4"
        taken = len(commands.ran)
    assert commands.ran[taken:] == [("umount", f"{BASE}/ext4"), ("losetup", "--detach", "/dev/loop7")]


def test_a_body_that_raises_still_undoes_every_mount():
    commands = Commands()
    with pytest.raises(RuntimeError), mounting.mounted(plans.plan("overlay", BASE), commands, Interruption()):
        raise RuntimeError("the cases broke")
    undone = [argv for argv in commands.ran if argv[0] in ("umount", "losetup") and argv[1] != "--find"]
    assert undone == [("umount", f"{BASE}/overlay"), ("umount", f"{BASE}/overlay-upper"),
                      ("umount", f"{BASE}/overlay-lower"), ("losetup", "--detach", "/dev/loop7")]


def test_a_failed_mount_undoes_the_steps_before_it_and_names_the_step_in_one_line():
    commands = Commands(fail=(("mount", "-t", "xfs"),))
    with pytest.raises(mounting.MountFailed) as failed, \
            mounting.mounted(plans.plan("xfs", BASE), commands, Interruption()):
        pytest.fail("the body ran on a filesystem that was not mounted")
    assert commands.ran[-1] == ("losetup", "--detach", "/dev/loop7")
    assert not any(argv[0] == "umount" for argv in commands.ran)
    message = str(failed.value)
    assert message.startswith(f"xfs: cannot mount xfs on {BASE}/xfs: mount -t xfs /dev/loop7 ")
    assert message.endswith("mount: refused on purpose") and "\n" not in message


def test_a_refused_unmount_is_retried_lazily_and_one_that_stays_is_named():
    commands = Commands(fail=(("umount",),))
    problems = []
    with mounting.mounted(plans.plan("tmpfs", BASE), commands, Interruption(), on_problem=problems.append):
        pass
    assert commands.ran[-2:] == [("umount", f"{BASE}/tmpfs"), ("umount", "--lazy", f"{BASE}/tmpfs")]
    assert problems == [f"tmpfs: cannot undo 'mount a tmpfs on {BASE}/tmpfs': umount {BASE}/tmpfs: umount: refused "
                        f"on purpose; umount --lazy {BASE}/tmpfs: umount: refused on purpose"]


def test_a_fuse_mount_whose_server_hangs_is_aborted_and_its_server_killed():
    commands = Commands(fail=(("umount", f"{BASE}/bindfs-forwarding"), ("umount", f"{BASE}/bindfs-forwarding-source")))
    with mounting.mounted(plans.plan("bindfs-forwarding", BASE), commands, Interruption()):
        pass
    abort, kill = commands.ran[-3], commands.ran[-1]
    assert abort[:2] == kill[:2] == ("sh", "-c")
    assert abort[3] == f"{BASE}/bindfs-forwarding" and 'echo 1 > "$c/$n/abort"' in abort[2]
    assert kill[3] == f"{BASE}/bindfs-forwarding-source" and 'fuser -s -k -m "$0"' in kill[2]


def test_a_signal_during_a_step_is_raised_once_its_undo_is_recorded_and_everything_is_undone():
    interruption = Interruption()

    def signal_during_losetup(argv):
        if argv[0] == "losetup" and argv[1] == "--find":
            interruption.handle(signal.SIGTERM, None)  # as if it landed while losetup ran

    commands = Commands(on_run=signal_during_losetup)
    with pytest.raises(KeyboardInterrupt), mounting.mounted(plans.plan("btrfs", BASE), commands, interruption):
        pytest.fail("the body ran after the signal")
    assert commands.ran[-1] == ("losetup", "--detach", "/dev/loop7")
    assert interruption.signal == "SIGTERM"


def test_a_signal_while_undoing_is_noted_and_the_undoing_goes_on():
    interruption = Interruption(deferring=False)
    commands = Commands(on_run=lambda argv: argv[0] == "umount" and interruption.handle(signal.SIGINT, None))
    with mounting.mounted(plans.plan("ext4", BASE), commands, interruption):
        pass
    assert commands.ran[-1] == ("losetup", "--detach", "/dev/loop7")
    assert interruption.signal == "SIGINT" and not interruption.cleaning_up


# ---- what this machine has --------------------------------------------------------------------------------------

def test_a_missing_program_is_named_with_its_package():
    plan = plans.plan("xfs", BASE)
    why = runner.missing(plan, {"xfs"}, which=lambda program, path: None if program == "mkfs.xfs" else program)
    assert why == "mkfs.xfs not found (Debian: xfsprogs; ci/install-filesystem-tools installs them)"


def test_a_kernel_without_the_driver_is_named():
    plan = plans.plan("btrfs", BASE)
    assert runner.missing(plan, {"ext4", "tmpfs"}, which=lambda program, path: program) == \
        "this kernel has no btrfs driver (/proc/filesystems does not list it)"
    assert runner.missing(plan, {"btrfs"}, which=lambda program, path: program) == ""


def test_the_kernels_filesystem_list_is_read(tmp_path):
    listing = tmp_path / "filesystems"
    listing.write_text("nodev\ttmpfs\n\text4\nnodev\tfuse\n\n")
    assert runner.kernel_types(str(listing)) == {"tmpfs", "ext4", "fuse"}
    assert runner.kernel_types(str(tmp_path / "missing")) == set()


# ---- options ----------------------------------------------------------------------------------------------------

def test_the_machine_must_be_root_and_have_loop_devices_for_a_loop_backed_filesystem(tmp_path):
    with pytest.raises(options.BadInput, match=r"^mounting a filesystem needs root \(this is uid 1000\)$"):
        options.machine(("tmpfs",), euid=1000)
    with pytest.raises(options.BadInput, match=r"^ext4, overlay need loop devices, and this kernel has none"):
        options.machine(("tmpfs", "ext4", "overlay"), euid=0, loop_control=str(tmp_path / "loop-control"))
    options.machine(("tmpfs", "bindfs"), euid=0, loop_control=str(tmp_path / "loop-control"))


def test_the_list_of_filesystems_is_checked_and_kept_in_order():
    assert options.filesystems(None) == plans.DEFAULT == tuple(name for name in plans.FILESYSTEMS
                                                                if name != "bindfs-forwarding"
                                                                and name not in plans.IN_GUEST)
    assert options.filesystems("xfs, tmpfs,xfs") == ("xfs", "tmpfs")
    for bad in ("zfs", "", ",", "ext4,nfs"):
        with pytest.raises(options.BadInput, match="not a comma-separated list of tmpfs, ext4"):
            options.filesystems(bad)


def test_the_unprivileged_user_is_a_name_or_a_uid():
    assert options.user("root") == (0, 0)
    assert options.user("4000000") == (4000000, 4000000)  # a uid no account has: its gid the same
    with pytest.raises(options.BadInput, match="no such user here, and not a uid"):
        options.user("no-such-user-here")


@pytest.mark.parametrize(("args", "message"), [
    (["--fs", "zfs"], "--fs zfs: not a comma-separated list of tmpfs, ext4, xfs, btrfs, overlay, bindfs, "
                      "bindfs-forwarding, nfs3, nfs4.2"),
    (["--user", "no-such-user-here"], "--user no-such-user-here: no such user here, and not a uid"),
    (["--timeout", "0"], "--timeout 0: not a number of seconds above 0 and at most 86400"),
    (["-n", "lots"], "-n lots: not auto, logical, 0 (one process) or a number of workers from 1 to"),
    (["--fs", "tmpfs,nfs3"], "nfs3: mounted in a virtme-ng guest, whose kernel serves the export over loopback: "
                             "give --kernel KERNEL"),
    (["--fs", "tmpfs", "--kernel", "6.12"], "--kernel 6.12: only nfs3, nfs4.2 run in a guest, and --fs names none"),
    (["--fs", "nfs4.2", "--kernel", "no-such-kernel"], "no-such-kernel: "),
])
def test_bad_options_are_one_line_before_anything_is_mounted(args, message, tmp_path):
    done = conformance("filesystems", "--out", str(tmp_path / "out"), *args)
    assert refused(done, "filesystems").startswith(message)
    assert not (tmp_path / "out").exists()


# ---- the matrix and the diffs -----------------------------------------------------------------------------------

def _report(directory: Path, fstype: str, who: str, outcomes: dict) -> Path:
    document = copy.deepcopy(sample_report())
    platform_id = f"linux-6.18.44-fc-v1272-x86_64-py311-{who}-{fstype}"
    document["platform"].update(id=platform_id, filesystem={"path": f"{BASE}/{fstype}", "type": fstype},
                                privileged=who == "root", uid=0 if who == "root" else 65534)
    for case in document["cases"]:
        case["outcome"] = outcomes.get(case["id"], case["outcome"])
    path = directory / f"{platform_id}.json"
    path.write_text(json.dumps(document))
    return path


def test_each_report_is_diffed_against_ext4_of_its_privilege_and_all_are_in_one_matrix(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    truncation = "rights/test_truncation[dgram]"
    runs = [runner.Run("tmpfs", "root", report=_report(out, "tmpfs", "root", {})),
            runner.Run("ext4", "root", report=_report(out, "ext4", "root", {truncation: "pass"})),
            runner.Run("bindfs", "root", report=_report(out, "fuse.bindfs", "root", {})),
            runner.Run("ext4", "user", report=_report(out, "ext4", "user", {})),
            runner.Run("xfs", "-", problem="not here: mkfs.xfs not found", absent=True)]
    status = runner._conclude(runs, options.Options(filesystems=(), out=out), [])
    assert status == 1  # the crafted reports have failing cases
    printed = capsys.readouterr().out
    assert "== ext4 -> tmpfs (root)" in printed and "== ext4 -> bindfs (root)" in printed
    assert "(user)" not in printed  # the unprivileged ext4 run is its own baseline
    assert printed.count(f"(1):\n  {truncation}: pass -> fail") == 2
    matrix = json.loads((out / "matrix.json").read_text())
    assert sorted(column["filesystem"]["type"] for column in matrix["platforms"]) == \
        ["ext4", "ext4", "fuse.bindfs", "tmpfs"]
    summary = (out / "filesystems.md").read_text()
    assert "| xfs | - |  |  | not here: mkfs.xfs not found |" in summary


def test_a_filesystem_that_could_not_be_mounted_or_undone_is_exit_status_3(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    absent = [runner.Run("xfs", "-", problem="not here: mkfs.xfs not found", absent=True)]
    assert runner._conclude(absent, options.Options(filesystems=(), out=out), []) == 0
    failed = absent + [runner.Run("btrfs", "-", problem="btrfs: cannot mount btrfs")]
    assert runner._conclude(failed, options.Options(filesystems=(), out=out), []) == runner.MOUNT_FAILED
    assert runner._conclude(absent, options.Options(filesystems=(), out=out), ["tmpfs: cannot undo"]) == \
        runner.MOUNT_FAILED


# ---- a filesystem's expectations --------------------------------------------------------------------------------

def test_a_filesystems_expectations_are_read_over_its_oss_only_on_that_filesystem(tmp_path, monkeypatch):
    monkeypatch.setattr(expectations, "DIRECTORY", tmp_path)
    entry = '[[{table}]]\n{key} = "{name}"\n{extra}reason = "{reason}"\nreferences = ["{reference}"]\n'
    (tmp_path / "someos.toml").write_text(
        entry.format(table="deviation", key="case", name="locks/test_a[*]", extra="", reason="the OS's",
                     reference="its man page")
        + entry.format(table="expected", key="observation", name="locks.mode", extra='value = "os"\n',
                       reason="the OS's", reference="its man page"))
    (tmp_path / "someos.fuse.somefs.toml").write_text(
        entry.format(table="deviation", key="case", name="locks/test_a[ofd]", extra="", reason="the FUSE one's",
                     reference="its protocol")
        + entry.format(table="expected", key="observation", name="locks.mode", extra='value = "fs"\n',
                       reason="the FUSE one's", reference="its protocol"))
    on_the_os, elsewhere = expectations.load("someos"), expectations.load("someos", "ext4")
    on_the_fs = expectations.load("someos", "fuse.somefs")
    assert on_the_os.lookup("locks/test_a[ofd]").reason == elsewhere.lookup("locks/test_a[ofd]").reason == "the OS's"
    assert on_the_fs.lookup("locks/test_a[ofd]").reason == "the FUSE one's"
    assert on_the_fs.lookup("locks/test_a[posix]").reason == "the OS's"
    assert (on_the_os.expected("locks.mode").value, on_the_fs.expected("locks.mode").value) == ("os", "fs")
    assert expectations.load("otheros", "fuse.somefs").deviations == []  # another OS's FUSE is not this one's


# ---- btrfs: the lock table names a file by its superblock's device -----------------------------------------------

def test_the_lock_table_finds_a_file_it_names_by_the_mounts_device_rather_than_stats(tmp_path, monkeypatch):
    # btrfs: stat gives a subvolume's anonymous device (00:2e), /proc/locks and mountinfo the superblock's (0:45).
    path = tmp_path / "locked"
    path.write_bytes(b"")
    inode = path.stat().st_ino
    mountinfo, table = tmp_path / "mountinfo", tmp_path / "locks"
    mountinfo.write_text(f"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n99 1 0:45 / {tmp_path} rw - btrfs /dev/loop9 rw\n")
    table.write_text(f"1: FLOCK  ADVISORY  WRITE 4242 00:2d:{inode} 0 EOF\n"
                     f"1: -> FLOCK  ADVISORY  WRITE 4343 00:2d:{inode} 0 EOF\n"
                     f"2: POSIX  ADVISORY  READ 4444 ff:fe:{inode} 0 EOF\n")  # another filesystem's file
    facts = constants()
    monkeypatch.setattr(facts, "MOUNTINFO", str(mountinfo))
    monkeypatch.setattr(facts, "PROC_LOCKS", str(table))
    assert lock_table.held(path) == [("FLOCK", "WRITE", "4242")]
    assert lock_table.waiters(path, 4343) == 1


@pytest.mark.parametrize("fstype, listed", [("ext4", True), ("nfs4", False), ("nfs", False), ("fuse.bindfs", True)])
def test_the_lock_table_is_not_asked_for_waiters_where_a_server_arbitrates_the_locks(tmp_path, monkeypatch, fstype,
                                                                                       listed):
    # Over NFS a waiter that meets a lock only the server knows sleeps in the protocol, not in /proc/locks: the
    # waiter queries answer None (no table), so that the cases fall back to a window of silence; held locks are
    # still listed (the client records what the server granted).
    path = tmp_path / "locked"
    path.write_bytes(b"")
    st = path.stat()
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    mountinfo, table = tmp_path / "mountinfo", tmp_path / "locks"
    mountinfo.write_text(f"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
                         f"99 1 0:52 / {tmp_path} rw,relatime shared:7 - {fstype} server:/export rw\n")
    table.write_text(f"1: POSIX  ADVISORY  WRITE 4242 {ident} 0 EOF\n"
                     f"1: -> POSIX  ADVISORY  WRITE 4343 {ident} 0 EOF\n")
    facts = constants()
    monkeypatch.setattr(facts, "MOUNTINFO", str(mountinfo))
    monkeypatch.setattr(facts, "PROC_LOCKS", str(table))
    assert lock_table.held(path) == [("POSIX", "WRITE", "4242")]
    expected = (1, 1, [("POSIX", "WRITE", "4343", "0", "EOF")]) if listed else (None, None, None)
    assert (lock_table.all_waiters(path), lock_table.waiters(path, 4343), lock_table.blocked(path)) == expected


def test_a_platform_without_remote_lock_filesystems_lists_every_waiter(tmp_path, monkeypatch):
    monkeypatch.setattr(constants(), "REMOTE_LOCK_FILESYSTEMS", None)  # as on a platform that names none
    monkeypatch.setattr(constants(), "MOUNTINFO", str(tmp_path / "no-mountinfo"))
    assert lock_table._lists_every_waiter(tmp_path)


# ---- the committed reports --------------------------------------------------------------------------------------

FILESYSTEM_REPORTS = Path(__file__).resolve().parents[1] / "reports" / "filesystems"


def test_the_committed_filesystem_reports_are_valid_one_per_filesystem_and_listed_with_their_matrix():
    from conformance.report.load import read_report

    paths = sorted(FILESYSTEM_REPORTS.glob("*.partial.json"))
    reports = [read_report(path) for path in paths]
    types = {report.platform.filesystem_type for report in reports}
    assert types == {"tmpfs", "ext4", "xfs", "btrfs", "overlay", "fuse.bindfs", "nfs", "nfs4"}
    assert len({report.suite.commit for report in reports}) == 1  # one run, from one commit
    # The NFS mounts ran in a guest of another kernel, beside a tmpfs of that kernel: their baseline there.
    guest = {report.platform.release for report in reports if report.platform.filesystem_type.startswith("nfs")}
    assert len(guest) == 1 and any(report.platform.release in guest and report.platform.filesystem_type == "tmpfs"
                                   for report in reports)
    summary, matrix = ((FILESYSTEM_REPORTS / name).read_text() for name in ("filesystems.md", "matrix.md"))
    for path, report in zip(paths, reports):
        assert path.name == f"{report.platform.id}.partial.json" and report.platform.id.endswith(
            report.platform.filesystem_type)
        assert path.with_suffix(".md").exists()
        assert md_escape(path.name) in summary and md_escape(report.platform.id) in matrix


def test_the_plugin_reads_the_expectations_of_the_filesystem_under_test(tmp_path, monkeypatch):
    from conformance.platforms import os_name
    from conformance.platforms.detect import filesystem_type
    from conformance.plugin import options as plugin_options

    monkeypatch.setattr(expectations, "DIRECTORY", tmp_path)
    entry = '[[deviation]]\ncase = "locks/test_a"\nreason = "{reason}"\nreferences = ["its manual"]\n'
    (tmp_path / f"{os_name()}.toml").write_text(entry.format(reason="the OS's"))
    (tmp_path / f"{os_name()}.{filesystem_type(str(tmp_path))}.toml").write_text(entry.format(reason="its own"))

    class Config:
        def getoption(self, name):
            return None

    assert plugin_options._expectations(Config(), str(tmp_path)).lookup("locks/test_a").reason == "its own"
    assert plugin_options._expectations(Config(), "/proc").lookup("locks/test_a").reason == "the OS's"


@pytest.mark.skipif(sys.platform != "linux", reason="flock and fcntl locks are independent on Linux local filesystems")
@pytest.mark.parametrize(("documented", "outcome"), [("conflicting", "fail"), ("independent", "pass")])
def test_the_lock_histories_take_a_filesystems_documented_choice_as_their_models(tmp_path, documented, outcome):
    # Here flock and fcntl locks are independent: a model told that they meet (as on an NFS mount, whose client
    # emulates flock with fcntl locks) must then disagree with the kernel, and one told the truth must not.
    choices = tmp_path / "choices.toml"
    choices.write_text(f'[[expected]]\nobservation = "locks.flock_vs_fcntl"\nvalue = "{documented}"\n'
                       'reason = "the filesystem says so"\nreferences = ["its manual"]\n')
    done = pytest_run("-k", "random_lock_histories", "--conformance-expectations", str(choices),
                      "--conformance-report", str(tmp_path / "report"), env=environment(TMPDIR=str(tmp_path)))
    (path,) = (tmp_path / "report").glob("*.json")
    cases = json.loads(path.read_text())["cases"]
    assert cases and {case["outcome"] for case in cases} == {outcome}, (done.out[-2000:], done.err[-2000:])
    if outcome == "fail":
        assert any("flock" in case["reason"] for case in cases)


# ---- a real mount, interrupted ----------------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_run_stopped_while_its_cases_run_undoes_its_mount_and_ends_in_one_line(sig, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "conformance", "filesystems", "--fs", "tmpfs", "--out",
                                str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment(), cwd=tmp_path)
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "the file and lock cases as root" in line:
                break
        base = re.search(r"mounting on (\S+)/tmpfs", "".join(lines)).group(1)
        assert base in Path("/proc/mounts").read_text()
        process.send_signal(sig)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 128 + sig
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert rest.splitlines()[-1] == f"conformance: filesystems: stopped by {signal.Signals(sig).name}"
    assert "Traceback" not in rest
    assert base not in Path("/proc/mounts").read_text() and not Path(base).exists()


# ---- the filesystems of a guest ---------------------------------------------------------------------------------

def _watched(started: float | None = 5.0, status: int | None = 0, timed_out: str | None = None) -> console.Watched:
    return console.Watched(status, started, 60.0, timed_out, "last words\n", 10, True)


def test_a_guests_filesystems_run_after_this_machines_and_share_its_matrix(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    chosen = options.Options(filesystems=("nfs3", "tmpfs", "nfs4.2"), out=out, kernel="6.12")
    assert (chosen.here(), chosen.guest()) == (("tmpfs",), ("nfs3", "nfs4.2"))
    booted = []

    def guest_run(booting, given, prefix):
        booted.append((booting, given.guest(), prefix))
        return [runs.Run("nfs3", "root", report=_report(out, "nfs", "root", {})),
                runs.Run("nfs4.2", "-", problem="nfs4.2: start rpc.nfsd: refused")]

    commands = Commands()
    status = runner.main(chosen, execute=commands, types={"tmpfs"}, prepare_guest=lambda given: "kernel 6.12",
                         guest_run=guest_run)
    assert booted == [("kernel 6.12", ("nfs3", "nfs4.2"),
                       "[2-3/3] tmpfs, nfs3, nfs4.2 (the guest's tmpfs: its kernel's baseline)")]
    assert not any(argv[0] in ("rpcbind", "exportfs", "modprobe") for argv in commands.ran)  # nothing of NFS here
    assert status == runner.MOUNT_FAILED  # nfs4.2 could not be mounted in the guest
    summary = (out / "filesystems.md").read_text()
    assert "| nfs3 | root |" in summary and "| nfs4.2 | - |" in summary
    handed = runs.read_runs(out / runs.RUNS_FILE, out, out / "logs")
    assert [(run.filesystem, run.who) for run in handed] == [("tmpfs", "root"), ("nfs3", "root"), ("nfs4.2", "-")]


def test_the_guest_runs_this_command_again_for_its_filesystems_with_the_same_choices(tmp_path):
    chosen = options.Options(filesystems=("tmpfs", "nfs4.2"), out=tmp_path, workers="2", user=(4000, 4000),
                             timeout=600.0, pytest_args=("-k", "flock"), kernel="6.12")
    argv = in_guest.guest_argv(chosen, tmp_path / "shared")
    assert argv[:3] == [sys.executable, "-m", "conformance"]
    assert argv[3:] == ["filesystems", "--fs", "tmpfs,nfs4.2", "--out", str(tmp_path / "shared"), "-n", "2",
                        "--timeout", "600", "--user", "4000", "--", "-k", "flock"]


def test_the_guests_runs_reports_and_logs_are_moved_beside_this_machines(tmp_path):
    out, shared = tmp_path / "out", tmp_path / "out" / in_guest.SHARED
    (shared / "out" / "logs").mkdir(parents=True)
    (out / "logs").mkdir()
    report = _report(shared / "out", "nfs4", "root", {})
    report.with_suffix(".md").write_text("# the same report\n")
    (shared / "out" / "matrix.json").write_text("{}")
    (shared / "out" / "logs" / "nfs4.2-root.log").write_text("the cases' output\n")
    (shared / "out" / "reproducers").mkdir()
    (shared / "out" / "reproducers" / "locks-2steps-0123.py").write_text("# a reproducer its reason names\n")
    runs.write_runs([runs.Run("nfs4.2", "root", mount=0.5, suite=80.0, report=report,
                              log=shared / "out" / "logs" / "nfs4.2-root.log")], shared / "out" / runs.RUNS_FILE)
    chosen = options.Options(filesystems=("nfs4.2",), out=out, kernel="6.12")
    (handed,) = in_guest._collected(_watched(), shared, chosen, out / "logs" / "guest.console.log")
    assert (handed.filesystem, handed.who, handed.mount, handed.suite) == ("nfs4.2", "root", 0.5, 80.0)
    assert handed.report == out / report.name and handed.report.is_file()
    assert (out / report.with_suffix(".md").name).is_file()
    assert handed.log == out / "logs" / "nfs4.2-root.log" and handed.log.is_file()
    assert not (out / "matrix.json").exists()  # the guest's matrix is not this machine's
    assert (out / "reproducers" / "locks-2steps-0123.py").is_file()  # beside the report, as its reasons say


@pytest.mark.parametrize(("watched", "why"), [
    (_watched(started=None, status=255), "the guest showed no sign of running its command (last words)"),
    (_watched(status=None, timed_out="finish"), "the guest did not finish within 60 s"),
    (_watched(status=2), "the guest wrote no runs (exit status 2): last words"),
])
def test_a_guest_that_hands_back_no_runs_is_a_problem_of_each_of_its_filesystems(tmp_path, watched, why):
    out, shared = tmp_path / "out", tmp_path / "out" / in_guest.SHARED
    shared.mkdir(parents=True)
    chosen = options.Options(filesystems=("tmpfs", "nfs3", "nfs4.2"), out=out, kernel="6.12")
    handed = in_guest._collected(watched, shared, chosen, out / "logs" / "guest.console.log")
    assert [(run.filesystem, run.who) for run in handed] == [("tmpfs", "-"), ("nfs3", "-"), ("nfs4.2", "-")]
    assert all(run.problem.startswith(why) and not run.absent for run in handed), handed[0].problem
