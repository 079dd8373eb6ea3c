"""Graphs of sockets in flight built in batches on the real kernel, each checked against the oracle of graphs.py.

A batch builds many graphs, closes what their users close, and waits for one collector pass proven by a witness
(cases/_graphs.wait_for_release), so that thousands of graphs cost one wait per batch, not one each. Each graph
carries two pipe ends as markers: `dead` rides in every message queued at a vertex that must be freed, `live` in
every message queued at a vertex that must stay. After the pass, a dead marker still open names a graph the
collector left behind; then every kept vertex is received from, outwards, and each message must bring back what
was sent (the socket, its copies and the live marker), after which nothing may remain in flight.

Every descriptor made here is closed on every path; received descriptors are owned by the `_Receiving` that took
them. Run as root, the edges are sent by a child that became a fresh uid: sockets a collector leaves behind are
charged to a uid no one has (see harness/privileges.fresh_uid), not to root.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import time
from dataclasses import dataclass, field

from conformance.cases._graphs import GRACE, Variant, listed, read_socket_table, wait_for_release
from conformance.cases._support import RELEASE_WAIT
from conformance.harness import fds as fdlist
from conformance.harness import rights
from conformance.harness.children import run_in_child
from conformance.harness.deadlines import DEFAULT_DEADLINE, deadline
from conformance.harness.privileges import drop_privileges, fresh_uid

from .graphs import Graph

PAYLOAD = b"x"
DESCRIPTORS_PER_GRAPH = 16  # at most: 3 sockets and their peers, two pipes; and as many again while receiving
MAX_BATCH = 256
# A bound on one send, only for the sending child's deadline. A healthy kernel takes microseconds; one whose
# collector has leaked more than its trigger (16,000 on Linux) runs a pass on every send, 2.5 ms here idle.
SEND_DEADLINE = deadline(0.02)


@dataclass(frozen=True)
class Finding:
    """A graph the platform got wrong: what went wrong, in one line, and the inodes of the sockets that should have
    gone (for counting what stays; see left_listed)."""

    graph: Graph
    problem: str
    inodes: list = field(default_factory=list)  # of the sockets that had to be freed
    per_socket: int = 1  # sockets the table lists per vertex (2 for a listener and its unaccepted connection)


@dataclass
class _Built:
    graph: Graph
    in_flight: list = field(default_factory=list)  # per vertex: the socket that goes in flight
    senders: list = field(default_factory=list)  # per vertex: the socket whose messages land in its queue
    dead: tuple | None = None  # (read, write) of the marker riding into garbage, if the graph has garbage
    live: tuple | None = None  # (read, write) of the marker riding into what stays, if anything is queued there
    inodes: list = field(default_factory=list)  # per vertex, of its in-flight socket
    identities: list = field(default_factory=list)  # per vertex, (dev, ino, type) of its in-flight socket
    reachable: frozenset = frozenset()  # the graph's, computed once

    def rider(self, node: int) -> int:
        """The marker write end that rides in messages queued at node."""
        return (self.live if node in self.reachable else self.dead)[1]

    def close_user_side(self) -> None:
        """What the user closes: every descriptor of the graph but the kept vertices' sockets, and the markers'
        write ends (their only copies left are in flight)."""
        for i, sock in enumerate(self.in_flight):
            if i not in self.graph.keep:
                sock.close()
        for sock in self.senders:
            sock.close()
        for marker in (self.dead, self.live):
            if marker is not None and marker[1] >= 0:
                os.close(marker[1])
        self.dead = self.dead and (self.dead[0], -1)
        self.live = self.live and (self.live[0], -1)

    def close(self) -> None:
        for sock in self.in_flight + self.senders:
            sock.close()
        for marker in (self.dead, self.live):
            for fd in marker or ():
                if fd >= 0:
                    os.close(fd)
        self.dead = self.live = None


def batch_size() -> int:
    """How many graphs one batch builds: MAX_BATCH, or fewer where the descriptor limit is low."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, (soft - 64) // (2 * DESCRIPTORS_PER_GRAPH)))


def check(graphs: list, variant: Variant, directory: str) -> tuple:
    """Build the graphs (at most batch_size()), let the collector run, and return a Finding for each one the
    platform got wrong, and (graph, inodes) for each whose garbage seemed freed, for still_listed() to confirm from
    the socket table. `directory` holds the listeners' names, if the variant has listeners."""
    built: list = []
    try:
        for number, graph in enumerate(graphs):
            built.append(_build_vertices(graph, variant, os.path.join(directory, str(number))))
        flags = socket.MSG_OOB if variant.oob else 0
        if os.geteuid() == 0:
            sends = sum(len(one.graph.edges) for one in built)
            run_in_child(_send_as, fresh_uid(), built, flags, timeout=DEFAULT_DEADLINE + sends * SEND_DEADLINE)
        else:
            _send(built, flags)
        for one in built:
            one.close_user_side()
        return _judge(built, variant)
    finally:
        for one in built:
            one.close()


