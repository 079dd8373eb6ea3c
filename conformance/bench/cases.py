"""The benchmarks of `conformance bench`, as conformance cases of the area `perf`.

Each case measures and records what it measured as `perf.<figure>...` observations; it fails only when it
cannot measure (a C baseline that does not compile although a compiler exists, a suite run that writes no
report), never because something is slow: the targets are stated in the figures table, not asserted. Every
figure is the best of a few timed runs of a fixed number of iterations, sized to take a fraction of a second
here. The suite's plugin checks after each case, as after any other, that nothing was left behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

from conformance import locks, native
from conformance.cases._graphs import Variant
from conformance.cases._support import require_lock_family
from conformance.explore import inflight, lockhistory, lockrun
from conformance.explore.graphs import every_graph
from conformance.harness import rights
from conformance.harness.children import Child
from conformance.harness.deadlines import deadline
from conformance.harness.privileges import fresh_uid
from conformance.outcomes import require
from conformance.platforms import constants
from conformance.plugin import target_dir
from conformance.report.load import read_report
from conformance.settings import CASES_DIR

from . import BENCH_DIR, PARALLEL_WORKERS
from .stats import median, percentile

CONFORMANCE_AREA = "perf"

# Full iteration counts; --bench-quick divides them. Python pays a few us a descriptor round trip and about 1 us a
# lock pair, C a third of that or less, a fork a millisecond or two.
FD_PASS_ITERATIONS = 20_000
FD_PASS_C_ITERATIONS = 100_000
LOCK_ITERATIONS = 20_000
LOCK_C_ITERATIONS = 200_000
FORK_ITERATIONS = 100
C_DEADLINE = deadline(60.0)
C_BUDGET = 2.0  # seconds a timed C run is sized for: on a slow kernel it runs fewer iterations, at the same rate
SUITE_DEADLINE = deadline(600.0)


def best_seconds(loop, iterations: int, rounds: int) -> float:
    """The fastest of `rounds` timed calls of loop(iterations)."""
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        loop(iterations)
        best = min(best, time.perf_counter() - start)
    return max(best, 1e-9)


@pytest.fixture(scope="session")
def c_baseline(tmp_path_factory):
    """c_baseline() -> (baselines.c compiled, None), or (None, reason) without a compiler; built on first use.

    A source the compiler rejects raises native.BuildFailed in the case that asked, which then fails."""
    built: list = []

    def get():
        if not built:
            try:
                built.append((native.build("baselines", tmp_path_factory.mktemp("bench-native"), BENCH_DIR), None))
            except native.NoCompiler as e:
                built.append((None, e.reason))
        return built[0]

    return get


def run_c(program: Path, *args, stdin: str = "", as_fresh_uid: bool = False) -> float:
    """Run a C baseline (as a fresh uid if asked and root; then it must be readable by anyone); the seconds of its
    best timed run."""
    uid = fresh_uid() if as_fresh_uid and os.geteuid() == 0 else None
    if uid is None:
        done = subprocess.run([str(program), *map(str, args)], input=stdin, capture_output=True, text=True,
                              timeout=C_DEADLINE, check=False)
    else:
        with tempfile.TemporaryDirectory(dir="/tmp") as reachable:  # pytest's own directories are root's alone
            os.chmod(reachable, 0o755)
            copy = shutil.copy(program, reachable)
            os.chmod(copy, 0o755)
            done = subprocess.run([copy, *map(str, args)], input=stdin, capture_output=True, text=True,
                                  timeout=C_DEADLINE, check=False, user=uid, group=uid, extra_groups=[])
    fields = done.stdout.split()
    assert done.returncode == 0 and len(fields) == 2 and fields[0] == "best_ns", (
        f"{program.name} {' '.join(map(str, args))}: exit status {done.returncode}: {done.stdout} {done.stderr}")
    return max(int(fields[1]), 1) / 1e9


def c_rate(measure: Callable[[int, int], float], wanted: int, rounds: int) -> float:
    """Iterations per second of a C baseline, measure(count, rounds) giving the best run's seconds: a probe of a
    hundredth of the iterations first sizes the timed runs to at most `wanted` and about C_BUDGET seconds, so that
    a kernel where each call is slow (a collector pass on every send) gives its rate instead of outliving
    C_DEADLINE."""
    probe = max(1, wanted // 100)
    seconds = measure(probe, 1)
    count = max(1, min(wanted, int(probe * C_BUDGET / seconds)))
    return count / measure(count, rounds)


def observe_rates(observe, figure: str, python_per_s: float, c_per_s: float | None, c_reason: str | None) -> None:
    """The Python rate, and the C rate with the cost ratio (Python's cost over C's), or why there is no C figure."""
    observe(f"{figure}.python_per_s", round(python_per_s))
    if c_per_s is None:
        observe(f"{figure}.c_absent", c_reason)
        return
    observe(f"{figure}.c_per_s", round(c_per_s))
    observe(f"{figure}.cost_ratio", round(c_per_s / python_per_s, 2))


# ---- descriptor passing -----------------------------------------------------------------------------------------

@pytest.mark.refs("sendmsg(2), recvmsg(2), unix(7): SCM_RIGHTS", "conformance/harness/rights.py: send_fds, recv_fds",
                  "conformance/bench/baselines.c: fd_pass (the C baseline)")
def test_descriptor_pass_round_trips(bench, c_baseline, observe):
    """One descriptor over an AF_UNIX stream socketpair and back out, the receiver closing it, per second."""
    require("scm_rights")
    iterations = bench.iterations(FD_PASS_ITERATIONS)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        rights.send_fds(a, [fd])
        with rights.recv_fds(b, 1) as received:
            assert len(received.fds) == 1, f"a round trip delivered {received.fds}"

        def loop(count: int) -> None:
            for _ in range(count):
                rights.send_fds(a, [fd])
                with rights.recv_fds(b, 1):
                    pass

        python_per_s = iterations / best_seconds(loop, iterations, bench.rounds)
    finally:
        os.close(fd)
        a.close()
        b.close()
    program, reason = c_baseline()
    c_per_s = None
    if program is not None:
        c_per_s = c_rate(lambda count, rounds: run_c(program, "fd_pass", count, rounds),
                         bench.iterations(FD_PASS_C_ITERATIONS), bench.rounds)
    observe_rates(observe, "fd_pass", python_per_s, c_per_s, reason)


# ---- locks ------------------------------------------------------------------------------------------------------

@pytest.mark.refs("fcntl(2): F_SETLK, F_OFD_SETLK", "flock(2)", "conformance/locks.py: a family's lock, unlock",
                  "conformance/bench/baselines.c: lock (the C baseline)")
@pytest.mark.parametrize("family", locks.families(), ids=str)
def test_lock_unlock_pairs(bench, c_baseline, observe, workdir, family):
    """A non-blocking write lock on the whole file and its release, per second, in each lock family."""
    require_lock_family(family)
    iterations = bench.iterations(LOCK_ITERATIONS)
    path = workdir / "locked"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDWR)
    try:

        def loop(count: int) -> None:
            for _ in range(count):
                family.lock(fd, "write")
                family.unlock(fd)

        python_per_s = iterations / best_seconds(loop, iterations, bench.rounds)
    finally:
        os.close(fd)
    program, reason = c_baseline()
    c_per_s = None
    if program is not None:
        c_per_s = c_rate(lambda count, rounds: run_c(program, "lock", *_c_lock_call(family), path, count, rounds),
                         bench.iterations(LOCK_C_ITERATIONS), bench.rounds)
    observe_rates(observe, "lock_pairs", python_per_s, c_per_s, reason)


def _c_lock_call(family: locks.Family) -> tuple:
    """The C baseline's call for the family: fcntl with the set-lock command the family uses itself, or flock."""
    if family.system_call == "fcntl":
        return "fcntl", locks.commands(family)[1]
    return family.system_call, "-"


