"""The whole conformance suite, run once through two pytest-xdist workers, leaves nothing behind: no process that
descends from the run, no descriptor in this process, no file under the run's TMPDIR, no leak the plugin's check
had to clean up, and (Linux, as root) no UNIX socket in the fresh network namespace the run had to itself.

Cost, measured on 2 cores: about 9 s, the suite's 6 s plus the interpreters starting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import nested_run
import pytest

from conformance.harness import fds

WALL = 200.0  # the whole nested run; beyond it the run is killed and the test fails

# Runs inside the network namespace, before and after the suite: a fresh namespace has only its own sockets in
# /proc/net (the /proc/net/protocols counts are per namespace too) and its loopback down.
COUNT_AND_RUN = '''
import fcntl, json, socket, struct, subprocess, sys


def unix_sockets():
    counts = {}
    with open("/proc/net/protocols") as f:
        for line in f:
            fields = line.split()
            if fields[0] in ("UNIX", "UNIX-STREAM"):  # protocol, size, sockets, ...
                counts[fields[0]] = int(fields[2])
    with open("/proc/net/unix") as f:
        counts["/proc/net/unix"] = len(f.readlines()) - 1  # one line a socket, after the header
    return counts


def loopback_up():
    """The cases over TCP and UDP use 127.0.0.1 (netdevice(7): SIOCGIFFLAGS, SIOCSIFFLAGS; struct ifreq is 40 bytes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16s24x", b"lo")
        flags = struct.unpack_from("16xH", fcntl.ioctl(s, 0x8913, request))[0]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 0x1))  # IFF_UP


loopback_up()
before = unix_sockets()
status = subprocess.run(sys.argv[2:]).returncode
with open(sys.argv[1], "w") as f:
    json.dump({"before": before, "after": unix_sockets()}, f)
sys.exit(status)
'''


def _why_no_network_namespace() -> str | None:
    """Why the run cannot have a network namespace of its own here; None when it can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux's"
    if os.geteuid() != 0:
        return "unshare --net needs root"
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare(1) on PATH"
    done = subprocess.run([unshare, "--net", "true"], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        return f"unshare --net fails here: {done.stderr.strip()}"
    return None


@pytest.mark.timeout(240)  # about 9 s alone; WALL bounds the nested run, the margin is for a loaded machine
def test_the_whole_suite_leaves_no_process_descriptor_file_or_unix_socket(tmp_path):
    no_namespace = _why_no_network_namespace()
    tmpdir, report_dir, counts = tmp_path / "tmp", tmp_path / "report", tmp_path / "unix-sockets.json"
    tmpdir.mkdir()
    marker = f"{tmp_path}{os.sep}"  # in its argv and environment, not in a sibling's
    command = nested_run.pytest_command(str(nested_run.ROOT / "conformance" / "cases"), "-q", "-n", "2",
                                        "--basetemp", str(tmp_path / "basetemp"),
                                        "--conformance-report", str(report_dir))
    if no_namespace is None:
        (tmp_path / "count_and_run.py").write_text(COUNT_AND_RUN)
        command = ["unshare", "--net", "--", sys.executable, str(tmp_path / "count_and_run.py"), str(counts),
                   *command]
    descriptors = fds.open_fds()
    status, wall = nested_run.run(command, cwd=nested_run.ROOT, env=nested_run.environment(tmpdir, marker),
                                  output=tmp_path / "output.txt", timeout=WALL)
    output = (tmp_path / "output.txt").read_text(errors="replace")

    alive = nested_run.survivors(marker)
    nested_run.kill(alive)
    changed = {fd: fds.describe(fd) for fd in set(descriptors) | set(fds.open_fds())
               if fds.identity(fd) != descriptors.get(fd)}
    files = nested_run.files_under(tmpdir)
    assert not alive and not changed and not files, (
        f"left over after {wall:.1f} s: {len(alive)} processes {alive}, descriptors of this process that "
        f"changed {changed}, files under TMPDIR {files}")

    report = nested_run.report_of(report_dir)
    caught = nested_run.leak_findings(report)
    assert not any(caught.values()), f"the leak check had to clean up after cases: {caught}"
    errors = {case["id"]: case["reason"] for case in report["cases"] if case["outcome"] == "error"}
    assert not errors and status == 0, f"exit status {status}, errors {errors}:\n{output[-3000:]}"

    if no_namespace is not None:
        pytest.skip(f"processes, descriptors and files checked; UNIX sockets not counted: {no_namespace}")
    sockets = json.loads(counts.read_text())
    assert sockets["after"] == sockets["before"], f"UNIX sockets of the suite remain: {sockets}"
    print(f"the suite took {wall:.1f} s; left over: 0 processes, 0 descriptors, 0 files; UNIX sockets in its "
          f"network namespace before {sockets['before']}, after {sockets['after']}")
