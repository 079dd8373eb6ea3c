"""Exploration: every small graph of sockets in flight and a sample of larger ones against the collector's oracle,
and random lock histories against a model of the three lock families.

Hand-written cases (test_collection.py) check the shapes someone thought of; here the suite checks every graph of
up to 3 sockets and 4 edges, in every edge order, once up to relabelling, with every choice of a kept descriptor
(conformance/explore/graphs.py), on stream sockets; and a fixed-seed sample of larger graphs on every socket type,
on listeners and with MSG_OOB. The oracle, per graph: everything no kept descriptor reaches is freed with what its
queues hold; everything a kept descriptor reaches stays and comes back when received. A failing graph is shrunk to
a minimal one and written as a standalone reproducer beside the report; the reason names both.

Lock histories (conformance/explore/lockrun.py): processes open, dup and close descriptors of one file and take
and drop locks of every family the platform has; after each step, the step's answer and every other process's view
of the file (queries at every boundary, flock tries) must be what the model (lockmodel.py, written from POSIX, the
Linux and BSD manuals) allows. A history that differs is shrunk and written as a standalone reproducer.

Anchors: none checks more than the kselftest's five shapes (Linux tools/testing/selftests/net/af_unix/scm_rights.c);
the collectors: Linux net/unix/garbage.c, FreeBSD sys/kern/uipc_usrreq.c (unp_gc).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from conformance import settings
from conformance.explore import collector, lockhistory, lockrun
from conformance.explore.graphs import every_graph, random_graph
from conformance.outcomes import Unsupported
from conformance.platforms import constants

from ._graphs import Variant
from .test_collection import COLLECTOR, KSELFTEST, _require

MAX_NODES, MAX_EDGES = 3, 4  # every graph up to this size
PARTS = 4  # the exhaustive set in this many cases, so that workers share it
SAMPLE = 150  # random graphs per sampled variant
SAMPLE_NODES, SAMPLE_EDGES, SAMPLE_COPIES = 5, 8, 3
SEED = 20261206  # the sample's; each variant draws from SEED and its name
EXPLORE_NODES, EXPLORE_EDGES = 8, 16  # the random graphs of `conformance explore`

LOCK_MODEL = "conformance/explore/lockmodel.py (the model, each rule with its reference)"

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
        pytest.fail(" / ".join(failed), pytrace=False)


def _endless(variant: Variant, seed: int):
    """Random graphs of up to EXPLORE_NODES sockets and EXPLORE_EDGES edges, drawn from the seed, without end."""
    rng = random.Random(f"{seed}-{variant}")
    while True:
        yield random_graph(rng, EXPLORE_NODES, EXPLORE_EDGES, SAMPLE_COPIES)


def _budget(request, sharing: int) -> float:
    """This case's share of `conformance explore --seconds`: the budget spread over the `sharing` cases of its area,
    as many at once as there are workers; 0 outside an exploration."""
    seconds = request.config.getoption("conformance_explore_seconds", 0) or 0
    workers = getattr(request.config, "workerinput", {}).get("workercount", 1)
    return seconds * min(workers, sharing) / sharing


def _seed(request, observe) -> int:
    """The exploration's seed (a new one if none was given), recorded as an observation."""
    seed = request.config.getoption("conformance_explore_seed")
    if seed is None:
        seed = random.SystemRandom().randrange(settings.MAX_SEED)
    observe("explore.seed", seed)
    return seed


@pytest.mark.parametrize("part", [pytest.param(p, id=f"stream-{p + 1}of{PARTS}") for p in range(PARTS)])
@pytest.mark.refs(COLLECTOR, f"{KSELFTEST} (its five shapes are among these graphs)")
def test_every_small_graph_of_sockets_in_flight_is_collected_as_reachability_says(part, request, tmp_path, observe):
    variant = Variant("stream")
    _require(variant)
    graphs = _every_small_graph()[part::PARTS]
    _fail_on(_explore(graphs, variant, request, tmp_path, observe,
                      f"every graph of up to {MAX_NODES} sockets and {MAX_EDGES} edges, part {part + 1} of {PARTS}"))


