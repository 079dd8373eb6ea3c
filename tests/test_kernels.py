"""Self-tests of `conformance kernels` without a virtual machine: kernel arguments resolved against crafted package
lists, the guest's command line, the process watcher's deadlines, and the whole runner driven through a stand-in
for vng that runs the guest's command here. `.ci/run` boots a real kernel end to end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
from commands import conformance, environment, refused
from reportdata import model, sample_report

from conformance import settings
from conformance.cli import main
from conformance.interruption import Interruption
from conformance.kernels import console, guest, images, runner, sources, tools
from conformance.kernels.sources import Kernel, KernelSourceError, package_for, release_key, resolve
from conformance.report import reference

DEBIAN = [
    "linux-image-6.1.0-47-amd64", "linux-image-6.1.0-47-amd64-unsigned", "linux-image-6.1.0-50-amd64-unsigned",
    "linux-image-6.1.0-9-amd64-unsigned", "linux-image-6.1.0-50-cloud-amd64-unsigned", "linux-image-6.1.0-53-amd64",
    "linux-image-6.1.0-50-amd64-dbg", "linux-image-6.12.107+deb12-amd64-unsigned", "linux-image-6.12.9+deb12-amd64",
    "linux-image-6.12-amd64-dbg", "linux-image-amd64",
]


def fake_image(path: Path) -> Path:
    """A file that starts like a kernel image this machine boots (its first format's magic number), and no more."""
    data = bytearray(b"stand-in".ljust(0x400, b"\0"))
    for _, offset, magic in images.FORMATS.get(os.uname().machine, ())[:1]:
        data[offset:offset + len(magic)] = magic
    path.write_bytes(bytes(data))
    return path


# ---- kernel arguments ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "package"), [
    ("6.1", "linux-image-6.1.0-53-amd64"),  # the newest ABI, signed when that is all there is
    ("6.12", "linux-image-6.12.107+deb12-amd64-unsigned"),  # 107 after 9: versions, not strings
    ("6.1.0-47", "linux-image-6.1.0-47-amd64-unsigned"),  # the unsigned image is preferred
    ("6.1.0-53", "linux-image-6.1.0-53-amd64"),
    ("linux-image-6.1.0-50-cloud-amd64-unsigned", "linux-image-6.1.0-50-cloud-amd64-unsigned"),
])
def test_debian_arguments_name_packages(spec, package):
    assert package_for(spec, DEBIAN, "amd64") == package


@pytest.mark.parametrize(("spec", "message"), [
    ("6.2", "6.2: no Debian amd64 kernel of that series in this host's apt sources"),
    ("6.1.0-99", "6.1.0-99: no package linux-image-6.1.0-99-amd64-unsigned in this host's apt sources"),
])
def test_debian_arguments_without_a_package(spec, message):
    with pytest.raises(KernelSourceError, match="^" + message.replace("+", r"\+").replace(".", r"\.")):
        package_for(spec, DEBIAN, "amd64")


def test_a_series_does_not_take_a_longer_series():
    assert package_for("6.1", ["linux-image-6.12.107+deb12-amd64-unsigned", "linux-image-6.1.0-9-amd64-unsigned"],
                       "amd64") == "linux-image-6.1.0-9-amd64-unsigned"


def test_release_order():
    releases = ["6.18.44-fc-v669", "6.1.0-56-amd64", "6.12.107+deb12-amd64", "6.12.9+deb12-amd64", "5.15.0"]
    assert sorted(releases, key=release_key) == ["5.15.0", "6.1.0-56-amd64", "6.12.9+deb12-amd64",
                                                 "6.12.107+deb12-amd64", "6.18.44-fc-v669"]


