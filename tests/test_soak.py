"""Self-tests of conformance.soak: flaky detection and the summary on crafted runs, bad input, the load processes
ending with the soak, and one short real soak of a few cases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types

import pytest
from commands import conformance, environment, refused

from conformance import settings, soak
from conformance.interruption import Interruption
from conformance.model import CaseResult


def _run(index: int, outcomes: dict, status: int = 0) -> soak.SoakRun:
    results = [CaseResult(case_id, outcome) for case_id, outcome in outcomes.items()] if outcomes else None
    return soak.SoakRun(index, 100 + index, status, 1.0 + index, results)


def test_a_case_with_one_outcome_in_every_run_is_not_flaky():
    runs = [_run(i, {"a/x": "pass", "a/y": "unsupported"}) for i in range(3)]
    assert soak.flaky_cases(runs) == {}


def test_a_case_whose_outcome_changes_is_flaky_with_the_runs_named():
    runs = [_run(0, {"a/x": "pass"}), _run(1, {"a/x": "fail"}), _run(2, {"a/x": "pass"})]
    assert soak.flaky_cases(runs) == {"a/x": {"pass": [0, 2], "fail": [1]}}
    text = soak.summary(runs, soak.flaky_cases(runs), load=2, workers="2")
    assert "flaky cases: 1" in text
    assert "`a/x`: pass in runs 0 (seed 100), 2 (seed 102); fail in runs 1 (seed 101)" in text


def test_a_case_missing_from_a_run_is_flaky_and_a_run_without_report_is_named():
    runs = [_run(0, {"a/x": "pass", "a/y": "pass"}), _run(1, {"a/x": "pass"}), _run(2, {}, status=3)]
    assert soak.flaky_cases(runs) == {"a/y": {"pass": [0], "missing": [1]}}
    text = soak.summary(runs, soak.flaky_cases(runs), load=0, workers="2")
    assert "runs that failed or wrote no report: 1\n  - run 2 (seed 102): exit 3" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--runs", "0"], "--runs 0: not a whole number from 1 to 1000"),
    (["--runs", "many"], "--runs many: not a whole number from 1 to 1000"),
    (["--load", "-1"], "--load -1: not a whole number from 0 to {limit}"),
    (["--load", "100000"], "--load 100000: not a whole number from 0 to {limit}"),
    (["--workers", "100000"], "--workers 100000: not auto, logical, 0 (one process) or a number of workers"),
    (["--seed", "-1"], "--seed -1: not a whole number from 0 to"),
    (["--out", "{file}"], "--out {file}: not a directory"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--runs"], "argument --runs: expected one argument"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_run(tmp_path, argv, message):
    paths = {"file": str(tmp_path / "file"), "limit": settings.workers_limit()}
    (tmp_path / "file").write_text("")
    # An --out in argv comes last, and wins.
    done = conformance("--out", tmp_path / "out", *(arg.format(**paths) for arg in argv), module="conformance.soak",
                       env=environment(TMPDIR=str(tmp_path)))
    assert refused(done, "soak").startswith(message.format(**paths))
    assert not (tmp_path / "out").exists()


def test_the_load_processes_end_with_the_soak():
    load = soak.start_load(2)
    pids = [p.pid for p in load]
    soak.stop_load(load)
    assert all(p.returncode is not None for p in load)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids if sys.platform.startswith("linux"))


# ---- a signal while the soak starts a process -------------------------------------------------------------------

@pytest.fixture
def interruption():
    """The soak's Interruption, installed in this process as `conformance soak` installs it."""
    interruption = Interruption(deferring=False)
    interruption.install()
    try:
        assert getattr(signal.getsignal(signal.SIGTERM), "__self__", None) is interruption
        yield interruption
    finally:
        interruption.restore()


def _signalled_when_started(started: list):
    """A Popen that starts the real process, then has SIGTERM land on this process before Popen returns: the moment a
    signal would leave a process that no one stops or waits for."""
    def popen(*args, **kwargs):
        process = subprocess.Popen(*args, **kwargs)
        started.append(process)
        os.kill(os.getpid(), signal.SIGTERM)
        return process
    return popen


