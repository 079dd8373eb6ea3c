"""Exploration of the in-flight garbage collector: every small graph of sockets in flight, and a sample of larger ones.

Hand-written cases (test_collection.py) check the shapes someone thought of; here the suite checks every graph of
up to 3 sockets and 4 edges, in every edge order, once up to relabelling, with every choice of a kept descriptor
(conformance/explore/graphs.py), on stream sockets; and a fixed-seed sample of larger graphs on every socket type,
on listeners and with MSG_OOB. The oracle, per graph: everything no kept descriptor reaches is freed with what its
queues hold; everything a kept descriptor reaches stays and comes back when received. A failing graph is shrunk to
a minimal one and written as a standalone reproducer beside the report; the reason names both.

Anchors: none checks more than the kselftest's five shapes (Linux tools/testing/selftests/net/af_unix/scm_rights.c);
the collectors: Linux net/unix/garbage.c, FreeBSD sys/kern/uipc_usrreq.c (unp_gc).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from conformance import settings
from conformance.explore import collector
from conformance.explore.graphs import every_graph, random_graph

from ._graphs import Variant
from .test_collection import COLLECTOR, KSELFTEST, _require

MAX_NODES, MAX_EDGES = 3, 4  # every graph up to this size
PARTS = 4  # the exhaustive set in this many cases, so that workers share it
SAMPLE = 150  # random graphs per sampled variant
SAMPLE_NODES, SAMPLE_EDGES, SAMPLE_COPIES = 5, 8, 3
SEED = 20261206  # the sample's; each variant draws from SEED and its name
EXPLORE_NODES, EXPLORE_EDGES = 8, 16  # the random graphs of `conformance explore`

SAMPLED = [Variant("stream"), Variant("dgram"), Variant("seqpacket"), Variant("stream", oob=True),
           Variant("stream", listener=True), Variant("seqpacket", listener=True)]


def _every_small_graph() -> list:
    return list(every_graph(MAX_NODES, MAX_EDGES))


def _sample(variant: Variant) -> list:
    rng = random.Random(f"{SEED}-{variant}")
    return [random_graph(rng, SAMPLE_NODES, SAMPLE_EDGES, SAMPLE_COPIES) for _ in range(SAMPLE)]


def _reproducers(request, tmp_path: Path) -> Path:
    """Beside the run's report, where there is one; else in the case's temporary directory."""
    report = request.config.getoption("conformance_report", None)
    return Path(report) / "reproducers" if report else tmp_path / "reproducers"


def _explore(graphs, variant: Variant, request, tmp_path: Path, observe, origin: str,
             stop_at: float | None = None, counted_as: str = "graphs.checked") -> collector.Exploration:
    found = collector.explore(graphs, variant, _reproducers(request, tmp_path), origin, stop_at=stop_at)
    observe(counted_as, found.checked)
    return found


def _fail_on(*explorations: collector.Exploration) -> None:
    failed = [found.summary() for found in explorations if found.failed]
    if failed:
        pytest.fail("\n".join(failed), pytrace=False)


def _endless(variant: Variant, seed: int):
    """Random graphs of up to EXPLORE_NODES sockets and EXPLORE_EDGES edges, drawn from the seed, without end."""
    rng = random.Random(f"{seed}-{variant}")
    while True:
        yield random_graph(rng, EXPLORE_NODES, EXPLORE_EDGES, SAMPLE_COPIES)


def _budget(request) -> float:
    """This case's share of `conformance explore --seconds`: the budget spread over the sampled variants, as many
    at once as there are workers; 0 outside an exploration."""
    seconds = request.config.getoption("conformance_explore_seconds", 0) or 0
    workers = getattr(request.config, "workerinput", {}).get("workercount", 1)
    return seconds * min(workers, len(SAMPLED)) / len(SAMPLED)


@pytest.mark.race("in-flight garbage collection")
@pytest.mark.parametrize("part", [pytest.param(p, id=f"stream-{p + 1}of{PARTS}") for p in range(PARTS)])
@pytest.mark.refs(COLLECTOR, f"{KSELFTEST} (its five shapes are among these graphs)")
def test_every_small_graph_of_sockets_in_flight_is_collected_as_reachability_says(part, request, tmp_path, observe):
    variant = Variant("stream")
    _require(variant)
    graphs = _every_small_graph()[part::PARTS]
    _fail_on(_explore(graphs, variant, request, tmp_path, observe,
                      f"every graph of up to {MAX_NODES} sockets and {MAX_EDGES} edges, part {part + 1} of {PARTS}"))


@pytest.mark.race("in-flight garbage collection")
@pytest.mark.parametrize("variant", [pytest.param(v, id=str(v)) for v in SAMPLED])
@pytest.mark.refs(COLLECTOR)
def test_a_sample_of_larger_graphs_in_flight_is_collected_as_reachability_says(variant, request, tmp_path, observe):
    """The fixed sample, in every run; under `conformance explore`, then random graphs for this case's share of its
    budget, from its seed."""
    _require(variant)
    origin = f"{SAMPLE} graphs of up to {SAMPLE_NODES} sockets and {SAMPLE_EDGES} edges, seed {SEED}-{variant}"
    found = [_explore(_sample(variant), variant, request, tmp_path, observe, origin)]
    budget = _budget(request)
    if budget:
        seed = request.config.getoption("conformance_explore_seed")
        if seed is None:
            seed = random.SystemRandom().randrange(settings.MAX_SEED)
        observe("explore.seed", seed)
        found.append(_explore(_endless(variant, seed), variant, request, tmp_path, observe,
                              f"conformance explore --seed {seed}: graphs of up to {EXPLORE_NODES} sockets and "
                              f"{EXPLORE_EDGES} edges", stop_at=time.monotonic() + budget,
                              counted_as="explore.graphs_checked"))
    _fail_on(*found)