def test_local_images_and_upstream_tags(tmp_path):
    image = fake_image(tmp_path / "vmlinuz-6.9.1-test")
    assert resolve(str(image), tmp_path) == Kernel(str(image), str(image), "6.9.1-test")
    assert resolve("v6.6.17", tmp_path) == Kernel("v6.6.17", "v6.6.17", "v6.6.17")
    with pytest.raises(KernelSourceError, match=r"/nonexistent/bzImage: no such file or directory$"):
        resolve("/nonexistent/bzImage", tmp_path)
    with pytest.raises(KernelSourceError, match=r"^six: not a kernel image or build tree"):
        resolve("six", tmp_path)


def test_a_debian_kernel_without_apt_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KernelSourceError, match="^apt-cache not found: a Debian kernel needs an apt host"):
        resolve("6.1", tmp_path)


def test_an_unpacked_package_is_reused_without_apt(tmp_path, monkeypatch):
    root = tmp_path / "linux-image-6.1.0-50-amd64-unsigned"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "vmlinuz-6.1.0-50-amd64").write_bytes(b"image")
    (root / ".unpacked").write_text("linux-image-6.1.0-50-amd64-unsigned_6.1.176-1_amd64.deb\n")
    listed = subprocess.CompletedProcess([], 0, "linux-image-6.1.0-50-amd64-unsigned\n", "")
    monkeypatch.setattr(sources, "_apt", lambda *args, cwd=None: listed)
    monkeypatch.setattr(sources, "_unpack", lambda *args: pytest.fail("fetched again"))
    monkeypatch.setattr(sources, "_flavour", lambda: "amd64")
    kernel = resolve("6.1", tmp_path)
    assert (kernel.image, kernel.label) == (str(root / "boot" / "vmlinuz-6.1.0-50-amd64"), "6.1.0-50-amd64")


# ---- the guest's command line ----------------------------------------------------------------------------------

def test_the_guest_command_prints_the_marker_then_runs_the_suite_with_its_arguments_intact(tmp_path):
    echo = tmp_path / "python"
    echo.write_text('#!/bin/sh\nprintf "%s\\n" "$CONFORMANCE_DEADLINE_SCALE" "$@"\nexit 3\n')
    echo.chmod(0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    command = guest.guest_command(str(echo), str(shared), "/dev/shm", "2", 6.0, ["-k", "a and 'b'", "$HOME"])
    assert guest.MARKER not in command  # an echo of the command line is no sign of a guest
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False, timeout=30)
    first, *rest = done.stdout.splitlines()
    assert first == f"{guest.MARKER} {os.uname().release}"
    assert rest == ["6", "-m", "conformance", "run", "--report-dir", str(shared), "--dir", "/dev/shm", "-n", "2",
                    "--", "-k", "a and 'b'", "$HOME"]
    assert done.returncode == 3, "the suite's status is the command's, through tee"
    assert (shared / guest.BOOTED).read_text() == first + "\n"
    assert (shared / guest.GUEST_LOG).read_text() == done.stdout


def test_the_vng_command_line():
    kernel = Kernel("6.1", "/c/boot/vmlinuz-6.1.0-50-amd64", "6.1.0-50-amd64")
    found = tools.Tools(vng="/v/bin/vng", path="/v/bin")
    emulated = guest.vng_command(found, kernel, kvm=False, cpus=2, memory="2G", user=None, shared_dir="/o",
                                 command="true")
    assert emulated == ["/v/bin/vng", "--disable-kvm", "--verbose", "--run", "/c/boot/vmlinuz-6.1.0-50-amd64",
                        "--cpus", "2", "--memory", "2G", "--rwdir", "/o=/o", "--exec", "true"]
    with_kvm = guest.vng_command(found, kernel, kvm=True, cpus=1, memory="1G", user="nobody", shared_dir="/o",
                                 command="true")
    assert "--disable-kvm" not in with_kvm and with_kvm[-2:] == ["--user", "nobody"]


@pytest.mark.parametrize("path", ["/a b", "/a=b", "/a,b", "/a'b", '/a"b', "/a$b", "/a\tb"])
def test_paths_vng_would_misread_are_refused(path):
    assert guest.unsafe_path(path)
    assert not guest.unsafe_path("/tmp/pytest-of-root/pytest-3/test_x[1]0/out")


