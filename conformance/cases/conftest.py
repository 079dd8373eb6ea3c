"""Fixtures shared by the cases: socket pairs of each type, gated by the capability probes."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

from conformance.outcomes import Unsupported, require
from conformance.platforms import socket_paths

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


@pytest.fixture
def socket_path():
    """A path for a named AF_UNIX socket, short enough for sun_path, in a directory any uid may traverse."""
    directory, path = socket_paths.new_directory("sock")
    try:
        if not socket_paths.fits(path):
            raise Unsupported(f"the temporary directory's path is too long for a socket name: {path}")
        os.chmod(directory, 0o711)  # a sender that dropped privileges must reach the socket
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
