"""Graphs of UNIX sockets in flight as data: what the explorer builds, enumerates, samples and shrinks (no OS here).

A graph has `nodes` vertices, each a socket that can go in flight, and a sequence of edges (v, u): "vertex v's
socket is sent, with SCM_RIGHTS, into vertex u's receive queue". The order of the edges is part of the graph: a
collector's walk meets them in that order (Linux net/unix/garbage.c orders its vertices and edges by when they went
in flight), so the same edges sent in another order are another graph. After the last edge, the user closes every
descriptor of the graph except those of the `keep` vertices.

What the references say must then happen (the oracle): every vertex that no kept vertex reaches through the queues
is garbage and is freed, with everything its queue held; every vertex a kept one reaches stays whole, and what its
queue holds arrives when received. Linux net/unix/garbage.c (unix_gc), FreeBSD sys/kern/uipc_usrreq.c (unp_gc),
XNU bsd/kern/uipc_usrreq.c (unp_gc); unix(7) and unix(4) only promise that descriptors in flight are not lost.

Graphs are compared up to relabelling: a sequence is kept only in its normal form, where vertices are numbered in
the order they first appear in it (the first edge's sender is 0, and so on). That numbering is unique to a sequence,
so two normal forms are the same graph exactly when they are equal, and no graph is built twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Graph:
    nodes: int
    edges: tuple  # ((v, u), ...): v's socket goes into u's queue, in this order
    keep: tuple = ()  # the vertices whose descriptors the user keeps open
    copies: int = 1  # copies of v's descriptor in each edge's message

    def queued_at(self, node: int) -> list:
        """The vertices whose sockets wait in node's queue, in the order they were sent there."""
        return [v for v, u in self.edges if u == node]

    def reachable(self) -> frozenset:
        """The vertices a process holding the kept ones can still get at: those, what their queues hold, and on."""
        seen, todo = set(self.keep), list(self.keep)
        while todo:
            for v in self.queued_at(todo.pop()):
                if v not in seen:
                    seen.add(v)
                    todo.append(v)
        return frozenset(seen)

    def garbage(self) -> frozenset:
        """The vertices the collector must free: every vertex no kept vertex reaches."""
        return frozenset(range(self.nodes)) - self.reachable()

    def text(self) -> str:
        """One line that names the graph: `3 sockets: 0->1 1->2 2->1 1->0, keeping 1`."""
        arrows = " ".join(f"{v}->{u}" for v, u in self.edges)
        kept = ", keeping " + " ".join(map(str, self.keep)) if self.keep else ", keeping none"
        copies = f", {self.copies} copies per message" if self.copies != 1 else ""
        return f"{self.nodes} sockets: {arrows}{kept}{copies}"


def normal_form(edges, keep=(), copies: int = 1) -> Graph:
    """The graph of these edges with its vertices renumbered by first appearance; vertices on no edge are dropped
    (a kept vertex on no edge is kept alone, which changes nothing)."""
    label: dict = {}
    for v, u in edges:
        for x in (v, u):
            label.setdefault(x, len(label))
    renumbered = tuple((label[v], label[u]) for v, u in edges)
    kept = tuple(sorted({label[k] for k in keep if k in label}))
    return Graph(len(label), renumbered, kept, copies)


def _normal_sequences(max_nodes: int, max_edges: int) -> Iterator[tuple]:
    """(edges, nodes) for every edge sequence of 1..max_edges edges over at most max_nodes vertices in normal form:
    each edge may only name the vertices seen so far and the next new one."""
    def extend(edges: tuple, seen: int):
        if edges:
            yield edges, seen
        if len(edges) == max_edges:
            return
        for v in range(min(seen + 1, max_nodes)):
            after_v = max(seen, v + 1)
            for u in range(min(after_v + 1, max_nodes)):
                yield from extend(edges + ((v, u),), max(after_v, u + 1))

    yield from extend((), 0)


def every_graph(max_nodes: int, max_edges: int) -> Iterator[Graph]:
    """Every graph of up to max_nodes sockets and max_edges edges, in every order, once up to relabelling, each
    with every choice of what the user keeps: nothing, or one vertex's descriptor."""
    for edges, nodes in _normal_sequences(max_nodes, max_edges):
        yield Graph(nodes, edges, ())
        for k in range(nodes):
            yield Graph(nodes, edges, (k,))


def random_graph(rng: random.Random, max_nodes: int, max_edges: int, max_copies: int = 1) -> Graph:
    """A graph drawn at random: 1..max_nodes sockets, 1..max_edges edges, keeping none or a random subset."""
    nodes = rng.randint(1, max_nodes)
    edges = [(rng.randrange(nodes), rng.randrange(nodes)) for _ in range(rng.randint(1, max_edges))]
    keep = [k for k in range(nodes) if rng.random() < 0.25]
    return normal_form(edges, keep, rng.randint(1, max_copies))


def smaller(graph: Graph) -> Iterator[Graph]:
    """The graphs one step smaller than this one, most reduced first: half the edges fewer (each half), then a
    quarter, and so on down to one edge (as delta debugging does), then a kept vertex fewer, then fewer copies per
    message. Shrinking takes the first that still fails, and stops where none does: big steps first mean fewer
    failing graphs on the way, and where the collector leaks, each failing graph stays in the kernel."""
    seen = set()
    size = len(graph.edges) // 2
    while size >= 1:
        for start in range(0, len(graph.edges), size):
            edges = graph.edges[:start] + graph.edges[start + size:]
            if edges:
                candidate = normal_form(edges, _relabel_keep(graph, edges), graph.copies)
                if candidate not in seen:
                    seen.add(candidate)
                    yield candidate
        size = size // 2 if size > 1 else 0
    for k in graph.keep:
        yield normal_form(graph.edges, tuple(x for x in graph.keep if x != k), graph.copies)
    if graph.copies > 1:
        yield normal_form(graph.edges, graph.keep, 1)


def _relabel_keep(graph: Graph, edges: tuple) -> tuple:
    """The kept vertices that remain on some edge once an edge is removed (normal_form relabels them)."""
    on_edges = {x for e in edges for x in e}
    return tuple(k for k in graph.keep if k in on_edges)