# ---- the tools -------------------------------------------------------------------------------------------------

def test_every_missing_tool_is_named_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tools, "BUSYBOX_PATHS", ())
    monkeypatch.setattr(tools, "UDEVD_PATHS", ())
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(tools.shutil, "which", lambda name, path=None: None)
    with pytest.raises(tools.MissingTools) as e:
        tools.find_tools()
    message = str(e.value)
    assert "\n" not in message
    for needed in ("vng", "qemu-system-", "busybox-static", "kmod", "udev", "ci/install-kernel-tools"):
        assert needed in message


def test_a_missing_udevd_alone_is_named(tmp_path, monkeypatch):
    # Without udevd the guest's command output has nowhere to go and vng ends with 255 and no word: find it first.
    monkeypatch.setattr(tools, "UDEVD_PATHS", (str(tmp_path / "systemd-udevd"),))
    monkeypatch.setattr(tools, "BUSYBOX_PATHS", (sys.executable,))
    monkeypatch.setattr(tools.shutil, "which", lambda name, path=None: sys.executable)
    with pytest.raises(tools.MissingTools) as e:
        tools.find_tools()
    assert str(e.value) == ("missing systemd-udevd (apt package udev). ci/install-kernel-tools installs the apt "
                            "packages")


def test_other_systems_are_told_it_is_linux_only(monkeypatch):
    monkeypatch.setattr(sys, "platform", "freebsd14")
    with pytest.raises(tools.MissingTools, match="runs on a Linux host only"):
        tools.find_tools()


# ---- the process watcher ---------------------------------------------------------------------------------------

def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_watch_reports_the_marker_progress_and_status(tmp_path):
    argv = _script(tmp_path, """
        import sys
        print("kernel noise", flush=True)
        print("MARK 6.1", flush=True)
        for line in ("....  [ 40%]", "....  [ 80%]", "..  [100%]"):
            print(line, flush=True)
        sys.exit(3)
    """)
    events = []
    watched = console.watch(argv, env=dict(os.environ), log_path=tmp_path / "log", marker=b"MARK",
                            start_deadline=30, finish_deadline=30, on_event=lambda k, v: events.append((k, v)))
    assert (watched.status, watched.timed_out) == (3, None)
    assert events[0][0] == "started"
    progress = [v for k, v in events if k == "progress"]  # the latest of each read: lines read together give one
    assert progress[-1] == 100 and progress == sorted(set(progress))
    assert (tmp_path / "log").read_text().startswith("kernel noise\nMARK 6.1\n")


def test_watch_takes_the_marker_from_the_guests_file_when_none_of_its_output_comes(tmp_path):
    # Silent past the start deadline: only the file, read while the process runs, can keep it from being killed.
    sign = tmp_path / "booted"
    argv = _script(tmp_path, f"""
        import time
        with open({str(sign)!r}, "w") as f:
            f.write("MARK 6.1\\n")
        time.sleep(8)
    """)
    events = []
    watched = console.watch(argv, env=dict(os.environ), log_path=tmp_path / "log", marker=b"MARK",
                            start_deadline=6, finish_deadline=60, marker_file=sign,
                            on_event=lambda k, v: events.append(k))
    assert (watched.status, watched.timed_out, watched.output, watched.marker_seen) == (0, None, 0, False)
    assert watched.started is not None and events == ["started"]


