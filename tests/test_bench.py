"""Self-tests of `conformance bench`: its argument errors, the C baselines, the statistics, the figures table on a
crafted report, that nothing else collects the benchmarks, and one quick run end to end."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest
from reportdata import model, sample_report

from conformance import native
from conformance.bench import BENCH_DIR
from conformance.bench.stats import median, percentile
from conformance.bench.table import figures, render_text
from conformance.report.formats import REPORT_FORMATS
from conformance.report.load import read_report
from conformance.report.schema import validate

# The Markdown page as written, with the sections the format registry adds.
MARKDOWN = next(form for form in REPORT_FORMATS if form.suffix == ".md").render

TIMEOUT = 120


def _conformance(*args, env=None):
    done = subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, env=env)
    return done.returncode, done.stdout, done.stderr


# ---- arguments ---------------------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ("missing --dir", ["--dir", "{missing}"], "--dir {missing}: no such directory"),
    ("--report-dir is a file", ["--report-dir", "{file}"], "--report-dir {file}: not a directory"),
    ("unknown option", ["--fast"], "unrecognized arguments: --fast"),
    ("option without its value", ["--dir"], "argument --dir: expected one argument"),
]


@pytest.mark.parametrize(("argv", "message"), [b[1:] for b in BAD_ARGUMENTS], ids=[b[0] for b in BAD_ARGUMENTS])
def test_argument_errors_are_one_line_and_exit_2(tmp_path, argv, message):
    paths = {"missing": str(tmp_path / "missing"), "file": str(tmp_path / "file")}
    (tmp_path / "file").write_text("")
    status, out, err = _conformance("bench", *(arg.format(**paths) for arg in argv))
    assert (status, out) == (2, ""), err
    assert err == f"conformance: bench: {message.format(**paths)}\n"


# ---- the C baselines ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    if native.compiler() is None:
        pytest.skip("no C compiler")
    return native.build("baselines", tmp_path_factory.mktemp("bench-native"), source_dir=BENCH_DIR)


def _run(program, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(program), *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT, check=False)


def test_the_c_baselines_compile_and_measure(baselines, tmp_path):
    path = tmp_path / "locked"
    path.write_bytes(b"")
    for args in (("fd_pass", 10, 2), ("lock", "flock", "-", path, 10, 2),
                 ("lock", "fcntl", fcntl.F_SETLK, path, 10, 2)):
        done = _run(baselines, *args)
        assert done.returncode == 0, (args, done.stderr)
        name, value = done.stdout.split()
        assert name == "best_ns" and int(value) > 0, done.stdout


@pytest.mark.parametrize("args", [(), ("fd_pass", "10"), ("fd_pass", "0", "1"), ("fd_pass", "ten", "1"),
                                  ("lock", "lockf", "-", "x", "1", "1"), ("lock", "flock", "-", "x", "0", "1")])
def test_the_c_baselines_refuse_bad_usage(baselines, args):
    done = _run(baselines, *args)
    assert done.returncode == 2 and done.stderr.startswith("usage: ") and done.stdout == ""


# ---- statistics --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "expected"), [
    ([3.0], 3.0), ([5, 1, 3], 3), ([4, 1, 3, 2], 2.5), ([0.010, 0.002, 0.002, 0.5, 0.003], 0.003),
])
def test_median(values, expected):
    assert median(values) == expected


@pytest.mark.parametrize(("values", "p", "expected"), [
    (range(1, 101), 95, 95),  # nearest rank: the 95th of 100
    (range(20, 0, -1), 95, 19),  # unsorted input; 0.95 * 20 is rank 19, however the float rounds
    (range(1, 11), 95, 10),  # rank 9.5 rounds up
    ([7.5], 95, 7.5),
    ([1, 2, 3, 4], 100, 4),
    ([1, 2, 3, 4], 1, 1),
    ([0.001] * 95 + [2.0] * 5, 95, 0.001),  # the slowest 5% do not reach the 95th percentile
    ([0.001] * 94 + [2.0] * 6, 95, 2.0),
])
def test_percentile(values, p, expected):
    assert percentile(values, p) == expected


@pytest.mark.parametrize("call", [lambda: median([]), lambda: percentile([], 95), lambda: percentile([1], 0),
                                  lambda: percentile([1], 101)])
def test_statistics_refuse_nothing_and_bad_percentiles(call):
    with pytest.raises(ValueError):
        call()


# ---- the figures table -------------------------------------------------------------------------------------------

def _perf_case(name, params="", outcome="pass", observations=None, reason=""):
    return {"id": f"perf/{name}" + (f"[{params}]" if params else ""), "area": "perf", "name": name, "params": params,
            "outcome": outcome, "reason": reason, "references": ["README.md: Benchmark"],
            "observations": observations or {}, "expectation": None, "duration": 0.5}


def _perf_report():
    report = sample_report()
    suite = {f"perf.suite.{label}.{name}": value for label, values in
             (("serial", (10.0, 697, 4.8, 17.0, 0)), ("n2", (5.0, 697, 5.5, 23.0, 1)))
             for name, value in zip(("wall_s", "cases", "case_median_ms", "case_p95_ms", "exit_status"), values)}
    report["cases"] = [
        _perf_case("test_suite_wall_time", observations={**suite, "perf.suite.speedup": 2.0}),
        _perf_case("test_descriptor_pass_round_trips", observations={
            "perf.fd_pass.python_per_s": 100000, "perf.fd_pass.c_per_s": 300000, "perf.fd_pass.cost_ratio": 3.0}),
        _perf_case("test_lock_unlock_pairs", "posix", observations={
            "perf.lock_pairs.python_per_s[posix]": 50000, "perf.lock_pairs.c_absent[posix]": "no C compiler"}),
        _perf_case("test_lock_unlock_pairs", "ofd", outcome="unsupported", reason="F_OFD_GETLK is not defined"),
        _perf_case("test_lock_unlock_pairs", "flock", observations={
            "perf.lock_pairs.python_per_s[flock]": 500000, "perf.lock_pairs.c_absent[flock]": "no C compiler"}),
        _perf_case("test_fork_and_reap", outcome="fail", reason="AssertionError: a bare child ended"),
        _perf_case("test_graphs_checked", observations={
            "perf.graphs.count": 1232, "perf.graphs.python_per_s": 2500, "perf.graphs.c_per_s": 5000,
            "perf.graphs.cost_ratio": 2.0}),
        _perf_case("test_lock_history_steps", observations={"perf.lock_steps.python_per_s": 900,
                                                            "perf.lock_steps.count": 1000}),
    ]
    report["summary"] = {outcome: sum(c["outcome"] == outcome for c in report["cases"])
                         for outcome in report["summary"]}
    assert validate(report) == []
    return report


def test_the_table_states_targets_and_says_why_a_figure_is_absent():
    rows, notes = figures(model(_perf_report()))
    by_figure = {row[0]: row[1:] for row in rows}
    assert by_figure["suite wall time, -n 2 (s)"] == ("5.00", "-", "2.00x faster", ">= 1.7x faster (met)")
    assert by_figure["per-case median, serial (ms)"][3] == "<= 10 ms (met)"
    assert by_figure["suite cases (serial / -n 2)"][0] == "697 / 697"
    assert by_figure["descriptor pass round trips per s"] == ("100,000", "300,000", "3.00x the cost",
                                                             "<= 2.5x the cost (missed)")
    assert by_figure["posix lock/unlock pairs per s"][:2] == ("50,000", "absent")
    assert by_figure["ofd lock/unlock pairs per s"][:2] == ("absent", "absent")
    assert by_figure["fork and reap through Child (us)"][0] == "-"
    assert by_figure["in-flight graphs checked per s"] == ("2,500", "5,000", "2.00x the cost",
                                                           ">= 2,000/s, <= 3x the cost (met)")
    assert by_figure["lock-history steps checked per s"] == ("900", "-", "-", ">= 1,000/s (missed)")
    assert notes == ["perf/test_lock_unlock_pairs[ofd]: unsupported: F_OFD_GETLK is not defined",
                     "perf/test_fork_and_reap: fail: AssertionError: a bare child ended",
                     "C figures absent: no C compiler"]
    text = render_text(rows, notes)
    assert text.splitlines()[0].split() == ["figure", "Python", "C", "ratio", "target"]
    assert "note: C figures absent: no C compiler" in text


@pytest.mark.parametrize("value", [10**400, 697.0, -1, "many", True, None])
def test_the_table_takes_any_value_a_valid_report_may_hold(value):
    report = _perf_report()
    for case in report["cases"]:
        case["observations"] = dict.fromkeys(case["observations"], value)
    assert validate(report) == []
    rows, _ = figures(model(report))
    assert all(isinstance(cell, str) for row in rows for cell in row)
    assert "## Benchmark" in MARKDOWN(model(report))


def test_the_markdown_shows_the_table_only_for_a_benchmark_report():
    assert "## Benchmark" in MARKDOWN(model(_perf_report()))
    assert "## Benchmark" not in MARKDOWN(model(sample_report()))
    assert figures(model(sample_report())) == ([], [])


# ---- collection --------------------------------------------------------------------------------------------------

def test_the_project_run_collects_no_benchmark(request):
    collected = [item.nodeid for item in request.session.items if BENCH_DIR in item.path.parents]
    assert collected == []


def test_pytest_on_the_bench_package_collects_nothing(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           str(BENCH_DIR)], capture_output=True, text=True, timeout=TIMEOUT, check=False,
                          env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert done.returncode == 5, done.stdout + done.stderr  # no tests collected


# ---- end to end --------------------------------------------------------------------------------------------------

def test_a_quick_bench_writes_a_valid_report_with_the_perf_observations(tmp_path):
    # Everything the run makes, its pytest's and its suite runs' temporary files included, stays under tmp_path.
    report_dir = tmp_path / "report"
    status, out, err = _conformance("bench", "--quick", "--report-dir", str(report_dir), "--",
                                    "-k", "test_per_message_maximum and stream",
                                    env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert status == 0, (out + err)[-3000:]
    [path] = report_dir.glob("*.json")
    report = read_report(path)
    assert report.run.workers == 0 and "--bench-quick" in report.run.argv
    assert {case.area for case in report.cases} == {"perf"}
    assert all(case.outcome in ("pass", "unsupported") for case in report.cases), report.cases
    observed = report.observations()
    for key in ("perf.suite.serial.wall_s", "perf.suite.n2.case_p95_ms", "perf.suite.speedup",
                "perf.fd_pass.python_per_s", "perf.lock_pairs.python_per_s[flock]", "perf.fork.child_us",
                "perf.fork.bare_us", "perf.graphs.python_per_s", "perf.lock_steps.python_per_s"):
        assert isinstance(observed.get(key), (int, float)) and observed[key] > 0, (key, observed)
    assert observed["perf.suite.serial.cases"] == observed["perf.suite.n2.cases"] == 1
    assert ("perf.fd_pass.c_per_s" in observed) == (native.compiler() is not None)
    table = out[out.index("figure "):]
    assert "descriptor pass round trips per s" in table and "fork and reap through Child (us)" in table
    assert "## Benchmark" in path.with_suffix(".md").read_text(encoding="utf-8")


@pytest.mark.parametrize("per_iteration, runs", [(1e-6, [1000, 100_000]), (0.01, [1000, 200])],
                         ids=["fast kernel", "slow kernel"])
def test_a_c_baseline_is_sized_to_its_budget_and_keeps_its_rate(per_iteration, runs):
    from conformance.bench.cases import c_rate
    asked = []

    def measure(count, rounds):
        asked.append(count)
        return count * per_iteration
    assert c_rate(measure, 100_000, 3) == pytest.approx(1 / per_iteration)
    assert asked == runs  # at most what was wanted; on a slow kernel, about C_BUDGET seconds' worth
