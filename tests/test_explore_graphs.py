"""The explorer's graphs as data (conformance/explore/graphs.py): enumeration, normal forms, the oracle's split into
what stays and what must go, shrinking steps. Pure: no socket is made here."""

from __future__ import annotations

import itertools
import random

import pytest

from conformance.explore.graphs import Graph, every_graph, normal_form, random_graph, smaller


def _relabelled(graph: Graph, permutation) -> tuple:
    return (tuple((permutation[v], permutation[u]) for v, u in graph.edges),
            tuple(sorted(permutation[k] for k in graph.keep)))


def _brute_force(max_nodes: int, max_edges: int) -> set:
    """Every (nodes, edges, keep) up to relabelling, the slow way: every sequence over every vertex set, each
    reduced to the smallest of its relabellings."""
    classes = set()
    for nodes in range(1, max_nodes + 1):
        pairs = [(v, u) for v in range(nodes) for u in range(nodes)]
        for count in range(1, max_edges + 1):
            for edges in itertools.product(pairs, repeat=count):
                if {x for e in edges for x in e} != set(range(nodes)):
                    continue
                for keep in [()] + [(k,) for k in range(nodes)]:
                    graph = Graph(nodes, edges, keep)
                    classes.add((nodes, min(_relabelled(graph, p) for p in itertools.permutations(range(nodes)))))
    return classes


@pytest.mark.parametrize("max_nodes, max_edges", [(1, 3), (2, 2), (2, 3), (3, 3)])
def test_every_graph_is_each_class_up_to_relabelling_once(max_nodes, max_edges):
    graphs = list(every_graph(max_nodes, max_edges))
    canonical = [(g.nodes, min(_relabelled(g, p) for p in itertools.permutations(range(g.nodes)))) for g in graphs]
    assert len(set(canonical)) == len(canonical), "a graph was enumerated twice up to relabelling"
    assert set(canonical) == _brute_force(max_nodes, max_edges)


def test_the_default_exhaustive_set_has_the_size_the_notes_give():
    # 1,188 edge sequences of up to 3 sockets and 4 edges in normal form, each kept whole or with one vertex kept.
    graphs = list(every_graph(3, 4))
    assert len(graphs) == 4754
    assert sum(1 for g in graphs if not g.keep) == 1232


def test_the_anchor_shapes_are_among_the_small_graphs():
    """The kselftest's single-copy patterns (scm_rights.c: self_ref, triangle, mixed_lowpoint), in its edge order."""
    small = set(every_graph(3, 4))
    for edges in ([(0, 0)], [(0, 1), (1, 2), (2, 0)], [(0, 1), (1, 2), (2, 1), (1, 0)]):
        assert normal_form(edges) in small


@pytest.mark.parametrize("edges, keep, reachable", [
    ([(0, 1), (1, 0)], (), set()),
    ([(0, 1), (1, 0)], (0,), {0, 1}),
    ([(0, 1)], (0,), {0}),  # 0's socket waits in 1's queue: holding 0 reaches nothing of 1
    ([(0, 1)], (1,), {0, 1}),
    ([(0, 0), (1, 0), (2, 1)], (0,), {0, 1, 2}),
    ([(0, 0), (1, 0), (2, 1)], (1,), {1, 2}),
])
def test_what_a_kept_descriptor_reaches_stays_and_the_rest_is_garbage(edges, keep, reachable):
    graph = normal_form(edges, keep)
    assert graph.edges == tuple(edges)  # already in normal form
    assert graph.reachable() == reachable
    assert graph.garbage() == set(range(graph.nodes)) - reachable


def test_normal_form_numbers_vertices_by_first_appearance():
    graph = normal_form([(7, 3), (3, 9), (9, 7)], keep=(9, 42))
    assert graph == Graph(3, ((0, 1), (1, 2), (2, 0)), (2,))
    assert graph.text() == "3 sockets: 0->1 1->2 2->0, keeping 2"


def test_smaller_graphs_drop_an_edge_a_kept_vertex_or_copies():
    graph = Graph(3, ((0, 1), (1, 2), (2, 1)), (1,), copies=2)
    steps = list(smaller(graph))
    assert Graph(2, ((0, 1), (1, 0)), (0,), 2) in steps  # the first edge gone: renumbered, 1 kept as 0
    assert Graph(3, ((0, 1), (1, 2), (2, 1)), (), 2) in steps
    assert Graph(3, ((0, 1), (1, 2), (2, 1)), (1,), 1) in steps
    assert all(len(s.edges) < len(graph.edges) or len(s.keep) < len(graph.keep) or s.copies < graph.copies
               for s in steps)
    assert list(smaller(Graph(1, ((0, 0),)))) == []


def test_random_graphs_replay_from_their_seed():
    def draw(seed: str) -> list:
        rng = random.Random(seed)
        return [random_graph(rng, 8, 16, 3) for _ in range(50)]

    first, again, other = draw("7-stream"), draw("7-stream"), draw("8-stream")
    assert first == again != other
    assert all(1 <= g.nodes <= 8 and 1 <= len(g.edges) <= 16 and 1 <= g.copies <= 3 for g in first)
