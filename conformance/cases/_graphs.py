"""Graphs of AF_UNIX sockets in flight, for the garbage-collection cases: shapes as data, one builder, and the
checks that the collector reclaimed what it should (not cases themselves).

A graph has `nodes` vertices. Vertex i is a socket that goes in flight (one end of a socket pair, or a listening
socket) and a sender whose messages land in that socket's queue (its peer; for a listener, a client connected to
it, whose messages wait in the unaccepted connection in the listener's accept queue). An edge (v, u) sends vertex
v's socket, twice in one SCM_RIGHTS message, into vertex u's queue: u then holds v. Edges are sent in the order
listed: the order in which the kernel meets them shapes its walk over strongly connected components (Linux
net/unix/garbage.c), which is what the anchor's shapes exercise.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from conformance.harness import rights
from conformance.harness.deadlines import deadline
from conformance.platforms import socket_table

from ._support import RELEASE_WAIT, InFlightMarker
from .conftest import require, unix_socketpair

# How long garbage may outlive the witness (see collector_pass), the collector being triggered all along. The files
# a pass drops are released one after another, some deferred a clock tick or more (Linux __fput from a kernel
# thread goes through delayed work, and a released socket's own queue is dropped in turn): seen trailing by up to
# 20 ms on Linux 6.18 (HZ 250). A leak is reported after this, not after RELEASE_WAIT.
GRACE = deadline(0.25)
# How often the collector is triggered again while waiting for it.
RETRIGGER_EVERY = 0.01


@dataclass(frozen=True)
class Graph:
    nodes: int
    edges: tuple  # (in_flight, receiver) pairs, in the order they are sent
    keep: int  # a vertex on a cycle of the first copy: held open, it keeps that copy reachable and not the second

    def queued_at(self, node: int) -> list:
        """The vertices whose sockets wait in node's queue, in the order they were sent there."""
        return [v for v, u in self.edges if u == node]

    def reachable_from(self, node: int) -> set:
        """What a process holding node's socket can still get at: node, what its queue holds, and so on."""
        seen, todo = {node}, [node]
        while todo:
            for v in self.queued_at(todo.pop()):
                if v not in seen:
                    seen.add(v)
                    todo.append(v)
        return seen


# Linux tools/testing/selftests/net/af_unix/scm_rights.c (0b9828c), each TEST_F's send_fd(inflight, receiver) calls
# in its order. Every shape is two disjoint copies of one pattern.
GRAPHS = {
    "self_ref": Graph(2, ((0, 0), (1, 1)), keep=0),
    "triangle": Graph(6, ((0, 1), (1, 2), (2, 0),
                          (3, 4), (4, 5), (5, 3)), keep=1),
    "cross_edge": Graph(8, ((0, 1), (1, 2), (2, 0), (1, 3), (3, 2),
                            (4, 5), (5, 6), (6, 4), (5, 7), (7, 6)), keep=1),
    "backtrack_from_scc": Graph(10, ((0, 1), (0, 4), (1, 2), (2, 3), (3, 1),
                                     (5, 6), (5, 9), (6, 7), (7, 8), (8, 6)), keep=1),
    "mixed_lowpoint": Graph(6, ((0, 1), (1, 2), (2, 1), (1, 0),
                                (3, 4), (4, 5), (5, 4), (4, 3)), keep=1),
}


@dataclass(frozen=True)
class Variant:
    kind: str  # stream, dgram or seqpacket
    listener: bool = False  # the vertices are listening sockets; rights go to their unaccepted connections
    oob: bool = False  # every message is sent with MSG_OOB

    def __str__(self) -> str:
        return self.kind + ("_listener" if self.listener else "") + ("_oob" if self.oob else "")

    @property
    def socktype(self) -> int:
        return getattr(socket, f"SOCK_{self.kind.upper()}")


class Sockets:
    """The local descriptors of a built graph: per vertex, the socket that goes in flight and its sender."""

    def __init__(self, variant: Variant) -> None:
        self.variant = variant
        self.in_flight: list = []
        self.senders: list = []

    def inodes(self, nodes=None) -> list:
        """The inodes of the listed vertices' in-flight sockets, or of every socket made (senders too)."""
        socks = self.in_flight + self.senders if nodes is None else [self.in_flight[i] for i in sorted(nodes)]
        return [os.fstat(s.fileno()).st_ino for s in socks]

    def close(self, keep: int | None = None) -> None:
        """Close every local descriptor but vertex keep's in-flight socket."""
        for i, sock in enumerate(self.in_flight):
            if i != keep:
                sock.close()
        for sock in self.senders:
            sock.close()

    def __enter__(self) -> Sockets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _add_vertex(built: Sockets, directory: str) -> None:
    variant = built.variant
    if not variant.listener:
        in_flight, sender = unix_socketpair(variant.kind)
        built.in_flight.append(in_flight)
        built.senders.append(sender)
        return
    require(f"sock_{variant.kind}")
    listener = socket.socket(socket.AF_UNIX, variant.socktype)
    built.in_flight.append(listener)
    path = os.path.join(directory, f"l{len(built.in_flight)}")
    listener.bind(path)
    listener.listen(1)
    client = socket.socket(socket.AF_UNIX, variant.socktype)
    built.senders.append(client)
    client.connect(path)  # never accepted: the connection waits in the listener's queue and receives the rights


