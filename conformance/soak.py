"""Soak: run the whole suite again and again, in random order, on loaded cores, and name every flaky case.

    python -m conformance.soak [--runs 30] [--workers 2] [--load N] [--out DIR] [--seed S] [-- PYTEST ARGS...]

Each run is `conformance run -n WORKERS` with pytest-randomly's order from seed S+i (so any run can be replayed
with `-p randomly -p "randomly" --randomly-seed=...`), while N busy-loop processes (default: one per CPU) compete
for the same cores. A case is flaky when its outcome is not the same in every run; a run that fails or errors is
reported too. The runs are lined up as the matrix lines up platforms (report.lineup, one column per run). Exit status:
0 when every run agrees and none failed, 1 otherwise, 2 for bad input (one line, found before the first run: the
options, and the settings every run would refuse).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from . import settings, usage
from .interruption import Interruption
from .model import CaseResult
from .report.lineup import line_up
from .report.load import ReportError, read_report
from .report.vocabulary import NOT_RUN

BUSY_LOOP = "while True: pass"
MAX_RUNS = 1000  # about a day and a half at the usual 2 minutes a run: more is a typo
MAX_SEED = 2**32 - 1  # pytest-randomly hands the seed to numpy's seeding too, which takes 32 bits


def start_load(count: int, load: list | None = None) -> list:
    """`count` busy-loop processes in sessions of their own, added to `load` one by one, so that a signal between two
    leaves the list whole for stop_load(), which kills them."""
    load = [] if load is None else load
    interruption = Interruption.of_this_process()
    for _ in range(count):
        load.append(interruption.start(lambda: subprocess.Popen(
            [sys.executable, "-c", BUSY_LOOP], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        interruption.resume()
    return load


def stop_load(processes: list) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class SoakRun:
    index: int
    seed: int
    status: int  # the run's exit status
    wall: float  # seconds
    results: list[CaseResult] | None  # every case of the report it wrote; None when it wrote no usable report


def run_once(index: int, seed: int, workers: str, out: Path, extra: list) -> SoakRun:
    """One suite run: its exit status, wall time, and every case's result from the report it wrote."""
    report_dir = out / f"run-{index:03d}"
    argv = [sys.executable, "-m", "conformance", "run", "-n", workers, "--report-dir", str(report_dir), "--",
            "-p", "randomly", f"--randomly-seed={seed}", *extra]
    start = time.monotonic()
    interruption = Interruption.of_this_process()
    with interruption.start(lambda: subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                     stderr=subprocess.STDOUT, text=True)) as process:
        try:
            interruption.resume()  # a signal that came while the run was starting stops it from here
            output, _ = process.communicate()
        except KeyboardInterrupt:  # the soak was told to stop: so is its run, which cleans up after itself
            _stop_the_run(process)
            raise
    wall = time.monotonic() - start
    (out / f"run-{index:03d}.log").write_text(output)
    reports = sorted(report_dir.glob("*.json"))
    results = None
    if len(reports) == 1:
        try:
            results = read_report(reports[0]).cases
        except ReportError:
            pass
    return SoakRun(index, seed, process.returncode, wall, results)


# How long a suite run that was told to stop may take to clean up and write its report (its own workers get 10 s).
RUN_STOP_DEADLINE = 30.0