# ---- fork and reap ----------------------------------------------------------------------------------------------

def _nothing() -> None:
    return None


@pytest.mark.refs("fork(2), _exit(2), waitpid(2)", "conformance/harness/children.py: Child")
def test_fork_and_reap(bench, observe):
    """From inside the test process: a harness Child running a trivial function, and a bare fork, in microseconds."""
    iterations = bench.iterations(FORK_ITERATIONS)

    def through_child(count: int) -> None:
        for _ in range(count):
            with Child(_nothing) as child:
                child.join()

    def bare(count: int) -> None:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert status == 0, f"a bare child ended with wait status {status}"

    child_us = best_seconds(through_child, iterations, bench.rounds) / iterations * 1e6
    bare_us = best_seconds(bare, iterations, bench.rounds) / iterations * 1e6
    observe("fork.child_us", round(child_us, 1))
    observe("fork.bare_us", round(bare_us, 1))
    observe("fork.child_over_bare", round(child_us / bare_us, 2))


# ---- the collector's explorer -------------------------------------------------------------------------------------

def _unreachable_small_graphs() -> list:
    """Every graph of up to 3 stream sockets and 4 edges that the user closes whole: what the C loop builds too."""
    return [graph for graph in every_graph(3, 4) if not graph.keep]


@pytest.mark.refs("conformance/explore/inflight.py: check (the oracle)",
                  "conformance/bench/baselines.c: graphs (the C baseline)")
def test_graphs_checked(bench, c_baseline, observe, tmp_path):
    """Graphs of sockets in flight built, closed and collected per second: the explorer's oracle against a C loop
    doing the same on the same graphs. As root both send as a fresh uid, as the explorer always does (Linux makes
    every send of a user with many sockets in flight wait for a collector pass). A collector that leaks leaves the
    graphs it misses in every timed run of both."""
    require("scm_rights")
    graphs = _unreachable_small_graphs()
    graphs = graphs[:bench.iterations(len(graphs))]  # --bench-quick: the first twentieth
    variant = Variant("stream")
    size = inflight.batch_size()

    def loop(count: int) -> None:
        for _ in range(count):
            for start in range(0, len(graphs), size):
                directory = tmp_path / f"b{time.monotonic_ns()}"
                directory.mkdir()
                inflight.check(graphs[start:start + size], variant, str(directory))

    python_per_s = len(graphs) / best_seconds(loop, 1, bench.rounds)
    program, reason = c_baseline()
    c_per_s = None
    if program is not None:
        lines = "".join(f"{g.nodes} {len(g.edges)} " + " ".join(f"{v} {u}" for v, u in g.edges) + "\n"
                        for g in graphs)
        c_per_s = len(graphs) / run_c(program, "graphs", bench.rounds, stdin=lines, as_fresh_uid=True)
    observe("graphs.count", len(graphs))
    observe_rates(observe, "graphs", python_per_s, c_per_s, reason)


