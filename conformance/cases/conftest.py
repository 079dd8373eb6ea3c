"""Fixtures shared by the cases: socket pairs of each type, gated by the capability probes."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

import pytest

from conformance.outcomes import Unsupported, require

SOCKET_TYPES = ("stream", "dgram", "seqpacket")


def unix_socketpair(kind: str) -> tuple[socket.socket, socket.socket]:
    require(f"sock_{kind}")
    return socket.socketpair(socket.AF_UNIX, getattr(socket, f"SOCK_{kind.upper()}"))


@pytest.fixture(params=SOCKET_TYPES)
def socktype(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def pair(socktype: str):
    """A connected AF_UNIX pair of the parametrised type that passes rights; closed afterwards."""
    require("scm_rights")
    a, b = unix_socketpair(socktype)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def stream_pair():
    """A connected AF_UNIX stream pair that passes rights (the seed's s-pipe); closed afterwards."""
    require("scm_rights")
    a, b = unix_socketpair("stream")
    yield a, b
    a.close()
    b.close()


# sun_path holds 104 bytes on the BSDs and macOS, 108 on Linux; keep well inside both.
SUN_PATH_ROOM = 100


# Where a socket goes when the run's temporary directory is too deep for sun_path (macOS's per-user $TMPDIR,
# /private/var/folders/xx/<28 characters>/T/, leaves little room): /tmp exists on every system the suite supports.
SHORT_TMP = "/tmp"


@pytest.fixture
def socket_path():
    """A path for a named AF_UNIX socket, short enough for sun_path, in a directory any uid may traverse."""
    directory = tempfile.mkdtemp(prefix="s")
    path = os.path.join(directory, "sock")
    if len(os.fsencode(path)) > SUN_PATH_ROOM and os.path.isdir(SHORT_TMP):
        os.rmdir(directory)
        directory = tempfile.mkdtemp(prefix="conformance-s", dir=SHORT_TMP)
        path = os.path.join(directory, "sock")
    try:
        if len(os.fsencode(path)) > SUN_PATH_ROOM:
            raise Unsupported(f"the temporary directory's path is too long for a socket name: {path}")
        os.chmod(directory, 0o711)  # a sender that dropped privileges must reach the socket
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
