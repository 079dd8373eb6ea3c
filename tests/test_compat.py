"""Self-tests of `conformance compat`'s parts that need no userland: its options and missing tools (one line, exit
status 2), the mount plan, the clean-up of mounts and processes on every way out (with simulated mount commands),
the refusal to remove a tree with a mount inside, and what a 32-bit userland on a 64-bit kernel reports as its
platform. The real run (debootstrap, the suite in the chroot) is `ci/compat i386`, as root."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from commands import conformance, refused

from conformance.compat import build, mounts, tools
from conformance.platforms import detect

FAKE_TOOLS = types.SimpleNamespace(mount="mount", umount="umount", chroot="chroot", debootstrap="debootstrap")


# ---- options and tools --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["compat", "amd64"], "unknown userland 'amd64': i386 is what this command builds"),
    (["compat", "i386", "--mirror", "ftp://example.org/debian"],
     "--mirror ftp://example.org/debian: not an http://, https:// or file:// URL"),
    (["compat", "i386", "--timeout", "0"], "--timeout 0: not a number of seconds above 0 and at most 86400"),
    (["compat"], "the following arguments are required: USERLAND"),
    (["compat", "i386", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_a_bad_option_is_one_line_and_exit_2(argv, message, tmp_path):
    assert refused(conformance(*argv, "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")),
                   "compat") == message


def test_an_unusable_out_directory_is_refused_before_anything_is_built(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    message = refused(conformance("compat", "i386", "--out", str(blocker / "out"), "--cache", str(tmp_path)),
                      "compat")
    assert message.startswith(f"--out {blocker / 'out'}")


def test_a_missing_tool_is_named_with_its_package(monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(tools.shutil, "which", lambda name, path=None: None if name == "debootstrap" else f"/b/{name}")
    with pytest.raises(tools.MissingTools) as e:
        tools.find_tools("i386")
    assert str(e.value) == "missing debootstrap (apt package debootstrap)"


def test_not_root_or_not_x86_64_is_refused(monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(tools.MissingTools, match="needs root"):
        tools.find_tools("i386")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(tools.MissingTools, match="needs a kernel of x86_64; this one is aarch64"):
        tools.find_tools("i386")


@pytest.mark.skipif(os.geteuid() == 0, reason="run unprivileged to see the refusal")
def test_an_unprivileged_run_is_refused_in_one_line(tmp_path):
    message = refused(conformance("compat", "i386", "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c")),
                      "compat")
    assert "needs root" in message


# ---- the commands it runs -----------------------------------------------------------------------------------------

def test_the_suite_runs_inside_under_the_i686_personality():
    argv = build.in_chroot(FAKE_TOOLS, Path("/c/root"), ["/opt/python", "-m", "conformance"], user="1234567")
    assert argv == ["chroot", "--userspec=1234567:1234567", "/c/root", "/usr/bin/setarch", "i686",
                    "/opt/python", "-m", "conformance"]
    command = build.debootstrap_command(FAKE_TOOLS, Path("/c/x.partial"), "http://m/debian")
    assert command == ["debootstrap", "--arch=i386", "--variant=minbase",
                       "--include=python3,python3-venv,gcc,libc6-dev", "bookworm", "/c/x.partial", "http://m/debian"]


def test_each_unprivileged_run_is_a_fresh_uid_of_no_account():
    import pwd

    from conformance.compat import runner

    drawn = {runner.fresh_uid() for _ in range(20)}
    assert len(drawn) > 1 and all(runner.FRESH_UIDS[0] <= uid < runner.FRESH_UIDS[1] for uid in drawn)
    for uid in drawn:
        with pytest.raises(KeyError):
            pwd.getpwuid(uid)


def test_nothing_of_this_machines_python_leaks_into_the_chroot(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/work/checkout")
    monkeypatch.setenv("VIRTUAL_ENV", "/work/.venv")
    environment = mounts.chroot_environment()
    assert "PYTHONPATH" not in environment and "VIRTUAL_ENV" not in environment
    assert environment["PATH"].startswith("/usr/local/sbin:")


def test_pip_inside_uses_this_machines_proxy_and_certificate_authorities(tmp_path):
    bundle = tmp_path / "corporate.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    host = {"HTTPS_PROXY": "http://proxy:3128", "SSL_CERT_FILE": str(bundle), "PIP_CERT": str(tmp_path / "gone"),
            "PYTHONPATH": "/work"}
    environment = build.pip_environment(tmp_path / "root", host)
    assert environment["HTTPS_PROXY"] == "http://proxy:3128" and "PYTHONPATH" not in environment
    assert environment["PIP_CERT"] == build.HOST_CA
    assert (tmp_path / "root" / build.HOST_CA.lstrip("/")).read_text() == bundle.read_text()


# ---- mounts ---------------------------------------------------------------------------------------------------------

def test_the_mount_plan_binds_what_this_machine_has_parents_first():
    steps = mounts.plan(Path("/c/root"), {"/", "/dev/shm", "/dev/pts"})
    assert [step.command("mount") for step in steps] == [
        ["mount", "-t", "proc", "proc", "/c/root/proc"],
        ["mount", "--bind", "/sys", "/c/root/sys"],
        ["mount", "--bind", "/dev", "/c/root/dev"],
        ["mount", "--bind", "/dev/pts", "/c/root/dev/pts"],
        ["mount", "--bind", "/dev/shm", "/c/root/dev/shm"],
    ]  # no /dev/mqueue here: none inside either
    assert mounts.plan(Path("/r"), {"/dev/mqueue"})[-1].command("m") == ["m", "--bind", "/dev/mqueue", "/r/dev/mqueue"]


class FakeMounts:
    """mount(8) and umount(8) simulated: what was run, what is mounted, and a command that fails."""

    def __init__(self, fail: str | None = None, busy: int = 0):
        self.commands: list[list[str]] = []
        self.mounted: list[str] = []
        self.fail = fail
        self.busy = busy  # umount fails this many times first

    def __call__(self, argv: list) -> tuple[int, str]:
        self.commands.append(argv)
        target = argv[-1]
        if self.fail and target.endswith(self.fail):
            return 32, f"{argv[0]}: {target}: permission denied"
        if argv[0] == "umount":
            if self.busy:
                self.busy -= 1
                return 32, f"umount: {target}: target is busy."
            self.mounted.remove(target)
        else:
            self.mounted.append(target)
        return 0, ""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "proc").mkdir()  # an empty /proc: no process to end
    return tmp_path


def _mounted(root: Path, fake: FakeMounts):
    return mounts.mounted(mounts.plan(root / "r", {"/dev/shm"}), FAKE_TOOLS, run=fake, proc=str(root / "proc"))


def test_every_mount_is_undone_last_first_after_the_body(root):
    fake = FakeMounts()
    with _mounted(root, fake):
        assert len(fake.mounted) == 4
    r = str(root / "r")
    assert fake.mounted == []
    assert [c for c in fake.commands if c[0] == "umount"] == [
        ["umount", f"{r}/dev/shm"], ["umount", f"{r}/dev"], ["umount", f"{r}/sys"], ["umount", f"{r}/proc"]]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_every_mount_is_undone_when_the_body_is_interrupted_or_fails(root, error):
    fake = FakeMounts()
    with pytest.raises(error), _mounted(root, fake):
        raise error()
    assert fake.mounted == []


def test_a_mount_that_fails_undoes_the_ones_made_and_says_which(root):
    fake = FakeMounts(fail="/dev")
    with pytest.raises(mounts.MountError) as e, _mounted(root, fake):
        pytest.fail("the body ran without its mounts")
    assert fake.mounted == []
    assert str(e.value) == f"mount --bind /dev {root / 'r' / 'dev'}: mount: {root / 'r' / 'dev'}: permission denied"
    assert ["umount", str(root / "r" / "sys")] in fake.commands


def test_a_busy_mount_is_tried_again(root, monkeypatch):
    monkeypatch.setattr(mounts, "SETTLE", 0.0)
    fake = FakeMounts(busy=2)
    with _mounted(root, fake):
        pass
    assert fake.mounted == []
    assert not any("--lazy" in command for command in fake.commands)


def test_a_mount_busy_for_good_is_detached_lazily(root, monkeypatch, capsys):
    monkeypatch.setattr(mounts, "SETTLE", 0.0)
    fake = FakeMounts(busy=mounts.UMOUNT_TRIES)  # a socket in flight for ever holds the first mount undone
    with _mounted(root, fake):
        pass
    assert fake.mounted == []
    assert ["umount", "--lazy", str(root / "r" / "dev" / "shm")] in fake.commands
    assert capsys.readouterr().err.endswith("target is busy.): detached lazily\n")


def test_an_unmount_that_keeps_failing_is_reported_after_the_others(root, monkeypatch):
    monkeypatch.setattr(mounts, "SETTLE", 0.0)
    fake = FakeMounts()
    with pytest.raises(mounts.MountError, match=r"umount .*/r/sys: umount: .*/r/sys: permission denied"), \
            _mounted(root, fake):
        fake.fail = "/sys"
    assert fake.mounted == [str(root / "r" / "sys")]  # the others are undone all the same


def test_a_process_inside_is_found_by_its_root_link(tmp_path):
    proc, inside = tmp_path / "proc", tmp_path / "r"
    for pid, where in ((41, inside / "usr"), (42, tmp_path / "elsewhere"), (43, inside)):
        (proc / str(pid)).mkdir(parents=True)
        os.symlink(where, proc / str(pid) / "root")
    (proc / "44").mkdir()  # a kernel thread, or a process gone meanwhile: no link to read
    assert sorted(mounts.processes_in(inside, str(proc))) == [41, 43]


def test_a_process_left_inside_is_ended(monkeypatch):
    """A real process, said to be inside until it has ended."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        monkeypatch.setattr(mounts, "processes_in",
                            lambda root, proc="/proc": [] if child.poll() is not None else [child.pid])
        assert mounts.end_processes(Path("/r"), grace=10) == [child.pid]
        assert child.wait(10) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()