def build(graph: Graph, variant: Variant, directory: str, riders) -> Sockets:
    """The graph's sockets, every edge sent in order; riders[u], unless None, is a descriptor that rides along with
    every message queued at vertex u (an InFlightMarker's write end). The caller closes the result on every path."""
    require("scm_rights")
    built = Sockets(variant)
    flags = socket.MSG_OOB if variant.oob else 0
    try:
        for _ in range(graph.nodes):
            _add_vertex(built, directory)
        for v, u in graph.edges:
            sock = built.in_flight[v].fileno()
            carried = [sock, sock] + ([] if riders[u] is None else [riders[u]])
            sent = rights.send_fds(built.senders[u], carried, b"x", flags)
            assert sent == 1, f"sending vertex {v} to vertex {u} sent {sent} bytes"
    except BaseException:
        built.close()
        raise
    return built


def trigger_collector(kind: str) -> None:
    """Linux (seen on 6.18) starts the collector when some unix socket is released while descriptors are in
    flight, not necessarily at the close that made a cycle unreachable: closing an unrelated pair is the
    ordinary trigger, as any later socket activity would be."""
    trigger_a, trigger_b = unix_socketpair(kind)
    trigger_a.close()
    trigger_b.close()


def released_while_triggering(marker: InFlightMarker, kind: str, timeout: float) -> bool:
    """Trigger the collector every RETRIGGER_EVERY until the marker's write end is released or timeout passes. The
    trigger is repeated because one that lands while another process's pass runs may be lost (Linux before 6.10
    skips unix_gc() while one is in progress)."""
    give_up = time.monotonic() + timeout
    while True:
        trigger_collector(kind)
        if marker.released(RETRIGGER_EVERY):
            return True
        if time.monotonic() > give_up:
            return False


def collector_pass(kind: str) -> None:
    """Return once the collector has run a pass that began after the call, or fail if it never does.

    The witness is the smallest garbage there is: a socket whose only reference waits in its own queue, with a
    pipe end beside it. Only a pass that began after the witness became garbage can free it, and such a pass
    sees whatever was garbage before it: the collectors free all the garbage they find in a pass (Linux
    net/unix/garbage.c unix_gc, FreeBSD sys/kern/uipc_usrreq.c unp_gc), though the release of what they drop may
    trail (see GRACE).
    """
    with InFlightMarker() as witness:
        a, b = unix_socketpair(kind)
        with a, b:
            rights.send_fds(a, [b.fileno(), witness.w])
        witness.drop_local()
        assert released_while_triggering(witness, kind, RELEASE_WAIT), \
            "the collector never freed a lone socket holding itself in flight"


def listed(inodes) -> set:
    """Which of the inodes the kernel's socket table still lists (none where the OS has no such table)."""
    table = socket_table.listed_inodes()
    return set(inodes) & table if table is not None else set()


def unlisted(inodes) -> set:
    """Which of the inodes the kernel's socket table no longer lists (none where the OS has no such table)."""
    table = socket_table.listed_inodes()
    return set(inodes) - table if table is not None else set()


def assert_reclaimed(marker: InFlightMarker, inodes: list, kind: str, observe=None,
                     left: str = "left_in_the_kernel", listener: bool = False) -> None:
    """The unreachable sockets, and the pipe end they carried, are freed once the collector runs: by the time it has
    freed a witness made after them, or shortly after. Where they are not, `observe` (if given) records as `left`
    (a name ending in left_in_the_kernel) how many sockets the socket table still lists for them: a collector that
    misses a graph leaves it there until the machine restarts, and whoever counts the sockets of a run must know."""
    collector_pass(kind)
    if not released_while_triggering(marker, kind, GRACE):
        remaining = listed(inodes)
        if observe is not None:  # a listener left there keeps the connection it never accepted, listed beside it
            observe(left, len(remaining) * (2 if listener else 1))
        raise AssertionError(f"the collector ran but left the unreachable sockets (the pipe end they carried stayed "
                             f"open; {len(remaining)} of the graph's {len(inodes)} sockets are still listed)")
    give_up = time.monotonic() + RELEASE_WAIT
    while True:
        left = listed(inodes)
        if not left or time.monotonic() > give_up:
            break
        time.sleep(0.001)  # the sockets' own release may trail the pipe's (deferred fput): poll the table
    assert not left, f"sockets with inodes {sorted(left)} are still listed after the collection"
