"""Self-tests of conformance.duplication, conformance.channels and conformance.mqueue: the token format on crafted
bytes, the start-time parser on a crafted stat line, every channel's round trip and deadline, and the absence of
each mechanism giving Unavailable rather than a crash."""

from __future__ import annotations

import os
import struct
import time

import pytest

from conformance import channels, duplication, mqueue
from conformance.duplication import TOKEN_FORMAT, TOKEN_SIZE, Token, TokenError
from conformance.harness.fds import open_fds
from conformance.platforms import constants
from conformance.unavailable import Unavailable


def test_a_token_round_trips():
    token = Token(pid=1234, fd=7, start=987654321)
    assert len(token.pack()) == TOKEN_SIZE == 24
    assert duplication.parse_token(token.pack()) == token


BAD_TOKENS = {
    "short": Token(1, 2, 3).pack()[:-1],
    "long": Token(1, 2, 3).pack() + b"\0",
    "empty": b"",
    "magic": struct.pack(TOKEN_FORMAT, b"XDTK", 1, 1, 2, 3),
    "version": struct.pack(TOKEN_FORMAT, b"FDTK", 2, 1, 2, 3),
    "pid_zero": struct.pack(TOKEN_FORMAT, b"FDTK", 1, 0, 2, 3),
    "negative_fd": struct.pack(TOKEN_FORMAT, b"FDTK", 1, 1, -1, 3),
}


@pytest.mark.parametrize("name", list(BAD_TOKENS))
def test_a_malformed_token_is_refused_before_any_system_call(name, monkeypatch):
    def never(*args):
        raise AssertionError("a malformed token reached the kernel")

    monkeypatch.setattr(duplication, "pidfd_open", never)
    with pytest.raises(TokenError):
        duplication.redeem(BAD_TOKENS[name])


def test_start_time_counts_fields_after_the_last_parenthesis(monkeypatch, tmp_path):
    # A command name may hold blanks and ") (": field 22 must still be found (proc_pid_stat(5)).
    fields = ["S"] + [str(n) for n in range(4, 22)] + ["424242"] + ["0"] * 30
    (tmp_path / "77").write_bytes(b"77 (a) b (c d)) " + " ".join(fields).encode())
    monkeypatch.setattr(constants(), "PROC_STAT", str(tmp_path / "{pid}"))
    assert duplication.start_time(77) == 424242
    assert duplication.start_time(78) is None  # no such process


def test_start_time_of_this_process_is_stable():
    assert duplication.start_time(os.getpid()) == duplication.start_time(os.getpid()) > 0


@pytest.mark.parametrize("missing", ["syscall_number", "pidfd_open"])
def test_redeem_without_the_mechanism_is_unavailable(monkeypatch, missing):
    if missing == "syscall_number":
        monkeypatch.setattr(constants(), "SYSCALL_PIDFD_GETFD", {})
    else:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    with pytest.raises(Unavailable):
        duplication.redeem(Token(os.getpid(), 0, 0).pack())


def test_prctl_options_missing_are_unavailable_not_a_crash(monkeypatch):
    for name in ("PR_SET_DUMPABLE", "PR_SET_PTRACER", "PR_SET_PTRACER_ANY", "YAMA_PTRACE_SCOPE"):
        monkeypatch.setattr(constants(), name, None)
    with pytest.raises(Unavailable):
        duplication.set_dumpable(True)
    assert duplication.allow_any_ptracer() is False
    assert duplication.yama_ptrace_scope() is None


@pytest.mark.parametrize(("content", "scope"), [("1\n", 1), ("3", 3), ("", None), ("x", None)])
def test_yama_scope_is_read_from_its_file(monkeypatch, tmp_path, content, scope):
    (tmp_path / "ptrace_scope").write_text(content)
    monkeypatch.setattr(constants(), "YAMA_PTRACE_SCOPE", str(tmp_path / "ptrace_scope"))
    assert duplication.yama_ptrace_scope() == scope


@pytest.mark.parametrize("kind", channels.KINDS)
def test_each_channel_carries_a_token_and_cleans_up(kind, tmp_path):
    before = set(open_fds())
    try:
        channel = channels.make(kind, tmp_path, TOKEN_SIZE)
    except Unavailable as e:
        pytest.skip(e.reason)
    with channel:
        token = Token(1, 2, 3).pack()
        channel.send(token)
        assert channel.receive(TOKEN_SIZE, 5.0) == token
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            channel.receive(TOKEN_SIZE, 0.05)
        assert time.monotonic() - start < 2.0
    channel.close()  # a second close is harmless
    assert set(open_fds()) == before, "the channel left a descriptor open"
    assert not list(tmp_path.iterdir()), "the channel left a file behind"


def test_unknown_channel_kind_is_named():
    with pytest.raises(ValueError, match="unknown channel kind 'carrier_pigeon'"):
        channels.make("carrier_pigeon", ".", TOKEN_SIZE)


def test_a_message_queue_without_its_library_is_unavailable(monkeypatch):
    monkeypatch.setattr(constants(), "MQ_LIBRARIES", ("no-such-library-for-mqueue",))
    with pytest.raises(Unavailable, match="mq_open is in none of the libraries"):
        mqueue.Queue(8)