def _build_vertices(graph: Graph, variant: Variant, names: str) -> _Built:
    one = _Built(graph, reachable=graph.reachable())
    try:
        if graph.garbage():
            one.dead = os.pipe()
        if any(u in one.reachable for _, u in graph.edges):
            one.live = os.pipe()
        if variant.listener:
            os.mkdir(names)
        for node in range(graph.nodes):
            in_flight, sender = _vertex(variant, os.path.join(names, str(node)))
            one.in_flight.append(in_flight)
            one.senders.append(sender)
            one.identities.append(fdlist.identity(in_flight.fileno()))
            one.inodes.append(one.identities[-1][1])
    except BaseException:
        one.close()
        raise
    return one


def _vertex(variant: Variant, path: str) -> tuple:
    """A socket that goes in flight and the socket that sends into its queue."""
    if not variant.listener:
        return socket.socketpair(socket.AF_UNIX, variant.socktype)
    listener = socket.socket(socket.AF_UNIX, variant.socktype)
    client = None
    try:
        listener.bind(path)
        listener.listen(1)
        client = socket.socket(socket.AF_UNIX, variant.socktype)
        client.connect(path)  # never accepted: the connection in the listener's queue receives the rights
    except BaseException:
        listener.close()
        if client is not None:
            client.close()
        raise
    return listener, client


def _send(built: list, flags: int) -> None:
    for one in built:
        graph = one.graph
        for v, u in graph.edges:
            carried = [one.in_flight[v].fileno()] * graph.copies + [one.rider(u)]
            sent = rights.send_fds(one.senders[u], carried, PAYLOAD, flags)
            assert sent == len(PAYLOAD), f"{graph.text()}: sending {v} to {u} sent {sent} bytes"


def _send_as(uid: int, built: list, flags: int) -> None:
    """In a child: send every edge as `uid` (the sockets were made, and stay open, in the parent)."""
    drop_privileges(uid)
    _send(built, flags)


def _judge(built: list, variant: Variant) -> tuple:
    deads = {one.dead[0]: one for one in built if one.dead}
    left = wait_for_release(list(deads), variant.kind)
    if left:
        # A loaded machine may hold a release back longer than GRACE: a second pass, proven by a second witness,
        # tells a slow collector from one that left the graph for good (as cases/_graphs.assert_reclaimed does).
        left = wait_for_release(list(left), variant.kind)
    findings, kept, freed = [], [], []
    per_socket = 2 if variant.listener else 1  # a listener's unaccepted connection stays with it
    for one in built:
        garbage = [one.inodes[i] for i in sorted(one.graph.garbage())]
        if one.dead and one.dead[0] in left:
            findings.append(Finding(one.graph, "the collector left the unreachable sockets: the pipe end they "
                                               "carried stayed open", garbage, per_socket))
            continue
        if garbage:
            freed.append((one.graph, garbage))
        if one.graph.keep:
            kept.append(one)
    return findings + _check_kept(kept, variant), freed


def still_listed(freed: list) -> list:
    """A Finding for each (graph, inodes of its garbage) whose sockets the kernel's table still lists, one GRACE
    after a first reading (their own release may trail their queue's); [] where the OS has no such table. One
    reading covers many batches: the table is long where many sockets exist."""
    table = read_socket_table()
    if table is None:
        return []
    suspects = [(graph, inodes) for graph, inodes in freed if listed(inodes, table)]
    if suspects:
        time.sleep(GRACE)
        table = read_socket_table()
    return [Finding(graph, f"{len(listed(inodes, table))} unreachable sockets stay listed after the collection",
                    inodes) for graph, inodes in suspects if listed(inodes, table)]


def left_listed(findings: list) -> int:
    """How many sockets of these findings the kernel's table lists now (a listener counted with the connection it
    never accepted); 0 where the OS has no such table."""
    table = read_socket_table()
    if table is None:
        return 0
    return sum(len(listed(f.inodes, table)) * f.per_socket for f in findings)