def _gone(pid: int) -> bool:
    """The process has ended. The leak check makes this test process the subreaper of orphans, so an orphaned
    grandchild becomes ours to reap; elsewhere init reaps it and it vanishes."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return reaped == pid


@pytest.mark.parametrize("stage", ["start", "finish"])
def test_a_deadline_kills_the_whole_group(tmp_path, stage, monkeypatch):
    # The grandchild stands for QEMU under vng: it must go too. It ignores SIGTERM, so SIGKILL must follow.
    argv = _script(tmp_path, f"""
        import os, signal, subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        print("pid", grandchild.pid, flush=True)
        {'print("MARK", flush=True)' if stage == 'finish' else ''}
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
    """)
    monkeypatch.setattr(console, "GRACE", 1.0)
    began = time.monotonic()
    watched = console.watch(argv, env=dict(os.environ), log_path=tmp_path / "log", marker=b"MARK",
                            start_deadline=2, finish_deadline=2.5)
    took = time.monotonic() - began
    assert (watched.status, watched.timed_out) == (None, stage)
    assert (watched.started is None) == (stage == "start")
    assert took < 6, f"the watcher took {took:.1f} s to give up"
    grandchild = int(watched.tail.split()[1])
    deadline = time.monotonic() + 5
    gone = _gone(grandchild)
    while not gone and time.monotonic() < deadline:
        time.sleep(0.01)
        gone = _gone(grandchild)
    assert gone, "the grandchild outlived the deadline"


def test_what_outlives_the_leader_of_the_group_is_killed_and_reaped_before_watch_returns(tmp_path):
    # A shell's background job stands for the workers of a suite run inside a chroot: its parent ends, and it is
    # left running in the group. watch() adopts it (a subreaper) and reaps it; init, or whoever adopts orphans
    # where this runs (a test worker), finds nothing of it.
    argv = ["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo pid $!"]
    watched = console.watch(argv, env=dict(os.environ), log_path=tmp_path / "log", marker=None, start_deadline=60,
                            finish_deadline=60)
    assert watched.status == 0
    left = int(watched.tail.split()[1])
    with pytest.raises(ProcessLookupError):
        os.kill(left, 0)  # succeeds on a live process and on an unreaped zombie alike


def test_a_signal_while_the_command_starts_ends_its_group_and_raises(tmp_path, monkeypatch):
    # SIGTERM lands inside Popen, after the fork: the watcher must still know the process, end it, and then stop.
    interruption = Interruption(deferring=False)
    started: list = []

    def popen(*args, **kwargs):
        started.append(subprocess.Popen(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGTERM)
        return started[-1]

    fake = types.SimpleNamespace(DEVNULL=subprocess.DEVNULL, PIPE=subprocess.PIPE, STDOUT=subprocess.STDOUT,
                                 TimeoutExpired=subprocess.TimeoutExpired, Popen=popen)
    monkeypatch.setattr(console, "subprocess", fake)  # the watcher's own name only
    argv = _script(tmp_path, "import time; time.sleep(600)")
    interruption.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            console.watch(argv, env=dict(os.environ), log_path=tmp_path / "log", marker=None, start_deadline=60,
                          finish_deadline=60)
        assert started and started[0].poll() is not None, "the command outlived the interrupted watcher"
    finally:
        interruption.restore()
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()


def test_sigterm_ends_conformance_kernels_and_the_run_under_way(tmp_path):
    # The host's run stands for a guest: it runs in a session of its own, which no signal to the command reaches.
    out, fs = tmp_path / "out", tmp_path / "fs"
    fs.mkdir()
    env = {**environment(), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "conformance", "kernels", "--out", str(out), "--dir", str(fs),
                             "-n", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    run = None
    try:
        run = _wait_for_process(str(out / ".run-host"))
        proc.send_signal(signal.SIGTERM)  # to the command alone, as a CI runner cancelling a step does
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert err.rstrip().endswith("conformance: kernels: stopped by SIGTERM"), err
        deadline = time.monotonic() + 5
        while not _gone(run) and time.monotonic() < deadline:
            time.sleep(0.01)  # polls what the kernel shows, bounded
        assert _gone(run), "the host's suite run outlived the command"
    finally:
        for pid in (proc.pid, run):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        proc.wait()
        if run is not None:
            _gone(run)


def _wait_for_process(argument: str, timeout: float = 60.0) -> int:
    """The pid of the process whose command line holds `argument` (read from /proc: Linux only)."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("finds the run through /proc")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if argument.encode() in f.read().split(b"\0"):
                        return int(name)
            except (OSError, ValueError):
                continue
        time.sleep(0.02)  # polls what the kernel shows, bounded
    pytest.fail(f"no process with {argument} in its command line within {timeout:g} s")