@pytest.mark.parametrize("variant", [pytest.param(v, id=str(v)) for v in SAMPLED])
@pytest.mark.refs(COLLECTOR)
def test_a_sample_of_larger_graphs_in_flight_is_collected_as_reachability_says(variant, request, tmp_path, observe):
    """The fixed sample, in every run; under `conformance explore`, then random graphs for this case's share of its
    budget, from its seed."""
    _require(variant)
    origin = f"{SAMPLE} graphs of up to {SAMPLE_NODES} sockets and {SAMPLE_EDGES} edges, seed {SEED}-{variant}"
    found = [_explore(_sample(variant), variant, request, tmp_path, observe, origin)]
    budget = _budget(request, len(SAMPLED))
    if budget:
        seed = _seed(request, observe)
        found.append(_explore(_endless(variant, seed), variant, request, tmp_path, observe,
                              f"conformance explore --seed {seed}: graphs of up to {EXPLORE_NODES} sockets and "
                              f"{EXPLORE_EDGES} edges", stop_at=time.monotonic() + budget,
                              counted_as="explore.graphs_checked"))
    _fail_on(*found)


# ---- lock histories against the model ----------------------------------------------------------------------------

LOCK_PARTS = 2  # cases sharing the fixed histories
LOCK_HISTORIES, LOCK_STEPS, LOCK_ACTORS = 30, 25, 3  # per case, in every run
EXPLORE_LOCK_STEPS, EXPLORE_LOCK_ACTORS = 60, 4  # at most, under `conformance explore`


def _lock_families(flock_vs_fcntl: str | None) -> tuple:
    """The families the histories use: those this platform has; flock beside fcntl families only where the
    platform's choice between them is known."""
    families = lockrun.available_families()
    if flock_vs_fcntl is None and len(families) > 1:
        families = tuple(f for f in families if f != "flock")
    return families


def _flock_vs_fcntl(documented) -> str | None:
    """Whether flock and fcntl locks meet here: the filesystem's documented choice (a network filesystem's client may
    emulate flock with fcntl locks: expectations/<os>.<filesystem>.toml), else the OS's (platforms/: FLOCK_VS_FCNTL)."""
    return documented("locks.flock_vs_fcntl", constants().FLOCK_VS_FCNTL)


def _endless_histories(seed: int, part: int, families: tuple, flock_vs_fcntl: str | None):
    rng = random.Random(f"{seed}-locks-{part}")
    while True:
        yield lockhistory.random_history(rng, rng.randint(2, EXPLORE_LOCK_ACTORS),
                                         rng.randint(5, EXPLORE_LOCK_STEPS), families, flock_vs_fcntl)


@pytest.mark.parametrize("part", [pytest.param(p, id=f"histories-{p + 1}of{LOCK_PARTS}") for p in range(LOCK_PARTS)])
@pytest.mark.refs(LOCK_MODEL, "POSIX.1-2024 XSH fcntl(): record locking", "Linux fcntl(2): open file description locks",
                  "flock(2)")
def test_random_lock_histories_agree_with_the_model(part, request, tmp_path, workdir, observe, documented):
    """Random histories of 3 processes (open, open close-on-exec, dup, close, a descriptor passed to another process, a
    process's exit, fork, exec, lock, lock-and-wait and unlock of every family the platform has, on byte ranges 0
    to 11 and to the end of the file), each step's answer (for an exec, the descriptors it keeps), the waiters it
    must wake and those that must sleep on (in the kernel's lock table where it has one), then every other
    process's view of the file (queries at every boundary, flock tries) compared with the model; a history that
    differs is shrunk and written as a reproducer."""
    flock_vs_fcntl = _flock_vs_fcntl(documented)
    families = _lock_families(flock_vs_fcntl)
    if not families:
        raise Unsupported("no lock family is available here")
    path = workdir / "locked"
    path.write_bytes(b"")
    reproducers = _reproducers(request, tmp_path)
    rng = random.Random(f"{SEED}-locks-{part}")
    fixed = [lockhistory.random_history(rng, LOCK_ACTORS, LOCK_STEPS, families, flock_vs_fcntl)
             for _ in range(LOCK_HISTORIES)]
    with lockrun.Bench(EXPLORE_LOCK_ACTORS, str(path), families, flock_vs_fcntl) as bench:
        found = [lockrun.explore(fixed, bench, reproducers, f"{LOCK_HISTORIES} histories, seed {SEED}-locks-{part}")]
        observe("lock_histories.steps_checked", found[0].steps)
        budget = _budget(request, LOCK_PARTS)
        if budget:
            seed = _seed(request, observe)
            found.append(lockrun.explore(_endless_histories(seed, part, families, flock_vs_fcntl), bench, reproducers,
                                         f"conformance explore --seed {seed}", stop_at=time.monotonic() + budget))
            observe("explore.lock_steps_checked", found[-1].steps)
    failed = [one.summary() for one in found if one.failed]
    if failed:
        pytest.fail(" / ".join(failed), pytrace=False)
