"""Self-tests for conformance.native: finding a compiler, building and caching, and apue_fd on real sockets."""

from __future__ import annotations

import array
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import native

ROOT = Path(__file__).resolve().parents[1]

TIMEOUT = 10


@pytest.fixture(scope="module")
def apue_fd(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The program, built once for this module."""
    try:
        return str(native.build("apue_fd", tmp_path_factory.mktemp("native")))
    except native.NoCompiler as exc:
        pytest.skip(exc.reason)


def run(program: str, *args, fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([program, *map(str, args)], pass_fds=fds, capture_output=True, text=True, timeout=TIMEOUT)


def identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def stream_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.settimeout(TIMEOUT)
    b.settimeout(TIMEOUT)
    return a, b


# ---- building ----------------------------------------------------------------------------------------------------

def test_build_makes_an_executable_and_reuses_it(tmp_path, monkeypatch):
    if native.compiler() is None:
        pytest.skip("no C compiler")
    first = native.build("apue_fd", tmp_path)
    assert re.fullmatch(r"apue_fd-[0-9a-f]{12}", first.name)
    assert first.parent == tmp_path and os.access(first, os.X_OK)
    assert [p.name for p in tmp_path.iterdir()] == [first.name], "the temporary output must be renamed away"
    mtime = first.stat().st_mtime_ns

    def no_compiling(*args, **kwargs):
        raise AssertionError(f"compiled again: {args}")

    monkeypatch.setattr(native.subprocess, "run", no_compiling)
    assert native.build("apue_fd", tmp_path) == first
    assert first.stat().st_mtime_ns == mtime


def test_no_compiler_when_cc_is_missing_and_path_has_none(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(native.NoCompiler) as info:
        native.build("apue_fd", tmp_path / "out")
    assert "no-such-cc" in info.value.reason

    monkeypatch.delenv("CC")
    assert native.compiler() is None
    with pytest.raises(native.NoCompiler) as info:
        native.build("apue_fd", tmp_path / "out")
    assert info.value.reason
    assert not (tmp_path / "out").exists()


def test_cc_may_carry_arguments(monkeypatch):
    monkeypatch.setenv("CC", "  gcc -m64 ")
    assert native.compiler() == "gcc -m64"
    monkeypatch.setenv("CC", "")  # empty counts as unset
    found = [shutil.which(name) for name in ("cc", "gcc", "clang")]
    assert native.compiler() == next((path for path in found if path), None)


def test_a_broken_source_is_a_build_failure_not_a_missing_compiler(tmp_path, monkeypatch):
    if native.compiler() is None:
        pytest.skip("no C compiler")
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.c").write_text("int main(void) { return undeclared_name; }\n")
    monkeypatch.setattr(native, "SOURCE_DIR", src)
    out = tmp_path / "out"
    with pytest.raises(native.BuildFailed) as info:
        native.build("broken", out)
    assert isinstance(info.value, RuntimeError)
    assert "undeclared_name" in info.value.stderr
    assert info.value.returncode not in (0, None)
    assert list(out.iterdir()) == [], "a failed build leaves nothing behind"


# ---- apue_fd as the sender -----------------------------------------------------------------------------------------

def test_send_fd_passes_a_descriptor_python_can_receive(apue_fd, tmp_path):
    a, b = stream_pair()
    with a, b, open(tmp_path / "passed", "wb+") as f:
        done = run(apue_fd, "send_fd", a.fileno(), f.fileno(), fds=(a.fileno(), f.fileno()))
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        data, ancdata, flags, _ = b.recvmsg(2, socket.CMSG_SPACE(4))
        got = array.array("i")
        for level, kind, payload in ancdata:
            assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
            got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
        try:
            assert data == b"\x00\x00"
            assert not flags & socket.MSG_CTRUNC
            assert len(got) == 1
            assert identity(got[0]) == identity(f.fileno())
        finally:
            for fd in got:
                os.close(fd)


@pytest.mark.parametrize("fd, status", [(-1, 1), (-7, 7), (-255, 255), (-256, 1), (-300, 44), (-512, 1)])
def test_send_fd_with_a_negative_fd_sends_only_a_status(apue_fd, fd, status):
    a, b = stream_pair()
    with a, b:
        done = run(apue_fd, "send_fd", a.fileno(), fd, fds=(a.fileno(),))
        assert done.returncode == 0, done.stdout + done.stderr
        data, ancdata, _, _ = b.recvmsg(16, socket.CMSG_SPACE(4))
        assert (data, ancdata) == (b"\x00" + bytes([status]), [])


def test_send_err_sends_text_then_status(apue_fd):
    a, b = stream_pair()
    with a, b:
        done = run(apue_fd, "send_err", a.fileno(), 5, b"oops".hex(), fds=(a.fileno(),))
        assert done.returncode == 0, done.stdout + done.stderr
        a.close()  # Python's copy; the program has exited, so the stream now ends after its bytes
        received = b""
        while chunk := b.recv(64):
            received += chunk
        assert received == b"oops\x00\x01"  # a code >= 0 becomes -1


def test_send_fd_reports_a_bad_descriptor(apue_fd):
    a, b = stream_pair()
    with a, b:
        done = run(apue_fd, "send_fd", a.fileno(), 999_999, fds=(a.fileno(),))
        assert done.returncode == 1
        assert done.stdout.startswith("error ")


def test_bad_usage_exits_2(apue_fd):
    done = run(apue_fd, "send_fd")
    assert done.returncode == 2 and done.stderr.startswith("usage: ") and done.stdout == ""


# ---- apue_fd as the receiver ---------------------------------------------------------------------------------------

def test_recv_fd_reports_text_and_status(apue_fd):
    a, b = stream_pair()
    with a, b:
        a.sendall(b"oops\x00\x07")
        done = run(apue_fd, "recv_fd", b.fileno(), fds=(b.fileno(),))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines() == ["text 6f6f7073", "result -7"]


def test_recv_fd_receives_a_descriptor(apue_fd, tmp_path):
    a, b = stream_pair()
    with a, b, open(tmp_path / "passed", "wb+") as f:
        a.sendmsg([b"\x00\x00"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [f.fileno()]).tobytes())])
        done = run(apue_fd, "recv_fd", b.fileno(), fds=(b.fileno(),))
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 2 and re.fullmatch(r"result \d+", lines[0])
        dev, ino = identity(f.fileno())
        assert lines[1] == f"file {dev} {ino}"


def test_recv_fd_reads_a_status_split_from_its_nul(apue_fd):
    # 4095 bytes of text and the NUL fill the 4096-byte buffer; the status byte needs one more read.
    a, b = stream_pair()
    with a, b:
        a.sendall(b"a" * 4095 + b"\x00\x05")
        done = run(apue_fd, "recv_fd", b.fileno(), 4096, fds=(b.fileno(),))
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[-1] == "result -5"
        texts = lines[:-1]
        assert texts and all(line.startswith("text ") for line in texts)
        assert "".join(line[len("text "):] for line in texts) == (b"a" * 4095).hex()


def test_recv_fd_protocol_errors_exit_3(apue_fd):
    a, b = stream_pair()
    with a, b:
        a.sendall(b"\x00\x00")  # status 0 but no descriptor
        done = run(apue_fd, "recv_fd", b.fileno(), fds=(b.fileno(),))
        assert (done.returncode, done.stdout) == (3, "error status = 0 but no fd\n")
        a.shutdown(socket.SHUT_WR)
        done = run(apue_fd, "recv_fd", b.fileno(), fds=(b.fileno(),))
        assert (done.returncode, done.stdout) == (3, "error connection closed by server\n")


# ---- the interoperation cases without a compiler ----------------------------------------------------------------

def test_interop_cases_are_unsupported_without_a_compiler(tmp_path):
    """With $CC naming no program, every C-peer case reports `unsupported` with the reason, none fails."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, CC="/nonexistent/cc", TMPDIR=str(tmp_path / "tmp"))  # the inner run's files stay in tmp_path
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(root / "conformance" / "cases" / "test_protocol_c.py"), "-q",
         "-p", "no:cacheprovider", "-p", "no:randomly", "--conformance-report", str(tmp_path / "report")],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (report,) = (tmp_path / "report").glob("*.json")
    cases = json.loads(report.read_text())["cases"]
    assert cases and {c["outcome"] for c in cases} == {"unsupported"}
    assert all("/nonexistent/cc" in c["reason"] for c in cases), {c["reason"] for c in cases}


