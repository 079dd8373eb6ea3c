"""The whole conformance suite run for real, once each way per pytest session: serially, and through two
pytest-xdist workers in random order (in a network namespace of its own where it can have one). test_real_report.py
checks both reports; test_leftovers.py checks what the parallel run left behind.

Under xdist the first worker that needs a run makes it, holding a lock in the session's shared base directory, and
records it there; a worker that needs it meanwhile waits for the lock and reads the record: whatever the --dist,
the suite runs at most twice. (xdist_group with --dist loadgroup would keep the tests on one worker, but pytest 9.2
with xdist 3.8 ignores the group: pytest-xdist issue 1386.)

Cost, measured on 2 cores: about 4 s serially and 3.5 s in parallel (each the suite plus the interpreters
starting; 5 to 6 s on a loaded machine).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nested_run
import pytest

from conformance.harness import fds

WALL = 400.0  # each nested run (a serial one took over 200 s on a kernel slowed by leaked sockets); beyond it the
# run is killed and the test whose setup started it fails

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


@dataclasses.dataclass
class SuiteRun:
    """A finished run of the whole suite and what it left behind, measured from outside as soon as it ended."""

    status: int
    wall: float
    output: str
    report_dir: Path
    survivors: dict  # pid -> command line of its processes still alive (killed since)
    descriptors: dict  # fd -> description of this process's descriptors that it changed
    files: list  # left under its TMPDIR
    unix_sockets: dict | None  # {"before": counts, "after": counts} in its network namespace
    no_namespace: str | None  # why it had no network namespace of its own

    def dump(self, path: Path) -> None:
        fields = dataclasses.asdict(self)
        fields.update(report_dir=str(self.report_dir), survivors=list(self.survivors.items()),
                      descriptors=list(self.descriptors.items()))  # JSON keys would be strings
        path.with_suffix(".tmp").write_text(json.dumps(fields))
        path.with_suffix(".tmp").replace(path)

    @classmethod
    def load(cls, path: Path) -> SuiteRun:
        fields = json.loads(path.read_text())
        fields.update(report_dir=Path(fields["report_dir"]), survivors=dict(fields["survivors"]),
                      descriptors=dict(fields["descriptors"]))
        return cls(**fields)


def _run_suite(directory: Path, *args: str, namespace: bool = False) -> SuiteRun:
    no_namespace = _why_no_network_namespace() if namespace else "not asked for"
    report_dir, counts, output = directory / "report", directory / "unix-sockets.json", directory / "output.txt"
    marker = f"{directory}{os.sep}"  # in its argv and environment, not in a sibling's
    command = nested_run.pytest_command(str(nested_run.ROOT / "conformance" / "cases"), "-q", *args,
                                        "--basetemp", str(directory / "basetemp"),
                                        "--conformance-report", str(report_dir))
    if no_namespace is None:
        (directory / "count_and_run.py").write_text(COUNT_AND_RUN)
        command = ["unshare", "--net", "--", sys.executable, str(directory / "count_and_run.py"), str(counts),
                   *command]
    # Not under tmp_path, whose root only its owner may traverse: a case's child that dropped privileges must reach
    # the socket its case made in TMPDIR. tempfile's directory is the plugin's session one, which any uid may.
    tmpdir = Path(tempfile.mkdtemp(prefix="selftest-run-"))
    tmpdir.chmod(0o711)
    try:
        descriptors = fds.open_fds()
        status, wall = nested_run.run(command, cwd=nested_run.ROOT, env=nested_run.environment(tmpdir, marker),
                                      output=output, timeout=WALL)
        alive = nested_run.survivors(marker)
        nested_run.kill(alive)
        changed = {fd: fds.describe(fd) for fd in set(descriptors) | set(fds.open_fds())
                   if fds.identity(fd) != descriptors.get(fd)}
        files = nested_run.files_under(tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return SuiteRun(status=status, wall=wall, output=output.read_text(errors="replace"), report_dir=report_dir,
                    survivors=alive, descriptors=changed, files=files,
                    unix_sockets=json.loads(counts.read_text()) if counts.exists() else None,
                    no_namespace=no_namespace)


def _once_per_session(name: str, tmp_path_factory, worker_id: str, *args: str, namespace: bool = False) -> SuiteRun:
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # a worker's is <the session's>/popen-gwN
    record = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed, or when a worker dies
        if record.exists():
            return SuiteRun.load(record)
        run = _run_suite(tmp_path_factory.mktemp(name), *args, namespace=namespace)
        run.dump(record)
        return run


@pytest.fixture(scope="session")
def serial_run(tmp_path_factory, worker_id) -> SuiteRun:
    """The whole suite in one process, in file order."""
    return _once_per_session("serial-run", tmp_path_factory, worker_id)


@pytest.fixture(scope="session")
def parallel_run(tmp_path_factory, worker_id) -> SuiteRun:
    """The whole suite through two pytest-xdist workers in random order, in a fresh network namespace if it can."""
    return _once_per_session("parallel-run", tmp_path_factory, worker_id, "-n", "2", "-p", "randomly",
                             namespace=True)
