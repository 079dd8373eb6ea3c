"""Garbage collection of AF_UNIX sockets in flight: graphs of sockets that hold one another in their queues.

A socket sent with SCM_RIGHTS and not yet received is in flight; sockets that hold one another in their queues, and
that no process can reach any more, are freed by the kernel's collector and nothing else. The collector must free
such a graph whole, with every descriptor riding in it, and must leave alone a graph that an open descriptor can
still reach. The shapes are data (conformance/cases/_graphs.py): the anchor's graphs, each built in the anchor's
edge order, over socket pairs of each type, over listening sockets whose unaccepted connections receive the rights,
and with the rights sent as out-of-band data.

Anchors: Linux tools/testing/selftests/net/af_unix/scm_rights.c (the graph shapes and their variants), XNU
tests/uipc_uaf.c (the collector racing shutdown). Every received descriptor is closed on every path.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import threading
import time

import pytest

from conformance.harness import fds as fdlist
from conformance.harness import rights
from conformance.harness.children import Child, ChildCrashed
from conformance.outcomes import Unsupported

from ._graphs import GRAPHS, Graph, Variant, assert_reclaimed, build, read_socket_table, unlisted, wait_for_collection
from ._support import InFlightMarker, errno_name, still_open_after
from .conftest import require, unix_socketpair

KSELFTEST = "Linux tools/testing/selftests/net/af_unix/scm_rights.c"
COLLECTOR = "Linux net/unix/garbage.c (unix_gc: in-flight sockets no process can reach are freed)"
UIPC_UAF = "XNU tests/uipc_uaf.c: uipc_uaf (the collector racing shutdown(SHUT_RD) of self-referencing sockets)"

# The anchor's fixture variants (its *_disabled ones are in test_rights.py); seqpacket and seqpacket_listener are
# this suite's: the collector does not care about the socket type, so neither may the outcome.
ANCHOR_VARIANTS = {"dgram", "stream", "stream_oob", "stream_listener", "stream_listener_oob"}
VARIANTS = [Variant("dgram"), Variant("stream"), Variant("seqpacket"), Variant("stream", oob=True),
            Variant("stream", listener=True), Variant("seqpacket", listener=True),
            Variant("stream", listener=True, oob=True)]

# How long the reachable graph's pipe end must stay open after the collector has run a pass over it. The pass is
# over (its witness was freed), so this only covers a release that trails it (see _graphs.GRACE: the same deferred
# release as the witness's, or a jiffy later); receiving everything back afterwards is the real proof. Counted from
# the proof of the pass, so the socket table's reading overlaps it.
KEPT_WINDOW = 0.005
BUILDS = 3  # builds of each unreachable graph (see test_an_unreachable_graph_of_sockets_in_flight_is_reclaimed)


def _variant(variant: Variant):
    refs = [f"{KSELFTEST}: FIXTURE_VARIANT {variant}"] if str(variant) in ANCHOR_VARIANTS else []
    return pytest.param(variant, id=str(variant), marks=pytest.mark.refs(*refs) if refs else ())


def _shape(name: str):
    return pytest.param(name, id=name, marks=pytest.mark.refs(f"{KSELFTEST}: {name}"))


SHAPES = [_shape(name) for name in GRAPHS]


@functools.cache
def _why_no_oob(kind: str) -> str | None:
    """None where this socket type takes MSG_OOB, else why not (tried once per type on a fresh pair)."""
    flag = getattr(socket, "MSG_OOB", None)
    if flag is None:
        return "socket.MSG_OOB is not defined"
    a, b = unix_socketpair(kind)
    with a, b:
        try:
            a.send(b"!", flag)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return f"send(MSG_OOB) on an AF_UNIX {kind} socket fails with {errno_name(e)}"
            raise
    return None


def _require(variant: Variant) -> None:
    require("scm_rights")
    require(f"sock_{variant.kind}")
    reason = _why_no_oob(variant.kind) if variant.oob else None
    if reason:
        raise Unsupported(reason)


# ---- an unreachable graph is reclaimed ---------------------------------------------------------------------------

@pytest.mark.race("in-flight garbage collection")
@pytest.mark.parametrize("variant", [_variant(v) for v in VARIANTS])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.refs(COLLECTOR)
def test_an_unreachable_graph_of_sockets_in_flight_is_reclaimed(shape, variant, socket_path):
    _require(variant)
    graph = GRAPHS[shape]
    directory = os.path.dirname(socket_path)
    # What the collector makes of a graph depends on the order it visits the vertices in, which a pass during the
    # build changes (Linux runs one at every send once enough is in flight): a collector that misses the graph in
    # any of BUILDS builds fails.
    for attempt in range(BUILDS):
        names = os.path.join(directory, str(attempt))  # each build binds its listeners' names afresh
        os.mkdir(names)
        # The marker rides in every message: its EOF proves that every message was freed.
        with InFlightMarker() as marker, build(graph, variant, names, [marker.w] * graph.nodes) as built:
            inodes = built.inodes()
            marker.drop_local()
            built.close()
            assert_reclaimed(marker, inodes, variant.kind, listener=variant.listener)


# ---- a reachable graph is not -------------------------------------------------------------------------------------

def _queue_of(sock: socket.socket, variant: Variant, owned: list) -> socket.socket:
    """The socket whose receive queue holds what was sent to a vertex: the vertex itself, or the connection its
    listener accepts."""
    if variant.listener:
        sock.setblocking(False)
        try:
            sock, _ = sock.accept()
        except BlockingIOError:
            raise AssertionError("a listener of the reachable graph lost its unaccepted connection") from None
        owned.append(sock)
    sock.setblocking(False)  # everything was queued before: a receive that would wait means it was lost
    if variant.oob:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)  # the out-of-band byte, and its rights, in line
    return sock


def _receive_edge(queue: socket.socket, v: int, identities: list, marker: InFlightMarker) -> int:
    """Receive the message that carried vertex v: two copies of v's socket and a working copy of the marker's write
    end. Returns one copy of v, which the caller owns; the rest is closed."""
    try:
        got = rights.recv_fds(queue, 3, bufsize=1)
    except BlockingIOError:
        raise AssertionError(f"the message that carried vertex {v} was lost") from None
    with got:
        assert got.data == b"x", f"the message that carried vertex {v} arrived as {got.data!r}"
        assert len(got.fds) == 3, f"the message that carried vertex {v} brought {len(got.fds)} descriptors, not 3"
        first, second, rider = got.fds
        assert fdlist.identity(first) == fdlist.identity(second) == identities[v], f"vertex {v} came back as another"
        assert os.write(rider, b"k") == 1 and os.read(marker.r, 1) == b"k", "the pipe end came back unusable"
        fds = got.take()
    os.close(fds[1])
    os.close(fds[2])
    return fds[0]


def _receive_all(graph: Graph, variant: Variant, kept: socket.socket, identities: list,
                 marker: InFlightMarker) -> set:
    """From the kept vertex outwards, receive every message queued in the part of the graph it reaches, using
    each received socket to receive what it holds. Returns the vertices met; closes what it received."""
    held = {graph.keep: kept}
    owned: list = []
    todo = [graph.keep]
    try:
        while todo:
            u = todo.pop(0)
            queue = _queue_of(held[u], variant, owned)
            for v in graph.queued_at(u):
                fd = _receive_edge(queue, v, identities, marker)
                if v in held:
                    os.close(fd)
                    continue
                held[v] = socket.socket(socket.AF_UNIX, variant.socktype, 0, fileno=fd)
                owned.append(held[v])
                todo.append(v)
        return set(held)
    finally:
        for sock in owned:
            sock.close()


@pytest.mark.race("in-flight garbage collection")
@pytest.mark.parametrize("variant", [_variant(v) for v in VARIANTS])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.refs(COLLECTOR)
def test_a_graph_reachable_from_an_open_socket_is_not_reclaimed(shape, variant, socket_path):
    _require(variant)
    full = GRAPHS[shape]
    reachable = full.reachable_from(full.keep)
    # Only the part of the shape the socket kept open reaches is sent: the other copy would be garbage, whose
    # collection is the other case's business (and whose loss it reports).
    graph = Graph(full.nodes, tuple((v, u) for v, u in full.edges if u in reachable), full.keep)
    with InFlightMarker() as kept, InFlightMarker() as nothing:
        riders = [kept.w if u in reachable else None for u in range(graph.nodes)]
        with build(graph, variant, os.path.dirname(socket_path), riders) as built:
            identities = [fdlist.identity(sock.fileno()) for sock in built.in_flight]
            kept_inodes = built.inodes(reachable)
            kept.drop_local()
            nothing.drop_local()  # rides nowhere: wait_for_collection then waits for the witness alone
            built.close(keep=graph.keep)
            wait_for_collection(nothing, variant.kind)  # a pass that began after the close has run
            window_ends = time.monotonic() + KEPT_WINDOW
            table = read_socket_table()
            assert still_open_after(kept.r, max(0.0, window_ends - time.monotonic())), \
                "the pipe end riding in the reachable graph was released"
            gone = unlisted(kept_inodes, table)
            assert not gone, f"sockets of the reachable graph (inodes {sorted(gone)}) are no longer listed"
            # Received whole, the reachable part needs no collector to go.
            met = _receive_all(graph, variant, built.in_flight[graph.keep], identities, kept)
            assert met == reachable, f"received vertices {sorted(met)}, expected {sorted(reachable)}"
        assert kept.released(), "the pipe end was not released once everything was received and closed"


# ---- the collector racing shutdown(SHUT_RD) (XNU tests/uipc_uaf.c) --------------------------------------------------

RACE_SECONDS = 0.1  # the anchor runs 60 s; this is a smoke test of the same race, --conformance-stress repeats it
COPIES = 16  # copies of the socket in each message (the anchor sends a cluster's worth)


def _self_referencing_pairs(end: float, rider: int, inodes: list, errors: list) -> None:
    """Until end: a stream pair whose one end waits in both queues, its own included, then shutdown(SHUT_RD) of
    that end (which disposes of its queued rights where the OS does so, racing the collector) and close."""
    try:
        while time.monotonic() < end:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            with a, b:
                inodes.extend(os.fstat(s.fileno()).st_ino for s in (a, b))
                carried = [b.fileno()] * COPIES + [rider]
                try:
                    rights.send_fds(b, carried)  # b waits in a's queue
                    rights.send_fds(a, carried)  # and in its own
                except OSError as e:
                    # An unprivileged sender may have no more than RLIMIT_NOFILE descriptors in flight (Linux
                    # unix(7) ETOOMANYREFS): when the collector lags behind, the kernel says wait, and the race goes on.
                    if e.errno != getattr(errno, "ETOOMANYREFS", None):
                        raise
                b.shutdown(socket.SHUT_RD)
    except BaseException as e:  # reported to the parent, which fails the case
        errors.append(f"{type(e).__name__}: {e}")


def _release_sockets(end: float, errors: list) -> None:
    """Until end: create and release sockets, each release a chance for the collector to start."""
    try:
        while time.monotonic() < end:
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
    except BaseException as e:
        errors.append(f"{type(e).__name__}: {e}")


def _race_collector_with_shutdown(seconds: float) -> int:
    """Runs in a child: two threads making self-referencing pairs, one triggering the collector. Returns how many
    pairs were made, once everything they carried has been released."""
    with InFlightMarker() as marker:
        inodes: list = []
        errors: list = []
        end = time.monotonic() + seconds
        threads = [threading.Thread(target=_self_referencing_pairs, args=(end, marker.w, inodes, errors))
                   for _ in range(2)]
        threads.append(threading.Thread(target=_release_sockets, args=(end, errors)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, f"a thread failed: {errors}"
        marker.drop_local()
        assert_reclaimed(marker, inodes, "stream")
        return len(inodes) // 2


@pytest.mark.race("the collector racing shutdown(SHUT_RD) of self-referencing sockets")
@pytest.mark.refs(UIPC_UAF, COLLECTOR, "POSIX.1-2024 XSH shutdown(): SHUT_RD disables further receive operations")
def test_the_collector_racing_shutdown_of_self_referencing_sockets_frees_everything():
    require("scm_rights")
    require("sock_stream")
    with Child(_race_collector_with_shutdown, RACE_SECONDS) as child:
        try:
            pairs = child.join()
        except ChildCrashed as e:
            raise AssertionError(f"the process did not survive the race: {e}") from None
    assert pairs > 0, "no self-referencing pair was made"
