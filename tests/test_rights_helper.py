"""Self-tests for conformance.harness.rights: a real round trip, buffer sizing, ownership and parsing."""

from __future__ import annotations

import array
import errno
import os
import socket

import pytest

from conformance.harness import rights
from conformance.harness.fds import identity


def assert_closed(*fds: int) -> None:
    for fd in fds:
        with pytest.raises(OSError) as info:
            os.fstat(fd)
        assert info.value.errno == errno.EBADF, f"fd {fd}: {info.value}"


def packed(*fds: int) -> bytes:
    return array.array("i", fds).tobytes()


RIGHTS = (socket.SOL_SOCKET, socket.SCM_RIGHTS)


@pytest.fixture
def pipes():
    """Two real pipes (r1, w1, r2, w2); whatever a test did not close is closed afterwards."""
    ends = [*os.pipe(), *os.pipe()]
    yield ends
    for fd in ends:
        try:
            os.close(fd)
        except OSError:
            pass


def test_send_and_receive_descriptors_on_a_real_socketpair(pipes):
    r1, w1, r2, w2 = pipes
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert rights.send_fds(a, [r1, w2], b"hi") == 2
        with rights.recv_fds(b, 2) as got:
            assert got.data == b"hi"
            assert not got.ctrunc and got.truncated_bytes == 0
            assert len(got.fds) == 2 and set(got.fds).isdisjoint(pipes)
            assert [identity(fd) for fd in got.fds] == [identity(r1), identity(w2)]
            os.write(got.fds[1], b"through the copy")
            assert os.read(r2, 100) == b"through the copy"
            received = got.fds
        assert_closed(*received)


def test_sending_without_descriptors_sends_no_control_message():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        rights.send_fds(a, [], b"plain")
        with rights.recv_fds(b, 4) as got:
            assert got.data == b"plain" and got.groups == [] and got.other == []


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 253])
def test_rights_space_is_cmsg_space(n):
    assert rights.rights_space(n) == socket.CMSG_SPACE(4 * n)


class RecordingSocket:
    def __init__(self) -> None:
        self.calls: list = []

    def recvmsg(self, bufsize, ancbufsize, flags=0):
        self.calls.append((bufsize, ancbufsize, flags))
        return b"d", [], 0, None


def test_recv_fds_sizes_its_control_buffer_with_cmsg_space():
    sock = RecordingSocket()
    rights.recv_fds(sock, 3)
    rights.recv_fds(sock, 1, bufsize=7, flags=socket.MSG_PEEK)
    rights.recv_fds(sock, 1, controllen=socket.CMSG_LEN(4))
    assert sock.calls == [
        (1024, socket.CMSG_SPACE(12), 0),
        (7, socket.CMSG_SPACE(4), socket.MSG_PEEK),
        (1024, socket.CMSG_LEN(4), 0),
    ]


def test_cmsg_space_fallback_matches_the_socket_module(monkeypatch):
    real = socket.CMSG_SPACE
    expected = [real(n) for n in range(0, 130)]
    monkeypatch.delattr(socket, "CMSG_SPACE")
    assert [rights.cmsg_space(n) for n in range(0, 130)] == expected


# ---- ownership --------------------------------------------------------------------------------------------------

def test_received_close_closes_every_descriptor(pipes):
    received = rights.Received(groups=[[pipes[0]], [pipes[1], pipes[2]]])
    received.close()
    assert_closed(*pipes[:3])
    assert received.groups == [] and received.fds == []
    received.close()  # a second close does nothing
    os.fstat(pipes[3])  # the one it did not own is still open


def test_received_as_a_context_manager_closes_on_error(pipes):
    with pytest.raises(RuntimeError), rights.Received(groups=[[pipes[0], pipes[1]]]):
        raise RuntimeError("case failed")
    assert_closed(pipes[0], pipes[1])


def test_take_hands_the_descriptors_over(pipes):
    with rights.Received(groups=[[pipes[0]], [pipes[1]]]) as got:
        assert got.take() == [pipes[0], pipes[1]]
    os.fstat(pipes[0])
    os.fstat(pipes[1])