def _stop_the_run(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=RUN_STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def flaky_cases(runs: list[SoakRun]) -> dict:
    """case id -> {outcome: [run indexes]} for every case whose outcome is not the same in every run that wrote a
    report; a run without the case is listed under "missing"."""
    reported = [run for run in runs if run.results is not None]
    flaky = {}
    for row in line_up([run.results for run in reported]).rows():
        if row.differs:
            by_outcome: dict = defaultdict(list)
            for run, outcome in zip(reported, row.outcomes):
                by_outcome["missing" if outcome == NOT_RUN else outcome].append(run.index)
            flaky[row.id] = dict(by_outcome)
    return flaky


def summary(runs: list[SoakRun], flaky: dict, load: int, workers: str) -> str:
    walls = sorted(run.wall for run in runs)
    bad = [run for run in runs if run.status != 0 or not run.results]
    cases = max((len(run.results or ()) for run in runs), default=0)
    lines = [
        "# Soak",
        "",
        f"- runs: {len(runs)} of the whole suite ({cases} cases), `-n {workers}`, random order, "
        f"{load} busy-loop processes on {os.cpu_count()} CPUs",
        f"- wall time per run: min {walls[0]:.1f} s, median {walls[len(walls) // 2]:.1f} s, max {walls[-1]:.1f} s"
        if walls else "- no run finished",
        f"- runs that failed or wrote no report: {len(bad)}"
        + "".join(f"\n  - run {run.index} (seed {run.seed}): exit {run.status}" for run in bad),
        f"- flaky cases: {len(flaky)}",
    ]
    seeds = {run.index: run.seed for run in runs}
    for case, by_outcome in sorted(flaky.items()):
        where = "; ".join(f"{outcome} in runs {', '.join(f'{i} (seed {seeds.get(i)})' for i in indexes)}"
                          for outcome, indexes in by_outcome.items())
        lines.append(f"  - `{case}`: {where}")
    return "\n".join(lines) + "\n"


def _parser() -> usage.Parser:
    parser = usage.Parser(prog="conformance soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=30, help=f"how many runs (default 30, at most {MAX_RUNS})")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers per run (default 2)")
    parser.add_argument("--load", default=os.cpu_count() or 2,
                        help="busy-loop processes competing for the cores (default: one per CPU, at most 4 per CPU)")
    parser.add_argument("--seed", default=int(time.time()) % 100000,
                        help="run i uses pytest-randomly seed SEED+i (default: from the clock)")
    parser.add_argument("--out", default="reports/runs/soak")
    return parser


def _checked(args: argparse.Namespace) -> argparse.Namespace:
    """Every option, and the settings each run's `conformance run` would refuse, checked before the first run."""
    settings.deadline_scale()
    settings.temp_dir()
    settings.target_dir(None, "--dir")  # CONFORMANCE_DIR, which every run inherits
    args.runs = settings.whole_number(args.runs, "--runs", 1, MAX_RUNS)
    args.workers = settings.workers(args.workers, "--workers")
    args.load = settings.whole_number(args.load, "--load", 0, settings.workers_limit())
    args.seed = settings.whole_number(args.seed, "--seed", 0, MAX_SEED - args.runs)
    if importlib.util.find_spec("pytest_randomly") is None:
        raise settings.BadSetting("pytest-randomly is needed for the random order: pip install -e '.[test]', or use "
                                  "ci/soak")
    args.out = settings.report_dir(args.out, "--out")
    return args


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    try:
        args = _checked(_parser().parse_args(argv))
    except (usage.UsageError, settings.BadSetting) as e:
        return usage.fail("soak", str(e))
    out = args.out
    # SIGINT or SIGTERM stops the soak on any path: the run under way is told to stop too, the busy loops (in
    # sessions of their own, which no terminal signal reaches) are killed, and what ran is summed up.
    interruption = Interruption(deferring=False)
    interruption.install()
    load: list = []
    runs = []
    try:
        start_load(args.load, load)
        for index in range(args.runs):
            run = run_once(index, args.seed + index, args.workers, out, extra)
            runs.append(run)
            print(f"run {index + 1}/{args.runs} (seed {run.seed}): exit {run.status}, {run.wall:.1f} s, "
                  f"{len(run.results or ())} cases", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print(f"conformance soak: stopped by {interruption.signal or 'SIGINT'} after {len(runs)} runs",
              file=sys.stderr)
    finally:
        interruption.cleaning_up = True
        stop_load(load)
        interruption.restore()
    flaky = flaky_cases(runs)
    text = summary(runs, flaky, args.load, args.workers)
    (out / "soak.md").write_text(text)
    print(text, end="")
    if interruption.signal:
        return interruption.exit_status()
    return 0 if not flaky and all(run.status == 0 and run.results for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
