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
import selectors
import socket
import time
from dataclasses import dataclass

from conformance.harness import rights
from conformance.harness.children import run_in_child
from conformance.harness.deadlines import deadline
from conformance.harness.privileges import drop_privileges, fresh_uid
from conformance.platforms import socket_table

from ._support import RELEASE_WAIT, InFlightMarker
from .conftest import require, unix_socketpair

# How long an unreachable graph's release may trail the witness's (see wait_for_collection), the collector being
# triggered all along; a leak is reported after this, not after RELEASE_WAIT. Linux: a collector pass (the work item
# __unix_gc, net/unix/garbage.c) purges the queues it found dead; a file whose last reference goes there is released
# by delayed_fput one jiffy later (fs/file_table.c: fput from a kernel thread). Everything a pass drops joins one
# list, so the graph's pipe end goes in the same delayed_fput run as the witness's (or an earlier one, if an earlier
# pass took the graph), or in the next run if that run began amid the pass's fput()s; a socket released in a run
# drops what its own queue still holds, for the run after. So the graph trails by at most 2 jiffies (20 ms at HZ 100,
# the coarsest usual clock) plus the kernel workers' wake-ups. Seen on 6.18 (HZ 250): 0 ms nearly always, at most
# 6 ms with three to six busy processes per core. 50 ms is that budget with 30 ms to spare.
GRACE = deadline(0.05)
# How often the collector is triggered again while waiting for it. A trigger is only lost where the collector skips
# a request while a pass runs (Linux before 6.10 skips unix_gc() then; later ones queue a work item, which runs again
# if requested while it runs), or where nothing was released after the graph became garbage: this bounds that delay.
RETRIGGER_EVERY = 0.005


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
        if os.geteuid() == 0:
            # A collector that misses the graph leaves its sockets in flight for good, charged to whoever sent them:
            # a uid of no one's (see fresh_uid), not root, whose later passing the kernel would slow and whose
            # in-flight count would change how the next run's graphs are collected.
            run_in_child(_send_edges_as, fresh_uid(), graph, built, riders, flags)
        else:
            _send_edges(graph, built, riders, flags)
    except BaseException:
        built.close()
        raise
    return built


def _send_edges(graph: Graph, built: Sockets, riders, flags: int) -> None:
    for v, u in graph.edges:
        sock = built.in_flight[v].fileno()
        carried = [sock, sock] + ([] if riders[u] is None else [riders[u]])
        sent = rights.send_fds(built.senders[u], carried, b"x", flags)
        assert sent == 1, f"sending vertex {v} to vertex {u} sent {sent} bytes"


def _send_edges_as(uid: int, graph: Graph, built: Sockets, riders, flags: int) -> None:
    """In a child: send the edges as `uid` (the sockets were made, and stay open, in the parent)."""
    drop_privileges(uid)
    _send_edges(graph, built, riders, flags)


def trigger_collector(kind: str) -> None:
    """Linux (seen on 6.18) starts the collector when some unix socket is released while descriptors are in
    flight, not necessarily at the close that made a cycle unreachable: closing an unrelated pair is the
    ordinary trigger, as any later socket activity would be."""
    trigger_a, trigger_b = unix_socketpair(kind)
    trigger_a.close()
    trigger_b.close()


def _make_witness(kind: str) -> InFlightMarker:
    """The smallest garbage there is: a socket whose only reference waits in its own queue, with a pipe end beside
    it. Returns that pipe's marker (its write end dropped); releasing the peer's last descriptor triggers the
    collector."""
    witness = InFlightMarker()
    try:
        a, b = unix_socketpair(kind)
        with a, b:  # b, in flight in its own queue, is closed first: a's release then finds it garbage
            rights.send_fds(a, [b.fileno(), witness.w])
        witness.drop_local()
    except BaseException:
        witness.close()
        raise
    return witness


def _drain(fd: int) -> bool:
    """Read what is there; True at EOF (every write end released)."""
    return os.read(fd, 4096) == b""


def wait_for_collection(marker: InFlightMarker, kind: str) -> bool:
    """Trigger the collector until the marker riding in some garbage is released and a collector pass that began
    after the call has run (True), or until such a pass has run and GRACE has passed without the release (False).
    Fails if no such pass ever runs (see wait_for_release)."""
    return not wait_for_release([marker.r], kind)