# ---- the runner, with a stand-in for vng -----------------------------------------------------------------------

FAKE_VNG = """\
#!{python}
# Stands in for vng: runs the guest's command here, or misbehaves as FAKE_VNG asks.
import os, subprocess, sys, time
args = sys.argv[1:]
mode = os.environ["FAKE_VNG"]
boots = os.path.join(os.path.dirname(sys.argv[0]), "boots")
with open(boots, "a") as f:
    f.write("boot\\n")
if mode == "kvm-hangs" and "--disable-kvm" not in args:
    time.sleep(600)
if mode == "silent":  # nothing reaches the host, and no guest runs
    sys.exit(255)
if mode == "silent-booted":  # the guest boots and runs, but none of its output reaches the host
    sys.exit(subprocess.call(["sh", "-c", args[args.index("--exec") + 1]], stdout=subprocess.DEVNULL))
if mode == "fails-once" and open(boots).read().count("boot") == 1:
    print("[    0.000000] Linux version 6.1.0-fake", flush=True)
    print("[    9.000000] Kernel panic - not syncing: VFS: Unable to mount root fs", flush=True)
    sys.exit(255)
if mode == "no-kernel":
    print("qemu-system-x86_64: could not load kernel '/boot/x'", flush=True)
    sys.exit(1)
if mode == "no-report":
    print("conformance-kernels: booted 6.1.0-fake", flush=True)
    sys.exit(0)
sys.exit(subprocess.call(["sh", "-c", args[args.index("--exec") + 1]]))
"""


@pytest.fixture
def fake_vng(tmp_path, monkeypatch):
    vng = tmp_path / "bin" / "vng"
    vng.parent.mkdir()
    vng.write_text(FAKE_VNG.format(python=sys.executable))
    vng.chmod(0o755)
    monkeypatch.setattr(runner, "find_tools", lambda: tools.Tools(str(vng), os.environ["PATH"]))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the nested runs' files stay out of this session's
    image = fake_image(tmp_path / "vmlinuz-6.1.0-fake")
    (tmp_path / "fs").mkdir()

    def run(mode: str, *extra: str) -> int:
        monkeypatch.setenv("FAKE_VNG", mode)
        return main(["kernels", str(image), "--no-host", "--out", str(tmp_path / "out"), "--dir",
                     str(tmp_path / "fs"), "-n", "0", *extra, "--", "-p", "no:randomly", "-k",
                     "test_locks_across_execve and posix"])
    return run


def test_a_kernel_run_writes_the_report_matrix_summary_and_log(fake_vng, tmp_path, capsys):
    assert fake_vng("ok", "--kvm", "no") == 0
    out = tmp_path / "out"
    reports = list(out.glob("*.json"))
    assert len([r for r in reports if r.name != "matrix.json"]) == 1
    assert {p.name for p in out.iterdir()} >= {"matrix.md", "matrix.html", "matrix.json", "kernels.md", "logs"}
    assert not list(out.glob(".run-*")), "a staging directory was left behind"
    summary = (out / "kernels.md").read_text()
    assert "| 6.1.0-fake | emulated |" in summary
    err = capsys.readouterr().err
    assert "[1/1] 6.1.0-fake: booting (emulated, no KVM)" in err and "suite running" in err
    assert "conformance-kernels: booted" in (out / "logs" / "6.1.0-fake.console.log").read_text()


def test_auto_falls_back_to_emulation_when_the_kvm_guest_is_silent(fake_vng, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "kvm_usable", lambda: True)
    assert fake_vng("kvm-hangs", "--boot-timeout", "2") == 0
    err = capsys.readouterr().err
    assert "booting (KVM)" in err
    assert "no sign of the KVM guest within 2 s" in err and "booting without KVM from now on" in err
    assert "| 6.1.0-fake | emulated |" in (tmp_path / "out" / "kernels.md").read_text()


