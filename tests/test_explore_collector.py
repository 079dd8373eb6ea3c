"""The explorer of the in-flight collector on the real kernel, with faults planted in what the user closes: a graph
whose descriptor the "platform" keeps (as a collector that leaves a shape behind would) must be found, shrunk to the
smallest shape with the fault and written as a reproducer; one whose kept descriptor goes must be found as reachable
sockets freed. Faults are planted in the explorer's close, never in the kernel: what it then sees is real."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conformance.cases._graphs import Variant
from conformance.explore import collector, inflight, reproducer
from conformance.explore.graphs import Graph, every_graph, normal_form
from conformance.harness import rights

STREAM = Variant("stream")

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX only")


def _has_two_cycle(graph: Graph) -> bool:
    edges = set(graph.edges)
    return any((u, v) in edges for v, u in edges if u != v)


@pytest.fixture
def plant(monkeypatch):
    """plant(fault): fault(built) runs where the user closes a built graph's descriptors, before they are closed;
    descriptors it keeps are closed at the end of the test."""
    kept: list = []
    close_user_side = inflight._Built.close_user_side

    def planted(fault):
        def closing(self):
            fault(self, kept)
            close_user_side(self)
        monkeypatch.setattr(inflight._Built, "close_user_side", closing)

    yield planted
    monkeypatch.undo()
    for fd in kept:
        os.close(fd)


def _keep_a_socket_of_every_two_cycle(built, kept: list) -> None:
    if not built.graph.keep and _has_two_cycle(built.graph):
        kept.append(os.dup(built.in_flight[0].fileno()))  # the graph stays reachable: a "collector" that leaks it


def test_a_leaked_shape_is_found_shrunk_and_written_as_a_reproducer(plant, tmp_path):
    plant(_keep_a_socket_of_every_two_cycle)
    graphs = [g for g in every_graph(2, 3) if len(g.edges) == 3]
    found = collector.explore(graphs, STREAM, tmp_path, "a self-test")
    assert found.failed > 0 and len(found.failures) <= collector.FAILURES_KEPT
    for failure in found.failures:
        assert failure.minimal.graph == normal_form([(0, 1), (1, 0)]), failure.minimal.graph.text()
        assert "left the unreachable sockets" in failure.minimal.problem
        assert failure.reproducer is not None and failure.reproducer.parent == tmp_path
    assert "2 sockets: 0->1 1->0, keeping none" in found.summary()


def test_an_exploration_stops_after_a_few_failures(plant, tmp_path):
    plant(_keep_a_socket_of_every_two_cycle)
    graphs = [normal_form([(0, 1), (1, 0)] + [(0, 0)] * n) for n in range(1, 9)] * 40  # more than one batch
    found = collector.explore(graphs, STREAM, None, "a self-test")
    assert found.failed >= collector.FAILURES_KEPT
    assert found.checked < found.planned or inflight.batch_size() >= len(graphs)
    assert "the exploration stopped there" in found.summary()


def test_a_message_gone_from_a_reachable_queue_is_found(plant, tmp_path):
    """As a collector that purged a queue still reachable would leave it: the first message at the kept vertex is
    taken away (and what it carried closed) before the user closes the rest."""
    def purge_the_kept_queue(built, kept):
        for k in built.graph.keep:
            with rights.recv_fds(built.in_flight[k], 4, bufsize=1):
                pass
    plant(purge_the_kept_queue)
    whole = normal_form([(0, 1), (1, 0)], keep=(0,))  # its only queued message gone: the live pipe end goes too
    longer = normal_form([(0, 1), (1, 0), (1, 0)], keep=(0,))  # one of two gone: the second one arrives first
    wrong, _ = inflight.check([whole, longer], STREAM, str(tmp_path))
    assert [(f.graph, f.problem) for f in wrong] == [
        (whole, "the collector freed sockets that a kept descriptor still reaches"),
        (longer, "the message that carried 1 into 0: lost")]


def test_graphs_the_kernel_handles_pass_with_what_they_queued_received(tmp_path):
    graphs = [normal_form([(0, 1), (1, 0)], keep=(0,)), normal_form([(0, 0), (1, 0), (2, 1)], keep=(1,), copies=3),
              normal_form([(0, 1), (1, 2)], keep=(2,)), normal_form([(0, 0)])]
    for variant in (STREAM, Variant("dgram"), Variant("seqpacket"), Variant("stream", listener=True)):
        directory = tmp_path / str(variant)
        directory.mkdir()
        wrong, freed = inflight.check(graphs, variant, str(directory))
        assert wrong == [], [(f.graph.text(), f.problem) for f in wrong]
        assert inflight.still_listed(freed) == []


def test_a_reproducer_is_standalone_and_exits_0_where_the_collector_does_its_job(tmp_path):
    graph = normal_form([(0, 1), (1, 0)], keep=(0,))
    path = reproducer.write(tmp_path, graph, STREAM, "seen in a self-test", "a self-test")
    text = path.read_text()
    assert "2 sockets: 0->1 1->0, keeping 0" in text and "net/unix/garbage.c" in text
    assert "import conformance" not in text and os.access(path, os.X_OK)
    done = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, ""), done
    assert "the collector did what the references say" in done.stdout