def wait_for_release(read_fds, kind: str) -> set:
    """Trigger the collector until every pipe read end in read_fds is at EOF (each marks some garbage) and a
    collector pass that began after the call has run, or until such a pass has run and GRACE has passed: returns the
    read ends still open then. Fails if no such pass ever runs. What each read end holds is drained.

    The proof of a pass is a witness made now, garbage from the start: only a pass that began after the call can
    free it, and such a pass sees whatever was garbage before it: the collectors free all the garbage they find in
    a pass (Linux net/unix/garbage.c unix_gc, FreeBSD sys/kern/uipc_usrreq.c unp_gc), though the release of what
    they drop may trail (see GRACE). The markers are watched from the start: a prompt collector frees the garbage
    and the witness together, and a graph left behind is reported one GRACE after the witness goes.
    """
    with _make_witness(kind) as witness, selectors.DefaultSelector() as watched:
        pending = set(read_fds)
        for fd in pending | {witness.r}:
            watched.register(fd, selectors.EVENT_READ)
        give_up, witness_freed = time.monotonic() + RELEASE_WAIT, None
        while True:
            if witness_freed is not None:
                if not pending:
                    return pending
                give_up = min(give_up, witness_freed + GRACE)
            now = time.monotonic()
            if now > give_up:
                assert witness_freed is not None, "the collector never freed a lone socket holding itself in flight"
                return pending
            ready = watched.select(min(RETRIGGER_EVERY, give_up - now))
            for key, _ in ready:
                if _drain(key.fd):
                    watched.unregister(key.fd)
                    if key.fd == witness.r:
                        witness_freed = time.monotonic()
                    else:
                        pending.discard(key.fd)
            if not ready:
                trigger_collector(kind)


def read_socket_table() -> set | None:
    """The inodes the kernel's socket table lists now; None where the OS has no such table."""
    return socket_table.listed_inodes()


def listed(inodes, table=None) -> set:
    """Which of the inodes the kernel's socket table (read now unless given) lists; none where the OS has none."""
    if table is None:
        table = read_socket_table()
    return set(inodes) & table if table is not None else set()


def unlisted(inodes, table=None) -> set:
    """Which of the inodes the kernel's socket table (read now unless given) no longer lists; none where the OS has
    no such table."""
    if table is None:
        table = read_socket_table()
    return set(inodes) - table if table is not None else set()


# How a failure says what stays in the kernel: tests/test_leftovers.py counts a run's sockets by it.
LEFT_LISTED = "{} sockets of the graphs stay listed"


def assert_reclaimed(marker: InFlightMarker, inodes: list, kind: str, listener: bool = False,
                     collected: bool | None = None, table=None) -> None:
    """The unreachable sockets, and the pipe end they carried, are freed once the collector runs: by the time it has
    freed a witness made after them, or shortly after. Where they are not, the failure says how many sockets the
    socket table still lists for them (a listener's with the connection it never accepted): a collector that misses
    a graph leaves them there until the machine restarts, and whoever counts the sockets of a run must know. That
    count is no observation: which part of a graph a collector misses varies from run to run.
    `collected` is wait_for_collection's answer when the caller already waited (then `table`, if given, is the
    socket table read since)."""
    if collected is None:
        collected = wait_for_collection(marker, kind)
    if not collected:
        # A loaded machine may hold the release back longer than GRACE (one was seen leaving a triangle sent with
        # MSG_OOB behind once, under a whole self-test run): a second pass proven by a second witness, and GRACE
        # again, tell a collector that was slow from one that left the graph for good.
        collected = wait_for_collection(marker, kind)
    if not collected:
        remaining = len(listed(inodes, table)) * (2 if listener else 1)
        raise AssertionError(f"the collector ran but left the unreachable sockets: the pipe end they carried stayed "
                             f"open, and {LEFT_LISTED.format(remaining)}")
    give_up = time.monotonic() + RELEASE_WAIT
    while True:
        still = listed(inodes, table)
        if not still or time.monotonic() > give_up:
            break
        table = None
        time.sleep(0.001)  # the sockets' own release may trail the pipe's (deferred fput): poll the table
    assert not still, f"sockets with inodes {sorted(still)} are still listed after the collection"