def _reap(processes: list) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:  # a run the soak lost still has its output pipe here
            process.stdout.close()


def test_a_signal_while_a_process_starts_raises_once_the_process_is_known(interruption):
    started: list = []
    try:
        try:
            process = interruption.start(lambda: _signalled_when_started(started)(
                [sys.executable, "-c", "import time; time.sleep(60)"]))
        except KeyboardInterrupt:
            pytest.fail("the signal raised inside Popen, where the process it had started was lost")
        assert process is started[0] and interruption.signal == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            interruption.resume()
    finally:
        _reap(started)


def test_a_signal_while_a_run_starts_stops_and_reaps_that_run(interruption, tmp_path, monkeypatch):
    started: list = []
    fake = types.SimpleNamespace(**{name: getattr(subprocess, name) for name in ("DEVNULL", "PIPE", "STDOUT",
                                                                                 "TimeoutExpired")})
    fake.Popen = _signalled_when_started(started)
    monkeypatch.setattr(soak, "subprocess", fake)  # the soak's own name only
    try:
        with pytest.raises(KeyboardInterrupt):
            soak.run_once(0, 7, "0", tmp_path, ["-k", "rights"])
        assert len(started) == 1 and started[0].returncode is not None, "the run outlived the soak that started it"
    finally:
        _reap(started)


def test_a_signal_while_the_load_starts_leaves_every_busy_loop_to_stop_load(interruption, monkeypatch):
    started: list = []
    fake = types.SimpleNamespace(DEVNULL=subprocess.DEVNULL, Popen=_signalled_when_started(started))
    monkeypatch.setattr(soak, "subprocess", fake)
    load: list = []
    try:
        with pytest.raises(KeyboardInterrupt):
            soak.start_load(3, load)
        assert load == started and len(load) == 1, "a busy loop was started and not handed to stop_load"
    finally:
        monkeypatch.undo()
        soak.stop_load(load)
        _reap(started)


@pytest.mark.timeout(120)
def test_a_short_soak_runs_reports_and_agrees(tmp_path):
    out = tmp_path / "soak"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run([sys.executable, "-m", "conformance.soak", "--runs", "2", "--load", "1", "--out", str(out),
                           "--seed", "7", "--", "-k", "test_nonzero_flags_are_einval"],
                          capture_output=True, text=True, env=env, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "flaky cases: 0" in (out / "soak.md").read_text()
    reports = sorted(out.glob("run-*/*.json"))
    assert len(reports) == 2
    ids = [sorted(c["id"] for c in json.loads(r.read_text())["cases"]) for r in reports]
    assert ids[0] == ids[1] and len(ids[0]) == 3
    assert "run 2/2 (seed 8)" in done.stderr  # run i takes seed SEED+i


@pytest.mark.timeout(120)
def test_sigterm_ends_the_soak_its_run_and_its_load_at_once(tmp_path):
    out = tmp_path / "soak"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.Popen([sys.executable, "-m", "conformance.soak", "--runs", "5", "--load", "2", "--out", str(out),
                             "--seed", "7", "--", "-k", "rights"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        loops = _wait_for_busy_loops(proc.pid, 2)
        proc.send_signal(signal.SIGTERM)  # to the soak alone, as a CI runner cancelling a step does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err
    assert not [pid for pid in loops if os.path.exists(f"/proc/{pid}")], "busy loops outlived the soak"
    assert (out / "soak.md").exists()


def _wait_for_busy_loops(parent: int, count: int, timeout: float = 30.0) -> list:
    """The pids of the soak's busy loops, once it has started them (read from /proc: Linux only)."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("finds the busy loops through /proc")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        loops = []
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if soak.BUSY_LOOP.encode() in f.read():
                        loops.append(int(name))
            except (OSError, ValueError):
                continue
        if len(loops) >= count:
            return loops
        time.sleep(0.05)  # polls what the kernel shows, bounded
    pytest.fail("the soak did not start its busy loops")
