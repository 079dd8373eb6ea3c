"""Exploring the in-flight garbage collector: graphs checked in batches, the first failures shrunk and written as
reproducers.

On a platform whose collector leaks, every failing graph leaves its sockets in the kernel for good; so exploring a
set of graphs stops once FAILURES_KEPT graphs have failed, shrinks only those, and says how many graphs it left
unchecked and how many sockets stay behind.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from conformance.cases._graphs import LEFT_LISTED, Variant

from . import inflight, reproducer
from .graphs import Graph, smaller

FAILURES_KEPT = 3  # failing graphs after which an exploration stops: each leaks for good where the collector leaks
SHRINK_TRIES = 40  # graphs tried while shrinking one failure, at most
SHRINK_FAILURES = 3  # failing graphs while shrinking one failure, at most: each may stay in the kernel for good
# Builds of each smaller graph. A collector that misses a graph in some builds only may let a smaller one pass by
# chance, and the shrinking stop one step early; every further build of a failing one leaves more sockets behind.
SHRINK_BUILDS = 1


@dataclass
class Failure:
    found: inflight.Finding  # as first seen
    minimal: inflight.Finding  # after shrinking
    reproducer: Path | None = None


@dataclass
class Exploration:
    """What exploring a set of graphs found."""

    variant: Variant
    planned: int | None = 0  # graphs in the set; None for an endless one
    checked: int = 0  # graphs built and judged (all of them, unless the exploration stopped at FAILURES_KEPT)
    failed: int = 0  # graphs found failing
    failures: list = field(default_factory=list)  # the first FAILURES_KEPT of them, shrunk
    # Sockets of failing graphs (shrinking's included) that the kernel's table still lists, said in the summary as
    # cases/_graphs.LEFT_LISTED says it, which is how tests/test_leftovers.py counts what a run left in the kernel.
    left_listed: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: the counts, then each minimal failing graph and its reproducer."""
        of = "" if self.planned is None else f" of {self.planned}"
        head = f"{self.checked}{of} graphs checked on {self.variant} sockets"
        if not self.failures:
            return head + ", all as the references say"
        stopped = ", the exploration stopped there: each may leave sockets behind" \
            if self.failed >= FAILURES_KEPT and (self.planned is None or self.checked < self.planned) else ""
        shrunk = f", the first {len(self.failures)} shrunk" if self.failed > len(self.failures) else ""
        lines = [f"{head}; {self.failed} failed{stopped}{shrunk}; {LEFT_LISTED.format(self.left_listed)}"]
        for failure in self.failures:
            where = f" (reproducer: {beside_the_report(failure.reproducer)})" if failure.reproducer else ""
            first = failure.found.graph
            shrunk = "" if failure.minimal.graph == first else f", shrunk from {first.text()}"
            lines.append(f"minimal: {failure.minimal.graph.text()}: {failure.minimal.problem}{shrunk}{where}")
        return "; ".join(lines)  # one line: a report's reason is the failure's first line


def beside_the_report(path: Path) -> str:
    """A reproducer's path as a report names it: from the report's directory (reproducers/<file>), so that it holds
    wherever the report and its reproducers are copied."""
    return f"{path.parent.name}/{path.name}"


def explore(graphs: Iterable[Graph], variant: Variant, reproducers: Path | None, origin: str,
            progress: Callable[[Exploration], None] | None = None, stop_at: float | None = None) -> Exploration:
    """Check the graphs in batches until they run out, FAILURES_KEPT have failed, or time.monotonic() passes
    stop_at; then shrink each failure and write its reproducer into `reproducers` (if given). `graphs` may be
    endless (then stop_at must be given, and `planned` stays None)."""
    planned = len(graphs) if isinstance(graphs, (list, tuple)) else None
    graphs = iter(graphs)
    result = Exploration(variant, planned=planned)
    started = time.monotonic()
    size = inflight.batch_size()
    with tempfile.TemporaryDirectory(prefix="gc-", dir=_short_tmp()) as names:
        found, freed = [], []
        while len(found) < FAILURES_KEPT and (stop_at is None or time.monotonic() < stop_at):
            batch = list(itertools.islice(graphs, size))
            if not batch:
                break
            wrong, seemingly_freed = inflight.check(batch, variant, _fresh(names, "batch"))
            found += wrong
            freed += seemingly_freed
            result.checked += len(batch)
            if progress:
                progress(result)
        found += inflight.still_listed(freed)
        result.failed = len(found)
        every_failed_try = list(found)
        for finding in found[:FAILURES_KEPT]:
            minimal, tries = _shrink(finding, variant, names)
            every_failed_try += tries
            path = reproducer.write(reproducers, minimal.graph, variant, minimal.problem, origin) if reproducers \
                else None
            result.failures.append(Failure(finding, minimal, path))
        result.left_listed = inflight.left_listed(every_failed_try)
    result.seconds = time.monotonic() - started
    return result


def _shrink(finding: inflight.Finding, variant: Variant, names: str) -> tuple:
    """The smallest graph below the finding's that still fails (each step takes the first smaller graph that
    fails in one of SHRINK_BUILDS builds), and the findings of every failing try."""
    current, failed_tries, tries = finding, [], 0
    progress = True
    while progress and tries < SHRINK_TRIES and len(failed_tries) < SHRINK_FAILURES:
        progress = False
        for candidate in smaller(current.graph):
            if tries >= SHRINK_TRIES:
                break
            tries += 1
            failed = _fails(candidate, variant, names)
            if failed:
                failed_tries.append(failed)
                current, progress = failed, True
                break
    return current, failed_tries


def _fails(graph: Graph, variant: Variant, names: str) -> inflight.Finding | None:
    for _ in range(SHRINK_BUILDS):
        findings, _ = inflight.check([graph], variant, _fresh(names, "shrink"))  # markers only: a table is slow
        if findings:
            return findings[0]
    return None


_made = [0]


def _fresh(parent: str, tag) -> str:
    """A new directory for one batch's listener names."""
    _made[0] += 1
    path = os.path.join(parent, f"{tag}-{_made[0]}")
    os.mkdir(path)
    return path


def _short_tmp() -> str | None:
    """A directory whose paths leave room for a listener's name (sun_path has 104 bytes on BSD and macOS)."""
    return "/tmp" if len(tempfile.gettempdir()) > 40 and os.path.isdir("/tmp") else None