# ---- parse() on crafted control data ------------------------------------------------------------------------------

def test_parse_keeps_rights_groups_in_order_and_other_messages(pipes):
    r1, w1, r2, w2 = pipes
    creds = (socket.SOL_SOCKET, getattr(socket, "SCM_CREDENTIALS", 2), b"\x01\x02\x03")
    ancdata = [(*RIGHTS, packed(w2, r1)), creds, (*RIGHTS, packed(r2)), (*RIGHTS, packed(w1, r2, w2))]
    got = rights.parse(b"data", ancdata, 0)
    assert got.data == b"data"
    assert got.groups == [[w2, r1], [r2], [w1, r2, w2]]
    assert got.fds == [w2, r1, r2, w1, r2, w2]
    assert got.other == [creds]
    assert got.truncated_bytes == 0
    got.take()  # the fixture closes the pipes


def test_parse_counts_a_trailing_partial_int(pipes):
    ancdata = [(*RIGHTS, packed(pipes[0])), (*RIGHTS, packed(pipes[1], pipes[2]) + b"\x07\x00")]
    got = rights.parse(b"", ancdata, socket.MSG_CTRUNC)
    assert got.groups == [[pipes[0]], [pipes[1], pipes[2]]]
    assert got.truncated_bytes == 2
    assert got.ctrunc
    got.take()


def test_parse_that_fails_half_way_closes_what_it_parsed(pipes):
    r1, w1, r2, w2 = pipes
    ancdata = [(*RIGHTS, packed(r1, w1)), (*RIGHTS, 12345), (*RIGHTS, packed(r2))]
    with pytest.raises(TypeError):
        rights.parse(b"", ancdata, 0)
    assert_closed(r1, w1)
    os.fstat(r2)  # never reached, so never owned
    os.fstat(w2)


# ---- the prepared structs behind rights_cmsg, parse and recv_fds ----------------------------------------------------

@pytest.mark.parametrize("fds", [[5], [0], [-21845], [2**31 - 1], [-2**31], [3, 4], (7,), (7, 8, 9), [], [True],
                                 range(4)])
def test_rights_cmsg_packs_what_an_array_packs(fds):
    assert rights.rights_cmsg(fds) == (*RIGHTS, packed(*fds))
    assert rights.rights_cmsg(fd for fd in fds) == (*RIGHTS, packed(*fds))


@pytest.mark.parametrize("fds", [[2**31], [-2**31 - 1], [1.0], ["3"], [None], [1, 2**40], 5])
def test_rights_cmsg_refuses_what_an_array_refuses(fds):
    with pytest.raises(Exception) as expected:
        array.array("i", fds)
    with pytest.raises(type(expected.value)) as got:
        rights.rights_cmsg(fds)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 16, 253, 600])
def test_parse_unpacks_any_count(count):
    fds = list(range(-count // 2, count - count // 2))
    got = rights.parse(b"", [(*RIGHTS, packed(*fds) + b"\x01")], 0)
    assert got.groups == [fds] and got.truncated_bytes == 1
    got.take()


def test_the_unpacking_structs_are_bounded():
    for count in range(700):
        got = rights.parse(b"", [(*RIGHTS, packed(*range(count)))], 0)
        assert got.take() == list(range(count))
    assert len(rights._INTS) <= 512


def test_recv_fds_without_cmsg_space_in_python_uses_the_fallback(monkeypatch):
    expected = socket.CMSG_SPACE(4 * 3)
    monkeypatch.delattr(socket, "CMSG_SPACE")
    sock = RecordingSocket()
    rights.recv_fds(sock, 3)
    assert sock.calls == [(1024, expected, 0)]


def test_a_round_trip_many_times_leaves_nothing_open(pipes):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        for n in (1, 1, 2, 1, 3, 1):
            rights.send_fds(a, pipes[:n])
            with rights.recv_fds(b, n) as got:
                assert [identity(fd) for fd in got.fds] == [identity(fd) for fd in pipes[:n]]
                received = got.fds
            assert_closed(*received)
