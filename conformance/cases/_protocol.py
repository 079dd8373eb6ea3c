"""What the APUE protocol cases share, whatever carries the messages (UNIX domain sockets, STREAMS pipes)."""

from __future__ import annotations

import os

from conformance import apue

from ._support import same_file


class Collect:
    """A userfunc that keeps every chunk of error text, checking it is called with STDERR_FILENO."""

    def __init__(self) -> None:
        self.chunks: list = []

    def __call__(self, fd: int, data: bytes) -> int:
        assert fd == apue.STDERR_FILENO, f"userfunc called with fd {fd}, not STDERR_FILENO"
        self.chunks.append(bytes(data))
        return len(data)

    @property
    def text(self) -> bytes:
        return b"".join(self.chunks)

    def check_whole(self, sent: bytes) -> None:
        """The text sent arrived whole and in order, in chunks no longer than the seed's read size."""
        assert self.text == sent, f"the text arrived as {len(self.text)} bytes, not the {len(sent)} sent, in order"
        assert all(len(chunk) <= apue.MAXLINE for chunk in self.chunks), "a chunk longer than the read size"
        if len(sent) > apue.MAXLINE:
            assert len(self.chunks) > 1, "text longer than the read size came in one chunk"


def check_same_open_file(sent: int, received: int) -> None:
    """recv_fd returned a descriptor for the open file description sent (the offset is shared); closes `received`."""
    try:
        assert received >= 0, f"recv_fd returned {received}, not a descriptor"
        assert same_file(sent, received), "the received descriptor names another file"
        os.lseek(received, 4, os.SEEK_SET)
        assert os.lseek(sent, 0, os.SEEK_CUR) == 4, "the two descriptors do not share one open file description"
    finally:
        if received >= 0:
            os.close(received)


def sample_text(size: int, seed: int = 0) -> bytes:
    """size bytes without NUL and without a short period, so a lost or reordered chunk shows."""
    return bytes((i * 7 + i // 251 + seed) % 255 + 1 for i in range(size))


# (call, argument, the status byte the seed puts on the wire): -256 and -512 would be status 0, "which would
# screw up protocol", so the seed sends 1; send_err turns a non-negative code into -1.
STATUS_RULES = [
    ("send_fd", -1, 1), ("send_fd", -255, 255), ("send_fd", -256, 1), ("send_fd", -257, 1),
    ("send_fd", -300, 44), ("send_fd", -512, 1),
    ("send_err", -7, 7), ("send_err", -256, 1), ("send_err", 0, 1), ("send_err", 1, 1), ("send_err", 42, 1),
]
STATUS_RULE_IDS = [f"{c}({a})" for c, a, _ in STATUS_RULES]

# Error text sizes around the seed's read size (MAXLINE): text that fills a read exactly, one byte short or over,
# and text long enough that the sender blocks until the receiver reads.
TEXT_SIZES = {"empty": 0, "one_byte": 1, "read_size_minus_one": apue.MAXLINE - 1, "read_size": apue.MAXLINE,
              "read_size_plus_one": apue.MAXLINE + 1, "twenty_reads": 20 * apue.MAXLINE + 3}