# ---- the C sources compile for the other OSes, whose CI this machine cannot run -----------------------------------

# Each C source with the flags its build adds, for every target a CI job runs (zig's clang carries their headers).
CROSS_TARGETS = ("x86_64-freebsd", "aarch64-macos", "x86_64-macos", "aarch64-linux-gnu", "x86-linux-gnu",
                 "s390x-linux-gnu")
CROSS_SOURCES = {
    "conformance/native/apue_fd.c": (),
    "conformance/bench/baselines.c": (),
    "conformance/faults/layer.c": ("-shared", "-fPIC", "-DCONFORMANCE_SO_PASSRIGHTS=83",
                                   "-DCONFORMANCE_SYS_PIDFD_GETFD=438"),
}


@pytest.mark.parametrize("target", CROSS_TARGETS)
@pytest.mark.parametrize("source", sorted(CROSS_SOURCES))
def test_every_c_source_compiles_without_a_warning_for_each_os_ci_runs(source, target, tmp_path):
    """A warning is an error in every build (-Werror): one that only FreeBSD's or macOS's headers cause (an unused
    function behind an #ifdef, a struct macOS names but does not define) would otherwise be found only in their CI."""
    pytest.importorskip("ziglang")
    flags = list(CROSS_SOURCES[source])
    if "macos" in target and "-shared" in flags:
        flags[flags.index("-shared")] = "-dynamiclib"
    done = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", target, *native.FLAGS, *flags,
                           "-o", str(tmp_path / "out"), str(ROOT / source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
