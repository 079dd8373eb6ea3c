"""Self-tests of --conformance-stress (conformance/stress.py): iteration ids on crafted names, and nested runs of
crafted race cases: one whose observation changes between iterations must be named and fail the run, a stable one
must not, and the time budget must bound the run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conformance.stress import _strip, base_id


@pytest.mark.parametrize(("case", "expected"), [
    ("rights/x[stream-stress3]", ("rights/x[stream]", 3)),
    ("rights/x[stress3-stream]", ("rights/x[stream]", 3)),
    ("rights/x[stress12]", ("rights/x", 12)),
    ("rights/x[a-b]", ("rights/x[a-b]", 0)),
    ("rights/x[nostress1]", ("rights/x[nostress1]", 0)),
    ("rights/x", ("rights/x", 0)),
])
def test_the_iteration_is_taken_out_of_the_case_id(case, expected):
    assert base_id(case) == expected


def test_the_iteration_is_taken_out_of_observation_names():
    names = ("locks.y[ofd-stress2]", "locks.y[stress2]", "locks.y")
    assert [_strip(n) for n in names] == ["locks.y[ofd]", "locks.y", "locks.y"]


CASES = '''
import os
import pytest

CONFORMANCE_AREA = "selftest"


@pytest.mark.race("an observation that changes")
@pytest.mark.refs("self-test")
def test_unstable(observe, conformance_stress_iteration):
    observe("parity", conformance_stress_iteration % 2)


@pytest.mark.race("nothing changes")
@pytest.mark.parametrize("kind", ["a", "b"])
@pytest.mark.refs("self-test")
def test_stable(observe, kind):
    observe("kind", kind)


@pytest.mark.refs("self-test")
def test_not_race_prone():
    pass
'''


def _nested(tmp_path, *args):
    (tmp_path / "test_selftest_race.py").write_text(CASES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_ADDOPTS"))}
    env["TMPDIR"] = str(tmp_path)
    return subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_selftest_race.py"), "-p", "no:randomly",
                           "-p", "no:cacheprovider", "-q", *args], capture_output=True, text=True, env=env, timeout=60,
                          cwd=tmp_path)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_iteration_that_differs_is_named_and_fails_the_run(tmp_path, workers):
    done = _nested(tmp_path, "--conformance-stress", "4", *workers)
    out = done.stdout
    assert "stress: 3 race-prone cases, 12 iterations" in out and ", 1 differing" in out, out
    assert "selftest/test_unstable: iteration 1: pass {'selftest.parity': 1} (iteration 0: pass " in out, out
    assert "iteration 2" not in out.split("selftest/test_unstable: iteration 1")[1].splitlines()[0]
    assert "test_stable" not in out.split("stress:")[1], out
    assert "test_not_race_prone" not in out
    assert done.returncode == 1, out


def test_the_budget_bounds_the_run(tmp_path):
    done = _nested(tmp_path, "--conformance-stress", "50", "--conformance-stress-seconds", "0.000001", "-rs")
    assert "stress budget of 1e-06 s spent" in done.stdout, done.stdout
    assert "0 differing" in done.stdout and done.returncode == 0, done.stdout


def test_a_negative_count_is_a_usage_error(tmp_path):
    done = _nested(tmp_path, "--conformance-stress", "-1")
    assert done.returncode == 4 and "--conformance-stress -1: not a whole number from 0 to 200" in done.stderr