def test_a_kernel_that_does_not_boot_exits_3_and_keeps_its_log(fake_vng, tmp_path, capsys):
    assert fake_vng("no-kernel", "--kvm", "no") == 3
    err = capsys.readouterr().err
    log = tmp_path / "out" / "logs" / "6.1.0-fake.console.log"
    why = "did not boot (virtme-ng ended with status 1): qemu-system-x86_64: could not load kernel '/boot/x'"
    assert f"[1/1] 6.1.0-fake: {why}; booting it once more" in err
    assert "[1/1] 6.1.0-fake: booting (emulated, no KVM), try 2 of 2" in err
    assert f"6.1.0-fake: {why}; the first boot too: {why}; console log: {log}" in err
    text = log.read_text()
    assert text.count("\nqemu-system-x86_64: could not load kernel") == 2  # each boot's console, one after the other
    assert f"== conformance kernels: boot 1 given up: {why}" in text
    summary = (tmp_path / "out" / "kernels.md").read_text()
    assert "| 6.1.0-fake | emulated |  |  | did not boot (virtme-ng ended with status 1): " in summary
    assert "could not load kernel '/boot/x'; the first boot too: did not boot" in summary
    assert (tmp_path / "bin" / "boots").read_text().count("boot") == 2


def test_a_guest_from_which_nothing_reaches_us_is_not_said_to_have_not_booted(fake_vng, tmp_path, capsys):
    assert fake_vng("silent", "--kvm", "no") == 3
    err = capsys.readouterr().err
    why = ("no console output reached us before virtme-ng ended with status 255, and the guest wrote no sign: "
           "whether it booted is unknown")
    assert f"6.1.0-fake: {why}; booting it once more" in err
    assert f"6.1.0-fake: {why}; the first boot too: {why}; console log: " in err
    assert "did not boot" not in err
    assert why in (tmp_path / "out" / "kernels.md").read_text()


def test_a_guest_that_booted_with_its_console_lost_still_counts(fake_vng, tmp_path, capsys):
    """The guest's own file says it booted, and its report is there: the run counts, and says what was lost."""
    assert fake_vng("silent-booted", "--kvm", "no") == 0
    err = capsys.readouterr().err
    kept = tmp_path / "out" / "logs" / "6.1.0-fake.guest.log"
    note = f"booted (the guest's file says so), but its console output did not reach us; its own log: {kept}"
    assert f"6.1.0-fake: {note}" in err
    assert "booting it once more" not in err and "did not boot" not in err
    assert guest.MARKER in kept.read_text() and "passed" in kept.read_text()
    summary = (tmp_path / "out" / "kernels.md").read_text()
    assert "| 6.1.0-fake | emulated |" in summary and "its console output did not reach us" in summary
    assert len([p for p in (tmp_path / "out").glob("linux-*.json")]) == 1


def test_a_kernel_that_fails_to_boot_once_is_booted_again(fake_vng, tmp_path, capsys):
    assert fake_vng("fails-once", "--kvm", "no") == 0
    err = capsys.readouterr().err
    why = ("did not boot (virtme-ng ended with status 255): [    0.000000] Linux version 6.1.0-fake | "
           "[    9.000000] Kernel panic - not syncing: VFS: Unable to mount root fs")
    assert f"[1/1] 6.1.0-fake: {why}; booting it once more" in err
    assert f"6.1.0-fake: booted on the second try; the first: {why}" in err
    summary = (tmp_path / "out" / "kernels.md").read_text()
    assert "; booted on the second try; the first: did not boot (virtme-ng ended with status 255): " in summary
    assert "Kernel panic" in summary
    log = (tmp_path / "out" / "logs" / "6.1.0-fake.console.log").read_text()
    assert "Kernel panic" in log and "boot 2 of 2" in log and guest.MARKER in log


