#!/usr/bin/env python3
"""Reproducer: a graph of AF_UNIX sockets in flight that the garbage collector gets wrong.

Graph: 4 sockets: 0->0 1->2 3->1 3->0 0->3 2->3, keeping none
Socket type: stream, listening sockets
Found by: conformance explore (150 graphs of up to 5 sockets and 8 edges, seed 20261206-stream_listener); what was seen: the collector left the unreachable sockets: the pipe end they carried stayed open

Exits 1 when this platform behaves as seen (the unreachable sockets stay, or reachable ones are freed), 0 when it
behaves as the references say: every socket no kept descriptor reaches is freed with everything its queue holds,
and everything a kept descriptor reaches stays (a pipe end riding in each part tells which part was freed).
References:
  Linux net/unix/garbage.c (unix_gc: in-flight sockets no process can reach are freed)
  FreeBSD sys/kern/uipc_usrreq.c (unp_gc), XNU bsd/kern/uipc_usrreq.c (unp_gc)
  Linux tools/testing/selftests/net/af_unix/scm_rights.c (the graph shapes this generalises)

Each build that the collector misses leaves its sockets in the kernel until it restarts, charged to the user that
sends them. Run as root, the edges are sent by a child that became a uid no one has: Linux makes every send of a
user with many sockets in flight wait for a collector pass (unix_schedule_gc), and passes during the build change
what the collector makes of the graph. Standard library only (Python 3.9 or later).
"""

import os
import random
import selectors
import socket
import sys
import tempfile
import time

NODES = 4
EDGES = [(0, 0), (1, 2), (3, 1), (3, 0), (0, 3), (2, 3)]  # (v, u): v's socket is sent into u's queue, in this order
KEEP = set()  # the vertices whose descriptors stay open
COPIES = 1  # copies of v's descriptor in each message
KIND = socket.SOCK_STREAM
LISTENER = True  # vertices are listeners: rights go to their unaccepted connections
FLAGS = 0
BUILDS = 10


def reachable():
    seen, todo = set(KEEP), list(KEEP)
    while todo:
        node = todo.pop()
        for v, u in EDGES:
            if u == node and v not in seen:
                seen.add(v)
                todo.append(v)
    return seen


def vertex(directory, number):
    if not LISTENER:
        return socket.socketpair(socket.AF_UNIX, KIND)
    listener = socket.socket(socket.AF_UNIX, KIND)
    path = os.path.join(directory, str(number))
    listener.bind(path)
    listener.listen(1)
    client = socket.socket(socket.AF_UNIX, KIND)
    client.connect(path)
    return listener, client


def witnessed_pass(marker_fd):
    """Trigger the collector until the marker reaches EOF, or until a witness made now (garbage from the start) is
    freed and 50 ms more have passed; True if the marker reached EOF."""
    wr, ww = os.pipe()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    socket.send_fds(a, [b"x"], [b.fileno(), ww])
    a.close(), b.close(), os.close(ww)
    pending, give_up, freed = {marker_fd, wr}, time.monotonic() + 10, None
    with selectors.DefaultSelector() as sel:
        for fd in pending:
            sel.register(fd, selectors.EVENT_READ)
        while pending - {wr} and time.monotonic() < give_up and (freed is None or time.monotonic() < freed + 0.05):
            for key, _ in sel.select(0.005) or [(None, None)]:
                if key is None:  # nothing yet: closing any socket gives the collector its trigger
                    x, y = socket.socketpair()
                    x.close(), y.close()
                elif os.read(key.fd, 4096) == b"":
                    sel.unregister(key.fd)
                    pending.discard(key.fd)
                    if key.fd == wr:
                        freed = time.monotonic()
    os.close(wr)
    return marker_fd not in pending


def send_edges(pairs, kept_part, dead_w, live_w):
    """Every edge, in order; as a fresh uid in a child when run as root."""
    child = os.fork() if os.geteuid() == 0 else None
    if child:
        _, status = os.waitpid(child, 0)
        if status != 0:
            raise SystemExit(f"the child that sent the edges failed (wait status {status})")
        return
    try:
        if child == 0:
            uid = random.randrange(1_900_000_000, 2_100_000_000)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        for v, u in EDGES:
            rider = live_w if u in kept_part else dead_w
            socket.send_fds(pairs[u][1], [b"x"], [pairs[v][0].fileno()] * COPIES + [rider], FLAGS)
    except BaseException:
        if child == 0:
            os._exit(1)
        raise
    if child == 0:
        os._exit(0)


def build_once(directory):
    """One build: None if the platform did what the references say, else what it did."""
    kept_part = reachable()
    dead_r, dead_w = os.pipe()
    live_r, live_w = os.pipe()
    pairs = [vertex(directory, n) for n in range(NODES)]
    send_edges(pairs, kept_part, dead_w, live_w)
    for n, (in_flight, sender) in enumerate(pairs):
        sender.close()
        if n not in KEEP:
            in_flight.close()
    os.close(dead_w), os.close(live_w)
    try:
        if not witnessed_pass(dead_r) and not witnessed_pass(dead_r):
            return "the collector left the unreachable sockets (the pipe end they carried stayed open)"
        if any(u in kept_part for _, u in EDGES) and witnessed_pass(live_r):
            return "the collector freed sockets that a kept descriptor still reaches"
        return None
    finally:
        os.close(dead_r), os.close(live_r)
        for n in KEEP:
            pairs[n][0].close()


def main():
    with tempfile.TemporaryDirectory(prefix="gc-") as directory:
        for attempt in range(BUILDS):
            build_directory = os.path.join(directory, str(attempt))
            os.mkdir(build_directory)
            seen = build_once(build_directory)
            if seen:
                print(f"build {attempt + 1} of {BUILDS}: {seen}")
                return 1
    print(f"{BUILDS} builds: the collector did what the references say")
    return 0


if __name__ == "__main__":
    sys.exit(main())