LOCK_HISTORIES = 40  # of 25 steps by 3 processes; --bench-quick divides them


@pytest.mark.refs("conformance/explore/lockrun.py: Bench.run (a step, then every query the model checks)")
def test_lock_history_steps(bench, observe, workdir):
    """Steps of random lock histories checked against the model per second: each step's own call in its process,
    then an outsider's queries at every boundary and its flock tries, all compared with the model."""
    families = tuple(f for f in lockrun.available_families() if f != "flock" or constants().FLOCK_VS_FCNTL)
    require("posix_locks")
    path = workdir / "locked"
    path.write_bytes(b"")
    rng = random.Random(20261206)
    histories = [lockhistory.random_history(rng, 3, 25, families, constants().FLOCK_VS_FCNTL)
                 for _ in range(max(2, bench.iterations(LOCK_HISTORIES)))]
    steps = sum(len(history) for history in histories)
    with lockrun.Bench(3, str(path), families, constants().FLOCK_VS_FCNTL) as runner:

        def loop(count: int) -> None:
            for _ in range(count):
                for history in histories:
                    _, found = runner.run(history)
                    assert found is None, found.text()

        observe("lock_steps.python_per_s", round(steps / best_seconds(loop, 1, bench.rounds)))
    observe("lock_steps.count", steps)


# ---- the suite itself -------------------------------------------------------------------------------------------

def _suite_environment(report_dir: Path) -> dict:
    """The run's pytest keeps its own temporary files beside its report, out of the directory our leak check
    watches; and it may write bytecode, as any run does unless told not to, so that both timed runs find the
    rewritten case modules cached (the warm-up wrote them) and neither pays for rewriting them."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return dict(env, TMPDIR=str(report_dir.parent))


def _run(command: list, report_dir: Path, what: str) -> tuple[int, float, str]:
    """command in a session of its own: (exit status, wall seconds, the tail of its output)."""
    start = time.monotonic()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=_suite_environment(report_dir), start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=SUITE_DEADLINE)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{what} did not finish within {SUITE_DEADLINE:g} s") from None
    finally:
        if proc.poll() is None:  # a deadline, or pytest-timeout's exception: the run and its workers go
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, time.monotonic() - start, output.decode(errors="replace")[-2000:]


def warm_up(report_dir: Path, suite_args) -> None:
    """Collect the suite once, untimed: imports and the case modules' bytecode are then as in any later run."""
    report_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "pytest", str(CASES_DIR), "--collect-only", "-q", "-p", "no:cacheprovider",
               *suite_args]
    status, _, tail = _run(command, report_dir, "collecting the suite")
    assert status == 0, f"collecting the suite failed (exit status {status}):\n{tail}"


def run_suite(report_dir: Path, workers: int, test_dir: str, suite_args) -> dict:
    """`conformance run` in a process of its own; its wall time and what its report says of the case durations."""
    report_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "conformance", "run", "-n", str(workers), "--dir", test_dir,
               "--report-dir", str(report_dir), "--", *suite_args]
    what = f"the suite run with -n {workers}"
    status, wall, tail = _run(command, report_dir, what)
    written = sorted(report_dir.glob("*.json"))
    what += f" (exit status {status})"
    assert len(written) == 1, f"{what} wrote {len(written)} reports:\n{tail}"
    durations = [case.duration for case in read_report(written[0]).cases]
    assert durations, f"{what} ran no case:\n{tail}"
    return {"wall_s": round(wall, 3), "cases": len(durations), "case_median_ms": round(median(durations) * 1e3, 3),
            "case_p95_ms": round(percentile(durations, 95) * 1e3, 3), "exit_status": status}


@pytest.mark.refs("README.md: Benchmark", "conformance/report/FORMAT.md: cases[].duration")
@pytest.mark.timeout(2 * SUITE_DEADLINE + 60)
def test_suite_wall_time(bench, observe, tmp_path, pytestconfig):
    """The whole suite serial and with two workers: wall time, per-case median and 95th percentile, speedup."""
    walls = {}
    warm_up(tmp_path / "warm-up", bench.suite_args)
    for label, workers in (("serial", 0), (f"n{PARALLEL_WORKERS}", PARALLEL_WORKERS)):
        figures = run_suite(tmp_path / label, workers, target_dir(pytestconfig), bench.suite_args)
        for name, value in figures.items():
            observe(f"suite.{label}.{name}", value)
        walls[label] = figures["wall_s"]
    observe("suite.speedup", round(walls["serial"] / walls[f"n{PARALLEL_WORKERS}"], 2))