def test_a_kernel_whose_suite_writes_no_report_exits_3(fake_vng, capsys):
    assert fake_vng("no-report", "--kvm", "no") == 3
    assert "6.1.0-fake: the suite wrote 0 reports (exit status 0)" in capsys.readouterr().err


def test_with_a_reference_dir_the_status_is_the_verdict_against_the_reference(fake_vng, tmp_path, capsys):
    """A selection of the suite is no whole run: with no reference of its family, nothing vouches for it (1)."""
    references = tmp_path / "references"
    references.mkdir()
    assert fake_vng("ok", "--kvm", "no", "--reference-dir", str(references)) == 1
    out = capsys.readouterr().out
    assert "6.1.0-fake: against no reference of the family linux" in out and "a selection of the suite" in out


def test_a_report_that_fails_only_where_its_reference_does_is_judged_clean(tmp_path):
    report = model(sample_report())
    path = tmp_path / f"{report.platform.id}.json"
    path.write_text(json.dumps(report.to_json()))
    assert any(case.outcome == "fail" for case in report.cases)  # recorded there too: no news
    assert reference.judge(report, [(str(path), report)]).problems == []
    assert runner.judged([(types.SimpleNamespace(label="6.1.0-fake"), report)], (tmp_path,)) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["kernels", "--no-host"], "conformance: kernels: nothing to run: no kernel given and --no-host\n"),
    (["kernels", "--reference-dir", "/nonexistent"], "conformance: kernels: --reference-dir /nonexistent: not a "
                                                     "directory\n"),
    (["kernels", "--dir", "/nonexistent"], "conformance: kernels: --dir /nonexistent: no such directory\n"),
    (["kernels", "--out", "/tmp/a b"], "conformance: kernels: --out /tmp/a b: virtme-ng cannot pass a path with "
                                       "blanks, quotes, '=' or ',' to a guest\n"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, monkeypatch):
    monkeypatch.setattr(runner, "find_tools", lambda: tools.Tools("/bin/true", ""))
    assert main(args) == 2
    assert capsys.readouterr().err == message


