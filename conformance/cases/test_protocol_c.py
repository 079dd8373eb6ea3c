"""The same protocol spoken by two implementations: conformance.apue (Python) and apue_fd (C, compiled here).

A Python-only round trip proves that Python agrees with itself; these cases put the C peer on the other end
of the socket in both directions, for descriptors, error statuses and text, credentials and malformed
messages. The C peer runs as its own process with the socket inherited (subprocess pass_fds); it is
`unsupported` where no C compiler is found.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from conformance import apue
from conformance.credentials import message_mechanism
from conformance.harness import rights
from conformance.harness.deadlines import DEFAULT_DEADLINE
from conformance.native import NoCompiler, build
from conformance.outcomes import Unsupported

from ._support import data_file, or_unsupported, same_file

CONFORMANCE_AREA = "protocol"

SEED = "APUE 3e 17.4 (seed 000): send_fd/send_err/recv_fd for UNIX domain sockets"
SEED_CREDS = "APUE 3e 17.4 (seed 000): Figures 24-25 send_fd/recv_ufd with credentials"
NATIVE = "conformance/native/apue_fd.c (the C peer)"


@pytest.fixture(scope="session")
def apue_fd(tmp_path_factory):
    """The compiled C peer, built once per process; None with the reason when there is no compiler."""
    try:
        return build("apue_fd", tmp_path_factory.mktemp("native")), None
    except NoCompiler as e:
        return None, e.reason


class Peer:
    """One run of the C program with some of our descriptors inherited; always reaped, killed at the deadline."""

    def __init__(self, program, *args, pass_fds=()) -> None:
        self.proc = subprocess.Popen([str(program), *map(str, args)], pass_fds=tuple(pass_fds),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list = []
        self.returncode = None

    def wait(self) -> Peer:
        try:
            out, err = self.proc.communicate(timeout=DEFAULT_DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError(f"the C peer did not finish within {DEFAULT_DEADLINE} s") from None
        self.returncode = self.proc.returncode
        self.lines = out.decode().splitlines()
        self.stderr = err.decode()
        return self

    def field(self, name: str) -> str:
        values = [line.split(" ", 1)[1] if " " in line else "" for line in self.lines if line.split(" ")[0] == name]
        assert values, f"the C peer printed no {name!r} line: {self.lines} {self.stderr}"
        return values[-1]

    def text(self) -> bytes:
        return b"".join(bytes.fromhex(line.split(" ", 1)[1] if " " in line else "")
                        for line in self.lines if line.split(" ")[0] == "text")

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def c_peer(apue_fd):
    program, reason = apue_fd
    if program is None:
        raise Unsupported(reason)
    return lambda *args, pass_fds=(): Peer(program, *args, pass_fds=pass_fds)


def _file_identity(peer: Peer) -> tuple:
    dev, ino = peer.field("file").split()
    return int(dev), int(ino)


ERRORS = {  # id: (code given to send_err, text, the status the seed puts on the wire)
    "status_42": (-42, b"c says no", 42),
    "status_255": (-255, b"last", 255),
    "minus_256_is_1": (-256, b"wraps", 1),
    "non_negative_is_1": (0, b"zero code", 1),
    "no_text": (-9, b"", 9),
    "text_over_three_reads": (-17, bytes(range(1, 256)) * 49, 17),  # 12495 bytes, split across 4096-byte reads
}


# ---- C sends, Python receives --------------------------------------------------------------------------------

@pytest.mark.refs(SEED, NATIVE)
def test_c_send_fd_to_python_recv_fd(pair, workdir, c_peer):
    a, b = pair
    fd = data_file(workdir)
    try:
        with c_peer("send_fd", a.fileno(), fd, pass_fds=(a.fileno(), fd)) as peer:
            received = apue.recv_fd(b, None)
            assert peer.wait().returncode == 0, peer.lines
        try:
            assert same_file(received, fd), "the descriptor the C peer sent names another file"
        finally:
            os.close(received)
    finally:
        os.close(fd)


@pytest.mark.parametrize("error", list(ERRORS))
@pytest.mark.refs(SEED, NATIVE)
def test_c_send_err_to_python_recv_fd(stream_pair, c_peer, error):
    a, b = stream_pair
    code, text, status = ERRORS[error]
    chunks = []
    with c_peer("send_err", a.fileno(), code, text.hex(), pass_fds=(a.fileno(),)) as peer:
        result = apue.recv_fd(b, lambda _fd, data: chunks.append(data) or len(data))
        assert peer.wait().returncode == 0, peer.lines
    assert result == -status, f"C send_err({code}) -> Python recv_fd returned {result}, the seed's status is {status}"
    assert b"".join(chunks) == text


# ---- Python sends, C receives --------------------------------------------------------------------------------

@pytest.mark.refs(SEED, NATIVE)
def test_python_send_fd_to_c_recv_fd(pair, workdir, c_peer):
    a, b = pair
    fd = data_file(workdir)
    try:
        with c_peer("recv_fd", b.fileno(), pass_fds=(b.fileno(),)) as peer:
            apue.send_fd(a, fd)
            peer.wait()
        assert peer.returncode == 0 and int(peer.field("result")) >= 0, peer.lines
        st = os.fstat(fd)
        assert _file_identity(peer) == (st.st_dev, st.st_ino), "the C peer received another file"
    finally:
        os.close(fd)


@pytest.mark.parametrize("error", list(ERRORS))
@pytest.mark.refs(SEED, NATIVE)
def test_python_send_err_to_c_recv_fd(stream_pair, c_peer, error):
    a, b = stream_pair
    code, text, status = ERRORS[error]
    with c_peer("recv_fd", b.fileno(), pass_fds=(b.fileno(),)) as peer:
        apue.send_err(a, code, text)
        peer.wait()
    assert peer.returncode == 0, peer.lines
    assert int(peer.field("result")) == -status
    assert peer.text() == text


# ---- credentials ---------------------------------------------------------------------------------------------

def _mechanism():
    return or_unsupported(message_mechanism)


@pytest.mark.refs(SEED_CREDS, NATIVE)
def test_c_send_fd_with_credentials_to_python_recv_ufd(stream_pair, workdir, c_peer):
    a, b = stream_pair
    _mechanism().prepare_receiver(b)
    fd = data_file(workdir)
    try:
        with c_peer("send_fd", a.fileno(), fd, "--creds", pass_fds=(a.fileno(), fd)) as peer:
            received, uid = apue.recv_ufd(b, None)
            assert peer.wait().returncode == 0, peer.lines
        os.close(received)
        assert uid == os.geteuid()
    finally:
        os.close(fd)


@pytest.mark.refs(SEED_CREDS, NATIVE)
def test_python_send_fd_with_credentials_to_c_recv_ufd(stream_pair, workdir, c_peer):
    a, b = stream_pair
    mechanism = _mechanism()
    fd = data_file(workdir)
    try:
        with c_peer("recv_ufd", b.fileno(), pass_fds=(b.fileno(),)) as peer:
            apue.send_fd(a, fd, credentials=True)
            peer.wait()
        assert peer.returncode == 0, peer.lines
        assert peer.field("mechanism") == mechanism.name, "C and Python use different credential mechanisms"
        assert int(peer.field("uid")) == os.geteuid()
        st = os.fstat(fd)
        assert _file_identity(peer) == (st.st_dev, st.st_ino)
    finally:
        os.close(fd)


# ---- malformed messages: both implementations name the same error ---------------------------------------------

MALFORMED = {  # id: (raw bytes Python sends, close afterwards, the seed's message)
    "format_error": (b"ab\0\x05cd", False, "message format error"),
    "status_zero_no_fd": (b"\0\0", False, "status = 0 but no fd"),
    "closed_mid_text": (b"partial", True, "connection closed by server"),
}


@pytest.mark.parametrize("shape", list(MALFORMED))
@pytest.mark.refs(SEED, NATIVE)
def test_c_recv_fd_names_the_seeds_error_for_a_malformed_message(stream_pair, c_peer, shape):
    a, b = stream_pair
    raw, close, message = MALFORMED[shape]
    with c_peer("recv_fd", b.fileno(), pass_fds=(b.fileno(),)) as peer:
        assert rights.send_fds(a, [], raw) == len(raw)
        if close:
            a.close()
        peer.wait()
    assert peer.returncode == 3, f"exit status {peer.returncode}: {peer.lines}"
    assert peer.field("error") == message