def test_a_tree_with_a_mount_inside_is_never_removed(tmp_path, monkeypatch):
    tree = tmp_path / "bookworm-i386.partial"
    (tree / "dev").mkdir(parents=True)
    monkeypatch.setattr(detect, "mount_table", lambda: [("/", "ext4"), (str(tree / "dev"), "devtmpfs")])
    with pytest.raises(mounts.MountError, match="still has .*/dev mounted"):
        mounts.remove_tree(tree)
    assert (tree / "dev").is_dir()
    monkeypatch.setattr(detect, "mount_table", lambda: [("/", "ext4")])
    mounts.remove_tree(tree)
    assert not tree.exists()


# ---- the whole command, with simulated tools ----------------------------------------------------------------------

FAKE_TOOL = """#!/bin/sh
echo "$(basename "$0") $*" >> {log}
case "$(basename "$0") $*" in
  *"conformance run"*) sleep 60 & exec sleep 60 ;;
esac
exit 0
"""


@pytest.fixture
def fake_host(tmp_path):
    """debootstrap, chroot, mount and umount that log their command lines, a cached userland of today's recipe, and
    the log; the suite `inside` sleeps until it is stopped, with a background job standing for its workers (which
    the command must kill and reap, not leave to whoever adopts orphans)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "commands.log"
    bin_dir.mkdir()
    for name in ("debootstrap", "chroot", "mount", "umount"):
        (bin_dir / name).write_text(FAKE_TOOL.format(log=log))
        (bin_dir / name).chmod(0o755)
    root = tmp_path / "cache" / "bookworm-i386"
    root.mkdir(parents=True)
    (root / build.BUILT_MARK).write_text(build.recipe("http://deb.debian.org/debian"))
    return types.SimpleNamespace(bin=bin_dir, log=log, root=root, cache=tmp_path / "cache", out=tmp_path / "out")


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64" or os.geteuid() != 0,
                    reason="the command runs as root on x86_64")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_ends_the_run_and_undoes_every_mount(fake_host, sig):
    env = dict(os.environ, PATH=f"{fake_host.bin}:{os.environ['PATH']}")
    proc = subprocess.Popen([sys.executable, "-m", "conformance", "compat", "i386", "--cache", str(fake_host.cache),
                             "--out", str(fake_host.out), "--no-native"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "conformance run" not in (fake_host.log.read_text() if fake_host.log.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + sig, err
    assert err.splitlines()[-1] == f"conformance: compat: stopped by {sig.name}"
    lines = fake_host.log.read_text().splitlines()
    made = [line.split()[-1] for line in lines if line.startswith("mount ")]
    undone = [line.split()[-1] for line in lines if line.startswith("umount ")]
    assert made and undone == made[::-1], lines
    assert not any(line.startswith("debootstrap") for line in lines)  # the cache had the userland
    assert "pip install" in "\n".join(lines) and "setarch i686" in "\n".join(lines)


def test_a_copy_of_the_suite_without_its_checkout_names_the_commit_it_came_from(tmp_path):
    """As install_suite copies it into the userland: a report made there records the checkout's commit."""
    import shutil

    import conformance
    from conformance.plugin import revision

    package = Path(conformance.__file__).resolve().parent
    shutil.copytree(package, tmp_path / "conformance", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from conformance.plugin.revision import this_suite; print(this_suite().commit)"
    environment = dict(os.environ, PYTHONPATH=str(tmp_path))

    def recorded() -> str:
        return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                              check=True, cwd=tmp_path).stdout.strip()

    assert recorded() == "None"
    (tmp_path / "conformance" / revision.COMMIT_FILE).write_text("0123abcd\n")
    assert recorded() == "0123abcd"