# Each refused by the command in one line, at once: before any directory is made, tool sought or kernel booted.
BAD_OPTIONS = [
    (["--cpus", "0"], "--cpus 0: not a whole number from 1 to {cpus_limit}"),
    (["--cpus", "two"], "--cpus two: not a whole number from 1 to {cpus_limit}"),
    (["--cpus", "100000"], "--cpus 100000: not a whole number from 1 to {cpus_limit}"),
    (["--memory", "2"], "--memory 2: not a size such as 2G or 1536M (MiB without a unit), at least 256M"),
    (["--memory", "2X"], "--memory 2X: not a size such as 2G"),
    (["--memory", "100000T"], "--memory 100000T: not a size such as 2G"),
    (["{image}", "-n", "9"], "-n 9: not auto, logical, 0 (one process) or a number of workers from 1 to 8"),
    (["-n", "-1"], "-n -1: not auto, logical, 0"),
    (["--boot-timeout", "inf"], "--boot-timeout inf: not a number of seconds above 0 and at most 86400"),
    (["--timeout", "0"], "--timeout 0: not a number of seconds above 0 and at most 86400"),
    (["--timeout", "nan"], "--timeout nan: not a number of seconds above 0 and at most 86400"),
    (["--user", "no-such-user-of-conformance"], "--user no-such-user-of-conformance: no such user here"),
    (["{text}"], "{text}: not a kernel image ("),
    (["{fifo}"], "{fifo}: not a regular file: a FIFO"),
    (["{tree}"], "{tree}: a directory, but not a kernel build tree (it has no .config)"),
    (["{missing}"], "{missing}: no such file or directory"),
    (["--dir", "{missing}"], "--dir {missing}: no such directory"),
    (["--dir", "{text}"], "--dir {text}: not a directory"),
]
# The directories, checked last: these may make --out, but nothing else.
BAD_DIRECTORIES = [
    (["--out", "{text}"], "--out {text}: not a directory"),
    (["--report-dir", "{text}/sub"], "--report-dir {text}/sub: cannot be made: Not a directory"),
    (["6.1", "--cache", "{text}"], "--cache {text}: not a directory"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS + BAD_DIRECTORIES,
                         ids=[" ".join(b[0]) for b in BAD_OPTIONS + BAD_DIRECTORIES])
def test_every_option_is_checked_before_anything_runs(tmp_path, argv, message):
    paths = {"image": str(fake_image(tmp_path / "vmlinuz-6.1.0-fake")), "text": str(tmp_path / "notes.txt"),
             "fifo": str(tmp_path / "fifo"), "tree": str(tmp_path / "tree"), "missing": str(tmp_path / "missing"),
             "cpus_limit": str(settings.workers_limit())}
    (tmp_path / "notes.txt").write_text("not a kernel\n" * 100)
    os.mkfifo(paths["fifo"])
    (tmp_path / "tree").mkdir()
    out = tmp_path / "out"
    argv = [arg.format(**paths) for arg in argv]
    got = refused(conformance("kernels", "--out", out, *argv, env=environment(TMPDIR=str(tmp_path))), "kernels")
    assert got.startswith(message.format(**paths)), got
    if (argv, message) in [(b[0], b[1]) for b in BAD_OPTIONS]:
        assert not out.exists()
    assert not (out / "logs").exists()


@pytest.mark.parametrize(("machine", "name", "offset", "magic"),
                         [(machine, *form) for machine, forms in images.FORMATS.items() for form in forms])
def test_each_image_format_is_known_by_its_magic_number(tmp_path, machine, name, offset, magic):
    path = tmp_path / "image"
    path.write_bytes(bytes(offset) + magic + bytes(64))
    assert images.image_problem(str(path), machine) == ""
    other = "aarch64" if machine == "x86_64" else "x86_64"
    assert images.image_problem(str(path), other).startswith("not a kernel image (")  # another machine's
    path.write_bytes(bytes(offset) + magic[:-1] + bytes(64))
    assert images.image_problem(str(path), machine).startswith("not a kernel image (")


def test_a_build_tree_needs_its_image(tmp_path):
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / ".config").write_text("CONFIG_X=y\n")
    machine = os.uname().machine
    if machine not in images.BUILD_TREE_IMAGE:
        pytest.skip(f"no QEMU known for {machine}")
    with pytest.raises(KernelSourceError, match="a kernel build tree without a bootable arch/.*: no such file$"):
        resolve(str(tree), tmp_path)
    image = tree / images.BUILD_TREE_IMAGE[machine]
    image.parent.mkdir(parents=True)
    fake_image(image)
    assert resolve(str(tree), tmp_path).image == str(tree.resolve())


def test_an_unknown_kernel_argument_is_one_line_from_the_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "conformance", "kernels", "sixpointone", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("conformance: kernels: sixpointone: ")
    assert "Traceback" not in done.stderr



def test_reports_can_go_beside_other_runs_while_the_rest_stays_in_out(fake_vng, tmp_path):
    assert fake_vng("ok", "--kvm", "no", "--report-dir", str(tmp_path / "runs")) == 0
    assert [p.suffix for p in sorted((tmp_path / "runs").iterdir())] == [".html", ".json", ".ktap", ".md"]
    assert not [p for p in (tmp_path / "out").glob("linux-*")]
    assert (tmp_path / "out" / "matrix.md").exists() and (tmp_path / "out" / "kernels.md").exists()


def test_two_arguments_for_one_kernel_are_refused(fake_vng, tmp_path, capsys):
    image = str(tmp_path / "vmlinuz-6.1.0-fake")
    assert main(["kernels", image, os.path.relpath(image), "--no-host", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.endswith(f"conformance: kernels: {image} and {os.path.relpath(image)} name the same "
                                            "kernel (6.1.0-fake)\n")