def _check_kept(kept: list, variant: Variant) -> list:
    """Receive everything the kept vertices reach, outwards: a Finding for each graph where it did not all come back
    as sent, or where something stayed in flight once it was received and closed."""
    findings, drained = [], []
    lives = {one.live[0]: one for one in kept if one.live}
    freed_early = set(lives) - _still_open(lives, 0)
    for one in kept:
        if one.live and one.live[0] in freed_early:
            findings.append(Finding(one.graph, "the collector freed sockets that a kept descriptor still reaches"))
            continue
        with _Receiving(one, variant) as receiving:
            problem = receiving.receive_all()
        if problem:
            findings.append(Finding(one.graph, problem))
        elif one.live:
            drained.append(one.live[0])
    for fd in _still_open(drained, RELEASE_WAIT):
        findings.append(Finding(lives[fd].graph, "once everything reachable was received and closed, a descriptor "
                                                 "stayed in flight"))
    return findings


def _still_open(read_fds, timeout: float) -> set:
    """Which of these pipe read ends have not reached EOF within timeout (what they hold is drained)."""
    pending = set(read_fds)
    if not pending:
        return pending
    give_up = time.monotonic() + timeout
    with selectors.DefaultSelector() as watched:
        for fd in pending:
            watched.register(fd, selectors.EVENT_READ)
        while pending:
            ready = watched.select(max(give_up - time.monotonic(), 0))
            if not ready:
                break
            for key, _ in ready:
                if os.read(key.fd, 4096) == b"":
                    watched.unregister(key.fd)
                    pending.discard(key.fd)
    return pending


class _Receiving:
    """The descriptors received from a kept graph; closes them all on exit."""

    def __init__(self, one: _Built, variant: Variant) -> None:
        self.one, self.variant = one, variant
        self.owned: list = []  # sockets received or accepted here

    def __enter__(self) -> _Receiving:
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self.owned:
            sock.close()

    def receive_all(self) -> str | None:
        graph = self.one.graph
        held = {k: self.one.in_flight[k] for k in graph.keep}
        todo, drained = list(graph.keep), set()
        while todo:
            u = todo.pop(0)
            if u in drained:
                continue
            drained.add(u)
            queue = self._queue_of(held[u])
            if queue is None:
                return f"vertex {u}'s listener lost its unaccepted connection"
            for v in graph.queued_at(u):
                got = self._receive(queue)
                if isinstance(got, str):
                    return f"the message that carried {v} into {u}: {got}"
                if v in held:
                    got.close()
                    continue
                if got.fileno() < 0 or fdlist.identity(got.fileno()) != self.one.identities[v]:
                    return f"the message that carried {v} into {u} brought another socket"
                held[v] = got
                todo.append(v)
            if not _nothing_queued(queue):
                return f"vertex {u}'s queue holds more than was sent to it"
        return None

    def _queue_of(self, sock: socket.socket) -> socket.socket | None:
        """The socket whose receive queue holds what was sent to a vertex: the vertex itself, or the connection its
        listener accepts."""
        if self.variant.listener:
            sock.setblocking(False)
            try:
                sock, _ = sock.accept()
            except BlockingIOError:
                return None
            self.owned.append(sock)
        sock.setblocking(False)  # everything was queued before: a receive that would wait means it was lost
        if self.variant.oob:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)  # the out-of-band byte and its rights in line
        return sock

    def _receive(self, queue: socket.socket):
        """One message: its first descriptor as a socket this object owns, or what was wrong with it."""
        copies = self.one.graph.copies
        try:
            got = rights.recv_fds(queue, copies + 1, bufsize=len(PAYLOAD))
        except BlockingIOError:
            return "lost"
        with got:
            if got.data == b"" and not got.fds:
                return "lost"  # the queue ended: its peer is closed and nothing is left in it
            if got.data != PAYLOAD or len(got.fds) != copies + 1:
                return f"arrived as {got.data!r} with {len(got.fds)} descriptors, not {copies + 1}"
            first = got.fds[0]
            if any(fdlist.identity(fd) != fdlist.identity(first) for fd in got.fds[1:copies]):
                return "its copies are not one socket"
            if os.write(got.fds[-1], b"k") != 1 or os.read(self.one.live[0], 1) != b"k":
                return "its pipe end came back unusable"
            fds = got.take()
        for fd in fds[1:]:
            os.close(fd)
        sock = socket.socket(fileno=fds[0])
        self.owned.append(sock)
        return sock


def _nothing_queued(sock: socket.socket) -> bool:
    """No message waits on sock (an end of stream counts as none). Peeks without a control buffer."""
    try:
        return sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return True
    except OSError:
        return True  # a listener's accepted connection whose client is gone, a dgram peer closed: nothing queued
